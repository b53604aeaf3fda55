"""What a scan produced, as data: :class:`ScanResult`, the targets findings are about, and what
reporters and the store need to know about each target.

No I/O and no judgement here. Reporters read a :class:`ScanResult` only through the fields below —
never the collected facts — so a scan re-rendered from the store is the same report as the live one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

from msgspec import Struct, field

from vmsec.facts import CollectionRecord, Domain, Endpoint, Guest, Host, Inventory, Network
from vmsec.findings import Finding, Severity, Status, Target, TargetKind, fingerprints_of

__all__ = [
    "Component", "OsInventory", "ScanCounts", "ScanResult", "TargetBatch", "ambiguous_domain_names",
    "describe_inventory", "domain_target", "domains_by_target", "endpoint_target", "guest_target",
    "host_target", "inventory_targets", "network_target", "target_details",
]


# --- targets ------------------------------------------------------------------------------------


def host_target(host: Host | None) -> Target:
    return Target(TargetKind.HOST, host.name if host else "unknown-host")


def domain_target(dom: Domain, host: Host | None, ambiguous: frozenset[str] = frozenset()) -> Target:
    """The domain's target. Offline XML sets can hold several domains with one name (libvirt's own
    corpus names most of them QEMUGuest1): those are told apart by where they were read."""
    name = f"{dom.name} ({dom.origin})" if dom.name in ambiguous else dom.name
    return Target(TargetKind.DOMAIN, name, host.name if host else None)


def guest_target(guest: Guest, host: Host | None) -> Target:
    return Target(TargetKind.GUEST, guest.name, host.name if host else None)


def network_target(net: Network, host: Host | None) -> Target:
    return Target(TargetKind.NETWORK, net.name, host.name if host else None)


def endpoint_target(endpoint: Endpoint) -> Target:
    """A listener seen by a probe: ``address:port``, under the host name the operator gave."""
    return Target(TargetKind.ENDPOINT, endpoint.label, endpoint.host)


def _endpoint_order(endpoint: Endpoint) -> tuple[int, int, str, int]:
    import ipaddress

    try:
        ip = ipaddress.ip_address(endpoint.address)
        return (ip.version, int(ip), "", endpoint.port)
    except ValueError:
        return (9, 0, endpoint.address, endpoint.port)


def ambiguous_domain_names(inventory: Inventory) -> frozenset[str]:
    """The domain names that need their origin to tell targets apart: a name several domains share,
    and — until no two targets are the same — a name that equals another's ``name (origin)`` (a
    domain really named ``web (a.xml)`` beside two ``web``: their findings and fingerprints had merged)."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for dom in inventory.domains:
        (repeated if dom.name in seen else seen).add(dom.name)
    while repeated:
        owners: dict[str, str] = {}  # target name -> the raw name of the first domain showing it
        clash: set[str] = set()
        for dom in inventory.domains:
            shown = f"{dom.name} ({dom.origin})" if dom.name in repeated else dom.name
            first = owners.setdefault(shown, dom.name)
            if first != dom.name:
                clash |= {first, dom.name}
        clash -= repeated
        if not clash:  # unique now (or only clashes that another origin cannot untie)
            break
        repeated |= clash
    return frozenset(repeated)


def domains_by_target(inventory: Inventory) -> dict[Target, Domain]:
    """Each domain under the target its findings carry."""
    ambiguous = ambiguous_domain_names(inventory)
    return {domain_target(d, inventory.host, ambiguous): d for d in inventory.domains}


def inventory_targets(inventory: Inventory) -> list[tuple[Target, object]]:
    """Every target of an inventory with the fact it stands for, in report order: the host, then
    domains, guests and networks, each by name, then endpoints by address and port (so streamed
    output needs no global re-sort)."""
    host = inventory.host
    ambiguous = ambiguous_domain_names(inventory)
    out: list[tuple[Target, object]] = []
    if host is not None:
        out.append((host_target(host), host))
    out += sorted(((domain_target(d, host, ambiguous), d) for d in inventory.domains),
                  key=lambda pair: pair[0].name)
    out += sorted(((guest_target(g, host), g) for g in inventory.guests), key=lambda pair: pair[0].name)
    out += sorted(((network_target(n, host), n) for n in inventory.networks), key=lambda pair: pair[0].name)
    out += [(endpoint_target(e), e) for e in sorted(inventory.endpoints, key=_endpoint_order)]
    return out


# --- what is kept about each target --------------------------------------------------------------


