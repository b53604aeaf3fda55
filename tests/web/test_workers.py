"""Several worker processes share every piece of state through the database: two real ``vmsec serve``
processes on one store (PostgreSQL and SQLite) — each is what a ``--workers`` worker is, a process with
its own engine and caches — addressed one by one: a lockout reached through one holds on the other, a
revoked token (or a disabled user's) is refused by both, sign-in attempts are throttled over both;
WebAuthn challenges taken by another process than the one that issued them; and ``vmsec serve
--workers 2`` runs two worker processes that serve the API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, delete, select
from world import PASSWORD

from components import require_module
from pgcluster import PgCluster
from ports import free_port
from vmsec.service.core import Service, ServiceConfig
from vmsec.service.keys import ServiceKeys
from vmsec.service.shared import Challenges, LoginThrottle
from vmsec.store import open_store, schema

require_module("uvicorn", "uvicorn (the 'service' extra)")

LOGIN = "__Host-vmsec-login"
TTL = ServiceConfig().auth_cache_ttl  # how long another worker may still accept a revoked token



def vmsec(*args: str, env: dict[str, str], stdin: str = "") -> str:
    r = subprocess.run(
        [sys.executable, "-m", "vmsec.cli.main", *args],
        input=stdin,
        text=True,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


class Worker:
    """One ``vmsec serve`` process on a free loopback port."""

    def __init__(self, env: dict[str, str], *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vmsec.cli.main", "serve", "--listen", f"127.0.0.1:{self.port}", *extra],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self) -> Worker:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"vmsec serve exited: {self.proc.communicate()[1]}")
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("vmsec serve did not answer")

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(20)

    def api(self, token: str, path: str, method: str = "GET") -> httpx.Response:
        auth = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, self.url + "/api/v1" + path, headers=auth)

    def sign_in(self, user: str, password: str) -> httpx.Response:
        """The login form as a browser posts it (the __Host- cookies are Secure: httpx would not send
        them over http, so by hand)."""
        page = httpx.get(self.url + "/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        return httpx.post(
            self.url + "/login",
            data={"username": user, "password": password, "csrf": csrf.group(1)},
            headers={"origin": self.url, "cookie": f"__Host-vmsec-login={page.cookies[LOGIN]}"},
        )


@dataclass
class Pair:
    env: dict[str, str]
    url: str
    a: Worker
    b: Worker
    admin: str  # an admin's write token

    def token(self, user: str) -> tuple[str, int]:
        token = vmsec("token", "create", "--user", user, "--scope", "read", env=self.env).strip()
        listed = self.a.api(self.admin, "/tokens").json()
        return token, next(t["id"] for t in listed if token.startswith(t["prefix"]) and t["user"] == user)


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("workers")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'service.sqlite'}"
    else:
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        url = cluster.new_database()
    env = {**os.environ, "VMSEC_STORE": url, "VMSEC_SERVICE_KEY": str(tmp / "service.key")}
    for user, role in (("boss", "admin"), ("vic", "viewer"), ("val", "viewer"), ("lock-me", "viewer")):
        vmsec("user", "add", user, "--role", role, "--password-stdin", env=env, stdin=PASSWORD + "\n")
    admin = vmsec("token", "create", "--user", "boss", "--scope", "write", env=env).strip()
    a, b = Worker(env, "--workers", "1"), Worker(env, "--workers", "1")
    try:
        yield Pair(env, url, a.wait(), b.wait(), admin)
    finally:
        a.stop()
        b.stop()


@pytest.fixture(autouse=True)
def fresh_throttle(request: pytest.FixtureRequest) -> None:
    """Every test signs in from 127.0.0.1: each starts with that address's window empty."""
    if "pair" in request.fixturenames:
        engine = create_engine(request.getfixturevalue("pair").url)
        with engine.begin() as conn:
            conn.execute(delete(schema.login_throttle))
        engine.dispose()


def test_a_lockout_reached_through_one_worker_holds_on_the_other(pair: Pair) -> None:
    assert pair.b.sign_in("lock-me", "not the password 1").status_code == 401
    for i in range(4):  # the 5th failure locks the account
        assert pair.a.sign_in("lock-me", f"not the password {i + 2}").status_code == 401
    for worker in (pair.b, pair.a):
        r = worker.sign_in("lock-me", PASSWORD)
        assert r.status_code == 401 and "locked" in r.text
    entries = pair.a.api(pair.admin, "/audit?action=login.lockout").json()["entries"]
    assert [e["target"] for e in entries] == ["user:lock-me"] and entries[0]["detail"]["failures"] == 5


def test_a_revoked_token_is_refused_by_both_workers(pair: Pair) -> None:
    token, token_id = pair.token("vic")
    for worker in (pair.a, pair.b):  # both have verified it now (and may reuse it for TTL seconds)
        assert worker.api(token, "/me").status_code == 200
        assert worker.api(token, "/findings").status_code == 200
    assert pair.a.api(pair.admin, f"/tokens/{token_id}", "DELETE").status_code == 204
    revoked = time.monotonic()
    # the worker that revoked it refuses it at once, through the route and the finding list's fast path
    assert pair.a.api(token, "/me").status_code == 401
    assert pair.a.api(token, "/findings").status_code == 401
    # the other within the cache's lifetime, and from then on
    _refused_within_ttl(pair.b, token, revoked)
    assert pair.b.api(token, "/me").status_code == 401


