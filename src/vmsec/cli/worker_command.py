"""``vmsec worker``: a Celery worker that scans fleet targets (see :mod:`vmsec.fleet.tasks`)."""

from __future__ import annotations

import click

from vmsec.cli import exitcodes
from vmsec.cli.main import die
from vmsec.cli.options import Seconds


@click.command("worker")
@click.option("--broker", metavar="URL", required=True, help="The broker (redis://HOST:PORT/DB).")
@click.option("--store", "store_url", metavar="URL", default=None,
              help="The findings store (default: $VMSEC_STORE, else SQLite in the user data dir); the same "
                   "store as 'vmsec fleet scan' — PostgreSQL when workers run on several machines.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Tasks at once: 1 runs them in this process; more start prefork children.")
@click.option("--task-timeout", type=Seconds(1, 7 * 86400), default=900.0, show_default=True,
              metavar="SECONDS", help="Collection timeout per target (its scan then fails and is retried).")
@click.option("--visibility-timeout", type=Seconds(2, 7 * 86400), default=None, metavar="SECONDS",
              help="How long a task may stay unacknowledged before Redis hands it to another worker "
                   "(default: task timeout × 1.5 + 60; must be longer than the task timeout).")
@click.option("--scheduler", "scheduler_every", type=Seconds(0.2, 86400), default=None,
              metavar="SECONDS", help="Also start the scheduled scans that are due, checking this often.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve Prometheus metrics on this port (/metrics).")
@click.option("--metrics-address", default="127.0.0.1", show_default=True)
@click.option("--db", "db_path", type=click.Path(dir_okay=False),
              help="Vulnerability database for package matching (default: the user cache).")
@click.option("--hostname", "-n", default=None, help="Worker name (Celery's -n).")
@click.option("--loglevel", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), default="INFO",
              show_default=True)
def worker(broker: str, store_url: str | None, concurrency: int, task_timeout: float,
           visibility_timeout: float | None, scheduler_every: float | None, metrics_port: int | None,
           metrics_address: str, db_path: str | None, hostname: str | None, loglevel: str) -> None:
    """Scan fleet targets sent by 'vmsec fleet scan --broker URL' (one task per target), until stopped.

    Tasks are acknowledged late: a worker killed mid-task leaves its task to another worker after
    the visibility timeout, and the target is still stored once.
    """
    from vmsec.errors import ConfigError, StoreError
    from vmsec.fleet.tasks import WorkerSettings, run_worker
    from vmsec.store import open_store
    from vmsec.store.location import resolve_url

    url = resolve_url(store_url)
    settings = WorkerSettings(store_url=url, task_timeout=task_timeout,
                              visibility_timeout=visibility_timeout, advisory_db=db_path)
    metrics = None
    try:
        settings.visibility  # noqa: B018 - validates the two timeouts
        open_store(url).close()  # migrated and reachable before the first task
        if metrics_port is not None:
            from vmsec.metrics import Metrics

            metrics = Metrics()
            port = metrics.serve(metrics_port, metrics_address)
            click.echo(f"metrics on http://{metrics_address}:{port}/metrics", err=True)
        run_worker(broker, settings, concurrency=concurrency, hostname=hostname, loglevel=loglevel,
                   scheduler_every=scheduler_every, metrics=metrics)
    except ConfigError as exc:
        die(str(exc), exitcodes.USAGE)
    except StoreError as exc:
        die(str(exc), exitcodes.INCOMPLETE)
