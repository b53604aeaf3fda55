"""Mount options of shared scratch space (/tmp, /dev/shm) and a separate file system for logs."""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.facts import Guest
from vmsec.facts.guest import MountEntry

_WANTED = ("nodev", "nosuid", "noexec")
_FSTAB = "https://man7.org/linux/man-pages/man5/fstab.5.html"


def _entry(guest: Guest, mountpoint: str) -> MountEntry | None:
    found = None
    for m in guest.fstab or ():
        if m.mountpoint.rstrip("/") == mountpoint and m.fstype != "swap":
            found = m  # the last line for a mount point wins, as mount -a stacks them
    return found


def _options(m: MountEntry, label: str) -> Iterator[Result]:
    mountpoint = m.mountpoint
    missing = [o for o in _WANTED if o not in m.options]
    where = ev(m.origin, mountpoint, ",".join(m.options) or "defaults")
    if missing:
        yield fail(label, f"{mountpoint} is mounted without {', '.join(missing)}", where)
    else:
        yield ok(label, f"{mountpoint} is mounted nodev,nosuid,noexec", where)


@check("VMS-GST-127", title="The /tmp file system is mounted nodev, nosuid, noexec", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "mounts", "tmp"), references=(_FSTAB,))
def tmp_options(guest: Guest) -> Iterator[Result]:
    """Every user can write to /tmp. Without nosuid and nodev a planted setuid binary or device
    node there works; without noexec it is the easiest place to drop and run a payload. The
    options can only be set when /tmp is its own file system.

    Remediation: Mount /tmp separately (`tmpfs /tmp tmpfs nodev,nosuid,noexec,mode=1777 0 0`, or
    enable tmp.mount with a drop-in adding noexec).
    """
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
    if guest.fstab is None:
        yield unknown("/dev/shm", "/etc/fstab could not be read")
        return
    entry = _entry(guest, "/dev/shm")
    if entry is not None:
        yield from _options(entry, "/dev/shm")
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
    if guest.fstab is None:
        yield unknown("/var/log", "/etc/fstab could not be read")
        return
    m = _entry(guest, "/var/log") or _entry(guest, "/var")
    if m is not None:
        yield ok("/var/log", f"{m.mountpoint} is a separate file system ({m.fstype})",
                 ev(m.origin, m.mountpoint, m.device))
    else:
        yield fail("/var/log", "/var/log shares the root file system")
