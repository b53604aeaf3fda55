"""sudoers: grammar, aliases, Defaults, includes in order — and the hostile cases: binary garbage,
include loops, a 100,000-file sudoers.d (bounded and fast), symlinks out of the root."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from denied_reader import DeniedReader
from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, Problems
from vmsec.facts import Sudoers
from vmsec.parsers.sudoers import MAX_DIR_ENTRIES, parse_sudoers, read_sudoers

GUESTS = Path(__file__).resolve().parents[1] / "data" / "guests"


def sudo_root(root: Path, files: dict[str, str | bytes]) -> RootReader:
    for name, content in files.items():
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return RootReader(str(root))


def read(reader: RootReader) -> tuple[Sudoers, list[str], set[ErrorKind]]:
    """The policy, its problems as "source: reason" texts, and their kinds."""
    problems = Problems()
    sudoers = read_sudoers(reader, problems=problems)
    return sudoers, [f"{p.source}: {p.reason}" for p in problems], {p.kind for p in problems}


def rules(text: str) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], bool]]:
    return [(r.users, r.runas, r.commands, r.nopasswd) for r in parse_sudoers(text, "/etc/sudoers").rules]


def test_plain_rules_and_nopasswd() -> None:
    assert rules("root ALL=(ALL:ALL) ALL\n%sudo   ALL=(ALL:ALL) ALL # admins\n"
                 "debian ALL=(ALL) NOPASSWD:ALL\n") == [
        (("root",), ("ALL",), ("ALL",), False),
        (("%sudo",), ("ALL",), ("ALL",), False),
        (("debian",), ("ALL",), ("ALL",), True),
    ]


def test_tags_carry_over_and_passwd_resets() -> None:
    assert rules("ops ALL = (root) NOPASSWD: /bin/ls, /bin/cat, PASSWD: /bin/rm, (backup) /bin/tar\n") == [
        (("ops",), ("root",), ("/bin/ls", "/bin/cat"), True),
        (("ops",), ("root",), ("/bin/rm",), False),
        (("ops",), ("backup",), ("/bin/tar",), False),
    ]


def test_aliases_are_expanded() -> None:
    text = ("User_Alias ADMINS = alice, bob, %ops : TEMPS = carol\n"
            "Cmnd_Alias EVERYTHING = ALL\nCmnd_Alias SHELLS = /bin/sh, /bin/bash\n"
            "Runas_Alias ROOTS = root, toor\n"
            "ADMINS ALL = (ROOTS) NOPASSWD: EVERYTHING\nTEMPS ALL = SHELLS, !EVERYTHING\n")
    assert rules(text) == [
        (("alice", "bob", "%ops"), ("root", "toor"), ("ALL",), True),
        (("carol",), ("root",), ("/bin/sh", "/bin/bash", "!ALL"), False),
    ]


def test_alias_recursion_is_bounded() -> None:
    text = "Cmnd_Alias A = B\nCmnd_Alias B = A\nx ALL = A\n"
    [(_users, _runas, commands, _)] = rules(text)
    assert len(commands) == 1  # stops, no RecursionError


def test_defaults_with_scopes() -> None:
    sudoers = parse_sudoers('Defaults env_reset, !lecture\nDefaults:alice !authenticate\n'
                            'Defaults>root !set_logname\nDefaults!/bin/su  log_output\n'
                            'Defaults@db1 env_keep += "LD_PRELOAD"\n', "/etc/sudoers")
    assert sudoers.defaults == (("", "env_reset"), ("", "!lecture"), (":alice", "!authenticate"),
                                (">root", "!set_logname"), ("!/bin/su", "log_output"),
                                ("@db1", 'env_keep+="LD_PRELOAD"'))


def test_uid_user_line_and_continuation_are_not_comments() -> None:
    assert rules("#1000 ALL=(ALL) NOPASSWD:ALL\n# comment ALL=ALL\ndave ALL=(ALL) \\\n  NOPASSWD: ALL\n") == [
        (("#1000",), ("ALL",), ("ALL",), True), (("dave",), ("ALL",), ("ALL",), True)]


def test_multiple_host_runs() -> None:
    assert rules("carol web = /bin/ls : db = (ALL) NOPASSWD: ALL\n") == [
        (("carol",), ("root",), ("/bin/ls",), False), (("carol",), ("ALL",), ("ALL",), True)]


def test_unparsable_line_is_reported_with_its_place() -> None:
    problems = Problems()
    sudoers = parse_sudoers("root ALL=(ALL) ALL\nthis is not sudoers\n", "/etc/sudoers", problems=problems)
    assert len(sudoers.rules) == 1
    assert [(p.source, p.reason, p.kind) for p in problems] == [
        ("/etc/sudoers:2", "not a Defaults, alias or user specification line", ErrorKind.INVALID)]


def test_checked_in_debian_root_reads_includedir_and_skips_dotted_names() -> None:
    sudoers, errors, _ = read(RootReader(str(GUESTS / "debian12")))
    assert sudoers.files == ("/etc/sudoers", "/etc/sudoers.d/90-cloud-init-users", "/etc/sudoers.d/README")
    nopasswd = [r for r in sudoers.rules if r.nopasswd]
    assert [(r.users, r.commands, r.origin) for r in nopasswd] == [
        (("debian",), ("ALL",), "/etc/sudoers.d/90-cloud-init-users:4")]  # not old.dpkg-dist's ALL rule
    assert errors == []


def test_checked_in_alma_root_aliases_across_files() -> None:
    sudoers = read_sudoers(RootReader(str(GUESTS / "alma9")))
    by_origin = {r.origin: r for r in sudoers.rules if r.nopasswd}
    assert by_origin["/etc/sudoers.d/almalinux:1"].commands == ("ALL",)  # alias from the main file
    assert (":ADMINS", "!authenticate") in sudoers.defaults


def test_missing_sudoers_is_empty(tmp_path: Path) -> None:
    sudoers, errors, _ = read(RootReader(str(tmp_path)))
    assert (sudoers.rules, sudoers.files, errors) == ((), (), [])


def test_relative_include_and_at_include(tmp_path: Path) -> None:
    reader = sudo_root(tmp_path, {"/etc/sudoers": "@include extra\n#include /etc/more\n",
                                  "/etc/extra": "a ALL=ALL\n", "/etc/more": "b ALL=NOPASSWD: ALL\n"})
    sudoers = read_sudoers(reader)
    assert sudoers.files == ("/etc/sudoers", "/etc/extra", "/etc/more")
    assert [r.users for r in sudoers.rules] == [("a",), ("b",)]


def test_binary_garbage_is_an_error_not_a_crash(tmp_path: Path) -> None:
    # sudo 1.9 reads a file with NUL bytes line by line (a NUL in a comment is nothing): every line
    # vmsec cannot parse is an error naming it, and unread, so no check PASSes on what is left.
    garbage = bytes(range(256)) * 64 + random.Random(9).randbytes(4096)
    sudoers, errors, kinds = read(sudo_root(tmp_path, {"/etc/sudoers": garbage}))
    assert not any(r.nopasswd for r in sudoers.rules)  # (a garbage line may look like a rule)
    assert errors and all(e.startswith("/etc/sudoers:") for e in errors)
    assert kinds == {ErrorKind.INVALID} and sudoers.unread


def test_garbage_text_errors_are_capped(tmp_path: Path) -> None:
    _, errors, _ = read(sudo_root(tmp_path, {"/etc/sudoers": "x\n" * 10_000}))
    assert len(errors) == 21
    assert errors[-1] == "/etc/sudoers: 9980 more lines could not be parsed"


def test_include_loop_is_detected(tmp_path: Path) -> None:
    reader = sudo_root(tmp_path, {"/etc/sudoers": "root ALL=ALL\n@include /etc/sudoers.d/a\n",
                                  "/etc/sudoers.d/a": "a ALL=ALL\n@include /etc/sudoers.d/b\n",
                                  "/etc/sudoers.d/b": "b ALL=ALL\n@include /etc/sudoers.d/a\n"
                                                      "#include /etc/sudoers\n"})
    sudoers, errors, kinds = read(reader)
    assert [r.users for r in sudoers.rules] == [("root",), ("a",), ("b",)]
    assert sum("include loop" in e for e in errors) == 2
    assert kinds == {ErrorKind.LOOP}


def test_includedir_loop_through_itself(tmp_path: Path) -> None:
    reader = sudo_root(tmp_path, {"/etc/sudoers": "#includedir /etc/sudoers.d\n",
                                  "/etc/sudoers.d/self": "#includedir /etc/sudoers.d\nx ALL=ALL\n"})
    sudoers, errors, kinds = read(reader)
    assert [r.users for r in sudoers.rules] == [("x",)]
    assert any("include loop" in e for e in errors)
    assert kinds == {ErrorKind.LOOP}


@pytest.fixture(scope="module")
def huge_sudoers_d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sudoers-100k")
    (root / "etc/sudoers.d").mkdir(parents=True)
    (root / "etc/sudoers").write_text("root ALL=(ALL) ALL\n#includedir /etc/sudoers.d\n")
    directory = os.open(root / "etc/sudoers.d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(100_000):
            os.close(os.open(f"u{i:06d}", os.O_WRONLY | os.O_CREAT, 0o440, dir_fd=directory))
    finally:
        os.close(directory)
    return root


@pytest.mark.timeout(30, func_only=True)  # creating the 100k files is not what is timed
def test_100k_files_in_sudoers_d_is_bounded_and_fast(huge_sudoers_d: Path) -> None:
    started = time.monotonic()
    sudoers, errors, kinds = read(RootReader(str(huge_sudoers_d)))
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, elapsed
    assert sudoers.files == ("/etc/sudoers",)
    assert [r.users for r in sudoers.rules] == [("root",)]
    assert errors == [f"/etc/sudoers.d: directory has more than {MAX_DIR_ENTRIES} entries; "
                      "its files were not read"]
    assert kinds == {ErrorKind.TOO_LARGE}
    assert sudoers.unread == tuple(errors)  # the rules in them are unknown, not absent


def test_symlink_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("evil ALL=(ALL) NOPASSWD: ALL\n")
    root = tmp_path / "root"
    reader = sudo_root(root, {"/etc/sudoers": "#includedir /etc/sudoers.d\n"})
    (root / "etc/sudoers.d").mkdir()
    (root / "etc/sudoers.d/link").symlink_to(outside)
    sudoers = read_sudoers(reader)
    assert sudoers.rules == ()


def test_non_regular_file_in_includedir_is_reported(tmp_path: Path) -> None:
    reader = sudo_root(tmp_path, {"/etc/sudoers": "#includedir /etc/sudoers.d\n",
                                  "/etc/sudoers.d/ok": "x ALL=ALL\n"})
    os.mkfifo(tmp_path / "etc/sudoers.d/pipe")
    sudoers, errors, kinds = read(reader)
    assert [r.users for r in sudoers.rules] == [("x",)]
    assert errors == ["/etc/sudoers.d/pipe: fifo, not a regular file; sudo skips it"]
    assert kinds == {ErrorKind.NOT_REGULAR}



def test_an_unreadable_included_file_is_named_in_the_fact(tmp_path: Path) -> None:
    # cloud-init's 0440 drop-in, read by a user who is not root: its rule is not seen, and the fact says so
    sudo_root(tmp_path, {"/etc/sudoers": "root ALL=(ALL) ALL\n#includedir /etc/sudoers.d\n",
                         "/etc/sudoers.d/90-cloud-init-users": "ubuntu ALL=(ALL) NOPASSWD:ALL\n",
                         "/etc/sudoers.d/README": "# not a policy file\n"})
    sudoers, errors, kinds = read(DeniedReader(tmp_path, "/etc/sudoers.d/90-cloud-init-users"))
    assert [r.users for r in sudoers.rules] == [("root",)]
    assert sudoers.unread == ("/etc/sudoers.d/90-cloud-init-users: Permission denied",)
    assert errors == ["/etc/sudoers.d/90-cloud-init-users: Permission denied"] and kinds == {ErrorKind.DENIED}


@pytest.mark.parametrize(("denied", "unread"), [
    ("/etc/sudoers.d", "/etc/sudoers.d: Permission denied; its files were not read"),
    ("/etc/sudoers.local", "/etc/sudoers.local: Permission denied"),
])
def test_an_unreadable_include_directive_is_named_in_the_fact(tmp_path: Path, denied: str,
                                                               unread: str) -> None:
    sudo_root(tmp_path, {"/etc/sudoers": "root ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n"
                                         "@include /etc/sudoers.local\n",
                         "/etc/sudoers.d/ops": "ops ALL=(ALL) ALL\n",
                         "/etc/sudoers.local": "local ALL=(ALL) ALL\n"})
    sudoers, _errors, _kinds = read(DeniedReader(tmp_path, denied))
    assert sudoers.unread == (unread,)


def test_what_is_absent_or_refused_by_sudo_is_not_unread(tmp_path: Path) -> None:
    # a missing include directory or @include file, an ignored name, a FIFO sudo skips: nothing is hidden
    reader = sudo_root(tmp_path, {"/etc/sudoers": "root ALL=(ALL) ALL\n#includedir /etc/nothing.d\n"
                                                  "@include /etc/missing\n#includedir /etc/sudoers.d\n",
                                  "/etc/sudoers.d/old.dpkg-old": "x ALL=(ALL) NOPASSWD: ALL\n"})
    os.mkfifo(tmp_path / "etc/sudoers.d/pipe")
    sudoers, _errors, _kinds = read(reader)
    assert sudoers.unread == ()


def test_a_single_text_with_includes_is_not_the_whole_policy() -> None:
    sudoers = parse_sudoers("root ALL=(ALL) ALL\n#includedir /etc/sudoers.d\n", "/etc/sudoers")
    assert sudoers.unread == ("/etc/sudoers.d: include directory; not followed when parsing a single text",)
