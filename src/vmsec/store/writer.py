"""Writing a scan into the store as it is produced (a :class:`~vmsec.pipeline.FindingSink`).

The scan row goes in first (status ``running``); targets and their findings follow in groups of a
few thousand findings, one transaction per group (a target is never split); the final status last.
A writer killed half-way leaves whole targets and a scan still marked ``running``, which history
reports as interrupted — never a clean scan.

Speed: a fleet scan writes millions of rows, and the default store is on for every CLI scan. The
writer talks to the database driver directly (``sqlite3`` or psycopg), not through SQLAlchemy:
importing SQLAlchemy alone costs more than storing a thousand-domain scan. SQLite gets multi-row
``INSERT``s of plain tuples; PostgreSQL gets ``COPY … FROM STDIN`` with target ids reserved
from their sequence in one round trip. SQLAlchemy and alembic are imported only when the store must
be created or migrated first (:func:`vmsec.store.store.open_store`). Values are written exactly as
the SQLAlchemy schema reads them back (``store/schema.py``): SQLite datetimes as naive UTC text,
booleans as 0/1, JSON as text.

The writer's own SQLite connection does not enforce foreign keys: every row it writes references the
scan row it created and the target rows it inserts in the same transaction, and checking two parent
keys per finding cost 15 % of the write. What a check would catch — the scan deleted by someone else
while it is being written — is checked once per transaction instead, under the write lock
(:meth:`StoreSink._require_scan`). Deleting (and its cascades) happens on connections that enforce them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import orjson

from vmsec import __version__
from vmsec.errors import StoreError
from vmsec.findings import Severity, Status
from vmsec.results import OsInventory, ScanResult, TargetBatch

if TYPE_CHECKING:
    from vmsec.pipeline import ScanHeader
    from vmsec.store.store import Store

GROUP_FINDINGS = 5_000  # findings per transaction (targets are never split)

# A finding row as the writer builds it: everything but scan_id, which is the same for the whole scan
# (SQLite gets it as a literal in the statement, COPY in front of each row). On SQLite a row whose
# last two columns are both NULL — nearly all of them — is built without them: the driver's cost is
# per bound parameter, NULL or not, and three fewer made storing a finding a third cheaper.
_ROW_COLUMNS = ("target_id", "seq", "fingerprint", "check_id", "title", "status", "severity", "subject",
                "message", "evidence", "tags", "vulnerability", "detail")
_ENUM_TEXT: dict[str, str] = {**{s: s.value for s in Status}, **{s: s.value for s in Severity}}
_SPARSE = len(_ROW_COLUMNS) - 2  # the length of a row without vulnerability and detail
_ROWS_PER_INSERT = 64  # rows per SQLite INSERT: 64 × 13 parameters stays under 999, SQLite's oldest limit
_TARGET_COLUMNS = ("scan_id", "position", "kind", "name", "host", "listed", "details", "os")


def clean_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL and no UTF-8 can hold lone surrogates (undecodable guest
    bytes): both are escaped visibly rather than failing the write."""
    if value.isascii():
        return value.replace("\x00", "\\x00") if "\x00" in value else value
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _json_text(value: Any) -> str:
    """JSON text for values that may hold hostile strings (lone surrogates are escaped, not fatal)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace"
                                                                         ).decode("utf-8")


def os_json(os: OsInventory | None) -> Any:
    if os is None:
        return None
    return {"os_id": os.os_id, "version_id": os.version_id, "pretty_name": os.pretty_name,
            "packages": [list(p) for p in os.packages]}


# --- the database connection ------------------------------------------------------------------------


class _Connection:
    """A DBAPI connection of either supported database, with the few statements the writer needs."""

    def __init__(self, raw: Any, dialect: str, url: str, closer: Any = None) -> None:
        self.raw = raw
        self.dialect = dialect
        self.url = url
        self.closer = closer or raw  # what close() closes (a pooled connection returns to its pool)
        self.mark = "?" if dialect == "sqlite" else "%s"

    def timestamp(self, value: datetime) -> Any:
        utc = value.astimezone(UTC)
        # SQLAlchemy's SQLite DateTime: naive UTC text with microseconds; PostgreSQL: timestamptz.
        return utc.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if self.dialect == "sqlite" else utc

    def flag(self, value: bool) -> Any:
        return int(value) if self.dialect == "sqlite" else value

    def insert(self, table: str, values: Mapping[str, Any]) -> int:
        columns = ", ".join(values)
        marks = ", ".join([self.mark] * len(values))
        cur = self.raw.cursor()
        try:
            cur.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id",
                        tuple(values.values()))
            return int(cur.fetchone()[0])
        finally:
            cur.close()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        cur = self.raw.cursor()
        try:
            cur.execute(sql.replace("?", self.mark), params)
            return int(cur.rowcount)
        finally:
            cur.close()

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            cur = self.raw.cursor()
            try:
                cur.executemany(sql.replace("?", self.mark), rows)
            finally:
                cur.close()

    def commit(self) -> None:
        self.raw.commit()

    def rollback(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection: nothing left to roll back
            self.raw.rollback()

    def close(self) -> None:
        self.closer.close()


def _connect_sqlite(path: str) -> Any:
    import sqlite3

    conn = sqlite3.connect(path, timeout=10)
    # As store.py's SQLAlchemy engine sets them, but foreign_keys: see the module docstring.
    for pragma in ("foreign_keys=OFF", "journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=10000",
                   "busy_timeout=10000"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _connect(url: str) -> _Connection | None:
    """A direct connection to an existing store already at this vmsec's schema revision, or None when
    the store must first be created or migrated (or the URL is not one the writer speaks)."""
    from vmsec.store.migrations import HEAD_REVISION

    parts = urlsplit(url)
    scheme = parts.scheme.partition("+")
    if scheme[0] == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        path = unquote(path.split("?", 1)[0])
        if not path or path == ":memory:":
            return None
        import os

        if not os.path.exists(path):
            return None
        raw = _connect_sqlite(path)
        dialect = "sqlite"
    elif scheme[0] in ("postgresql", "postgres") and scheme[2] in ("", "psycopg"):
        try:
            import psycopg
        except ImportError:
            return None
        try:
            raw = psycopg.connect(parts._replace(scheme="postgresql").geturl(), autocommit=False,
                                  options="-c synchronous_commit=off")
        except psycopg.Error:
            return None
        dialect = "postgresql"
    else:
        return None
    conn = _Connection(raw, dialect, url)
    try:
        cur = raw.cursor()
        cur.execute("SELECT version_num FROM alembic_version")
        row = cur.fetchone()
        cur.close()
    except Exception:
        conn.rollback()
        conn.close()
        return None
    conn.rollback()
    if row is None or row[0] != HEAD_REVISION:
        conn.close()
        return None
    return conn


def connect_for_writing(url: str | None) -> _Connection:
    """The store at ``url`` (see :func:`vmsec.store.store.resolve_url`), created or migrated first
    when needed, as a direct driver connection."""
    from vmsec.store.location import redact, resolve_url

    url = resolve_url(url)
    conn = _connect(url)
    if conn is None:
        from vmsec.store.store import open_store

        open_store(url).close()  # creates and migrates (SQLAlchemy + alembic), or raises StoreError
        conn = _connect(url)
    if conn is None:
        raise StoreError(f"cannot write to the store {redact(url)}: only SQLite and PostgreSQL (psycopg) "
                         "stores are supported")
    return conn


# --- the sink -----------------------------------------------------------------------------------------


_Group = list[tuple[TargetBatch, Mapping[str, Any], OsInventory | None]]


class StoreSink:
    """Streams one scan into the store (see the module docstring).

    With ``background=True`` groups are written by a thread of their own while the scan goes on: the
    database driver works without the GIL, so on a machine with two cores storing costs the scan
    little wall time. At most two groups wait (memory stays bounded); a write error surfaces at the
    next ``add`` or at ``end``.
    """

    def __init__(self, conn: _Connection, *, background: bool = False, group_id: int | None = None) -> None:
        self.conn = conn
        self.group_id = group_id  # the group (tenant) the scan belongs to; None: the default group
        self.scan_id: int | None = None
        # Statements run in the transaction that creates the scan row, with its id: a fleet attempt
        # records its scan there, so no crash can leave a scan that nothing points to.
        self.on_begin: list[tuple[str, Callable[[int], tuple[Any, ...]]]] = []
        self._seq = 0
        self._position = 0
        self._targets_stored = 0
        self._pending: _Group = []
        self._pending_findings = 0
        self._titles: dict[str, str] = {}
        self._tags_json: dict[tuple[str, ...], str] = {}
        self._queue: queue.Queue[_Group | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        if background:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(target=self._drain, name="vmsec-store-writer", daemon=True)

    @classmethod
    def open(cls, url: str | None) -> StoreSink:
        """A sink on its own driver connection. PostgreSQL is written by a background thread (the
        server does the work while the scan goes on); SQLite in the scan's thread: its driver releases
        and retakes the GIL around every row, so a writer thread beside the checks cost more CPU and
        more wall time than it saved (docs/performance.md, issue 8)."""
        conn = connect_for_writing(url)
        return cls(conn, background=conn.dialect == "postgresql")

    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            group = self._queue.get()
            if group is None:
                return
            if self._error is None:
                try:
                    self._write(group)
                except BaseException as exc:  # handed to the scan's thread at the next add/end
                    self._error = exc

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    @classmethod
    def into(cls, store: Store, *, background: bool = False, group_id: int | None = None) -> StoreSink:
        """A sink writing through an open :class:`Store`'s engine (tests, ``Store.save``, fleet workers,
        the service) — ``background`` only on PostgreSQL, whose pooled connections may change threads;
        ``group_id``: the group the scan belongs to (None: the default group)."""
        pooled = store.engine.raw_connection()
        return cls(_Connection(pooled.driver_connection, store.dialect, store.url, closer=pooled),
                   background=background and store.dialect == "postgresql", group_id=group_id)

    def write(self, result: ScanResult) -> int:
        """Write a finished :class:`ScanResult` (its retained findings) as a scan would — begin, a
        batch per target, end — close this sink, and return the scan id."""
        from vmsec.checkinfo import CheckIndex, CheckInfo
        from vmsec.pipeline import ScanHeader

        remediation: dict[str, str] = {}
        for f in result.findings:
            remediation.setdefault(f.check_id, f.remediation)
        checks = CheckIndex(CheckInfo(id=cid, title="", severity=Severity.INFO, scope="", tags=(),
                                      references=(), rationale="", remediation=text, module="")
                            for cid, text in remediation.items())
        expected = len({*result.targets, *(f.target for f in result.findings)})
        try:
            self.begin(ScanHeader(source=result.source, profile=result.profile, started_at=result.started_at,
                                  checks_run=result.checks_run, checks=checks, targets_expected=expected))
            for batch in result.batches():
                self.add(batch, result.details.get(batch.target, {}), result.os_inventories.get(batch.target))
            self.end(result)
        finally:
            self.close()
        assert self.scan_id is not None
        return self.scan_id

    def close(self) -> None:
        self._stop()
        self.conn.close()

    def _stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            assert self._queue is not None
            self._queue.put(None)
            self._thread.join()

    def _fail(self, what: str, exc: Exception) -> StoreError:
        from vmsec.store.location import redact

        self.conn.rollback()
        first = str(exc).splitlines()[0] if str(exc) else ""
        return StoreError(f"{redact(self.conn.url)}: {what} failed: {exc.__class__.__name__}: {first}")

    # --- the sink protocol -------------------------------------------------------------------

    def begin(self, header: ScanHeader) -> None:
        c = self.conn
        try:
            self.scan_id = c.insert("scans", {
                "started_at": c.timestamp(header.started_at), "finished_at": None,
                "stored_at": c.timestamp(datetime.now(UTC)), "source": clean_text(header.source),
                "profile": clean_text(header.profile), "checks_run": header.checks_run, "status": "running",
                "complete": c.flag(False), "tool_version": __version__,
                "targets_expected": header.targets_expected, "findings_expected": 0,
                **({} if self.group_id is None else {"group_id": self.group_id})})
            c.executemany("INSERT INTO scan_checks (scan_id, check_id, remediation) VALUES (?, ?, ?)",
                          [(self.scan_id, ci.id, clean_text(ci.remediation)) for ci in header.checks.checks])
            for sql, params in self.on_begin:
                c.execute(sql, params(self.scan_id))
            c.commit()
        except Exception as exc:
            raise self._fail("storing the scan", exc) from exc
        if self._thread is not None:
            self._thread.start()

    def add(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None) -> None:
        self._pending.append((batch, details, os))
        self._pending_findings += len(batch.findings)
        if self._pending_findings >= GROUP_FINDINGS:
            self.flush()

    def end(self, result: ScanResult) -> None:
        self.flush()
        self._stop()
        self._raise_pending_error()
        c = self.conn
        try:
            # The update first: it takes the write lock, and no row means the scan was deleted meanwhile.
            state = "complete" if result.complete else "incomplete"
            if not c.execute("UPDATE scans SET finished_at = ?, status = ?, complete = ?, "
                             "targets_expected = ?, findings_expected = ? WHERE id = ?",
                             (c.timestamp(result.finished_at), state, c.flag(result.complete),
                              self._targets_stored, self._seq, self.scan_id)):
                raise self._deleted()
            c.executemany(
                "INSERT INTO collection_records (scan_id, source, what, ok, reason, duration_s, kind) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(self.scan_id, clean_text(r.source), clean_text(r.what), c.flag(r.ok),
                  None if r.reason is None else clean_text(r.reason), r.duration_s,
                  r.kind.value if r.kind else None) for r in result.records])
            c.commit()
        except StoreError:
            c.rollback()
            raise
        except Exception as exc:
            raise self._fail("finishing the scan", exc) from exc

    # --- writing groups ------------------------------------------------------------------------

    def flush(self) -> None:
        self._raise_pending_error()
        if not self._pending:
            return
        group, self._pending, self._pending_findings = self._pending, [], 0
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            self._queue.put(group)
        else:
            self._write(group)

    def _write(self, group: _Group) -> None:
        try:
            if self.conn.dialect == "postgresql":
                self._write_pg(group)
            else:
                self._write_sqlite(group)
            self.conn.commit()
        except StoreError:
            self.conn.rollback()
            raise
        except Exception as exc:
            raise self._fail("storing findings", exc) from exc
        self._targets_stored += len(group)

    def _deleted(self) -> StoreError:
        from vmsec.store.location import redact

        return StoreError(f"{redact(self.conn.url)}: scan {self.scan_id} was deleted while it was being "
                          "stored; its findings were not written")

    def _target_row(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None
                    ) -> tuple[Any, ...]:
        t = batch.target
        position = self._position
        self._position += 1
        return (self.scan_id, position, t.kind.value, clean_text(t.name),
                None if t.host is None else clean_text(t.host), self.conn.flag(True),
                _json_text(dict(details)), None if os is None else _json_text(os_json(os)))

    def _finding_rows(self, target_id: int, batch: TargetBatch, *, sparse: bool = False
                      ) -> list[tuple[Any, ...]]:
        """The batch's finding rows (:data:`_ROW_COLUMNS`); with ``sparse``, rows whose vulnerability
        and detail are both NULL without those two columns."""
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        seq = self._seq
        dumps = orjson.dumps
        # A check's title and tags are the same for each of its findings: cleaned and encoded once
        # per scan (a few hundred checks; the caches are emptied should they ever grow large).
        titles, tags_json = self._titles, self._tags_json
        texts = _ENUM_TEXT
        if len(titles) > 10_000 or len(tags_json) > 10_000:
            titles.clear()
            tags_json.clear()
        for f, fingerprint in zip(batch.findings, batch.fingerprints, strict=True):
            (check_id, title, status, severity, _t, subject, message, evidence, tags, _rem,
             vulnerability, detail) = f
            clean_title = titles.get(title)
            if clean_title is None:
                clean_title = titles[title] = clean_text(title)
            tag_text = tags_json.get(tags)
            if tag_text is None:
                tag_text = tags_json[tags] = dumps(tags).decode()
            if evidence:
                try:  # Evidence is a NamedTuple, which orjson leaves to ``default``
                    evidence_text = dumps(evidence, default=tuple).decode()
                except TypeError:  # lone surrogates from undecodable guest bytes
                    evidence_text = _json_text([(e[0], e[1], e[2]) for e in evidence])
            else:
                evidence_text = "[]"
            if not subject.isascii() or "\x00" in subject:
                subject = clean_text(subject)
            if not message.isascii() or "\x00" in message:
                message = clean_text(message)
            # Status and Severity as plain str: sqlite3 binds a str subclass (the StrEnums) only after
            # looking for __adapt__/__conform__ on it, two failed attribute lookups that each build
            # an AttributeError — a tenth of the store's cost per finding.
            row: tuple[Any, ...] = (target_id, seq, fingerprint, check_id, clean_title,
                                    texts.get(status, status), texts.get(severity, severity), subject,
                                    message, evidence_text, tag_text)
            if not sparse or vulnerability is not None or detail is not None:
                row += (None if vulnerability is None else _json_text(dict(vulnerability)),
                        None if detail is None else clean_text(detail))
            append(row)
            seq += 1
        self._seq = seq
        return rows

    def _write_sqlite(self, group: list[tuple[TargetBatch, Mapping[str, Any], OsInventory | None]]) -> None:
        cursor = self.conn.raw.cursor()
        try:
            rows: list[tuple[Any, ...]] = []
            for i, (batch, details, os) in enumerate(group):
                cursor.execute(f"INSERT INTO targets ({', '.join(_TARGET_COLUMNS)}) "
                               f"VALUES ({', '.join('?' * len(_TARGET_COLUMNS))})",
                               self._target_row(batch, details, os))
                if i == 0:  # the first insert took the write lock: nobody can delete the scan now
                    self._require_scan(cursor)
                rows += self._finding_rows(int(cursor.lastrowid), batch, sparse=True)
            assert self.scan_id is not None  # begin() created the scan row
            scan_id = int(self.scan_id)  # an integer the database gave this writer: safe as a literal
            # Runs of rows of one width, in order (ids keep following the scan's order, seq), written
            # _ROWS_PER_INSERT rows to a statement: each statement executed costs the driver and
            # SQLite a fixed amount (a GIL hand-off, a VDBE halt), which executemany pays per row.
            chain = itertools.chain.from_iterable
            for width, run in itertools.groupby(rows, len):
                values = f"({scan_id}, {', '.join('?' * width)})"
                head = f"INSERT INTO findings (scan_id, {', '.join(_ROW_COLUMNS[:width])}) VALUES "
                block = list(run)
                for start in range(0, len(block), _ROWS_PER_INSERT):
                    chunk = block[start:start + _ROWS_PER_INSERT]
                    cursor.execute(head + ", ".join([values] * len(chunk)), tuple(chain(chunk)))
        finally:
            cursor.close()

    def _require_scan(self, cursor: Any) -> None:
        """The foreign-key check the SQLite writer does not make per row, once per transaction."""
        cursor.execute("SELECT 1 FROM scans WHERE id = ?", (self.scan_id,))
        if cursor.fetchone() is None:
            raise self._deleted()

    def _write_pg(self, group: list[tuple[TargetBatch, Mapping[str, Any], OsInventory | None]]) -> None:
        with self.conn.raw.cursor() as cur:
            # A pooled connection of the store plans every statement for its parameters (open_store:
            # the service's keyset walks need it). The foreign-key checks COPY fires per row are
            # such statements; replanning each made writing through a pooled connection half as fast.
            cur.execute("SET LOCAL plan_cache_mode = auto")
            cur.execute("SELECT nextval(pg_get_serial_sequence('targets', 'id')) "
                        "FROM generate_series(1, %s)", (len(group),))
            ids = [row[0] for row in cur.fetchall()]
            with cur.copy(f"COPY targets (id, {', '.join(_TARGET_COLUMNS)}) FROM STDIN") as copy:
                for target_id, (batch, details, os) in zip(ids, group, strict=True):
                    copy.write_row((target_id, *self._target_row(batch, details, os)))
            with cur.copy(f"COPY findings (scan_id, {', '.join(_ROW_COLUMNS)}) FROM STDIN") as copy:
                scan_id = self.scan_id
                for target_id, (batch, _details, _os) in zip(ids, group, strict=True):
                    for row in self._finding_rows(target_id, batch):
                        copy.write_row((scan_id, *row))


def save(store: Store, result: ScanResult, *, group_id: int | None = None) -> int:
    """Store a finished :class:`ScanResult` (its retained findings) and return the scan id; in group
    ``group_id`` (None: the default group)."""
    return StoreSink.into(store, group_id=group_id).write(result)


__all__ = ["GROUP_FINDINGS", "StoreSink", "clean_text", "connect_for_writing", "save"]
