"""The service at a million findings (issue 13):

- P5: the finding list API (``GET /api/v1/findings`` with filters and keyset pages) on PostgreSQL with
  50 concurrent clients — goal p95 ≤ 100 ms;
- the dashboard's fleet overview page at 1M findings — goal p95 ≤ 300 ms (PostgreSQL and SQLite);
- ``vmsec audit verify`` over 1M audit entries, as a whole process — goal ≤ 10 s.

Everything runs as a user runs it: ``vmsec serve`` is a separate process (``--workers N`` uvicorn
worker processes; P5 runs once per ``--workers`` value, after ``--warmup`` unmeasured requests) on
loopback, clients speak HTTP to it; ``vmsec audit verify`` is a separate process. The CPU each request
costs the service's processes, PostgreSQL's backends (a cluster made here) and the clients is printed
beside the latencies, with the load average: on a shared machine the latencies say as much about the
other work on it as about vmsec.

Run: ``.venv/bin/python benchmarks/bench_service.py [--findings 1000000] [--requests 3000]
[--clients 50] [--workers 1 2] [--warmup 1000] [--audit 1000000] [--pg-url URL] [--skip-sqlite]``

Without ``--pg-url`` a throw-away PostgreSQL cluster is created (see bench_store.py). ``--no-fill
--pg-url URL --key FILE`` measures a store an earlier run filled (the throw-away cluster is gone then:
give your own).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import stream, temporary_postgres
from vmsec.facts import Inventory
from vmsec.findings import Evidence, Finding, Severity, Status, Target, TargetKind
from vmsec.results import ScanResult

PASSWORD = "correct horse battery staple"
STATUSES = (Status.PASS, Status.PASS, Status.PASS, Status.FAIL, Status.UNKNOWN, Status.PASS, Status.FAIL)
SEVERITIES = tuple(Severity)
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def fleet_scan(n: int, vms: int, per_vm: int) -> ScanResult:
    """Scan ``n`` of a fleet: one host and ``vms`` VMs with ``per_vm`` findings each."""
    host = Target(TargetKind.HOST, f"hv{n % 10:02d}")
    targets = [host] + [Target(TargetKind.DOMAIN, f"vm-{n % 10:02d}-{i:04d}", host.name) for i in range(vms)]
    findings = []
    rnd = random.Random(n)
    for t in targets:
        for j in range(per_vm):
            status = STATUSES[rnd.randrange(len(STATUSES))]
            findings.append(Finding(
                check_id=f"VMS-DOM-{j:03d}", title=f"Check {j} holds", status=status,
                severity=SEVERITIES[(j * 7 + n) % 5], target=t, subject=f"devices/disk[{j % 7}]",
                message=f"disk {j % 7} of {t.name} has cache=unsafe while shared with another VM",
                evidence=(Evidence(f"/etc/libvirt/qemu/{t.name}.xml", f"devices/disk[{j % 7}]", "unsafe"),),
                tags=("storage",), remediation=f"Set cache='none' on disk {j % 7}."))
    started = T0 + timedelta(hours=n)
    return ScanResult.from_inventory(Inventory(source=f"libvirt qemu+ssh://hv{n % 10:02d}/system"),
                                     tuple(findings), profile="multi-tenant", started_at=started,
                                     finished_at=started, checks_run=per_vm, targets=tuple(targets))


def fill(url: str, total: int, per_scan: int = 100_000, per_vm: int = 100) -> None:
    t = time.perf_counter()
    for n in range(total // per_scan):
        stream(url, fleet_scan(n, per_scan // per_vm - 1, per_vm))
    print(f"  stored {total:,} findings in {time.perf_counter() - t:.0f} s", flush=True)
    if url.startswith("postgresql"):
        # What autovacuum does shortly after a bulk load: without statistics the planner guesses.
        from sqlalchemy import text

        from vmsec.store import open_store

        with open_store(url) as store, store.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()


def vmsec(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vmsec.cli.main", *args], input=stdin, text=True,
                          capture_output=True, env=env, timeout=3600, check=True)


class Serve:
    def __init__(self, env: dict[str, str], workers: int = 1) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "vmsec.cli.main", "serve", "--listen",
                                      f"127.0.0.1:{self.port}", "--workers", str(workers)], env=env)
        for _ in range(300):
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise SystemExit("vmsec serve did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def report(label: str, lat: list[float], goal: str, wall: float | None = None) -> None:
    extra = f", {len(lat) / wall:,.0f} req/s" if wall else ""
    print(f"  {label}: n={len(lat)} p50 {statistics.median(lat) * 1000:6.1f} ms  p95 "
          f"{pct(lat, 95) * 1000:6.1f} ms  p99 {pct(lat, 99) * 1000:6.1f} ms  max {max(lat) * 1000:6.1f} ms"
          f"{extra}  (goal {goal})", flush=True)


QUERIES = [
    "",
    "status=FAIL",
    "severity=critical&status=FAIL",
    "severity=high",
    "check=VMS-DOM-042",
    "check=VMS-DOM-0*&status=UNKNOWN",
    "target=vm-03-0123",
    "host=hv05&status=FAIL",
    "since=2026-03-01T05:00:00%2B00:00&until=2026-03-01T07:00:00%2B00:00&status=FAIL",
    "kind=host&severity=medium",
]


def finding_list_load(url: str, token: str, clients: int, requests: int, server_pids: list[int], *,
                      quiet: bool = False, postgres: int | None = None) -> None:
    """``clients`` concurrent clients, each on its own keep-alive connection, each following two keyset
    pages of a random filter; the latency of every request as its client sees it.

    The clients are coroutines on one event loop speaking plain HTTP/1.1 (a request line, the Bearer
    header; the response read by its Content-Length): on this 2-core machine they share the CPU with the
    server and PostgreSQL, so they must cost little — a thread per client with httpx cost 2.1 ms of CPU
    per request, more than the server's whole budget. Their own CPU is printed beside the server's."""
    import asyncio

    host, port = url.removeprefix("http://").rsplit(":", 1)
    lat: list[float] = []
    errors: list[str] = []
    per = requests // clients

    async def client(seed: int) -> None:
        rnd = random.Random(seed)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            done = 0
            while done < per:
                q = rnd.choice(QUERIES)
                cursor = None
                for _page in range(2):
                    path = "/api/v1/findings?" + q + (f"&cursor={cursor}" if cursor else "")
                    t = time.perf_counter()
                    writer.write(f"GET {path} HTTP/1.1\r\nhost: {host}\r\n"
                                 f"authorization: Bearer {token}\r\n\r\n".encode())
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                    body = await reader.readexactly(int(length.group(1)) if length else 0)
                    lat.append(time.perf_counter() - t)
                    done += 1
                    status = int(head[9:12])
                    if status != 200:
                        errors.append(f"{status} {q}: {body[:200]!r}")
                        break
                    cursor = _NEXT.search(body)
                    cursor = cursor.group(1).decode() if cursor else None
                    if cursor is None:
                        break
        finally:
            writer.close()

    async def everyone() -> None:
        await asyncio.gather(*(client(i) for i in range(clients)))

    server_pids = _tree(server_pids)
    server_cpu = sum(_cpu_of(pid) for pid in server_pids)
    pg_cpu = _cpu_of(postgres, children=True) if postgres else 0.0
    own_cpu = time.process_time()
    t = time.perf_counter()
    try:
        import uvloop

        uvloop.run(everyone())
    except ImportError:
        asyncio.run(everyone())
    wall = time.perf_counter() - t
    server_cpu = sum(_cpu_of(pid) for pid in server_pids) - server_cpu
    pg_cpu = (_cpu_of(postgres, children=True) - pg_cpu) if postgres else 0.0
    own_cpu = time.process_time() - own_cpu
    assert not errors, errors[:5]
    if quiet:
        return
    report(f"P5 finding list, {clients} concurrent clients", lat, "p95 ≤ 100 ms", wall)
    print(f"    CPU per request: vmsec serve {server_cpu / len(lat) * 1000:.2f} ms ({len(server_pids)} "
          f"process(es))" + (f", PostgreSQL {pg_cpu / len(lat) * 1000:.2f} ms" if postgres else "")
          + f", the {clients} clients {own_cpu / len(lat) * 1000:.2f} ms; wall {wall:.1f} s", flush=True)


_NEXT = re.compile(rb'"next_cursor":(\d+)')


def _tree(pids: list[int]) -> list[int]:
    """``pids`` and all their descendants (``vmsec serve --workers N`` runs N worker processes)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += [child for child, ppid in parent.items() if ppid == pid]
    return out


