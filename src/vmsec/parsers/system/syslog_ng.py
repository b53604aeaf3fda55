"""syslog-ng's configuration, for one question: which network destinations a log path uses.

syslog-ng initialises a destination only when a ``log`` statement names it (``destination(d_net)``,
at any depth, or an inline ``destination { … }``): a ``destination d_net { tcp(…); };`` that no log
path uses sends nothing — commenting out the ``log`` line is how forwarding is usually switched off.
syslog-ng 3.38's own debug log (which destinations it connects at start-up) is the test oracle
(tests/parsers/test_syslog_ng_oracle.py).

Read as syslog-ng reads it: ``#`` comments outside strings; ``"…"`` strings with backslash escapes,
``'…'`` strings without; ``@include "x"`` in place — an absolute path, or one relative to the
include path (/etc/syslog-ng, /usr/share/syslog-ng/include); a glob is expanded (sorted, hidden
names excluded); a directory stands for its files whose names are letters, digits, ``_``, ``-``
and ``.`` and do not begin with ``.``. A log path that names a source, filter, parser, rewrite or
destination defined nowhere makes syslog-ng refuse the whole configuration ("Error resolving
reference"): it then runs nothing and forwards nothing. Other syntax errors are not detected.

Network drivers: ``network()``, ``syslog()``, ``tcp()``, ``tcp6()``, ``udp()``, ``udp6()``.
Bounded like the rsyslog reader: :data:`MAX_FILES` files, :data:`MAX_BYTES` in all, include depth
:data:`MAX_DEPTH`, nesting :data:`MAX_NESTING`.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass, field

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileKind
from vmsec.parsers.system._common import CONFIG_LIMIT, Errors, read_optional, unreadable
from vmsec.reading import Reader

MAIN_CONFIG = "/etc/syslog-ng/syslog-ng.conf"
INCLUDE_PATH = ("/etc/syslog-ng", "/usr/share/syslog-ng/include")
MAX_FILES = 256
MAX_BYTES = CONFIG_LIMIT
MAX_DEPTH = 16
MAX_NESTING = 64
NETWORK_DRIVERS = frozenset({"network", "syslog", "tcp", "tcp6", "udp", "udp6"})
OBJECT_KINDS = frozenset({"source", "destination", "filter", "parser", "rewrite"})
_TOKEN = re.compile(r"""\s+|#[^\n]*|"(?:[^"\\]|\\.)*"?|'[^']*'?|[{}();]|@[^\n]*|[^\s{}();"'#]+""", re.DOTALL)
_INCLUDE = re.compile(r"""@include\s+(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+))""")
_DIRECTORY_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class NetworkDestination:
    name: str  # the destination's name, or "(inline)"
    driver: str
    target: str
    path: str
    line: int

    def evidence(self) -> str:
        return (f"syslog-ng {self.path}:{self.line}: {self.driver}() destination {self.name} to "
                f"{self.target[:80]}")


@dataclass
class SyslogNgConfig:
    defined: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in OBJECT_KINDS})
    network: dict[str, list[NetworkDestination]] = field(default_factory=dict)  # named destinations
    used: list[NetworkDestination] = field(default_factory=list)  # inline ones in log paths
    referenced: list[tuple[str, str, str, int]] = field(default_factory=list)  # (kind, name, path, line)
    unresolved: list[str] = field(default_factory=list)

    def forwards(self) -> list[NetworkDestination]:
        """The network destinations syslog-ng would open; none when a reference is unresolved."""
        if self.unresolved:
            return []
        named = [d for kind, name, _, _ in self.referenced if kind == "destination"
                 for d in self.network.get(name, ())]
        return list(dict.fromkeys([*self.used, *named]))


class _Tok:
    __slots__ = ("line", "path", "text")

    def __init__(self, text: str, path: str, line: int) -> None:
        self.text, self.path, self.line = text, path, line


