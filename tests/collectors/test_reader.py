"""The Reader never leaves the target root, never opens special files, and bounds every read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmsec.collectors.reader import RootReader
from vmsec.errors import ReadError
from vmsec.facts import FileKind


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc" / "libvirt").mkdir(parents=True)
    (tmp_path / "etc" / "libvirt" / "qemu.conf").write_text('user = "qemu"\n')
    return tmp_path


def test_reads_a_regular_file(root: Path) -> None:
    assert RootReader(str(root)).read_text("/etc/libvirt/qemu.conf") == 'user = "qemu"\n'


def test_absolute_symlink_is_resolved_inside_the_root(root: Path) -> None:
    # A link to the scanner's /etc/hostname must resolve to the root's own (absent) /etc/hostname.
    os.symlink("/etc/hostname", root / "etc" / "escape")
    reader = RootReader(str(root))
    with pytest.raises(ReadError, match="No such file"):
        reader.read_text("/etc/escape")
    (root / "etc" / "hostname").write_text("guest\n")
    assert reader.read_text("/etc/escape") == "guest\n"


def test_dotdot_and_relative_links_stop_at_the_root(root: Path) -> None:
    os.symlink("../../../../../../etc/hostname", root / "etc" / "libvirt" / "up")
    (root / "etc" / "hostname").write_text("inside\n")
    reader = RootReader(str(root))
    assert reader.read_text("/etc/libvirt/up") == "inside\n"
    assert reader.read_text("/../../../etc/hostname") == "inside\n"


def test_directory_symlink_pointing_outside_is_confined(root: Path,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret").write_text("host secret")
    os.symlink(str(outside), root / "etc" / "dirlink")
    with pytest.raises(ReadError):
        RootReader(str(root)).read_text("/etc/dirlink/secret")


def test_symlink_loop_ends_with_a_clear_error(root: Path) -> None:
    os.symlink("b", root / "etc" / "a")
    os.symlink("a", root / "etc" / "b")
    with pytest.raises(ReadError, match="too many levels"):
        RootReader(str(root)).read_text("/etc/a")


def test_fifo_is_never_opened(root: Path) -> None:
    os.mkfifo(root / "etc" / "passwd")
    reader = RootReader(str(root))
    with pytest.raises(ReadError, match="not a regular file"):
        reader.read_text("/etc/passwd")  # would block forever if opened
    assert reader.stat("/etc/passwd").kind is FileKind.FIFO


def test_sparse_huge_file_is_refused_without_reading_it(root: Path) -> None:
    big = root / "etc" / "shadow"
    with open(big, "wb") as fh:
        fh.truncate(10 * 1024**3)  # 10 GiB, sparse
    with pytest.raises(ReadError, match="over the"):
        RootReader(str(root)).read_bytes("/etc/shadow", limit=1024 * 1024)


def test_stat_reports_mode_owner_and_absence(root: Path) -> None:
    os.chmod(root / "etc" / "libvirt" / "qemu.conf", 0o640)
    reader = RootReader(str(root))
    st = reader.stat("/etc/libvirt/qemu.conf")
    assert st.exists is True and st.mode == 0o640 and st.kind is FileKind.FILE
    assert st.world_readable is False
    missing = reader.stat("/etc/libvirt/nothing.conf")
    assert missing.exists is False and missing.mode is None and missing.world_readable is None


def test_listing_is_bounded(root: Path) -> None:
    d = root / "etc" / "sudoers.d"
    d.mkdir()
    for i in range(50):
        (d / f"f{i}").write_text("")
    reader = RootReader(str(root))
    assert len(reader.listdir("/etc/sudoers.d")) == 50
    with pytest.raises(ReadError, match="more than 10 entries"):
        reader.listdir("/etc/sudoers.d", limit=10)
    expected = ["/etc/sudoers.d/f1"] + [f"/etc/sudoers.d/f{i}" for i in range(10, 20)]
    assert reader.glob("/etc/sudoers.d/f1*") == expected


def test_owner_names_come_from_the_roots_own_passwd(root: Path) -> None:
    (root / "etc" / "passwd").write_text(f"guestroot:x:{os.getuid()}:0::/root:/bin/sh\n")
    assert RootReader(str(root)).stat("/etc/libvirt/qemu.conf").owner == "guestroot"


def test_a_root_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ReadError, match="not a directory"):
        RootReader(str(tmp_path / "file"))
