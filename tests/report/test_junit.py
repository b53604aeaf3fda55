"""JUnit XML for CI gates: one suite per target, one case per check × subject, everything escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable

from report_scans import FORMULA, XSS, golden_catalog, render_text

from vmsec.checks.catalog import Catalog
from vmsec.findings import Status
from vmsec.results import ScanResult


def test_structure_and_counts(sample_scan: ScanResult, catalog: Catalog) -> None:
    text = render_text("junit", sample_scan, catalog)
    root = ET.fromstring(text.encode("utf-8"))  # well-formed
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [
        "host:hv1", f"domain:{XSS}@hv1", "domain:gpu-box@hv1", "domain:web01@hv1", "guest:web01-disk@hv1",
        "network:default@hv1"]
    counts = Counter(f.status for f in sample_scan.findings)
    assert root.get("tests") == str(len(sample_scan.findings))
    assert root.get("failures") == str(counts[Status.FAIL])
    assert root.get("errors") == str(counts[Status.ERROR])
    assert root.get("skipped") == str(counts[Status.UNKNOWN] + counts[Status.WAIVED])
    assert len(root.findall(".//failure")) == counts[Status.FAIL]
    assert len(root.findall(".//error")) == counts[Status.ERROR]
    for suite in suites:
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        assert suite.get("failures") == str(sum(1 for c in cases if c.find("failure") is not None))
    host = suites[0]
    kvm = next(c for c in host if c.get("classname", "").startswith("VMS-HOST-001"))
    assert list(kvm) == []  # PASS: a plain test case
    unknown = next(c for c in host if c.get("classname", "").startswith("VMS-QEMU-004"))
    skipped = unknown.find("skipped")
    assert skipped is not None and skipped.get("message") == "could not decide: qemu.conf could not be read"
    crashed = next(c for c in host if c.get("classname", "").startswith("VMS-QEMU-001"))
    error = crashed.find("error")
    assert error is not None and "ValueError: bad user" in (error.text or "")


def test_hostile_strings_are_escaped_not_markup(sample_scan: ScanResult, catalog: Catalog) -> None:
    text = render_text("junit", sample_scan, catalog)
    assert "<script>" not in text
    root = ET.fromstring(text.encode("utf-8"))
    case = next(c for c in root.iter("testcase") if c.get("classname", "").startswith("VMS-DOM-001"))
    assert case.get("name") == XSS
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == f"high: {XSS}"
    formula = next(c for c in root.iter("testcase") if c.get("classname", "").startswith("VMS-DOM-006"))
    assert formula.get("name") == FORMULA
    # The BEL character (not allowed in XML 1.0) became U+FFFD instead of breaking the document.
    failure = formula.find("failure")
    assert failure is not None and "\ufffdbell" in (failure.get("message") or "")


def test_real_scan_is_well_formed(real_scan: ScanResult, catalog: Catalog) -> None:
    root = ET.fromstring(render_text("junit", real_scan, catalog).encode("utf-8"))
    assert int(root.get("tests") or 0) == len(real_scan.findings)


def test_golden(sample_scan: ScanResult, catalog: Catalog, golden_text: Callable[[str, str], None]) -> None:
    golden_text("sample.junit.xml", render_text("junit", sample_scan, golden_catalog(sample_scan, catalog)))
