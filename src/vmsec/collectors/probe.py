"""The probe collector: listeners looked at from the network, handshakes only, and — with
``from_libvirt`` or ``from_scan`` — the listeners the configuration predicts, so checks can tie each
endpoint to the domain or daemon setting responsible.

Safety (docs/probe-safety.md): targets outside loopback are refused unless ``scope`` contains them
(before anything is contacted); at most ``concurrency`` sockets are open at once and at most ``rate``
new connections start per second; every connection has a deadline and a byte budget; every
address:port contacted is written to the contact log; nothing authenticates and nothing is sent to a
console beyond its handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from vmsec.errors import ConfigError, SourceUnavailable, StoreError, VmsecError
from vmsec.facts import CollectionRecord, Endpoint, ExpectedListener, Inventory, ProbeRun, Proto, evolve
from vmsec.probes.net import MAX_ATTEMPTS, Address, ContactLog, resolve_targets
from vmsec.probes.sweep import Attempt, Sweep, well_known
from vmsec.probes.tls import deep_scan, merge

if TYPE_CHECKING:
    from vmsec.collectors import CollectContext
    from vmsec.specs import ProbeSpec, TargetSpec

# Without --ports and without a configuration: the console and management ports of a KVM host.
DEFAULT_PORTS: tuple[int, ...] = (22, *range(5900, 5911), *range(5700, 5711), 6080, 9090, 10809, 16509,
                                  16514)
DIRECT_TLS = frozenset({Proto.SPICE_TLS, Proto.LIBVIRT_TLS, Proto.HTTPS, Proto.TLS, Proto.VNC_WEBSOCKET})
MAX_TLS_SCANS = 256


def _configuration(spec: ProbeSpec, context: CollectContext) -> tuple[tuple[ExpectedListener, ...] | None,
                                                                      str | None, list[CollectionRecord]]:
    """The predicted listeners, where they came from, and what could not be read."""
    from vmsec.listeners import expected_listeners, from_details

    if spec.from_libvirt:
        from vmsec.collectors.libvirt import collect_libvirt

        context.step(f"reading the configuration from {spec.from_libvirt}")
        inventory = collect_libvirt(spec.from_libvirt)
        return expected_listeners(inventory), f"libvirt {spec.from_libvirt}", list(inventory.errors)
    if spec.from_scan:
        from vmsec.store.store import open_store

        context.step(f"reading stored scan {spec.from_scan}")
        try:
            with open_store(spec.store_url) as store:
                scan_id = store.resolve(spec.from_scan)
                stored = store.load(scan_id)
        except StoreError as exc:
            raise ConfigError(f"--from-scan {spec.from_scan}: {exc}") from exc
        found: list[ExpectedListener] = []
        for details in stored.details.values():
            listeners = details.get("listeners")
            if isinstance(listeners, list):
                found += from_details([item for item in listeners if isinstance(item, dict)])
        return tuple(found), f"scan {scan_id} ({stored.source})", []
    return None, None, []


def _attempts(addresses: list[Address], ports: tuple[int, ...], expected: tuple[ExpectedListener, ...] | None,
              hints: dict[int, Proto]) -> Iterator[Attempt]:
    by_port: dict[int, ExpectedListener] = {}
    ranges: list[ExpectedListener] = []
    for e in expected or ():
        if e.port is None:
            continue
        if e.port_max is None:
            by_port.setdefault(e.port, e)
        else:
            ranges.append(e)
    for address in addresses:
        for port in ports:
            match = by_port.get(port) or next((r for r in ranges if r.covers(port)), None)
            if match is not None:
                yield Attempt(address, port, match.protocol, expected=True, tls=match.tls)
            else:
                yield Attempt(address, port, hints.get(port) or well_known(port))


def _ports(spec: ProbeSpec, expected: tuple[ExpectedListener, ...] | None) -> tuple[int, ...]:
    if spec.ports:
        return tuple(dict.fromkeys(spec.ports))
    if expected is not None:
        ports: list[int] = []
        for e in expected:
            if e.port is not None:
                ports += range(e.port, (e.port_max if e.port_max is not None else e.port) + 1)
        return tuple(sorted(set(ports)))
    return DEFAULT_PORTS


@contextlib.contextmanager
def _log_file(path: str | None) -> Iterator[TextIO | None]:
    if path is None:
        yield None
        return
    try:
        fh = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ConfigError(f"cannot write the contact log {path}: {exc.strerror or exc}") from exc
    with fh:
        yield fh


async def collect_async(spec: TargetSpec, context: CollectContext) -> Inventory:
    from vmsec.specs import ProbeSpec

    assert isinstance(spec, ProbeSpec)
    for name, value in (("timeout", spec.timeout), ("concurrency", spec.concurrency)):
        if not value or value <= 0:
            raise ConfigError(f"probe {name} must be positive (got {value})")
    began = time.monotonic()
    addresses = resolve_targets(spec.targets, spec.scope)  # before anything is contacted
    if not addresses:
        raise ConfigError("nothing to probe: no target address")
    expected, configuration, records = await asyncio.to_thread(_configuration, spec, context)
    try:
        hints = {port: Proto(name) for port, name in spec.hints}
    except ValueError as exc:
        known = ", ".join(p.value for p in Proto)
        raise ConfigError(f"unknown protocol in a port hint: {exc} (one of {known})") from exc
    ports = _ports(spec, expected)
    if not ports:
        raise ConfigError("nothing to probe: the configuration predicts no TCP listener and no --ports "
                          "were given")
    if len(addresses) * len(ports) > MAX_ATTEMPTS:
        raise ConfigError(f"{len(addresses)} addresses × {len(ports)} ports is more than {MAX_ATTEMPTS} "
                          "probes")
    with _log_file(spec.contact_log) as log_out:
        log = ContactLog(log_out)
        sweep = Sweep(timeout=spec.timeout, concurrency=spec.concurrency, rate=spec.rate, log=log,
                      progress=context.progress)
        context.step(f"probing {len(addresses)} address(es) × {len(ports)} port(s)")
        endpoints = await sweep.run(_attempts(addresses, ports, expected, hints))
    if spec.tls_scan:
        endpoints = await _tls_scan(endpoints, spec.timeout, records)
    tally = sweep.tally
    records.append(CollectionRecord(
        source=" ".join(spec.targets), what="network probe", ok=True,
        reason=(f"{tally.attempts} address:port probed: {tally.open} open, {tally.closed} closed, "
                f"{tally.filtered} filtered, {tally.unreachable} unreachable"),
        duration_s=round(time.monotonic() - began, 3)))
    run = ProbeRun(targets=spec.targets, scope=spec.scope, ports=ports, addresses=len(addresses),
                   attempts=log.lines, configuration=configuration, contact_log=spec.contact_log)
    return Inventory(endpoints=tuple(endpoints), expected=expected, probe=run, records=tuple(records),
                     source=spec.describe())


async def _tls_scan(endpoints: list[Endpoint], timeout: float, records: list[CollectionRecord]
                    ) -> list[Endpoint]:
    """sslyze's full scan of the direct-TLS endpoints whose handshake succeeded."""
    wanted = [e for e in endpoints if e.protocol in DIRECT_TLS and e.tls is not None
              and e.tls.handshake_error is None and e.tls.version is not None]
    if not wanted:
        return endpoints
    skipped = wanted[MAX_TLS_SCANS:]
    if skipped:
        records.append(CollectionRecord(source="sslyze", what="TLS scan", ok=False,
                                        reason=f"{len(skipped)} TLS endpoints beyond the first "
                                               f"{MAX_TLS_SCANS} were not enumerated"))
    try:
        found = await asyncio.to_thread(deep_scan, [(e.address, e.port) for e in wanted[:MAX_TLS_SCANS]],
                                        timeout)
    except Exception as exc:  # sslyze is a large foreign library: its failure is a record, not a crash
        records.append(CollectionRecord(source="sslyze", what="TLS scan", ok=False,
                                        reason=f"{type(exc).__name__}: {exc}"))
        return endpoints
    out = []
    for e in endpoints:
        deep = found.get((e.address, e.port))
        out.append(evolve(e, tls=merge(e.tls, deep)) if deep is not None else e)
    return out


def collect(spec: TargetSpec, context: CollectContext) -> Inventory:
    try:
        return asyncio.run(collect_async(spec, context))
    except VmsecError:
        raise
    except OSError as exc:
        raise SourceUnavailable(f"probe failed: {exc}") from exc
