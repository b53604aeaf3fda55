"""`vmsec scan ssh` as a user runs it: a real process, real guests, a real Ansible inventory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sshd
from ports import free_port
from vmsec.cli.ssh_commands import parse_target

pytestmark = pytest.mark.ssh

VMSEC = [sys.executable, "-m", "vmsec.cli.main"]


@pytest.mark.parametrize(("text", "expected"), [
    ("web01", (None, "web01", None)),
    ("admin@web01:2222", ("admin", "web01", 2222)),
    ("10.0.0.5", (None, "10.0.0.5", None)),
    ("root@[fe80::1]:22", ("root", "fe80::1", 22)),
    ("[::1]", (None, "::1", None)),
])
def test_targets_are_parsed(text: str, expected: tuple[str | None, str, int | None]) -> None:
    assert parse_target(text) == expected


def test_scan_ssh_with_an_inventory(debian_guest: sshd.SshServer, tmp_path: Path) -> None:
    closed = free_port()
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[hv1]\n"
        f"guest-a ansible_host=127.0.0.1 ansible_port={debian_guest.port}\n"
        f"guest-down ansible_host=127.0.0.1 ansible_port={closed}\n"
        "[hv1:vars]\nansible_user=root\nvmsec_hypervisor=hv1\n")
    out = tmp_path / "report.json"
    done = subprocess.run(
        [*VMSEC, "scan", "ssh", f"root@127.0.0.1:{debian_guest.port}", "--inventory", str(inventory),
         "--identity", str(debian_guest.client_key), "--known-hosts", str(debian_guest.known_hosts),
         "--concurrency", "8", "--per-hypervisor", "2", "--timeout", "60", "--format", "json", "-o", str(out),
         "--no-store", "--quiet"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 3, done.stderr  # one target could not be read: the scan is incomplete
    report = json.loads(out.read_text())
    names = {t["name"] for t in report["targets"]}
    assert {"guest-a", f"127.0.0.1:{debian_guest.port}"} <= names
    errors = report["collection_errors"]
    assert any("guest-down" in e["source"] and "cannot connect" in e["reason"] for e in errors), errors


def test_scan_ssh_needs_a_target() -> None:
    done = subprocess.run([*VMSEC, "scan", "ssh"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "HOST" in done.stderr
