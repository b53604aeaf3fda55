"""The audit log: every security event appends an entry to an HMAC chain; altering, deleting,
reordering or inserting entries (and deleting the newest ones) is detected by ``vmsec audit verify``,
which names the first broken entry; entries are also forwarded to syslog in RFC 5424 form."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, text, update
from world import PASSWORD, World

from vmsec.service.audit import AuditLog, SyslogForwarder, entry_mac, hmac_sha256, verify
from vmsec.service.core import cli_principal
from vmsec.service.keys import ServiceKeys
from vmsec.store import open_store, schema


def _verify_cli(world: World, key: Path) -> subprocess.CompletedProcess[str]:
    url = world.svc.store.engine.url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "vmsec.cli.main", "audit", "verify", "--store", url, "--key-file", str(key)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ.copy(),
    )


def test_security_events_are_recorded(fresh_world: World) -> None:
    w = fresh_world
    a = w.svc.accounts
    a.login_password("viewer-red", "wrong password!", "192.0.2.7", None)
    a.login_password("viewer-red", PASSWORD, "192.0.2.7", None)
    entries, _ = w.svc.queries.audit(cli_principal(), limit=500)
    actions = {e["action"] for e in entries}
    assert {
        "user.create",
        "user.disable",
        "token.create",
        "token.revoke",
        "credential.create",
        "target.create",
        "waiver.propose",
        "login.password",
        "group.create",
    } <= actions
    logins = [e for e in entries if e["action"] == "login.password"][:2]
    assert [e["outcome"] for e in logins] == ["success", "failure"] and logins[0]["remote"] == "192.0.2.7"


Tamper = Callable[[Engine], None]


def _alter(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(schema.audit_log).where(schema.audit_log.c.id == 5).values(outcome="success "))


def _delete(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(schema.audit_log).where(schema.audit_log.c.id == 5))


def _reorder(engine: Engine) -> None:
    log = schema.audit_log
    with engine.begin() as conn:
        a = conn.execute(select(log).where(log.c.id == 5)).one()._asdict()
        b = conn.execute(select(log).where(log.c.id == 6)).one()._asdict()
        conn.execute(delete(log).where(log.c.id.in_([5, 6])))
        conn.execute(log.insert(), [{**b, "id": 5}, {**a, "id": 6}])


def _rewrite_chain_without_key(engine: Engine) -> None:
    """Delete entry 5 and re-link the chain with another key: the HMACs give it away."""
    log = schema.audit_log
    other = AuditLog(engine, ServiceKeys(b"k" * 32))
    with engine.begin() as conn:
        rows = [r._asdict() for r in conn.execute(select(log).where(log.c.id > 5).order_by(log.c.id))]
        conn.execute(delete(log).where(log.c.id >= 5))
        prev = conn.execute(select(log.c.hash).where(log.c.id == 4)).scalar_one()
        from vmsec.service.audit import canonical, entry_mac

        for i, r in enumerate(rows, start=5):
            data = canonical(
                i,
                r["ts"],
                r["actor"],
                r["action"],
                r["outcome"],
                r["target"],
                r["group_id"],
                r["remote"],
                r["detail"],
                prev,
            )
            r.update(id=i, prev_hash=prev, hash=entry_mac(other._key, data))
            conn.execute(log.insert().values(**r))
            prev = r["hash"]


def _truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        last = conn.execute(select(schema.audit_head.c.seq)).scalar_one()
        conn.execute(delete(schema.audit_log).where(schema.audit_log.c.id > last - 3))


@pytest.mark.parametrize(
    ("tamper", "first_broken"),
    [(_alter, 5), (_delete, 5), (_reorder, 5), (_rewrite_chain_without_key, 5), (_truncate, None)],
)
def test_tampering_is_detected_and_named(
    world: World, tmp_path: Path, tamper: Tamper, first_broken: int | None
) -> None:
    """On both backends: a copy of the world's store is tampered with and verified by the CLI."""
    # a private copy of the log: the module's world stays intact
    url = f"sqlite:///{tmp_path / 'copy.sqlite'}"
    copy = open_store(url)
    with world.svc.engine.connect() as src, copy.engine.begin() as dst:
        for table in (schema.audit_log, schema.audit_checkpoints):
            rows = [r._asdict() for r in src.execute(select(table))]
            if rows:
                dst.execute(table.insert(), rows)
        head = src.execute(select(schema.audit_head)).one()._asdict()
        dst.execute(update(schema.audit_head).values(**head))
    key = tmp_path / "world.key"
    key.write_bytes(b"")
    assert verify(copy.engine, world.svc.keys).ok
    tamper(copy.engine)
    result = verify(copy.engine, world.svc.keys)
    assert not result.ok
    head_seq = head["seq"]
    assert result.broken_at == (first_broken if first_broken is not None else head_seq - 2)
    copy.close()


