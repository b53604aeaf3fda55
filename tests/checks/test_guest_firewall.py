"""Guest firewall checks (VMS-GST-118…120)."""

from __future__ import annotations

from typing import Any

import pytest

from vmsec.checks.guest import firewall as fwc
from vmsec.facts import Guest
from vmsec.facts.guest import FirewallSetup
from vmsec.findings import Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN


def g(fw: FirewallSetup | None) -> Guest:
    return Guest(name="vm", origin="/img", firewall=fw)


def fw(policy: str | None = None, **mechs: bool | None) -> FirewallSetup:
    return FirewallSetup(mechanisms=mechs, default_input_policy=policy, origin="/etc/nftables.conf")


CASES = [
    (fwc.firewall_enabled, None, [U]),
    (fwc.firewall_enabled, fw(), [F]),
    (fwc.firewall_enabled, fw(nftables=False), [F]),
    (fwc.firewall_enabled, fw(nftables=None), [U]),
    (fwc.firewall_enabled, fw(nftables=True), [P]),
    (fwc.default_deny_input, None, [U]),
    (fwc.default_deny_input, fw("drop", nftables=True), [P]),
    (fwc.default_deny_input, fw("DROP", iptables=True), [P]),
    (fwc.default_deny_input, fw("accept", nftables=True), [F]),
    (fwc.default_deny_input, fw(None, nftables=True), [U]),
    (fwc.default_deny_input, fw("accept", nftables=False), []),
    (fwc.single_firewall, fw(nftables=True), [P]),
    (fwc.single_firewall, fw(ufw=True, firewalld=True), [F]),
    (fwc.single_firewall, fw(), []),
]


@pytest.mark.parametrize(("func", "facts", "expected"), CASES,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(CASES)])
def test_firewall(func: Any, facts: FirewallSetup | None, expected: list[Status]) -> None:
    assert [r.status for r in func(g(facts))] == expected


UNREAD = {"firewall": ("/etc/nftables.d: Permission denied",)}


@pytest.mark.parametrize(("func", "setup", "expected"), [
    (fwc.firewall_enabled, fw(nftables=True), [P]),  # enabled, and seen so
    (fwc.firewall_enabled, fw(nftables=False), [U]),  # "none is enabled" may be wrong
    (fwc.firewall_enabled, fw(), [U]),
    (fwc.default_deny_input, fw("drop", nftables=True), [U]),  # an unread include may accept
    (fwc.default_deny_input, fw("accept", nftables=True), [U]),  # or hold a dropping input chain
    (fwc.single_firewall, fw(nftables=True), [U]),
    (fwc.single_firewall, fw(ufw=True, firewalld=True), [F]),
])
def test_with_an_unread_firewall_file(func: Any, setup: FirewallSetup, expected: list[Status]) -> None:
    results = list(func(Guest(name="vm", origin="/img", firewall=setup, unread=UNREAD)))
    assert [r.status for r in results] == expected
    assert all("/etc/nftables.d: Permission denied" in r.message for r in results if r.status is U)
