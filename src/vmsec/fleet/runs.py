"""Fleet runs in the findings store: created by ``vmsec fleet scan``, advanced by whoever scans a target
(a Celery worker or the in-process runner), read by ``vmsec fleet status`` and ``fleet report``.

Every write is idempotent, because a task may run twice (a worker killed mid-task whose message is
delivered again, a retry racing a slow attempt):

- a run target is one row per (run, target key) (a unique key); an attempt *starts* only while the
  target is not finished (a conditional update), and each attempt records the scan it writes;
- an attempt *finishes* with one transaction that marks the target done and points it at its scan —
  only if no other attempt finished first — and deletes every other attempt's (partial) scan; an
  attempt that lost the race deletes its own. So a run ends with exactly one scan per target, and
  no finding twice (the run's findings are unique by run, target and fingerprint).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from vmsec.errors import StoreError
from vmsec.facts import CollectionRecord
from vmsec.findings import Finding, Target
from vmsec.results import OsInventory, ScanCounts, ScanResult
from vmsec.store import Store, schema
from vmsec.store.store import record_number
from vmsec.store.writer import clean_text
from vmsec.times import as_utc

# Target states. Terminal: done, failed.
QUEUED, RUNNING, RETRYING, DONE, FAILED = "queued", "running", "retrying", "done", "failed"
TERMINAL = (DONE, FAILED)

__all__ = [
    "DONE", "FAILED", "QUEUED", "RETRYING", "RUNNING", "Attempt", "RunOptions", "RunRow", "RunStatus",
    "RunTarget", "UnknownRun", "combined_result", "create_run", "fail_attempt", "finish_attempt",
    "get_target", "list_runs", "resolve_run", "run_status", "set_attempt_scan", "start_attempt",
]


class UnknownRun(StoreError):
    """No such fleet run (or run target) in this store."""


def _now() -> datetime:
    return datetime.now(UTC)



@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How every target of a run is scanned and retried (kept with the run: workers read it)."""

    profile: str = "multi-tenant"
    checks: tuple[str, ...] = ()
    attempts: int = 3  # tries per target (a killed worker's try counts)
    retry_delay: float = 2.0  # seconds before the 2nd try; doubled for each further try
    retry_delay_max: float = 60.0

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile, "checks": list(self.checks), "attempts": self.attempts,
                "retry_delay": self.retry_delay, "retry_delay_max": self.retry_delay_max}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunOptions:
        return cls(profile=str(data.get("profile", "multi-tenant")),
                   checks=tuple(data.get("checks") or ()), attempts=int(data.get("attempts", 3)),
                   retry_delay=float(data.get("retry_delay", 2.0)),
                   retry_delay_max=float(data.get("retry_delay_max", 60.0)))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    id: int
    token: str
    created_at: datetime
    finished_at: datetime | None
    source: str
    mode: str
    status: str  # running | complete | failed
    schedule: str | None
    group: str | None
    options: RunOptions
    targets_total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunTarget:
    id: int
    run_id: int
    key: str
    position: int
    kind: str
    spec: Mapping[str, Any]
    hypervisor: str | None
    hypervisor_limit: int | None
    groups: tuple[str, ...]
    timeout_s: float | None
    state: str
    attempts: int
    reason: str | None
    scan_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    worker: str | None
    counts: Mapping[str, Any] | None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStatus:
    run: RunRow
    targets: Sequence[RunTarget]
    attempts: Mapping[int, Sequence[Mapping[str, Any]]] = field(default_factory=dict)  # per run target id

    @property
    def by_state(self) -> dict[str, int]:
        counts = {s: 0 for s in (QUEUED, RUNNING, RETRYING, DONE, FAILED)}
        for t in self.targets:
            counts[t.state] = counts.get(t.state, 0) + 1
        return counts

    @property
    def finished(self) -> bool:
        return all(t.terminal for t in self.targets)


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """An attempt that started: its row, its number, and the run target as it was then."""

    id: int
    number: int
    target: RunTarget
    run: RunRow


def _run_row(r: RowMapping) -> RunRow:
    return RunRow(id=r["id"], token=r["token"], created_at=as_utc(r["created_at"]) or _now(),
                  finished_at=as_utc(r["finished_at"]), source=r["source"], mode=r["mode"],
                  status=r["status"], schedule=r["schedule"], group=r["group_name"],
                  options=RunOptions.from_json(r["options"] or {}), targets_total=r["targets_total"])


