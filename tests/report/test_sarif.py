"""SARIF 2.1.0: valid against the official OASIS schema, rules from the catalogue, levels by severity,
waivers as suppressions, UNKNOWN/ERROR/collection errors as notifications."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from report_scans import XSS, golden_catalog, render_text

from datapaths import SARIF_SCHEMA
from vmsec.checks.catalog import Catalog
from vmsec.findings import Status
from vmsec.results import ScanResult


def _validate(doc: dict[str, Any]) -> None:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.fixture(scope="module")
def sample_doc(sample_scan: ScanResult, catalog: Catalog) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render_text("sarif", sample_scan, catalog))
    return doc


def test_sample_validates_against_the_official_schema(sample_doc: dict[str, Any]) -> None:
    _validate(sample_doc)


def test_real_engine_scan_validates(real_scan: ScanResult, catalog: Catalog) -> None:
    doc = json.loads(render_text("sarif", real_scan, catalog))
    _validate(doc)
    run = doc["runs"][0]
    fails = [f for f in real_scan.findings if f.status is Status.FAIL]
    assert len(run["results"]) == len(fails) > 10
    # Every result points at a file; the real fixtures' evidence names the XML file it came from.
    for result in run["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("file:///") and uri.endswith(".xml")
    unknown = sum(1 for f in real_scan.findings if f.status is Status.UNKNOWN)
    levels = [n["level"] for n in run["invocations"][0]["toolExecutionNotifications"]]
    assert levels.count("warning") == unknown > 0


def test_rules_come_from_the_catalogue(sample_doc: dict[str, Any], catalog: Catalog) -> None:
    rules = sample_doc["runs"][0]["tool"]["driver"]["rules"]
    by_id = {r["id"]: r for r in rules}
    assert len(by_id) == len(rules)
    assert set(catalog.by_id) <= set(by_id)
    spec = catalog.by_id["VMS-DOM-020"]
    rule = by_id["VMS-DOM-020"]
    assert rule["shortDescription"]["text"] == spec.title
    assert rule["fullDescription"]["text"] == spec.rationale
    assert spec.remediation in rule["help"]["text"] and spec.remediation in rule["help"]["markdown"]
    assert rule["properties"]["security-severity"] == "8.0"
    assert rule["defaultConfiguration"]["level"] == "error"
    assert set(spec.tags) <= set(rule["properties"]["tags"])
    assert by_id["VMS-HOST-004"]["properties"]["security-severity"] == "9.5"
    for result in sample_doc["runs"][0]["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_a_check_missing_from_the_catalogue_still_gets_a_rule(sample_scan: ScanResult,
                                                               catalog: Catalog) -> None:
    # e.g. a report re-rendered from the store after a check was retired.
    small = catalog.select(ids=["VMS-DOM-020"])
    doc = json.loads(render_text("sarif", sample_scan, small))
    _validate(doc)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert rules[0]["id"] == "VMS-DOM-020"
    ids = [r["id"] for r in rules]
    assert ids[1:] == sorted(ids[1:]) and "VMS-VULN-002" in ids
    low = rules[ids.index("VMS-VULN-002")]
    assert low["properties"]["security-severity"] == "3.0" and low["defaultConfiguration"]["level"] == "note"
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


@pytest.mark.parametrize(("check_id", "level"), [("VMS-HOST-004", "error"), ("VMS-DOM-020", "error"),
                                                  ("VMS-DOM-071", "warning"), ("VMS-VULN-002", "note")])
def test_result_level_follows_severity(sample_doc: dict[str, Any], check_id: str, level: str) -> None:
    results = [r for r in sample_doc["runs"][0]["results"] if r["ruleId"] == check_id]
    assert [r["level"] for r in results] == [level]


def test_statuses_map_to_results_suppressions_and_notifications(sample_doc: dict[str, Any],
                                                                sample_scan: ScanResult) -> None:
    run = sample_doc["runs"][0]
    ids = [r["ruleId"] for r in run["results"]]
    assert "VMS-HOST-001" not in ids and "VMS-DOM-150" not in ids  # PASS: no result
    waived = [r for r in run["results"] if r["ruleId"] == "VMS-DOM-040"]
    justification = "waived by ops until 2026-06-30: legacy installer"
    assert waived[0]["suppressions"] == [{"kind": "external", "status": "accepted",
                                          "justification": justification}]
    assert all("suppressions" not in r for r in run["results"] if r["ruleId"] != "VMS-DOM-040")
    notes = run["invocations"][0]["toolExecutionNotifications"]
    crashed = [n for n in notes if n.get("associatedRule", {}).get("id") == "VMS-QEMU-001"]
    assert crashed[0]["level"] == "error" and "ValueError" in crashed[0]["properties"]["trace"]
    unknown = [n["associatedRule"]["id"] for n in notes if n["level"] == "warning"]
    assert sorted(unknown) == ["VMS-DOM-029", "VMS-QEMU-004"]
    assert any(n["message"]["text"] == "could not read qemu.conf: permission denied" for n in notes)
    assert run["invocations"][0]["executionSuccessful"] is False
    assert run["invocations"][0]["startTimeUtc"] == "2026-01-02T03:04:05.000Z"
    fps = {r["partialFingerprints"]["vmsecFingerprint/v1"] for r in run["results"]}
    assert len(fps) == len(run["results"])
    expected = {f.fingerprint for f in sample_scan.findings if f.status in (Status.FAIL, Status.WAIVED)}
    assert fps == expected


def test_locations_name_files_targets_and_subjects(sample_doc: dict[str, Any]) -> None:
    results = sample_doc["runs"][0]["results"]
    vnc = next(r for r in results if r["ruleId"] == "VMS-DOM-020")
    loc = vnc["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "file:///etc/libvirt/qemu/web01.xml"
    assert [ll["kind"] for ll in loc["logicalLocations"]] == ["resource", "object"]
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "hv1/domain/web01"
    # No evidence file: falls back to the domain's XML file.
    gpu = next(r for r in results if r["ruleId"] == "VMS-DOM-071")
    assert gpu["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("gpu-box.xml")
    # A hostile name is percent-encoded in URIs and kept verbatim (JSON-escaped) in text.
    evil = next(r for r in results if r["ruleId"] == "VMS-DOM-001")
    assert evil["locations"][0]["logicalLocations"][0]["name"] == XSS


def test_golden(sample_scan: ScanResult, catalog: Catalog, golden_text: Callable[[str, str], None]) -> None:
    small = golden_catalog(sample_scan, catalog)
    text = render_text("sarif", sample_scan, small)
    assert text == render_text("sarif", sample_scan, small)
    golden_text("sample.sarif.json", text)
