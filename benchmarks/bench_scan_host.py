"""Wall time of ``vmsec scan host`` on this machine (goal ≤ 1 s), the whole CLI process included.

Run: .venv/bin/python benchmarks/bench_scan_host.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VMSEC = Path(sys.executable).with_name("vmsec")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--root", default="/")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "VMSEC_STORE": f"sqlite:///{tmp}/history.sqlite"}
        base = [str(VMSEC), "scan", "host", "--root", args.root, "--format", "json", "--quiet"]
        for label, cmd in (("stored (the default)", base), ("--no-store", [*base, "--no-store"])):
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False, env=env)  # warm the page cache
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
                                      env=env)
                times.append(time.perf_counter() - start)
                if proc.returncode not in (0, 1, 3):
                    sys.exit(f"vmsec failed: {proc.stderr.decode()}")
            print(f"{label:<22} {args.runs} runs  median {statistics.median(times):.3f} s  "
                  f"min {min(times):.3f} s  max {max(times):.3f} s  (goal ≤ 1 s)   {' '.join(cmd)}")


if __name__ == "__main__":
    main()
