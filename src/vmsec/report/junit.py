"""JUnit XML: for CI gates. One ``<testsuite>`` per target, one ``<testcase>`` per check × subject.

FAIL → ``<failure>``, ERROR → ``<error>``, UNKNOWN → ``<skipped>`` (the check could not decide),
WAIVED → ``<skipped>`` saying the risk was accepted, PASS → a plain test case. The document is built
with xml.etree, which escapes every attribute and text; characters XML 1.0 cannot carry at all
(control characters a guest may put in a string) are replaced by U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TextIO

from vmsec.checkinfo import CheckIndex
from vmsec.findings import Finding, Status
from vmsec.report import ReportOptions
from vmsec.report.summary import group_by_target
from vmsec.report.text import unsafe_class
from vmsec.results import ScanResult

# Characters XML 1.0 cannot carry, and those it can but no output may (DEL, C1, bidi and invisible
# characters, U+2028/9: the table every format uses); line breaks and tabs are the text's own.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|"
                      + unsafe_class(keep="\t\n\r"))


def clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _details(f: Finding) -> str:
    lines = [f"{f.subject}: {f.message}", f"severity: {f.severity.value}"]
    lines += [f"evidence: {e.source}" + (f" [{e.locator}]" if e.locator else "")
              + (f" = {e.value}" if e.value is not None else "") for e in f.evidence]
    if f.remediation:
        lines.append(f"remediation: {f.remediation}")
    if f.detail:
        lines.append(f.detail)
    return clean("\n".join(lines))


def build_tree(scan: ScanResult) -> ET.Element:
    root = ET.Element("testsuites", name="vmsec", timestamp=scan.started_at.isoformat(timespec="seconds"))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for target, findings in group_by_target(scan.findings, scan.targets):
        name = f"{target.kind.value}:{target.name}" + (f"@{target.host}" if target.host else "")
        suite = ET.SubElement(root, "testsuite", name=clean(name),
                              timestamp=scan.started_at.isoformat(timespec="seconds"))
        counts = {"tests": len(findings), "failures": 0, "errors": 0, "skipped": 0}
        for f in findings:
            case = ET.SubElement(suite, "testcase", classname=clean(f"{f.check_id} {f.title}"),
                                 name=clean(f.subject), time="0")
            message = clean(f"{f.severity.value}: {f.message}")
            if f.status is Status.FAIL:
                counts["failures"] += 1
                el = ET.SubElement(case, "failure", message=message, type=f.severity.value)
                el.text = _details(f)
            elif f.status is Status.ERROR:
                counts["errors"] += 1
                el = ET.SubElement(case, "error", message=message, type="check-crashed")
                el.text = _details(f)
            elif f.status is Status.UNKNOWN:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=clean(f"could not decide: {f.message}"))
            elif f.status is Status.WAIVED:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=clean(f"waived: {f.detail or f.message}"))
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    return root


def render(scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    root = build_tree(scan)
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")


class JunitReporter:
    """``--format junit``."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
        render(scan, checks, out)
