"""Hostile guests whose size once multiplied the work (issue 9): every case is bounded by the input.

The shapes come from tests/hostile_guests.py (shared with benchmarks/bench_hostile.py, which measures
whole scans of the full-size cases). Here each shape is collected at a size that keeps the test quick,
and the test asserts what keeps it bounded: each file read from the guest once, each file parsed
once, problems capped with one summary record carrying its kind, facts and findings that grow with
the guest's files rather than with the paths leading to them. No timings are asserted.
"""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import pytest
import yaml

from components import require
from hostile_guests import (
    QEMU_MAX_L1_BYTES,
    apt_pins_times_packages,
    cloud_init_dropins,
    qcow2_inflated_l1,
    shared_home_authorized_keys,
    sudoers_repeated_includedir,
    sudoers_self_including_dir,
)
from vmsec.checks.catalog import default_catalog
from vmsec.collectors.guest import collect_guest
from vmsec.collectors.image import open_guest_image
from vmsec.collectors.reader import CachedReader, RootReader
from vmsec.engine import run_checks
from vmsec.errors import MAX_PROBLEMS, ErrorKind, Problems, ReadError
from vmsec.facts import Inventory
from vmsec.parsers import cloud_init
from vmsec.parsers.sudoers import read_sudoers


class CountingReader(RootReader):
    """A RootReader that counts how often each path's bytes are read from the disk."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.reads: dict[str, int] = {}

    def read_bytes(self, path: str, limit: int = 4 * 1024 * 1024) -> bytes:
        self.reads[path] = self.reads.get(path, 0) + 1
        return super().read_bytes(path, limit)


def test_repeated_includedir_reads_and_parses_each_file_once(tmp_path: Path) -> None:
    root = sudoers_repeated_includedir(tmp_path / "g", repeats=2_000, files=50)
    disk = CountingReader(str(root))
    problems = Problems()
    sudoers = read_sudoers(CachedReader(disk), problems=problems)
    assert len(sudoers.files) == 51 == len(set(sudoers.files))  # sudoers + each rule file, once
    assert len(sudoers.rules) == 51
    assert max(disk.reads.values()) == 1
    assert list(problems) == []  # a repeated include is not an error: the same policy


def test_directory_including_itself_is_one_loop_record_per_file_and_capped(tmp_path: Path) -> None:
    root = sudoers_self_including_dir(tmp_path / "g", files=1_000)
    disk = CountingReader(str(root))
    guest, records = collect_guest(disk, name="g", origin=str(root))
    assert guest.sudoers is not None
    sudo = [r for r in records if r.what == "sudoers"]
    assert len(sudo) == MAX_PROBLEMS + 1  # capped, then one summary record
    assert {r.kind for r in sudo[:-1]} == {ErrorKind.LOOP}
    assert sudo[-1].kind is ErrorKind.TOO_LARGE and "more problems" in (sudo[-1].reason or "")
    assert max(disk.reads.values()) == 1


def test_shared_home_keys_are_listed_once_with_every_account(tmp_path: Path) -> None:
    root = shared_home_authorized_keys(tmp_path / "g", accounts=300, keys=200)
    disk = CountingReader(str(root))
    guest, _ = collect_guest(disk, name="g", origin=str(root))
    keys = guest.authorized_keys or ()
    assert len(keys) == 200  # the file's lines, not accounts × lines
    assert all(len(k.users) == 300 and k.users[0] == "u0" for k in keys)
    assert disk.reads["/home/shared/.ssh/authorized_keys"] == 1
    inventory = Inventory(guests=(guest,), source="test")
    findings = run_checks(inventory, default_catalog().select(ids=["VMS-GST-033"])).findings
    assert len(findings) == 200
    assert "u0, u1, u2 and 297 more" in findings[0].message


def test_cloud_init_uses_libyaml_and_a_total_parse_budget(tmp_path: Path) -> None:
    assert cloud_init.yaml_loader() is yaml.CSafeLoader  # the C loader: pure-Python YAML took minutes
    root = cloud_init_dropins(tmp_path / "g", files=4, size=512 * 1024)
    with pytest.raises(ReadError) as info:
        cloud_init.read_cloud_init(RootReader(str(root)), yaml_budget=1024 * 1024)
    assert info.value.kind is ErrorKind.TOO_LARGE
    assert info.value.source == "/etc/cloud/cloud.cfg.d/002-big.cfg"  # stopped at the budget, not after


def test_cloud_init_over_budget_is_unknown_in_the_guest_not_absent(tmp_path: Path) -> None:
    root = cloud_init_dropins(tmp_path / "g", files=0)
    comment = ("#" + "x" * 78 + "\n") * (512 * 1024 // 80)  # cheap to parse, but counted all the same
    for i in range(18):  # 9 MiB of YAML: over the 8 MiB budget
        (root / f"etc/cloud/cloud.cfg.d/{i:02d}.cfg").write_text(comment + f"k{i}: 1\n")
    guest, records = collect_guest(RootReader(str(root)), name="g", origin=str(root))
    assert guest.cloud_init is None
    [record] = [r for r in records if r.what == "cloud-init"]
    assert (record.ok, record.kind) == (False, ErrorKind.TOO_LARGE)


def test_every_guest_shares_one_read_budget(tmp_path: Path) -> None:
    root = sudoers_repeated_includedir(tmp_path / "g", repeats=1, files=3)
    reader = CachedReader(RootReader(str(root)), budget=200)
    reader.read_bytes("/etc/sudoers")
    with pytest.raises(ReadError) as info:
        for _ in range(10):  # cache hits count too: handing the same bytes out again is parse work
            reader.read_bytes("/etc/sudoers")
    assert info.value.kind is ErrorKind.TOO_LARGE


def test_qcow2_with_an_inflated_l1_table_is_refused_before_any_allocation(tmp_path: Path) -> None:
    require(shutil.which("qemu-img"), "qemu-img", "the test builds its image with qemu-img")
    image = qcow2_inflated_l1(tmp_path, l1_entries=180_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(ReadError) as info:
            open_guest_image(str(image))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.source == str(image) and info.value.kind is ErrorKind.INVALID
    assert "L1 table of 180000000 entries" in info.value.reason
    assert str(QEMU_MAX_L1_BYTES) in info.value.reason
    assert peak < 16 * 1024 * 1024


def test_qcow2_l1_table_at_qemus_limit_is_still_opened_by_the_header_code(tmp_path: Path) -> None:
    """The bound is QEMU's own: a table of exactly 32 MiB passes the header check (the decoy)."""
    require(shutil.which("qemu-img"), "qemu-img", "the test builds its image with qemu-img")
    from vmsec.collectors.image import parse_qcow2_header

    image = qcow2_inflated_l1(tmp_path, l1_entries=QEMU_MAX_L1_BYTES // 8)
    import os

    fd = os.open(image, os.O_RDONLY)
    try:
        header = parse_qcow2_header(fd, str(image))
    finally:
        os.close(fd)
    assert header.l1_size == QEMU_MAX_L1_BYTES // 8


def test_apt_pins_times_packages_is_bounded_and_unknown(tmp_path: Path) -> None:
    """Pins naming packages are matched against every installed package: past MAX_WORK pairs the
    answer is unknown (and says why) instead of minutes of glob matching."""
    root = apt_pins_times_packages(tmp_path / "guest", packages=500, pins=1_000)
    guest, _records = collect_guest(RootReader(str(root)), name="hostile", origin=str(root))
    auto = guest.auto_updates
    assert auto is not None and auto.mechanism == "unattended-upgrades" and auto.enabled
    assert auto.held_back_count == 0 and "pins name packages" in auto.filters_unknown
