"""syslog-ng's configuration, for one question: which network destinations a log path uses.

syslog-ng initialises a destination only when a ``log`` statement names it (``destination(d_net)``,
at any depth, or an inline ``destination { … }``): a ``destination d_net { tcp(…); };`` that no log
path uses sends nothing — commenting out the ``log`` line is how forwarding is usually switched off.
syslog-ng 3.38's own debug log (which destinations it connects at start-up) is the test oracle
(tests/parsers/test_syslog_ng_oracle.py).

Read as syslog-ng reads it:

- ``#`` comments outside strings; ``"…"`` strings with backslash escapes, ``'…'`` without;
  ``@define name value`` and the backtick substitution of `` `name` `` in what follows;
- ``@include`` in place: an absolute path, or one relative to the include path (/etc/syslog-ng,
  /usr/share/syslog-ng/include; a glob takes the matches of every directory on it); globs with
  wildcards in any component (hidden names only for a pattern that starts with a dot); a
  directory stands for its files named with letters, digits, ``_``, ``-`` and ``.``; ``@requires
  MODULE`` skips the rest of its file when the module is not installed;
- ``block destination NAME(…) { … }`` (the SCL's graylog2(), loggly() … too) is expanded where a
  destination uses ``NAME(…)``, and a ``block root`` where the top level calls it.

syslog-ng refuses the whole configuration — then runs nothing and forwards nothing — when there is
no valid ``@version`` (3.0 or later), a non-glob ``@include`` names no file, an object is defined
twice (without ``@define allow-config-dups 1``), a log path names a source, filter, parser, rewrite
or destination defined nowhere, two used network destinations share transport, host and port
("Automatic assignment of persist names failed"), or the text holds a byte order mark, form feed
or no-break space. Other syntax errors are not detected.

Network drivers: ``network()``, ``syslog()``, ``tcp()``, ``tcp6()``, ``udp()``, ``udp6()``.
Bounded: :data:`MAX_FILES` files, :data:`MAX_BYTES` in all, include depth :data:`MAX_DEPTH`,
nesting :data:`MAX_NESTING`, and block expansion by a token budget the size of the input (at least
:data:`EXPANSION_MIN`); blocks past it are left unexpanded and the input is recorded as not read.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileKind
from vmsec.parsers.system._common import CONFIG_LIMIT, Errors, glob_paths, unreadable
from vmsec.reading import Reader

MAIN_CONFIG = "/etc/syslog-ng/syslog-ng.conf"
INCLUDE_PATH = ("/etc/syslog-ng", "/usr/share/syslog-ng/include")
MODULE_DIRS = ("/usr/lib/syslog-ng", "/usr/lib64/syslog-ng", "/usr/lib/x86_64-linux-gnu/syslog-ng")
MAX_FILES = 256
MAX_BYTES = CONFIG_LIMIT
MAX_DEPTH = 16
MAX_NESTING = 64
MAX_INCLUDES = 1024  # @include lines followed in all
EXPANSION_MIN = 100_000  # tokens block expansion may always add, however small the input
NETWORK_DRIVERS = frozenset({"network", "syslog", "tcp", "tcp6", "udp", "udp6"})
OBJECT_KINDS = frozenset({"source", "destination", "filter", "parser", "rewrite"})
_TOKEN = re.compile(r"""[ \t\r\n]+|#[^\n]*|"(?:[^"\\]|\\.)*"?|'[^']*'?|[{}();,]|[^ \t\r\n{}();,"'#]+""",
                    re.DOTALL)
_PRAGMA = re.compile(r"@([a-z_-]+)[ \t]*:?[ \t]*(.*)", re.IGNORECASE)
_DEFINE = re.compile(r"""@define\s+(\S+)\s+(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+))""")
_INCLUDE = re.compile(r"""@include\s+(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*$""")
_VERSION = re.compile(r"""["']?(\d+)\.(\d+)["']?\s*$""")
_BACKTICK = re.compile(r"`([^`\n]*)`")
_DIRECTORY_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_REFUSED_CHARACTERS = ("\ufeff", "\f", "\xa0")  # no blank to syslog-ng's lexer: a syntax error


