"""``vmsec history``, ``vmsec diff`` and ``vmsec report``: the scan history kept by the findings
store, and :func:`store_scan`, which the scan commands call to keep each scan.

The lead registers the commands on the ``cli`` group (``cli.add_command(history)`` …).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import click
from rich.console import Console
from rich.text import Text

from vmsec.cli import exitcodes
from vmsec.cli.options import ReportArgs, config_option, format_option, report_options, store_option
from vmsec.errors import ConfigError, StoreError
from vmsec.findings import Status
from vmsec.report import ReportOptions, make_reporter
from vmsec.report.compliance import compliance_format
from vmsec.report.text import json_output, visible
from vmsec.results import ScanResult
from vmsec.store.diff import Diff, DiffEntry
from vmsec.store.location import redact, resolve_url
from vmsec.store.store import ScanSummary, Store, StoreMissing, UnknownScan, open_store

_MAX_CELL = 300


def _die(message: str, code: int) -> None:
    click.echo(f"vmsec: error: {message}", err=True)
    sys.exit(code)


def _plain(value: str, limit: int = _MAX_CELL) -> str:
    """Stored text came from scanned machines: no control characters reach the terminal."""
    value = visible(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _open(url: str | None) -> Store:
    """The store at ``url``, for reading: never created (a missing one is a usage error naming it)."""
    try:
        return open_store(url, create=False)
    except StoreMissing as exc:
        _die(str(exc), exitcodes.USAGE)
        raise AssertionError("unreachable") from exc
    except StoreError as exc:
        _die(str(exc), exitcodes.INCOMPLETE)
        raise AssertionError("unreachable") from exc


def store_scan(result: ScanResult, url: str | None, enabled: bool) -> int | None:
    """Keep a finished ``result`` in the store (unless ``enabled`` is false); return its scan id.

    A store that cannot be written is a warning on standard error, not the end of the scan: the
    report is still written. ``None`` means the scan was not stored. (Scans run by the CLI stream
    into the store through the pipeline instead.)
    """
    if not enabled:
        return None
    try:
        with open_store(url) as store:
            scan_id = store.save(result)
    except StoreError as exc:
        click.echo(f"vmsec: warning: the scan was not stored: {exc}", err=True)
        return None
    return scan_id


# --- history ----------------------------------------------------------------------------------


def summary_dict(s: ScanSummary) -> dict[str, Any]:
    return {
        "id": s.id, "started_at": s.started_at.isoformat(),
        "finished_at": s.finished_at.isoformat() if s.finished_at else None,
        "source": s.source, "profile": s.profile, "state": s.state, "complete": s.complete,
        "tool_version": s.tool_version, "checks_run": s.checks_run,
        "targets": {"stored": s.targets_stored, "expected": s.targets_expected},
        "findings": {"stored": s.findings_stored, "expected": s.findings_expected},
        "by_status": dict(s.by_status), "failed_by_severity": dict(s.failed_by_severity),
    }


@click.command("history")
@store_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100_000),
              help="Show this many most recent scans.")
@format_option(["terminal", "json"])
@config_option
def history(store_url: str | None, limit: int, fmt: str) -> None:
    """List stored scans, newest first, with their finding counts (never creates a store)."""
    fmt = fmt.lower()
    try:
        store = open_store(store_url, create=False)
    except StoreMissing as exc:
        if fmt == "json":
            click.echo(json_output({"store": redact(resolve_url(store_url)), "scans": []}))
        else:
            click.echo(f"no scans stored: {_plain(str(exc))}")
        return
    except StoreError as exc:
        _die(str(exc), exitcodes.INCOMPLETE)
        return
    with store:
        try:
            summaries = store.scans(limit)
        except StoreError as exc:
            _die(str(exc), exitcodes.INCOMPLETE)
    if fmt == "json":
        click.echo(json_output({"store": redact(resolve_url(store_url)),
                                "scans": [summary_dict(s) for s in summaries]}))
        return
    if not summaries:
        click.echo(f"no scans stored in {_plain(redact(resolve_url(store_url)))}")
        return
    from vmsec.report.terminal import terminal_width, wrap

    width = terminal_width(sys.stdout)
    lines: list[str] = []
    for s in summaries:
        sev = s.failed_by_severity
        state = s.state
        if state == "interrupted":
            state += f" ({s.targets_stored} of {s.targets_expected} targets stored)"
        head = f"#{s.id}  {s.started_at.strftime('%Y-%m-%d %H:%M:%S')} UTC  {state}  "
        lines += wrap(_plain(f"{s.source} (profile {s.profile})", 200), width, head, "    ")
        counts = ", ".join(f"{sev.get(x, 0)} {x}" for x in ("critical", "high", "medium", "low", "info")
                           if sev.get(x, 0))
        fails = s.by_status.get("FAIL", 0)
        lines += wrap(f"{s.findings_stored} findings: {fails} FAIL" + (f" ({counts})" if counts else "")
                      + f", {s.by_status.get('UNKNOWN', 0)} UNKNOWN, {s.by_status.get('ERROR', 0)} ERROR, "
                      f"{s.by_status.get('WAIVED', 0)} WAIVED", width, "    ")
    click.echo("\n".join(lines))


# --- diff -------------------------------------------------------------------------------------

_CATEGORIES = (("new", "new"), ("fixed", "fixed"), ("still_open", "still open"),
               ("unknown", "unknown transitions"))


def _status(s: Status | None) -> str | None:
    return s.value if s is not None else None


def _entry_dict(e: DiffEntry) -> dict[str, Any]:
    return {"fingerprint": e.fingerprint, "check_id": e.check_id, "severity": e.severity.value,
            "subject": e.subject, "before": _status(e.before), "after": _status(e.after),
            "message": e.message}


def diff_dict(d: Diff) -> dict[str, Any]:
    return {
        "a": d.a, "b": d.b,
        "summary": {**{key: d.count(key) for key, _ in _CATEGORIES}, "unchanged": d.unchanged},
        "targets": [
            {"kind": t.target.kind.value, "name": t.target.name, "host": t.target.host,
             "in_a": t.in_a, "in_b": t.in_b,
             **{key: [_entry_dict(e) for e in getattr(t, key)] for key, _ in _CATEGORIES}}
            for t in d.targets],
    }


def _render_diff(d: Diff, out: TextIO, show_open: bool) -> None:
    console = Console(file=out, highlight=False, soft_wrap=True)
    console.print(Text(f"scan #{d.a} → scan #{d.b}: " + ", ".join(
        f"{d.count(key)} {label}" for key, label in _CATEGORIES), style="bold"))
    for t in d.targets:
        if not t.changed and not (show_open and t.still_open):
            continue
        where = f"{t.target.kind.value} {t.target.name}" + (f" @ {t.target.host}" if t.target.host else "")
        note = "" if t.in_a and t.in_b else (" (new target)" if t.in_b else f" (not in scan #{d.b})")
        console.print(Text(f"\n{_plain(where)}{note}: {len(t.new)} new, {len(t.fixed)} fixed, "
                           f"{len(t.still_open)} still open, {len(t.unknown)} unknown", style="bold"))
        for key, label in _CATEGORIES:
            if key == "still_open" and not show_open:
                continue
            for e in getattr(t, key):
                change = f"{_status(e.before) or '—'} → {_status(e.after) or '—'}"
                console.print(Text(f"  {label:<10} {e.severity.value:<8} {e.check_id} {_plain(e.subject, 80)}"
                                   f" [{change}]: {_plain(e.message)}"))


@click.command("diff")
@click.argument("a")
@click.argument("b")
@store_option
@format_option(["terminal", "json"])
@click.option("--show-open", is_flag=True, help="List the still-open findings too (terminal format).")
@config_option
def diff(a: str, b: str, store_url: str | None, fmt: str, show_open: bool) -> None:
    """What changed from scan A to scan B: new, fixed and still-open findings per target.

    A and B are scan ids from 'vmsec history', or 'latest' and 'previous'.
    """
    with _open(store_url) as store:
        try:
            result = store.diff(store.resolve(a), store.resolve(b))
        except StoreError as exc:
            _die(str(exc), exitcodes.USAGE if isinstance(exc, UnknownScan) else exitcodes.INCOMPLETE)
            return
    if fmt.lower() == "json":
        click.echo(json_output(diff_dict(result)))
    else:
        _render_diff(result, sys.stdout, show_open)


# --- report -----------------------------------------------------------------------------------


@click.command("report")
@click.argument("scan_ref", metavar="SCAN")
@report_options
def report(scan_ref: str, **opts: Any) -> None:
    """Re-render a stored scan (an id, 'latest' or 'previous') in any report format — the same
    report as the live scan gave. Never creates a store.

    Exits as the scan did: 3 when it was incomplete (or its storing was interrupted), 1 (or
    --exit-code) with --fail-on and a FAIL at or above that severity, else 0.
    """
    args = ReportArgs.pop(opts)
    with _open(args.store_url) as store:
        try:
            scan = store.load(store.resolve(scan_ref))
        except StoreError as exc:
            _die(str(exc), exitcodes.USAGE if isinstance(exc, UnknownScan) else exitcodes.INCOMPLETE)
            return
    if args.compliance:
        try:
            compliance_format(args.fmt)
        except ConfigError as exc:
            _die(str(exc), exitcodes.USAGE)
    scan = args.selection.apply(scan)
    reporter = make_reporter(args.fmt, ReportOptions(show_pass=args.show_pass, color=args.color))
    from vmsec.cli.scan_commands import open_report, render_result

    with open_report(args.output) as out:
        render_result(scan, reporter, args, out)
    if args.output:
        click.echo(f"report written to {args.output}", err=True)
    sys.exit(args.gate.exit_code_for(scan.counts.failed_by_severity, scan.complete))
