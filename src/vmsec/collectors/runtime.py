"""What a running system does now, read through any :class:`~vmsec.reading.Reader` whose root is that
running system: ``RootReader("/")`` for the live host, the SSH reader for a guest, the guest-agent
reader.

Everything comes from procfs and sysfs as the kernel presents them:

- sysctl values from /proc/sys (the keys the checks judge, plus every key the configuration sets, so
  a difference can be shown: "changes at next boot");
- mounts from /proc/self/mountinfo;
- the LSM stack from /sys/kernel/security/lsm, AppArmor's and SELinux's modes from their filesystems;
- the process table from /proc/PID/{stat,cmdline,exe,maps,fd}: executables and libraries a process
  still maps although they were deleted or replaced on disk (a restart is needed, as needrestart says);
- listening sockets from /proc/net/{tcp,tcp6,udp,udp6,unix}, joined to the processes holding them;
- running services: systemd's units over D-Bus when PID 1 is systemd and its bus is reachable (the
  live host only), else the process table;
- the running kernel against the newest installed one;
- QEMU processes by the libvirt domain they emulate, with the QEMU version installed when each started
  (from the dpkg log), so a VM still running a binary replaced by a security update is named.

The target may be hostile (a guest): every read is capped, lists are bounded, a process that ends while
it is read is skipped, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import io
import posixpath
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from msgspec import Struct, field

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import (
    CollectionRecord,
    InstalledPackage,
    KernelState,
    Listener,
    LsmState,
    MountPoint,
    ProcessInfo,
    QemuProcess,
    RunningService,
    RuntimeState,
    SysctlValue,
)
from vmsec.reading import Reader

SMALL = 64 * 1024
MAX_MOUNTINFO = 8 * 1024 * 1024
MAX_NET_TABLE = 32 * 1024 * 1024
MAX_MAPS = 4 * 1024 * 1024
MAX_CMDLINE = 64 * 1024
MAX_CMDLINE_WORDS = 512
MAX_PROCESSES = 20_000
MAX_FDS_PER_PROCESS = 4_096
MAX_FD_LINKS = 200_000  # readlinks of /proc/PID/fd/* in one collection
MAX_SYSCTL_KEYS = 2_000
MAX_MOUNTS = 20_000
MAX_LISTENERS = 50_000
MAX_DPKG_LOG = 32 * 1024 * 1024
USER_HZ = 100  # clock ticks of /proc/PID/stat: 100 on every mainstream Linux architecture

# The sysctl keys the checks judge (vmsec.checks.guest.kernel_params): read at runtime even when no
# configuration file sets them, so the kernel's own value decides instead of a guessed default.
SYSCTL_KEYS = (
    "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter",
    "net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.default.accept_redirects",
    "net.ipv6.conf.all.accept_redirects", "net.ipv6.conf.default.accept_redirects",
    "net.ipv4.conf.all.send_redirects", "net.ipv4.conf.default.send_redirects",
    "net.ipv4.conf.all.accept_source_route", "net.ipv4.conf.default.accept_source_route",
    "net.ipv6.conf.all.accept_source_route", "net.ipv6.conf.default.accept_source_route",
    "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv4.tcp_syncookies",
    "kernel.randomize_va_space", "kernel.kptr_restrict", "kernel.dmesg_restrict",
    "kernel.yama.ptrace_scope", "fs.protected_symlinks", "fs.protected_hardlinks", "fs.suid_dumpable",
    "kernel.unprivileged_bpf_disabled", "net.core.bpf_jit_harden", "kernel.osrelease",
)

# Mapped files that count for "restart needed": executables and shared libraries. Deleted journal
# files, caches, locale archives and shared memory are mapped too, but replacing them is no update.
_CODE_PREFIXES = ("/usr/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/bin/", "/sbin/", "/opt/")
_NOT_CODE_PREFIXES = ("/usr/lib/locale/", "/usr/share/", "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules")
_DELETED = " (deleted)"
_NOT_ON_DISK = ("/memfd:", "/dev/", "/SYSV", "/[")

_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"
_UNIX_ACCEPTCON = 0x00010000

# QEMU binary → the package that ships it, by distribution family (the first installed one wins).
_QEMU_PACKAGES = {
    "qemu-system-x86_64": ("qemu-system-x86", "qemu-system-x86-core", "qemu-kvm-core", "qemu-kvm"),
    "qemu-system-i386": ("qemu-system-x86", "qemu-system-x86-core"),
    "qemu-system-aarch64": ("qemu-system-arm", "qemu-system-aarch64-core", "qemu-kvm-core", "qemu-kvm"),
    "qemu-system-arm": ("qemu-system-arm", "qemu-system-arm-core"),
    "qemu-system-ppc64": ("qemu-system-ppc", "qemu-system-ppc-core"),
    "qemu-system-s390x": ("qemu-system-s390x", "qemu-system-s390x-core", "qemu-kvm-core"),
    "qemu-kvm": ("qemu-kvm-core", "qemu-kvm", "qemu-system-x86"),
}
_QEMU_FALLBACK = ("qemu-system-x86", "qemu-system-misc", "qemu-kvm-core", "qemu-kvm")


# --- sysctl --------------------------------------------------------------------------------------


def sysctl_path(key: str) -> str:
    """The /proc/sys file of a normalised key: dots separate components, and a '/' inside a
    component (an interface name like eth0.100, normalised to eth0/100) is a dot in the file name."""
    return "/proc/sys/" + "/".join(part.replace("/", ".") for part in key.split("."))


def _read_sysctl(reader: Reader, keys: Iterable[str], records: list[CollectionRecord]
                 ) -> tuple[dict[str, str] | None, str | None]:
    try:
        reader.listdir("/proc/sys", 100)
    except ReadError as exc:
        if exc.kind is not ErrorKind.UNSUPPORTED:  # a transport that cannot list can still read the keys
            return None, f"/proc/sys could not be read: {exc.reason}"
    values: dict[str, str] = {}
    for key in list(dict.fromkeys(keys))[:MAX_SYSCTL_KEYS]:
        if "*" in key or "?" in key or not key or key.startswith("."):
            continue
        path = sysctl_path(key)
        try:
            text = reader.read_text(path, 4096)
        except ReadError as exc:
            if not exc.absent:  # a key this kernel does not have is simply not there
                records.append(exc.record("runtime sysctl value"))
            continue
        values[key] = " ".join(text.split())
    return values, None


# --- mounts ---------------------------------------------------------------------------------------

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(text: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str, origin: str = "/proc/self/mountinfo") -> tuple[MountPoint, ...]:
    """proc(5) mountinfo: ``ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER``."""
    mounts: list[MountPoint] = []
    for line in text.splitlines()[:MAX_MOUNTS]:
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < dash + 3:
            continue
        mounts.append(MountPoint(
            mountpoint=_unescape(fields[4]), fstype=fields[dash + 1], source=_unescape(fields[dash + 2]),
            options=tuple(o for o in fields[5].split(",") if o),
            super_options=tuple(o for o in fields[dash + 3].split(",") if o)
            if len(fields) > dash + 3 else (),
            origin=origin))
    return tuple(mounts)


# --- LSM ------------------------------------------------------------------------------------------


def _text(reader: Reader, path: str, limit: int = SMALL) -> str | None:
    """The stripped text, or None when absent or unreadable."""
    try:
        return reader.read_text(path, limit).strip()
    except ReadError:
        return None


def _read_lsm(reader: Reader) -> tuple[LsmState | None, str | None]:
    evidence: list[str] = []
    stack_text = _text(reader, "/sys/kernel/security/lsm")
    stack = tuple(s for s in stack_text.split(",") if s) if stack_text is not None else None
    if stack is not None:
        evidence.append(f"/sys/kernel/security/lsm: {stack_text}")
    # AppArmor: its module parameter says whether it is on and in which mode; the profile list (root
    # only) says what it confines.
    apparmor: str | None = None
    profiles: dict[str, int] | None = None
    enabled = _text(reader, "/sys/module/apparmor/parameters/enabled")
    if enabled is not None:
        evidence.append(f"/sys/module/apparmor/parameters/enabled: {enabled}")
    if (stack is not None and "apparmor" not in stack) or enabled in ("N", "0"):
        apparmor = "disabled"
    elif enabled in ("Y", "1") or (stack is not None and "apparmor" in stack):
        mode = _text(reader, "/sys/module/apparmor/parameters/mode")
        if mode:
            evidence.append(f"/sys/module/apparmor/parameters/mode: {mode}")
        apparmor = mode if mode in ("enforce", "complain", "kill", "unconfined") else None
        listing = _text(reader, "/sys/kernel/security/apparmor/profiles", 16 * 1024 * 1024)
        if listing is not None:
            profiles = {}
            for line in listing.splitlines()[:100_000]:
                match = re.search(r"\((\w+)\)\s*$", line)
                if match:
                    profiles[match.group(1)] = profiles.get(match.group(1), 0) + 1
            evidence.append("/sys/kernel/security/apparmor/profiles: "
                            + (", ".join(f"{n} {m}" for m, n in sorted(profiles.items())) or "none loaded"))
            if apparmor is None:
                apparmor = "enforce" if profiles.get("enforce") else "complain" if profiles else None
    elif stack is None and enabled is None and reader.stat("/sys/module").exists:
        apparmor = "disabled"  # not built in: /sys/module/apparmor would exist
        evidence.append("/sys/module/apparmor: absent (AppArmor is not in this kernel)")
    selinux: str | None = None
    enforce = _text(reader, "/sys/fs/selinux/enforce")
    if enforce is not None:
        evidence.append(f"/sys/fs/selinux/enforce: {enforce}")
        selinux = "enforcing" if enforce == "1" else "permissive" if enforce == "0" else None
    elif (stack is not None and "selinux" not in stack) or reader.stat("/sys/fs").exists:
        selinux = "disabled"  # selinuxfs is mounted whenever SELinux runs
        if stack is None:
            evidence.append("/sys/fs/selinux: not mounted (SELinux is not running)")
    if stack is None and apparmor is None and selinux is None:
        return None, "/sys/kernel/security/lsm could not be read (is securityfs mounted?)"
    return LsmState(stack=stack, apparmor=apparmor, apparmor_profiles=profiles, selinux=selinux,
                    evidence=tuple(evidence)), None


# --- processes ------------------------------------------------------------------------------------


class _Proc(Struct):
    info: ProcessInfo
    sockets: set[int] = field(default_factory=set)
    unread: str | None = None  # why its sockets were not (all) read: then `sockets` proves nothing


class _Table(Struct):
    procs: dict[int, _Proc]
    # Why running processes are missing from ``procs`` (RuntimeState.processes_unread); None: none is.
    processes_unread: str | None = None
    # Why some processes' sockets were not read (RuntimeState.sockets_unread); None: all were.
    sockets_unread: str | None = None


def parse_stat(text: str) -> tuple[str, int | None, int | None]:
    """(comm, ppid, start time in clock ticks since boot) from /proc/PID/stat."""
    open_paren, close_paren = text.find("("), text.rfind(")")
    if open_paren < 0 or close_paren < open_paren:
        return "", None, None
    comm = text[open_paren + 1:close_paren]
    rest = text[close_paren + 2:].split()
    ppid = int(rest[1]) if len(rest) > 1 and rest[1].isdigit() else None
    start = int(rest[19]) if len(rest) > 19 and rest[19].isdigit() else None
    return comm, ppid, start


def stale_mappings(maps: str) -> tuple[str, ...]:
    """Executables and libraries in a /proc/PID/maps text that were deleted or replaced on disk."""
    found: dict[str, None] = {}
    for line in maps.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6 or parts[4] == "0":
            continue
        path = parts[5]
        if not path.endswith(_DELETED):
            continue
        path = path[: -len(_DELETED)]
        if path.startswith(_CODE_PREFIXES) and not path.startswith(_NOT_CODE_PREFIXES):
            found[path] = None
            if len(found) >= 64:
                break
    return tuple(found)


def _clean(text: str, limit: int = 4096) -> str:
    """Process-controlled text (command lines, names): control characters replaced, length bounded."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _read_processes(reader: Reader, boot_time: float | None, records: list[CollectionRecord],
                    tick: Callable[[str], None]) -> tuple[_Table | None, str | None]:
    try:
        entries = reader.listdir("/proc", MAX_PROCESSES + 200)
    except ReadError as exc:
        if exc.kind is ErrorKind.UNSUPPORTED:
            return None, exc.reason
        return None, f"/proc could not be listed: {exc.reason}"
    listed = sorted(int(e) for e in entries if e.isdigit())
    pids = listed[:MAX_PROCESSES]
    if not pids and "self" not in entries:
        return None, "/proc holds no process table (procfs is not mounted there)"
    procs: dict[int, _Proc] = {}
    fd_links = 0
    denied = 0
    # Processes missing from the table, by cause: a QEMU or daemon not in it may still run.
    missing: Counter[str] = Counter()
    # Processes in it whose sockets stay unknown, by cause: a listener none of the others holds may be theirs.
    unread: Counter[str] = Counter()
    if len(listed) > MAX_PROCESSES:
        missing[f"beyond the limit of {MAX_PROCESSES} processes"] = len(listed) - MAX_PROCESSES
    hidden = bool(pids) and 1 not in listed  # PID 1 always runs: /proc hides it (hidepid=invisible)
    for n, pid in enumerate(pids):
        if n % 200 == 0:
            tick(f"processes {n}/{len(pids)}")
        base = f"/proc/{pid}"
        try:
            stat_text = reader.read_text(f"{base}/stat", 4096)
        except ReadError as exc:
            if not exc.absent:  # listed but refused (hidepid=noaccess): it runs, unseen
                missing[f"/proc/PID/stat: {exc.reason}"] += 1
            continue  # else it ended while the table was read
        comm, ppid, start = parse_stat(stat_text)
        try:
            raw = reader.read_bytes(f"{base}/cmdline", MAX_CMDLINE)
        except ReadError:
            raw = b""
        cmdline = tuple(_clean(w.decode("utf-8", "replace"))
                        for w in raw.split(b"\0")[:MAX_CMDLINE_WORDS] if w)
        if pid == 2 or ppid == 2:
            continue  # kernel threads: no executable, no memory map
        exe: str | None = None
        deleted: bool | None = None
        try:
            link = reader.readlink(f"{base}/exe")
            deleted = link.endswith(_DELETED)
            exe = _clean(link[: -len(_DELETED)] if deleted else link)
            if exe.startswith(_NOT_ON_DISK):
                deleted = False  # an anonymous in-memory executable was never a file to update
        except ReadError as exc:
            if exc.kind is ErrorKind.DENIED:
                denied += 1
        stale: tuple[str, ...] | None = None
        try:
            stale = stale_mappings(reader.read_text(f"{base}/maps", MAX_MAPS))
        except ReadError:
            stale = None
        st = reader.stat(base)
        info = ProcessInfo(
            pid=pid, ppid=ppid, uid=st.uid, comm=_clean(comm, 64), exe=exe, exe_deleted=deleted,
            cmdline=cmdline, stale_files=stale,
            started_at=boot_time + start / USER_HZ if boot_time is not None and start is not None else None)
        proc = _Proc(info)
        procs[pid] = proc
        if fd_links >= MAX_FD_LINKS:
            proc.unread = (f"its descriptors were not read: the scan's limit of {MAX_FD_LINKS} descriptors "
                           "was reached before it")
            unread[f"after the limit of {MAX_FD_LINKS} descriptors"] += 1
            continue
        cause: str | None = None  # why its sockets stay unknown, counted once per process
        try:
            fds = reader.listdir(f"{base}/fd", MAX_FDS_PER_PROCESS)
        except ReadError as exc:
            why = exc.reason + (" (only root sees other users' descriptors)" if exc.kind is ErrorKind.DENIED
                                else "")
            proc.unread = f"{base}/fd could not be listed: {why}"
            # absent: it ended while the table was read, and its sockets closed with it
            cause = None if exc.absent else f"/proc/PID/fd: {why}"
            fds = []
        for fd in fds:
            fd_links += 1
            try:
                target = reader.readlink(f"{base}/fd/{fd}")
            except ReadError as exc:
                if not exc.absent:  # a descriptor closed meanwhile held nothing; a refused one may
                    proc.unread = f"{base}/fd/{fd} could not be read: {exc.reason}"
                    cause = f"/proc/PID/fd/N: {exc.reason}"
                continue
            if target.startswith("socket:[") and target.endswith("]") and target[8:-1].isdigit():
                proc.sockets.add(int(target[8:-1]))
        if cause:
            unread[cause] += 1
    if fd_links >= MAX_FD_LINKS:
        records.append(CollectionRecord(source="/proc/*/fd", what="process sockets", ok=True,
                                        reason=f"over {MAX_FD_LINKS} descriptors: later processes' sockets "
                                        "are not tied to them", kind=ErrorKind.TOO_LARGE))
    if denied:
        records.append(CollectionRecord(source="/proc/*/exe", what="process table", ok=True,
                                        reason=f"{denied} processes could not be examined (permission "
                                        "denied): their binaries and sockets are unknown"))
    absent = [f"{cause} ({n} process{'es' if n != 1 else ''})" for cause, n in missing.items()]
    if hidden:
        absent.insert(0, "/proc hides other users' processes from this reader (hidepid)")
    # A process missing from the table is one whose sockets were not read either.
    causes = absent + [f"{cause} ({n} process{'es' if n != 1 else ''})" for cause, n in unread.items()]
    processes_unread = "the process table is incomplete: " + "; ".join(absent) if absent else None
    sockets_unread = "some processes' sockets were not read: " + "; ".join(causes) if causes else None
    if processes_unread:
        records.append(CollectionRecord(source="/proc", what="process table", ok=True,
                                        reason=f"{processes_unread}: a process not in it may still run"))
    return _Table(procs, processes_unread, sockets_unread), None


