"""os-release: quoting, the /usr/lib fallback, and a clear error when neither file exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmsec.collectors.reader import RootReader
from vmsec.errors import ReadError
from vmsec.parsers.os_release import parse_os_release, read_os_release

GUESTS = Path(__file__).resolve().parents[1] / "data" / "guests"


def test_quoted_and_escaped_values() -> None:
    text = ('NAME="Ubuntu"\nID=ubuntu\nID_LIKE="debian"\nVERSION_ID="24.04"\n'
            "VERSION_CODENAME=noble\nPRETTY_NAME='Ubuntu 24.04 LTS'\n"
            'ANSI="a \\"quoted\\" \\$word"\n# comment\nnot an assignment\n')
    os_release = parse_os_release(text, "/etc/os-release")
    assert os_release.id == "ubuntu"
    assert os_release.id_like == ("debian",)
    assert os_release.version_id == "24.04"
    assert os_release.version_codename == "noble"
    assert os_release.pretty_name == "Ubuntu 24.04 LTS"


def test_id_like_is_split_and_lowered() -> None:
    os_release = parse_os_release('ID="AlmaLinux"\nID_LIKE="RHEL centos fedora"\n', "x")
    assert os_release.id == "almalinux"
    assert os_release.id_like == ("rhel", "centos", "fedora")


def test_symlinked_os_release_in_a_root() -> None:
    os_release = read_os_release(RootReader(str(GUESTS / "debian12")))  # ../usr/lib/os-release
    assert (os_release.id, os_release.version_id, os_release.version_codename) == ("debian", "12", "bookworm")


def test_fallback_to_usr_lib(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_text("ID=fedora\nVERSION_ID=40\n")
    os_release = read_os_release(RootReader(str(tmp_path)))
    assert (os_release.id, os_release.origin) == ("fedora", "/usr/lib/os-release")


def test_neither_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="os-release"):
        read_os_release(RootReader(str(tmp_path)))


def test_symlink_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("ID=scanner-host\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").symlink_to(outside)
    with pytest.raises(ReadError):
        read_os_release(RootReader(str(root)))