@dataclass(frozen=True)
class NetworkDestination:
    name: str  # the destination's name, or "(inline)"
    driver: str
    target: str
    path: str
    line: int
    port: str = ""

    def evidence(self) -> str:
        return (f"syslog-ng {self.path}:{self.line}: {self.driver}() destination {self.name} to "
                f"{self.target[:80]}")

    def persist_key(self) -> tuple[str, str, str]:
        """(transport, host, port) as syslog-ng names the destination's persistent state."""
        transport = {"tcp6": "tcp", "udp6": "udp"}.get(self.driver, self.driver)
        if self.driver in ("network", "syslog"):
            transport = "tcp"
        port = self.port or ("601" if self.driver == "syslog" else "514")
        return transport, self.target, port


@dataclass
class SyslogNgConfig:
    defined: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in OBJECT_KINDS})
    network: dict[str, list[NetworkDestination]] = field(default_factory=dict)  # named destinations
    used: list[NetworkDestination] = field(default_factory=list)  # inline ones in log paths
    referenced: list[tuple[str, str, str, int]] = field(default_factory=list)  # (kind, name, path, line)
    unresolved: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why syslog-ng would refuse the configuration

    def forwards(self) -> list[NetworkDestination]:
        """The network destinations syslog-ng would open; none when it refuses the configuration."""
        if self.unresolved or self.refused:
            return []
        return self.opened()

    def opened(self) -> list[NetworkDestination]:
        """The network destinations log paths use (each once), whether syslog-ng starts or not."""
        names = dict.fromkeys(name for kind, name, _, _ in self.referenced if kind == "destination")
        return list(dict.fromkeys([*self.used, *(d for name in names for d in self.network.get(name, ()))]))


class _Tok:
    __slots__ = ("line", "path", "text")

    def __init__(self, text: str, path: str, line: int) -> None:
        self.text, self.path, self.line = text, path, line