# --- sockets --------------------------------------------------------------------------------------


def _ipv4(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)[::-1]
    return ".".join(str(b) for b in raw)


def _ipv6(hex_addr: str) -> str:
    import ipaddress

    raw = b"".join(bytes.fromhex(hex_addr[i:i + 8])[::-1] for i in range(0, 32, 8))
    return str(ipaddress.IPv6Address(raw))


def parse_inet_table(text: str, protocol: str) -> list[Listener]:
    """Listening (TCP) or unconnected (UDP) sockets of one /proc/net/{tcp,tcp6,udp,udp6} table."""
    v6 = protocol.endswith("6")
    wanted = _TCP_LISTEN if protocol.startswith("tcp") else _UDP_UNCONNECTED
    out: list[Listener] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != wanted:
            continue
        addr, _, port = fields[1].partition(":")
        try:
            address = _ipv6(addr) if v6 else _ipv4(addr)
            number = int(port, 16)
            inode = int(fields[9])
        except ValueError:
            continue
        if protocol.startswith("udp") and fields[2].split(":")[0].strip("0"):
            continue  # a connected UDP socket is no listener
        out.append(Listener(protocol=protocol, address=address, port=number, inode=inode))
        if len(out) >= MAX_LISTENERS:
            break
    return out


def parse_unix_table(text: str) -> list[Listener]:
    """Listening UNIX sockets of /proc/net/unix (flag __SO_ACCEPTCON)."""
    out: list[Listener] = []
    for line in text.splitlines()[1:]:
        fields = line.split(None, 7)
        if len(fields) < 7:
            continue
        try:
            flags = int(fields[3], 16)
            inode = int(fields[6])
        except ValueError:
            continue
        if not flags & _UNIX_ACCEPTCON:
            continue
        path = _clean(fields[7]) if len(fields) > 7 else ""
        out.append(Listener(protocol="unix", address=path, inode=inode))
        if len(out) >= MAX_LISTENERS:
            break
    return out