class _Reader:
    def __init__(self, reader: Reader, errors: Errors | None) -> None:
        self.reader, self.errors = reader, errors
        self.files = 0
        self.budget = MAX_BYTES
        self.exhausted = False

    def tokens(self, path: str, depth: int = 0) -> list[_Tok]:
        if self.exhausted:
            return []
        if depth > MAX_DEPTH or self.files >= MAX_FILES or self.budget <= 0:
            self.exhausted = True
            unreadable(self.errors, ReadError(path, "not read, nor any file syslog-ng includes after it: the "
                                              f"includes go deeper or further than {MAX_DEPTH} levels, "
                                              f"{MAX_FILES} files or {MAX_BYTES} bytes", ErrorKind.TOO_LARGE))
            return []
        text = read_optional(self.reader, path, self.errors)
        if text is None:
            return []
        self.files += 1
        self.budget -= len(text)
        out: list[_Tok] = []
        line = 1
        for m in _TOKEN.finditer(text):
            tok = m.group()
            first = tok[0]
            if first == "@":
                include = _INCLUDE.match(tok)
                if include:
                    target = include.group(1) or include.group(2) or include.group(3) or ""
                    for included in self._expand(target.replace('\\"', '"')):
                        out += self.tokens(included, depth + 1)
            elif not first.isspace() and first != "#":
                out.append(_Tok(tok, path, line))
            line += tok.count("\n")
        return out

    def _expand(self, target: str) -> list[str]:
        if not target:
            return []
        bases = [""] if target.startswith("/") else [f"{b}/" for b in INCLUDE_PATH]
        for base in bases:
            path = posixpath.normpath(base + target)
            try:
                if any(c in path for c in "*?["):
                    directory, pattern = posixpath.split(path)
                    names = self.reader.listdir(directory, MAX_FILES)
                    found = [f"{directory}/{n}" for n in sorted(names)
                             if fnmatch.fnmatchcase(n, pattern) and not n.startswith(".")]
                    if found:
                        return found
                    continue
                info = self.reader.stat(path)
                if info.kind is FileKind.DIRECTORY:
                    return [f"{path}/{n}" for n in sorted(self.reader.listdir(path, MAX_FILES))
                            if _DIRECTORY_NAME.fullmatch(n) and not n.startswith(".")]
                if info.exists:
                    return [path]
            except (ReadError, ValueError) as exc:
                unreadable(self.errors, ReadError(path, f"an @include that could not be read: {exc}"))
        return []


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks, self.i = toks, 0
        self.conf = SyslogNgConfig()

    def run(self) -> SyslogNgConfig:
        toks, n = self.toks, len(self.toks)
        while self.i < n:
            tok = toks[self.i]
            word = tok.text
            if word in OBJECT_KINDS and self.i + 2 < n and toks[self.i + 2].text == "{":
                name = toks[self.i + 1].text
                self.i += 3
                body_start = self.i
                self._skip_block()
                self.conf.defined[word].add(name)
                if word == "destination":
                    self.conf.network[name] = self._drivers(body_start, self.i - 1, name)
            elif word == "log" and self.i + 1 < n and toks[self.i + 1].text == "{":
                self.i += 2
                self._log_body(0)
            elif word == "{":
                self.i += 1
                self._skip_block()
            else:
                self.i += 1
        conf = self.conf
        conf.unresolved = [f"{p}:{line}: {kind}({name}) is defined nowhere" for kind, name, p, line
                           in conf.referenced if name not in conf.defined[kind]]
        return conf

    def _skip_block(self) -> None:
        """Past the ``}`` that closes the block whose ``{`` was just taken."""
        self._skip_balanced("{", "}")

    def _skip_balanced(self, opening: str, closing: str) -> None:
        depth = 1
        toks, n = self.toks, len(self.toks)
        while self.i < n and depth:
            t = toks[self.i].text
            depth += t == opening
            depth -= t == closing
            self.i += 1

    def _drivers(self, start: int, end: int, name: str) -> list[NetworkDestination]:
        """Network drivers at the top of a destination body ``toks[start:end]``."""
        out: list[NetworkDestination] = []
        toks = self.toks
        depth = 0
        for k in range(start, end):
            t = toks[k].text
            if t == "(":
                depth += 1
            elif t == ")":
                depth -= 1
            elif depth == 0 and t in NETWORK_DRIVERS and k + 1 < end and toks[k + 1].text == "(":
                target = toks[k + 2].text.strip("\"'") if k + 2 < end and toks[k + 2].text != ")" else ""
                out.append(NetworkDestination(name, t, target, toks[k].path, toks[k].line))
        return out

    def _log_body(self, nesting: int) -> None:
        """A log path's items up to its closing brace: references, inline destinations, nested paths."""
        toks, n = self.toks, len(self.toks)
        while self.i < n:
            tok = toks[self.i]
            t = tok.text
            if t == "}":
                self.i += 1
                return
            nxt = toks[self.i + 1].text if self.i + 1 < n else ""
            if t in OBJECT_KINDS and nxt == "(":
                if self.i + 3 < n and toks[self.i + 3].text == ")":
                    self.conf.referenced.append((t, toks[self.i + 2].text, tok.path, tok.line))
                self.i += 2
                self._skip_parens()
            elif t in OBJECT_KINDS and nxt == "{":
                self.i += 2
                start = self.i
                self._skip_block()
                if t == "destination":
                    self.conf.used += self._drivers(start, self.i - 1, "(inline)")
            elif t in ("log", "junction", "channel", "if", "elif", "else") and nesting < MAX_NESTING:
                self.i += 1
                if t in ("if", "elif") and self.i < n and toks[self.i].text == "(":
                    self.i += 1
                    self._skip_parens()
                if self.i < n and toks[self.i].text == "{":
                    self.i += 1
                    self._log_body(nesting + 1)
            elif t == "{":
                self.i += 1
                self._skip_block()
            else:
                self.i += 1

    def _skip_parens(self) -> None:
        self._skip_balanced("(", ")")


def syslog_ng_config(reader: Reader, errors: Errors | None = None) -> SyslogNgConfig:
    """What ``reader``'s /etc/syslog-ng/syslog-ng.conf sets up (empty without one)."""
    return _Parser(_Reader(reader, errors).tokens(MAIN_CONFIG)).run()
