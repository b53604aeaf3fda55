"""POSIX access ACLs: read from a local root (the kernel's getxattr layout) and from an ext4 image (the
on-disk layout), checked against the kernel's own access decisions, and the verdicts they change."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from posix_acls import acl_xattr, set_acl
from vmsec.checks.api import Environment
from vmsec.checks.guest.file_permissions import account_file_permissions
from vmsec.collectors.dissect_reader import DissectReader
from vmsec.collectors.reader import RootReader
from vmsec.facts import AclEntry, FileKind, FileStat, Guest, Inventory, evolve
from vmsec.findings import Status
from vmsec.parsers.posix_acl import MAX_ENTRIES, acl_text, parse_posix_acl

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="setting another user's ids needs root")

# Accounts with no entry in this machine's /etc/passwd: the kernel decides by number alone.
ALICE, BOB, OPS = 4241, 4242, 4250
SPECS = [
    "user:4241:rw-",                       # a named user who may write
    "user:4241:rw-,mask::r--",             # … but the mask takes the write away
    "group:4250:rw-",                      # a named group
    "user:4242:r--,group:4250:-w-,mask::rw-",
    "group::rw-,mask::r--",                # the owning group's own entry, under the mask
]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other uids can enter (pytest's own are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="vmsec-acl-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _kernel_allows(path: Path, uid: int, groups: tuple[int, ...], test: str) -> bool:
    """``test -r`` / ``test -w`` run as ``uid`` with ``groups``: the kernel's own answer."""
    proc = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={groups[0]}",
                           f"--groups={','.join(map(str, groups))}", "test", test, str(path)],
                          capture_output=True, timeout=30, check=False)
    return proc.returncode == 0


def _ours(entries: tuple[AclEntry, ...], uid: int, groups: tuple[int, ...]) -> int:
    """What the entries give ``uid`` (not the owner, not in the owning group), by acl(5)'s rules."""
    mask = next((e.perms for e in entries if e.tag == "mask"), 7)
    named = next((e.perms for e in entries if e.tag == "user" and e.id == uid), None)
    if named is not None:
        return named & mask
    by_group = [e.perms & mask for e in entries if e.tag == "group" and e.id in groups]
    if by_group:
        result = 0
        for perms in by_group:
            result |= perms
        return result
    return -1  # others: the mode's last digit


@needs_root
@pytest.mark.parametrize("spec", SPECS)
def test_entries_read_locally_give_what_the_kernel_enforces(shared_dir: Path, spec: str) -> None:
    target = shared_dir / "file"
    target.write_text("x")
    target.chmod(0o640)
    set_acl(target, spec)
    st = RootReader(str(shared_dir)).stat("/file")
    assert st.acl and st.acl_error is None
    mask = next(e.perms for e in st.acl if e.tag == "mask")
    assert (st.mode or 0) >> 3 & 7 == mask  # the mode's group bits are the mask
    for uid, groups in ((ALICE, (ALICE,)), (BOB, (BOB,)), (4243, (4243, OPS))):
        perms = _ours(st.acl, uid, groups)
        if perms < 0:
            perms = (st.mode or 0) & 7
        assert (bool(perms & 4), bool(perms & 2)) == (
            _kernel_allows(target, uid, groups, "-r"), _kernel_allows(target, uid, groups, "-w")), (spec, uid)


def test_a_file_without_an_acl_has_none_and_symlinks_are_not_followed(shared_dir: Path) -> None:
    (shared_dir / "plain").write_text("x")
    (shared_dir / "secret").write_text("x")
    set_acl(shared_dir / "secret", "user:4241:rw-")
    (shared_dir / "link").symlink_to("secret")
    reader = RootReader(str(shared_dir))
    assert reader.stat("/plain").acl == ()
    assert reader.stat("/link", follow=False).acl == ()  # the link's own (links have none)
    assert [acl_text(e) for e in reader.stat("/link").acl or ()] == ["user:4241:rw-", "group::r--",
                                                                    "mask::rw-"]


def test_the_ext4_on_disk_layout_reads_as_the_kernel_layout(shared_dir: Path, tmp_path: Path) -> None:
    """mkfs.ext4 -d copies each file's ACL into the image in ext4's own layout (version 1, short
    entries): read back through dissect, it gives the entries the kernel gave for the source."""
    root = shared_dir / "root"
    (root / "etc").mkdir(parents=True)
    for i, spec in enumerate(SPECS):
        path = root / "etc" / f"f{i}"
        path.write_text("x")
        set_acl(path, spec)
    (root / "etc" / "plain").write_text("x")
    image = tmp_path / "fs.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(image), "4M"], check=True,
                   capture_output=True, timeout=60)
    from dissect.target.filesystems.extfs import ExtFilesystem

    with image.open("rb") as fh:
        disk = DissectReader(ExtFilesystem(fh), "fs.img")
        local = RootReader(str(root))
        for i in range(len(SPECS)):
            assert disk.stat(f"/etc/f{i}").acl == local.stat(f"/etc/f{i}").acl
        assert disk.stat("/etc/plain").acl == ()


