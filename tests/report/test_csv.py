"""CSV: RFC 4180 via the csv module, documented columns, formulas neutralised."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from report_scans import FORMULA, XSS, golden_catalog, render_text

from vmsec.checks.catalog import Catalog
from vmsec.report.csv_report import COLUMNS, neutralise
from vmsec.report.summary import sort_findings
from vmsec.results import ScanResult


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_one_row_per_finding_in_report_order(sample_scan: ScanResult, catalog: Catalog) -> None:
    text = render_text("csv", sample_scan, catalog)
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert "\r\n" in text  # RFC 4180 line ends
    rows = _rows(text)
    expected = sort_findings(sample_scan.findings)
    assert len(rows) == len(expected)
    assert [(r["check_id"], r["fingerprint"]) for r in rows] == [(f.check_id, f.fingerprint)
                                                                 for f in expected]
    vnc = next(r for r in rows if r["check_id"] == "VMS-DOM-020")
    assert vnc["evidence"] == "/etc/libvirt/qemu/web01.xml [devices/graphics[1]/@listen] = 0.0.0.0"
    assert vnc["target"] == "web01" and vnc["target_host"] == "hv1" and vnc["status"] == "FAIL"
    kev = next(r for r in rows if r["vulnerability_id"] == "CVE-2023-4911")
    assert kev["check_id"] == "VMS-VULN-001" and kev["severity"] == "critical"


def test_hostile_cells_round_trip_and_formulas_are_inert(sample_scan: ScanResult, catalog: Catalog) -> None:
    rows = _rows(render_text("csv", sample_scan, catalog))
    evil = next(r for r in rows if r["check_id"] == "VMS-DOM-006")
    assert evil["subject"] == "'" + FORMULA
    assert "\n" in evil["message"] and "|" in evil["message"]  # quoted, not split into rows
    assert next(r for r in rows if r["check_id"] == "VMS-DOM-001")["message"] == XSS
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


@pytest.mark.parametrize(("raw", "cell"), [("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-2", "'-2"),
                                           ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("plain", "plain"),
                                           ("a=b", "a=b"), ("", "")])
def test_neutralise(raw: str, cell: str) -> None:
    assert neutralise(raw) == cell


def test_golden(sample_scan: ScanResult, catalog: Catalog, golden_text: Callable[[str, str], None]) -> None:
    golden_text("sample.csv", render_text("csv", sample_scan, golden_catalog(sample_scan, catalog)))
