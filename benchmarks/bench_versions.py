"""Comparator throughput (comparisons/s) for dpkg, rpm and apk on the oracle pairs.

Run: .venv/bin/python benchmarks/bench_versions.py
"""

from __future__ import annotations

import contextlib
import gzip
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vmsec.vulns.versions import InvalidVersion, apk_compare, dpkg_compare, rpm_label_compare

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # datapaths: the in-repo data
from datapaths import VULN_VECTORS as VECTORS


def rows(name: str) -> list[list[str]]:
    text = gzip.decompress((VECTORS / name).read_bytes()).decode()
    return [ln.split("\t") for ln in text.splitlines() if ln and not ln.startswith("#")]


def rate(pairs: list[tuple[str, str]], cmp: Callable[[str, str], int], rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for a, b in pairs:
            with contextlib.suppress(InvalidVersion):
                cmp(a, b)
        best = min(best, time.perf_counter() - start)
    return len(pairs) / best


def main() -> None:
    deb = [(r[0], r[1]) for r in rows("dpkg_generated_oracle.tsv.gz")]
    rpm = [(r[1] + "-" + r[2], r[4] + "-" + r[5]) for r in rows("rpm_generated_oracle.tsv.gz")]
    apk_lines = (VECTORS / "apk_version.tsv").read_text().splitlines()
    apk = [(r[1], r[3]) for r in (ln.split("\t") for ln in apk_lines if ln.startswith("cmp"))]

    def rpm_cmp(a: str, b: str) -> int:
        va, _, ra = a.rpartition("-")
        vb, _, rb = b.rpartition("-")
        return rpm_label_compare(("0", va, ra), ("0", vb, rb))

    print(f"dpkg: {rate(deb, dpkg_compare):,.0f} comparisons/s over {len(deb)} oracle pairs")
    print(f"rpm:  {rate(rpm, rpm_cmp):,.0f} comparisons/s over {len(rpm)} oracle pairs")
    print(f"apk:  {rate(apk, apk_compare):,.0f} comparisons/s over {len(apk)} vector pairs")


if __name__ == "__main__":
    main()
