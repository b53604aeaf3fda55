"""Which services a root starts at boot: systemd, inetd, xinetd, SysV rc links and OpenRC.

systemd: a unit is enabled when a ``*.wants/`` or ``*.requires/`` directory links it, in
/etc/systemd/system (the administrator's ``systemctl enable``) or in the vendor unit directories
(static wants shipped by packages). A unit file in /etc/systemd/system that is a symlink to /dev/null
is masked: never started, whatever links it; so is a unit whose file (the first in systemd's search
order) is empty (``systemctl --root DIR is-enabled`` says "masked"). Presets are not state and are
not read. The unit's ``ExecStart`` comes from the first unit file found in systemd's search order
and its drop-ins (``<unit>.d/*.conf``; an empty ``ExecStart=`` resets the list). A wants/ link
whose unit file exists nowhere is reported with ``enabled=None``: the link is there but nothing can
be started from it.

A unit that no link names is not listed: absence from the result means "not enabled".

inetd and xinetd entries say that the super-server would start the service; whether the
super-server itself is enabled is its own entry.
"""

from __future__ import annotations

import re

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileKind, Service
from vmsec.parsers.system._common import (
    Errors,
    is_symlink,
    lines,
    link_target,
    list_dir,
    masked,
    read_optional,
    unreadable,
)
from vmsec.parsers.systemd_unit import parse_unit
from vmsec.reading import Reader

ETC_UNITS = "/etc/systemd/system"
UNIT_DIRS = (ETC_UNITS, "/run/systemd/system", "/usr/local/lib/systemd/system",
             "/usr/lib/systemd/system", "/lib/systemd/system")
VENDOR_UNIT_DIRS = ("/usr/lib/systemd/system", "/lib/systemd/system")
# What the next boot loads: /run is an empty tmpfs then, so a runtime mask or unit there does not count.
BOOT_UNIT_DIRS = tuple(d for d in UNIT_DIRS if not d.startswith("/run/"))
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".target", ".mount", ".automount",
                 ".swap", ".slice", ".scope", ".device")
MAX_DROPINS = 64
MAX_SERVICES = 20_000
_RC_DIRS = ("/etc/rc1.d", "/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d", "/etc/rcS.d")
_RC_START = re.compile(r"^S\d{2}(.+)$")
_XINETD_SERVICE = re.compile(r"^(?:service\s+(\S+)|(defaults)\b)")


def unit_file(reader: Reader, name: str) -> str | None:
    """The unit file systemd would load for ``name`` at the next boot; None when there is none, or
    when the unit is masked (:func:`unit_state`)."""
    path, is_masked = unit_state(reader, name)
    return None if is_masked else path


def unit_texts(reader: Reader, name: str, unit_path: str, errors: Errors | None) -> list[tuple[str, str]]:
    """(path, text) of a unit file and then its drop-ins, in the order systemd applies them (a drop-in
    in an earlier directory overrides a same-named one in a later directory)."""
    texts: list[tuple[str, str]] = []
    text = read_optional(reader, unit_path, errors)
    if text is not None:
        texts.append((unit_path, text))
    dropins: dict[str, str] = {}
    for directory in reversed(UNIT_DIRS):
        dropdir = f"{directory}/{name}.d"
        for entry in list_dir(reader, dropdir, errors, limit=MAX_DROPINS)[:MAX_DROPINS]:
            if entry.endswith(".conf"):
                dropins[entry] = f"{dropdir}/{entry}"
    for entry in sorted(dropins):
        dropin_text = read_optional(reader, dropins[entry], errors)
        if dropin_text is not None:
            texts.append((dropins[entry], dropin_text))
    return texts


def _exec_start(reader: Reader, name: str, unit_path: str, errors: Errors | None) -> str | None:
    texts = unit_texts(reader, name, unit_path, errors)
    commands: list[str] = []
    for _path, body in texts:
        for section, key, value in parse_unit(body):
            if section == "Service" and key == "ExecStart":
                if value:
                    commands.append(value)
                else:
                    commands.clear()
    return "; ".join(commands) if commands else None


