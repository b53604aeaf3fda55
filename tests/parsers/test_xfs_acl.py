"""ACLs on XFS (RHEL's default filesystem) read from a disk image: the attribute fork's short form and
XFS's own ACL layout. The oracle is the kernel: an XFS image is mounted (a loop device, in a private
mount namespace), its files get ACLs through setxattr(2), and what the local reader reads from the
mounted files is what the image reader must read from the unmounted image."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from components import require
from vmsec.checks.catalog import default_catalog
from vmsec.collectors.image import collect_images, open_guest_image
from vmsec.engine import run_checks
from vmsec.facts import AclEntry
from vmsec.findings import Status
from vmsec.parsers.posix_acl import parse_xfs_acl
from vmsec.parsers.xfs_attr import XFS_ATTR_INCOMPLETE, XFS_ATTR_ROOT, XFS_ATTR_SECURE, shortform_attribute

TESTS = Path(__file__).resolve().parents[1]
Planted = tuple[Path, dict[str, list[list[object]]]]  # the image, and the kernel's view of its ACLs

# Run inside the mounted image: files, their ACLs (through the kernel) and the kernel's view of them.
PLANT = """
import json, os, sys
sys.path.insert(0, sys.argv[2])
from posix_acls import set_acl
from vmsec.collectors.reader import RootReader
root = sys.argv[1]
etc = os.path.join(root, "etc")
os.makedirs(etc)
files = {
    "os-release": 'ID=rhel\\nVERSION_ID="9.4"\\n',
    "passwd": "root:x:0:0::/root:/bin/sh\\nbob:x:1000:1000::/home/bob:/bin/sh\\n",
    "group": "root:x:0:\\nwheel:x:10:\\n",
    "shadow": "root:*:19000:0:99999:7:::\\n", "gshadow": "root:::\\n",
    "many": "x", "crowded": "x", "plain": "x",
}
for name, text in files.items():
    with open(os.path.join(etc, name), "w") as fh:
        fh.write(text)
for name in ("shadow", "gshadow"):
    os.chmod(os.path.join(etc, name), 0o000)  # RHEL's 0000 root:root
os.mkdir(os.path.join(etc, "dir"))
set_acl(os.path.join(etc, "shadow"), "user:1000:r--")
many = ",".join(f"user:{n}:r--" for n in range(1, 9))
set_acl(os.path.join(etc, "many"), many + ",group:9:rw-,group:10:r--")
set_acl(os.path.join(etc, "dir"), "user:5:rwx")
# attributes beyond what the inode holds: XFS moves them all, the ACL too, to a block of their own
for n in range(8):
    os.setxattr(os.path.join(etc, "crowded"), f"user.filler{n}", b"v" * 200)
set_acl(os.path.join(etc, "crowded"), "user:7:rw-")
reader = RootReader(root)
print(json.dumps({f"/etc/{n}": [[e.tag, e.id, e.perms] for e in reader.stat(f"/etc/{n}").acl or ()]
                  for n in ("shadow", "gshadow", "many", "dir", "plain", "crowded")}))
