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
* Locations are real paths (:class:`Locator`): the files the evidence names — with a copied host
  root's prefix kept, ``path:line`` as a region, a note such as "(default)" in the message, never
  in the URI — else the domain's XML file; logical locations name the target (host, domain …) and
  the subject. A result with no file at all (a live kernel fact without a path) has logical
  locations only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, TextIO
from urllib.parse import quote

from msgspec import Struct

from vmsec import __version__
from vmsec.checkinfo import CheckIndex, CheckInfo
from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.report import ReportOptions
from vmsec.report.digest import says
from vmsec.report.summary import sort_findings
from vmsec.report.text import json_text
from vmsec.results import ScanResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
                     Severity.LOW: "3.0", Severity.INFO: "0.0"}
LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
         Severity.LOW: "note", Severity.INFO: "note"}
FINGERPRINT_KEY = "vmsecFingerprint/v1"
SRCROOT = "%SRCROOT%"


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


_LINE = re.compile(r"^(?P<path>.+?):(?P<line>[1-9][0-9]{0,8})$")
_NOTE = re.compile(r"^(?P<path>[^()]+?) \((?P<note>[^()]*)\)$")


class Place(Struct, frozen=True):
    """A file a finding points at: where it really is (a host root's prefix kept), a line when
    known, and a note that belongs in the message, never in the URI."""

    path: str
    line: int | None = None
    note: str | None = None
    inner: str | None = None  # a path inside a disk image (the image is the file)


def split_source(source: str) -> tuple[str, int | None, str | None]:
    """``/etc/x.conf:12`` → (path, 12, None); ``/etc/libvirt/qemu.conf (default)`` → (path, None,
    "default"); anything else → (source, None, None)."""
    note = None
    m = _NOTE.match(source)
    if m is not None:
        source, note = m["path"], m["note"]
    line = None
    m = _LINE.match(source)
    if m is not None:
        source, line = m["path"], int(m["line"])
    return source, line, note


def _file_uri(path: str) -> dict[str, str]:
    """An artifact location: absolute paths as ``file://`` URIs; relative ones (a scan run on
    relative paths) relative to ``%SRCROOT%`` — a URI may carry a base only when it is relative."""
    slash = "/" if path.endswith("/") and path != "/" else ""  # a directory keeps its trailing slash
    if path.startswith("/"):
        return {"uri": "file://" + _quote(str(PurePosixPath(path))) + slash}
    return {"uri": _quote(str(PurePosixPath(path))) + slash, "uriBaseId": SRCROOT}


def _quote(path: str) -> str:
    """``path`` percent-encoded; a guest file name's undecodable bytes (``\\udcff``) as the bytes
    they were (``%FF``): strict UTF-8 would refuse them and with them the whole report."""
    try:
        return quote(path, safe="/", errors="surrogateescape")
    except UnicodeEncodeError:  # a surrogate no byte decoded to: shown as its escape
        return quote(path, safe="/", errors="backslashreplace")


def _target_fqn(t: Target) -> str:
    return f"{t.host}/{t.kind.value}/{t.name}" if t.host else f"{t.kind.value}/{t.name}"


def _real_dir(value: object) -> str | None:
    return value.rstrip("/") if isinstance(value, str) and value.startswith("/") and value != "/" else None


