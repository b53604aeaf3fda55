"""``vmsec version`` (the tool, the advisory database's date, the store) and ``vmsec completion SHELL``
(the shell completion script for bash, zsh or fish)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from vmsec import __version__
from vmsec.cli import exitcodes
from vmsec.report.text import json_output, visible

SHELLS = ("bash", "zsh", "fish")


@click.command("version")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), envvar="VMSEC_DB",
              help="The advisory database to describe (default: the user cache).")
@click.option("--format", "fmt", type=click.Choice(["terminal", "json"], case_sensitive=False),
              default="terminal", show_default=True)
def version(db_path: str | None, fmt: str) -> None:
    """The vmsec version, Python, the advisory database (its newest import and each feed's date) and
    the findings store's location."""
    from vmsec.errors import VmsecError
    from vmsec.store.location import redact, resolve_url
    from vmsec.vulns.db import STALE_AFTER_DAYS, default_db_path, open_db

    info: dict[str, Any] = {"vmsec": __version__, "python": sys.version.split()[0],
                            "store": redact(resolve_url(None))}
    path = str(db_path or default_db_path())
    database: dict[str, Any] = {"path": path, "present": False, "updated_at": None, "sources": []}
    try:
        db = open_db(db_path)
    except VmsecError as exc:  # not a database, or a --db that names no file
        database["error"] = str(exc)
        db = None
    if db is not None:
        try:
            sources = db.sources()
        finally:
            db.close()
        now = datetime.now(UTC)
        database.update(present=True, updated_at=max((s.imported_at for s in sources), default=None),
                        stale=any(s.age_days(now) > STALE_AFTER_DAYS for s in sources),
                        sources=[{"name": s.name, "imported_at": s.imported_at, "records": s.records}
                                 for s in sources])
    info["advisory_database"] = database
    if fmt.lower() == "json":
        click.echo(json_output(info))
        return
    click.echo(f"vmsec {__version__} (Python {info['python']})")
    if database.get("error"):
        click.echo(f"advisory database: {visible(path)}: {visible(database['error'])}")
    elif not database["present"]:
        click.echo(f"advisory database: none at {visible(path)} "
                   "(run 'vmsec db update' or 'vmsec db import FILES')")
    else:
        stale = "; STALE: run 'vmsec db update'" if database.get("stale") else ""
        click.echo(f"advisory database: {visible(path)}, updated {database['updated_at']}{stale}")
        for s in database["sources"]:
            click.echo(f"  {visible(s['name'])}: {s['records']:,} records, imported {s['imported_at']}")
    click.echo(f"findings store: {visible(info['store'])}")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS, case_sensitive=False))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  eval "$(vmsec completion bash)"   (e.g. in ~/.bashrc)
    zsh:   eval "$(vmsec completion zsh)"    (e.g. in ~/.zshrc)
    fish:  vmsec completion fish > ~/.config/fish/completions/vmsec.fish
    """
    from click.shell_completion import get_completion_class

    from vmsec.cli.main import cli

    cls = get_completion_class(shell.lower())
    if cls is None:  # every listed shell has one in click
        click.echo(f"vmsec: error: no completion for {shell}", err=True)
        sys.exit(exitcodes.USAGE)
    click.echo(cls(cli, {}, "vmsec", "_VMSEC_COMPLETE").source())
