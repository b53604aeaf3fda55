"""Scanning fleet targets: one run target through :func:`vmsec.pipeline.scan` (what a Celery task does),
and a whole run in-process under a concurrency bound (``vmsec fleet scan`` without ``--broker``).

A target's scan goes into the store through a :class:`~vmsec.store.writer.StoreSink` that this module
wraps: it records the scan id with the attempt before any finding is written (so a partial scan of a
killed attempt can be found and deleted), and reports the target's domains, guests and networks
under its hypervisor (the inventory's ``hypervisor``, else the target's key when the collector knew
no host), so that two hypervisors' ``web01`` stay two targets in the run's combined report.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from vmsec.errors import ConfigError, StoreError
from vmsec.findings import Finding, Target, TargetKind
from vmsec.fleet.runs import (
    DONE,
    FAILED,
    Attempt,
    RunTarget,
    fail_attempt,
    finish_attempt,
    run_status,
    start_attempt,
)
from vmsec.pipeline import ScanHeader
from vmsec.results import OsInventory, ScanCounts, ScanResult, TargetBatch
from vmsec.store import Store
from vmsec.store.writer import StoreSink

# Called with each scanned target's findings (metrics): (run target, target, findings).
BatchHook = Callable[[RunTarget, Target, list[Finding]], None]

__all__ = ["BatchHook", "TargetOutcome", "backoff", "run_local", "scan_run_target"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetOutcome:
    """What one call of :func:`scan_run_target` did.

    ``state``: ``done`` (scanned and stored), ``superseded`` (scanned, but another attempt had
    finished first: this scan was deleted), ``retry`` (failed; try again in ``retry_in`` seconds),
    ``failed`` (failed for good), ``skipped`` (the target was already finished)."""

    state: str
    key: str
    attempt: int = 0
    reason: str | None = None
    retry_in: float | None = None
    scan_id: int | None = None
    duration_s: float = 0.0
    counts: ScanCounts | None = None


def backoff(attempt: int, first: float, most: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``first`` doubled per attempt,
    at most ``most``, with ±20 % jitter so retries of many targets do not arrive together."""
    base = min(most, first * (2 ** max(0, attempt - 1)))
    jitter: float = (rng or random).uniform(0.8, 1.2)
    return float(round(base * jitter, 3))


def qualify(target: Target, hypervisor: str | None, fallback: str | None = None) -> Target:
    """The target as the run reports it: domains, guests and networks under ``hypervisor``, or under
    ``fallback`` (the run target's key) when the collector knew no host."""
    if target.kind is TargetKind.HOST:
        return target
    host = hypervisor or (fallback if target.host is None else None)
    if host is None or target.host == host:
        return target
    return Target(target.kind, target.name, host)


class _AttemptSink:
    """The store sink of one attempt (see the module docstring)."""

    def __init__(self, store: Store, attempt: Attempt, on_batch: BatchHook | None) -> None:
        self.inner = StoreSink.into(store, background=True)
        self.store = store
        self.attempt = attempt
        self.hypervisor = attempt.target.hypervisor
        self.fallback = attempt.target.key
        self.on_batch = on_batch
        # The scan id is recorded with the attempt in the transaction that creates the scan: a worker
        # killed at any moment leaves either no scan or one its attempt names (deleted later).
        self.inner.on_begin.append(
            ("UPDATE fleet_attempts SET scan_id = ? WHERE id = ?", lambda scan_id: (scan_id, attempt.id)))

    @property
    def scan_id(self) -> int | None:
        return self.inner.scan_id

    def begin(self, header: ScanHeader) -> None:
        self.inner.begin(header)

    def add(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None) -> None:
        target = qualify(batch.target, self.hypervisor, self.fallback)
        if target is not batch.target:
            batch = TargetBatch(target, [f._replace(target=target) for f in batch.findings])
        if self.on_batch is not None:
            self.on_batch(self.attempt.target, batch.target, batch.findings)
        self.inner.add(batch, details, os)

    def end(self, result: ScanResult) -> None:
        self.inner.end(result)

    def close(self) -> None:
        self.inner.close()


