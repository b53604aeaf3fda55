"""The libvirt collector: domains, networks, filters, pools and secrets' metadata through a libvirt URI.

It reads what libvirt reports (live XML for running domains, with the effective listen addresses
and ports) and hands every document to the same parsers the offline XML collector uses. What
cannot be read becomes a :class:`CollectionRecord` and the scan goes on.

Security notes:

- Domain XML is requested with ``VIR_DOMAIN_XML_SECURE`` so a console password shows as *set*.
  A read-only connection may not use that flag; then domains are read without it and passwords
  are *hidden* (unknown), never *absent*.
- Secret values are never read (``virSecretGetValue`` is not called), only their metadata.
- A hostile libvirt server could answer with huge lists or documents: both are bounded.

libvirt-python is optional and imported only inside the functions here.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from vmsec.errors import SourceUnavailable, VmsecError
from vmsec.facts import (
    CollectionRecord,
    CpuInfo,
    Domain,
    Guest,
    Host,
    Inventory,
    Network,
    NwFilter,
    Secret,
    StoragePool,
    evolve,
)

if TYPE_CHECKING:
    from vmsec.collectors import CollectContext
    from vmsec.specs import LibvirtSpec

ProgressHook = Callable[[str], None]

INSTALL_HINT = "libvirt-python is not installed: pip install 'vmsec[libvirt]'"
MAX_OBJECTS = 10_000  # per kind: far above any real host, bounds a hostile server's answer
MAX_XML_CHARS = 8 * 1024 * 1024

# virDomainState, in libvirt's numbering.
DOMAIN_STATES: dict[int, str] = {
    0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff",
    6: "crashed", 7: "pmsuspended",
}

# URI schemes whose local system/session instance runs on this machine's filesystem.
_LOCAL_DRIVERS = frozenset({"qemu", "kvm"})
_LOCAL_TRANSPORTS = frozenset({"", "unix"})
_LOCAL_PATHS = frozenset({"/system", "/session"})


def is_local_host_uri(uri: str) -> bool:
    """True when ``uri`` names the QEMU driver of this very machine (``qemu:///system``,
    ``qemu+unix:///session``), so host facts can be read from ``/``.

    Remote URIs, the test driver and ``qemu:///embed?root=…`` (a private root, not the host's
    daemon) are not: their host facts come from the libvirt API only.
    """
    parts = urllib.parse.urlsplit(uri)
    driver, _, transport = parts.scheme.partition("+")
    return (driver in _LOCAL_DRIVERS and transport in _LOCAL_TRANSPORTS
            and parts.hostname in (None, "") and parts.path.rstrip("/") in _LOCAL_PATHS)


def _import_libvirt() -> Any:
    try:
        import libvirt
    except ImportError as exc:
        raise SourceUnavailable(INSTALL_HINT) from exc
    # libvirt prints every error to stderr by default; errors here become records instead.
    libvirt.registerErrorHandler(_ignore_libvirt_error, None)
    return libvirt


def _ignore_libvirt_error(_ctx: object, _err: object) -> None:
    return None


def _error_text(exc: BaseException) -> str:
    get = getattr(exc, "get_error_message", None)
    message = get() if callable(get) else None
    return str(message or exc).strip() or type(exc).__name__


def collect_libvirt(uri: str = "qemu:///system", *, include_host: bool | None = None,
                    progress: ProgressHook | None = None, guests: bool = False,
                    key_file: str | None = None) -> Inventory:
    """Connect to ``uri`` and collect an :class:`Inventory` from it.

    The connection is opened read-write when allowed (needed to see whether console passwords are
    set), else read-only. ``include_host`` reads host facts from this machine's ``/``; it defaults
    to True for a local ``qemu:///system`` or ``qemu:///session`` URI. Otherwise the host is
    described from the libvirt API alone. ``guests`` also reads each domain's guest OS offline from
    its file-backed disk images (see :func:`_collect_guests`), decrypting LUKS ones with
    ``key_file`` (a passphrase file) when given.

    Raises :class:`SourceUnavailable` when libvirt-python is missing or the URI cannot be opened.
    """
    libvirt = _import_libvirt()
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as rw_exc:
        try:
            conn = libvirt.openReadOnly(uri)
        except libvirt.libvirtError as ro_exc:
            rw, ro = _error_text(rw_exc), _error_text(ro_exc)
            detail = rw if rw == ro else f"{rw}; read-only: {ro}"
            raise SourceUnavailable(f"cannot connect to libvirt at {uri}: {detail}") from ro_exc
    try:
        return collect_from_connection(conn, uri, include_host=include_host, progress=progress,
                                       guests=guests, key_file=key_file)
    finally:
        # Closing a broken connection must not hide the inventory.
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


class _Collection:
    """State of one collection run: the libvirt module, the connection and the records so far."""

    def __init__(self, libvirt: Any, conn: Any, uri: str, progress: ProgressHook | None) -> None:
        self.libvirt = libvirt
        self.conn = conn
        self.uri = uri
        self.progress = progress
        self.records: list[CollectionRecord] = []
        self.secure: bool | None = None  # decided on the first domain read
        self.driver = self._driver_name()

    def _driver_name(self) -> str:
        try:
            return str(self.conn.getType())
        except self.libvirt.libvirtError:
            return "unknown"

    def note(self, source: str, what: str, ok: bool, reason: str | None = None,
             started: float | None = None) -> None:
        duration = None if started is None else round(time.monotonic() - started, 6)
        self.records.append(CollectionRecord(source=source, what=what, ok=ok, reason=reason,
                                             duration_s=duration))

    def tell(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    def unsupported(self, exc: BaseException) -> bool:
        code = getattr(exc, "get_error_code", None)
        return callable(code) and code() == self.libvirt.VIR_ERR_NO_SUPPORT

    def denied(self, exc: BaseException) -> bool:
        code = getattr(exc, "get_error_code", None)
        return callable(code) and code() in (self.libvirt.VIR_ERR_OPERATION_DENIED,
                                             self.libvirt.VIR_ERR_ACCESS_DENIED)

    def list_all(self, method: str, kind: str) -> list[Any] | None:
        """Call ``conn.<method>()``; None (and a record) when the driver cannot list ``kind``."""
        started = time.monotonic()
        try:
            objects = list(getattr(self.conn, method)())
        except self.libvirt.libvirtError as exc:
            if self.unsupported(exc):
                # A driver without this API is a fact about the source, not an unreadable input:
                # the checks that need these objects say UNKNOWN; the scan is still complete.
                self.note(self.uri, kind, True,
                          f"the {self.driver} driver cannot list {kind}: {_error_text(exc)}", started)
            else:
                self.note(self.uri, kind, False, f"listing {kind} failed: {_error_text(exc)}", started)
            return None
        if len(objects) > MAX_OBJECTS:
            self.note(self.uri, kind, False,
                      f"{len(objects)} {kind} listed; only the first {MAX_OBJECTS} were read", started)
            objects = objects[:MAX_OBJECTS]
        return objects

    @contextlib.contextmanager
    def guarded(self, source: str, what: str) -> Iterator[None]:
        """Turn a failure reading or parsing one object into a record."""
        started = time.monotonic()
        try:
            yield
        except self.libvirt.libvirtError as exc:
            self.note(source, what, False, f"libvirt: {_error_text(exc)}", started)
        except VmsecError as exc:
            self.note(source, what, False, str(exc), started)
        except Exception as exc:  # one bad object must not end the scan
            self.note(source, what, False, f"{type(exc).__name__}: {exc}", started)


def _checked_xml(xml: str, origin: str) -> str:
    if len(xml) > MAX_XML_CHARS:
        raise VmsecError(f"{origin}: XML is {len(xml)} characters, over the {MAX_XML_CHARS} limit")
    return xml


def collect_from_connection(conn: Any, uri: str, *, include_host: bool | None = None,
                            progress: ProgressHook | None = None, guests: bool = False,
                            key_file: str | None = None) -> Inventory:
    """Collect an :class:`Inventory` over an already open libvirt connection (``virConnect``).

    ``uri`` names the source in facts and records. The caller keeps ownership of ``conn``.
    """
    libvirt = _import_libvirt()
    run = _Collection(libvirt, conn, uri, progress)
    started = time.monotonic()
    host = _collect_host(run, include_host)
    domains = _collect_domains(run)
    networks = _collect_networks(run)
    nwfilters = _collect_nwfilters(run)
    pools = _collect_pools(run)
    secrets = _collect_secrets(run)
    guest_oses = _collect_guests(run, domains, key_file) if guests else []
    run.note(uri, "libvirt inventory", True,
             f"{len(domains)} domains, {len(networks)} networks, {len(pools)} pools", started)
    return Inventory(host=host, domains=tuple(domains), networks=tuple(networks), nwfilters=nwfilters,
                     pools=tuple(pools), secrets=secrets, guests=tuple(guest_oses),
                     records=tuple(run.records), source=f"libvirt {uri}")


# --- domains --------------------------------------------------------------------------------------


def _domain_xml(run: _Collection, dom: Any, origin: str) -> tuple[str, bool]:
    """The domain's XML and whether it was read with the secure flag."""
    libvirt = run.libvirt
    if run.secure is not False:
        try:
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
            run.secure = True
            return _checked_xml(xml, origin), True
        except libvirt.libvirtError as exc:
            if not run.denied(exc):
                raise
            # A read-only connection may not see passwords: say so once, then read without.
            run.secure = False
            # Not an incomplete scan: password checks report UNKNOWN with this reason instead.
            run.note(run.uri, "domain XML (secure flag)", True,
                     "the connection may not read secure XML (read-only?); console passwords are "
                     f"hidden: {_error_text(exc)}")
    return _checked_xml(dom.XMLDesc(0), origin), False


