"""A guest root as an unprivileged scan sees it, for tests that run as root (where chmod denies nothing):
the ``denied`` paths exist but cannot be opened or listed."""

from __future__ import annotations

from pathlib import Path

from vmsec.collectors.reader import DEFAULT_LIST_LIMIT, DEFAULT_READ_LIMIT, RootReader
from vmsec.errors import ErrorKind, ReadError


class DeniedReader(RootReader):
    def __init__(self, root: Path, *denied: str) -> None:
        super().__init__(str(root))
        self.denied = frozenset(denied)

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        if path in self.denied:
            raise ReadError(path, "Permission denied", ErrorKind.DENIED)
        return super().read_bytes(path, limit)

    def listdir(self, path: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]:
        if path in self.denied:
            raise ReadError(path, "Permission denied", ErrorKind.DENIED)
        return super().listdir(path, limit)
