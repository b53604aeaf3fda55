"""The conventions users expect from a scanner's CLI, through the real ``vmsec`` process: help,
version, completion, --severity, --exit-code, --ignore-unfixed, the config file, VMSEC_* variables,
--debug, --no-color, --timeout, and the store options of the read-only commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VMSEC = str(Path(sys.executable).with_name("vmsec"))
CHECKS = ROOT / "tests" / "data" / "checks"
VNC_FAIL = CHECKS / "VMS-DOM-020" / "vnc-any.FAIL.xml"  # 2 critical, 3 medium, 2 low, 1 info FAIL
SUDO = CHECKS / "VMS-VULN-002" / "sudo-no-dsa.FAIL"  # an unfixed sudo vulnerability


def run(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([VMSEC, *args], capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=cwd, check=False)


def findings(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    doc: dict[str, Any] = json.loads(proc.stdout)
    result: list[dict[str, Any]] = doc["findings"]
    return result


# --- help, version, completion ----------------------------------------------------------------------


def test_vmsec_alone_prints_help_and_exits_0() -> None:
    proc = run()
    assert proc.returncode == 0 and proc.stdout.startswith("Usage: vmsec")
    assert "scan" in proc.stdout and proc.stderr == ""


def test_scan_help_names_every_target_kind() -> None:
    from vmsec.cli.scan_commands import TARGET_KINDS, ScanGroup

    for args in (["scan", "--help"], ["scan"]):
        proc = run(*args)
        assert proc.returncode == 0
        listed = proc.stdout.split("Target kinds", 1)[1]
        for kind in [*TARGET_KINDS, *ScanGroup.lazy]:
            assert re.search(rf"^\s+{kind}\s", listed, re.MULTILINE), kind


def test_version_shows_the_advisory_database_date(tmp_path: Path) -> None:
    db = tmp_path / "vulndb.sqlite"
    feed = next((SUDO.parent / "sudo-no-dsa.FAIL.feeds").iterdir())
    assert run("db", "import", str(feed), "--db", str(db)).returncode == 0
    proc = run("version", "--db", str(db))
    assert proc.returncode == 0
    assert re.search(r"^vmsec \d+\.\d+", proc.stdout)
    assert re.search(rf"advisory database: {re.escape(str(db))}, updated \d{{4}}-\d\d-\d\dT", proc.stdout)
    doc = json.loads(run("version", "--db", str(db), "--format", "json").stdout)
    assert doc["advisory_database"]["present"] and doc["advisory_database"]["updated_at"]
    missing = run("version", "--db", str(tmp_path / "none.sqlite"))
    assert missing.returncode == 0 and "none.sqlite: does not exist" in missing.stdout
    assert "advisory database: none at" in run("version", env={"XDG_CACHE_HOME": str(tmp_path / "c")}).stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    proc = run("completion", shell)
    assert proc.returncode == 0 and "_VMSEC_COMPLETE" in proc.stdout


def test_completion_completes_commands_and_options() -> None:
    words = run(env={"_VMSEC_COMPLETE": "bash_complete", "COMP_WORDS": "vmsec sc", "COMP_CWORD": "1"})
    assert "plain,scan" in words.stdout
    opts = run(env={"_VMSEC_COMPLETE": "bash_complete", "COMP_WORDS": "vmsec scan xml --sev",
                    "COMP_CWORD": "3"})
    assert "plain,--severity" in opts.stdout


# --- filters and exit codes --------------------------------------------------------------------------


def test_severity_as_a_minimum_or_a_list_case_insensitive() -> None:
    every = findings(run("scan", "xml", str(VNC_FAIL), "--format", "json", "--no-store"))
    high = findings(run("scan", "xml", str(VNC_FAIL), "--format", "json", "--no-store", "--severity", "HIGH"))
    assert high and {f["severity"] for f in high} <= {"critical", "high"}
    assert len(high) == sum(1 for f in every if f["severity"] in ("critical", "high"))
    some = findings(run("scan", "xml", str(VNC_FAIL), "--format", "json", "--no-store",
                        "--severity", "Low,info", "--severity", "high"))
    assert {f["severity"] for f in some} == {"low", "info", "high"}
    bad = run("scan", "xml", str(VNC_FAIL), "--severity", "urgent")
    assert bad.returncode == 2 and "'urgent': not a severity" in bad.stderr


def test_severity_also_narrows_the_gate() -> None:
    """--fail-on medium fails on the scan's medium FAILs — unless --severity leaves only low and info."""
    args = ("scan", "xml", str(VNC_FAIL), "--format", "json", "--no-store", "--fail-on", "medium")
    assert run(*args).returncode == 1
    low_info = run(*args, "--severity", "low,info")
    assert low_info.returncode == 0  # the medium and critical FAILs are not in this report
    assert {f["severity"] for f in findings(low_info)} == {"low", "info"}