class Component(NamedTuple):
    """One installed package of an OS root, for the SBOM."""

    manager: str  # dpkg | rpm | apk
    name: str
    version: str
    arch: str | None = None
    source: str | None = None  # source package, when it differs or is known


class OsInventory(Struct, frozen=True, kw_only=True):
    """An OS root's identity and installed packages (the host's own OS, or a guest's)."""

    os_id: str | None = None
    version_id: str | None = None
    pretty_name: str | None = None
    packages: tuple[Component, ...] = ()


def target_details(target: Target, fact: object) -> dict[str, Any]:
    """A few identifying facts of a target, JSON-able: shown by reporters and kept by the store."""
    if isinstance(fact, Host):
        return {
            "root": fact.root, "live": fact.live, "kernel_release": fact.kernel_release,
            "is_virtual": fact.virtualization.is_virtual, "hypervisor": fact.virtualization.hypervisor,
            "qemu_version": fact.qemu_version, "libvirt_version": fact.libvirt_version,
            "daemon_mode": fact.daemon_mode,
        }
    if isinstance(fact, Domain):
        return {"origin": fact.origin, "uuid": fact.uuid, "virt_type": fact.virt_type, "state": fact.state,
                "persistent": fact.persistent, "autostart": fact.autostart}
    if isinstance(fact, Guest):
        return {"origin": fact.origin, "domain": fact.domain,
                "os": fact.os.pretty_name or fact.os.id if fact.os else None,
                "packages": len(fact.packages) if fact.packages is not None else None,
                "disk_encryption": fact.disk.scheme if fact.disk else None,
                "consistency_note": fact.consistency_note}
    if isinstance(fact, Network):
        return {"origin": fact.origin, "forward_mode": fact.forward_mode, "active": fact.active}
    if isinstance(fact, Endpoint):
        return {"address": fact.address, "port": fact.port, "transport": fact.transport,
                "protocol": fact.protocol.value, "state": fact.state.value}
    return {}


def describe_inventory(inventory: Inventory
                       ) -> tuple[dict[Target, dict[str, Any]], dict[Target, OsInventory]]:
    """Details and OS inventories (SBOM) of an inventory's targets."""
    details: dict[Target, dict[str, Any]] = {}
    oses: dict[Target, OsInventory] = {}
    if inventory.host_os is not None:
        oses[host_target(inventory.host)] = os_inventory(inventory.host_os)
    from vmsec.listeners import domain_listeners, host_listeners, listeners_details

    # Domains and networks read from a copied host root name their files inside that root
    # (/etc/libvirt/qemu/web01.xml): keep the root, so a report can point at the real file.
    host = inventory.host
    root = (host.root if host is not None and inventory.source.startswith("host ") and host.root
            and host.root.startswith("/") and host.root != "/" else None)
    for target, fact in inventory_targets(inventory):
        details[target] = target_details(target, fact)
        if root is not None and isinstance(fact, Domain | Network):
            details[target]["root"] = root
        # The listeners the configuration predicts, kept so `vmsec probe --from-scan` can use them.
        listeners = (domain_listeners(fact, inventory.host, inventory) if isinstance(fact, Domain) else
                     host_listeners(fact, inventory) if isinstance(fact, Host) else ())
        if listeners:
            details[target]["listeners"] = listeners_details(listeners)
        if isinstance(fact, Guest):
            oses[target] = os_inventory(fact)
    return details, oses


def os_inventory(guest: Guest) -> OsInventory:
    os = guest.os
    return OsInventory(
        os_id=os.id if os else None, version_id=os.version_id if os else None,
        pretty_name=os.pretty_name if os else None,
        packages=tuple(Component(p.manager, p.name, p.version, p.arch, p.source)
                       for p in guest.packages or ()))


_STATUS_OF = attrgetter("status")
# Every status and severity at 0, copied per count (iterating an Enum class and reading ``.value``
# per member cost more than counting a target's findings).
_NO_STATUS = {s.value: 0 for s in Status}
_NO_SEVERITY = {s.value: 0 for s in Severity}


# --- findings, batched per target -----------------------------------------------------------------


