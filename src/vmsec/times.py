"""Every time vmsec stores, compares or reports is an aware datetime in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive time is taken as UTC already (SQLite keeps no time zone and hands
    back the UTC it was given; a time a user typed without a zone means UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
