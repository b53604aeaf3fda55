"""State every worker process of one service must share, kept in the store's database: sign-in
throttling (:class:`LoginThrottle`) and pending WebAuthn challenges (:class:`Challenges`). Sessions,
lockouts, TOTP steps, recovery codes and tokens live in their own tables (vmsec.service.accounts).

Both are safe under concurrency across threads and processes: a key's row is written first in its
transaction (PostgreSQL then holds the row lock, SQLite its write lock), so two attempts never both
take the last place of a window, and a challenge is taken by one ``DELETE … RETURNING``: used once.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from vmsec.service.core import utc
from vmsec.store import schema

if TYPE_CHECKING:
    from vmsec.service.core import Service


def _insert_ignoring_existing(conn: Connection, table: Any, values: dict[str, Any]) -> None:
    """INSERT … ON CONFLICT DO NOTHING (PostgreSQL and SQLite both have it)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing())


def _micros(value: datetime) -> int:
    return round(value.astimezone(UTC).timestamp() * 1_000_000)


class LoginThrottle:
    """At most ``ServiceConfig.login_rate`` sign-in attempts per ``window`` per key (a remote address,
    an account name), counted over every worker process: a sliding window of the allowed attempts'
    times, kept in one row per key. Refused attempts are not counted (they do not extend the wait)."""

    def __init__(self, service: Service, window: timedelta = timedelta(seconds=60)) -> None:
        self.svc, self.window = service, window

    def allow(self, key: str) -> bool:
        t = schema.login_throttle
        key = key[:200]
        now = self.svc.now()
        cutoff = now - self.window
        limit = self.svc.config.login_rate
        with self.svc.engine.begin() as conn:
            # the key's row first: it is locked (PostgreSQL) or the database is (SQLite) until commit
            _insert_ignoring_existing(conn, t, {"key": key, "hits": "", "last_at": now})
            row = conn.execute(select(t.c.hits).where(t.c.key == key).with_for_update()).one()
            hits = [int(h) for h in row.hits.split()]
            recent = [h for h in hits if h > _micros(cutoff)]
            allowed = len(recent) < limit
            if allowed:
                recent.append(_micros(now))
            conn.execute(
                update(t).where(t.c.key == key).values(hits=" ".join(map(str, recent)), last_at=now)
            )
        # Keys whose window has passed go, in a transaction of its own (holding no key's lock while
        # it waits for another's): the table holds at most the keys of one window.
        with self.svc.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.last_at <= cutoff))
        return allowed


CHALLENGE_TTL = timedelta(minutes=5)


class Challenges:
    """WebAuthn challenges waiting for the browser's answer, keyed by the session that asked (its
    hashed id), valid for :data:`CHALLENGE_TTL` and usable once — by whichever worker gets the answer."""

    def __init__(self, service: Service) -> None:
        self.svc = service

    def put(self, key: str, challenge: bytes) -> None:
        c = schema.webauthn_challenges
        now = self.svc.now()
        with self.svc.engine.begin() as conn:
            conn.execute(delete(c).where((c.c.key == key) | (c.c.expires_at <= now)))
            conn.execute(
                insert(c).values(
                    key=key,
                    challenge=base64.urlsafe_b64encode(challenge).decode("ascii"),
                    expires_at=now + CHALLENGE_TTL,
                )
            )

    def take(self, key: str) -> bytes | None:
        c = schema.webauthn_challenges
        with self.svc.engine.begin() as conn:
            row = conn.execute(
                delete(c).where(c.c.key == key).returning(c.c.challenge, c.c.expires_at)
            ).first()
        if row is None or (utc(row.expires_at) or self.svc.now()) <= self.svc.now():
            return None
        return base64.urlsafe_b64decode(row.challenge)
