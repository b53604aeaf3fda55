"""Neutralising control characters, for every output channel.

Domain names, subjects, messages, evidence, file names (a qcow2 backing-file name) come from scanned
machines. A control character in them must never act on whoever reads vmsec's output: ESC and CSI
sequences repaint or retitle a terminal, BEL rings, C1 controls (U+0080–U+009F) are 8-bit escapes in
some terminals, bidirectional overrides reorder what is shown. Each channel makes them inert in its
own way:

* :func:`visible` — terminal text, stderr, CSV cells, Markdown: each such character becomes a visible
  ``\\xNN`` / ``\\uNNNN`` escape.
* :func:`json_text` — JSON documents (JSON, SARIF, CycloneDX, the HTML report's data): DEL and C1
  controls (which JSON may carry raw) become ``\\u00NN`` escapes; C0 controls are escaped by every
  JSON encoder already.
* :class:`NeutralisingStream` — the CLI's standard error: every message, including those of click
  and of exceptions, passes through :func:`visible` line by line (newlines and tabs kept).
"""

from __future__ import annotations

import re
from typing import Any, TextIO

__all__ = ["NeutralisingStream", "json_text", "visible", "visible_lines", "write_json_utf8"]

_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# In UTF-8 every character json_text escapes is DEL, starts with byte C2 (C1 controls), or is one of
# the E2 80 A8–AE / E2 81 A6–A9 sequences (line separators, bidi overrides).
_UTF8_BIDI = re.compile(rb"\xe2(?:\x80[\xa8-\xae]|\x81[\xa6-\xa9])")


def utf8_needs_no_escape(data: bytes) -> bool:
    """True when UTF-8 ``data`` holds nothing :func:`json_text` would escape: byte searches, much
    cheaper than a regex pass over the decoded text of a large report."""
    return (b"\x7f" not in data and b"\xc2" not in data
            and (b"\xe2" not in data or _UTF8_BIDI.search(data) is None))  # memchr before the regex


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
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


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


def json_text(text: str) -> str:
    """Serialised JSON with DEL, C1 controls and bidirectional overrides escaped as ``\\uNNNN``.

    Valid JSON stays valid and means the same: these characters can only occur inside strings.
    """
    if text.isascii():  # O(1) for str; then DEL is the only character to escape (memchr, not regex)
        return text.replace("\x7f", "\\u007f") if "\x7f" in text else text
    if utf8_needs_no_escape(text.encode("utf-8", "surrogatepass")):
        return text
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


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
