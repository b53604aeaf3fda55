"""Scans are kept, compared and re-rendered; waivers and compliance views work from the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VMSEC = str(Path(sys.executable).with_name("vmsec"))
CHECKS = ROOT / "tests" / "data" / "checks"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VMSEC, *args], capture_output=True, text=True, timeout=120, check=False)


def _fixture(check: str, verdict: str) -> str:
    return str(next(p for p in sorted((CHECKS / check).iterdir()) if p.name.endswith(f".{verdict}.xml")))


def test_scans_are_stored_compared_and_re_rendered(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'h.sqlite'}"
    open_vnc, closed_vnc = _fixture("VMS-DOM-020", "FAIL"), _fixture("VMS-DOM-020", "PASS")
    assert run("scan", "xml", open_vnc, "--store", store, "--quiet").returncode == 0
    assert run("scan", "xml", closed_vnc, "--store", store, "--quiet").returncode == 0
    history = json.loads(run("history", "--store", store, "--format", "json").stdout)
    assert len(history) == 2
    diff = json.loads(run("diff", "previous", "latest", "--store", store, "--format", "json").stdout)
    assert diff  # different targets: the first scan's failures are not "fixed", they are unknown
    report = run("report", "latest", "--store", store, "--format", "sarif")
    assert report.returncode == 0 and json.loads(report.stdout)["version"] == "2.1.0"
    assert run("scan", "xml", open_vnc, "--store", store, "--no-store", "--quiet").returncode == 0
    assert len(json.loads(run("history", "--store", store, "--format", "json").stdout)) == 2


def test_waivers_turn_fail_into_waived_and_expire(tmp_path: Path) -> None:
    fixture = _fixture("VMS-DOM-020", "FAIL")
    good = tmp_path / "w.toml"
    good.write_text(f'''[[waiver]]
check = "VMS-DOM-020"
target = "domain:*"
reason = "lab network, console behind a jump host"
who = "alice"
expires = "{date.today() + timedelta(days=30)}"
''')
    doc = json.loads(
        run("scan", "xml", fixture, "--waivers", str(good), "--format", "json", "--no-store").stdout
    )
    statuses = {f["status"] for f in doc["findings"] if f["check_id"] == "VMS-DOM-020"}
    assert statuses == {"WAIVED"}
    expired = tmp_path / "old.toml"
    expired.write_text(good.read_text().replace(str(date.today() + timedelta(days=30)), "2020-01-01"))
    doc = json.loads(
        run("scan", "xml", fixture, "--waivers", str(expired), "--format", "json", "--no-store").stdout
    )
    failed = [f for f in doc["findings"] if f["check_id"] == "VMS-DOM-020"]
    assert {f["status"] for f in failed} == {"FAIL"} and all("expired" in f["message"] for f in failed)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[waiver]]\ncheck = "VMS-DOM-020"\ntarget = "*"\n')
    proc = run("scan", "xml", fixture, "--waivers", str(bad), "--no-store")
    assert proc.returncode == 2 and "reason" in proc.stderr


def test_compliance_view_from_a_scan() -> None:
    proc = run(
        "scan",
        "xml",
        _fixture("VMS-DOM-047", "FAIL"),
        "--compliance",
        "disa-vmm-srg",
        "--format",
        "json",
        "--no-store",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert "requirements" in json.dumps(doc)
    wrong = run(
        "scan", "xml", _fixture("VMS-DOM-047", "FAIL"), "--compliance", "disa-vmm-srg", "--format", "sarif"
    )
    assert wrong.returncode == 2


def test_report_of_a_stored_scan_as_a_compliance_view(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'h.sqlite'}"
    assert run("scan", "xml", _fixture("VMS-DOM-047", "FAIL"), "--store", store, "--quiet").returncode == 0
    proc = run("report", "latest", "--store", store, "--compliance", "disa-vmm-srg", "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"V\\?-207412", proc.stdout)  # Markdown may escape the hyphen
    bad = run("report", "latest", "--store", store, "--compliance", "disa-vmm-srg", "--format", "csv")
    assert bad.returncode == 2
