"""Framework data files and the per-requirement evaluation, over real scans of the check fixtures."""

from __future__ import annotations

import glob
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from msgspec import structs

from vmsec.checks.catalog import Catalog, default_catalog
from vmsec.collectors.host import collect_host_inventory
from vmsec.collectors.rootfs import collect_rootfs
from vmsec.collectors.xml import collect_xml
from vmsec.compliance import ReqStatus, available, evaluate, load_framework
from vmsec.compliance.frameworks import parse_framework, requirement_status, unknown_checks
from vmsec.engine import run_checks
from vmsec.errors import ConfigError
from vmsec.facts import Inventory
from vmsec.findings import Status
from vmsec.results import ScanResult

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "tests" / "data" / "checks"
REFS = ROOT / "src" / "vmsec" / "data" / "compliance" / "refs"
STARTED = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
FRAMEWORKS = ("cis-debian-12", "cis-rhel-9", "disa-vmm-srg", "nist-800-125a-r1", "openstack-security-guide")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return default_catalog()


def scan(inventory: Inventory, catalog: Catalog) -> ScanResult:
    assert not inventory.errors, [e.reason for e in inventory.errors]
    return run_checks(inventory, catalog, clock=lambda: STARTED)


def statuses(framework: str, result: ScanResult) -> dict[str, ReqStatus]:
    return {r.requirement.id: r.status for r in evaluate(load_framework(framework), result).requirements}


# --- the data files ---------------------------------------------------------------------------------

def test_the_five_frameworks_are_available() -> None:
    assert available() == sorted(FRAMEWORKS)


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_every_mapped_check_exists_in_the_catalogue(name: str, catalog: Catalog) -> None:
    framework = load_framework(name)
    assert framework.name == name
    assert framework.requirements
    assert unknown_checks(framework, catalog.index()) == []


def test_nist_rev1_numbering_is_never_claimed_as_verified() -> None:
    framework = load_framework("nist-800-125a-r1")
    assert not any(r.verified for r in framework.requirements)
    # Draft HY-SR numbers may be cited in the source/note, never used as a Rev. 1 requirement id.
    assert not any(re.search(r"HY-SR", r.id) for r in framework.requirements)


def test_disa_ids_are_srg_vulnerability_ids() -> None:
    framework = load_framework("disa-vmm-srg")
    assert all(re.fullmatch(r"V-2\d{5}", r.id) and r.verified for r in framework.requirements)
    seen_in_reference = {"V-207403", "V-207412", "V-207497", "V-207418", "V-207501"}
    assert seen_in_reference <= {r.id for r in framework.requirements}


def test_openstack_checklist_ids_verified_and_section_keys_not() -> None:
    reqs = load_framework("openstack-security-guide").requirements
    checklist = [r for r in reqs if r.id.startswith("Check-Compute-")]
    assert [r.id for r in checklist] == [f"Check-Compute-0{i}" for i in range(1, 6)]
    assert all(r.verified for r in checklist)
    assert all(not r.verified for r in reqs if r.id.startswith("hardening:"))


@pytest.mark.parametrize(("framework", "key"), [("cis-debian-12", "cis"), ("cis-rhel-9", "cis_rhel9")])
def test_cis_maps_every_reference_in_the_guest_refs(framework: str, key: str) -> None:
    """Each (check, CIS id) pair the guest checks' refs/*.toml state is in the framework file."""
    mapped = {(c, r.id) for r in load_framework(framework).requirements for c in r.checks}
    stated: set[tuple[str, str]] = set()
    for path in sorted(glob.glob(str(REFS / "*.toml"))):
        for check_id, entry in tomllib.loads(Path(path).read_text(encoding="utf-8")).items():
            stated |= {(check_id, rid) for rid in entry.get(key, [])}
    assert stated, "no refs found"
    assert stated - mapped == set()


def test_cis_rhel9_titles_are_not_claimed_as_read() -> None:
    assert not any(r.verified for r in load_framework("cis-rhel-9").requirements)


def test_unknown_or_path_like_framework_names_are_refused() -> None:
    for name in ("pci-dss", "../profiles/default", "CIS-DEBIAN-12", ""):
        with pytest.raises(ConfigError, match="unknown compliance framework"):
            load_framework(name)


_HEAD = '[framework]\nname = "t"\ntitle = "T"\nversion = "1"\nurl = "https://x"\nscope = "s"\n'
_REQ = '[[requirement]]\nid = "R1"\ntitle = "t"\nsource = "s"\nverified = {v}\nchecks = {c}\n'


