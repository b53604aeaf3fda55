"""The local advisory database: SQLite, in the user's cache directory by default.

Imports are atomic: the new database is built in a temporary file beside the old one (starting
from a copy of it), then swapped in with ``os.replace``; a failed or interrupted import never leaves
a broken database behind. Imports into one database take an exclusive lock (``.vulndb.lock`` beside
it), and the next import removes the temporary files an interrupted one (killed, power loss) left.
Each feed file is a *source*; importing a source again replaces its rows.

Each source records the newest date its own records carry (``data_date``: OSV ``modified``, KEV
``dateAdded``, EPSS ``score_date``), so the data is aged by what the feed knew, not by when it was
imported: a months-old file imported today is months old. Feeds without dates (the Debian tracker,
Alpine secdb) are aged by their import time, and say so (:attr:`SourceInfo.dated_by`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from msgspec import Struct, structs

from vmsec.errors import AdvisorySourceError, ConfigError
from vmsec.report.text import visible
from vmsec.vulns.model import AffectedPackage, EpssScore, FixState, KevEntry, ParsedFeed

SCHEMA_VERSION = "1"
STALE_AFTER_DAYS = 7
MAX_FEED_BYTES = 2 * 1024**3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, origin TEXT NOT NULL, sha256 TEXT NOT NULL,
  imported_at TEXT NOT NULL, records INTEGER NOT NULL, data_date TEXT);
CREATE TABLE IF NOT EXISTS affected (
  source TEXT NOT NULL, vuln_id TEXT NOT NULL, ecosystem TEXT NOT NULL, package TEXT NOT NULL,
  state TEXT NOT NULL, introduced TEXT, fixed TEXT, last_affected TEXT, severity TEXT,
  minor INTEGER NOT NULL DEFAULT 0, note TEXT, summary TEXT, aliases TEXT NOT NULL DEFAULT '',
  feed TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS affected_pkg ON affected (ecosystem, package);
CREATE INDEX IF NOT EXISTS affected_feed ON affected (source);
CREATE TABLE IF NOT EXISTS kev (
  cve TEXT PRIMARY KEY, date_added TEXT, due_date TEXT, vendor TEXT, product TEXT, name TEXT,
  ransomware TEXT, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS epss (
  cve TEXT PRIMARY KEY, score REAL NOT NULL, percentile REAL NOT NULL, model_version TEXT,
  score_date TEXT, source TEXT NOT NULL);
"""


_STATES = {state.value: state for state in FixState}


def default_db_path() -> Path:
    from vmsec.userdirs import user_cache_dir

    return Path(user_cache_dir()) / "vulndb.sqlite"


TEMP_PREFIX = ".vulndb-"
TEMP_SUFFIX = ".tmp"
LOCK_NAME = ".vulndb.lock"


class SourceInfo(Struct, frozen=True):
    name: str
    kind: str
    origin: str
    sha256: str
    imported_at: str
    records: int
    data_date: str | None = None  # the newest date the feed's own records carry (ISO 8601, UTC)

    @property
    def dated_by(self) -> str:
        """``feed`` when the age comes from the feed's own dates, ``import`` when it has none."""
        return "feed" if self.data_date else "import"

    def age_days(self, now: datetime) -> float:
        """Age of the data: from the feed's newest record date, or the import time without one."""
        stamp = datetime.fromisoformat(self.data_date or self.imported_at)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return (now - stamp).total_seconds() / 86400


def _parse_date(text: str | None) -> datetime | None:
    """An ISO 8601 date or time from a feed (``2024-07-01``, ``2024-07-01T12:00:00.5Z``), as UTC."""
    if not text or not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class _Newest:
    """The newest date seen while loading a feed, never later than the import itself."""

    def __init__(self, limit: datetime) -> None:
        self.limit = limit
        self.value: datetime | None = None

    def see(self, text: str | None) -> None:
        date = _parse_date(text)
        if date is not None and (self.value is None or date > self.value):
            self.value = date

    def iso(self) -> str | None:
        if self.value is None:
            return None
        return min(self.value, self.limit).isoformat(timespec="seconds")


def recognise(name: str, data: bytes) -> ParsedFeed:
    """Decide which feed a file is from its name and content (the same files as downloaded): the
    first feed module in :data:`vmsec.vulns.feeds.FEED_MODULES` that claims it parses it."""
    import importlib

    from vmsec.vulns.feeds import FEED_MODULES

    for module_name in FEED_MODULES:
        parsed = importlib.import_module(module_name).recognise(name, data)
        if parsed is not None:
            return parsed  # type: ignore[no-any-return]
    raise AdvisorySourceError(f"{name}: not a recognised feed (OSV zip/JSON, Debian tracker JSON, "
                              "Alpine secdb JSON, KEV JSON or EPSS CSV)")


