"""What runs: the host's mandatory access control as the kernel enforces it, reboots and restarts that
security updates are still waiting for, VMs whose QEMU predates its last upgrade, and listeners that
are open now — libvirt's TCP port, each VM's console and device ports, tied to their domains.

These checks judge :class:`~vmsec.facts.RuntimeState` facts, which exist only for a running system
(``scan host`` on ``/``, a guest over SSH or through its agent). For a copied root or a disk image
they do not apply (nothing runs there), except the host's LSM mode, which stays UNKNOWN offline.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.text import other_names
from vmsec.facts import Domain, Guest, Host, Listener, QemuProcess, RuntimeState, SocketUnit
from vmsec.facts.domain import PasswordState
from vmsec.findings import Evidence
from vmsec.parsers.libvirt_defaults import DAEMON_CONF_DEFAULTS

_NEEDRESTART = "https://github.com/liske/needrestart/blob/master/README.md"
MAX_REPORTED = 50  # per check and target: the rest is summarised


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p)


@check("VMS-LIVE-001", title="The host enforces AppArmor or SELinux", severity=Severity.HIGH,
       tags=(Tag.ISOLATION, "lsm", "apparmor", "selinux", "svirt"),
       references=("https://libvirt.org/drvqemu.html#security-driver",
                   "https://docs.kernel.org/admin-guide/LSM/index.html"))
def host_mac_enforcing(host: Host) -> Iterator[Result]:
    """sVirt — libvirt's per-VM AppArmor profile or SELinux label — is what keeps a compromised QEMU
    from opening other VMs' disks and sockets. It works only when the host kernel runs AppArmor or
    SELinux in enforcing mode: in complain/permissive mode, or without either LSM, the profiles and
    labels log violations and stop nothing. The mode is a fact of the running kernel
    (/sys/kernel/security/lsm, /sys/fs/selinux/enforce, AppArmor's parameters), not of a file.

    Remediation: Boot with AppArmor (`apparmor=1 security=apparmor`, Debian/Ubuntu's default) or
    SELinux enforcing (`SELINUX=enforcing` in /etc/selinux/config, RHEL's default), and keep
    `security_driver` in qemu.conf at its default.
    """
    runtime = host.runtime
    if runtime is None:
        yield unknown("LSM", "offline root: the LSM mode is a property of the running kernel, not of files")
        return
    lsm = runtime.lsm
    if lsm is None:
        yield unknown("LSM", runtime.reason("lsm"))
        return
    where = tuple(ev(line.partition(": ")[0], "", line.partition(": ")[2]) for line in lsm.evidence)
    if lsm.selinux == "enforcing":
        yield ok("SELinux", "SELinux is enforcing", *where)
        return
    if lsm.apparmor == "enforce" and (lsm.apparmor_profiles is None or lsm.apparmor_profiles.get("enforce")):
        count = f" ({lsm.apparmor_profiles['enforce']} profiles in enforce mode)" if lsm.apparmor_profiles \
            else ""
        yield ok("AppArmor", f"AppArmor is enforcing{count}", *where)
        return
    if lsm.selinux == "permissive":
        yield fail("SELinux", "SELinux is permissive: sVirt labels are logged, not enforced", *where)
    elif lsm.apparmor in ("complain", "enforce"):
        yield fail("AppArmor", "AppArmor is on but confines nothing in enforce mode: sVirt profiles are "
                   "not enforced", *where)
    elif lsm.apparmor == "disabled" and lsm.selinux == "disabled":
        stack = ",".join(lsm.stack) if lsm.stack else "no AppArmor, no SELinux"
        yield fail("LSM", f"neither AppArmor nor SELinux runs ({stack}): sVirt cannot confine QEMU", *where)
    else:
        yield unknown("LSM", f"AppArmor: {lsm.apparmor or 'unknown'}, SELinux: {lsm.selinux or 'unknown'}",
                      *where)


@check("VMS-LIVE-002", title="The running kernel is the newest installed one", severity=Severity.MEDIUM,
       tags=(Tag.PATCHING, "kernel", "reboot"), references=(_NEEDRESTART,))
def kernel_current(guest: Guest) -> Iterator[Result]:
    """A kernel update protects nothing until the system reboots into it: the vulnerable kernel keeps
    running, however current the package list looks. A hypervisor's kernel is the KVM half of every
    VM's isolation.

    Remediation: Reboot into the newest kernel (migrate or shut down the VMs first), or live-patch.
    """
    runtime = guest.runtime
    if runtime is None or runtime.kernel is None:
        return  # offline: nothing runs
    kernel = runtime.kernel
    running = kernel.running
    if running is None:
        yield unknown("kernel", "the running kernel release could not be read")
        return
    where = ev("/proc/sys/kernel/osrelease", "running", running)
    if kernel.reboot_required_file:
        yield fail("kernel", f"the system asks for a reboot (/run/reboot-required) while running {running}",
                   where, ev("/run/reboot-required", "", "present"))
        return
    if not kernel.installed:
        yield unknown("kernel", f"runs {running}; no installed kernel image is visible (a container, or a "
                      "kernel booted from outside this root)", where)
        return
    newest = kernel.newest or running
    if running not in kernel.installed:
        yield fail("kernel", f"runs {running}, which is no longer installed; newest installed: {newest}",
                   where, ev("/boot, packages", "installed", kernel.installed))
    elif _natural_key(newest) > _natural_key(running):
        yield fail("kernel", f"runs {running}; {newest} is installed: reboot to apply it", where,
                   ev("/boot, packages", "newest", newest))
    elif kernel.running_build and kernel.installed_build and kernel.installed_build != kernel.running_build:
        yield fail("kernel", f"runs build {kernel.running_build} of {running}; build "
                   f"{kernel.installed_build} is installed: reboot to apply it", where,
                   ev("/proc/version", "build", kernel.running_build))
    else:
        yield ok("kernel", f"runs {running}, the newest installed kernel", where)


def _is_qemu(name: str) -> bool:
    return name.startswith("qemu-system-") or name == "qemu-kvm"


@check("VMS-LIVE-003", title="No process runs replaced binaries or libraries", severity=Severity.MEDIUM,
       tags=(Tag.PATCHING, "restart", "needrestart"), references=(_NEEDRESTART,))
def restart_needed(guest: Guest) -> Iterator[Result]:
    """An upgrade replaces files on disk; processes started before it keep the old code mapped — a
    patched OpenSSL does not protect a daemon that still runs the vulnerable copy. The kernel marks
    such mappings "(deleted)" in /proc/PID/maps, which is what needrestart reads. (QEMU processes
    are judged per VM by VMS-LIVE-004.)

    Remediation: Restart the services named (`needrestart -r a`, or `systemctl restart UNIT`); for a
    process started by hand, restart it.
    """
    runtime = guest.runtime
    if runtime is None:
        return
    if runtime.processes is None:
        yield unknown("processes", runtime.reason("processes"))
        return
    stale = []
    unreadable: list[str] = []
    for proc in runtime.processes:
        name = proc.exe.rsplit("/", 1)[-1] if proc.exe else proc.comm
        if _is_qemu(name):
            continue
        files = tuple(proc.stale_files or ())
        if proc.exe_deleted and proc.exe:
            files = (proc.exe, *files)
        if files:
            stale.append((proc, name, files))
        elif proc.stale_files is None:
            unreadable.append(f"pid {proc.pid} {name}")
    for proc, name, files in stale[:MAX_REPORTED]:
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        yield fail(f"pid {proc.pid} {name}", f"{name} (pid {proc.pid}) still runs replaced code: {shown}",
                   ev(f"/proc/{proc.pid}/maps", "(deleted)", ", ".join(files[:10])))
    if len(stale) > MAX_REPORTED:
        yield fail("processes", f"{len(stale) - MAX_REPORTED} more processes run replaced code",
                   ev("/proc/*/maps", "(deleted)", len(stale)))
    if not stale:
        if unreadable:
            # Named rather than guessed at: as root too a map can be refused (a process of another
            # user namespace, Yama's ptrace_scope 3, a hardened kernel).
            more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
            shown = ", ".join(unreadable[:5]) + more
            yield unknown("processes", f"no examined process runs replaced code, but the memory maps of "
                          f"{len(unreadable)} could not be read ({shown})",
                          ev("/proc/*/maps", "unreadable", len(unreadable)))
        elif runtime.processes_unread:  # the processes it lacks may run replaced code
            yield unknown("processes", f"none of {len(runtime.processes)} processes seen runs replaced code, "
                          f"but {runtime.processes_unread}", ev("/proc", "processes", "incomplete"))
        else:
            yield ok("processes", f"none of {len(runtime.processes)} processes runs replaced code",
                     ev("/proc/*/maps", "(deleted)", "none"))


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "at an unknown time"
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _qemu_subject(q: QemuProcess) -> str:
    return f"domain {q.domain} (pid {q.pid})" if q.domain else f"QEMU pid {q.pid}"


def _fixed_since(q: QemuProcess) -> tuple[str, Severity | None]:
    if q.fixed_since is None:
        return (f"; the vulnerabilities fixed since cannot be listed: {q.fixed_since_reason}"
                if q.fixed_since_reason else ""), None
    if not q.fixed_since:
        return "; no known vulnerability was fixed between the two versions", None
    ids = ", ".join(m.vuln_id for m in q.fixed_since[:8])
    more = f" and {len(q.fixed_since) - 8} more" if len(q.fixed_since) > 8 else ""
    return f"; fixed since: {ids}{more}", Severity.CRITICAL if any(
        (m.severity or "").lower() in ("critical", "high", "important") for m in q.fixed_since) else None


@check("VMS-LIVE-004", title="Every running VM's QEMU is the installed, patched QEMU", severity=Severity.HIGH,
       tags=(Tag.PATCHING, Tag.ISOLATION, "qemu", "restart", "vm-escape-surface"),
       references=(_NEEDRESTART, "https://www.qemu.org/docs/master/system/security.html"))
def qemu_current(host: Host) -> Iterator[Result]:
    """QEMU is the process a guest attacks to escape. A QEMU update replaces the binary on disk, but a
    VM keeps running the QEMU it was started with until it is restarted or migrated: the host looks
    patched while every old VM is still exposed. The kernel marks the replaced binary and libraries
    "(deleted)"; the dpkg log says which version each VM started with, and the advisory data which
    vulnerabilities were fixed since.

    Remediation: Restart or live-migrate each VM named (`virsh shutdown` + `virsh start`, or `virsh
    migrate --live` to a patched host and back): a reboot from inside the guest keeps the same QEMU.
    """
    runtime = host.runtime
    if runtime is None:
        return
    if runtime.qemu is None:
        yield unknown("QEMU processes", runtime.reason("qemu"))
        return
    if not runtime.qemu:
        if runtime.processes_unread:  # QEMU runs as another user: hidepid hides exactly it
            yield unknown("QEMU processes", f"no QEMU process is seen, but {runtime.processes_unread}",
                          ev(runtime.source, "qemu-system-*", "none seen"))
        else:
            yield ok("QEMU processes", "no QEMU process runs", ev(runtime.source, "qemu-system-*", "none"))
        return
    if runtime.processes_unread:  # the VMs seen are judged below; others may run unseen
        yield unknown("QEMU processes", f"only the QEMU processes seen ({len(runtime.qemu)}) are judged; "
                      f"others may run unseen: {runtime.processes_unread}",
                      ev("/proc", "processes", "incomplete"))
    for q in runtime.qemu:
        subject = _qemu_subject(q)
        files = q.stale_files or ()
        version = ""
        if q.running_version and q.installed_version and q.running_version != q.installed_version:
            version = f" (started with {q.package} {q.running_version}; {q.installed_version} is installed)"
        where = [ev(f"/proc/{q.pid}/exe", "binary", q.exe or "unknown")]
        if q.running_version_origin:
            where.append(ev("/var/log/dpkg.log", "version at start", q.running_version_origin))
        if files or q.exe_deleted:
            note, severity = _fixed_since(q)
            shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
            where.append(ev(f"/proc/{q.pid}/maps", "(deleted)", ", ".join(files[:10])))
            yield fail(subject, f"{subject} started {_when(q.started_at)} and still runs replaced code: "
                       f"{shown}{version}{note}", *where, severity=severity)
        elif q.exe_deleted is None and q.stale_files is None:
            yield unknown(subject, f"{subject}: its binary and memory map could not be read", *where)
        else:
            yield ok(subject, f"{subject} runs the installed QEMU binary and libraries", *where)


_LIBVIRT_DAEMONS = frozenset({"libvirtd", "virtproxyd"})
# Under socket activation systemd holds the daemons' plain TCP port for them (it starts the daemon on
# the first connection, and libvirtd exits again when idle): the units are "{daemon}-tcp.socket", as in
# checks/daemon/remote.py, on libvirt's tcp_port (16509) unless their ListenStream= says otherwise.
_LIBVIRT_TCP_UNITS = frozenset(f"{d}-tcp.socket" for d in _LIBVIRT_DAEMONS)
_DEFAULT_TCP_PORT = int(str(DAEMON_CONF_DEFAULTS["tcp_port"]))


def _tls_ports(host: Host) -> set[int]:
    ports = set()
    for conf in host.daemon_confs:
        setting = conf.setting("tls_port")
        value = setting.value if setting is not None else None
        if isinstance(value, str) and value.isascii() and value.isdigit():
            ports.add(int(value))
        elif isinstance(value, int):
            ports.add(value)
    return ports or {16514}


def _tcp(listeners: tuple[Listener, ...] | None) -> list[Listener]:
    return [lst for lst in listeners or () if lst.protocol in ("tcp", "tcp6")]


def _stream_port(value: str) -> int | None:
    """The TCP port of a ListenStream= value (systemd.socket(5)): "16509", "0.0.0.0:16509",
    "[::]:16509"; None for a UNIX socket path, an abstract name or a vsock address."""
    if value.startswith(("/", "@", "vsock:")):
        return None
    port = value.rsplit(":", 1)[-1]
    return int(port) if port.isascii() and port.isdigit() else None


def _unit_of(host: Host, runtime: RuntimeState, lst: Listener) -> tuple[SocketUnit | None, str | None]:
    """The libvirt TCP socket unit systemd holds ``lst`` for; else None and, when it may be one, why
    that cannot be told (None: it is not libvirt's)."""
    if host.socket_units is None:
        if lst.port == _DEFAULT_TCP_PORT:
            return None, (f"systemd holds {lst.endpoint}, libvirt's default TCP port, and the systemd socket "
                          "units could not be read to tell for which unit")
        return None, None
    # systemd's active units (over D-Bus) say which unit listens now; without them, "enabled" stands in.
    active = {s.name for s in runtime.services or ()} if runtime.services_source == "systemd" else None
    units = [u for u in host.socket_units if u.name in _LIBVIRT_TCP_UNITS]
    for unit in units:
        if lst.port not in {_stream_port(v) for v in unit.listen_streams}:
            continue
        if active is not None:
            if unit.name in active:
                return unit, None
            continue  # not active: another unit listens there
        if unit.enabled:
            return unit, None
        state = "whether it is enabled could not be read" if unit.enabled is None else \
            "it is not enabled, but may have been started without being enabled"
        return None, (f"systemd holds {lst.endpoint}, the port {unit.name} names; {state} (systemd's "
                      "active units could not be asked)")
    for unit in units:  # an unread unit file or drop-in may have moved the unit to this port
        if unit.problem and (unit.name in active if active is not None else unit.enabled is not False):
            return None, f"systemd holds {lst.endpoint}, and {unit.name} was not fully read: {unit.problem}"
    return None, None


@check("VMS-LIVE-005", title="No libvirt daemon listens for plain TCP from the network",
       severity=Severity.HIGH,
       tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "libvirtd", "tcp", "listener"),
       references=("https://libvirt.org/remote.html#transports",))
def libvirt_tcp_listener(host: Host) -> Iterator[Result]:
    """libvirt's plain TCP transport (port 16509) is unencrypted: whatever authenticates on it, the
    management traffic — domain XML, console passwords, migration streams — crosses the network in
    clear. Configuration says what the daemon would do; the socket table says what it does now, for
    whichever daemon (or socket unit) holds the port.

    Remediation: `listen_tcp = 0` in libvirtd.conf and disable libvirtd-tcp.socket; use TLS (16514)
    or SSH tunnels (`qemu+ssh://`).
    """
    runtime = host.runtime
    if runtime is None:
        return
    if runtime.listeners is None:
        yield unknown("libvirt TCP", runtime.reason("listeners"))
        return
    tls = _tls_ports(host)
    daemon = [lst for lst in _tcp(runtime.listeners) if _LIBVIRT_DAEMONS & set(lst.processes)]
    # systemd holding a port for a libvirt socket unit is libvirt listening, the daemon started or not
    activated: list[tuple[Listener, SocketUnit]] = []
    unsure: list[tuple[Listener, str]] = []
    for lst in _tcp(runtime.listeners):
        if "systemd" not in lst.processes or lst in daemon:
            continue
        unit, why = _unit_of(host, runtime, lst)
        if unit is not None:
            activated.append((lst, unit))
        elif why and not lst.loopback_only:  # loopback would pass whoever holds it
            unsure.append((lst, why))
    for lst, unit in activated:
        evidence: list[Evidence] = [
            ev(f"/proc/net/{lst.protocol}", f"pid {','.join(map(str, lst.pids))} systemd", lst.endpoint),
            ev(unit.path or unit.name, "ListenStream", ", ".join(unit.listen_streams))]
        if runtime.services_source == "systemd":
            evidence.append(ev(runtime.source, unit.name, "active"))
        else:
            evidence.append(ev(unit.path or unit.name, "enabled", True))
        if unit.problem:
            evidence.append(ev(unit.path or unit.name, "not fully read", unit.problem))
        subject = f"{unit.name} {lst.endpoint}"
        if lst.loopback_only:
            yield ok(subject, f"systemd listens for plain TCP on {lst.endpoint} for {unit.name}: "
                     "loopback only", *evidence)
        else:
            daemon_name = unit.name.removesuffix("-tcp.socket")
            yield fail(subject, f"systemd listens for plain, unencrypted TCP on {lst.endpoint} for "
                       f"{unit.name} ({daemon_name} starts on the first connection)", *evidence)
    for lst, why in unsure:
        yield unknown(f"systemd {lst.endpoint}", f"{why}: it may be libvirt's plain TCP listener",
                      ev(f"/proc/net/{lst.protocol}", f"pid {','.join(map(str, lst.pids))} systemd",
                         lst.endpoint))
    if not daemon and not activated:
        # tcp_port, --listen and a socket unit's ListenStream can put libvirt on any port: a listener
        # beyond loopback whose holder was not seen may be it (on a TLS port it would pass anyway).
        unowned = [lst for lst in _tcp(runtime.listeners)
                   if not lst.pids and not lst.loopback_only and lst.port not in tls]
        if unowned and runtime.sockets_unread:
            shown = other_names([lst.endpoint for lst in unowned[:6]], len(unowned), limit=5)
            yield unknown("libvirt TCP", f"no libvirt daemon is seen holding a TCP listener, but who holds "
                          f"{shown} is unknown: {runtime.sockets_unread}",
                          ev("/proc/net/tcp", "holder unknown", shown))
            return
        if not unsure:
            yield ok("libvirt TCP", "no libvirt daemon holds a TCP listener",
                     ev("/proc/net/tcp", "libvirtd/virtproxyd", "no listener"))
        return
    for lst in daemon:
        who = "/".join(lst.processes)
        where = ev(f"/proc/net/{lst.protocol}", f"pid {','.join(map(str, lst.pids))} {who}", lst.endpoint)
        if lst.port in tls:
            yield ok(f"{who} {lst.endpoint}", f"{who} listens on {lst.endpoint} with TLS", where)
        elif lst.loopback_only:
            yield ok(f"{who} {lst.endpoint}", f"{who} listens for plain TCP on {lst.endpoint}: loopback only",
                     where)
        else:
            yield fail(f"{who} {lst.endpoint}", f"{who} listens for plain, unencrypted TCP on {lst.endpoint}",
                       where)


def _device_of(port: int | None, domain: Domain | None) -> tuple[str, bool | None]:
    """What a QEMU port is for, from the domain's configuration, and whether it needs a password."""
    if domain is None or port is None:
        return "a port", None
    for g in domain.graphics:
        if port in (g.port, g.tls_port):
            secured = g.password is PasswordState.SET or bool(g.auth) or port == g.tls_port
            return f"the {g.type.upper()} console", secured
        if port == g.websocket:
            return f"the {g.type.upper()} websocket", g.password is PasswordState.SET or bool(g.auth)
    return "a port", None


@check("VMS-LIVE-006", title="Running VMs expose consoles and device ports only on loopback",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "console", "vnc", "spice", "listener"),
       references=("https://libvirt.org/formatdomain.html#graphical-framebuffers",))
def qemu_listeners(host: Host, env: Environment) -> Iterator[Result]:
    """Each QEMU process listens for its VNC/SPICE consoles, websockets, TCP character devices and
    incoming migrations. The domain XML says what should listen; the socket table says what does,
    for each running VM (named by its ``-name guest=``): a console bound to every address reaches
    whoever reaches the host, and without a password it is the guest's keyboard and screen.

    Remediation: Bind consoles to 127.0.0.1 (`<listen type='address' address='127.0.0.1'/>`, or
    `vnc_listen`/`spice_listen` in qemu.conf) and reach them over SSH or TLS; set passwords or SASL.
    """
    runtime = host.runtime
    if runtime is None:
        return
    if runtime.qemu is None or runtime.listeners is None:
        yield unknown("QEMU listeners", runtime.reason("qemu" if runtime.qemu is None else "listeners"))
        return
    domains = {d.name: d for d in env.inventory.domains}
    if runtime.processes_unread:
        # A QEMU missing from the process table is judged by nothing below: a listener beyond loopback
        # whose holder was not seen may be its console.
        unowned = [lst for lst in _tcp(runtime.listeners) if not lst.pids and not lst.loopback_only]
        if unowned:
            shown = other_names([lst.endpoint for lst in unowned[:6]], len(unowned), limit=5)
            yield unknown("QEMU listeners", f"a QEMU this scan cannot see may hold {shown}: "
                          f"{runtime.processes_unread}", ev("/proc/net/tcp", "holder unknown", shown))
    for q in runtime.qemu:
        subject = _qemu_subject(q)
        if q.listeners is None:  # no socket of it was seen: "none beyond loopback" is unproven
            yield unknown(subject, f"what {subject} listens on is unknown: "
                          f"{q.listeners_reason or 'its descriptors were not read'}",
                          ev(f"/proc/{q.pid}/fd", "sockets", "not read"))
            continue
        exposed = [lst for lst in _tcp(q.listeners) if not lst.loopback_only]
        for lst in exposed:
            what, secured = _device_of(lst.port, domains.get(q.domain or ""))
            where = ev(f"/proc/net/{lst.protocol}", f"pid {q.pid}", lst.endpoint)
            if secured is False:
                yield fail(subject, f"{what} of {subject} listens on {lst.endpoint} without a password",
                           where, severity=Severity.CRITICAL)
            else:
                yield fail(subject, f"{what} of {subject} listens on {lst.endpoint}, beyond loopback", where)
        if not exposed:
            shown = ", ".join(lst.endpoint for lst in _tcp(q.listeners)) or "no TCP port"
            yield ok(subject, f"{subject} listens on loopback only ({shown})",
                     ev("/proc/net/tcp", f"pid {q.pid}", shown))


__all__ = ["host_mac_enforcing", "kernel_current", "libvirt_tcp_listener", "qemu_current", "qemu_listeners",
           "restart_needed"]
