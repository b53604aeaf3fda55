"""PAM stacks: line syntax, include/substack/@include expansion in order, loops and depth bounded,
hostile files (a FIFO service file) refused rather than hanging."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, Problems, ReadError
from vmsec.parsers.pam import MAX_DEPTH, MUST_FAIL, parse_pam_file, read_pam, read_pam_stack

GUESTS = Path(__file__).resolve().parents[1] / "data" / "guests"


def pam_root(tmp_path: Path, files: dict[str, str]) -> RootReader:
    for name, text in files.items():
        path = tmp_path / "etc/pam.d" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return RootReader(str(tmp_path))


def test_line_syntax() -> None:
    text = ("#%PAM-1.0\n"
            "auth [success=1 default=ignore] pam_unix.so nullok # trailing comment\n"
            "-session optional pam_systemd.so\n"
            "password requisite pam_pwquality.so \\\n   retry=3 minlen=14\n"
            "auth required pam_exec.so [arg with spaces] quiet\n"
            "bogus required pam_x.so\n"
            "auth required\n")
    lines, problems = parse_pam_file(text, "/etc/pam.d/x")
    assert [(raw.type, raw.control, raw.module, raw.args, raw.line) for raw in lines] == [
        ("auth", "[success=1 default=ignore]", "pam_unix.so", ("nullok",), 2),
        ("session", "optional", "pam_systemd.so", (), 3),
        ("password", "requisite", "pam_pwquality.so", ("retry=3", "minlen=14"), 4),
        ("auth", "required", "pam_exec.so", ("arg with spaces", "quiet"), 6),
    ]
    assert [(p.source, p.reason, p.kind) for p in problems] == [
        ("/etc/pam.d/x:7", "unknown type 'bogus'", ErrorKind.INVALID),
        ("/etc/pam.d/x:8", "fewer than three fields", ErrorKind.INVALID)]


_LONG = "auth optional pam_mark.so "


@pytest.mark.parametrize(("text", "expected"), [
    # _pam_assemble_line(): a blank or comment line after a trailing backslash does not end the line —
    # the MFA line below is pam_unix's arguments, not a module (checked with libpam 1.5.2).
    ("auth required pam_unix.so \\\n\nauth required pam_google_authenticator.so\n",
     [("auth", "required", "pam_unix.so", ("auth", "required", "pam_google_authenticator.so"))]),
    ("auth required pam_unix.so \\\n# the second factor:\nauth required pam_oath.so\n",
     [("auth", "required", "pam_unix.so", ("auth", "required", "pam_oath.so"))]),
    # a '#' ends the line before any backslash is looked for
    ("auth optional pam_mark.so \\ # see below\nauth sufficient pam_permit.so\n",
     [("auth", "optional", "pam_mark.so", ("\\",)), ("auth", "sufficient", "pam_permit.so", ())]),
    # only space, tab and newline are passed over looking back for the backslash; only they split words
    ("auth optional pam_mark.so \\\x0c\nauth sufficient pam_permit.so\n",
     [("auth", "optional", "pam_mark.so", ("\\\x0c",)), ("auth", "sufficient", "pam_permit.so", ())]),
    # fgets() into 1,024 bytes: a longer physical line is two PAM lines
    (_LONG + "x" * (1023 - len(_LONG)) + "auth sufficient pam_permit.so\n",
     [("auth", "optional", "pam_mark.so", ("x" * (1023 - len(_LONG)),)),
      ("auth", "sufficient", "pam_permit.so", ())]),
    # keywords compare with strcasecmp()
    ("auth SUFFICIENT pam_permit.so\nAuth Required pam_deny.so\n",
     [("auth", "sufficient", "pam_permit.so", ()), ("auth", "required", "pam_deny.so", ())]),
    ("@INCLUDE common-auth\nauth Substack other\n",
     [("@include", "include", "common-auth", ()), ("auth", "substack", "other", ())]),
    # _pam_StrTok(): "[…]" loses its brackets and ends at the first "]"; "\\]" is "]"
    ("auth required pam_unix.so [nullok] [a[b] [x\\]y]\n",
     [("auth", "required", "pam_unix.so", ("nullok", "a[b", "x]y"))]),
    ("auth [success = done default=ignore] pam_permit.so\n",
     [("auth", "[success = done default=ignore]", "pam_permit.so", ())]),
])
def test_lines_are_read_as_libpam_reads_them(text: str, expected: list[tuple[str, str, str, tuple[str, ...]]]
                                             ) -> None:
    lines, _problems = parse_pam_file(text, "/etc/pam.d/x")
    assert [(raw.type, raw.control, raw.module, raw.args) for raw in lines] == expected


def test_an_include_is_looked_up_in_etc_pam_d_first_whoever_includes_it(tmp_path: Path) -> None:
    # pam_handlers.c: "include name" is /etc/pam.d/name, then the vendor directory — not the
    # directory of the file that includes it.
    for rel, text in {"usr/lib/pam.d/sshd": "auth include zz\n",
                      "usr/lib/pam.d/zz": "auth required pam_google_authenticator.so\n",
                      "etc/pam.d/zz": "auth required pam_unix.so\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    stack = read_pam_stack(RootReader(str(tmp_path)), "sshd")
    assert stack is not None
    assert [line.module for line in stack.lines] == ["zz", "pam_unix.so"]


def test_debian_at_include_expands_in_place() -> None:
    stack = read_pam_stack(RootReader(str(GUESTS / "debian12")), "sshd")
    assert stack is not None
    summary = [(line.type, line.module) for line in stack.lines]
    # the @include line, then the included lines, then the next line of sshd
    assert summary[:5] == [("@include", "common-auth"), ("auth", "pam_unix.so"), ("auth", "pam_deny.so"),
                           ("auth", "pam_permit.so"), ("account", "pam_nologin.so")]
    unix = stack.lines[1]
    assert unix.args == ("nullok",) and unix.origin == "/etc/pam.d/common-auth:2"
    assert ("password", "pam_unix.so") in summary
    assert summary[-1] == ("password", "pam_permit.so")


def test_rhel_substack_and_include_take_only_their_type() -> None:
    notes = Problems()
    stacks = {s.service: s for s in read_pam(RootReader(str(GUESTS / "alma9")), problems=notes)}
    sshd = stacks["sshd"]
    auth = [(line.control, line.module) for line in sshd.lines if line.type == "auth"]
    assert auth[0] == ("substack", "password-auth")
    assert ("required", "pam_faillock.so") in auth and ("sufficient", "pam_unix.so") in auth
    # "auth include postlogin": postlogin has only session lines, so nothing but the include line
    assert auth[-1] == ("include", "postlogin")
    # password-auth is a symlink into /etc/authselect: followed inside the root
    faillock = next(line for line in sshd.lines if line.module == "pam_faillock.so")
    assert faillock.origin == "/etc/pam.d/password-auth:3"
    assert notes == []


def test_include_loop_is_noted_and_bounded(tmp_path: Path) -> None:
    reader = pam_root(tmp_path, {
        "sshd": "@include common-auth\naccount required pam_unix.so\n",
        "common-auth": "auth required pam_unix.so\n@include sshd\n",
    })
    notes = Problems()
    stacks = {s.service: s for s in read_pam(reader, problems=notes)}
    modules = [line.module for line in stacks["sshd"].lines]
    # The loop stands as a line that fails for every type (libpam 1.5.2 follows the loop and crashes).
    assert modules == ["common-auth", "pam_unix.so", "sshd", *[MUST_FAIL] * 4, "pam_unix.so"]
    failing = [line for line in stacks["sshd"].lines if line.module == MUST_FAIL]
    assert sorted(line.type for line in failing) == ["account", "auth", "password", "session"]
    assert {line.control for line in failing} == {"[default=bad]"}
    assert any("include loop" in n.reason and n.kind is ErrorKind.LOOP for n in notes)


def test_include_depth_is_bounded(tmp_path: Path) -> None:
    files = {f"s{i}": f"auth include s{i + 1}\nauth required pam_s{i}.so\n" for i in range(20)}
    notes = Problems()
    stack = {s.service: s for s in read_pam(pam_root(tmp_path, files), problems=notes)}["s0"]
    reached = [line.module for line in stack.lines if line.module.startswith("pam_s")]
    assert len(reached) == MAX_DEPTH
    assert any(f"deeper than {MAX_DEPTH}" in n.reason and n.kind is ErrorKind.LOOP for n in notes)


def test_missing_include_is_noted(tmp_path: Path) -> None:
    notes = Problems()
    stacks = read_pam(pam_root(tmp_path, {"login": "auth include nowhere\n"}), problems=notes)
    # libpam puts a handler that always fails where the include could not be loaded.
    assert [(line.type, line.control, line.module) for line in stacks[0].lines] == [
        ("auth", "include", "nowhere"), ("auth", "[default=bad]", MUST_FAIL)]
    assert [(n.source, n.reason, n.kind) for n in notes] == [
        ("/etc/pam.d/login:1", "included file 'nowhere' does not exist", ErrorKind.ABSENT)]


@pytest.mark.timeout(10)
def test_fifo_service_file_is_refused_not_read(tmp_path: Path) -> None:
    reader = pam_root(tmp_path, {"login": "auth required pam_unix.so\n"})
    os.mkfifo(tmp_path / "etc/pam.d/sshd")
    with pytest.raises(ReadError, match="fifo"):
        read_pam(reader)


def test_no_pam_directory_is_no_pam(tmp_path: Path) -> None:
    assert read_pam(RootReader(str(tmp_path))) == ()


def test_vendor_directory_is_used_when_etc_has_no_file(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/pam.d").mkdir(parents=True)
    (tmp_path / "usr/lib/pam.d/sshd").write_text("auth include common-auth\n")
    (tmp_path / "usr/lib/pam.d/common-auth").write_text("auth required pam_unix.so\n")
    stacks = {s.service: s for s in read_pam(RootReader(str(tmp_path)))}
    assert stacks["sshd"].path == "/usr/lib/pam.d/sshd"
    assert [line.module for line in stacks["sshd"].lines] == ["common-auth", "pam_unix.so"]


def test_pam_conf_is_read_when_there_is_no_pam_d(tmp_path: Path) -> None:
    # pam_handlers.c: without /etc/pam.d libpam reads /etc/pam.conf, whose first field names the
    # service ("other" for the rest); a pam_permit there is a backdoor like any other.
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/pam.conf").write_text(
        "# service type control module\nsshd auth sufficient pam_permit.so\nSSHD auth required pam_unix.so\n"
        "other auth required pam_deny.so\nlogin  auth  include  other\n")
    stacks = {s.service: s for s in read_pam(RootReader(str(tmp_path)))}
    assert set(stacks) == {"sshd", "other", "login"}
    assert [(ln.control, ln.module) for ln in stacks["sshd"].lines] == [
        ("sufficient", "pam_permit.so"), ("required", "pam_unix.so")]
    assert stacks["sshd"].path == "/etc/pam.conf"
    assert stacks["sshd"].lines[0].origin == "/etc/pam.conf:2"
    (tmp_path / "etc/pam.d").mkdir()  # with the directory, pam.conf is not read at all
    assert read_pam(RootReader(str(tmp_path))) == ()
