"""The check catalogue is reviewed data: a snapshot makes every metadata change visible."""

from __future__ import annotations

from typing import Any

from vmsec.checks.api import CONTROL_TAGS, Scope
from vmsec.checks.catalog import CHECK_MODULES, default_catalog


def test_catalogue_snapshot(golden: Any) -> None:
    golden("catalog.json", [
        {"id": c.id, "title": c.title, "severity": c.severity.value, "scope": c.scope.value,
         "tags": list(c.tags), "module": c.module}
        for c in default_catalog().checks
    ])


def test_catalogue_size_and_coverage() -> None:
    checks = default_catalog().checks
    assert len(checks) >= 80
    scopes = {c.scope for c in checks}
    assert {Scope.HOST, Scope.DOMAIN, Scope.NETWORK, Scope.INVENTORY} <= scopes
    for control in CONTROL_TAGS:
        assert any(control in c.tags for c in checks), f"no check serves {control}"


def test_every_check_is_documented() -> None:
    for c in default_catalog().checks:
        assert c.rationale and c.remediation, c.id
        # Titles are sentences; a few start with a name that is lower-case by convention.
        lower_case_names = {"vTPMs", "libvirt", "macvtap", "9p", "su", "sudo", "sshd", "cloud-init"}
        assert c.title[0].isupper() or c.title.split()[0] in lower_case_names, c.id


def test_every_module_contributes_checks() -> None:
    modules = {c.module for c in default_catalog().checks}
    assert set(CHECK_MODULES) == modules


def test_reference_coverage_names_real_checks_and_gives_every_declined_row_a_reason() -> None:
    """docs/reference-coverage.toml: each row of the research catalogues is implemented by checks that
    exist, or declined with a reason — never both, never neither, each row once."""
    import tomllib
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "reference-coverage.toml"
    rows = tomllib.loads(path.read_text(encoding="utf-8"))["row"]
    ids = {c.id for c in default_catalog().checks}
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert row.get("title"), row["id"]
        assert ("checks" in row) != ("declined" in row), row["id"]
        assert set(row.get("checks", ())) <= ids, row["id"]
        assert "declined" not in row or len(row["declined"]) > 20, row["id"]