def _read_listeners(reader: Reader, procs: Mapping[int, _Proc] | None, records: list[CollectionRecord]
                    ) -> tuple[tuple[Listener, ...] | None, str | None]:
    found: list[Listener] = []
    read_any = False
    for protocol in ("tcp", "tcp6", "udp", "udp6", "unix"):
        path = f"/proc/net/{protocol}"
        try:
            text = reader.read_text(path, MAX_NET_TABLE)
        except ReadError as exc:
            if not exc.absent:  # no IPv6 in this kernel: no table, nothing listens there
                records.append(exc.record("listening sockets"))
            continue
        read_any = True
        found += parse_unix_table(text) if protocol == "unix" else parse_inet_table(text, protocol)
    if not read_any:
        return None, "/proc/net could not be read"
    owners: dict[int, list[_Proc]] = {}
    for proc in (procs or {}).values():
        for inode in proc.sockets:
            owners.setdefault(inode, []).append(proc)
    joined = []
    for listener in found[:MAX_LISTENERS]:
        holders = owners.get(listener.inode, [])
        joined.append(Listener(protocol=listener.protocol, address=listener.address, port=listener.port,
                               inode=listener.inode, pids=tuple(p.info.pid for p in holders[:16]),
                               processes=tuple(dict.fromkeys(_process_name(p.info) for p in holders[:16]))))
    return tuple(joined), None


