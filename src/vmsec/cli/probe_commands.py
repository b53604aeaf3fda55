"""``vmsec probe TARGET…``: look at listeners from the network (handshakes only, never a login) and
tie what is seen to the configuration that put it there. Builds a :class:`~vmsec.specs.ProbeSpec` and
runs it through the same pipeline, reports, store and exit codes as ``vmsec scan``."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from vmsec.cli import exitcodes
from vmsec.cli.main import die
from vmsec.cli.options import Seconds
from vmsec.cli.scan_commands import ScanArgs, run_scan, scan_options_except


def parse_ports(text: str) -> tuple[tuple[int, ...], tuple[tuple[int, str], ...]]:
    """``22,5900-5910,16509,7000/libvirt`` → the ports (each 1..65535) and the protocols named
    after a slash (a port whose protocol the probe could not guess from its number)."""
    ports: list[int] = []
    hints: list[tuple[int, str]] = []
    for part in text.split(","):
        part, _, proto = part.strip().partition("/")
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            a = int(low)
            b = int(high) if sep else a
        except ValueError:
            raise click.BadParameter(f"{part!r} is not a port or a range like 5900-5910") from None
        if not (1 <= a <= b <= 65535):
            raise click.BadParameter(f"{part!r}: ports are 1..65535, ranges low-high")
        ports += range(a, b + 1)
        if proto:
            hints += [(p, proto.strip().lower()) for p in range(a, b + 1)]
    if not ports:
        raise click.BadParameter("no port given")
    return tuple(dict.fromkeys(ports)), tuple(hints)


def _default_log() -> str:
    from pathlib import Path

    from vmsec.userdirs import user_log_dir

    folder = Path(user_log_dir())
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / time.strftime("probe-%Y%m%dT%H%M%S.log"))


@click.command("probe")
@click.argument("targets", nargs=-1, required=True)
@click.option("--ports", metavar="LIST",
              help="Ports to try: '22,5900-5910,7000/libvirt' (a protocol after '/' for a port whose number "
                   "does not tell). Default: those the configuration predicts "
                   "(--from-*), else the console and management ports of a KVM host.")
@click.option("--from-scan", "from_scan", metavar="SCAN",
              help="Predict listeners from a stored scan (an id, 'latest' or 'previous') and probe them.")
@click.option("--from-libvirt", "from_libvirt", metavar="URI",
              help="Predict listeners from this libvirt connection's configuration and probe them.")
@click.option("--scope", multiple=True, metavar="CIDR",
              help="Networks non-loopback targets must lie in (repeatable). Loopback needs none.")
@click.option("--timeout", type=Seconds(0.05, 120), default=3.0, show_default=True,
              help="Seconds per connection (connect, then the handshake).")
@click.option("--concurrency", type=click.IntRange(1, 5000), default=500, show_default=True,
              help="Sockets open at once.")
@click.option("--rate", type=Seconds(0, 1e9), default=1000.0, show_default=True,
              help="New connections per second (0: no limit).")
@click.option("--contact-log", type=click.Path(dir_okay=False), default=None,
              help="Append one line per address:port contacted here (default: a new file in the user "
                   "log directory, named on standard error).")
@click.option("--no-tls-scan", is_flag=True,
              help="Do not enumerate TLS versions and cipher suites (sslyze); the handshake is still read.")
@scan_options_except("timeout")  # --timeout here is per connection
def probe(targets: tuple[str, ...], ports: str | None, from_scan: str | None, from_libvirt: str | None,
          scope: tuple[str, ...], timeout: float, concurrency: int, rate: float, contact_log: str | None,
          no_tls_scan: bool, **opts: Any) -> None:
    """Probe TARGETS (host names, addresses, CIDRs) from the network: VNC, SPICE, libvirt, NBD,
    migration, SSH and web-console listeners, handshakes only. Findings name the domain or daemon
    setting responsible when the configuration is given (--from-libvirt or --from-scan)."""
    from vmsec.specs import ProbeSpec

    if from_scan and from_libvirt:
        die("--from-scan and --from-libvirt are alternatives: give one", exitcodes.USAGE)
    try:
        port_list, hints = parse_ports(ports) if ports else (None, ())
    except click.BadParameter as exc:
        die(f"--ports: {exc.message}", exitcodes.USAGE)
        return
    log = contact_log or _default_log()
    click.echo(f"vmsec: contact log: {log}", err=True)
    spec = ProbeSpec(targets=targets, ports=port_list, scope=scope, from_scan=from_scan,
                     from_libvirt=from_libvirt, timeout=timeout, concurrency=concurrency,
                     rate=rate or None, store_url=opts.get("store_url"), contact_log=log,
                     tls_scan=not no_tls_scan, hints=hints)
    run_scan([spec], ScanArgs.pop(opts))
    sys.exit(exitcodes.OK)  # pragma: no cover - run_scan exits
