"""Every fixture under tests/data/checks/<CHECK-ID>/ is named for the verdict it must produce.

``NAME.PASS.xml`` (domain/network XML, no host context), ``NAME.PASS/`` (a host root directory; with a
``.vmsec-live`` file in it, read as a running system whose proc/ and sys/ trees stand for the kernel's;
with a ``.vmsec-pair`` file, its ``live/`` and ``disk/`` roots are one VM seen running and from its
disk) or ``NAME.PASS.json`` (what a probe recorded: endpoints, expected listeners, the probe run —
decoded into the real fact types, see tests/probefixtures.py). Exactly one check — the one the folder
is named after — runs on it. ``NAME.NA.xml`` (or ``NAME.NA/``, ``NAME.NA.json``) is a decoy for which
the check must not apply at all: it yields no finding (e.g. vmx/svm on an aarch64 guest).

A sibling ``NAME.FAIL.severity`` file (one word: ``critical`` … ``info``) also fixes the severity of
every finding with the named verdict: a check that rates the same observation lower in one context
(a console reachable only on loopback) is tested on both sides.

A sibling ``NAME.PASS.errors`` file lists, one per line, the inputs the scan must report as not read
or invalid (a file the program itself skips, such as cloud-init's invalid YAML): the verdict is still
the named one, judged without them. Without it, only an UNKNOWN fixture may have collection errors.

git keeps neither file modes (beyond +x) nor owners, so a host-root fixture may have a sibling
``NAME.PASS.modes`` file: lines ``PATH MODE [UID [GID]] [acl=SPEC]`` applied to a copy of the root
before the scan (``/etc/pki/libvirt/private/serverkey.pem 0600 0 0``). ``acl=`` gives the file a POSIX
access ACL in setfacl's short text (``acl=user:1001:rw-``; see tests/posix_acls.py).

Vulnerability checks need advisory data: a sibling ``NAME.PASS.feeds/`` directory holds feed files
(real records) imported into a fresh database for that fixture; an optional ``imported-at`` file in
it sets the import date. Without one, matching runs with no database (and says UNKNOWN).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

import probefixtures
from posix_acls import set_acl
from vmsec.checks.catalog import default_catalog
from vmsec.collectors.guest import collect_guest
from vmsec.collectors.host import collect_host_inventory
from vmsec.collectors.reader import RootReader
from vmsec.collectors.runtime import collect_runtime
from vmsec.collectors.xml import collect_xml
from vmsec.engine import run_checks
from vmsec.facts import Endpoint, Inventory, evolve
from vmsec.findings import Severity, Status
from vmsec.vulns.db import AdvisoryDB, import_feeds, open_db
from vmsec.vulns.matcher import match_inventory

CHECKS_DIR = Path(__file__).parent / "data" / "checks"
VERDICTS = {"PASS", "FAIL", "UNKNOWN", "NA"}
LIVE_MARKER = ".vmsec-live"
PAIR_MARKER = ".vmsec-pair"
SUFFIXES = (".xml", ".json")


def _fixtures() -> list[tuple[str, Path, str]]:
    found = []
    for check_dir in sorted(p for p in CHECKS_DIR.iterdir() if p.is_dir()):
        for fixture in sorted(check_dir.iterdir()):
            stem = next((fixture.name.removesuffix(x) for x in SUFFIXES if fixture.name.endswith(x)),
                        fixture.name)
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
    if fixture.is_dir() and (fixture / PAIR_MARKER).exists():
        inventory = _pair(fixture)
    elif fixture.is_dir():
        # A root holding a .vmsec-live marker is read as a running system: its proc/ and sys/ trees
        # stand for the kernel's (runtime checks).
        live = (fixture / LIVE_MARKER).exists()
        inventory = collect_host_inventory(str(_with_modes(fixture, tmp_path)), live=live)
        inventory = match_inventory(inventory, _feeds_db(fixture, tmp_path))
    elif fixture.suffix == ".json":
        inventory = probefixtures.load(fixture)
    else:
        inventory = collect_xml([str(fixture)])
    expected_errors = _expected_errors(fixture, verdict)
    if expected_errors is not None:  # a broken input the program itself skips: reported, and judged without
        assert sorted({e.source for e in inventory.errors}) == expected_errors, inventory.errors
    elif verdict != "UNKNOWN":  # an UNKNOWN fixture may be one because a file could not be read
        assert not inventory.errors, [e.reason for e in inventory.errors]
    findings = run_checks(inventory, catalog).findings
    statuses = [f.status for f in findings]
    assert Status.ERROR not in statuses
    if verdict == "NA":
        assert statuses == [], f"{fixture.name}: expected no finding (not applicable), got {statuses}"
        return
    assert Status(verdict) in statuses, f"{fixture.name}: expected {verdict}, got {statuses}"
    if verdict != "FAIL":
        assert Status.FAIL not in statuses, f"{fixture.name}: expected no FAIL, got {statuses}"
    severity = _severity(fixture, verdict)
    if severity is not None:
        got = [f.severity for f in findings if f.status is Status(verdict)]
        assert set(got) == {severity}, f"{fixture.name}: expected {verdict} at {severity}, got {got}"


def _expected_errors(fixture: Path, verdict: str) -> list[str] | None:
    stem = fixture.name[: fixture.name.rindex(verdict) + len(verdict)]
    path = fixture.with_name(stem + ".errors")
    return sorted(line.strip() for line in path.read_text().splitlines() if line.strip()) \
        if path.exists() else None


def _severity(fixture: Path, verdict: str) -> Severity | None:
    stem = fixture.name[: fixture.name.rindex(verdict) + len(verdict)]
    path = fixture.with_name(stem + ".severity")
    return Severity(path.read_text().strip()) if path.exists() else None


def _pair(fixture: Path) -> Inventory:
    """One VM seen twice: ``live/`` as the running guest (its proc/ for what runs), ``disk/`` as its
    disk image read offline — the inventory ``scan libvirt --guests both`` builds."""
    live, _ = collect_guest(RootReader(str(fixture / "live")), name="web01", origin="guest agent of web01",
                            domain="web01")
    runtime, _ = collect_runtime(RootReader(str(fixture / "live")), source="guest agent of web01",
                                 packages=live.packages, config_sysctl=live.sysctl)
    disk, _ = collect_guest(RootReader(str(fixture / "disk")), name="web01 (disk)", origin="web01.qcow2",
                            domain="web01")
    return Inventory(guests=(evolve(live, runtime=runtime), disk), source="pair")


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
        acl = [f.removeprefix("acl=") for f in fields if f.startswith("acl=")]
        fields = [f for f in fields if not f.startswith("acl=")]
        os.chmod(target, int(fields[1], 8), follow_symlinks=False)
        if len(fields) > 2:
            os.chown(target, int(fields[2]), int(fields[3]) if len(fields) > 3 else -1,
                     follow_symlinks=False)
        for spec in acl:
            set_acl(target, spec)
    return root


def test_every_check_has_pass_and_fail_fixtures() -> None:
    have: dict[str, set[str]] = {}
    for check_id, _, verdict in FIXTURES:
        have.setdefault(check_id, set()).add(verdict)
    missing = [c.id for c in default_catalog().checks if not {"PASS", "FAIL"} <= have.get(c.id, set())]
    assert not missing, f"checks without both PASS and FAIL fixtures: {missing}"


def test_a_probe_fixture_cannot_hold_a_field_the_facts_do_not_have(tmp_path: Path) -> None:
    """JSON fixtures are decoded into the real fact types: a misspelt or invented field, a wrong type
    or an unknown enum value is an error naming where it is, never silently ignored."""
    good = {"address": "192.0.2.10", "port": 5901, "state": "open", "protocol": "vnc",
            "vnc": {"version": "RFB 003.008", "security_types": [2]}}
    path = tmp_path / "x.PASS.json"
    path.write_text(json.dumps({"endpoints": [good]}))
    [endpoint] = probefixtures.load(path).endpoints
    assert isinstance(endpoint, Endpoint) and endpoint.vnc is not None and endpoint.vnc.security_types == (2,)
    for bad, where in (
            ({"endpoints": [{**good, "tsl": {}}]}, "unknown field `tsl` - at `$.endpoints[0]`"),
            ({"endpoints": [{**good, "vnc": {"security_type": [1]}}]}, "`$.endpoints[0].vnc`"),
            ({"endpoints": [{**good, "state": "half-open"}]}, "`$.endpoints[0].state`"),
            ({"endpoints": [{**good, "port": "5901"}]}, "`$.endpoints[0].port`"),
            ({"endpoints": [], "findings": []}, "unknown field `findings`"),
            ({"endpoints": [], "expected": [{"protocol": "vnc", "port": 5901, "owner_kind": "domain",
                                             "owner": "web01", "refs": [{"source": "x", "path": "y"}]}]},
             "`$.expected[0].refs[0]`")):
        path.write_text(json.dumps(bad))
        with pytest.raises(msgspec.ValidationError, match=re.escape(where)):
            probefixtures.load(path)


def test_probe_fixtures_round_trip_through_the_capture_format() -> None:
    """What tests/probe captures (probefixtures.dump) decodes back to the same facts."""
    json_fixtures = [f for _, f, _ in FIXTURES if f.suffix == ".json"]
    assert json_fixtures
    for fixture in json_fixtures:
        inventory = probefixtures.load(fixture)
        again = msgspec.json.decode(probefixtures.dump(inventory), type=probefixtures.ProbeFixture)
        assert (again.endpoints, again.expected, again.probe) == \
            (inventory.endpoints, inventory.expected, inventory.probe), fixture


def test_every_probe_fixture_says_where_it_was_captured() -> None:
    """The probe fixtures' README lists each one with the tests/probe test whose real server it was
    recorded from (scripts/probe_fixtures.py writes the table)."""
    readme = (CHECKS_DIR / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- probe-fixtures:begin -->", 1)[1].split("<!-- probe-fixtures:end -->", 1)[0]
    listed = set(re.findall(r"^\| (VMS-PRB-\d+) \| `([^`]+)`", table, re.MULTILINE))
    on_disk = {(c, f.name) for c, f, _ in FIXTURES if f.suffix == ".json"}
    assert on_disk and listed == on_disk


def test_the_documented_probe_fixture_example_decodes(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "writing-checks.md").read_text(encoding="utf-8")
    example = doc.split("```json\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.FAIL.json"
    path.write_text(example)
    [endpoint] = probefixtures.load(path).endpoints
    assert endpoint.vnc is not None and endpoint.vnc.security_types == (1,)
