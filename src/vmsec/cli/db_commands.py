"""``vmsec db``: the local advisory database (import, update, status)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console

from vmsec.cli import exitcodes
from vmsec.cli.options import Seconds
from vmsec.errors import AdvisorySourceError, ConfigError
from vmsec.report.text import json_output, visible
from vmsec.vulns.db import STALE_AFTER_DAYS, default_db_path, import_feeds, open_db

DB_OPTION = click.option("--db", "db_path", type=click.Path(dir_okay=False),
                         help=f"Advisory database file (default: {default_db_path()}).")


@click.group("db")
def db_group() -> None:
    """The local vulnerability database (OSV, Debian tracker, Alpine secdb, CISA KEV, EPSS)."""


@db_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@DB_OPTION
def db_import(files: tuple[str, ...], db_path: str | None) -> None:
    """Import feed files from disk (air-gapped hosts): the same files `db update` downloads —
    OSV all.zip dumps, the Debian tracker JSON, Alpine secdb JSON, the KEV JSON, EPSS CSV(.gz)."""
    try:
        payload = [(f, Path(f).read_bytes()) for f in files]
        imported = import_feeds(payload, db_path)
    except (AdvisorySourceError, OSError) as exc:
        click.echo(f"vmsec: error: {exc}", err=True)
        click.echo("vmsec: the database was left unchanged", err=True)
        sys.exit(exitcodes.USAGE if isinstance(exc, OSError) else exitcodes.INCOMPLETE)
    for info in imported:
        click.echo(f"{visible(info.name)}: {info.records} records from {visible(info.origin)}")
    click.echo(f"database: {visible(db_path or default_db_path())}")


@db_group.command("update")
@DB_OPTION
@click.option("--feed", "feeds", multiple=True, metavar="NAME",
              help="Only these feeds (repeatable); see 'vmsec db feeds'.")
@click.option("--mirror", metavar="URL", help="Download every feed as URL/<feed name> (a local mirror).")
@click.option("--timeout", type=Seconds(0, 3600, min_open=True), default=60.0,
              show_default=True, help="Seconds per request.")
@click.option("--retries", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Attempts per feed.")
def db_update(db_path: str | None, feeds: tuple[str, ...], mirror: str | None, timeout: float,
              retries: int) -> None:
    """Download the advisory feeds, verify them and swap the database atomically. A failed update
    leaves the existing database untouched."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from vmsec.vulns.update import FEEDS, update

    if mirror is not None and not mirror.startswith(("https://", "http://", "file://")):
        click.echo(f"vmsec: error: --mirror {mirror}: not a URL (give https://…, http://… or file:///DIR)",
                   err=True)
        sys.exit(exitcodes.USAGE)
    unknown = [f for f in feeds if f not in FEEDS]
    if unknown:
        click.echo(f"vmsec: error: unknown feed(s) {', '.join(unknown)}; known: {', '.join(FEEDS)}", err=True)
        sys.exit(exitcodes.USAGE)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  console=Console(stderr=True), transient=True,
                  disable=not Console(stderr=True).is_terminal) as bar:
        tasks: dict[str, object] = {}

        def hook(name: str, got: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=got, total=total)  # type: ignore[arg-type]

        try:
            imported = update(db_path, feeds=list(feeds) or None, mirror=mirror, timeout=timeout,
                              retries=retries, progress=hook)
        except AdvisorySourceError as exc:
            click.echo(f"vmsec: error: {exc}", err=True)
            click.echo("vmsec: the database was left unchanged", err=True)
            sys.exit(exitcodes.INCOMPLETE)
    for info in imported:
        click.echo(f"{visible(info.name)}: {info.records} records")
    click.echo(f"database: {visible(db_path or default_db_path())}")


@db_group.command("feeds")
def db_feeds() -> None:
    """List the feeds `db update` downloads."""
    from vmsec.vulns.update import FEEDS

    for feed in FEEDS.values():
        click.echo(f"{feed.name:<40} {feed.url}")


@db_group.command("status")
@DB_OPTION
@click.option("--format", "fmt", type=click.Choice(["terminal", "json"]), default="terminal")
def db_status(db_path: str | None, fmt: str) -> None:
    """Sources, record counts and the age of their data, by the newest date the feed's own records
    carry (the import time only for feeds without dates); warns when the data is stale. Exit 3 when
    there is no default database, 2 when a --db path does not exist."""
    try:
        db = open_db(db_path)
    except ConfigError as exc:
        click.echo(f"vmsec: error: {exc}", err=True)
        sys.exit(exitcodes.USAGE)
    except AdvisorySourceError as exc:
        click.echo(f"vmsec: error: {exc}", err=True)
        sys.exit(exitcodes.INCOMPLETE)
    path = db_path or default_db_path()
    if db is None:
        click.echo(f"no vulnerability database at {path}: run 'vmsec db update' or 'vmsec db import FILES'",
                   err=True)
        sys.exit(exitcodes.INCOMPLETE)
    now = datetime.now(UTC)
    sources = db.sources()
    if fmt == "json":
        click.echo(json_output({"database": str(path), "sources": [
            {"name": s.name, "kind": s.kind, "origin": s.origin, "sha256": s.sha256,
             "imported_at": s.imported_at, "data_date": s.data_date, "dated_by": s.dated_by,
             "records": s.records, "age_days": round(s.age_days(now), 2),
             "stale": s.age_days(now) > STALE_AFTER_DAYS} for s in sources]}))
        return
    click.echo(f"database: {visible(path)}")
    for s in sources:
        age = s.age_days(now)
        stale = "  STALE" if age > STALE_AFTER_DAYS else ""
        dated = f"data of {s.data_date}" if s.data_date else "no dates in the feed: aged by import"
        click.echo(f"  {visible(s.name):<32} {s.records:>8} records  {dated}, imported {s.imported_at} "
                   f"({age:.1f} days){stale}")
    if any(s.age_days(now) > STALE_AFTER_DAYS for s in sources):
        click.echo(f"warning: some sources are older than {STALE_AFTER_DAYS} days: run 'vmsec db update'",
                   err=True)
