"""PAM service stacks: /etc/pam.d/<service> (and the vendor directory /usr/lib/pam.d) with includes expanded.

Line syntax (pam.conf(5)): ``[-]type control module-path [args…]``; a leading ``-`` on the type
means "ignore a missing module" and is dropped; ``control`` is a keyword or a bracketed
``[value=action …]`` list; arguments may be bracketed to hold spaces. Lines are read as libpam 1.5
reads them (pam_handlers.c ``_pam_assemble_line``, pam_misc.c ``_pam_StrTok``; each rule has a test
checked against the real library): a 1,024-byte buffer, a continuation that passes over blank and
comment lines, a ``#`` that ends the line before any backslash, words split at space, tab and
newline only, ``[…]`` words without their brackets, keywords in any case. ``@include file`` (Debian)
inserts every line of ``file``; ``type include file`` and ``type substack file`` insert the lines of
that type only. The include line itself is kept (module = the included file) before the lines it
brings, so a check sees both where a stack includes and what it includes. Expansion is bounded (depth
8, 5,000 lines per stack) and every file is read and parsed once, however many stacks include it; an
include loop (kind LOOP) or a missing included file (ABSENT) is added to the caller's
:class:`~vmsec.errors.Problems` and expansion goes on without it, as PAM itself fails that include.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from msgspec import Struct, field

from vmsec.errors import ErrorKind, ParseError, Problems, ReadError
from vmsec.facts import PamLine, PamStack

if TYPE_CHECKING:
    from vmsec.reading import Reader

PAM_DIRS = ("/etc/pam.d", "/usr/lib/pam.d")
MAX_DEPTH = 8
MAX_SERVICES = 1_000
MAX_FILE_BYTES = 256 * 1024
MAX_LINES_PER_STACK = 5_000
MAX_TOTAL_LINES = 200_000  # over all stacks: includes repeat shared files in every stack that uses them
_BACKUP_SUFFIXES = ("~", ".dpkg-old", ".dpkg-dist", ".rpmnew", ".rpmsave")
TYPES = frozenset({"auth", "account", "password", "session"})


class RawPamLine(Struct, frozen=True):
    """One line of a PAM file before include expansion."""

    type: str  # a PAM type, or "@include"
    control: str
    module: str
    args: tuple[str, ...]
    line: int


_BUF_SIZE = 1024  # pam_handlers.c BUF_SIZE: one assembled line, continuations included
_LEADING = " \n\t"  # strspn(p, " \n\t"): what a blank line is made of
_TRAILING = " \t\n"  # passed over looking back for a continuation backslash
_DELIMITERS = frozenset(" \n\t")  # _pam_StrTok's format: nothing else separates words


class _Overflow(Exception):
    """An assembled line outgrew libpam's buffer: libpam stops reading the file (PAM_ABORT)."""


def _assemble(text: str) -> list[tuple[int, str]]:
    """(first line number, line) as _pam_assemble_line() builds them: fgets() into a 1,024-byte
    buffer (a longer physical line is two lines), blank and comment-only lines skipped — also in the
    middle of a continuation —, a line cut at its first "#" with no continuation looked for, and a
    trailing backslash (after spaces, tabs and newlines only) joining the next line."""
    out: list[tuple[int, str]] = []
    pos, n, number = 0, len(text), 1
    while pos < n:
        parts: list[str] = []
        used = 0  # where fgets() writes next in the buffer (p - buffer)
        start = number
        while True:
            room = _BUF_SIZE - used - 1
            if room <= 0:
                raise _Overflow
            if pos >= n:
                if parts:  # an incomplete read: libpam returns -1 and aborts
                    raise _Overflow
                return out
            end = text.find("\n", pos, pos + room)
            chunk = text[pos:end + 1] if end >= 0 else text[pos:pos + room]
            pos += len(chunk)
            number += chunk.count("\n")
            if not parts:
                start = number - chunk.count("\n")
            lead = len(chunk) - len(chunk.lstrip(_LEADING))
            body = chunk[lead:]
            if not body or body.startswith("#"):
                continue  # nothing in this line: p does not move
            if "#" in body:
                parts.append(body[:body.index("#")])
                break
            trimmed = body.rstrip(_TRAILING)
            if trimmed.endswith("\\"):
                parts.append(trimmed[:-1] + " ")
                used += lead + len(trimmed)  # the buffer now ends just after the replaced backslash
                continue
            parts.append(body)
            break
        out.append((start, "".join(parts)))
    return out