def unit_state(reader: Reader, name: str) -> tuple[str | None, bool]:
    """(the unit file systemd would load for ``name`` at the next boot, whether the unit is masked then;
    /run is not read). The first entry in systemd's search order decides: a mask there (a link to
    /dev/null, relative too, or an empty file) masks the unit whatever comes later; a dangling link
    is passed over. An instance without an entry of its own is its template's (``getty@.service``
    masked masks ``getty@tty1.service``)."""
    candidates = [name]
    prefix, at, rest = name.partition("@")
    if at and not rest.startswith("."):
        candidates.append(f"{prefix}@{rest[rest.rfind('.'):]}")
    for candidate in candidates:
        for directory in BOOT_UNIT_DIRS:
            path = f"{directory}/{candidate}"
            if not reader.stat(path, follow=False).exists:
                continue
            if masked(reader, path):
                return path, True
            if reader.stat(path).kind == FileKind.FILE:
                return path, False
    return None, False


def _systemd(reader: Reader, errors: Errors | None) -> dict[str, Service]:
    found: dict[str, Service] = {}
    # A link in /etc's foo.target.wants/ replaces the vendor directory's link of the same name in the
    # same foo.target.wants/ (the first directory wins, as for drop-ins): to /dev/null, it cancels that
    # one dependency — not the unit, which other targets may still pull in.
    cancelled: set[tuple[str, str]] = set()
    for directory in (ETC_UNITS, *VENDOR_UNIT_DIRS):
        for entry in list_dir(reader, directory, errors):
            if not entry.endswith((".wants", ".requires")):
                continue
            wants = f"{directory}/{entry}"
            if reader.stat(wants).kind != FileKind.DIRECTORY:
                continue
            for unit in list_dir(reader, wants, errors):
                if unit in found or not unit.endswith(UNIT_SUFFIXES) or (entry, unit) in cancelled:
                    continue
                if "@." in unit:  # a template without an instance: nothing to start
                    continue
                if len(found) >= MAX_SERVICES:
                    unreadable(errors, ReadError(wants, f"more than {MAX_SERVICES} units; the rest was "
                                                 "not read", ErrorKind.TOO_LARGE))
                    break
                link = f"{wants}/{unit}"
                cancelled.add((entry, unit))
                # systemd takes the dependency from the link's name, not from where it points, and
                # ignores an entry that is no symlink ("is not a symlink, ignoring").
                if not is_symlink(reader, link) or masked(reader, link):
                    continue
                unit_path, is_masked = unit_state(reader, unit)
                if is_masked:  # systemd.unit(5): a unit linked to /dev/null or empty is masked
                    found[unit] = Service(name=unit, manager="systemd", enabled=False,
                                          origin=_mask_origin(reader, unit_path or unit))
                    continue
                if unit_path is None:
                    target = link_target(reader, link)
                    found[unit] = Service(name=unit, manager="systemd", enabled=None,
                                          origin=f"{link} -> {target} (unit file not found)")
                    continue
                found[unit] = Service(name=unit, manager="systemd", enabled=True, origin=link,
                                      exec_start=_exec_start(reader, unit, unit_path, errors))
    for entry in list_dir(reader, ETC_UNITS, errors):
        if not entry.endswith(UNIT_SUFFIXES):
            continue
        path = f"{ETC_UNITS}/{entry}"
        if masked(reader, path):
            found[entry] = Service(name=entry, manager="systemd", enabled=False,
                                   origin=_mask_origin(reader, path))
    return found


def _mask_origin(reader: Reader, path: str) -> str:
    target = link_target(reader, path)
    return f"{path} -> {target} (masked)" if target is not None else f"{path} is empty (masked)"


