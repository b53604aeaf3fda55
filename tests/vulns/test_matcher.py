"""The matcher reports exactly what the distribution's data says, on real advisory records."""

from __future__ import annotations

import pytest

from datapaths import VULN as DATA
from vmsec.checks.catalog import default_catalog
from vmsec.engine import run_checks
from vmsec.facts import Guest, InstalledPackage, Inventory, OsRelease
from vmsec.findings import Severity, Status
from vmsec.vulns.db import AdvisoryDB, import_feeds, open_db
from vmsec.vulns.matcher import NO_DB_REASON, ecosystem_for, match_inventory, match_packages

DEBIAN12 = OsRelease(id="debian", version_id="12")


def _feed(rel: str) -> tuple[str, bytes]:
    return rel, (DATA / rel).read_bytes()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> AdvisoryDB:
    path = tmp_path_factory.mktemp("vdb") / "vulndb.sqlite"
    import_feeds(
        [
            _feed("osv/Debian-subset-all.zip"),
            _feed("debian-tracker/bookworm_tracker_excerpt_RECONSTRUCTED.json"),
            _feed("osv/Alpine-subset-all.zip"),
            _feed("alpine-secdb/v3.20-main.json"),
            _feed("osv/AlmaLinux-subset-all.zip"),
            _feed("kev/known_exploited_vulnerabilities.json.gz"),
            _feed("epss/epss_format_example.csv"),
        ],
        path,
    )
    opened = open_db(path)
    assert opened is not None
    return opened


def deb(
    name: str, version: str, source: str | None = None, source_version: str | None = None
) -> InstalledPackage:
    return InstalledPackage(name=name, version=version, source=source, source_version=source_version)


def _by_id(report: object) -> dict[tuple[str, str], object]:
    return {(m.source_package, m.vuln_id): m for m in report.matches}  # type: ignore[attr-defined]


def test_fixed_vulnerability_by_source_package_with_tracker_preferred(db: AdvisoryDB) -> None:
    pkgs = (
        deb("openssh-server", "1:9.2p1-2+deb12u2", "openssh"),
        deb("openssh-client", "1:9.2p1-2+deb12u2", "openssh"),
    )
    report = match_packages(db, DEBIAN12, pkgs)
    m = _by_id(report)[("openssh", "CVE-2024-6387")]
    assert m.state == "fixed" and m.fixed_version == "1:9.2p1-2+deb12u3"  # type: ignore[attr-defined]
    assert m.packages == ("openssh-client", "openssh-server")  # type: ignore[attr-defined]
    assert m.feeds[0] == "debian-tracker"  # type: ignore[attr-defined]
    # The OSV DSA record for the same CVE merged in, not counted twice.
    assert sum(1 for k in _by_id(report) if k[1] == "CVE-2024-6387") == 1
    assert "DSA-5724-1" in m.aliases  # type: ignore[attr-defined]


def test_patched_package_is_not_reported(db: AdvisoryDB) -> None:
    report = match_packages(db, DEBIAN12, (deb("openssh-server", "1:9.2p1-2+deb12u3", "openssh"),))
    assert ("openssh", "CVE-2024-6387") not in _by_id(report)


def test_source_version_not_binary_version_decides(db: AdvisoryDB) -> None:
    # libc6's binary version equals its source's here; a binNMU'd binary with an epoch would not.
    old = match_packages(db, DEBIAN12, (deb("libc6", "2.36-9+deb12u1", "glibc"),))
    m = _by_id(old)[("glibc", "CVE-2023-4911")]
    assert m.kev_date_added  # type: ignore[attr-defined]  # Looney Tunables is in CISA KEV
    binnmu = match_packages(db, DEBIAN12, (deb("libc6", "1:2.36-9+deb12u1+b1", "glibc", "2.36-9+deb12u1"),))
    assert ("glibc", "CVE-2023-4911") in _by_id(binnmu)  # epoch on the binary only: still vulnerable


