"""The compliance view of a scan: one row per framework requirement, its status and its evidence.

``render_compliance(scan, checks, framework_name, out, fmt)`` writes it as a rich terminal table, JSON
or Markdown. For the CLI: :func:`compliance_option` is the click option ``--compliance NAME`` and
:func:`compliance_format` maps the report ``--format`` onto the view's formats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

import click

from vmsec import __version__
from vmsec.checkinfo import CheckIndex
from vmsec.compliance.frameworks import (
    STATUS_ORDER,
    ComplianceResult,
    ReqStatus,
    RequirementResult,
    available,
    evaluate,
    load_framework,
    unknown_checks,
)
from vmsec.errors import ConfigError
from vmsec.findings import Finding, Status
from vmsec.report.digest import says
from vmsec.report.markdown import KIND_LABEL, md_escape
from vmsec.report.terminal import plain
from vmsec.report.text import json_text
from vmsec.results import ScanResult

COMPLIANCE_FORMATS: tuple[str, ...] = ("terminal", "json", "markdown", "html")
MAX_SOURCE = 160  # characters of the scan's source description shown in the text views
MAX_EVIDENCE = 20  # findings listed per requirement in the text views (JSON lists all)
_URL = re.compile(r"^https://[A-Za-z0-9./_#?=&%~+:-]+$")
_NOT_PASS = (Status.FAIL, Status.ERROR, Status.UNKNOWN, Status.WAIVED)

F = TypeVar("F", bound=Callable[..., Any])


def compliance_option(func: F) -> F:
    """The click option ``--compliance NAME`` (one of the built-in frameworks), stored as ``compliance``."""
    return click.option("--compliance", "compliance", type=click.Choice(available()), default=None,
                        help="Show the scan as per-requirement status for this compliance framework.")(func)


def compliance_format(report_format: str) -> str:
    """The compliance-view format for a report ``--format`` (terminal, json, markdown or html)."""
    if report_format not in COMPLIANCE_FORMATS:
        raise ConfigError(f"--compliance supports the formats {', '.join(COMPLIANCE_FORMATS)}, "
                          f"not {report_format!r}")
    return report_format


def render_compliance(scan: ScanResult, checks: CheckIndex, framework_name: str, out: TextIO,
                      fmt: str = "terminal") -> ComplianceResult:
    """Evaluate ``framework_name`` on ``scan`` and write the view to ``out``; returns the result."""
    fmt = compliance_format(fmt)
    result = evaluate(load_framework(framework_name), scan)
    {"terminal": render_terminal, "json": render_json, "markdown": render_markdown, "html": render_html}[fmt](
        result, scan, checks, out)
    return result


def _summary(r: RequirementResult) -> str:
    if not r.mapped:
        return "no vmsec check maps to this requirement"
    if not r.findings:
        return "no mapped check ran on this scan"
    counts = {s: 0 for s in Status}
    for f in r.findings:
        counts[f.status] += 1
    return ", ".join(f"{n} {s.value.lower()}" for s, n in counts.items() if n)


def _source(scan: ScanResult) -> str:
    source = scan.source
    return source if len(source) <= MAX_SOURCE else source[:MAX_SOURCE - 1] + "…"


def _md_url(url: str) -> str:
    return f"<{url}>" if _URL.match(url) else md_escape(url)


def _target(f: Finding) -> str:
    return f"{KIND_LABEL.get(f.target.kind, f.target.kind.value)} {f.target.name}"


def _coverage_sentence(result: ComplianceResult) -> str:
    """Coverage against the whole benchmark when its size is known — never "100 %" of a list that
    holds only the items vmsec maps."""
    c = result.coverage
    assessed = f"{c.assessed} of those {c.mapped} were assessed by this scan ({c.assessed_ratio:.0%})."
    if c.benchmark_total:
        ratio = c.benchmark_ratio or 0.0
        return (f"vmsec maps {c.mapped} of the benchmark's {c.benchmark_total} items ({ratio:.0%}); "
                f"the other {c.benchmark_total - c.mapped} are not assessed by vmsec. {assessed}")
    return (f"{c.mapped} of the {c.total} requirements listed here have a mapped vmsec check "
            f"({c.mapped_ratio:.0%}); the framework's total is not recorded, so this is no measure of "
            f"the whole framework. {assessed}")


def coverage_source(result: ComplianceResult) -> str | None:
    """Where the benchmark's item count comes from (shown beside the coverage)."""
    return result.coverage.benchmark_source


