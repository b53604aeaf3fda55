"""Neutralising control characters, for every output channel.

Domain names, subjects, messages, evidence, file names (a qcow2 backing-file name) come from scanned
machines. A control character in them must never act on whoever reads vmsec's output: ESC and CSI
sequences repaint or retitle a terminal, BEL rings, C1 controls (U+0080–U+009F) are 8-bit escapes in
some terminals, bidirectional marks and overrides reorder what is shown, zero-width characters and
the BOM hide text, U+2028/U+2029 break lines. One table, :data:`UNSAFE_RANGES` (Unicode categories
Cc, Cf, Zl, Zp and Cs), says which characters those are for every channel; each channel makes them
inert in its own way:

* :func:`visible` — terminal text, stderr, CSV cells, the HTML text: each such character (and any
  other non-printable one) becomes a visible ``\\xNN`` / ``\\uNNNN`` escape.
* :func:`json_text` — JSON documents (JSON, SARIF, CycloneDX, the HTML report's data, ``diff``,
  alerts): they become ``\\uNNNN`` escapes, so the decoded strings are unchanged; C0 controls are
  escaped by every JSON encoder already. A lone surrogate (an undecodable byte of a guest's file
  name, e.g. ``\\udcff`` for 0xFF) has no valid Unicode value: strict parsers (I-JSON, orjson,
  serde_json) refuse a ``\\udcff`` escape and with it the whole report, so it becomes the visible
  text ``\\udcff`` — what the terminal, the CSV and the store show for it.
* Markdown and JUnit replace them with U+FFFD (:func:`unsafe_pattern`, :func:`unsafe_class`).
* :class:`NeutralisingStream` — the CLI's standard error: every message, including those of click
  and of exceptions, passes through :func:`visible` line by line (newlines and tabs kept).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any, TextIO

__all__ = ["UNSAFE_RANGES", "NeutralisingStream", "json_text", "unsafe_class", "unsafe_pattern", "visible",
           "visible_lines", "write_json_utf8"]

# The characters no output may carry raw (inclusive ranges): Unicode categories Cc (C0, DEL, C1), Cf
# (bidi marks, embeddings, overrides and isolates, zero-width characters, the BOM, Arabic, Egyptian
# and tag format characters), Zl and Zp (U+2028, U+2029) and Cs (lone surrogates). As of Unicode
# 15.1; tests/report/test_unsafe_characters.py checks them against the running Python's unicodedata.
UNSAFE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
_C0 = "".join(map(chr, range(0x20)))


def _unsafe_code_points(keep: str) -> list[tuple[int, int]]:
    """:data:`UNSAFE_RANGES` without the characters of ``keep``."""
    out: list[tuple[int, int]] = []
    for low, high in UNSAFE_RANGES:
        start = low
        for n in sorted(ord(c) for c in keep if low <= ord(c) <= high):
            if start < n:
                out.append((start, n - 1))
            start = n + 1
        if start <= high:
            out.append((start, high))
    return out


def unsafe_class(keep: str = "") -> str:
    """A regex character class of :data:`UNSAFE_RANGES` less the characters of ``keep`` (a format's
    own layout characters, e.g. the line breaks of XML text)."""
    return "[" + "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}"
                         for a, b in _unsafe_code_points(keep)) + "]"


# The patterns are built on first use, not at import: every vmsec process imports this module
# (`vmsec --version` too), building them costs ≈ 30 M instructions, and ASCII text never needs them.
@cache
def unsafe_pattern() -> re.Pattern[str]:
    """Any character of :data:`UNSAFE_RANGES`."""
    return re.compile(unsafe_class())


@cache
def _json_raw() -> re.Pattern[str]:
    # In serialised JSON, C0 controls are the encoder's to escape, and newlines and tabs between its
    # tokens are layout: json_text escapes the rest of the table.
    return re.compile(unsafe_class(keep=_C0))


# The same characters in UTF-8, found on the bytes of a large report (a regex pass over its decoded
# text cost more than writing it): a memchr per first byte, a regex starting with it only when present.
# Written out — deriving it encodes thousands of code points, ≈ 2 ms of every scan whose report is
# not pure ASCII; tests/report/test_unsafe_characters.py derives it from UNSAFE_RANGES and compares.
JSON_UTF8_LEADS: tuple[tuple[bytes, bytes | None], ...] = (
    (b"\x7f", None),
    (b"\xc2", rb"\xc2[\x80-\x9f\xad]"),
    (b"\xd8", rb"\xd8[\x80-\x85\x9c]"),
    (b"\xdb", rb"\xdb\x9d"),
    (b"\xdc", rb"\xdc\x8f"),
    (b"\xe0", rb"\xe0(?:\xa2[\x90-\x91]|\xa3\xa2)"),
    (b"\xe1", rb"\xe1\xa0\x8e"),
    (b"\xe2", rb"\xe2(?:\x80[\x8b-\x8f\xa8-\xae]|\x81[\xa0-\xa4\xa6-\xaf])"),
    (b"\xed", rb"\xed[\xa0-\xbf][\x80-\xbf]"),
    (b"\xef", rb"\xef(?:\xbb\xbf|\xbf[\xb9-\xbb])"),
    (b"\xf0", rb"\xf0(?:\x91(?:\x82\xbd|\x83\x8d)|\x93\x90[\xb0-\xbf]|\x9b\xb2[\xa0-\xa3]"
              rb"|\x9d\x85[\xb3-\xba])"),
    (b"\xf3", rb"\xf3\xa0(?:\x80[\x81\xa0-\xbf]|\x81[\x80-\xbf])"),
)


@cache
def _json_utf8_leads() -> tuple[tuple[bytes, re.Pattern[bytes] | None], ...]:
    return tuple((lead, None if p is None else re.compile(p)) for lead, p in JSON_UTF8_LEADS)


def utf8_needs_no_escape(data: bytes) -> bool:
    """True when UTF-8 ``data`` holds nothing :func:`json_text` would escape."""
    if data.isascii():  # most reports: DEL is the only character left to find
        return b"\x7f" not in data
    for lead, pattern in _json_utf8_leads():
        if lead in data and (pattern is None or pattern.search(data) is not None):
            return False
    return True


def write_json_utf8(out: TextIO, data: bytes) -> None:
    """Write UTF-8 JSON ``data`` to the text stream ``out``, with :func:`json_text`'s escapes.

    A large report is mostly such bytes (orjson's): when ``out`` is a UTF-8 text file over a binary
    buffer and nothing needs escaping, the bytes go to the buffer as they are — decoding them to
    write them only for the stream to encode them again was a tenth of a JSON scan of many domains.
    """
    if utf8_needs_no_escape(data):
        buffer = getattr(out, "buffer", None)
        encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if buffer is not None and encoding == "utf8":
            out.flush()  # what was written as text goes first
            buffer.write(data)
            return
        out.write(data.decode("utf-8"))
        return
    out.write(json_text(data.decode("utf-8")))


def _escape(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def visible(value: object) -> str:
    """``value`` as text with every non-printable character shown as an escape (``\\x1b``, ``\\u202e``).

    Newlines and tabs are escaped too: one finding is one line, whatever a guest wrote.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def visible_lines(text: str) -> str:
    """Like :func:`visible`, but keeps line breaks and tabs (multi-line messages on stderr)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else _escape(c) for c in text)


def _json_escape(m: re.Match[str]) -> str:
    n = ord(m.group())
    if 0xD800 <= n <= 0xDFFF:  # a lone surrogate: its escape is not valid Unicode, so it is shown
        return f"\\\\u{n:04x}"
    if n > 0xFFFF:  # JSON spells a character outside the BMP as a surrogate pair
        n -= 0x10000
        return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"
    return f"\\u{n:04x}"


def json_text(text: str) -> str:
    """Serialised JSON with every :data:`UNSAFE_RANGES` character escaped as ``\\uNNNN``, except a
    lone surrogate, which becomes the visible text ``\\udcNN`` (see the module's docstring).

    Valid JSON stays valid: these characters can only occur inside strings. Encode with
    ``ensure_ascii=False`` (orjson always does): an encoder's own ``\\udcNN`` escapes are not seen here.
    """
    if text.isascii():  # O(1) for str; then DEL is the only character to escape (memchr, not regex)
        return text.replace("\x7f", "\\u007f") if "\x7f" in text else text
    if utf8_needs_no_escape(text.encode("utf-8", "surrogatepass")):  # byte searches: cheaper than a regex
        return text
    return _json_raw().sub(_json_escape, text)


def json_output(value: Any, *, indent: int | None = 2, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as JSON for a command's output: :func:`json_text` of ``json.dumps`` with
    ``ensure_ascii=False`` — the default ``ensure_ascii=True`` writes a lone surrogate (a file name's
    undecodable byte) as a ``\\udcNN`` escape, which strict parsers reject with the whole document."""
    import json

    return json_text(json.dumps(value, indent=indent, ensure_ascii=False, default=default))


class NeutralisingStream:
    """A text stream wrapper that shows control characters as escapes (standard error)."""

    def __init__(self, raw: TextIO) -> None:
        self._raw = raw

    def write(self, text: str) -> int:
        self._raw.write(visible_lines(text))
        return len(text)

    def flush(self) -> None:
        self._raw.flush()

    def isatty(self) -> bool:
        return self._raw.isatty()

    def fileno(self) -> int:
        return self._raw.fileno()

    @property
    def raw(self) -> TextIO:
        """The wrapped stream (for vmsec's own progress display, which draws with escapes)."""
        return self._raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)
