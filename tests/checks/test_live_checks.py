"""The live checks on facts built directly, for the cases the verdict fixtures cannot hold."""

from __future__ import annotations

from vmsec.checks.api import results_of
from vmsec.checks.live.correlation import live_matches_disk
from vmsec.facts import Guest, Inventory, OsRelease, RuntimeState
from vmsec.findings import Status


def test_a_locked_agent_and_an_unreadable_disk_compare_nothing() -> None:
    live = Guest(name="web01", origin="guest agent of web01", domain="web01",
                 runtime=RuntimeState(source="guest agent of web01"))
    disk = Guest(name="web01 (disk)", origin="web01.qcow2", domain="web01")
    [result] = results_of(live_matches_disk, Inventory(guests=(live, disk)))
    assert result.status is Status.UNKNOWN and result.target is not None and result.target.name == "web01"


def test_only_guests_of_one_domain_are_paired() -> None:
    os = OsRelease(id="debian", version_id="12")
    live = Guest(name="web01", origin="ssh://web01", domain="web01", os=os,
                 runtime=RuntimeState(source="ssh web01"))
    other = Guest(name="db01 (disk)", origin="db01.qcow2", domain="db01",
                  os=OsRelease(id="debian", version_id="11"))
    assert results_of(live_matches_disk, Inventory(guests=(live, other))) == []
