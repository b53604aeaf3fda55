"""``vmsec db``: the local advisory database (import, update, status)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from vmsec.cli import exitcodes
from vmsec.errors import AdvisorySourceError
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
        click.echo(f"{info.name}: {info.records} records from {info.origin}")
    click.echo(f"database: {db_path or default_db_path()}")


@db_group.command("status")
@DB_OPTION
@click.option("--format", "fmt", type=click.Choice(["terminal", "json"]), default="terminal")
def db_status(db_path: str | None, fmt: str) -> None:
    """Sources, record counts and age; warns when the data is stale. Exit 3 when there is no database."""
    try:
        db = open_db(db_path)
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
        click.echo(json.dumps({"database": str(path), "sources": [
            {"name": s.name, "kind": s.kind, "origin": s.origin, "sha256": s.sha256,
             "imported_at": s.imported_at, "records": s.records, "age_days": round(s.age_days(now), 2),
             "stale": s.age_days(now) > STALE_AFTER_DAYS} for s in sources]}, indent=2))
        return
    click.echo(f"database: {path}")
    for s in sources:
        age = s.age_days(now)
        stale = "  STALE" if age > STALE_AFTER_DAYS else ""
        click.echo(f"  {s.name:<32} {s.records:>8} records  imported {s.imported_at} ({age:.1f} days){stale}")
    if any(s.age_days(now) > STALE_AFTER_DAYS for s in sources):
        click.echo(f"warning: some sources are older than {STALE_AFTER_DAYS} days: run 'vmsec db update'",
                   err=True)
