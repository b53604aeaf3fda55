"""The JSON report's per-target summary carries the hardening score, computed as the terminal and
HTML reports compute it (docs/report-formats.md)."""

from __future__ import annotations

import io
import json
from typing import Any

import orjson
import pytest
from msgspec import structs

from vmsec.checks.api import ev
from vmsec.checks.catalog import Catalog
from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.report import make_reporter
from vmsec.report.json_report import _MAX_FRAGMENTS, _finding_lines, build_document, finding_dict
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


def _as_finding_dict(f: Finding, fingerprint: str | None,
                     where: dict[str, object] | None = None) -> dict[str, Any]:
    row = finding_dict(f)
    row["fingerprint"] = fingerprint
    row["target"].update(where or {})
    return row


@pytest.mark.parametrize("scan_name", ["sample_scan", "real_scan"])
def test_each_finding_line_is_its_finding_dict(scan_name: str, request: pytest.FixtureRequest) -> None:
    """A line is joined from pieces encoded once per report (a check's head, its tags and remediation):
    every line must still be exactly the compact encoding of the finding's whole dict — also when the
    pieces come from the cache of an earlier batch."""
    scan: ScanResult = request.getfixturevalue(scan_name)
    fragments: dict[tuple[Any, ...], bytes] = {}
    for _ in range(2):  # the second round takes every head and tail from the cache
        for batch in scan.batches():
            lines = _finding_lines(batch.target, batch.findings, batch.fingerprints, None, fragments)
            assert lines == [orjson.dumps(_as_finding_dict(f, fp))
                             for f, fp in zip(batch.findings, batch.fingerprints, strict=True)]
    assert fragments, "the pieces were cached"


def test_a_finding_of_another_target_and_an_endpoints_address_keep_their_own_target() -> None:
    endpoint = Target(TargetKind.ENDPOINT, "192.0.2.7:5900/tcp", "hv1")
    domain = Target(TargetKind.DOMAIN, "web01", "hv1")
    where = {"address": "192.0.2.7", "port": 5900, "protocol": "tcp"}
    findings = [Finding("VMS-X-1", "T", Status.FAIL, Severity.HIGH, endpoint, "s", "m", (ev("a", "b", "c"),),
                        ("one",), "fix it", None, None),
                Finding("VMS-X-1", "T", Status.FAIL, Severity.HIGH, domain, "s", "m", (), ("one", "two"),
                        "fix it", {"id": "CVE-2024-0001"}, "detail")]
    lines = _finding_lines(endpoint, findings, ["f1", "f2"], where, {})
    assert [json.loads(line) for line in lines] == [_as_finding_dict(findings[0], "f1", where),
                                                     _as_finding_dict(findings[1], "f2")]


def test_lone_surrogates_from_guest_bytes_are_shown_not_fatal() -> None:
    """Undecodable guest bytes reach findings as lone surrogates, which orjson refuses: the line is
    then written by the escaping encoder, in a target name as in a finding's own text. A ``\\udcff``
    escape is not valid Unicode — strict parsers (orjson, serde_json, I-JSON) refuse it and with it
    the whole report — so the surrogate becomes that text, as the terminal, CSV and store show it."""
    hostile = Target(TargetKind.GUEST, "guest-\udcff", None)
    findings = [Finding("VMS-X-1", "T", Status.FAIL, Severity.HIGH, hostile, "file \udc80", "m", (), (), "",
                        None, None),
                Finding("VMS-X-2", "T", Status.PASS, Severity.LOW, hostile, "s", "m", (), (), "", None, None)]
    lines = _finding_lines(hostile, findings, ["f1", "f2"], None, {})
    shown = Target(TargetKind.GUEST, "guest-\\udcff", None)
    assert [orjson.loads(line) for line in lines] == [
        _as_finding_dict(findings[0]._replace(target=shown, subject="file \\udc80"), "f1"),
        _as_finding_dict(findings[1]._replace(target=shown), "f2")]


def test_the_cache_of_pieces_stays_bounded() -> None:
    target = Target(TargetKind.DOMAIN, "d", None)
    findings = [Finding(f"VMS-X-{i}", "T", Status.PASS, Severity.LOW, target, "s", "m", (), (), f"fix {i}",
                        None, None) for i in range(3 * _MAX_FRAGMENTS)]
    fragments: dict[tuple[Any, ...], bytes] = {}
    lines = _finding_lines(target, findings, ["f"] * len(findings), None, fragments)
    assert len(lines) == len(findings)
    assert len(fragments) <= _MAX_FRAGMENTS
