"""No control character from a scanned machine reaches any output channel: every report format, the
CSV cells, and standard error (a hostile qcow2 backing-file name in an error message)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from msgspec import structs
from report_scans import render_text

from components import require
from vmsec.checks.catalog import Catalog
from vmsec.facts.common import CollectionRecord
from vmsec.findings import Evidence, Target, TargetKind
from vmsec.report import FORMATS
from vmsec.results import ScanResult

VMSEC = str(Path(sys.executable).with_name("vmsec"))
HOSTILE = "\x1b[2J\x1b]0;owned\x07\x9b31m\x85\u202eevil\x7f"
# ESC, BEL, DEL, C1 (CSI, NEL) and a bidirectional override: none may appear raw.
RAW = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _hostile(scan: ScanResult) -> ScanResult:
    target = Target(TargetKind.DOMAIN, "vm" + HOSTILE, "hv1")
    findings = tuple(f._replace(subject=HOSTILE + f.subject, message=f.message + HOSTILE,
                                evidence=(*f.evidence, Evidence("/etc/" + HOSTILE, HOSTILE, HOSTILE)),
                                **({"target": target} if f.target.kind is TargetKind.DOMAIN else {}))
                     for f in scan.findings)
    records = (CollectionRecord(source="/img/" + HOSTILE, what=HOSTILE, ok=False, reason=HOSTILE),)
    return structs.replace(scan, source=HOSTILE, profile=HOSTILE, findings=findings,
                               targets=(*scan.targets, target), records=records)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_no_format_writes_a_raw_control_character(fmt: str, sample_scan: ScanResult,
                                                  catalog: Catalog) -> None:
    text = render_text(fmt, _hostile(sample_scan), catalog)
    raw = sorted({f"U+{ord(c):04X}" for c in RAW.findall(text)})
    assert not raw, f"{fmt} writes raw control characters: {raw}"


def test_csv_cells_show_controls_as_escapes(sample_scan: ScanResult, catalog: Catalog) -> None:
    text = render_text("csv", _hostile(sample_scan), catalog)
    assert "\\x1b[2J" in text and "\\x9b31m" in text and "\\u202eevil" in text


def test_a_hostile_backing_file_name_reaches_stderr_inert(tmp_path: Path) -> None:
    """A qcow2 image whose backing file is named with terminal escapes: the error that names it is
    written to standard error with the escapes shown, not obeyed."""
    require(shutil.which("qemu-img"), "qemu-img", "builds the hostile qcow2 image")
    image = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "/nonexistent/" + HOSTILE,
                    "-F", "raw", str(image), "1M"], check=True)
    proc = subprocess.run([VMSEC, "scan", "image", str(image), "--no-store", "-q"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 3, proc.stderr
    assert "nonexistent" in proc.stderr  # the message names the backing file …
    assert not RAW.search(proc.stderr), repr(proc.stderr)  # … without its control characters
    assert "\\x1b[2J" in proc.stderr
    assert not RAW.search(proc.stdout)