def _live_state(run: _Collection, dom: Any, origin: str) -> dict[str, Any]:
    """state, persistent and autostart; a fact libvirt will not give stays None."""
    libvirt = run.libvirt
    facts: dict[str, Any] = {"state": None, "persistent": None, "autostart": None}
    try:
        code = int(dom.state()[0])
        facts["state"] = DOMAIN_STATES.get(code, f"state-{code}")
    except libvirt.libvirtError as exc:
        run.note(origin, "domain state", False, f"libvirt: {_error_text(exc)}")
    try:
        facts["persistent"] = bool(dom.isPersistent())
    except libvirt.libvirtError as exc:
        run.note(origin, "domain persistence", False, f"libvirt: {_error_text(exc)}")
    try:
        facts["autostart"] = bool(dom.autostart())
    except libvirt.libvirtError as exc:
        run.note(origin, "domain autostart", False, f"libvirt: {_error_text(exc)}")
    return facts


def _collect_domains(run: _Collection) -> list[Domain]:
    from vmsec.parsers.domain_xml import parse_domain

    found = run.list_all("listAllDomains", "domains")
    if found is None:
        return []
    started = time.monotonic()
    domains: list[Domain] = []
    for dom in found:
        name = _object_name(run, dom)
        origin = f"{run.uri}#{name}"
        run.tell(f"domain {name}")
        with run.guarded(origin, "domain XML"):
            xml, secure = _domain_xml(run, dom, origin)
            parsed = parse_domain(xml, origin, secure=secure)
            domains.append(evolve(parsed, **_live_state(run, dom, origin)))
    run.note(run.uri, "domains", True, f"{len(domains)} of {len(found)} read", started)
    return domains


