"""The JSON report: vmsec's machine-readable contract (schema in docs/json-report.schema.json).

Stable: fields are added, never renamed or removed, within a ``schema_version`` major.

The document is written as the scan runs (:meth:`JsonReporter.stream`): findings first, one target
after another, then what is only known at the end (targets with their counts, collection errors,
the summary and the scan's times). Rendering a finished scan replays the same stream, so both give
the same bytes. Serialisation is orjson's (C): the pure-Python ``json`` encoder was three quarters
of a large scan's time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from vmsec import __version__
from vmsec.findings import Finding
from vmsec.report import ReportOptions
from vmsec.report.summary import batch_order
from vmsec.report.text import json_text
from vmsec.results import OsInventory, ScanCounts, ScanResult, TargetBatch

if TYPE_CHECKING:
    from vmsec.checkinfo import CheckIndex
    from vmsec.pipeline import ScanHeader

SCHEMA_VERSION = "1.0"
_INDENT = orjson.OPT_INDENT_2


def finding_dict(f: Finding) -> dict[str, Any]:
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


def _dumps(value: Any, depth: int) -> str:
    """``value`` as indented JSON text for a position ``depth`` levels deep in the document."""
    try:
        text = orjson.dumps(value, option=_INDENT).decode("utf-8")
    except TypeError:  # lone surrogates from undecodable guest bytes: escaped, never fatal
        import json

        text = json.dumps(value, indent=2, ensure_ascii=True)
    text = json_text(text)  # DEL/C1 controls from scanned machines as \u escapes (orjson writes them raw)
    return text.replace("\n", "\n" + "  " * depth) if depth else text


class _JsonStream:
    """A :class:`~vmsec.pipeline.FindingSink` writing the JSON document to ``out`` as it goes."""

    def __init__(self, header: ScanHeader, out: TextIO) -> None:
        self.header = header
        self.out = out
        self.first = True
        self.targets: list[dict[str, Any]] = []
        self.counts = ScanCounts()

    def begin(self, header: ScanHeader) -> None:
        tool = _dumps({"name": "vmsec", "version": __version__}, 1)
        self.out.write(f'{{\n  "schema_version": "{SCHEMA_VERSION}",\n  "tool": {tool},\n  "findings": [')

    def add(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None) -> None:
        ordered = batch_order(batch.findings)
        counts = ScanCounts.of(ordered)
        self.counts.add(ordered)
        t = batch.target
        self.targets.append({"kind": t.kind.value, "name": t.name, "host": t.host, "details": dict(details),
                             "summary": {"by_status": counts.by_status,
                                         "failed_by_severity": counts.failed_by_severity}})
        if not ordered:
            return
        text = _dumps([finding_dict(f) for f in ordered], 1)
        # "[\n    {...},\n    {...}\n  ]" → the items, joined to what was written before.
        body = text[1:-1].rstrip()
        self.out.write(("" if self.first else ",") + body)
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
