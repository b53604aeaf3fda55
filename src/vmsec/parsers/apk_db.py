"""Alpine's package database, /lib/apk/db/installed (apk-tools 3: /usr/lib/apk/db/installed).

Stanzas of ``X:value`` lines separated by blank lines; ``P:`` is the package name, ``V:`` its
version, ``o:`` its origin (source) package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import InstalledPackage

if TYPE_CHECKING:
    from vmsec.reading import Reader

PATHS = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")
MAX_BYTES = 64 * 1024 * 1024
MAX_STANZAS = 200_000


def parse_apk_installed(text: str, origin: str) -> tuple[InstalledPackage, ...]:
    """Installed packages in file order. Raises :class:`ReadError` over 200,000 stanzas."""
    packages: list[InstalledPackage] = []
    fields: dict[str, str] = {}
    stanzas = 0
    for line in [*text.splitlines(), ""]:
        if line.strip():
            key, sep, value = line.partition(":")
            if sep and len(key) == 1:
                fields.setdefault(key, value.strip())
            continue
        if not fields:
            continue
        stanzas += 1
        if stanzas > MAX_STANZAS:
            raise ReadError(origin, f"more than {MAX_STANZAS} package stanzas", ErrorKind.TOO_LARGE)
        if fields.get("P") and fields.get("V"):
            packages.append(InstalledPackage(name=fields["P"], version=fields["V"],
                                             source=fields.get("o") or None, manager="apk"))
        fields = {}
    return tuple(packages)


def read_apk_db(reader: Reader) -> tuple[InstalledPackage, ...] | None:
    """Packages of the apk database, or None when the root has none. Raises :class:`ReadError`."""
    for path in PATHS:
        try:
            text = reader.read_text(path, MAX_BYTES)
        except ReadError as exc:
            if exc.absent:
                continue
            raise
        return parse_apk_installed(text, path)
    return None
