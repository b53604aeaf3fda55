"""APT's configuration syntax (apt.conf(5)), enough to read settings and lists.

``A::B "v";`` and ``A { B "v"; };`` are the same setting; ``A { "x"; "y"; };`` is a list. Comments are
``//`` to the end of the line, ``/* … */`` and lines starting with ``#`` (``#clear`` empties a
setting; ``#include`` is not followed). Keys compare case-insensitively. APT reads the files of
/etc/apt/apt.conf.d in name order (only names of letters, digits, ``_-.`` with no extension or
``.conf``), then /etc/apt/apt.conf; a later value wins and list items accumulate.
"""

from __future__ import annotations

import re

from msgspec import Struct, field

from vmsec.errors import ErrorKind, ReadError
from vmsec.parsers.system._common import Errors, list_dir, note, read_optional, unreadable
from vmsec.reading import Reader

MAX_TOKENS = 200_000
MAX_DEPTH = 32
_PART_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_TOKEN = re.compile(r'"[^"]*"?|//.*|[{};]|[^\s{};"]+')


class AptConfig(Struct):
    values: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (value, "path:line")
    lists: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def get(self, key: str) -> tuple[str, str] | None:
        return self.values.get(key.lower())

    def items(self, key: str) -> list[tuple[str, str]]:
        return self.lists.get(key.lower(), [])


def _without_block_comments(text: str) -> str:
    """``text`` with each ``/* … */`` replaced by its line breaks (line numbers stay right); a comment
    that is never closed runs to the end, as in apt. One pass: the regular expression this replaces
    (``/\\*.*?\\*/``) rescanned to the end from every unclosed ``/*`` — 24.6 s for 120 KB."""
    parts: list[str] = []
    pos = 0
    while (start := text.find("/*", pos)) >= 0:
        end = text.find("*/", start + 2)
        stop = len(text) if end < 0 else end + 2
        parts += (text[pos:start], "\n" * text.count("\n", start, stop))
        pos = stop
    parts.append(text[pos:])
    return "".join(parts)


def _tokens(text: str) -> list[tuple[str, int]]:
    """(token, line) pairs; comments dropped, ``#clear a b`` kept as one token ``#clear a b``."""
    text = _without_block_comments(text)
    out: list[tuple[str, int]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            if stripped.startswith("#clear"):
                out.append((stripped.rstrip(";"), number))
            continue
        for match in _TOKEN.finditer(line):
            token = match.group(0)
            if token.startswith("//"):
                break
            out.append((token, number))
            if len(out) > MAX_TOKENS:
                return out
    return out


def parse_apt_conf(text: str, path: str, into: AptConfig, errors: Errors | None) -> None:
    """Add one file's settings to ``into``."""
    tokens = _tokens(text)
    if len(tokens) > MAX_TOKENS:
        unreadable(errors, ReadError(path, f"more than {MAX_TOKENS} tokens; the rest is ignored",
                                     ErrorKind.TOO_LARGE))
        tokens = tokens[:MAX_TOKENS]
    stack: list[str] = []
    pending: list[tuple[str, bool, str]] = []  # (token, quoted, origin) of the statement so far
    for token, number in tokens:
        origin = f"{path}:{number}"
        if token.startswith("#clear"):
            for name in token.split()[1:]:
                into.values.pop(name.lower(), None)
                into.lists.pop(name.lower(), None)
        elif token == "{":
            if len(stack) >= MAX_DEPTH:
                note(errors, origin, "configuration nested too deeply; the rest is ignored")
                return
            stack.append(pending[-1][0] if pending and not pending[-1][1] else "")
            pending.clear()
        elif token == "}":
            if stack:
                stack.pop()
            pending.clear()
        elif token == ";":
            _statement(pending, stack, into)
            pending.clear()
        else:
            quoted = token.startswith('"')
            value = token[1:-1] if quoted and len(token) > 1 and token.endswith('"') else token.lstrip('"')
            pending.append((value, quoted, origin))
            if len(pending) > 2:
                note(errors, origin, "not an APT configuration statement")
                pending.clear()


def _statement(pending: list[tuple[str, bool, str]], stack: list[str], into: AptConfig) -> None:
    prefix = "::".join(s for s in stack if s)
    if len(pending) == 1 and pending[0][1]:  # a list item: "value";
        into.lists.setdefault(prefix.lower(), []).append((pending[0][0], pending[0][2]))
    elif len(pending) == 2 and not pending[0][1]:
        key = f"{prefix}::{pending[0][0]}" if prefix else pending[0][0]
        value = (pending[1][0], pending[1][2])
        into.values[key.lower()] = value
        into.lists.setdefault(key.lower(), []).append(value)


def read_apt_config(reader: Reader, errors: Errors | None) -> AptConfig:
    """/etc/apt/apt.conf.d/* in name order, then /etc/apt/apt.conf."""
    config = AptConfig()
    paths = [f"/etc/apt/apt.conf.d/{name}" for name in list_dir(reader, "/etc/apt/apt.conf.d", errors)
             if _PART_NAME.fullmatch(name) and ("." not in name or name.endswith(".conf"))]
    for path in [*paths, "/etc/apt/apt.conf"]:
        text = read_optional(reader, path, errors)
        if text is not None:
            config.files.append(path)
            parse_apt_conf(text, path, config, errors)
    return config
