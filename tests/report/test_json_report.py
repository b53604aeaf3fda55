"""The JSON report's per-target summary carries the hardening score, computed as the terminal and
HTML reports compute it (docs/report-formats.md)."""

from __future__ import annotations

from vmsec.findings import Status, TargetKind
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
