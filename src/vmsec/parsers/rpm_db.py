"""The rpm package database → installed packages.

rpm ≥ 4.16 keeps its database in SQLite (``/var/lib/rpm/rpmdb.sqlite``; Fedora ≥ 36 and openSUSE in
``/usr/lib/sysimage/rpm``): table ``Packages(hnum, blob)``, one rpm header per row. The bytes are read
through the :class:`Reader` (bounded, never following a symlink out of the root), written to a private
temporary copy, and opened read-only with the stdlib ``sqlite3``; the guest's own file is never opened
by SQLite. A query that runs too long is interrupted.

A header blob (rpm's ``headerImport`` format, big-endian) is: index count ``il``, data size ``dl``,
``il`` entries of (tag, type, offset, count), then ``dl`` bytes of data. Only NAME (1000), VERSION
(1001), RELEASE (1002), EPOCH (1003) and SOURCERPM (1044) are read. The older BerkeleyDB
(``Packages``) and ndb (``Packages.db``) formats are not read: the packages are then unknown.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import time
from typing import TYPE_CHECKING

from vmsec.errors import ErrorKind, ParseError, Problems, ReadError
from vmsec.facts import InstalledPackage

if TYPE_CHECKING:
    from vmsec.reading import Reader

DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
MAX_DB_BYTES = 256 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_PACKAGES = 200_000
QUERY_SECONDS = 30.0

TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH, TAG_SOURCERPM = 1000, 1001, 1002, 1003, 1022, 1044
TYPE_INT32, TYPE_STRING, TYPE_I18NSTRING = 4, 6, 9
_WANTED = {TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH, TAG_SOURCERPM}


def parse_header(blob: bytes, origin: str = "rpm header") -> dict[int, str | int]:
    """The few tags vmsec needs from one rpm header blob; :class:`ParseError` naming ``origin``
    when it is malformed."""
    if len(blob) < 8:
        raise ParseError(origin, "shorter than the 8-byte preamble")
    il, dl = struct.unpack_from(">II", blob, 0)
    start = 8 + 16 * il
    if il > 0xFFFF or dl > MAX_HEADER_BYTES or start + dl > len(blob):
        raise ParseError(origin, f"index count {il} / data size {dl} do not fit a {len(blob)}-byte blob")
    data = blob[start:start + dl]
    tags: dict[int, str | int] = {}
    for i in range(il):
        tag, kind, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * i)
        if tag not in _WANTED:
            continue
        if offset < 0 or offset >= len(data):
            raise ParseError(origin, f"tag {tag} points outside the data")
        if kind in (TYPE_STRING, TYPE_I18NSTRING):
            end = data.find(b"\x00", offset)
            if end < 0:
                raise ParseError(origin, f"tag {tag} string is not terminated")
            tags[tag] = data[offset:end].decode("utf-8", "replace")
        elif kind == TYPE_INT32 and count >= 1 and offset + 4 <= len(data):
            tags[tag] = struct.unpack_from(">I", data, offset)[0]
    return tags


def _source_name(srpm: str) -> str | None:
    """``openssh-8.7p1-38.el9.src.rpm`` → ``openssh`` (name-version-release.arch.rpm)."""
    stem = srpm.removesuffix(".rpm").rsplit(".", 1)[0]
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 and parts[0] else None


def package_from_header(tags: dict[int, str | int]) -> InstalledPackage | None:
    """An :class:`InstalledPackage` with version ``[epoch:]version-release``; None for gpg-pubkey
    pseudo-packages and headers without a name or version."""
    name, version, release = tags.get(TAG_NAME), tags.get(TAG_VERSION), tags.get(TAG_RELEASE)
    if not isinstance(name, str) or not isinstance(version, str) or not name or name == "gpg-pubkey":
        return None
    evr = f"{version}-{release}" if isinstance(release, str) and release else version
    epoch = tags.get(TAG_EPOCH)
    if isinstance(epoch, int):
        evr = f"{epoch}:{evr}"
    srpm = tags.get(TAG_SOURCERPM)
    source = _source_name(srpm) if isinstance(srpm, str) else None
    arch = tags.get(TAG_ARCH)
    return InstalledPackage(name=name, version=evr, source=source, manager="rpm",
                            arch=arch if isinstance(arch, str) and arch else None)


def parse_rpmdb_sqlite(path: str, origin: str, *,
                       problems: Problems | None = None) -> tuple[InstalledPackage, ...]:
    """Packages in an rpmdb.sqlite file on this machine (a private copy), opened read-only. Headers
    that cannot be decoded are counted in ``problems``; none decodable raises :class:`ParseError`."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error as exc:
        raise ParseError(origin, f"not an SQLite database: {exc}") from exc
    deadline = time.monotonic() + QUERY_SECONDS
    # A hostile database (views, huge blobs) must not make SQLite build values of up to 1 GB.
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 64 * 1024 * 1024)
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    packages: list[InstalledPackage] = []
    bad = 0
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("PRAGMA trusted_schema = 0")
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
        if kind is None or kind[0] != "table":
            # rpm writes a table. A view (a recursive one yields rows for ever, each as large as it
            # likes) would make SQLite compute, and for ORDER BY sort to disk, what no file holds.
            raise ParseError(origin, "rpm database has no Packages table"
                             + (f" (Packages is a {kind[0]})" if kind is not None else ""))
        # In the table's own order: sorting (ORDER BY hnum) spills rows to temporary files when hnum is
        # not the rowid; the packages are put in hnum order below, at most MAX_PACKAGES of them.
        rows = conn.execute("SELECT hnum, blob FROM Packages")
        numbered: list[tuple[int, InstalledPackage]] = []
        for count, (hnum, blob) in enumerate(rows):
            if count >= MAX_PACKAGES:
                raise ReadError(origin, f"more than {MAX_PACKAGES} packages", ErrorKind.TOO_LARGE)
            if not isinstance(blob, bytes):
                bad += 1
                continue
            try:
                package = package_from_header(parse_header(blob, origin))
            except ParseError:
                bad += 1
                continue
            if package is not None:
                numbered.append((hnum if isinstance(hnum, int) else count, package))
        numbered.sort(key=lambda item: item[0])
        packages = [package for _, package in numbered]
    except sqlite3.Error as exc:
        if time.monotonic() > deadline:
            raise ReadError(origin, "rpm database query interrupted after 30 s", ErrorKind.TIMEOUT) from exc
        raise ParseError(origin, f"rpm database cannot be read: {exc}") from exc
    finally:
        conn.close()
    if bad and not packages:
        raise ParseError(origin, f"none of {bad} package headers could be decoded")
    if bad and problems is not None:
        problems.note(origin, f"{bad} package headers could not be decoded; those packages are missing")
    return tuple(packages)


