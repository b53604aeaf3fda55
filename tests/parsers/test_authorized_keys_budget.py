"""The authorized_keys paths are accounts × AuthorizedKeysFile entries: 10,000 accounts and a 20 KB
``AuthorizedKeysFile .k0 … .k2999`` were 30 million paths. The entries, the accounts and the paths
built are bounded, and each cut is named (a problem and an ``unread`` entry) — sshd would look there.
Normal configurations give the same paths as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, Problems
from vmsec.facts import Account, FileStat
from vmsec.parsers import authorized_keys
from vmsec.parsers.authorized_keys import (
    MAX_ACCOUNTS,
    MAX_KEY_FILE_ENTRIES,
    MAX_KEY_PATHS,
    PATH_MAX,
    key_file_paths,
    read_authorized_keys,
)

SOURCE = "/etc/ssh/sshd_config:1"


def accounts(count: int) -> list[Account]:
    return [Account(name="root", uid=0, gid=0, home="/root")] + [
        Account(name=f"u{i}", uid=1000 + i, gid=100, home=f"/home/u{i}") for i in range(count - 1)]


def entries(count: int) -> tuple[str, ...]:
    return tuple(f".k{i}" for i in range(count))


class CountingReader(RootReader):
    def __init__(self, root: Path, bound: int) -> None:
        super().__init__(str(root))
        self.stats = 0
        self.bound = bound

    def stat(self, path: str, follow: bool = True) -> FileStat:
        self.stats += 1
        if self.stats > self.bound:
            raise AssertionError(f"more than {self.bound} paths examined")
        return super().stat(path, follow)


def test_entries_accounts_and_paths_are_bounded_and_each_cut_is_named() -> None:
    problems = Problems()
    unread: list[str] = []
    paths = key_file_paths(accounts(MAX_ACCOUNTS + 5), entries(3000), source=SOURCE, problems=problems,
                           unread=unread)
    assert len(paths) <= MAX_KEY_PATHS
    assert {path.rsplit("/", 1)[1] for _u, _h, path in paths} == set(entries(MAX_KEY_FILE_ENTRIES))
    room = MAX_KEY_PATHS // MAX_KEY_FILE_ENTRIES  # whole accounts, in /etc/passwd order
    first_entry = paths[::MAX_KEY_FILE_ENTRIES]
    assert [user for user, _h, _p in first_entry] == ["root", *(f"u{i}" for i in range(room - 1))]
    assert unread == [
        "/etc/passwd: more than 10000 accounts with a home directory; the authorized_keys files of 5 more "
        "were not examined",
        f"{SOURCE}: AuthorizedKeysFile names 3000 files; only the first 256 were examined (OpenSSH "
        "before 7.7 refuses more than 256, later versions read them all)",
        f"{SOURCE}: 10000 accounts × 256 AuthorizedKeysFile entries are more than {MAX_KEY_PATHS} paths to "
        f"build; the key files of {MAX_ACCOUNTS - room} accounts were not examined",
    ]
    assert [(p.source, p.kind) for p in problems] == [
        ("/etc/passwd", ErrorKind.TOO_LARGE), (SOURCE, ErrorKind.TOO_LARGE), (SOURCE, ErrorKind.TOO_LARGE)]


def test_reading_the_keys_examines_a_bounded_number_of_paths(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authorized_keys, "MAX_KEY_PATHS", 2_000, raising=False)
    reader = CountingReader(tmp_path, bound=2_000)  # before: 300 × 300 = 90,000
    problems = Problems()
    keys = read_authorized_keys(reader, accounts(300), entries(300), problems=problems)
    assert keys == () and reader.stats <= 2_000
    assert {p.kind for p in problems} == {ErrorKind.TOO_LARGE}
    assert any("were not examined" in p.reason for p in problems)


def test_paths_given_are_not_built_again(tmp_path: Path) -> None:
    (tmp_path / "srv/keys").mkdir(parents=True)
    (tmp_path / "srv/keys/bob").write_text("ssh-ed25519 AAAA bob\n")
    bob = [Account(name="bob", uid=5, gid=5, home="/home/bob")]
    paths = [("bob", "/home/bob", "/srv/keys/bob")]
    keys = read_authorized_keys(RootReader(str(tmp_path)), bob, (".ssh/authorized_keys",), paths=paths)
    assert [(k.user, k.path) for k in keys] == [("bob", "/srv/keys/bob")]


def test_a_path_too_long_to_open_is_never_built() -> None:
    problems = Problems()
    too_long = ("%h" * (PATH_MAX + 1),  # 8 KB of text, a 40 MB path for each of 1,000 homes
                "x" * (PATH_MAX + 1),
                "%h/" + "x" * (PATH_MAX - 4))  # too long for every home but "/"
    paths = key_file_paths(accounts(1_000), (*too_long, ".ssh/authorized_keys"), source=SOURCE,
                           problems=problems)
    assert [p for _u, _h, p in paths] == ["/root/.ssh/authorized_keys",
                                          *(f"/home/u{i}/.ssh/authorized_keys" for i in range(999))]
    assert [(p.source, p.kind) for p in problems] == [(SOURCE, ErrorKind.INVALID)] * 3
    assert all("longer than 4096 bytes; sshd cannot open them" in p.reason for p in problems)


def test_normal_configurations_give_the_same_paths() -> None:
    users = [Account(name="root", uid=0, gid=0, home="/root/"),
             Account(name="bob", uid=5, gid=5, home="/home/bob"),
             Account(name="nohome", uid=6, gid=6, home=""), Account(name="top", uid=7, gid=7, home="/")]
    assert key_file_paths(users) == [
        ("root", "/root", "/root/.ssh/authorized_keys"), ("root", "/root", "/root/.ssh/authorized_keys2"),
        ("bob", "/home/bob", "/home/bob/.ssh/authorized_keys"),
        ("bob", "/home/bob", "/home/bob/.ssh/authorized_keys2"),
        ("top", "/", "/.ssh/authorized_keys"), ("top", "/", "/.ssh/authorized_keys2")]
    assert key_file_paths(users[1:2], ("%h/.ssh/k", "/etc/ssh/keys/%u", "none", "k%%%x")) == [
        ("bob", "/home/bob", "/home/bob/.ssh/k"), ("bob", "/home/bob", "/etc/ssh/keys/bob"),
        ("bob", "/home/bob", "/home/bob/k%%x"), ("root", "/root", "/root/.ssh/k"),
        ("root", "/root", "/etc/ssh/keys/root"), ("root", "/root", "/root/k%%x")]


def test_nothing_is_cut_for_every_account_of_a_large_system() -> None:
    unread: list[str] = []
    problems = Problems()
    defaults = key_file_paths(accounts(MAX_ACCOUNTS), problems=problems, unread=unread)
    assert len(defaults) == 2 * MAX_ACCOUNTS
    tokens = key_file_paths(accounts(MAX_ACCOUNTS), ("%h/.ssh/authorized_keys", "%h/.ssh/authorized_keys2",
                                                     "/etc/ssh/keys/%u"), problems=problems, unread=unread)
    assert len(tokens) == 3 * MAX_ACCOUNTS
    assert unread == [] and list(problems) == []