"""


@pytest.fixture(scope="module")
def xfs_image(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    require(os.geteuid() == 0 and os.path.exists("/dev/loop-control") and shutil.which("mkfs.xfs"),
            "loop devices and mkfs.xfs as root",
            "mounting an XFS image needs them (scripts/test.sh runs as root and installs xfsprogs)")
    work = tmp_path_factory.mktemp("xfs-acl")
    image, mount = work / "fs.xfs", work / "mnt"
    mount.mkdir()
    with image.open("wb") as fh:
        fh.truncate(300 * 1024 * 1024)  # sparse: mkfs.xfs's smallest filesystem
    subprocess.run(["mkfs.xfs", "-q", str(image)], check=True, capture_output=True, timeout=120)
    script = work / "plant.py"
    script.write_text(PLANT)
    shell = (f"set -e; mount -o loop {image} {mount}; "
             f"{sys.executable} {script} {mount} {TESTS} > {work / 'kernel.json'} || status=$?; "
             f"umount {mount}; exit ${{status:-0}}")
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", shell],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return image, json.loads((work / "kernel.json").read_text())


def test_the_image_reader_reads_the_acls_the_kernel_wrote(xfs_image: Planted) -> None:
    image, kernel = xfs_image
    reader, _disk, _records = open_guest_image(str(image))
    assert reader is not None
    for path, entries in kernel.items():
        st = reader.stat(path)
        if path == "/etc/crowded":  # the ACL went to a block outside the inode: unknown, and said so
            assert entries and st.acl is None and "blocks of their own" in (st.acl_error or "")
            continue
        assert st.acl_error is None, (path, st.acl_error)
        assert [[e.tag, e.id, e.perms] for e in st.acl or ()] == entries, path
    assert reader.stat("/etc/shadow").acl == (
        AclEntry(tag="user", id=1000, perms=4, name="bob"), AclEntry(tag="group_obj", perms=0),
        AclEntry(tag="mask", perms=4))


def test_an_acl_on_a_0000_shadow_file_fails_where_the_mode_alone_passes(xfs_image: Planted) -> None:
    image, _kernel = xfs_image
    result = run_checks(collect_images([str(image)]), default_catalog())
    verdicts = {f.subject: f for f in result.findings if f.check_id == "VMS-GST-140"}
    assert verdicts["/etc/shadow"].status is Status.FAIL, verdicts["/etc/shadow"].message
    assert "user bob can read it" in verdicts["/etc/shadow"].message
    assert verdicts["/etc/gshadow"].status is Status.PASS, verdicts["/etc/gshadow"].message


def _fork(*entries: tuple[bytes, bytes, int], total: int | None = None) -> bytes:
    body = b"".join(bytes([len(n), len(v), f]) + n + v for n, v, f in entries)
    size = total if total is not None else 4 + len(body)
    return struct.pack(">HBx", size, len(entries)) + body + b"\0" * 16


def _xfs(*entries: tuple[int, int, int]) -> bytes:
    return struct.pack(">I", len(entries)) + b"".join(struct.pack(">IIHH", t, i, p, 0) for t, i, p in entries)


NOID = 2**32 - 1
# user::rw-, user:1000:r--, group::---, mask::r--, other::--- — a 0640 file whose ACL lets uid 1000 read
ACL = _xfs((0x01, NOID, 6), (0x02, 1000, 4), (0x04, NOID, 0), (0x10, NOID, 4), (0x20, NOID, 0))


def test_the_short_form_finds_the_attribute_in_its_namespace_only() -> None:
    fork = _fork((b"SGI_ACL_FILE", b"user-namespace", 0), (b"selinux", b"system_u:object_r:shadow_t:s0", 4),
                 (b"SGI_ACL_FILE", ACL, XFS_ATTR_ROOT))
    assert shortform_attribute(fork, b"SGI_ACL_FILE", XFS_ATTR_ROOT) == ACL
    assert shortform_attribute(fork, b"selinux", XFS_ATTR_SECURE) == b"system_u:object_r:shadow_t:s0"
    assert shortform_attribute(fork, b"SGI_ACL_DEFAULT", XFS_ATTR_ROOT) is None
    # the incomplete flag is never valid in the short form: the kernel calls the fork corrupt
    with pytest.raises(ValueError, match="corrupt"):
        shortform_attribute(_fork((b"SGI_ACL_FILE", ACL, XFS_ATTR_ROOT | XFS_ATTR_INCOMPLETE)),
                            b"SGI_ACL_FILE", XFS_ATTR_ROOT)
    assert [(e.tag, e.id, e.perms) for e in parse_xfs_acl(ACL, 0o100640)] == [
        ("user", 1000, 4), ("group_obj", None, 0), ("mask", None, 4)]


@pytest.mark.parametrize(("fork", "error"), [
    (b"\x00", "shorter than"),
    (struct.pack(">HBx", 400, 1) + b"\0" * 20, "bytes in"),  # a total beyond the fork
    (struct.pack(">HBx", 4, 3), "truncated"),  # entries the total has no room for
    (struct.pack(">HBx", 10, 1) + bytes([12, 64, 2]) + b"SGI", "runs past"),
    (struct.pack(">HBx", 11, 1) + bytes([1, 1, 2]) + b"ab" + b"\0" * 8, "not at the fork's total"),
    (struct.pack(">HBx", 9, 1) + bytes([0, 2, 2]) + b"ab", "corrupt"),  # an entry without a name
    (struct.pack(">HBx", 9, 1) + bytes([1, 1, 6]) + b"ab", "corrupt"),  # two namespaces at once
])
def test_a_malformed_fork_is_refused(fork: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        shortform_attribute(fork, b"SGI_ACL_FILE", XFS_ATTR_ROOT)


@pytest.mark.parametrize(("value", "error"), [
    # Shapes an image can carry and the kernel reads as they say (a review's exploits): read as the mode
    # bits plus named entries, each had looked like "no ACL" or a narrower one.
    (_xfs(*[(0x01, NOID, 6)] * 4, (0x20, NOID, 6)), "out of the order"),  # owner ×4, others rw-
    (_xfs((0x01, NOID, 6), (0x10, NOID, 4), (0x02, 4242, 6), (0x04, NOID, 4), (0x20, NOID, 0)),
     "out of the order"),  # the mask before the named user: the kernel does not apply it
    (_xfs((0x01, NOID, 6), (0x02, 4242, 6), (0x04, NOID, 4), (0x20, NOID, 0)), "out of the order"),  # no mask
    (_xfs((0x01, NOID, 6), (0x04, NOID, 4), (0x20, NOID, 6)), "disagrees with the mode"),  # others rw-
    (_xfs((0x01, NOID, 6), (0x04, NOID, 4), (0x20, NOID, 0o10)), "beyond rwx"),
    (b"\0\0", "shorter than"),
    (struct.pack(">I", 6) + ACL[4:], "cannot hold"),  # a count its length disagrees with
    (struct.pack(">I", 1) + struct.pack(">IIHH", 0x40, 0, 7, 0), "unknown ACL entry tag"),
    (struct.pack(">I", 10**9), "cannot hold"),  # a count no fork could hold: refused before any loop
])
def test_a_malformed_xfs_acl_is_refused(value: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_xfs_acl(value, 0o100640)
