"""Scan, run and token numbers a user types: ASCII digits a database can hold, else a usage error
naming the input — '²' and '١' are digits to str.isdigit(), and a 20-digit number overflowed the
driver ("please report this if it is a bug")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VNC_FAIL = ROOT / "tests" / "data" / "checks" / "VMS-DOM-020" / "vnc-any.FAIL.xml"
HUGE = "9" * 20


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vmsec.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120, check=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("refs")
    env = {"VMSEC_STORE": f"sqlite:///{home / 'history.sqlite'}", "VMSEC_SERVICE_KEY": str(home / "key")}
    assert run("scan", "xml", str(VNC_FAIL), "-q", "--format", "json", "-o", str(home / "r.json"),
               env=env).returncode in (0, 1)
    return env


@pytest.mark.parametrize(("args", "message"), [
    (("report", HUGE), f"no scan #{HUGE}"),
    (("report", "²"), "not a scan id: '²'"),
    (("report", "١"), "not a scan id: '١'"),
    (("diff", HUGE, "latest"), f"no scan #{HUGE}"),
    (("fleet", "status", HUGE), f"no fleet run {HUGE}"),
    (("fleet", "status", "²"), "not a fleet run: '²'"),
    (("token", "revoke", HUGE), f"{HUGE} is not in the range"),
    (("serve", "--listen", "127.0.0.1:²"), "expected HOST:PORT, got '127.0.0.1:²'"),
])
def test_a_number_a_database_cannot_hold_is_a_usage_error(env: dict[str, str], args: tuple[str, ...],
                                                          message: str) -> None:
    proc = run(*args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "report this" not in proc.stderr


def test_a_stored_scan_is_still_found_by_its_number(env: dict[str, str]) -> None:
    proc = run("report", "1", "--format", "json", env=env)
    assert proc.returncode in (0, 1) and '"VMS-DOM-020"' in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("fleet", "scan", "INV", "--retry-delay", "inf"), "--retry-delay"),
    (("fleet", "scan", "INV", "--retry-delay", "1e300"), "--retry-delay"),
    (("fleet", "scan", "INV", "--wait-timeout", "nan"), "'nan' is not a number"),
    (("scan", "xml", str(VNC_FAIL), "--timeout", "nan"), "'nan' is not a number"),
    (("probe", "127.0.0.1", "--timeout", "nan"), "'nan' is not a number"),
    (("db", "update", "--timeout", "inf"), "--timeout"),
    (("db", "update", "--timeout", "0"), "--timeout"),
    (("db", "update", "--retries", "0"), "--retries"),
    (("serve", "--listen", "127.0.0.1:18080", "--public-url", "http://[::1"),
     "--public-url must be an http(s) URL"),
])
def test_numbers_and_urls_out_of_range_are_usage_errors(env: dict[str, str], args: tuple[str, ...],
                                                        message: str) -> None:
    # Each crashed (OverflowError, ValueError), waited for ever (NaN) or, for db update, did nothing and
    # blamed the URL.
    inventory = Path(env["VMSEC_STORE"].removeprefix("sqlite:///")).with_name("inv.yaml")
    inventory.write_text(f"targets: [{{kind: xml, path: {VNC_FAIL}}}]\n")
    proc = run(*(str(inventory) if a == "INV" else a for a in args), env=env)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "report this" not in proc.stderr


def test_a_broker_url_that_does_not_parse_stores_no_run(env: dict[str, str]) -> None:
    inventory = Path(env["VMSEC_STORE"].removeprefix("sqlite:///")).with_name("inv.yaml")
    inventory.write_text(f"targets: [{{kind: xml, path: {VNC_FAIL}}}]\n")
    before = run("fleet", "runs", env=env).stdout
    for broker in ("redis://u:secret@[::1/0", "redis://127.0.0.1:99999/0", "not a url"):
        proc = run("fleet", "scan", str(inventory), "--broker", broker, "--no-wait", env=env)
        assert proc.returncode == 2, proc.stderr
        assert "--broker" in proc.stderr and "not a URL" in proc.stderr and "secret" not in proc.stderr
    assert run("fleet", "runs", env=env).stdout == before


def test_a_broker_that_does_not_answer_is_named_and_the_run_can_be_resumed(env: dict[str, str]) -> None:
    inventory = Path(env["VMSEC_STORE"].removeprefix("sqlite:///")).with_name("inv.yaml")
    inventory.write_text(f"targets: [{{kind: xml, path: {VNC_FAIL}}}]\n")
    proc = run("fleet", "scan", str(inventory), "--broker", "redis://127.0.0.1:1/0", "--no-wait", env=env)
    assert proc.returncode == 3, proc.stderr
    assert "cannot send the tasks to redis://127.0.0.1:1/0" in proc.stderr and "sent to" not in proc.stderr
    number = proc.stderr.split("fleet run #", 1)[1].split(":", 1)[0]
    assert f"'vmsec fleet resume {number} --broker URL'" in proc.stderr
    proc = run("fleet", "resume", number, "--broker", "redis://127.0.0.1:1/0", env=env)
    assert proc.returncode == 3, proc.stderr
    assert "cannot send the tasks to redis://127.0.0.1:1/0" in proc.stderr
    proc = run("fleet", "resume", number, "--broker", "redis://[::1", env=env)
    assert proc.returncode == 2 and "not a URL" in proc.stderr


def test_monitor_refuses_a_uri_libvirt_cannot_be_given(env: dict[str, str]) -> None:
    # A URI with a byte that is not UTF-8 was retried for ever ("cannot connect"), never refused.
    proc = subprocess.run([sys.executable, "-m", "vmsec.cli.main", "monitor", b"test:///\xff"],
                          capture_output=True, env={**os.environ, **env}, timeout=60, check=False)
    assert proc.returncode == 2 and b"not a libvirt URI" in proc.stderr, proc.stderr
