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
    parse_gshadow,
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


def test_a_line_whose_ids_glibc_refuses_is_no_account() -> None:
    # nss_files' INT_FIELD: no digits, or anything after them, rejects the whole line (getent finds nothing)
    accounts, _ = parse_passwd("x:x:abc:0::/:/bin/sh\ny:x:0x:0::/:/bin/sh\nz:x:1:\n")
    assert accounts == ()


# Each line as glibc 2.36 reads it: `getent passwd NAME` and `id NAME` in a mount namespace over the
# planted file, and `su NAME` (a review, 2026-12-06).
@pytest.mark.parametrize(("line", "name", "uid", "gid", "shell"), [
    ("evil:x:0:0::/root", "evil", 0, 0, "/bin/sh"),  # 6 fields: the shell is empty, which is /bin/sh
    ("evil::0:0", "evil", 0, 0, "/bin/sh"),  # 4 fields are an entry
    ("evil:x:000000000000:000000000000:x:/root:/bin/bash", "evil", 0, 0, "/bin/bash"),  # zeros are free
    ("bob:x:1001:000000000000999:x:/home/bob:/bin/sh", "bob", 1001, 999, "/bin/sh"),
    ("  toor:x:0:0::/root:/bin/bash", "toor", 0, 0, "/bin/bash"),  # white space before an entry skipped
    ("x:x:-4294967296:5::/:/bin/sh", "x", 0xFFFFFFFF, 5, "/bin/sh"),  # not 0: strtou32 saturates
    ("x:x:99999999999999999999999:5::/:/bin/sh", "x", 0xFFFFFFFF, 5, "/bin/sh"),
    ("a:x:7:7:g:/h:/bin/sh:extra", "a", 7, 7, "/bin/sh:extra"),  # the shell is the rest of the line
])
def test_passwd_entries_as_glibc_reads_them(line: str, name: str, uid: int, gid: int, shell: str) -> None:
    [account], _ = parse_passwd(line + "\n")
    assert (account.name, account.uid, account.gid, account.shell) == (name, uid, gid, shell)


def test_comments_after_white_space_are_comments() -> None:
    assert parse_passwd("   # comment:x:0:0::/:/bin/sh\n\t#x:x:0:0::/:/bin/sh\n") == ((), ())


def test_shadow_names_and_numbers_as_glibc_reads_them() -> None:
    [first, second] = parse_shadow(" toor::19000:0:99999:7:::\nu:!:19000:0:00000000000090:7:::\n")
    assert (first.name, first.empty) == ("toor", True)  # getent shadow toor: the first, blank skipped
    assert second.max_days == 90
    [wrapped] = parse_shadow("w:!:19000:0:-4294967031:7:::\n")
    assert wrapped.max_days is None  # (int)strtou32: -1, "no maximum" to chage -l


def test_group_members_keep_trailing_blanks_and_nis_lines_count() -> None:
    groups = parse_group("dev:x:50:dave ,x\n disk:x:6:bob\n+sh:x:42:carol\n")
    assert [(g.name, g.gid, g.members) for g in groups] == [
        ("dev", 50, ("dave ", "x")), ("disk", 6, ("bob",)), ("+sh", 42, ("carol",))]


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


def test_login_defs_lines_longer_than_fgets_reads_are_pieces() -> None:
    # getdef.c: fgets(buf, 1024): the tail of a 1,100-byte comment is a line of its own (chgpasswd -R
    # then hashed with DES, a review found)
    text = "ENCRYPT_METHOD SHA512\n#" + "x" * 1022 + "ENCRYPT_METHOD DES\n"
    assert parse_login_defs(text)["ENCRYPT_METHOD"] == "DES"


def test_gshadow_keeps_administrators_and_usable_passwords() -> None:
    text = ("# comment\nroot:*::\ndocker:!:alice,,bob:carol\nwheel:$6$salt$hash::\nold:abcdefghijk./::\n"
            "locked:!$6$salt$hash::\nshort:x\n")
    got = {g.name: (g.admins, g.password, g.origin) for g in parse_gshadow(text)}
    assert got == {"docker": (("alice", "bob"), False, "/etc/gshadow:3"),
                   "wheel": ((), True, "/etc/gshadow:4"),
                   "old": ((), True, "/etc/gshadow:5")}
