"""The audit log: an append-only hash chain with periodic checkpoints, and its verification.

Entry ``n`` stores ``prev_hash`` (entry ``n-1``'s hash, 64 zeros for the first) and ``hash`` =
HMAC-SHA256(audit key, canonical bytes of ``n``, its time, actor, action, outcome, target, group,
remote address, detail and ``prev_hash``). The key comes from the service key file, outside the
database. Ids run 1, 2, 3 … without gaps; appending locks the single ``audit_head`` row, so concurrent
writers (threads, processes) form one chain. Every :data:`CHECKPOINT_EVERY` entries a checkpoint
records the chain hash with its own HMAC.

:func:`verify` walks the chain in id order and reports the first entry that does not fit:
altered (its HMAC is wrong), deleted (a gap, or a checkpoint / the head naming an entry that is not
there), reordered or inserted (``prev_hash`` does not link). What a chain in the same database cannot
show — the newest entries removed together with the head rewound to an older entry by someone who
can also compute HMACs — is why entries can also be forwarded to syslog (:class:`SyslogForwarder`,
RFC 5424), so a copy lives outside the service.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.engine import Connection

from vmsec.service.keys import ServiceKeys
from vmsec.store import schema
from vmsec.times import as_utc

CHECKPOINT_EVERY = 1000
GENESIS = "0" * 64
_log = logging.getLogger("vmsec.audit")


def _clean(value: str, limit: int = 500) -> str:
    """Audit fields come from requests (user names typed at a login form): no control characters."""
    value = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in value[:limit])
    return value


def _ts(value: datetime) -> str:
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _micros(value: datetime | str) -> int:
    """Microseconds since the epoch, UTC (SQLite hands back naive UTC text, PostgreSQL a datetime)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return round(as_utc(value).timestamp() * 1_000_000)


def canonical(
    entry_id: int,
    ts: datetime | str,
    actor: str,
    action: str,
    outcome: str,
    target: str,
    group_id: int | None,
    remote: str | None,
    detail: str,
    prev_hash: str,
) -> bytes:
    """The bytes an entry's HMAC covers (a JSON array: unambiguous field boundaries; the time as
    integer microseconds, the same on both databases)."""
    return orjson.dumps(
        [entry_id, _micros(ts), actor, action, outcome, target, group_id, remote, detail, prev_hash]
    )


def entry_mac(key: bytes, data: bytes) -> str:
    return hmac.digest(key, data, "sha256").hex()


