"""Writing a scan into the store as it is produced (a :class:`~vmsec.pipeline.FindingSink`).

The scan row goes in first (status ``running``); targets and their findings follow in groups of a
few thousand findings, one transaction per group; the final status last. A writer killed half-way
leaves whole targets and a scan still marked ``running``, which history reports as interrupted —
never a clean scan.

Bulk paths, because a fleet scan writes millions of rows: SQLite gets ``executemany`` of plain
tuples on the DBAPI connection (no per-row SQLAlchemy work); PostgreSQL gets ``COPY … FROM STDIN``
through psycopg, with target ids reserved from their sequence in one round trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import insert, update
from sqlalchemy.exc import SQLAlchemyError

from vmsec import __version__
from vmsec.errors import StoreError
from vmsec.findings import Finding
from vmsec.results import OsInventory, ScanResult, TargetBatch
from vmsec.store import schema
from vmsec.store.store import Store, open_store

if TYPE_CHECKING:
    from vmsec.pipeline import ScanHeader

GROUP_FINDINGS = 5_000  # findings per transaction (targets are never split)

_FINDING_COLUMNS = ("scan_id", "target_id", "seq", "fingerprint", "check_id", "title", "status", "severity",
                    "subject", "message", "evidence", "tags", "vulnerability", "detail")


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


def _json(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def _json_text(value: Any) -> str:
    """JSON for values that may hold hostile strings (lone surrogates are escaped, not fatal)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        import json

        return json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace"
                                                                         ).decode("utf-8")


def os_json(os: OsInventory | None) -> Any:
    if os is None:
        return None
    return {"os_id": os.os_id, "version_id": os.version_id, "pretty_name": os.pretty_name,
            "packages": [list(p) for p in os.packages]}