def _target_row(r: RowMapping) -> RunTarget:
    return RunTarget(id=r["id"], run_id=r["run_id"], key=r["target_key"], position=r["position"],
                     kind=r["kind"], spec=r["spec"] or {}, hypervisor=r["hypervisor"],
                     hypervisor_limit=r["hypervisor_limit"], groups=tuple(r["groups"] or ()),
                     timeout_s=r["timeout_s"],
                     state=r["state"], attempts=r["attempts"], reason=r["reason"], scan_id=r["scan_id"],
                     started_at=as_utc(r["started_at"]), finished_at=as_utc(r["finished_at"]),
                     duration_s=r["duration_s"], worker=r["worker"], counts=r["counts"])


# --- creating and reading runs ---------------------------------------------------------------------


def create_run(store: Store, targets: Iterable[Any], *, source: str, mode: str,
               options: RunOptions, schedule: str | None = None, group: str | None = None,
               now: datetime | None = None) -> RunRow:
    """A new run of ``targets`` (:class:`~vmsec.fleet.inventory.FleetTarget`), every target queued."""
    targets = list(targets)
    if not targets:
        raise StoreError("a fleet run needs at least one target")
    created = now or _now()
    token = str(uuid.uuid4())
    fr, frt = schema.fleet_runs, schema.fleet_run_targets
    with store.transaction("creating a fleet run") as conn:
        run_id = int(conn.execute(insert(fr).values(
            created_at=created, finished_at=None, token=token, source=clean_text(source), mode=mode,
            status="running", schedule=schedule, group_name=group, options=options.to_json(),
            targets_total=len(targets))).inserted_primary_key[0])
        conn.execute(insert(frt), [
            {"run_id": run_id, "target_key": t.key, "position": n, "kind": t.spec.kind,
             "spec": dict(t.mapping), "timeout_s": t.timeout,
             "hypervisor": t.hypervisor, "hypervisor_limit": t.hypervisor_limit,
             "groups": list(t.groups), "state": QUEUED, "attempts": 0, "reason": None, "scan_id": None,
             "started_at": None, "finished_at": None, "duration_s": None, "worker": None,
             "counts": None}
            for n, t in enumerate(targets)])
        row = conn.execute(select(fr).where(fr.c.id == run_id)).mappings().one()
    return _run_row(row)


def resolve_run(store: Store, ref: str) -> int:
    """A run id from ``ref``: a number or ``latest``."""
    fr = schema.fleet_runs
    number = record_number(ref)
    with store.transaction("reading fleet runs") as conn:
        if number is not None:
            found = conn.execute(select(fr.c.id).where(fr.c.id == number)).first()
        elif ref.isascii() and ref.isdigit():
            found = None  # a number no run can have
        elif ref == "latest":
            found = conn.execute(select(fr.c.id).order_by(fr.c.id.desc()).limit(1)).first()
        else:
            raise UnknownRun(f"not a fleet run: {ref!r} (a run number or 'latest')")
    if found is None:
        raise UnknownRun(f"{store.url}: no fleet run {ref}")
    return int(found[0])


def _load_run(conn: Connection, run_id: int) -> RunRow:
    row = conn.execute(select(schema.fleet_runs).where(schema.fleet_runs.c.id == run_id)).mappings().first()
    if row is None:
        raise UnknownRun(f"no fleet run #{run_id}")
    return _run_row(row)


def run_status(store: Store, run_id: int, *, with_attempts: bool = False) -> RunStatus:
    frt, fa = schema.fleet_run_targets, schema.fleet_attempts
    with store.transaction("reading a fleet run") as conn:
        run = _load_run(conn, run_id)
        targets = [_target_row(r) for r in conn.execute(
            select(frt).where(frt.c.run_id == run_id).order_by(frt.c.position)).mappings()]
        attempts: dict[int, list[Mapping[str, Any]]] = {}
        if with_attempts:
            for r in conn.execute(select(fa).join(frt, fa.c.run_target_id == frt.c.id)
                                  .where(frt.c.run_id == run_id).order_by(fa.c.run_target_id, fa.c.attempt)
                                  ).mappings():
                attempt = dict(r)  # times in UTC like every other time of a run (SQLite's are naive)
                for key in ("started_at", "finished_at"):
                    attempt[key] = as_utc(r[key])
                attempts.setdefault(r["run_target_id"], []).append(attempt)
    return RunStatus(run=run, targets=targets, attempts=attempts)


def list_runs(store: Store, limit: int = 20) -> list[tuple[RunRow, dict[str, int]]]:
    """The most recent runs with their targets counted by state, newest first."""
    fr, frt = schema.fleet_runs, schema.fleet_run_targets
    with store.transaction("listing fleet runs") as conn:
        rows = conn.execute(select(fr).order_by(fr.c.id.desc()).limit(limit)).mappings()
        runs = [_run_row(r) for r in rows]
        ids = [r.id for r in runs]
        states: dict[int, dict[str, int]] = {i: {} for i in ids}
        if ids:
            for run_id, state, n in conn.execute(select(frt.c.run_id, frt.c.state, func.count())
                                                 .where(frt.c.run_id.in_(ids))
                                                 .group_by(frt.c.run_id, frt.c.state)):
                states[run_id][state] = n
    return [(r, states[r.id]) for r in runs]


