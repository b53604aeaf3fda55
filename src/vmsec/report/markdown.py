"""Markdown, for tickets: a severity summary, the per-VM exposure, then each target's failures.

Every string that came from a scanned system is escaped (:func:`md_escape`): Markdown punctuation,
pipes and backticks are backslash-escaped and line breaks flattened, so a hostile guest cannot break
a table, open a code span, inject a link or HTML into the ticket; control, bidi and invisible
characters (:func:`vmsec.report.text.unsafe_pattern`) become U+FFFD.
"""

from __future__ import annotations

import re
from typing import TextIO

from vmsec.checkinfo import CheckIndex
from vmsec.findings import Finding, Severity, Status, TargetKind
from vmsec.report import ReportOptions
from vmsec.report.exposure import exposure
from vmsec.report.summary import failed_severity_counts, group_by_target, status_counts
from vmsec.report.text import unsafe_pattern
from vmsec.results import ScanResult

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~&])")
_BREAK = re.compile(r"[\r\n\t\x0b\x0c\u2028\u2029]+")
KIND_LABEL = {TargetKind.HOST: "Host", TargetKind.DOMAIN: "VM", TargetKind.GUEST: "Guest OS",
              TargetKind.NETWORK: "Network", TargetKind.ENDPOINT: "Endpoint"}
SHOWN = (Status.FAIL, Status.ERROR, Status.WAIVED)


def md_escape(text: str) -> str:
    """``text`` as literal inline Markdown: one line, no markup, safe in a table cell."""
    # Controls, bidi and invisible characters, lone surrogates (a file name's undecodable bytes: they
    # would make the file unwritable) — the table every format uses.
    text = unsafe_pattern().sub("\ufffd", _BREAK.sub(" ", text))
    return _SPECIAL.sub(r"\\\1", text)


def _finding(f: Finding, out: TextIO) -> None:
    out.write(f"#### {f.status.value} · {f.severity.value} · {md_escape(f.check_id)} — "
              f"{md_escape(f.title)}\n\n")
    out.write(f"- **Subject:** {md_escape(f.subject)}\n")
    out.write(f"- **Observed:** {md_escape(f.message)}\n")
    for e in f.evidence[:10]:
        text = e.source + (f" [{e.locator}]" if e.locator else "") + (
            f" = {e.value}" if e.value is not None else "")
        out.write(f"- **Evidence:** {md_escape(text)}\n")
    if len(f.evidence) > 10:
        out.write(f"- … {len(f.evidence) - 10} more pieces of evidence\n")
    if f.remediation:
        out.write(f"- **Remediation:** {md_escape(f.remediation)}\n")
    if f.status is Status.WAIVED and f.detail:
        out.write(f"- **Waiver:** {md_escape(f.detail)}\n")
    out.write("\n")


def render(scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    findings = list(scan.findings)
    out.write(f"# vmsec report: {md_escape(scan.source or 'scan')}\n\n")
    out.write(f"Profile **{md_escape(scan.profile)}**, started {scan.started_at.isoformat()}, "
              f"{scan.checks_run} checks"
              + ("" if scan.complete else ", **scan incomplete**") + ".\n\n")
    out.write("## Summary\n\n| Severity | Failed |\n|---|---:|\n")
    for sev_name, n in failed_severity_counts(findings).items():
        out.write(f"| {sev_name} | {n} |\n")
    counts = status_counts(findings)
    out.write("\n" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".\n\n")
    views = exposure(scan)
    if views:
        out.write("## Exposure per VM\n\n| VM | Worst | Why |\n|---|---|---|\n")
        for v in views:
            worst = v.worst.value if v.worst else "none"
            out.write(f"| {md_escape(v.domain)} | {worst} | {md_escape(v.headline(5))} |\n")
        out.write("\n")
    for target, group in group_by_target(findings, scan.targets):
        shown = [f for f in group if f.status in SHOWN]
        sev = failed_severity_counts(group)
        tally = ", ".join(f"{sev[s.value]} {s.value}" for s in Severity if sev[s.value]) or "no failures"
        c = status_counts(group)
        out.write(f"## {KIND_LABEL.get(target.kind, target.kind.value)} {md_escape(target.name)}\n\n")
        out.write(f"{tally}; {c['PASS']} passed, {c['UNKNOWN']} unknown, {c['ERROR']} errors, "
                  f"{c['WAIVED']} waived.\n\n")
        for f in shown:
            _finding(f, out)
    if scan.errors:
        out.write("## Inputs that could not be read\n\n")
        for rec in scan.errors[:200]:
            reason = rec.reason or "unknown reason"
            out.write(f"- {md_escape(rec.source)}: {md_escape(rec.what)}: {md_escape(reason)}\n")
        out.write("\n")


class MarkdownReporter:
    """``--format markdown``."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
        render(scan, checks, out)
