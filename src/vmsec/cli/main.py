"""``vmsec`` command line."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import click
from rich.console import Console
from rich.text import Text

from vmsec import __version__
from vmsec.checks.catalog import Catalog, default_catalog
from vmsec.cli import exitcodes
from vmsec.collectors import get_collector
from vmsec.engine import ScanResult, run_checks
from vmsec.errors import ConfigError, SourceUnavailable, VmsecError
from vmsec.facts import Inventory
from vmsec.findings import Severity, Status
from vmsec.profiles import DEFAULT_PROFILE, builtin_profiles, load_profile
from vmsec.report import FORMATS, get_renderer
from vmsec.report.terminal import plain

if TYPE_CHECKING:
    from vmsec.waivers import Waiver

SEVERITY_CHOICES = [s.value for s in Severity]


class LazyGroup(click.Group):
    """A command group whose sub-commands are imported only when they run: `vmsec scan` must not pay
    for importing the store, SQLAlchemy and alembic (a third of a second) before it starts."""

    lazy: ClassVar[dict[str, str]] = {
        "db": "vmsec.cli.db_commands:db_group",
        "history": "vmsec.cli.store_commands:history",
        "diff": "vmsec.cli.store_commands:diff",
        "report": "vmsec.cli.store_commands:report",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            import importlib

            module, _, attr = self.lazy[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vmsec")
def cli() -> None:
    """vmsec — which of my VMs can be broken into or broken out of, and why.

    Audits a KVM/QEMU/libvirt host: hardware isolation, the libvirt daemons and qemu.conf, and
    every VM's configuration.
    """


# --- scan -------------------------------------------------------------------------------------


def _frameworks() -> list[str]:
    from vmsec.compliance import available

    return list(available())


def scan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="terminal",
                     show_default=True, help="Report format."),
        click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
                     help="Write the report to this file instead of standard output."),
        click.option("--fail-on", type=click.Choice(SEVERITY_CHOICES), default=None,
                     help="Exit 1 when a FAIL finding has this severity or worse."),
        click.option("--profile", default=DEFAULT_PROFILE, show_default=True,
                     help=f"Built-in profile ({', '.join(builtin_profiles())}) or a TOML file."),
        click.option("--check", "check_ids", multiple=True, metavar="ID",
                     help="Run only these checks (repeatable; 'VMS-DOM-*' selects a prefix)."),
        click.option("--show-pass", is_flag=True, help="List passed checks in the terminal report too."),
        click.option("--quiet", "-q", is_flag=True, help="No progress display on standard error."),
        click.option("--db", "db_path", type=click.Path(dir_okay=False),
                     help="Vulnerability database for package matching (default: the user cache)."),
        click.option("--waivers", "waivers_path", type=click.Path(dir_okay=False, exists=True),
                     help="Accepted risks (TOML or YAML): matching FAILs become WAIVED until they expire."),
        click.option("--store", "store_url", metavar="URL", default=None,
                     help="Findings store URL (default: $VMSEC_STORE, else SQLite in the user data dir)."),
        click.option("--no-store", is_flag=True, help="Do not keep this scan in the findings store."),
        click.option("--compliance", type=click.Choice(_frameworks()), default=None,
                     help="Show the result per requirement of this compliance framework "
                          "(formats terminal, json, markdown)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@cli.group()
def scan() -> None:
    """Scan a host, a libvirt connection, or domain XML files."""


@scan.command("host")
@click.option("--root", default="/", show_default=True, type=click.Path(file_okay=False),
              help="Audit a copied host root instead of the running system.")
@scan_options
def scan_host(root: str, **opts: Any) -> None:
    """Audit this hypervisor host (or a copy of its root): isolation, daemons, qemu.conf, and the
    VMs defined in its /etc/libvirt."""
    _run_scan(lambda progress: get_collector("host")(root, progress=progress), **opts)


@scan.command("libvirt")
@click.argument("uri", default="qemu:///system")
@click.option("--host/--no-host", "include_host", default=None,
              help="Also audit the local host (default: yes for local qemu:/// URIs).")
@click.option("--guests", is_flag=True,
              help="Also audit each domain's guest OS offline from its file-backed disks.")
@click.option("--key-file", type=click.Path(dir_okay=False, exists=True),
              help="Passphrase file for encrypted guest disks (never guessed).")
@scan_options
def scan_libvirt(uri: str, include_host: bool | None, guests: bool, key_file: str | None,
                 **opts: Any) -> None:
    """Audit every domain, network, filter, pool and secret of a libvirt connection URI."""
    extra: dict[str, Any] = {"guests": True, "key_file": key_file} if guests else {}
    _run_scan(lambda progress: get_collector("libvirt")(uri, include_host=include_host,
                                                        progress=progress, **extra), **opts)


@scan.command("rootfs")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@scan_options
def scan_rootfs(paths: tuple[str, ...], **opts: Any) -> None:
    """Audit guest root filesystem directories offline (read-only, confined to each root)."""
    _run_scan(lambda progress: get_collector("rootfs")(list(paths), progress=progress), **opts)


@scan.command("image")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--key-file", type=click.Path(dir_okay=False, exists=True),
              help="Passphrase file for an encrypted image (qcow2 LUKS or LUKS inside the guest).")
@scan_options
def scan_image(paths: tuple[str, ...], key_file: str | None, **opts: Any) -> None:
    """Audit VM disk images offline (qcow2 with backing chains, raw, vmdk; GPT/MBR, LVM, ext4, xfs),
    strictly read-only, without mounting."""
    _run_scan(lambda progress: get_collector("image")(list(paths), key_file=key_file,
                                                      progress=progress), **opts)


@scan.command("xml")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--host-root", type=click.Path(file_okay=False, exists=True),
              help="A host root whose qemu.conf and daemons give the context (defaults, TLS).")
@click.option("--passwords-hidden", is_flag=True,
              help="The XML was dumped without --security-info: a missing passwd is unknown, not absent.")
@scan_options
def scan_xml(paths: tuple[str, ...], host_root: str | None, passwords_hidden: bool, **opts: Any) -> None:
    """Audit offline domain, network, nwfilter, pool and secret XML files or directories."""
    _run_scan(lambda progress: get_collector("xml")(list(paths), host_root=host_root,
                                                    secure=not passwords_hidden, progress=progress),
              **opts)


def _run_scan(collect: Callable[[Callable[[str], None] | None], Inventory], *, fmt: str,
              output: str | None, fail_on: str | None, profile: str, check_ids: tuple[str, ...],
              show_pass: bool, quiet: bool, db_path: str | None, waivers_path: str | None,
              store_url: str | None, no_store: bool, compliance: str | None) -> None:
    try:
        if compliance:
            from vmsec.report.compliance import compliance_format

            compliance_format(fmt)
        waivers: tuple[Waiver, ...] = ()
        if waivers_path:
            from vmsec.waivers import load_waivers

            waivers = load_waivers(waivers_path)
        prof = load_profile(profile)
        catalog = default_catalog().select(ids=check_ids) if check_ids else default_catalog()
        if check_ids and not catalog.checks:
            raise ConfigError(f"no check matches {', '.join(check_ids)}")
        started = datetime.now(UTC)
        with _progress(enabled=not quiet) as progress:
            inventory = collect(progress)
            if inventory.host_os is not None or inventory.guests:
                progress("matching packages against advisories")
                inventory = _match_vulnerabilities(inventory, db_path)
            progress("evaluating checks")
            result = run_checks(inventory, catalog, prof)
        result = dataclasses.replace(result, started_at=started)
        if waivers:
            from vmsec.waivers import apply_waivers

            result = dataclasses.replace(result, findings=apply_waivers(result.findings, waivers,
                                                                        started.date()))
    except ConfigError as exc:
        _die(str(exc), exitcodes.USAGE)
    except SourceUnavailable as exc:
        _die(str(exc), exitcodes.INCOMPLETE)
    except VmsecError as exc:
        _die(str(exc), exitcodes.INCOMPLETE)
    if not no_store:
        from vmsec.cli.store_commands import store_scan  # SQLAlchemy is imported only to store

        store_scan(result, store_url, True)
    _write_report(result, catalog, fmt, output, show_pass, compliance)
    sys.exit(_exit_code(result, fail_on))


def _match_vulnerabilities(inventory: Inventory, db_path: str | None) -> Inventory:
    """Attach vulnerability reports; without a database they say UNKNOWN (never "0 CVEs")."""
    from vmsec.vulns.db import open_db
    from vmsec.vulns.matcher import match_inventory

    db = open_db(db_path)
    try:
        return match_inventory(inventory, db)
    finally:
        if db is not None:
            db.close()


def _exit_code(result: ScanResult, fail_on: str | None) -> int:
    if fail_on is not None:
        threshold = Severity(fail_on).rank
        if any(f.status is Status.FAIL and f.severity.rank >= threshold for f in result.findings):
            return exitcodes.FINDINGS
    return exitcodes.OK if result.complete else exitcodes.INCOMPLETE


def _write_report(result: ScanResult, catalog: Catalog, fmt: str, output: str | None,
                  show_pass: bool, compliance: str | None = None) -> None:
    def emit(out: TextIO) -> None:
        if compliance:
            from vmsec.report.compliance import render_compliance

            render_compliance(result, catalog, compliance, out, fmt)
        elif fmt == "terminal":
            from vmsec.report.terminal import render

            render(result, catalog, out, show_pass=show_pass)
        else:
            get_renderer(fmt)(result, catalog, out)

    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                emit(fh)
        except OSError as exc:
            _die(f"cannot write {output}: {exc.strerror or exc}", exitcodes.USAGE)
        click.echo(f"report written to {output}", err=True)
    else:
        emit(sys.stdout)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A status line on standard error, only when it is a terminal: never mixed with the report."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda _msg: None
        return
    with console.status("collecting…") as status:
        last = [0.0]

        def update(message: str) -> None:
            now = time.monotonic()
            if now - last[0] > 0.05:  # repainting per domain would cost more than the scan
                status.update(Text(plain(message)))  # a domain name: no markup, no escapes
                last[0] = now

        yield update


def _die(message: str, code: int) -> None:
    click.echo(f"vmsec: error: {message}", err=True)
    sys.exit(code)


# --- checks -----------------------------------------------------------------------------------


@cli.group()
def checks() -> None:
    """The check catalogue."""


@checks.command("list")
@click.option("--format", "fmt", type=click.Choice(["terminal", "json"]), default="terminal",
              show_default=True)
@click.option("--tag", "tags", multiple=True, help="Only checks with this tag (repeatable).")
def checks_list(fmt: str, tags: tuple[str, ...]) -> None:
    """List every check with its id, severity, tags and title."""
    catalog = default_catalog().select(tags=tags or None)
    if fmt == "json":
        click.echo(json.dumps([_check_dict(c) for c in catalog.checks], indent=2))
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("ID", "Severity", "Scope", "Tags", "Title"):
        table.add_column(col)
    for c in catalog.checks:
        table.add_row(c.id, c.severity.value, c.scope.value, ", ".join(c.tags), c.title)
    Console(highlight=False).print(table)
    click.echo(f"{len(catalog.checks)} checks")


@checks.command("explain")
@click.argument("check_id")
def checks_explain(check_id: str) -> None:
    """Show a check's rationale, remediation and references."""
    spec = default_catalog().get(check_id)
    if spec is None:
        _die(f"unknown check {check_id!r} (see 'vmsec checks list')", exitcodes.USAGE)
        return
    click.echo(f"{spec.id}  {spec.title}")
    click.echo(f"Severity: {spec.severity.value}   Scope: {spec.scope.value}   Tags: {', '.join(spec.tags)}")
    click.echo(f"\nWhy it matters\n{spec.rationale}\n\nRemediation\n{spec.remediation}")
    if spec.references:
        click.echo("\nReferences")
        for ref in spec.references:
            click.echo(f"  - {ref}")


def _check_dict(c: Any) -> dict[str, Any]:
    return {"id": c.id, "title": c.title, "severity": c.severity.value, "scope": c.scope.value,
            "tags": list(c.tags), "references": list(c.references), "rationale": c.rationale,
            "remediation": c.remediation}


def main() -> None:
    cli(prog_name="vmsec")
