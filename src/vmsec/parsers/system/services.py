"""Which services a root starts at boot: systemd, inetd, xinetd, SysV rc links and OpenRC.

systemd: the units the start transaction of ``default.target`` reaches at the next boot
(:mod:`vmsec.parsers.system.systemd_boot`, which says how). Listed besides: a unit linked into the
``.wants/`` of a target the boot does not reach (rescue.target, graphical.target on a multi-user
server) with ``enabled=False`` and an origin that says so; a masked unit with ``enabled=False``; a
wants link in a reached unit whose unit file exists nowhere with ``enabled=None``. When
default.target itself cannot be loaded, every unit linked in any ``.wants/`` or ``.requires/`` counts
as enabled: a scan of a partial tree must not pass a service because a target file is missing.

A unit that nothing starts is not listed: absence from the result means "not enabled".

inetd and xinetd entries say that the super-server would start the service; whether the
super-server itself is enabled is its own entry.
"""

from __future__ import annotations

import re

from vmsec.errors import ReadError
from vmsec.facts import Service
from vmsec.parsers.system._common import Errors, lines, list_dir, read_optional
from vmsec.parsers.system.systemd_boot import systemd_services
from vmsec.reading import Reader

_RC_DIRS = ("/etc/rc1.d", "/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d", "/etc/rcS.d")
_RC_START = re.compile(r"^S\d{2}(.+)$")
_XINETD_SERVICE = re.compile(r"^(?:service\s+(\S+)|(defaults)\b)")


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
    systemd = systemd_services(reader, errors)
    return (*systemd.values(), *_inetd(reader, errors), *_xinetd(reader, errors),
            *_sysv(reader, errors), *_openrc(reader, errors))