def _inetd(reader: Reader, errors: Errors | None) -> list[Service]:
    text = read_optional(reader, "/etc/inetd.conf", errors)
    out: list[Service] = []
    for number, line in lines(text or "", errors, "/etc/inetd.conf"):
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 6:
            if errors is not None:
                errors.append(ReadError(f"/etc/inetd.conf:{number}", "not an inetd service line"))
            continue
        out.append(Service(name=fields[0], manager="inetd", enabled=True,
                           origin=f"/etc/inetd.conf:{number}", exec_start=" ".join(fields[5:])))
    return out


def _xinetd_blocks(text: str, path: str, errors: Errors | None) -> list[tuple[str, dict[str, str], int]]:
    blocks: list[tuple[str, dict[str, str], int]] = []
    current: tuple[str, dict[str, str], int] | None = None
    pending: tuple[str, int] | None = None
    for number, line in lines(text, errors, path):
        if not line or line.startswith("#"):
            continue
        match = _XINETD_SERVICE.match(line)
        if match and current is None:
            pending = (match.group(1) or match.group(2), number)
            if "{" in line:
                current, pending = (pending[0], {}, pending[1]), None
            continue
        if line.startswith("{") and pending is not None:
            current, pending = (pending[0], {}, pending[1]), None
            continue
        if line.startswith("}"):
            if current is not None:
                blocks.append(current)
            current = None
            continue
        if current is not None:
            key, sep, value = line.partition("=")
            if sep:
                current[1][key.strip().rstrip("+-").strip().lower()] = value.strip()
    return blocks


def _xinetd(reader: Reader, errors: Errors | None) -> list[Service]:
    disabled: set[str] = set()
    main = read_optional(reader, "/etc/xinetd.conf", errors) or ""
    for name, attrs, _line in _xinetd_blocks(main, "/etc/xinetd.conf", errors):
        if name == "defaults":
            disabled.update(attrs.get("disabled", "").split())
    out: list[Service] = []
    for entry in list_dir(reader, "/etc/xinetd.d", errors):
        if entry.startswith(".") or entry.endswith("~") or "." in entry:
            continue  # xinetd's includedir skips names with a dot or ending in ~
        path = f"/etc/xinetd.d/{entry}"
        text = read_optional(reader, path, errors)
        if text is None:
            continue
        for name, attrs, number in _xinetd_blocks(text, path, errors):
            if name == "defaults":
                continue
            off = attrs.get("disable", "no").lower() == "yes" or name in disabled
            command = " ".join(v for v in (attrs.get("server"), attrs.get("server_args")) if v) or None
            out.append(Service(name=name, manager="xinetd", enabled=not off,
                               origin=f"{path}:{number}", exec_start=command))
    return out


def _sysv(reader: Reader, errors: Errors | None) -> list[Service]:
    seen: dict[str, Service] = {}
    for directory in _RC_DIRS:
        for entry in list_dir(reader, directory, errors):
            match = _RC_START.match(entry)
            if match and match.group(1) not in seen:
                seen[match.group(1)] = Service(name=match.group(1), manager="sysv", enabled=True,
                                               origin=f"{directory}/{entry}")
    return list(seen.values())


def _openrc(reader: Reader, errors: Errors | None) -> list[Service]:
    seen: dict[str, Service] = {}
    for level in list_dir(reader, "/etc/runlevels", errors):
        if level == "shutdown":
            continue
        directory = f"/etc/runlevels/{level}"
        for entry in list_dir(reader, directory, errors):
            if entry not in seen:
                seen[entry] = Service(name=entry, manager="openrc", enabled=True,
                                      origin=f"{directory}/{entry}")
    return list(seen.values())


def read_services(reader: Reader, *, errors: Errors | None = None) -> tuple[Service, ...]:
    """Services enabled (or masked) at boot, from every service manager found in the root.

    Problems (an unreadable unit file, a directory over the listing cap) are appended to ``errors``
    and the rest is still read.
    """
    systemd = _systemd(reader, errors)
    return (*systemd.values(), *_inetd(reader, errors), *_xinetd(reader, errors),
            *_sysv(reader, errors), *_openrc(reader, errors))