class StoreSink:
    """Streams one scan into a :class:`Store` (see the module docstring)."""

    def __init__(self, store: Store, *, owns_store: bool = False, group_id: int | None = None) -> None:
        self.store = store
        self.group_id = group_id  # the group the scan belongs to (None: the default group)
        self.scan_id: int | None = None
        self._owns = owns_store
        self._seq = 0
        self._position = 0
        self._targets_stored = 0
        self._pending: list[tuple[TargetBatch, Mapping[str, Any], OsInventory | None]] = []
        self._pending_findings = 0
        self._pg = store.dialect == "postgresql"
        self._target_ids: dict[tuple[str, str, str | None], int] = {}

    @classmethod
    def open(cls, url: str | None) -> StoreSink:
        return cls(open_store(url), owns_store=True)

    def close(self) -> None:
        if self._owns:
            self.store.close()

    # --- the sink protocol -------------------------------------------------------------------

    def begin(self, header: ScanHeader) -> None:
        with self.store.transaction("storing the scan") as conn:
            self.scan_id = int(conn.execute(insert(schema.scans).values(
                started_at=header.started_at.astimezone(UTC), finished_at=None,
                stored_at=datetime.now(UTC), source=clean_text(header.source),
                profile=clean_text(header.profile), checks_run=header.checks_run, status="running",
                complete=False, tool_version=__version__, targets_expected=header.targets_expected,
                findings_expected=0, **({} if self.group_id is None else {"group_id": self.group_id})
                )).inserted_primary_key[0])  # type: ignore[index]
            if len(header.checks):
                conn.execute(insert(schema.scan_checks), [
                    {"scan_id": self.scan_id, "check_id": c.id, "remediation": clean_text(c.remediation)}
                    for c in header.checks.checks])

    def add(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None) -> None:
        self._pending.append((batch, details, os))
        self._pending_findings += len(batch.findings)
        if self._pending_findings >= GROUP_FINDINGS:
            self.flush()

    def end(self, result: ScanResult) -> None:
        self.flush()
        assert self.scan_id is not None
        with self.store.transaction("finishing the scan") as conn:
            if result.records:
                conn.execute(insert(schema.collection_records), [
                    {"scan_id": self.scan_id, "source": clean_text(r.source), "what": clean_text(r.what),
                     "ok": r.ok, "reason": None if r.reason is None else clean_text(r.reason),
                     "duration_s": r.duration_s, "kind": r.kind.value if r.kind else None}
                    for r in result.records])
            conn.execute(update(schema.scans).where(schema.scans.c.id == self.scan_id).values(
                finished_at=result.finished_at.astimezone(UTC),
                status="complete" if result.complete else "incomplete", complete=result.complete,
                targets_expected=self._targets_stored, findings_expected=self._seq))

    # --- writing groups ------------------------------------------------------------------------

    def flush(self) -> None:
        if not self._pending:
            return
        group, self._pending, self._pending_findings = self._pending, [], 0
        try:
            if self._pg:
                self._write_pg(group)
            else:
                self._write_sqlite(group)
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.store.url}: storing findings failed: {exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
        except Exception as exc:  # a DBAPI error raised outside SQLAlchemy (raw cursor, COPY)
            raise StoreError(f"{self.store.url}: storing findings failed: {exc.__class__.__name__}: "
                             f"{exc}") from exc
        self._targets_stored += len(group)

    def _target_row(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None
                    ) -> tuple[Any, ...]:
        t = batch.target
        position = self._position
        self._position += 1
        return (self.scan_id, position, t.kind.value, clean_text(t.name),
                None if t.host is None else clean_text(t.host), True, _json_text(dict(details)),
                None if os is None else _json_text(os_json(os)))

    def _finding_rows(self, target_id: int, findings: Iterable[Finding]) -> list[tuple[Any, ...]]:
        rows = []
        scan_id = self.scan_id
        seq = self._seq
        for f in findings:
            v = f.vulnerability
            rows.append((
                scan_id, target_id, seq, f.fingerprint, f.check_id, clean_text(f.title), f.status.value,
                f.severity.value, clean_text(f.subject), clean_text(f.message),
                _json_text([[e.source, e.locator, e.value] for e in f.evidence]) if f.evidence else "[]",
                _json(list(f.tags)), None if v is None else _json_text(dict(v)),
                None if f.detail is None else clean_text(f.detail)))
            seq += 1
        self._seq = seq
        return rows

    def _write_sqlite(self, group: list[tuple[TargetBatch, Mapping[str, Any], OsInventory | None]]) -> None:
        with self.store.transaction("storing findings") as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                rows: list[tuple[Any, ...]] = []
                for batch, details, os in group:
                    cursor.execute("INSERT INTO targets (scan_id, position, kind, name, host, listed, "
                                   "details, os) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                   self._target_row(batch, details, os))
                    rows += self._finding_rows(int(cursor.lastrowid), batch.findings)
                cursor.executemany(
                    f"INSERT INTO findings ({', '.join(_FINDING_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(_FINDING_COLUMNS))})", rows)
            finally:
                cursor.close()

    def _write_pg(self, group: list[tuple[TargetBatch, Mapping[str, Any], OsInventory | None]]) -> None:
        with self.store.transaction("storing findings") as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:  # type: ignore[union-attr]
                cur.execute("SELECT nextval(pg_get_serial_sequence('targets', 'id')) "
                            "FROM generate_series(1, %s)", (len(group),))
                ids = [row[0] for row in cur.fetchall()]
                with cur.copy("COPY targets (id, scan_id, position, kind, name, host, listed, details, os) "
                              "FROM STDIN") as copy:
                    for target_id, (batch, details, os) in zip(ids, group, strict=True):
                        copy.write_row((target_id, *self._target_row(batch, details, os)))
                with cur.copy(f"COPY findings ({', '.join(_FINDING_COLUMNS)}) FROM STDIN") as copy:
                    for target_id, (batch, _details, _os) in zip(ids, group, strict=True):
                        for row in self._finding_rows(target_id, batch.findings):
                            copy.write_row(row)


def save(store: Store, result: ScanResult, *, group_id: int | None = None) -> int:
    """Store a finished :class:`ScanResult` (its retained findings) and return the scan id; in group
    ``group_id`` (None: the default group)."""
    from vmsec.checkinfo import CheckIndex
    from vmsec.pipeline import ScanHeader

    checks: dict[str, Any] = {}
    for f in result.findings:
        if f.check_id not in checks:
            checks[f.check_id] = f.remediation
    sink = StoreSink(store, group_id=group_id)
    sink.begin(ScanHeader(source=result.source, profile=result.profile, started_at=result.started_at,
                          checks_run=result.checks_run, checks=CheckIndex(()),
                          targets_expected=len(set(result.targets) | {f.target for f in result.findings})))
    assert sink.scan_id is not None
    if checks:
        with store.transaction("storing the scan") as conn:
            conn.execute(insert(schema.scan_checks), [
                {"scan_id": sink.scan_id, "check_id": cid, "remediation": clean_text(text)}
                for cid, text in checks.items()])
    for batch in result.batches():
        sink.add(batch, result.details.get(batch.target, {}), result.os_inventories.get(batch.target))
    sink.end(result)
    return sink.scan_id


__all__ = ["GROUP_FINDINGS", "StoreSink", "clean_text", "save"]
