"""Mount options of shared scratch space (/tmp, /dev/shm) and a separate file system for logs.

On a running system the kernel's mount table (/proc/self/mountinfo) decides — what is mounted now,
with the options it has now — and /etc/fstab is shown where it differs (it applies at next boot).
Offline, /etc/fstab decides.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.unread import guest_unread, not_read
from vmsec.facts import Guest
from vmsec.facts.guest import MountEntry
from vmsec.facts.runtime import MountPoint, RuntimeState
from vmsec.findings import Evidence

_WANTED = ("nodev", "nosuid", "noexec")
_FSTAB = "https://man7.org/linux/man-pages/man5/fstab.5.html"


def _entry(guest: Guest, mountpoint: str) -> MountEntry | None:
    """The fstab line that mounts ``mountpoint`` at boot. ``noauto`` lines are not mounted at boot. Of
    several lines, systemd-fstab-generator makes the unit from the first and refuses the others; a
    SysV ``mount -a`` mounts them all, the last on top: when the first and last differ, the one
    missing more of nodev/nosuid/noexec is judged (either may be what a guest boots with)."""
    found = [m for m in guest.fstab or () if m.mountpoint.rstrip("/") == mountpoint and m.fstype != "swap"
             and "noauto" not in m.options]
    if not found:
        return None
    first, last = found[0], found[-1]
    return first if len(missing_options(first.options)) >= len(missing_options(last.options)) else last


def missing_options(options: tuple[str, ...]) -> list[str]:
    """Which of nodev, nosuid, noexec an fstab option list leaves off, read in order as libmount
    applies them: a later ``exec``/``dev``/``suid`` undoes an earlier ``no…``; ``user``/``users``
    imply all three and ``owner``/``group`` nodev and nosuid (mount(8)), a later option overriding
    them; ``defaults`` changes none of them."""
    state = dict.fromkeys(_WANTED, False)
    for option in options:
        if option in state:
            state[option] = True
        elif option in ("dev", "suid", "exec"):
            state["no" + option] = False
        elif option in ("user", "users"):
            state = dict.fromkeys(_WANTED, True)
        elif option in ("owner", "group"):
            state["nodev"] = state["nosuid"] = True
    return [o for o in _WANTED if not state[o]]


def _options(m: MountEntry | MountPoint, label: str, boot: MountEntry | None = None) -> Iterator[Result]:
    mountpoint = m.mountpoint
    missing = missing_options(m.options) if isinstance(m, MountEntry) else [o for o in _WANTED
                                                                             if o not in m.options]
    where = ev(m.origin, mountpoint, ",".join(m.options) or "defaults")
    note = ""
    extra: tuple[Evidence, ...] = ()
    if isinstance(m, MountPoint) and boot is not None:
        boot_missing = missing_options(boot.options)
        if boot_missing != missing:
            how = f"without {', '.join(boot_missing)}" if boot_missing else f"with {','.join(_WANTED)}"
            note = f"; /etc/fstab mounts it {how}: that changes at next boot"
            extra = (ev(boot.origin, mountpoint, ",".join(boot.options) or "defaults"),)
    now = " now" if isinstance(m, MountPoint) else ""
    if missing:
        yield fail(label, f"{mountpoint} is mounted{now} without {', '.join(missing)}{note}", where, *extra)
    else:
        yield ok(label, f"{mountpoint} is mounted{now} nodev,nosuid,noexec{note}", where, *extra)


def _mounted(guest: Guest) -> RuntimeState | None:
    """The running system's state when its mount table was read (else None: judge fstab)."""
    runtime = guest.runtime
    return runtime if runtime is not None and runtime.mounts is not None else None


@check("VMS-GST-127", title="The /tmp file system is mounted nodev, nosuid, noexec", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "mounts", "tmp"), references=(_FSTAB,))
def tmp_options(guest: Guest) -> Iterator[Result]:
    """Every user can write to /tmp. Without nosuid and nodev a planted setuid binary or device
    node there works; without noexec it is the easiest place to drop and run a payload. The
    options can only be set when /tmp is its own file system.

    Remediation: Mount /tmp separately (`tmpfs /tmp tmpfs nodev,nosuid,noexec,mode=1777 0 0`, or
    enable tmp.mount with a drop-in adding noexec).
    """
    runtime = _mounted(guest)
    if runtime is not None:
        now = runtime.mount("/tmp")
        if now is not None:
            yield from _options(now, "/tmp", _entry(guest, "/tmp"))
        else:
            yield fail("/tmp", "/tmp is not a separate file system in the running system: nodev, nosuid and "
                       "noexec cannot apply", ev("/proc/self/mountinfo", "/tmp", "not a mount point"))
        return
    if guest.fstab is None:
        yield unknown("/tmp", "/etc/fstab could not be read")
        return
    entry = _entry(guest, "/tmp")
    if entry is not None:
        yield from _options(entry, "/tmp")
        return
    unit = [s for s in guest.services or () if s.name == "tmp.mount" and s.enabled]
    if unit:
        yield unknown("/tmp", "/tmp is mounted by tmp.mount, whose options vmsec does not read",
                      ev(unit[0].origin or "tmp.mount", "tmp.mount", "enabled"))
    elif unread := guest_unread(guest, "fstab", "services"):
        yield not_read(unread, "/tmp", "/tmp is not a separate file system")
    else:
        yield fail("/tmp", "/tmp is not a separate file system: nodev, nosuid and noexec cannot apply")


