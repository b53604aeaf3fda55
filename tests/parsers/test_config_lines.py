"""A guest cannot hide a setting from vmsec where the program that reads the file sees it (or show one the
program ignores): lines end at \\n only, white space is C's, numbers are read as strtoul reads them.

Python's splitlines() also breaks at \\v \\f \\x1c-\\x1e \\x85 U+2028 U+2029, and strip()/split() take any
Unicode white space; each case here passed a check that the real system fails (reported by a review that
ran them as whole scans: VMS-GST-099 on sysctl, VMS-GST-047 on login.defs, VMS-GST-040 on passwd)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scan_findings import scan_findings
from vmsec.errors import Problems
from vmsec.parsers.accounts import parse_login_defs, parse_passwd
from vmsec.parsers.lines import split_c, split_lines, strip_c
from vmsec.parsers.pam import parse_pam_file
from vmsec.parsers.pam_module_conf import parse_module_conf
from vmsec.parsers.system._common import lines
from vmsec.parsers.systemd_unit import parse_unit

HIDING = ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def test_lines_end_at_newline_only_and_keep_their_other_characters() -> None:
    assert split_lines("a\nb\n") == ["a", "b"] and split_lines("a\n\nb") == ["a", "", "b"]
    assert split_lines("") == [] and split_lines("\n") == [""]
    for ch in HIDING:
        assert split_lines(f"# note{ch}key = 0\nkey = 1\n") == [f"# note{ch}key = 0", "key = 1"]
        assert lines(f"# note{ch}key = 0\n") == [(1, f"# note{ch}key = 0")]
    assert strip_c(" \t\x85key\r\n") == "\x85key" and split_c("ENCRYPT_METHOD\x85YESCRYPT") == [
        "ENCRYPT_METHOD\x85YESCRYPT"]
    assert split_c("  KEY \t value  more ", 1) == ["KEY", "value  more"] and split_c(" \t") == []


@pytest.mark.parametrize("ch", HIDING)
def test_login_defs_sees_what_login_sees(ch: str) -> None:
    assert parse_login_defs(f"ENCRYPT_METHOD MD5\n#{ch}ENCRYPT_METHOD YESCRYPT\n")["ENCRYPT_METHOD"] == "MD5"
    assert parse_login_defs(f"ENCRYPT_METHOD MD5\n{ch}ENCRYPT_METHOD YESCRYPT\n")["ENCRYPT_METHOD"] == "MD5"
    assert parse_login_defs(f"ENCRYPT_METHOD{ch}YESCRYPT\nENCRYPT_METHOD MD5\n")["ENCRYPT_METHOD"] == "MD5"
    assert parse_login_defs('  ENCRYPT_METHOD \t "SHA512"\r\n')["ENCRYPT_METHOD"] == "SHA512"


@pytest.mark.parametrize(("field", "uid"), [
    ("0", 0), ("+0", 0), ("-0", 0), (" 0", 0), ("\t+0", 0), ("1000", 1000), ("-1", 2**32 - 1),
    ("1" * 12, 2**32 - 1),  # strtou32: past 32 bits, 0xffffffff
    ("²", None), ("٠", None), ("0x0", None), ("", None), ("0 ", None),  # glibc drops the line
])
def test_passwd_ids_are_read_as_glibc_reads_them(field: str, uid: int | None) -> None:
    accounts, _ = parse_passwd(f"evil:x:{field}:{field}::/root:/bin/bash\n")
    if uid is None:
        assert accounts == ()  # INT_FIELD refuses it: getent finds no such account
    else:
        assert accounts[0].uid == uid and accounts[0].gid == uid


@pytest.mark.parametrize("ch", HIDING)
def test_pam_pwquality_and_systemd_see_one_comment_line(ch: str) -> None:
    raw, _ = parse_pam_file(f"# auth sufficient pam_permit.so{ch}auth sufficient pam_permit.so\n"
                            "auth required pam_unix.so\n")
    assert [r.module for r in raw] == ["pam_unix.so"]
    values: dict[str, str] = {}
    problems: Problems = []
    parse_module_conf(f"minlen = 8\n# x{ch}minlen = 14\n", "/etc/security/pwquality.conf", values, {},
                      problems)
    assert values == {"minlen": "8"}
    assert [a[1] for a in parse_unit(f"[Service]\n#{ch}NoNewPrivileges=yes\nUser=root\n")] == ["User"]


def test_a_whole_scan_reads_sysctl_as_systemd_does(tmp_path: Path) -> None:
    root = tmp_path / "guest"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
    sysctl = "net.ipv4.ip_forward = 1\n# note\x0cnet.ipv4.ip_forward = 0\n"
    (root / "etc" / "sysctl.conf").write_text(sysctl)
    findings = {f["subject"]: f for f in scan_findings("rootfs", root, "VMS-GST-099")}
    assert findings["net.ipv4.ip_forward"]["status"] == "FAIL", findings
    assert "net.ipv4.ip_forward = 1" in findings["net.ipv4.ip_forward"]["message"]


def _scan(root: Path, check: str) -> dict[str, dict[str, str]]:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
    return {f["subject"]: f for f in scan_findings("rootfs", root, check)}


@pytest.mark.parametrize(("fstab", "status"), [
    (b"/dev/sda1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n", "FAIL"),
    # a byte that is not UTF-8 is nothing to getmntent: the swap line still counts (it PASSed: "no swap")
    (b"/dev/sda1 / ext4 defaults 0 1\n/swapfile none swap sw,x-note=caf\xe9 0 0\n", "FAIL"),
    # a NUL: where the system's string ends is not sure, so the line is unread, not absent
    (b"/dev/sda1 / ext4 defaults 0 1\n/swapfile none swap sw\x00 0 0\n", "UNKNOWN"),
])
def test_an_odd_byte_in_fstab_does_not_hide_the_swap_line(tmp_path: Path, fstab: bytes, status: str) -> None:
    root = tmp_path / "guest"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "fstab").write_bytes(fstab)
    assert [f["status"] for f in _scan(root, "VMS-GST-124").values()] == [status]


def test_an_odd_byte_in_crypttab_does_not_hide_the_key_file(tmp_path: Path) -> None:
    root = tmp_path / "guest"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "crypttab").write_bytes(b"cr /dev/sda2 /boot/key\xff luks\n")
    (root / "etc" / "fstab").write_bytes(b"/dev/sda1 / ext4 defaults 0 1\nUUID=b /boot ext4 defaults 0 2\n")
    assert [f["status"] for f in _scan(root, "VMS-GST-123").values()] == ["FAIL"]


@pytest.mark.parametrize(("files", "minlen", "stops"), [
    ({"pwquality.conf": "minlen = 14\n"}, "14", False),
    # libpwquality stops at the first line it refuses: an unknown name, an integer strtol does not
    # read whole ('1_4' and '١٤' are numbers to Python's int()); what came before stands
    ({"pwquality.conf": "foo = 1\nminlen = 14\n"}, None, True),
    ({"pwquality.conf": "minlen = 1_4\n"}, None, True),
    ({"pwquality.conf": "minlen = ١٤\n"}, None, True),
    ({"pwquality.conf": "minlen = 12\nMinLen = 14\nbogus\nminlen = 6\n"}, "14", True),  # strcasecmp names
    ({"pwquality.conf": "enforce_for_root\nminlen = -14\n"}, "-14", False),
    # an error in a drop-in: the main file is not read at all
    ({"pwquality.conf.d/10-x.conf": "minlen 16\nnope = 1\n", "pwquality.conf": "minlen = 6\n"}, "16", True),
])
def test_pwquality_conf_is_read_as_libpwquality_reads_it(tmp_path: Path, files: dict[str, str],
                                                         minlen: str | None, stops: bool) -> None:
    from vmsec.collectors.reader import RootReader
    from vmsec.parsers.pam_module_conf import read_pwquality_conf

    for name, text in files.items():
        (tmp_path / "etc/security" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "etc/security" / name).write_text(text)
    problems: Problems = Problems()
    config = read_pwquality_conf(RootReader(str(tmp_path)), problems=problems)
    assert config.values.get("minlen") == minlen
    assert any("libpwquality stops reading" in str(p) for p in problems) is stops
