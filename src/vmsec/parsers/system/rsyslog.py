"""rsyslog's configuration as rsyslogd 8 loads it, for one question: which forwarding actions run.

Read the way rsyslog's own lexer and grammar read it (rsyslog ``grammar/lexer.l``, ``grammar.y``;
rsyslogd 8.2302's debug dump of its rulesets is the test oracle):

- ``/etc/rsyslog.conf`` and only what it includes, in place: ``$IncludeConfig PATTERN`` and
  ``include(file="PATTERN")``; a pattern is a glob (hidden files excluded, sorted), a directory
  includes every file in it. A drop-in no include names is not read by rsyslog, so not here.
- Comments: ``#`` to the end of the line, ``/* … */`` anywhere but inside a string.
- A forwarding action is ``@host`` (UDP), ``@@host`` (TCP), ``:omfwd:``/``:omrelp:`` (legacy),
  or ``action(type="omfwd"|"omrelp" target=…)``; omrelp only once ``module(load="omrelp")`` or
  ``$ModLoad omrelp`` came before it (else rsyslog refuses the action). An action with no target
  sends nowhere and does not count.
- Filters (priority, property, ``if … then``) do not matter: a filtered forward still forwards.
- Rulesets: an action in a named ruleset counts only when messages reach that ruleset — an input
  bound to it (``input(… ruleset="x")``, ``$Input…BindRuleset x``) or a ``call x`` from a ruleset
  that messages reach. Top-level statements go to the default ruleset, or the one the last legacy
  ``$RuleSet`` named.
- A syntax error the grammar cannot recover from (a ``&`` with no action list before it, an
  unclosed object, an unbalanced brace) ends the configuration there: rsyslogd keeps running with
  what it parsed before it, so that is what counts.

Bounded: at most :data:`MAX_FILES` files and :data:`MAX_BYTES` of text in all; include depth
:data:`MAX_DEPTH`. What is left out is recorded as unread.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileKind
from vmsec.parsers.system._common import CONFIG_LIMIT, Errors, list_dir, read_optional, unreadable
from vmsec.reading import Reader

MAIN_CONFIG = "/etc/rsyslog.conf"
MAX_FILES = 256
MAX_BYTES = 2 * CONFIG_LIMIT  # real configurations are a few KiB; this bounds a hostile one
MAX_DEPTH = 16
MAX_NESTING = 100  # blocks within blocks (if … then { if … then { …)
DEFAULT_RULESET = "RSYSLOG_DefaultRuleset"
FORWARDING = frozenset({"omfwd", "omrelp"})
_BUILTIN = frozenset({"omfwd", "omfile", "ompipe", "omshell", "omdiscard", "omusrmsg", "builtin:omfwd",
                      "builtin:omfile"})

# rsyslogd 8.2302's own templates; any other must be defined before an action names it (names are
# case-sensitive), or rsyslog disables the action.
_BUILTIN_TEMPLATES = frozenset({
    "RSYSLOG_DebugFormat", "RSYSLOG_FileFormat", "RSYSLOG_ForwardFormat", "RSYSLOG_SysklogdFileFormat",
    "RSYSLOG_SyslogProtocol23Format", "RSYSLOG_SyslogRFC5424Format", "RSYSLOG_TraditionalFileFormat",
    "RSYSLOG_TraditionalForwardFormat", "RSYSLOG_omudpspoofDfltSourceTpl"})

# INITIAL-state tokens of rsyslog's lexer, in its order (flex takes the longest match, ties to the
# first rule). Case-insensitive, as the lexer is.
_I = re.IGNORECASE
_OBJECT = re.compile(r"(main_queue|timezone|parser|global|template|ruleset|property|constant|input|module"
                     r"|lookup_table|dyn_stats|include|action)[ \n\t]*\(", _I)
_PROPFILT = re.compile(r'[ \t]*:\$?[a-z\-]+[ ]*,[ ]*!?[a-z]+[ ]*,[ ]*"(?:\\"|[^"])*"', _I)
_PRIFILT = re.compile(r"[ \t]*[*a-z][*a-z]*[0-7]*[.,][,!=;.*a-z0-7]+", _I)
_LEGACY_ACTION = re.compile(r"~|\*|-/[^*][^\n]*|/[^*][^\n]*|:[a-z0-9]+:[^\n]*|[|.\-@^?~>][^\n]+"
                            r"|[a-z0-9_][a-z0-9_\-+,;]*", _I)
_CFSYSLINE = re.compile(r"\$[a-z]+[^\n]*", _I)
_BSD_TAG = re.compile(r"![^ \t\n]+[ \t]*(?=\n|$)")
_BSD_HOST = re.compile(r"[+-]\*[ \t\n]*#[^\n]*|[+-]\*[ \t\n]*(?=\n|$)", _I)
_BSD_HOST_LINE = re.compile(r"[ \t]*[+-][a-z0-9.:-]+[ \t]*(?=\n|$)", _I)
_KEYWORDS = frozenset({"if", "foreach", "stop", "else", "call", "call_indirect", "set", "reset", "unset",
                       "continue", "reload_lookup_table"})
_WORD = re.compile(r"[a-z_][a-z0-9_]*", _I)
# INOBJ: names, punctuation, strings; EXPR: up to "then"/"do"/";".
_OBJ_TOKEN = re.compile(r'\s+|#[^\n]*|/\*.*?(?:\*/|\Z)|\)|[a-z][a-z0-9_.]*|[,\[\]=]'
                        r'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`|.', _I | re.DOTALL)
_EXPR_TOKEN = re.compile(r"\s+|/\*.*?(?:\*/|\Z)|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`"
                         r"|\$[$!./]?[@a-z_]*[!@a-z0-9\-_.\[\]]*|[a-z][a-z0-9_]*|0x[0-9a-f]+|[0-9]+|.",
                         _I | re.DOTALL)
_CALL_NAME = re.compile(r"[a-z][a-z0-9\-_.]+", _I)
_BIND_RULESET = re.compile(r"\$\w*bindruleset\s+(\S+)", _I)
_MODLOAD = re.compile(r"\$modload\s+(\S+)", _I)
_LEGACY_TEMPLATE = re.compile(r"\$template\s+([^,]+),", _I)
_NEXT_WORD = re.compile(r"[ \t\n]*([^ \t\n]+)")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True)
class Token:
    kind: str  # OBJ (with its parameters), PRIFILT, PROPFILT, ACTION, CFSYS, RULESET, CALL, IF, & { } …
    value: str
    path: str
    line: int
    params: dict[str, str] = field(default_factory=dict)
    source: str = ""  # a legacy action's whole line, as written


@dataclass(frozen=True)
class Forward:
    """One forwarding action rsyslogd would run."""

    module: str  # omfwd | omrelp
    target: str
    ruleset: str
    path: str
    line: int
    text: str  # the statement as written (legacy line, or the action's type and target)

    def evidence(self) -> str:
        where = "" if self.ruleset == DEFAULT_RULESET else f" (ruleset {self.ruleset})"
        return f"rsyslog {self.path}:{self.line}: {self.text[:120]}{where}"


class _Stop(Exception):
    """A syntax error rsyslog's grammar does not recover from: the configuration ends there."""


