"""libvirt's configuration-file syntax (virConf), as ``src/util/virconf.c`` parses it.

Used for libvirtd.conf, virtqemud.conf, virtproxyd.conf and qemu.conf. The grammar, read from
virconf.c:

- a statement is ``name = value``, ended by a newline, ``;`` or the end of the file; a ``#``
  comment may follow the value; blank lines and ``#`` lines are skipped;
- a name starts with an ASCII letter and goes on with letters, digits and ``_``;
- a value is a string in ``"..."`` or ``'...'`` (no escapes, no newline inside), a string in
  triple double quotes (may span lines), a signed integer (``-``/``+`` then digits), or a list
  ``[ v, v, ... ]`` that may span lines and may end with a trailing comma. Comments are *not*
  allowed inside a list;
- a key given twice: virConfGetValue walks the entries from the top and returns the **first**
  match, so the first assignment is what the daemon uses and later duplicates are ignored. This
  parser does the same and reports the line of that first assignment.

libvirt reads every list setting with virConfGetValueStringList, which rejects a list holding
anything but strings; such a list (or a nested list) is reported here as an error, since the daemon
would refuse the file. A string ends at a NUL (libvirt copies it with ``g_strndup``). Integers are
computed as libvirt computes them, in a 64-bit integer that wraps (``18446744073709551617`` is 1).
"""

from __future__ import annotations

from typing import Any

from vmsec.errors import ParseError
from vmsec.facts import ConfValue

MAX_CONF_BYTES = 1024 * 1024
MAX_CONF_KEYS = 10_000
_WRAP = 2**64

_BLANK = " \t"
_EOL = "\n\r"