def test_not_affected_and_no_dsa(db: AdvisoryDB) -> None:
    report = match_packages(
        db,
        DEBIAN12,
        (
            deb("xz-utils", "5.4.1-0.2"),
            deb("liblzma5", "5.4.1-0.2", "xz-utils"),
            deb("sudo", "1.9.13p3-1+deb12u1"),
        ),
    )
    found = _by_id(report)
    assert ("xz-utils", "CVE-2024-3094") not in found  # tracker fixed_version "0": bookworm never affected
    sudo = found[("sudo", "CVE-2023-42465")]
    assert sudo.state == "unfixed" and sudo.minor and sudo.note == "Minor issue"  # type: ignore[attr-defined]


def test_kernel_headers_are_not_the_kernel(db: AdvisoryDB) -> None:
    headers_only = match_packages(
        db, DEBIAN12, (deb("linux-libc-dev", "6.1.123-1", "linux"), deb("linux-perf", "6.1.123-1", "linux"))
    )
    assert not [m for m in headers_only.matches if m.source_package == "linux"]
    assert any("linux-libc-dev" in s for s in headers_only.skipped)
    image = match_packages(
        db, DEBIAN12, (deb("linux-image-6.1.0-29-amd64", "6.1.123-1", "linux-signed-amd64", "6.1.123+1"),)
    )
    assert ("linux", "CVE-2025-21682") in _by_id(image)


def test_only_the_running_kernel_counts(db: AdvisoryDB) -> None:
    pkgs = (
        deb("linux-image-6.1.0-29-amd64", "6.1.123-1", "linux-signed-amd64", "6.1.123+1"),
        deb("linux-image-6.1.0-99-amd64", "6.1.999-1", "linux-signed-amd64", "6.1.999+1"),
    )
    running = match_packages(db, DEBIAN12, pkgs, running_kernel="6.1.0-29-amd64")
    assert any("6.1.0-99" in s for s in running.skipped)
    assert {m.installed_version for m in running.matches if m.source_package == "linux"} <= {"6.1.123-1"}


def test_alpine_by_origin_package(db: AdvisoryDB) -> None:
    alpine = OsRelease(id="alpine", version_id="3.20.2")
    pkgs = (InstalledPackage(name="openssh-server", version="9.7_p1-r3", source="openssh", manager="apk"),)
    report = match_packages(db, alpine, pkgs)
    assert report.ecosystem == "Alpine:v3.20"
    assert ("openssh", "CVE-2024-6387") in _by_id(report)
    fixed = match_packages(
        db,
        alpine,
        (InstalledPackage(name="openssh-server", version="9.7_p1-r4", source="openssh", manager="apk"),),
    )
    assert ("openssh", "CVE-2024-6387") not in _by_id(fixed)


def test_almalinux_by_binary_name(db: AdvisoryDB) -> None:
    alma = OsRelease(id="almalinux", version_id="9.3")
    pkgs = (InstalledPackage(name="openssl-libs", version="1:3.0.7-24.el9", source="openssl", manager="rpm"),)
    report = match_packages(db, alma, pkgs)
    fixed_in = {m.fixed_version for m in report.matches if m.source_package == "openssl-libs"}
    assert "1:3.0.7-25.el9_3" in fixed_in and "1:3.0.7-6.el9_2" not in fixed_in
    assert {m.severity for m in report.matches} & {"moderate", "low", "important"}


def test_unsupported_or_unknown_release_is_unknown(db: AdvisoryDB) -> None:
    assert ecosystem_for(OsRelease(id="debian", version_id=None))[0] is None
    report = match_packages(db, OsRelease(id="ubuntu", version_id="24.04"), (deb("bash", "5.2-1"),))
    assert report.unknown_reason and "no advisories for Ubuntu:24.04:LTS" in report.unknown_reason


