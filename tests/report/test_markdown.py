"""Markdown for tickets: summary table, per-VM exposure, failures per target; hostile strings inert."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from report_scans import golden_catalog, render_text

from vmsec.checks.catalog import Catalog
from vmsec.report.markdown import md_escape
from vmsec.results import ScanResult


def test_sections_and_summary(sample_scan: ScanResult, catalog: Catalog) -> None:
    text = render_text("markdown", sample_scan, catalog)
    assert text.startswith("# vmsec report: host hv1\n")
    assert "| critical | 4 |\n| high | 6 |\n| medium | 2 |\n| low | 1 |\n| info | 0 |\n" in text
    assert "## Exposure per VM" in text
    assert "| gpu\\-box | critical | 0000:06:12\\.5 is assigned while the kernel IOMMU is off" in text
    assert "## VM web01\n" in text and "## Guest OS web01\\-disk\n" in text
    web = text.split("## VM web01\n")[1].split("\n## ")[0]
    assert "#### FAIL · high · VMS\\-DOM\\-021" in web
    assert "- **Evidence:** /etc/libvirt/qemu/web01\\.xml \\[devices/graphics\\[1\\]\\]" in web
    assert "- **Remediation:** " in web
    assert "#### WAIVED · high · VMS\\-DOM\\-040" in web and "- **Waiver:** waived by ops" in web
    assert "VMS\\-DOM\\-150" not in web  # PASS findings are not listed
    assert ("## Inputs that could not be read\n\n"
            "- /etc/libvirt/qemu\\.conf: qemu\\.conf: permission denied") in text


def test_hostile_strings_cannot_break_tables_or_inject_markup(sample_scan: ScanResult,
                                                              catalog: Catalog) -> None:
    text = render_text("markdown", sample_scan, catalog)
    assert "<script>" not in text and "](http" not in text
    for line in text.splitlines():
        if line.startswith("| "):  # every table row keeps its column count
            cells = line.replace("\\|", "").count("|")
            assert cells in (3, 4), line
    assert "pipe \\| and \\`tick\\` and \\[link\\]\\(http://evil\\.example\\) \\*bold\\* new line" in text


@pytest.mark.parametrize(("raw", "escaped"), [
    ("a|b", "a\\|b"), ("`x`", "\\`x\\`"), ("<b>", "\\<b\\>"), ("line\nbreak", "line break"),
    ("[x](y)", "\\[x\\]\\(y\\)"), ("plain words", "plain words"), ("\x00", "\ufffd")])
def test_md_escape(raw: str, escaped: str) -> None:
    assert md_escape(raw) == escaped


def test_golden(sample_scan: ScanResult, catalog: Catalog, golden_text: Callable[[str, str], None]) -> None:
    golden_text("sample.md", render_text("markdown", sample_scan, golden_catalog(sample_scan, catalog)))