def test_exit_code_replaces_1_when_the_gate_fails() -> None:
    base = ("scan", "xml", str(VNC_FAIL), "--format", "json", "--no-store")
    assert run(*base, "--fail-on", "HIGH", "--exit-code", "7").returncode == 7
    assert run(*base, "--fail-on", "medium", "--severity", "low,info", "--exit-code", "7").returncode == 0
    assert run(*base, "--exit-code", "5").returncode == 5  # alone: any FAIL


def test_ignore_unfixed_leaves_out_vulnerabilities_without_a_fix(tmp_path: Path) -> None:
    db = tmp_path / "vulndb.sqlite"
    folder = SUDO.parent / "sudo-no-dsa.FAIL.feeds"
    feeds = sorted(str(p) for p in folder.iterdir() if p.name != "imported-at")
    assert run("db", "import", *feeds, "--db", str(db)).returncode == 0
    base = ("scan", "host", "--root", str(SUDO), "--db", str(db), "--format", "json", "--no-store",
            "--check", "VMS-VULN-*")
    every = findings(run(*base))
    unfixed = [f for f in every if f["vulnerability"] and not f["vulnerability"]["fixed_version"]]
    assert unfixed, "the fixture has an unfixed vulnerability"
    kept = findings(run(*base, "--ignore-unfixed"))
    assert not [f for f in kept if f["vulnerability"] and not f["vulnerability"]["fixed_version"]]
    assert len(kept) == len(every) - len(unfixed)


# --- configuration file and environment ---------------------------------------------------------------