def test_whole_debian12_status_and_checks(db: AdvisoryDB) -> None:
    from vmsec.parsers.dpkg_status import parse_dpkg_status

    pkgs = parse_dpkg_status((DATA / "installed" / "debian12-dpkg-status.trimmed").read_text(), "status")
    host_os = Guest(name="hv1", origin="/", os=DEBIAN12, packages=pkgs)
    inv = match_inventory(
        Inventory(host_os=host_os, guests=(Guest(name="g", origin="g", os=DEBIAN12, packages=pkgs),)), db
    )
    assert inv.host_os and inv.host_os.vulnerabilities and inv.host_os.vulnerabilities.matches
    scan = run_checks(inv, default_catalog().select(ids=["VMS-VULN-*"]))
    vulns = [f for f in scan.findings if f.vulnerability]
    assert vulns and all(f.vulnerability["id"] for f in vulns)  # type: ignore[index]
    escape = [f for f in vulns if "vm-escape-surface" in f.tags]
    assert escape and all(f.target.kind == "host" for f in escape)
    assert {f.vulnerability["source_package"] for f in escape} & {"qemu"}  # type: ignore[index]
    guest_vulns = [f for f in vulns if f.target.kind == "guest"]
    assert guest_vulns and not any("vm-escape-surface" in f.tags for f in guest_vulns)


def test_no_database_is_unknown_not_zero() -> None:
    inv = match_inventory(Inventory(guests=(Guest(name="g", origin="g", os=DEBIAN12, packages=()),)), None)
    scan = run_checks(inv, default_catalog().select(ids=["VMS-VULN-001", "VMS-VULN-002"]))
    assert {f.status for f in scan.findings} == {Status.UNKNOWN}
    assert all(f.message == NO_DB_REASON for f in scan.findings)


def test_kev_listed_is_critical(db: AdvisoryDB) -> None:
    inv = match_inventory(
        Inventory(
            guests=(
                Guest(name="g", origin="g", os=DEBIAN12, packages=(deb("libc6", "2.36-9+deb12u1", "glibc"),)),
            )
        ),
        db,
    )
    scan = run_checks(inv, default_catalog().select(ids=["VMS-VULN-001"]))
    looney = [f for f in scan.findings if f.subject == "CVE-2023-4911 glibc"]
    assert looney and looney[0].severity is Severity.CRITICAL
    assert looney[0].vulnerability and looney[0].vulnerability["kev"]


def test_shared_advisory_ids_do_not_merge_different_cves(db: AdvisoryDB) -> None:
    # Pre-2025 merged OSV records list cross-distro advisories (USN-6824-1, SUSE-SU-2024:0786-1) that
    # cover several CVEs; identity must come from the CVE, or unfixed CVEs silently disappear.
    report = match_packages(db, DEBIAN12, (deb("libgif7", "5.2.1-2.5", "giflib"),))
    found = {m.vuln_id for m in report.matches}
    assert {"CVE-2021-40633", "CVE-2022-28506", "CVE-2023-39742"} <= found


def test_whole_status_agrees_with_debsecan_reference_figure(db: AdvisoryDB) -> None:
    # vulndata.md §B.2: debsecan-style source matching on this status gives 238 open (CVE, source)
    # pairs, 31 of which come from kernel headers/tools (linux-libc-dev, linux-perf), not a kernel.
    from vmsec.parsers.dpkg_status import parse_dpkg_status

    pkgs = parse_dpkg_status((DATA / "installed" / "debian12-dpkg-status.trimmed").read_text(), "status")
    report = match_packages(db, DEBIAN12, pkgs)
    pairs = {(m.vuln_id, m.source_package) for m in report.matches}
    assert not [p for p in pairs if p[1] == "linux"]
    assert len(pairs) == 238 - 31  # benchmarks/compare_debsecan.py shows the same split, pair by pair


def test_same_cve_id_in_two_ecosystem_dumps_is_keyed_by_ecosystem(db: AdvisoryDB) -> None:
    # Pitfall 20: pre-2025 OSV dumps carry a record named CVE-2024-6387 in both Debian and Alpine.
    debian = match_packages(db, DEBIAN12, (deb("openssh-server", "1:9.2p1-2+deb12u2", "openssh"),))
    alpine = match_packages(
        db,
        OsRelease(id="alpine", version_id="3.20.0"),
        (InstalledPackage(name="openssh", version="9.7_p1-r3", source="openssh", manager="apk"),),
    )
    assert {m.ecosystem for m in debian.matches} == {"Debian:12"}
    assert {m.ecosystem for m in alpine.matches} == {"Alpine:v3.20"}


