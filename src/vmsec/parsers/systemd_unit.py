"""A minimal systemd unit-file reader, enough for the ``[Socket]`` section of libvirt's socket units.

systemd syntax: ``[Section]`` headers, ``Key=Value`` assignments, ``#``/``;`` comment lines, and a
trailing backslash continuing a line. Files are applied in order (the unit, then its drop-ins in
file-name order): for a list setting such as ``ListenStream=`` each assignment appends and an empty
assignment resets the list; for a single-valued setting the last assignment wins.
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import Struct

from vmsec.parsers.lines import split_lines, strip_c

MAX_UNIT_LINES = 10_000
DEFAULT_SOCKET_MODE = 0o666  # systemd.socket(5): "Defaults to 0666"

Assignments = tuple[tuple[str, str, str], ...]  # (section, key, value) in file order


def parse_unit(text: str) -> Assignments:
    """The assignments of one unit file or drop-in, in order. Bounded to 10,000 lines."""
    out: list[tuple[str, str, str]] = []
    section = ""
    pending = ""
    for raw in split_lines(text)[:MAX_UNIT_LINES]:
        line = pending + strip_c(raw) if pending else strip_c(raw)
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        if sep:
            out.append((section, key.strip(), value.strip()))
    return tuple(out)


class SocketSettings(Struct, frozen=True):
    listen_streams: tuple[str, ...] = ()
    socket_mode: int | None = None
    socket_group: str | None = None


def socket_settings(files: Sequence[Assignments]) -> SocketSettings:
    """Merge the ``[Socket]`` settings of a unit and its drop-ins, given in the order systemd applies them."""
    streams: list[str] = []
    mode: int | None = None
    group: str | None = None
    for assignments in files:
        for section, key, value in assignments:
            if section != "Socket":
                continue
            if key == "ListenStream":
                if value:
                    streams.append(value)
                else:
                    streams.clear()
            elif key == "SocketMode":
                if not value:
                    mode = None  # an empty assignment restores the default
                elif value.isdigit() and all(c in "01234567" for c in value) and int(value, 8) <= 0o7777:
                    mode = int(value, 8)
                # an invalid assignment is ignored by systemd, so the previous value stays
            elif key == "SocketGroup":
                group = value or None
    return SocketSettings(listen_streams=tuple(streams),
                          socket_mode=DEFAULT_SOCKET_MODE if mode is None else mode, socket_group=group)
