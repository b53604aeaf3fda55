"""/etc/sudoers and the files it includes → :class:`Sudoers`.

What is understood (sudoers(5)):

- ``#include``/``@include file`` (a relative name is relative to the including file's directory) and
  ``#includedir``/``@includedir dir`` (files whose name has no ``.`` and does not end in ``~``, in
  lexical order); ``#`` starts a comment unless it begins one of those directives or a ``#uid`` user;
- a backslash at the end of a line continues it;
- ``Defaults``, ``Defaults:user``, ``Defaults@host``, ``Defaults>runas``, ``Defaults!cmnd`` lines;
- ``User_Alias``, ``Runas_Alias``, ``Host_Alias``, ``Cmnd_Alias``/``Cmd_Alias`` definitions, expanded
  (bounded) in the rules so that ``NOPASSWD`` and ``ALL`` are visible through aliases;
- user specifications ``users hosts = (runas) TAG: cmnd, … [: hosts = …]``; tags carry over to the
  following commands of the same list, as sudo does. One :class:`SudoRule` is made per run of
  commands sharing the same run-as list and NOPASSWD state.

Everything is bounded by the size of the input, never multiplied by it: each file is parsed once per
policy however many include lines or paths lead to it (a file included again is not read again: its
lines count where it was first included), each include directory is expanded once, an include of a
file or directory that is being read is a loop (recorded once, kind LOOP; sudo itself gives up on
it), include depth is 8, at most 1,000 files are read, and an include directory with more than 1,000
entries is an error (never listed in full). Each alias is expanded once and reused (aliases naming
the next one ten times are not ten to the power of their nesting), nesting is at most 16, one list
at most 1,000 names, and one budget of steps covers the whole policy. Problems go to one bounded
:class:`Problems` list.

An included file or directory that exists but cannot be read (permission denied, too large, over
the file or depth cap, not followed by :func:`parse_sudoers`) is also named in ``Sudoers.unread`` (as
is a rule whose aliases a bound left unexpanded): sudo reads it, so the policy grants more than the
rules seen may show, and no check may conclude from what is *not* there.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from msgspec import Struct, field

from vmsec.errors import ErrorKind, ParseError, Problems, ReadError
from vmsec.facts import FileStat, Sudoers, SudoRule
from vmsec.parsers.lines import split_lines, strip_c

if TYPE_CHECKING:
    from vmsec.reading import Reader

MAX_FILES = 1_000
MAX_DIR_ENTRIES = 1_000
MAX_DEPTH = 8
MAX_FILE_BYTES = 1024 * 1024
MAX_ERRORS_PER_FILE = 20
MAX_ALIAS_DEPTH = 16
MAX_EXPANDED = 1_000  # names in one alias or one list of a rule, after expansion
MAX_ALIAS_WORK = 1_000_000  # alias members visited and names copied, over the whole policy
MAX_UNREAD = 100  # unread inputs named in the fact; the rest are counted

ALIAS_KINDS = {"User_Alias": "user", "Runas_Alias": "runas", "Host_Alias": "host",
               "Cmnd_Alias": "cmnd", "Cmd_Alias": "cmnd"}
TAGS = frozenset({"NOPASSWD", "PASSWD", "NOEXEC", "EXEC", "SETENV", "NOSETENV", "LOG_INPUT", "NOLOG_INPUT",
                  "LOG_OUTPUT", "NOLOG_OUTPUT", "MAIL", "NOMAIL", "FOLLOW", "NOFOLLOW", "INTERCEPT",
                  "NOINTERCEPT"})
OPTIONS = ("ROLE=", "TYPE=", "TIMEOUT=", "NOTBEFORE=", "NOTAFTER=", "CWD=", "CHROOT=", "APPARMOR_PROFILE=",
           "PRIVS=", "LIMITPRIVS=")
# A command's options (blanks around '=' allowed, as sudo's grammar has them) and digests.
_OPTION = re.compile(r"(?:ROLE|TYPE|TIMEOUT|NOTBEFORE|NOTAFTER|CWD|CHROOT|APPARMOR_PROFILE|PRIVS|LIMITPRIVS)"
                     r"\s*=\s*(?:\S+)\s*")
DIGESTS = frozenset({"sha224", "sha256", "sha384", "sha512"})
_DIGEST = re.compile(r"(?:sha224|sha256|sha384|sha512)\s*:\s*[A-Za-z0-9+/=]+\s*")
_INCLUDE = re.compile(r"^[#@](include|includedir)\s+(.+)$")
_ALIAS_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# "Defaults", then a scope (:users @hosts >runas !commands) whose comma list may have blanks around
# its commas and after the scope character, then the settings.
_DEFAULTS = re.compile(r'^Defaults(?:([:@>!])\s*((?:"[^"]*"|[^\s,"])+(?:\s*,\s*(?:"[^"]*"|[^\s,"])+)*))?'
                       r'(?:\s+(.*))?$')
_HOST_RUN = re.compile(r"^\s*[^\s=():]+(\s*,\s*[^\s=():]+)*\s*=")
_WORD = re.compile(r'(?:"[^"]*"|[^\s"])+')
_OPERATOR = re.compile(r"\s*([+-]?=)\s*")
_NEGATIONS = re.compile(r"(?:!\s*)+")


def sudo_refusal(st: FileStat) -> str | None:
    """Why sudo itself refuses a sudoers file or include directory (sudo_secure_path: owner uid 0,
    not world-writable, not group-writable unless the group is gid 0), or None; its rules are then
    not in force."""
    if st.mode is None:
        return None
    if st.uid not in (0, None):
        return f"it is owned by {st.owner or st.uid}, not root"
    if st.mode & 0o002:
        return "every local user can write it"
    if st.mode & 0o020 and st.gid != 0:
        return f"group {st.group or st.gid} can write it"
    return None


def _uid_mark(text: str, i: int) -> bool:
    """Whether the ``#`` at ``text[i]`` starts a uid (``#0``, ``#-1``) rather than a comment."""
    after = text[i + 1:i + 3]
    return after[:1] in _DIGITS or (after[:1] == "-" and after[1:2] in _DIGITS)


