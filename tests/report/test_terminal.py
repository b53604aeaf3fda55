"""The terminal report: golden outputs at 80 and 120 columns, worst first, never padded, within its
width; the width follows the terminal or $COLUMNS."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from report_scans import ROOT

from vmsec.checks.catalog import Catalog
from vmsec.collectors.xml import collect_xml
from vmsec.engine import run_checks
from vmsec.report import ReportOptions
from vmsec.report.digest import digest_of
from vmsec.report.terminal import TerminalReporter, wrap
from vmsec.results import ScanResult

VMSEC = str(Path(sys.executable).with_name("vmsec"))
FIXTURES = ("VMS-DOM-020/vnc-any.FAIL.xml", "VMS-DOM-071/vfio-hostdev.FAIL.xml",
            "VMS-DOM-006/qemu-monitor-tcp.FAIL.xml", "VMS-DOM-040/floppy-drive.FAIL.xml",
            "VMS-DOM-020/vnc-no-address.UNKNOWN.xml")


def render(scan: ScanResult, catalog: Catalog, width: int, show_pass: bool = False) -> str:
    out = io.StringIO()
    TerminalReporter(ReportOptions(width=width, color=False, show_pass=show_pass)).render(
        scan, catalog.index(), out)
    return out.getvalue()


@pytest.fixture(scope="module")
def xml_scan(catalog: Catalog) -> ScanResult:
    """Real verdict fixtures through the real engine, read by relative paths (stable in golden files)."""
    cwd = os.getcwd()
    os.chdir(ROOT / "tests" / "data" / "checks")
    try:
        files = list(FIXTURES)
        assert all(Path(f).exists() for f in files), "fixtures moved: update FIXTURES"
        stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        return run_checks(collect_xml(files), catalog, clock=lambda: stamp)
    finally:
        os.chdir(cwd)


def _shape(text: str, width: int) -> None:
    lines = text.split("\n")
    assert text.endswith("\n")
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    assert not any(line.endswith(" ") for line in lines)  # never padded
    assert "\x1b" not in text


@pytest.mark.parametrize("width", [80, 120])
def test_golden_sample(width: int, sample_scan: ScanResult, catalog: Catalog,
                       golden_text: Callable[[str, str], None]) -> None:
    text = render(sample_scan, catalog, width)
    _shape(text, width)
    assert text == render(sample_scan, catalog, width)
    golden_text(f"sample.terminal.{width}.txt", text)


@pytest.mark.parametrize("width", [80, 120])
def test_golden_real_fixtures(width: int, xml_scan: ScanResult, catalog: Catalog,
                              golden_text: Callable[[str, str], None]) -> None:
    text = render(xml_scan, catalog, width)
    _shape(text, width)
    golden_text(f"xml-fixtures.terminal.{width}.txt", text)


def test_worst_first_with_the_summary_leading(sample_scan: ScanResult, catalog: Catalog) -> None:
    text = render(sample_scan, catalog, 100)
    heads = ["Summary", "Most exposed", "Fix first", "CRITICAL - ", "HIGH - ", "MEDIUM - ", "UNKNOWN - "]
    positions = [text.index(h) for h in heads]
    assert positions == sorted(positions)
    summary = text[: text.index("Most exposed")]
    assert "FAIL 13: 4 critical, 6 high, 2 medium, 1 low" in summary
    assert "INCOMPLETE" in summary  # a crashed check and an unreadable input
    # each FAIL shows where its evidence was read, and each check its remediation once
    vnc = text[text.index("VMS-DOM-020  "):]
    assert vnc.index("fix: ") < vnc.index("at /etc/libvirt/qemu/web01.xml")


def test_vulnerabilities_are_grouped_per_package(sample_scan: ScanResult, catalog: Catalog) -> None:
    """Two hundred CVEs of one package read as one entry with counts, fixed version, KEV and EPSS."""
    template = next(f for f in sample_scan.findings
                    if f.vulnerability and f.subject.endswith("qemu-system-x86"))
    many = []
    for i in range(200):
        sev = ("critical", "high", "medium", "low")[i % 4]
        vuln = {**template.vulnerability, "id": f"CVE-2025-{10000 + i}", "source_package": "qemu",
                "fixed_version": f"1:7.2+dfsg-7+deb12u{i % 7}", "ecosystem": "Debian:12",
                "kev": {"date_added": "2025-01-01"} if i == 5 else None,
                "epss": {"score": i / 1000, "percentile": 0.5}}
        many.append(template._replace(subject=f"CVE-2025-{10000 + i} qemu-system-x86",
                                      severity=type(template.severity)(sev), vulnerability=vuln))
    from msgspec import structs

    scan = structs.replace(sample_scan, findings=(*sample_scan.findings, *many))
    text = render(scan, catalog, 120)
    assert "CVE-2025-10042" not in text or text.count("CVE-2025-1") < 20  # not one line per CVE
    entry = text[text.index("qemu 1.0-1 on Host hv1: 200 vulnerabilities"):]
    assert entry.startswith("qemu 1.0-1 on Host hv1: 200 vulnerabilities (50 critical, 50 high, 50 medium, "
                            "50 low)")
    assert "upgrade qemu to 1:7.2+dfsg-7+deb12u6 or later" in entry[:600]  # the highest fixed version
    assert "CVE-2025-10005" in entry[:800] and "KEV" in entry[:800]
    assert "highest EPSS: CVE-2025-10199 0.20" in entry[:800]
    fixes = digest_of(scan).fix_first
    assert fixes[0].package == "qemu" or any(f.package == "qemu" and f.kev == 1 for f in fixes)


def test_scores_are_per_host_and_vm(xml_scan: ScanResult) -> None:
    d = digest_of(xml_scan)
    assert {u.kind.value for u in d.units} == {"domain"}
    for u in d.units:
        assert u.score.value is not None and 0 <= u.score.value <= 100
        s = u.score
        assert u.score.value == round(100 * s.passed_weight / (s.passed_weight + s.failed_weight))
    ranked = [(-(u.worst.rank if u.worst else -1)) for u in d.units]
    assert ranked == sorted(ranked)


@pytest.mark.parametrize(("text", "width"), [("a " * 100, 30), ("x" * 95, 40), ("short", 80)])
def test_wrap_never_exceeds_the_width(text: str, width: int) -> None:
    lines = wrap(text.strip(), width, "  - ", "    ")
    assert all(len(line) <= width and not line.endswith(" ") for line in lines)
    assert "".join(line[4:] for line in lines).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize("columns", ["100", "60"])
def test_piped_and_output_reports_honour_columns(columns: str, tmp_path: Path) -> None:
    fixture = ROOT / "tests" / "data" / "checks" / "VMS-DOM-020" / "vnc-any.FAIL.xml"
    env = {**os.environ, "COLUMNS": columns}
    piped = subprocess.run([VMSEC, "scan", "xml", str(fixture), "--no-store", "-q"], capture_output=True,
                           text=True, env=env, timeout=60, check=True)
    out = tmp_path / "report.txt"
    subprocess.run([VMSEC, "scan", "xml", str(fixture), "--no-store", "-q", "-o", str(out)], env=env,
                   capture_output=True, timeout=60, check=True)
    for text in (piped.stdout, out.read_text(encoding="utf-8")):
        _shape(text, int(columns))
        assert max(len(line) for line in text.splitlines()) > int(columns) - 15  # the width is used
    default = subprocess.run([VMSEC, "scan", "xml", str(fixture), "--no-store", "-q"], capture_output=True,
                             text=True, env={k: v for k, v in env.items() if k != "COLUMNS"}, timeout=60,
                             check=True)
    _shape(default.stdout, 80)