def _process_name(p: ProcessInfo) -> str:
    """The executable's file name when readable (not truncated like comm), else comm."""
    return posixpath.basename(p.exe) if p.exe else p.comm


# --- services -------------------------------------------------------------------------------------


def pid1_is_systemd(reader: Reader) -> bool | None:
    try:
        exe = reader.readlink("/proc/1/exe")
        return posixpath.basename(exe.removesuffix(_DELETED)) == "systemd"
    except ReadError:
        pass
    comm = _text(reader, "/proc/1/comm")
    return None if comm is None else comm == "systemd"


def _services_from_processes(procs: Mapping[int, _Proc]) -> tuple[RunningService, ...]:
    seen: dict[str, RunningService] = {}
    for proc in procs.values():
        name = _process_name(proc.info)
        if name and name not in seen:
            seen[name] = RunningService(name=name, source="process", pid=proc.info.pid)
    return tuple(seen.values())


# --- kernel ---------------------------------------------------------------------------------------


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p)


_KERNEL_PACKAGE = re.compile(r"^linux-image-(\d.*?)(?:-unsigned)?$")


def _read_kernel(reader: Reader, packages: Sequence[InstalledPackage] | None) -> KernelState:
    running = _text(reader, "/proc/sys/kernel/osrelease")
    version = _text(reader, "/proc/version") or ""
    # Debian and Ubuntu put the package version in /proc/version: "… Debian 6.1.76-1 (2024-02-01)".
    build_match = re.search(r"(?:Debian|Ubuntu) (\d[\w.:+~-]*)", version)
    running_build = build_match.group(1) if build_match else None
    releases: set[str] = set()
    installed_build = None
    try:
        for name in reader.listdir("/boot", 1000):
            if name.startswith("vmlinuz-") and len(name) > 8:
                releases.add(name[8:])
    except ReadError:
        pass
    for pkg in packages or ():
        match = _KERNEL_PACKAGE.match(pkg.name)
        if match:
            releases.add(match.group(1))
            if match.group(1) == running:
                installed_build = pkg.version
        elif pkg.name in ("kernel-core", "kernel") and pkg.manager == "rpm":
            releases.add(f"{pkg.version}.{pkg.arch}" if pkg.arch else pkg.version)
    reboot_flag = reader.stat("/run/reboot-required").exists
    if reboot_flag is False:
        reboot_flag = reader.stat("/var/run/reboot-required").exists
    ordered = sorted(releases, key=_natural_key)
    return KernelState(running=running, running_build=running_build,
                       installed=tuple(ordered) if ordered or packages is not None else None,
                       newest=ordered[-1] if ordered else None, installed_build=installed_build,
                       reboot_required_file=reboot_flag)


