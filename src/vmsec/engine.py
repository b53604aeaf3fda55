"""The engine: runs checks over an inventory and turns results into findings.

Failures are isolated: a check that raises becomes one ERROR finding (with a short trace) and the
scan goes on; a check that needed a missing fact (:func:`vmsec.checks.api.need`) becomes UNKNOWN.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vmsec.checks.api import CheckSpec, Environment, FactMissing, Result, Scope
from vmsec.checks.catalog import Catalog
from vmsec.facts import Domain, Guest, Host, Inventory, Network
from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.profiles import Profile, default_profile

ProgressHook = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanResult:
    inventory: Inventory
    findings: tuple[Finding, ...]
    profile: str
    started_at: datetime
    finished_at: datetime
    checks_run: int
    targets: tuple[Target, ...] = field(default=())

    @property
    def complete(self) -> bool:
        """False when an input could not be read or a check crashed."""
        return not self.inventory.errors and not any(f.status is Status.ERROR for f in self.findings)


def host_target(host: Host | None) -> Target:
    return Target(TargetKind.HOST, host.name if host else "unknown-host")


def domain_target(dom: Domain, host: Host | None, ambiguous: frozenset[str] = frozenset()) -> Target:
    """The domain's target. Offline XML sets can hold several domains with one name (libvirt's own
    corpus names most of them QEMUGuest1): those are told apart by where they were read."""
    name = f"{dom.name} ({dom.origin})" if dom.name in ambiguous else dom.name
    return Target(TargetKind.DOMAIN, name, host.name if host else None)


def domains_by_target(inventory: Inventory) -> dict[Target, Domain]:
    """Each domain under the target its findings carry (reporters look details up with it)."""
    ambiguous = ambiguous_domain_names(inventory)
    return {domain_target(d, inventory.host, ambiguous): d for d in inventory.domains}


def ambiguous_domain_names(inventory: Inventory) -> frozenset[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for dom in inventory.domains:
        (repeated if dom.name in seen else seen).add(dom.name)
    return frozenset(repeated)


def guest_target(guest: Guest, host: Host | None) -> Target:
    return Target(TargetKind.GUEST, guest.name, host.name if host else None)


def network_target(net: Network, host: Host | None) -> Target:
    return Target(TargetKind.NETWORK, net.name, host.name if host else None)


def run_checks(inventory: Inventory, catalog: Catalog, profile: Profile | None = None,
               progress: ProgressHook | None = None,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> ScanResult:
    """Evaluate every applicable check of ``catalog`` on every target of ``inventory``."""
    profile = profile or default_profile()
    started = clock()
    # Checks are pure: the date they judge against (end of life, expiry) comes in as a parameter.
    params = {"today": started.date().isoformat(), **profile.params}
    ambiguous = ambiguous_domain_names(inventory)
    env = Environment(inventory=inventory, host=inventory.host, params=params,
                      multi_tenant=profile.multi_tenant, ambiguous_names=ambiguous)
    checks = [c for c in catalog.checks if c.id not in profile.disabled]
    by_scope: dict[Scope, list[CheckSpec]] = {scope: [] for scope in Scope}
    for spec in checks:
        by_scope[spec.scope].append(spec)
    severities = {spec.id: profile.severity_for(spec.id, spec.severity) for spec in checks}
    host = inventory.host
    findings: list[Finding] = []
    targets: list[Target] = []

    def run_scope(scope: Scope, subject: object, target: Target) -> None:
        # The hot loop of large scans (thousands of domains × ~100 checks): kept flat on purpose.
        append = findings.append
        for spec in by_scope[scope]:
            severity = severities[spec.id]
            try:
                # Materialise inside the try: a generator raises only when iterated.
                results = list(spec.func(subject, env) if spec.takes_env else spec.func(subject))
            except FactMissing as missing:
                results = [Result(Status.UNKNOWN, missing.subject or _default_subject(target),
                                  missing.reason)]
            except Exception as exc:  # a crashing check must not end the scan
                append(_error_finding(spec, exc, target, severity))
                continue
            for r in results:
                sev = severity if r.severity is None else profile.severity_for(spec.id, r.severity)
                append(Finding(check_id=spec.id, title=spec.title, status=r.status, severity=sev,
                               target=r.target or target, subject=r.subject, message=r.message,
                               evidence=r.evidence, tags=spec.tags + r.tags if r.tags else spec.tags,
                               remediation=spec.remediation, vulnerability=r.vulnerability))

    if host is not None:
        target = host_target(host)
        targets.append(target)
        if progress:
            progress(f"host {host.name}")
        run_scope(Scope.HOST, host, target)
    for dom in inventory.domains:
        target = domain_target(dom, host, ambiguous)
        targets.append(target)
        if progress:
            progress(f"domain {dom.name}")
        run_scope(Scope.DOMAIN, dom, target)
    if inventory.host_os is not None:
        # The hypervisor's own OS (SSH, accounts, sudo) is part of the management plane.
        run_scope(Scope.GUEST, inventory.host_os, host_target(host))
    for guest in inventory.guests:
        target = guest_target(guest, host)
        targets.append(target)
        if progress:
            progress(f"guest {guest.name}")
        run_scope(Scope.GUEST, guest, target)
    for net in inventory.networks:
        target = network_target(net, host)
        targets.append(target)
        run_scope(Scope.NETWORK, net, target)
    run_scope(Scope.INVENTORY, inventory, host_target(host))
    return ScanResult(inventory=inventory, findings=tuple(findings), profile=profile.name,
                      started_at=started, finished_at=clock(), checks_run=len(checks),
                      targets=tuple(targets))


def _error_finding(spec: CheckSpec, exc: Exception, target: Target, severity: Severity) -> Finding:
    trace = "".join(traceback.format_exception(exc, limit=-3)).strip()
    return Finding(check_id=spec.id, title=spec.title, status=Status.ERROR, severity=severity,
                   target=target, subject=_default_subject(target),
                   message=f"check crashed: {type(exc).__name__}: {exc}", tags=spec.tags,
                   remediation=spec.remediation, detail=trace[-2000:])


def _default_subject(target: Target) -> str:
    return f"{target.kind} {target.name}"
