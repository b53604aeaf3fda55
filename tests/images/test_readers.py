"""The same confinement and bounds for every Reader: RootReader over a directory, DissectReader over
a real ext4 image built from that very directory (mke2fs -d). Each test builds a tree, then reads it
through both."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from guest_images import make_ext4

from vmsec.collectors.dissect_reader import DissectReader
from vmsec.collectors.reader import Reader, RootReader
from vmsec.errors import ReadError
from vmsec.facts import FileKind

MakeReader = Callable[[], Reader]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    (base / "etc" / "libvirt").mkdir(parents=True)
    (base / "etc" / "libvirt" / "qemu.conf").write_text('user = "qemu"\n')
    return base


@pytest.fixture(params=["root", "dissect"])
def make_reader(request: pytest.FixtureRequest, root: Path, tmp_path: Path) -> Iterator[MakeReader]:
    handles: list[Any] = []

    def make() -> Reader:
        if request.param == "root":
            return RootReader(str(root))
        from dissect.target.filesystems.extfs import ExtFilesystem

        image = make_ext4(root, tmp_path / f"fs{len(handles)}.ext4")
        fh = open(image, "rb")  # noqa: SIM115 - closed at teardown
        handles.append(fh)
        return DissectReader(ExtFilesystem(fh), str(image))

    yield make
    for fh in handles:
        fh.close()


def test_reads_a_regular_file(make_reader: MakeReader) -> None:
    assert make_reader().read_text("/etc/libvirt/qemu.conf") == 'user = "qemu"\n'


def test_absolute_symlink_is_resolved_inside_the_root(root: Path, make_reader: MakeReader) -> None:
    # The scanner's own /etc/hostname exists; the guest's does not.
    os.symlink("/etc/hostname", root / "etc" / "escape")
    with pytest.raises(ReadError, match="No such file"):
        make_reader().read_text("/etc/escape")
    (root / "etc" / "hostname").write_text("guest\n")
    assert make_reader().read_text("/etc/escape") == "guest\n"


def test_dotdot_and_relative_links_stop_at_the_root(root: Path, make_reader: MakeReader) -> None:
    os.symlink("../../../../../../etc/hostname", root / "etc" / "libvirt" / "up")
    os.symlink("/../../../etc/hostname", root / "etc" / "abs-up")
    (root / "etc" / "hostname").write_text("inside\n")
    reader = make_reader()
    assert reader.read_text("/etc/libvirt/up") == "inside\n"
    assert reader.read_text("/etc/abs-up") == "inside\n"
    assert reader.read_text("/../../../etc/hostname") == "inside\n"
    assert reader.listdir("/etc/libvirt/..") == sorted(["abs-up", "hostname", "libvirt"])


def test_directory_symlink_pointing_outside_is_confined(root: Path, make_reader: MakeReader,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret").write_text("host secret")
    os.symlink(str(outside), root / "etc" / "dirlink")
    with pytest.raises(ReadError):
        make_reader().read_text("/etc/dirlink/secret")


def test_symlink_loop_ends_with_a_clear_error(root: Path, make_reader: MakeReader) -> None:
    os.symlink("b", root / "etc" / "a")
    os.symlink("a", root / "etc" / "b")
    with pytest.raises(ReadError, match="too many levels"):
        make_reader().read_text("/etc/a")


def test_fifo_is_never_opened(root: Path, make_reader: MakeReader) -> None:
    os.mkfifo(root / "etc" / "passwd")
    reader = make_reader()
    with pytest.raises(ReadError, match="not a regular file"):
        reader.read_text("/etc/passwd")  # would block forever if opened
    assert reader.stat("/etc/passwd").kind is FileKind.FIFO


def test_sparse_huge_file_is_refused_without_reading_it(root: Path, make_reader: MakeReader) -> None:
    with open(root / "etc" / "shadow", "wb") as fh:
        fh.truncate(10 * 1024**3)  # 10 GiB, sparse
    with pytest.raises(ReadError, match="over the"):
        make_reader().read_bytes("/etc/shadow", limit=1024 * 1024)


def test_stat_reports_mode_owner_and_absence(root: Path, make_reader: MakeReader) -> None:
    os.chmod(root / "etc" / "libvirt" / "qemu.conf", 0o640)
    reader = make_reader()
    st = reader.stat("/etc/libvirt/qemu.conf")
    assert st.exists is True and st.mode == 0o640 and st.kind is FileKind.FILE and st.size == 14
    assert st.world_readable is False
    missing = reader.stat("/etc/libvirt/nothing.conf")
    assert missing.exists is False and missing.mode is None and missing.world_readable is None
    assert reader.exists("/etc/libvirt") and not reader.exists("/etc/libvirt/qemu.conf/x")


def test_readlink_and_stat_without_following(root: Path, make_reader: MakeReader) -> None:
    os.symlink("libvirt/qemu.conf", root / "etc" / "link")
    reader = make_reader()
    assert reader.readlink("/etc/link") == "libvirt/qemu.conf"
    assert reader.stat("/etc/link", follow=False).kind is FileKind.SYMLINK
    assert reader.stat("/etc/link").kind is FileKind.FILE
    with pytest.raises(ReadError, match="not a symbolic link"):
        reader.readlink("/etc/libvirt/qemu.conf")


def test_listing_is_bounded(root: Path, make_reader: MakeReader) -> None:
    d = root / "etc" / "sudoers.d"
    d.mkdir()
    for i in range(50):
        (d / f"f{i}").write_text("")
    reader = make_reader()
    assert len(reader.listdir("/etc/sudoers.d")) == 50
    with pytest.raises(ReadError, match="more than 10 entries"):
        reader.listdir("/etc/sudoers.d", limit=10)
    expected = ["/etc/sudoers.d/f1"] + [f"/etc/sudoers.d/f{i}" for i in range(10, 20)]
    assert reader.glob("/etc/sudoers.d/f1*") == expected
    assert reader.glob("/etc/nothing.d/*") == []


def test_owner_names_come_from_the_roots_own_passwd(root: Path, make_reader: MakeReader) -> None:
    (root / "etc" / "passwd").write_text(f"guestroot:x:{os.getuid()}:0::/root:/bin/sh\n")
    assert make_reader().stat("/etc/libvirt/qemu.conf").owner == "guestroot"


def test_reading_a_directory_is_refused(make_reader: MakeReader) -> None:
    with pytest.raises(ReadError, match="not a regular file"):
        make_reader().read_text("/etc/libvirt")