def _object_name(run: _Collection, obj: Any) -> str:
    try:
        return str(obj.name())
    except run.libvirt.libvirtError:
        try:
            return str(obj.UUIDString())
        except run.libvirt.libvirtError:
            return "?"


# --- guest operating systems from the domains' disk images -------------------------------------

RUNNING_NOTE = "read from the disk of a running VM; contents may be inconsistent"
_ACTIVE_STATES = frozenset({"running", "blocked", "paused", "pmsuspended"})


def _collect_guests(run: _Collection, domains: list[Domain], key_file: str | None) -> list[Guest]:
    """One :class:`Guest` per domain whose file-backed disks hold a readable OS (or are encrypted).

    Each ``type='file'`` disk (not a CD-ROM) is opened read-only with the image collector, in XML
    order; the first that yields an OS wins. Backing files are followed only inside the disk's own
    directory and the directories of the backing files libvirt itself lists. A running domain's
    disk is read all the same, with a consistency note on the guest. Failures are records.
    """
    from vmsec.collectors.image import guest_from_image

    found: list[Guest] = []
    for domain in domains:
        running = domain.state in _ACTIVE_STATES
        fallback: Guest | None = None
        chosen: Guest | None = None
        for disk in domain.disks:
            if disk.type != "file" or disk.device != "disk" or not disk.source_file:
                continue
            path = disk.source_file
            origin = f"{run.uri}#{domain.name} {path}"
            allowed = [os.path.dirname(b.source) for b in disk.backing_chain or ()
                       if b.source and b.source.startswith("/")]
            run.tell(f"guest disk {path} of {domain.name}")
            with run.guarded(path, f"guest disk image of {domain.name}"):
                guest, records = guest_from_image(path, name=domain.name, domain=domain.name,
                                                  key_file=key_file, allowed_dirs=allowed)
                run.records.extend(records)
                guest = evolve(guest, origin=origin,
                                            consistency_note=RUNNING_NOTE if running else None)
                if guest.os is not None or guest.accounts is not None:
                    chosen = guest
                    break
                fallback = fallback or guest
        if chosen or fallback:
            found.append(chosen or fallback)  # type: ignore[arg-type]
    return found


