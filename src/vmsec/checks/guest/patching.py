"""Patch delivery: whether the OS still gets security fixes (end of life), whether its package
sources are signature-verified, whether a security repository is configured, and whether updates
install themselves.

End-of-life dates are data shipped with vmsec (``vmsec/data/eol``); the date they are compared
against is the scan's ``today`` parameter, so the check stays a pure function.

A source file or directory that could not be read (``Guest.unread["repos"]``, ``["auto_updates"]``)
may add a source, or an APT switch that turns verification off for all of them: the sources read are
judged, and one more result says UNKNOWN for what was not read; nothing passes "for all sources".
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator, Mapping
from functools import cache
from urllib.parse import urlsplit

from msgspec import Struct

from vmsec import DATA_DIR
from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.text import other_names
from vmsec.checks.helpers.unread import guest_unread, not_read, ok_unless
from vmsec.facts import Guest
from vmsec.facts.guest import AutoUpdates, OsRelease, PackageRepo
from vmsec.findings import Evidence
from vmsec.parsers.system.unattended_filters import DAY_NAMES
from vmsec.parsers.system.unattended_origins import security_coverage

_APT = "apt"
_RPM_MANAGERS = frozenset({"yum", "dnf", "zypper"})


def _repo_subject(repo: PackageRepo) -> str:
    suite = f" {repo.suite}" if repo.suite else ""
    return f"{repo.manager} {repo.uri}{suite}"


def _enabled(guest: Guest) -> tuple[PackageRepo, ...] | None:
    if guest.repos is None:
        return None
    return tuple(r for r in guest.repos if r.enabled)


def _unread_repos(guest: Guest, managers: str = "") -> tuple[str, ...]:
    """The package source inputs that could not be read: all, or those of APT ("apt") or of the RPM
    managers ("rpm": any but APT's and apk's, as dnf's reposdir may be anywhere)."""
    unread = guest_unread(guest, "repos")
    if managers == "apt":
        return tuple(u for u in unread if u.startswith("/etc/apt/"))
    if managers == "rpm":
        return tuple(u for u in unread if not u.startswith(("/etc/apt/", "/etc/apk/")))
    return unread


def _unread_sources(guest: Guest, subject: str, judged: int, managers: str = "") -> Iterator[Result]:
    """One UNKNOWN when some package source files could not be read: they may hold more sources."""
    unread = _unread_repos(guest, managers)
    if unread:
        yield not_read(unread, subject, f"{judged} enabled source(s) were judged")


def _plain_transport(repo: PackageRepo) -> bool:
    scheme = repo.uri.split(":", 1)[0].lower()
    return scheme.rsplit("+", 1)[-1] in ("http", "ftp")  # also mirror+http, tor+http


def _verifies_packages(repo: PackageRepo) -> bool | None:
    """Whether the package manager checks signatures for this source (None: cannot tell)."""
    if repo.manager == _APT:
        # apt checks the signed Release file unless trusted=yes or an allow-insecure switch
        return not repo.trusted and repo.signed is not False
    if repo.manager in _RPM_MANAGERS:
        return repo.gpgcheck
    if repo.manager == "apk":
        return True  # apk refuses unsigned indexes unless run with --allow-untrusted
    return repo.signed


# --- signatures -------------------------------------------------------------------------------


@check("VMS-GST-070", title="APT sources keep signature verification on",
       severity=Severity.CRITICAL, tags=(Tag.PATCHING, "apt", "supply-chain"),
       references=("https://manpages.debian.org/bookworm/apt/sources.list.5.en.html",
                   "https://wiki.debian.org/DebianRepository/UseThirdParty"))
def apt_sources_verified(guest: Guest) -> Iterator[Result]:
    """`[trusted=yes]` (deb822 `Trusted: yes`) tells APT to install packages from a source whose
    Release file is unsigned or signed by an unknown key. Anyone who can answer for that source — a
    mirror, a proxy, anyone on the path of a plain-HTTP URL — can then run code as root at the next
    upgrade.

    Remediation: Remove `trusted=yes`; fetch the vendor's key into /etc/apt/keyrings/ and name it
    with `signed-by=` on that source only.
    """
    repos = _enabled(guest)
    if repos is None:
        yield unknown("apt sources", "the package sources could not be read")
        return
    apt = [r for r in repos if r.manager == _APT]
    yield from _unread_sources(guest, "apt sources", len(apt), "apt")
    unread = _unread_repos(guest, "apt")
    for repo in apt:
        where = ev(repo.origin, "trusted", "yes" if repo.trusted else "no")
        subject = _repo_subject(repo)
        if not repo.trusted and repo.signed is False:
            yield fail(subject, "unsigned repository data is accepted (allow-insecure or an APT "
                       "Allow*Insecure* switch)", where, severity=Severity.HIGH)
        elif not repo.trusted:  # an unread apt.conf.d file could hold an Allow*Insecure* switch
            yield ok_unless(unread, subject, "signatures are verified (no trusted=yes)", where)
        elif _plain_transport(repo):
            yield fail(subject, f"trusted=yes over {repo.uri.split(':', 1)[0]}: anyone on the network "
                       "path can substitute packages", where, severity=Severity.CRITICAL)
        elif repo.transport_encrypted and not repo.uri.startswith("https://"):
            yield fail(subject, "trusted=yes on a local source (file:/cdrom:): its contents are "
                       "installed unverified", where, severity=Severity.MEDIUM)
        else:
            yield fail(subject, "trusted=yes: packages from this source are installed without a "
                       "signature check", where, severity=Severity.HIGH)


@check("VMS-GST-071", title="Package signatures are verified for yum/dnf repositories (gpgcheck)",
       severity=Severity.HIGH, tags=(Tag.PATCHING, "dnf", "yum", "supply-chain"),
       references=("https://dnf.readthedocs.io/en/latest/conf_ref.html",))
def rpm_gpgcheck(guest: Guest) -> Iterator[Result]:
    """With `gpgcheck=0` dnf/yum install RPMs whose signatures are not checked: a compromised
    mirror or, for `http://` URLs, anyone on the path can run code as root at the next update. dnf's
    own default when nothing sets `gpgcheck` is off; distributions rely on `[main] gpgcheck=1`.

    Remediation: Set `gpgcheck=1` in `[main]` of /etc/dnf/dnf.conf (or /etc/yum.conf) and remove
    `gpgcheck=0` from every repository; give each repository its `gpgkey=`.
    """
    repos = _enabled(guest)
    if repos is None:
        yield unknown("rpm repositories", "the package sources could not be read")
        return
    rpm = [r for r in repos if r.manager in _RPM_MANAGERS]
    yield from _unread_sources(guest, "rpm repositories", len(rpm), "rpm")
    for repo in repos:
        if repo.manager not in _RPM_MANAGERS:
            continue
        subject = _repo_subject(repo)
        where = ev(repo.origin, "gpgcheck", None if repo.gpgcheck is None else int(repo.gpgcheck))
        if repo.gpgcheck is None:
            yield unknown(subject, "the effective gpgcheck value could not be determined", where)
        elif repo.gpgcheck:
            yield ok(subject, "gpgcheck=1: package signatures are verified", where)
        elif _plain_transport(repo):
            yield fail(subject, "gpgcheck=0 on a plain-HTTP repository: packages can be replaced in "
                       "transit", where, severity=Severity.CRITICAL)
        else:
            yield fail(subject, "gpgcheck=0: package signatures are not verified", where)


@check("VMS-GST-072", title="Repository metadata signatures are verified for yum/dnf (repo_gpgcheck)",
       severity=Severity.LOW, tags=(Tag.PATCHING, "dnf", "yum", "supply-chain"),
       references=("https://dnf.readthedocs.io/en/latest/conf_ref.html",))
def rpm_repo_gpgcheck(guest: Guest) -> Iterator[Result]:
    """`repo_gpgcheck=1` makes dnf verify the signature of the repository metadata, so a mirror
    cannot hold back security updates or offer stale package sets. Not every repository signs its
    metadata; where it does, turning it on costs nothing.

    Remediation: Set `repo_gpgcheck=1` for repositories that sign `repomd.xml`.
    """
    repos = _enabled(guest)
    if repos is None:
        yield unknown("rpm repositories", "the package sources could not be read")
        return
    rpm = [r for r in repos if r.manager in _RPM_MANAGERS]
    yield from _unread_sources(guest, "rpm repositories", len(rpm), "rpm")
    for repo in repos:
        if repo.manager not in _RPM_MANAGERS:
            continue
        subject = _repo_subject(repo)
        value = None if repo.repo_gpgcheck is None else int(repo.repo_gpgcheck)
        where = ev(repo.origin, "repo_gpgcheck", value)
        if repo.repo_gpgcheck is None:
            yield unknown(subject, "the effective repo_gpgcheck value could not be determined", where)
        elif repo.repo_gpgcheck:
            yield ok(subject, "repo_gpgcheck=1: repository metadata signatures are verified", where)
        else:
            yield fail(subject, "repo_gpgcheck=0: repository metadata is not signature-checked", where)


@check("VMS-GST-073", title="Repositories on plain HTTP are signature-verified",
       severity=Severity.HIGH, tags=(Tag.PATCHING, "supply-chain", "transport"),
       references=("https://wiki.debian.org/SecureApt",))
def plain_http_verified(guest: Guest) -> Iterator[Result]:
    """Plain HTTP is fine for package sources only because the packages are signed: the signature,
    not the transport, proves where they came from. A plain-HTTP source whose signatures are not
    checked lets anyone on the network path install code as root.

    Remediation: Turn signature verification back on for the source (remove `trusted=yes`, set
    `gpgcheck=1`), and prefer `https://` mirrors.
    """
    repos = _enabled(guest)
    if repos is None:
        yield unknown("package sources", "the package sources could not be read")
        return
    yield from _unread_sources(guest, "plain-HTTP sources", len([r for r in repos if _plain_transport(r)]))
    unread = guest_unread(guest, "repos")
    for repo in repos:
        if not _plain_transport(repo):
            continue
        subject = _repo_subject(repo)
        verified = _verifies_packages(repo)
        where = ev(repo.origin, "uri", repo.uri)
        if verified is None:
            yield unknown(subject, "plain-HTTP source; whether its signatures are checked could not be "
                          "determined", where)
        elif verified:  # an unread apt.conf.d file could hold an Allow*Insecure* switch
            yield ok_unless(unread, subject, "plain-HTTP source, but its packages are signature-verified",
                            where)
        else:
            yield fail(subject, "plain-HTTP source without signature verification", where,
                       severity=Severity.CRITICAL)


# Hosts of the distributions' own mirrors and CDNs; anything else is a third-party source.
_DISTRO_HOSTS = (
    "debian.org", "ubuntu.com", "canonical.com", "launchpad.net", "redhat.com", "centos.org",
    "fedoraproject.org", "almalinux.org", "rockylinux.org", "alpinelinux.org", "opensuse.org",
    "suse.com", "oracle.com",
)


def _third_party(repo: PackageRepo) -> bool | None:
    if repo.uri.startswith(("file:", "cdrom:")):
        return False
    host = urlsplit(repo.uri).hostname
    if not host:
        return None
    host = host.lower()
    return not any(host == d or host.endswith("." + d) for d in _DISTRO_HOSTS)


@check("VMS-GST-074", title="Only the distribution's own package repositories are enabled",
       severity=Severity.INFO, tags=(Tag.PATCHING, "supply-chain", "inventory"),
       references=("https://wiki.debian.org/DontBreakDebian",))
def third_party_repos(guest: Guest) -> Iterator[Result]:
    """Every enabled repository is trusted to run code as root at each update. Third-party
    repositories (vendors, PPAs, local mirrors) widen that trust; list them so that each one is a
    decision. A local mirror of the distribution shows here too.

    Remediation: Remove repositories that are no longer needed; pin (APT preferences, dnf
    `includepkgs=`) the ones that stay to the packages they are for.
    """
    repos = _enabled(guest)
    if repos is None:
        yield unknown("package sources", "the package sources could not be read")
        return
    foreign = []
    for repo in repos:
        third = _third_party(repo)
        if third:
            foreign.append(repo)
            yield fail(_repo_subject(repo), f"third-party repository enabled: {repo.uri}",
                       ev(repo.origin, "uri", repo.uri))
    if repos and not foreign:
        yield ok_unless(guest_unread(guest, "repos"), "package sources",
                        f"all {len(repos)} enabled repositories are distribution mirrors",
                        *(ev(r.origin, "uri", r.uri) for r in repos[:5]))


def _security_suites(os: OsRelease) -> tuple[str, ...] | None:
    codename = os.version_codename
    if not codename:
        return None
    return (f"{codename}-security", f"{codename}/updates")  # the latter: Debian ≤ 10


@check("VMS-GST-075", title="A security update repository is configured",
       severity=Severity.HIGH, tags=(Tag.PATCHING, "apt"),
       references=("https://www.debian.org/security/",
                   "https://ubuntu.com/security/notices"))
def security_repo(guest: Guest) -> Iterator[Result]:
    """Debian and Ubuntu publish security fixes in a separate suite (`bookworm-security`,
    `noble-security`). Without it the system only sees fixes that reach a point release, weeks or
    months late.

    Remediation: Add the security suite, e.g. `deb https://security.debian.org/debian-security
    bookworm-security main` (Ubuntu: `<codename>-security` on security.ubuntu.com).
    """
    if guest.os is None or guest.os.id is None:
        yield unknown("security repository", "the OS release could not be read")
        return
    if guest.os.id not in ("debian", "ubuntu"):
        return
    repos = _enabled(guest)
    if repos is None:
        yield unknown("security repository", "the package sources could not be read")
        return
    suites = _security_suites(guest.os)
    if suites is None:
        yield unknown("security repository", f"{guest.os.id} without VERSION_CODENAME in "
                      f"{guest.os.origin}: the security suite's name is unknown")
        return
    apt = [r for r in repos if r.manager == _APT]
    wrong: list[PackageRepo] = []
    for repo in apt:
        if repo.suite in suites:
            # Debian serves the security suite from its own archive (…/debian-security): the same suite
            # under …/debian has no Release file (apt-get update: 404), so no fix ever arrives from it
            if guest.os.id == "debian" and "debian-security" not in repo.uri and "security" not in repo.uri:
                wrong.append(repo)
                continue
            yield ok("security repository", f"{repo.suite} is configured", ev(repo.origin, "suite",
                                                                                repo.suite))
            return
    if wrong:
        repo = wrong[0]
        yield fail("security repository", f"{repo.suite} is configured from {repo.uri}, which is not a "
                   "Debian security archive (…/debian-security): apt finds no Release file there",
                   ev(repo.origin, "uri", repo.uri))
        return
    where = ev(guest.os.origin, "VERSION_CODENAME", guest.os.version_codename)
    unread = _unread_repos(guest, "apt")
    if unread:  # the suite may be in a source that was not read
        yield not_read(unread, "security repository", f"no {suites[0]} suite among {len(apt)} enabled "
                       "APT sources", where)
        return
    yield fail("security repository", f"no {suites[0]} suite among {len(apt)} enabled APT sources",
               where, *(ev(r.origin, "suite", r.suite) for r in apt[:5]))


@check("VMS-GST-076", title="Security updates install automatically",
       severity=Severity.MEDIUM, tags=(Tag.PATCHING, "unattended-upgrades", "dnf-automatic"),
       references=("https://wiki.debian.org/UnattendedUpgrades",
                   "https://dnf.readthedocs.io/en/latest/automatic.html"))
def automatic_updates(guest: Guest) -> Iterator[Result]:
    """When installing security fixes waits for a person, the exposure window is as long as that
    person's backlog. unattended-upgrades (Debian/Ubuntu) and dnf-automatic (RHEL family) apply
    them daily — unattended-upgrades only from the archives its `Origins-Pattern` or
    `Allowed-Origins` allow, so one that runs without the security archive among them, or stops on
    a pattern it cannot read, installs no security fix; nor does any apt program run while apt
    refuses its configuration (a syntax error or a missing `#include` in apt.conf.d). Installed
    packages its `Package-Blacklist` matches, a strict `Package-Whitelist` does not, or that are
    on hold (`apt-mark hold`) are never upgraded; an entry that is not a regular expression stops
    it, and `Update-Days` that name no day keep it from running. Nor does apt take an update that its
    pins (/etc/apt/preferences.d) rank below the installed version — the security archive pinned
    below 100 or to `never`, a package pinned to its installed version — and it refuses to start on
    a preferences record it cannot read or an `APT::Default-Release` no archive has. An
    `APT::Default-Release` or a pin that ranks another archive above the security one holds back
    every installed version still in that archive, or older than a version there (read from apt's
    package lists; without them, unknown).
    dnf-automatic never upgrades what
    dnf's `excludepkgs` (or a main `includepkgs` that leaves it out) hide, nor what the versionlock
    plugin locks; that plugin without its list stops it.

    Remediation: Debian/Ubuntu: install unattended-upgrades and set
    `APT::Periodic::Unattended-Upgrade "1";` (`dpkg-reconfigure -plow unattended-upgrades`), and keep
    the security archive among its origins (Debian:
    `"origin=Debian,codename=${distro_codename}-security,label=Debian-Security";`, Ubuntu:
    `"${distro_id}:${distro_codename}-security";`); pin nothing below the security archive (or give
    it the priority of the archive `APT::Default-Release` names). RHEL
    family: install dnf-automatic, set `apply_updates = yes` (`upgrade_type = security`) and enable
    `dnf-automatic.timer`.
    """
    auto = guest.auto_updates
    if auto is None:
        yield unknown("automatic updates", "the automatic-update configuration could not be read")
        return
    where = ev(auto.origin or "(none)", auto.mechanism or "", auto.enabled)
    if auto.mechanism is None and auto.enabled is None:
        yield unknown("automatic updates", "no automatic-update configuration was found, and the "
                      "installed packages are unknown", where)
    elif auto.mechanism is None:
        yield fail("automatic updates", "no automatic-update mechanism (unattended-upgrades, "
                   "dnf-automatic, yum-cron) is installed", where)
    elif auto.apt_refused:  # decided whatever else is unread: no apt program runs
        yield fail("automatic updates", f"{auto.mechanism} is installed, but apt refuses its configuration "
                   f"({auto.apt_refused}): apt.systemd.daily reads every APT::Periodic interval as 0 and "
                   "installs nothing", where, ev(auto.apt_refused, "apt refuses its configuration"))
    elif auto.enabled is None:
        yield unknown("automatic updates", f"{auto.mechanism} is installed; whether it is enabled "
                      "could not be determined", where)
    elif not auto.enabled and guest_unread(guest, "auto_updates"):  # the unread file may enable it
        yield not_read(guest_unread(guest, "auto_updates"), "automatic updates",
                       f"{auto.mechanism} is installed but not enabled", where)
    elif not auto.enabled:
        yield fail("automatic updates", f"{auto.mechanism} is installed but not enabled", where)
    elif auto.mechanism == "unattended-upgrades":
        yield from _unattended_upgrades(guest, auto, where)
    else:
        scope = " (security updates only)" if auto.security_only else ""
        filters = _filters_evidence(auto)
        if auto.filters_error:
            yield fail("automatic updates", f"{auto.mechanism} is enabled, but {auto.filters_error}: it "
                       "stops before it upgrades anything", where, filters)
        elif auto.held_back_count:
            yield fail("automatic updates", f"{auto.mechanism} applies updates automatically{scope}, but "
                       f"{_never_upgraded(auto)}", where, filters)
        elif auto.filters_unknown:
            yield unknown("automatic updates", f"{auto.mechanism} applies updates automatically{scope}; "
                          f"{auto.filters_unknown}", where, filters)
        else:
            yield ok_unless(guest_unread(guest, "auto_updates"), "automatic updates",
                            f"{auto.mechanism} applies updates automatically{scope}", where)


def _filters_evidence(auto: AutoUpdates) -> Evidence:
    return ev(auto.filters_from or "(no file sets them)", "package filters",
              f"{auto.held_back_count} installed packages held back" if auto.held_back_count else None)


def _never_upgraded(auto: AutoUpdates) -> str:
    """"never upgrades 2 installed packages (a, b): WHY; their security updates wait for a person"."""
    count = auto.held_back_count
    many, their = ("s", "their") if count > 1 else ("", "its")
    return (f"never upgrades {count} installed package{many} ({other_names(auto.held_back, count)}): "
            f"{auto.held_back_why}; {their} security updates wait for a person")


def _unattended_upgrades(guest: Guest, auto: AutoUpdates, where: Evidence) -> Iterator[Result]:
    """An enabled unattended-upgrades: the archives it may install from, the packages it leaves alone,
    the days it runs — a definite FAIL before any UNKNOWN."""
    # It upgrades only from the archives its origins allow: enabled without the security archive
    # among them, it runs every day and installs no security fix.
    covered, why = security_coverage(auto, guest.os, guest.repos)
    origins = ev(auto.origins_from or "(no file sets them)", "Unattended-Upgrade origins",
                 "; ".join([*auto.allowed_origins, *auto.origins_pattern][:8]) or "(none)")
    filters = _filters_evidence(auto)
    days = [DAY_NAMES[d] for d in auto.run_weekdays]
    if covered is False:
        yield fail("automatic updates", f"unattended-upgrades runs, but {why}: security updates wait for "
                   "a person", where, origins)
    elif auto.filters_error:
        yield fail("automatic updates", f"unattended-upgrades runs, but {auto.filters_error}: the "
                   "program stops before it upgrades anything", where, filters)
    elif not days:
        yield fail("automatic updates", "unattended-upgrades is enabled, but its Update-Days ("
                   f"{', '.join(auto.update_days)}) name no day it recognises (Mon … Sun, Monday … Sunday, "
                   "0 … 6): it never runs", where, filters)
    elif auto.held_back_count:
        yield fail("automatic updates", f"unattended-upgrades runs, but {_never_upgraded(auto)}", where,
                   filters)
    elif covered is None:
        yield unknown("automatic updates", f"unattended-upgrades runs; {why}", where, origins)
    elif auto.filters_unknown:
        yield unknown("automatic updates", "unattended-upgrades runs; which installed packages it "
                      f"holds back is unknown: {auto.filters_unknown}", where,
                      filters)
    else:
        when = "" if len(days) == 7 else f" on {', '.join(days)} only (Update-Days)"
        yield ok_unless(guest_unread(guest, "auto_updates"), "automatic updates",
                        f"unattended-upgrades applies updates automatically{when}: {why}", where, origins)


# --- end of life -------------------------------------------------------------------------------


class SupportWindow(Struct, frozen=True, kw_only=True):
    """One release's support dates (None: none published)."""

    distro: str
    version: str
    codename: str
    released: dt.date | None
    eol: dt.date | None  # end of the vendor's standard security support
    extended: tuple[tuple[str, dt.date], ...] = ()  # ("Debian LTS", date), ("Ubuntu Pro ESM", …)
    source: str = ""


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _rows(name: str) -> list[dict[str, str]]:
    text = (DATA_DIR / "eol" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def support_table() -> Mapping[tuple[str, str], SupportWindow]:
    """The shipped end-of-life table, keyed by (os-release ID, version or codename)."""
    table: dict[tuple[str, str], SupportWindow] = {}
    for row in _rows("debian.csv"):
        ext = tuple((label, d) for label, key in (("Debian LTS", "eol-lts"), ("Debian ELTS (paid)",
                                                                              "eol-elts"))
                    if (d := _date(row.get(key))) is not None)
        win = SupportWindow(distro="debian", version=row["version"], codename=row["series"],
                            released=_date(row["release"]), eol=_date(row["eol"]), extended=ext,
                            source="distro-info-data debian.csv")
        table[("debian", row["series"])] = win
        if row["version"]:
            table[("debian", row["version"])] = win
    for row in _rows("ubuntu.csv"):
        std = max((d for d in (_date(row["eol"]), _date(row.get("eol-server"))) if d), default=None)
        ext = tuple((label, d) for label, key in (("Ubuntu Pro ESM", "eol-esm"),
                                                  ("Ubuntu Pro Legacy", "eol-legacy"))
                    if (d := _date(row.get(key))) is not None)
        version = row["version"].removesuffix(" LTS")
        win = SupportWindow(distro="ubuntu", version=version, codename=row["series"],
                            released=_date(row["release"]), eol=std, extended=ext,
                            source="distro-info-data ubuntu.csv")
        table[("ubuntu", row["series"])] = win
        table[("ubuntu", version)] = win
    for row in _rows("other.csv"):
        label = "RHEL Extended Life Cycle Support (paid)" if row["id"] == "rhel" else "CentOS Stream"
        ext = tuple((label, d) for d in (_date(row["eol-extended"]),) if d is not None)
        table[(row["id"], row["version"])] = SupportWindow(
            distro=row["id"], version=row["version"], codename="", released=_date(row["release"]),
            eol=_date(row["eol"]), extended=ext, source=row["source"])
    return table


def find_release(os: OsRelease) -> SupportWindow | None:
    """The support window for an os-release, or None when vmsec has no data for it."""
    table = support_table()
    distro = (os.id or "").lower()
    candidates: list[str] = []
    if os.version_id:
        v = os.version_id.strip()
        if distro in ("debian", "rhel", "centos", "almalinux", "rocky"):
            candidates.append(v.split(".")[0])
        elif distro == "alpine":
            candidates.append(".".join(v.split(".")[:2]))
        candidates.append(v)
    if os.version_codename:
        candidates.append(os.version_codename.lower())
    for key in candidates:
        win = table.get((distro, key))
        if win is not None:
            return win
    return None


def _today(env: Environment) -> dt.date | None:
    raw = env.params.get("today")
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            return None
    return None


@check("VMS-GST-077", title="The OS release still receives security updates",
       severity=Severity.HIGH, tags=(Tag.PATCHING, "end-of-life"),
       references=("https://wiki.debian.org/DebianReleases",
                   "https://ubuntu.com/about/release-cycle",
                   "https://access.redhat.com/support/policy/updates/errata",
                   "https://alpinelinux.org/releases/"))
def release_supported(guest: Guest, env: Environment) -> Iterator[Result]:
    """After a release's end of life its vendor publishes no more security fixes: every later
    vulnerability stays open, and vulnerability scanners stop reporting them because the
    advisories no longer name the release. Extended programmes (Debian LTS, Ubuntu Pro ESM, RHEL
    ELS) keep a subset patched, some for a fee.

    Remediation: Upgrade to a supported release; meanwhile enrol in the extended-support
    programme (Debian LTS is automatic through `<codename>-security`; Ubuntu needs `pro attach`).
    """
    os = guest.os
    if os is None or os.id is None:
        yield unknown("os release", "the OS release (/etc/os-release) could not be read")
        return
    today = _today(env)
    if today is None:
        yield unknown("os release", "no scan date (parameter 'today') to compare end-of-life dates with")
        return
    name = os.pretty_name or f"{os.id} {os.version_id or os.version_codename or ''}".strip()
    win = find_release(os)
    where = ev(os.origin, "VERSION_ID", os.version_id or os.version_codename)
    if win is None:
        yield unknown("os release", f"vmsec has no support dates for {name}", where)
        return
    data = ev(f"vmsec/data/eol ({win.source})", f"{win.distro} {win.version or win.codename}",
              f"eol {win.eol}" if win.eol else "no eol date")
    if win.eol is None:
        if win.released is None or win.released > today:
            yield fail("os release", f"{name} is a development release (testing/unstable): it has no "
                       "security support commitment", where, data, severity=Severity.LOW)
        else:
            yield ok("os release", f"{name} is supported; no end-of-life date is published", where, data)
        return
    if today <= win.eol:
        days = (win.eol - today).days
        yield ok("os release", f"{name} is supported until {win.eol} ({days} days left)", where, data)
        return
    remaining = [(label, d) for label, d in win.extended if d >= today]
    if not remaining:
        yield fail("os release", f"{name} reached end of life on {win.eol}: no security updates "
                   "are published any more", where, data)
        return
    label, until = remaining[0]
    if label == "Debian LTS":
        sev = Severity.INFO  # free, community-run, same archive: still patched
    elif "ESM" in label or "Stream" in label:
        sev = Severity.LOW
    else:
        sev = Severity.MEDIUM  # paid programmes: patched only with a contract
    yield fail("os release", f"{name}: standard security support ended on {win.eol}; only "
               f"{label} remains, until {until}", where, data, severity=sev)
