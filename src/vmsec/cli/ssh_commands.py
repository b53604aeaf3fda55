"""``vmsec scan ssh``: running guests (or any Linux host) audited over SSH, agentless and read-only."""

from __future__ import annotations

import re
from typing import Any

import click
from msgspec import structs

from vmsec.cli import exitcodes
from vmsec.cli.main import die
from vmsec.cli.scan_commands import ScanArgs, run_scan, scan_options

DEFAULT_CONCURRENCY = 64
DEFAULT_PER_HYPERVISOR = 4
DEFAULT_TIMEOUT = 120.0
_TARGET = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[0-9a-fA-F:.%]+)\]|(?P<host>[^:\[\]\s@]+))"
                     r"(?::(?P<port>\d{1,5}))?$")


def parse_target(text: str) -> tuple[str | None, str, int | None]:
    """``[USER@]HOST[:PORT]`` (an IPv6 address in brackets: ``user@[fe80::1]:2222``) → (user, host, port)."""
    match = _TARGET.match(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r} is not [USER@]HOST[:PORT]", param_hint="TARGET")
    port = int(match.group("port")) if match.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise click.BadParameter(f"{text!r}: port {port} is out of range", param_hint="TARGET")
    return match.group("user"), match.group("v6") or match.group("host"), port


@click.command("ssh")
@click.argument("targets", nargs=-1, metavar="[USER@]HOST[:PORT]...")
@click.option("--inventory", "inventory_path", type=click.Path(dir_okay=False, exists=True),
              help="An Ansible inventory (INI or YAML) of hosts to scan; vmsec_hypervisor names the "
                   "hypervisor a guest runs on.")
@click.option("--identity", "-i", type=click.Path(dir_okay=False, exists=True),
              help="Private key file (default: the SSH agent and ~/.ssh/id_*). Never a password.")
@click.option("--user", "-l", "default_user", metavar="USER", help="Login name for targets that give none.")
@click.option("--known-hosts", type=click.Path(dir_okay=False),
              help="known_hosts file to verify host keys against (default: ~/.ssh/known_hosts).")
@click.option("--accept-new", is_flag=True,
              help="Trust and record the key of a host seen for the first time (a changed key is still "
                   "refused).")
@click.option("--sudo", is_flag=True,
              help="Read root-only files through the documented read-only sudo allow-list (sudo -n).")
@click.option("--concurrency", type=click.IntRange(1, 10_000), default=DEFAULT_CONCURRENCY,
              show_default=True, help="Targets scanned at once.")
@click.option("--per-hypervisor", type=click.IntRange(1, 10_000), default=DEFAULT_PER_HYPERVISOR,
              show_default=True, help="Guests of one hypervisor scanned at once (when the inventory says "
                                      "where a guest runs).")
@scan_options
def scan_ssh(targets: tuple[str, ...], inventory_path: str | None, identity: str | None,
             default_user: str | None, known_hosts: str | None, accept_new: bool, sudo: bool,
             concurrency: int, per_hypervisor: int, **opts: Any) -> None:
    """Audit running guests over SSH: the same OS checks as offline, plus what runs (sysctl values in
    the kernel, mounts, processes, listening sockets, the running kernel, restarts needed).

    Host keys are verified; authentication is by key or agent only; nothing is written on the guest.
    --timeout is per target (default 120 s here): a host that takes longer is recorded as timed out.
    """
    from vmsec.errors import ConfigError
    from vmsec.specs import SshSpec, TargetSpec

    specs: list[TargetSpec] = []
    for text in targets:
        user, host, port = parse_target(text)
        specs.append(SshSpec(host=host, user=user or default_user, port=port or 22, identity=identity,
                             known_hosts=known_hosts, accept_new=accept_new, sudo=sudo))
    if inventory_path:
        from vmsec.parsers.ansible_inventory import parse_inventory

        try:
            with open(inventory_path, encoding="utf-8") as fh:
                hosts = parse_inventory(fh.read(64 * 1024 * 1024), inventory_path)
        except ConfigError as exc:
            die(str(exc), exitcodes.USAGE)
            return
        except (OSError, UnicodeDecodeError) as exc:
            die(f"cannot read {inventory_path}: {exc}", exitcodes.USAGE)
            return
        for entry in hosts:
            specs.append(SshSpec(
                host=entry.host, port=entry.port or 22, user=entry.user or default_user, name=entry.alias,
                group=entry.hypervisor, identity=identity or entry.identity, known_hosts=known_hosts,
                accept_new=accept_new, sudo=sudo or entry.sudo))
    if not specs:
        raise click.UsageError("give at least one [USER@]HOST[:PORT] or --inventory FILE")
    args = ScanArgs.pop(opts)
    if args.timeout is None:
        args = structs.replace(args, timeout=DEFAULT_TIMEOUT)
    run_scan(specs, args, settings={"concurrency": concurrency, "group_limit": per_hypervisor})