# --- networks, filters, pools, secrets ----------------------------------------------------------


def _flag(run: _Collection, call: Callable[[], Any], origin: str, what: str) -> bool | None:
    try:
        return bool(call())
    except run.libvirt.libvirtError as exc:
        run.note(origin, what, False, f"libvirt: {_error_text(exc)}")
        return None


def _collect_networks(run: _Collection) -> list[Network]:
    from vmsec.parsers.libvirt_objects import parse_network

    found = run.list_all("listAllNetworks", "networks")
    if found is None:
        return []
    networks: list[Network] = []
    for net in found:
        name = _object_name(run, net)
        origin = f"{run.uri}#network/{name}"
        run.tell(f"network {name}")
        with run.guarded(origin, "network XML"):
            parsed = parse_network(_checked_xml(net.XMLDesc(0), origin), origin)
            networks.append(evolve(
                parsed, active=_flag(run, net.isActive, origin, "network active"),
                autostart=_flag(run, net.autostart, origin, "network autostart")))
    return networks


def _collect_nwfilters(run: _Collection) -> tuple[NwFilter, ...] | None:
    from vmsec.parsers.libvirt_objects import parse_nwfilter

    found = run.list_all("listAllNWFilters", "network filters")
    if found is None:
        return None
    filters: list[NwFilter] = []
    complete = True
    for flt in found:
        name = _object_name(run, flt)
        origin = f"{run.uri}#nwfilter/{name}"
        before = len(filters)
        with run.guarded(origin, "network filter XML"):
            filters.append(parse_nwfilter(_checked_xml(flt.XMLDesc(0), origin), origin))
        complete = complete and len(filters) > before
    # A filter that could not be read leaves the set of defined filters unknown: a check asking
    # "is filter X defined?" must not get a confident "no".
    return tuple(filters) if complete else None


def _collect_pools(run: _Collection) -> list[StoragePool]:
    from vmsec.parsers.libvirt_objects import parse_pool

    found = run.list_all("listAllStoragePools", "storage pools")
    if found is None:
        return []
    pools: list[StoragePool] = []
    for pool in found:
        name = _object_name(run, pool)
        origin = f"{run.uri}#pool/{name}"
        with run.guarded(origin, "storage pool XML"):
            parsed = parse_pool(_checked_xml(pool.XMLDesc(0), origin), origin)
            pools.append(evolve(
                parsed, active=_flag(run, pool.isActive, origin, "storage pool active")))
    return pools


def _collect_secrets(run: _Collection) -> tuple[Secret, ...] | None:
    from vmsec.parsers.libvirt_objects import parse_secret

    found = run.list_all("listAllSecrets", "secrets")
    if found is None:
        return None
    secrets: list[Secret] = []
    complete = True
    for sec in found:
        try:
            ident = str(sec.UUIDString())
        except run.libvirt.libvirtError:
            ident = "?"
        origin = f"{run.uri}#secret/{ident}"
        before = len(secrets)
        # Metadata only: virSecretGetValue is never called.
        with run.guarded(origin, "secret XML"):
            secrets.append(parse_secret(_checked_xml(sec.XMLDesc(0), origin), origin))
        complete = complete and len(secrets) > before
    return tuple(secrets) if complete else None


