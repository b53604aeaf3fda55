"""rsyslog's configuration as rsyslogd 8 loads it, for one question: which forwarding actions run.

Read the way rsyslog's own lexer and grammar read it (rsyslog ``grammar/lexer.l``, ``grammar.y``,
``cnfDoInclude``); rsyslogd 8.2302's debug dump of its rulesets is the test oracle
(tests/parsers/test_rsyslog_oracle.py):

- Lexing: flex's rules in their order, the longest match winning (ties to the earlier rule); the
  filters (``*.*``, ``:prop, op, "v"``) only at the start of a line; a legacy action runs to the end
  of its line; ``#`` starts a comment that ends with a newline, ``/* … */`` anywhere outside a
  string (an unclosed one runs on, into the file that included this one); a character no rule
  takes is skipped (rsyslog reports it and goes on). Strings take only the escapes the lexer lists.
- Includes, in place: ``$IncludeConfig PATTERN`` (when an included path cannot be accessed, rsyslog
  stops reading its configuration there: ``yyterminate``), ``include(file=…)`` and
  ``include(text=…)``; a pattern is glob(3) (wildcards in any component, hidden names excluded,
  sorted), a directory stands for its entries, recursively; a file already being read is skipped.
- The grammar, with no error recovery: a syntax error ends the configuration, and what came before
  it stays loaded as it does in the running daemon (a statement or ruleset is kept once complete).
  Expressions and object parameters are parsed too, since an error in them ends the configuration.
- A forwarding action is ``@host`` (UDP), ``@@host`` (TCP) or ``:omrelp:host`` (legacy; omfwd has
  no ``:omfwd:`` form), or ``action(type="omfwd"|"omrelp" target="…")``; omrelp only once
  ``module(load="omrelp")`` or ``$ModLoad omrelp`` came before it; a template it names must be
  defined before it (``$ActionForwardDefaultTemplate`` names the legacy default); omfwd refuses
  anything after a port but blanks, ``;template`` or ``#``. An action with no target sends nowhere
  and does not count here (rsyslog loads it).
- Filters (priority, property, ``if … then``) do not matter: a filtered forward still forwards.
- Rulesets (names compared without case, as rsyslog does): an action counts when messages reach its
  ruleset — the default one, one an input is bound to (``input(… ruleset=…)``,
  ``$…BindRuleset``, ``$DefaultRuleset``), or one a reached ruleset calls; with ``call_indirect``
  any ruleset may be reached. A second ``ruleset()`` of a name already defined is ignored.
- rsyslog 8.2302 quirk, kept: at the top level, the actions chained with ``&`` after the first of
  an unfiltered action list are lost once another statement is added to the same ruleset.

Bounded: at most :data:`MAX_FILES` files and :data:`MAX_BYTES` of text in all, include depth
:data:`MAX_DEPTH`, block and expression nesting :data:`MAX_NESTING`; what is left out is recorded
as unread, and so is a file whose unterminated strings would make lexing it quadratic.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileKind
from vmsec.parsers.system._common import CONFIG_LIMIT, Errors, glob_paths, read_optional, unreadable
from vmsec.reading import Reader

MAIN_CONFIG = "/etc/rsyslog.conf"
MAX_FILES = 256
MAX_BYTES = CONFIG_LIMIT  # all files together: real configurations are a few KiB; this bounds a hostile one
MAX_FORWARDS = 1000  # forwarding actions kept (the evidence shows a hundred; one decides the check)
MAX_CALLS = 10_000
MAX_DEPTH = 16
MAX_NESTING = 150  # blocks within blocks, parentheses within parentheses (each bounded: recursion)
MAX_FAILED_STRINGS = 64  # unterminated-string retries per file before it is given up as hostile
MAX_GLOB = 4096
DEFAULT_RULESET = "RSYSLOG_DefaultRuleset"
FORWARDING = frozenset({"omfwd", "omrelp"})

# rsyslogd 8.2302's own templates; any other must be defined before an action names it (names are
# case-sensitive), or rsyslog disables the action.
_BUILTIN_TEMPLATES = frozenset({
    "RSYSLOG_DebugFormat", "RSYSLOG_FileFormat", "RSYSLOG_ForwardFormat", "RSYSLOG_SysklogdFileFormat",
    "RSYSLOG_SyslogProtocol23Format", "RSYSLOG_SyslogRFC5424Format", "RSYSLOG_TraditionalFileFormat",
    "RSYSLOG_TraditionalForwardFormat", "RSYSLOG_omudpspoofDfltSourceTpl"})

_I = re.IGNORECASE
# INITIAL state (lexer.l), each with the token it makes.
_KEYWORDS = {"if": "IF", "foreach": "FOREACH", "reload_lookup_table": "RELOAD", "stop": "STOP",
             "else": "ELSE", "call": "CALL", "call_indirect": "CALL_INDIRECT", "set": "SET", "reset": "RESET",
             "unset": "UNSET", "continue": "CONTINUE"}
_KEYWORD = re.compile("|".join(sorted(_KEYWORDS, key=len, reverse=True)), _I)
_OBJECTS = {"main_queue": "OBJ", "timezone": "OBJ", "parser": "OBJ", "global": "OBJ", "template": "TEMPLATE",
            "ruleset": "RULESET", "property": "PROPERTY", "constant": "CONSTANT", "input": "OBJ",
            "module": "OBJ", "lookup_table": "OBJ", "dyn_stats": "OBJ", "percentile_stats": "OBJ",
            "include": "INCLUDE", "action": "ACTION_OBJ"}
_OBJECT = re.compile(r"(" + "|".join(_OBJECTS) + r")[ \n\t]*\(", _I)
_PROPFILT = re.compile(r'[ \t]*:\$?[a-z\-]+[ ]*,[ ]*!?[a-z]+[ ]*,[ ]*"(?:\\"|[^"])*"', _I)
_PRIFILT = re.compile(r"[ \t]*[*a-z][*a-z]*[0-7]*[.,][,!=;.*a-z0-7]+", _I)
# (flex takes the longest of these alternatives: the ones running to the end of the line come first)
_LEGACY_ACTION = re.compile(r"-/[^*][^\n]*|/[^*][^\n]*|:[a-z0-9]+:[^\n]*|[|.\-@^?~>][^\n]+|~|\*"
                            r"|[a-z0-9_][a-z0-9_\-+,;]*", _I)
_CFSYSLINE = re.compile(r"\$[a-z]+[^\n]*(?=\n)", _I)
_BSD_TAG = re.compile(r"![^ \t\n]+[ \t]*(?=\n|\Z)")
_BSD_HOST = re.compile(r"[+-]\*[ \t\n]*#[^\n]*(?=\n)|[+-]\*[ \t\n]*(?=\n)")
_BSD_HOST_LINE = re.compile(r"[ \t]*[+-][a-z0-9.:-]+[ \t]*(?=\n)", _I)
_OBJ_BLANKS = re.compile(r"[ \t\n]+")
_BLANKS = re.compile(r"\n+|[ \t]+")  # newlines apart: after one a filter may start the line
_NEVER_A_TOKEN = re.compile(r"[()\"'=,;\[\]%\x00-\x08\x0b-\x1f\x7f]+")  # runs of invalid characters
# INOBJ state.
_OBJ_NAME = re.compile(r"[a-z][a-z0-9_.]*", _I)
_OBJ_STRING = re.compile(r'"(?:[^"\\]|\\[\'"?\\abfnrtv]|\\[0-7]{1,3})*"')
_OBJ_BACKTICK = re.compile(r"`(?:[^`\\]|\\['`?\\abfnrtv]|\\[0-7]{1,3})*`")
# EXPR state.
_EXPR_WORDS = {"then": "THEN", "do": "DO", "or": "OR", "and": "AND", "not": "NOT", "contains": "CMP",
               "exists": "EXISTS",
               "in": "IN", "contains_i": "CMP", "startswith": "CMP", "startswith_i": "CMP"}
_EXPR_WORD = re.compile(r"[a-z][a-z0-9_]*", _I)
_EXPR_NUMBER = re.compile(r"0[0-7]+|0x[0-9a-f]+|[1-9][0-9]*|0", _I)
_EXPR_VAR = re.compile(r"\$[$!./]?[@a-z_]*[!@a-z0-9\-_.\[\]]*", _I)
_EXPR_SQ = re.compile(r"'(?:[^'\\]|\\['\"\\$bntr]|\\x[0-9a-f][0-9a-f]|\\[0-7][0-7][0-7])*'", _I)
_EXPR_DQ = re.compile(r'"(?:[^"\\$]|\\["\'\\$bntr]|\\x[0-9a-f][0-9a-f]|\\[0-7][0-7][0-7])*"', _I)
_EXPR_DQ_DOLLAR = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_EXPR_BT = re.compile(r"`(?:[^`\\]|\\['`\"\\bntr]|\\x[0-9a-f][0-9a-f]|\\[0-7][0-7][0-7])*`", _I)
_EXPR_OPS = ("==", "<=", ">=", "!=", "<>", "(", ")", ";", "=", ",", "*", "/", "%", "+", "&", "-", "[", "]",
             "<", ">")
_CMP_OPS = frozenset({"==", "<=", ">=", "!=", "<>", "<", ">"})
_CALL_NAME = re.compile(r"[a-z][a-z0-9\-_.]+", _I)
_INCLUDE_PATH = re.compile(r"[ \t\n]*([^ \t\n]+)")  # the INCL state: the next run of non-blanks
_LEGACY_TEMPLATE = re.compile(r"\$template\s+([^,]*),\s*[\"=]", _I)  # the text is quoted (or =option)
_DIRECTIVE = re.compile(r"\$([a-z]+)\s*(\S*)", _I)
_ESCAPE = re.compile(r"\\([0-7]{1,3}|.)", re.DOTALL)


class Token(NamedTuple):
    kind: str
    value: str
    path: str
    line: int
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
        where = "" if self.ruleset.lower() == DEFAULT_RULESET.lower() else f" (ruleset {self.ruleset})"
        return f"rsyslog {self.path}:{self.line}: {self.text[:120]}{where}"


@dataclass
class RsyslogConfig:
    """What the configuration sets up: every forwarding action (in any ruleset), the calls between
    rulesets (lower-cased names) and the rulesets inputs are bound to."""

    modules: set[str] = field(default_factory=lambda: {"omfwd", "omfile", "ompipe", "omshell", "omdiscard",
                                                       "omusrmsg"})
    templates: set[str] = field(default_factory=lambda: set(_BUILTIN_TEMPLATES))  # defined so far
    forward_template: str | None = None  # $ActionForwardDefaultTemplate
    forwards: list[Forward] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (caller, called ruleset), lower-cased
    bound: set[str] = field(default_factory=set)  # lower-cased
    rulesets: dict[str, str] = field(default_factory=lambda: {DEFAULT_RULESET.lower(): DEFAULT_RULESET})
    indirect_call: bool = False
    stopped: str | None = None  # why the configuration ends early, if it does


class _Stop(Exception):
    """A syntax error (rsyslog's grammar has no error recovery): the configuration ends there."""


_C_SPACE = " \t\n\v\f\r"
FGETS_LINE = 10239  # readConfFile's fgets() buffer, less its NUL: a longer line is read in pieces


def preprocess(text: str) -> tuple[str, list[int]]:
    """What rsyslog's readConfFile makes of a configuration file before the lexer sees it: each line
    (as fgets reads it, at most :data:`FGETS_LINE` characters; up to a NUL, as strlen reads it) loses
    its trailing blanks, ``\\`` at its end joins the next line (whose leading blanks go), and the line
    after a joined one is preceded by ``PreprocFileLineNumber(N)``. Returns the text and, for each of
    its lines, the file's line number it starts on."""
    out: list[str] = []
    numbers: list[int] = []
    cont = write_lineno = False
    lineno = 0
    pos, n = 0, len(text)
    while pos < n:
        newline = text.find("\n", pos, pos + FGETS_LINE)
        end = newline + 1 if newline >= 0 else min(n, pos + FGETS_LINE)
        chunk = text[pos:end]
        pos = end
        lineno += 1
        if write_lineno:  # after a continued line: a marker only the INITIAL state understands
            out.append(f"PreprocFileLineNumber({lineno})\n")
            numbers.append(lineno)
            write_lineno = False
        nul = chunk.find("\x00")
        if nul >= 0:
            chunk = chunk[:nul]
        if not cont:
            numbers.append(lineno)
        start = len(chunk) - len(chunk.lstrip(_C_SPACE)) if cont else 0
        last = max(len(chunk.rstrip(_C_SPACE)) - 1, start - 1)  # C's loop stops at start - 1
        if last >= 0:
            if chunk[last] == "\\":
                out.append(chunk[start:last])
                cont = True
            else:
                out.append(chunk[start:last + 1])
                write_lineno, cont = cont, False
        if not cont:
            out.append("\n")
    return "".join(out), numbers or [1]


class _Frame:
    """One buffer on the lexer's stack: a file's text (or an ``include(text=…)``)."""

    __slots__ = ("bol", "failed_strings", "line", "line_pos", "n", "numbers", "path", "pos", "tag_run",
                 "text")

    def __init__(self, text: str, path: str, numbers: list[int] | None = None) -> None:
        self.text, self.path, self.pos, self.n = text, path, 0, len(text)
        self.numbers = numbers  # the file's line number of each line of ``text`` (see preprocess)
        self.bol = True  # flex's ^: the last character consumed was a newline (or none yet)
        self.line, self.line_pos = 0, 0  # lines of ``text`` before line_pos
        self.failed_strings = 0
        self.tag_run = (-1, -1, -1, False)  # the last "!tag" run looked at: start, end, after blanks, ok

    def line_at(self, pos: int) -> int:
        self.line += self.text.count("\n", self.line_pos, pos)
        self.line_pos = pos
        numbers = self.numbers
        if numbers is None:
            return self.line + 1
        return numbers[min(self.line, len(numbers) - 1)]


class _Lexer:
    """rsyslog's lexer over the main file and what it includes, in place."""

    def __init__(self, reader: Reader, errors: Errors | None) -> None:
        self.reader, self.errors = reader, errors
        self.frames: list[_Frame] = []
        self.state = "INITIAL"
        self.comment_return: str | None = None  # in a /* comment: the state to return to
        self.files = 0
        self.budget = MAX_BYTES
        self.exhausted = False
        self.terminated = False
        self.aborted = False  # rsyslogd exits: nothing runs
        self._states = {"INITIAL": self._initial, "INOBJ": self._inobj, "EXPR": self._expr,
                        "INCALL": self._incall, "PROC": self._procedure}

    # --- buffers ---------------------------------------------------------------------------------

    def push_file(self, path: str) -> None:
        if self.exhausted or any(f.path == path for f in self.frames):
            return  # a file already being read is skipped, as rsyslog skips it
        if len(self.frames) > MAX_DEPTH or self.files >= MAX_FILES or self.budget <= 0:
            self.exhausted = True  # said once; nothing more is included
            unreadable(self.errors, ReadError(path, "not read, nor any file rsyslog includes after it: the "
                                              f"includes go deeper or further than {MAX_DEPTH} levels, "
                                              f"{MAX_FILES} files or {MAX_BYTES} bytes", ErrorKind.TOO_LARGE))
            return
        text = read_optional(self.reader, path, self.errors)
        if text is None:
            return
        self.files += 1
        self.budget -= len(text)
        body, numbers = preprocess(text)
        self.frames.append(_Frame(body, path, numbers))

    def push_text(self, text: str, name: str) -> None:
        if len(self.frames) <= MAX_DEPTH and self.budget > 0:
            self.budget -= len(text)
            self.frames.append(_Frame(text, name))

    def include(self, pattern: str, legacy: bool, abort_if_missing: bool = False) -> None:
        """cnfDoInclude: glob the pattern, walk the names from the last, push each file (so the first
        is read first), recurse into directories (their failures ignored), and stop at a name that
        cannot be accessed. For ``$IncludeConfig`` that failure ends the whole configuration; for
        ``include(mode="abort-if-missing")`` a missing file makes rsyslogd exit."""
        if not pattern or self.exhausted:
            return
        try:
            paths, failed = self._expand(pattern if pattern.startswith("/") else "/" + pattern)
        except (ReadError, ValueError) as exc:  # a NUL in the name, a directory that cannot be listed
            paths, failed = [], str(exc)
        for path in reversed(paths):  # a stack: the first is read first
            self.push_file(path)
        if failed is not None and (legacy or (abort_if_missing and not paths)):
            self.terminated = True
            self.aborted = not legacy
            unreadable(self.errors, ReadError(pattern, f"rsyslog stops reading its configuration here: "
                                              f"{failed}", ErrorKind.INVALID))

    def _expand(self, name: str, depth: int = 0) -> tuple[list[str], str | None]:
        """(files in reading order, why the walk stopped early) for one include pattern."""
        info = self.reader.stat(name) if "\x00" not in name else None
        if info is not None and info.exists and info.kind is FileKind.DIRECTORY:
            name += "*"  # "dir" becomes "dir*" (a sibling dir.bak too), "dir/" becomes "dir/*"
        # GLOB_NOMAGIC: a name without wildcards stands for itself, existing or not
        candidates = self._glob(name) if any(c in name for c in "*?[") else [name]
        reading: list[str] = []  # built from the last name back, as cnfDoInclude walks
        for path in reversed(candidates):
            found = self.reader.stat(path) if "\x00" not in path else None
            if found is None or not found.exists:
                reading.reverse()
                return reading, f"{path}: cannot be accessed (missing, or a dangling link)"
            if found.kind is FileKind.FILE:
                reading.append(path)
            elif found.kind is FileKind.DIRECTORY and depth < MAX_DEPTH:
                more, _ = self._expand(path.rstrip("/") + "/", depth + 1)
                reading.extend(reversed(more))
            if len(reading) >= MAX_GLOB:
                break
        reading.reverse()
        return reading, None

    def backtick(self, command: str) -> str:
        """What rsyslog makes of a backtick value: ``cat FILE`` is the file's text (read in the scanned
        root), ``echo …`` its words with ``$VAR`` expanded (the daemon's environment is not known here:
        a variable is taken as unset, as it usually is), anything else the empty string."""
        if command.startswith("cat "):
            path = command[4:]
            try:
                if self.budget <= 0:  # each read counts against the configuration's byte budget
                    raise ReadError(path, "", ErrorKind.TOO_LARGE)
                text = self.reader.read_text(path, min(64 * 1024, self.budget))
            except ValueError:
                return ""
            except ReadError as exc:
                if exc.kind is ErrorKind.TOO_LARGE:  # the budget is spent: said once, not read again
                    self.budget = 0
                    if not self.exhausted:
                        self.exhausted = True
                        unreadable(self.errors, ReadError(path, "not read for a backtick `cat`: the "
                                                          f"configuration's {MAX_BYTES} bytes are spent",
                                                          ErrorKind.TOO_LARGE))
                return ""
            self.budget -= max(len(text), 1)
            return text
        if command.startswith("echo "):
            return re.sub(r"\$[^\s/]*", "", command[5:])
        return ""

    def _glob(self, pattern: str) -> list[str]:
        return glob_paths(self.reader, pattern, MAX_GLOB)

    # --- tokens ----------------------------------------------------------------------------------

    def next(self) -> Token | None:
        while self.frames and not self.terminated:
            fr = self.frames[-1]
            if fr.pos >= fr.n:
                self.frames.pop()
                continue
            if self.comment_return is not None:
                end = fr.text.find("*/", fr.pos)
                if end < 0:
                    fr.pos = fr.n  # runs on into the including file
                    continue
                fr.pos, fr.bol = end + 2, False
                self.state, self.comment_return = self.comment_return, None
                continue
            tok = self._states[self.state](fr)
            if tok is not None:
                return tok
        return None

    def _token(self, fr: _Frame, kind: str, start: int, end: int, source: str = "") -> Token:
        fr.pos, fr.bol = end, fr.text[end - 1] == "\n"
        return Token(kind, fr.text[start:end], fr.path, fr.line_at(start), source)

    def _initial(self, fr: _Frame) -> Token | None:
        text, pos = fr.text, fr.pos
        ch = text[pos]
        # Characters only one rule can take, first (most of any file): newlines, blanks inside a
        # line, braces and "&", and the legacy actions that run to the end of the line.
        if ch == "\n" or (ch in " \t" and not fr.bol):
            m = _BLANKS.match(text, pos)
            assert m is not None
            fr.pos, fr.bol = m.end(), ch == "\n"
            return None
        if ch in "&{}":
            return self._token(fr, ch, pos, pos + 1)
        if ch in "@|^?>":
            end = text.find("\n", pos)
            end = fr.n if end < 0 else end
            if end > pos + 1:  # [|.\-@^?~>][^\n]+
                source = text[text.rfind("\n", 0, pos) + 1:end].strip()[:200] if ch == "@" else ""
                return self._token(fr, "ACTION", pos, end, source)
        if ch in "pP" and text[pos:pos + 22].lower() == "preprocfilelinenumber(":
            end = text.find(")", pos + 22)  # the LINENO state: everything up to ")"
            fr.pos, fr.bol = (fr.n if end < 0 else end + 1), False
            return None
        best, kind = 0, ""  # offered in lexer.l's order: a later rule wins only when longer
        if m := _KEYWORD.match(text, pos):
            best, kind = m.end() - pos, _KEYWORDS[m.group().lower()]
        if ch in "&{}":
            best, kind = 1, ch
        if (m := _OBJECT.match(text, pos)) and m.end() - pos > best:
            best, kind = m.end() - pos, "OBJ:" + m.group(1).lower()
        if fr.bol:
            for regex, name in ((_PROPFILT, "PROPFILT"), (_PRIFILT, "PRIFILT")):
                if (m := regex.match(text, pos)) and m.end() - pos > best:
                    best, kind = m.end() - pos, name
        if (m := _LEGACY_ACTION.match(text, pos)) and m.end() - pos > best:
            best, kind = m.end() - pos, "ACTION"
        if text.startswith("/*", pos) and best < 2:
            self.comment_return, self.state = "INITIAL", "INITIAL"
            fr.pos, fr.bol = pos + 2, False
            return None
        if ch == "$" and (m := _CFSYSLINE.match(text, pos)) and m.end() + 1 - pos > best:
            return self._cfsysline(fr, m.group(), m.end())
        if ch == "!" and best == 0 and (tag := self._bsd_tag(fr, pos)) is not None:
            return tag
        # the trailing newline ($) counts in flex's match length
        if ch in "+-" and (m := _BSD_HOST.match(text, pos)) and m.end() + 1 - pos > best:
            return self._token(fr, "BSD_HOST", pos, m.end())
        if fr.bol and ch in " \t+-" and (m := _BSD_HOST_LINE.match(text, pos)) and m.end() + 1 - pos > best:
            return self._token(fr, "BSD_HOST", pos, m.end())
        if ch == "#" and best == 0:
            end = text.find("\n", pos)
            if end >= 0:  # \#.*\n: without a newline it is no comment, just an invalid character
                fr.pos, fr.bol = end + 1, True
                return None
        if best == 0:  # blanks, or characters no rule takes ("invalid character", skipped): whole runs
            if m := _BLANKS.match(text, pos):
                fr.pos, fr.bol = m.end(), ch == "\n"
            elif m := _NEVER_A_TOKEN.match(text, pos):
                fr.pos, fr.bol = m.end(), False
            elif ch in "!$:":  # a run of one of these: only its last may start a token
                end = pos + 1
                while end < fr.n and text[end] == ch:
                    end += 1
                fr.pos, fr.bol = max(end - 1, pos + 1), False
            else:
                fr.pos, fr.bol = pos + 1, False
            return None
        end = pos + best
        if kind.startswith("OBJ:"):
            self.state = "INOBJ"
            name = kind[4:]
            return self._token(fr, _OBJECTS[name], pos, end)._replace(value=name)
        if kind in ("IF", "FOREACH", "SET", "RESET", "UNSET", "CALL_INDIRECT"):
            self.state = "EXPR"
        elif kind == "CALL":
            self.state = "INCALL"
        elif kind == "RELOAD":
            self.state = "PROC"
        source = ""
        if kind == "ACTION" and ch in "@:":  # a forward's whole line, for the evidence; it runs to the
            # end of the line, so each line is looked at once
            source = text[text.rfind("\n", 0, pos) + 1:end].strip()[:200]
        tok = self._token(fr, kind, pos, end, source)
        if kind in ("PRIFILT", "PROPFILT"):
            return tok._replace(value=tok.value.strip())
        return tok

    def _bsd_tag(self, fr: _Frame, pos: int) -> Token | None:
        """``![^ \t\n]+[ \t]*$`` without rescanning the run at each of its characters: every position
        in one run of non-blanks has the same answer about what follows the run."""
        start, end, rest, ok = fr.tag_run
        if not start <= pos < end:
            text, n = fr.text, fr.n
            end = pos
            while end < n and text[end] not in " \t\n":
                end += 1
            rest = end
            while rest < n and text[rest] in " \t":
                rest += 1
            ok = rest < n and text[rest] == "\n"
            fr.tag_run = (pos, end, rest, ok)
        if ok and end > pos + 1:
            return self._token(fr, "BSD_TAG", pos, rest)
        return None

    def _cfsysline(self, fr: _Frame, line: str, end: int) -> Token | None:
        """``$Directive …``: $IncludeConfig and $RuleSet are the lexer's, the rest run at once."""
        if line[:14].lower() == "$includeconfig":
            m = _INCLUDE_PATH.match(fr.text, fr.pos + 14)
            fr.pos, fr.bol = (m.end(), False) if m else (fr.n, False)
            if m:
                self.include(m.group(1), legacy=True)
            return None
        if line[:9].lower() == "$ruleset ":
            return self._token(fr, "LEGACY_RULESET", fr.pos, end)._replace(value=line[9:].split()[0]
                                                                             if line[9:].split() else "")
        return self._token(fr, "CFSYS", fr.pos, end)

    def _string(self, fr: _Frame, regex: re.Pattern[str]) -> re.Match[str] | None:
        m = regex.match(fr.text, fr.pos)
        if m is None:
            fr.failed_strings += 1
            if fr.failed_strings > MAX_FAILED_STRINGS:
                unreadable(self.errors, ReadError(fr.path, f"more than {MAX_FAILED_STRINGS} strings that do "
                                                  "not end; the rest of the file was not read",
                                                  ErrorKind.TOO_LARGE))
                fr.pos = fr.n
        return m

    def _blank_or_comment(self, fr: _Frame, state: str) -> bool:
        """Past blanks, or into a ``/*`` comment that returns to ``state``: True when either was."""
        if fr.text[fr.pos] in " \t\n":
            _skip_blanks(fr)
            return True
        if fr.text.startswith("/*", fr.pos):
            self.comment_return, self.state = state, state
            fr.pos += 2
            return True
        return False

    def _inobj(self, fr: _Frame) -> Token | None:
        if self._blank_or_comment(fr, "INOBJ"):
            return None
        text, pos = fr.text, fr.pos
        ch = text[pos]
        if ch == ")":
            self.state = "INITIAL"
            return self._token(fr, "ENDOBJ", pos, pos + 1)
        if ch in ",[]=":
            return self._token(fr, ch, pos, pos + 1)
        if ch == "#":
            end = text.find("\n", pos)
            fr.pos = fr.n if end < 0 else end
            return None
        if ch in "\"`":
            m = self._string(fr, _OBJ_STRING if ch == '"' else _OBJ_BACKTICK)
            if m is not None:
                tok = self._token(fr, "STRING" if ch == '"' else "BACKTICK", pos, m.end())
                return tok._replace(value=_unescape(m.group()[1:-1]))
        elif m := _OBJ_NAME.match(text, pos):
            return self._token(fr, "NAME", pos, m.end())._replace(value=m.group().lower())
        if fr.pos == pos:
            fr.pos, fr.bol = pos + 1, False  # "invalid character in object definition"
        return None

    def _expr(self, fr: _Frame) -> Token | None:
        if self._blank_or_comment(fr, "EXPR"):
            return None
        text, pos = fr.text, fr.pos
        ch = text[pos]
        if ch.isascii() and ch.isalpha():
            m = _EXPR_WORD.match(text, pos)
            assert m is not None
            kind = _EXPR_WORDS.get(m.group().lower(), "FUNC")
            if kind in ("THEN", "DO"):
                self.state = "INITIAL"
            return self._token(fr, kind, pos, m.end())
        if "0" <= ch <= "9":
            m = _EXPR_NUMBER.match(text, pos)
            assert m is not None
            return self._token(fr, "NUMBER", pos, m.end())
        if ch == "$":
            m = _EXPR_VAR.match(text, pos)
            assert m is not None
            return self._token(fr, "VAR", pos, m.end())
        if ch in "'\"`":
            if ch == '"' and (m := _EXPR_DQ.match(text, pos)) is None \
                    and (bad := _EXPR_DQ_DOLLAR.match(text, pos)) and "$" in bad.group():
                fr.pos = bad.end()  # "$-sign in double quotes must be escaped": no token at all
                return None
            m = self._string(fr, {"'": _EXPR_SQ, '"': _EXPR_DQ, "`": _EXPR_BT}[ch])
            if m is not None:
                return self._token(fr, "STRING", pos, m.end())
            if fr.pos == pos:
                fr.pos = pos + 1
            return None
        for op in _EXPR_OPS:
            if text.startswith(op, pos):
                if op == ";":
                    self.state = "INITIAL"
                kind = "CMP" if op in _CMP_OPS else op
                return self._token(fr, kind, pos, pos + len(op))
        fr.pos, fr.bol = pos + 1, False  # "invalid character in expression"
        return None

    def _incall(self, fr: _Frame) -> Token | None:
        """A one-character name is the "invalid character" rule's (listed first): skipped."""
        text, pos = fr.text, fr.pos
        if text[pos] in " \t\n":
            fr.pos, fr.bol = pos + 1, text[pos] == "\n"
            return None
        if m := _CALL_NAME.match(text, pos):
            self.state = "INITIAL"
            return self._token(fr, "NAME", pos, m.end())
        fr.pos, fr.bol = pos + 1, False
        return None

    def _procedure(self, fr: _Frame) -> Token | None:
        text, pos = fr.text, fr.pos
        ch = text[pos]
        if ch in " \t\n":
            _skip_blanks(fr)
            return None
        if ch in "(,":
            return self._token(fr, ch, pos, pos + 1)
        if ch == ")":
            self.state = "INITIAL"
            return self._token(fr, ")", pos, pos + 1)
        if ch in "'\"":
            m = self._string(fr, _EXPR_SQ if ch == "'" else _EXPR_DQ)
            if m is not None:
                return self._token(fr, "STRING", pos, m.end())
        if fr.pos == pos:
            fr.pos, fr.bol = pos + 1, False
        return None


def _skip_blanks(fr: _Frame) -> None:
    """Past a run of blanks and newlines (outside the INITIAL state, where they all mean nothing)."""
    m = _OBJ_BLANKS.match(fr.text, fr.pos)
    assert m is not None
    fr.pos, fr.bol = m.end(), fr.text[m.end() - 1] == "\n"


def _unescape(body: str) -> str:
    return _ESCAPE.sub(lambda e: chr(int(e.group(1), 8) & 0xFF) if e.group(1)[0] in "01234567"
                       else {"n": "\n", "t": "\t", "r": "\r"}.get(e.group(1), e.group(1)), body)


def _legacy_target(action: str, strict: bool = True) -> tuple[str, str | None] | None:
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
    p = p.lstrip()
    if p and p[0] not in ";#":
        if strict:  # omfwd refuses it; omrelp only complains and skips to a ";"
            return None
        p = p[p.find(";"):] if ";" in p else ""
    template = None
    if p.startswith(";"):
        name = re.match(r"\s*([^#\s]*)", p[1:])
        template = (name.group(1) if name else "") or None
    host = host.strip()
    return (host, template) if host else None


_INTEGER_PARAMS = frozenset({"action.resumeretrycount", "action.resumeinterval", "rebindinterval",
                             "action.execonlyeverynthtime", "action.execonlyeverynthtimetimeout",
                             "tcp_framedelimiter"})
_BINARY_PARAMS = frozenset({"keepalive", "udp.sendtoall", "action.reportsuspension", "action.copymsg",
                            "action.writeallmarkmessages", "action.execonlywhenpreviousissuspended"})
_TEMPLATE_TYPES = {"string": "string", "subtree": "subtree", "plugin": "plugin", "list": None}


def _enabled(params: dict[str, str | list[str]]) -> bool:
    """``config.enabled``: only the exact value ``on`` keeps an object (``yes``, ``ON``, anything else
    disables it)."""
    value = params.get("config.enabled")
    return value is None or value == "on"


def _module_name(load: str) -> str:
    """``omrelp``, ``omrelp.so`` and ``/usr/lib/…/omrelp.so`` all load omrelp."""
    return posixpath.basename(load).removesuffix(".so")


class _Parser:
    """rsyslog's grammar (grammar.y), as far as it decides which actions exist and where."""

    def __init__(self, lexer: _Lexer) -> None:
        self.lexer = lexer
        self.ahead: Token | None = None
        self.conf = RsyslogConfig()
        self.ruleset = DEFAULT_RULESET.lower()
        self.depth = 0  # blocks
        self.expr_depth = 0  # parentheses and unary operators
        # rsyslog 8.2302's rulesetAddScript keeps the head of the script it last added to a ruleset as
        # that ruleset's tail: the next top-level statement added to the ruleset replaces what came
        # after that head. Per ruleset, the forwards and calls that would then be lost.
        self.chained: dict[str, tuple[list[Forward], list[tuple[str, str]]]] = {}

    # --- tokens ------------------------------------------------------------------------------------

    def peek(self) -> Token | None:
        while self.ahead is None:
            tok = self.lexer.next()
            if tok is None or tok.kind != "CFSYS":
                self.ahead = tok
                break
            self._cfsysline(tok.value)  # the lexer runs these where they stand, in a block too
        return self.ahead

    def take(self, *kinds: str) -> Token:
        tok = self.peek()
        if tok is None:
            raise _Stop("unexpected end of the configuration")
        if kinds and tok.kind not in kinds:
            raise _Stop(f"{tok.path}:{tok.line}: syntax error on {tok.value[:40]!r}")
        self.ahead = None
        return tok

    def at(self, *kinds: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind in kinds

    # --- the configuration -------------------------------------------------------------------------

    def run(self) -> RsyslogConfig:
        conf = self.conf
        while True:
            kept = len(conf.forwards), len(conf.calls)
            try:
                tok = self.peek()
                if tok is None:
                    break
                self._top(tok)
            except _Stop as stop:
                # What a statement or ruleset adds is kept once the grammar has reduced it: a syntax
                # error inside one discards it, with everything after it.
                del conf.forwards[kept[0]:], conf.calls[kept[1]:]
                conf.stopped = str(stop) or "a syntax error"
                break
        if self.lexer.terminated and conf.stopped is None:
            conf.stopped = "an included file could not be accessed"
        if self.lexer.aborted:  # rsyslogd exits: nothing at all runs
            conf.forwards.clear()
            conf.calls.clear()
            conf.stopped = "an include(mode=\"abort-if-missing\") file is missing: rsyslogd exits"
        return conf

    def _top(self, tok: Token) -> None:
        kind = tok.kind
        conf = self.conf
        if kind == "LEGACY_RULESET":
            self.take()
            self.ruleset = self._define(tok.value)
        elif kind in ("OBJ", "TEMPLATE", "RULESET"):
            self.take()
            self._object(tok)
        elif kind in ("BSD_TAG", "BSD_HOST"):
            self.take()
        elif kind == "INCLUDE":  # a statement to the grammar, but nothing is added to the ruleset
            self.take()
            self._include()
        else:
            start = len(conf.forwards), len(conf.calls)
            chained = self._statement(self.ruleset, top=True)
            # The statement goes to the ruleset current when it is reduced: a "$RuleSet<tab>x" line the
            # lexer ran while reading the lookahead has already switched it.
            ruleset = self.ruleset
            self._move(start, ruleset)
            self._drop_lost(ruleset)
            if chained is not None:
                self.chained[ruleset] = (conf.forwards[chained[0]:], conf.calls[chained[1]:])

    def _move(self, start: tuple[int, int], ruleset: str) -> None:
        conf = self.conf
        name = conf.rulesets.get(ruleset, ruleset)
        for k in range(start[0], len(conf.forwards)):
            if conf.forwards[k].ruleset != name:
                conf.forwards[k] = replace(conf.forwards[k], ruleset=name)
        for k in range(start[1], len(conf.calls)):
            conf.calls[k] = (ruleset, conf.calls[k][1])

    def _drop_lost(self, ruleset: str) -> None:
        lost = self.chained.pop(ruleset, None)
        if lost is None:
            return
        conf = self.conf
        gone = {id(f) for f in lost[0]}
        conf.forwards[:] = [f for f in conf.forwards if id(f) not in gone]
        for call in lost[1]:
            if call in conf.calls:
                conf.calls.remove(call)

    def _define(self, name: str) -> str:
        key = name.lower()
        self.conf.rulesets.setdefault(key, name)
        return key

    def _cfsysline(self, line: str) -> None:
        m = _DIRECTIVE.match(line)
        if m is None:
            return
        directive, arg = m.group(1).lower(), m.group(2)
        conf = self.conf
        if directive == "modload" and arg:
            conf.modules.add(_module_name(arg))
        elif directive == "ruleset" and arg:  # "$RuleSet<tab>x": run by the lexer, at once
            self.ruleset = self._define(arg)
        elif (directive.endswith("bindruleset") and arg) or (directive == "defaultruleset" and arg):
            conf.bound.add(arg.lower())
        elif directive == "actionforwarddefaulttemplate":
            conf.forward_template = arg or None
        elif directive == "template" and (t := _LEGACY_TEMPLATE.match(line)):
            conf.templates.add(t.group(1).lstrip())

    def _params(self) -> dict[str, str | list[str]]:
        """``nvlst ENDOBJ``: name="value" or name=["a", "b"] pairs; anything else is a syntax error."""
        params: dict[str, str | list[str]] = {}
        while True:
            tok = self.take("NAME", "ENDOBJ")
            if tok.kind == "ENDOBJ":
                return params
            self.take("=")
            if self.at("["):
                self.take()
                values = [self.take("STRING", "BACKTICK").value]
                while self.at(","):
                    self.take()
                    values.append(self.take("STRING", "BACKTICK").value)  # (a backtick here: as written)
                self.take("]")
                params[tok.value] = values
            else:
                value = self.take("STRING", "BACKTICK")
                text = value.value
                params[tok.value] = text if value.kind == "STRING" else self.lexer.backtick(text)

    def _object(self, tok: Token) -> None:
        params = self._params()
        conf = self.conf
        name = params.get("name")
        enabled = _enabled(params)
        if tok.kind == "TEMPLATE":
            body = False
            if self.at("{"):  # a list template's body: property() and constant() objects
                self.take()
                body = True
                while not self.at("}"):
                    self.take("PROPERTY", "CONSTANT")
                    self._params()
                self.take("}")
            kind = params.get("type")
            valid = isinstance(kind, str) and kind in _TEMPLATE_TYPES and (
                body if kind == "list" else _TEMPLATE_TYPES[kind] in params)
            if isinstance(name, str) and enabled and valid:
                conf.templates.add(name)
        elif tok.kind == "RULESET":
            self.take("{")
            key = name.lower() if isinstance(name, str) else ""
            duplicate = key in conf.rulesets or not enabled
            if not duplicate and isinstance(name, str):
                conf.rulesets[key] = name
            kept = len(conf.forwards), len(conf.calls)
            heads: tuple[int, int] | None = None
            if not self.at("}"):
                self._statement(key)
                heads = len(conf.forwards), len(conf.calls)  # after the script's first statement
                while not self.at("}"):
                    self._statement(key)
            self.take("}")
            if duplicate:  # rsyslog keeps the first definition of a name; a disabled one is none
                del conf.forwards[kept[0]:], conf.calls[kept[1]:]
            elif heads is not None:
                self._drop_lost(key)
                self.chained[key] = (conf.forwards[heads[0]:], conf.calls[heads[1]:])
        elif not enabled:
            return
        elif tok.value == "module":
            load = params.get("load")
            if isinstance(load, str):
                conf.modules.add(_module_name(load))
                template = params.get("template")
                if _module_name(load) in ("omfwd", "builtin:omfwd") and isinstance(template, str):
                    conf.forward_template = template
        elif tok.value == "input":
            ruleset = params.get("ruleset")
            if isinstance(ruleset, str):
                conf.bound.add(ruleset.lower())

    def _include(self) -> None:
        params = self._params()
        file, text = params.get("file"), params.get("text")
        if not _enabled(params) or (file is not None and text is not None):
            return  # "either 'file' or 'text', but not both": nothing is included
        if isinstance(file, str):
            self.lexer.include(file, legacy=False, abort_if_missing=params.get("mode") == "abort-if-missing")
        elif isinstance(text, str):
            self.lexer.push_text(text, "include(text)")

    def _script(self, ruleset: str) -> None:
        """``script``: one statement or more, up to the closing brace."""
        self._statement(ruleset)
        while not self.at("}"):
            self._statement(ruleset)

    def _statement(self, ruleset: str, top: bool = False) -> tuple[int, int] | None:
        """One ``stmt``. At the top level, an unfiltered action list chained with ``&`` returns where
        its chained part starts (see :attr:`chained`)."""
        tok = self.peek()
        if tok is None:
            raise _Stop("unexpected end of the configuration")
        kind = tok.kind
        if kind == "IF":
            self.take()
            self._expression()
            self.take("THEN")
            self._block(ruleset)
            if self.at("ELSE"):
                self.take()
                self._block(ruleset)
        elif kind == "FOREACH":
            self.take()
            self.take("(")
            self.take("VAR")
            self.take("IN")
            self._expression()
            self.take(")")
            self.take("DO")
            self._block(ruleset)
        elif kind in ("SET", "RESET"):
            self.take()
            self.take("VAR")
            self.take("=")
            self._expression()
            self.take(";")
        elif kind == "UNSET":
            self.take()
            self.take("VAR")
            self.take(";")
        elif kind in ("PRIFILT", "PROPFILT"):
            self.take()
            self._block(ruleset)
        elif kind == "RELOAD":
            self.take()
            self.take("(")
            self.take("STRING")
            while self.at(","):
                self.take()
                self.take("STRING")
            self.take(")")
        elif kind == "INCLUDE":
            self.take()
            self._include()
        else:
            self._action(ruleset)
            chained = len(self.conf.forwards), len(self.conf.calls)
            while self.at("&"):
                self.take()
                self._action(ruleset)
            if top and chained != (len(self.conf.forwards), len(self.conf.calls)):
                return chained
        return None

    def _block(self, ruleset: str) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:  # bounded recursion: a hostile file nests ifs without end
            raise _Stop(f"blocks nested deeper than {MAX_NESTING}")
        if self.at("{"):
            self.take()
            self._script(ruleset)
            self.take("}")
        else:
            self._statement(ruleset)
        self.depth -= 1

    def _action(self, ruleset: str) -> None:
        tok = self.take("ACTION_OBJ", "ACTION", "STOP", "CALL", "CALL_INDIRECT", "CONTINUE")
        conf = self.conf
        if tok.kind == "ACTION_OBJ":
            params = self._params()
            module = params.get("type")
            module = module.lower() if isinstance(module, str) else None  # "OMFWD" loads; "builtin:omfwd" not
            target = params.get("target")
            if module in FORWARDING and module in conf.modules and isinstance(target, str) \
                    and _enabled(params) and self._accepts(module, target, params) \
                    and len(conf.forwards) < MAX_FORWARDS:
                conf.forwards.append(Forward(module, target, conf.rulesets.get(ruleset, ruleset), tok.path,
                                             tok.line, f'action(type="{module}" target="{target}")'))
        elif tok.kind == "ACTION":
            self._legacy_action(tok, ruleset)
        elif tok.kind == "CALL":
            call = (ruleset, self.take("NAME").value.lower())
            if len(conf.calls) < MAX_CALLS:
                conf.calls.append(call)
        elif tok.kind == "CALL_INDIRECT":
            self._expression()
            self.take(";")
            conf.indirect_call = True

    def _accepts(self, module: str, target: str, params: dict[str, str | list[str]]) -> bool:
        """Whether the module takes these parameters (else rsyslog refuses the action): a target
        without blanks (a backtick command's output is unknown: taken), a defined template, omfwd's
        protocol udp or tcp, integers and on/off where the module wants them."""
        if not target or any(c.isspace() for c in target):
            return False
        template = params.get("template")
        if template is None and module == "omfwd":
            template = self.conf.forward_template
        if template is not None and template not in self.conf.templates:
            return False
        protocol = params.get("protocol")
        if module == "omfwd" and protocol is not None and protocol not in ("udp", "tcp"):
            return False
        for key, value in params.items():
            if not isinstance(value, str):
                continue
            if key in _INTEGER_PARAMS and not re.fullmatch(r"-?[0-9]+", value):
                return False
            if key in _BINARY_PARAMS and value.lower() not in ("on", "off"):
                return False
        return True

    def _legacy_action(self, tok: Token, ruleset: str) -> None:
        """``@host`` is omfwd's selector syntax, ``:omrelp:host`` omrelp's (once loaded, and in
        lower case: the module compares it with strncmp)."""
        text = tok.value
        conf = self.conf
        if text.startswith("@"):
            module, rest = "omfwd", text[2:] if text.startswith("@@") else text[1:]
        elif text.startswith(":omrelp:") and "omrelp" in conf.modules:
            module, rest = "omrelp", text[8:]
        else:
            return
        parsed = _legacy_target(rest, strict=module == "omfwd")
        if parsed is None:
            return
        target, template = parsed
        if template is None and module == "omfwd":
            template = conf.forward_template
        if (template is None or template in conf.templates) and len(conf.forwards) < MAX_FORWARDS:
            # (an unknown template: "action disabled")
            conf.forwards.append(Forward(module, target, conf.rulesets.get(ruleset, ruleset), tok.path,
                                         tok.line, tok.source or text))

    def _expression(self) -> None:
        """``expr`` with bison's precedences: and/or, comparisons, + - &, * / %, then not and unary
        minus; only whether it parses matters here."""
        self._operand()
        while True:
            tok = self.peek()
            if tok is None or not self._binary(tok):
                break
            self.take()
            self._operand()

    @staticmethod
    def _binary(tok: Token) -> bool:
        return tok.kind in ("AND", "OR", "CMP", "+", "-", "&", "*", "/", "%")

    def _operand(self) -> None:
        self.expr_depth += 1
        if self.expr_depth > MAX_NESTING:  # bounded recursion: parentheses or "not not not …"
            raise _Stop(f"an expression nested deeper than {MAX_NESTING}")
        tok = self.take()
        while tok.kind in ("NOT", "-"):  # unary operators: a loop, not a recursion
            tok = self.take()
        kind = tok.kind
        if kind == "(":
            self._expression()
            self.take(")")
        elif kind == "EXISTS":
            self.take("(")
            self.take("VAR")
            self.take(")")
        elif kind == "FUNC":
            if tok.value.lower() == "preprocfilelinenumber":  # a continuation marker inside an expression
                raise _Stop(f"{tok.path}:{tok.line}: function 'PreprocFileLineNumber' not found")
            self.take("(")
            if not self.at(")"):
                self._expression()
                while self.at(","):
                    self.take()
                    self._expression()
            self.take(")")
        elif kind == "[":
            self.take("STRING")
            while self.at(","):
                self.take()
                self.take("STRING")
            self.take("]")
        elif kind not in ("NUMBER", "STRING", "VAR"):
            raise _Stop(f"{tok.path}:{tok.line}: syntax error on {tok.value[:40]!r}")
        self.expr_depth -= 1


def rsyslog_config(reader: Reader, errors: Errors | None = None) -> RsyslogConfig:
    """The configuration rsyslogd loads from ``reader``'s /etc/rsyslog.conf (empty without one)."""
    lexer = _Lexer(reader, errors)
    lexer.push_file(MAIN_CONFIG)
    return _Parser(lexer).run()


def rsyslog_forwards(reader: Reader, errors: Errors | None = None) -> list[Forward]:
    """The forwarding actions rsyslogd would run with the configuration under ``reader``'s root, in
    the order of the configuration: those in rulesets messages reach."""
    conf = rsyslog_config(reader, errors)
    if conf.indirect_call:  # a ruleset named at run time: any may be reached
        return list(conf.forwards)
    reached = {DEFAULT_RULESET.lower(), *conf.bound}
    grew = True
    while grew:
        grew = False
        for caller, callee in conf.calls:
            if caller in reached and callee not in reached:
                reached.add(callee)
                grew = True
    return [f for f in conf.forwards if f.ruleset.lower() in reached]