def _words(line: str) -> list[tuple[str, bool]]:
    """The words of a line as _pam_StrTok() takes them: separated by space, tab or newline; a word
    opening with "[" runs to the first "]" (which ends it even mid-word) and loses its brackets, a
    "\\]" inside standing for "]". Each word comes with whether it was bracketed."""
    words: list[tuple[str, bool]] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in _DELIMITERS:
            i += 1
        if i >= n:
            break
        if line[i] == "[":
            i += 1
            word: list[str] = []
            while i < n and line[i] != "]":
                if line[i] == "\\" and line[i + 1:i + 2] == "]":
                    i += 1
                word.append(line[i])
                i += 1
            words.append(("".join(word), True))
            i += 1  # past the "]" (or the end)
            continue
        start = i
        while i < n and line[i] not in _DELIMITERS:
            i += 1
        words.append((line[start:i], False))
    return words


_CONTROL_WORDS = frozenset({"required", "requisite", "sufficient", "optional", "include", "substack"})


def parse_pam_file(text: str, path: str = "") -> tuple[tuple[RawPamLine, ...], tuple[ParseError, ...]]:
    """Lines of one PAM file, and the lines that could not be parsed (``path:line``), as Linux-PAM
    1.5 reads them (pam_handlers.c ``_pam_parse_conf_file``: keywords without regard to case)."""
    lines: list[RawPamLine] = []
    problems: list[ParseError] = []
    for start, line in _assembled(text, path, problems):
        raw = _raw_line(_words(line), start, path, problems)
        if raw is not None:
            lines.append(raw)
    return tuple(lines), tuple(problems)


def _assembled(text: str, path: str, problems: list[ParseError]) -> list[tuple[int, str]]:
    try:
        return _assemble(text)
    except _Overflow:
        problems.append(ParseError(path, f"a line longer than {_BUF_SIZE - 1} bytes with its continuations: "
                                   "libpam stops reading the file there"))
        return []


def _raw_line(tokens: list[tuple[str, bool]], start: int, path: str, problems: list[ParseError]
              ) -> RawPamLine | None:
    """One assembled line's words as a PAM line (None for a blank or bad one, noted in ``problems``)."""
    words = [word for word, _ in tokens]
    if not words:
        return None
    if words[0].lower() == "@include":
        if len(words) >= 2:
            return RawPamLine(type="@include", control="include", module=words[1], args=(), line=start)
        problems.append(ParseError(path, "@include without a file", start))
        return None
    if len(words) < 3:
        problems.append(ParseError(path, "fewer than three fields", start))
        return None
    kind = words[0].removeprefix("-").lower()
    if kind not in TYPES:
        problems.append(ParseError(path, f"unknown type {words[0]!r}", start))
        return None
    # _pam_StrTok() takes the brackets off before the keywords are compared: "[required]" is required.
    control = words[1].lower() if words[1].lower() in _CONTROL_WORDS else words[1]
    if tokens[1][1] and control not in _CONTROL_WORDS:
        control = f"[{words[1]}]"  # a value=action list (its brackets were taken off)
    return RawPamLine(type=kind, control=control, module=words[2], args=tuple(words[3:]), line=start)


PAM_CONF = "/etc/pam.conf"


