"""Fleet scans on real Celery workers (``vmsec worker`` processes) with a real redis-server broker and a
PostgreSQL store: the same report as in-process, per-hypervisor caps across workers, --no-wait and
status, scheduled scans, and a worker killed with SIGKILL in the middle of a run."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from fleetdata import write_test_node, write_xml_hypervisor
from vmsec.store import open_store, schema

VMSEC = str(Path(sys.executable).with_name("vmsec"))
DOMAINS = 1_000  # per target of the killed-worker test


def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VMSEC, *args], capture_output=True, text=True, timeout=timeout, check=False)


def status(store: str, ref: str = "latest") -> dict[str, Any]:
    proc = run("fleet", "status", ref, "--store", store, "--format", "json")
    return dict(json.loads(proc.stdout))


def wait_finished(store: str, ref: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = status(store, ref)
        if doc["finished_at"] is not None:
            return doc
        assert time.monotonic() < deadline, f"run {ref} did not finish: {doc['targets_by_state']}"
        time.sleep(0.3)


def findings_key(report: dict[str, Any]) -> Counter[tuple[str, str | None, str, str]]:
    return Counter((f["target"]["name"], f["target"].get("host"), f["fingerprint"], f["status"])
                   for f in report["findings"])


def test_workers_scan_a_fleet_as_the_in_process_run_does(cluster: Any, tmp_path: Path) -> None:
    for n in range(4):
        write_xml_hypervisor(tmp_path / f"hv{n}", 15)
    uri = write_test_node(tmp_path / "hv9" / "node.xml", 10)
    targets = "\n".join(f"  - {{kind: xml, path: hv{n}, hypervisor: hv{n}}}" for n in range(4))
    (tmp_path / "inv.yaml").write_text(f"targets:\n{targets}\n  - {{kind: libvirt, uri: \"{uri}\", "
                                       "hypervisor: hv9}\n")
    distributed = run("fleet", "scan", str(tmp_path / "inv.yaml"), "--broker", cluster.broker,
                      "--store", cluster.store, "--format", "json", "--wait-timeout", "120")
    assert distributed.returncode in (0, 3), distributed.stderr
    local = run("fleet", "scan", str(tmp_path / "inv.yaml"), "--store", f"sqlite:///{tmp_path}/l.sqlite",
                "--format", "json", "-q")
    assert findings_key(json.loads(distributed.stdout)) == findings_key(json.loads(local.stdout))
    doc = status(cluster.store)
    assert doc["mode"] == "celery" and doc["targets_by_state"]["done"] == 5
    assert len({t["worker"] for t in doc["targets"]}) == 2  # both workers took tasks


def test_a_hypervisor_cap_holds_across_workers(cluster: Any, tmp_path: Path) -> None:
    for n in range(4):
        write_xml_hypervisor(tmp_path / f"t{n}", 40)
    entries = "\n".join(f"  - {{kind: xml, path: t{n}, name: t{n}, hypervisor: busy}}" for n in range(4))
    (tmp_path / "inv.yaml").write_text(f"hypervisors:\n  busy: {{limit: 1}}\ntargets:\n{entries}\n")
    proc = run("fleet", "scan", str(tmp_path / "inv.yaml"), "--broker", cluster.broker, "--store",
               cluster.store, "--format", "json", "--wait-timeout", "120", "-q")
    assert proc.returncode in (0, 3), proc.stderr
    doc = status(cluster.store)
    spans = sorted((a["started_at"], a["finished_at"]) for t in doc["targets"] for a in t["attempt_log"])
    assert len(spans) == 4 and all(t["attempts"] == 1 for t in doc["targets"])  # waiting is no attempt
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, f"two scans of hypervisor 'busy' overlapped: {spans}"


def test_no_wait_then_status_and_report(cluster: Any, tmp_path: Path) -> None:
    write_xml_hypervisor(tmp_path / "hv", 5)
    (tmp_path / "inv.yaml").write_text("targets:\n  - {kind: xml, path: hv, name: only}\n")
    proc = run("fleet", "scan", str(tmp_path / "inv.yaml"), "--broker", cluster.broker, "--store",
               cluster.store, "--no-wait", "-q")
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    assert run_id.isdigit()
    doc = wait_finished(cluster.store, run_id, 60)
    assert doc["status"] == "complete" and doc["targets"][0]["state"] == "done"
    text = run("fleet", "status", run_id, "--store", cluster.store)
    assert text.returncode == 0 and "only" in text.stdout and "done" in text.stdout
    report = run("fleet", "report", run_id, "--store", cluster.store, "--format", "sarif")
    assert report.returncode in (0, 3) and json.loads(report.stdout)["runs"][0]["results"]


def test_scheduled_scans_of_a_group_are_started_by_a_worker(cluster: Any, tmp_path: Path) -> None:
    write_xml_hypervisor(tmp_path / "a", 3)
    write_xml_hypervisor(tmp_path / "b", 3)
    (tmp_path / "inv.yaml").write_text("groups:\n  nightly: {every: 1h}\ntargets:\n"
                                       "  - {kind: xml, path: a, name: a, groups: [nightly]}\n"
                                       "  - {kind: xml, path: b, name: b}\n")
    added = run("fleet", "schedule", "add", "nightly-scan", str(tmp_path / "inv.yaml"), "--group", "nightly",
                "--store", cluster.store)
    assert added.returncode == 0, added.stderr
    deadline = time.monotonic() + 30
    while True:
        doc = status(cluster.store)
        if doc["schedule"] == "nightly-scan" and doc["finished_at"]:
            break
        assert time.monotonic() < deadline, "the scheduler did not start the scheduled run"
        time.sleep(0.3)
    assert [t["key"] for t in doc["targets"]] == ["a"] and doc["group"] == "nightly"
    listed = run("fleet", "schedule", "list", "--store", cluster.store).stdout
    assert "nightly-scan" in listed and f"last run #{doc['run']}" in listed
    time.sleep(1.5)  # the next run is an hour away: no second run
    assert status(cluster.store)["run"] == doc["run"]
    assert run("fleet", "schedule", "remove", "nightly-scan", "--store", cluster.store).returncode == 0


def test_a_worker_killed_mid_run_loses_no_target_and_duplicates_nothing(
        broker_url: str, pg_url: str, workers: Any, tmp_path: Path) -> None:
    broker = broker_url  # not the module's cluster's: its workers would take this run's tasks
    # Targets big enough that the kill lands mid-scan: a 1,000-domain target takes ≈ 1 s here (250 took
    # 0.2 s once scans got faster — a narrow window for the sighting below to catch).
    # Timeouts generous enough for a loaded CI machine (a target can take several seconds
    # there); the redelivery after the kill waits for the visibility timeout, so keep it modest.
    killed, _survivor = workers.start(2, broker=broker, store=pg_url,
                                      args=("--task-timeout", "15", "--visibility-timeout", "20"))
    for n in range(6):
        write_xml_hypervisor(tmp_path / f"hv{n}", DOMAINS)
    entries = "\n".join(f"  - {{kind: xml, path: hv{n}, name: hv{n}}}" for n in range(6))
    (tmp_path / "inv.yaml").write_text(f"targets:\n{entries}\n")
    proc = run("fleet", "scan", str(tmp_path / "inv.yaml"), "--broker", broker, "--store", pg_url,
               "--no-wait", "-q")
    run_id = proc.stdout.strip()
    assert proc.returncode == 0 and run_id.isdigit(), proc.stderr

    from vmsec.fleet.runs import run_status

    victim_task = None
    deadline = time.monotonic() + 60
    with open_store(pg_url) as store:
        while victim_task is None:  # polled in-process: the kill follows the sighting by milliseconds
            for t in run_status(store, int(run_id)).targets:
                if t.state == "running" and (t.worker or "").endswith(f":{killed.pid}"):
                    victim_task = t.key
            assert time.monotonic() < deadline, "the worker never started a task"
            time.sleep(0.02)
    killed.kill()  # SIGKILL in the middle of its scan (each target takes about a second)

    doc = wait_finished(pg_url, run_id, 240)
    assert doc["targets_by_state"]["done"] == 6, doc["targets_by_state"]
    victim = next(t for t in doc["targets"] if t["key"] == victim_task)
    assert victim["attempts"] >= 2
    assert [a["outcome"] for a in victim["attempt_log"]][-1] == "done"
    assert "lost" in [a["outcome"] for a in victim["attempt_log"]]

    with open_store(pg_url) as store, store.transaction("check") as conn:
        scans = conn.execute(select(func.count()).select_from(schema.scans)).scalar_one()
        per_target = conn.execute(
            select(schema.findings.c.target_id, schema.findings.c.fingerprint, func.count())
            .group_by(schema.findings.c.target_id, schema.findings.c.fingerprint)
            .having(func.count() > 1)).all()
    assert scans == 6  # one scan per target: the killed attempt's partial scan is gone
    assert per_target == []  # no finding twice
    report = json.loads(run("fleet", "report", run_id, "--store", pg_url, "--format", "json").stdout)
    keys = findings_key(report)
    assert max(keys.values()) == 1
    assert len({(n, h) for n, h, _, _ in keys}) == 6 * DOMAINS  # every domain of every target, once
