"""``vmsec`` command line: the root group. Each sub-command lives in its own module (``scan_commands``,
``check_commands``, ``store_commands`` …) that parses arguments, builds target specs and options,
calls the library (:func:`vmsec.pipeline.scan`), renders, and maps the outcome to an exit code.

Start-up is kept small: sub-commands and everything they need are imported when they run, so
``vmsec --version`` and ``vmsec checks list`` never import the checks, the facts or the store.
"""

from __future__ import annotations

import sys
from typing import ClassVar

import click

from vmsec import __version__


class LazyGroup(click.Group):
    """A command group whose sub-commands are imported only when they run: `vmsec scan` must not pay
    for importing the store, SQLAlchemy and alembic before it starts. Each command lives in its own
    module; adding one is one line in ``lazy``."""

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
        "fleet": "vmsec.cli.fleet_commands:fleet",
        "worker": "vmsec.cli.worker_command:worker",
        "monitor": "vmsec.cli.monitor_command:monitor",
        "probe": "vmsec.cli.probe_commands:probe",
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


def die(message: str, code: int) -> None:
    """Print ``vmsec: error: MESSAGE`` on standard error and exit with ``code``."""
    click.echo(f"vmsec: error: {message}", err=True)
    sys.exit(code)


def main() -> None:
    cli(prog_name="vmsec")


if __name__ == "__main__":
    main()