class Locator:
    """Where each finding is: the files its evidence names, mapped to where they really are.

    * a host read from a copied root (``--root``, ``--host-root``): its paths, and those of the
      domains and networks read from that root, get the root's prefix back;
    * a guest read from a root directory (``scan rootfs``): its paths get that directory's prefix;
      a guest read from a disk image: the image is the file, the path inside goes in the message;
    * a domain without file evidence points at its XML file (``origin``), when it has one;
    * ``path:line`` evidence gives a region; ``path (note)`` puts the note in the message.
    """

    def __init__(self, scan: ScanResult) -> None:
        self.roots: dict[Target, str] = {}
        self.images: dict[Target, str] = {}
        self.origins: dict[Target, str] = {}
        self.files: set[str] = set()  # paths known to be files (domain origins)
        host_roots = {t.name: _real_dir(d.get("root")) for t, d in scan.details.items()
                      if t.kind is TargetKind.HOST}
        # Domains and networks of an XML scan with --host-root: their own files are real paths, the
        # host facts they cite (qemu.conf) are inside the host's root.
        self.host_roots: dict[str, str] = {name: root for name, root in host_roots.items() if root}
        for t, d in scan.details.items():
            origin = d.get("origin")
            if t.kind is TargetKind.HOST:
                root = host_roots.get(t.name)
            elif t.kind is TargetKind.GUEST:
                root = None
                if isinstance(origin, str) and d.get("disk_encryption") is None:
                    root = _real_dir(origin)  # a root directory (scan rootfs)
                elif isinstance(origin, str) and origin:
                    self.images[t] = origin  # a disk image
            else:
                root = _real_dir(d.get("root"))
            if root is not None:
                self.roots[t] = root
            if t.kind is TargetKind.DOMAIN and isinstance(origin, str) and origin and "://" not in origin \
                    and "#" not in origin:
                self.origins[t] = origin
                self.files.add(origin)
        # A detail recorded without the host's name still belongs to the same-named target.
        for table in (self.roots, self.images, self.origins):
            for t, value in list(table.items()):
                table.setdefault(Target(t.kind, t.name, None), value)

    def _get(self, table: dict[Target, str], t: Target) -> str | None:
        return table.get(t) or table.get(Target(t.kind, t.name, None))

    def places(self, f: Finding) -> list[Place]:
        """The files of ``f``, at most five, in evidence order (the domain's file when none)."""
        out: list[Place] = []
        seen: set[tuple[str, int | None]] = set()
        root = self._get(self.roots, f.target)
        image = self._get(self.images, f.target)
        host_root = (self.host_roots.get(f.target.host) if root is None and f.target.host
                     and f.target.kind in (TargetKind.DOMAIN, TargetKind.NETWORK) else None)
        for e in f.evidence:
            if "\x00" in e.source:
                continue
            path, line, note = split_source(e.source)
            if not path.startswith("/"):
                if path not in self.files:
                    continue  # not a path: "vulnerability database", "(kernel default)", a URI
                place = Place(path, line, note)  # a domain file given as a relative path
            elif image is not None:
                place = Place(image, None, note, inner=path if not line else f"{path}:{line}")
            elif root is not None and path != root and not path.startswith(root + "/"):
                place = Place(root + path, line, note)
            elif host_root is not None and path not in self.files and not path.startswith(host_root + "/"):
                place = Place(host_root + path, line, note)
            else:
                place = Place(path, line, note)
            key = (place.path, place.line)
            if key not in seen:
                seen.add(key)
                out.append(place)
        origin = self._get(self.origins, f.target)
        if not out and origin is not None:
            path = root + origin if root is not None and origin.startswith("/") else origin
            out.append(Place(path))
        if not out:
            # Nothing the evidence names is a file (a compiled-in default, a kernel setting, a probe's
            # answer): the target itself — its image, its root directory, the host's "/", or for a
            # target that is no file at all a relative name — since code scanning (GitHub) refuses a
            # result without a physical location.
            host = self.host_roots.get(f.target.name) if f.target.kind is TargetKind.HOST else None
            directory = root or host or ("" if f.target.kind is TargetKind.HOST else None)
            fallback = image or (directory + "/" if directory is not None else None)
            out.append(Place(fallback) if fallback else Place(f"{f.target.kind.value}/{f.target.name}"))
        return out[:5]

    def locations(self, f: Finding) -> list[dict[str, Any]]:
        logical = [{"name": f.target.name, "fullyQualifiedName": _target_fqn(f.target),
                    "kind": "resource"},
                   {"name": f.subject, "fullyQualifiedName": f"{_target_fqn(f.target)}/{f.subject}",
                    "kind": "object"}]
        places = self.places(f)
        out: list[dict[str, Any]] = []
        for i, place in enumerate(places):
            physical: dict[str, Any] = {"artifactLocation": _file_uri(place.path)}
            if place.line is not None:
                physical["region"] = {"startLine": place.line}
            location: dict[str, Any] = {"physicalLocation": physical}
            if i == 0:
                location["logicalLocations"] = logical
            out.append(location)
        return out

    def notes(self, f: Finding) -> list[str]:
        """What the evidence said beside its paths ("default"), and paths inside disk images."""
        notes = []
        for place in self.places(f):
            if place.inner is not None:
                notes.append(f"{place.inner} in {place.path}")
            if place.note:
                notes.append(f"{place.path}: {place.note}")
        return notes


def _message(f: Finding, notes: Sequence[str] = ()) -> str:
    text = f"{f.title}: {says(f.subject, f.message)}" if f.message else f"{f.title}: {f.subject}"
    return text + (f" ({'; '.join(notes)})" if notes else "")


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
    locator = Locator(scan)
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for f in findings:
        if f.status in (Status.FAIL, Status.WAIVED):
            result: dict[str, Any] = {
                "ruleId": f.check_id, "ruleIndex": index[f.check_id], "kind": "fail",
                "level": LEVEL[f.severity], "message": {"text": _message(f, locator.notes(f))},
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
                "message": {"text": f"{f.status.value}: {says(f.subject, f.message)}"},
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
            "originalUriBaseIds": {SRCROOT: {
                "description": {"text": "The directory vmsec was run in: relative paths given to "
                                        "'vmsec scan' are relative to it"}}},
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
    out.write(json_text(json.dumps(build_document(scan, checks), indent=2, ensure_ascii=False)))
    out.write("\n")


class SarifReporter:
    """``--format sarif``."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
        render(scan, checks, out)
