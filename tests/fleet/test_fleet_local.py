"""Fleet runs in-process (``vmsec fleet scan`` without a broker) and the idempotent run-target writes
that make a task safe to run twice, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from components import require
from datapaths import DATA
from fleetdata import write_test_node, write_xml_hypervisor
from vmsec.fleet.inventory import parse_inventory
from vmsec.fleet.runner import scan_run_target
from vmsec.fleet.runs import RunOptions, combined_result, create_run, run_status, start_attempt
from vmsec.store import open_store, schema

VMSEC = str(Path(sys.executable).with_name("vmsec"))


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VMSEC, *args], capture_output=True, text=True, timeout=timeout, check=False)


def fingerprints(report: dict[str, Any]) -> Counter[tuple[str, str | None, str]]:
    return Counter((f["target"]["name"], f["target"].get("host"), f["fingerprint"])
                   for f in report["findings"])


@pytest.fixture
def open_vnc() -> Iterator[int]:
    """A QEMU display server (no machine, no CPU) offering VNC without authentication on 127.0.0.1."""
    qemu = shutil.which("qemu-system-x86_64")
    require(qemu, "qemu-system-x86_64", "apt-get install qemu-system-x86")
    assert qemu is not None
    for _ in range(20):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port > 6000:
            break
    proc = subprocess.Popen([qemu, "-machine", "none", "-nodefaults", "-display", "none", "-S",
                             "-vnc", f"127.0.0.1:{port - 5900}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def fleet_dir(tmp_path: Path, open_vnc: int) -> Path:
    """Two XML hypervisors (same domain names!), a test-driver hypervisor, a guest root, a host root,
    and a network probe of hv1's open console."""
    write_xml_hypervisor(tmp_path / "hv1", 6)
    write_xml_hypervisor(tmp_path / "hv2", 4)
    uri = write_test_node(tmp_path / "hv3" / "node.xml", 5)
    (tmp_path / "inventory.yaml").write_text(f"""
defaults: {{hypervisor_limit: 1}}
targets:
  - {{kind: xml, path: hv1, hypervisor: hv1, groups: [web]}}
  - {{kind: xml, path: hv2, hypervisor: hv2}}
  - {{kind: libvirt, uri: "{uri}", hypervisor: hv3, groups: [web]}}
  - {{kind: rootfs, path: {DATA / "guests" / "debian12"}, name: guest-debian12, hypervisor: hv1}}
  - {{kind: host, root: {DATA / "hosts" / "debian12-defaults"}, name: hv1-host}}
  - {{kind: probe, targets: [127.0.0.1], ports: [{open_vnc}], tls_scan: false, name: hv1-consoles,
     hypervisor: hv1}}
""")
    return tmp_path


def test_in_process_fleet_scan_reports_every_target_once(fleet_dir: Path, tmp_path: Path,
                                                         open_vnc: int) -> None:
    store = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    proc = run("fleet", "scan", str(fleet_dir / "inventory.yaml"), "--store", store, "--format", "json",
               "--concurrency", "3")
    assert proc.returncode in (0, 1, 3), proc.stderr
    report = json.loads(proc.stdout)
    targets = {(t["kind"], t["name"], t.get("host")) for t in report["targets"]}
    # hv1 and hv2 both hold vm0000..: the run reports them under their hypervisors, apart.
    assert ("domain", "vm0000", "hv1") in targets and ("domain", "vm0000", "hv2") in targets
    assert ("domain", "vm0004", "hv3") in targets and ("guest", "debian12", "hv1") in targets
    assert sum(1 for t in targets if t[0] == "domain") == 6 + 4 + 5
    assert max(fingerprints(report).values()) == 1  # no finding twice
    # The probe found the console that answers without authentication, under its hypervisor.
    assert [(f["status"], f["target"].get("host")) for f in report["findings"]
            if f["check_id"] == "VMS-PRB-001" and f["target"]["name"] == f"127.0.0.1:{open_vnc}"] == \
        [("FAIL", "hv1")]
    status = json.loads(run("fleet", "status", "--store", store, "--format", "json").stdout)
    assert status["targets_by_state"]["done"] == 6 and status["status"] == "complete"
    assert all(t["attempts"] == 1 and t["scan_id"] for t in status["targets"])

    # The same as each target scanned on its own: the fleet calls the pipeline, it does not redo it.
    alone = json.loads(run("scan", "xml", str(fleet_dir / "hv2"), "--no-store", "--format", "json").stdout)
    mine = [f for f in report["findings"] if f["target"].get("host") == "hv2"]
    assert sorted((f["check_id"], f["target"]["name"], f["status"], f["subject"]) for f in mine) == \
        sorted((f["check_id"], f["target"]["name"], f["status"], f["subject"]) for f in alone["findings"])

    # Only a group; `fleet report` re-renders a run from the store.
    web = run("fleet", "scan", str(fleet_dir / "inventory.yaml"), "--store", store, "--group", "web",
              "--format", "json", "-q")
    assert {t.get("host") for t in json.loads(web.stdout)["targets"] if t["kind"] != "host"} == {"hv1", "hv3"}
    again = json.loads(run("fleet", "report", "1", "--store", store, "--format", "json").stdout)
    assert fingerprints(again) == fingerprints(report)


