"""Facts about a running system: what its kernel, processes and sockets do now, as opposed to what its
files say will happen at the next boot.

A :class:`RuntimeState` is collected only from a system that runs — the host vmsec runs on (``scan
host`` on ``/``), a guest over SSH, a guest through its QEMU guest agent — never from a copied root or a
disk image. Each field is ``None`` when it could not be read over the transport used (the guest agent
cannot list directories, so it sees no process table); ``reasons`` says why, per field.
"""

from __future__ import annotations

from collections.abc import Mapping

from msgspec import Struct, field

from vmsec.facts.vulnerability import VulnMatch


class MountPoint(Struct, frozen=True, kw_only=True, gc=False):
    """One line of /proc/self/mountinfo."""

    mountpoint: str
    fstype: str
    source: str
    options: tuple[str, ...]  # per-mount options: rw, nosuid, nodev, noexec, relatime …
    super_options: tuple[str, ...] = ()
    origin: str = "/proc/self/mountinfo"


class LsmState(Struct, frozen=True, kw_only=True, gc=False):
    """The kernel's Linux Security Modules as they run.

    ``apparmor``: enforce | complain | disabled (None: unknown); ``selinux``: enforcing | permissive |
    disabled. ``apparmor_profiles`` counts loaded profiles by mode, when /sys/kernel/security/apparmor
    could be read.
    """

    stack: tuple[str, ...] | None  # /sys/kernel/security/lsm, in order
    apparmor: str | None = None
    apparmor_profiles: Mapping[str, int] | None = None
    selinux: str | None = None
    evidence: tuple[str, ...] = ()  # "path: value" lines the verdict rests on


class ProcessInfo(Struct, frozen=True, kw_only=True, gc=False):
    """One process of the process table (kernel threads are left out)."""

    pid: int
    ppid: int | None = None
    uid: int | None = None
    comm: str = ""
    exe: str | None = None  # /proc/PID/exe without the " (deleted)" suffix; None: not readable
    exe_deleted: bool | None = None  # the executable was deleted or replaced since the process started
    cmdline: tuple[str, ...] = ()
    started_at: float | None = None  # seconds since the epoch
    # Executables and libraries it maps that were deleted or replaced on disk since (restart needed);
    # None: its memory map could not be read.
    stale_files: tuple[str, ...] | None = None


class Listener(Struct, frozen=True, kw_only=True, gc=False):
    """A listening socket from /proc/net/{tcp,tcp6,udp,udp6,unix}, joined to its processes."""

    protocol: str  # tcp | tcp6 | udp | udp6 | unix
    address: str  # 0.0.0.0, ::, 127.0.0.1 …, or the UNIX socket path ("@name": abstract)
    port: int | None = None
    inode: int = 0
    # Processes holding it. Empty: none of the processes whose sockets were read; when some could not
    # be read (RuntimeState.sockets_unread), its holder is unknown rather than absent.
    pids: tuple[int, ...] = ()
    processes: tuple[str, ...] = ()  # their command names

    @property
    def loopback_only(self) -> bool:
        """True when only this machine can connect (127.0.0.0/8, ::1, a UNIX socket)."""
        if self.protocol == "unix":
            return True
        address = self.address.removeprefix("::ffff:")
        return address.startswith("127.") or address == "::1"

    @property
    def endpoint(self) -> str:
        if self.port is None:
            return self.address
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


class RunningService(Struct, frozen=True, kw_only=True, gc=False):
    """A service that runs now: a systemd unit that is active (read over D-Bus), or a process."""

    name: str  # ssh.service, or a process's command name (sshd)
    source: str  # systemd | process
    state: str = "running"  # systemd's sub-state (running, listening, exited …)
    pid: int | None = None


class KernelState(Struct, frozen=True, kw_only=True, gc=False):
    """The running kernel and the newest installed one (a reboot is needed when they differ)."""

    running: str | None  # uname -r
    running_build: str | None = None  # the distribution's package version in /proc/version, when shown
    installed: tuple[str, ...] | None = None  # kernel releases installed (/boot/vmlinuz-*, packages)
    newest: str | None = None
    # The package version now installed for the running release (Debian rebuilds a kernel without
    # changing its release name: the running build is then older than the installed one).
    installed_build: str | None = None
    reboot_required_file: bool | None = None  # /var/run/reboot-required (Debian/Ubuntu)


