"""SARIF 2.1.0: the format code-scanning tools ingest (GitHub, GitLab, Azure DevOps, DefectDojo).

Mapping (docs/report-formats.md):

* ``tool.driver.rules`` is the check catalogue (plus one rule per other check id a finding names,
  e.g. a check retired since the scan), with ``security-severity`` so code scanning ranks alerts.
* FAIL → a result, level by severity (critical/high → error, medium → warning, low/info → note).
* WAIVED → the same result with an accepted external suppression (it never disappears).
* PASS → no result (a pass is not an alert; the JSON report lists them).
* ERROR (a check crashed) and collection errors → ``toolExecutionNotifications`` at level error;
  UNKNOWN (a fact could not be read) → ``toolExecutionNotifications`` at level warning. They are
  not alerts about the system, they say where the audit is blind.
* Every result has a physical location: the evidence file when the evidence names an absolute path,
  else the domain's XML file, else a stable per-target URI under the ``VMSECTARGET`` base.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, TextIO
from urllib.parse import quote

from vmsec import __version__
from vmsec.checkinfo import CheckIndex, CheckInfo
from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.report import ReportOptions
from vmsec.report.summary import sort_findings
from vmsec.results import ScanResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
                     Severity.LOW: "3.0", Severity.INFO: "0.0"}
LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
         Severity.LOW: "note", Severity.INFO: "note"}
FINGERPRINT_KEY = "vmsecFingerprint/v1"
TARGET_BASE = "VMSECTARGET"


def _utc(ts: datetime) -> str:
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _help(spec_remediation: str, references: Sequence[str]) -> dict[str, str]:
    text = spec_remediation.strip() or "No remediation recorded."
    markdown = "**Remediation**\n\n" + text
    if references:
        text += "\n\nReferences:\n" + "\n".join(f"- {r}" for r in references)
        markdown += "\n\n**References**\n\n" + "\n".join(f"- {r}" for r in references)
    return {"text": text, "markdown": markdown}


def rule_for_spec(spec: CheckInfo) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": spec.id,
        "name": "".join(w.capitalize() for w in spec.id.split("-")),
        "shortDescription": {"text": spec.title},
        "fullDescription": {"text": spec.rationale or spec.title},
        "help": _help(spec.remediation, spec.references),
        "defaultConfiguration": {"level": LEVEL[spec.severity]},
        "properties": {"tags": sorted({str(t) for t in spec.tags} | {"security"}),
                       "security-severity": SECURITY_SEVERITY[spec.severity],
                       "scope": spec.scope},
    }
    urls = [r for r in spec.references if r.startswith("https://")]
    if urls:
        rule["helpUri"] = urls[0]
    return rule


def _rule_for_finding(f: Finding) -> dict[str, Any]:
    """A rule for a check id the catalogue does not know (vulnerability findings)."""
    return {
        "id": f.check_id,
        "name": "".join(ch for ch in f.check_id.title() if ch.isalnum()) or "Finding",
        "shortDescription": {"text": f.title or f.check_id},
        "fullDescription": {"text": f.title or f.check_id},
        "help": _help(f.remediation, ()),
        "defaultConfiguration": {"level": LEVEL[f.severity]},
        "properties": {"tags": sorted({str(t) for t in f.tags} | {"security"}),
                       "security-severity": SECURITY_SEVERITY[f.severity]},
    }


def _is_file(source: str) -> bool:
    return source.startswith("/") and "\x00" not in source


def _file_uri(path: str) -> str:
    return "file://" + quote(str(PurePosixPath(path)), safe="/")


def _target_fqn(t: Target) -> str:
    return f"{t.host}/{t.kind.value}/{t.name}" if t.host else f"{t.kind.value}/{t.name}"


class _Locator:
    def __init__(self, scan: ScanResult) -> None:
        self.origins = {t.name: str(d["origin"]) for t, d in scan.details.items()
                        if t.kind is TargetKind.DOMAIN and d.get("origin")}

    def locations(self, f: Finding) -> list[dict[str, Any]]:
        files = []
        for e in f.evidence:
            if _is_file(e.source) and e.source not in files:
                files.append(e.source)
        origin = self.origins.get(f.target.name) if f.target.kind.value == "domain" else None
        if not files and origin and _is_file(origin):
            files.append(origin)
        logical = [{"name": f.target.name, "fullyQualifiedName": _target_fqn(f.target), "kind": "resource"},
                   {"name": f.subject, "fullyQualifiedName": f"{_target_fqn(f.target)}/{f.subject}",
                    "kind": "object"}]
        if files:
            physical = [{"artifactLocation": {"uri": _file_uri(p)}} for p in files[:5]]
        else:
            physical = [{"artifactLocation": {
                "uri": f"{f.target.kind.value}/{quote(f.target.name, safe='')}",
                "uriBaseId": TARGET_BASE}}]
        out: list[dict[str, Any]] = [{"physicalLocation": physical[0], "logicalLocations": logical}]
        out += [{"physicalLocation": p} for p in physical[1:]]
        return out


def _message(f: Finding) -> str:
    return f"{f.title}: {f.subject}: {f.message}" if f.message else f"{f.title}: {f.subject}"


def _properties(f: Finding) -> dict[str, Any]:
    props: dict[str, Any] = {"severity": f.severity.value, "status": f.status.value,
                             "target": {"kind": f.target.kind.value, "name": f.target.name,
                                        "host": f.target.host},
                             "subject": f.subject,
                             "evidence": [e.as_dict() for e in f.evidence]}
    if f.vulnerability is not None:
        props["vulnerability"] = json.loads(json.dumps(dict(f.vulnerability), default=str))
    return props


def build_document(scan: ScanResult, checks: CheckIndex) -> dict[str, Any]:
    findings = sort_findings(scan.findings)
    rules = [rule_for_spec(s) for s in checks.checks]
    index = {r["id"]: i for i, r in enumerate(rules)}
    extra: dict[str, Finding] = {}
    for f in findings:
        if f.check_id not in index and f.check_id not in extra:
            extra[f.check_id] = f
    for check_id in sorted(extra):
        index[check_id] = len(rules)
        rules.append(_rule_for_finding(extra[check_id]))
    locator = _Locator(scan)
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for f in findings:
        if f.status in (Status.FAIL, Status.WAIVED):
            result: dict[str, Any] = {
                "ruleId": f.check_id, "ruleIndex": index[f.check_id], "kind": "fail",
                "level": LEVEL[f.severity], "message": {"text": _message(f)},
                "locations": locator.locations(f),
                "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
                "properties": _properties(f),
            }
            if f.status is Status.WAIVED:
                result["suppressions"] = [{"kind": "external", "status": "accepted",
                                           "justification": f.detail or f.message or "waived"}]
            results.append(result)
        elif f.status in (Status.ERROR, Status.UNKNOWN):
            note: dict[str, Any] = {
                "level": "error" if f.status is Status.ERROR else "warning",
                "message": {"text": (f"{f.status.value}: {f.subject}: {f.message}")},
                "associatedRule": {"id": f.check_id, "index": index[f.check_id]},
                "locations": locator.locations(f)[:1],
                "properties": _properties(f),
            }
            if f.status is Status.ERROR and f.detail:
                note["properties"]["trace"] = f.detail
            notifications.append(note)
    for rec in scan.errors:
        reason = rec.reason or "unknown reason"
        notifications.append({"level": "error",
                              "message": {"text": f"could not read {rec.what}: {reason}"},
                              "properties": {"source": rec.source, "what": rec.what}})
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "vmsec", "version": __version__, "semanticVersion": __version__,
                                "rules": rules}},
            "automationDetails": {"id": f"vmsec/{scan.profile}/{scan.source}"},
            "originalUriBaseIds": {TARGET_BASE: {
                "description": {"text": "Audited targets without a file of their own: "
                                        "host/NAME, domain/NAME, guest/NAME, network/NAME"}}},
            "invocations": [{
                "executionSuccessful": scan.complete,
                "startTimeUtc": _utc(scan.started_at),
                "endTimeUtc": _utc(scan.finished_at),
                "toolExecutionNotifications": notifications,
                "toolConfigurationNotifications": [],
            }],
            "results": results,
            "properties": {"source": scan.source, "profile": scan.profile,
                           "checksRun": scan.checks_run},
        }],
    }


def render(scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    json.dump(build_document(scan, checks), out, indent=2, ensure_ascii=False)
    out.write("\n")


class SarifReporter:
    """``--format sarif``."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
        render(scan, checks, out)
