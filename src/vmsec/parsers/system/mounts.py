"""/etc/fstab, /etc/crypttab, and the swap systemd's own ``.swap`` units activate.

Fields are separated by blanks; a blank inside a field is written ``\\040`` (octal escapes are
decoded). fstab: device, mount point, type, options (``defaults`` when missing), dump, pass.
crypttab: name, device, key file (``none``/``-``/missing: a passphrase is asked), options.
These facts come from one file each: when it exists but cannot be read, :class:`ReadError` is raised
(the fact is unknown); a malformed line is appended to ``errors`` and skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import CryptEntry, MountEntry, Service
from vmsec.parsers.lines import split_c
from vmsec.parsers.system._common import (
    Errors,
    lines,
    note,
    read_required,
    unreadable,
)
from vmsec.reading import Reader

MAX_ENTRIES = 10_000
_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


_FSTAB_BLANKS = re.compile("[ \t\r\n]+")


def _split_fstab(line: str) -> list[str]:
    """libmount splits fstab fields at blanks (space, tab) only: a \\v or \\f is part of a field
    (``noexec\\v0`` is one unknown option, and mount fails on it)."""
    stripped = line.strip(" \t\r\n")
    return _FSTAB_BLANKS.split(stripped) if stripped else []


def _fields(path: str, text: str, minimum: int, errors: Errors | None) -> list[tuple[int, list[str]]]:
    out: list[tuple[int, list[str]]] = []
    for number, line in lines(text, errors, path):
        if not line or line.startswith("#"):
            continue
        if "\x00" in line:  # where the system's C string ends is not sure: not read, not "no entry"
            unreadable(errors, ReadError(f"{path}:{number}", "a NUL byte in the line", ErrorKind.INVALID))
            continue
        # A byte that is not UTF-8 (shown as U+FFFD) is nothing to the system: the line still counts.
        fields = [_unescape(f) for f in (_split_fstab(line) if path == "/etc/fstab" else split_c(line))]
        if len(fields) < minimum:
            note(errors, f"{path}:{number}", f"malformed line ({len(fields)} fields)")
            continue
        out.append((number, fields))
        if len(out) >= MAX_ENTRIES:
            # the rest is unread, not absent: a /tmp line after it may change every verdict
            unreadable(errors, ReadError(path, f"more than {MAX_ENTRIES} entries; the rest was not read",
                                         ErrorKind.TOO_LARGE))
            break
    return out


def read_fstab(reader: Reader, *, errors: Errors | None = None) -> tuple[MountEntry, ...]:
    """The entries of /etc/fstab; () when there is no fstab."""
    text = read_required(reader, "/etc/fstab")
    return tuple(
        MountEntry(device=f[0], mountpoint=f[1], fstype=f[2],
                   options=tuple(o for o in (f[3] if len(f) > 3 else "defaults").split(",") if o),
                   origin=f"/etc/fstab:{n}")
        for n, f in _fields("/etc/fstab", text or "", 3, errors))


def read_crypttab(reader: Reader, *, errors: Errors | None = None) -> tuple[CryptEntry, ...]:
    """The entries of /etc/crypttab as systemd-cryptsetup-generator sets them up; () when there is
    none. Its ``read_line`` ends a line at a newline, a carriage return (alone or before a newline)
    or a NUL, so ``a … luks\rdata … /boot/data.key`` is two volumes; of two lines naming one volume
    the first is set up (the second unit "already exists")."""
    text = (read_required(reader, "/etc/crypttab") or "").replace("\r\n", "\n")
    text = text.replace("\r", "\n").replace("\x00", "\n")
    entries: dict[str, CryptEntry] = {}
    for n, f in _fields("/etc/crypttab", text, 2, errors):
        entries.setdefault(f[0], CryptEntry(
            name=f[0], device=f[1], keyfile=f[2] if len(f) > 2 and f[2] not in ("none", "-") else None,
            options=tuple(o for o in (f[3] if len(f) > 3 else "").split(",") if o),
            origin=f"/etc/crypttab:{n}"))
    return tuple(entries.values())


def read_swap_units(reader: Reader, services: Sequence[Service] | None, *,
                    errors: Errors | None = None) -> tuple[MountEntry, ...]:
    """Swap that systemd activates at boot from a ``.swap`` unit of its own (not one the fstab
    generator makes at boot: those live in /run and come from fstab): each enabled unit's ``What=``
    and ``Options=`` (the unit file, then its drop-ins in order; an empty assignment resets), as a
    swap entry whose origin is the unit file. ``services`` is what :func:`read_services` returned."""
    from vmsec.parsers.system.systemd_boot import unit_settings

    out: list[MountEntry] = []
    for service in services or ():
        if not service.name.endswith(".swap") or service.enabled is False:
            continue
        settings = unit_settings(reader, service.name, errors)
        if settings is None:
            continue
        path, texts = settings
        what: str | None = None
        options: list[str] = []
        for _source, assignments in texts:
            for section, key, value in assignments:
                if section != "Swap":
                    continue
                if key == "What":
                    what = value or None
                elif key == "Options":
                    options = [o for o in value.split(",") if o] if value else []
        if what is None:
            note(errors, path, "a swap unit without What=: systemd refuses it")
            continue
        out.append(MountEntry(device=what, mountpoint="none", fstype="swap", options=tuple(options),
                              origin=path))
        if len(out) >= MAX_ENTRIES:
            break
    return tuple(out)
