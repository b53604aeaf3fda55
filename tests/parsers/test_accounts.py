"""passwd, shadow, group and login.defs: hash algorithms by prefix, no hash kept, bounded reads."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from vmsec.collectors.reader import RootReader
from vmsec.errors import ReadError
from vmsec.parsers.accounts import (
    classify_hash,
    parse_group,
    parse_login_defs,
    parse_passwd,
    parse_shadow,
    read_login_defs,
    read_passwd,
)


@pytest.mark.parametrize(("field", "expected"), [
    ("$y$j9T$abc$def", ("yescrypt", False, False)),
    ("$gy$j9T$abc$def", ("gost-yescrypt", False, False)),
    ("$7$CU..../....abc$def", ("scrypt", False, False)),
    ("$6$salt$hash", ("sha512", False, False)),
    ("$6$rounds=1000$salt$hash", ("sha512", False, False)),
    ("$5$salt$hash", ("sha256", False, False)),
    ("$2a$10$abcdefghijklmnopqrstuv", ("bcrypt", False, False)),
    ("$2b$10$abcdefghijklmnopqrstuv", ("bcrypt", False, False)),
    ("$2y$10$abcdefghijklmnopqrstuv", ("bcrypt", False, False)),
    ("$1$salt$hash", ("md5", False, False)),
    ("ab01FAKEdes99", ("des", False, False)),
    ("", (None, True, False)),
    ("!", (None, False, True)),
    ("!!", (None, False, True)),
    ("*", (None, False, True)),
    ("!*", (None, False, True)),
    ("*LK*", (None, False, True)),
    ("!$6$salt$hash", ("sha512", False, True)),  # locked, but the hash is still there to crack
    ("!!$1$salt$hash", ("md5", False, True)),
    ("$9$weird", ("unknown", False, False)),
])
def test_hash_classification(field: str, expected: tuple[str | None, bool, bool]) -> None:
    assert classify_hash(field) == expected


def test_shadow_entries_never_hold_the_hash() -> None:
    secret = "$6$saltsalt$VERYSECRETHASHVALUE"
    entries = parse_shadow(f"alice:{secret}:19800:0:90:7:::\nbob::19800::::::\n", "/etc/shadow")
    assert [(e.name, e.hash_algorithm, e.empty, e.max_days) for e in entries] == [
        ("alice", "sha512", False, 90), ("bob", None, True, None)]
    assert all(secret not in str(v) and "VERYSECRET" not in str(v)
               for e in entries for v in msgspec.structs.astuple(e))
    assert entries[0].origin == "/etc/shadow:1"


def test_passwd_accounts_and_unshadowed_fields() -> None:
    text = ("root:x:0:0:root:/root:/bin/bash\n"
            "+::::::\n"
            "short:x:1\n"
            "old:$1$salt$hash:1002:1002::/home/old:/bin/sh\n"
            "open::1003:1003::/home/open:/bin/sh\n"
            "svc:*:999:999::/var/svc:/usr/sbin/nologin\n")
    accounts, inline = parse_passwd(text, "/etc/passwd")
    assert [a.name for a in accounts] == ["root", "old", "open", "svc"]
    assert accounts[0].uid == 0 and accounts[0].can_login is True
    assert accounts[3].can_login is False
    assert [(s.name, s.hash_algorithm, s.empty, s.locked, s.origin) for s in inline] == [
        ("old", "md5", False, False, "/etc/passwd:4"),
        ("open", None, True, False, "/etc/passwd:5"),
        ("svc", None, False, True, "/etc/passwd:6"),
    ]


def test_non_numeric_ids_are_unknown() -> None:
    accounts, _ = parse_passwd("x:x:abc:0::/:/bin/sh\n")
    assert accounts[0].uid is None and accounts[0].gid == 0


def test_groups_with_members() -> None:
    groups = parse_group("sudo:x:27:alice, bob\nempty:x:100:\nbad\n")
    assert [(g.name, g.gid, g.members) for g in groups] == [("sudo", 27, ("alice", "bob")),
                                                            ("empty", 100, ())]


def test_login_defs_last_setting_wins() -> None:
    settings = parse_login_defs("# c\nENCRYPT_METHOD SHA512\nPASS_MAX_DAYS\t99999\n"
                                'ENCRYPT_METHOD YESCRYPT\nUMASK "027"\nFLAG\n')
    # a line of one field ("FLAG") is skipped by getdef.c ("only 1 field??"): it sets nothing
    assert settings == {"ENCRYPT_METHOD": "YESCRYPT", "PASS_MAX_DAYS": "99999", "UMASK": "027"}


def test_missing_login_defs_is_empty_but_missing_passwd_is_an_error(tmp_path: Path) -> None:
    reader = RootReader(str(tmp_path))
    assert read_login_defs(reader) == {}
    with pytest.raises(ReadError, match="/etc/passwd"):
        read_passwd(reader)


def test_huge_sparse_passwd_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    with open(tmp_path / "etc/passwd", "wb") as f:
        f.truncate(10 * 1024**3)
    with pytest.raises(ReadError, match="limit"):
        read_passwd(RootReader(str(tmp_path)))