def get_target(store: Store, run_id: int, key: str, token: str | None = None) -> tuple[RunRow, RunTarget]:
    """The run and one of its targets; :class:`UnknownRun` when either is missing (or the token differs:
    the task was meant for another store)."""
    frt = schema.fleet_run_targets
    with store.transaction("reading a fleet run target") as conn:
        run = _load_run(conn, run_id)
        if token is not None and run.token != token:
            raise UnknownRun(f"{store.url}: fleet run #{run_id} is another run than the task's "
                             "(the worker and the client use different stores?)")
        row = conn.execute(select(frt).where(frt.c.run_id == run_id, frt.c.target_key == key)
                           ).mappings().first()
    if row is None:
        raise UnknownRun(f"fleet run #{run_id} has no target {key!r}")
    return run, _target_row(row)


# --- attempts ----------------------------------------------------------------------------------------

LOST_REASON = "no result: the worker stopped (killed?) or the task was delivered again"


def start_attempt(store: Store, run_id: int, key: str, *, worker: str, token: str | None = None,
                  now: datetime | None = None) -> Attempt | None:
    """Start an attempt at a target; None when the target is already finished (done or failed): a
    task delivered again after its target finished does nothing."""
    frt, fa = schema.fleet_run_targets, schema.fleet_attempts
    started = now or _now()
    run, target = get_target(store, run_id, key, token)
    with store.transaction("starting a fleet target") as conn:
        claimed = conn.execute(
            update(frt).where(frt.c.id == target.id, frt.c.state.not_in(TERMINAL))
            .values(attempts=frt.c.attempts + 1, state=RUNNING, started_at=started,
                    worker=clean_text(worker)))
        if claimed.rowcount == 0:
            return None
        row = conn.execute(select(frt).where(frt.c.id == target.id)).mappings().one()
        number = int(row["attempts"])
        # An earlier attempt still marked running did not finish: its worker died or its message
        # was delivered again. Its partial scan is deleted when an attempt finishes.
        conn.execute(update(fa).where(fa.c.run_target_id == target.id, fa.c.outcome == RUNNING)
                     .values(outcome="lost", finished_at=started, reason=LOST_REASON))
        attempt_id = int(conn.execute(insert(fa).values(
            run_target_id=target.id, attempt=number, worker=clean_text(worker), scan_id=None,
            started_at=started, finished_at=None, outcome=RUNNING, reason=None)
        ).inserted_primary_key[0])
    return Attempt(id=attempt_id, number=number, target=_target_row(row), run=run)


def set_attempt_scan(store: Store, attempt: Attempt, scan_id: int) -> None:
    """Record the scan an attempt is writing (before its findings): a partial scan can be found."""
    fa = schema.fleet_attempts
    with store.transaction("recording a fleet attempt's scan") as conn:
        conn.execute(update(fa).where(fa.c.id == attempt.id).values(scan_id=scan_id))


def _delete_scans(conn: Connection, ids: Iterable[int]) -> None:
    ids = sorted(set(ids))
    if ids:
        # Cascades to targets, findings, check prose and collection records.
        conn.execute(delete(schema.scans).where(schema.scans.c.id.in_(ids)))


def _lock_run(conn: Connection, run_id: int) -> None:
    """Serialise the transactions that finish a run's targets (PostgreSQL: the run's row, locked
    first). Without it two last targets finishing together each saw the other still running, under
    READ COMMITTED, and the run was never marked finished. SQLite serialises writers already."""
    fr = schema.fleet_runs
    conn.execute(select(fr.c.id).where(fr.c.id == run_id).with_for_update())


def _maybe_finish_run(conn: Connection, run_id: int, now: datetime) -> None:
    frt, fr = schema.fleet_run_targets, schema.fleet_runs
    states = {state: n for state, n in conn.execute(
        select(frt.c.state, func.count()).where(frt.c.run_id == run_id).group_by(frt.c.state))}
    if any(states.get(s) for s in (QUEUED, RUNNING, RETRYING)):
        return
    conn.execute(update(fr).where(fr.c.id == run_id, fr.c.finished_at.is_(None))
                 .values(finished_at=now, status="failed" if states.get(FAILED) else "complete"))


def counts_json(counts: ScanCounts, complete: bool = True) -> dict[str, Any]:
    return {"findings": counts.findings, "complete": complete, "by_status": dict(counts.by_status),
            "failed_by_severity": dict(counts.failed_by_severity)}


