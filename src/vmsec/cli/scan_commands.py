"""``vmsec scan …``: one sub-command per kind of target. Each builds a target spec and hands it, with
the options, to :func:`run_scan`, which calls :func:`vmsec.pipeline.scan`, renders the report and
decides the exit code. Transports in their own modules (``scan ssh``, ``scan probe``) register one line
in :attr:`ScanGroup.lazy` and reuse :func:`~vmsec.cli.options.scan_options` and :func:`run_scan`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import click
from msgspec.structs import replace

from vmsec.cli import exitcodes
from vmsec.cli.main import LazyGroup, die
from vmsec.cli.options import ReportArgs, ScanArgs, Selection, scan_options, scan_options_except, warn
from vmsec.findings import Status

if TYPE_CHECKING:
    from vmsec.cli.progress import Progress
    from vmsec.findings import Finding
    from vmsec.results import ScanResult, TargetBatch
    from vmsec.specs import TargetSpec

__all__ = [
    "TARGET_KINDS",
    "ScanArgs",
    "ScanGroup",
    "open_report",
    "render_result",
    "run_scan",
    "scan",
    "scan_options",
    "scan_options_except",
]

# Every target kind and what it reads, for `vmsec scan --help` (kinds registered lazily add theirs).
TARGET_KINDS: dict[str, str] = {
    "host": "a hypervisor host (this one, or a copied root with --root)",
    "libvirt": "a libvirt connection URI (qemu:///system, qemu+ssh://…), optionally with --guests",
    "xml": "offline domain, network, nwfilter, pool and secret XML files or directories",
    "rootfs": "guest root filesystem directories",
    "image": "VM disk images (qcow2, raw, vmdk), read-only without mounting",
}


class ScanGroup(LazyGroup):
    """``vmsec scan``: the built-in target kinds below, plus transports in their own modules."""

    lazy: ClassVar[dict[str, str]] = {
        "ssh": "vmsec.cli.ssh_commands:scan_ssh",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_BUILT_IN})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # The built-in kinds' commands are built on first use: each carries some twenty options, and
        # building all five cost every scan ≈ 1.5 ms for the one it runs.
        build = _BUILT_IN.get(cmd_name)
        if build is not None and cmd_name not in self.commands:
            self.add_command(build(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Every target kind with what it reads (kinds registered by other modules included)."""
        rows = []
        for name in self.list_commands(ctx):
            text = TARGET_KINDS.get(name)
            if text is None:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                text = command.get_short_help_str(200)
            rows.append((name, text))
        with formatter.section("Target kinds (vmsec scan KIND --help)"):
            formatter.write_dl(rows)


@click.group(cls=ScanGroup)
def scan() -> None:
    """Scan a target: a hypervisor host, a libvirt connection, domain XML, guest root directories or
    disk images — and every transport registered (see the target kinds below)."""


def _host_command() -> click.Command:
    @click.command("host")
    @click.option("--root", default="/", show_default=True, type=click.Path(file_okay=False),
                  help="Audit a copied host root instead of the running system.")
    @scan_options
    def scan_host(root: str, **opts: Any) -> None:
        """Audit this hypervisor host (or a copy of its root): isolation, daemons, qemu.conf, and the
        VMs defined in its /etc/libvirt."""
        from vmsec.specs import HostSpec

        run_scan([HostSpec(root=root)], ScanArgs.pop(opts))

    return scan_host


GUEST_MODES = ("disk", "agent", "auto", "both")


def _libvirt_command() -> click.Command:
    @click.command("libvirt")
    @click.argument("uri", default="qemu:///system")
    @click.option("--host/--no-host", "include_host", default=None,
                  help="Also audit the local host (default: yes for local qemu:/// URIs).")
    @click.option("--guests", metavar="[disk|agent|auto|both]", is_flag=False, flag_value="disk",
                  default=None,
                  help="Also audit each domain's guest OS: from its disks (disk, the default), through its "
                       "QEMU guest agent (agent), the agent where it answers and the disks elsewhere (auto), "
                       "or both, compared.")
    @click.option("--allow-guest-exec", is_flag=True,
                  help="Let the guest agent run the read-only allow-list (find, stat, readlink) through "
                       "guest-exec, for directory listings; off by default.")
    @click.option("--key-file", type=click.Path(dir_okay=False, exists=True),
                  help="Passphrase file for encrypted guest disks (never guessed).")
    @scan_options
    def scan_libvirt(uri: str, include_host: bool | None, guests: str | None, allow_guest_exec: bool,
                     key_file: str | None, **opts: Any) -> None:
        """Audit every domain, network, filter, pool and secret of a libvirt connection URI."""
        from vmsec.specs import GuestMode, LibvirtSpec

        if guests is not None and guests not in GUEST_MODES:
            # `--guests URI` (the flag alone, then the URI): the word after --guests is no mode.
            if uri != "qemu:///system":
                raise click.BadParameter(f"{guests!r} is not one of {', '.join(GUEST_MODES)}",
                                         param_hint="--guests")
            uri, guests = guests, "disk"
        mode: GuestMode | None = guests  # type: ignore[assignment]  # checked against GUEST_MODES above
        run_scan([LibvirtSpec(uri=uri, include_host=include_host, guests=mode, key_file=key_file,
                              allow_guest_exec=allow_guest_exec)], ScanArgs.pop(opts))

    return scan_libvirt