def checkpoint_mac(key: bytes, entry_id: int, chain_hash: str) -> str:
    return hmac.new(key, f"checkpoint:{entry_id}:{chain_hash}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: datetime
    actor: str
    action: str
    outcome: str
    target: str
    group_id: int | None
    remote: str | None
    detail: Mapping[str, Any]
    hash: str


class AuditLog:
    """Appends entries to the chain (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        keys: ServiceKeys,
        *,
        clock: Callable[[], datetime] | None = None,
        forwarder: SyslogForwarder | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        self._engine = engine
        self._key = keys.audit
        self._clock = clock or (lambda: datetime.now(UTC))
        self.forwarder = forwarder
        self.checkpoint_every = checkpoint_every

    def append(
        self,
        action: str,
        outcome: str,
        actor: str,
        target: str = "",
        *,
        detail: Mapping[str, Any] | None = None,
        group_id: int | None = None,
        remote: str | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Append one entry (in ``conn``'s transaction when given, so it commits with the change it
        records) and return its id."""
        if conn is not None:
            entry = self._append(conn, action, outcome, actor, target, detail, group_id, remote)
        else:
            with self._engine.begin() as own:
                entry = self._append(own, action, outcome, actor, target, detail, group_id, remote)
        if self.forwarder is not None:
            self.forwarder.send(entry)
        return entry.id

    @staticmethod
    def _users_group(conn: Connection, target: str, detail: Mapping[str, Any] | None) -> int | None:
        """Entries about a user (sign-ins, MFA, accounts, tokens) belong to the user's first group, so
        that group's auditors see them; other entries without a group are visible from the host only."""
        name = target[5:] if target.startswith("user:") else (detail or {}).get("user")
        if not isinstance(name, str) or not name:
            return None
        u, m = schema.users, schema.memberships
        value = conn.execute(
            select(func.min(m.c.group_id)).join(u, u.c.id == m.c.user_id).where(u.c.name == name)
        ).scalar()
        return int(value) if value is not None else None

    def _append(
        self,
        conn: Connection,
        action: str,
        outcome: str,
        actor: str,
        target: str,
        detail: Mapping[str, Any] | None,
        group_id: int | None,
        remote: str | None,
    ) -> AuditEntry:
        head = schema.audit_head
        if group_id is None:
            group_id = self._users_group(conn, target, detail)
        # Taking the head's row lock first (an UPDATE) serialises appenders on PostgreSQL and takes
        # SQLite's write lock, so two writers never read the same head.
        conn.execute(update(head).where(head.c.id == 1).values(seq=head.c.seq + 1))
        seq, prev = conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1)).one()
        ts = self._clock().astimezone(UTC)
        ts = ts.replace(microsecond=ts.microsecond)  # microseconds: both databases keep them
        actor, action, outcome = _clean(actor, 200), _clean(action, 50), _clean(outcome, 20)
        target = _clean(target, 2000)
        remote = _clean(remote, 100) if remote is not None else None
        detail_text = orjson.dumps(dict(detail or {}), option=orjson.OPT_SORT_KEYS, default=str).decode()
        digest = entry_mac(
            self._key, canonical(seq, ts, actor, action, outcome, target, group_id, remote, detail_text, prev)
        )
        conn.execute(
            insert(schema.audit_log).values(
                id=seq,
                ts=ts,
                actor=actor,
                action=action,
                outcome=outcome,
                target=target,
                group_id=group_id,
                remote=remote,
                detail=detail_text,
                prev_hash=prev,
                hash=digest,
            )
        )
        conn.execute(update(head).where(head.c.id == 1).values(hash=digest))
        if seq % self.checkpoint_every == 0:
            conn.execute(
                insert(schema.audit_checkpoints).values(
                    entry_id=seq, ts=ts, hash=digest, mac=checkpoint_mac(self._key, seq, digest)
                )
            )
        return AuditEntry(
            seq, ts, actor, action, outcome, target, group_id, remote, dict(detail or {}), digest
        )


# --- verification ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int  # entries checked
    checkpoints: int
    broken_at: int | None = None  # the first entry id that does not fit
    reason: str = ""

    def message(self) -> str:
        if self.ok:
            return (
                f"audit log intact: {self.entries} entries, {self.checkpoints} checkpoints, "
                "chain and checkpoints verified"
            )
        return f"audit log broken at entry {self.broken_at}: {self.reason}"


# The log in id order, each row in the layout of canonical()'s array followed by the stored hash — the
# time already as integer microseconds since the epoch, computed by the database (no datetime object per
# row): the first ten columns of a row *are* the array whose JSON the entry's HMAC covers.
_COLUMNS = "actor, action, outcome, target, group_id, remote, detail, prev_hash, hash FROM audit_log"
_SQL = {
    "postgresql": f"SELECT id, (EXTRACT(EPOCH FROM ts) * 1000000)::bigint, {_COLUMNS} ORDER BY id",
    # SQLAlchemy keeps SQLite times as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); any other text is read by
    # Python instead (NULL here). unixepoch() (SQLite 3.38) costs next to nothing, strftime() a third
    # of the reading. Both are given the whole seconds only: SQLite rounds a time to milliseconds first,
    # so '…:59.999500' would count as the next second (a genuine entry reported as altered).
    "sqlite": "SELECT id, CASE WHEN length(ts) = 26 AND substr(ts, 20, 1) = '.' "
    "THEN {seconds} * 1000000 + CAST(substr(ts, 21, 6) AS INTEGER) END, "
    f"{_COLUMNS} ORDER BY id",
}


def _sql(dialect: str) -> str:
    if dialect != "sqlite":
        return _SQL["postgresql"]
    import sqlite3

    new = sqlite3.sqlite_version_info >= (3, 38)
    seconds = "substr(ts, 1, 19)"
    return _SQL["sqlite"].format(
        seconds=f"unixepoch({seconds})" if new else f"CAST(strftime('%s', {seconds}) AS INTEGER)"
    )


