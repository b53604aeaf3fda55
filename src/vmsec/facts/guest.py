"""Facts about a guest operating system (or the hypervisor host's own OS), read offline from its
root filesystem or disk image.

The same facts describe any Linux root — a guest disk, a copied root, or the host's "/" — so the OS
checks run unchanged on guests and on the hypervisor host. Unknown is ``None``; an empty tuple means
"read, and none". Each fact keeps where it came from (``origin``: path and line) for evidence.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from msgspec import Struct, field

from vmsec.facts.common import FileStat
from vmsec.facts.host import InstalledPackage
from vmsec.facts.runtime import RuntimeState
from vmsec.facts.vulnerability import VulnReport
from vmsec.parsers.sshd_pattern import match_pattern, match_pattern_list


class OsRelease(Struct, frozen=True, kw_only=True, gc=False):
    id: str | None  # debian, ubuntu, rhel, almalinux, rocky, alpine, …
    id_like: tuple[str, ...] = ()
    version_id: str | None = None
    version_codename: str | None = None
    name: str | None = None
    pretty_name: str | None = None
    origin: str = "/etc/os-release"


class Account(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    uid: int | None
    gid: int | None
    home: str | None = None
    shell: str | None = None
    gecos: str | None = None
    origin: str = "/etc/passwd"

    @property
    def can_login(self) -> bool | None:
        """False for the usual no-login shells; None when the shell is unknown."""
        if self.shell is None:
            return None
        return not self.shell.endswith(("/nologin", "/false", "/sync", "/halt", "/shutdown"))


class ShadowEntry(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    # yescrypt | gost-yescrypt | scrypt | sha512 | sha256 | bcrypt | md5 | des | unknown;
    # None when there is no hash (empty, locked or disabled: see the flags)
    hash_algorithm: str | None
    empty: bool  # the password field is empty: login without a password
    locked: bool  # "!" / "!!" prefix, or "*": no password login
    # How it is locked: "!" (passwd -l / usermod -L, which sshd refuses when UsePAM is off) or "*"
    # (no password at all, which sshd does not treat as locked); None when not locked.
    lock_mark: str | None = None
    last_change: int | None = None  # days since 1970-01-01
    max_days: int | None = None
    origin: str = "/etc/shadow"


class Group(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    gid: int | None
    members: tuple[str, ...] = ()
    origin: str = "/etc/group"


class GroupShadow(Struct, frozen=True, kw_only=True, gc=False):
    """A group's line in /etc/gshadow: who administers it (gpasswd lets them add any member, themselves
    included) and whether it has a password ``newgrp`` accepts from a non-member."""

    name: str
    admins: tuple[str, ...] = ()
    password: bool = False  # a crypt hash: whoever knows the password joins the group with newgrp
    origin: str = "/etc/gshadow"


class LogicalVolume(Struct, frozen=True, kw_only=True, gc=False):
    """An LVM logical volume as the guest's own metadata backup (/etc/lvm/backup) describes it."""

    vg: str
    name: str
    # The device hints of the physical volumes its extents lie on (None: one vmsec cannot name — a
    # RAID, thin or cache segment, or a physical volume without a hint).
    devices: tuple[str | None, ...] = ()
    origin: str = ""


class PamLine(Struct, frozen=True, kw_only=True, gc=False):
    type: str  # auth | account | password | session (leading '-' stripped)
    control: str  # required | requisite | sufficient | optional | include | substack | [value=action …]
    module: str  # pam_unix.so, or the included file for include/@include
    args: tuple[str, ...] = ()
    origin: str = ""  # path:line
    level: int = 0  # substack nesting (libpam's stack_level): 0 in the service file and what it includes


class PamStack(Struct, frozen=True, kw_only=True, gc=False):
    """One PAM service file (/etc/pam.d/sshd …) with its includes expanded in order (bounded)."""

    service: str
    path: str
    lines: tuple[PamLine, ...] = ()


class ModuleConfig(Struct, frozen=True, kw_only=True, gc=False):
    """A PAM module's own configuration (``/etc/security/pwquality.conf`` with its ``.d`` directory,
    ``/etc/security/faillock.conf``), merged in the order the module reads its files: the last value
    of a key wins. A flag written without a value has the value ``""``. Arguments on the module's
    PAM line override all of it (see :mod:`vmsec.checks.guest.pam`)."""

    path: str  # the main file
    present: bool  # whether any of its files exists (False: the module's compiled-in defaults apply)
    values: Mapping[str, str] = field(default_factory=dict)
    origins: Mapping[str, str] = field(default_factory=dict)  # key -> path:line
    files: tuple[str, ...] = ()  # the files read, in the order read


