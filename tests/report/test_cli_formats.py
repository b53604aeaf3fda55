"""Every new format through the real CLI process: ``vmsec scan xml … --format F -o FILE``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from report_scans import CHECKS

from datapaths import SARIF_SCHEMA
from vmsec.report import FORMATS

VMSEC = str(Path(sys.executable).with_name("vmsec"))
FIXTURE = CHECKS / "VMS-DOM-020" / "vnc-any.FAIL.xml"


def test_formats_are_registered() -> None:
    assert {"sarif", "csv", "junit", "markdown", "html"} <= set(FORMATS)


@pytest.mark.parametrize("fmt", ["sarif", "csv", "junit", "markdown", "html"])
def test_cli_writes_the_format(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"report.{fmt}"
    proc = subprocess.run([VMSEC, "scan", "xml", str(FIXTURE), "--format", fmt, "-o", str(out),
                           "--fail-on", "high"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr  # the fixture has a high-severity failure
    text = out.read_text(encoding="utf-8")
    if fmt == "sarif":
        doc = json.loads(text)
        jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))).validate(doc)
        assert "VMS-DOM-020" in {r["ruleId"] for r in doc["runs"][0]["results"]}
    elif fmt == "csv":
        rows = list(csv.DictReader(text.splitlines()))
        assert any(r["check_id"] == "VMS-DOM-020" and r["status"] == "FAIL" for r in rows)
    elif fmt == "junit":
        root = ET.fromstring(text.encode("utf-8"))
        assert int(root.get("failures") or 0) >= 1
    elif fmt == "markdown":
        assert text.startswith("# vmsec report: ") and "VMS\\-DOM\\-020" in text
    else:
        assert text.startswith("<!DOCTYPE html>") and "VMS-DOM-020" in text
