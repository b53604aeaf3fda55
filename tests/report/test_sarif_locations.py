"""SARIF locations are real paths: a copied host root keeps its prefix (--root, --host-root), notes such
as "(default)" go into the message and never into the URI, PATH:LINE evidence gives a region, domain
findings point at the domain's XML file, and every result names its target as a logical location."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest
from report_scans import ROOT

from datapaths import SARIF_SCHEMA

VMSEC = str(Path(sys.executable).with_name("vmsec"))
CHECKS = ROOT / "tests" / "data" / "checks"
VNC_HOST = CHECKS / "VMS-DOM-021" / "vnc-open.FAIL"  # etc/libvirt with qemu.conf and a VM's XML


def sarif(*args: str) -> dict[str, Any]:
    proc = subprocess.run([VMSEC, *args, "--format", "sarif", "--no-store", "-q"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode in (0, 3), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))).validate(doc)
    return doc


def uris(doc: dict[str, Any]) -> list[str]:
    return [loc["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]
            for loc in r["locations"] if "physicalLocation" in loc]


@pytest.fixture()
def host_root(tmp_path: Path) -> Path:
    root = tmp_path / "srv" / "hv1 root"  # a space: percent-encoded in the URI
    shutil.copytree(VNC_HOST, root, symlinks=True)
    return root


def test_a_copied_host_root_keeps_its_prefix(host_root: Path) -> None:
    doc = sarif("scan", "host", "--root", str(host_root))
    found = [unquote(u) for u in uris(doc)]
    assert found and all(u.startswith(f"file://{host_root}/") for u in found), found
    assert f"file://{host_root}/etc/libvirt/qemu.conf" in found
    assert not any("(" in u or "%20%28" in u for u in uris(doc))  # no note inside a URI
    results = doc["runs"][0]["results"]
    # the domain's findings point at its XML file inside the root, with the domain as logical location
    vnc = next(r for r in results if r["ruleId"] == "VMS-DOM-020")
    location = vnc["locations"][0]
    assert unquote(location["physicalLocation"]["artifactLocation"]["uri"]) == \
        f"file://{host_root}/etc/libvirt/qemu/vm1.xml"
    assert location["logicalLocations"][0]["kind"] == "resource"
    assert location["logicalLocations"][0]["fullyQualifiedName"].endswith("/domain/vm1")
    # a "(default)" note is in the message instead
    defaults = [r for r in results if "qemu.conf: default)" in r["message"]["text"]]
    assert defaults, [r["message"]["text"] for r in results]


def test_host_root_of_an_xml_scan_keeps_its_prefix(host_root: Path) -> None:
    xml = CHECKS / "VMS-DOM-020" / "vnc-any.FAIL.xml"
    doc = sarif("scan", "xml", str(xml), "--host-root", str(host_root))
    found = [unquote(u) for u in uris(doc)]
    assert f"file://{xml}" in found  # the domain XML where it really is
    host_files = [u for u in found if "/etc/libvirt/qemu.conf" in u]
    assert host_files and all(u.startswith(f"file://{host_root}/") for u in host_files)


def test_relative_paths_stay_relative_to_srcroot(tmp_path: Path) -> None:
    xml = tmp_path / "vm.xml"
    shutil.copy(CHECKS / "VMS-DOM-020" / "vnc-any.FAIL.xml", xml)
    proc = subprocess.run([VMSEC, "scan", "xml", "vm.xml", "--format", "sarif", "--no-store", "-q"],
                          capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path)
    doc = json.loads(proc.stdout)
    locations = [loc["physicalLocation"]["artifactLocation"] for r in doc["runs"][0]["results"]
                 for loc in r["locations"] if "physicalLocation" in loc]
    assert locations and all(a == {"uri": "vm.xml", "uriBaseId": "%SRCROOT%"} for a in locations)
    assert "%SRCROOT%" in doc["runs"][0]["originalUriBaseIds"]


def test_path_and_line_evidence_gives_a_region_and_guest_roots_their_prefix() -> None:
    root = CHECKS / "VMS-GST-040"
    fixture = next(p for p in sorted(root.iterdir()) if p.name.endswith(".FAIL") and p.is_dir())
    doc = sarif("scan", "rootfs", str(fixture))
    physical = [loc["physicalLocation"] for r in doc["runs"][0]["results"] for loc in r["locations"]
                if "region" in loc.get("physicalLocation", {})]
    regions = [(unquote(p["artifactLocation"]["uri"]), p["region"]) for p in physical]
    assert regions, "no PATH:LINE evidence became a region"
    for uri, region in regions:
        assert uri.startswith(f"file://{fixture}/") and region["startLine"] >= 1


def test_every_result_has_a_physical_location_for_code_scanning(tmp_path: Path) -> None:
    # GitHub code scanning refuses the whole upload when one result has no artifact location
    # ("locationFromSarifResult: expected artifact location"): compiled-in defaults, kernel settings
    # and a missing /tmp line have no file of their own, so they point at the scanned root.
    root = tmp_path / "min root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/ssh").mkdir()
    (root / "etc/ssh/sshd_config").write_text("PasswordAuthentication no\n")
    doc = sarif("scan", "rootfs", str(root))
    results = doc["runs"][0]["results"]
    assert results and all(any("physicalLocation" in loc for loc in r["locations"]) for r in results)
    found = [unquote(u) for u in uris(doc)]
    assert f"file://{root}/" in found  # the root itself, as a directory
    assert not any(f"{root}{root}" in u for u in found)  # evidence naming the root is not doubled