class _Reader:
    """The token stream of the main file with its includes in place, after @define substitution."""

    def __init__(self, reader: Reader, errors: Errors | None) -> None:
        self.reader, self.errors = reader, errors
        self.files = 0
        self.budget = MAX_BYTES
        self.exhausted = False
        self.defines: dict[str, str] = {}
        self.version: str | None = None
        self.refused: list[str] = []
        self.includes = 0
        self.reading: list[str] = []  # the include stack
        self.modules: dict[str, bool] = {}  # @requires answers

    def tokens(self, path: str, depth: int = 0) -> list[_Tok]:
        if self.exhausted:
            return []
        if depth > MAX_DEPTH or self.files >= MAX_FILES or self.budget <= 0:
            self.exhausted = True
            unreadable(self.errors, ReadError(path, "not read, nor any file syslog-ng includes after it: the "
                                              f"includes go deeper or further than {MAX_DEPTH} levels, "
                                              f"{MAX_FILES} files or {MAX_BYTES} bytes", ErrorKind.TOO_LARGE))
            return []
        if path in self.reading:
            return []  # a file including itself (syslog-ng would recurse to its own depth limit)
        try:
            text = self.reader.read_text(path, min(CONFIG_LIMIT, max(self.budget, 1)))
        except ReadError as exc:
            if exc.kind is ErrorKind.TOO_LARGE and self.budget < CONFIG_LIMIT:
                self.exhausted = True  # over what is left of the budget: said once, nothing more is read
            if not exc.absent:
                unreadable(self.errors, exc)
            return []
        self.files += 1
        self.budget -= len(text)
        if any(c in text for c in _REFUSED_CHARACTERS):
            self.refused.append(f"{path}: a byte order mark, form feed or no-break space (a syntax error)")
        self.reading.append(path)
        try:
            return self._tokens(text, path, depth)
        finally:
            self.reading.pop()

    def _tokens(self, text: str, path: str, depth: int) -> list[_Tok]:
        out: list[_Tok] = []
        # Pragmas (@version, @include …) are lines of their own outside any braces: inside a block's
        # body syslog-ng keeps the text as it is until the block is used. Strings may span lines.
        pos, n, number, braces = 0, len(text), 1, 0
        while pos < n:
            at_line_start = pos == 0 or text[pos - 1] == "\n"
            if braces == 0 and at_line_start:
                end = text.find("\n", pos)
                end = n if end < 0 else end
                line = text[pos:end]
                if line.lstrip(" \t\r").startswith("@"):
                    if line[:1] in (" ", "\t"):
                        self.refused.append(f"{path}:{number}: an indented pragma (a syntax error)")
                    if not self._pragma(line.strip(" \t\r"), path, number, depth, out):
                        break  # @requires a module that is not installed: the rest of the file is skipped
                    pos = end
                    continue
            m = _TOKEN.match(text, pos)
            assert m is not None
            tok = m.group()
            pos = m.end()
            if tok[0] not in " \t\r\n#":
                braces += (tok == "{") - (tok == "}")
                if "`" in tok:  # an @define's `name` is replaced; a block's parameter is kept for later
                    tok = _BACKTICK.sub(lambda b: self.defines.get(b.group(1), b.group()), tok)
                    if tok[:1] not in "\"'":  # a whole driver from a macro: its own tokens
                        out += [_Tok(t.group(), path, number) for t in _TOKEN.finditer(tok)
                                if t.group()[0] not in " \t\r\n#"]
                        number += m.group().count("\n")
                        continue
                out.append(_Tok(tok, path, number))
            number += m.group().count("\n")
        return out

    def _pragma(self, line: str, path: str, number: int, depth: int, out: list[_Tok]) -> bool:
        m = _PRAGMA.match(line)
        name = m.group(1).lower() if m else ""
        if name == "version" and m:
            self.version = m.group(2).split("#", 1)[0].strip()
        elif name == "define" and (d := _DEFINE.match(line)):
            quoted = d.group(2).replace('\\"', '"') if d.group(2) is not None else None
            self.defines[d.group(1)] = next(v for v in (quoted, d.group(3), d.group(4), "") if v is not None)
        elif name == "include":
            inc = _INCLUDE.match(line.split("#", 1)[0].rstrip() if '"' not in line else line)
            if inc is None:
                self.refused.append(f"{path}:{number}: an @include syslog-ng cannot parse")
                return True
            target = _BACKTICK.sub(lambda b: self.defines.get(b.group(1), ""),
                                   inc.group(1) if inc.group(1) is not None else inc.group(2))
            for included in self._expand(target, path, number):
                out += self.tokens(included, depth + 1)
        elif name == "requires" and m:
            module = m.group(2).split()[0] if m.group(2).split() else ""
            return not module or self._module_installed(module)
        return True

    def _module_installed(self, module: str) -> bool:
        """Whether the guest has the module's library (each SCL file asks again: looked up once)."""
        known = self.modules.get(module)
        if known is None:
            known = self.modules[module] = self._find_module(module)
        return known

    def _find_module(self, module: str) -> bool:
        for base in MODULE_DIRS:
            for candidate in [*self._glob(f"{base}/*/lib{module}.so"), f"{base}/lib{module}.so"]:
                if self.reader.exists(candidate):
                    return True
        return False

    def _expand(self, target: str, path: str, number: int) -> list[str]:
        if not target or self.exhausted:
            return []
        self.includes += 1
        if self.includes > MAX_INCLUDES:
            self.exhausted = True
            unreadable(self.errors, ReadError(path, f"more than {MAX_INCLUDES} @include lines; the rest were "
                                              "not followed", ErrorKind.TOO_LARGE))
            return []
        bases = [""] if target.startswith("/") else [f"{b}/" for b in INCLUDE_PATH]
        wild = any(c in target for c in "*?[")
        found: list[str] = []
        for base in bases:
            name = posixpath.normpath(base + target)
            if wild:
                found += [p for p in self._glob(name) if self.reader.stat(p).kind is FileKind.FILE]
                continue
            info = self.reader.stat(name) if "\x00" not in name else None
            if info is not None and info.kind is FileKind.DIRECTORY:
                try:
                    names = self.reader.listdir(name, MAX_FILES)
                except ReadError as exc:
                    unreadable(self.errors, exc)
                    return []
                return [f"{name}/{n}" for n in sorted(names)
                        if _DIRECTORY_NAME.fullmatch(n) and not n.startswith(".")]
            if info is not None and info.exists:
                return [name]
        if not wild:
            self.refused.append(f"{path}:{number}: @include {target}: no such file")
        return found

    def _glob(self, pattern: str) -> list[str]:
        return glob_paths(self.reader, pattern, MAX_FILES)


@dataclass
class _Block:
    kind: str
    body: list[_Tok]
    defaults: dict[str, str]


