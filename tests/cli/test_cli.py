"""The CLI as users and CI gates run it: a real process, real inputs, documented exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
VMSEC = str(Path(sys.executable).with_name("vmsec"))
SCHEMA = json.loads((ROOT / "docs" / "json-report.schema.json").read_text())
CHECKS = ROOT / "tests" / "data" / "checks"
VNC_OPEN = CHECKS / "VMS-DOM-020"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VMSEC, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          check=False)


def report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    return doc


def _fixture(check_dir: Path, verdict: str) -> Path:
    return next(p for p in sorted(check_dir.iterdir()) if p.name.endswith(f".{verdict}.xml"))


def test_checks_list_json_has_the_whole_catalogue() -> None:
    proc = run("checks", "list", "--format", "json")
    assert proc.returncode == 0
    checks = json.loads(proc.stdout)
    assert len(checks) >= 80
    assert len({c["id"] for c in checks}) == len(checks)
    assert {"id", "title", "severity", "scope", "tags", "rationale", "remediation"} <= set(checks[0])


def test_checks_explain_shows_rationale_and_remediation() -> None:
    proc = run("checks", "explain", "vms-dom-020")
    assert proc.returncode == 0
    assert proc.stdout.startswith("VMS-DOM-020")
    assert "Why it matters" in proc.stdout and "Remediation" in proc.stdout


def test_unknown_check_is_a_usage_error() -> None:
    proc = run("checks", "explain", "VMS-NOPE-001")
    assert proc.returncode == 2
    assert "unknown check" in proc.stderr


def test_xml_scan_json_validates_and_reports_the_open_console() -> None:
    fixture = _fixture(VNC_OPEN, "FAIL")
    proc = run("scan", "xml", str(fixture), "--format", "json")
    doc = report(proc)
    assert proc.returncode == 0  # complete, and no --fail-on
    fails = [f for f in doc["findings"] if f["check_id"] == "VMS-DOM-020" and f["status"] == "FAIL"]
    assert fails and fails[0]["target"]["kind"] == "domain"
    assert fails[0]["evidence"] and fails[0]["evidence"][0]["source"] == str(fixture)
    assert doc["scan"]["complete"] is True and doc["collection_errors"] == []
    assert proc.stderr == ""  # no progress display mixed in when stderr is not a terminal


@pytest.mark.parametrize(("fail_on", "code"), [("info", 1), ("critical", None)])
def test_fail_on_sets_exit_code(fail_on: str, code: int | None) -> None:
    fixture = _fixture(VNC_OPEN, "FAIL")
    proc = run("scan", "xml", str(fixture), "--format", "json", "--fail-on", fail_on)
    doc = report(proc)
    worst = {f["severity"] for f in doc["findings"] if f["status"] == "FAIL"}
    expected = code if code is not None else (1 if "critical" in worst else 0)
    assert proc.returncode == expected


def test_unreadable_input_is_reported_and_the_scan_goes_on(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text("<domain><name>x</name>")
    good = _fixture(VNC_OPEN, "FAIL")
    proc = run("scan", "xml", str(broken), str(good), "--format", "json")
    doc = report(proc)
    assert proc.returncode == 3
    assert doc["scan"]["complete"] is False
    assert [e["source"] for e in doc["collection_errors"]] == [str(broken)]
    assert any(f["status"] == "FAIL" for f in doc["findings"])  # the good file was still audited


def test_fail_on_wins_over_incomplete(tmp_path: Path) -> None:
    (tmp_path / "broken.xml").write_text("not xml")
    proc = run("scan", "xml", str(tmp_path / "broken.xml"), str(_fixture(VNC_OPEN, "FAIL")),
               "--format", "json", "--fail-on", "low")
    assert proc.returncode == 1


def test_output_file_keeps_stdout_clean(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = run("scan", "xml", str(_fixture(VNC_OPEN, "PASS")), "--format", "json", "-o", str(out))
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert "report written to" in proc.stderr
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(out.read_text()))


def test_terminal_report_leads_with_the_summary_and_the_worst() -> None:
    fixture = _fixture(VNC_OPEN, "FAIL")
    proc = run("scan", "xml", str(fixture))
    assert proc.returncode == 0
    text = proc.stdout
    headings = ("Summary", "Most exposed", "Fix first", "CRITICAL - ", "MEDIUM - ", "LOW - ")
    order = [text.index(heading) for heading in headings]
    assert order == sorted(order)  # summary, ranking and fixes before the findings, worst severity first
    assert "FAIL 8: 2 critical, 3 medium, 2 low, 1 info" in text
    assert "VMS-DOM-020" in text[: text.index("CRITICAL - ")]  # the open console is in "fix first"


def test_check_selection_and_bad_profile() -> None:
    fixture = _fixture(VNC_OPEN, "FAIL")
    proc = run("scan", "xml", str(fixture), "--format", "json", "--check", "VMS-DOM-020")
    assert {f["check_id"] for f in report(proc)["findings"]} == {"VMS-DOM-020"}
    bad = run("scan", "xml", str(fixture), "--profile", "no-such-profile")
    assert bad.returncode == 2 and "unknown profile" in bad.stderr
    none = run("scan", "xml", str(fixture), "--check", "VMS-NOPE-999")
    assert none.returncode == 2


def test_single_tenant_profile_relaxes_cross_tenant_checks() -> None:
    host_root = next(p for p in sorted((CHECKS / "VMS-HOST-011").iterdir()) if p.name.endswith(".FAIL"))
    a = report(run("scan", "host", "--root", str(host_root), "--format", "json", "--check", "VMS-HOST-011"))
    b = report(run("scan", "host", "--root", str(host_root), "--format", "json", "--check", "VMS-HOST-011",
                   "--profile", "single-tenant"))
    sev_a = {f["severity"] for f in a["findings"] if f["status"] == "FAIL"}
    sev_b = {f["severity"] for f in b["findings"] if f["status"] == "FAIL"}
    assert sev_a and sev_b and sev_a != sev_b
    assert b["scan"]["profile"] == "single-tenant"


def test_scan_host_of_this_machine_is_complete_and_valid() -> None:
    proc = run("scan", "host", "--format", "json")
    doc = report(proc)
    assert proc.returncode in (0, 3), proc.stderr
    host = doc["targets"][0]
    assert host["kind"] == "host" and host["details"]["live"] is True
    assert doc["summary"]["by_status"]["ERROR"] == 0
    assert any(f["check_id"].startswith("VMS-HOST-") for f in doc["findings"])


def test_scan_libvirt_test_driver() -> None:
    node = ROOT / "tests" / "data" / "libvirt" / "node-risky.xml"
    proc = run("scan", "libvirt", f"test://{node}", "--format", "json")
    doc = report(proc)
    assert proc.returncode == 0, proc.stderr
    kinds = {t["kind"] for t in doc["targets"]}
    assert {"host", "domain", "network"} <= kinds
    states = {t["name"]: t["details"].get("state") for t in doc["targets"] if t["kind"] == "domain"}
    assert states["batch01"] == "shutoff" and states["web01"] == "running"


def test_unreachable_libvirt_uri_exits_3() -> None:
    proc = run("scan", "libvirt", "qemu+unix:///system?socket=/nonexistent/sock", "--format", "json")
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert "vmsec: error:" in proc.stderr


def test_every_scan_subcommand_has_help() -> None:
    """`--help` of every scan kind renders (a lazily listed option once crashed it)."""
    from click.testing import CliRunner

    from vmsec.cli.main import cli

    runner = CliRunner()
    names = runner.invoke(cli, ["scan", "--help"]).output
    for kind in ("host", "libvirt", "xml", "rootfs", "image"):
        assert kind in names
        result = runner.invoke(cli, ["scan", kind, "--help"])
        assert result.exit_code == 0, (kind, result.output)
        assert "--compliance" in result.output
