"""Debian's own scanner, debsecan, is the oracle: on the same status and the same advisories vmsec
finds exactly the same (CVE, source package) pairs, except the kernel-header false positives."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_same_verdicts_as_debsecan_except_kernel_headers() -> None:
    spec = importlib.util.spec_from_file_location(
        "compare_debsecan", ROOT / "benchmarks" / "compare_debsecan.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.compare()
    assert result["only_ours"] == []
    assert result["only_theirs"] and {src for _, src in result["only_theirs"]} == {"linux"}
    assert len(result["theirs"]) > 200
