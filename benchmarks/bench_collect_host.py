"""Time of ``collect_host_inventory(root)`` in-process (the collection part of ``vmsec scan host``,
whose whole run should stay within 1 s).

Run: .venv/bin/python benchmarks/bench_collect_host.py [--runs 20] [--root /]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from vmsec.collectors.host import collect_host_inventory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--root", default="/")
    args = parser.parse_args()
    inventory = collect_host_inventory(args.root)  # warm the page cache and imports
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        inventory = collect_host_inventory(args.root)
        times.append(time.perf_counter() - start)
    host = inventory.host
    assert host is not None
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    print(f"root: {args.root}  domains: {len(inventory.domains)}  networks: {len(inventory.networks)}  "
          f"packages: {len(host.packages or ())}  failed records: {len(inventory.errors)}")
    print(f"runs: {args.runs}  median {statistics.median(times) * 1000:.1f} ms  "
          f"min {min(times) * 1000:.1f} ms  max {max(times) * 1000:.1f} ms  (goal: whole scan ≤ 1 s)")


if __name__ == "__main__":
    main()
