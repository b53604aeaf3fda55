"""Scans started from the service: queued by an operator, run off the request thread by the real
pipeline (vmsec.pipeline.scan) on a real domain XML, stored in the target's group, with the group's
approved waivers applied (proposed ones are not) — and scan targets that need a stored credential."""

from __future__ import annotations

from datetime import timedelta

import pytest
from world import T0, XML_TARGET, World

from vmsec.service.core import NotFound
from vmsec.service.queries import FindingFilter


def _scan(w: World) -> int:
    op = w.principal("operator-red")
    job = w.svc.ops.start_scan(op, w.ids["target-red"])
    w.svc.ops.wait(job, 300)
    done = w.svc.ops.job(op, job)
    assert done["status"] == "done", done["error"]
    assert done["scan_id"] is not None
    return int(done["scan_id"])


def test_a_scan_runs_the_pipeline_into_its_group_with_approved_waivers(fresh_world: World) -> None:
    w = fresh_world
    op, admin = w.principal("operator-red"), w.principal("admin-red")
    scan_id = _scan(w)
    scan = w.svc.queries.scan(op, scan_id)
    assert scan["group"] == "red" and scan["state"] in ("complete", "incomplete")
    assert any(t["kind"] == "domain" and t["name"] == "vm1" for t in scan["targets"])
    with pytest.raises(NotFound):
        w.svc.queries.scan(w.principal("admin-blue"), scan_id)
    fails, _ = w.svc.queries.findings(op, FindingFilter(scan_id=scan_id, status=("FAIL",)), limit=500)
    assert fails, "the domain XML has failing checks"
    check = fails[0]["check_id"]
    wid = w.svc.ops.propose_waiver(
        op,
        group="red",
        check=check,
        vulnerability=None,
        target="domain:vm1",
        subject=None,
        reason="lab only",
        owner="ops",
        expires=(T0 + timedelta(days=10)).date(),
    )
    proposed = _scan(w)  # a proposal changes nothing
    assert w.svc.queries.findings(op, FindingFilter(scan_id=proposed, check=check, status=("FAIL",)))[0]
    w.svc.ops.decide_waiver(admin, wid, approve=True)
    waived = _scan(w)
    rows, _ = w.svc.queries.findings(op, FindingFilter(scan_id=waived, check=check), limit=500)
    assert rows and {r["status"] for r in rows} == {"WAIVED"}
    assert "waived by ops" in rows[0]["message"]
    actions = [e["action"] for e in w.svc.queries.audit(admin, limit=50)[0]]
    assert {"scan.start", "scan.finish", "waiver.approve"} <= set(actions)
    # the fleet overview ranks what the scan found
    fleet = w.svc.queries.fleet(op)
    assert any(v["name"] == "vm1" for v in fleet["vms"])


def test_a_target_whose_credential_does_not_fit_fails_its_job_not_the_service(fresh_world: World) -> None:
    w = fresh_world
    admin = w.principal("admin-red")
    cred = w.svc.ops.add_credential(admin, group="red", name="key", kind="ssh-key", secret=b"not a key")
    target = w.svc.ops.add_target(
        admin,
        group="red",
        name="xml-with-key",
        spec={"kind": "xml", "paths": ["/nonexistent.xml"]},
        credential_id=cred,
    )
    job = w.svc.ops.start_scan(admin, target)
    w.svc.ops.wait(job, 120)
    done = w.svc.ops.job(admin, job)
    assert done["status"] == "failed" and "does not fit" in done["error"]
    entries, _ = w.svc.queries.audit(admin, action="scan.finish", limit=1)
    assert entries[0]["outcome"] == "failure"


def test_scheduled_targets_are_scanned_when_due_and_once(fresh_world: World) -> None:
    w = fresh_world
    admin = w.principal("admin-red")
    target = w.svc.ops.add_target(
        admin, group="red", name="nightly", spec={"kind": "xml", "paths": [str(XML_TARGET)]}, every_hours=24
    )
    first = w.svc.ops.run_due()  # due at once
    assert len(first) == 1 and w.svc.ops.run_due() == []  # claimed: not queued twice
    w.svc.ops.wait(first[0], 300)
    assert w.svc.ops.job(admin, first[0])["status"] == "done"
    w.clock.advance(hours=23)
    assert w.svc.ops.run_due() == []
    w.clock.advance(hours=1, seconds=1)
    again = w.svc.ops.run_due()
    assert len(again) == 1
    w.svc.ops.wait(again[0], 300)
    listed = next(t for t in w.svc.ops.list_targets(admin) if t["id"] == target)
    assert listed["every_hours"] == 24 and listed["next_run_at"] > w.clock()
    entries, _ = w.svc.queries.audit(admin, action="scan.start", limit=1)
    assert entries[0]["actor"] == "scheduler:scheduler"
    with pytest.raises(Exception, match="every 1 to 8784 hours"):
        w.svc.ops.add_target(
            admin, group="red", name="never", spec={"kind": "xml", "paths": ["/x"]}, every_hours=0
        )
