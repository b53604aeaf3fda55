"""The Celery side of fleet scans: the app, the one task (scan one run target), and the worker.

Reliability, as configured here:

- **late acknowledgement**: a task's message is acknowledged when the task has finished, so a worker
  killed mid-task (SIGKILL, OOM, power) leaves it unacknowledged; Redis gives it to another worker
  once the **visibility timeout** has passed. That timeout is kept above the longest task (the
  per-task timeout plus a margin; checked), so a slow task is never handed out twice;
  ``task_reject_on_worker_lost`` requeues at once when a prefork child dies;
- **idempotent writes**: a task that runs twice finds its (run, target) row; its scan replaces the
  other attempt's atomically (:mod:`vmsec.fleet.runs`);
- **per-task timeout**: the target's collection deadline (``ScanOptions.timeout``), in every pool;
  with ``--concurrency`` above 1 (prefork) also Celery's hard time limit;
- **retries with backoff**: a failing target is tried again (``attempts``, delays doubling from
  ``retry_delay``) and then marked failed with its reason; a store that cannot be written is retried
  too, never acknowledged as done;
- **per-hypervisor caps**: a task takes a lease on its target's hypervisor first
  (:mod:`vmsec.fleet.leases`); when the hypervisor already has ``hypervisor_limit`` scans running the
  task is put back with a short delay, without counting as an attempt.

celery, kombu and redis are the ``fleet`` extra, imported only here.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vmsec.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from celery import Celery

    from vmsec.fleet.runs import RunRow
    from vmsec.metrics import Metrics
    from vmsec.store import Store

TASK_NAME = "vmsec.fleet.scan_target"
QUEUE = "vmsec-fleet"
INSTALL_HINT = "fleet scans on workers need the 'fleet' extra: pip install 'vmsec[fleet]'"
log = logging.getLogger("vmsec.fleet")

__all__ = ["QUEUE", "TASK_NAME", "WorkerSettings", "make_app", "run_worker", "send_run"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    """How a worker scans. ``visibility_timeout`` None: ``task_timeout`` × 1.5 + 60 s."""

    store_url: str
    task_timeout: float = 900.0
    visibility_timeout: float | None = None
    advisory_db: str | None = None
    throttle_delay: float = 1.0  # seconds before a task throttled by its hypervisor's cap is retried

    @property
    def visibility(self) -> float:
        value = self.visibility_timeout if self.visibility_timeout is not None else \
            self.task_timeout * 1.5 + 60
        if value <= self.task_timeout:
            raise ConfigError(f"the visibility timeout ({value:g} s) must be longer than the task timeout "
                              f"({self.task_timeout:g} s), or a slow task is handed to a second worker")
        return value


def _celery() -> Any:
    try:
        import celery
    except ImportError as exc:
        raise ConfigError(INSTALL_HINT) from exc
    return celery


def make_app(broker: str, *, visibility_timeout: float = 3600.0) -> Celery:
    """A Celery app on ``broker`` (redis://…), configured as the module docstring says."""
    celery = _celery()
    app = celery.Celery("vmsec", broker=broker, set_as_current=False)
    restore_every = max(1, min(10, int(visibility_timeout // 4)))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,  # a worker holds one task it is not running, not a batch
        task_ignore_result=True,  # the store is the result backend: states, attempts, scans
        task_default_queue=QUEUE,
        task_serializer="json", accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            # Look for abandoned messages often enough for the timeout to mean what it says.
            "unacked_restore_interval": restore_every, "unacked_restore_throttle": 1,
        },
    )
    return app


def send_run(app: Celery, run: RunRow, keys: Sequence[str]) -> None:
    """One task per target key of ``run``."""
    for key in keys:
        app.send_task(TASK_NAME, args=[run.id, key, run.token], queue=QUEUE)


# --- the worker ---------------------------------------------------------------------------------------


class _WorkerState:
    """What a worker process keeps between tasks (opened lazily, once per process: prefork children
    must not share the parent's database connections)."""

    def __init__(self, broker: str, settings: WorkerSettings, metrics: Metrics | None) -> None:
        self.broker = broker
        self.settings = settings
        self.metrics = metrics
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._pid = -1
        self._store: Store | None = None
        self._leases: Any = None
        self._lock = threading.Lock()

    def store(self) -> Store:
        self._reset_after_fork()
        if self._store is None:
            from vmsec.store import open_store

            self._store = open_store(self.settings.store_url)
        return self._store

    def leases(self) -> Any:
        self._reset_after_fork()
        if self._leases is None and self.broker.startswith(("redis://", "rediss://", "redis+socket://")):
            from vmsec.fleet.leases import HypervisorLeases

            url = self.broker.replace("redis+socket://", "unix://", 1)
            self._leases = HypervisorLeases(url, ttl=self.settings.visibility)
        return self._leases

    def _reset_after_fork(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self.name = f"{socket.gethostname()}:{self._pid}"
                self._store = None
                self._leases = None


def _register(app: Celery, state: _WorkerState) -> None:
    settings = state.settings

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True,  # type: ignore[untyped-decorator]
              max_retries=None)
    def scan_target(task: Any, run_id: int, key: str, token: str) -> dict[str, Any]:
        from vmsec.fleet.runner import scan_run_target
        from vmsec.fleet.runs import UnknownRun, get_target

        try:
            store = state.store()
            try:
                _run, target = get_target(store, run_id, key, token)
            except UnknownRun as exc:
                log.error("task for run #%s target %r refused: %s", run_id, key, exc)
                return {"state": "refused", "reason": str(exc)}
            if target.terminal:
                return {"state": "skipped", "key": key}
            leases = state.leases() if target.hypervisor and target.hypervisor_limit else None
            holder = f"{run_id}:{key}:{task.request.id}"
            if leases is not None and not leases.acquire(target.hypervisor, target.hypervisor_limit, holder):
                if state.metrics is not None:
                    state.metrics.scans.labels("fleet-target", "throttled").inc()
                raise task.retry(countdown=settings.throttle_delay * random.uniform(0.5, 1.5))
            try:
                outcome = scan_run_target(store, run_id, key, worker=state.name, token=token,
                                          advisory_db=settings.advisory_db, on_batch=_batch_hook(state),
                                          default_timeout=settings.task_timeout)
            finally:
                if leases is not None:
                    leases.release(target.hypervisor, holder)
        except StoreError as exc:
            # Nothing was recorded as done: the task must run again, not be acknowledged as finished.
            log.warning("run #%s target %r: the store failed (%s); retrying", run_id, key, exc)
            raise task.retry(countdown=5 * random.uniform(0.8, 1.2)) from exc
        _record(state, outcome)
        if outcome.state == "retry":
            log.info("run #%s target %r: attempt %s failed (%s); retrying in %.1f s", run_id, key,
                     outcome.attempt, outcome.reason, outcome.retry_in or 0)
            raise task.retry(countdown=outcome.retry_in or 0)
        return {"state": outcome.state, "key": key, "attempt": outcome.attempt, "reason": outcome.reason}

    del scan_target


def _batch_hook(state: _WorkerState) -> Any:
    metrics = state.metrics
    if metrics is None:
        return None
    from vmsec.metrics import fail_counts

    def hook(run_target: Any, target: Any, findings: Any) -> None:
        vm = "" if target.kind.value == "host" else target.name
        host = target.host or (target.name if target.kind.value == "host" else run_target.key)
        metrics.set_findings(host, vm, fail_counts(findings))

    return hook


def _record(state: _WorkerState, outcome: Any) -> None:
    metrics = state.metrics
    if metrics is None:
        return
    import time

    metrics.scans.labels("fleet-target", outcome.state).inc()
    if outcome.state in ("done", "failed", "retry"):
        metrics.scan_duration.labels("fleet-target").observe(outcome.duration_s)
    if outcome.state == "done":
        metrics.last_success.labels(outcome.key[:200]).set(time.time())


def worker_app(broker: str, settings: WorkerSettings, metrics: Metrics | None = None) -> Celery:
    """The app a worker runs: :func:`make_app` plus the task and the worker's own limits."""
    app = make_app(broker, visibility_timeout=settings.visibility)
    # Prefork children are killed at the hard limit; the collection deadline comes first.
    app.conf.update(task_time_limit=settings.task_timeout + 60,
                    task_soft_time_limit=settings.task_timeout + 30)
    _register(app, _WorkerState(broker, settings, metrics))
    return app


def run_worker(broker: str, settings: WorkerSettings, *, concurrency: int = 1, hostname: str | None = None,
               loglevel: str = "INFO", scheduler_every: float | None = None,
               metrics: Metrics | None = None) -> None:
    """Run a worker until it is stopped (SIGTERM/SIGINT: warm shutdown). ``concurrency`` 1 runs
    tasks in this process (the solo pool); more start that many prefork children.
    ``scheduler_every``: also claim due schedules every so many seconds and start their runs."""
    app = worker_app(broker, settings, metrics)
    argv = ["worker", f"--loglevel={loglevel}", "-Q", QUEUE, "--without-gossip", "--without-mingle",
            f"--concurrency={concurrency}", f"--pool={'solo' if concurrency == 1 else 'prefork'}"]
    if hostname:
        argv += ["-n", hostname]
    stop = threading.Event()
    if scheduler_every:
        threading.Thread(target=_scheduler_loop, args=(app, settings, scheduler_every, stop),
                         name="vmsec-scheduler", daemon=True).start()
    try:
        app.worker_main(argv)
    finally:
        stop.set()


def _scheduler_loop(app: Celery, settings: WorkerSettings, every: float, stop: threading.Event) -> None:
    from vmsec.fleet.schedules import claim_due, start_run
    from vmsec.store import open_store

    store = None
    while not stop.wait(every):
        try:
            store = store or open_store(settings.store_url)
            for schedule in claim_due(store):
                run = start_run(store, schedule, mode="celery")
                send_run(app, run, [t.key for t in run_targets(store, run.id)])
                log.info("schedule %s: started fleet run #%s (%s targets)", schedule.name, run.id,
                         run.targets_total)
        except Exception as exc:  # the scheduler must outlive a store or broker outage
            log.warning("scheduler: %s: %s", type(exc).__name__, exc)


def run_targets(store: Store, run_id: int) -> Sequence[Any]:
    from vmsec.fleet.runs import run_status

    return run_status(store, run_id).targets
