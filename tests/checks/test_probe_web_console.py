"""VMS-PRB-012 on a recorded endpoint whose answer is changed to a state the probe produces but no test
server of tests/probe gives: a TLS WebSocket that upgrades and then sends no RFB greeting
(``probes/http.py``: "no RFB greeting through the WebSocket"). Whether that console asks for
credentials was not seen: UNKNOWN, never PASS."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from vmsec.checks.api import Environment, results_of
from vmsec.checks.probe.consoles import web_console_protected
from vmsec.facts import Endpoint, HttpInfo, Inventory, VncInfo
from vmsec.findings import Status

RECORDED = Path(__file__).resolve().parents[1] / "data/checks/VMS-PRB-012/wss-password.PASS.json"


def _recorded() -> Endpoint:
    [raw] = msgspec.json.decode(RECORDED.read_bytes())["endpoints"]
    return msgspec.convert(raw, Endpoint)


def _verdict(endpoint: Endpoint) -> tuple[Status, str]:
    [result] = results_of(web_console_protected, endpoint, Environment(inventory=Inventory(), host=None))
    return result.status, result.message


def test_the_recorded_tls_websocket_with_a_password_passes() -> None:
    assert _verdict(_recorded())[0] is Status.PASS


@pytest.mark.parametrize("http", [
    HttpInfo(tls=True, status=101, websocket=True, error="no RFB greeting through the WebSocket"),
    HttpInfo(tls=True, status=101, websocket=True, product="vnc-websocket",
             vnc=VncInfo(version="RFB 003.008", error="the connection closed")),
], ids=["no-greeting", "no-security-types"])
def test_a_tls_websocket_without_a_seen_handshake_is_unknown(http: HttpInfo) -> None:
    status, message = _verdict(msgspec.structs.replace(_recorded(), http=http))
    assert status is Status.UNKNOWN
    assert "could not be read" in message and ("no RFB greeting" in message or "closed" in message)
