"""Guest provisioning checks: cloud-init (VMS-GST-132…134) and the QEMU guest agent (135, 136)."""

from __future__ import annotations

from typing import Any

import pytest

from vmsec.checks.guest import provisioning as pv
from vmsec.facts import Guest
from vmsec.facts.guest import CloudInitSetup, GuestAgentSetup
from vmsec.findings import Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
CFG = ("/etc/cloud/cloud.cfg", "/etc/cloud/cloud.cfg.d/90-local.cfg")


def ci(**kw: Any) -> CloudInitSetup:
    return CloudInitSetup(present=True, origins=CFG, **kw)


CLOUD_CASES = [
    (pv.cloud_init_ssh_pwauth, None, [U]),
    (pv.cloud_init_ssh_pwauth, CloudInitSetup(present=False), []),
    (pv.cloud_init_ssh_pwauth, ci(ssh_pwauth=True), [F]),
    (pv.cloud_init_ssh_pwauth, ci(ssh_pwauth=False), [P]),
    (pv.cloud_init_ssh_pwauth, ci(), [P]),
    (pv.cloud_init_plaintext_passwords, ci(), [P]),
    (pv.cloud_init_plaintext_passwords,
     ci(plaintext_passwords=("/var/lib/cloud/instances/i-1/user-data.txt users[0].plain_text_passwd",
                             "/etc/cloud/cloud.cfg.d/90-local.cfg chpasswd.users[1]")), [F, F]),
    (pv.cloud_init_plaintext_passwords, None, [U]),
    (pv.cloud_init_disable_root, ci(disable_root=False), [F]),
    (pv.cloud_init_disable_root, ci(disable_root=True), [P]),
    (pv.cloud_init_disable_root, ci(), [P]),
]


@pytest.mark.parametrize(("func", "facts", "expected"), CLOUD_CASES,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(CLOUD_CASES)])
def test_cloud_init(func: Any, facts: CloudInitSetup | None, expected: list[Status]) -> None:
    assert [r.status for r in func(Guest(name="vm", origin="/img", cloud_init=facts))] == expected


@pytest.mark.parametrize("place", ["/etc/cloud/cloud.cfg.d/90-local.cfg users[0].plain_text_passwd",
                                   "/etc/cloud/cloud.cfg.d/90-local.cfg: users[0].plain_text_passwd"])
def test_plaintext_password_value_is_never_in_evidence(place: str) -> None:
    facts = ci(plaintext_passwords=(place,))
    [r] = pv.cloud_init_plaintext_passwords(Guest(name="vm", origin="/img", cloud_init=facts))
    assert r.evidence[0].value == "(redacted)"
    assert r.evidence[0].source == "/etc/cloud/cloud.cfg.d/90-local.cfg"
    assert r.evidence[0].locator == "users[0].plain_text_passwd"


def agent(**kw: Any) -> GuestAgentSetup:
    return GuestAgentSetup(installed=True, origin="/etc/qemu/qemu-ga.conf", **kw)


ALL_BLOCKED = ("guest-exec", "guest-exec-status", "guest-file-open", "guest-file-read",
               "guest-file-write", "guest-file-close", "guest-set-user-password",
               "guest-ssh-add-authorized-keys")

AGENT_CASES = [
    (pv.guest_agent_exec, None, [U]),
    (pv.guest_agent_exec, GuestAgentSetup(installed=False), [P]),
    (pv.guest_agent_exec, agent(enabled=True), [F, F]),  # Debian default: nothing blocked
    (pv.guest_agent_exec, agent(enabled=False), [F, F]),  # udev starts it anyway
    (pv.guest_agent_exec, agent(blocked_rpcs=("guest-exec", "guest-exec-status")), [P, F]),
    (pv.guest_agent_exec, agent(blocked_rpcs=ALL_BLOCKED), [P, P]),
    (pv.guest_agent_exec, agent(allowed_rpcs=("guest-ping", "guest-info")), [P, P]),
    (pv.guest_agent_exec, agent(allowed_rpcs=("guest-ping", "guest-file-read")), [P, F]),
    (pv.guest_agent_credentials, agent(), [F]),
    (pv.guest_agent_credentials, agent(blocked_rpcs=ALL_BLOCKED), [P]),
    (pv.guest_agent_credentials, GuestAgentSetup(installed=False), [P]),
]


@pytest.mark.parametrize(("func", "facts", "expected"), AGENT_CASES,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(AGENT_CASES)])
def test_guest_agent(func: Any, facts: GuestAgentSetup | None, expected: list[Status]) -> None:
    assert [r.status for r in func(Guest(name="vm", origin="/img", guest_agent=facts))] == expected


def test_guest_agent_message_lists_open_rpcs() -> None:
    facts = agent(blocked_rpcs=("guest-file-open",))
    results = list(pv.guest_agent_exec(Guest(name="vm", origin="/img", guest_agent=facts)))
    assert "guest-exec, guest-exec-status" in results[0].message
    assert "guest-file-open" not in results[1].message and "guest-file-read" in results[1].message