class SudoRule(Struct, frozen=True, kw_only=True, gc=False):
    users: tuple[str, ...]  # user names, %group, aliases, ALL
    hosts: tuple[str, ...]
    runas: tuple[str, ...]
    commands: tuple[str, ...]
    nopasswd: bool = False
    origin: str = ""  # path:line


class Sudoers(Struct, frozen=True, kw_only=True, gc=False):
    rules: tuple[SudoRule, ...] = ()
    # (scope, setting) per Defaults entry: scope "" for plain Defaults, ":user", "@host", ">runas", "!cmd"
    defaults: tuple[tuple[str, str], ...] = ()
    files: tuple[str, ...] = ()  # every file read, in order (main file, includes, includedir)
    dirs: tuple[str, ...] = ()  # every include directory expanded (#includedir / @includedir)
    # Included files and directories that exist but could not be read ("path: reason"): the policy
    # is more than these rules and Defaults, so what it does *not* grant is unknown.
    unread: tuple[str, ...] = ()


class SshdMatch(Struct, frozen=True, kw_only=True, gc=False):
    criteria: tuple[tuple[str, str], ...]  # (("user", "backup"), ("address", "10.0.0.0/8"))
    settings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    origin: str = ""


class SshdConfig(Struct, frozen=True, kw_only=True, gc=False):
    """The OpenSSH server's effective configuration, resolved as sshd does: Include expanded where
    it appears, the first value of a keyword wins, compiled-in defaults for the installed version
    (and distro patches) fill what the files omit. Keywords are lower-case.
    """

    version: str | None  # OpenSSH version ("9.2p1") when known from the package database
    settings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # global effective values
    origins: Mapping[str, str] = field(default_factory=dict)  # keyword -> "path:line" or "default"
    matches: tuple[SshdMatch, ...] = ()
    files: tuple[str, ...] = ()  # every file read, in order (main file, then the Include'd ones)
    # Included files that exist but could not be read ("path: reason"). Any of them could set a
    # keyword first or hold a Match block, so a value here (or a default) may not be sshd's.
    unread: tuple[str, ...] = ()
    # Directories an Include pattern's wildcards are expanded in (/etc/ssh/sshd_config.d): whoever
    # can add a file there configures sshd, even when no file matches yet.
    include_dirs: tuple[str, ...] = ()

    def config_paths(self) -> tuple[str, ...]:
        """What decides this configuration: the files read, the directories holding them (a file
        there can be replaced) and :attr:`include_dirs` (a file added there is read)."""
        parents = [f.rpartition("/")[0] or "/" for f in self.files if f.startswith("/")]
        return tuple(dict.fromkeys([*self.files, *parents, *self.include_dirs]))

    def value(self, keyword: str) -> str | None:
        values = self.settings.get(keyword.lower())
        return " ".join(values) if values else None

    def for_connection(self, user: str | None, host: str | None = None, address: str | None = None,
                       *, groups: tuple[str, ...] | None = None, local_address: str | None = None,
                       local_port: int | None = None, rdomain: str | None = None,
                       ) -> Mapping[str, tuple[str, ...]]:
        """The settings sshd applies to one connection (as ``sshd -T -C user=…,host=…,addr=…``).

        Every Match block whose criteria all hold re-applies its keywords: the first matching
        block wins per keyword, except AllowUsers/DenyUsers/AllowGroups/DenyGroups/AcceptEnv,
        which collect over all matching blocks; the result replaces the global value. A criterion
        whose input is not given (``None``; ``groups`` for Match Group) does not match.
        """
        applied: dict[str, tuple[str, ...]] = {}
        collected: dict[str, list[str]] = {}
        for block in self.matches:
            if not _sshd_block_matches(block.criteria, user=user, host=host, address=address,
                                       groups=groups, local_address=local_address,
                                       local_port=local_port, rdomain=rdomain):
                continue
            for keyword, values in block.settings.items():
                if keyword in _SSHD_MATCH_COLLECT:
                    collected.setdefault(keyword, []).extend(values)
                elif keyword not in applied:
                    applied[keyword] = values
        applied.update({k: tuple(v) for k, v in collected.items() if v})
        return {**self.settings, **applied}