class _Lexer:
    """rsyslog's lexer over the main file and what it includes, in place."""

    def __init__(self, reader: Reader, errors: Errors | None) -> None:
        self.reader = reader
        self.errors = errors
        self.files = 0
        self.budget = MAX_BYTES
        self.exhausted = False

    def tokens(self, path: str, depth: int = 0) -> Iterator[Token]:
        text = self._read(path, depth)
        if text is None:
            return
        pos, n = 0, len(text)
        lines = _LineIndex(text)
        at_bol = True  # only blanks since the last newline: where the filter rules (flex's ^) apply
        while pos < n:
            ch = text[pos]
            if ch in " \t\r\n":
                pos += 1
                at_bol = at_bol or ch == "\n"
                continue
            line = lines.line(pos)
            if text.startswith("/*", pos):
                end = text.find("*/", pos + 2)
                pos = n if end < 0 else end + 2
                at_bol = False
                continue
            if ch == "#":  # a comment runs to the end of the line
                end = text.find("\n", pos)
                pos = n if end < 0 else end + 1
                at_bol = True
                continue
            bol, at_bol = at_bol, False
            if ch == "$":
                m = _CFSYSLINE.match(text, pos)
                if m:
                    pos = m.end()
                    directive = m.group()
                    if directive.lower().startswith("$includeconfig"):  # the lexer compares 14 characters
                        target = _NEXT_WORD.match(text, m.start() + 14)
                        if target:
                            pos = target.end()
                            yield from self._include(target.group(1), depth)
                        continue
                    if re.match(r"\$ruleset[ \t]", directive, re.IGNORECASE):
                        yield Token("RULESET", directive[9:].strip(), path, line)
                    else:
                        yield Token("CFSYS", directive, path, line)
                    continue
            m = _OBJECT.match(text, pos)
            if m:
                name = m.group(1).lower()
                params, pos, closed = _object_params(text, m.end())
                if not closed:
                    yield Token("BROKEN", f"{name}(", path, line)
                    return
                if name == "include":
                    pattern = params.get("file")
                    if pattern:
                        yield from self._include(pattern, depth)
                    continue
                yield Token("OBJ", name, path, line, params)
                continue
            if bol:
                m = _PROPFILT.match(text, pos) or _PRIFILT.match(text, pos)
                if m is not None:
                    legacy = _LEGACY_ACTION.match(text, pos)
                    if legacy is None or legacy.end() <= m.end():
                        kind = "PROPFILT" if text[pos] == ":" else "PRIFILT"
                        yield Token(kind, m.group().strip(), path, line)
                        pos = m.end()
                        continue
                m = _BSD_HOST_LINE.match(text, pos)
                if m is not None:
                    pos = m.end()
                    continue
            if ch in "&{}":
                yield Token(ch, ch, path, line)
                pos += 1
                continue
            if ch == "!":
                m = _BSD_TAG.match(text, pos)
                if m:
                    pos = m.end()
                    continue
            if ch in "+-":
                m = _BSD_HOST.match(text, pos)
                if m:
                    pos = m.end()
                    continue
            word = _WORD.match(text, pos)
            legacy = _LEGACY_ACTION.match(text, pos)
            if word is not None and word.group().lower() in _KEYWORDS and (
                    legacy is None or legacy.end() <= word.end()):
                keyword = word.group().lower()
                pos = word.end()
                if keyword in ("if", "foreach", "set", "reset", "unset", "call_indirect"):
                    stop = {"if": "then", "foreach": "do"}.get(keyword, ";")
                    pos, ended = _skip_expression(text, pos, stop)
                    if not ended:
                        yield Token("BROKEN", keyword, path, line)
                        return
                    yield Token(keyword.upper(), keyword, path, line)
                elif keyword == "call":
                    name, pos = _call_name(text, pos)
                    if name is None:
                        yield Token("BROKEN", keyword, path, line)
                        return
                    yield Token("CALL", name, path, line)
                elif keyword == "reload_lookup_table":
                    end = text.find(")", pos)
                    pos = n if end < 0 else end + 1
                else:
                    yield Token(keyword.upper(), keyword, path, line)
                continue
            if legacy is not None:
                pos = legacy.end()
                source = ""
                if ch in "@:":  # a forwarding action's whole line, for the evidence (it runs to the
                    # end of the line, so each line is looked at once)
                    source = text[text.rfind("\n", 0, legacy.start()) + 1:pos].strip()[:200]
                yield Token("ACTION", legacy.group(), path, line, source=source)
                continue
            pos += 1  # rsyslog: "invalid character" — reported, skipped

    def _read(self, path: str, depth: int) -> str | None:
        if self.exhausted:
            return None
        if depth > MAX_DEPTH or self.files >= MAX_FILES or self.budget <= 0:
            self.exhausted = True  # said once; nothing more is included
            unreadable(self.errors, ReadError(path, "not read, nor any file rsyslog includes after it: the "
                                              f"includes go deeper or further than {MAX_DEPTH} levels, "
                                              f"{MAX_FILES} files or {MAX_BYTES} bytes", ErrorKind.TOO_LARGE))
            return None
        text = read_optional(self.reader, path, self.errors)
        if text is None:
            return None
        self.files += 1
        self.budget -= len(text)
        return text

    def _include(self, pattern: str, depth: int) -> Iterator[Token]:
        if self.exhausted:
            return
        for path in self._expand(pattern):
            yield from self.tokens(path, depth + 1)

    def _expand(self, pattern: str) -> list[str]:
        """glob(3) with GLOB_MARK as rsyslog calls it: a directory stands for every file in it."""
        if not pattern.startswith("/"):
            pattern = "/" + pattern  # rsyslogd runs from /
        if pattern.endswith("/"):
            return [f"{pattern}{n}" for n in list_dir(self.reader, pattern.rstrip("/") or "/", self.errors)
                    if not n.startswith(".")]
        directory, name = posixpath.split(pattern)
        if not any(c in name for c in "*?["):
            info = self.reader.stat(pattern)
            if info.exists and info.kind is FileKind.DIRECTORY:
                return self._expand(pattern + "/")
            return [pattern]
        import fnmatch

        names = list_dir(self.reader, directory, self.errors)
        hidden = name.startswith(".")
        return [posixpath.join(directory, n) for n in names
                if fnmatch.fnmatchcase(n, name) and (hidden or not n.startswith("."))]


