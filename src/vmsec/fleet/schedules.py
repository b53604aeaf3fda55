"""Scheduled fleet scans per group, kept in the store and run by workers started with ``--scheduler``.

A schedule holds the inventory document itself (workers need no file) and an interval. Any number of
workers may run the scheduler: a due schedule is *claimed* with one conditional update (its next
run moves forward only if it still has the due time that worker read), so exactly one worker starts
each scheduled run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from vmsec.errors import ConfigError
from vmsec.fleet.inventory import MAX_DURATION, FleetInventory, parse_inventory, schedule_name
from vmsec.fleet.runs import RunOptions, RunRow, create_run
from vmsec.store import Store, schema
from vmsec.times import as_utc

__all__ = ["Schedule", "add_schedule", "claim_due", "list_schedules", "remove_schedule", "start_run"]



@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    name: str
    source: str
    inventory: Mapping[str, Any]
    group: str | None
    interval_s: int
    next_run_at: datetime
    last_run_id: int | None
    enabled: bool
    options: RunOptions

    def fleet(self) -> FleetInventory:
        """The schedule's targets (its group's, when it names one)."""
        return parse_inventory(self.inventory, f"schedule {self.name}").select(self.group)


def _schedule(r: Any) -> Schedule:
    return Schedule(name=r["name"], source=r["source"], inventory=r["inventory"], group=r["group_name"],
                    interval_s=r["interval_s"], next_run_at=as_utc(r["next_run_at"]),
                    last_run_id=r["last_run_id"], enabled=r["enabled"],
                    options=RunOptions.from_json(r["options"] or {}))


def add_schedule(store: Store, name: str, inventory: FleetInventory, *, every_s: int, group: str | None,
                 options: RunOptions, first_at: datetime | None = None, replace: bool = False) -> Schedule:
    """Keep a schedule (``replace`` one of that name). The group must have targets."""
    inventory.select(group)  # a clear error now, not at the first run
    name = schedule_name(name)
    if not 1 <= every_s <= MAX_DURATION:
        raise ConfigError(f"a schedule runs every 1 s to {MAX_DURATION // 86400} days, not {every_s} s")
    now = datetime.now(UTC)
    fs = schema.fleet_schedules
    row = {"source": inventory.source, "inventory": dict(inventory.document), "group_name": group,
           "interval_s": every_s, "next_run_at": first_at or now, "enabled": True,
           "options": options.to_json()}
    with store.transaction("saving a schedule") as conn:
        exists = conn.execute(select(fs.c.name).where(fs.c.name == name)).first() is not None
        if exists and not replace:
            raise ConfigError(f"a schedule named {name!r} exists (remove it, or use --replace)")
        if exists:
            conn.execute(update(fs).where(fs.c.name == name).values(**row))
        else:
            conn.execute(insert(fs).values(name=name, created_at=now, last_run_id=None, **row))
        return _schedule(conn.execute(select(fs).where(fs.c.name == name)).mappings().one())


def list_schedules(store: Store) -> list[Schedule]:
    fs = schema.fleet_schedules
    with store.transaction("listing schedules") as conn:
        return [_schedule(r) for r in conn.execute(select(fs).order_by(fs.c.name)).mappings()]


def remove_schedule(store: Store, name: str) -> bool:
    fs = schema.fleet_schedules
    with store.transaction("removing a schedule") as conn:
        return bool(conn.execute(delete(fs).where(fs.c.name == name)).rowcount == 1)


def claim_due(store: Store, now: datetime | None = None) -> list[Schedule]:
    """The enabled schedules due at ``now`` that this caller won (their next run moved forward by one
    interval past ``now``); another caller racing for the same schedule gets nothing for it."""
    now = now or datetime.now(UTC)
    fs = schema.fleet_schedules
    claimed: list[Schedule] = []
    with store.transaction("reading schedules") as conn:
        due = [_schedule(r) for r in conn.execute(
            select(fs).where(fs.c.enabled.is_(True), fs.c.next_run_at <= now)).mappings()]
    for s in due:
        # An interval stored before intervals were bounded must not stop every other schedule.
        interval = timedelta(seconds=min(max(s.interval_s, 1), MAX_DURATION))
        following = s.next_run_at + interval
        if following <= now:  # missed runs (nobody ran the scheduler) are not all made up
            following = now + interval
        with store.transaction("claiming a schedule") as conn:
            won = conn.execute(update(fs).where(fs.c.name == s.name, fs.c.next_run_at == s.next_run_at)
                               .values(next_run_at=following)).rowcount == 1
        if won:
            claimed.append(s)
    return claimed


def start_run(store: Store, schedule: Schedule, *, mode: str) -> RunRow:
    """Create the run of a claimed schedule (its tasks are sent by the caller)."""
    fleet = schedule.fleet()
    run = create_run(store, fleet.targets, source=f"schedule {schedule.name} ({schedule.source})",
                     mode=mode, options=schedule.options, schedule=schedule.name, group=schedule.group)
    fs = schema.fleet_schedules
    with store.transaction("recording a scheduled run") as conn:
        conn.execute(update(fs).where(fs.c.name == schedule.name).values(last_run_id=run.id))
    return run
