"""The image collector on a guest whose root filesystem is an LVM logical volume.

disk-lvm.qcow2 (built by build_lvm_image.sh with the real LVM tools) is a GPT disk whose one
partition is an LVM physical volume; its volume group holds one logical volume, ``root``, with the
same Debian 12 ext4 root as disk.qcow2. vmsec must find that root through the LVM metadata
(dissect.volume's LVM2 support) and report the same guest as the plain disk.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from guest_images import LVM_SCRIPT, GuestImages, ImageBuildError, build_lvm_image

from vmsec.collectors.image import collect_images
from vmsec.facts import Guest

PARTITION_START = 1 << 20  # build_lvm_image.sh: the LVM partition starts at 1 MiB
EXT4_MAGIC_OFFSET = 1024 + 56  # s_magic inside the ext4 superblock
EXT4_MAGIC = b"\x53\xef"


@pytest.fixture(scope="module")
def lvm_image(guest_images: GuestImages) -> Path:
    try:
        return build_lvm_image()
    except ImageBuildError as exc:
        pytest.fail(str(exc), pytrace=False)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _only_guest(path: Path) -> Guest:
    inv = collect_images([str(path)])
    assert all(r.ok for r in inv.records if r.what == "disk image"), inv.records
    [guest] = inv.guests
    return guest


def test_the_image_really_is_lvm(lvm_image: Path) -> None:
    """The root is not at the partition start (so a reader that ignores LVM cannot find it): the
    partition holds an LVM2 PV label and the volume group's metadata naming the LV ``root``."""
    from dissect.hypervisor.disk.qcow2 import QCow2

    with open(lvm_image, "rb") as fh:
        disk = QCow2(fh).open()
        disk.seek(PARTITION_START)
        head = disk.read(1 << 20)
    assert head[512:520] == b"LABELONE" and head[536:544] == b"LVM2 001"
    assert head[EXT4_MAGIC_OFFSET:EXT4_MAGIC_OFFSET + 2] != EXT4_MAGIC
    assert b"root {" in head and b'type = "striped"' in head  # the LV in the text metadata


def test_lvm_guest_has_the_same_facts_as_the_plain_disk(lvm_image: Path, guest_images: GuestImages,
                                                        ) -> None:
    before = (_sha256(lvm_image), os.stat(lvm_image).st_mtime_ns)
    guest = _only_guest(lvm_image)
    reference = _only_guest(guest_images["disk.qcow2"])
    assert guest.name == "disk-lvm.qcow2" and guest.origin == str(lvm_image)
    assert guest.os is not None and guest.os.id == "debian" and guest.os.version_id == "12"
    assert guest.os == reference.os
    assert guest.packages and guest.packages == reference.packages
    assert {"openssh-server", "sudo"} <= {p.name for p in guest.packages}
    assert guest.accounts and guest.accounts == reference.accounts
    assert guest.shadow == reference.shadow
    assert guest.sshd is not None and guest.sshd == reference.sshd
    assert guest.disk is not None and guest.disk.scheme == "none"
    assert (_sha256(lvm_image), os.stat(lvm_image).st_mtime_ns) == before  # never written


def test_build_without_lvm_tools_is_a_clear_failure(tmp_path: Path) -> None:
    (tmp_path / "fs.ext4").write_bytes(b"\0" * 4096)
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # no /usr/sbin: no pvcreate, losetup, sfdisk
    done = subprocess.run(["sh", str(LVM_SCRIPT), str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "is not installed" in done.stderr and "lvm2" in done.stderr
    assert not (tmp_path / "disk-lvm.qcow2").exists()


def test_a_failed_build_detaches_its_loop_device(tmp_path: Path) -> None:
    (tmp_path / "fs.ext4").write_bytes(b"\0" * 4096)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "lvcreate").write_text("#!/bin/sh\necho 'lvcreate: refused by the test' >&2\nexit 5\n")
    (shim / "lvcreate").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"}
    done = subprocess.run(["sh", str(LVM_SCRIPT), str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "refused by the test" in done.stderr and "lvcreate failed" in done.stderr
    attached = subprocess.run(["losetup", "--list", "--noheadings", "--output", "BACK-FILE"],
                              capture_output=True, text=True, check=True).stdout
    assert str(tmp_path) not in attached
    assert not list(tmp_path.glob("lvm-build.*")) and not (tmp_path / "disk-lvm.qcow2").exists()
