"""collect_guest builds the authorized_keys paths (accounts × AuthorizedKeysFile entries) once,
bounded, for the keys and for the permission survey: many accounts and a long AuthorizedKeysFile
examine a bounded number of paths, the cut is a collection error naming sshd_config's line and is
named in ``Guest.unread["authorized_keys"]``, and VMS-GST-145 says UNKNOWN for what was not examined
while the files examined are still judged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmsec.checks.api import Environment, results_of
from vmsec.checks.guest import file_permissions
from vmsec.collectors.guest import collect_guest
from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind
from vmsec.facts import FileStat, Inventory
from vmsec.findings import Severity, Status
from vmsec.parsers import authorized_keys

BUDGET = 3_000  # MAX_KEY_PATHS for this test: the real one is the same mechanism, larger
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7yGbCNUEs0AIxvlXbyvLBkXuYi3Q6jXQqJb0O0ZkBz u0@host\n"


class KeyPathCounter(RootReader):
    """Counts the authorized_keys paths examined (the ``.kN`` files), and stops a run-away product."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
        self.key_paths = 0

    def stat(self, path: str, follow: bool = True) -> FileStat:
        if "/.k" in path:
            self.key_paths += 1
            if self.key_paths > BUDGET + 10:
                raise AssertionError(f"more than {BUDGET} authorized_keys paths examined")
        return super().stat(path, follow)


def many_accounts_and_key_files(root: Path, accounts: int, entries: int) -> None:
    (root / "etc/ssh").mkdir(parents=True)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/sshd").write_text("")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n" + "".join(
        f"u{i}:x:{1000 + i}:100::/home/u{i}:/bin/sh\n" for i in range(accounts - 1)))
    (root / "etc/ssh/sshd_config").write_text(
        "AuthorizedKeysFile " + " ".join(f".k{i}" for i in range(entries)) + "\n")
    (root / "home/u0").mkdir(parents=True)
    (root / "home/u0/.k0").write_text(KEY)
    os.chmod(root / "home/u0/.k0", 0o666)


def test_key_paths_are_built_once_bounded_and_the_cut_is_unknown(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authorized_keys, "MAX_KEY_PATHS", BUDGET, raising=False)
    many_accounts_and_key_files(tmp_path, accounts=600, entries=300)  # before: 180,000 paths, 3 times
    reader = KeyPathCounter(tmp_path)
    guest, records = collect_guest(reader, name="t", origin=str(tmp_path))
    assert reader.key_paths <= BUDGET  # each distinct path examined once (the collector caches stats)
    cut = [(r.source, r.kind) for r in records if r.what == "authorized keys" and not r.ok]
    assert cut == [("/etc/ssh/sshd_config:1", ErrorKind.TOO_LARGE)] * 2
    unread = guest.unread["authorized_keys"]
    assert unread[0].startswith("/etc/ssh/sshd_config:1: AuthorizedKeysFile names 300 files; only the "
                                "first 256 were examined")
    assert "600 accounts × 256 AuthorizedKeysFile entries" in unread[1]
    assert [(k.user, k.path) for k in guest.authorized_keys or ()] == [("u0", "/home/u0/.k0")]
    assert guest.file_stats is not None and "/home/u0/.k0" in guest.file_stats

    env = Environment(inventory=Inventory(guests=(guest,)), host=None)
    results = results_of(file_permissions.authorized_keys_permissions, guest, env)
    assert [(r.subject, r.status) for r in results] == [
        ("/home/u0/.k0", Status.FAIL), ("authorized_keys files", Status.UNKNOWN)]
    assert results[0].severity is Severity.INFO  # StrictModes (default yes) ignores it
    assert "AuthorizedKeysFile names 300 files" in results[1].message


def test_a_normal_guest_has_nothing_unexamined(tmp_path: Path) -> None:
    many_accounts_and_key_files(tmp_path, accounts=50, entries=2)
    guest, records = collect_guest(RootReader(str(tmp_path)), name="t", origin=str(tmp_path))
    assert "authorized_keys" not in guest.unread
    assert not [r for r in records if r.what == "authorized keys" and not r.ok]
    env = Environment(inventory=Inventory(guests=(guest,)), host=None)
    results = results_of(file_permissions.authorized_keys_permissions, guest, env)
    assert [(r.subject, r.status) for r in results] == [("/home/u0/.k0", Status.FAIL)]
