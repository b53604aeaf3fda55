"""dpkg's status database → installed packages, checked against dpkg-query's own answer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from components import require
from datapaths import VULN_INSTALLED as INSTALLED
from vmsec.errors import ReadError
from vmsec.parsers.dpkg_status import MAX_STANZAS, parse_dpkg_status


def test_debian12_status_matches_dpkg_query() -> None:
    text = (INSTALLED / "debian12-dpkg-status.trimmed").read_text(encoding="utf-8")
    packages = parse_dpkg_status(text, "debian12-dpkg-status.trimmed")
    assert len(packages) == 809
    # dpkg-query -W -f '${Package}\t${Architecture}\t${Version}\t${source:Package}…' on the same system
    expected = set()
    for line in (INSTALLED / "debian12-dpkg-query.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _arch, version, source, _source_version, _status = line.split("\t")
        expected.add((name, version, source))
    assert {(p.name, p.version, p.source or p.name) for p in packages} == expected
    bash = next(p for p in packages if p.name == "bash")
    assert (bash.version, bash.source, bash.manager) == ("5.2.15-2+b8", "bash", "dpkg")


def test_only_installed_packages_are_kept() -> None:
    text = """Package: kept
Status: install ok installed
Version: 1.0-1
Description: first line
 continuation: not a field
 .
 more

Package: held
Status: hold ok installed
Version: 2:3.4
Source: upstream-held (2:3.3)

Package: going
Status: deinstall ok installed
Version: 5

Package: removed
Status: deinstall ok config-files
Version: 1

Package: broken
Status: install reinstreq half-installed
Version: 1

Package: noversion
Status: install ok installed
"""
    packages = parse_dpkg_status(text, "status")
    assert [(p.name, p.version, p.source) for p in packages] == [
        ("kept", "1.0-1", None), ("held", "2:3.4", "upstream-held"), ("going", "5", None)]


def test_blank_lines_with_spaces_and_crlf() -> None:
    text = "Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n   \r\nPackage: b\r\n" \
           "Status: install ok installed\r\nVersion: 2\r\n"
    assert [p.name for p in parse_dpkg_status(text, "status")] == ["a", "b"]


def test_stanza_bound() -> None:
    too_many = "Package: x\n\n" * (MAX_STANZAS + 1)
    with pytest.raises(ReadError) as info:
        parse_dpkg_status(too_many, "/var/lib/dpkg/status")
    assert info.value.source == "/var/lib/dpkg/status"
    assert parse_dpkg_status("Package: x\n\n" * MAX_STANZAS, "status") == ()


def test_a_package_on_hold_as_dpkg_writes_it(tmp_path: Path) -> None:
    """`dpkg --set-selections` (what `apt-mark hold` runs) writes the hold into the status file; the
    reader keeps it, since apt and unattended-upgrades then never upgrade the package."""
    require(shutil.which("dpkg"), "dpkg", "dpkg (every Debian has it)")
    admin = tmp_path / "dpkg"
    (admin / "updates").mkdir(parents=True)
    (admin / "available").write_text("")
    stanza = "Package: {0}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n" \
             "Maintainer: t <t@example.org>\nDescription: t\n"
    (admin / "status").write_text("\n".join(stanza.format(n) for n in ("linux-image-amd64", "vim")))
    subprocess.run(["dpkg", f"--admindir={admin}", "--set-selections"], input="linux-image-amd64 hold\n",
                   text=True, check=True, capture_output=True, timeout=60)
    text = (admin / "status").read_text()
    assert "Status: hold ok installed" in text  # dpkg's own spelling
    held = {p.name: p.held for p in parse_dpkg_status(text, "status")}
    assert held == {"linux-image-amd64": True, "vim": False}
