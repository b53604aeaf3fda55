"""Waivers: accepted risks with a reason, an owner and an expiry — read from TOML and YAML files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from vmsec.errors import ConfigError
from vmsec.findings import Evidence, Finding, Severity, Status, Target, TargetKind
from vmsec.waivers import apply_waivers, load_waivers

WEB = Target(TargetKind.DOMAIN, "web-01", "hv1")
DB = Target(TargetKind.DOMAIN, "db-01", "hv1")
GUEST = Target(TargetKind.GUEST, "web-01-disk", "hv1")
TODAY = date(2026, 6, 15)

TOML = """
[[waiver]]
check = "VMS-DOM-020"
target = "domain:web-*"
subject = "vnc devices/graphics*"
reason = "VNC is on the isolated management VLAN"
who = "alice@example.org"
expires = 2026-06-30

[[waiver]]
check = "VMS-DOM-040"
target = "domain:*"
reason = "legacy installer needs a floppy"
who = "bob"
expires = "2026-06-14"

[[waiver]]
vulnerability = "CVE-2024-0001"
target = "guest:web-*"
reason = "service not exposed"
who = "carol"
expires = 2026-12-31
"""

YAML = """
waivers:
  - check: VMS-DOM-020
    target: "domain:web-*"
    subject: "vnc devices/graphics*"
    reason: VNC is on the isolated management VLAN
    who: alice@example.org
    expires: 2026-06-30
  - check: VMS-DOM-040
    target: "domain:*"
    reason: legacy installer needs a floppy
    who: bob
    expires: 2026-06-14
  - vulnerability: CVE-2024-0001
    target: "guest:web-*"
    reason: service not exposed
    who: carol
    expires: 2026-12-31