def _rootfs_command() -> click.Command:
    @click.command("rootfs")
    @click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
    @scan_options
    def scan_rootfs(paths: tuple[str, ...], **opts: Any) -> None:
        """Audit guest root filesystem directories offline (read-only, confined to each root)."""
        from vmsec.specs import RootfsSpec

        run_scan([RootfsSpec(paths=paths)], ScanArgs.pop(opts))

    return scan_rootfs


def _image_command() -> click.Command:
    @click.command("image")
    @click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
    @click.option("--key-file", type=click.Path(dir_okay=False, exists=True),
                  help="Passphrase file for an encrypted image (qcow2 LUKS or LUKS inside the guest); its "
                       "content is the passphrase exactly, a trailing newline included.")
    @scan_options
    def scan_image(paths: tuple[str, ...], key_file: str | None, **opts: Any) -> None:
        """Audit VM disk images offline (qcow2 with backing chains, raw, vmdk; GPT/MBR, LVM, ext4, xfs),
        strictly read-only, without mounting."""
        from vmsec.specs import ImageSpec

        run_scan([ImageSpec(paths=paths, key_file=key_file)], ScanArgs.pop(opts))

    return scan_image


def _xml_command() -> click.Command:
    @click.command("xml")
    @click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
    @click.option("--host-root", type=click.Path(file_okay=False, exists=True),
                  help="A host root whose qemu.conf and daemons give the context (defaults, TLS).")
    @click.option("--passwords-hidden", is_flag=True,
                  help="The XML was dumped without --security-info: a missing passwd is unknown, not absent.")
    @scan_options
    def scan_xml(paths: tuple[str, ...], host_root: str | None, passwords_hidden: bool, **opts: Any) -> None:
        """Audit offline domain, network, nwfilter, pool and secret XML files or directories."""
        from vmsec.specs import XmlSpec

        if host_root is not None and not (Path(host_root) / "etc" / "libvirt").is_dir():
            warn(f"--host-root {host_root} has no etc/libvirt: libvirt's defaults stand in for its qemu.conf "
                 "and daemon configuration (is it a copy of a hypervisor's root?)")
        run_scan([XmlSpec(paths=paths, host_root=host_root, secure=not passwords_hidden)], ScanArgs.pop(opts))

    return scan_xml


_BUILT_IN: dict[str, Callable[[], click.Command]] = {
    "host": _host_command, "libvirt": _libvirt_command, "rootfs": _rootfs_command, "image": _image_command,
    "xml": _xml_command,
}


# --- running a scan -----------------------------------------------------------------------------------


