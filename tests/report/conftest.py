"""Fixtures for the reporter tests; the scans themselves are built in report_scans.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from report_scans import CHECKS, ROOT, STARTED, build_sample_scan

from vmsec.checks.catalog import Catalog, default_catalog
from vmsec.collectors.xml import collect_xml
from vmsec.engine import run_checks
from vmsec.results import ScanResult


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture(scope="session")
def sample_scan(catalog: Catalog) -> ScanResult:
    return build_sample_scan(catalog)


@pytest.fixture(scope="session")
def real_scan(catalog: Catalog) -> ScanResult:
    files = sorted(str(p) for p in CHECKS.glob("VMS-DOM-*/*.xml"))
    assert len(files) > 50
    inventory = collect_xml(files)
    return run_checks(inventory, catalog, clock=lambda: STARTED)


@pytest.fixture()
def golden_text(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``golden_text(name, text)``: compare a rendered report with tests/golden/report/NAME, byte for byte
    (``--update-golden`` rewrites it)."""
    update = request.config.getoption("--update-golden")

    def compare(name: str, text: str) -> None:
        path = ROOT / "tests" / "golden" / "report" / name
        if update or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
            if not update:
                pytest.fail(f"golden file {path} did not exist; written now — review and commit it")
        assert path.read_bytes().decode("utf-8") == text, (
            f"{name} differs from the golden file; rerun with --update-golden if intended")

    return compare
