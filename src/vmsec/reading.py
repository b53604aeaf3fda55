"""The Reader protocol: how parsers and collectors see a target's files, whatever the transport.

A target (a host root, a guest root, a disk image, a remote guest over SSH or the guest agent) may be
hostile. Parsers read only through a :class:`Reader`; each implementation (``vmsec.collectors``)
enforces the same rules: paths resolve inside the target (no escape through symlinks or ``..``),
only regular files are opened, reads and listings are capped, nothing is written.

Every failure is a :class:`~vmsec.errors.ReadError` whose ``kind`` says why; "does not exist" is
``err.absent``, never a match on the message.
"""

from __future__ import annotations

from typing import Protocol

from vmsec.facts import FileStat

DEFAULT_READ_LIMIT = 4 * 1024 * 1024  # 4 MiB: far above any configuration file
DEFAULT_LIST_LIMIT = 10_000
MAX_SYMLINK_HOPS = 40  # as Linux's own MAXSYMLINKS


class Reader(Protocol):
    """Read-only, bounded access to one target's files by target-absolute path."""

    @property
    def label(self) -> str: ...

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes: ...

    def read_text(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> str: ...

    def stat(self, path: str, follow: bool = True) -> FileStat: ...

    def exists(self, path: str) -> bool: ...

    def listdir(self, path: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]: ...

    def readlink(self, path: str) -> str: ...

    def glob(self, pattern: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]: ...


def complete_acls(reader: Reader, stats: dict[str, FileStat]) -> dict[str, FileStat]:
    """``stats`` with the access ACLs of their files filled in by a reader that learns ACLs apart from
    ``stat`` — over SSH, one batch of commands for many paths (:meth:`vmsec.collectors.remote.SshReader.
    complete_acls`). Other readers' stats already say what they know (a local root reads each ACL
    with its stat) and are returned as they are."""
    fill = getattr(reader, "complete_acls", None)
    return stats if fill is None else dict(fill(stats))