# --- QEMU processes -------------------------------------------------------------------------------


def domain_of(cmdline: Sequence[str]) -> str | None:
    """The domain name from QEMU's ``-name guest=NAME,…`` (libvirt) or ``-name NAME`` (commas in a
    value are doubled)."""
    for i, word in enumerate(cmdline[:-1]):
        if word in ("-name", "--name"):
            value = cmdline[i + 1]
            parts = re.split(r"(?<!,),(?!,)", value)
            for part in parts:
                if part.startswith("guest="):
                    return part[6:].replace(",,", ",") or None
            first = parts[0] if parts else ""
            return first.replace(",,", ",") if first and "=" not in first else None
    return None


_DPKG_EVENT = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (install|upgrade) (\S+?)(?::\S+)? (\S+) (\S+)$")


class PackageEvent(Struct, frozen=True):
    when: float  # seconds since the epoch
    package: str
    old: str | None
    new: str
    line: str


def parse_dpkg_log(text: str, tz: dt.tzinfo | None) -> list[PackageEvent]:
    """install/upgrade events of dpkg.log (local time of the system that wrote it: ``tz``; None: this
    machine's local time)."""
    events = []
    for line in text.splitlines():
        match = _DPKG_EVENT.match(line)
        if not match:
            continue
        stamp, _kind, package, old, new = match.groups()
        try:
            naive = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
        when = naive.replace(tzinfo=tz).timestamp() if tz is not None else time.mktime(naive.timetuple())
        events.append(PackageEvent(when, package, None if old == "<none>" else old, new, _clean(line, 300)))
    return events