class TargetBatch:
    """All findings of one target, as the engine emits them (in report order, each target once).

    ``fingerprints`` and ``counts`` are computed once per batch, for everything that needs them (the
    store, the JSON report, the scan's totals, the exit-code gate). A batch's findings are not changed
    once it is made (a selection or waivers make a new batch).
    """

    __slots__ = ("_counts", "_fingerprints", "findings", "target")

    def __init__(self, target: Target, findings: list[Finding]) -> None:
        self.target = target
        self.findings = findings
        self._fingerprints: list[str] | None = None
        self._counts: ScanCounts | None = None

    @property
    def fingerprints(self) -> list[str]:
        if self._fingerprints is None:
            self._fingerprints = fingerprints_of(self.findings)
        return self._fingerprints

    @property
    def counts(self) -> ScanCounts:
        """The batch's findings counted (treat as read-only: it is shared)."""
        if self._counts is None:
            self._counts = ScanCounts.of(self.findings)
        return self._counts

    def __iter__(self) -> Iterator[object]:  # unpacking: target, findings = batch
        return iter((self.target, self.findings))


class ScanCounts(Struct):
    """Totals kept while findings stream past (so a report's summary needs no second pass)."""

    by_status: dict[str, int] = field(default_factory=_NO_STATUS.copy)
    failed_by_severity: dict[str, int] = field(default_factory=_NO_SEVERITY.copy)
    findings: int = 0

    def add(self, findings: Sequence[Finding]) -> None:
        by_status, failed = self.by_status, self.failed_by_severity
        # Status and Severity are StrEnums: equal (and hashing equal) to their values.
        for status, n in Counter(map(_STATUS_OF, findings)).items():
            by_status[status] += n
        if by_status.get("FAIL"):
            fail = Status.FAIL
            for sev, n in Counter(f.severity for f in findings if f.status is fail).items():
                failed[sev] += n
        self.findings += len(findings)

    def merge(self, other: ScanCounts) -> None:
        for key, n in other.by_status.items():
            self.by_status[key] += n
        for key, n in other.failed_by_severity.items():
            self.failed_by_severity[key] += n
        self.findings += other.findings

    @classmethod
    def of(cls, findings: Sequence[Finding]) -> ScanCounts:
        counts = cls()
        counts.add(findings)
        return counts


class ScanResult(Struct, frozen=True, kw_only=True):
    """One scan: its findings (in report order: per target, each target's findings together), the
    targets with what is known about them, and what could not be read.

    ``findings`` is empty when the scan streamed its findings to sinks without keeping them
    (``retained`` is then False); ``counts`` always holds the totals.
    """

    source: str
    profile: str
    started_at: datetime
    finished_at: datetime
    checks_run: int
    findings: Sequence[Finding] = ()
    targets: tuple[Target, ...] = ()
    details: Mapping[Target, Mapping[str, Any]] = field(default_factory=dict)
    os_inventories: Mapping[Target, OsInventory] = field(default_factory=dict)
    records: tuple[CollectionRecord, ...] = ()
    counts: ScanCounts = field(default_factory=ScanCounts)
    retained: bool = True
    scan_id: int | None = None  # set when the scan is in a findings store
    store_error: str | None = None  # why the scan could not be stored (it was asked to be)
    inventory: Inventory | None = None  # the collected facts, for library callers; reporters never read it

    @property
    def errors(self) -> tuple[CollectionRecord, ...]:
        """Inputs that could not be read."""
        return tuple(r for r in self.records if not r.ok)

    @property
    def complete(self) -> bool:
        """False when an input could not be read or a check crashed."""
        return not self.errors and not self.counts.by_status.get(Status.ERROR.value)

    def batches(self) -> Iterator[TargetBatch]:
        """The retained findings grouped per target, in order; listed targets without findings too."""
        groups: dict[Target, list[Finding]] = {t: [] for t in self.targets}
        for f in self.findings:
            group = groups.get(f.target)
            if group is None:
                group = groups[f.target] = []
            group.append(f)
        for target, found in groups.items():
            yield TargetBatch(target, found)

    def target_details(self, target: Target) -> Mapping[str, Any]:
        return self.details.get(target, {})

    @classmethod
    def from_inventory(cls, inventory: Inventory, findings: Sequence[Finding], *, profile: str,
                       started_at: datetime, finished_at: datetime, checks_run: int,
                       targets: tuple[Target, ...] | None = None) -> ScanResult:
        """A result whose target details, SBOM and records come from ``inventory`` (tests, library)."""
        details, oses = describe_inventory(inventory)
        if targets is None:
            targets = tuple(t for t, _ in inventory_targets(inventory))
        return cls(source=inventory.source, profile=profile, started_at=started_at, finished_at=finished_at,
                   checks_run=checks_run, findings=findings, targets=targets, details=details,
                   os_inventories=oses, records=inventory.records, counts=ScanCounts.of(findings),
                   inventory=inventory)