def test_alpine_zero_key_means_not_affected(db: AdvisoryDB) -> None:
    from vmsec.vulns.feeds.alpine_secdb import parse_secdb

    zero = [
        r for r in parse_secdb((DATA / "alpine-secdb" / "v3.20-main.json").read_bytes()) if r.fixed is None
    ]
    assert zero  # secfixes "0": listed as not affected, never as "fixed in version 0"
    rec = zero[0]
    report = match_packages(
        db,
        OsRelease(id="alpine", version_id="3.20.0"),
        (InstalledPackage(name=rec.package, version="0.0.1-r0", source=rec.package, manager="apk"),),
    )
    assert rec.vuln_id not in {m.vuln_id for m in report.matches if m.source_package == rec.package}


def test_backports_are_judged_as_the_next_releases_package(db: AdvisoryDB) -> None:
    # Pitfall 16 with real records: CVE-2021-20255 is open in bookworm's qemu but fixed in trixie's
    # 1:8.1.0+ds-1; a bookworm-backports build of that (…~bpo12+1) is not vulnerable.
    stable = match_packages(db, DEBIAN12, (deb("qemu-system-x86", "1:7.2+dfsg-7+deb12u7", "qemu"),))
    assert ("qemu", "CVE-2021-20255") in _by_id(stable)
    backport = match_packages(db, DEBIAN12, (deb("qemu-system-x86", "1:8.1.0+ds-1~bpo12+1", "qemu"),))
    assert ("qemu", "CVE-2021-20255") not in _by_id(backport)
    assert {m.ecosystem for m in backport.matches} <= {"Debian:13"}


@pytest.mark.parametrize("first_fixed", [True, False])
def test_each_binary_s_own_source_version_decides(db: AdvisoryDB, first_fixed: bool) -> None:
    """Class 8: openssh-client held back at the vulnerable version while openssh-server was upgraded.
    Whichever binary comes first, the lagging one is found and named, and the fixed one is not."""
    fixed = deb("openssh-server", "1:9.2p1-2+deb12u3", "openssh")
    held = deb("openssh-client", "1:9.2p1-2+deb12u2", "openssh")
    pkgs = (fixed, held) if first_fixed else (held, fixed)
    m = _by_id(match_packages(db, DEBIAN12, pkgs))[("openssh", "CVE-2024-6387")]
    assert m.packages == ("openssh-client",)  # type: ignore[attr-defined]
    assert m.installed_version == "1:9.2p1-2+deb12u2"  # type: ignore[attr-defined]
    assert m.unaffected == ("openssh-server 1:9.2p1-2+deb12u3",)  # type: ignore[attr-defined]


def test_the_finding_names_the_binaries_that_lag(db: AdvisoryDB) -> None:
    pkgs = (deb("openssh-server", "1:9.2p1-2+deb12u3", "openssh"),
            deb("openssh-client", "1:9.2p1-2+deb12u2", "openssh"))
    guest = Guest(name="g", origin="/g", os=DEBIAN12, packages=pkgs)
    inventory = match_inventory(Inventory(guests=(guest,)), db)
    findings = run_checks(inventory, default_catalog().select(ids=["VMS-VULN-001"])).findings
    hit = [f for f in findings if f.status is Status.FAIL and "CVE-2024-6387" in f.message]
    assert len(hit) == 1
    assert "(openssh-client)" in hit[0].message and "openssh-server 1:9.2p1-2+deb12u3" in hit[0].message
    assert "only these lag" in hit[0].message


def test_the_database_says_which_releases_it_holds_advisories_for(db: AdvisoryDB) -> None:
    held = db.ecosystems()
    assert "Debian:12" in held and "Ubuntu:24.04:LTS" not in held
    for ecosystem in [*sorted(held), "Ubuntu:24.04:LTS", "Debian:99", ""]:
        assert db.holds(ecosystem) is (ecosystem in held)
        assert db.holds(ecosystem) is (ecosystem in held)  # and again, answered from what it learnt
