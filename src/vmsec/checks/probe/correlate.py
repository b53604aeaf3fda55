"""Tie what a probe saw to the configuration that explains it.

For an endpoint, :func:`attribute` finds the listener the configuration predicts on that port (a
domain's display, libvirtd's listener, qemu.conf's migration range …) and says how the observation
relates to it:

- ``confirmed`` — the configuration predicts this listener, as seen;
- ``contradicted`` — the configuration says loopback, TLS, authentication or another protocol, and
  the network shows otherwise (a NAT rule, a proxy, a stale process …);
- ``unexplained`` — an open listener nothing in the configuration explains;
- ``not-reachable`` — predicted, but closed or filtered from the probe's vantage point;
- ``no-configuration`` — the probe ran without ``--from-libvirt`` / ``--from-scan``.

Every endpoint check adds this to its findings (:func:`context`), so each finding names the domain
(name, UUID) or daemon and the XML element or configuration key responsible.
"""

from __future__ import annotations

import ipaddress

from msgspec import Struct

from vmsec.checks.addresses import is_loopback, is_wildcard
from vmsec.checks.api import Environment, Severity, ev
from vmsec.facts import Endpoint, ExpectedListener, PortState, Proto
from vmsec.findings import Evidence

CONFIRMED = "confirmed"
CONTRADICTED = "contradicted"
UNEXPLAINED = "unexplained"
NOT_REACHABLE = "not-reachable"
NO_CONFIGURATION = "no-configuration"

# Protocols a predicted listener may show up as (SPICE's port answers SPICE, a websocket HTTP …).
_COMPATIBLE: dict[Proto, frozenset[Proto]] = {
    Proto.VNC: frozenset({Proto.VNC}),
    Proto.VNC_WEBSOCKET: frozenset({Proto.VNC_WEBSOCKET, Proto.HTTP, Proto.HTTPS}),
    Proto.SPICE: frozenset({Proto.SPICE}),
    Proto.SPICE_TLS: frozenset({Proto.SPICE_TLS, Proto.TLS}),
    Proto.LIBVIRT: frozenset({Proto.LIBVIRT}),
    Proto.LIBVIRT_TLS: frozenset({Proto.LIBVIRT_TLS, Proto.TLS}),
    Proto.SSH: frozenset({Proto.SSH}),
    Proto.MIGRATION: frozenset({Proto.MIGRATION, Proto.NBD}),
}


class Attribution(Struct, frozen=True):
    state: str
    listener: ExpectedListener | None
    reason: str  # why contradicted / a short phrase

    @property
    def owner(self) -> str:
        e = self.listener
        if e is None:
            return "nothing in the configuration"
        if e.owner_kind == "domain":
            return f"domain {e.owner}" + (f" ({e.uuid})" if e.uuid else "")
        return f"{e.owner} (daemon)"

    @property
    def element(self) -> str:
        e = self.listener
        return e.refs[0].locator if e is not None and e.refs else ""

    def phrase(self) -> str:
        if self.state == NO_CONFIGURATION:
            return "no configuration given to correlate with"
        if self.state == UNEXPLAINED:
            return "unexplained: no domain or daemon setting in the configuration predicts it"
        where = f"{self.owner}, {self.element}" if self.element else self.owner
        if self.state == CONTRADICTED:
            return f"contradicts the configuration of {where}: {self.reason}"
        if self.state == NOT_REACHABLE:
            return f"predicted by {where}, not reachable"
        return f"confirmed: {where}"

    def evidence(self) -> tuple[Evidence, ...]:
        out = [ev("correlation", self.owner, self.state)]
        if self.listener is not None:
            out += [ev(r.source, r.locator, r.value) for r in self.listener.refs]
        return tuple(out)


def _candidates(endpoint: Endpoint, expected: tuple[ExpectedListener, ...]) -> list[ExpectedListener]:
    exact = [e for e in expected if e.port == endpoint.port and e.port_max is None]
    return exact or [e for e in expected if e.covers(endpoint.port)]


