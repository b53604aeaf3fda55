"""``vmsec fleet …``: scan a whole inventory (in-process, or on Celery workers), follow a run, render
its combined report, and keep scheduled scans per group."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import click

from vmsec.cli import exitcodes
from vmsec.cli.main import die
from vmsec.cli.options import Seconds

if TYPE_CHECKING:
    from vmsec.fleet.runs import RunStatus
    from vmsec.results import ScanResult
    from vmsec.store import Store

FORMAT_CHOICES = ["csv", "cyclonedx", "html", "json", "junit", "markdown", "sarif", "terminal"]
SEVERITY_CHOICES = ["critical", "high", "medium", "low", "info"]


def _plain(value: str, limit: int = 300) -> str:
    """Stored text came from scanned machines: no control characters reach the terminal."""
    if not value.isprintable():
        value = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else "?" for c in value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _store(url: str | None) -> Store:
    from vmsec.errors import StoreError
    from vmsec.store import open_store

    try:
        return open_store(url)
    except StoreError as exc:
        die(str(exc), exitcodes.INCOMPLETE)
        raise AssertionError("unreachable") from exc


def _store_option(func: Any) -> Any:
    return click.option("--store", "store_url", metavar="URL", default=None,
                        help="Findings store URL (default: $VMSEC_STORE, else SQLite in the user data dir). "
                             "Workers and this command must use the same store.")(func)


@click.group("fleet")
def fleet() -> None:
    """Scan many targets (hypervisors, their guests, exported configurations) from an inventory."""


@fleet.command("scan")
@click.argument("inventory", type=click.Path(exists=True, dir_okay=False))
@click.option("--group", default=None, help="Scan only the targets of this inventory group.")
@click.option("--broker", metavar="URL", default=None,
              help="Send one task per target to Celery workers on this broker (redis://HOST:PORT/0). "
                   "Without it the scan runs in this process.")
@_store_option
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="terminal", show_default=True,
              help="Format of the run's combined report.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write the report to this file instead of standard output.")
@click.option("--no-wait", is_flag=True, help="With --broker: print the run number and return at once.")
@click.option("--wait-timeout", type=Seconds(1, 366 * 86400), default=None,
              metavar="SECONDS",
              help="Stop waiting for the workers after this long (exit 3; the run goes on).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="In-process: targets scanned at once.")
@click.option("--profile", default="multi-tenant", show_default=True,
              help="Built-in profile (multi-tenant, single-tenant) or a TOML file the workers can read.")
@click.option("--check", "check_ids", multiple=True, metavar="ID", help="Run only these checks (repeatable).")
@click.option("--attempts", type=click.IntRange(1, 20), default=None,
              help="Tries per target before it is marked failed (default: the inventory's, else 3).")
@click.option("--retry-delay", type=Seconds(0, 86400), default=2.0, show_default=True,
              metavar="SECONDS", help="Wait before the second try; doubled for each further try.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False),
              help="In-process: vulnerability database for package matching (default: the user cache).")
@click.option("--fail-on", type=click.Choice(SEVERITY_CHOICES), default=None,
              help="Exit 1 when a FAIL finding has this severity or worse.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on standard error.")
def fleet_scan(inventory: str, group: str | None, broker: str | None, store_url: str | None, fmt: str,
               output: str | None, no_wait: bool, wait_timeout: float | None, concurrency: int,
               profile: str, check_ids: tuple[str, ...], attempts: int | None, retry_delay: float,
               db_path: str | None, fail_on: str | None, quiet: bool) -> None:
    """Scan every target of INVENTORY (YAML) and render one combined report.

    Without --broker the targets are scanned in this process, --concurrency at once and at most the
    inventory's hypervisor_limit per hypervisor. With --broker each target is a task for the workers
    ('vmsec worker --broker URL --store URL'); the command waits for them (unless --no-wait), then
    loads the run's scans from the store and renders them. Exit codes as 'vmsec scan'; 3 also when
    a target failed.
    """
    from vmsec.errors import ConfigError, StoreError
    from vmsec.fleet.inventory import describe_targets, load_inventory
    from vmsec.fleet.runs import RunOptions, create_run

    if no_wait and not broker:
        die("--no-wait needs --broker (an in-process scan is over when the command returns)", exitcodes.USAGE)
    try:
        fleet_inventory = load_inventory(inventory).select(group)
        from vmsec.profiles import load_profile

        load_profile(profile)  # a bad profile is a usage error before anything is stored
        options = RunOptions(profile=profile, checks=check_ids,
                             attempts=attempts or fleet_inventory.attempts, retry_delay=retry_delay,
                             retry_delay_max=max(60.0, retry_delay))
        app = None
        if broker:
            from vmsec.fleet.tasks import make_app

            app = make_app(_broker_url(broker))
    except ConfigError as exc:
        die(str(exc), exitcodes.USAGE)
        return
    def say(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    store = _store(store_url)
    try:
        with store:
            run = create_run(store, fleet_inventory.targets, source=inventory,
                             mode="celery" if broker else "local", options=options, group=group)
            say(f"fleet run #{run.id}: {describe_targets(fleet_inventory.targets)}")
            if app is not None:
                from vmsec.fleet.tasks import send_run

                try:
                    send_run(app, run, [t.key for t in fleet_inventory.targets])
                except Exception as exc:  # kombu/redis connection errors have no common base here
                    die(f"cannot send the tasks to {_redacted(broker or '')}: {exc} (the run is kept: "
                        f"'vmsec fleet resume {run.id} --broker URL' sends them when the broker answers)",
                        exitcodes.INCOMPLETE)
                say(f"fleet run #{run.id}: sent to {_redacted(broker or '')}")
                if no_wait:
                    click.echo(run.id)
                    sys.exit(exitcodes.OK)
                if not _wait(store, run.id, wait_timeout, say):
                    die(f"fleet run #{run.id} did not finish within {wait_timeout:g} s "
                        f"(see 'vmsec fleet status {run.id}')", exitcodes.INCOMPLETE)
            else:
                from vmsec.fleet.runner import run_local

                def progress(outcome: Any) -> None:
                    if outcome.state != "skipped":
                        note = f": {_plain(outcome.reason, 200)}" if outcome.reason else ""
                        say(f"  {_plain(outcome.key, 120)}: {outcome.state} "
                            f"(attempt {outcome.attempt}){note}")

                run_local(store, run.id, concurrency=concurrency, advisory_db=db_path, progress=progress)
            _finish(store, run.id, fmt, output, fail_on)
    except StoreError as exc:
        die(str(exc), exitcodes.INCOMPLETE)


def _redacted(url: str) -> str:
    """The URL for a message: password hidden (also in a URL that does not parse), shown as text."""
    from vmsec.report.text import visible
    from vmsec.store.location import redact

    return visible(redact(url))


def _broker_url(url: str) -> str:
    """``url``, or :class:`ConfigError` when it does not parse (before anything is stored or sent)."""
    from urllib.parse import urlsplit

    from vmsec.errors import ConfigError

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError as exc:
        raise ConfigError(f"--broker {_redacted(url)}: not a URL ({exc})") from exc
    if not parts.scheme or not (parts.hostname or parts.path):
        raise ConfigError(f"--broker {_redacted(url)}: not a URL (e.g. redis://127.0.0.1:6379/0)")
    return url


def _wait(store: Store, run_id: int, timeout: float | None, say: Any) -> bool:
    from vmsec.fleet.runs import run_status

    deadline = time.monotonic() + timeout if timeout else None
    last = ""
    while True:
        status = run_status(store, run_id)
        counts = status.by_state
        line = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        if line != last:
            say(f"  {line}")
            last = line
        if status.finished:
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(0.25)


def _finish(store: Store, run_id: int, fmt: str, output: str | None, fail_on: str | None) -> None:
    from vmsec.fleet.runs import combined_result, run_status

    result = combined_result(store, run_id)
    _render(result, fmt, output)
    failed = [t for t in run_status(store, run_id).targets if t.state != "done"]
    for t in failed:
        click.echo(f"vmsec: warning: {_plain(t.key, 200)}: {t.state}"
                   + (f": {_plain(t.reason)}" if t.reason else ""), err=True)
    sys.exit(_exit_code(result, fail_on, bool(failed)))


def _render(result: ScanResult, fmt: str, output: str | None) -> None:
    from vmsec.checkinfo import packaged_index
    from vmsec.report import ReportOptions, make_reporter

    reporter = make_reporter(fmt, ReportOptions())
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                reporter.render(result, packaged_index(), fh)
        except OSError as exc:
            die(f"cannot write {output}: {exc.strerror or exc}", exitcodes.USAGE)
        click.echo(f"report written to {output}", err=True)
    else:
        reporter.render(result, packaged_index(), sys.stdout)


def _exit_code(result: ScanResult, fail_on: str | None, target_failed: bool) -> int:
    if fail_on is not None:
        worse = SEVERITY_CHOICES[: SEVERITY_CHOICES.index(fail_on) + 1]
        if any(result.counts.failed_by_severity.get(sev, 0) for sev in worse):
            return exitcodes.FINDINGS
    return exitcodes.OK if result.complete and not target_failed else exitcodes.INCOMPLETE


def _resolve(store: Store, ref: str) -> int:
    from vmsec.fleet.runs import UnknownRun, resolve_run

    try:
        return resolve_run(store, ref)
    except UnknownRun as exc:
        die(str(exc), exitcodes.USAGE)
        raise AssertionError("unreachable") from exc


@fleet.command("status")
@click.argument("run_ref", metavar="RUN", default="latest")
@_store_option
@click.option("--format", "fmt", type=click.Choice(["terminal", "json"]), default="terminal",
              show_default=True)
@click.option("--attempts", "show_attempts", is_flag=True, help="List every attempt of every target.")
def fleet_status(run_ref: str, store_url: str | None, fmt: str, show_attempts: bool) -> None:
    """Per-target state of a fleet run (a number, or 'latest'): queued, running, retrying, done or
    failed, with attempts, worker, duration and the reason of the last failure. Exits 0 when every
    target is done, 3 when one failed or the run is not finished."""
    from vmsec.fleet.runs import run_status
    from vmsec.report.text import json_output

    with _store(store_url) as store:
        status = run_status(store, _resolve(store, run_ref), with_attempts=show_attempts or fmt == "json")
    if fmt == "json":
        # Keys, reasons and sources came from scanned machines: no control character raw.
        click.echo(json_output(status_dict(status)))
    else:
        _print_status(status, show_attempts, sys.stdout)
    sys.exit(exitcodes.OK if status.finished and status.by_state["failed"] == 0 else exitcodes.INCOMPLETE)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def status_dict(status: RunStatus) -> dict[str, Any]:
    """The JSON form of ``fleet status`` (documented in docs/fleet.md)."""
    run = status.run
    return {
        "run": run.id, "source": run.source, "mode": run.mode, "status": run.status,
        "schedule": run.schedule, "group": run.group, "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at), "options": run.options.to_json(),
        "targets_by_state": status.by_state,
        "targets": [{
            "key": t.key, "kind": t.kind, "hypervisor": t.hypervisor, "groups": list(t.groups),
            "state": t.state, "attempts": t.attempts, "reason": t.reason, "scan_id": t.scan_id,
            "worker": t.worker, "started_at": _iso(t.started_at), "finished_at": _iso(t.finished_at),
            "duration_s": t.duration_s, "counts": t.counts,
            "attempt_log": [{"attempt": a["attempt"], "worker": a["worker"], "outcome": a["outcome"],
                             "reason": a["reason"], "started_at": _iso(a["started_at"]),
                             "finished_at": _iso(a["finished_at"])}
                            for a in status.attempts.get(t.id, ())],
        } for t in status.targets],
    }


def _print_status(status: RunStatus, show_attempts: bool, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out, highlight=False, width=None if out.isatty() else 200)
    run = status.run
    states = ", ".join(f"{n} {s}" for s, n in status.by_state.items() if n)
    console.print(Text(f"fleet run #{run.id} ({run.mode}, {run.status}): {_plain(run.source, 120)} "
                       f"— {states}", style="bold"))
    table = Table(box=None, header_style="bold")
    for col in ("Target", "Hypervisor", "State", "Attempts", "Worker", "Seconds", "FAIL c/h/m/l", "Reason"):
        table.add_column(col)
    colours = {"done": "green", "failed": "red", "retrying": "yellow", "running": "cyan"}
    for t in status.targets:
        sev = (t.counts or {}).get("failed_by_severity", {})
        table.add_row(Text(_plain(t.key, 60)), Text(_plain(t.hypervisor or "", 30)),
                      Text(t.state + ("" if (t.counts or {}).get("complete", True) else " (incomplete)"),
                           style=colours.get(t.state, "")), str(t.attempts),
                      Text(_plain(t.worker or "", 40)),
                      f"{t.duration_s:.2f}" if t.duration_s is not None else "",
                      "/".join(str(sev.get(x, 0)) for x in ("critical", "high", "medium", "low"))
                      if t.counts else "", Text(_plain(t.reason or "", 120)))
        if show_attempts:
            for a in status.attempts.get(t.id, ()):
                table.add_row("", "", Text(f"  #{a['attempt']} {a['outcome']}"), "",
                              Text(_plain(a["worker"] or "", 40)), "", "",
                              Text(_plain(a["reason"] or "", 120)))
    console.print(table)


@fleet.command("report")
@click.argument("run_ref", metavar="RUN", default="latest")
@_store_option
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="terminal", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True))
@click.option("--fail-on", type=click.Choice(SEVERITY_CHOICES), default=None)
def fleet_report(run_ref: str, store_url: str | None, fmt: str, output: str | None,
                 fail_on: str | None) -> None:
    """Render a fleet run's combined report (every finished target's scan) from the store."""
    with _store(store_url) as store:
        _finish(store, _resolve(store, run_ref), fmt, output, fail_on)


@fleet.command("runs")
@_store_option
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
def fleet_runs(store_url: str | None, limit: int) -> None:
    """List recent fleet runs with their targets by state."""
    from vmsec.fleet.runs import list_runs

    with _store(store_url) as store:
        for run, states in list_runs(store, limit):
            line = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
            click.echo(f"#{run.id}  {run.created_at:%Y-%m-%d %H:%M:%S}  {run.mode:<6} {run.status:<8} "
                       f"{_plain(run.source, 80)}  [{line}]")


@fleet.command("resume")
@click.argument("run_ref", metavar="RUN")
@click.option("--broker", metavar="URL", required=True, help="The workers' broker.")
@_store_option
def fleet_resume(run_ref: str, broker: str, store_url: str | None) -> None:
    """Send the tasks of a run's unfinished targets again (after a broker lost its queue). Safe to
    repeat: a target that finishes twice is stored once."""
    from vmsec.errors import ConfigError
    from vmsec.fleet.runs import run_status
    from vmsec.fleet.tasks import make_app, send_run

    with _store(store_url) as store:
        status = run_status(store, _resolve(store, run_ref))
    keys = [t.key for t in status.targets if not t.terminal]
    try:
        app = make_app(_broker_url(broker))
    except ConfigError as exc:
        die(str(exc), exitcodes.USAGE)
    try:
        send_run(app, status.run, keys)
    except Exception as exc:  # kombu/redis connection errors have no common base here
        die(f"cannot send the tasks to {_redacted(broker)}: {exc}", exitcodes.INCOMPLETE)
    click.echo(f"fleet run #{status.run.id}: {len(keys)} unfinished targets sent again", err=True)


# --- schedules ----------------------------------------------------------------------------------------


@fleet.group("schedule")
def schedule() -> None:
    """Scheduled fleet scans per group, started by workers run with --scheduler."""


@schedule.command("add")
@click.argument("name")
@click.argument("inventory", type=click.Path(exists=True, dir_okay=False))
@click.option("--group", default=None, help="Only this inventory group's targets.")
@click.option("--every", default=None, metavar="DURATION",
              help="Interval (90s, 15m, 6h, 1d); default: the group's 'every' in the inventory.")
@click.option("--profile", default="multi-tenant", show_default=True)
@click.option("--replace", is_flag=True, help="Replace a schedule of that name.")
@_store_option
def schedule_add(name: str, inventory: str, group: str | None, every: str | None, profile: str,
                 replace: bool, store_url: str | None) -> None:
    """Keep a scheduled scan NAME of INVENTORY (its document is stored: workers need no file)."""
    from vmsec.errors import ConfigError
    from vmsec.fleet.inventory import load_inventory, parse_duration
    from vmsec.fleet.runs import RunOptions
    from vmsec.fleet.schedules import add_schedule

    try:
        fleet_inventory = load_inventory(inventory)
        if every is not None:
            every_s = parse_duration(every, "--every")
        elif group is not None and group in fleet_inventory.groups and fleet_inventory.groups[group].every_s:
            every_s = int(fleet_inventory.groups[group].every_s or 0)
        else:
            raise ConfigError("--every is needed (or an 'every' for the group in the inventory)")
        with _store(store_url) as store:
            saved = add_schedule(store, name, fleet_inventory, every_s=every_s, group=group,
                                 options=RunOptions(profile=profile, attempts=fleet_inventory.attempts),
                                 replace=replace)
    except ConfigError as exc:
        die(str(exc), exitcodes.USAGE)
        return
    click.echo(f"schedule {saved.name}: every {saved.interval_s} s, "
               f"next at {saved.next_run_at:%Y-%m-%d %H:%M:%S} UTC", err=True)


@schedule.command("list")
@_store_option
def schedule_list(store_url: str | None) -> None:
    """List scheduled scans."""
    from vmsec.fleet.schedules import list_schedules

    with _store(store_url) as store:
        for s in list_schedules(store):
            click.echo(f"{_plain(s.name, 60)}  every {s.interval_s} s  group {_plain(s.group or '*', 40)}  "
                       f"next {s.next_run_at:%Y-%m-%d %H:%M:%S}  last run "
                       f"{'#' + str(s.last_run_id) if s.last_run_id else '-'}  {_plain(s.source, 80)}")


@schedule.command("remove")
@click.argument("name")
@_store_option
def schedule_remove(name: str, store_url: str | None) -> None:
    """Remove a scheduled scan."""
    from vmsec.errors import ConfigError
    from vmsec.fleet.inventory import schedule_name
    from vmsec.fleet.schedules import remove_schedule

    try:
        name = schedule_name(name)
    except ConfigError as exc:
        die(str(exc), exitcodes.USAGE)
    with _store(store_url) as store:
        if not remove_schedule(store, name):
            die(f"no schedule named {name!r}", exitcodes.USAGE)