class AdvisoryDB:
    """Read access for the matcher. Open with :func:`open_db`."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._ecosystems: set[str] | None = None
        self._holds: dict[str, bool] = {}
        self._sources: list[SourceInfo] | None = None

    def close(self) -> None:
        self._conn.close()

    def sources(self) -> list[SourceInfo]:
        if self._sources is None:  # the database is read-only while open: cache per connection
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(sources)")}
            date = "data_date" if "data_date" in columns else "NULL"  # databases from before the column
            rows = self._conn.execute(f"SELECT name, kind, origin, sha256, imported_at, records, {date} "
                                      "FROM sources ORDER BY name").fetchall()
            self._sources = [SourceInfo(*row) for row in rows]
        return self._sources

    def ecosystems(self) -> set[str]:
        if self._ecosystems is None:
            rows = self._conn.execute("SELECT DISTINCT ecosystem FROM affected")
            self._ecosystems = {row[0] for row in rows}
        return self._ecosystems

    def holds(self, ecosystem: str) -> bool:
        """Whether the database holds any advisory for ``ecosystem`` (one index lookup: listing every
        ecosystem reads the whole index — 3.6 ms of each scan on a 60,000-row database, growing with it)."""
        known = self._holds.get(ecosystem)
        if known is None:
            row = self._conn.execute("SELECT 1 FROM affected WHERE ecosystem = ? LIMIT 1",
                                     (ecosystem,)).fetchone()
            known = self._holds[ecosystem] = row is not None
        return known

    def affected(self, ecosystem: str, packages: Sequence[str]) -> Iterator[AffectedPackage]:
        """Every record for these package names in this ecosystem (chunked IN queries)."""
        names = sorted(set(packages))
        for i in range(0, len(names), 500):
            chunk = names[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                "SELECT source, vuln_id, ecosystem, package, state, introduced, fixed, last_affected, "
                "severity, minor, note, summary, aliases FROM affected "
                f"WHERE ecosystem = ? AND package IN ({marks})",
                (ecosystem, *chunk))
            # Built with tuple.__new__ (the NamedTuple's own __new__ is Python code): a guest's packages
            # carry thousands of records. The field order is AffectedPackage's.
            new, record, states = tuple.__new__, AffectedPackage, _STATES
            for r in rows:
                aliases = tuple(r[12].split()) if r[12] else ()
                yield new(record, (r[0], r[1], r[2], r[3], states[r[4]], aliases, r[5], r[6], r[7], r[8],
                                   bool(r[9]), r[10], r[11], None, None))

    def kev(self, cves: Iterable[str]) -> dict[str, KevEntry]:
        return {row[0]: KevEntry(cve=row[0], date_added=row[1], due_date=row[2], vendor=row[3],
                                 product=row[4], name=row[5], ransomware=row[6])
                for row in self._rows("SELECT cve, date_added, due_date, vendor, product, name, ransomware "
                                      "FROM kev WHERE cve IN ({})", cves)}

    def epss(self, cves: Iterable[str]) -> dict[str, EpssScore]:
        return {row[0]: EpssScore(cve=row[0], score=row[1], percentile=row[2], model_version=row[3],
                                  score_date=row[4])
                for row in self._rows("SELECT cve, score, percentile, model_version, score_date FROM epss "
                                      "WHERE cve IN ({})", cves)}

    def _rows(self, query: str, keys: Iterable[str]) -> Iterator[tuple[Any, ...]]:
        ordered = sorted(set(keys))
        for i in range(0, len(ordered), 500):
            chunk = ordered[i:i + 500]
            yield from self._conn.execute(query.format(",".join("?" * len(chunk))), chunk)


def require_db_file(path: str | Path) -> None:
    """Raise :class:`ConfigError` naming ``path`` unless it is a file (a database path a user gave)."""
    db_path = Path(path)
    if not db_path.is_file():
        what = "is a directory, not" if db_path.is_dir() else "does not exist: no"
        raise ConfigError(f"{db_path}: {what} advisory database file (create one with "
                          "'vmsec db update --db PATH' or 'vmsec db import --db PATH FILES')")


def open_db(path: str | Path | None = None) -> AdvisoryDB | None:
    """Open the database read-only. Without ``path`` (the default database): None when there is none
    yet (the scan then says UNKNOWN). A ``path`` the caller names that is not a file raises
    :class:`ConfigError` naming it: a mistyped path is not "no database"."""
    db_path = Path(path) if path else default_db_path()
    if not db_path.is_file():
        if path:
            require_db_file(db_path)
        return None
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise AdvisorySourceError(f"{db_path}: not a vmsec advisory database: {exc}") from exc
    if not version or version[0] != SCHEMA_VERSION:
        conn.close()
        raise AdvisorySourceError(f"{db_path}: schema version {version[0] if version else '?'}, expected "
                                  f"{SCHEMA_VERSION}: run 'vmsec db update' or 'vmsec db import' again")
    return AdvisoryDB(db_path, conn)


def import_feeds(files: Sequence[tuple[str, bytes]], path: str | Path | None = None, *,
                 now: datetime | None = None) -> list[SourceInfo]:
    """Import (name, bytes) feed files into the database atomically; returns the imported sources."""
    db_path = Path(path) if path else default_db_path()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    when = now or datetime.now(UTC)
    # Imported here, not at the top: every scan that matches packages imports this module, and these
    # two (with the compression modules shutil pulls in) cost it more than the matching of a small guest.
    import shutil
    import tempfile

    with _import_lock(db_path):
        remove_stale_temp_files(db_path)
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=db_path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if db_path.is_file():
                shutil.copyfile(db_path, tmp)
            imported = _build(tmp, files, when)
            os.replace(tmp, db_path)
        finally:
            for leftover in (tmp, Path(f"{tmp}-journal")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
    return imported


def _build(tmp: Path, files: Sequence[tuple[str, bytes]], when: datetime) -> list[SourceInfo]:
    """Load ``files`` into the database file ``tmp`` (a copy of the current one)."""
    import hashlib  # here: importing it loads OpenSSL, which a scan reading the database never needs

    stamp = when.isoformat(timespec="seconds")
    imported: list[SourceInfo] = []
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(_SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sources)")}
        if "data_date" not in columns:  # a database written before the column existed
            conn.execute("ALTER TABLE sources ADD COLUMN data_date TEXT")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        for name, data in files:
            if len(data) > MAX_FEED_BYTES:
                raise AdvisorySourceError(f"{name}: {len(data)} bytes, over the {MAX_FEED_BYTES} limit")
            feed = recognise(name, data)
            if not feed.name.isprintable():
                # A source's name can come from its file's name: kept as visible text (an undecodable
                # byte cannot be stored — the import crashed on it —, a control character must not
                # reach a listing).
                feed = structs.replace(feed, name=visible(feed.name))
            newest = _Newest(when)
            count = _load(conn, feed, newest)
            if count == 0:
                raise AdvisorySourceError(f"{name}: no records found; refusing to replace {feed.name}")
            info = SourceInfo(feed.name, feed.kind, visible(name), hashlib.sha256(data).hexdigest(), stamp,
                              count, newest.iso())
            conn.execute("INSERT OR REPLACE INTO sources (name, kind, origin, sha256, imported_at, records, "
                         "data_date) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (info.name, info.kind, info.origin, info.sha256, info.imported_at, info.records,
                          info.data_date))
            imported.append(info)
        conn.commit()
        conn.execute("VACUUM")
    finally:
        conn.close()
    return imported


@contextlib.contextmanager
def _import_lock(db_path: Path) -> Iterator[None]:
    """One import at a time per database: an exclusive lock on ``.vulndb.lock`` beside it."""
    fd = os.open(db_path.parent / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise AdvisorySourceError(f"{db_path}: another import into this database is running") from exc
        yield
    finally:
        os.close(fd)  # closing releases the lock


def remove_stale_temp_files(db_path: Path) -> list[Path]:
    """Remove what an interrupted import into ``db_path`` left beside it (its ``.vulndb-*.tmp`` copy
    and SQLite journal). Call with the import lock held, so no running import loses its file."""
    removed: list[Path] = []
    for leftover in db_path.parent.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}*"):
        if leftover.is_file() and not leftover.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed.append(leftover)
    return removed


def _load(conn: sqlite3.Connection, feed: ParsedFeed, newest: _Newest) -> int:
    conn.execute("DELETE FROM affected WHERE source = ?", (feed.name,))
    conn.execute("DELETE FROM kev WHERE source = ?", (feed.name,))
    conn.execute("DELETE FROM epss WHERE source = ?", (feed.name,))
    count = 0
    batch: list[tuple[object, ...]] = []
    for a in feed.affected:
        newest.see(a.modified or a.published)
        batch.append((feed.name, a.vuln_id, a.ecosystem, a.package, a.state.value, a.introduced, a.fixed,
                      a.last_affected, a.severity, int(a.minor), a.note, a.summary, " ".join(a.aliases),
                      a.source))
        if len(batch) >= 5000:
            conn.executemany("INSERT INTO affected VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
            count += len(batch)
            batch.clear()
    if batch:
        conn.executemany("INSERT INTO affected VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
        count += len(batch)
    kev_rows = [(k.cve, k.date_added, k.due_date, k.vendor, k.product, k.name, k.ransomware, feed.name)
                for k in feed.kev]
    for row in kev_rows:
        newest.see(row[1])
    conn.executemany("INSERT OR REPLACE INTO kev VALUES (?,?,?,?,?,?,?,?)", kev_rows)
    epss_rows = [(e.cve, e.score, e.percentile, e.model_version, e.score_date, feed.name) for e in feed.epss]
    for epss_row in epss_rows[:1]:  # one score date per file
        newest.see(epss_row[4])
    conn.executemany("INSERT OR REPLACE INTO epss VALUES (?,?,?,?,?,?)", epss_rows)
    return count + len(kev_rows) + len(epss_rows)