def test_names_come_from_the_targets_own_account_databases(shared_dir: Path) -> None:
    (shared_dir / "etc").mkdir()
    (shared_dir / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nmallory:x:4241:4241::/:/bin/sh\n")
    (shared_dir / "etc/group").write_text("root:x:0:\nops:x:4250:\n")
    set_acl(shared_dir / "etc/passwd", "user:4241:rw-,group:4250:r--")
    st = RootReader(str(shared_dir)).stat("/etc/passwd")
    assert [acl_text(e) for e in st.acl or ()] == ["user:mallory:rw-", "group::r--", "group:ops:r--",
                                                   "mask::rw-"]


def _entry(tag: int, perm: int, ident: int = 0xFFFFFFFF) -> bytes:
    return struct.pack("<HHI", tag, perm, ident)


@pytest.mark.parametrize(("value", "error"), [
    (b"", "shorter than an ACL header"),
    (struct.pack("<I", 3) + _entry(1, 6), "unknown ACL version 3"),
    (struct.pack("<I", 2) + _entry(0x40, 6), "unknown ACL entry tag 0x40"),
    (struct.pack("<I", 2) + _entry(2, 6, 5)[:6], "a truncated ACL entry"),
    (struct.pack("<I", 1) + struct.pack("<HH", 2, 6), "a truncated ACL entry"),  # ext4: USER needs an id
    (struct.pack("<I", 2) + _entry(1, 6) * (MAX_ENTRIES + 1), f"more than {MAX_ENTRIES} ACL entries"),
])
def test_a_malformed_acl_is_refused_whole(value: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_posix_acl(value)


def test_the_test_helper_writes_what_the_kernel_accepts() -> None:
    # The helper orders entries as posix_acl_valid wants them; the parser reads them in that order.
    assert [acl_text(e) for e in parse_posix_acl(acl_xattr(0o640, "group:7:rw-,user:9:r--"))] == [
        "user:9:r--", "group::r--", "group:7:rw-", "mask::rw-"]


def _guest_with(st: FileStat) -> tuple[Guest, Environment]:
    guest = Guest(name="g", origin="/", file_stats={st.path: st})
    return guest, Environment(inventory=Inventory(guests=(guest,)), host=None)


def test_an_acl_that_could_not_be_read_leaves_good_mode_bits_unknown() -> None:
    good = FileStat(path="/etc/passwd", exists=True, kind=FileKind.FILE, mode=0o644, uid=0, gid=0,
                    owner="root", group="root")
    unread = evolve(good, acl_error="its ACL is malformed (unknown ACL version 3)")
    [result] = account_file_permissions(*_guest_with(unread))
    assert result.status is Status.UNKNOWN and "malformed" in result.message
    # Bad mode bits fail whatever the ACL says; a reader that cannot read ACLs judges the mode bits.
    [result] = account_file_permissions(*_guest_with(evolve(unread, mode=0o666)))
    assert result.status is Status.FAIL
    [result] = account_file_permissions(*_guest_with(good))
    assert result.status is Status.PASS


def test_an_image_opened_as_the_collector_opens_it_gives_its_acls(shared_dir: Path, tmp_path: Path) -> None:
    """Through open_guest_image, as a scan reads an image (its filesystem inside dissect's root
    filesystem, whose entries wrap the ext4 ones): the ACLs are the image's, and the shadow file an
    ACL opens fails VMS-GST-140 while its mode alone would pass."""
    from vmsec.checks.catalog import default_catalog
    from vmsec.collectors.image import collect_images, open_guest_image
    from vmsec.engine import run_checks

    root = shared_dir / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nshadow:x:42:\n")
    for name in ("shadow", "gshadow"):
        (root / "etc" / name).write_text("root:*:19000:0:99999:7:::\n")
        os.chown(root / "etc" / name, 0, 42)
        (root / "etc" / name).chmod(0o640)
    set_acl(root / "etc" / "shadow", "user:1000:r--")
    image = tmp_path / "fs.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(image), "8M"], check=True,
                   capture_output=True, timeout=60)
    reader, _disk, _records = open_guest_image(str(image))
    assert reader is not None
    assert reader.stat("/etc/shadow").acl == RootReader(str(root)).stat("/etc/shadow").acl
    assert reader.stat("/etc/gshadow").acl == ()
    result = run_checks(collect_images([str(image)]), default_catalog())
    verdicts = {f.subject: f for f in result.findings if f.check_id == "VMS-GST-140"}
    assert verdicts["/etc/shadow"].status is Status.FAIL, verdicts["/etc/shadow"].message
    assert "user bob can read it" in verdicts["/etc/shadow"].message
    assert verdicts["/etc/gshadow"].status is Status.PASS
