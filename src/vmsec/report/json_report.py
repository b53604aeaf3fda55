"""The JSON report: vmsec's machine-readable contract (schema in docs/json-report.schema.json).

Stable: fields are added, never renamed or removed, within a ``schema_version`` major.

The document is written as the scan runs (:meth:`JsonReporter.stream`): findings first (one per
line), one target after another, then what is only known at the end (targets with their counts,
collection errors, the summary and the scan's times). Rendering a finished scan replays the same
stream, so both give the same bytes. Serialisation is orjson's (C): the pure-Python ``json``
encoder was three quarters of a large scan's time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from vmsec import __version__
from vmsec.findings import Finding, Target, TargetKind
from vmsec.report import ReportOptions
from vmsec.report.summary import batch_order_indices
from vmsec.report.text import json_text, write_json_utf8
from vmsec.results import OsInventory, ScanCounts, ScanResult, TargetBatch

if TYPE_CHECKING:
    from vmsec.checkinfo import CheckIndex
    from vmsec.pipeline import ScanHeader

SCHEMA_VERSION = "1.0"
_INDENT = orjson.OPT_INDENT_2


def finding_dict(f: Finding) -> dict[str, Any]:
    """One finding as the JSON contract spells it (docs/json-report.md)."""
    return {
        "check_id": f.check_id,
        "title": f.title,
        "status": f.status.value,
        "severity": f.severity.value,
        "target": {"kind": f.target.kind.value, "name": f.target.name, "host": f.target.host},
        "subject": f.subject,
        "message": f.message,
        "evidence": [{"source": e.source, "locator": e.locator, "value": e.value} for e in f.evidence],
        "tags": list(f.tags),
        "remediation": f.remediation,
        "fingerprint": f.fingerprint,
        "vulnerability": dict(f.vulnerability) if f.vulnerability is not None else None,
        "detail": f.detail,
    }


# JSON fragments a report repeats on many lines (a check's title and status, its tags and
# remediation), encoded once per report. Bounded: their keys come from the checks, not from the
# scanned machines, but a cache must not grow without limit whatever feeds it.
_Fragments = dict[tuple[Any, ...], bytes]
_MAX_FRAGMENTS = 4096
_NO_ADVISORY = orjson.dumps({"vulnerability": None, "detail": None})


def _finding_lines(target: Target, findings: list[Finding], fingerprints: list[str],
                   where: Mapping[str, Any] | None = None,
                   fragments: _Fragments | None = None) -> list[bytes]:
    """Each finding of one target's batch as one line of JSON (UTF-8) (:func:`finding_dict`'s shape), built in
    one tight loop: the JSON of a large scan is mostly this. Status/Severity/TargetKind are
    StrEnums, which orjson writes as their values.

    A line is joined from orjson-encoded pieces: what depends on the check alone (``check_id`` to
    ``severity``, ``tags`` and ``remediation``) is encoded once per report into ``fragments``, the
    target once per batch; only subject, message, evidence and the advisory are encoded per finding.
    Every piece is orjson's own output, so the bytes are those of encoding the whole dict."""
    if fragments is None:
        fragments = {}
    dumps = orjson.dumps
    try:
        shared: bytes | None = dumps({"kind": target.kind, "name": target.name, "host": target.host,
                                      **(where or {})})
    except TypeError:  # a name with lone surrogates: its findings take the escaping path below
        shared = None
    lines: list[bytes] = []
    append = lines.append
    join = b"".join
    for f, fingerprint in zip(findings, fingerprints, strict=True):
        (check_id, title, status, severity, f_target, subject, message, evidence, tags, remediation,
         vulnerability, detail) = f
        try:
            head = fragments.get((check_id, title, status, severity))
            if head is None:
                head = dumps({"check_id": check_id, "title": title, "status": status,
                              "severity": severity})[:-1] + b',"target":'
                _remember(fragments, (check_id, title, status, severity), head)
            tail = fragments.get((tags, remediation))
            if tail is None:
                tail = b"," + dumps({"tags": tags, "remediation": remediation})[1:-1] + b',"fingerprint":'
                _remember(fragments, (tags, remediation), tail)
            own = dumps({"subject": subject, "message": message,
                         "evidence": [{"source": e[0], "locator": e[1], "value": e[2]} for e in evidence]})
            # Most findings carry no advisory and no detail: that piece is encoded once.
            end = (_NO_ADVISORY if vulnerability is None and detail is None
                   else dumps({"vulnerability": vulnerability, "detail": detail}))
            if f_target is target or f_target == target:  # the engine shares the object
                if shared is None:
                    raise TypeError("target name not encodable")
                where_ = shared
            else:
                where_ = dumps({"kind": f_target.kind, "name": f_target.name, "host": f_target.host})
            append(join((head, where_, b",", own[1:-1], tail, dumps(fingerprint), b",", end[1:])))
        except TypeError:  # lone surrogates from undecodable guest bytes: shown as text, never fatal
            row = finding_dict(f)
            row["fingerprint"] = fingerprint
            if f_target is target or f_target == target:
                row["target"] = {**row["target"], **(where or {})}
            append(json_text(json.dumps(row, ensure_ascii=False, separators=(",", ":"))).encode())
    return lines