@check("VMS-GST-128", title="The /dev/shm file system is mounted nodev, nosuid, noexec",
       severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "mounts", "shm"), references=(_FSTAB,))
def shm_options(guest: Guest) -> Iterator[Result]:
    """/dev/shm is a world-writable tmpfs; like /tmp it should refuse devices, setuid and
    execution. When fstab does not list it, systemd mounts it nosuid,nodev — without noexec.

    Remediation: `tmpfs /dev/shm tmpfs nodev,nosuid,noexec 0 0` in /etc/fstab.
    """
    runtime = _mounted(guest)
    if runtime is not None:
        now = runtime.mount("/dev/shm")
        if now is not None:
            yield from _options(now, "/dev/shm", _entry(guest, "/dev/shm"))
            return
        holder = runtime.mount_of("/dev/shm")
        if holder is None:
            yield unknown("/dev/shm", "no mount in the running system holds /dev/shm")
            return
        missing = [o for o in _WANTED if o not in holder.options]
        where = ev(holder.origin, holder.mountpoint, ",".join(holder.options))
        if missing:
            yield fail("/dev/shm", f"/dev/shm is no mount of its own: it is on {holder.mountpoint}, "
                       f"mounted without {', '.join(missing)}", where)
        else:
            yield ok("/dev/shm", f"/dev/shm is on {holder.mountpoint}, mounted nodev,nosuid,noexec", where)
        return
    if guest.fstab is None:
        yield unknown("/dev/shm", "/etc/fstab could not be read")
        return
    entry = _entry(guest, "/dev/shm")
    if entry is not None:
        yield from _options(entry, "/dev/shm")
    elif unread := guest_unread(guest, "fstab"):
        yield not_read(unread, "/dev/shm", "/dev/shm is not in fstab")
    else:
        yield fail("/dev/shm", "/dev/shm is not in fstab: the default mount (nosuid,nodev) allows "
                   "execution")


@check("VMS-GST-129", title="Logs (/var/log) are on a separate file system", severity=Severity.LOW,
       tags=(Tag.AUDIT, "mounts", "logging"), references=(_FSTAB,))
def separate_var_log(guest: Guest) -> Iterator[Result]:
    """Logs on the root file system compete with everything else for space: a flood of log lines
    fills / and stops services, and a full / stops logging just when it matters.

    Remediation: Give /var/log (and /var/log/audit) their own file system, mounted
    nodev,nosuid,noexec.
    """
    runtime = _mounted(guest)
    if runtime is not None:
        now = runtime.mount("/var/log") or runtime.mount("/var")
        if now is not None:
            yield ok("/var/log", f"{now.mountpoint} is a separate file system in the running system "
                     f"({now.fstype})", ev(now.origin, now.mountpoint, now.source))
        else:
            yield fail("/var/log", "/var/log shares the root file system in the running system",
                       ev("/proc/self/mountinfo", "/var/log", "not a mount point"))
        return
    if guest.fstab is None:
        yield unknown("/var/log", "/etc/fstab could not be read")
        return
    m = _entry(guest, "/var/log") or _entry(guest, "/var")
    if m is not None and ("bind" in m.options or "rbind" in m.options):
        # a bind mount shows a directory of a file system that is already mounted: no space of its own
        yield fail("/var/log", f"{m.mountpoint} is a bind mount of {m.device}, not a file system of its own",
                   ev(m.origin, m.mountpoint, ",".join(m.options)))
    elif m is not None:
        yield ok("/var/log", f"{m.mountpoint} is a separate file system ({m.fstype})",
                 ev(m.origin, m.mountpoint, m.device))
    elif unread := guest_unread(guest, "fstab"):
        yield not_read(unread, "/var/log", "/var/log has no file system of its own in fstab")
    else:
        yield fail("/var/log", "/var/log shares the root file system")
