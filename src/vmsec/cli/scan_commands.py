"""``vmsec scan …``: one sub-command per kind of target. Each builds a target spec and hands it, with
the options, to :func:`vmsec.pipeline.scan`; rendering and the exit code are decided here."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import click

from vmsec.cli import exitcodes
from vmsec.cli.main import LazyGroup, die

if TYPE_CHECKING:
    from vmsec.results import ScanResult
    from vmsec.specs import TargetSpec

SEVERITY_CHOICES = ["critical", "high", "medium", "low", "info"]
FORMAT_CHOICES = ["csv", "cyclonedx", "html", "json", "junit", "markdown", "sarif", "terminal"]
DEFAULT_PROFILE = "multi-tenant"


def _frameworks() -> list[str]:
    from vmsec.compliance import available

    return list(available())


class _LazyChoice(click.Choice):  # type: ignore[type-arg]
    """A choice list computed when first needed (the compliance frameworks: a directory listing that
    `vmsec --version` should not pay for)."""

    def __init__(self, load: Callable[[], list[str]]) -> None:
        self._load = load
        super().__init__([])

    def _loaded(self) -> None:
        if not self.choices:
            self.choices = tuple(self._load())

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        self._loaded()
        return super().convert(value, param, ctx)

    def get_metavar(self, param: click.Parameter, *args: Any, **kwargs: Any) -> str | None:
        self._loaded()  # click ≥ 8.2 passes ctx= by keyword
        metavar: str | None = super().get_metavar(param, *args, **kwargs)
        return metavar


def scan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="terminal",
                     show_default=True, help="Report format."),
        click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
                     help="Write the report to this file instead of standard output."),
        click.option("--fail-on", type=click.Choice(SEVERITY_CHOICES), default=None,
                     help="Exit 1 when a FAIL finding has this severity or worse."),
        click.option("--profile", default=DEFAULT_PROFILE, show_default=True,
                     help="Built-in profile (multi-tenant, single-tenant) or a TOML file."),
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
        click.option("--compliance", type=_LazyChoice(_frameworks), default=None,
                     help="Show the result per requirement of this compliance framework "
                          "(formats terminal, json, markdown)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class ScanGroup(LazyGroup):
    """``vmsec scan``: the built-in target kinds below, plus transports in their own modules."""

    lazy: ClassVar[dict[str, str]] = {}


@click.group(cls=ScanGroup)
def scan() -> None:
    """Scan a host, a libvirt connection, domain XML files, guest roots or disk images."""


@scan.command("host")
@click.option("--root", default="/", show_default=True, type=click.Path(file_okay=False),
              help="Audit a copied host root instead of the running system.")
@scan_options
def scan_host(root: str, **opts: Any) -> None:
    """Audit this hypervisor host (or a copy of its root): isolation, daemons, qemu.conf, and the
    VMs defined in its /etc/libvirt."""
    from vmsec.specs import HostSpec

    _run_scan([HostSpec(root=root)], **opts)


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
    from vmsec.specs import LibvirtSpec

    _run_scan([LibvirtSpec(uri=uri, include_host=include_host, guests="disk" if guests else None,
                           key_file=key_file)], **opts)


@scan.command("rootfs")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@scan_options
def scan_rootfs(paths: tuple[str, ...], **opts: Any) -> None:
    """Audit guest root filesystem directories offline (read-only, confined to each root)."""
    from vmsec.specs import RootfsSpec

    _run_scan([RootfsSpec(paths=paths)], **opts)


@scan.command("image")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--key-file", type=click.Path(dir_okay=False, exists=True),
              help="Passphrase file for an encrypted image (qcow2 LUKS or LUKS inside the guest).")
@scan_options
def scan_image(paths: tuple[str, ...], key_file: str | None, **opts: Any) -> None:
    """Audit VM disk images offline (qcow2 with backing chains, raw, vmdk; GPT/MBR, LVM, ext4, xfs),
    strictly read-only, without mounting."""
    from vmsec.specs import ImageSpec

    _run_scan([ImageSpec(paths=paths, key_file=key_file)], **opts)


@scan.command("xml")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--host-root", type=click.Path(file_okay=False, exists=True),
              help="A host root whose qemu.conf and daemons give the context (defaults, TLS).")
@click.option("--passwords-hidden", is_flag=True,
              help="The XML was dumped without --security-info: a missing passwd is unknown, not absent.")
@scan_options
def scan_xml(paths: tuple[str, ...], host_root: str | None, passwords_hidden: bool, **opts: Any) -> None:
    """Audit offline domain, network, nwfilter, pool and secret XML files or directories."""
    from vmsec.specs import XmlSpec

    _run_scan([XmlSpec(paths=paths, host_root=host_root, secure=not passwords_hidden)], **opts)


def _run_scan(specs: list[TargetSpec], *, fmt: str, output: str | None, fail_on: str | None, profile: str,
              check_ids: tuple[str, ...], show_pass: bool, quiet: bool, db_path: str | None,
              waivers_path: str | None, store_url: str | None, no_store: bool,
              compliance: str | None) -> None:
    from vmsec.errors import ConfigError, SourceUnavailable, VmsecError
    from vmsec.pipeline import ScanOptions
    from vmsec.pipeline import scan as run
    from vmsec.report import ReportOptions, make_reporter

    try:
        if compliance:
            from vmsec.report.compliance import compliance_format

            compliance_format(fmt)
        waivers: tuple[Any, ...] = ()
        if waivers_path:
            from vmsec.waivers import load_waivers

            waivers = load_waivers(waivers_path)
        stored_url = None
        if not no_store:
            from vmsec.store.location import resolve_url

            stored_url = resolve_url(store_url)
        reporter = make_reporter(fmt, ReportOptions(show_pass=show_pass))
        with _report_stream(output) as out, _progress(enabled=not quiet) as progress:
            # A reporter that can write as the scan runs (JSON) does, and then nothing keeps the
            # findings: memory stays flat however large the scan.
            streaming = not compliance and hasattr(reporter, "stream")
            sink = _DeferredStream(reporter, out) if streaming else None
            options = ScanOptions(profile=profile, checks=check_ids, waivers=waivers, advisory_db=db_path,
                                  store_url=stored_url, sinks=(sink,) if sink else (),
                                  keep_findings=not streaming, progress=progress)
            result = run(specs, options)
            if result.store_error:
                click.echo(f"vmsec: warning: the scan was not stored: {result.store_error}", err=True)
            if not streaming:
                _render(result, fmt, compliance, reporter, out)
    except ConfigError as exc:
        die(str(exc), exitcodes.USAGE)
    except SourceUnavailable as exc:
        die(str(exc), exitcodes.INCOMPLETE)
    except VmsecError as exc:
        die(str(exc), exitcodes.INCOMPLETE)
    if output:
        click.echo(f"report written to {output}", err=True)
    sys.exit(_exit_code(result, fail_on))


class _DeferredStream:
    """Wraps a streaming reporter's sink: created at ``begin`` (when the scan header is known)."""

    def __init__(self, reporter: Any, out: TextIO) -> None:
        self.reporter = reporter
        self.out = out
        self.sink: Any = None

    def begin(self, header: Any) -> None:
        self.sink = self.reporter.stream(header, self.out)
        self.sink.begin(header)

    def add(self, batch: Any, details: Any, os: Any) -> None:
        self.sink.add(batch, details, os)

    def end(self, result: Any) -> None:
        self.sink.end(result)