def _stale_note(result: ComplianceResult, checks: CheckIndex) -> str | None:
    stale = unknown_checks(result.framework, checks)
    return f"Mapped checks missing from the catalogue: {', '.join(stale)}." if stale else None


# --- terminal -------------------------------------------------------------------------------------

def render_terminal(result: ComplianceResult, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    """One entry per requirement (status, id, title, then what its findings say), at the terminal's
    (or ``$COLUMNS``) width, readable at 80 columns; lines are never padded."""
    from vmsec.report.terminal import terminal_width, wrap

    width = terminal_width(out)
    color = _isatty(out)
    style = _ansi if color else (lambda _s, text: text)
    fw = result.framework
    lines: list[str] = []
    lines += wrap(plain(f"{fw.title} — {fw.version}"), width, style("bold", ""), prefix_len=0)
    lines += wrap(plain(f"scan of {_source(scan)} (profile {scan.profile})"), width)
    lines.append("")
    counts = result.status_counts
    lines.append("   ".join(style(status.value, f"{counts[status]} {status.value}")
                            for status in STATUS_ORDER))
    lines += wrap(_coverage_sentence(result), width)
    if result.coverage.benchmark_source:
        lines += wrap(plain(f"Benchmark size: {result.coverage.benchmark_source}"), width)
    stale = _stale_note(result, checks)
    if stale:
        lines += wrap(stale, width)
    lines += ["", "* the requirement's id and wording were not verified in the source", ""]
    for r in result.requirements:
        req = r.requirement
        mark = "" if req.verified else "*"
        head = f"{r.status.value:<12} "
        lines += wrap(plain(f"{req.id}{mark}  {req.title}"), width, style(r.status.value, head), " " * 13,
                      prefix_len=len(head))
        lines += wrap(plain(_summary(r)), width, " " * 13)
        bad = [f for f in r.findings if f.status in _NOT_PASS]
        if r.status in (ReqStatus.FAIL, ReqStatus.UNKNOWN, ReqStatus.WAIVED):
            for f in bad[:MAX_EVIDENCE]:
                text = f"{f.status.value:<7} {f.check_id}  {_target(f)}: {says(f.subject, f.message)}"
                lines += wrap(plain(text), width, " " * 13 + "- ", " " * 15)
            if len(bad) > MAX_EVIDENCE:
                lines.append(" " * 13 + f"… {len(bad) - MAX_EVIDENCE} more")
    out.write("\n".join(lines) + "\n")


_SGR = {"bold": "1", "fail": "1;31", "unknown": "33", "waived": "35", "pass": "32", "not-assessed": "2"}


def _ansi(style: str, text: str) -> str:
    return f"\x1b[{_SGR[style]}m{text}\x1b[0m" if text else text


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


# --- HTML -----------------------------------------------------------------------------------------

def render_html(result: ComplianceResult, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    """The compliance view as a page from the shared templates (report/templates/compliance.html.j2)."""
    from vmsec.report.html import render_compliance_page

    render_compliance_page(result, scan, checks, out)


# --- JSON -----------------------------------------------------------------------------------------

def build_document(result: ComplianceResult, scan: ScanResult) -> dict[str, Any]:
    fw = result.framework
    c = result.coverage
    return {
        "tool": {"name": "vmsec", "version": __version__},
        "framework": {"name": fw.name, "title": fw.title, "version": fw.version, "url": fw.url,
                      "scope": fw.scope},
        "scan": {"source": scan.source, "profile": scan.profile,
                 "started_at": scan.started_at.isoformat(), "finished_at": scan.finished_at.isoformat()},
        "coverage": {"requirements": c.total, "mapped": c.mapped, "assessed": c.assessed,
                     "mapped_ratio": round(c.mapped_ratio, 4), "assessed_ratio": round(c.assessed_ratio, 4),
                     "benchmark_items": c.benchmark_total, "benchmark_items_source": c.benchmark_source,
                     "benchmark_ratio": (round(c.benchmark_ratio, 4) if c.benchmark_ratio is not None
                                         else None)},
        "status_counts": {s.value: n for s, n in result.status_counts.items()},
        "requirements": [
            {"id": r.requirement.id, "title": r.requirement.title, "source": r.requirement.source,
             "verified": r.requirement.verified, "note": r.requirement.note,
             "checks": list(r.requirement.checks), "checks_run": list(r.checks_run),
             "status": r.status.value,
             "evidence": [{"check_id": f.check_id, "status": f.status.value, "severity": f.severity.value,
                           "target": {"kind": f.target.kind.value, "name": f.target.name,
                                      "host": f.target.host},
                           "subject": f.subject, "message": f.message, "fingerprint": f.fingerprint}
                          for f in r.findings]}
            for r in result.requirements],
    }


def render_json(result: ComplianceResult, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    doc = build_document(result, scan)
    stale = unknown_checks(result.framework, checks)
    if stale:
        doc["unknown_checks"] = stale
    # Subjects and messages come from scanned machines: no control character reaches the file.
    out.write(json_text(json.dumps(doc, indent=2, ensure_ascii=False)))
    out.write("\n")


# --- Markdown -------------------------------------------------------------------------------------

def render_markdown(result: ComplianceResult, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    fw = result.framework
    w = out.write
    w(f"# Compliance: {md_escape(fw.title)}\n\n")
    w(f"- Framework: `{fw.name}`, {md_escape(fw.version)} ({_md_url(fw.url)})\n")
    w(f"- Scope: {md_escape(fw.scope)}\n")
    w(f"- Scan: {md_escape(_source(scan))}, profile {md_escape(scan.profile)}, "
      f"{scan.started_at.isoformat()}\n")
    w(f"- Coverage: {_coverage_sentence(result)}\n")
    if result.coverage.benchmark_source:
        w(f"- Benchmark size: {md_escape(result.coverage.benchmark_source)}\n")
    stale = _stale_note(result, checks)
    if stale:
        w(f"- {md_escape(stale)}\n")
    w("\n| Status | Requirements |\n|---|---:|\n")
    for status, n in result.status_counts.items():
        w(f"| {status.value} | {n} |\n")
    w("\n*Verified*: the requirement's id and wording were read in the source document. "
      "Unverified ids are vmsec's keys or unconfirmed numbers; see docs/compliance.md.\n\n")
    w("## Requirements\n\n| Requirement | Title | Verified | Checks | Status | Evidence |\n"
      "|---|---|---|---|---|---|\n")
    for r in result.requirements:
        req = r.requirement
        mapped = ", ".join(f"`{c}`" for c in req.checks) or "—"
        w(f"| {md_escape(req.id)} | {md_escape(req.title)} | {'yes' if req.verified else 'no'} | {mapped} | "
          f"**{r.status.value}** | {md_escape(_summary(r))} |\n")
    shown = [r for r in result.requirements if any(f.status in _NOT_PASS for f in r.findings)]
    if shown:
        w("\n## Evidence for requirements not passed\n")
    for r in shown:
        req = r.requirement
        w(f"\n### {md_escape(req.id)}: {md_escape(req.title)} ({r.status.value})\n\n")
        if req.note:
            w(f"{md_escape(req.note)}\n\n")
        bad = [f for f in r.findings if f.status in _NOT_PASS]
        for f in bad[:MAX_EVIDENCE]:
            w(f"- **{f.status.value}** `{f.check_id}` {md_escape(_target(f))}, {md_escape(f.subject)}: "
              f"{md_escape(f.message)}\n")
        if len(bad) > MAX_EVIDENCE:
            w(f"- … {len(bad) - MAX_EVIDENCE} more\n")
        passed = sum(1 for f in r.findings if f.status is Status.PASS)
        if passed:
            w(f"- {passed} passed\n")
