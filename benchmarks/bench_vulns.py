"""Vulnerability matching figures (issue 4):

- warm match of the 809-package Debian 12 status against the Debian data (goal ≤ 20 ms);
- cold: a new process that starts, opens the DB and matches (goal ≤ 0.5 s), and the whole
  `vmsec scan host --root … --check VMS-VULN-*` CLI for comparison;
- scale: a synthetic full-size Debian tracker feed (~45k records): import time and DB size.

Run: .venv/bin/python benchmarks/bench_vulns.py
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vmsec.facts import OsRelease
from vmsec.parsers.dpkg_status import parse_dpkg_status
from vmsec.vulns.db import import_feeds, open_db
from vmsec.vulns.matcher import match_packages

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # datapaths: the in-repo data
from datapaths import VULN as DATA

STATUS = DATA / "installed" / "debian12-dpkg-status.trimmed"
VMSEC = str(Path(sys.executable).with_name("vmsec"))


def synthetic_tracker(records: int, packages: list[str]) -> bytes:
    """A tracker JSON shaped like the real one: {source: {CVE: {releases: {...}}}}, real source names."""
    rng = random.Random(42)
    doc: dict[str, dict[str, object]] = {}
    for i in range(records):
        pkg = rng.choice(packages)
        status = rng.choice(["resolved", "resolved", "open", "open", "undetermined"])
        release: dict[str, object] = {
            "status": status,
            "urgency": rng.choice(["low", "medium", "unimportant", "not yet assigned"]),
            "repositories": {"bookworm": "1.0-1"},
        }
        if status == "resolved":
            release["fixed_version"] = rng.choice(["0", f"{rng.randint(0, 9)}.{rng.randint(0, 20)}-1"])
        elif rng.random() < 0.3:
            release["nodsa"] = "Minor issue"
        doc.setdefault(pkg, {})[f"CVE-{2000 + i % 26}-{100000 + i}"] = {
            "description": "synthetic record for the scale benchmark",
            "releases": {"bookworm": release, "trixie": dict(release)},
        }
    return json.dumps(doc).encode()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="vmsec-bench-vulns-"))
    db_file = work / "v.sqlite"
    feeds = [
        DATA / "osv" / "Debian-subset-all.zip",
        DATA / "debian-tracker" / "bookworm_tracker_excerpt_RECONSTRUCTED.json",
        DATA / "kev" / "known_exploited_vulnerabilities.json.gz",
    ]
    import_feeds([(str(f), f.read_bytes()) for f in feeds], db_file)
    packages = parse_dpkg_status(STATUS.read_text(), str(STATUS))
    db = open_db(db_file)
    assert db is not None
    debian12 = OsRelease(id="debian", version_id="12")
    match_packages(db, debian12, packages)  # warm caches
    warm = []
    for _ in range(30):
        start = time.perf_counter()
        report = match_packages(db, debian12, packages)
        warm.append(time.perf_counter() - start)

    root = work / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    shutil.copy(STATUS, root / "var" / "lib" / "dpkg" / "status")
    cmd = [
        VMSEC,
        "scan",
        "host",
        "--root",
        str(root),
        "--db",
        str(db_file),
        "--check",
        "VMS-VULN-*",
        "--format",
        "json",
        "--quiet",
        "--no-store",
    ]
    cold = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
        cold.append(time.perf_counter() - start)

    # The narrow figure the goal names: a new process that starts, opens the DB and matches.
    script = (
        "import sys; from vmsec.vulns.db import open_db; from vmsec.vulns.matcher import match_packages; "
        "from vmsec.parsers.dpkg_status import parse_dpkg_status; from vmsec.facts import OsRelease; "
        "db = open_db(sys.argv[1]); pk = parse_dpkg_status(open(sys.argv[2]).read(), 's'); "
        "print(len(match_packages(db, OsRelease(id='debian', version_id='12'), pk).matches))"
    )
    narrow = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", script, str(db_file), str(STATUS)], stdout=subprocess.DEVNULL, check=True
        )
        narrow.append(time.perf_counter() - start)

    names = sorted({p.source or p.name for p in packages})
    big = synthetic_tracker(45_000, names)
    big_db = work / "big.sqlite"
    start = time.perf_counter()
    info = import_feeds([("debian-tracker.json", big)], big_db)
    import_s = time.perf_counter() - start
    big_open = open_db(big_db)
    assert big_open is not None
    start = time.perf_counter()
    big_report = match_packages(big_open, debian12, packages)
    big_match = time.perf_counter() - start

    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print(
        f"warm match, {len(packages)} packages, {len(report.matches)} findings: median "
        f"{statistics.median(warm) * 1000:.1f} ms, min {min(warm) * 1000:.1f} ms (goal <= 20 ms)"
    )
    print(
        f"cold process (start + DB open + match): median {statistics.median(narrow):.3f} s, "
        f"min {min(narrow):.3f} s (goal <= 0.5 s)"
    )
    print(
        f"cold CLI (start + DB open + match + checks): median {statistics.median(cold):.3f} s, "
        f"min {min(cold):.3f} s (goal <= 0.5 s)"
    )
    print(
        f"scale: synthetic tracker feed, 45,000 CVE records x 2 releases = {info[0].records:,} rows, "
        f"{len(big) / 1e6:.1f} MB JSON: import {import_s:.1f} s, DB {big_db.stat().st_size / 1e6:.1f} MB; "
        f"match against it {big_match * 1000:.0f} ms ({len(big_report.matches)} findings)"
    )


if __name__ == "__main__":
    main()