class _LineIndex:
    """Line numbers of offsets, asked in increasing order (each newline counted once)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.number = 1

    def line(self, pos: int) -> int:
        self.number += self.text.count("\n", self.offset, pos)
        self.offset = pos
        return self.number


def _object_params(text: str, pos: int) -> tuple[dict[str, str], int, bool]:
    """An object's name="value" parameters (names lower-cased, the last value of a name wins; array
    values joined by spaces), the offset after its ')' and whether it was closed."""
    params: dict[str, str] = {}
    name: str | None = None
    pending: str | None = None
    values: list[str] = []
    in_array = False
    for m in _OBJ_TOKEN.finditer(text, pos):
        tok = m.group()
        first = tok[0]
        if first.isspace() or first == "#" or tok.startswith("/*"):
            continue
        if tok == ")" and not in_array:
            if pending is not None and values:
                params[pending] = " ".join(values)
            return params, m.end(), True
        if first in "\"`":
            value = _ESCAPE.sub(lambda e: e.group(1), tok[1:-1]) if len(tok) > 1 else ""
            if pending is not None:
                values.append(value)
                if not in_array:
                    params[pending] = " ".join(values)
                    pending, values = None, []
            continue
        if tok == "[":
            in_array = True
        elif tok == "]":
            in_array = False
            if pending is not None:
                params[pending] = " ".join(values)
                pending, values = None, []
        elif tok == "=":
            pending, values = name, []
        elif first.isalpha():
            name = tok.lower()
    return params, len(text), False


def _call_name(text: str, pos: int) -> tuple[str | None, int]:
    """The ruleset a ``call`` names. The lexer's INCALL state lists "any character is an error" before
    the name rule, so a one-character name is that error (and is skipped): only two or more count."""
    n = len(text)
    while pos < n:
        if text[pos] in " \t\n":
            pos += 1
            continue
        m = _CALL_NAME.match(text, pos)
        if m is not None:
            return m.group(), m.end()
        pos += 1
    return None, pos


def _legacy_target(action: str) -> tuple[str, str | None] | None:
    """(host, template or None) of a legacy forwarding action (after ``@``, ``@@`` or ``:omrelp:``),
    as omfwd's and omrelp's selector parsers read it; None when they refuse the action: after a port
    only blanks and then a ``;template`` or a ``#`` comment may follow."""
    p = action
    if p.startswith("("):  # framing and compression options: (o), (z9), (o,z9)
        close = p.find(")")
        p = "" if close < 0 else p[close + 1:]
    if p.startswith("["):
        close = p.find("]")
        host, p = (p[1:], "") if close < 0 else (p[1:close], p[close + 1:])
    else:
        m = re.match(r"[^;:#]*", p)
        host = m.group() if m else ""
        p = p[len(host):]
    if p.startswith(":"):
        port = re.match(r":[^;#\s]*", p)
        p = p[port.end():] if port else p
    p = p.lstrip(" \t")
    if p and p[0] not in ";#":
        return None
    template = None
    if p.startswith(";"):
        name = re.match(r"[ \t]*([^#\s]*)", p[1:])
        template = (name.group(1) if name else "") or None
    host = host.strip()
    return (host, template) if host else None