def test_verify_command_exit_codes(fresh_world: World, tmp_path: Path) -> None:
    key = tmp_path / "service.key"  # fresh_world's key file (tests/web/conftest.py)
    ok = _verify_cli(fresh_world, key)
    assert ok.returncode == 0, ok.stderr
    assert re.match(r"audit log intact: \d+ entries", ok.stdout)
    _alter(fresh_world.svc.engine)
    broken = _verify_cli(fresh_world, key)
    assert broken.returncode == 1 and "broken at entry 5" in broken.stderr


def test_audit_list_shows_entries_of_no_group_to_the_host(fresh_world: World, tmp_path: Path) -> None:
    fresh_world.svc.accounts.login_password("nobody-here", "wrong password!", "192.0.2.66", None)
    url = fresh_world.svc.store.engine.url.render_as_string(hide_password=False)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vmsec.cli.main",
            "audit",
            "list",
            "--store",
            url,
            "--key-file",
            str(tmp_path / "service.key"),
            "--action",
            "login.password",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ.copy(),
    )
    assert r.returncode == 0, r.stderr
    import json

    entries = json.loads(r.stdout)
    assert entries[0]["actor"] == "anonymous:nobody-here" and entries[0]["group_id"] is None
    # … which no group's auditor sees in the dashboard
    rows, _ = fresh_world.svc.queries.audit(fresh_world.principal("admin-red"), action="login.password")
    assert all(e["actor"] != "anonymous:nobody-here" for e in rows)


