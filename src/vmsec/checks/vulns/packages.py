"""Known vulnerabilities in installed packages, judged from the matcher's report (vmsec.vulns).

One finding per (source package, vulnerability). A vulnerability with a released fix is separate
from one the distribution has not fixed (or will not fix): the first is a patching failure, the second
a risk to know and mitigate. On the hypervisor host, vulnerabilities in the virtualization stack are
tagged ``vm-escape-surface``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.facts import Guest, VulnMatch, VulnReport

# Source packages whose flaws let a guest reach the host (or the VMM itself).
VM_ESCAPE_SURFACE = frozenset({"qemu", "qemu-kvm", "libvirt", "linux", "kernel", "xen", "edk2", "ovmf",
                               "seabios", "virtiofsd", "spice", "usbredir", "libslirp", "swtpm",
                               "libvirt-daemon", "qemu-system-x86", "edk2-ovmf", "kernel-core"})
_SEVERITY = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "important": Severity.HIGH,
             "medium": Severity.MEDIUM, "moderate": Severity.MEDIUM, "low": Severity.LOW,
             "negligible": Severity.INFO, "unimportant": Severity.INFO}
_OPEN_STATES = ("unfixed", "fix_deferred", "will_not_fix", "end_of_life")


def _report(guest: Guest) -> tuple[VulnReport | None, Result | None]:
    report = guest.vulnerabilities
    subject = "vulnerability matching"
    if report is None:
        return None, unknown(subject, "vulnerability matching did not run for this system")
    if report.unknown_reason:
        return None, unknown(subject, report.unknown_reason,
                             ev(report.database or "vulnerability database", "ecosystem", report.ecosystem))
    return report, None


def _severity(m: VulnMatch) -> Severity:
    if m.kev_date_added:
        return Severity.CRITICAL  # exploited in the wild (CISA KEV)
    if m.minor and m.state != "fixed":
        return Severity.LOW
    return _SEVERITY.get((m.severity or "").lower(), Severity.MEDIUM)


def _vulnerability(m: VulnMatch) -> dict[str, Any]:
    return {
        "id": m.vuln_id, "aliases": list(m.aliases), "package": ", ".join(m.packages),
        "source_package": m.source_package, "installed_version": m.installed_version,
        "fixed_version": m.fixed_version, "state": m.state, "ecosystem": m.ecosystem,
        "distro_severity": m.severity, "minor": m.minor, "note": m.note,
        "kev": ({"date_added": m.kev_date_added, "known_ransomware_use": m.kev_ransomware}
                if m.kev_date_added else None),
        "epss": ({"score": m.epss, "percentile": m.epss_percentile} if m.epss is not None else None),
        "feeds": list(m.feeds),
        "unaffected_binaries": list(m.unaffected),
    }


def _context(m: VulnMatch) -> str:
    bits = []
    if m.kev_date_added:
        bits.append(f"CISA KEV since {m.kev_date_added}")
    if m.epss is not None:
        bits.append(f"EPSS {m.epss:.3f}")
    if m.note:
        bits.append(m.note)
    return f" ({'; '.join(bits)})" if bits else ""


def _lag(m: VulnMatch) -> str:
    """Name the binaries that lag when others of the same source are already fixed."""
    if not m.unaffected:
        return ""
    shown = ", ".join(m.unaffected[:6]) + (" …" if len(m.unaffected) > 6 else "")
    return f"; other binaries of {m.source_package} are not affected ({shown}): only these lag"


def _tags(guest: Guest, env: Environment, m: VulnMatch) -> tuple[str, ...]:
    on_host = env.inventory.host_os is guest
    return ("vm-escape-surface",) if on_host and m.source_package in VM_ESCAPE_SURFACE else ()


def _evidence(report: VulnReport, m: VulnMatch) -> tuple[Any, ...]:
    return (ev("package database", m.source_package, m.installed_version),
            ev(f"{', '.join(m.feeds)} ({m.ecosystem})", m.vuln_id, m.fixed_version or m.state))


@check("VMS-VULN-001", title="Installed packages have no vulnerabilities with a released fix",
       severity=Severity.HIGH, tags=(Tag.PATCHING, "vulnerability"),
       references=("https://security-tracker.debian.org/tracker/", "https://osv.dev/"))
def fixable_vulnerabilities(guest: Guest, env: Environment) -> Iterator[Result]:
    """A vulnerability the distribution has already fixed is the cheapest one to remove: the
    patched package is published and only needs installing. Matching follows the distribution's own
    data (source packages, backported fixes), so a finding here means the installed version really is
    older than the fix.

    Remediation: Install the distribution's updates (`apt-get upgrade`, `dnf upgrade`, `apk upgrade`),
    then restart the affected services — or, for QEMU and the kernel, restart or live-migrate the VMs
    and reboot the host so the patched code actually runs.
    """
    report, problem = _report(guest)
    if problem is not None:
        yield problem
        return
    assert report is not None
    fixable = [m for m in report.matches if m.state == "fixed"]
    for m in fixable:
        yield fail(f"{m.vuln_id} {m.source_package}",
                   f"{m.source_package} {m.installed_version} ({', '.join(m.packages)}) is affected by "
                   f"{m.vuln_id}; fixed in {m.fixed_version}{_lag(m)}{_context(m)}",
                   *_evidence(report, m), severity=_severity(m), vulnerability=_vulnerability(m),
                   tags=_tags(guest, env, m))
    if not fixable:
        yield ok("installed packages", f"{report.packages_checked} packages checked against "
                 f"{report.ecosystem} advisories: no fixed vulnerability is missing",
                 ev(report.database or "vulnerability database", "ecosystem", report.ecosystem))


@check("VMS-VULN-002", title="No unfixed vulnerabilities are known in installed packages",
       severity=Severity.MEDIUM, tags=(Tag.PATCHING, "vulnerability", "unfixed"),
       references=("https://security-tracker.debian.org/tracker/",))
def unfixed_vulnerabilities(guest: Guest, env: Environment) -> Iterator[Result]:
    """Some vulnerabilities have no fix in the distribution yet, or never will (Debian "no-dsa",
    "ignored", "postponed"; packages out of security support). They cannot be patched away, so they
    must be known and mitigated: disable the feature, restrict access, or replace the package.

    Remediation: Review each vulnerability's distribution status; mitigate (configuration, network
    exposure, removing the package) until a fix is published, and re-scan after updates.
    """
    report, problem = _report(guest)
    if problem is not None:
        yield problem
        return
    assert report is not None
    open_ = [m for m in report.matches if m.state in _OPEN_STATES]
    for m in open_:
        state = {"unfixed": "no fix released", "fix_deferred": "fix postponed",
                 "will_not_fix": "the distribution will not fix it",
                 "end_of_life": "the package is out of security support"}[m.state]
        yield fail(f"{m.vuln_id} {m.source_package}",
                   f"{m.source_package} {m.installed_version} is affected by {m.vuln_id}: {state}"
                   f"{_context(m)}", *_evidence(report, m), severity=_severity(m),
                   vulnerability=_vulnerability(m), tags=_tags(guest, env, m))
    if not open_:
        yield ok("installed packages", f"no unfixed vulnerability is known for the {report.packages_checked} "
                 f"installed packages ({report.ecosystem})")


@check("VMS-VULN-003", title="The vulnerability data is current", severity=Severity.LOW,
       tags=(Tag.PATCHING, "vulnerability"))
def data_is_current(guest: Guest, env: Environment) -> Iterator[Result]:
    """Advisory data older than a week misses recent fixes and newly published vulnerabilities, so
    "no finding" would mean less than it seems.

    Remediation: Run `vmsec db update` (or import fresh feed files with `vmsec db import`) regularly,
    e.g. daily from a timer.
    """
    report, problem = _report(guest)
    if problem is not None:
        yield problem
        return
    assert report is not None
    limit = float(env.param("vulndb_max_age_days", 7))
    where = ev(report.database or "vulnerability database", "age (days)", report.data_age_days)
    if report.data_age_days is None:
        yield unknown("vulnerability data", "the age of the vulnerability data is unknown", where)
    elif report.data_age_days > limit:
        yield fail("vulnerability data", f"the vulnerability data is {report.data_age_days:.0f} days old "
                   f"(more than {limit:.0f})", where)
    else:
        yield ok("vulnerability data", f"the vulnerability data is {report.data_age_days:.1f} days old",
                 where)
