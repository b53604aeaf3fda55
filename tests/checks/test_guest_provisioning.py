"""Guest provisioning checks: cloud-init (VMS-GST-132…134) and the QEMU guest agent (135, 136)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from denied_reader import DeniedReader
from vmsec.checks.guest import provisioning as pv
from vmsec.collectors.guest import collect_guest
from vmsec.collectors.reader import RootReader
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


DROPDIR = "/etc/systemd/system/qemu-guest-agent.service.d"
UNREAD = {"guest_agent": (f"{DROPDIR}: Permission denied",)}

UNREAD_CASES = [
    (pv.guest_agent_exec, agent(blocked_rpcs=ALL_BLOCKED), [U, U]),  # a drop-in may unblock them
    (pv.guest_agent_exec, agent(enabled=True), [U, U]),  # open only by qemu-ga's default: a drop-in may block
    (pv.guest_agent_exec, agent(allowed_rpcs=("guest-ping", "guest-file-read")), [U, F]),  # allowed: found
    (pv.guest_agent_credentials, agent(blocked_rpcs=ALL_BLOCKED), [U]),
    (pv.guest_agent_credentials, agent(), [U]),
]


@pytest.mark.parametrize(("func", "facts", "expected"), UNREAD_CASES,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(UNREAD_CASES)])
def test_guest_agent_with_unread_inputs_is_unknown_unless_an_allow_list_read_names_the_rpc(
        func: Any, facts: GuestAgentSetup, expected: list[Status]) -> None:
    results = list(func(Guest(name="vm", origin="/img", guest_agent=facts, unread=UNREAD)))
    assert [r.status for r in results] == expected
    assert all(f"{DROPDIR}: Permission denied" in r.message for r in results if r.status is U)



def agent_root(base: Path, config: str) -> Path:
    """A Debian-like guest: qemu-ga.conf as given, and a root-only drop-in that points qemu-ga at a
    configuration that blocks nothing (the reviewer's case)."""
    files = {"var/lib/dpkg/status": "Package: qemu-guest-agent\nStatus: install ok installed\n"
                                    "Version: 1:10.0.2+ds-2\n",  # 9.1 and later: -c and allow-rpcs
             "lib/systemd/system/qemu-guest-agent.service": "[Service]\nExecStart=/usr/sbin/qemu-ga\n",
             "etc/qemu/qemu-ga.conf": config, "etc/qemu/open.conf": "[general]\n",
             f"{DROPDIR.lstrip('/')}/50-open.conf":
                 "[Service]\nExecStart=\nExecStart=/usr/sbin/qemu-ga -c /etc/qemu/open.conf\n"}
    for name, text in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text)
    return base


def scan(reader: RootReader, base: Path) -> tuple[Guest, list[Any]]:
    guest, _ = collect_guest(reader, name="vm", origin=str(base))
    return guest, list(pv.guest_agent_exec(guest))


@pytest.mark.parametrize("denied", [DROPDIR, f"{DROPDIR}/50-open.conf"])
def test_guest_agent_dropin_unread_by_the_scanner_is_unknown(tmp_path: Path, denied: str) -> None:
    base = agent_root(tmp_path, "[general]\nblock-rpcs=" + ",".join(ALL_BLOCKED) + "\n")
    _, whole = scan(RootReader(str(base)), base)
    assert [r.status for r in whole] == [F, F]  # read in full: the drop-in reopens everything
    guest, results = scan(DeniedReader(base, denied), base)
    assert [r.status for r in results] == [U, U]
    assert guest.unread["guest_agent"] == (f"{denied}: Permission denied",)
    assert all(f"{denied}: Permission denied" in r.message for r in results)


def test_guest_agent_rpc_an_allow_list_read_names_stays_a_fail_with_a_dropin_unread(tmp_path: Path) -> None:
    base = agent_root(tmp_path, "[general]\nallow-rpcs=guest-ping,guest-file-read\n")
    _, results = scan(DeniedReader(base, f"{DROPDIR}/50-open.conf"), base)
    assert [r.status for r in results] == [U, F]


def test_cloud_init_passwords_as_cloud_init_reads_them_fail(tmp_path: Path) -> None:
    # A users mapping with a numeric password, and user data whose empty "password:" cloud-init sets
    # as the literal password "None"; a SHA-512 chpasswd entry is a hash and passes unnoticed.
    (tmp_path / "etc/cloud").mkdir(parents=True)
    (tmp_path / "etc/cloud/cloud.cfg").write_text("users:\n  ops:\n    plain_text_passwd: 12345678\n")
    instance = tmp_path / "var/lib/cloud/instance"
    instance.mkdir(parents=True)
    (instance / "user-data.txt").write_text("#cloud-config\npassword:\nchpasswd:\n  list: |\n"
                                            "    dan:$6$salt$hash\n")
    guest, _ = collect_guest(RootReader(str(tmp_path)), name="vm", origin=str(tmp_path))
    results = list(pv.cloud_init_plaintext_passwords(guest))
    assert [(r.status, r.evidence[0].source) for r in results] == [
        (F, "/etc/cloud/cloud.cfg"), (F, "/var/lib/cloud/instance/user-data.txt")]
    assert "12345678" not in repr(results)
