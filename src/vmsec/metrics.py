"""Prometheus metrics of the workers and the monitor (prometheus-client, the ``fleet`` extra).

Each process has its own registry, served at ``/metrics`` by :meth:`Metrics.serve`:

- ``vmsec_findings{host, vm, severity}`` — FAIL findings of each audited VM (and host: ``vm=""``);
- ``vmsec_scan_duration_seconds{kind}`` — how long a scan (a fleet target, a monitor audit) took;
- ``vmsec_last_success_timestamp_seconds{target}`` — when that target was last scanned completely;
- ``vmsec_scans_total{kind, outcome}``;
- ``vmsec_events_total{uri, event}``, ``vmsec_alerts_total{kind, severity}``,
  ``vmsec_event_to_alert_seconds`` (libvirt event → alert sent), ``vmsec_missed_events_total{uri}``
  (changes found on resynchronisation that no event announced), ``vmsec_reconnects_total{uri}``,
  ``vmsec_connected{uri}`` — the monitor.

Label values come from scanned machines (VM names): they are cut to 200 characters; the exposition
format escapes them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from vmsec.findings import Finding, Severity, Status

__all__ = ["Metrics", "fail_counts"]

_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
_SCAN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


def _label(value: str | None) -> str:
    return (value or "")[:200]


def fail_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """FAIL findings by severity (every severity present, zeros included)."""
    counts = {s.value: 0 for s in Severity}
    for f in findings:
        if f.status is Status.FAIL:
            counts[f.severity.value] += 1
    return counts


class Metrics:
    """The metric families above, in a registry of their own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.findings = Gauge("vmsec_findings", "FAIL findings of the last audit, per host, VM and severity",
                              ["host", "vm", "severity"], registry=r)
        self.scan_duration = Histogram("vmsec_scan_duration_seconds", "Duration of scans",
                                       ["kind"], buckets=_SCAN_BUCKETS, registry=r)
        self.last_success = Gauge("vmsec_last_success_timestamp_seconds",
                                  "When the target was last scanned completely (Unix time)",
                                  ["target"], registry=r)
        self.scans = Counter("vmsec_scans_total", "Scans by outcome", ["kind", "outcome"], registry=r)
        self.events = Counter("vmsec_events_total", "libvirt domain events received",
                              ["uri", "event"], registry=r)
        self.alerts = Counter("vmsec_alerts_total", "Alerts raised", ["kind", "severity"], registry=r)
        self.lag = Histogram("vmsec_event_to_alert_seconds", "From a libvirt event to its alert",
                             buckets=_LAG_BUCKETS, registry=r)
        self.missed = Counter("vmsec_missed_events_total",
                              "Domain changes found on resynchronisation that no event announced",
                              ["uri"], registry=r)
        self.reconnects = Counter("vmsec_reconnects_total", "Reconnections to libvirt", ["uri"], registry=r)
        self.connected = Gauge("vmsec_connected", "1 while the libvirt connection is up", ["uri"], registry=r)
        self._server: Any = None

    def set_findings(self, host: str | None, vm: str | None, counts: dict[str, int]) -> None:
        for severity, n in counts.items():
            self.findings.labels(_label(host), _label(vm), severity).set(n)

    def forget_vm(self, host: str | None, vm: str) -> None:
        for severity in Severity:
            with contextlib.suppress(KeyError):
                self.findings.remove(_label(host), _label(vm), severity.value)

    def serve(self, port: int, address: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``address:port`` (0: a free port) in a daemon thread; the port."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
