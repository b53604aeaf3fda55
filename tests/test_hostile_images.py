"""Hostile disk images: each fails with a clear error naming the image (or becomes UNKNOWN facts)
and never makes vmsec read a host file, hang, or read without bound. The scan goes on."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "images"))

from guest_images import GuestImages, ImageBuildError, build_guest_images

from vmsec.collectors.image import collect_images, open_guest_image
from vmsec.errors import ReadError, SourceUnavailable


@pytest.fixture(scope="session")
def guest_images() -> GuestImages:
    try:
        return build_guest_images()
    except ImageBuildError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture()
def opened_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every path this process opens (os.open and open()), to prove a host file is never opened."""
    seen: list[str] = []
    real_os_open = os.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> int:
        seen.append(os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else str(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    yield seen


def test_backing_file_pointing_at_the_hosts_shadow_is_refused_unread(guest_images: GuestImages,
                                                                     opened_paths: list[str]) -> None:
    image = str(guest_images["hostile-backing-shadow.qcow2"])
    with pytest.raises(ReadError, match=r"'/etc/shadow'.*outside the allowed directories.*refused") as info:
        open_guest_image(image)
    assert info.value.source == image
    assert not any(p.endswith("shadow") and "hostile" not in p for p in opened_paths)


def test_backing_file_that_is_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "base")  # opening it would block: the test would hang, not fail
    image = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "base", "-F", "raw",
                    str(image), "16M"], check=True)
    with pytest.raises(ReadError, match="not a regular file; refused"):
        open_guest_image(str(image))


@pytest.mark.parametrize(("name", "reason"), [
    ("hostile-corrupt.qcow2", "corrupt qcow2 image"),
    ("hostile-truncated.qcow2", "corrupt or truncated qcow2 image"),
    ("hostile-loop-a.qcow2", "backing chain loops back"),
])
def test_broken_images_are_a_record_naming_the_image_and_the_scan_goes_on(
        guest_images: GuestImages, name: str, reason: str) -> None:
    bad = str(guest_images[name])
    good = str(guest_images["fs.ext4"])
    inv = collect_images([bad, good])
    assert [g.name for g in inv.guests] == ["fs.ext4"]
    [record] = [r for r in inv.errors if r.source == bad]
    assert record.what == "disk image" and reason in (record.reason or "")


def test_only_broken_images_make_the_source_unavailable_naming_each(guest_images: GuestImages) -> None:
    names = ["hostile-corrupt.qcow2", "hostile-truncated.qcow2"]
    with pytest.raises(SourceUnavailable) as info:
        collect_images([str(guest_images[n]) for n in names])
    for n in names:
        assert n in str(info.value)


def test_a_file_that_is_no_disk_at_all_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(1 << 20))
    with pytest.raises(ReadError, match="no Linux root filesystem"):
        open_guest_image(str(junk))


def test_hostile_guest_filesystem_gives_unknown_facts_not_host_files(guest_images: GuestImages) -> None:
    image = str(guest_images["hostile-fs.ext4"])
    inv = collect_images([image])
    [guest] = inv.guests
    # 10 GiB sparse /etc/passwd: refused by size, never read.
    assert guest.accounts is None
    # /etc/shadow -> /../../../etc/shadow is the guest's own /etc/shadow again: a loop, never the host's.
    assert guest.shadow is None
    # /etc/group is a FIFO: not opened.
    assert guest.groups is None
    reasons = {(r.source, r.what): r.reason or "" for r in inv.errors}
    assert "over the" in reasons[(f"{image}:/etc/passwd", "user accounts")]
    assert "too many levels" in reasons[(f"{image}:/etc/shadow", "password hashes")]
    assert "not a regular file" in reasons[(f"{image}:/etc/group", "groups")]
    assert guest.os is not None and guest.os.id == "debian"  # what is sound is still read


def test_hostile_guest_reader_never_reaches_the_host(guest_images: GuestImages) -> None:
    reader, _disk, _records = open_guest_image(str(guest_images["hostile-fs.ext4"]))
    assert reader is not None
    with pytest.raises(ReadError, match="too many levels"):
        reader.read_text("/etc/shadow")
    with pytest.raises(ReadError, match="too many levels"):
        reader.read_text("/etc/loop-a")
    with pytest.raises(ReadError, match="No such file"):
        reader.read_text("/../../../etc/machine-id")  # exists on the host, not in the guest
    assert reader.read_text("/../../etc/hostname") == "guest-hostname\n"
