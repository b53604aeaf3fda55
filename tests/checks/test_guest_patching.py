"""Guest patching checks (VMS-GST-070…077): repository signatures, security suite, automatic
updates, end of life. Facts are built in the test; each row is facts -> expected statuses."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest

from datapaths import DISTRO_EOL
from vmsec.checks.api import Environment
from vmsec.checks.guest import patching as p
from vmsec.facts import Guest, Inventory, evolve
from vmsec.facts.guest import AutoUpdates, OsRelease, PackageRepo
from vmsec.findings import Severity, Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
DEBIAN12 = OsRelease(id="debian", version_id="12", version_codename="bookworm",
                     pretty_name="Debian GNU/Linux 12 (bookworm)")


def g(**kw: Any) -> Guest:
    return Guest(name="vm", origin="/img/vm.qcow2", **kw)


def apt(uri: str, suite: str = "bookworm", **kw: Any) -> PackageRepo:
    return PackageRepo(manager="apt", uri=uri, suite=suite, origin="/etc/apt/sources.list:1", **kw)


def dnf(uri: str, **kw: Any) -> PackageRepo:
    return PackageRepo(manager="dnf", uri=uri, origin="/etc/yum.repos.d/x.repo [x]", **kw)


def env(today: str | None = "2026-11-27") -> Environment:
    return Environment(inventory=Inventory(), host=None,
                       params={} if today is None else {"today": today})


@pytest.mark.parametrize(("repos", "expected", "severity"), [
    (None, [U], None),
    ((apt("https://deb.debian.org/debian"),), [P], None),
    ((apt("http://deb.example.com/x", trusted=True),), [F], Severity.CRITICAL),
    ((apt("https://deb.example.com/x", trusted=True),), [F], Severity.HIGH),
    ((apt("file:/srv/repo", trusted=True),), [F], Severity.MEDIUM),
    ((apt("https://deb.example.com/x", signed=False),), [F], Severity.HIGH),  # allow-insecure
    ((apt("http://deb.example.com/x", trusted=True, enabled=False),), [], None),
    ((dnf("https://x"),), [], None),
])
def test_apt_trusted(repos: Any, expected: list[Status], severity: Severity | None) -> None:
    results = list(p.apt_sources_verified(g(repos=repos)))
    assert [r.status for r in results] == expected
    if severity:
        assert results[0].severity is severity


@pytest.mark.parametrize(("repo", "expected", "severity"), [
    (dnf("https://cdn.redhat.com/x", gpgcheck=True), P, None),
    (dnf("https://cdn.example.com/x", gpgcheck=False), F, None),
    (dnf("http://mirror.example.com/x", gpgcheck=False), F, Severity.CRITICAL),
    (dnf("https://x", gpgcheck=None), U, None),
])
def test_gpgcheck(repo: PackageRepo, expected: Status, severity: Severity | None) -> None:
    [r] = p.rpm_gpgcheck(g(repos=(repo,)))
    assert r.status is expected and r.severity is severity


def test_repo_gpgcheck() -> None:
    rs = list(p.rpm_repo_gpgcheck(g(repos=(dnf("https://a", repo_gpgcheck=True),
                                            dnf("https://b", repo_gpgcheck=False),
                                            dnf("https://c"), apt("https://d")))))
    assert [r.status for r in rs] == [P, F, U]


@pytest.mark.parametrize(("repo", "expected"), [
    (apt("http://deb.debian.org/debian"), [P]),  # signed Release over http
    (apt("http://deb.example.com/x", trusted=True), [F]),
    (dnf("http://mirror/x", gpgcheck=False), [F]),
    (dnf("http://mirror/x", gpgcheck=None), [U]),
    (PackageRepo(manager="apk", uri="http://dl-cdn.alpinelinux.org/alpine/v3.20/main",
                 origin="/etc/apk/repositories:1"), [P]),
    (apt("https://deb.example.com/x", trusted=True), []),  # not plain http: other checks
    (apt("mirror+http://mirrors.example.com/list.txt", trusted=True), [F]),
])
def test_plain_http(repo: PackageRepo, expected: list[Status]) -> None:
    assert [r.status for r in p.plain_http_verified(g(repos=(repo,)))] == expected


def test_third_party_repos() -> None:
    distro = (apt("https://deb.debian.org/debian"), apt("http://security.debian.org/debian-security",
                                                          "bookworm-security"))
    assert [r.status for r in p.third_party_repos(g(repos=distro))] == [P]
    mixed = (*distro, apt("https://download.docker.com/linux/debian"))
    results = list(p.third_party_repos(g(repos=mixed)))
    assert [r.status for r in results] == [F]
    assert "download.docker.com" in results[0].message


@pytest.mark.parametrize(("os", "repos", "expected"), [
    (DEBIAN12, (apt("https://deb.debian.org/debian"),
                apt("https://security.debian.org/debian-security", "bookworm-security")), [P]),
    (DEBIAN12, (apt("https://deb.debian.org/debian"),), [F]),
    (DEBIAN12, (apt("https://security.debian.org/debian-security", "bookworm-security",
                    enabled=False),), [F]),
    (OsRelease(id="ubuntu", version_id="24.04", version_codename="noble"),
     (apt("http://archive.ubuntu.com/ubuntu", "noble-security"),), [P]),
    (OsRelease(id="debian", version_id="10", version_codename="buster"),
     (apt("http://security.debian.org", "buster/updates"),), [P]),
    (OsRelease(id="debian"), (), [U]),
    (OsRelease(id="rocky", version_id="9.4"), (), []),
    (None, (), [U]),
])
def test_security_repo(os: OsRelease | None, repos: Any, expected: list[Status]) -> None:
    assert [r.status for r in p.security_repo(g(os=os, repos=repos))] == expected


@pytest.mark.parametrize(("auto", "expected"), [
    (None, U),
    (AutoUpdates(mechanism=None, enabled=None), U),
    (AutoUpdates(mechanism=None, enabled=False), F),
    (AutoUpdates(mechanism="unattended-upgrades", enabled=False), F),
    (AutoUpdates(mechanism="unattended-upgrades", enabled=None), U),
    (AutoUpdates(mechanism="dnf-automatic", enabled=True, security_only=True), P),
])
def test_automatic_updates(auto: AutoUpdates | None, expected: Status) -> None:
    [r] = p.automatic_updates(g(auto_updates=auto))
    assert r.status is expected


@pytest.mark.parametrize(("os", "today", "expected", "severity", "words"), [
    # Debian 12: standard support ended 2026-07-11, LTS until 2028-06-30 (distro-info-data).
    (DEBIAN12, "2026-07-01", P, None, "until 2026-07-11"),
    (DEBIAN12, "2026-11-27", F, Severity.INFO, "Debian LTS"),
    (DEBIAN12, "2029-01-01", F, Severity.MEDIUM, "ELTS"),
    (DEBIAN12, "2034-01-01", F, None, "end of life"),
    (OsRelease(id="debian", version_id="11", version_codename="bullseye"), "2026-11-27", F,
     Severity.MEDIUM, "ELTS"),
    (OsRelease(id="debian", version_id="13", version_codename="trixie"), "2026-11-27", P, None,
     "2028-08-09"),
    (OsRelease(id="debian", version_codename="forky"), "2026-11-27", F, Severity.LOW, "development"),
    (OsRelease(id="ubuntu", version_id="24.04", version_codename="noble"), "2026-11-27", P, None,
     "2029-05-31"),
    (OsRelease(id="ubuntu", version_id="20.04", version_codename="focal"), "2026-11-27", F,
     Severity.LOW, "ESM"),
    (OsRelease(id="ubuntu", version_id="23.10", version_codename="mantic"), "2026-11-27", F, None,
     "end of life"),
    (OsRelease(id="rhel", version_id="9.4"), "2026-11-27", P, None, "2032-05-31"),
    (OsRelease(id="centos", version_id="7"), "2026-11-27", F, None, "end of life"),
    (OsRelease(id="alpine", version_id="3.21.2"), "2026-11-27", F, None, "2026-11-01"),
    (OsRelease(id="alpine", version_id="3.22.1"), "2026-11-27", P, None, "2027-05-01"),
    (OsRelease(id="gentoo", version_id="2.15"), "2026-11-27", U, None, "no support dates"),
    (OsRelease(id=None), "2026-11-27", U, None, "os-release"),
    (None, "2026-11-27", U, None, "os-release"),
    (DEBIAN12, None, U, None, "today"),
    (DEBIAN12, "not-a-date", U, None, "today"),
])
def test_release_supported(os: OsRelease | None, today: str | None, expected: Status,
                           severity: Severity | None, words: str) -> None:
    [r] = p.release_supported(g(os=os), env(today))
    assert r.status is expected, r.message
    assert r.severity is severity
    assert words in r.message


def test_support_table_is_complete_for_current_releases() -> None:
    table = p.support_table()
    for key in [("debian", "12"), ("debian", "bookworm"), ("ubuntu", "24.04"), ("ubuntu", "noble"),
                ("rhel", "9"), ("almalinux", "9"), ("rocky", "9"), ("alpine", "3.22")]:
        assert key in table, key
    assert table[("debian", "12")].eol is not None


def test_compliance_refs_cover_every_check() -> None:
    """guest_system.toml maps each of these checks, with only the documented keys."""
    import tomllib

    from vmsec.checks.catalog import default_catalog

    text = (resources.files("vmsec") / "data" / "compliance" / "refs" / "guest_system.toml").read_text()
    refs = tomllib.loads(text)
    ours = {c.id for c in default_catalog().checks if c.module.rsplit(".", 1)[-1] in {
        "patching", "services", "kernel_params", "logging", "firewall", "encryption", "mounts",
        "provisioning"} and c.module.startswith("vmsec.checks.guest.")}
    assert ours and set(refs) == ours
    for check_id, entry in refs.items():
        assert set(entry) <= {"cis", "cis_rhel9", "ssg", "lynis", "verified", "note"}, check_id
        assert isinstance(entry["verified"], bool), check_id
        for key in ("cis", "cis_rhel9", "ssg", "lynis"):
            assert all(isinstance(v, str) and v for v in entry.get(key, [])), check_id


@pytest.mark.parametrize("name", ["debian.csv", "ubuntu.csv"])
def test_shipped_distro_info_is_the_unmodified_upstream_file(name: str) -> None:
    """PROVENANCE.md says the distro-info-data CSVs are copied unmodified."""
    shipped = (resources.files("vmsec") / "data" / "eol" / name).read_bytes()
    assert shipped == (DISTRO_EOL / name).read_bytes()


def test_hand_made_rows_are_consistent() -> None:
    table = p.support_table()
    for (distro, version), win in table.items():
        if win.eol is not None and win.released is not None:
            assert win.released < win.eol, (distro, version)
        for _label, until in win.extended:
            assert win.eol is not None and until >= win.eol, (distro, version)
        if distro not in ("debian", "ubuntu"):
            assert win.source.startswith("https://"), (distro, version)


APT_UNREAD = {"repos": ("/etc/apt/sources.list.d/vendor.list: Permission denied",)}


def test_an_unread_apt_source_file_is_unknown_not_pass() -> None:
    # the unread file may hold a trusted=yes source, or an Allow*Insecure* switch for all of them
    guest = g(os=DEBIAN12, repos=(apt("https://deb.debian.org/debian"),), unread=APT_UNREAD)
    for func in (p.apt_sources_verified, p.third_party_repos):
        statuses = [r.status for r in func(guest)]
        assert statuses and P not in statuses and U in statuses
    # no bookworm-security among the sources read: the unread file may hold it
    assert [r.status for r in p.security_repo(guest)] == [U]
    # a source read with trusted=yes stays a finding
    bad = g(os=DEBIAN12, repos=(apt("http://x.example/debian", trusted=True),), unread=APT_UNREAD)
    assert F in [r.status for r in p.apt_sources_verified(bad)]


def test_an_unread_apt_file_does_not_touch_rpm_repositories() -> None:
    guest = g(repos=(dnf("https://a.example/", gpgcheck=True, signed=True),), unread=APT_UNREAD)
    assert [r.status for r in p.rpm_gpgcheck(guest)] == [P]
    rpm_unread = {"repos": ("/etc/yum.repos.d/vendor.repo: Permission denied",)}
    assert [r.status for r in p.rpm_gpgcheck(evolve(guest, unread=rpm_unread))] == [U, P]


def test_automatic_updates_with_an_unread_apt_conf_file() -> None:
    unread = {"auto_updates": ("/etc/apt/apt.conf.d/20auto-upgrades: Permission denied",)}
    on = AutoUpdates(mechanism="unattended-upgrades", enabled=True, origin="/etc/apt/apt.conf.d")
    off = AutoUpdates(mechanism="unattended-upgrades", enabled=False, origin="/etc/apt/apt.conf.d")
    assert [r.status for r in p.automatic_updates(g(auto_updates=on, unread=unread))] == [U]
    assert [r.status for r in p.automatic_updates(g(auto_updates=off, unread=unread))] == [U]