def read_rpm_db(reader: Reader, *, problems: Problems | None = None) -> tuple[InstalledPackage, ...] | None:
    """Packages of the rpm database, or None when the root has no rpm database.

    Raises :class:`ReadError` for a database that exists but cannot be read, including the BerkeleyDB
    and ndb formats (the packages are then unknown, not "none").
    """
    for directory in DIRS:
        path = f"{directory}/rpmdb.sqlite"
        try:
            data = reader.read_bytes(path, MAX_DB_BYTES)
        except ReadError as exc:
            if exc.absent:
                continue
            raise
        wal: bytes | None = None
        try:
            wal = reader.read_bytes(f"{path}-wal", MAX_DB_BYTES)
        except ReadError:
            wal = None
        # Imported here: tempfile (with the compression modules it pulls in) is ≈ 2 ms of every guest
        # scan's start-up, and only an RPM guest's SQLite database is ever copied out.
        import tempfile

        with tempfile.TemporaryDirectory(prefix="vmsec-rpmdb-") as tmp:
            copy = os.path.join(tmp, "rpmdb.sqlite")
            with open(copy, "wb") as out:
                out.write(data)
            if wal:
                with open(f"{copy}-wal", "wb") as out:
                    out.write(wal)
            return parse_rpmdb_sqlite(copy, path, problems=problems)
    for directory in DIRS:
        for name, kind in (("Packages", "BerkeleyDB"), ("Packages.db", "ndb")):
            path = f"{directory}/{name}"
            if reader.stat(path).exists:
                raise ReadError(path, f"{kind} rpm database: not supported (rpm ≥ 4.16 SQLite databases are)",
                                ErrorKind.UNSUPPORTED)
    return None
