"""The terminal report's cost against the JSON report's, as a user runs them (issue 10): the libvirt
corpus (tests/data/libvirt-9.0.0/tests/qemuxml2argvdata, 1,070 files) scanned whole-process with

    vmsec scan xml DIR --no-store -q --format json -o /tmp/x.json
    vmsec scan xml DIR --no-store -q --format terminal > /tmp/x.txt

measured in CPU seconds (user + system of the child process), the median of N alternating runs.
Goal: terminal ≤ 1.5 × JSON.

Also the report's own share: rendering a finished scan of the corpus, in-process (best of N).

Run: .venv/bin/python benchmarks/bench_terminal_report.py [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "libvirt-9.0.0" / "tests" / "qemuxml2argvdata"
VMSEC = str(Path(sys.executable).with_name("vmsec"))


def cpu_of(args: list[str], stdout_path: Path | None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one whole `vmsec` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(stdout_path or os.devnull, "w") as out:
        subprocess.run([VMSEC, *args], stdout=out, stderr=subprocess.DEVNULL, check=False,
                       env={**os.environ, "COLUMNS": "80"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def whole_process(runs: int) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {"json": [], "terminal": []}
    with tempfile.TemporaryDirectory() as tmp:
        json_out, text_out = Path(tmp) / "x.json", Path(tmp) / "x.txt"
        base = ["scan", "xml", str(CORPUS), "--no-store", "-q"]
        cpu_of([*base, "--format", "json", "-o", str(json_out)], None)  # warm the page cache
        for _ in range(runs):
            results["json"].append(cpu_of([*base, "--format", "json", "-o", str(json_out)], None))
            results["terminal"].append(cpu_of([*base, "--format", "terminal"], text_out))
        lines = text_out.read_text(encoding="utf-8").count("\n")
        print(f"terminal report: {lines:,} lines, {text_out.stat().st_size / 1e6:.1f} MB; "
              f"JSON report: {json_out.stat().st_size / 1e6:.1f} MB")
    return results


def in_process(runs: int) -> None:
    from vmsec.checkinfo import packaged_index
    from vmsec.checks.catalog import default_catalog
    from vmsec.collectors.xml import collect_xml
    from vmsec.engine import run_checks
    from vmsec.report import ReportOptions, make_reporter

    scan = run_checks(collect_xml([str(CORPUS)]), default_catalog())
    index = packaged_index()
    for fmt in ("json", "terminal"):
        times = []
        for _ in range(runs):
            out = io.StringIO()
            start = time.process_time()
            make_reporter(fmt, ReportOptions(width=80, color=False)).render(scan, index, out)
            times.append(time.process_time() - start)
        print(f"render {fmt:<8} (finished scan, {len(scan.findings):,} findings): "
              f"best {min(times):.3f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}")
    results = whole_process(args.runs)
    medians = {}
    for fmt, samples in results.items():
        cpus = [c for c, _ in samples]
        walls = [w for _, w in samples]
        medians[fmt] = statistics.median(cpus)
        print(f"vmsec scan xml CORPUS --format {fmt:<8}: CPU median {medians[fmt]:.2f} s "
              f"(min {min(cpus):.2f}, max {max(cpus):.2f}); wall median {statistics.median(walls):.2f} s")
    ratio = medians["terminal"] / medians["json"]
    print(f"terminal / json CPU: {ratio:.2f} (goal ≤ 1.5)")
    in_process(args.runs)


if __name__ == "__main__":
    main()
