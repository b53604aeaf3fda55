"""vmsec's matcher side by side with debsecan (Debian's own scanner), on the same dpkg status and the
same advisories: timing, and every disagreement with the reason.

The advisories (the real OSV Debian subset and tracker records in tests/data/vuln) are imported into
a vmsec database, then written out in debsecan's offline feed format (``VERSION 1``, zlib) for suite
bookworm, so both tools judge identical data. Requires Debian's debsecan (apt) and its system Python.

Run: .venv/bin/python benchmarks/compare_debsecan.py
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from pathlib import Path

from vmsec.facts import OsRelease
from vmsec.parsers.dpkg_status import parse_dpkg_status
from vmsec.vulns.db import import_feeds, open_db
from vmsec.vulns.matcher import match_packages

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # datapaths: the in-repo data
from datapaths import VULN as DATA

STATUS = DATA / "installed" / "debian12-dpkg-status.trimmed"
URGENCY = {"low": "L", "medium": "M", "high": "H"}


def debsecan_feed(db_file: Path) -> bytes:
    """Debian:12 rows of the vmsec database as a debsecan VERSION 1 feed."""
    conn = sqlite3.connect(db_file)
    rows = conn.execute(
        "SELECT vuln_id, package, state, fixed, severity, aliases FROM affected "
        "WHERE ecosystem = 'Debian:12' AND state IN ('fixed', 'unfixed', 'fix_deferred', "
        "'will_not_fix', 'end_of_life')"
    ).fetchall()
    names: dict[str, int] = {}
    vulns: list[str] = []
    for vuln_id, package, state, fixed, severity, _aliases in rows:
        index = names.setdefault(vuln_id, len(names))
        flags = "S" + URGENCY.get((severity or "").lower(), " ") + "?" + ("F" if state == "fixed" else " ")
        vulns.append(f"{package},{index},{flags},{fixed if state == 'fixed' else ''},")
    text = "VERSION 1\n" + "".join(f"{n},,\n" for n in names) + "\n" + "\n".join(vulns) + "\n\n\n"
    return zlib.compress(text.encode())


def aliases(db_file: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for vuln_id, alias_text in sqlite3.connect(db_file).execute("SELECT vuln_id, aliases FROM affected"):
        ids = {vuln_id, *alias_text.split()}
        cves = {i for i in ids if i.startswith("CVE-")}
        out[vuln_id] |= cves or {vuln_id}
    return out


def compare() -> dict[str, object]:
    """Run both tools on the same data; returns timings and the (CVE, source package) sets."""
    if shutil.which("debsecan") is None:
        raise SystemExit("debsecan is not installed: apt-get install debsecan")
    work = Path(tempfile.mkdtemp(prefix="vmsec-debsecan-"))
    db_file = work / "v.sqlite"
    feeds = [
        DATA / "osv" / "Debian-subset-all.zip",
        DATA / "debian-tracker" / "bookworm_tracker_excerpt_RECONSTRUCTED.json",
    ]
    import_feeds([(str(f), f.read_bytes()) for f in feeds], db_file)
    feed_dir = work / "feed"
    feed_dir.mkdir()
    (feed_dir / "bookworm").write_bytes(debsecan_feed(db_file))
    start = time.perf_counter()
    proc = subprocess.run(
        [
            "/usr/bin/debsecan",
            "--suite",
            "bookworm",
            "--source",
            f"file://{feed_dir}/",
            "--status",
            str(STATUS),
            "--format",
            "detail",
            "--history",
            str(work / "hist"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    debsecan_s = time.perf_counter() - start
    ids = aliases(db_file)
    # "detail" output: the vulnerability name on its own line, then "installed: BIN VERSION" and
    # "(built from SOURCE VERSION)".
    theirs: set[tuple[str, str]] = set()
    current = None
    for line in proc.stdout.splitlines():
        if line and not line.startswith(" "):
            current = line.split()[0]  # "CVE-2016-2781 (low urgency)"
        built = re.search(r"\(built from (\S+) ", line)
        if current and built:
            theirs |= {(cve, built.group(1)) for cve in ids.get(current, {current})}
    db = open_db(db_file)
    assert db is not None
    packages = parse_dpkg_status(STATUS.read_text(), str(STATUS))
    start = time.perf_counter()
    report = match_packages(db, OsRelease(id="debian", version_id="12"), packages)
    vmsec_s = time.perf_counter() - start
    ours = {(m.vuln_id, m.source_package) for m in report.matches}
    aliased = ours | {
        (a, m.source_package) for m in report.matches for a in m.aliases if a.startswith("CVE-")
    }
    return {
        "packages": len(packages),
        "debsecan_s": debsecan_s,
        "vmsec_s": vmsec_s,
        "theirs": theirs,
        "ours": ours,
        "only_theirs": sorted(theirs - aliased),
        "only_ours": sorted(aliased - theirs),
    }


def main() -> None:
    r = compare()
    theirs, ours = r["theirs"], r["ours"]
    assert isinstance(theirs, set) and isinstance(ours, set)
    print(f"status: {STATUS.name} ({r['packages']} packages); advisories: OSV Debian subset + tracker")
    print(
        f"debsecan: {float(r['debsecan_s']) * 1000:.0f} ms (whole process), {len(theirs)} (CVE, source) pairs"
    )
    print(f"vmsec:    {float(r['vmsec_s']) * 1000:.1f} ms (match, warm DB), {len(ours)} (CVE, source) pairs")
    only_theirs = r["only_theirs"]
    only_ours = r["only_ours"]
    assert isinstance(only_theirs, list) and isinstance(only_ours, list)
    print(f"only debsecan: {len(only_theirs)}")
    for cve, src in only_theirs:
        why = "kernel headers/tools (linux-libc-dev, linux-perf), not a kernel" if src == "linux" else "?"
        print(f"  {cve} {src}: {why}")
    print(f"only vmsec: {len(only_ours)}")
    for cve, src in only_ours:
        print(f"  {cve} {src}")


if __name__ == "__main__":
    main()
