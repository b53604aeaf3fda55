"""Fixtures of the service tests: a world (tests/web/world.py) on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from world import XML_TARGET, World, build_world

from components import require_module
from pgcluster import PgCluster

require_module("fastapi", "FastAPI (the 'service' extra)")


def _url(backend: str, tmp: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'service.sqlite'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("service")
    w = build_world(_url(request.param, tmp, request), tmp / "service.key", XML_TARGET)
    yield w
    w.svc.close()


@pytest.fixture()
def fresh_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world of its own on SQLite (tests that change users, sessions or the audit log)."""
    w = build_world(f"sqlite:///{tmp_path / 'service.sqlite'}", tmp_path / "service.key", XML_TARGET)
    yield w
    w.svc.close()