"""


def f(check: str, target: Target, subject: str, status: Status = Status.FAIL, **kw: object) -> Finding:
    return Finding(check_id=check, title="t", status=status, severity=Severity.HIGH, target=target,
                   subject=subject, message="observed problem", evidence=(Evidence("/etc/x"),), **kw)


@pytest.fixture(params=[("waivers.toml", TOML), ("waivers.yaml", YAML)])
def waiver_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    name, text = request.param
    path = tmp_path / name
    path.write_text(text)
    return path


def test_both_formats_read_the_same(waiver_file: Path) -> None:
    waivers = load_waivers(waiver_file)
    assert [(w.check, w.vulnerability, w.target, w.subject, w.who, w.expires) for w in waivers] == [
        ("VMS-DOM-020", None, "domain:web-*", "vnc devices/graphics*", "alice@example.org",
         date(2026, 6, 30)),
        ("VMS-DOM-040", None, "domain:*", None, "bob", date(2026, 6, 14)),
        (None, "CVE-2024-0001", "guest:web-*", None, "carol", date(2026, 12, 31)),
    ]
    assert waivers[2].origin == f"{waiver_file}, waiver 3"


def test_apply(waiver_file: Path) -> None:
    waivers = load_waivers(waiver_file)
    findings = [
        f("VMS-DOM-020", WEB, "vnc devices/graphics[1]"),          # waived
        f("VMS-DOM-020", WEB, "serial console"),            # subject does not match
        f("VMS-DOM-020", DB, "vnc devices/graphics[1]"),            # target does not match
        f("VMS-DOM-020", WEB, "vnc devices/graphics[2]", Status.PASS),  # only FAILs are waived
        f("VMS-DOM-020", WEB, "vnc devices/graphics[3]", Status.UNKNOWN),
        f("VMS-DOM-040", DB, "disk fda"),                   # waiver expired yesterday
        f("VULN-X", GUEST, "openssl", vulnerability={"id": "DSA-1", "aliases": ["CVE-2024-0001"]}),
        f("VULN-Y", GUEST, "openssl", vulnerability={"id": "CVE-2024-0002", "aliases": []}),
    ]
    out = apply_waivers(findings, waivers, TODAY)
    assert len(out) == len(findings)  # waived findings never disappear
    assert [x.status for x in out] == [Status.WAIVED, Status.FAIL, Status.FAIL, Status.PASS, Status.UNKNOWN,
                                       Status.FAIL, Status.WAIVED, Status.FAIL]
    assert out[0].message == ("observed problem — waived by alice@example.org until 2026-06-30: "
                              "VNC is on the isolated management VLAN")
    assert out[0].evidence[-1] == Evidence(f"{waiver_file}, waiver 1", "waiver",
                                           "VNC is on the isolated management VLAN")
    assert out[0].fingerprint == findings[0].fingerprint  # the same finding, for history
    assert out[5].message.startswith("observed problem — waiver expired on 2026-06-14")
    assert "bob" in out[5].message
    assert out[6].message.endswith("waived by carol until 2026-12-31: service not exposed")
    for unchanged in (1, 2, 3, 4, 7):
        assert out[unchanged] == findings[unchanged]
    # the expiry day itself is still covered; the day after is not
    assert apply_waivers(findings[:1], waivers, date(2026, 6, 30))[0].status is Status.WAIVED
    late = apply_waivers(findings[:1], waivers, date(2026, 7, 1))[0]
    assert late.status is Status.FAIL and "waiver expired on 2026-06-30" in late.message


@pytest.mark.parametrize(("entry", "error"), [
    ('check = "C"\ntarget = "*"\nwho = "w"\nexpires = 2026-01-01', "missing 'reason'"),
    ('check = "C"\ntarget = "*"\nreason = "r"\nwho = "w"', "missing 'expires'"),
    ('check = "C"\ntarget = "*"\nreason = "r"\nexpires = 2026-01-01', "missing 'who'"),
    ('check = "C"\ntarget = "*"\nreason = "  "\nwho = "w"\nexpires = 2026-01-01', "missing 'reason'"),
    ('check = "C"\nreason = "r"\nwho = "w"\nexpires = 2026-01-01', "missing 'target'"),
    ('target = "*"\nreason = "r"\nwho = "w"\nexpires = 2026-01-01', "exactly one of"),
    ('check = "C"\nvulnerability = "V"\ntarget = "*"\nreason = "r"\nwho = "w"\nexpires = 2026-01-01',
     "exactly one of"),
    ('check = "C"\ntarget = "*"\nreason = "r"\nwho = "w"\nexpiry = 2026-01-01', "unknown key(s) expiry"),
    ('check = "C"\ntarget = "*"\nreason = "r"\nwho = "w"\nexpires = "soon"', "not a date"),
    ('check = "C"\ntarget = "*"\nreason = "r"\nwho = "w"\nexpires = 2026-01-01T10:00:00',
     "not a date and time"),
    ('check = 7\ntarget = "*"\nreason = "r"\nwho = "w"\nexpires = 2026-01-01', "'check' must be a string"),
])
def test_bad_entries_are_rejected_by_name(tmp_path: Path, entry: str, error: str) -> None:
    good = '[[waiver]]\ncheck = "OK"\ntarget = "*"\nreason = "r"\nwho = "w"\nexpires = 2026-01-01\n'
    path = tmp_path / "w.toml"
    path.write_text(f"{good}\n[[waiver]]\n{entry}\n")
    with pytest.raises(ConfigError) as info:
        load_waivers(path)
    assert f"{path}: waiver 2" in str(info.value)
    assert error in str(info.value)


@pytest.mark.parametrize(("name", "text", "error"), [
    ("w.toml", "[[waiver]\n", "not valid TOML"),
    ("w.yaml", "waivers: [unclosed\n", "not valid YAML"),
    ("w.yaml", "- just a list\n", "expected a table"),
    ("w.yaml", "waivers: {check: C}\n", "must be a list"),
    ("w.yaml", "waiverz: []\n", "unknown top-level key"),
    ("w.json", "{}", "must end in .toml, .yaml or .yml"),
    ("w.yaml", "waivers:\n  - 3\n", "waiver 1 is not a table"),
])
def test_bad_files(tmp_path: Path, name: str, text: str, error: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=error):
        load_waivers(path)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read waiver file"):
        load_waivers(tmp_path / "absent.toml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_waivers(tmp_path / "empty.yaml") == ()
