"""`vmsec db import|status` and vulnerability matching in scans, as a real process."""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from datapaths import VULN as DATA

ROOT = Path(__file__).resolve().parents[2]
VMSEC = str(Path(sys.executable).with_name("vmsec"))


def run(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``vmsec ARGS``; ``cache``: the user cache directory (where the default database lives)."""
    env = dict(os.environ)
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    return subprocess.run([VMSEC, *args], capture_output=True, text=True, timeout=120, check=False, env=env)


def test_import_status_and_a_failed_import_leaves_the_db_intact(tmp_path: Path) -> None:
    db = str(tmp_path / "v.sqlite")
    ok = run(
        "db",
        "import",
        "--db",
        db,
        str(DATA / "debian-tracker" / "bookworm_tracker_excerpt_RECONSTRUCTED.json"),
        str(DATA / "kev" / "known_exploited_vulnerabilities.json.gz"),
    )
    assert ok.returncode == 0, ok.stderr
    assert "debian-tracker: 8 records" in ok.stdout and "kev: 1404 records" in ok.stdout
    status = json.loads(run("db", "status", "--db", db, "--format", "json").stdout)
    assert {s["name"] for s in status["sources"]} == {"debian-tracker", "kev"}
    before = Path(db).read_bytes()
    garbage = tmp_path / "broken.zip"
    garbage.write_bytes(b"PK\x03\x04 truncated")
    bad = run("db", "import", "--db", db, str(garbage))
    assert bad.returncode == 3 and "left unchanged" in bad.stderr
    assert Path(db).read_bytes() == before


def test_status_without_the_default_database_exits_3(tmp_path: Path) -> None:
    proc = run("db", "status", cache=tmp_path / "empty-cache")
    assert proc.returncode == 3 and "vmsec db update" in proc.stderr


def test_a_db_path_that_does_not_exist_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "typo.sqlite")
    for args in (("db", "status", "--db", missing),
                 ("scan", "host", "--root", str(_debian_root(tmp_path)), "--db", missing, "--no-store",
                  "--format", "json")):
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert f"{missing}: does not exist: no advisory database file" in proc.stderr
        assert proc.stdout == ""  # nothing was scanned: the error comes before collection


def test_status_ages_the_data_by_the_feeds_own_dates(tmp_path: Path) -> None:
    db = str(tmp_path / "v.sqlite")
    kev = DATA / "kev" / "known_exploited_vulnerabilities.json.gz"
    assert run("db", "import", "--db", db, str(kev),
               str(DATA / "debian-tracker" / "bookworm_tracker_excerpt_RECONSTRUCTED.json")).returncode == 0
    newest = max(v["dateAdded"] for v in json.loads(gzip.decompress(kev.read_bytes()))["vulnerabilities"])
    status = {s["name"]: s for s in json.loads(run("db", "status", "--db", db, "--format", "json").stdout)
              ["sources"]}
    assert status["kev"]["data_date"].startswith(newest) and status["kev"]["dated_by"] == "feed"
    expected_age = (datetime.now(UTC) - datetime.fromisoformat(newest).replace(tzinfo=UTC)).days
    assert abs(status["kev"]["age_days"] - expected_age) <= 1  # not "imported a second ago"
    assert status["kev"]["stale"] is (expected_age > 7)
    # the Debian tracker's JSON carries no dates: aged by the import, and it says so
    assert status["debian-tracker"]["data_date"] is None and status["debian-tracker"]["dated_by"] == "import"
    assert status["debian-tracker"]["age_days"] < 1
    text = run("db", "status", "--db", db).stdout
    assert f"data of {newest}" in text and "no dates in the feed" in text


def test_an_interrupted_imports_temp_files_are_removed_by_the_next_import(tmp_path: Path) -> None:
    db = tmp_path / "v.sqlite"
    tracker = str(DATA / "debian-tracker" / "bookworm_tracker_excerpt_RECONSTRUCTED.json")
    assert run("db", "import", "--db", str(db), tracker).returncode == 0
    # what a killed import leaves: its private copy of the database and SQLite's journal beside it
    leftovers = [tmp_path / ".vulndb-k1ll3d.tmp", tmp_path / ".vulndb-k1ll3d.tmp-journal"]
    for path in leftovers:
        path.write_bytes(db.read_bytes())
    keep = tmp_path / "notes.tmp"  # not vmsec's
    keep.write_text("mine")
    assert run("db", "import", "--db", str(db), tracker).returncode == 0
    assert [p for p in leftovers if p.exists()] == [] and keep.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".vulndb.lock", "notes.tmp", "v.sqlite"]


def test_an_import_while_another_runs_is_refused_and_takes_nothing_away(tmp_path: Path) -> None:
    db = tmp_path / "v.sqlite"
    tracker = str(DATA / "debian-tracker" / "bookworm_tracker_excerpt_RECONSTRUCTED.json")
    lock = os.open(tmp_path / ".vulndb.lock", os.O_RDWR | os.O_CREAT, 0o600)
    running = tmp_path / ".vulndb-running.tmp"  # the other import's copy, in use
    running.write_bytes(b"in use")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = run("db", "import", "--db", str(db), tracker)
    finally:
        os.close(lock)
    assert proc.returncode == 3 and "another import" in proc.stderr
    assert running.read_bytes() == b"in use" and not db.exists()


def _debian_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text(
        'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n'
    )
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    (root / "var" / "lib" / "dpkg" / "status").write_text(
        "Package: openssh-server\nStatus: install ok installed\nSource: openssh\n"
        "Version: 1:9.2p1-2+deb12u2\n\n"
        "Package: libc6\nStatus: install ok installed\nSource: glibc\nVersion: 2.36-9+deb12u1\n\n"
    )
    return root


def test_scan_host_root_reports_vulnerabilities_with_kev(tmp_path: Path) -> None:
    db = str(tmp_path / "v.sqlite")
    assert (
        run(
            "db",
            "import",
            "--db",
            db,
            str(DATA / "debian-tracker" / "bookworm_tracker_excerpt_RECONSTRUCTED.json"),
            str(DATA / "kev" / "known_exploited_vulnerabilities.json.gz"),
        ).returncode
        == 0
    )
    proc = run(
        "scan",
        "host",
        "--root",
        str(_debian_root(tmp_path)),
        "--db",
        db,
        "--format",
        "json",
        "--check",
        "VMS-VULN-*",
    )
    doc = json.loads(proc.stdout)
    vulns = {f["vulnerability"]["id"]: f for f in doc["findings"] if f["vulnerability"]}
    assert vulns["CVE-2024-6387"]["vulnerability"]["fixed_version"] == "1:9.2p1-2+deb12u3"
    assert vulns["CVE-2023-4911"]["severity"] == "critical" and vulns["CVE-2023-4911"]["vulnerability"]["kev"]


def test_scan_without_database_says_unknown(tmp_path: Path) -> None:
    proc = run("scan", "host", "--root", str(_debian_root(tmp_path)), "--no-store", "--format", "json",
               "--check", "VMS-VULN-001", cache=tmp_path / "empty-cache")
    doc = json.loads(proc.stdout)
    (finding,) = doc["findings"]
    assert finding["status"] == "UNKNOWN" and "vmsec db update" in finding["message"]