def run_scan(specs: Sequence[TargetSpec], args: ScanArgs, settings: Mapping[str, Any] | None = None) -> None:
    """Scan ``specs`` as ``args`` say, write the report, and exit with the documented code.
    ``settings``: further :class:`~vmsec.pipeline.ScanOptions` fields a transport sets (``scan ssh``:
    concurrency and group_limit).

    Every ``vmsec scan`` command ends here (and transports in other modules may call it too). The
    ``--output`` file is opened before the scan starts; ``Ctrl-C`` exits 130 naming the partial scan
    the store kept.
    """
    from vmsec.cli.interrupts import ScanInterrupts
    from vmsec.errors import ConfigError, ScanInterrupted, SourceUnavailable, VmsecError
    from vmsec.pipeline import ScanOptions
    from vmsec.pipeline import scan as run
    from vmsec.report import ReportOptions, make_reporter

    report = args.report
    progress: Progress | None = None
    try:
        if report.compliance:
            from vmsec.report.compliance import compliance_format

            compliance_format(report.fmt)
        waivers = _load_waivers(args.waivers_path, args.check_ids)
        stored_url = None
        if not args.no_store:
            from vmsec.store.location import resolve_url

            stored_url = resolve_url(report.store_url)
        reporter = make_reporter(report.fmt, ReportOptions(show_pass=report.show_pass, color=report.color))
        with (open_report(report.output) as out, _progress(not args.quiet) as progress,
              ScanInterrupts() as interrupts):
            # A reporter that can write as the scan runs (JSON, terminal) does; then nothing keeps
            # every finding: memory stays flat however large the scan.
            streaming = not report.compliance and hasattr(reporter, "stream")
            gate = _Counting(report.selection)
            # First: a Ctrl-C that a finaliser swallowed ends the scan before the next target is written.
            sinks: list[Any] = [interrupts]
            if progress is not None:
                sinks.append(progress)
            usage = None
            if waivers:
                from vmsec.waivers import WaiverUsage

                usage = WaiverUsage(waivers)
                sinks.append(usage)
            if streaming:
                sinks.append(_Deferred(reporter, out, gate, progress))
            options = ScanOptions(profile=args.profile, checks=args.check_ids, waivers=waivers,
                                  advisory_db=args.db_path, store_url=stored_url, sinks=tuple(sinks),
                                  keep_findings=not streaming, timeout=args.timeout,
                                  progress=progress.message if progress is not None else None,
                                  on_stage=_logged_stages(progress), **(settings or {}))
            _debug("scanning %s (format %s, profile %s, store %s)", [s.describe() for s in specs],
                       report.fmt, args.profile, stored_url and _redacted(stored_url))
            result = run(specs, options)
            _debug("scan done: %d findings, %d targets, complete=%s, scan id %s", result.counts.findings,
                       len(result.targets), result.complete, result.scan_id)
            if not streaming:
                if progress is not None:
                    progress.stage("render")
                    progress.stop()
                result = gate.select(result)
                render_result(result, reporter, report, out)
        _after_scan(result, usage)
    except ScanInterrupted as exc:
        if progress is not None:
            progress.stop()
        _interrupted(exc, report.store_url)
    except ConfigError as exc:
        die(str(exc), exitcodes.USAGE)
    except SourceUnavailable as exc:
        die(str(exc), exitcodes.INCOMPLETE)
    except VmsecError as exc:
        die(str(exc), exitcodes.INCOMPLETE)
    if report.output:
        click.echo(f"report written to {report.output}", err=True)
    sys.exit(report.gate.exit_code_for(gate.failed_by_severity(result), result.complete))


def _debug(message: str, *args: object) -> None:
    """A --debug log line. ``logging`` is imported only by --debug (cli/main.py) or by whoever embeds
    vmsec: when it was never imported, no handler can exist and there is nothing to format."""
    if "logging" in sys.modules:
        sys.modules["logging"].getLogger("vmsec.cli").debug(message, *args)


def _redacted(url: str) -> str:
    from vmsec.store.location import redact

    return redact(url)


def _logged_stages(progress: Progress | None) -> Callable[[str, str], None]:
    """The pipeline's ``on_stage`` hook: the progress display, and a --debug log line per stage."""
    import time

    started = time.monotonic()

    def on_stage(stage: str, what: str) -> None:
        _debug("%.2f s: %s %s", time.monotonic() - started, stage, what)
        if progress is not None:
            progress.stage(stage, what)

    return on_stage


def _after_scan(result: ScanResult, usage: Any) -> None:
    """Warnings that concern the scan as a whole, on standard error."""
    if result.store_error:
        warn(f"the scan was not stored: {result.store_error}")
    for rec in result.errors:
        if rec.what == "guest contents":
            warn(f"{rec.source}: {rec.reason}")
    if usage is not None:
        for w in usage.unused:
            warn(f"{w.origin}: matched no failed finding of this scan ({w.describe()}): check its "
                 "target and subject patterns")


def _load_waivers(path: str | None, check_ids: Sequence[str]) -> tuple[Any, ...]:
    if not path:
        return ()
    from vmsec.checkinfo import packaged_index
    from vmsec.errors import ConfigError
    from vmsec.waivers import load_waivers, unknown_checks

    waivers = load_waivers(path)
    unknown = unknown_checks(waivers, packaged_index())
    if unknown:
        raise ConfigError("; ".join(f"{w.origin}: unknown check id {w.check!r} (see 'vmsec checks list')"
                                    for w in unknown))
    return waivers


def _interrupted(exc: Any, store_url: str | None) -> None:
    """Ctrl-C: say what was kept, exit 130 (128 + SIGINT)."""
    scan_id = getattr(exc, "scan_id", None)
    if scan_id is None:
        click.echo("vmsec: interrupted; nothing was stored", err=True)
    else:
        stored = f"{exc.targets_done} of {exc.targets_expected} targets"
        try:
            from vmsec.store import open_store

            with open_store(store_url, create=False) as store:
                summary = store.summary(scan_id)
                stored = f"{summary.targets_stored} of {summary.targets_expected} targets"
        except Exception:  # the store's own trouble must not hide the interruption
            pass
        click.echo(f"vmsec: interrupted; the partial scan #{scan_id} was stored ({stored}): "
                   f"'vmsec report {scan_id}' shows it, 'vmsec history' marks it interrupted", err=True)
    sys.exit(exitcodes.INTERRUPTED)