def _render(result: ScanResult, fmt: str, compliance: str | None, reporter: Any, out: TextIO) -> None:
    from vmsec.checkinfo import packaged_index

    if compliance:
        from vmsec.report.compliance import render_compliance

        render_compliance(result, packaged_index(), compliance, out, fmt)
    else:
        reporter.render(result, packaged_index(), out)


@contextmanager
def _report_stream(output: str | None) -> Iterator[TextIO]:
    """Standard output, or the ``--output`` file — opened before the scan starts, so an unwritable
    path fails at once instead of after a long scan."""
    if not output:
        yield sys.stdout
        return
    try:
        fh = open(output, "w", encoding="utf-8")  # noqa: SIM115 - closed below, after the scan
    except OSError as exc:
        die(f"cannot write {output}: {exc.strerror or exc}", exitcodes.USAGE)
        raise AssertionError("unreachable") from exc
    with fh:
        yield fh


def _exit_code(result: ScanResult, fail_on: str | None) -> int:
    if fail_on is not None:
        order = SEVERITY_CHOICES
        worse_or_equal = order[: order.index(fail_on) + 1]
        if any(result.counts.failed_by_severity.get(sev, 0) for sev in worse_or_equal):
            return exitcodes.FINDINGS
    return exitcodes.OK if result.complete else exitcodes.INCOMPLETE


@contextmanager
def _progress(enabled: bool, console: Any = None) -> Iterator[Callable[[str], None] | None]:
    """A status line on standard error, only when it is a terminal: never mixed with the report.
    (``console``: a rich Console to draw on instead of standard error, for tests.)"""
    if not enabled or (console is None and not sys.stderr.isatty()):
        yield None
        return
    import time

    from rich.console import Console
    from rich.text import Text

    from vmsec.report.terminal import plain

    console = console or Console(stderr=True)
    with console.status("collecting…") as status:
        last = [0.0]

        def update(message: str) -> None:
            now = time.monotonic()
            if now - last[0] > 0.05:  # repainting per domain would cost more than the scan
                status.update(Text(plain(message)))  # a domain name: no markup, no escapes
                last[0] = now

        yield update
