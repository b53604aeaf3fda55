"""The findings store: every scan kept, listed, re-loaded and compared (SQLAlchemy Core).

A scan is written so that a crash leaves the store consistent: the scan row first (status
``running``), then one transaction per target with all its findings, then the final status. A writer
killed half-way leaves the targets it finished and a scan still marked ``running``, which history
reports as interrupted (incomplete), never as a clean scan.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from msgspec import Struct, field
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import Connection, RowMapping, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from vmsec.errors import ErrorKind, StoreError
from vmsec.facts.common import CollectionRecord
from vmsec.findings import Evidence, Finding, Severity, Status, Target, TargetKind
from vmsec.results import Component, OsInventory, ScanCounts, ScanResult
from vmsec.store import schema
from vmsec.store.diff import Diff, DiffRow, compute_diff
from vmsec.store.location import redact, resolve_url
from vmsec.store.migrations import HEAD_REVISION
from vmsec.times import as_utc

_STATUS = {s.value: s for s in Status}
_SEVERITY = {s.value: s for s in Severity}
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_NUMBER = re.compile(r"[0-9]+")  # ASCII digits: str.isdigit() also takes '²' and '١'


def record_number(ref: str) -> int | None:
    """``ref`` as a record's number when it is one (ASCII digits, within SQL's 64-bit INTEGER), else None
    — a number no database can hold names no record, and must not reach its driver (OverflowError)."""
    if not _NUMBER.fullmatch(ref) or len(ref) > 18:
        return None
    return int(ref)


class UnknownScan(StoreError):
    """The scan id or reference names no stored scan (a usage error, not a broken store)."""


class StoreMissing(UnknownScan):
    """A read-only command named a store that does not exist (it is never created for reading)."""


class ScanSummary(Struct, frozen=True, kw_only=True):
    """One stored scan, with counts, as ``vmsec history`` lists it."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    source: str
    profile: str
    status: str  # complete | incomplete | running (being written, or the writer died)
    tool_version: str
    checks_run: int
    targets_expected: int
    targets_stored: int
    findings_expected: int
    findings_stored: int
    by_status: Mapping[str, int] = field(default_factory=dict)
    failed_by_severity: Mapping[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def state(self) -> str:
        """complete | incomplete | interrupted (the writer stopped before the end)."""
        return "interrupted" if self.status == "running" else self.status


def _kind(value: str | None) -> ErrorKind | None:
    try:
        return ErrorKind(value) if value else None
    except ValueError:
        return ErrorKind.IO


def _evidence(rows: Any) -> tuple[Evidence, ...]:
    """Evidence as stored: ``[source, locator, value]`` triples (older scans: objects)."""
    return tuple(Evidence(e[0], e[1], e[2]) if isinstance(e, list)
                 else Evidence(e["source"], e.get("locator", ""), e.get("value")) for e in rows)


def _os(data: Any) -> OsInventory:
    return OsInventory(os_id=data.get("os_id"), version_id=data.get("version_id"),
                       pretty_name=data.get("pretty_name"),
                       packages=tuple(Component(*p) for p in data.get("packages") or ()))



class Store:
    """An open findings store. Use :func:`open_store`; close it (or use ``with``) when done."""

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self.url = redact(url)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def transaction(self, what: str) -> Iterator[Connection]:
        """A transaction; database errors become :class:`StoreError` naming ``what`` failed."""
        try:
            with self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.url}: {what} failed: {exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def ensure_finding_list_indexes(self) -> None:
        """Create the finding list's indexes (:data:`schema.FINDING_LIST_INDEXES`) that this store
        lacks: once, when the store is first served. On PostgreSQL an advisory lock keeps several
        starting service processes from building the same index twice; writers wait while an index
        is built (seconds at a million findings)."""
        from sqlalchemy import text

        from vmsec.store import schema

        with self.transaction("adding the finding list's indexes") as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7628643655131017473)"))
                present = {r[0] for r in conn.execute(text(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'findings' "
                    "AND schemaname = current_schema()"))}
            else:
                present = {r[0] for r in conn.execute(text(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'findings'"))}
            for name, columns in schema.FINDING_LIST_INDEXES:
                if name not in present:
                    conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON findings "
                                      f"({', '.join(columns)})"))

    # --- writing ----------------------------------------------------------------------------

    def save(self, result: ScanResult) -> int:
        """Store a finished ``result`` (its retained findings); return its scan id. Scans stream into
        the store through :class:`vmsec.store.writer.StoreSink` instead."""
        from vmsec.store.writer import save

        return save(self, result)

    # --- reading ----------------------------------------------------------------------------

    def scans(self, limit: int = 20) -> list[ScanSummary]:
        """The most recent ``limit`` scans, newest first, with their counts."""
        s = schema.scans
        with self.transaction("listing scans") as conn:
            rows = conn.execute(select(s).order_by(s.c.id.desc()).limit(limit)).mappings().all()
            return self._summaries(conn, rows)

    def summary(self, scan_id: int) -> ScanSummary:
        s = schema.scans
        with self.transaction("reading a scan") as conn:
            rows = conn.execute(select(s).where(s.c.id == scan_id)).mappings().all()
            if not rows:
                raise UnknownScan(f"{self.url}: no scan #{scan_id}")
            return self._summaries(conn, rows)[0]

    def _summaries(self, conn: Connection, rows: Sequence[RowMapping]) -> list[ScanSummary]:
        ids = [r["id"] for r in rows]
        if not ids:
            return []
        f, t = schema.findings, schema.targets
        counts: dict[int, dict[tuple[str, str], int]] = {i: {} for i in ids}
        for scan_id, status, severity, n in conn.execute(
                select(f.c.scan_id, f.c.status, f.c.severity, func.count())
                .where(f.c.scan_id.in_(ids)).group_by(f.c.scan_id, f.c.status, f.c.severity)):
            counts[scan_id][(status, severity)] = n
        stored_targets: dict[int, int] = {row[0]: row[1] for row in conn.execute(
            select(t.c.scan_id, func.count()).where(t.c.scan_id.in_(ids)).group_by(t.c.scan_id))}
        out = []
        for r in rows:
            c = counts[r["id"]]
            by_status: dict[str, int] = {}
            failed: dict[str, int] = {sev.value: 0 for sev in Severity}
            for (status, severity), n in c.items():
                by_status[status] = by_status.get(status, 0) + n
                if status == Status.FAIL.value:
                    failed[severity] = failed.get(severity, 0) + n
            out.append(ScanSummary(
                id=r["id"], started_at=as_utc(r["started_at"]) or r["started_at"],
                finished_at=as_utc(r["finished_at"]), source=r["source"], profile=r["profile"],
                status=r["status"], tool_version=r["tool_version"], checks_run=r["checks_run"],
                targets_expected=r["targets_expected"], targets_stored=stored_targets.get(r["id"], 0),
                findings_expected=r["findings_expected"], findings_stored=sum(c.values()),
                by_status={k.value: by_status.get(k.value, 0) for k in Status}, failed_by_severity=failed))
        return out

    def resolve(self, ref: str) -> int:
        """A scan id from ``ref``: a number, ``latest`` or ``previous`` (the one before latest)."""
        s = schema.scans
        if _NUMBER.fullmatch(ref):
            scan_id = record_number(ref)
            if scan_id is None:
                raise UnknownScan(f"{self.url}: no scan #{ref}")
            with self.transaction("reading a scan") as conn:
                if conn.execute(select(s.c.id).where(s.c.id == scan_id)).first() is None:
                    raise UnknownScan(f"{self.url}: no scan #{scan_id}")
            return scan_id
        offsets = {"latest": 0, "previous": 1}
        if ref not in offsets:
            raise UnknownScan(f"not a scan id: {ref!r} (a number, 'latest' or 'previous')")
        with self.transaction("reading a scan") as conn:
            row = conn.execute(select(s.c.id).order_by(s.c.id.desc()).offset(offsets[ref]).limit(1)).first()
        if row is None:
            raise UnknownScan(f"{self.url}: no {ref} scan (the store holds "
                             f"{'no' if ref == 'latest' else 'fewer than two'} scans)")
        return int(row[0])

    def load(self, scan_id: int) -> ScanResult:
        """Rebuild a stored scan for the reporters: findings, targets with their details and OS
        inventories, collection records and source — everything a reporter reads, so a stored scan
        renders as it did live. A scan whose writer stopped half-way carries a failed collection
        record saying so."""
        summary = self.summary(scan_id)
        s, t, f = schema.scans, schema.targets, schema.findings
        rec, chk = schema.collection_records, schema.scan_checks
        with self.transaction("loading a scan") as conn:
            scan = conn.execute(select(s).where(s.c.id == scan_id)).mappings().one()
            target_rows = conn.execute(select(t).where(t.c.scan_id == scan_id)
                                       .order_by(t.c.position)).mappings().all()
            remediation = {row[0]: row[1] for row in conn.execute(
                select(chk.c.check_id, chk.c.remediation).where(chk.c.scan_id == scan_id))}
            records = [CollectionRecord(source=r.source, what=r.what, ok=r.ok, reason=r.reason,
                                        duration_s=r.duration_s, kind=_kind(r.kind))
                       for r in conn.execute(select(rec).where(rec.c.scan_id == scan_id)
                                             .order_by(rec.c.id))]
            by_id = {r["id"]: Target(TargetKind(r["kind"]), r["name"], r["host"]) for r in target_rows}
            findings = tuple(
                Finding(check_id=r.check_id, title=r.title, status=_STATUS[r.status],
                        severity=_SEVERITY[r.severity], target=by_id[r.target_id], subject=r.subject,
                        message=r.message, evidence=_evidence(r.evidence),
                        tags=tuple(r.tags), remediation=remediation.get(r.check_id, ""),
                        vulnerability=r.vulnerability, detail=r.detail)
                for r in conn.execute(select(f).where(f.c.scan_id == scan_id).order_by(f.c.seq)).all())
        if summary.status == "running":
            expected = (f" of {summary.findings_expected}" if summary.findings_expected else "")
            records.append(CollectionRecord(
                source=f"store scan #{scan_id}", what="stored scan", ok=False,
                reason=(f"the scan was interrupted while being stored: {summary.targets_stored} targets "
                        f"and {summary.findings_stored}{expected} findings were saved")))
        started = as_utc(scan["started_at"]) or datetime.now(UTC)
        targets = tuple(by_id[r["id"]] for r in target_rows if r["listed"])
        return ScanResult(
            source=scan["source"], profile=scan["profile"], started_at=started,
            finished_at=as_utc(scan["finished_at"]) or started, checks_run=scan["checks_run"],
            findings=findings, targets=targets,
            details={by_id[r["id"]]: r["details"] or {} for r in target_rows},
            os_inventories={by_id[r["id"]]: _os(r["os"]) for r in target_rows if r["os"]},
            records=tuple(records), counts=ScanCounts.of(findings), scan_id=scan_id)

    def _diff_rows(self, conn: Connection, scan_id: int) -> tuple[list[DiffRow], list[Target]]:
        t, f = schema.targets, schema.findings
        targets = {r.id: Target(TargetKind(r.kind), r.name, r.host) for r in conn.execute(
            select(t.c.id, t.c.kind, t.c.name, t.c.host).where(t.c.scan_id == scan_id)
            .order_by(t.c.position))}
        status, severity = _STATUS.__getitem__, _SEVERITY.__getitem__  # faster than Enum(value)
        # A diff entry always takes its words from a side that is not PASS: PASS rows (most of a
        # real scan) are fetched without their text.
        fetched = conn.execute(select(f.c.fingerprint, f.c.target_id, f.c.check_id, f.c.severity,
                                      f.c.status, f.c.subject, f.c.message)
                               .where(f.c.scan_id == scan_id, f.c.status != Status.PASS.value)).all()
        rows = [DiffRow(fp, targets[tid], cid, severity(sev), status(st), subj, msg)
                for fp, tid, cid, sev, st, subj, msg in fetched]
        passed = conn.execute(select(f.c.fingerprint, f.c.target_id)
                              .where(f.c.scan_id == scan_id, f.c.status == Status.PASS.value)).all()
        p, info = Status.PASS, Severity.INFO
        rows += [DiffRow(fp, targets[tid], "", info, p, "", "") for fp, tid in passed]
        return rows, list(targets.values())

    def diff(self, a: int, b: int) -> Diff:
        """What changed from scan ``a`` to scan ``b`` (see :mod:`vmsec.store.diff`)."""
        for scan_id in (a, b):
            self.summary(scan_id)  # a clear error for an unknown id
        # Hundreds of thousands of small tuples: the cyclic GC would rescan them again and again
        # (a third of the time); nothing here makes reference cycles.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self.transaction("comparing scans") as conn:
                a_rows, a_targets = self._diff_rows(conn, a)
                b_rows, b_targets = self._diff_rows(conn, b)
            return compute_diff(a, a_rows, a_targets, b, b_rows, b_targets)
        finally:
            if gc_was_enabled:
                gc.enable()




def _alembic_config(conn: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def migrate(engine: Engine, url: str) -> None:
    """Bring the store's schema to this vmsec's head revision (no-op when it is there)."""
    try:
        with engine.connect() as conn:
            current_row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        if current_row is not None and current_row[0] == HEAD_REVISION:
            return
    except SQLAlchemyError:
        pass  # a new store (no version table yet): alembic creates it below
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    heads = set(script.get_heads())
    try:
        # Several processes (fleet workers starting together) may open a new store at once: they
        # migrate one after the other (PostgreSQL: an advisory lock; SQLite: a lock file beside it),
        # and each looks at the revision again once it holds the lock.
        with _sqlite_migration_lock(engine):
            _upgrade(engine, url, script, heads)
    except SQLAlchemyError as exc:
        try:
            with engine.connect() as conn:
                if MigrationContext.configure(conn).get_current_revision() in heads:
                    return
        except SQLAlchemyError:
            pass
        raise StoreError(f"{redact(url)}: cannot migrate the store: {exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc


_MIGRATION_LOCK = 0x766D736563  # "vmsec": the PostgreSQL advisory lock held while migrating


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _upgrade(engine: Engine, url: str, script: Any, heads: set[str]) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.util.exc import CommandError

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        current = MigrationContext.configure(conn).get_current_revision()
        if current in heads:
            return
        if current is not None:
            try:
                script.get_revision(current)
            except CommandError as exc:
                raise StoreError(f"{redact(url)}: the store is at schema revision {current}, "
                                 "unknown to this vmsec (written by a newer version?)") from exc
        command.upgrade(_alembic_config(conn), "head")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    # A new store's pages (ignored once it exists): 16 KiB instead of 4 KiB, a quarter of the pages
    # for findings of a few hundred bytes each, so a quarter of the write-ahead log's frames to copy
    # back at the end of a scan (storing the corpus: 18 -> 12 ms at close; docs/performance.md).
    cur.execute("PRAGMA page_size=16384")
    cur.execute("PRAGMA journal_mode=WAL")  # readers (history) never block the writer
    cur.execute("PRAGMA synchronous=NORMAL")  # consistent after a crash; durable enough for WAL
    cur.execute("PRAGMA wal_autocheckpoint=10000")  # fewer checkpoint fsyncs while writing a scan
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def open_store(url: str | None = None, *, create: bool = True, pool_size: int | None = None,
               pre_ping: bool = True) -> Store:
    """Open (creating and migrating as needed) the store at ``url`` — see :func:`resolve_url`.

    ``create=False`` (history, report, diff: commands that only read) never creates a store, a
    database file or its directory: a store that does not exist is :class:`StoreMissing`.
    ``pool_size``: connections kept open (the service serves many requests at once); ``pre_ping=False``
    saves a round trip per checkout (connections are recycled hourly instead).
    """
    url = resolve_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"not a database URL: {redact(url)} (give a URL such as sqlite:///PATH or "
                         "postgresql+psycopg://user@host/db, or a file path)") from exc
    pool: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size} if pool_size else {}
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                db_file = Path(parsed.database).expanduser()
                if not create and not db_file.is_file():
                    raise StoreMissing(f"no findings store at {db_file}: nothing has been stored there")
                if create:
                    db_file.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed, **pool)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            # Like SQLite's synchronous=NORMAL: a commit does not wait for its WAL flush. An OS
            # crash may lose the last transactions (a scan then shows as interrupted), never
            # consistency; one transaction per target would otherwise cost one fsync per target.
            # plan_cache_mode: psycopg prepares a statement run five times on a connection, and PostgreSQL
            # then may switch it to a generic plan — one that ignores the parameters' values. For the
            # service's keyset walks (an id range, a status, a target) such a plan was up to 100× slower
            # (the finding list: 1.5 → 15 ms of PostgreSQL CPU per request); custom plans always.
            args = (
                {"options": "-c synchronous_commit=off -c plan_cache_mode=force_custom_plan"}
                if parsed.get_driver_name() == "psycopg"
                else {}
            )
            engine = create_engine(parsed, pool_pre_ping=pre_ping, pool_recycle=-1 if pre_ping else 3600,
                                   connect_args=args, **pool)
    except (SQLAlchemyError, ImportError, OSError) as exc:
        raise StoreError(f"cannot open the store {redact(url)}: {exc}") from exc
    if not create and not _has_schema(engine, url):
        engine.dispose()
        raise StoreMissing(f"{redact(url)} holds no vmsec findings store: nothing has been stored there")
    migrate(engine, url)
    return Store(engine, url)


def _has_schema(engine: Engine, url: str) -> bool:
    """Whether the database already holds a vmsec store (its alembic version table)."""
    from sqlalchemy import inspect

    try:
        with engine.connect() as conn:
            return bool(inspect(conn).has_table("alembic_version"))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the store {redact(url)}: {exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
