"""Shared test options: ``--update-golden`` rewrites golden files instead of comparing with them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgcluster import PgCluster, pg_cluster_session


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files")


@pytest.fixture(autouse=True, scope="session")
def _private_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Scans store by default: keep every test's (and its subprocesses') history out of the user's."""
    import os

    path = tmp_path_factory.mktemp("store") / "history.sqlite"
    os.environ.setdefault("VMSEC_STORE", f"sqlite:///{path}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL server for the whole session (tests/pgcluster.py); each test makes its databases."""
    yield from pg_cluster_session()


@pytest.fixture()
def golden(request: pytest.FixtureRequest) -> Any:
    """``golden(path, data)``: compare JSON-able ``data`` with the golden file, or rewrite it."""
    update = request.config.getoption("--update-golden")

    def compare(name: str, data: Any) -> None:
        path = Path(__file__).parent / "golden" / name
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if update or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            if not update:
                pytest.fail(f"golden file {path} did not exist; written now — review and commit it")
        assert json.loads(path.read_text(encoding="utf-8")) == json.loads(text), (
            f"{name} differs from the golden file; rerun with --update-golden if intended")

    return compare
