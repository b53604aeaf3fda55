"""A minimal systemd unit-file reader, enough for the ``[Socket]`` section of libvirt's socket units.

Lines are read as systemd 252 reads them (shared/conf-parser.c ``config_parse``/``parse_line``): a
UTF-8 byte order mark is skipped; a line whose first non-blank character is ``#`` or ``;`` is a
comment — never a continuation, and passed over inside one —; a backslash that ends a line and is
not itself escaped joins the next line; blanks are space, tab, newline and carriage return only;
``[Section]`` is the whole text between the brackets (``[ Socket ]`` is no ``Socket``); a line that
is not UTF-8, a section header without ``]`` or a line over 1 MiB make systemd stop reading the file
(:func:`read_unit` returns what came before and the reason). Files are applied in order (the unit,
then its drop-ins in file-name order): for a list setting such as ``ListenStream=`` each assignment
appends and an empty assignment resets the list; for a single-valued setting the last wins.
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import Struct

MAX_UNIT_LINES = 10_000
MAX_LINE_BYTES = 1024 * 1024  # LONG_LINE_MAX
DEFAULT_SOCKET_MODE = 0o666  # systemd.socket(5): "Defaults to 0666"
_BLANKS = " \t\n\r"  # WHITESPACE in systemd's string-util.h
_BOM = "\ufeff"

Assignments = tuple[tuple[str, str, str], ...]  # (section, key, value) in file order


def _ends_in_continuation(line: str) -> bool:
    escaped = False
    for ch in line:
        escaped = not escaped if ch == "\\" else False
    return escaped


def read_unit(data: bytes | str) -> tuple[Assignments, str | None]:
    """The assignments of one unit file or drop-in, in order, and why systemd stops reading it
    (None when it reads it all). Bounded to 10,000 lines: past them the file is not read (a reason)."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    physical = raw.split(b"\n")
    if len(physical) > MAX_UNIT_LINES + 1:
        physical, error = physical[:MAX_UNIT_LINES], f"more than {MAX_UNIT_LINES} lines: the rest not read"
    else:
        error = None
    out: list[tuple[str, str, str]] = []
    section = ""
    continuation: str | None = None
    for number, chunk in enumerate(physical, 1):
        if len(chunk) > MAX_LINE_BYTES:
            return tuple(out), f"line {number} is longer than {MAX_LINE_BYTES} bytes"
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError:
            return tuple(out), f"line {number} is not valid UTF-8 (systemd stops reading the file)"
        if number == 1 and line.startswith(_BOM):
            line = line[1:]
        stripped = line.lstrip(_BLANKS)
        if stripped[:1] in ("#", ";") and stripped:
            continue  # a comment, also inside a continuation
        if continuation is not None:
            line = continuation + line
        if _ends_in_continuation(line):
            continuation = line[:-1] + " "
            continue
        continuation = None
        text = line.strip(_BLANKS)
        if not text:
            continue
        if text.startswith("["):
            if not text.endswith("]"):
                return tuple(out), f"line {number}: invalid section header {text!r} (systemd stops reading)"
            section = text[1:-1]
            continue
        key, sep, value = text.partition("=")
        if sep and key:
            out.append((section, key.strip(_BLANKS), value.strip(_BLANKS)))
    return tuple(out), error


def parse_unit(text: bytes | str) -> Assignments:
    """The assignments systemd reads from one unit file or drop-in (see :func:`read_unit`)."""
    return read_unit(text)[0]


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