def version_at(events: Sequence[PackageEvent], package: str, moment: float) -> PackageEvent | None:
    """The event that decided which version of ``package`` was installed at ``moment``: the last
    install/upgrade before it, else (when the log starts later) the first one after it, whose ``old``
    version is then the answer."""
    before = [e for e in events if e.package == package and e.when <= moment]
    if before:
        return max(before, key=lambda e: e.when)
    after = [e for e in events if e.package == package and e.when > moment and e.old]
    return min(after, key=lambda e: e.when) if after else None


def _read_dpkg_log(reader: Reader, tz: dt.tzinfo | None) -> list[PackageEvent]:
    events: list[PackageEvent] = []
    budget = MAX_DPKG_LOG
    for path in ("/var/log/dpkg.log.1", "/var/log/dpkg.log"):
        try:
            data = reader.read_bytes(path, budget)
        except ReadError:
            continue
        budget -= len(data)
        events += parse_dpkg_log(data.decode("utf-8", "replace"), tz)
    return events


def _qemu_processes(procs: Mapping[int, _Proc], listeners: Sequence[Listener] | None,
                    packages: Sequence[InstalledPackage] | None, events: Sequence[PackageEvent]
                    ) -> tuple[QemuProcess, ...]:
    by_name = {p.name: p for p in packages or ()}
    found = []
    for proc in procs.values():
        info = proc.info
        name = posixpath.basename(info.exe) if info.exe else posixpath.basename(info.cmdline[0]) \
            if info.cmdline else info.comm
        if not (name.startswith("qemu-system-") or name == "qemu-kvm"):
            continue
        package = next((by_name[c] for c in _QEMU_PACKAGES.get(name, _QEMU_FALLBACK) if c in by_name), None)
        running_version = origin = None
        if package is not None and info.started_at is not None:
            event = version_at(events, package.name, info.started_at)
            if event is not None:
                running_version = event.new if event.when <= info.started_at else event.old
                origin = event.line
            elif not info.exe_deleted:
                running_version = None
        stale = info.stale_files
        if info.exe_deleted and info.exe:
            stale = tuple(dict.fromkeys((info.exe, *(stale or ()))))
        # Its listeners are known only when its descriptors and the socket tables were both read.
        unread = proc.unread if listeners is not None else "the socket tables (/proc/net) could not be read"
        found.append(QemuProcess(
            pid=info.pid, domain=domain_of(info.cmdline), exe=info.exe, exe_deleted=info.exe_deleted,
            stale_files=stale, started_at=info.started_at,
            package=package.name if package else None,
            installed_version=package.version if package else None,
            running_version=running_version, running_version_origin=origin,
            listeners=None if unread else tuple(lst for lst in listeners or () if info.pid in lst.pids),
            listeners_reason=unread))
    return tuple(sorted(found, key=lambda q: (q.domain or "", q.pid)))


