"""Issue 14's fleet figures: a 100-hypervisor × 50-domain fleet (5,000 domains) scanned by Celery
workers, the speed-up from 1 to 2 to 4 workers, ingestion into PostgreSQL, and a worker killed mid-run.

Run: ``.venv/bin/python benchmarks/bench_fleet.py [--hypervisors 100] [--domains 50]
[--workers 1,2,4] [--no-kill] [--no-ingest]``

Everything is real and started here: a redis-server on a free port, a throw-away PostgreSQL cluster
(tests/pgcluster.py), ``vmsec worker`` processes (one task at a time each), and the fleet: half the
hypervisors are directories of domain XML, half libvirt test-driver node files (``test:///PATH``),
each with ``--domains`` domains (tests/fleetdata.py). Each figure is the wall time of the whole
``vmsec fleet scan INVENTORY --broker URL --store URL --format json -o FILE`` process — sending the
tasks, waiting for the workers, loading the run's scans back and rendering the combined report.

- **workers**: for each count in ``--workers``, a fresh database and that many workers;
- **ingestion**: one 5,000-domain scan (the fleet's domains in one XML directory) streamed into
  PostgreSQL through the store sink, timed from the first ``begin`` to the final ``end``;
- **kill**: two workers, one killed with SIGKILL while it scans; targets lost and duplicate findings
  are counted from the store (both must be 0).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))  # fleetdata, pgcluster: the in-repo data and the test PostgreSQL
from fleetdata import write_test_node, write_xml_hypervisor  # noqa: E402
from pgcluster import PgCluster, _pg_bin  # noqa: E402

VMSEC = str(Path(sys.executable).with_name("vmsec"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(base)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import socket

    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def build_fleet(base: Path, hypervisors: int, domains: int) -> Path:
    lines = ["defaults: {hypervisor_limit: 4}", "targets:"]
    for n in range(hypervisors):
        name = f"hv{n:03d}"
        if n % 2 == 0:
            write_xml_hypervisor(base / name, domains)
            lines.append(f"  - {{kind: xml, path: {name}, hypervisor: {name}}}")
        else:
            uri = write_test_node(base / name / "node.xml", domains)
            lines.append(f"  - {{kind: libvirt, uri: \"{uri}\", hypervisor: {name}}}")
    inventory = base / "inventory.yaml"
    inventory.write_text("\n".join(lines) + "\n")
    return inventory


def start_workers(n: int, broker: str, store: str, logs: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        log = logs / f"worker{i}.log"
        procs.append(subprocess.Popen([VMSEC, "worker", "--broker", broker, "--store", store, "-n",
                                       f"bench{i}@%h", "--loglevel", "WARNING", "--task-timeout", "30",
                                       # A killed worker's task waits this long before it runs again.
                                       "--visibility-timeout", "40"],
                                      stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                      env={**os.environ, "C_FORCE_ROOT": "1"}))
    # Ready when every worker answers a ping through the broker.
    from celery import Celery

    app = Celery(broker=broker)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5) or []
        if len(replies) >= n:
            break
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def fleet_scan(inventory: Path, broker: str, store: str, out: Path, no_wait: bool = False
               ) -> tuple[float, subprocess.CompletedProcess[str]]:
    began = time.perf_counter()
    args = [VMSEC, "fleet", "scan", str(inventory), "--broker", broker, "--store", store, "-q"]
    args += ["--no-wait"] if no_wait else ["--format", "json", "-o", str(out)]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    return time.perf_counter() - began, proc


def count(store: str, run_id: int) -> tuple[int, int, int, int]:
    """(targets done, targets not done, findings, duplicate (target, fingerprint) findings)."""
    from sqlalchemy import func, select

    from vmsec.store import open_store, schema

    frt, f = schema.fleet_run_targets, schema.findings
    with open_store(store) as s, s.transaction("count") as conn:
        mine = frt.c.run_id == run_id
        done = conn.execute(select(func.count()).where(mine, frt.c.state == "done")).scalar_one()
        other = conn.execute(select(func.count()).where(mine, frt.c.state != "done")).scalar_one()
        scans = select(frt.c.scan_id).where(mine).scalar_subquery()
        findings = conn.execute(select(func.count()).select_from(f).where(f.c.scan_id.in_(scans))
                                ).scalar_one()
        dupes = conn.execute(select(func.count()).select_from(
            select(f.c.target_id, f.c.fingerprint).where(f.c.scan_id.in_(scans))
            .group_by(f.c.target_id, f.c.fingerprint).having(func.count() > 1).subquery())).scalar_one()
    return int(done), int(other), int(findings), int(dupes)


def ingest(pg: PgCluster, base: Path, domains: int) -> None:
    from vmsec.pipeline import ScanOptions, scan
    from vmsec.specs import XmlSpec
    from vmsec.store import open_store
    from vmsec.store.writer import StoreSink

    directory = write_xml_hypervisor(base / "ingest", domains)
    result = scan([XmlSpec(paths=(str(directory),))], ScanOptions())
    url = pg.new_database()
    with open_store(url) as store:
        from vmsec.checkinfo import packaged_index
        from vmsec.pipeline import ScanHeader

        sink = StoreSink.into(store, background=True)
        header = ScanHeader(source="bench", profile="multi-tenant", started_at=result.started_at,
                            checks_run=result.checks_run, checks=packaged_index(),
                            targets_expected=len(result.targets))
        began = time.perf_counter()
        sink.begin(header)
        for batch in result.batches():
            sink.add(batch, result.details.get(batch.target, {}), None)
        sink.end(result)
        elapsed = time.perf_counter() - began
        sink.close()
    n = len(result.findings)
    print(f"ingestion into PostgreSQL: {n} findings of {domains} domains in {elapsed:.2f} s = "
          f"{n / elapsed:,.0f} findings/s (goal >= 20,000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hypervisors", type=int, default=100)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--no-kill", action="store_true")
    parser.add_argument("--no-ingest", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    base = Path(tempfile.mkdtemp(prefix="vmsec-bench-fleet-"))
    pg_base = Path(tempfile.mkdtemp(prefix="vmsec-bench-pg-"))
    pg = PgCluster(pg_base, _pg_bin())
    redis, broker = start_redis(base)
    try:
        pg.start()
        inventory = build_fleet(base / "fleet", args.hypervisors, args.domains)
        total = args.hypervisors * args.domains
        print(f"fleet: {args.hypervisors} hypervisors x {args.domains} domains = {total} domains "
              "(half XML directories, half test-driver URIs)")
        times: dict[int, float] = {}
        for n in [int(x) for x in args.workers.split(",")]:
            store = pg.new_database()
            from vmsec.store import open_store

            open_store(store).close()  # create the schema before the clock starts
            workers = start_workers(n, broker, store, base)
            try:
                elapsed, proc = fleet_scan(inventory, broker, store, base / f"report-{n}.json")
            finally:
                stop(workers)
            done, other, findings, dupes = count(store, 1)
            times[n] = elapsed
            with open_store(store) as s:
                from vmsec.fleet.runs import run_status

                run = run_status(s, 1).run
            scanned = (run.finished_at - run.created_at).total_seconds() if run.finished_at else float("nan")
            print(f"{n} worker{'s' if n > 1 else ''}: {elapsed:6.1f} s wall (exit {proc.returncode}), "
                  f"of which the workers' scans {scanned:.1f} s and loading + rendering the report the rest; "
                  f"{done} targets done, {other} not; {findings} findings, {dupes} duplicates")
        if 1 in times:
            print("speed-up (whole command): " + ", ".join(f"{n} workers x{times[1] / t:.2f}"
                                                           for n, t in times.items() if n > 1))
        if not args.no_ingest:
            ingest(pg, base, args.hypervisors * args.domains)
        if not args.no_kill:
            store = pg.new_database()
            from vmsec.store import open_store

            open_store(store).close()
            workers = start_workers(2, broker, store, base)
            try:
                _t, proc = fleet_scan(inventory, broker, store, base / "kill.json", no_wait=True)
                run_id = int(proc.stdout.strip())
                victim = workers[0]
                from vmsec.fleet.runs import run_status

                while True:  # kill the victim while it is scanning a target
                    with open_store(store) as s:
                        busy = [t for t in run_status(s, run_id).targets
                                if t.state == "running" and (t.worker or "").endswith(f":{victim.pid}")]
                    if busy:
                        break
                    time.sleep(0.05)
                os.kill(victim.pid, signal.SIGKILL)
                killed_at = time.perf_counter()

                while True:
                    with open_store(store) as s:
                        status = run_status(s, run_id)
                    if status.finished:
                        break
                    time.sleep(0.5)
                after = time.perf_counter() - killed_at
            finally:
                stop(workers)
            done, other, findings, dupes = count(store, run_id)
            lost_attempts = sum(1 for t in status.targets if t.attempts > 1)
            print(f"worker killed mid-run (while scanning {busy[0].key}): {done} targets done, {other} lost; "
                  f"{findings} findings, {dupes} duplicates; {lost_attempts} target(s) ran again; "
                  f"run finished {after:.1f} s after the kill (visibility timeout 40 s)")
    finally:
        redis.terminate()
        redis.wait(10)
        with contextlib.suppress(BaseException):  # best effort (pgcluster reports through pytest.fail)
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(pg_base, ignore_errors=True)


if __name__ == "__main__":
    main()
