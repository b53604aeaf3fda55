"""PAM service stacks: /etc/pam.d/<service> (and the vendor directory /usr/lib/pam.d) with includes expanded.

Line syntax (pam.conf(5)): ``[-]type control module-path [args…]``; a leading ``-`` on the type
means "ignore a missing module" and is dropped; ``control`` is a keyword or a bracketed
``[value=action …]`` list; arguments may be bracketed to hold spaces. ``@include file`` (Debian)
inserts every line of ``file``; ``type include file`` and ``type substack file`` insert the lines of
that type only. The include line itself is kept (module = the included file) before the lines it
brings, so a check sees both where a stack includes and what it includes. Expansion is bounded (depth
8, 5,000 lines per stack) and every file is read and parsed once, however many stacks include it; an
include loop (kind LOOP) or a missing included file (ABSENT) is added to the caller's
:class:`~vmsec.errors.Problems` and expansion goes on without it, as PAM itself fails that include.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from msgspec import Struct, field

from vmsec.errors import ErrorKind, ParseError, Problems, ReadError
from vmsec.facts import PamLine, PamStack
from vmsec.parsers.lines import split_lines

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


def _split(text: str) -> list[str]:
    """Split on whitespace, keeping ``[ … ]`` groups (with their spaces) as one word."""
    words: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        if ch.isspace() and not depth:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(ch)
    if current:
        words.append("".join(current))
    return words


def parse_pam_file(text: str, path: str = "") -> tuple[tuple[RawPamLine, ...], tuple[ParseError, ...]]:
    """Lines of one PAM file, and the lines that could not be parsed (``path:line``)."""
    lines: list[RawPamLine] = []
    problems: list[ParseError] = []
    pending = ""
    start = 0
    for number, raw in enumerate(split_lines(text), 1):
        if not pending:
            start = number
        stripped = raw.split("#", 1)[0].rstrip()  # Linux-PAM drops everything after '#'
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = (pending + stripped).strip()
        pending = ""
        if not line:
            continue
        words = _split(line)
        if words[0] == "@include":
            if len(words) >= 2:
                lines.append(RawPamLine(type="@include", control="include", module=words[1], args=(),
                                        line=start))
            else:
                problems.append(ParseError(path, "@include without a file", start))
            continue
        if len(words) < 3:
            problems.append(ParseError(path, "fewer than three fields", start))
            continue
        kind = words[0].lstrip("-").lower()
        if kind not in TYPES:
            problems.append(ParseError(path, f"unknown type {words[0]!r}", start))
            continue
        lines.append(RawPamLine(type=kind, control=words[1], module=words[2], args=tuple(words[3:]),
                                line=start))
    return tuple(lines), tuple(problems)


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

    def resolve(self, name: str, directory: str) -> str | None:
        if name.startswith("/"):
            return name
        for base in (directory, *PAM_DIRS):
            candidate = f"{base}/{name}"
            if self.reader.stat(candidate).exists:
                return candidate
        return None

    def expand(self, path: str, only: str | None, chain: tuple[str, ...], out: list[PamLine]) -> None:
        lines = self.load(path)
        if lines is None:
            self.problems.note(path, f"included by {chain[-1] if chain else '?'} but does not exist",
                               ErrorKind.ABSENT)
            return
        directory = path.rsplit("/", 1)[0] or "/"
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
                                   origin=origin))
            else:
                out.append(PamLine(type=raw.type, control=raw.control, module=raw.module, args=raw.args,
                                   origin=origin))
            if not include:
                continue
            target = self.resolve(raw.module, directory)
            if target is None:
                self.problems.note(origin, f"included file {raw.module!r} does not exist", ErrorKind.ABSENT)
                continue
            if target in chain or target == path:
                self.problems.note(origin, f"include loop through {target}; not expanded again",
                                   ErrorKind.LOOP)
                continue
            if len(chain) + 1 >= MAX_DEPTH:
                self.problems.note(origin, f"includes nested deeper than {MAX_DEPTH}; {target} not expanded",
                                   ErrorKind.LOOP)
                continue
            self.expand(target, only if raw.type == "@include" else raw.type, (*chain, path), out)


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
    for directory in PAM_DIRS:
        try:
            names = reader.listdir(directory, MAX_SERVICES)
        except ReadError as exc:
            if exc.absent:
                continue
            raise
        for name in names:
            if not name.startswith(".") and not name.endswith(_BACKUP_SUFFIXES):
                services.setdefault(name)
    expansion = _Expansion(reader, Problems() if problems is None else problems)
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