class _Parser:
    def __init__(self, toks: list[_Tok], defines: dict[str, str]) -> None:
        self.toks, self.i = toks, 0
        self.conf = SyslogNgConfig()
        self.blocks: dict[str, _Block] = {}
        # Blocks are expanded from a budget as large as the input (at least EXPANSION_MIN tokens): a
        # block called many times must not multiply the work by its size.
        self.expansion_budget = max(len(toks), EXPANSION_MIN)
        self.truncated: str | None = None  # why blocks were left unexpanded (the result is incomplete)
        self.allow_dups = defines.get("allow-config-dups", "0") not in ("0", "")

    def run(self) -> SyslogNgConfig:
        conf = self.conf
        while self.i < len(self.toks):
            tok = self.toks[self.i]
            word = tok.text
            nxt = self._at(1)
            if word == "block" and self._at(3) == "(":
                self._block_definition()
            elif word in OBJECT_KINDS and self._at(2) == "{":
                name = nxt
                self.i += 3
                start = self.i
                self._skip_balanced("{", "}")
                if name in conf.defined[word] and not self.allow_dups:
                    conf.refused.append(f"{tok.path}:{tok.line}: {word} {name} is defined twice")
                conf.defined[word].add(name)
                if word == "destination":
                    conf.network[name] = self._drivers(start, self.i - 1, name, 0)
            elif word == "log" and nxt == "{":
                self.i += 2
                self._log_body(0)
            elif word in self.blocks and self.blocks[word].kind == "root" and nxt == "(":
                self._expand_root(word)
            elif word == "{":
                self.i += 1
                self._skip_block()
            else:
                self.i += 1
        conf.unresolved = [f"{p}:{line}: {kind}({name}) is defined nowhere" for kind, name, p, line
                           in conf.referenced if name not in conf.defined[kind]]
        return conf

    def _at(self, offset: int) -> str:
        k = self.i + offset
        return self.toks[k].text if k < len(self.toks) else ""

    def _block_definition(self) -> None:
        """``block KIND NAME(params) { body };``: kept for expansion where it is used."""
        kind, name = self._at(1), self._at(2)
        self.i += 4
        params_start = self.i
        self._skip_balanced("(", ")")
        defaults = _block_defaults(self.toks[params_start:self.i - 1])
        if self._at(0) == "{":
            self.i += 1
            start = self.i
            self._skip_block()
            self.blocks[name] = _Block(kind, self.toks[start:self.i - 1], defaults)

    def _expand_root(self, name: str) -> None:
        """A ``block root`` called at the top level: its body stands there."""
        self.i += 2
        self._skip_balanced("(", ")")
        if self._spend(len(self.blocks[name].body)):
            self.toks[self.i:self.i] = self.blocks[name].body

    def _spend(self, tokens: int) -> bool:
        """Take ``tokens`` from the expansion budget; False (and the result marked incomplete) when
        it does not hold them."""
        if tokens > self.expansion_budget:
            self.truncated = ("blocks are called more often than the input's size allows expanding: "
                              "the rest were not expanded")
            return False
        self.expansion_budget -= tokens
        return True

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

    def _drivers(self, start: int, end: int, name: str, nesting: int) -> list[NetworkDestination]:
        """Network drivers at the top of a destination body ``toks[start:end]``, destination blocks
        expanded."""
        out: list[NetworkDestination] = []
        toks = self.toks
        depth = 0
        for k in range(start, end):
            t = toks[k].text
            if t == "(":
                depth += 1
            elif t == ")":
                depth -= 1
            elif depth == 0 and k + 1 < end and toks[k + 1].text == "(":
                if t in NETWORK_DRIVERS:
                    out.append(_network(toks, k, end, name))
                elif t in self.blocks and self.blocks[t].kind == "destination" and nesting < MAX_NESTING:
                    out += self._from_block(t, toks, k, end, name, nesting)
        return out

    def _from_block(self, block: str, toks: list[_Tok], k: int, end: int, name: str,
                    nesting: int) -> list[NetworkDestination]:
        """The network drivers a destination block call brings, its `` `param` `` values taken from the
        call (``host("x")``, or the first value given) or the block's defaults."""
        definition = self.blocks[block]
        if not self._spend(len(definition.body)):
            return []
        close, depth = k + 1, 0
        while close < end:  # the call's own closing parenthesis
            depth += toks[close].text == "("
            depth -= toks[close].text == ")"
            if depth == 0:
                break
            close += 1
        args = _block_defaults(toks[k + 2:close])
        values = {**definition.defaults, **args}
        saved = self.toks
        body = [_Tok(_BACKTICK.sub(lambda m: values.get(m.group(1), ""), t.text), toks[k].path, toks[k].line)
                for t in definition.body]
        self.toks = body
        try:
            return self._drivers(0, len(body), name, nesting + 1)
        finally:
            self.toks = saved

    def _log_body(self, nesting: int) -> None:
        """A log path's items up to its closing brace: references, inline destinations, nested paths."""
        toks = self.toks
        while self.i < len(toks):
            tok = toks[self.i]
            t = tok.text
            if t == "}":
                self.i += 1
                return
            nxt = self._at(1)
            if t in OBJECT_KINDS and nxt == "(":
                self.i += 2
                start = self.i
                self._skip_balanced("(", ")")
                names = [x.text.strip("\"'") for x in toks[start:self.i - 1] if x.text != ","]
                if len(names) == 1:  # destination(d_net), destination("d_net"), destination(d_net,)
                    self.conf.referenced.append((t, names[0], tok.path, tok.line))
            elif t in OBJECT_KINDS and nxt == "{":
                self.i += 2
                start = self.i
                self._skip_block()
                if t == "destination":
                    self.conf.used += self._drivers(start, self.i - 1, "(inline)", 0)
            elif t in ("log", "junction", "channel", "if", "elif", "else") and nesting < MAX_NESTING:
                self.i += 1
                if t in ("if", "elif") and self._at(0) == "(":
                    self.i += 1
                    start = self.i
                    self._skip_balanced("(", ")")
                    cond = toks[start:self.i - 1]
                    for k in range(len(cond) - 3):  # filter(f_x) in the condition must exist too
                        if cond[k].text == "filter" and cond[k + 1].text == "(" and cond[k + 3].text == ")":
                            self.conf.referenced.append(("filter", cond[k + 2].text, tok.path, tok.line))
                if self._at(0) == "{":
                    self.i += 1
                    self._log_body(nesting + 1)
            elif t == "{":
                self.i += 1
                self._skip_block()
            else:
                self.i += 1


