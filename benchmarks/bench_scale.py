"""Issue 8: 100,000 domains in one scan — it completes, and memory grows sub-linearly.

Run: ``.venv/bin/python benchmarks/bench_scale.py [--sizes 10000 100000] [--workdir DIR]``

For each size N, N domain XML files are made from libvirt's own corpus (each file copied with a
unique ``<name>``, in one directory), then one whole ``vmsec scan xml DIR --format json -o FILE``
process runs with the default SQLite store (a fresh one), as a user would run it. Printed per size:
wall and CPU seconds, peak RSS of the process, findings stored, report size — and the RSS ratio
between sizes next to the size ratio (sub-linear: the first is smaller).

Findings are streamed: the engine hands each domain's findings to the store writer and the JSON
report as they are produced and keeps none. What does grow with N is the collected facts (every
domain is kept for the inventory-wide checks: shared disks, shared labels, networks).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # datapaths: the in-repo data
from datapaths import LIBVIRT_CORPUS

VMSEC = str(Path(sys.executable).with_name("vmsec"))
_NAME = re.compile(rb"<name>[^<]*</name>")


def make_domains(target: Path, n: int) -> None:
    sources = [p.read_bytes() for p in sorted((LIBVIRT_CORPUS / "qemuxml2argvdata").glob("*.xml"))]
    sources = [s for s in sources if b"<domain" in s and _NAME.search(s)]
    target.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        data = _NAME.sub(f"<name>vm{i:06d}</name>".encode(), sources[i % len(sources)], count=1)
        (target / f"vm{i:06d}.xml").write_bytes(data)


def run(size: int, work: Path) -> dict[str, float]:
    domains = work / f"domains-{size}"
    made = time.perf_counter()
    make_domains(domains, size)
    made = time.perf_counter() - made
    store = work / f"store-{size}.sqlite"
    out = work / f"report-{size}.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["VMSEC_STORE"] = f"sqlite:///{store}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # A child's peak RSS: GNU time's %M, so that earlier (smaller) runs do not mask it.
    command = ["/usr/bin/time", "-f", "%M", VMSEC, "scan", "xml", str(domains), "--format", "json",
               "-o", str(out), "-q"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr[-2000:]}")
    peak_kib = int(proc.stderr.strip().splitlines()[-1])
    with out.open("rb") as fh:
        fh.seek(-4096, os.SEEK_END)
        tail = fh.read().decode(errors="replace")
    findings = int(re.findall(r'"findings":\s*(\d+)', tail)[-1])
    stored = sqlite3.connect(store).execute("SELECT count(*) FROM findings").fetchone()[0]
    report = {"domains": size, "wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime)
              + (after.ru_stime - before.ru_stime), "peak_rss_mib": peak_kib / 1024, "findings": findings,
              "stored": stored, "report_mib": out.stat().st_size / 2**20, "generate_s": made}
    for path in (out, store):
        path.unlink()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (needs ~5 GB at 100k)")
    args = parser.parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="vmsec-scale-") as tmp:
        results = [run(size, Path(tmp)) for size in args.sizes]
    for r in results:
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}))
    for a, b in itertools.pairwise(results):
        print(f"{a['domains']:,} → {b['domains']:,} domains (×{b['domains'] / a['domains']:.0f}): "
              f"peak RSS ×{b['peak_rss_mib'] / a['peak_rss_mib']:.2f}, CPU ×{b['cpu_s'] / a['cpu_s']:.1f}")
    ok = all(r["stored"] == r["findings"] for r in results)
    print("every finding stored and reported" if ok else "MISMATCH between stored and reported findings")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