_SSHD_MATCH_COLLECT = frozenset({"allowusers", "denyusers", "allowgroups", "denygroups", "acceptenv"})


def _sshd_addr_list(address: str, patterns: str) -> bool:
    """OpenSSH ``addr_match_list``: CIDR entries, else wildcard patterns; a negated hit refuses."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    result = False
    for entry in patterns.split(","):
        negated = entry.startswith("!")
        entry = entry[1:] if negated else entry
        _, slash, mask = entry.partition("/")
        try:
            if slash and not mask.isdigit():
                raise ValueError(entry)  # "a/255.0.0.0" is no CIDR to sshd: a wildcard pattern
            net = ipaddress.ip_network(entry, strict=True)
        except ValueError:
            hit = match_pattern(address, entry)
        else:
            hit = net.version == ip.version and ip in net
        if hit:
            if negated:
                return False
            result = True
    return result


def _sshd_block_matches(criteria: tuple[tuple[str, str], ...], *, user: str | None, host: str | None,
                        address: str | None, groups: tuple[str, ...] | None,
                        local_address: str | None, local_port: int | None, rdomain: str | None) -> bool:
    for name, arg in criteria:
        if name == "all":
            continue
        if name == "user":
            ok = user is not None and match_pattern_list(user, arg) == 1
        elif name == "group":
            results = [match_pattern_list(g, arg) for g in groups or ()]
            ok = user is not None and -1 not in results and 1 in results
        elif name == "host":
            ok = host is not None and match_pattern_list(host.lower(), arg, lower=True) == 1
        elif name == "address":
            ok = address is not None and _sshd_addr_list(address, arg)
        elif name == "localaddress":
            ok = local_address is not None and _sshd_addr_list(local_address, arg)
        elif name == "localport":
            ok = local_port is not None and arg.isascii() and arg.isdigit() and int(arg) == local_port
        elif name == "rdomain":
            ok = rdomain is not None and match_pattern_list(rdomain, arg) == 1
        else:
            ok = False
        if not ok:
            return False
    return True


class AuthorizedKey(Struct, frozen=True, kw_only=True, gc=False):
    user: str  # the (first) account this key logs in as
    path: str
    key_type: str | None  # ssh-rsa, ssh-ed25519, ecdsa-sha2-nistp256, ssh-dss, sk-…
    bits: int | None = None
    comment: str | None = None
    options: tuple[str, ...] = ()
    line: int | None = None
    # Other accounts the same file serves (a shared home directory, an AuthorizedKeysFile outside
    # the homes): one key line, listed once, logs in as each of them.
    also_for: tuple[str, ...] = ()

    @property
    def users(self) -> tuple[str, ...]:
        return (self.user, *self.also_for)


class Service(Struct, frozen=True, kw_only=True, gc=False):
    name: str  # unit or service name: ssh.service, telnet (inetd)
    manager: str  # systemd | inetd | xinetd | sysv | openrc
    enabled: bool | None
    origin: str = ""  # the wants/ symlink, inetd.conf line, …
    exec_start: str | None = None


class PackageRepo(Struct, frozen=True, kw_only=True, gc=False):
    manager: str  # apt | yum | dnf | zypper | apk
    uri: str
    origin: str  # path:line or path [section]
    suite: str | None = None
    components: tuple[str, ...] = ()
    enabled: bool = True
    signed: bool | None = None  # signed-by / gpgcheck=1 / apk keys; None: cannot tell
    trusted: bool = False  # apt [trusted=yes]: signatures ignored
    gpgcheck: bool | None = None  # yum/dnf: gpgcheck
    repo_gpgcheck: bool | None = None

    @property
    def transport_encrypted(self) -> bool:
        return self.uri.startswith(("https://", "file:", "cdrom:"))


class AutoUpdates(Struct, frozen=True, kw_only=True, gc=False):
    mechanism: str | None  # unattended-upgrades | dnf-automatic | yum-cron | apk-cron | None
    enabled: bool | None
    security_only: bool | None = None
    origin: str = ""
    # unattended-upgrades: the archives it may install from, as configured (parsers/system/
    # unattended_origins.py matches them): Unattended-Upgrade::Allowed-Origins, ::Origins-Pattern
    allowed_origins: tuple[str, ...] = ()
    origins_pattern: tuple[str, ...] = ()
    origins_from: str = ""  # the files that set them
    # Debian/Ubuntu: "path:line: reason" where apt refuses its configuration (a syntax error, a missing
    # #include): every apt program then fails, and apt.systemd.daily reads each interval as 0
    apt_refused: str = ""
    # unattended-upgrades: Update-Days as written (the first 20) and the weekdays it lets the program
    # run on (0 = Sunday), and the installed packages its Package-Blacklist/-Whitelist keep from
    # upgrade (parsers/system/unattended_filters.py): at most 50 named, all counted; an entry that
    # stops the program; why they could not be judged
    update_days: tuple[str, ...] = ()
    run_weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    held_back: tuple[str, ...] = ()
    held_back_count: int = 0
    filters_error: str = ""
    filters_unknown: str = ""
    filters_from: str = ""  # the files that set the lists
    held_back_why: str = ""  # what holds them back ("its Package-Blacklist matches them; …")


class MountEntry(Struct, frozen=True, kw_only=True, gc=False):
    device: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...] = ()
    origin: str = "/etc/fstab"


class CryptEntry(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    device: str
    keyfile: str | None
    options: tuple[str, ...] = ()
    origin: str = "/etc/crypttab"

    @property
    def key_path(self) -> str | None:
        """The key file in this file system; None for a passphrase, a random key (/dev/urandom), or
        a key on another device (a /dev path, ``/key:UUID=…``)."""
        key = self.keyfile
        if not key or not key.startswith("/") or key.startswith("/dev/") or ":" in key:
            return None
        return key


class SysctlValue(Struct, frozen=True, kw_only=True, gc=False):
    value: str
    origin: str  # path:line of the file whose setting wins (last one read, as systemd-sysctl)
    # A value read from the running kernel (/proc/sys) carries what the configuration files set for the
    # next boot when that differs (None: the same, or not configured).
    configured: SysctlValue | None = None
    runtime: bool = False
    # A negative match ("-key" without "="): systemd-sysctl's globs leave the key alone, so the kernel
    # keeps its own value. ``value`` is then empty.
    excluded: bool = False


class AuditSetup(Struct, frozen=True, kw_only=True, gc=False):
    auditd_installed: bool | None
    auditd_enabled: bool | None
    rules: tuple[str, ...] = ()  # the rule lines auditctl loads at boot (augenrules' or audit.rules)
    # The line auditctl refuses, with its file: it loads nothing from there on (a final -e 2 included).
    load_error: str | None = None
    remote_logging: tuple[str, ...] = ()  # evidence of off-host logging: rsyslog @@host, audisp-remote …
    journald_storage: str | None = None


class FirewallSetup(Struct, frozen=True, kw_only=True, gc=False):
    # Each mechanism that is installed/configured and whether it is enabled at boot.
    mechanisms: Mapping[str, bool | None] = field(default_factory=dict)  # nftables/iptables/ufw/firewalld
    default_input_policy: str | None = None  # accept | drop | reject, where the config says
    origin: str = ""
    policy_note: str = ""  # why the policy is what it is, or why it is unknown (an IPv6 hole, …)


class CloudInitSetup(Struct, frozen=True, kw_only=True, gc=False):
    present: bool
    ssh_pwauth: bool | None = None
    disable_root: bool | None = None
    plaintext_passwords: tuple[str, ...] = ()  # users/places with a plaintext password (never the value)
    origins: tuple[str, ...] = ()
    # Files or parts that are not valid cloud-config ("path: reason"): cloud-init skips them, so the
    # settings above stand without them, but what they hold (a password?) is unknown.
    unparsed: tuple[str, ...] = ()
    # Vendor data that cloud-init does not apply (``vendor_data: {enabled: false}`` outside it).
    vendor_data_disabled: bool = False


class GuestAgentSetup(Struct, frozen=True, kw_only=True, gc=False):
    installed: bool
    enabled: bool | None = None
    blocked_rpcs: tuple[str, ...] = ()
    allowed_rpcs: tuple[str, ...] | None = None  # None: no allow-list
    origin: str = ""
    # Why qemu-ga would exit at start with this setup (an option or a configuration file it refuses):
    # its RPC filter is then not judged. None: it starts.
    refused: str | None = None

    def accepts(self, rpc: str) -> bool:
        """Whether qemu-ga answers ``rpc``: named in the allow-list (when there is one) and not blocked —
        qemu-ga applies both lists."""
        return (self.allowed_rpcs is None or rpc in self.allowed_rpcs) and rpc not in self.blocked_rpcs

    @property
    def guest_exec_allowed(self) -> bool | None:
        if not self.installed:
            return False
        if self.refused is not None:
            return None
        return self.accepts("guest-exec")


class DiskAtRest(Struct, frozen=True, kw_only=True, gc=False):
    """How the guest's disk is protected at rest, as seen from outside."""

    scheme: str | None  # qcow2-luks | luks | luks-in-guest | none; None: unknown
    unlocked: bool = False  # contents were read with an operator-supplied key
    detail: str = ""


