"""Real components of the fleet tests: a redis-server of their own (a free port on 127.0.0.1, a
temporary directory, no persistence), real ``vmsec worker`` processes (Celery), and PostgreSQL (the
session's ``pg_cluster``)."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components import require, require_module
from ports import free_port

VMSEC = str(Path(sys.executable).with_name("vmsec"))



class RedisServer:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        for _ in range(5):  # a free port can be taken between the check and the bind: try another
            self.port = free_port()
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.base), "--logfile", str(self.base / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            return
                except OSError:
                    time.sleep(0.05)
            self.stop()
        log = (self.base / "redis.log").read_text(errors="replace")[-2000:]
        pytest.fail(f"redis-server did not start: {log}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


# Redis databases handed out to brokers: one per user, never shared. Two sets of workers on one
# database consume each other's tasks (a test's run then never finishes: another module's workers
# took its targets and could not find its run in their store).
_BROKER_DBS = itertools.count(1)


def fresh_broker_db() -> int:
    db = next(_BROKER_DBS)
    assert db < 16, "redis-server has 16 databases: more brokers than that in one session"
    return db


@pytest.fixture
def broker_url(redis_server: RedisServer) -> str:
    """A broker on the session's redis that no other test's workers listen to."""
    return f"redis://127.0.0.1:{redis_server.port}/{fresh_broker_db()}"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    require(shutil.which("redis-server"), "redis-server", "apt-get install redis-server")
    require_module("celery", "celery (pip install 'vmsec[fleet]')")
    base = Path(tempfile.mkdtemp(prefix="vmsec-redis-"))
    server = RedisServer(base)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


class Worker:
    """One ``vmsec worker`` process."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.name, self.proc, self.log = name, proc, log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


class WorkerPool:
    """Starts real ``vmsec worker`` processes and stops them at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[Worker] = []

    def start(self, n: int, *, broker: str, store: str, args: tuple[str, ...] = ()) -> list[Worker]:
        batch = []
        for _ in range(n):
            name = f"w{len(self.started) + 1}"
            log = self.logs / f"{name}.log"
            proc = subprocess.Popen(
                [VMSEC, "worker", "--broker", broker, "--store", store, "-n", f"{name}@%h",
                 "--loglevel", "INFO", *args],
                stdout=log.open("wb"), stderr=subprocess.STDOUT, env={**os.environ, "C_FORCE_ROOT": "1"})
            worker = Worker(name, proc, log)
            self.started.append(worker)
            batch.append(worker)
        deadline = time.monotonic() + 60
        for worker in batch:
            while " ready." not in worker.text():
                if worker.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"worker {worker.name} did not start:\n{worker.text()[-3000:]}")
                time.sleep(0.1)
        return batch

    def stop(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerPool]:
    """Workers of one test."""
    pool = WorkerPool(tmp_path)
    yield pool
    pool.stop()


@dataclass
class Cluster:
    broker: str
    store: str
    workers: list[Worker]


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Cluster]:
    """Two workers on the session's redis and a PostgreSQL store, for a module's tests; the first also
    runs the scheduler."""
    store = str(pg_cluster.new_database())
    broker = f"redis://127.0.0.1:{redis_server.port}/{fresh_broker_db()}"  # this module's own
    pool = WorkerPool(tmp_path_factory.mktemp("workers"))
    first = pool.start(1, broker=broker, store=store, args=("--scheduler", "0.5", "--task-timeout", "60"))
    second = pool.start(1, broker=broker, store=store, args=("--task-timeout", "60"))
    yield Cluster(broker=broker, store=store, workers=first + second)
    pool.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    return str(request.getfixturevalue("pg_cluster").new_database())


@pytest.fixture
def pg_url(pg_cluster: Any) -> str:
    """A fresh PostgreSQL store: what workers on several machines share."""
    return str(pg_cluster.new_database())