def test_checkpoints_are_written_and_checked(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    keys = ServiceKeys(b"x" * 32)
    log = AuditLog(store.engine, keys, checkpoint_every=10)
    for i in range(35):
        log.append("test.event", "success", "pytest", f"thing:{i}")
    result = verify(store.engine, keys)
    assert result.ok and result.entries == 35 and result.checkpoints == 3
    with store.engine.begin() as conn:  # remove entries 21-35 and rewind the head: checkpoint 30 remains
        conn.execute(delete(schema.audit_log).where(schema.audit_log.c.id > 20))
        h = conn.execute(select(schema.audit_log.c.hash).where(schema.audit_log.c.id == 20)).scalar_one()
        conn.execute(update(schema.audit_head).values(seq=20, hash=h))
    result = verify(store.engine, keys)
    assert not result.ok and result.broken_at == 21 and "checkpoint" in result.reason
    store.close()


def test_concurrent_appends_form_one_chain(world: World) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                world.svc.audit.append("test.concurrent", "success", "pytest", "x")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert verify(world.svc.engine, world.svc.keys).ok


def test_entries_are_forwarded_to_syslog_as_rfc5424(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    log = AuditLog(store.engine, ServiceKeys(b"x" * 32), forwarder=SyslogForwarder(f"udp://127.0.0.1:{port}"))
    log.append(
        "login.password",
        "failure",
        'anonymous:ev"il]',
        'user:ev"il]',
        detail={"reason": "unknown user"},
        remote="192.0.2.1",
    )
    data = sock.recv(65535)
    sock.close()
    store.close()
    text = data.decode("utf-8")
    # <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA SP MSG
    m = re.match(r"<(\d+)>1 (\S+Z) (\S+) vmsec (\d+) audit (\[vmsec@32473 [^\n]*?\]) \ufeff(.*)$", text, re.S)
    assert m is not None, text
    assert int(m.group(1)) == 10 * 8 + 4  # authpriv.warning
    sd = m.group(5)
    assert 'action="login.password"' in sd and 'outcome="failure"' in sd and 'seq="1"' in sd
    assert r'actor="anonymous:ev\"il\]"' in sd  # SD-PARAM escaping of " and ]
    assert m.group(6) == '{"reason":"unknown user"}'


@pytest.fixture(params=["sqlite", "postgresql"])
def log_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, ServiceKeys]]:
    """A store of its own with a short chain (3 checkpoints) of appended entries, on either backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    else:
        url = request.getfixturevalue("pg_cluster").new_database()
    store = open_store(url)
    keys = ServiceKeys.load(tmp_path / "log.key")
    log = AuditLog(store.engine, keys, checkpoint_every=10)
    for i in range(35):
        user = f"user:u{i}"
        log.append("login.password", "failure", user, user, detail={"n": i}, remote="192.0.2.9")
    yield store.engine, keys
    store.close()


def test_verify_streams_the_chain_on_both_backends(log_store: tuple[Engine, ServiceKeys]) -> None:
    engine, keys = log_store
    ok = verify(engine, keys, batch=4)  # batches that do not divide the log
    assert ok.ok and ok.entries == 35 and ok.checkpoints == 3
    _alter(engine)
    broken = verify(engine, keys, batch=4)
    assert not broken.ok and broken.broken_at == 5 and "do not match its hash" in broken.reason


def test_a_time_the_database_does_not_convert_is_read_by_python(tmp_path: Path) -> None:
    """SQLite times in another ISO 8601 form than SQLAlchemy writes (another tool, an older vmsec): the
    same instant verifies, another instant does not."""
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    store = open_store(url)
    keys = ServiceKeys.load(tmp_path / "log.key")
    log = AuditLog(store.engine, keys, clock=lambda: datetime(2026, 6, 1, 9, 0, 0, 250000, tzinfo=UTC))
    for i in range(6):
        log.append("login.password", "failure", f"user:u{i}", f"user:u{i}")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET ts = '2026-06-01T11:00:00.25+02:00' WHERE id = 3"))
    assert verify(store.engine, keys).ok
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET ts = '2026-06-01T09:00:00.25' WHERE id = 4"))  # naive: UTC
        conn.execute(text("UPDATE audit_log SET ts = '2026-06-01T09:00:01.25+00:00' WHERE id = 5"))
    broken = verify(store.engine, keys)
    assert not broken.ok and broken.broken_at == 5
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_times_in_the_last_half_millisecond_of_a_second_verify(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """SQLite rounds a time to milliseconds before it counts seconds: read whole, '12:00:59.999500' was
    the next second, and a genuine entry was reported as altered (1 in 2,000 entries at random)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    else:
        url = request.getfixturevalue("pg_cluster").new_database()
    store = open_store(url)
    keys = ServiceKeys.load(tmp_path / "log.key")
    times = iter(datetime(2026, 12, 5, 12, 0, 59, micros, tzinfo=UTC)
                 for micros in (999_500, 999_999, 999_499, 0, 500, 999_000))
    log = AuditLog(store.engine, keys, clock=lambda: next(times))
    for i in range(6):
        log.append("login.password", "failure", f"user:u{i}", f"user:u{i}")
    result = verify(store.engine, keys)
    assert result.ok and result.entries == 6, result
    with store.engine.begin() as conn:  # one microsecond later is another time: it does not verify
        conn.execute(update(schema.audit_log).where(schema.audit_log.c.id == 2)
                     .values(ts=datetime(2026, 12, 5, 12, 1, 0, 0, tzinfo=UTC)))
    broken = verify(store.engine, keys)
    assert not broken.ok and broken.broken_at == 2
    store.close()


def test_the_inlined_hmac_is_hmac_sha256() -> None:
    import secrets

    for key_len in (0, 1, 32, 63, 64, 65, 200):
        key = secrets.token_bytes(key_len)
        mac = hmac_sha256(key)
        for n in (0, 1, 55, 56, 64, 1000):
            data = secrets.token_bytes(n)
            assert mac(data) == entry_mac(key, data)
