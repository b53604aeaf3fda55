"""A hostile guest must not inject terminal escape sequences into the terminal report."""

from __future__ import annotations

import io

from msgspec import structs
from report_scans import WEB, render_text

from vmsec.checks.catalog import Catalog
from vmsec.facts.common import CollectionRecord
from vmsec.findings import Finding, Status
from vmsec.results import ScanResult

HOSTILE = "\x1b[2J\x1b]0;owned\x07\x9b31m[bold]x[/bold]\x1b[1A"


def test_terminal_report_has_no_escape_sequences(sample_scan: ScanResult, catalog: Catalog) -> None:
    spec = catalog.by_id["VMS-DOM-020"]
    hostile = Finding(check_id=spec.id, title=spec.title, status=Status.FAIL, severity=spec.severity,
                      target=WEB, subject=HOSTILE, message=HOSTILE, tags=spec.tags,
                      remediation=spec.remediation)
    scan = structs.replace(
        sample_scan, source=HOSTILE, findings=(*sample_scan.findings, hostile),
        records=(CollectionRecord(source=HOSTILE, what=HOSTILE, ok=False, reason=HOSTILE),))
    text = render_text("terminal", scan, catalog)
    assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text
    assert "[bold]x[/bold]" in text  # shown literally, not interpreted as markup


def test_compliance_terminal_has_no_escape_sequences(sample_scan: ScanResult, catalog: Catalog) -> None:
    from vmsec.compliance.frameworks import available, evaluate, load_framework
    from vmsec.report.compliance import render_terminal

    findings = tuple(f._replace(subject=HOSTILE, message=HOSTILE) for f in sample_scan.findings)
    scan = structs.replace(sample_scan, source=HOSTILE, findings=findings)
    for name in available():
        fw = load_framework(name)
        out = io.StringIO()
        render_terminal(evaluate(fw, scan), scan, catalog.index(), out)
        assert "\x1b" not in out.getvalue() and "\x9b" not in out.getvalue()


def test_progress_line_shows_domain_names_literally() -> None:
    from vmsec.cli.progress import Progress

    buf = io.StringIO()
    progress = Progress(buf, live=True, width=200)
    progress.message("domain " + HOSTILE)
    progress._paint(progress.status())
    text = buf.getvalue()
    assert "\x1b]0;owned" not in text and "\x1b[2J" not in text and "\x9b" not in text
    assert "\\x1b]0;owned" in text  # shown, as a visible escape
