"""The findings filter's since/until name instants: a time with any UTC offset, or a naive one (read as
UTC, as the store keeps times), selects the same scans on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from world import T0, World

from vmsec.service.queries import FindingFilter

PLUS_TWO = timezone(timedelta(hours=2))
RED_SCANS = (T0 - timedelta(days=2), T0 - timedelta(days=1))  # world.py: red's two scans, 09:00Z


def _scan_ids(w: World, **times: datetime) -> set[int]:
    found, _ = w.svc.queries.findings(w.principal("admin-red"), FindingFilter(**times), limit=500)
    return {f["scan_id"] for f in found}


@pytest.mark.parametrize("zone", [UTC, PLUS_TWO, None], ids=["utc", "plus-two-hours", "naive"])
def test_since_and_until_are_instants_in_any_zone(world: World, zone: timezone | None) -> None:
    older, newer = world.ids["scan0-red"], world.ids["scan-red"]
    second = RED_SCANS[1]

    def at(instant: datetime) -> datetime:
        return instant.replace(tzinfo=None) if zone is None else instant.astimezone(zone)

    assert _scan_ids(world, since=at(second - timedelta(minutes=30))) == {newer}
    assert _scan_ids(world, since=at(second)) == {newer}  # at or after
    assert _scan_ids(world, since=at(second + timedelta(seconds=1))) == set()
    assert _scan_ids(world, until=at(second)) == {older}  # before
    assert _scan_ids(world, until=at(second + timedelta(minutes=30))) == {older, newer}
    assert _scan_ids(world, since=at(RED_SCANS[0]), until=at(second)) == {older}
