"""Bounded, error-recording file access shared by the system-configuration parsers.

Every function here reads through a :class:`~vmsec.reading.Reader`. A file that does not
exist is simply absent; any other failure (a FIFO, a file over the cap, a symlink loop, a directory
with too many entries) is appended to the caller's ``errors`` list as a :class:`ReadError` naming the
input, and the caller goes on without it.
"""

from __future__ import annotations

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileKind
from vmsec.reading import Reader

CONFIG_LIMIT = 1024 * 1024  # one configuration file: 1 MiB is far above any real one
DIR_LIMIT = 4096  # entries in one configuration directory (sysctl.d, yum.repos.d, …)
MAX_LINES = 20_000  # lines looked at in one file

Errors = list[ReadError]

def absent(exc: ReadError) -> bool:
    """True when the error only says that the path does not exist."""
    return exc.absent


def note(errors: Errors | None, source: str, reason: str, kind: ErrorKind = ErrorKind.INVALID) -> None:
    if errors is not None:
        errors.append(ReadError(source, reason, kind))


def read_optional(reader: Reader, path: str, errors: Errors | None,
                  limit: int = CONFIG_LIMIT) -> str | None:
    """The file's text; None when it is absent (silently) or unreadable (recorded)."""
    try:
        return reader.read_text(path, limit)
    except ReadError as exc:
        if not absent(exc) and errors is not None:
            errors.append(exc)
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
    """Sorted names in a directory; [] when absent (silently) or unreadable or too large (recorded)."""
    try:
        return reader.listdir(path, limit)
    except ReadError as exc:
        if not absent(exc) and errors is not None:
            errors.append(exc)
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
    """True when ``path`` is a symlink to /dev/null (systemd's mask)."""
    return link_target(reader, path) == "/dev/null"


def lines(text: str) -> list[tuple[int, str]]:
    """(line number, stripped line) for the first MAX_LINES lines."""
    return [(n, raw.strip()) for n, raw in enumerate(text.splitlines()[:MAX_LINES], start=1)]


def truthy(value: str) -> bool | None:
    """yes/true/on/1 → True, no/false/off/0 → False, anything else → None."""
    v = value.strip().strip('"').strip("'").lower()
    if v in ("1", "yes", "true", "on", "y"):
        return True
    if v in ("0", "no", "false", "off", "n"):
        return False
    return None
