"""Every fixture under tests/data/checks/<CHECK-ID>/ is named for the verdict it must produce.

``NAME.PASS.xml`` (domain/network XML, no host context) or ``NAME.PASS/`` (a host root directory).
Exactly one check — the one the folder is named after — runs on it. ``NAME.NA.xml`` (or ``NAME.NA/``) is
a decoy for which the check must not apply at all: it yields no finding (e.g. vmx/svm on an aarch64
guest).

git keeps neither file modes (beyond +x) nor owners, so a host-root fixture may have a sibling
``NAME.PASS.modes`` file: lines ``PATH MODE [UID [GID]]`` applied to a copy of the root before the
scan (``/etc/pki/libvirt/private/serverkey.pem 0600 0 0``).

Vulnerability checks need advisory data: a sibling ``NAME.PASS.feeds/`` directory holds feed files
(real records) imported into a fresh database for that fixture; an optional ``imported-at`` file in
it sets the import date. Without one, matching runs with no database (and says UNKNOWN).
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from vmsec.checks.catalog import default_catalog
from vmsec.collectors.host import collect_host_inventory
from vmsec.collectors.xml import collect_xml
from vmsec.engine import run_checks
from vmsec.findings import Status
from vmsec.vulns.db import AdvisoryDB, import_feeds, open_db
from vmsec.vulns.matcher import match_inventory

CHECKS_DIR = Path(__file__).parent / "data" / "checks"
VERDICTS = {"PASS", "FAIL", "UNKNOWN", "NA"}


def _fixtures() -> list[tuple[str, Path, str]]:
    found = []
    for check_dir in sorted(p for p in CHECKS_DIR.iterdir() if p.is_dir()):
        for fixture in sorted(check_dir.iterdir()):
            stem = fixture.name.removesuffix(".xml")
            verdict = stem.rsplit(".", 1)[-1]
            if verdict in VERDICTS:
                found.append((check_dir.name, fixture, verdict))
    return found


FIXTURES = _fixtures()


@pytest.mark.parametrize(("check_id", "fixture", "verdict"), FIXTURES,
                         ids=[f"{c}/{f.name}" for c, f, _ in FIXTURES])
def test_fixture_gives_its_named_verdict(check_id: str, fixture: Path, verdict: str,
                                         tmp_path: Path) -> None:
    catalog = default_catalog().select(ids=[check_id])
    assert catalog.checks, f"no check named {check_id}"
    if fixture.is_dir():
        inventory = collect_host_inventory(str(_with_modes(fixture, tmp_path)))
        inventory = match_inventory(inventory, _feeds_db(fixture, tmp_path))
    else:
        inventory = collect_xml([str(fixture)])
    assert not inventory.errors, [e.reason for e in inventory.errors]
    statuses = [f.status for f in run_checks(inventory, catalog).findings]
    assert Status.ERROR not in statuses
    if verdict == "NA":
        assert statuses == [], f"{fixture.name}: expected no finding (not applicable), got {statuses}"
        return
    assert Status(verdict) in statuses, f"{fixture.name}: expected {verdict}, got {statuses}"
    if verdict != "FAIL":
        assert Status.FAIL not in statuses, f"{fixture.name}: expected no FAIL, got {statuses}"


def _feeds_db(fixture: Path, tmp_path: Path) -> AdvisoryDB | None:
    feeds = fixture.with_name(fixture.name + ".feeds")
    if not feeds.is_dir():
        return None
    stamp = feeds / "imported-at"
    now = datetime.fromisoformat(stamp.read_text().strip()) if stamp.exists() else None
    files = [(str(f), f.read_bytes()) for f in sorted(feeds.iterdir()) if f.name != "imported-at"]
    import_feeds(files, tmp_path / "vulndb.sqlite", now=now)
    return open_db(tmp_path / "vulndb.sqlite")


def _with_modes(fixture: Path, tmp_path: Path) -> Path:
    modes = fixture.with_name(fixture.name + ".modes")
    if not modes.exists():
        return fixture
    root = tmp_path / "root"
    shutil.copytree(fixture, root, symlinks=True)
    for line in modes.read_text().splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        target = root / fields[0].lstrip("/")
        os.chmod(target, int(fields[1], 8), follow_symlinks=False)
        if len(fields) > 2:
            os.chown(target, int(fields[2]), int(fields[3]) if len(fields) > 3 else -1,
                     follow_symlinks=False)
    return root


def test_every_check_has_pass_and_fail_fixtures() -> None:
    have: dict[str, set[str]] = {}
    for check_id, _, verdict in FIXTURES:
        have.setdefault(check_id, set()).add(verdict)
    missing = [c.id for c in default_catalog().checks if not {"PASS", "FAIL"} <= have.get(c.id, set())]
    assert not missing, f"checks without both PASS and FAIL fixtures: {missing}"