def _streamed(engine: Engine, batch: int) -> Generator[list[Any], None, None]:
    """The log in id order (:data:`_SQL`), streamed in batches of ``batch`` rows — PostgreSQL through a
    server-side cursor, SQLite's cursor steps through the table as it goes — read by a thread of its
    own, so the database's work and the driver's overlap checking the batch before. Closing the
    generator stops the reader."""
    dialect = engine.dialect.name
    sql = _sql(dialect)
    out: queue.Queue[list[Any] | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def read() -> None:
        try:
            raw = engine.raw_connection()
            try:
                if dialect == "postgresql":
                    cur = raw.driver_connection.cursor(name="vmsec_audit_verify")  # type: ignore[union-attr]
                    cur.itersize = batch
                else:
                    cur = raw.cursor()
                try:
                    cur.execute(sql)
                    while not stop.is_set():
                        rows = cur.fetchmany(batch)
                        if not rows:
                            break
                        while not stop.is_set():
                            try:
                                out.put(rows, timeout=0.2)
                                break
                            except queue.Full:
                                continue
                finally:
                    cur.close()
                    raw.rollback()
            finally:
                raw.close()
            out.put(None)
        except BaseException as exc:  # handed to the reader of the queue
            out.put(exc)

    reader = threading.Thread(target=read, name="vmsec-audit-verify", daemon=True)
    reader.start()
    try:
        while True:
            item = out.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(10)


def _hmac_states(key: bytes) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """HMAC-SHA256 (RFC 2104) under ``key`` set up once: copies of the hash states after the inner and
    the outer padded key. A message then costs two state copies and updates — half of
    ``hmac.digest``'s time, which sets the key up again for every message."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner, outer = hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner.copy, outer.copy


def hmac_sha256(key: bytes) -> Callable[[bytes], str]:
    """``data -> HMAC-SHA256(key, data)`` in hex, as :func:`entry_mac` (the loop of :func:`verify` inlines
    it)."""
    inner_copy, outer_copy = _hmac_states(key)

    def mac(data: bytes) -> str:
        inner = inner_copy()
        inner.update(data)
        outer = outer_copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())

    return mac


def verify(engine: Engine, keys: ServiceKeys, *, batch: int = 50_000) -> Verification:
    """Walk the whole chain (see the module docstring); stops at the first broken entry."""
    key = keys.audit
    cp_table, head = schema.audit_checkpoints, schema.audit_head
    with engine.connect() as conn:
        head_row = conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1)).first()
        checkpoints = {r.entry_id: r for r in conn.execute(select(cp_table))}
    n_cp = len(checkpoints)
    expected_id, prev, n = 1, GENESIS, 0
    dumps, compare = orjson.dumps, hmac.compare_digest
    inner_copy, outer_copy = _hmac_states(key)  # the HMAC inlined below (see hmac_sha256)
    batches = _streamed(engine, batch)
    try:
        for rows in batches:
            for row in rows:
                entry_id = row[0]
                if entry_id != expected_id:
                    missing = expected_id if entry_id > expected_id else entry_id
                    reason = f"entry {expected_id} is missing (deleted), next is {entry_id}"
                    return Verification(False, n, n_cp, missing, reason)
                digest = row[10]
                if row[9] != prev:
                    return Verification(
                        False,
                        n,
                        n_cp,
                        entry_id,
                        "its previous-hash does not link to the entry before it "
                        "(entries reordered, inserted or deleted)",
                    )
                if row[1] is None:  # a time the database did not convert (see _SQL)
                    data = dumps((entry_id, _micros(_entry_ts(engine, entry_id)), *row[2:10]))
                else:
                    data = dumps(row[:10])
                inner = inner_copy()
                inner.update(data)
                outer = outer_copy()
                outer.update(inner.digest())
                if not compare(outer.hexdigest(), digest):
                    return Verification(
                        False,
                        n,
                        n_cp,
                        entry_id,
                        "its contents do not match its hash (altered, or another key)",
                    )
                if entry_id in checkpoints:
                    cp = checkpoints[entry_id]
                    if cp.hash != digest or not compare(checkpoint_mac(key, entry_id, cp.hash), cp.mac):
                        return Verification(
                            False, n, n_cp, entry_id, "the checkpoint at this entry does not match the chain"
                        )
                prev, expected_id, n = digest, expected_id + 1, n + 1
    finally:
        batches.close()
    last_id = expected_id - 1
    beyond = sorted(i for i in checkpoints if i > last_id)
    if beyond:
        return Verification(
            False,
            n,
            n_cp,
            last_id + 1,
            f"entries {last_id + 1}…{beyond[-1]} are missing: a checkpoint names entry {beyond[-1]}",
        )
    if head_row is not None and (head_row.seq != last_id or head_row.hash != prev):
        if head_row.seq > last_id:
            return Verification(
                False,
                n,
                n_cp,
                last_id + 1,
                f"entries {last_id + 1}…{head_row.seq} are missing (the log's head is at {head_row.seq})",
            )
        return Verification(False, n, n_cp, head_row.seq or 1, "the log's head does not match its last entry")
    return Verification(True, n, n_cp)


def _entry_ts(engine: Engine, entry_id: int) -> Any:
    """An entry's time as the driver gives it (text on SQLite: _micros reads any ISO 8601 form)."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT ts FROM audit_log WHERE id = :id"), {"id": entry_id}).scalar_one()


# --- syslog (RFC 5424) ---------------------------------------------------------------------------

_FACILITY_AUTHPRIV = 10
_SEVERITY = {"success": 5, "failure": 4, "denied": 4}  # notice / warning
_SD_ID = "vmsec@32473"  # 32473: the IANA enterprise number reserved for examples (RFC 5612)


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_rfc5424(entry: AuditEntry, hostname: str | None = None, app: str = "vmsec") -> bytes:
    """One entry as an RFC 5424 message: the audit fields as structured data, the detail as MSG."""
    pri = _FACILITY_AUTHPRIV * 8 + _SEVERITY.get(entry.outcome, 5)
    host = (hostname or socket.gethostname() or "-")[:255].replace(" ", "_")
    params = {
        "seq": str(entry.id),
        "action": entry.action,
        "outcome": entry.outcome,
        "actor": entry.actor,
        "target": entry.target,
        "group": "" if entry.group_id is None else str(entry.group_id),
        "remote": entry.remote or "",
        "hash": entry.hash,
    }
    sd = "[" + _SD_ID + "".join(f' {k}="{_sd_escape(v)}"' for k, v in params.items()) + "]"
    msg = orjson.dumps(dict(entry.detail), option=orjson.OPT_SORT_KEYS, default=str).decode()
    header = f"<{pri}>1 {_ts(entry.ts)} {host} {app} {os.getpid()} audit {sd} "
    return header.encode("utf-8") + b"\xef\xbb\xbf" + msg.encode("utf-8")


class SyslogForwarder:
    """Sends each appended entry to a syslog collector: ``udp://HOST:PORT``, ``tcp://HOST:PORT``
    (RFC 6587 octet counting) or ``unix:///dev/log``. Best effort: a collector that is down is
    logged, never a failed request; the chain in the database stays the record."""

    def __init__(self, address: str) -> None:
        scheme, _, rest = address.partition("://")
        if scheme not in ("udp", "tcp", "unix") or not rest:
            raise ValueError(
                f"syslog address must be udp://HOST:PORT, tcp://HOST:PORT or unix://PATH: {address!r}"
            )
        self.scheme = scheme
        if scheme == "unix":
            self.target: Any = rest
        else:
            host, _, port = rest.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"syslog address needs HOST:PORT: {address!r}")
            self.target = (host.strip("[]"), int(port))
        self._lock = threading.Lock()
        self._tcp: socket.socket | None = None

    def send(self, entry: AuditEntry) -> None:
        data = format_rfc5424(entry)
        try:
            with self._lock:
                if self.scheme == "udp":
                    family = socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET
                    with socket.socket(family, socket.SOCK_DGRAM) as s:
                        s.sendto(data, self.target)
                elif self.scheme == "unix":
                    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                        s.sendto(data, self.target)
                else:
                    if self._tcp is None:
                        self._tcp = socket.create_connection(self.target, timeout=2)
                    try:
                        self._tcp.sendall(f"{len(data)} ".encode() + data)
                    except OSError:
                        self._tcp.close()
                        self._tcp = None
                        raise
        except OSError as exc:
            _log.warning("audit entry %s not forwarded to syslog: %s", entry.id, exc)
