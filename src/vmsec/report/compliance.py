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
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
from vmsec.report.markdown import KIND_LABEL, md_escape
from vmsec.report.terminal import plain
from vmsec.results import ScanResult

COMPLIANCE_FORMATS: tuple[str, ...] = ("terminal", "json", "markdown")
MAX_SOURCE = 160  # characters of the scan's source description shown in the text views
MAX_EVIDENCE = 20  # findings listed per requirement in the text views (JSON lists all)
_URL = re.compile(r"^https://[A-Za-z0-9./_#?=&%~+:-]+$")
_NOT_PASS = (Status.FAIL, Status.ERROR, Status.UNKNOWN, Status.WAIVED)
_STYLE = {ReqStatus.FAIL: "bold red", ReqStatus.UNKNOWN: "yellow", ReqStatus.WAIVED: "magenta",
          ReqStatus.PASS: "green", ReqStatus.NOT_ASSESSED: "dim"}

F = TypeVar("F", bound=Callable[..., Any])


def compliance_option(func: F) -> F:
    """The click option ``--compliance NAME`` (one of the built-in frameworks), stored as ``compliance``."""
    return click.option("--compliance", "compliance", type=click.Choice(available()), default=None,
                        help="Show the scan as per-requirement status for this compliance framework.")(func)


def compliance_format(report_format: str) -> str:
    """The compliance-view format for a report ``--format`` (terminal, json or markdown)."""
    if report_format not in COMPLIANCE_FORMATS:
        raise ConfigError(f"--compliance supports the formats {', '.join(COMPLIANCE_FORMATS)}, "
                          f"not {report_format!r}")
    return report_format


def render_compliance(scan: ScanResult, checks: CheckIndex, framework_name: str, out: TextIO,
                      fmt: str = "terminal") -> ComplianceResult:
    """Evaluate ``framework_name`` on ``scan`` and write the view to ``out``; returns the result."""
    fmt = compliance_format(fmt)
    result = evaluate(load_framework(framework_name), scan)
    {"terminal": render_terminal, "json": render_json, "markdown": render_markdown}[fmt](
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
    c = result.coverage
    return (f"{c.mapped} of {c.total} requirements have a mapped vmsec check ({c.mapped_ratio:.0%}); "
            f"{c.assessed} of those {c.mapped} were assessed by this scan ({c.assessed_ratio:.0%}).")


def _stale_note(result: ComplianceResult, checks: CheckIndex) -> str | None:
    stale = unknown_checks(result.framework, checks)
    return f"Mapped checks missing from the catalogue: {', '.join(stale)}." if stale else None


# --- terminal -------------------------------------------------------------------------------------

def render_terminal(result: ComplianceResult, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    console = Console(file=out, width=140 if not out.isatty() else None, highlight=False, soft_wrap=False)
    fw = result.framework
    console.print(Text(f"{fw.title} — {fw.version}", style="bold"))
    console.print(Text(plain(f"scan of {_source(scan)} (profile {scan.profile})"), style="dim"))
    table = Table(show_lines=False, header_style="bold")
    table.add_column("Requirement", no_wrap=True)
    table.add_column("Title", ratio=3)
    table.add_column("Verified", justify="center")
    table.add_column("Status", no_wrap=True)
    table.add_column("Evidence", ratio=2)
    for r in result.requirements:
        req = r.requirement
        table.add_row(Text(req.id), Text(req.title), "yes" if req.verified else "no",
                      Text(r.status.value, style=_STYLE[r.status]), Text(_summary(r)))
    console.print(table)
    counts = result.status_counts
    line = Text()
    for status in STATUS_ORDER:
        line.append(f"{counts[status]} {status.value}", style=_STYLE[status])
        line.append("   ")
    console.print(line)
    console.print(_coverage_sentence(result))
    stale = _stale_note(result, checks)
    if stale:
        console.print(Text(stale, style="yellow"))
    for r in result.requirements:
        bad = [f for f in r.findings if f.status in _NOT_PASS]
        if r.status not in (ReqStatus.FAIL, ReqStatus.UNKNOWN, ReqStatus.WAIVED) or not bad:
            continue
        console.print()
        console.print(Text(f"{r.requirement.id}  {r.requirement.title}", style=_STYLE[r.status]))
        for f in bad[:MAX_EVIDENCE]:
            row = Text(plain(f"  {f.status.value:<7} {f.check_id}  {_target(f)}: "))
            row.append(Text(plain(f"{f.subject}: {f.message}")))
            console.print(row)
        if len(bad) > MAX_EVIDENCE:
            console.print(Text(f"  … {len(bad) - MAX_EVIDENCE} more", style="dim"))


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
                     "mapped_ratio": round(c.mapped_ratio, 4), "assessed_ratio": round(c.assessed_ratio, 4)},
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
    json.dump(doc, out, indent=2, ensure_ascii=False)
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
