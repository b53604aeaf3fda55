"""Schedules: bounded intervals and names, and one bad schedule never stops the others (a review found a
'--every 9999999d' schedule that made every claim raise OverflowError, after it had already moved the
other schedules' next run forward — so none of them ever ran again)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from vmsec.errors import ConfigError
from vmsec.fleet.inventory import MAX_DURATION, parse_duration, parse_inventory
from vmsec.fleet.runs import RunOptions
from vmsec.fleet.schedules import add_schedule, claim_due, list_schedules
from vmsec.store import open_store, schema

INVENTORY = parse_inventory({"targets": [{"kind": "xml", "path": "/srv/exports"}]}, "inv.yaml")


@pytest.mark.parametrize("value", ["9999999d", "367d", 10**30, float("inf"), float("nan"), "0s", -5])
def test_a_duration_is_one_second_to_a_year_and_a_day(value: object) -> None:
    with pytest.raises(ConfigError, match="a duration from 1 s to 366 days is needed"):
        parse_duration(value, "--every")
    assert parse_duration("366d", "--every") == MAX_DURATION and parse_duration("90s", "x") == 90


@pytest.mark.parametrize("name", ["", "plain\n", "n\u202e\a", "\udcff", "x" * 201])
def test_a_schedule_name_is_a_name(tmp_path: Path, name: str) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    with pytest.raises(ConfigError, match="is not a usable name"):
        add_schedule(store, name, INVENTORY, every_s=60, group=None, options=RunOptions())
    assert list_schedules(store) == []


def test_an_unbounded_interval_stored_earlier_does_not_stop_the_other_schedules(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    start = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match="a schedule runs every 1 s to 366 days"):
        add_schedule(store, "big", INVENTORY, every_s=MAX_DURATION + 1, group=None, options=RunOptions())
    for name in ("big", "small"):
        add_schedule(store, name, INVENTORY, every_s=60, group=None, options=RunOptions(), first_at=start)
    with store.transaction("a schedule from before intervals were bounded") as conn:
        conn.execute(update(schema.fleet_schedules).where(schema.fleet_schedules.c.name == "big")
                     .values(interval_s=863_999_913_600))
    now = start + timedelta(minutes=5)
    assert sorted(s.name for s in claim_due(store, now)) == ["big", "small"]
    due = {s.name: s.next_run_at for s in list_schedules(store)}
    assert due["small"] == now + timedelta(seconds=60)
    assert due["big"] == start + timedelta(seconds=MAX_DURATION)  # its interval, bounded
    assert claim_due(store, now) == []  # claimed once


def test_removing_a_schedule_by_an_unusable_name_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "vmsec.cli.main", "fleet", "schedule", "remove", b"\xff",
                           "--store", f"sqlite:///{tmp_path / 's.sqlite'}"], capture_output=True,
                          env={**os.environ}, timeout=120, check=False)
    assert proc.returncode == 2 and b"is not a usable name" in proc.stderr, proc.stderr
