"""Match an OS root's installed packages against the advisory database, as the distribution does.

Rules (each has a test built from real records): the ecosystem is the exact release ("Debian:12",
"Alpine:v3.20", "AlmaLinux:9"); Debian, Ubuntu and Alpine advisories are keyed by *source* package
and compared with the *source* version — each binary's own source version, since binaries of one
source can lag behind each other (the finding names the binaries that lag); RHEL-family advisories
use binary names; only kernel images count for the kernel source (never headers, libc-dev, kbuild,
tools), and only the running one when it is known; not-affected records and "under investigation"
are not findings; the Debian tracker is preferred over OSV for the same package and vulnerability;
duplicates across feeds merge by id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from msgspec import Struct, field

from vmsec.facts import Guest, InstalledPackage, OsRelease, QemuProcess, VulnMatch, VulnReport, evolve
from vmsec.facts.inventory import Inventory
from vmsec.vulns.db import STALE_AFTER_DAYS, AdvisoryDB
from vmsec.vulns.model import AffectedPackage, FixState
from vmsec.vulns.versions import InvalidVersion, apk_compare, dpkg_compare, rpm_compare

NO_DB_REASON = ("no vulnerability database: run 'vmsec db update' (or 'vmsec db import FILES' on an "
                "air-gapped host); vulnerability results are UNKNOWN, not zero")

# Sources whose binaries include the kernel image, and the binaries of them that are not the kernel.
KERNEL_SOURCES = frozenset({"linux", "linux-signed-amd64", "linux-signed-arm64", "linux-signed-i386",
                            "linux-hwe", "kernel"})
_NOT_KERNEL_PREFIXES = ("linux-headers-", "linux-libc-dev", "linux-kbuild-", "linux-perf", "linux-tools",
                        "linux-source", "linux-doc", "linux-compiler", "linux-cpupower", "libcpupower",
                        "bpftool", "usbip", "hyperv-daemons", "kernel-headers", "kernel-tools",
                        "kernel-devel", "kernel-doc", "kernel-srpm-macros", "kernel-abi-stablelists")
_STATE_ORDER = {FixState.FIXED: 0, FixState.UNFIXED: 1, FixState.FIX_DEFERRED: 2,
                FixState.WILL_NOT_FIX: 3, FixState.END_OF_LIFE: 4}


def ecosystem_for(os: OsRelease | None) -> tuple[str | None, str | None]:
    """(ecosystem, reason when unknown) for an os-release."""
    if os is None or not os.id:
        return None, "the OS release could not be read"
    version = os.version_id or ""
    ident = os.id.lower()
    major = version.split(".")[0]
    if ident == "debian":
        return (f"Debian:{major}", None) if major.isdigit() else (None, "Debian testing/unstable has no "
                                                                   "release-specific advisory data")
    if ident == "ubuntu" and version:
        year, _, month = version.partition(".")
        lts = month == "04" and year.isdigit() and int(year) % 2 == 0
        return (f"Ubuntu:{version}:LTS" if lts else f"Ubuntu:{version}"), None
    if ident == "alpine" and version:
        parts = version.split(".")
        return (f"Alpine:v{parts[0]}.{parts[1]}", None) if len(parts) >= 2 else (None, "no Alpine branch")
    if ident == "almalinux" and major:
        return f"AlmaLinux:{major}", None
    if ident == "rocky" and major:
        return f"Rocky Linux:{major}", None
    return None, f"no advisory source is supported for {os.pretty_name or ident} {version}".strip()


def _comparator(ecosystem: str) -> Callable[[str, str], int]:
    if ecosystem.startswith(("Debian", "Ubuntu")):
        return dpkg_compare
    if ecosystem.startswith("Alpine"):
        return apk_compare
    return rpm_compare


class _Installed(Struct):
    """The installed binaries of one advisory key (source package), by the version each stands at.

    Binaries of one source can sit at different versions (a held package, a partial upgrade, a
    binary-only epoch or binNMU): each version is judged on its own."""

    key: str  # the name advisories use
    versions: dict[str, list[str]] = field(default_factory=dict)  # version -> binaries at it

    def add(self, version: str, binary: str) -> None:
        self.versions.setdefault(version, []).append(binary)

    @property
    def binaries(self) -> list[str]:
        return [b for bins in self.versions.values() for b in bins]


def _group(packages: Iterable[InstalledPackage], ecosystem: str, running_kernel: str | None,
           cmp: Callable[[str, str], int], skipped: list[str]) -> dict[str, _Installed]:
    by_source = not ecosystem.startswith(("AlmaLinux", "Rocky", "Red Hat"))
    groups: dict[str, _Installed] = {}
    kernels: list[tuple[str, str, str]] = []  # (key, version, binary)
    for p in packages:
        source = (p.source or p.name) if by_source else p.name
        version = (p.source_version or p.version) if by_source else p.version
        if source in KERNEL_SOURCES or p.name.startswith(("linux-image-", "kernel-core")):
            if p.name.startswith(_NOT_KERNEL_PREFIXES):
                skipped.append(f"{p.name}: built from the kernel source but is not the kernel")
                continue
            if by_source and source.startswith("linux-signed"):
                # The signed image's source is a wrapper; the tracker files kernel CVEs under "linux",
                # with the binary's version (6.1.115-1, not the wrapper's 6.1.115+1).
                source, version = "linux", p.version
            kernels.append((source, version, p.name))
            continue
        groups.setdefault(source, _Installed(source)).add(version, p.name)
    if kernels:
        running = [k for k in kernels if running_kernel and running_kernel in k[2]]
        if running:
            chosen = running[0]
        else:
            # Offline: several kernels may be installed; the newest is the one that boots by default.
            chosen = kernels[0]
            for k in kernels[1:]:
                try:
                    if cmp(k[1], chosen[1]) > 0:
                        chosen = k
                except InvalidVersion:
                    continue
        for k in kernels:
            if k is not chosen and k[1] != chosen[1]:
                skipped.append(f"{k[2]} {k[1]}: not the kernel that runs ({chosen[2]} {chosen[1]})")
        entry = groups.setdefault(chosen[0], _Installed(chosen[0]))
        for k in kernels:
            if k[1] == chosen[1]:
                entry.add(chosen[1], k[2])
    return groups


def _affects(rec: AffectedPackage, installed: str, cmp: Callable[[str, str], int]) -> bool:
    if rec.introduced and cmp(installed, rec.introduced) < 0:
        return False
    if rec.state is FixState.FIXED:
        return rec.fixed is not None and cmp(installed, rec.fixed) < 0
    if rec.last_affected:
        return cmp(installed, rec.last_affected) <= 0
    return True


def match_packages(db: AdvisoryDB, os: OsRelease | None, packages: tuple[InstalledPackage, ...] | None,
                   *, running_kernel: str | None = None, now: datetime | None = None) -> VulnReport:
    ecosystem, reason = ecosystem_for(os)
    if ecosystem is None:
        return VulnReport(ecosystem=None, unknown_reason=reason, database=str(db.path))
    if packages is None:
        return VulnReport(ecosystem=ecosystem, unknown_reason="the installed packages could not be read",
                          database=str(db.path))
    if not db.holds(ecosystem):
        return VulnReport(ecosystem=ecosystem, database=str(db.path),
                          unknown_reason=f"the vulnerability database holds no advisories for {ecosystem}: "
                          "import its feed")
    skipped: list[str] = []
    cmp = _comparator(ecosystem)
    groups = _group(packages, ecosystem, running_kernel, cmp, skipped)
    # Debian backports (1.2-3~bpo12+1) are rebuilt from the next release's package (1.2-3): judge them
    # as that package against that release's data — against their own release's data an issue open
    # in stable but fixed in the backport would be reported (vulndata.md §B pitfall 16).
    backports: dict[str, _Installed] = {}
    next_release = _next_debian(ecosystem)
    if next_release is not None:
        for name, g in list(groups.items()):
            for version in [v for v in g.versions if _BPO.search(v)]:
                backports.setdefault(name, _Installed(g.key)).versions[_BPO.sub("", version)] = \
                    g.versions.pop(version)
            if not g.versions:
                del groups[name]
        if backports and not db.holds(next_release):
            skipped.extend(f"{n} {v}: a backport; {next_release} data is needed to judge it"
                           for n, g in backports.items() for v in g.versions)
            backports = {}
    matches = _judge(db.affected(ecosystem, list(groups)), groups, cmp, ecosystem, skipped)
    if backports and next_release is not None:
        matches.update(_judge(db.affected(next_release, list(backports)), backports, cmp, next_release,
                              skipped))
    found = list(matches.values())
    cves = [m.vuln_id for m in found if m.vuln_id.startswith("CVE-")]
    kev, epss = db.kev(cves), db.epss(cves)
    enriched = []
    for m in found:
        k, e = kev.get(m.vuln_id), epss.get(m.vuln_id)
        if k is None and e is None:  # the matches' own defaults: nothing to add
            enriched.append(m)
            continue
        enriched.append(evolve(m, kev_date_added=k.date_added if k else None,
                                kev_ransomware=k.ransomware if k else None,
                                epss=e.score if e else None, epss_percentile=e.percentile if e else None))
    sources = db.sources()
    now = now or datetime.now(UTC)
    age = min((s.age_days(now) for s in sources), default=None)
    return VulnReport(ecosystem=ecosystem, matches=tuple(sorted(enriched, key=lambda m: (m.source_package,
                                                                                       m.vuln_id))),
                      packages_checked=len(packages), database=str(db.path),
                      data_age_days=round(age, 2) if age is not None else None, skipped=tuple(skipped))


_BPO = re.compile(r"~bpo\d+\+\d+$")


def _next_debian(ecosystem: str) -> str | None:
    if ecosystem.startswith("Debian:") and ecosystem[7:].isdigit():
        return f"Debian:{int(ecosystem[7:]) + 1}"
    return None


def _record_order(r: AffectedPackage) -> tuple[str, bool, int, str]:
    """Per package: the Debian tracker's records before other feeds', fixed before open, then by id."""
    return (r.package, not r.source.startswith("debian-tracker"), _STATE_ORDER.get(r.state, 9), r.vuln_id)


def _judge(found: Iterable[AffectedPackage], groups: Mapping[str, _Installed], cmp: Callable[[str, str], int],
           ecosystem: str, skipped: list[str]) -> dict[tuple[str, str], VulnMatch]:
    """Judge every record against the installed version of its package."""
    records = sorted(found, key=_record_order)
    matches: dict[tuple[str, str], VulnMatch] = {}
    judged: set[tuple[str, str]] = set()
    # (package, affected versions) -> (lagging binaries, unaffected "binary version"s): the same for
    # every record of a package that affects the same versions (nearly always all of them).
    binaries: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for rec in records:
        package = rec.package
        inst = groups[package]
        # A vulnerability is identified by its CVE(s); advisory ids (DSA, USN, SUSE-SU …) are shared by
        # many CVEs in merged records, so they never decide identity — they only travel as aliases.
        if rec.aliases:
            identity = rec.cves or (rec.vuln_id,)
            others = tuple(sorted(set(rec.ids) - set(identity)))
        else:  # most records (the Debian tracker's): the id is the identity, nothing else to carry
            identity, others = (rec.vuln_id,), ()
        for cve in identity:
            key = (package, cve)
            if key in matches:  # judged from a preferred record: merge, do not count twice
                m = matches[key]
                merged_feeds = m.feeds if rec.source in m.feeds else tuple(sorted({*m.feeds, rec.source}))
                if others or merged_feeds is not m.feeds:
                    matches[key] = evolve(m, aliases=tuple(sorted(set(m.aliases) | set(others))),
                                          feeds=merged_feeds)
        pending = [c for c in identity if (package, c) not in judged]
        if not pending:
            continue
        judged.update((package, c) for c in pending)
        if rec.state is FixState.NOT_AFFECTED or rec.state is FixState.UNDER_INVESTIGATION:
            continue
        affected: list[str] = []  # the versions (of this source's binaries) the record affects
        for version in inst.versions:
            try:
                if _affects(rec, version, cmp):
                    affected.append(version)
            except InvalidVersion as exc:
                skipped.append(f"{package} {rec.vuln_id}: {exc}")
        if not affected:
            continue
        oldest = affected[0]
        for version in affected[1:]:
            if cmp(version, oldest) < 0:
                oldest = version
        which = (package, tuple(affected))
        if which not in binaries:
            versions = inst.versions
            binaries[which] = (
                tuple(sorted(b for v in affected for b in versions[v])),
                tuple(sorted(f"{b} {v}" for v, bins in versions.items() if v not in affected for b in bins)))
        lagging, current = binaries[which]
        for cve in pending:
            matches[(package, cve)] = VulnMatch(
                vuln_id=cve, aliases=others, source_package=package,
                packages=lagging, installed_version=oldest, unaffected=current,
                fixed_version=rec.fixed, state=rec.state.value, ecosystem=ecosystem,
                severity=_severity(rec), minor=rec.minor, note=rec.note, summary=rec.summary,
                feeds=(rec.source,))
    return matches


def _severity(rec: AffectedPackage) -> str | None:
    if rec.severity:
        return rec.severity.lower()
    if rec.summary and ":" in rec.summary:  # AlmaLinux/Rocky: "Important: openssh security update"
        head = rec.summary.split(":", 1)[0].strip().lower()
        if head in ("critical", "important", "moderate", "low"):
            return head
    return None


def match_inventory(inventory: Inventory, db: AdvisoryDB | None, *, now: datetime | None = None) -> Inventory:
    """Attach a VulnReport to every OS root of the inventory (guests and the host's own OS)."""

    def one(guest: Guest) -> Guest:
        if db is None:
            return evolve(guest, vulnerabilities=VulnReport(ecosystem=ecosystem_for(guest.os)[0],
                                                             unknown_reason=NO_DB_REASON))
        return evolve(guest, vulnerabilities=match_packages(db, guest.os, guest.packages,
                                                             running_kernel=guest.running_kernel, now=now))

    host_os = one(inventory.host_os) if inventory.host_os is not None else None
    host = inventory.host
    if host is not None and host.runtime is not None and host.runtime.qemu:
        qemu = tuple(fixed_since(q, db, host_os.os if host_os is not None else None, host.packages, now=now)
                     for q in host.runtime.qemu)
        host = evolve(host, runtime=evolve(host.runtime, qemu=qemu))
    return evolve(inventory, guests=tuple(one(g) for g in inventory.guests), host_os=host_os, host=host)


def fixed_since(q: QemuProcess, db: AdvisoryDB | None, os: OsRelease | None,
                packages: tuple[InstalledPackage, ...] | None, *, now: datetime | None = None) -> QemuProcess:
    """The vulnerabilities fixed between the QEMU version a running VM started with and the installed
    one: matched at the old version, not at the new."""
    if not q.stale:
        return q
    reason = None
    if db is None:
        reason = NO_DB_REASON
    elif q.running_version is None or q.installed_version is None or q.package is None:
        reason = "the QEMU version it started with is unknown (no dpkg log entry for it)"
    elif q.running_version == q.installed_version:
        return evolve(q, fixed_since=(), fixed_since_reason=None)
    if reason is not None:
        return evolve(q, fixed_since=None, fixed_since_reason=reason)
    assert db is not None and q.running_version is not None and q.installed_version is not None
    installed = next((p for p in packages or () if p.name == q.package), None)
    source = installed.source if installed is not None and installed.source else q.package

    def at(version: str) -> VulnReport:
        package = InstalledPackage(name=q.package or "", version=version, source=source,
                                   manager=installed.manager if installed else "dpkg")
        return match_packages(db, os, (package,), now=now)

    old, new = at(q.running_version), at(q.installed_version)
    if old.unknown_reason:
        return evolve(q, fixed_since=None, fixed_since_reason=old.unknown_reason)
    still = {m.vuln_id for m in new.matches}
    return evolve(q, fixed_since=tuple(m for m in old.matches if m.vuln_id not in still),
                   fixed_since_reason=None)


def is_stale(report: VulnReport) -> bool:
    return report.data_age_days is not None and report.data_age_days > STALE_AFTER_DAYS


SEVERITY_MAP: Mapping[str, str] = {
    "critical": "critical", "high": "high", "important": "high", "medium": "medium", "moderate": "medium",
    "low": "low", "negligible": "info", "unimportant": "info",
}