@pytest.mark.parametrize(("body", "message"), [
    (_REQ.format(v="true", c='["VMS-DOM-001"]') * 2, "duplicate id"),
    (_REQ.format(v='"yes"', c='["VMS-DOM-001"]'), "'verified' must be true or false"),
    (_REQ.format(v="false", c='["dom-001"]'), "not check ids: dom-001"),
    (_REQ.format(v="false", c='"VMS-DOM-001"'), "'checks' must be a list"),
    ("", "no \\[\\[requirement\\]\\] entries"),
    ("total_items = 5\n" + _REQ.format(v="true", c='["VMS-DOM-001"]'),
     "give total_items and total_items_source together"),
    ("[[requirement\n", "not valid TOML"),
])
def test_bad_framework_files_are_clear_errors_naming_the_file(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^bad.toml: .*{message}"):
        parse_framework(_HEAD + body, origin="bad.toml")


# --- status folding ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("found", "expected"), [
    ([], ReqStatus.NOT_ASSESSED),
    ([Status.PASS, Status.PASS], ReqStatus.PASS),
    ([Status.PASS, Status.FAIL, Status.UNKNOWN], ReqStatus.FAIL),
    ([Status.PASS, Status.UNKNOWN], ReqStatus.UNKNOWN),
    ([Status.PASS, Status.ERROR], ReqStatus.UNKNOWN),
    ([Status.PASS, Status.WAIVED], ReqStatus.WAIVED),
    ([Status.WAIVED, Status.ERROR], ReqStatus.UNKNOWN),
])
def test_requirement_status(found: list[Status], expected: ReqStatus) -> None:
    assert requirement_status(found) is expected


# --- real scans -------------------------------------------------------------------------------------

def test_guest_sysctl_fixtures_differ_exactly_on_reverse_path_filtering(catalog: Catalog) -> None:
    """The two VMS-GST-095 guest roots differ only in rp_filter: only CIS 3.3.7 changes verdict."""
    weak = scan(collect_rootfs([str(CHECKS / "VMS-GST-095" / "weakened.FAIL")]), catalog)
    hard = scan(collect_rootfs([str(CHECKS / "VMS-GST-095" / "hardened.PASS")]), catalog)
    before, after = statuses("cis-debian-12", weak), statuses("cis-debian-12", hard)
    assert before["3.3.7"] is ReqStatus.FAIL
    assert after["3.3.7"] is ReqStatus.PASS
    assert {rid for rid in before if before[rid] != after[rid]} == {"3.3.7"}
    # Shared settings of both roots: redirects accepted (3.3.5) fail, TFTP masked (2.1.16) passes,
    # and with no sshd_config in the root, the SSH items are not assessed rather than passed.
    assert before["3.3.5"] is after["3.3.5"] is ReqStatus.FAIL
    assert before["2.1.16"] is after["2.1.16"] is ReqStatus.PASS
    assert before["5.1.20"] is after["5.1.20"] is ReqStatus.NOT_ASSESSED


@pytest.mark.parametrize(("name", "items"),
                         [("cis-debian-12", 310), ("cis-rhel-9", 298), ("disa-vmm-srg", 190)])
def test_coverage_counts_against_the_whole_benchmark(name: str, items: int, catalog: Catalog) -> None:
    """The CIS files list only the items vmsec answers: "100 % mapped" would mislead. Coverage is
    against the benchmark's own item count, shipped with where it was counted."""
    fw = load_framework(name)
    assert fw.total_items == items and fw.total_items_source and str(items) in fw.total_items_source
    result = evaluate(fw, scan(collect_rootfs([str(CHECKS / "VMS-GST-095" / "weakened.FAIL")]), catalog))
    c = result.coverage
    assert c.benchmark_total == items and c.benchmark_ratio == c.mapped / items < 0.5
    from vmsec.report.compliance import _coverage_sentence

    assert f"of the benchmark's {items} items" in _coverage_sentence(result)


def test_a_framework_without_a_recorded_total_says_so(catalog: Catalog) -> None:
    from vmsec.report.compliance import _coverage_sentence

    fw = load_framework("nist-800-125a-r1")
    assert fw.total_items is None
    result = evaluate(fw, scan(collect_rootfs([str(CHECKS / "VMS-GST-095" / "weakened.FAIL")]), catalog))
    assert "total is not recorded" in _coverage_sentence(result)