def _pam_conf_stacks(expansion: _Expansion, text: str) -> list[PamStack]:
    """/etc/pam.conf's services (its first field, without regard to case), each with its includes
    expanded as a pam.d file's would be."""
    problems: list[ParseError] = []
    by_service: dict[str, list[RawPamLine]] = {}
    for start, line in _assembled(text, PAM_CONF, problems):
        tokens = _words(line)
        if len(tokens) < 2:
            continue
        raw = _raw_line(tokens[1:], start, PAM_CONF, problems)
        if raw is not None:
            by_service.setdefault(tokens[0][0].lower(), []).append(raw)
    expansion.problems.extend(problems)
    stacks: list[PamStack] = []
    for service, raws in by_service.items():
        out: list[PamLine] = []
        expansion.expand_lines(PAM_CONF, raws, None, (), out)
        stacks.append(PamStack(service=service, path=PAM_CONF, lines=tuple(out)))
    return stacks


class _Expansion(Struct):
    reader: Reader
    problems: Problems = field(default_factory=Problems)
    cache: dict[str, tuple[RawPamLine, ...] | None] = field(default_factory=dict)

    def load(self, path: str) -> tuple[RawPamLine, ...] | None:
        if path in self.cache:
            return self.cache[path]
        result: tuple[RawPamLine, ...] | None
        try:
            text = self.reader.read_text(path, MAX_FILE_BYTES)
        except ReadError as exc:
            if not exc.absent:
                raise
            result = None
        else:
            result, problems = parse_pam_file(text, path)
            self.problems.extend(problems)
        self.cache[path] = result
        return result

    def resolve(self, name: str) -> str | None:
        """pam_handlers.c: an absolute name as it is, else /etc/pam.d/name, then the vendor directory
        (never the directory of the file that includes it)."""
        if name.startswith("/"):
            return name
        for base in PAM_DIRS:
            candidate = f"{base}/{name}"
            if self.reader.stat(candidate).exists:
                return candidate
        return None

    def expand(self, path: str, only: str | None, chain: tuple[str, ...], out: list[PamLine],
               level: int = 0) -> None:
        lines = self.load(path)
        if lines is None:
            self.problems.note(path, f"included by {chain[-1] if chain else '?'} but does not exist",
                               ErrorKind.ABSENT)
            return
        self.expand_lines(path, lines, only, chain, out, level)

    def expand_lines(self, path: str, lines: Sequence[RawPamLine], only: str | None, chain: tuple[str, ...],
                     out: list[PamLine], level: int = 0) -> None:
        """``lines`` of ``path`` (a pam.d file, or one service of /etc/pam.conf), includes expanded."""
        for raw in lines:
            if len(out) >= MAX_LINES_PER_STACK:
                top = chain[0] if chain else path
                self.problems.note(top, f"more than {MAX_LINES_PER_STACK} lines; truncated",
                                   ErrorKind.TOO_LARGE)
                return
            if only is not None and raw.type not in (only, "@include"):
                continue
            origin = f"{path}:{raw.line}"
            include = raw.type == "@include" or raw.control in ("include", "substack")
            if raw.type == "@include":
                out.append(PamLine(type=only or "@include", control="include", module=raw.module,
                                   origin=origin, level=level))
            else:
                out.append(PamLine(type=raw.type, control=raw.control, module=raw.module, args=raw.args,
                                   origin=origin, level=level))
            if not include:
                continue
            target = self.resolve(raw.module)
            if target is None or self.load(target) is None:
                self.problems.note(origin, f"included file {raw.module!r} does not exist", ErrorKind.ABSENT)
                out.extend(_must_fail(raw, only, origin, level))
                continue
            if target in chain or target == path:
                # libpam follows the loop to its include limit, then fails there.
                self.problems.note(origin, f"include loop through {target}; not expanded again",
                                   ErrorKind.LOOP)
                out.extend(_must_fail(raw, only, origin, level))
                continue
            if len(chain) + 1 >= MAX_DEPTH:
                self.problems.note(origin, f"includes nested deeper than {MAX_DEPTH}; {target} not expanded",
                                   ErrorKind.LOOP)
                continue
            # A substack's lines run one level down (done/die end the substack, not the stack).
            self.expand(target, only if raw.type == "@include" else raw.type, (*chain, path), out,
                        level + (raw.control == "substack"))