def _remember(fragments: _Fragments, key: tuple[Any, ...], value: bytes) -> None:
    if len(fragments) >= _MAX_FRAGMENTS:
        fragments.clear()
    fragments[key] = value


def _score(findings: list[Finding]) -> dict[str, Any]:
    """The target's hardening score and what it is made of (docs/report-formats.md)."""
    from vmsec.report.score import score_of

    score = score_of(findings)
    return {"value": score.value, "passed_checks": score.passed_checks, "failed_checks": score.failed_checks,
            "undecided_checks": score.undecided_checks, "passed_weight": score.passed_weight,
            "failed_weight": score.failed_weight}


def _dumps(value: Any, depth: int, *, indent: bool = True) -> str:
    """``value`` as JSON text (indented for a position ``depth`` levels deep, or on one line)."""
    try:
        text = orjson.dumps(value, option=_INDENT if indent else 0).decode("utf-8")
    except TypeError:  # lone surrogates from undecodable guest bytes: json_text shows them as text
        text = json.dumps(value, indent=2 if indent else None, ensure_ascii=False,
                          separators=None if indent else (",", ":"))
    text = json_text(text)  # controls, bidi and invisible characters as \u escapes (orjson writes them raw)
    return text.replace("\n", "\n" + "  " * depth) if depth else text


class _JsonStream:
    """A :class:`~vmsec.pipeline.FindingSink` writing the JSON document to ``out`` as it goes."""

    def __init__(self, header: ScanHeader, out: TextIO) -> None:
        self.header = header
        self.out = out
        self.first = True
        self.targets: list[dict[str, Any]] = []
        self.counts = ScanCounts()
        self.fragments: _Fragments = {}

    def begin(self, header: ScanHeader) -> None:
        tool = _dumps({"name": "vmsec", "version": __version__}, 1)
        self.out.write(f'{{\n  "schema_version": "{SCHEMA_VERSION}",\n  "tool": {tool},\n  "findings": [')

    def add(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None) -> None:
        order = batch_order_indices(batch.findings)
        ordered = [batch.findings[i] for i in order]
        fingerprints = batch.fingerprints
        counts = batch.counts  # the same findings, reordered: the same counts
        self.counts.merge(counts)
        t = batch.target
        # An endpoint target also says where it is: address, port and protocol (from its details).
        where = ({k: details.get(k) for k in ("address", "port", "protocol")}
                 if t.kind is TargetKind.ENDPOINT else None)
        self.targets.append({"kind": t.kind.value, "name": t.name, "host": t.host, **(where or {}),
                             "details": dict(details),
                             "summary": {"by_status": counts.by_status,
                                         "failed_by_severity": counts.failed_by_severity,
                                         "score": _score(ordered)}})
        if not ordered:
            return
        # One finding per line: grep-able, and no re-indentation of megabytes of text.
        data = b",\n    ".join(_finding_lines(t, ordered, [fingerprints[i] for i in order], where,
                                                    self.fragments))
        # Controls, bidi and invisible characters a scanned machine chose, as \u escapes (orjson
        # writes them raw): checked once per target on the bytes, escaped only where present.
        write_json_utf8(self.out, (b"\n    " if self.first else b",\n    ") + data)
        self.first = False

    def end(self, result: ScanResult) -> None:
        out = self.out
        out.write("]" if self.first else "\n  ]")
        out.write(',\n  "targets": ' + _dumps(self.targets, 1))
        errors = [{"source": r.source, "what": r.what, "reason": r.reason,
                   "kind": r.kind.value if r.kind else None} for r in result.errors]
        out.write(',\n  "collection_errors": ' + _dumps(errors, 1))
        out.write(',\n  "summary": ' + _dumps({"findings": self.counts.findings,
                                               "by_status": self.counts.by_status,
                                               "failed_by_severity": self.counts.failed_by_severity}, 1))
        scan = {
            "source": result.source,
            "profile": result.profile,
            "started_at": result.started_at.isoformat(),
            "finished_at": result.finished_at.isoformat(),
            "duration_s": round((result.finished_at - result.started_at).total_seconds(), 3),
            "complete": result.complete,
            "checks_run": result.checks_run,
            "scan_id": result.scan_id,
        }
        out.write(',\n  "scan": ' + _dumps(scan, 1) + "\n}\n")


class JsonReporter:
    """``--format json``."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def stream(self, header: ScanHeader, out: TextIO) -> _JsonStream:
        return _JsonStream(header, out)

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
        from vmsec.pipeline import ScanHeader

        header = ScanHeader(source=scan.source, profile=scan.profile, started_at=scan.started_at,
                            checks_run=scan.checks_run, checks=checks)
        sink = self.stream(header, out)
        sink.begin(header)
        for batch in scan.batches():
            sink.add(batch, scan.details.get(batch.target, {}), scan.os_inventories.get(batch.target))
        sink.end(scan)


def build_document(scan: ScanResult) -> dict[str, Any]:
    """The report as a Python object (tests, library callers)."""
    import io

    from vmsec.checkinfo import CheckIndex

    buffer = io.StringIO()
    JsonReporter().render(scan, CheckIndex(()), buffer)
    document: dict[str, Any] = orjson.loads(buffer.getvalue())
    return document
