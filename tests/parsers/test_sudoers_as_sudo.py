"""sudoers read as sudo 1.9.13 reads it. Each case is one a review found by running the real sudo
(`sudo -l -U bob` in a private mount namespace) and cvtsudoers beside vmsec on a guest's sudoers: sudo
applied a rule or a Defaults that vmsec missed, so a check PASSed. Now vmsec either reads the same rule,
or — where it cannot parse a line sudo applies — names the line as unread, so no check PASSes on the
rest alone (UNKNOWN)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scan_findings import scan_findings
from vmsec.collectors.reader import RootReader
from vmsec.errors import Problems
from vmsec.facts import Sudoers
from vmsec.parsers.sudoers import read_sudoers


def policy(tmp_path: Path, main: bytes, files: dict[str, bytes] | None = None,
           modes: dict[str, int] | None = None) -> Sudoers:
    (tmp_path / "etc/sudoers.d").mkdir(parents=True, exist_ok=True)
    (tmp_path / "etc/sudoers").write_bytes(main)
    for name, data in (files or {}).items():
        (tmp_path / "etc" / name).write_bytes(data)
    for name, mode in (modes or {}).items():
        os.chmod(tmp_path / "etc" / name, mode)
    return read_sudoers(RootReader(str(tmp_path)), problems=Problems())


def grants_bob_all_nopasswd(s: Sudoers) -> bool:
    return any(("bob" in r.users or "ALL" in r.users) and r.nopasswd and "ALL" in r.commands for r in s.rules)


def defaults(s: Sudoers) -> list[str]:
    return [setting for _scope, setting in s.defaults]


@pytest.mark.parametrize("main", [
    b"bob ALL=(ALL) NOPASSWD: ALL#x\n",  # '#' starts a comment wherever it stands
    b"bob ALL=(root, alice) NOPASSWD: ALL\n",  # a run-as list with a comma
    b"bob ALL=(ALL) CWD = /tmp NOPASSWD: ALL\n",  # an option with blanks around '='
    b"bob ALL=(ALL) NOPASSWD: sha256:LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE= /bin/true, ALL\n",
    b'bob ALL=(ALL) NOPASSWD: /bin/echo ", ALL\n',  # '"' is an ordinary character in a command
    b"bob ALL=(ALL) /bin/ls \\\xc2\xa0\nbob ALL=(ALL) NOPASSWD: ALL\n",  # U+00A0 is no blank to sudo
    b"Cmnd_Alias C = ALL\nCmnd_Alias C = /bin/ls\nbob ALL=(ALL) NOPASSWD: C\n",  # the first alias stands
    b"bob ALL=(ALL) NOPASSWD: ALL\n#\x00\n",  # a NUL in a comment: sudo reads the file
])
def test_rules_sudo_applies_are_read(tmp_path: Path, main: bytes) -> None:
    s = policy(tmp_path, main)
    assert grants_bob_all_nopasswd(s), s.rules


@pytest.mark.parametrize("main", [
    b"bob, #-1 ALL=(ALL) NOPASSWD: ALL\n",  # a uid, not a comment
    b"ALL,! alice ALL=(ALL) NOPASSWD: ALL\n",  # a blank after '!'
    b"bob ALL=(ALL) NOPASSWD: /bin/x\x0b, ALL\n",  # \v ends no line for sudo
    b"bob ALL=(ALL) NOPASSWD: /bin/x\xe2\x80\xa8, ALL\n",  # nor U+2028
])
def test_rules_sudo_applies_are_read_or_named_unread(tmp_path: Path, main: bytes) -> None:
    s = policy(tmp_path, main)
    assert grants_bob_all_nopasswd(s) or s.unread, (s.rules, s.unread)


@pytest.mark.parametrize(("main", "setting"), [
    (b"bob ALL=(ALL) /bin/ls\nDefaults !authenticate#\n", "!authenticate"),
    (b"bob ALL=(ALL) /bin/ls\nDefaults: bob !authenticate\n", "!authenticate"),
    (b"bob ALL=(ALL) /bin/ls\nDefaults:alice, bob !authenticate\n", "!authenticate"),
    (b"bob ALL=(ALL) /bin/ls\nDefaults> root !use_pty\n", "!use_pty"),
    (b"bob ALL=(ALL) /bin/ls\nDefaults !use_pty\n\xc2\xa0Defaults use_pty\n", "!use_pty"),
])
def test_defaults_sudo_applies_are_read(tmp_path: Path, main: bytes, setting: str) -> None:
    s = policy(tmp_path, main)
    assert defaults(s)[-1:] == [setting], s.defaults
    assert "bob !authenticate" not in defaults(s)


def test_defaultsx_is_no_defaults_line(tmp_path: Path) -> None:
    s = policy(tmp_path, b"Defaultsx,bob ALL=(ALL) NOPASSWD: ALL\n")
    assert s.defaults == () and any(r.nopasswd and "ALL" in r.commands for r in s.rules)


def test_a_hash_include_after_blanks_is_a_comment_an_at_include_is_not(tmp_path: Path) -> None:
    s = policy(tmp_path, b"bob ALL=(ALL) /bin/ls\nDefaults !use_pty\n  #include /etc/sudoers.d/a.x\n"
                         b"  @include /etc/sudoers.d/b\n",
               {"sudoers.d/a.x": b"Defaults use_pty\n", "sudoers.d/b": b"Defaults env_reset\n"})
    assert defaults(s) == ["!use_pty", "env_reset"]


@pytest.mark.parametrize(("line", "name"), [
    (b"@include /etc/sudoers.d/my\\ file\n", "my file"),
    (b"@include /etc/sudoers.d/a.x # c\n", "a.x"),
    (b'@include "/etc/sudoers.d/q file"\n', "q file"),
])
def test_include_paths_as_sudo_resolves_them(tmp_path: Path, line: bytes, name: str) -> None:
    s = policy(tmp_path, line, {f"sudoers.d/{name}": b"bob ALL=(ALL) NOPASSWD: ALL\n"})
    assert grants_bob_all_nopasswd(s) and f"/etc/sudoers.d/{name}" in s.files


def test_an_include_named_after_the_host_is_unread(tmp_path: Path) -> None:
    s = policy(tmp_path, b"@include /etc/sudoers.d/h.%h\n")
    assert s.unread and "%h" in s.unread[0]


@pytest.mark.parametrize("mode", [0o666, 0o460])
def test_a_file_sudo_refuses_adds_nothing(tmp_path: Path, mode: int) -> None:
    s = policy(tmp_path, b"bob ALL=(ALL) /bin/ls\nDefaults !use_pty\n#includedir /etc/sudoers.d\n",
               {"sudoers.d/a": b"Defaults use_pty\n"}, {"sudoers.d/a": mode})
    if mode == 0o460:
        os.chown(tmp_path / "etc/sudoers.d/a", 0, 1000)  # group-writable by a group that is not root
        s = read_sudoers(RootReader(str(tmp_path)), problems=Problems())
    assert defaults(s) == ["!use_pty"] and "/etc/sudoers.d/a" in s.files


def test_a_continuation_at_the_end_of_the_file_is_named(tmp_path: Path) -> None:
    # sudo refuses the whole policy ("no valid sudoers sources found"); vmsec had dropped the line silently
    s = policy(tmp_path, b"bob ALL=(ALL) NOPASSWD: ALL \\\n")
    assert any("continuation at the end of the file" in u for u in s.unread)


@pytest.mark.parametrize("runas", ["#00", "%root", "%#0"])
def test_run_as_forms_that_reach_root_fail_the_nopasswd_check(tmp_path: Path, runas: str) -> None:
    root = tmp_path / "guest"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\nVERSION_ID=12\n")
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/bash\n")
    (root / "etc/sudoers").write_text(f"bob ALL=({runas}) NOPASSWD: ALL\n")
    statuses = [f["status"] for f in scan_findings("rootfs", root, "VMS-GST-065")]
    assert "FAIL" in statuses, statuses