def finish_attempt(store: Store, attempt: Attempt, scan_id: int, *, counts: ScanCounts,
                   duration_s: float, complete: bool = True, now: datetime | None = None) -> bool:
    """Mark the target done with ``scan_id`` — unless another attempt finished first, in which case
    this attempt's scan is deleted. True when this attempt's scan is the target's."""
    frt, fa = schema.fleet_run_targets, schema.fleet_attempts
    finished = now or _now()
    with store.transaction("finishing a fleet target") as conn:
        _lock_run(conn, attempt.run.id)
        won = conn.execute(
            update(frt).where(frt.c.id == attempt.target.id, frt.c.state != DONE)
            .values(state=DONE, scan_id=scan_id, finished_at=finished, duration_s=round(duration_s, 6),
                    counts=counts_json(counts, complete), reason=None)).rowcount == 1
        if won:
            others = [r[0] for r in conn.execute(
                select(fa.c.scan_id).where(fa.c.run_target_id == attempt.target.id,
                                           fa.c.scan_id.is_not(None), fa.c.scan_id != scan_id))]
            _delete_scans(conn, others)
            conn.execute(update(fa).where(fa.c.id == attempt.id)
                         .values(outcome=DONE, finished_at=finished, scan_id=scan_id))
            _maybe_finish_run(conn, attempt.run.id, finished)
        else:
            _delete_scans(conn, [scan_id])
            conn.execute(update(fa).where(fa.c.id == attempt.id).values(
                outcome="superseded", finished_at=finished,
                reason="another attempt of this target finished first"))
    return bool(won)


def fail_attempt(store: Store, attempt: Attempt, reason: str, *, final: bool,
                 now: datetime | None = None) -> str:
    """Record a failed attempt; the target becomes ``retrying`` or, when ``final``, ``failed`` with
    ``reason`` (a target another attempt finished stays done). Returns the target's state."""
    frt, fa = schema.fleet_run_targets, schema.fleet_attempts
    finished = now or _now()
    reason = clean_text(reason)[:4000]
    with store.transaction("recording a failed fleet target") as conn:
        _lock_run(conn, attempt.run.id)
        own = conn.execute(select(fa.c.scan_id).where(fa.c.id == attempt.id)).scalar()
        conn.execute(update(fa).where(fa.c.id == attempt.id)
                     .values(outcome=FAILED, finished_at=finished, reason=reason))
        if own is not None:
            _delete_scans(conn, [own])
        values: dict[str, Any] = {"state": FAILED if final else RETRYING, "reason": reason}
        if final:
            values["finished_at"] = finished
        conn.execute(update(frt).where(frt.c.id == attempt.target.id, frt.c.state != DONE).values(**values))
        if final:
            partial = [r[0] for r in conn.execute(select(fa.c.scan_id).where(
                fa.c.run_target_id == attempt.target.id, fa.c.scan_id.is_not(None)))]
            _delete_scans(conn, partial)
        state = conn.execute(select(frt.c.state).where(frt.c.id == attempt.target.id)).scalar_one()
        if final:
            _maybe_finish_run(conn, attempt.run.id, finished)
    return str(state)


# --- the run's combined report ----------------------------------------------------------------------


def combined_result(store: Store, run_id: int) -> ScanResult:
    """One :class:`ScanResult` of every finished target's scan (in inventory order), plus a failed
    collection record per failed or unfinished target — rendered by any reporter."""
    status = run_status(store, run_id)
    findings: list[Finding] = []
    targets: list[Target] = []
    details: dict[Target, Mapping[str, Any]] = {}
    oses: dict[Target, OsInventory] = {}
    records: list[CollectionRecord] = []
    checks_run = 0
    for t in status.targets:
        if t.state == DONE and t.scan_id is not None:
            scan = store.load(t.scan_id)
            findings += scan.findings
            targets += [x for x in scan.targets if x not in details]
            details.update(scan.details)
            oses.update(scan.os_inventories)
            records += scan.records
            checks_run = max(checks_run, scan.checks_run)
        else:
            what = "failed" if t.state == FAILED else f"not finished ({t.state})"
            records.append(CollectionRecord(
                source=t.key, what=f"fleet target ({t.kind})", ok=False,
                reason=f"{what} after {t.attempts} attempt{'s' if t.attempts != 1 else ''}"
                       + (f": {t.reason}" if t.reason else "")))
    run = status.run
    return ScanResult(source=f"fleet run #{run.id}: {run.source}", profile=run.options.profile,
                      started_at=run.created_at, finished_at=run.finished_at or _now(),
                      checks_run=checks_run, findings=tuple(findings), targets=tuple(targets),
                      details=details, os_inventories=oses, records=tuple(records),
                      counts=ScanCounts.of(findings))
