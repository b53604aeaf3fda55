"""``vmsec audit verify``: check the service's audit log chain and checkpoints."""

from __future__ import annotations

import sys

import click

from vmsec.cli import exitcodes
from vmsec.cli.service_options import TEXT, open_service, service_options
from vmsec.report.text import json_output


@click.group("audit")
def audit() -> None:
    """The vmsec service's tamper-evident audit log."""


@audit.command("verify")
@service_options
def verify(store_url: str | None, key_file: str | None) -> None:
    """Verify the audit log: exit 0 when every entry, link and checkpoint is intact; exit 1 naming the
    first broken entry (altered, deleted, reordered or inserted)."""
    from vmsec.service.audit import verify as verify_chain

    with open_service(store_url, key_file) as svc:
        result = verify_chain(svc.engine, svc.keys)
    if result.ok:
        click.echo(result.message())
        sys.exit(exitcodes.OK)
    click.echo(f"vmsec: {result.message()}", err=True)
    sys.exit(exitcodes.FINDINGS)


@audit.command("list")
@click.option(
    "--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="Newest entries to show."
)
@click.option(
    "--action", type=TEXT, default=None, metavar="ACTION",
    help="Only this action (login.password, token.auth …)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["terminal", "json"]), default="terminal", show_default=True
)
@service_options
def list_(limit: int, action: str | None, fmt: str, store_url: str | None, key_file: str | None) -> None:
    """Show the newest audit entries of every group — and those of no group (sign-ins with unknown
    user names, unknown tokens), which only the host's administrator sees."""

    from vmsec.service.core import cli_principal

    with open_service(store_url, key_file) as svc:
        entries, _ = svc.queries.audit(cli_principal(), limit=limit, action=action)
    if fmt == "json":
        click.echo(json_output(entries, default=str))
        return
    for e in entries:
        click.echo(
            f"{e['id']:>8} {e['ts']:%Y-%m-%d %H:%M:%S} {e['outcome']:<8} {e['action']:<18} "
            f"{e['actor']} → {e['target']}" + (f" from {e['remote']}" if e["remote"] else "")
        )