def _cpu_of(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of a process (Linux /proc); with ``children``, of its whole tree,
    living (its descendants now) and gone (the reaped children it accounts)."""
    if children:
        live = sum(_cpu_of(p) for p in _tree([pid]))
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return live
        return live + (int(f[13]) + int(f[14])) / os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overview_load(url: str, user: str, requests: int) -> None:
    # The cookies are Secure: a browser sends them to http://localhost, httpx does not — by hand here.
    with httpx.Client(base_url=url, timeout=60) as c:
        page = c.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        login_cookie = page.cookies["__Host-vmsec-login"]
        r = c.post("/login", data={"username": user, "password": PASSWORD, "csrf": csrf.group(1)},
                   headers={"origin": url, "cookie": f"__Host-vmsec-login={login_cookie}"})
        session = r.cookies["__Host-vmsec-session"]
        c.cookies.clear()
        cookie = {"cookie": f"__Host-vmsec-session={session}"}
        assert "Fleet overview" in c.get("/", headers=cookie).text
        lat = []
        for _ in range(requests):
            t = time.perf_counter()
            r = c.get("/", headers=cookie)
            lat.append(time.perf_counter() - t)
            assert r.status_code == 200
    report("fleet overview page (one client)", lat, "p95 ≤ 300 ms")


def audit_fill(url: str, key: Path, n: int) -> None:
    """``n`` valid chained entries, computed here and inserted in bulk (appending them one transaction
    at a time is not what is measured)."""
    from sqlalchemy import insert, update

    from vmsec.service.audit import GENESIS, canonical, checkpoint_mac, entry_mac
    from vmsec.service.keys import ServiceKeys
    from vmsec.store import open_store, schema

    keys = ServiceKeys.load(key)
    store = open_store(url)
    t = time.perf_counter()
    prev = GENESIS
    batch = []
    checkpoints: list[dict[str, object]] = []
    with store.engine.begin() as conn:
        start = conn.execute(schema.audit_head.select()).one().seq
        prev = conn.execute(schema.audit_head.select()).one().hash
        for i in range(start + 1, start + n + 1):
            ts = T0 + timedelta(seconds=i)
            detail = '{"reason":"wrong password"}'
            row = dict(id=i, ts=ts, actor="user:alice", action="login.password", outcome="failure",
                       target="user:alice", group_id=1, remote="192.0.2.1", detail=detail, prev_hash=prev)
            row["hash"] = entry_mac(keys.audit, canonical(i, ts, "user:alice", "login.password", "failure",
                                                          "user:alice", 1, "192.0.2.1", detail, prev))
            prev = row["hash"]
            batch.append(row)
            if i % 1000 == 0:
                checkpoints.append({"entry_id": i, "ts": ts, "hash": prev,
                                    "mac": checkpoint_mac(keys.audit, i, prev)})
            if len(batch) == 20_000:
                conn.execute(insert(schema.audit_log), batch)
                batch = []
        if batch:
            conn.execute(insert(schema.audit_log), batch)
        conn.execute(insert(schema.audit_checkpoints), checkpoints)
        conn.execute(update(schema.audit_head).values(seq=start + n, hash=prev))
    store.close()
    print(f"  wrote {n:,} chained audit entries in {time.perf_counter() - t:.0f} s", flush=True)


def audit_verify(env: dict[str, str], label: str) -> None:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = vmsec("audit", "verify", env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"  vmsec audit verify ({label}): {wall:.2f} s wall, {cpu:.2f} s CPU of the process — "
          f"{r.stdout.strip()} (goal ≤ 10 s)", flush=True)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def postmaster(url: str) -> int | None:
    """The PID of the PostgreSQL server at a unix-socket URL of a cluster bench_store.py made, if any:
    its backends' CPU is printed beside the service's."""
    host = re.search(r"host=([^&]+)", url)
    pidfile = Path(host.group(1)).parent / "data" / "postmaster.pid" if host else None
    try:
        return int(pidfile.read_text().split()[0]) if pidfile else None
    except (OSError, ValueError, IndexError):
        return None


def run(label: str, url: str, args: argparse.Namespace, tmp: Path) -> None:
    print(f"\n{label}: {url.split('?')[0]}", flush=True)
    env = {**os.environ, "VMSEC_STORE": url, "VMSEC_SERVICE_KEY": str(args.key or tmp / f"{label}.key")}
    if not args.no_fill:
        fill(url, args.findings)
        vmsec("user", "add", "viewer", "--role", "viewer", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    token = vmsec("token", "create", "--user", "viewer", "--scope", "read", env=env).stdout.strip()
    for workers in args.workers:
        server = Serve(env, workers)
        try:
            t = time.perf_counter()
            httpx.get(server.url + "/api/v1/hosts", headers={"Authorization": f"Bearer {token}"}, timeout=600)
            print(f"  vmsec serve --workers {workers}; first overview data (per-target counts computed "
                  f"once): {time.perf_counter() - t:.1f} s", flush=True)
            if args.overview:
                overview_load(server.url, "viewer", args.overview)
            if label == "PostgreSQL" or not args.pg_only_p5:
                if args.warmup:  # each worker's connections, statement caches and prepared plans
                    finding_list_load(server.url, token, args.clients, args.warmup, [server.proc.pid],
                                      quiet=True)
                print(f"  ({load()})", flush=True)
                finding_list_load(server.url, token, args.clients, args.requests, [server.proc.pid],
                                  postgres=postmaster(url))
        finally:
            server.stop()
    if args.audit:
        if not args.no_fill:
            audit_fill(url, Path(env["VMSEC_SERVICE_KEY"]), args.audit)
        print(f"  ({load()})", flush=True)
        for _ in range(args.verify_runs):
            audit_verify(env, label)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--findings", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--overview", type=int, default=100)
    parser.add_argument("--audit", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--pg-only-p5", action="store_true", default=True)
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({1, len(os.sched_getaffinity(0))}),
                        help="vmsec serve --workers for each P5 run (default: 1 and the CPU count)")
    parser.add_argument("--warmup", type=int, default=1000, help="unmeasured requests before each P5 run")
    parser.add_argument("--verify-runs", type=int, default=2)
    parser.add_argument("--no-fill", action="store_true",
                        help="measure the store at --pg-url as it is (filled by an earlier run; give --key)")
    parser.add_argument("--key", type=Path, default=None, help="the service key of a --no-fill store")
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="vmsec-bench-service-") as d:
        tmp = Path(d)
        if args.pg_url:
            run("PostgreSQL", args.pg_url, args, tmp)
        else:
            with temporary_postgres() as url:
                run("PostgreSQL", url, args, tmp)
        if not args.skip_sqlite:
            run("SQLite", f"sqlite:///{tmp / 'service.sqlite'}", args, tmp)


if __name__ == "__main__":
    main()