def test_a_disabled_users_token_is_refused_by_both_workers(pair: Pair) -> None:
    token, _ = pair.token("val")
    for worker in (pair.a, pair.b):
        assert worker.api(token, "/findings").status_code == 200
    vmsec("user", "disable", "val", env=pair.env)  # a third process: neither worker's cache is emptied
    disabled = time.monotonic()
    for worker in (pair.a, pair.b):
        _refused_within_ttl(worker, token, disabled)


def _refused_within_ttl(worker: Worker, token: str, since: float) -> None:
    while True:
        sent = time.monotonic()  # a request sent within the TTL may be answered after it on a busy machine
        status = worker.api(token, "/findings").status_code
        if status == 401:
            break
        assert status == 200
        assert sent - since <= TTL + 0.5, f"still accepted {TTL} s after the revocation"
        time.sleep(0.05)
    assert worker.api(token, "/me").status_code == 401


def test_sign_in_attempts_are_throttled_across_workers(pair: Pair) -> None:
    limit = ServiceConfig().login_rate
    for i in range(limit):  # unknown names: no account locks, only the address is counted
        worker = pair.a if i % 2 else pair.b
        assert worker.sign_in(f"nobody-{i}", "not the password").status_code == 401
    for worker in (pair.a, pair.b):
        r = worker.sign_in("nobody-else", "not the password")
        assert r.status_code == 429 and "Too many attempts" in r.text
    engine = create_engine(pair.url)
    with engine.connect() as conn:
        audited = conn.execute(
            select(schema.audit_log.c.target).where(schema.audit_log.c.action == "login.throttled")
        ).all()
    engine.dispose()
    assert ("user:nobody-else",) in audited  # by whichever worker refused it


def test_webauthn_challenges_and_throttle_are_shared_by_services(tmp_path: Path) -> None:
    """Two Service objects on one store, as two processes have: a challenge issued by one is taken by
    the other, once; an expired one is refused; sign-in attempts count together."""
    url = f"sqlite:///{tmp_path / 'service.sqlite'}"
    keys = ServiceKeys.load(tmp_path / "service.key")
    now = [datetime(2026, 6, 1, tzinfo=UTC)]
    config = ServiceConfig(login_rate=3)
    one = Service(open_store(url), keys, config=config, clock=lambda: now[0])
    two = Service(open_store(url), keys, config=config, clock=lambda: now[0])
    try:
        Challenges(one).put("auth:session-1", b"\x00challenge\xff")
        assert Challenges(two).take("auth:session-1") == b"\x00challenge\xff"
        assert Challenges(one).take("auth:session-1") is None  # used once
        Challenges(two).put("reg:session-2", b"late")
        now[0] += timedelta(minutes=5, seconds=1)
        assert Challenges(one).take("reg:session-2") is None  # expired
        assert [LoginThrottle(s).allow("ip:192.0.2.7") for s in (one, two, one, two)] == [True] * 3 + [False]
        now[0] += timedelta(seconds=61)
        assert LoginThrottle(two).allow("ip:192.0.2.7")  # the window has passed
    finally:
        one.close()
        two.close()


def test_serve_with_two_workers_runs_two_worker_processes(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VMSEC_STORE": f"sqlite:///{tmp_path / 'service.sqlite'}",
        "VMSEC_SERVICE_KEY": str(tmp_path / "service.key"),
    }
    vmsec("user", "add", "vic", "--role", "viewer", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    token = vmsec("token", "create", "--user", "vic", "--scope", "read", env=env).strip()
    server = Worker(env, "--workers", "2").wait()
    try:
        deadline = time.monotonic() + 30
        while len(_children(server.proc.pid)) < 2:
            assert time.monotonic() < deadline, "two worker processes did not start"
            time.sleep(0.1)
        assert len(_children(server.proc.pid)) == 2
        for _ in range(20):  # whichever worker takes the connection: the same answers
            assert server.api(token, "/me").json()["name"] == "vic"
            assert server.api(token, "/findings").json() == {"findings": [], "next_cursor": None}
    finally:
        assert server.stop() == 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # uvicorn's workers are multiprocessing children (not its resource tracker)
        if int(fields[1]) == pid and b"spawn_main" in Path(stat.parent, "cmdline").read_bytes():
            out.append(int(stat.parent.name))
    return out


def test_serving_a_store_gives_it_the_finding_list_indexes(tmp_path: Path) -> None:
    """The migrations leave the finding list's indexes out (each costs every finding written); the
    service adds them when it opens the store."""
    from sqlalchemy import inspect

    url = f"sqlite:///{tmp_path / 'service.sqlite'}"
    wanted = {name for name, _ in schema.FINDING_LIST_INDEXES}

    def indexes() -> set[str]:
        engine = create_engine(url)
        try:
            return {i["name"] for i in inspect(engine).get_indexes("findings")}
        finally:
            engine.dispose()

    open_store(url).close()
    assert not wanted & indexes()
    svc = Service(open_store(url), ServiceKeys.load(tmp_path / "service.key"))
    svc.close()
    assert wanted <= indexes()
