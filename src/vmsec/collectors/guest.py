"""The guest collector: one :class:`Guest` from one Linux root, whatever transport reads it.

``collect_guest`` calls, for every :class:`Guest` field, the parser that reads it through the
:class:`~vmsec.collectors.reader.Reader` it is given — a root directory (the ``rootfs`` collector, the
host's own ``/``), a disk image. Each parser either returns its fact or raises
:class:`~vmsec.errors.ReadError`; a raise makes that field ``None`` (unknown) and adds a failed
:class:`CollectionRecord` naming the input, the reason and the error's kind, and collection goes on
with the next field. Problems that do not make a whole fact unknown (an include loop in PAM, one
unreadable file in sudoers.d) are handed back in one :class:`~vmsec.errors.Problems` list per source
and recorded with their kind, while the fact keeps what could be read; at most
:data:`~vmsec.errors.MAX_PROBLEMS` per source, then one summary record. An input that exists but
could not be read also stays on the guest: ``Sudoers.unread`` and ``SshdConfig.unread`` from their
parsers, ``Guest.unread`` for the system-configuration facts (services, repositories …) and for the
authorized_keys files a bound left unexamined, so that the checks say UNKNOWN rather than judge an
incomplete fact as if it were whole.

The reader is wrapped in a :class:`~vmsec.collectors.reader.CachedReader`, so every file of the
guest is read once per collection however many paths or parsers lead to it, and all reads of one
guest share one budget: the work is bounded by the guest's size, never multiplied by it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from vmsec.collectors.reader import CachedReader, Reader
from vmsec.errors import ErrorKind, Problems, ReadError
from vmsec.facts import (
    CollectionRecord,
    CryptEntry,
    FileStat,
    Guest,
    InstalledPackage,
    OsRelease,
    SshdConfig,
    Sudoers,
)
from vmsec.parsers.apk_db import read_apk_db
from vmsec.parsers.dpkg_status import parse_dpkg_status
from vmsec.parsers.os_release import read_os_release
from vmsec.parsers.rpm_db import read_rpm_db
from vmsec.reading import complete_acls

if TYPE_CHECKING:
    from vmsec.parsers.system._common import Inputs

T = TypeVar("T")

DPKG_STATUS = "/var/lib/dpkg/status"
MAX_DPKG_STATUS = 64 * 1024 * 1024
SSHD_PACKAGES = ("openssh-server", "openssh-server-pam", "openssh-sshd")
SSHD_BINARIES = ("/usr/sbin/sshd", "/usr/bin/sshd", "/usr/local/sbin/sshd")


class _Collection:
    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.records: list[CollectionRecord] = []

    def fail(self, source: str, what: str, reason: str, kind: ErrorKind | None = None) -> None:
        self.records.append(CollectionRecord(source=source, what=what, ok=False, reason=reason, kind=kind))

    def unknown(self, source: str, what: str, reason: str) -> None:
        """A fact that stays unknown although nothing failed to read (the file is simply not there):
        recorded, and its checks say UNKNOWN, but the scan is not incomplete."""
        self.records.append(CollectionRecord(source=source, what=what, ok=True, reason=reason))

    def problems(self, what: str, problems: Problems) -> None:
        """The in-file problems of one source, each with its kind (bounded, plus one summary)."""
        self.records.extend(problems.records(what))

    def step(self, what: str, source: str, read: Callable[[Problems], T]) -> T | None:
        """Run one parser with a fresh :class:`Problems` list: its problems become records; a
        ReadError it raises (or a parser bug on hostile input) → None and a failed record."""
        problems = Problems()
        try:
            return read(problems)
        except ReadError as exc:
            if exc.absent:
                self.records.append(CollectionRecord(source=exc.source, what=what, ok=True,
                                                     reason=f"absent: {exc.reason}", kind=exc.kind))
            else:
                self.records.append(exc.record(what))
        except Exception as exc:  # an unexpected parser failure must not end the whole guest
            self.fail(source, what, f"parser failed: {type(exc).__name__}: {exc}", ErrorKind.INVALID)
        finally:
            self.problems(what, problems)
        return None

    def system(self, field: str, what: str, source: str, read: Callable[[Inputs], T],
               unread: dict[str, tuple[str, ...]]) -> T | None:
        """:meth:`step` for a system-configuration parser: also keeps, in ``unread[field]``, each input
        that exists but could not be read (the fact holds only what the others gave)."""
        from vmsec.parsers.system._common import Inputs

        def run(problems: Problems) -> T:
            inputs = Inputs()
            try:
                value = read(inputs)
            finally:
                problems.extend(inputs)
            if inputs.unread:
                unread[field] = inputs.unread
            return value
        return self.step(what, source, run)


# --- packages -----------------------------------------------------------------------------------


def _read_dpkg(reader: Reader, *, problems: Problems | None = None) -> tuple[InstalledPackage, ...] | None:
    try:
        text = reader.read_text(DPKG_STATUS, MAX_DPKG_STATUS)
    except ReadError as exc:
        if exc.absent:
            return None
        raise
    return parse_dpkg_status(text, DPKG_STATUS)


def _read_apk(reader: Reader, *, problems: Problems | None = None) -> tuple[InstalledPackage, ...] | None:
    return read_apk_db(reader)


def read_packages(reader: Reader, *, problems: Problems | None = None) -> tuple[InstalledPackage, ...]:
    """Installed packages from every package database in the root (dpkg, rpm, apk).

    Raises :class:`ReadError` when a database exists but cannot be read (the package list would be
    incomplete) or when the root has no package database at all (the list is unknown, not empty).
    """
    found: list[InstalledPackage] = []
    any_db = False
    for read in (_read_dpkg, read_rpm_db, _read_apk):
        packages = read(reader, problems=problems)
        if packages is not None:
            any_db = True
            found.extend(packages)
    if not any_db:
        raise ReadError("/var/lib/dpkg/status", "no dpkg, rpm or apk package database in this root",
                        ErrorKind.ABSENT)
    return tuple(found)


def upstream_version(version: str, manager: str) -> str:
    """The upstream part of a package version: ``1:9.2p1-2+deb12u3`` → ``9.2p1``,
    ``8.7p1-38.el9`` → ``8.7p1``, ``9.7_p1-r4`` (apk) → ``9.7p1``."""
    version = re.sub(r"^\d+:", "", version)
    if manager == "apk":
        version = re.sub(r"-r\d+$", "", version).replace("_p", "p")
    elif "-" in version:
        version = version.rsplit("-", 1)[0]
    return version


def _sshd_package(packages: Sequence[InstalledPackage] | None) -> InstalledPackage | None:
    for name in SSHD_PACKAGES:
        for package in packages or ():
            if package.name == name:
                return package
    return None


def _sshd_installed(reader: Reader, packages: Sequence[InstalledPackage] | None) -> bool | None:
    if _sshd_package(packages) is not None:
        return True
    if any(reader.stat(b).exists for b in SSHD_BINARIES):
        return True
    if packages is not None or reader.stat("/etc/ssh/sshd_config").exists is False:
        return False  # no package, no binary, and (with the packages unknown) no configuration either
    return None


# --- credential files ------------------------------------------------------------------------------

CREDENTIAL_FILES = ("/etc/passwd", "/etc/passwd-", "/etc/group", "/etc/group-", "/etc/shadow", "/etc/shadow-",
                    "/etc/gshadow", "/etc/gshadow-")
MAX_STAT_PATHS = 50_000


def authorized_key_ancestors(path: str, stop: str) -> list[str]:
    """The directories sshd's StrictModes checks above ``path``: up to and including ``stop`` (the
    home directory) when the path is under it, else up to ``/``."""
    out: list[str] = []
    current = path.rstrip("/")
    while "/" in current:
        current = current.rsplit("/", 1)[0] or "/"
        out.append(current)
        if current in (stop, "/"):
            break
    return out


def _authorized_key_files(sshd: SshdConfig | None) -> tuple[str, ...]:
    """The AuthorizedKeysFile entries some connection uses: the global ones (or the default) and
    those of every Match block — sshd reads a block's files for the connections it matches, so a
    key there logs in as much as one in the global files."""
    from vmsec.parsers.authorized_keys import DEFAULT_FILES
    from vmsec.parsers.sshd_effective import lookup

    files = list((sshd.settings.get("authorizedkeysfile") if sshd is not None else None) or DEFAULT_FILES)
    for block in sshd.matches if sshd is not None else ():
        files += lookup(block.settings, "authorizedkeysfile") or ()
    return tuple(dict.fromkeys(files))


def credential_file_stats(reader: Reader, *, sshd: SshdConfig | None, sudoers: Sudoers | None,
                          key_paths: Sequence[tuple[str, str, str]],
                          crypttab: Sequence[CryptEntry] | None = None) -> dict[str, FileStat]:
    """Owner and mode of the files that hold or guard credentials (see ``Guest.file_stats``);
    ``key_paths`` are the authorized_keys paths (``key_file_paths``, built once per guest)."""
    paths: list[str] = list(CREDENTIAL_FILES)
    paths += ["/etc/ssh", *(sshd.config_paths() if sshd is not None else ("/etc/ssh/sshd_config",))]
    host_keys = reader.glob("/etc/ssh/ssh_host_*_key", 1000)
    if sshd is not None:
        host_keys += [k for k in sshd.settings.get("hostkey", ()) if k.startswith("/")]
    paths += host_keys
    paths += ["/etc/sudoers", *(sudoers.files if sudoers is not None else ()),
              *(sudoers.dirs if sudoers is not None else ())]
    paths += ["/etc/crypttab",
              *(e.key_path for e in crypttab or () if e.key_path)]
    for _user, home, path in key_paths:
        if len(paths) > MAX_STAT_PATHS:
            raise ReadError("authorized_keys", f"more than {MAX_STAT_PATHS} paths to examine",
                            ErrorKind.TOO_LARGE)
        if reader.stat(path).exists:
            paths += [path, *authorized_key_ancestors(path, home)]
    # Over SSH the ACLs come apart from the stats, for all these paths in one batch.
    return complete_acls(reader, {path: reader.stat(path) for path in dict.fromkeys(paths)})


# --- the guest ----------------------------------------------------------------------------------


def collect_guest(reader: Reader, *, name: str, origin: str, domain: str | None = None,
                  packages_only: bool = False) -> tuple[Guest, list[CollectionRecord]]:
    """Every :class:`Guest` fact of the root ``reader`` reads, and the record of what could not be read.

    ``packages_only``: only the OS release and the installed packages (a vulnerability-only scan, the
    checks selected need nothing else); every other fact stays ``None``, unknown, as it should.
    """
    reader = CachedReader(reader)
    c = _Collection(reader)
    started = time.monotonic()

    os_release: OsRelease | None = c.step("os-release", "/etc/os-release", lambda p: read_os_release(reader))
    packages = c.step("installed packages", DPKG_STATUS, lambda p: read_packages(reader, problems=p))
    if packages_only:
        c.records.append(CollectionRecord(source=origin, what="guest OS facts", ok=True,
                                          reason="OS release and installed packages only (the selected "
                                                 "checks need no other fact)",
                                          duration_s=round(time.monotonic() - started, 4)))
        return Guest(name=name, origin=origin, domain=domain, os=os_release, packages=packages), c.records
    # The parsers of everything else, imported when a scan needs them.
    from vmsec.parsers import accounts as accounts_parser
    from vmsec.parsers import system_config as sc
    from vmsec.parsers.authorized_keys import key_file_paths, read_authorized_keys
    from vmsec.parsers.cloud_init import read_cloud_init
    from vmsec.parsers.guest_agent import read_guest_agent
    from vmsec.parsers.lvm_metadata import read_lvm_backups
    from vmsec.parsers.pam import read_pam
    from vmsec.parsers.pam_module_conf import read_pam_module_configs
    from vmsec.parsers.sshd_config import read_sshd_config
    from vmsec.parsers.sudoers import read_sudoers

    passwd = c.step("user accounts", "/etc/passwd", lambda p: accounts_parser.read_passwd(reader))
    accounts = accounts_parser.resolve_shells(reader, passwd[0]) if passwd is not None else None
    shadow_file = c.step("password hashes", "/etc/shadow", lambda p: accounts_parser.read_shadow(reader))
    # unshadowed password fields of /etc/passwd join the shadow entries (their origin says where)
    shadow = None if shadow_file is None else shadow_file + (passwd[1] if passwd is not None else ())
    groups = c.step("groups", "/etc/group", lambda p: accounts_parser.read_group(reader))
    group_shadow = c.step("group administrators", "/etc/gshadow",
                          lambda p: accounts_parser.read_gshadow(reader))
    login_defs = c.step("login.defs", "/etc/login.defs", lambda p: accounts_parser.read_login_defs(reader))
    lvm = c.step("LVM volumes", "/etc/lvm/backup", lambda p: read_lvm_backups(reader, problems=p))

    pam = c.step("PAM configuration", "/etc/pam.d", lambda p: read_pam(reader, problems=p))
    pam_configs = c.step("PAM module configuration", "/etc/security",
                         lambda p: read_pam_module_configs(reader, pam, problems=p))
    sudoers = c.step("sudoers", "/etc/sudoers", lambda p: read_sudoers(reader, problems=p))

    sshd_installed = _sshd_installed(reader, packages)
    sshd = None
    if sshd_installed is not False:
        package = _sshd_package(packages)
        version = upstream_version(package.version, package.manager) if package else None
        distro = os_release.id if os_release else None
        sshd = c.step("sshd configuration", "/etc/ssh/sshd_config",
                      lambda p: read_sshd_config(reader, version=version, distro=distro, problems=p))

    key_files = _authorized_key_files(sshd)
    # accounts × AuthorizedKeysFile entries, built once (bounded) for the keys and the permissions;
    # what a bound leaves out is named on the guest, so the key checks cannot pass over it
    key_cuts = Problems()
    key_unread: list[str] = []
    key_source = (sshd.origins.get("authorizedkeysfile") if sshd is not None else None) or "sshd_config"
    key_paths = key_file_paths(accounts or (), key_files, source=key_source, problems=key_cuts,
                               unread=key_unread)
    c.problems("authorized keys", key_cuts)
    unread: dict[str, tuple[str, ...]] = {"authorized_keys": tuple(key_unread)} if key_unread else {}
    authorized_keys = None
    if accounts is not None:
        known_accounts = accounts
        authorized_keys = c.step("authorized keys", "authorized_keys",
                                 lambda p: read_authorized_keys(reader, known_accounts, key_files,
                                                                problems=p, paths=key_paths))
    else:
        c.unknown("/etc/passwd", "authorized keys", "account homes unknown, so are their authorized_keys")

    services = c.system("services", "services", "/etc/systemd/system",
                        lambda p: sc.read_services(reader, errors=p), unread)
    repos = c.system("repos", "package repositories", "/etc/apt", lambda p: sc.read_repos(reader, errors=p),
                     unread)
    auto_updates = c.system("auto_updates", "automatic updates", "/etc/apt/apt.conf.d",
                            lambda p: sc.read_auto_updates(reader, packages, errors=p), unread)
    fstab = c.system("fstab", "fstab", "/etc/fstab", lambda p: sc.read_fstab(reader, errors=p), unread)
    crypttab = c.system("crypttab", "crypttab", "/etc/crypttab", lambda p: sc.read_crypttab(reader, errors=p),
                        unread)
    swap_units = c.system("swap_units", "systemd swap units", "/etc/systemd/system",
                          lambda p: sc.read_swap_units(reader, services, errors=p), unread) \
        if services is not None else None
    sysctl = c.system("sysctl", "sysctl settings", "/etc/sysctl.d",
                      lambda p: sc.read_sysctl(reader, errors=p), unread)
    audit = c.system("audit", "audit and logging", "/etc/audit",
                     lambda p: sc.read_audit(reader, services, errors=p), unread)
    firewall = c.system("firewall", "firewall", "/etc",
                        lambda p: sc.read_firewall(reader, services, errors=p), unread)

    file_stats = c.step("credential file permissions", "/etc",
                        lambda p: credential_file_stats(reader, sshd=sshd, sudoers=sudoers,
                                                        key_paths=key_paths, crypttab=crypttab))

    cloud_init = c.step("cloud-init", "/etc/cloud/cloud.cfg", lambda p: read_cloud_init(reader, problems=p))
    guest_agent = c.system("guest_agent", "qemu-guest-agent", "/etc/qemu/qemu-ga.conf",
                           lambda p: read_guest_agent(reader, packages, errors=p), unread)

    guest = Guest(
        name=name, origin=origin, domain=domain, os=os_release, packages=packages,
        accounts=accounts, groups=groups, group_shadow=group_shadow, lvm=lvm, shadow=shadow, pam=pam,
        pam_module_configs=pam_configs,
        login_defs=login_defs, sudoers=sudoers, file_stats=file_stats,
        sshd=sshd, sshd_installed=sshd_installed, authorized_keys=authorized_keys, services=services,
        repos=repos, auto_updates=auto_updates, fstab=fstab, swap_units=swap_units, crypttab=crypttab,
        sysctl=sysctl, audit=audit,
        firewall=firewall, cloud_init=cloud_init, guest_agent=guest_agent, unread=unread,
    )
    c.records.append(CollectionRecord(source=origin, what="guest OS facts", ok=True,
                                      duration_s=round(time.monotonic() - started, 4)))
    return guest, c.records


__all__ = ["collect_guest", "read_packages", "upstream_version"]