_DIGITS = frozenset("0123456789")
_LIST_COMMA = re.compile(r"\s*,\s*")


def _strip_comment(line: str) -> str:
    """Drop a ``# comment`` as sudo's lexer does: a ``#`` outside quotes and not escaped starts one
    wherever it stands (``ALL#x`` is ``ALL``), unless it starts a uid (``#0``, ``#-1``)."""
    quoted = escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted and not _uid_mark(line, i):
            return line[:i].rstrip()
    return line


def _split_list(text: str) -> list[str]:
    """Split a sudoers comma list, honouring backslash-escaped commas and quoted strings."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    items.append("".join(current).strip())
    return [i for i in items if i]


def _split_commands(text: str) -> list[str]:
    """A rule's command list split at its commas as sudo does: not inside a run-as list
    ``(root, alice)``, not escaped (``\\,``); a double quote is an ordinary character here."""
    return [part.strip() for part in _split_top(text, ",", quotes=False) if part.strip()]


def _split_top(text: str, sep: str, *, quotes: bool = True) -> list[str]:
    """Split on ``sep`` outside parentheses, backslash escapes and (with ``quotes``) double quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"' and quotes:
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")" and depth:
            depth -= 1
        elif not quoted and not depth and ch == sep:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


class _Spec(Struct, frozen=True):
    users: tuple[str, ...]
    hosts: tuple[str, ...]
    runas: tuple[str, ...]
    commands: tuple[str, ...]
    nopasswd: bool
    origin: str


