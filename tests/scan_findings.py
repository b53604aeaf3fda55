"""One check's findings from a whole `vmsec scan` process, as a user runs it (JSON report, no store)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def scan_findings(kind: str, target: Path, check: str) -> list[dict[str, Any]]:
    """The findings of ``check`` in ``vmsec scan KIND TARGET --check CHECK`` (the report is written
    beside the target)."""
    out = target.parent / f"{target.name}.{check}.json"
    subprocess.run([sys.executable, "-m", "vmsec.cli.main", "scan", kind, str(target), "--check", check,
                    "--no-store", "--format", "json", "-o", str(out), "-q"], check=False, timeout=120)
    return [f for f in json.loads(out.read_text())["findings"] if f["check_id"] == check]
