"""Bounded, error-recording file access shared by the system-configuration parsers.

Every function here reads through a :class:`~vmsec.reading.Reader`. A file that does not
exist (ENOENT, ENOTDIR) is simply absent; any other failure (permission denied, a FIFO, a file over
the cap, a symlink loop, a directory with too many entries, an I/O error) means the input exists
but was not read. That is appended to the caller's ``errors`` list as an :class:`Unreadable` naming
the input, and the caller goes on without it — but the fact it builds is then incomplete, and an
:class:`Inputs` list keeps every such input apart (``unread``) so the collector can say so on the
fact: what an unread file holds is unknown, never "not configured".
"""

from __future__ import annotations

import fnmatch
import posixpath

from vmsec.errors import ErrorKind, Problems, ReadError
from vmsec.facts import FileKind
from vmsec.parsers.lines import split_lines, strip_c
from vmsec.reading import Reader

CONFIG_LIMIT = 1024 * 1024  # one configuration file: 1 MiB is far above any real one
DIR_LIMIT = 4096  # entries in one configuration directory (sysctl.d, yum.repos.d, …)
MAX_LINES = 20_000  # lines looked at in one file

MAX_UNREAD = 100  # unread inputs named per fact; the rest are counted

Errors = list[ReadError]


class Unreadable(ReadError):
    """An input that exists (or may exist) but was not read: the fact built without it is incomplete."""


class Inputs(Problems):
    """The problems of one fact (bounded, as every :class:`Problems`), and apart from them every input
    that exists but could not be read (``unread``, "path: reason"), so that a flood of bad lines
    cannot push an unread file out of sight."""

    def __init__(self) -> None:
        super().__init__()
        self._unread: dict[str, None] = {}
        self._unread_more = 0

    def append(self, problem: ReadError) -> None:
        if isinstance(problem, Unreadable):
            text = f"{problem.source}: {problem.reason}"
            if len(self._unread) < MAX_UNREAD:
                self._unread.setdefault(text)
            elif text not in self._unread:
                self._unread_more += 1
        super().append(problem)

    @property
    def unread(self) -> tuple[str, ...]:
        more = (f"… and {self._unread_more} more inputs not read",) if self._unread_more else ()
        return (*self._unread, *more)


def absent(exc: ReadError) -> bool:
    """True when the error only says that the path does not exist."""
    return exc.absent


def unreadable(errors: Errors | None, exc: ReadError) -> None:
    """Record ``exc`` as an input that was not read (see :class:`Unreadable`)."""
    if errors is not None:
        errors.append(exc if isinstance(exc, Unreadable) else Unreadable(exc.source, exc.reason, exc.kind))


def note(errors: Errors | None, source: str, reason: str, kind: ErrorKind = ErrorKind.INVALID) -> None:
    if errors is not None:
        errors.append(ReadError(source, reason, kind))


def read_optional(reader: Reader, path: str, errors: Errors | None,
                  limit: int = CONFIG_LIMIT) -> str | None:
    """The file's text; None when it is absent (silently) or unreadable (recorded as
    :class:`Unreadable`)."""
    try:
        return reader.read_text(path, limit)
    except ReadError as exc:
        if not absent(exc):
            unreadable(errors, exc)
        return None


def read_required(reader: Reader, path: str, limit: int = CONFIG_LIMIT) -> str | None:
    """The file's text; None when absent. Any other failure raises :class:`ReadError`, for facts
    read from one file only, where an unreadable file makes the whole fact unknown."""
    try:
        return reader.read_text(path, limit)
    except ReadError as exc:
        if absent(exc):
            return None
        raise


def list_dir(reader: Reader, path: str, errors: Errors | None, limit: int = DIR_LIMIT) -> list[str]:
    """Sorted names in a directory; [] when absent (silently) or unreadable or too large (recorded as
    :class:`Unreadable`: the files in it were not read)."""
    try:
        return reader.listdir(path, limit)
    except ReadError as exc:
        if not absent(exc):
            unreadable(errors, exc)
        return []


def is_symlink(reader: Reader, path: str) -> bool:
    return reader.stat(path, follow=False).kind == FileKind.SYMLINK


def link_target(reader: Reader, path: str) -> str | None:
    """The symlink's target text, or None when ``path`` is not a symlink (or cannot be read)."""
    try:
        return reader.readlink(path)
    except ReadError:
        return None


def masked(reader: Reader, path: str) -> bool:
    """True when ``path`` masks a unit as systemd sees it: a symlink to /dev/null (``../../dev/null``
    too, resolved beside the link) or an empty regular file."""
    target = link_target(reader, path)
    if target is not None:
        return posixpath.normpath(posixpath.join(posixpath.dirname(path), target)) == "/dev/null"
    info = reader.stat(path, follow=False)
    return bool(info.exists) and info.kind == FileKind.FILE and info.size == 0


def lines(text: str, errors: Errors | None = None, path: str = "") -> list[tuple[int, str]]:
    """(line number, stripped line) for the first MAX_LINES lines. The lines after them were not
    read: recorded as :class:`Unreadable` (``path``) when ``errors`` is given."""
    split = split_lines(text)  # as the programs read them: see vmsec.parsers.lines
    if len(split) > MAX_LINES:
        unreadable(errors, ReadError(path or "(text)", f"more than {MAX_LINES} lines; the rest was not "
                                     "read", ErrorKind.TOO_LARGE))
    return [(n, strip_c(raw)) for n, raw in enumerate(split[:MAX_LINES], start=1)]


def read_lines(reader: Reader, path: str, errors: Errors | None) -> list[tuple[int, str]]:
    """:func:`lines` of the file; [] when it is absent or unreadable (recorded)."""
    return lines(read_optional(reader, path, errors) or "", errors, path)


def truthy(value: str) -> bool | None:
    """yes/true/on/1 → True, no/false/off/0 → False, anything else → None."""
    v = value.strip().strip('"').strip("'").lower()
    if v in ("1", "yes", "true", "on", "y"):
        return True
    if v in ("0", "no", "false", "off", "n"):
        return False
    return None


def glob_paths(reader: Reader, pattern: str, limit: int = DIR_LIMIT) -> list[str]:
    """glob(3) as the daemons call it: wildcards in any component, a hidden name matched only by a
    component that starts with a dot, results sorted; a trailing slash matches directories only. A
    directory that cannot be listed contributes nothing (as glob's GLOB_ERR-less walk)."""
    found = [""]
    dirs_only = pattern.endswith("/")
    parts = pattern.strip("/").split("/")
    for index, part in enumerate(parts):
        nxt: list[str] = []
        for base in found:
            if not any(c in part for c in "*?["):
                nxt.append(f"{base}/{part}")
                continue
            try:
                names = reader.listdir(base or "/", limit)
            except (ReadError, ValueError):
                continue
            nxt += [f"{base}/{n}" for n in sorted(names) if fnmatch.fnmatchcase(n, part)
                    and (part.startswith(".") or not n.startswith("."))]
        if dirs_only and index == len(parts) - 1:
            nxt = [p for p in nxt if reader.stat(p).kind is FileKind.DIRECTORY]
        found = nxt[:limit]
    return found
