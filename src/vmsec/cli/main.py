"""``vmsec`` command line: the root group. Each sub-command lives in its own module (``scan_commands``,
``check_commands``, ``store_commands`` …) that parses arguments, builds target specs and options,
calls the library (:func:`vmsec.pipeline.scan`), renders, and maps the outcome to an exit code.
Options shared by commands are decorators in :mod:`vmsec.cli.options`.

Start-up is kept small: sub-commands and everything they need are imported when they run, so
``vmsec --version`` and ``vmsec checks list`` never import the checks, the facts or the store.

:func:`main` is the one place that turns what escaped a command into a message and an exit code:
no Python traceback reaches a user (``--debug`` shows it), and every message on standard error
passes through :class:`~vmsec.report.text.NeutralisingStream` (no control character from a scanned
machine — a domain name, a qcow2 backing-file name — acts on the terminal).
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, cast

import click

from vmsec import __version__
from vmsec.cli import exitcodes


class _PipeBroke(Exception):
    """A :class:`BrokenPipeError` that left a command. Not an ``OSError``: click turns any EPIPE that
    leaves a command into a silent exit 1 — the code of "FAIL findings at or above --fail-on"."""

    def __init__(self, error: BrokenPipeError) -> None:
        super().__init__(str(error))
        self.error = error


class LazyGroup(click.Group):
    """A command group whose sub-commands are imported only when they run: `vmsec scan` must not pay
    for importing the store, SQLAlchemy and alembic before it starts. Each command lives in its own
    module; adding one is one line in ``lazy``. Without arguments it prints its help and exits 0."""

    lazy: ClassVar[dict[str, str]] = {
        "scan": "vmsec.cli.scan_commands:scan",
        "checks": "vmsec.cli.check_commands:checks",
        "db": "vmsec.cli.db_commands:db_group",
        "history": "vmsec.cli.store_commands:history",
        "diff": "vmsec.cli.store_commands:diff",
        "report": "vmsec.cli.store_commands:report",
        "serve": "vmsec.cli.serve_command:serve",
        "user": "vmsec.cli.user_commands:user",
        "token": "vmsec.cli.token_commands:token",
        "audit": "vmsec.cli.audit_commands:audit",
        "version": "vmsec.cli.info_commands:version",
        "completion": "vmsec.cli.info_commands:completion",
        "fleet": "vmsec.cli.fleet_commands:fleet",
        "worker": "vmsec.cli.worker_command:worker",
        "monitor": "vmsec.cli.monitor_command:monitor",
        "probe": "vmsec.cli.probe_commands:probe",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            import importlib

            module, _, attr = self.lazy[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:  # eager options (--version, --help) write here
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError as exc:
            raise _PipeBroke(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _PipeBroke(exc) from exc

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(exitcodes.OK)
        return super().parse_args(ctx, args)


_DEBUG = False


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    global _DEBUG
    if value:
        import logging  # here: logging is a noticeable import that only --debug needs

        _DEBUG = True
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="vmsec: debug: %(name)s: %(message)s")
        logging.getLogger("vmsec").debug("vmsec %s, Python %s", __version__, sys.version.split()[0])


def _set_no_color(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["vmsec.no_color"] = True


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100, "auto_envvar_prefix": "VMSEC"})
@click.version_option(__version__, prog_name="vmsec")
@click.option("--debug", is_flag=True, is_eager=True, expose_value=False, callback=_set_debug,
              envvar="VMSEC_DEBUG", help="Log what vmsec does on standard error; show tracebacks.")
@click.option("--no-color", is_flag=True, expose_value=False, callback=_set_no_color, envvar="VMSEC_NO_COLOR",
              help="No colour anywhere (also: NO_COLOR=1).")
@click.option("--config", metavar="FILE", type=click.Path(dir_okay=False), expose_value=False,
              is_eager=True, envvar="VMSEC_CONFIG",
              callback=lambda ctx, _p, v: ctx.meta.__setitem__("vmsec.config", v) if v else None,
              help="Options from this TOML file (default: vmsec.toml in the user configuration directory).")
def cli() -> None:
    """vmsec — which of my VMs can be broken into or broken out of, and why.

    Audits a KVM/QEMU/libvirt host: hardware isolation, the libvirt daemons and
    qemu.conf, and every VM's configuration — and the guests inside them.

    Start with 'vmsec scan host', 'vmsec scan libvirt' or 'vmsec scan xml DIR';
    'vmsec scan --help' lists every target kind.
    """


def die(message: str, code: int) -> None:
    """Print ``vmsec: error: MESSAGE`` on standard error and exit with ``code``."""
    click.echo(f"vmsec: error: {message}", err=True)
    sys.exit(code)


def main(args: list[str] | None = None) -> None:
    """The ``vmsec`` entry point: run the command; turn anything that escaped it into a message."""
    from vmsec.report.text import NeutralisingStream

    if not isinstance(sys.stderr, NeutralisingStream):
        sys.stderr = NeutralisingStream(sys.stderr)
    try:
        code: Any = cli.main(args=args, prog_name="vmsec", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except SystemExit as exc:  # a command's own sys.exit(code) (every scan): ends below like the rest
        code = exc.code
        if code is not None and not isinstance(code, int):
            click.echo(code, err=True)  # as Python itself would: the message, status 1
            code = 1
    except click.ClickException as exc:
        exc.show(file=cast(Any, sys.stderr))
        code = exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("vmsec: interrupted", err=True)
        code = exitcodes.INTERRUPTED
    except (BrokenPipeError, _PipeBroke) as exc:
        error = exc.error if isinstance(exc, _PipeBroke) else exc
        if _stdout_reader_gone():
            _quiet_stdout()
            code = exitcodes.READER_GONE
        else:  # another pipe or socket broke (a guest's SSH session, a database): a failure to report
            click.echo(f"vmsec: error: {_describe(error)}", err=True)
            code = exitcodes.INCOMPLETE
    except Exception as exc:  # the last line of defence: a message, never a traceback
        if _DEBUG:
            import traceback

            traceback.print_exc()
        click.echo(f"vmsec: error: {_describe(exc)}", err=True)
        if not _DEBUG:
            click.echo("vmsec: run with --debug for details; please report this if it is a bug", err=True)
        code = exitcodes.INCOMPLETE
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        code = exitcodes.READER_GONE
    # The interpreter's last act would be a garbage collection walking every object the command made
    # (≈ 9 ms of a 70 ms vulnerability scan) only to free memory the process is about to give back.
    # Frozen objects are skipped; everything else still happens — reference-count cleanup, atexit
    # handlers, waiting for threads. Given up: finalising unreachable cycles still alive at exit, so
    # files and connections are closed explicitly, never left to the collector.
    import gc

    gc.freeze()
    sys.exit(code if isinstance(code, int) else exitcodes.OK)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


def _stdout_reader_gone() -> bool:
    """Whether standard output is a pipe or socket whose reader has gone (poll says POLLERR/POLLHUP)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # errors and hang-ups are always reported
        return any(events & (select.POLLERR | select.POLLHUP) for _fd, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no file descriptor (closed, or replaced in-process)
        return False


def _quiet_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    main()