def scan_run_target(store: Store, run_id: int, key: str, *, worker: str, token: str | None = None,
                    advisory_db: str | None = None, on_batch: BatchHook | None = None,
                    default_timeout: float | None = None) -> TargetOutcome:
    """Scan one target of a run, once: start an attempt, scan, and finish or fail it (idempotent —
    see :mod:`vmsec.fleet.runs`). Never raises for a failing target: the outcome says what to do;
    a store that cannot be written raises :class:`StoreError` (the task is then retried by its
    queue)."""
    from vmsec.pipeline import ScanOptions, scan
    from vmsec.specs import spec_from_mapping

    attempt = start_attempt(store, run_id, key, worker=worker, token=token)
    if attempt is None:
        return TargetOutcome(state="skipped", key=key)
    target, options = attempt.target, attempt.run.options
    began = time.monotonic()
    sink = _AttemptSink(store, attempt, on_batch)
    try:
        spec = spec_from_mapping(target.spec, f"fleet target {key!r}")
        result = scan([spec], ScanOptions(
            profile=options.profile, checks=options.checks, advisory_db=advisory_db, sinks=(sink,),
            keep_findings=False, timeout=target.timeout_s or default_timeout))
    except ConfigError as exc:
        sink.close()  # the entry or the run's options are wrong: trying again cannot help
        return _failed(store, attempt, str(exc), final=True, began=began)
    except StoreError:
        sink.close()
        raise
    except Exception as exc:  # unreachable, timed out, a collector crash: tried again with backoff
        sink.close()
        reason = str(exc) or type(exc).__name__
        if not isinstance(exc, OSError | ValueError) and type(exc).__module__ != "vmsec.errors":
            reason = f"{type(exc).__name__}: {reason}"
        final = attempt.number >= options.attempts
        return _failed(store, attempt, reason, final=final, began=began)
    sink.close()
    duration = time.monotonic() - began
    if sink.scan_id is None:  # pragma: no cover - the pipeline always begins its sinks
        return _failed(store, attempt, "the scan was not stored", final=True, began=began)
    won = finish_attempt(store, attempt, sink.scan_id, counts=result.counts, duration_s=duration,
                         complete=result.complete)
    return TargetOutcome(state=DONE if won else "superseded", key=key, attempt=attempt.number,
                         scan_id=sink.scan_id if won else None, duration_s=duration, counts=result.counts)


def _failed(store: Store, attempt: Attempt, reason: str, *, final: bool, began: float) -> TargetOutcome:
    state = fail_attempt(store, attempt, reason, final=final)
    options = attempt.run.options
    if state == DONE:  # another attempt finished meanwhile
        return TargetOutcome(state="superseded", key=attempt.target.key, attempt=attempt.number)
    if state == FAILED:
        return TargetOutcome(state=FAILED, key=attempt.target.key, attempt=attempt.number, reason=reason,
                             duration_s=time.monotonic() - began)
    return TargetOutcome(state="retry", key=attempt.target.key, attempt=attempt.number, reason=reason,
                         retry_in=backoff(attempt.number, options.retry_delay, options.retry_delay_max),
                         duration_s=time.monotonic() - began)


def run_local(store: Store, run_id: int, *, concurrency: int = 4, worker: str = "local",
              advisory_db: str | None = None, progress: Callable[[TargetOutcome], None] | None = None,
              on_batch: BatchHook | None = None, stop: threading.Event | None = None) -> None:
    """Scan every unfinished target of a run in this process: at most ``concurrency`` at once and at
    most each target's ``hypervisor_limit`` per hypervisor, retrying with backoff."""
    status = run_status(store, run_id)
    pending = [t for t in status.targets if not t.terminal]
    caps: dict[str, threading.BoundedSemaphore] = {}
    for t in pending:
        if t.hypervisor and t.hypervisor not in caps:
            caps[t.hypervisor] = threading.BoundedSemaphore(t.hypervisor_limit or concurrency)
    stop = stop or threading.Event()

    def one(target: RunTarget) -> None:
        cap = caps.get(target.hypervisor) if target.hypervisor else None
        while not stop.is_set():
            if cap is not None:
                cap.acquire()
            try:
                outcome = scan_run_target(store, run_id, target.key, worker=worker,
                                          token=status.run.token, advisory_db=advisory_db, on_batch=on_batch)
            finally:
                if cap is not None:
                    cap.release()
            if progress is not None:
                progress(outcome)
            if outcome.state != "retry":
                return
            stop.wait(outcome.retry_in or 0)

    # Round-robin over hypervisors, so the first workers do not all wait on one host's cap.
    by_host: dict[str | None, list[RunTarget]] = {}
    for t in pending:
        by_host.setdefault(t.hypervisor, []).append(t)
    order: list[RunTarget] = []
    while by_host:
        for host in list(by_host):
            order.append(by_host[host].pop(0))
            if not by_host[host]:
                del by_host[host]
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="vmsec-fleet") as pool:
        for future in [pool.submit(one, t) for t in order]:
            future.result()
