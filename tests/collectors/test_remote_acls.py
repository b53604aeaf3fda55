"""Access ACLs as the SSH transport reads them: the guest's own ls(1) marks a file that has one, its
getfacl(1) prints the entries. Here the script runs on this machine's real ls and getfacl (package acl,
installed by scripts/test.sh) over files given ACLs through the kernel, and every answer is compared
with what the local root reader reads from the same files' xattrs (the oracle)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from components import require
from posix_acls import acl_xattr, set_acl
from vmsec.collectors.reader import RootReader
from vmsec.collectors.remote import (
    _ACL_END,
    _ACL_SCRIPT,
    INLINE_ACL_BYTES,
    NO_ACL_TOOL,
    NO_GETFACL,
    FileCache,
    acl_inline,
    parse_acl_output,
)
from vmsec.facts import AclEntry, evolve

NAMES = ["plain", "named-user", "named-group", "mask-only", "a dir", "default-only", "we\nird", 'q"uo\\te',
         "tab\there", "bytes-\udcff", "link", "dangling"]


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    root = tmp_path / "t"
    root.mkdir()
    for name in NAMES[:-2]:
        path = root / name
        if name in ("a dir", "default-only"):
            path.mkdir()
        else:
            path.write_bytes(b"x")
    set_acl(root / "named-user", "user:1001:rw-")
    set_acl(root / "named-group", "group:42:r--,group:0:rwx")
    set_acl(root / "mask-only", "group::rw-,mask::r--")
    set_acl(root / "a dir", "user:0:rwx")
    # a default ACL only: ls marks the directory, but its access ACL is the mode bits (none)
    os.setxattr(root / "default-only", "system.posix_acl_default", acl_xattr(0o755, "user:3:r-x"))
    set_acl(os.fsencode(root / "we\nird"), "user:7:r--")
    set_acl(os.fsencode(root / "bytes-\udcff"), "group:9:-w-")
    os.symlink("named-user", root / "link")
    os.symlink("nowhere", root / "dangling")
    return [str(root / n) for n in NAMES]


def _numeric(acl: tuple[AclEntry, ...] | None) -> tuple[AclEntry, ...] | None:
    """The entries without the names the local reader looks up (the SSH reader adds them later)."""
    return None if acl is None else tuple(evolve(e, name=None) for e in acl)


def _run(script: str, paths: list[str]) -> bytes:
    stdin = b"\0".join(p.encode("utf-8", "surrogateescape") for p in paths)
    return subprocess.run(["sh", "-c", script], input=stdin, capture_output=True, check=True).stdout


def test_ls_and_getfacl_read_the_acls_the_kernel_holds(files: list[str]) -> None:
    require(shutil.which("getfacl"), "getfacl", "package acl (scripts/test.sh installs it)")
    answer = parse_acl_output(_run(_ACL_SCRIPT, files))
    local = RootReader("/")
    for path in files[:-1]:
        assert answer[path] == (_numeric(local.stat(path).acl), None), path
    assert files[-1] not in answer  # a dangling link: nothing to examine, so no answer at all
    assert answer[files[0]] == ((), None)
    assert answer[files[1]][0] and answer[files[1]][0][0].id == 1001


def test_without_getfacl_a_marked_file_is_unknown_and_an_unmarked_one_has_none(files: list[str]) -> None:
    answer = parse_acl_output(_run(_ACL_SCRIPT.replace("command -v getfacl", "command -v no-such-getfacl"),
                                   files))
    local = RootReader("/")
    for path in files[:-1]:
        if local.stat(path).acl or path.endswith("/default-only"):  # ls marks a default ACL too
            assert answer[path] == (None, NO_GETFACL), path
        else:
            assert answer[path] == ((), None), path


def test_without_getfacl_an_ls_that_is_not_gnu_is_not_believed(files: list[str]) -> None:
    """Only GNU coreutils' ls is taken at its word that a file has no ACL (others have shown no + for
    a file that has one): with neither tool, every ACL is unknown, never "none"."""
    script = _ACL_SCRIPT.replace("command -v getfacl", "command -v no-such-getfacl")
    answer = parse_acl_output(_run(script.replace("GNU coreutils", "some other ls"), files))
    assert answer and set(answer.values()) == {(None, NO_ACL_TOOL)}


def test_the_inline_form_answers_as_the_stdin_form_and_leaves_what_follows(files: list[str]) -> None:
    """Quoted into another batch's command line (the archive of batch 3), ahead of that command's
    output, which follows the end marker untouched."""
    utf8 = [p for p in files if "\udcff" not in p]
    prefix = acl_inline(utf8)
    assert prefix is not None
    out = subprocess.run(["sh", "-c", prefix + "printf 'tar\\0bytes'"], capture_output=True,
                         check=True).stdout
    answer, end, rest = out.partition(_ACL_END)
    assert end and rest == b"tar\0bytes"
    assert parse_acl_output(answer) == parse_acl_output(_run(_ACL_SCRIPT, utf8))


def test_names_a_command_line_cannot_carry_go_on_standard_input() -> None:
    """SSH sends a command as UTF-8 text, and Linux takes 128 KiB in one argument: a name that is not
    UTF-8, or names whose quoting grows past the budget, are not put on the command line."""
    assert acl_inline(["/etc/sudoers.d/latin-\udce9"]) is None
    quotes = ["/etc/" + "'" * 250] * 230  # 58 KB of names, 290 KB quoted
    assert sum(map(len, quotes)) < INLINE_ACL_BYTES and acl_inline(quotes) is None
    euros = ["/etc/" + "€" * 80] * 590  # 50 k characters, 143 KB of UTF-8
    assert acl_inline(euros) is None
    assert acl_inline(["/etc/shadow", "/root/.ssh/authorized_keys"]) is not None


def test_many_paths_are_split_by_xargs_and_all_answered(tmp_path: Path) -> None:
    """Beyond one command line: xargs runs ls and getfacl again, each run framed on its own."""
    paths = []
    for n in range(3000):
        path = tmp_path / f"{'f' * 120}{n:05d}"
        path.write_bytes(b"")
        paths.append(str(path))
    set_acl(paths[-1], "user:5:r--")
    answer = parse_acl_output(_run(_ACL_SCRIPT, paths))
    assert len(answer) == len(paths)
    assert answer[paths[0]] == ((), None)
    if shutil.which("getfacl"):
        assert answer[paths[-1]][0] == _numeric(RootReader("/").stat(paths[-1]).acl)


@pytest.mark.parametrize("out", [
    b"",  # nothing asked, nothing answered
    b"\0L\0",
])
def test_empty_answers(out: bytes) -> None:
    assert parse_acl_output(out) == {}


@pytest.mark.parametrize("out", [
    b"garbage without framing",
    b"\0X\0something",  # an unknown frame
    b"\0L\0-rw-r--r--+ 1 0 0 3 Dec  6 13:28 \"/x\"\0A",  # cut off
])
def test_output_that_is_not_the_scripts_is_refused(out: bytes) -> None:
    with pytest.raises(ValueError):
        parse_acl_output(out)


def test_a_malformed_getfacl_block_is_unknown_not_none() -> None:
    out = (b"\0L\0-rw-r--r--+ 1 0 0 3 Dec  6 13:28 \"/etc/shadow\"\n"
           b"\0A\0# file: /etc/shadow\nuser::rw-\nuser:bob:r--\ngroup::r--\nmask::r--\nother::---\n\n")
    acl, why = parse_acl_output(out)["/etc/shadow"]
    assert acl is None and why is not None and "malformed" in why


def test_a_name_cannot_forge_another_files_answer() -> None:
    """ls quotes a name and getfacl escapes its newline: a file named to look like another file's line
    (or block) answers for itself only."""
    forged = '/tmp/x"\n-rw-r--r--  1 0 0 3 Dec  6 13:28 "/etc/shadow'
    out = (b'\0L\0-rw-r--r--+ 1 0 0 3 Dec  6 13:28 '
           b'"/tmp/x\\"\\n-rw-r--r--  1 0 0 3 Dec  6 13:28 \\"/etc/shadow"\n'
           b'-rw-r-----+ 1 0 42 3 Dec  6 13:28 "/etc/shadow"\n'
           b"\0A\0# file: /tmp/x\"\\012-rw-r--r--  1 0 0 3 Dec  6 13:28 \"/etc/shadow\nuser::rw-\n"
           b"user:5:r--\ngroup::r--\nmask::r--\nother::r--\n\n"
           b"# file: /etc/shadow\nuser::rw-\nuser:1000:r--\ngroup::r--\nmask::r--\nother::---\n\n")
    answer = parse_acl_output(out)
    assert set(answer) == {forged, "/etc/shadow"}
    assert [e.id for e in answer["/etc/shadow"][0] or () if e.id is not None] == [1000]
    assert [e.id for e in answer[forged][0] or () if e.id is not None] == [5]


def test_only_the_paths_asked_are_answered_and_no_answer_is_unknown() -> None:
    """The guest's tools may print anything: a line for a path nobody asked about is not taken (it
    could otherwise answer "no ACL" for a file asked later), and a garbled or missing answer leaves
    every asked path unknown, with the reason — never "no ACL"."""
    cache = FileCache()
    out = (b'\0N\0\0G\0\0L\0-rw-r--r--  1 0 0 3 Dec  6 13:28 "/etc/shadow"\n'
           b'-rw-r--r--  1 0 0 3 Dec  6 13:28 "/etc/gshadow"\n')
    cache.note_acls(["/etc/shadow", "/etc/sudoers"], out)
    assert cache.acls["/etc/shadow"] == ((), None)
    acl, why = cache.acls["/etc/sudoers"]  # asked, but ls printed nothing for it
    assert acl is None and why and "could not examine" in why
    assert "/etc/gshadow" not in cache.acls
    for garbled in (b"no framing at all", None):
        other = FileCache()
        other.note_acls(["/etc/shadow"], garbled)
        acl, why = other.acls["/etc/shadow"]
        assert acl is None and why and "no usable answer" in why


def test_an_ls_line_that_never_closes_its_quote_costs_linear_time() -> None:
    """A hostile ls printing one line of `\\"` after an opening quote: the name's pattern was tried from
    every position of the line (256 KB: 270 s, quadratic, on the scan's event loop); anchored at the
    first quote it is one pass."""
    out = b'\0N\0\0G\0\0L\0-rw-r--r--+ 1 0 0 3 Dec  6 13:28 "' + b'\\"' * 128 * 1024
    started = time.monotonic()
    assert parse_acl_output(out) == {}
    assert time.monotonic() - started < 5  # a hang guard (measured: a few ms), not a benchmark