def test_config_file_in_the_xdg_directory(tmp_path: Path) -> None:
    config = tmp_path / "xdg" / "vmsec" / "vmsec.toml"
    config.parent.mkdir(parents=True)
    config.write_text('format = "json"\nno-store = true\n[scan]\nfail-on = "medium"\n'
                      '[scan.xml]\npasswords-hidden = true\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    proc = run("scan", "xml", str(VNC_FAIL), env=env)
    assert proc.returncode == 1  # fail-on medium from [scan]
    assert findings(proc)  # format json from the top level
    assert run("scan", "xml", str(VNC_FAIL), "--format", "terminal", env=env).stdout.startswith("vmsec scan")


def test_config_option_environment_and_precedence(tmp_path: Path) -> None:
    config = tmp_path / "team.toml"
    config.write_text('format = "csv"\nno-store = true\nfromat = "json"\n[scan]\nfail-on = "critical"\n'
                      'severity = "medium,low"\n')
    proc = run("scan", "xml", str(VNC_FAIL), "--config", str(config))
    assert proc.stdout.startswith("target_kind,") and proc.returncode == 0  # no critical left to gate on
    assert "'fromat' is not an option vmsec knows" in proc.stderr  # a typo is said, not ignored
    # environment beats the file; the command line beats both
    env = {"VMSEC_FORMAT": "json", "VMSEC_FAIL_ON": "low", "VMSEC_CONFIG": str(config)}
    proc = run("scan", "xml", str(VNC_FAIL), env=env)
    assert findings(proc) and proc.returncode == 1
    assert run("scan", "xml", str(VNC_FAIL), "--format", "markdown", env=env).stdout.startswith("# vmsec")
    # every option has a VMSEC_<COMMAND>_<OPTION> variable too
    every = ("scan", "xml", str(VNC_FAIL), "--severity", "info")  # the command line beats the file
    hidden = run(*every, env={**env, "VMSEC_SCAN_XML_PASSWORDS_HIDDEN": "1"})
    assert findings(hidden) != findings(run(*every, env=env))
    missing = run("scan", "xml", str(VNC_FAIL), "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "nope.toml" in missing.stderr


def test_debug_logs_on_stderr() -> None:
    proc = run("--debug", "scan", "xml", str(VNC_FAIL), "--format", "json", "--no-store", "-q")
    assert proc.returncode == 0 and "vmsec: debug:" in proc.stderr
    assert json.loads(proc.stdout)["findings"]


def test_timeout_per_target_is_a_clear_failure() -> None:
    corpus = ROOT / "tests" / "data" / "libvirt-9.0.0" / "tests" / "qemuxml2argvdata"
    proc = run("scan", "xml", str(corpus), "--timeout", "0.001", "--no-store", "-q")
    assert proc.returncode == 3 and "timed out" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- stores: plain paths, read-only commands, masked passwords ---------------------------------------


def test_store_accepts_a_plain_file_path(tmp_path: Path) -> None:
    store = tmp_path / "history.sqlite"
    assert run("scan", "xml", str(VNC_FAIL), "--store", str(store), "-q", "--format", "json").returncode == 0
    assert store.is_file()
    listed = json.loads(run("history", "--store", str(store), "--format", "json").stdout)
    assert [s["id"] for s in listed["scans"]] == [1]
    # relative to the directory the command runs in
    relative = run("report", "latest", "--store", "history.sqlite", "--format", "json", cwd=tmp_path)
    assert relative.returncode == 0


def test_read_only_commands_never_create_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent-dir" / "history.sqlite"
    history = run("history", "--store", str(missing))
    assert history.returncode == 0 and "no scans stored" in history.stdout
    report = run("report", "latest", "--store", str(missing))
    assert report.returncode == 2 and "no findings store at" in report.stderr
    diff = run("diff", "previous", "latest", "--store", f"sqlite:///{missing}")
    assert diff.returncode == 2
    assert not missing.parent.exists()


@pytest.mark.parametrize("url", ["postgresql+psycopg://alice:s3cret@127.0.0.1:1/vmsec",
                                 "postgresql://alice:s3cret@db.example:notaport/vmsec"])
def test_a_bad_store_url_is_echoed_with_the_password_masked(url: str) -> None:
    proc = run("history", "--store", url, timeout=60)
    assert proc.returncode in (2, 3)
    assert "s3cret" not in proc.stderr and "alice:***@" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unwritable_output_fails_before_the_scan(tmp_path: Path) -> None:
    store = tmp_path / "h.sqlite"
    proc = run("scan", "xml", str(VNC_FAIL), "-o", str(tmp_path / "no" / "such" / "dir.json"),
               "--store", str(store))
    assert proc.returncode == 2 and "cannot write" in proc.stderr
    assert not store.exists()  # nothing was scanned or stored


# --- no traceback for any input --------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["db", "update", "--mirror", "notaurl"],
    ["report", "notanumber", "--store", "{tmp}/h.sqlite"],
    ["diff", "1", "2", "--store", "{tmp}"],
    ["scan", "xml", "/dev/null", "--no-store"],
    ["scan", "image", "/etc/hostname", "--no-store"],
    ["scan", "rootfs", "/proc/self/fdinfo", "--no-store"],
    ["scan", "libvirt", "qemu+nosuchtransport:///system", "--no-store"],
    ["scan", "host", "--root", "{tmp}", "--no-store"],
    ["scan", "xml", "{tmp}", "--profile", "no-such-profile", "--no-store"],
    ["checks", "explain", ""],
])
def test_no_traceback_for_any_input(args: list[str], tmp_path: Path) -> None:
    proc = run(*(a.replace("{tmp}", str(tmp_path)) for a in args), timeout=60)
    assert proc.returncode in (0, 1, 2, 3), proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    for line in proc.stderr.splitlines():  # messages, not dumps
        assert line.startswith(("vmsec: ", "Usage:", "Try ", "Error:", "report written")) or not line, line
