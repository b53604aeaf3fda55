"""Findings store: write time of a 100k-finding scan as a scan writes it (the streaming writer:
executemany on SQLite, COPY on PostgreSQL; goals ≥ 100k and ≥ 50k findings/s), load time, and
``diff`` of two 100k-finding scans (goal: diff <= 1 s), on SQLite and on PostgreSQL.

Run: ``.venv/bin/python benchmarks/bench_store.py [--findings 100000] [--targets 1000]
[--pg-url URL | --no-postgres]``

Without ``--pg-url`` a throw-away PostgreSQL cluster is created in a temporary directory (unix socket
only, run as the ``postgres`` user when started as root) and removed afterwards. The second scan
changes 15 % of statuses, so the diff has real new, fixed and unknown entries.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from vmsec.facts import Inventory
from vmsec.findings import Evidence, Finding, Severity, Status, Target, TargetKind
from vmsec.results import ScanResult
from vmsec.store import open_store

STATUSES = (Status.FAIL, Status.PASS, Status.PASS, Status.PASS, Status.UNKNOWN)
SEVERITIES = tuple(Severity)


def synthetic_scan(n_findings: int, n_targets: int, variant: int) -> ScanResult:
    targets = [Target(TargetKind.DOMAIN, f"vm-{i:05d}", "hv1") for i in range(n_targets)]
    per = n_findings // n_targets
    findings = []
    for ti, target in enumerate(targets):
        for j in range(per):
            k = ti * per + j
            status = STATUSES[k % len(STATUSES)]
            if variant and k % 20 in (3, 5, 9):  # 15 % change: PASS→FAIL, FAIL→PASS, UNKNOWN→FAIL
                status = Status.PASS if status is Status.FAIL else Status.FAIL
            findings.append(Finding(
                check_id=f"VMS-DOM-{j:03d}", title=f"Check {j} holds", status=status,
                severity=SEVERITIES[j % 5], target=target, subject=f"devices/disk[{j % 7}]",
                message=f"disk {j % 7} of {target.name} has cache=unsafe while shared with another VM",
                evidence=(Evidence(f"/etc/libvirt/qemu/{target.name}.xml", f"devices/disk[{j % 7}]/driver",
                                   "unsafe"),),
                tags=("storage", "integrity"), remediation=f"Set cache='none' on disk {j % 7}."))
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    return ScanResult.from_inventory(inventory=Inventory(source="synthetic"), findings=tuple(findings),
                      profile="multi-tenant", started_at=t0, finished_at=t0, checks_run=per,
                      targets=tuple(targets))


@contextmanager
def temporary_postgres() -> Iterator[str]:
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent
    base = Path(tempfile.mkdtemp(prefix="vmsec-bench-pg-"))
    run_dir, data, port = base / "run", base / "data", 30000 + os.getpid() % 20000
    run_dir.mkdir()
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if prefix:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(run_dir, "postgres", "postgres")

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale", "C.UTF-8")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
            f"-k {run_dir} -p {port} -c listen_addresses=''", "start")
        run(str(bindir / "createdb"), "-h", str(run_dir), "-p", str(port), "-U", "postgres", "vmsec")
        yield f"postgresql+psycopg://postgres@/vmsec?host={run_dir}&port={port}"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, check=False, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def stream(url: str, scan: ScanResult) -> int:
    """Write ``scan`` as a scan does: a batch per target to a StoreSink opened by URL (its own driver
    connection; COPY from a writer thread on PostgreSQL). Returns the scan id."""
    from vmsec.store.writer import StoreSink

    return StoreSink.open(url).write(scan)


def bench(label: str, url: str, a: ScanResult, b: ScanResult) -> None:
    open_store(url).close()  # create and migrate first: not part of the figure
    t = time.perf_counter()
    id_a = stream(url, a)
    write_a = time.perf_counter() - t
    t = time.perf_counter()
    id_b = stream(url, b)
    write_b = time.perf_counter() - t
    with open_store(url) as store:
        t = time.perf_counter()
        loaded = store.load(id_a)
        load = time.perf_counter() - t
        assert len(loaded.findings) == len(a.findings)
        diffs = []
        for _ in range(3):
            t = time.perf_counter()
            d = store.diff(id_a, id_b)
            diffs.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.scans(20)
        history = time.perf_counter() - t
    n = len(a.findings)
    rate = n / min(write_a, write_b)
    print(f"{label:<10} write {write_a:6.2f} s / {write_b:6.2f} s ({rate:,.0f} findings/s; "
          f"goal ≥ {'100' if label == 'SQLite' else '50'}k/s)  "
          f"load {load:5.2f} s  diff {min(diffs):5.2f} s (best of 3; goal <= 1 s)  history {history:5.3f} s  "
          f"[{d.count('new')} new, {d.count('fixed')} fixed, {d.count('still_open')} still open, "
          f"{d.count('unknown')} unknown]")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--pg-url", help="an empty PostgreSQL database to use")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    a = synthetic_scan(args.findings, args.targets, 0)
    b = synthetic_scan(args.findings, args.targets, 3)
    print(f"{len(a.findings):,} findings over {args.targets:,} targets per scan; "
          f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        bench("SQLite", f"sqlite:///{tmp}/history.sqlite", a, b)
    if args.no_postgres:
        return
    if args.pg_url:
        bench("PostgreSQL", args.pg_url, a, b)
    else:
        with temporary_postgres() as url:
            bench("PostgreSQL", url, a, b)


if __name__ == "__main__":
    main()
