"""The CycloneDX SBOM lists every installed package with a purl, per OS root, and validates."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from datapaths import VULN as DATA
from vmsec.checks.catalog import default_catalog
from vmsec.engine import run_checks
from vmsec.facts import Guest, Host, Inventory, OsRelease
from vmsec.parsers.dpkg_status import parse_dpkg_status
from vmsec.report.cyclonedx import render, validate
from vmsec.vulns.db import import_feeds, open_db
from vmsec.vulns.matcher import match_inventory


def test_sbom_of_host_and_guest_with_vulnerabilities(tmp_path: Path) -> None:
    pkgs = parse_dpkg_status((DATA / "installed" / "debian12-dpkg-status.trimmed").read_text(), "status")
    os12 = OsRelease(id="debian", version_id="12", pretty_name="Debian GNU/Linux 12 (bookworm)")
    inv = Inventory(
        host=Host(name="hv1", root="/", live=False),
        host_os=Guest(name="hv1", origin="/", os=os12, packages=pkgs),
        guests=(Guest(name="web01", origin="web01.qcow2", os=os12, packages=pkgs[:50]),),
    )
    import_feeds(
        [("osv/Debian-subset-all.zip", (DATA / "osv" / "Debian-subset-all.zip").read_bytes())],
        tmp_path / "v.sqlite",
    )
    inv = match_inventory(inv, open_db(tmp_path / "v.sqlite"))
    fixed_clock = lambda: datetime(2026, 11, 27, 12, tzinfo=UTC)  # noqa: E731
    scan = run_checks(inv, default_catalog().select(ids=["VMS-VULN-*"]), clock=fixed_clock)
    out = io.StringIO()
    render(scan, default_catalog().index(), out)
    text = out.getvalue()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    validate(text)  # the library's strict validator, as vmsec exposes it
    doc = json.loads(text)
    roots = {c["bom-ref"]: c for c in doc["components"]}
    assert set(roots) == {"host:hv1", "guest:web01"}
    assert roots["host:hv1"]["type"] == "operating-system" and len(roots["host:hv1"]["components"]) == 809
    bsdutils = next(c for c in roots["host:hv1"]["components"] if c["name"] == "bsdutils")
    assert bsdutils["purl"].startswith("pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?")
    assert "upstream=util-linux" in bsdutils["purl"]
    assert doc["vulnerabilities"] and all(v["affects"] for v in doc["vulnerabilities"])
    # Deterministic: the same scan renders byte-identically.
    again = io.StringIO()
    render(scan, default_catalog().index(), again)
    assert again.getvalue() == text
