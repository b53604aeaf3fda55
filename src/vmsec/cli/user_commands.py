"""``vmsec user add|list|disable|reset-mfa``: the service's accounts, managed from the host."""

from __future__ import annotations

import sys

import click

from vmsec.cli.service_options import TEXT, _die, open_service, service_options
from vmsec.report.text import json_output


@click.group("user")
def user() -> None:
    """Manage the accounts of the vmsec service (the dashboard and the API)."""


def _show_enrolment(uri: str | None, codes: tuple[str, ...]) -> None:
    if uri:
        click.echo("Add this to an authenticator app (TOTP) — shown once:")
        click.echo(uri)
        click.echo("Recovery codes (each works once; store them offline):")
        for code in codes:
            click.echo(f"  {code}")


@user.command("add")
@click.argument("name", type=TEXT)
@click.option(
    "--role",
    type=click.Choice(["viewer", "auditor", "operator", "admin"]),
    required=True,
    help="viewer: read; auditor: read, export, audit log; operator: start scans, propose waivers; "
    "admin: everything.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    required=True,
    help="Read the password from the first line of standard input (never from the command line).",
)
@click.option(
    "--group",
    "groups",
    type=TEXT,
    multiple=True,
    metavar="GROUP",
    help="A group (tenant / host group) the user belongs to; repeatable (default: default).",
)
@service_options
def add(
    name: str,
    role: str,
    password_stdin: bool,
    groups: tuple[str, ...],
    store_url: str | None,
    key_file: str | None,
) -> None:
    """Add a user. Operators and admins must use TOTP: their otpauth:// URI and recovery codes are
    printed once."""
    from vmsec.service.core import cli_principal

    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _die("no password on standard input", 2)
    with open_service(store_url, key_file) as svc:
        enrolment = svc.accounts.add_user(name, role, password, list(groups) or ["default"], cli_principal())
    click.echo(f"user {name} added ({role})", err=True)
    _show_enrolment(enrolment.otpauth_uri, enrolment.recovery_codes)


@user.command("list")
@click.option(
    "--format", "fmt", type=click.Choice(["terminal", "json"]), default="terminal", show_default=True
)
@service_options
def list_(fmt: str, store_url: str | None, key_file: str | None) -> None:
    """List users: role, groups, second factors, state."""
    from vmsec.service.core import cli_principal

    with open_service(store_url, key_file) as svc:
        users = svc.accounts.list_users(cli_principal())
    if fmt == "json":
        click.echo(json_output([u.as_dict() for u in users]))
        return
    for u in users:
        factors = "+".join(
            x for x in ("totp" if u.totp else "", f"{u.webauthn} keys" if u.webauthn else "") if x
        )
        state = "disabled" if u.disabled else "active"
        click.echo(
            f"{u.name:<24} {u.role.value:<9} {state:<9} mfa={factors or 'none':<12} "
            f"groups={','.join(u.groups)}"
        )


@user.command("disable")
@click.argument("name", type=TEXT)
@service_options
def disable(name: str, store_url: str | None, key_file: str | None) -> None:
    """Disable a user: signs them out everywhere; their tokens stop working."""
    from vmsec.service.core import cli_principal

    with open_service(store_url, key_file) as svc:
        svc.accounts.disable_user(name, cli_principal())
    click.echo(f"user {name} disabled", err=True)


@user.command("reset-mfa")
@click.argument("name", type=TEXT)
@service_options
def reset_mfa(name: str, store_url: str | None, key_file: str | None) -> None:
    """Replace a user's second factors (a lost phone): new TOTP secret and recovery codes, printed once;
    security keys removed; sessions revoked."""
    from vmsec.service.core import cli_principal

    with open_service(store_url, key_file) as svc:
        enrolment = svc.accounts.reset_mfa(name, cli_principal())
    click.echo(f"MFA of {name} reset", err=True)
    _show_enrolment(enrolment.otpauth_uri, enrolment.recovery_codes)
    if not enrolment.otpauth_uri:
        for code in enrolment.recovery_codes:
            click.echo(f"  {code}")