class QemuProcess(Struct, frozen=True, kw_only=True, gc=False):
    """A running QEMU, named by the libvirt domain it emulates (``-name guest=…``)."""

    pid: int
    domain: str | None
    exe: str | None
    exe_deleted: bool | None  # the binary was replaced since the process started
    stale_files: tuple[str, ...] | None  # replaced libraries (and the binary) it still maps
    started_at: float | None
    package: str | None = None  # the package that ships the binary (qemu-system-x86)
    installed_version: str | None = None  # that package's version now
    running_version: str | None = None  # the version installed when the process started (dpkg log)
    running_version_origin: str | None = None  # the dpkg.log line that says so
    # The sockets it listens on; None: its descriptors were not read (listeners_reason says why), so
    # what it listens on is unknown — not "nothing".
    listeners: tuple[Listener, ...] | None = ()
    listeners_reason: str | None = None
    # Vulnerabilities fixed between the version it runs and the installed one (the matcher fills
    # this in); None: not matched (no database, or the running version is unknown).
    fixed_since: tuple[VulnMatch, ...] | None = None
    fixed_since_reason: str | None = None  # why fixed_since is None

    @property
    def stale(self) -> bool | None:
        if self.exe_deleted or self.stale_files:
            return True
        if self.exe_deleted is None and self.stale_files is None:
            return None
        return False


class RuntimeState(Struct, frozen=True, kw_only=True, gc=False):
    """What a running system does now. ``source`` says how it was read; ``reasons`` why a field is
    None (field name → sentence)."""

    source: str  # "/proc and /sys of the running host", "ssh admin@web01", "guest agent of web01"
    sysctl: Mapping[str, str] | None = None  # normalised key → value the kernel holds now
    mounts: tuple[MountPoint, ...] | None = None
    lsm: LsmState | None = None
    processes: tuple[ProcessInfo, ...] | None = None
    services: tuple[RunningService, ...] | None = None
    services_source: str | None = None  # systemd (D-Bus) | process table
    listeners: tuple[Listener, ...] | None = None
    kernel: KernelState | None = None
    boot_time: float | None = None  # seconds since the epoch
    qemu: tuple[QemuProcess, ...] | None = None
    # Why the process table lacks processes that run (hidepid hides other users', /proc/PID refused
    # them, more than the collector reads): a process that is not in it — a QEMU, a daemon — may still
    # run. None: every running process is in it.
    processes_unread: str | None = None
    # Why some processes' sockets were not read (not root, a limit reached, hidden processes): a
    # listener without pids may then be held by one of them. None: every listed process's were read.
    sockets_unread: str | None = None
    reasons: Mapping[str, str] = field(default_factory=dict)

    def reason(self, name: str, default: str = "") -> str:
        return self.reasons.get(name) or default or f"the running system's {name} could not be read"

    def mount(self, mountpoint: str) -> MountPoint | None:
        """The mount visible at ``mountpoint`` (the last one mounted there wins, as the kernel shows)."""
        found = None
        for m in self.mounts or ():
            if m.mountpoint.rstrip("/") == mountpoint.rstrip("/") or (m.mountpoint == "/" == mountpoint):
                found = m
        return found

    def mount_of(self, path: str) -> MountPoint | None:
        """The mount that holds ``path`` (the longest mount point that is a prefix of it)."""
        best: MountPoint | None = None
        for m in self.mounts or ():
            point = m.mountpoint.rstrip("/") or "/"
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and (best is None or len(point) >= len(best.mountpoint.rstrip("/") or "/")):
                best = m
        return best

    @property
    def services_unread(self) -> str | None:
        """Why a service missing from ``services`` may still run: they came from a process table
        that is incomplete (:attr:`processes_unread`). None: what is not listed does not run."""
        return self.processes_unread if self.services_source == "process table" else None

    def running(self, *names: str) -> tuple[RunningService, ...]:
        """Running services whose name (without .service, before any @) is one of ``names``."""
        wanted = {n.lower() for n in names}
        out = []
        for svc in self.services or ():
            base = svc.name.lower().removesuffix(".service").removesuffix(".socket").split("@", 1)[0]
            if base in wanted:
                out.append(svc)
        return tuple(out)