MUST_FAIL = "(include failed)"  # the module name of the line that stands for an include that failed


def _must_fail(raw: RawPamLine, only: str | None, origin: str, level: int) -> list[PamLine]:
    """pam_handlers.c: an include or substack whose file cannot be loaded leaves a PAM_HT_MUST_FAIL
    handler at the caller's level, every return of which is ``bad`` — the stack can no longer succeed
    on its own (a ``done`` before it still ends it). A service file's own ``@include`` of a missing
    file makes pam_start() itself fail (PAM_ABORT, checked with libpam 1.5.2): every type fails.
    (An include loop crashes that libpam; it cannot succeed either.)"""
    types = sorted(TYPES) if raw.type == "@include" and only is None else [only or raw.type]
    return [PamLine(type=t, control="[default=bad]", module=MUST_FAIL, origin=origin, level=level)
            for t in types]


def read_pam_stack(reader: Reader, service: str, *, problems: Problems | None = None) -> PamStack | None:
    """One service's stack with includes expanded, or None when no file for it exists.

    Raises :class:`ReadError` when a file that exists cannot be read (a FIFO, a device, too large):
    a stack with a hole in it would look weaker or stronger than it is.
    """
    expansion = _Expansion(reader, Problems() if problems is None else problems)
    for directory in PAM_DIRS:
        path = f"{directory}/{service}"
        if expansion.load(path) is None:
            continue
        lines: list[PamLine] = []
        expansion.expand(path, None, (), lines)
        return PamStack(service=service, path=path, lines=tuple(lines))
    return None


def read_pam(reader: Reader, *, problems: Problems | None = None) -> tuple[PamStack, ...]:
    """Every service in /etc/pam.d and /usr/lib/pam.d (a file in /etc/pam.d hides the vendor one).

    An empty tuple means the root has no PAM configuration (Alpine without linux-pam). Problems that
    do not stop the read (include loops, missing includes, unparsable lines) are added to ``problems``.
    Raises :class:`ReadError` for a service directory or file that exists but cannot be read.
    """
    services: dict[str, None] = {}
    directories = 0
    for directory in PAM_DIRS:
        try:
            names = reader.listdir(directory, MAX_SERVICES)
        except ReadError as exc:
            if exc.absent:
                continue
            raise
        directories += 1
        for name in names:
            if not name.startswith(".") and not name.endswith(_BACKUP_SUFFIXES):
                services.setdefault(name)
    expansion = _Expansion(reader, Problems() if problems is None else problems)
    if not directories:  # no pam.d at all: libpam reads /etc/pam.conf
        try:
            text = reader.read_text(PAM_CONF, MAX_FILE_BYTES)
        except ReadError as exc:
            if exc.absent:
                return ()
            raise
        return tuple(_pam_conf_stacks(expansion, text))
    stacks: list[PamStack] = []
    total = 0
    for service in services:
        for directory in PAM_DIRS:
            path = f"{directory}/{service}"
            info = reader.stat(path)
            if info.exists is False or (info.exists and info.kind == "directory"):
                continue
            if expansion.load(path) is None:
                continue
            lines: list[PamLine] = []
            expansion.expand(path, None, (), lines)
            stacks.append(PamStack(service=service, path=path, lines=tuple(lines)))
            total += len(lines)
            if total > MAX_TOTAL_LINES:
                raise ReadError(path, f"the PAM stacks expand to more than {MAX_TOTAL_LINES} lines in all",
                                ErrorKind.TOO_LARGE)
            break
    return tuple(stacks)
