"""A real PostgreSQL server for the tests (the store's PostgreSQL backend, the fleet's workers).

The cluster is created in a temporary directory, owned by the ``postgres`` user when the tests run as
root, listening on a unix socket only; the ``pg_cluster`` fixture (tests/conftest.py) starts it once
per session and stops it at the end. A missing PostgreSQL fails the tests (the test command installs
Debian's ``postgresql``): the PostgreSQL backend is a feature, not an option.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PG_ROOT = Path("/usr/lib/postgresql")


def _pg_bin() -> Path:
    versions = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not versions:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                    "(install Debian's 'postgresql' package)")
    return versions[-1]


class PgCluster:
    def __init__(self, base: Path, bindir: Path) -> None:
        self.base, self.bindir = base, bindir
        self.data, self.sockets = base / "data", base / "run"
        self.port = 20000 + os.getpid() % 20000
        self.as_postgres = os.geteuid() == 0  # the server refuses to run as root

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*(["runuser", "-u", "postgres", "--"] if self.as_postgres else []), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"{' '.join(args[:2])} failed ({proc.returncode}): "
                        f"{proc.stderr}{proc.stdout}\n{tail}")
        return proc

    def start(self) -> None:
        self.sockets.mkdir(parents=True)
        if self.as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale", "C.UTF-8", "--no-sync")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "server.log"),
                  "-w", "-t", "60", "-o",
                  f"-k {self.sockets} -p {self.port} -c listen_addresses='' -c fsync=off", "start")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host=str(self.sockets), port=self.port, user="postgres",
                               dbname="postgres", autocommit=True)

    def new_database(self) -> str:
        name = f"vmsec_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@/{name}?host={self.sockets}&port={self.port}"


def pg_cluster_session() -> Iterator[PgCluster]:
    bindir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="vmsec-pg-"))
    cluster = PgCluster(base, bindir)
    try:
        cluster.start()
        yield cluster
        cluster.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
