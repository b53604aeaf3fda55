"""CSV: one row per finding, for spreadsheets and ad-hoc filtering.

RFC 4180 through the csv module (CRLF line ends, quoting where needed). Guests control many of the
strings, so a cell that a spreadsheet would read as a formula (it starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) gets a leading apostrophe (the OWASP "CSV injection" advice).
Control characters from scanned machines (ESC, BEL, C1 …; line breaks and tabs stay, quoted) are
shown as visible ``\\xNN`` escapes. Column order is part of the contract: see ``COLUMNS`` and
docs/report-formats.md.
"""

from __future__ import annotations

import csv
from typing import TextIO

from vmsec.checkinfo import CheckIndex
from vmsec.findings import Evidence, Finding
from vmsec.report import ReportOptions
from vmsec.report.summary import sort_findings
from vmsec.report.text import visible_lines
from vmsec.results import ScanResult

COLUMNS = ("target_kind", "target_host", "target", "check_id", "title", "status", "severity", "subject",
           "message", "evidence", "remediation", "tags", "vulnerability_id", "fingerprint")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """Make ``value`` inert: control characters (ESC, BEL, C1 …, not line breaks or tabs) become visible
    escapes, and
    formulas become text in spreadsheet software."""
    value = visible_lines(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def _evidence(items: tuple[Evidence, ...]) -> str:
    parts = []
    for e in items:
        text = e.source + (f" [{e.locator}]" if e.locator else "")
        if e.value is not None:
            text += f" = {e.value}"
        parts.append(text)
    return "; ".join(parts)


def row(f: Finding) -> list[str]:
    vuln_id = str(f.vulnerability.get("id", "")) if f.vulnerability is not None else ""
    cells = [f.target.kind.value, f.target.host or "", f.target.name, f.check_id, f.title, f.status.value,
             f.severity.value, f.subject, f.message, _evidence(f.evidence), f.remediation,
             " ".join(str(t) for t in f.tags), vuln_id, f.fingerprint]
    return [neutralise(c) for c in cells]


def render(scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    writer = csv.writer(out, dialect="excel", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for f in sort_findings(scan.findings):
        writer.writerow(row(f))


class CsvReporter:
    """``--format csv``."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
        render(scan, checks, out)
