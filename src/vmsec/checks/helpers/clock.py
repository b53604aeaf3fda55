"""The scan's own time, for checks whose verdict depends on a date (an expired certificate or key)."""

from __future__ import annotations

import datetime as dt

from vmsec.checks.api import Environment
from vmsec.times import as_utc


def instant(text: str) -> dt.datetime:
    """A time of the facts or parameters, as an aware UTC instant (a naive one is UTC)."""
    return as_utc(dt.datetime.fromisoformat(text))


def scan_instant(env: Environment) -> dt.datetime:
    """The scan's start (parameter ``now``); a ``today`` of another day (a profile judging a date to
    come) counts from that day's start, UTC; without either, the clock."""
    now, today = env.params.get("now"), env.params.get("today")
    if isinstance(now, str) and (not isinstance(today, str) or now[:10] == today):
        return instant(now)
    if isinstance(today, str):
        return instant(today)
    return dt.datetime.now(dt.UTC)