def timezone_of(reader: Reader) -> dt.tzinfo | None:
    """The target's local time zone from its /etc/localtime (TZif); None when it cannot be read."""
    import zoneinfo

    try:
        data = reader.read_bytes("/etc/localtime", 1024 * 1024)
        return zoneinfo.ZoneInfo.from_file(io.BytesIO(data))
    except (ReadError, ValueError, OSError):
        return None


# --- the whole state ------------------------------------------------------------------------------


def collect_runtime(reader: Reader, *, source: str, packages: Sequence[InstalledPackage] | None = None,
                    config_sysctl: Mapping[str, SysctlValue] | None = None,
                    system_bus: str | None = None, local_time: bool = False,
                    progress: Callable[[str], None] | None = None, processes: str | None = None,
                    ) -> tuple[RuntimeState, list[CollectionRecord]]:
    """Everything :class:`RuntimeState` holds, read through ``reader`` (whose root must be a running
    system). ``packages`` and ``config_sysctl``: what the root's files say (to find the newest kernel,
    the QEMU package, and which sysctl keys to compare). ``system_bus``: a D-Bus address of the
    running system's bus (only for the host vmsec runs on; never for another root). ``local_time``:
    the dpkg log is in this machine's local time (the live host); else the target's /etc/localtime.
    ``processes``: a reason not to read the process table over this transport (then it is unknown).
    """
    tick = progress or (lambda _m: None)
    records: list[CollectionRecord] = []
    reasons: dict[str, str] = {}
    started = time.monotonic()

    tick("runtime: sysctl")
    sysctl, why = _read_sysctl(reader, (*SYSCTL_KEYS, *(config_sysctl or {})), records)
    if why:
        reasons["sysctl"] = why
    mounts: tuple[MountPoint, ...] | None = None
    try:
        mounts = parse_mountinfo(reader.read_text("/proc/self/mountinfo", MAX_MOUNTINFO))
    except ReadError as exc:
        reasons["mounts"] = f"/proc/self/mountinfo could not be read: {exc.reason}"
    lsm, why = _read_lsm(reader)
    if why:
        reasons["lsm"] = why
    boot_time = None
    stat = _text(reader, "/proc/stat", 1024 * 1024)
    for line in (stat or "").splitlines():
        if line.startswith("btime "):
            boot_time = float(line.split()[1]) if line.split()[1].isdigit() else None
    tick("runtime: processes")
    table, why = (None, processes) if processes else _read_processes(reader, boot_time, records, tick)
    procs = table.procs if table is not None else None
    if why:
        reasons["processes"] = why
    tick("runtime: sockets")
    listeners, why = _read_listeners(reader, procs, records)
    if why:
        reasons["listeners"] = why
    services: tuple[RunningService, ...] | None = None
    services_source: str | None = None
    systemd = pid1_is_systemd(reader)
    if systemd and system_bus is not None:
        from vmsec.collectors.systemd_dbus import SystemdUnavailable, running_units

        try:
            services, services_source = running_units(system_bus), "systemd"
        except SystemdUnavailable as exc:
            records.append(CollectionRecord(source=system_bus, what="systemd units over D-Bus", ok=True,
                                            reason=f"{exc}; running services are taken from the process "
                                            "table"))
    if services is None and procs is not None:
        services, services_source = _services_from_processes(procs), "process table"
        if systemd and system_bus is None:
            reasons["services"] = "PID 1 is systemd, but its D-Bus API is not reachable over this transport"
    elif services is None:
        reasons["services"] = reasons.get("processes", "the process table could not be read")
    kernel = _read_kernel(reader, packages)
    qemu = None
    if procs is not None:
        events = _read_dpkg_log(reader, None if local_time else timezone_of(reader) or dt.UTC) \
            if any("qemu" in p.info.comm or "qemu" in (p.info.exe or "") for p in procs.values()) else []
        qemu = _qemu_processes(procs, listeners, packages, events)
    else:
        reasons["qemu"] = reasons["processes"]
    state = RuntimeState(
        source=source, sysctl=sysctl, mounts=mounts, lsm=lsm,
        processes=tuple(p.info for p in procs.values()) if procs is not None else None,
        services=services, services_source=services_source, listeners=listeners, kernel=kernel,
        boot_time=boot_time, qemu=qemu, reasons=reasons,
        # no process table: no process is known to run, and no listener's holder is known
        processes_unread=table.processes_unread if table is not None else reasons["processes"],
        sockets_unread=table.sockets_unread if table is not None else reasons["processes"])
    records.append(CollectionRecord(source=source, what="runtime state", ok=True,
                                    reason="; ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) or None,
                                    duration_s=round(time.monotonic() - started, 4)))
    return state, records


__all__ = ["SYSCTL_KEYS", "collect_runtime", "domain_of", "parse_dpkg_log", "parse_inet_table",
           "parse_mountinfo", "parse_stat", "parse_unix_table", "pid1_is_systemd", "stale_mappings",
           "sysctl_path", "timezone_of", "version_at"]
