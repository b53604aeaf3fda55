"""LVM metadata backups (/etc/lvm/backup) read as LVM reads them: the real file vgcfgbackup wrote, its
syntax checked against LVM's own parser (lvmconfig reads the same dm_config tree), and hostile files
that end as errors naming the file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components import require
from datapaths import DATA
from vmsec.collectors.reader import RootReader
from vmsec.errors import ParseError, Problems
from vmsec.facts import LogicalVolume
from vmsec.parsers.lvm_metadata import dm_name, parse_lvm_metadata, read_lvm_backups

REAL = DATA / "lvm" / "debian-vg.vgcfgbackup"
ORIGIN = "/etc/lvm/backup/debian-vg"


def test_the_file_vgcfgbackup_wrote() -> None:
    assert parse_lvm_metadata(REAL.read_text(), ORIGIN) == (
        LogicalVolume(vg="debian-vg", name="root", devices=("/dev/loop0",), origin=ORIGIN),
        LogicalVolume(vg="debian-vg", name="swap_1", devices=("/dev/loop0",), origin=ORIGIN))


def _lvmconfig(tmp_path: Path, text: str, node: str) -> str:
    """What LVM's own configuration parser makes of ``node`` in ``text`` (lvm.conf's syntax is the
    metadata's: both are libdevmapper's dm_config)."""
    require(shutil.which("lvmconfig"), "lvm2", "lvmconfig is LVM's own parser of this syntax")
    (tmp_path / "lvm.conf").write_text(text)
    proc = subprocess.run(["lvmconfig", "--typeconfig", "full", node], capture_output=True, text=True,
                          env={**os.environ, "LVM_SYSTEM_DIR": str(tmp_path)}, check=False)
    return proc.stdout.strip()


@pytest.mark.parametrize("edit", [
    ("/dev/loop0", "/dev/mapper/vda5_crypt"),
    ('device = "/dev/loop0"', 'device="/dev/loop0"'),  # no blanks around "="
    ('"/dev/loop0"', '"/dev/lo\\"op0"'),  # an escaped quote inside the string
    ("\t\tpv0 {", "\t\tpv0\n{"),  # a section's brace on the next line
])
def test_device_hints_as_lvm_reads_them(tmp_path: Path, edit: tuple[str, str]) -> None:
    text = REAL.read_text().replace(*edit)
    expected = _lvmconfig(tmp_path, text, "debian-vg/physical_volumes/pv0/device")
    assert expected.startswith("device=")
    lvm_value = expected.removeprefix("device=").strip('"').replace('\\"', '"')
    [root, _swap] = parse_lvm_metadata(text, ORIGIN)
    assert root.devices == (lvm_value,)


def test_two_physical_volumes_and_segments_vmsec_does_not_follow() -> None:
    text = REAL.read_text().replace('"pv0", 5', '"pv1", 0').replace(
        "\t\tpv0 {", '\t\tpv1 { device = "/dev/vdb1" }\n\t\tpv0 {', 1)
    text = text.replace('type = "striped"\n\t\t\t\tstripe_count = 1\t# linear\n\n\t\t\t\tstripes = [\n'
                        '\t\t\t\t\t"pv0", 0\n\t\t\t\t]', 'type = "thin"\n\t\t\t\tthin_pool = "pool"')
    root, swap = parse_lvm_metadata(text, ORIGIN)
    assert (root.devices, swap.devices) == ((None,), ("/dev/vdb1",))


@pytest.mark.parametrize("text", [
    'vg { physical_volumes { pv0 { device = "x" }', "vg { = }", "a = [ {", "a {" * 100, 'x = "unterminated',
    "vg { logical_volumes = 1 physical_volumes = 2 }"])
def test_what_is_not_lvm_metadata_is_an_error_naming_the_file(text: str) -> None:
    with pytest.raises(ParseError, match="/etc/lvm/backup/debian-vg"):
        parse_lvm_metadata(text, ORIGIN)


def test_a_bad_backup_is_a_problem_and_the_others_are_read(tmp_path: Path) -> None:
    backup = tmp_path / "etc/lvm/backup"
    backup.mkdir(parents=True)
    shutil.copy(REAL, backup / "debian-vg")
    (backup / "broken").write_text("broken { {")
    problems = Problems()
    volumes = read_lvm_backups(RootReader(str(tmp_path)), problems=problems)
    assert [(v.vg, v.name) for v in volumes] == [("debian-vg", "root"), ("debian-vg", "swap_1")]
    assert [p.source for p in problems] == ["/etc/lvm/backup/broken"]
    (tmp_path / "plain").mkdir()
    assert read_lvm_backups(RootReader(str(tmp_path / "plain")), problems=Problems()) == ()


def test_device_mapper_names_double_the_hyphens() -> None:
    assert dm_name("debian-vg", "root") == "debian--vg-root"
    assert dm_name("vg", "swap-1") == "vg-swap--1"