def test_guest_scan_coverage_and_evidence(catalog: Catalog) -> None:
    result = evaluate(load_framework("cis-debian-12"),
                      scan(collect_rootfs([str(CHECKS / "VMS-GST-095" / "weakened.FAIL")]), catalog))
    c = result.coverage
    total = len(load_framework("cis-debian-12").requirements)
    assert (c.total, c.mapped) == (total, total)  # the CIS files list only items some check answers
    assert c.assessed == sum(1 for r in result.requirements if r.findings)
    assert 0 < c.assessed < c.mapped
    assert c.assessed_ratio == c.assessed / total
    # The root has no sshd_config: none of the sshd items (5.1.x) was assessed.
    assert all(not r.findings for r in result.requirements if r.requirement.id.startswith("5.1."))
    rp = next(r for r in result.requirements if r.requirement.id == "3.3.7")
    assert rp.checks_run == ("VMS-GST-095",)
    assert rp.findings and all(f.check_id == "VMS-GST-095" and f.status is Status.FAIL for f in rp.findings)
    counts = result.status_counts
    assert sum(counts.values()) == total
    assert counts[ReqStatus.NOT_ASSESSED] == total - c.assessed


@pytest.mark.parametrize(("fixture", "dmn001"),
                         [("tcp-no-auth.FAIL", Status.FAIL), ("tcp-sasl.PASS", Status.PASS)])
def test_host_scan_libvirt_tcp_auth_decides_remote_access_requirement(
        fixture: str, dmn001: Status, catalog: Catalog) -> None:
    result = evaluate(load_framework("disa-vmm-srg"),
                      scan(collect_host_inventory(str(CHECKS / "VMS-DMN-001" / fixture)), catalog))
    remote = next(r for r in result.requirements if r.requirement.id == "V-207418")
    evidence = [f for f in remote.findings if f.check_id == "VMS-DMN-001"]
    assert evidence and {f.status for f in evidence} == {dmn001}
    if dmn001 is Status.FAIL:
        assert remote.status is ReqStatus.FAIL
        assert remote.findings[0].status is Status.FAIL  # worst first
    else:
        assert remote.status is not ReqStatus.FAIL
    # A host root has no domains: the per-VM requirement is decided by host checks only, and the
    # requirement with no mapped check is never assessed.
    alert = next(r for r in result.requirements if r.requirement.id == "V-207358")
    assert alert.status is ReqStatus.NOT_ASSESSED and not alert.mapped


@pytest.mark.parametrize(("fixture", "expected"), [("ivshmem.FAIL.xml", True), ("no-shmem.PASS.xml", False)])
def test_domain_xml_shared_memory_device_fails_guest_mediation(
        fixture: str, expected: bool, catalog: Catalog) -> None:
    result = scan(collect_xml([str(CHECKS / "VMS-DOM-047" / fixture)]), catalog)
    srg = evaluate(load_framework("disa-vmm-srg"), result)
    mediated = next(r for r in srg.requirements if r.requirement.id == "V-207412")
    shmem_failed = any(f.check_id == "VMS-DOM-047" and f.status is Status.FAIL for f in mediated.findings)
    assert shmem_failed is expected
    if expected:
        assert mediated.status is ReqStatus.FAIL
    # An XML-only scan has no host facts: the host-only NIST requirement stays not assessed.
    assert statuses("nist-800-125a-r1", result)["measured-launch"] is ReqStatus.NOT_ASSESSED


def test_openstack_coverage_on_a_domain_scan(catalog: Catalog) -> None:
    files = sorted(str(p) for p in CHECKS.glob("VMS-DOM-04*/*.xml"))
    result = evaluate(load_framework("openstack-security-guide"), scan(collect_xml(files), catalog))
    c = result.coverage
    assert (c.total, c.mapped) == (10, 4)  # the five nova checklist items and compiler hardening: no check
    assert c.assessed == 4
    assert c.mapped_ratio == 0.4 and c.assessed_ratio == 1.0
    by_id = {r.requirement.id: r for r in result.requirements}
    assert by_id["hardening:minimizing-qemu-code-base"].status is ReqStatus.FAIL
    assert by_id["Check-Compute-03"].status is ReqStatus.NOT_ASSESSED


def test_waived_and_error_findings(catalog: Catalog) -> None:
    """A waiver turns a FAIL into WAIVED, an ERROR counts as unknown: neither is reported as pass."""
    base = scan(collect_rootfs([str(CHECKS / "VMS-GST-095" / "weakened.FAIL")]), catalog)
    retag: Callable[[Status], ScanResult] = lambda st: structs.replace(  # noqa: E731
        base, findings=tuple(f._replace(status=st) if f.check_id == "VMS-GST-095" else f
                             for f in base.findings))
    assert statuses("cis-debian-12", retag(Status.WAIVED))["3.3.7"] is ReqStatus.WAIVED
    assert statuses("cis-debian-12", retag(Status.ERROR))["3.3.7"] is ReqStatus.UNKNOWN
