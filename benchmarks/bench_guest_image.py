"""Full offline audit of the Debian 12 qcow2 test image: open the image, collect every guest fact
and run every check of the default catalogue (goal: wall time ≤ 3 s, peak RSS ≤ 300 MB).

Each run is a fresh Python process, so imports and dissect's plugin loading are counted (as in a CLI
run). Wall time is measured inside the process from before the first vmsec import to the end of
``run_checks``; peak RSS is the process's ``ru_maxrss``.

Run: .venv/bin/python benchmarks/bench_guest_image.py [--runs 5] [--image PATH]
(without --image it builds or reuses the cached test images: tests/images/build_images.sh)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
start = time.perf_counter()
from vmsec.checks.catalog import default_catalog
from vmsec.collectors.image import collect_images
from vmsec.engine import run_checks
imported = time.perf_counter()
inventory = collect_images([sys.argv[1]])
collected = time.perf_counter()
result = run_checks(inventory, default_catalog())
done = time.perf_counter()
guest = inventory.guests[0]
print(json.dumps({
    "import_s": imported - start, "collect_s": collected - imported, "checks_s": done - collected,
    "total_s": done - start, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "findings": len(result.findings), "os": guest.os.pretty_name if guest.os else None,
    "packages": len(guest.packages or ()),
}))
"""


def _image(path: str | None) -> str:
    if path:
        return path
    script = Path(__file__).resolve().parents[1] / "tests" / "images" / "build_images.sh"
    out = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True)
    return str(Path(out.stdout.strip().splitlines()[-1]) / "disk.qcow2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image")
    args = parser.parse_args()
    image = _image(args.image)
    runs = []
    for _ in range(args.runs + 1):  # the first run warms the page cache and is not counted
        proc = subprocess.run([sys.executable, "-c", CHILD, image], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            sys.exit(f"audit failed: {proc.stderr[-2000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    runs = runs[1:]
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    print(f"image: {image} ({runs[0]['os']}, {runs[0]['packages']} packages, "
          f"{runs[0]['findings']} findings)")
    for key, label in (("import_s", "imports"), ("collect_s", "open + facts"),
                       ("checks_s", "checks"), ("total_s", "total")):
        values = [r[key] for r in runs]
        print(f"{label:>13}: median {statistics.median(values):.3f} s  min {min(values):.3f} s  "
              f"max {max(values):.3f} s")
    rss = [r["rss_mb"] for r in runs]
    print(f"runs: {args.runs}  total wall median {statistics.median(r['total_s'] for r in runs):.3f} s "
          f"(goal ≤ 3 s)  peak RSS max {max(rss):.0f} MB (goal ≤ 300 MB)")


if __name__ == "__main__":
    main()
