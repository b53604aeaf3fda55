"""``vmsec audit verify``: check the service's audit log chain and checkpoints."""

from __future__ import annotations

import sys

import click

from vmsec.cli import exitcodes
from vmsec.cli.service_options import open_service, service_options


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