class _Parse(Struct):
    reader: Reader | None
    problems: Problems
    files: list[str] = field(default_factory=list)
    defaults: list[tuple[str, str]] = field(default_factory=list)
    aliases: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    specs: list[_Spec] = field(default_factory=list)
    read: set[object] = field(default_factory=set)  # files parsed (by file identity)
    dirs_done: dict[str, None] = field(default_factory=dict)  # include directories expanded, in order
    dirs_active: list[str] = field(default_factory=list)  # include directories being expanded
    unread: list[str] = field(default_factory=list)  # "path: reason" of inputs sudo reads and we could not
    unread_more: int = 0
    # Aliases are expanded once each, then reused: a chain of aliases each naming the next ten times
    # is ten names per alias, not ten to the power of its length.
    expansions: dict[tuple[str, str], dict[str, None]] = field(default_factory=dict)
    negations: dict[tuple[str, str], dict[str, None]] = field(default_factory=dict)
    expanding: set[tuple[str, str]] = field(default_factory=set)  # aliases being expanded (cycles)
    alias_work: int = 0  # members visited and names copied, against MAX_ALIAS_WORK
    partial: dict[tuple[str, str], str] = field(default_factory=dict)  # aliases a bound cut, and why
    cuts: int = 0
    cut_at: dict[str, None] = field(default_factory=dict)  # rules whose expansion a bound cut

    def skipped(self, path: str, reason: str) -> None:
        """An input sudo would read that was not read: the policy is incomplete."""
        if len(self.unread) < MAX_UNREAD:
            self.unread.append(f"{path}: {reason}")
        else:
            self.unread_more += 1

    # --- files ------------------------------------------------------------------------------

    def read_file(self, path: str, chain: tuple[str, ...], required: bool) -> None:
        if path in chain:
            self.problems.note(path, f"include loop ({' → '.join((*chain, path))}); not read again "
                               "(sudo fails with too many levels of includes)", ErrorKind.LOOP)
            return
        if len(chain) >= MAX_DEPTH:
            self.problems.note(path, f"includes nested deeper than {MAX_DEPTH}; not read", ErrorKind.LOOP)
            self.skipped(path, f"includes nested deeper than {MAX_DEPTH}; not read")
            return
        if self.reader is None:
            self.problems.note(path, "included; not followed when parsing a single text",
                               ErrorKind.UNSUPPORTED)
            self.skipped(path, "included; not followed when parsing a single text")
            return
        info = self.reader.stat(path)
        identity = info.file_id if info.file_id is not None else path
        if identity in self.read:
            return  # included again: its lines were read where it was first included
        if sudo_refusal(info) is not None:
            # sudo ignores it: its rules and Defaults are not in force. Not a collection problem — it
            # was examined; VMS-GST-144 names it from Sudoers.files.
            self.read.add(identity)
            self.files.append(path)
            return
        if len(self.files) >= MAX_FILES:
            self.problems.note(chain[0] if chain else path,
                               f"more than {MAX_FILES} sudoers files; the rest were not read",
                               ErrorKind.TOO_LARGE)
            self.skipped(path, f"not read, more than {MAX_FILES} sudoers files")
            return
        try:
            data = self.reader.read_bytes(path, MAX_FILE_BYTES)
        except ReadError as exc:
            if exc.absent and not required:
                self.problems.note(path, "included but does not exist", ErrorKind.ABSENT)
            else:
                self.problems.append(exc)
                self.skipped(path, exc.reason)
            return
        self.read.add(identity)
        self.files.append(path)
        self.parse_text(data.decode("utf-8", "replace"), path, (*chain, path))

    def read_dir(self, directory: str, chain: tuple[str, ...]) -> None:
        if self.reader is None:
            self.problems.note(directory, "include directory; not followed when parsing a single text",
                               ErrorKind.UNSUPPORTED)
            self.skipped(directory, "include directory; not followed when parsing a single text")
            return
        if directory in self.dirs_active:
            self.problems.note(directory, f"include loop: {chain[-1] if chain else directory} includes the "
                               "directory it is read from (sudo fails with too many levels of includes)",
                               ErrorKind.LOOP)
            return
        if directory in self.dirs_done:
            return  # every file in it was read (or refused) already; a repeat adds nothing
        self.dirs_done[directory] = None
        if sudo_refusal(self.reader.stat(directory)) is not None:
            return  # sudo ignores the directory and every file in it (VMS-GST-144 names it)
        try:
            names = self.reader.listdir(directory, MAX_DIR_ENTRIES)
        except ReadError as exc:
            if not exc.absent:  # sudo ignores a missing include directory
                self.problems.append(ReadError(directory, f"{exc.reason}; its files were not read", exc.kind))
                self.skipped(directory, f"{exc.reason}; its files were not read")
            return
        self.dirs_active.append(directory)
        try:
            for name in names:
                if "." in name or name.endswith("~"):
                    continue
                path = f"{directory.rstrip('/')}/{name}"
                info = self.reader.stat(path)
                if info.kind is not None and info.kind != "file":
                    self.problems.note(path, f"{info.kind}, not a regular file; sudo skips it",
                                       ErrorKind.NOT_REGULAR)
                    continue
                self.read_file(path, chain, required=True)
        finally:
            self.dirs_active.pop()

    # --- lines ------------------------------------------------------------------------------

    def parse_text(self, text: str, path: str, chain: tuple[str, ...]) -> None:
        """The lines of one file as sudo's lexer reads them: a line ends at \\n only, blanks are C's,
        ``#include`` is a directive only at the start of its line (``@include`` also after blanks).

        A line sudo would apply but vmsec cannot parse makes the policy incomplete: it is recorded
        as unread, so no check PASSes on the rest alone."""
        directory = path.rsplit("/", 1)[0] or "/"
        bad = 0
        pending = ""
        start = 0
        for number, raw in enumerate(split_lines(text), 1):
            if not pending:
                start = number
            line = strip_c(raw)
            include = (_INCLUDE.match(line) if not pending and (raw.startswith("#") or line.startswith("@"))
                       else None)
            if include:
                self.include(include.group(1), include.group(2), directory, path, number, chain)
                continue
            if line.startswith("#") and not _uid_mark(line, 0):
                line = ""  # a comment (the include directives were handled above)
            line = _strip_comment(line)
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = strip_c(pending + line)
            pending = ""
            if not line:
                continue
            problem = "a NUL byte in the line" if "\x00" in line else self.parse_line(line, f"{path}:{start}")
            if problem:
                bad += 1
                self.skipped(f"{path}:{start}", f"not parsed ({problem})")
                if bad <= MAX_ERRORS_PER_FILE:
                    self.problems.append(ParseError(path, problem, start))
        if pending:  # sudo: a continuation at the end of a file is a syntax error, the policy refused
            self.problems.append(ParseError(path, "the last line ends in a backslash: sudo refuses this "
                                            "policy", start))
            self.skipped(f"{path}:{start}", "a continuation at the end of the file (a syntax error to sudo)")
        if bad > MAX_ERRORS_PER_FILE:
            self.problems.note(path, f"{bad - MAX_ERRORS_PER_FILE} more lines could not be parsed")

    def include(self, kind: str, text: str, directory: str, path: str, number: int,
                chain: tuple[str, ...]) -> None:
        """``#include``/``@include`` and ``…dir``: the path as sudo reads it — quoted or with
        backslash-escaped blanks, a trailing comment dropped; ``%h`` (the host name) cannot be resolved
        offline, so such a file is unread."""
        target = _strip_comment(text).strip()
        if target.startswith('"') and target.endswith('"') and len(target) > 1:
            target = target[1:-1]
        target = re.sub(r"\\(.)", r"\1", target)
        if "%h" in target.replace("%%", ""):
            self.problems.note(f"{path}:{number}", f"includes {target}, named after the host name (%h); "
                               "not read", ErrorKind.UNSUPPORTED)
            self.skipped(f"{path}:{number}", f"includes {target} (%h: the host name); not read")
            return
        target = target.replace("%%", "%")
        if not target.startswith("/"):
            target = f"{directory}/{target}"
        if kind == "include":
            self.read_file(target, chain, required=False)
        else:
            self.read_dir(target, chain)

    def parse_line(self, line: str, origin: str) -> str | None:
        """Parse one logical line; returns a description of the problem, or None."""
        first = line.split(None, 1)[0]
        if first.startswith("Defaults") and line[8:9] in ("", " ", "\t", ":", "@", ">", "!"):
            match = _DEFAULTS.match(line)
            if not match:
                return "malformed Defaults line"
            scope = match.group(1) + _LIST_COMMA.sub(",", match.group(2)) if match.group(1) else ""
            for setting in _split_list(match.group(3) or ""):
                self.defaults.append((scope, _OPERATOR.sub(r"\1", setting, count=1)))
            return None
        if first in ALIAS_KINDS:
            return self.parse_alias(ALIAS_KINDS[first], line[len(first):], origin)
        return self.parse_spec(line, origin)

    def parse_alias(self, kind: str, text: str, origin: str) -> str | None:
        for definition in _split_top(text, ":"):
            name, sep, members = definition.partition("=")
            name = name.strip()
            if not sep or not _ALIAS_NAME.fullmatch(name):
                return f"malformed {kind} alias definition"
            if (kind, name) in self.aliases:  # sudo: 'Alias "C" already defined'; the first one stands
                self.problems.append(ParseError(origin, f"{kind} alias {name} already defined; the first "
                                                "definition stands, as in sudo"))
                continue
            self.aliases[(kind, name)] = _split_list(members)
        return None

    def parse_spec(self, line: str, origin: str) -> str | None:
        # "user host = cmd : host2 = cmd2": a ":" also ends every tag (NOPASSWD:), so a part starts a
        # new host run only when it reads "hosts =" and the part before it does not end in a tag.
        groups: list[str] = []
        for part in _split_top(line, ":"):
            previous = groups[-1].split()[-1:] if groups else []
            # a tag (NOPASSWD:) or a digest (sha256:base64, whose '=' padding looks like "hosts =")
            if groups and ((previous and (previous[0] in TAGS or previous[0] in DIGESTS))
                           or not _HOST_RUN.match(part)):
                groups[-1] += ":" + part
            else:
                groups.append(part)
        head = groups[0]
        left, sep, right = head.partition("=")
        if not sep:
            return "not a Defaults, alias or user specification line"
        left = re.sub(r"!\s+", "!", re.sub(r"\s*,\s*", ",", left.strip()))  # "ALL, ! alice" is a list
        words = _WORD.findall(left)
        if len(words) != 2:
            return "a user specification needs users, hosts and '='"
        users = tuple(_split_list(words[0]))
        host_runs = [(tuple(_split_list(words[1])), right)]
        for extra in groups[1:]:
            host_text, _, cmnds = extra.partition("=")
            host_runs.append((tuple(_split_list(host_text)), cmnds))
        for hosts, cmnds in host_runs:
            problem = self.parse_cmnds(users, hosts, cmnds, origin)
            if problem:
                return problem
        return None

    def parse_cmnds(self, users: tuple[str, ...], hosts: tuple[str, ...], text: str,
                    origin: str) -> str | None:
        runas: tuple[str, ...] = ("root",)
        nopasswd = False
        run: list[str] = []
        key: tuple[tuple[str, ...], bool] | None = None
        for item in _split_commands(text):
            rest = item
            if rest.startswith("("):
                close = rest.find(")")
                if close < 0:
                    return "unclosed run-as list"
                inner = rest[1:close]
                user_part = inner.split(":", 1)[0]
                runas = tuple(_split_list(user_part)) or ("root",)
                rest = rest[close + 1:].strip()
            while True:
                word, colon, after = rest.partition(":")
                word = word.strip()
                if colon and word in TAGS:
                    if word == "NOPASSWD":
                        nopasswd = True
                    elif word == "PASSWD":
                        nopasswd = False
                    rest = after.strip()
                    continue
                option = _OPTION.match(rest) or _DIGEST.match(rest)
                if option:
                    rest = rest[option.end():]
                    continue
                break
            if not rest:
                return "a command list entry without a command"
            current = (runas, nopasswd)
            if key is not None and current != key and run:
                self.specs.append(_Spec(users, hosts, key[0], tuple(run), key[1], origin))
                run = []
            key = current
            run.append(rest)
        if key is not None and run:
            self.specs.append(_Spec(users, hosts, key[0], tuple(run), key[1], origin))
        return None

    # --- aliases ----------------------------------------------------------------------------

    def expand(self, kind: str, items: tuple[str, ...], origin: str) -> tuple[str, ...]:
        """``items`` with their aliases replaced by the aliases' members (``!`` negates), in order,
        each name once; at most :data:`MAX_EXPANDED` names. What a bound cuts off is unread."""
        out: dict[str, None] = {}
        for item in items:
            if not self._merge(out, kind, item, 0, origin):
                self.cut(origin, f"more than {MAX_EXPANDED} names after expanding aliases; the rest "
                         "were not examined")
                break
        return tuple(out)

    def _merge(self, out: dict[str, None], kind: str, item: str, depth: int, origin: str) -> bool:
        """Add the names ``item`` stands for to ``out``; False when ``out`` is full."""
        negations = _NEGATIONS.match(item)
        negate = negations is not None and negations.group().count("!") % 2 == 1
        name = item[negations.end():].strip() if negations is not None else item
        members = self._alias(kind, name, depth, origin)
        if members is None:  # a name (or an alias left unexpanded: a cycle, a bound)
            members = {f"!{name}" if negate else name: None}
        elif negate:
            members = self._negated(kind, name, members)
        self.alias_work += len(members)
        if len(out) + len(members) <= MAX_EXPANDED:
            out.update(members)
            return True
        for member in members:
            if len(out) >= MAX_EXPANDED and member not in out:
                return False
            out[member] = None
        return True

    def _alias(self, kind: str, name: str, depth: int, origin: str) -> dict[str, None] | None:
        """The names alias ``name`` stands for, expanded once per policy however many rules and
        aliases use it; None when ``name`` is no alias, or one being expanded (a cycle, which sudo
        rejects), or when a bound stops the expansion (recorded as unread for ``origin``)."""
        key = (kind, name)
        members = self.aliases.get(key)
        if members is None:
            return None
        if self.alias_work >= MAX_ALIAS_WORK:
            self.cut(origin, f"aliases not expanded: more than {MAX_ALIAS_WORK} steps expanding aliases "
                     "(hostile input?)")
            return None
        done = self.expansions.get(key)
        if done is not None:
            if key in self.partial:  # cut where it was expanded first: incomplete here as well
                self.cut(origin, self.partial[key])
            return done
        if key in self.expanding:
            self.problems.note(origin, f"alias {name} includes itself (sudo rejects the cycle)",
                               ErrorKind.LOOP)
            return None
        if depth >= MAX_ALIAS_DEPTH:
            self.cut(origin, f"aliases nested deeper than {MAX_ALIAS_DEPTH} ({name}) were not expanded")
            return None
        self.expanding.add(key)
        cuts = self.cuts
        out: dict[str, None] = {}
        for member in members:
            self.alias_work += 1
            if not self._merge(out, kind, member, depth + 1, origin):
                self.cut(origin, f"alias {name} stands for more than {MAX_EXPANDED} names; the rest "
                         "were not examined")
                break
        self.expanding.discard(key)
        self.expansions[key] = out
        if self.cuts != cuts:
            self.partial[key] = f"alias {name} was not expanded in full (see where it was first used)"
        return out

    def _negated(self, kind: str, name: str, members: dict[str, None]) -> dict[str, None]:
        """``!alias``: each of its names negated (computed once per alias)."""
        key = (kind, name)
        done = self.negations.get(key)
        if done is None:
            self.alias_work += len(members)
            done = {m[1:] if m.startswith("!") else f"!{m}": None for m in members}
            self.negations[key] = done
        return done

    def cut(self, origin: str, reason: str) -> None:
        """A bound cut the expansion of the rule at ``origin``: the rules seen are incomplete."""
        self.cuts += 1
        if origin not in self.cut_at:
            self.cut_at[origin] = None
            self.problems.note(origin, reason, ErrorKind.TOO_LARGE)
            self.skipped(origin, reason)

    def result(self) -> Sudoers:
        rules = tuple(
            SudoRule(users=self.expand("user", s.users, s.origin),
                     hosts=self.expand("host", s.hosts, s.origin),
                     runas=self.expand("runas", s.runas, s.origin),
                     commands=self.expand("cmnd", s.commands, s.origin), nopasswd=s.nopasswd, origin=s.origin)
            for s in self.specs)
        more = (f"… and {self.unread_more} more inputs not read",) if self.unread_more else ()
        return Sudoers(rules=rules, defaults=tuple(self.defaults), files=tuple(self.files),
                       dirs=tuple(self.dirs_done), unread=(*self.unread, *more))


