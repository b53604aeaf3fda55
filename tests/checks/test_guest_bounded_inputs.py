"""A bound that cut the reading of a hostile input (an Include wildcard over a symlink maze, an alias
expansion past its budget) leaves the fact incomplete: what the part read shows is still judged, but
nothing passes that the cut part could contradict — UNKNOWN, naming the cut."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmsec.checks.api import Environment, results_of
from vmsec.checks.guest import ssh, sudo
from vmsec.collectors.reader import RootReader
from vmsec.facts import Account, Guest, Inventory
from vmsec.findings import Status
from vmsec.parsers import sudoers as sudoers_parser
from vmsec.parsers.sshd_config import MAX_FILES, read_sshd_config
from vmsec.parsers.sudoers import parse_sudoers

ROOT = Account(name="root", uid=0, gid=0, shell="/bin/bash")


def run(func: object, guest: Guest) -> list[tuple[Status, str]]:
    env = Environment(inventory=Inventory(guests=(guest,)), host=None)
    return [(r.status, r.message) for r in results_of(func, guest, env)]  # type: ignore[arg-type]


def test_root_login_behind_an_include_the_budget_cut_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for i in range(MAX_FILES + 44):
        os.symlink(".", tmp_path / "d" / f"x{i}")
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text(
        "".join(f"Include /d/*/*/*.c{i}\n" for i in range(3)) + "PermitRootLogin no\n")
    cfg = read_sshd_config(RootReader(str(tmp_path)), version="9.2p1", distro="debian")
    guest = Guest(name="t", origin=str(tmp_path), sshd=cfg, sshd_installed=True, accounts=(ROOT,))
    [(status, message)] = run(ssh.root_login, guest)
    assert status is Status.UNKNOWN  # an included file sshd reads first may say yes
    assert "/etc/ssh/sshd_config:1: Include /d/*/*/*.c0 was not expanded in full" in message


def test_sudo_policy_cut_by_the_alias_budget_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sudoers_parser, "MAX_ALIAS_WORK", 50)
    names = ", ".join(f"u{i}" for i in range(60))
    policy = parse_sudoers(f"User_Alias STAFF = {names}\nroot ALL = ALL\nSTAFF ALL = /bin/ls\n"
                           "User_Alias EVERYONE = ALL\nEVERYONE ALL = (root) ALL\n", "/etc/sudoers")
    guest = Guest(name="t", origin="/srv/root", sudoers=policy)
    [(status, message)] = run(sudo.broad_all, guest)
    assert status is Status.UNKNOWN  # EVERYONE (ALL) was never expanded: not "no rule gives every user"
    assert "/etc/sudoers:5: aliases not expanded" in message