class ConfParseError(ParseError):
    """A libvirt configuration file that libvirt itself would refuse to parse."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(path, reason, line)


MAX_LIST_DEPTH = 64  # lists in lists (virconf.c recurses without a bound; real files have none)


class _Parser:
    def __init__(self, text: str, path: str, reads: frozenset[str] | None = None) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self.end = len(text)
        self.line = 1
        self.reads = reads  # the keys libvirt reads (None: every key counts)

    def error(self, reason: str) -> ConfParseError:
        return ConfParseError(self.path, self.line, reason)

    def cur(self) -> str:
        # virconf.c reads the terminating NUL at the end; "" plays that part here.
        return self.text[self.pos] if self.pos < self.end else ""

    def skip_blanks(self) -> None:
        while self.pos < self.end and self.text[self.pos] in _BLANK:
            self.pos += 1

    def skip_blanks_and_eol(self) -> None:
        while self.pos < self.end and self.text[self.pos] in " \t\n\r":
            if self.text[self.pos] == "\n":
                self.line += 1
            self.pos += 1

    def skip_to_eol(self) -> None:
        while self.pos < self.end and self.text[self.pos] not in _EOL:
            self.pos += 1

    def name(self) -> str:
        self.skip_blanks()
        start = self.pos
        char = self.cur()
        if not (char.isascii() and char.isalpha()):
            raise self.error("expecting a name")
        while self.pos < self.end and (self.text[self.pos].isascii()
                                       and (self.text[self.pos].isalnum() or self.text[self.pos] == "_")):
            self.pos += 1
        return self.text[start:self.pos]

    def string(self) -> str:
        char = self.cur()
        if char == '"' and self.pos + 6 < self.end and self.text.startswith('"""', self.pos):
            self.pos += 3
            close = self.text.find('"""', self.pos)
            if close < 0:
                self.line += self.text.count("\n", self.pos)
                self.pos = self.end
                raise self.error("unterminated string")
            value = self.text[self.pos:close]
            self.line += value.count("\n")
            self.pos = close + 3
            return value.split("\0", 1)[0]  # g_strndup stops at a NUL
        self.pos += 1
        start = self.pos
        while self.pos < self.end and self.text[self.pos] != char and self.text[self.pos] not in _EOL:
            self.pos += 1
        if self.cur() != char:
            raise self.error("unterminated string")
        value = self.text[start:self.pos]
        self.pos += 1
        return value.split("\0", 1)[0]  # g_strndup stops at a NUL

    def number(self) -> int:
        negative = self.cur() == "-"
        if self.cur() in "+-":
            self.pos += 1
        start = self.pos
        while self.pos < self.end and self.text[self.pos] in "0123456789":
            self.pos += 1
        digits = self.text[start:self.pos]
        if not digits:
            raise self.error("unterminated number")
        # virConfParseLong: l = l * 10 + digit in a long long, unchecked — it wraps modulo 2^64 (chunks
        # of 18 digits: int() of a long digit string is quadratic, and refused past 4,300 digits).
        value = 0
        for i in range(0, len(digits), 18):
            chunk = digits[i:i + 18]
            value = (value * 10 ** len(chunk) + int(chunk)) % _WRAP
        if negative:  # a signed value (VIR_CONF_LLONG): -l as two's complement
            value = (-value) % _WRAP
            return value - _WRAP if value >= _WRAP // 2 else value
        return value  # VIR_CONF_ULLONG: (unsigned long long) l

    def any_value(self, depth: int) -> str | int | list[Any]:
        """One value as virConfParseValue reads it: a string, a number, or a list of values."""
        self.skip_blanks()
        char = self.cur()
        if char == "":
            raise self.error("expecting a value")
        if char in "\"'":
            return self.string()
        if char == "[":
            if depth >= MAX_LIST_DEPTH:
                raise self.error(f"lists nested deeper than {MAX_LIST_DEPTH}")
            return self.list_value(depth + 1)
        if char.isdigit() or char in "+-":
            return self.number()
        raise self.error("expecting a value")

    def list_value(self, depth: int) -> list[Any]:
        self.pos += 1  # "["
        items: list[Any] = []
        self.skip_blanks_and_eol()
        if self.pos < self.end and self.cur() != "]":
            items.append(self.any_value(depth))
            self.skip_blanks_and_eol()
        while self.pos < self.end and self.cur() != "]":
            if self.cur() != ",":
                raise self.error("expecting a separator in list")
            self.pos += 1
            self.skip_blanks_and_eol()
            if self.cur() == "]":
                break
            items.append(self.any_value(depth))
            self.skip_blanks_and_eol()
        if self.cur() != "]":
            raise self.error("list is not closed with ]")
        self.pos += 1
        return items

    def value(self, key: str) -> ConfValue | None:
        """The value of ``key``; None for a list libvirt would refuse under a key it never reads."""
        value = self.any_value(0)
        if not isinstance(value, list):
            return value
        if all(isinstance(item, str) for item in value):
            return tuple(value)
        if self.reads is not None and key not in self.reads:
            return None  # virConfGetValueStringList is never asked for it
        nested = any(isinstance(item, list) for item in value)
        what = "a list inside a list" if nested else "a number inside a list"
        raise self.error(f"'{key}': {what}; libvirt expects a list of strings")

    def separator(self) -> None:
        self.skip_blanks()
        if self.pos >= self.end:
            return
        char = self.cur()
        if char in _EOL:
            self.skip_blanks_and_eol()
        elif char == ";":
            self.pos += 1
            self.skip_blanks_and_eol()
        else:
            raise self.error("expecting a separator")

    def parse(self) -> tuple[dict[str, ConfValue], dict[str, int]]:
        values: dict[str, ConfValue] = {}
        lines: dict[str, int] = {}
        assignments = 0
        while self.pos < self.end:
            self.skip_blanks_and_eol()
            if self.cur() == "#":
                self.skip_to_eol()
            else:
                line = self.line
                key = self.name()
                self.skip_blanks()
                if self.cur() != "=":
                    raise self.error("expecting an assignment")
                self.pos += 1
                value = self.value(key)
                self.skip_blanks()
                if self.cur() == "#":
                    self.skip_to_eol()
                assignments += 1
                if assignments > MAX_CONF_KEYS:
                    raise self.error(f"more than {MAX_CONF_KEYS} settings")
                if key not in values and value is not None:  # the first assignment wins (virConfGetValue)
                    values[key] = value
                    lines[key] = line
            self.separator()
        return values, lines


def parse_conf(text: str, path: str, *, reads: frozenset[str] | None = None
               ) -> tuple[dict[str, ConfValue], dict[str, int]]:
    """Parse a libvirt configuration file: (key → value, key → line of that value).

    Raises :class:`ConfParseError` naming ``path`` and the line for anything libvirt would refuse,
    and for files over 1 MiB or with more than 10,000 settings. ``reads``: the keys libvirt reads; a
    list of numbers or lists under another key is left out (libvirt never asks for it), not an error.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONF_BYTES:
        raise ConfParseError(path, 1, f"file is {size} bytes, over the {MAX_CONF_BYTES}-byte limit")
    return _Parser(text, path, reads).parse()