# --- host -----------------------------------------------------------------------------------------


def _collect_host(run: _Collection, include_host: bool | None) -> Host:
    uri = run.uri
    if not uri:
        try:
            uri = str(run.conn.getURI())  # the default URI libvirt chose
        except run.libvirt.libvirtError:
            uri = ""
    if include_host is None:
        include_host = is_local_host_uri(uri)
    api_host = _host_from_api(run)
    if not include_host:
        return api_host
    from vmsec.collectors.host import collect_host
    from vmsec.collectors.reader import RootReader

    run.tell("host /")
    host, records = collect_host(RootReader("/"), live=True)
    run.records.extend(records)
    # Versions the host files did not reveal may still be known to the daemon.
    return evolve(
        host,
        libvirt_version=host.libvirt_version or api_host.libvirt_version,
        qemu_version=host.qemu_version or api_host.qemu_version)


def _version_text(number: int) -> str:
    """libvirt encodes versions as major * 1,000,000 + minor * 1,000 + release."""
    return f"{number // 1_000_000}.{number // 1_000 % 1_000}.{number % 1_000}"


def _host_from_api(run: _Collection) -> Host:
    """A host described only by what the libvirt API says; everything else stays unknown."""
    libvirt, conn, uri = run.libvirt, run.conn, run.uri
    started = time.monotonic()
    name = uri or "libvirt"
    libvirt_version = qemu_version = None
    cpu = None
    problems: list[str] = []
    try:
        name = str(conn.getHostname())
    except libvirt.libvirtError as exc:
        problems.append(f"hostname: {_error_text(exc)}")
    try:
        libvirt_version = _version_text(int(conn.getLibVersion()))
    except libvirt.libvirtError as exc:
        problems.append(f"libvirt version: {_error_text(exc)}")
    if run.driver == "QEMU":  # other drivers report their own hypervisor's version here
        try:
            qemu_version = _version_text(int(conn.getVersion()))
        except libvirt.libvirtError as exc:
            problems.append(f"QEMU version: {_error_text(exc)}")
    try:
        cpu = _cpu_from_capabilities(conn.getCapabilities(), f"{uri}#capabilities",
                                     _logical_cpus(run))
    except libvirt.libvirtError as exc:
        problems.append(f"capabilities: {_error_text(exc)}")
    except VmsecError as exc:
        problems.append(f"capabilities: {exc}")
    run.note(uri, "host facts from the libvirt API", not problems, "; ".join(problems) or None, started)
    return Host(name=name, root=uri, live=False, cpu=cpu, libvirt_version=libvirt_version,
                qemu_version=qemu_version)


def _logical_cpus(run: _Collection) -> int | None:
    try:
        return int(run.conn.getInfo()[2])
    except (run.libvirt.libvirtError, IndexError, TypeError, ValueError):
        return None


def _cpu_from_capabilities(xml: str, origin: str, logical_cpus: int | None) -> CpuInfo | None:
    """The host CPU from the capabilities XML; None when libvirt lists no CPU features there
    (the test driver's fake host), since an empty flag set would wrongly read as "no vmx/svm"."""
    from vmsec.parsers.safexml import parse_xml

    root = parse_xml(xml, origin)
    cpu = root.find("host/cpu")
    if cpu is None:
        return None
    flags = frozenset(f.get("name", "") for f in cpu.findall("feature")) - {""}
    if not flags:
        return None
    return CpuInfo(vendor=(cpu.findtext("vendor") or None), model_name=(cpu.findtext("model") or None),
                   flags=flags, logical_cpus=logical_cpus)


def collect(spec: LibvirtSpec, context: CollectContext) -> Inventory:
    """The collector interface (``vmsec.collectors``): a libvirt connection URI."""
    return collect_libvirt(spec.uri, include_host=spec.include_host, progress=context.step,
                           guests=spec.guests is not None, key_file=spec.key_file)
