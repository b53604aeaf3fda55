"""Store backends for the tests: a SQLite file per test, and a real PostgreSQL server (the session's
``pg_cluster``, from tests/pgcluster.py through tests/conftest.py). Each test gets its own database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgcluster import PgCluster


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database()
