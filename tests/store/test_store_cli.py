"""``vmsec history``, ``diff`` and ``report`` and ``store_scan``, run through click on real stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_synth import HOST, finding, scan

from vmsec.cli import exitcodes
from vmsec.cli.store_commands import diff, history, report, store_scan
from vmsec.facts.common import CollectionRecord
from vmsec.findings import Severity, Status, Target, TargetKind

WEB = Target(TargetKind.DOMAIN, "web01", "hv1")
HOSTILE = "\x1b[31mred\x1b]0;owned\x07 [bold]markup[/bold]"


@pytest.fixture()
def filled(store_url: str) -> str:
    first = scan([finding("VMS-DOM-020", WEB, "vnc", Status.FAIL, Severity.CRITICAL),
                  finding("VMS-DOM-021", WEB, HOSTILE, Status.PASS)], [HOST, WEB], source="libvirt qemu:///system")
    second = scan([finding("VMS-DOM-020", WEB, "vnc", Status.PASS),
                   finding("VMS-DOM-021", WEB, HOSTILE, Status.FAIL, message=HOSTILE)], [HOST, WEB],
                  source="libvirt qemu:///system",
                  records=(CollectionRecord(source="/etc/libvirt/qemu.conf", what="qemu.conf", ok=False,
                                            reason="permission denied"),))
    assert store_scan(first, store_url, enabled=True) == 1
    assert store_scan(second, store_url, enabled=True) == 2
    assert store_scan(second, store_url, enabled=False) is None
    return store_url


def test_history(filled: str) -> None:
    runner = CliRunner()
    out = runner.invoke(history, ["--store", filled, "--format", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert [s["id"] for s in doc["scans"]] == [2, 1]
    assert doc["scans"][0]["state"] == "incomplete" and doc["scans"][1]["state"] == "complete"
    assert doc["scans"][1]["failed_by_severity"]["critical"] == 1
    text = runner.invoke(history, ["--store", filled, "--limit", "1"])
    assert text.exit_code == 0
    assert "libvirt qemu:///system" in text.output and "incomplete" in text.output
    assert "complete " not in text.output.replace("incomplete", "")  # only scan 2 listed


def test_diff_terminal_and_json(filled: str) -> None:
    runner = CliRunner()
    out = runner.invoke(diff, ["previous", "latest", "--store", filled, "--format", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert (doc["a"], doc["b"]) == (1, 2)
    assert doc["summary"] == {"new": 1, "fixed": 1, "still_open": 0, "unknown": 0, "unchanged": 0}
    [web] = [t for t in doc["targets"] if t["name"] == "web01"]
    assert web["fixed"][0]["check_id"] == "VMS-DOM-020"
    assert web["new"][0]["before"] == "PASS" and web["new"][0]["after"] == "FAIL"
    text = runner.invoke(diff, ["1", "2", "--store", filled])
    assert text.exit_code == 0
    assert "1 new, 1 fixed" in text.output
    assert "\x1b" not in text.output and "\x07" not in text.output  # no terminal escapes from the store
    assert "[bold]markup[/bold]" in text.output  # shown literally, not as rich markup


@pytest.mark.parametrize(("args", "code"), [(["1", "9"], exitcodes.USAGE), (["x", "1"], exitcodes.USAGE)])
def test_diff_bad_ids(filled: str, args: list[str], code: int) -> None:
    out = CliRunner().invoke(diff, [*args, "--store", filled])
    assert out.exit_code == code
    assert "vmsec: error:" in out.output


def test_report_re_renders_and_exits_like_the_scan(filled: str, tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(report, ["1", "--store", filled, "--format", "json"])
    assert first.exit_code == exitcodes.OK, first.output
    assert json.loads(first.output)["summary"]["by_status"]["FAIL"] == 1
    gate = runner.invoke(report, ["1", "--store", filled, "--format", "json", "--fail-on", "high"])
    assert gate.exit_code == exitcodes.FINDINGS
    latest = runner.invoke(report, ["latest", "--store", filled, "--format", "sarif",
                                    "--output", str(tmp_path / "r.sarif")])
    assert latest.exit_code == exitcodes.INCOMPLETE  # the second scan could not read qemu.conf
    assert json.loads((tmp_path / "r.sarif").read_text())["version"] == "2.1.0"
    missing = runner.invoke(report, ["42", "--store", filled])
    assert missing.exit_code == exitcodes.USAGE


def test_an_unwritable_store_warns_and_does_not_stop_the_scan(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = scan([], [HOST])
    assert store_scan(result, f"sqlite:///{blocker}/sub/history.sqlite", enabled=True) is None


def test_history_on_a_broken_store_is_an_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    out = CliRunner().invoke(history, ["--store", f"sqlite:///{junk}"])
    assert out.exit_code == exitcodes.INCOMPLETE
    assert "vmsec: error:" in out.output
