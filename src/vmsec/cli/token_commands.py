"""``vmsec token create|list|revoke``: API tokens (random, scoped, expiring; kept only as hashes)."""

from __future__ import annotations

import click

from vmsec.cli.service_options import TEXT, open_service, service_options
from vmsec.report.text import json_output, visible


@click.group("token")
def token() -> None:
    """Manage API tokens for the vmsec service's REST API."""


@token.command("create")
@click.option("--user", "user_name", type=TEXT, required=True, metavar="NAME",
              help="The user the token acts as.")
@click.option(
    "--scope",
    type=click.Choice(["read", "write"]),
    required=True,
    help="read: GET requests only; write: whatever the user's role allows.",
)
@click.option(
    "--expires",
    "days",
    type=click.IntRange(1, 365),
    default=90,
    show_default=True,
    metavar="DAYS",
    help="Days until the token expires.",
)
@click.option("--name", type=TEXT, default="cli", show_default=True,
              help="A label to recognise the token by.")
@service_options
def create(
    user_name: str, scope: str, days: int, name: str, store_url: str | None, key_file: str | None
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    from vmsec.service.core import cli_principal

    with open_service(store_url, key_file) as svc:
        secret, info = svc.accounts.create_token(user_name, scope, days, name, cli_principal())
    click.echo(
        f"token {info.id} for {user_name} ({scope}), expires {info.expires_at:%Y-%m-%d}; shown once:",
        err=True,
    )
    click.echo(secret)


@token.command("list")
@click.option("--user", "user_name", type=TEXT, default=None, metavar="NAME", help="Only this user's tokens.")
@click.option(
    "--format", "fmt", type=click.Choice(["terminal", "json"]), default="terminal", show_default=True
)
@service_options
def list_(user_name: str | None, fmt: str, store_url: str | None, key_file: str | None) -> None:
    """List tokens (their first characters, never the token)."""
    from vmsec.service.core import cli_principal

    with open_service(store_url, key_file) as svc:
        tokens = svc.accounts.list_tokens(cli_principal(), user_name)
        now = svc.now()
    if fmt == "json":
        click.echo(json_output([t.as_dict() for t in tokens]))
        return
    for t in tokens:
        state = "revoked" if t.revoked_at else "expired" if t.expires_at <= now else "active"
        click.echo(
            f"{t.id:>5} {t.user:<20} {t.scope:<5} {t.prefix}… {state:<8} expires {t.expires_at:%Y-%m-%d} "
            f"{visible(t.name)}"
        )


@token.command("revoke")
@click.argument("token_id", type=click.IntRange(1, 2**63 - 1))
@service_options
def revoke(token_id: int, store_url: str | None, key_file: str | None) -> None:
    """Revoke a token by its id (from 'vmsec token list')."""
    from vmsec.service.core import cli_principal

    with open_service(store_url, key_file) as svc:
        svc.accounts.revoke_token(token_id, cli_principal())
    click.echo(f"token {token_id} revoked", err=True)