def test_a_failing_target_is_retried_then_marked_failed_with_its_reason(tmp_path: Path) -> None:
    write_xml_hypervisor(tmp_path / "good", 2)
    (tmp_path / "inv.yaml").write_text(f"""
defaults: {{attempts: 3}}
targets:
  - {{kind: xml, path: good, name: good}}
  - {{kind: libvirt, uri: "test://{tmp_path}/missing-node.xml", name: gone}}
""")
    store = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    proc = run("fleet", "scan", str(tmp_path / "inv.yaml"), "--store", store, "--retry-delay", "0.05",
               "--format", "json")
    assert proc.returncode == 3
    assert "gone: failed" in proc.stderr
    errors = json.loads(proc.stdout)["collection_errors"]
    assert any(e["source"] == "gone" and "failed after 3 attempts" in e["reason"]
               and "missing-node.xml" in e["reason"] for e in errors)
    status = json.loads(run("fleet", "status", "latest", "--store", store, "--format", "json").stdout)
    gone = next(t for t in status["targets"] if t["key"] == "gone")
    assert gone["state"] == "failed" and gone["attempts"] == 3 and "cannot connect" in gone["reason"]
    assert [a["outcome"] for a in gone["attempt_log"]] == ["failed"] * 3
    for stamp in [status["created_at"], gone["started_at"], *(a[k] for a in gone["attempt_log"]
                                                           for k in ("started_at", "finished_at"))]:
        assert stamp.endswith("+00:00"), stamp  # every time of the document is UTC, said so
    assert status["status"] == "failed"
    assert run("fleet", "status", "latest", "--store", store).returncode == 3


def _scans(store: Any) -> int:
    with store.transaction("count") as conn:
        return int(conn.execute(select(func.count()).select_from(schema.scans)).scalar_one())


def test_a_task_that_runs_twice_leaves_one_scan(store_url: str, tmp_path: Path) -> None:
    """Attempt 1 starts and writes part of a scan, then its worker 'dies'; attempt 2 runs and finishes;
    then attempt 1's message is delivered again: the target is stored once, with attempt 2's scan."""
    write_xml_hypervisor(tmp_path / "hv", 3)
    inventory = parse_inventory({"targets": [{"kind": "xml", "path": str(tmp_path / "hv"), "name": "hv"}]})
    with open_store(store_url) as store:
        run_row = create_run(store, inventory.targets, source="test", mode="celery", options=RunOptions())
        first = start_attempt(store, run_row.id, "hv", worker="dead", token=run_row.token)
        assert first is not None
        # The dead attempt had begun its scan: a partial scan row with some findings.
        from vmsec.fleet.runs import set_attempt_scan
        from vmsec.pipeline import ScanOptions, scan
        from vmsec.specs import XmlSpec
        partial = scan([XmlSpec(paths=(str(tmp_path / "hv"),))], ScanOptions(store_url=store_url))
        assert partial.scan_id is not None
        set_attempt_scan(store, first, partial.scan_id)

        second = scan_run_target(store, run_row.id, "hv", worker="alive", token=run_row.token)
        assert second.state == "done" and second.attempt == 2
        again = scan_run_target(store, run_row.id, "hv", worker="late", token=run_row.token)
        assert again.state == "skipped"

        status = run_status(store, run_row.id, with_attempts=True)
        (target,) = status.targets
        assert target.state == "done" and target.attempts == 2 and target.scan_id == second.scan_id
        outcomes = [a["outcome"] for a in status.attempts[target.id]]
        assert outcomes == ["lost", "done"]
        assert _scans(store) == 1  # the partial scan is gone
        result = combined_result(store, run_row.id)
        fps = Counter(f.fingerprint for f in result.findings)
        assert fps and max(fps.values()) == 1
        assert status.run.status == "complete" and status.run.finished_at is not None


def test_a_worker_killed_right_after_creating_its_scan_leaves_a_scan_its_attempt_names(
        store_url: str, tmp_path: Path) -> None:
    """The scan row and the attempt's link to it commit together: a worker that dies the moment its
    scan exists (before any finding) leaves nothing another attempt cannot find and delete. This
    window once left a seventh scan behind in the kill-a-worker test."""
    from vmsec.checkinfo import CheckIndex
    from vmsec.fleet.runner import _AttemptSink
    from vmsec.pipeline import ScanHeader

    write_xml_hypervisor(tmp_path / "hv", 2)
    inventory = parse_inventory({"targets": [{"kind": "xml", "path": str(tmp_path / "hv"), "name": "hv"}]})
    with open_store(store_url) as store:
        run_row = create_run(store, inventory.targets, source="test", mode="celery", options=RunOptions())
        dying = start_attempt(store, run_row.id, "hv", worker="dying", token=run_row.token)
        assert dying is not None
        sink = _AttemptSink(store, dying, None)
        sink.begin(ScanHeader(source="test", profile="default", started_at=datetime.now(UTC),
                                  checks_run=0, checks=CheckIndex(()), targets_expected=1))
        sink.inner.conn.close()  # the process is gone: no add, no end, no cleanup
        with store.transaction("look") as conn:
            linked = conn.execute(select(schema.fleet_attempts.c.scan_id)
                                  .where(schema.fleet_attempts.c.id == dying.id)).scalar_one()
        assert linked == sink.scan_id and _scans(store) == 1

        again = scan_run_target(store, run_row.id, "hv", worker="alive", token=run_row.token)
        assert again.state == "done"
        assert _scans(store) == 1  # the dead attempt's empty scan was deleted


