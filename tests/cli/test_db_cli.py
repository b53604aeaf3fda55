"""`vmsec db import|status` and vulnerability matching in scans, as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from datapaths import VULN as DATA

ROOT = Path(__file__).resolve().parents[2]
VMSEC = str(Path(sys.executable).with_name("vmsec"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VMSEC, *args], capture_output=True, text=True, timeout=120, check=False)


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


def test_status_without_database_exits_3(tmp_path: Path) -> None:
    proc = run("db", "status", "--db", str(tmp_path / "none.sqlite"))
    assert proc.returncode == 3 and "vmsec db update" in proc.stderr


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
    proc = run(
        "scan",
        "host",
        "--root",
        str(_debian_root(tmp_path)),
        "--db",
        str(tmp_path / "none.sqlite"),
        "--format",
        "json",
        "--check",
        "VMS-VULN-001",
    )
    doc = json.loads(proc.stdout)
    (finding,) = doc["findings"]
    assert finding["status"] == "UNKNOWN" and "vmsec db update" in finding["message"]
    # a --db naming no file is not silence: said once, before the scan
    assert f"--db {tmp_path / 'none.sqlite'}: no advisory database there" in proc.stderr
