"""The JSON report's per-target summary carries the hardening score, computed as the terminal and
HTML reports compute it (docs/report-formats.md)."""

from __future__ import annotations

import io
import json

import pytest
from msgspec import structs

from vmsec.checks.catalog import Catalog
from vmsec.findings import Status, TargetKind
from vmsec.report import make_reporter
from vmsec.report.json_report import build_document
from vmsec.report.score import score_of
from vmsec.results import ScanResult


def test_every_target_has_its_score(sample_scan: ScanResult) -> None:
    doc = build_document(sample_scan)
    by_target = {(t["kind"], t["name"]): t["summary"]["score"] for t in doc["targets"]}
    assert by_target, "the sample scan has targets"
    for target in sample_scan.targets:
        expected = score_of([f for f in sample_scan.findings if f.target == target])
        got = by_target[(target.kind.value, target.name)]
        assert got["value"] == expected.value
        assert (got["passed_checks"], got["failed_checks"], got["undecided_checks"]) == (
            expected.passed_checks, expected.failed_checks, expected.undecided_checks)


def test_a_failing_target_scores_below_a_clean_one(sample_scan: ScanResult) -> None:
    doc = build_document(sample_scan)
    web = next(t for t in doc["targets"] if t["kind"] == TargetKind.DOMAIN.value and t["name"] == "web01")
    assert web["summary"]["by_status"][Status.FAIL.value] > 0
    value = web["summary"]["score"]["value"]
    assert value is None or 0 <= value < 100


def _hostile_text(scan: ScanResult) -> ScanResult:
    """A finding whose message carries what json_text must escape (DEL, a C1 control, a bidi override)."""
    first = scan.findings[0]._replace(message="owned\x7f\x9b\u202eevil")
    return structs.replace(scan, findings=(first, *scan.findings[1:]))


@pytest.mark.parametrize("hostile", [False, True], ids=["plain", "with-controls"])
def test_a_file_gets_the_same_document_as_a_text_stream(sample_scan: ScanResult, catalog: Catalog,
                                                        hostile: bool) -> None:
    """Findings go to a UTF-8 file's byte buffer directly (write_json_utf8), interleaved with the text
    written around them: the bytes must be exactly what a text-only stream receives."""
    scan = _hostile_text(sample_scan) if hostile else sample_scan
    text = io.StringIO(newline="")
    make_reporter("json").render(scan, catalog.index(), text)
    raw = io.BytesIO()
    wrapper = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    make_reporter("json").render(scan, catalog.index(), wrapper)
    wrapper.flush()
    assert raw.getvalue() == text.getvalue().encode("utf-8")
    assert json.loads(raw.getvalue())["findings"][0]["fingerprint"]
    if hostile:
        assert "\\u007f\\u009b\\u202eevil" in text.getvalue()