def _same_address(configured: str, seen: str) -> bool | None:
    try:
        return ipaddress.ip_address(configured.strip("[]")) == ipaddress.ip_address(seen)
    except ValueError:
        return None  # a host name: cannot be compared


def observed_tls(endpoint: Endpoint) -> bool | None:
    """Whether the listener protected its session with TLS, as seen."""
    if endpoint.vnc is not None and endpoint.vnc.security_types is not None:
        return bool({18, 19} & set(endpoint.vnc.security_types))
    if endpoint.http is not None:
        return endpoint.http.tls
    if endpoint.tls is not None:
        return endpoint.tls.version is not None
    if endpoint.spice is not None:
        return endpoint.protocol is Proto.SPICE_TLS
    if endpoint.libvirt is not None:
        return endpoint.protocol is Proto.LIBVIRT_TLS
    return None


def observed_open_access(endpoint: Endpoint) -> bool | None:
    """Whether the listener lets a client in without any credential, as seen."""
    vnc = endpoint.vnc or (endpoint.http.vnc if endpoint.http is not None else None)
    if vnc is not None and vnc.security_types is not None:
        return 1 in vnc.security_types
    if endpoint.spice is not None:
        return None if endpoint.spice.ticket_required is None else not endpoint.spice.ticket_required
    if endpoint.libvirt is not None and endpoint.libvirt.auth_types is not None:
        return "none" in endpoint.libvirt.auth_types
    return None


def _contradiction(endpoint: Endpoint, e: ExpectedListener) -> str | None:
    if endpoint.protocol not in (Proto.UNKNOWN,) and endpoint.protocol not in _COMPATIBLE.get(
            e.protocol, frozenset({e.protocol})):
        return f"it predicts {e.protocol.value}, the network sees {endpoint.protocol.value}"
    if e.address is not None and not is_wildcard(e.address):
        same = _same_address(e.address, endpoint.address)
        if same is False or (same is None and is_loopback(e.address) and not is_loopback(endpoint.address)):
            return f"it listens on {e.address}, yet {endpoint.label} answers"
    if e.tls and observed_tls(endpoint) is False:
        return "it requires TLS, the listener answers without TLS"
    if e.auth not in (None, "none") and observed_open_access(endpoint):
        return f"it requires authentication ({e.auth}), the listener lets clients in without any"
    return None


def attribute(endpoint: Endpoint, env: Environment) -> Attribution:
    expected = env.inventory.expected
    if expected is None:
        return Attribution(NO_CONFIGURATION, None, "")
    found = _candidates(endpoint, expected)
    if not found:
        if endpoint.state is PortState.OPEN:
            return Attribution(UNEXPLAINED, None, "")
        return Attribution(NOT_REACHABLE, None, "")
    if endpoint.state is not PortState.OPEN:
        return Attribution(NOT_REACHABLE, found[0], endpoint.state.value)
    # Prefer a listener of the protocol seen (two domains cannot share a port; a range can overlap).
    listener = next((e for e in found if endpoint.protocol in _COMPATIBLE.get(e.protocol, frozenset())),
                    found[0])
    reason = _contradiction(endpoint, listener)
    if reason is not None:
        return Attribution(CONTRADICTED, listener, reason)
    return Attribution(CONFIRMED, listener, "")


def context(endpoint: Endpoint, env: Environment) -> tuple[str, tuple[Evidence, ...]]:
    """The correlation phrase and evidence every endpoint finding carries."""
    a = attribute(endpoint, env)
    return a.phrase(), a.evidence()


def exposure(endpoint: Endpoint, severity: Severity) -> Severity:
    """A loopback endpoint is reachable by local users only: one step less severe."""
    if not is_loopback(endpoint.address):
        return severity
    return {Severity.CRITICAL: Severity.HIGH, Severity.HIGH: Severity.MEDIUM}.get(severity, severity)


def observed(endpoint: Endpoint, what: str, value: object) -> Evidence:
    return ev(f"probe {endpoint.label}", what, value)