def _skip_expression(text: str, pos: int, stop: str) -> tuple[int, bool]:
    """Past an expression up to its terminating keyword (``then``, ``do``) or ``;``."""
    for m in _EXPR_TOKEN.finditer(text, pos):
        tok = m.group()
        if tok.lower() == stop:
            return m.end(), True
    return len(text), False


@dataclass
class RsyslogConfig:
    """What the configuration sets up: every forwarding action (in any ruleset), the calls between
    rulesets and the rulesets inputs are bound to."""

    modules: set[str] = field(default_factory=lambda: set(_BUILTIN))
    templates: set[str] = field(default_factory=lambda: set(_BUILTIN_TEMPLATES))  # defined so far
    stopped: str | None = None  # the syntax error that ends the configuration early, if any
    forwards: list[Forward] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (caller, called ruleset)
    bound: set[str] = field(default_factory=set)


class _Parser:
    """rsyslog's grammar, as far as it decides which actions exist and in which ruleset."""

    def __init__(self, tokens: Iterator[Token]) -> None:
        self.tokens = tokens
        self.ahead: Token | None = None
        self.conf = RsyslogConfig()
        self.ruleset = DEFAULT_RULESET
        self.depth = 0

    def peek(self) -> Token | None:
        while self.ahead is None:
            tok = next(self.tokens, None)
            if tok is None or tok.kind != "CFSYS":
                self.ahead = tok
                break
            self._cfsysline(tok.value)  # the lexer runs these where they stand, in a block too
        return self.ahead

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise _Stop("unexpected end of the configuration")
        self.ahead = None
        return tok

    def run(self) -> RsyslogConfig:
        conf = self.conf
        while True:
            # What a statement or ruleset adds is kept once the grammar has reduced it: a syntax error
            # inside one discards it, with everything after it.
            kept = len(conf.forwards), len(conf.calls)
            try:
                tok = self.peek()
                if tok is None:
                    break
                if tok.kind == "RULESET":
                    self.take()
                    self.ruleset = tok.value
                elif tok.kind == "OBJ" and tok.value != "action":
                    self.take()
                    self._object(tok)
                else:
                    self._statement(self.ruleset)
            except _Stop as stop:
                del conf.forwards[kept[0]:], conf.calls[kept[1]:]
                conf.stopped = str(stop) or "a syntax error"
                break
        return conf

    def _cfsysline(self, line: str) -> None:
        if m := _MODLOAD.match(line):
            self.conf.modules.add(posixpath.basename(m.group(1)).removesuffix(".so").lower())
        elif m := _BIND_RULESET.match(line):
            self.conf.bound.add(m.group(1))
        elif m := _LEGACY_TEMPLATE.match(line):
            self.conf.templates.add(m.group(1).strip())

    def _object(self, tok: Token) -> None:
        if tok.value == "template" and "name" in tok.params:
            self.conf.templates.add(tok.params["name"])
        elif tok.value == "module" and "load" in tok.params:
            self.conf.modules.add(tok.params["load"].lower())
        elif tok.value == "input" and "ruleset" in tok.params:
            self.conf.bound.add(tok.params["ruleset"])
        elif tok.value == "ruleset":
            name = tok.params.get("name", "")
            if (brace := self.take()).kind != "{":
                raise _Stop(f"ruleset {name} without a block ({brace.value})")
            self._script(name)

    def _script(self, ruleset: str) -> None:
        """Statements up to the closing brace."""
        while True:
            tok = self.peek()
            if tok is None:
                raise _Stop("unclosed block")
            if tok.kind == "}":
                self.take()
                return
            self._statement(ruleset)

    def _statement(self, ruleset: str) -> None:
        tok = self.take()
        kind = tok.kind
        if kind == "IF":
            self._block(ruleset)
            if (nxt := self.peek()) is not None and nxt.kind == "ELSE":
                self.take()
                self._block(ruleset)
        elif kind in ("PRIFILT", "PROPFILT", "FOREACH"):
            self._block(ruleset)
        elif kind in ("SET", "RESET", "UNSET"):
            return
        else:
            self.ahead = tok
            self._action_list(ruleset)

    def _block(self, ruleset: str) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:  # bounded recursion: a hostile file nests ifs without end
            tok = self.peek()
            raise _Stop(f"{tok.path}:{tok.line}: blocks nested deeper than {MAX_NESTING}" if tok else "")
        tok = self.peek()
        if tok is not None and tok.kind == "{":
            self.take()
            self._script(ruleset)
        else:
            self._statement(ruleset)
        self.depth -= 1

    def _action_list(self, ruleset: str) -> None:
        self._action(ruleset)
        while (tok := self.peek()) is not None and tok.kind == "&":
            self.take()
            self._action(ruleset)

    def _action(self, ruleset: str) -> None:
        tok = self.take()
        if tok.kind == "OBJ" and tok.value == "action":
            module = tok.params.get("type", "").lower().removeprefix("builtin:")
            target = tok.params.get("target", "")
            template = tok.params.get("template")
            if module in FORWARDING and module in self.conf.modules and target and (
                    template is None or template in self.conf.templates):
                self.conf.forwards.append(Forward(module, target, ruleset, tok.path, tok.line,
                                                  f'action(type="{module}" target="{target}")'))
        elif tok.kind == "ACTION":
            self._legacy_action(tok, ruleset)
        elif tok.kind == "CALL":
            self.conf.calls.append((ruleset, tok.value))
        elif tok.kind in ("STOP", "CONTINUE", "CALL_INDIRECT"):
            return
        else:
            raise _Stop(f"{tok.path}:{tok.line}: syntax error on {tok.value!r}")

    def _legacy_action(self, tok: Token, ruleset: str) -> None:
        """``@host`` is omfwd's selector syntax, ``:omrelp:host`` omrelp's (once loaded); omfwd has no
        ``:omfwd:`` form — rsyslog refuses it."""
        text = tok.value
        if text.startswith("@"):
            module, rest = "omfwd", text[2:] if text.startswith("@@") else text[1:]
        elif text[:8].lower() == ":omrelp:" and "omrelp" in self.conf.modules:
            module, rest = "omrelp", text[8:]
        else:
            return
        parsed = _legacy_target(rest)
        if parsed is None:
            return
        target, template = parsed
        if template is None or template in self.conf.templates:  # else: "action disabled"
            self.conf.forwards.append(Forward(module, target, ruleset, tok.path, tok.line,
                                              tok.source or text))


def rsyslog_config(reader: Reader, errors: Errors | None = None) -> RsyslogConfig:
    """The configuration rsyslogd loads from ``reader``'s /etc/rsyslog.conf (empty without one)."""
    return _Parser(_Lexer(reader, errors).tokens(MAIN_CONFIG)).run()


def rsyslog_forwards(reader: Reader, errors: Errors | None = None) -> list[Forward]:
    """The forwarding actions rsyslogd would run with the configuration under ``reader``'s root, in
    the order of the configuration: those in rulesets messages reach."""
    conf = rsyslog_config(reader, errors)
    reached = {DEFAULT_RULESET, *conf.bound}
    grew = True
    while grew:
        grew = False
        for caller, callee in conf.calls:
            if caller in reached and callee not in reached:
                reached.add(callee)
                grew = True
    return [f for f in conf.forwards if f.ruleset in reached]
