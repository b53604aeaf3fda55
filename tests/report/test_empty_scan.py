"""A scan with nothing in it (no host, no VM, no finding) still renders in every format."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from report_scans import FINISHED, STARTED, render_text

from vmsec.checks.catalog import Catalog
from vmsec.facts import Inventory
from vmsec.report.exposure import exposure
from vmsec.results import ScanResult

EMPTY = ScanResult.from_inventory(inventory=Inventory(source="xml (none)"), findings=(), profile="default",
                   started_at=STARTED, finished_at=FINISHED, checks_run=0)


@pytest.mark.parametrize("fmt", ["sarif", "csv", "junit", "markdown", "html"])
def test_empty_scan_renders(fmt: str, catalog: Catalog) -> None:
    text = render_text(fmt, EMPTY, catalog)
    if fmt == "sarif":
        assert json.loads(text)["runs"][0]["results"] == []
    elif fmt == "csv":
        assert text.count("\r\n") == 1  # the header only
    elif fmt == "junit":
        assert ET.fromstring(text.encode("utf-8")).get("tests") == "0"
    elif fmt == "markdown":
        assert "## Exposure per VM" not in text and "| critical | 0 |" in text
    else:
        assert "No VM was scanned." in text and 'id="total-count">0<' in text
    assert exposure(EMPTY) == []
