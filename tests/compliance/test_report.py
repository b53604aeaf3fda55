"""The compliance view's renderers (terminal, JSON, Markdown) and the CLI helpers, on real scans."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from vmsec.checks.catalog import Catalog, default_catalog
from vmsec.collectors.host import collect_host_inventory
from vmsec.collectors.rootfs import collect_rootfs
from vmsec.engine import run_checks
from vmsec.errors import ConfigError
from vmsec.findings import Status
from vmsec.report.compliance import (
    COMPLIANCE_FORMATS,
    compliance_format,
    compliance_option,
    render_compliance,
)
from vmsec.report.markdown import md_escape
from vmsec.results import ScanResult

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
STARTED = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture(scope="module")
def guest_scan(catalog: Catalog) -> ScanResult:
    inventory = collect_rootfs([str(ROOT / "tests/data/checks/VMS-GST-095/weakened.FAIL")])
    assert not inventory.errors
    return run_checks(inventory, catalog, clock=lambda: STARTED)


@pytest.fixture(scope="module")
def host_scan(catalog: Catalog) -> ScanResult:
    inventory = collect_host_inventory(str(ROOT / "tests/data/checks/VMS-DMN-001/tcp-no-auth.FAIL"))
    assert not inventory.errors
    return run_checks(inventory, catalog, clock=lambda: STARTED)


def render(scan: ScanResult, catalog: Catalog, name: str, fmt: str) -> str:
    out = io.StringIO()
    render_compliance(scan, catalog.index(), name, out, fmt)
    return out.getvalue()


def compare_golden(name: str, text: str, request: pytest.FixtureRequest) -> None:
    """Compare with tests/compliance/golden/NAME; the checkout's path is written as <repo>."""
    text = text.replace(md_escape(str(ROOT)), "<repo>")
    path = GOLDEN / name
    if request.config.getoption("--update-golden") or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not request.config.getoption("--update-golden"):
            pytest.fail(f"golden file {path} did not exist; written now — review and commit it")
    assert path.read_text(encoding="utf-8") == text, f"{name} differs; rerun with --update-golden if intended"


def test_markdown_golden_cis_debian_guest(guest_scan: ScanResult, catalog: Catalog,
                                          request: pytest.FixtureRequest) -> None:
    text = render(guest_scan, catalog, "cis-debian-12", "markdown")
    compare_golden("cis-debian-12.guest.md", text, request)


def test_markdown_golden_disa_host(host_scan: ScanResult, catalog: Catalog,
                                   request: pytest.FixtureRequest) -> None:
    compare_golden("disa-vmm-srg.host.md", render(host_scan, catalog, "disa-vmm-srg", "markdown"), request)


def test_markdown_shows_failed_evidence_and_coverage(guest_scan: ScanResult, catalog: Catalog) -> None:
    text = render(guest_scan, catalog, "cis-debian-12", "markdown")
    row = ("| 3\\.3\\.7 | Ensure reverse path filtering is enabled \\(Automated\\) | yes | `VMS-GST-095` "
           "| **fail** |")
    assert row in text
    assert "### 3\\.3\\.7: Ensure reverse path filtering is enabled \\(Automated\\) (fail)" in text
    assert "**FAIL** `VMS-GST-095`" in text
    assert "- Coverage: " in text and "were assessed by this scan" in text


def test_json_document_agrees_with_itself(host_scan: ScanResult, catalog: Catalog) -> None:
    doc = json.loads(render(host_scan, catalog, "disa-vmm-srg", "json"))
    assert doc["framework"]["name"] == "disa-vmm-srg"
    reqs = {r["id"]: r for r in doc["requirements"]}
    assert reqs["V-207418"]["status"] == "fail"
    assert reqs["V-207418"]["verified"] is True
    assert {"check_id": "VMS-DMN-001", "status": "FAIL"}.items() <= reqs["V-207418"]["evidence"][0].items()
    assert reqs["V-207358"] == {**reqs["V-207358"], "status": "not-assessed", "checks": [], "evidence": []}
    cov = doc["coverage"]
    assert cov["requirements"] == len(doc["requirements"])
    assert cov["mapped"] == sum(1 for r in doc["requirements"] if r["checks"])
    assert cov["assessed"] == sum(1 for r in doc["requirements"] if r["evidence"])
    assert sum(doc["status_counts"].values()) == len(doc["requirements"])
    assert "unknown_checks" not in doc
    assert doc["scan"]["started_at"] == STARTED.isoformat()


def test_terminal_table(guest_scan: ScanResult, catalog: Catalog) -> None:
    text = render(guest_scan, catalog, "cis-debian-12", "terminal")
    assert "CIS Debian Linux 12 Benchmark" in text
    row = next(line for line in text.splitlines() if "3.3.7" in line and "Ensure reverse path" in line)
    assert row.startswith("fail ") and "3.3.7*" not in row  # verified: no asterisk
    assert "were assessed by this scan" in text and "of the benchmark's 310 items" in text
    assert "FAIL    VMS-GST-095" in text  # evidence listed under the failed requirement
    assert all(len(line) <= 80 and not line.endswith(" ") for line in text.splitlines())  # 80 columns


def test_hostile_finding_text_stays_inert_in_markdown(guest_scan: ScanResult, catalog: Catalog) -> None:
    """Guest-controlled text (subjects, messages) cannot inject Markdown rows or headings."""
    evil = guest_scan.findings[0]._replace(check_id="VMS-GST-095", status=Status.FAIL,
                                           subject="x\n## pwned | <script>", message="a|b\r\n# h")
    scan = ScanResult.from_inventory(inventory=guest_scan.inventory, profile=guest_scan.profile,
                      started_at=guest_scan.started_at, finished_at=guest_scan.finished_at,
                      checks_run=guest_scan.checks_run, findings=(evil,))
    text = render(scan, catalog, "cis-debian-12", "markdown")
    assert "\n## pwned" not in text and "\n# h" not in text
    assert "x \\#\\# pwned \\| \\<script\\>" in text


def test_formats_and_cli_helpers(guest_scan: ScanResult, catalog: Catalog) -> None:
    assert COMPLIANCE_FORMATS == ("terminal", "json", "markdown", "html")
    assert compliance_format("markdown") == "markdown"
    with pytest.raises(ConfigError, match="--compliance supports the formats"):
        compliance_format("sarif")
    with pytest.raises(ConfigError, match="unknown compliance framework"):
        render(guest_scan, catalog, "pci-dss", "json")

    @click.command()
    @compliance_option
    def cmd(compliance: str | None) -> None:
        click.echo(f"chose {compliance}")

    runner = CliRunner()
    assert runner.invoke(cmd, ["--compliance", "nist-800-125a-r1"]).output == "chose nist-800-125a-r1\n"
    assert runner.invoke(cmd, []).output == "chose None\n"
    bad = runner.invoke(cmd, ["--compliance", "pci-dss"])
    assert bad.exit_code == 2 and "cis-debian-12" in bad.output