def render_result(result: ScanResult, reporter: Any, report: ReportArgs, out: TextIO) -> None:
    """Render a finished scan (or its compliance view) as ``report`` asks."""
    from vmsec.checkinfo import packaged_index

    if report.compliance:
        from vmsec.report.compliance import render_compliance

        render_compliance(result, packaged_index(), report.compliance, out, report.fmt)
    else:
        reporter.render(result, packaged_index(), out)


class _Counting:
    """Applies ``--severity``/``--ignore-unfixed`` and counts what is left (for the exit code)."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self.failed: dict[str, int] | None = None

    def filter(self, findings: list[Finding]) -> list[Finding]:
        wants = self.selection.wants
        kept = [f for f in findings if wants(f)] if self.selection.active else findings
        self._count(kept)
        return kept

    def filter_batch(self, batch: TargetBatch) -> TargetBatch:
        """A streamed target's batch, or a new batch of its selected findings; counted."""
        if not self.selection.active:
            self._merge(batch.counts.failed_by_severity)  # counted once already (TargetBatch.counts)
            return batch
        from vmsec.results import TargetBatch

        kept = self.filter(batch.findings)
        return batch if len(kept) == len(batch.findings) else TargetBatch(batch.target, kept)

    def _totals(self) -> dict[str, int]:
        if self.failed is None:
            self.failed = {}
        return self.failed

    def _count(self, kept: list[Finding]) -> None:
        failed = self._totals()
        fail = Status.FAIL
        for f in kept:
            if f.status is fail:
                failed[f.severity.value] = failed.get(f.severity.value, 0) + 1

    def _merge(self, failed_by_severity: Mapping[str, int]) -> None:
        failed = self._totals()
        for severity, n in failed_by_severity.items():
            if n:
                failed[severity] = failed.get(severity, 0) + n

    def select(self, result: ScanResult) -> ScanResult:
        """A finished result with only the selected findings (and their counts)."""
        from vmsec.results import ScanCounts

        findings = self.filter(list(result.findings))
        if not self.selection.active:
            return result
        return replace(result, findings=tuple(findings), counts=ScanCounts.of(findings))

    def failed_by_severity(self, result: ScanResult) -> Mapping[str, int]:
        return self.failed if self.failed is not None else result.counts.failed_by_severity


class _Deferred:
    """A streaming reporter's sink, created when the scan header is known; findings pass the
    selection first; the progress display stops before the report is written."""

    def __init__(self, reporter: Any, out: TextIO, gate: _Counting, progress: Progress | None) -> None:
        self.reporter = reporter
        self.out = out
        self.gate = gate
        self.progress = progress
        self.sink: Any = None

    def begin(self, header: Any) -> None:
        self.sink = self.reporter.stream(header, self.out)
        self.sink.begin(header)

    def add(self, batch: TargetBatch, details: Any, os: Any) -> None:
        # The same findings stay the same batch, whose fingerprints and counts are computed once.
        self.sink.add(self.gate.filter_batch(batch), details, os)

    def end(self, result: ScanResult) -> None:
        if self.progress is not None:
            self.progress.stage("render")
            self.progress.stop()
        self.sink.end(result)


@contextmanager
def open_report(output: str | None) -> Iterator[TextIO]:
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
    written = False
    try:
        with fh:
            yield fh
            written = True
    finally:
        if not written and fh.closed and os.path.isfile(output) and os.path.getsize(output) == 0:
            os.unlink(output)  # the scan never got to write a report: leave no empty file behind


@contextmanager
def _progress(enabled: bool, stream: TextIO | None = None) -> Iterator[Progress | None]:
    """The progress display on standard error (see :mod:`vmsec.cli.progress`); None when quiet."""
    if not enabled:
        yield None
        return
    from vmsec.cli.progress import Progress

    raw: TextIO = stream if stream is not None else getattr(sys.stderr, "raw", sys.stderr)
    live = bool(getattr(raw, "isatty", lambda: False)())
    width = 80  # only a live display is cut to the terminal's width
    if live:
        import shutil  # here: ≈ 1 ms of start-up, with the compression modules it imports

        width = shutil.get_terminal_size((80, 24)).columns
    with Progress(raw, live=live, width=width) as progress:
        yield progress


def _run_scan(specs: Sequence[TargetSpec], **opts: Any) -> None:
    """The former entry point (keyword arguments of :func:`scan_options`); use :func:`run_scan`."""
    run_scan(specs, ScanArgs.pop(dict(opts)))

_report_stream = open_report  # the former name