class Guest(Struct, frozen=True, kw_only=True, gc=False):
    """One operating system root, as read offline."""

    name: str  # domain name, image file name or root directory
    origin: str  # image path, root directory, or "URI#domain disk"
    domain: str | None = None  # the libvirt domain it belongs to, when known
    consistency_note: str | None = None  # e.g. "read from the disk of a running VM"
    os: OsRelease | None = None
    packages: tuple[InstalledPackage, ...] | None = None
    accounts: tuple[Account, ...] | None = None
    groups: tuple[Group, ...] | None = None
    # /etc/gshadow (empty when the file does not exist; None when it could not be read).
    group_shadow: tuple[GroupShadow, ...] | None = None
    # LVM logical volumes from /etc/lvm/backup (empty: no backups; None: they could not be read).
    lvm: tuple[LogicalVolume, ...] | None = None
    shadow: tuple[ShadowEntry, ...] | None = None
    pam: tuple[PamStack, ...] | None = None
    # PAM modules' own configuration, by main file: /etc/security/pwquality.conf,
    # /etc/security/faillock.conf, and any file a faillock line names with conf=
    pam_module_configs: Mapping[str, ModuleConfig] | None = None
    login_defs: Mapping[str, str] | None = None
    sudoers: Sudoers | None = None
    sshd: SshdConfig | None = None  # None: unknown; no OpenSSH server installed → sshd_installed False
    sshd_installed: bool | None = None
    authorized_keys: tuple[AuthorizedKey, ...] | None = None
    services: tuple[Service, ...] | None = None
    repos: tuple[PackageRepo, ...] | None = None
    auto_updates: AutoUpdates | None = None
    fstab: tuple[MountEntry, ...] | None = None
    # Swap that systemd's own .swap units activate at boot (origin: the unit file); None: unknown.
    swap_units: tuple[MountEntry, ...] | None = None
    crypttab: tuple[CryptEntry, ...] | None = None
    sysctl: Mapping[str, SysctlValue] | None = None
    audit: AuditSetup | None = None
    firewall: FirewallSetup | None = None
    cloud_init: CloudInitSetup | None = None
    guest_agent: GuestAgentSetup | None = None
    disk: DiskAtRest | None = None
    # Inputs that exist but could not be read (denied, too large, a FIFO …), by the name of the field
    # they feed ("services", "repos", "auto_updates", "fstab", "swap_units", "crypttab", "sysctl", "audit",
    # "firewall", "guest_agent": what decides qemu-ga's RPC filter, "authorized_keys": key files past
    # vmsec's caps on entries × accounts), each as "path: reason". Such a field holds only what the
    # other inputs gave: it is incomplete, and what it lacks is unknown, not absent. (sudoers and sshd
    # say so in their own ``unread``.)
    unread: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Owner and mode of the files that hold or guard credentials: passwd, shadow, group, gshadow and
    # their "-" backups; sshd's configuration files and host keys; the sudoers files and include
    # directories; every authorized_keys file with the directories sshd checks above it; crypttab and
    # the disk key files it names. Keyed by
    # path; a path that is not in it was not looked at.
    file_stats: Mapping[str, FileStat] | None = None
    # Known vulnerabilities of the installed packages; None: matching did not run.
    vulnerabilities: VulnReport | None = None
    running_kernel: str | None = None  # uname -r, where the root is the running system
    # What runs now (sysctl values, mounts, processes, sockets …): only for a running system — the
    # live host, a guest over SSH or through its agent; None for roots and images read offline.
    runtime: RuntimeState | None = None

    def account(self, name: str) -> Account | None:
        for a in self.accounts or ():
            if a.name == name:
                return a
        return None