def test_a_failing_link_leaves_no_scan(store_url: str) -> None:
    """If recording the scan with its attempt fails, the scan row is not committed either."""
    from vmsec.checkinfo import CheckIndex
    from vmsec.errors import StoreError
    from vmsec.pipeline import ScanHeader
    from vmsec.store.writer import StoreSink

    with open_store(store_url) as store:
        sink = StoreSink.into(store)
        sink.on_begin.append(("UPDATE no_such_table SET x = ?", lambda scan_id: (scan_id,)))
        with pytest.raises(StoreError, match="storing the scan"):
            sink.begin(ScanHeader(source="test", profile="default", started_at=datetime.now(UTC),
                                  checks_run=0, checks=CheckIndex(()), targets_expected=1))
        sink.close()
        assert _scans(store) == 0


def _finish_all_at_once(store: Any, run_id: int, attempts: list[Any], scan_ids: list[int]) -> None:
    import threading

    from vmsec.fleet.runs import finish_attempt
    from vmsec.results import ScanCounts

    barrier = threading.Barrier(len(attempts))
    errors: list[BaseException] = []

    def finish(i: int) -> None:
        try:
            barrier.wait()
            finish_attempt(store, attempts[i], scan_ids[i], counts=ScanCounts.of([]), duration_s=0.1)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(len(attempts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_last_targets_finishing_together_finish_the_run(store_url: str, tmp_path: Path) -> None:
    """Targets finished at the same moment by different workers: the run is marked finished. (Under
    READ COMMITTED the last two once each saw the other still running, and the run never finished —
    seen as a 4-worker benchmark run without a finish time.)"""
    from vmsec.facts import Inventory
    from vmsec.results import ScanResult
    from vmsec.store.writer import save

    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    empty = ScanResult.from_inventory(inventory=Inventory(source="t"), findings=(), profile="default",
                                      started_at=t0, finished_at=t0, checks_run=0, targets=())
    for round_ in range(4):
        inventory = parse_inventory({"targets": [
            {"kind": "xml", "path": str(tmp_path / f"hv{i}"), "name": f"r{round_}-hv{i}"} for i in range(8)]})
        with open_store(store_url) as store:
            run_row = create_run(store, inventory.targets, source="test", mode="celery", options=RunOptions())
            attempts = [start_attempt(store, run_row.id, t.key, worker=f"w{i}", token=run_row.token)
                        for i, t in enumerate(inventory.targets)]
            assert None not in attempts
            _finish_all_at_once(store, run_row.id, attempts, [save(store, empty) for _ in attempts])
            run = run_status(store, run_row.id).run
            assert run.finished_at is not None and run.status == "complete", round_


def test_a_slow_attempt_that_finishes_second_is_superseded(store_url: str, tmp_path: Path) -> None:
    write_xml_hypervisor(tmp_path / "hv", 2)
    inventory = parse_inventory({"targets": [{"kind": "xml", "path": str(tmp_path / "hv"), "name": "hv"}]})
    with open_store(store_url) as store:
        run_row = create_run(store, inventory.targets, source="test", mode="celery", options=RunOptions())
        slow = start_attempt(store, run_row.id, "hv", worker="slow", token=run_row.token)
        assert slow is not None
        fast = scan_run_target(store, run_row.id, "hv", worker="fast", token=run_row.token)
        assert fast.state == "done"
        from vmsec.fleet.runs import finish_attempt
        from vmsec.pipeline import ScanOptions, scan
        from vmsec.specs import XmlSpec

        late = scan([XmlSpec(paths=(str(tmp_path / "hv"),))], ScanOptions(store_url=store_url))
        assert late.scan_id is not None
        assert finish_attempt(store, slow, late.scan_id, counts=late.counts, duration_s=1.0) is False
        assert _scans(store) == 1
        assert run_status(store, run_row.id).targets[0].scan_id == fast.scan_id


def test_a_task_for_another_store_is_refused(tmp_path: Path) -> None:
    from vmsec.fleet.runs import UnknownRun

    inventory = parse_inventory({"targets": [{"kind": "xml", "path": str(tmp_path), "name": "x"}]})
    with open_store(f"sqlite:///{tmp_path / 'a.sqlite'}") as store:
        run_row = create_run(store, inventory.targets, source="t", mode="celery", options=RunOptions())
        with pytest.raises(UnknownRun, match="another run"):
            start_attempt(store, run_row.id, "x", worker="w", token="not-this-run")


def _open_and_close(url: str) -> None:
    open_store(url).close()


def test_workers_starting_together_migrate_a_new_store_once(store_url: str) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_open_and_close, args=(store_url,)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