def _network(toks: list[_Tok], k: int, end: int, name: str) -> NetworkDestination:
    """A network driver call at ``toks[k]``: its host (the first positional value) and port()."""
    target, port, depth = "", "", 0
    j = k + 2
    while j < end:
        t = toks[j].text
        if t == "(":
            depth += 1
        elif t == ")":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and not target and (t[0] in "\"'" or (j + 1 < end and toks[j + 1].text != "(")):
            target = t.strip("\"'")
        elif depth == 0 and t == "port" and j + 2 < end and toks[j + 1].text == "(":
            port = toks[j + 2].text.strip("\"'")
        j += 1
    return NetworkDestination(name, toks[k].text, target, toks[k].path, toks[k].line, port)


def _block_defaults(toks: list[_Tok]) -> dict[str, str]:
    """``name(value)`` pairs of a block's parameter list or a call's arguments (the first bare value
    is ``host``'s, as the SCL's network destinations take it)."""
    values: dict[str, str] = {}
    j = 0
    while j < len(toks):
        t = toks[j].text
        if j + 1 < len(toks) and toks[j + 1].text == "(":
            inner = [x.text for x in toks[j + 2:j + 4]]
            if inner and (len(inner) < 2 or inner[1] == ")"):
                values[t] = inner[0].strip("\"'")
            depth, j = 0, j + 1
            while j < len(toks):
                depth += toks[j].text == "("
                depth -= toks[j].text == ")"
                j += 1
                if depth == 0:
                    break
            continue
        if t[0] in "\"'" and "host" not in values:
            values["host"] = t.strip("\"'")
        j += 1
    return values


def syslog_ng_config(reader: Reader, errors: Errors | None = None) -> SyslogNgConfig:
    """What ``reader``'s /etc/syslog-ng/syslog-ng.conf sets up (empty without one)."""
    source = _Reader(reader, errors)
    toks = source.tokens(MAIN_CONFIG)
    parser = _Parser(toks, source.defines)
    conf = parser.run()
    if parser.truncated:
        unreadable(errors, ReadError(MAIN_CONFIG, parser.truncated, ErrorKind.TOO_LARGE))
    keys = [d.persist_key() for d in conf.opened()]
    if len(set(keys)) != len(keys):
        conf.refused.append("two used network destinations share transport, host and port (\"Automatic "
                            "assignment of persist names failed\")")
    if source.files:
        conf.refused += source.refused
        version = _VERSION.match(source.version or "")
        if version is None or int(version.group(1)) < 3:
            conf.refused.append(f"@version is {source.version or 'missing'}: syslog-ng refuses the "
                                "configuration")
    return conf