def read_sudoers(reader: Reader, path: str = "/etc/sudoers", *, problems: Problems | None = None) -> Sudoers:
    """The sudoers policy of ``reader``'s root. A missing /etc/sudoers gives an empty :class:`Sudoers`
    (no files read: sudo is not configured). Raises :class:`ReadError` when /etc/sudoers exists but
    cannot be read (the policy is then unknown); every included file that could not be read, every
    include loop and every line that could not be parsed is added to ``problems`` instead, so the
    rest of the policy stays visible — and each input that could not be read is also named in the
    fact's ``unread``, so that the checks know the policy is incomplete."""
    info = reader.stat(path)
    if info.exists is False:
        return Sudoers()
    parse = _Parse(reader, Problems() if problems is None else problems)
    data = reader.read_bytes(path, MAX_FILE_BYTES)  # the main file: unreadable means unknown
    parse.read.add(info.file_id if info.file_id is not None else path)
    parse.files.append(path)
    if sudo_refusal(info) is not None:  # sudo refuses the whole policy: nothing is granted (VMS-GST-144)
        return parse.result()
    # A NUL byte: sudo 1.9 reads the file (a NUL in a comment is nothing); a line with one is unread.
    parse.parse_text(data.decode("utf-8", "replace"), path, (path,))
    return parse.result()


def parse_sudoers(text: str, origin: str, *, problems: Problems | None = None) -> Sudoers:
    """Parse one sudoers text without following includes (each one is added to ``problems``)."""
    parse = _Parse(None, Problems() if problems is None else problems)
    parse.files.append(origin)
    parse.parse_text(text, origin, (origin,))
    return parse.result()
