"""Local accounts and their passwords: who is root, who can log in without a password, how the
passwords are hashed and aged, and what new passwords will be hashed with.

Facts come from /etc/passwd, /etc/shadow, /etc/group and /etc/login.defs; hashes themselves are
never kept, only their algorithm and state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, need, ok, unknown
from vmsec.checks.helpers.pam import unix_nullok
from vmsec.checks.helpers.sshd import account_blocker, is_yes, login_blocker
from vmsec.checks.helpers.unread import unread_text
from vmsec.facts import Account, Guest, ShadowEntry
from vmsec.findings import Evidence
from vmsec.parsers.sshd_effective import global_value

SHADOW_DOC = "https://man7.org/linux/man-pages/man5/shadow.5.html"
CRYPT_DOC = "https://man7.org/linux/man-pages/man5/crypt.5.html"
LOGIN_DEFS_DOC = "https://man7.org/linux/man-pages/man5/login.defs.5.html"

# Accounts RHEL gives primary group 0 by design (CIS exempts them).
_GID0_EXEMPT = frozenset({"root", "sync", "shutdown", "halt", "operator"})


_DEBIAN_LIKE = frozenset({"debian", "ubuntu"})  # shadow built without bcrypt and gost-yescrypt


def _getdef_num(raw: str | None, default: int) -> int:
    """A login.defs number as shadow-utils' getdef_num reads it: strtol with base 0 (``0x1388`` is
    5000, ``010`` is 8), the whole value, fitting an int; otherwise the default."""
    text = (raw or "").strip(" \t\n\v\f\r")
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-") if text[:1] in "+-" else text
    try:
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", body):
            value = int(body, 16)
        elif re.fullmatch(r"0[0-7]*", body):
            value = int(body, 8)
        elif re.fullmatch(r"[1-9][0-9]{0,18}", body):
            value = int(body)
        else:
            return default
    except ValueError:
        return default
    value *= sign
    return value if -(2**31) <= value < 2**31 else default


def _accounts(guest: Guest) -> tuple[Account, ...]:
    return need(guest.accounts, "/etc/passwd could not be read")


def _shadow(guest: Guest) -> tuple[ShadowEntry, ...]:
    return need(guest.shadow, "/etc/shadow could not be read")


def _entries(guest: Guest, name: str) -> list[ShadowEntry]:
    return [e for e in guest.shadow or () if e.name == name]


def _usable(entry: ShadowEntry) -> bool:
    return not entry.empty and not entry.locked and entry.hash_algorithm is not None


def _nullok(guest: Guest) -> bool:
    return any(line.module.endswith("pam_unix.so") and unix_nullok(line)
               for stack in guest.pam or () for line in stack.lines if line.type == "auth")


@check("VMS-GST-040", title="Only root has user ID 0", severity=Severity.CRITICAL,
       tags=(Tag.ACCESS_CONTROL, "accounts"), references=(SHADOW_DOC,))
def extra_uid0(guest: Guest, env: Environment) -> Iterator[Result]:
    """Any account with UID 0 is root, whatever its name: an extra one is a classic backdoor, easy to
    miss in a list of users. A locked password does not lock the account out of SSH: with
    `UsePAM yes` sshd does not check the lock (and a `*` field is never a lock to it), so a key in
    its authorized_keys logs in as root, unless `PermitRootLogin no` (it applies to every UID 0
    account), AllowUsers/DenyUsers or a no-login shell stop it. Only an account that is locked
    and cannot log in that way is reported as info.

    Remediation: Remove the account or give it its own UID (`usermod -u`).
    """
    accounts = _accounts(guest)
    extra = [a for a in accounts if a.uid == 0 and a.name != "root"]
    for a in extra:
        entries = _entries(guest, a.name)
        locked = bool(entries) and all(e.locked for e in entries)
        where = ev(a.origin, "uid", a.uid)
        if not locked:
            yield fail(f"account {a.name}", f"account {a.name} has UID 0 (root's privileges)", where)
            continue
        key_login, why = _key_login(guest, a.name, entries)
        if key_login is None:
            yield fail(f"account {a.name}", f"account {a.name} has UID 0 and a locked password; whether it "
                       f"can still log in over SSH with a key is unknown: {why}", where,
                       *_key_evidence(guest, a.name))
        elif key_login:
            yield fail(f"account {a.name}", f"account {a.name} has UID 0 and a locked password, but can "
                       f"still log in over SSH with a key: {why}", where, *_key_evidence(guest, a.name))
        else:
            yield fail(f"account {a.name}", f"account {a.name} has UID 0 (root's privileges) but is locked"
                       + (f": {why}" if why else ""), where, severity=Severity.INFO)
    if not extra:
        root = [a.origin for a in accounts if a.uid == 0]
        yield ok("UID 0", "only root has UID 0" if root else "no account has UID 0",
                 ev(root[0] if root else "/etc/passwd", "uid", 0))


def _key_login(guest: Guest, name: str, entries: list[ShadowEntry]) -> tuple[bool | None, str]:
    """Whether a password-locked account can still log in over SSH with a key (None: unknown), and
    why (not)."""
    cfg = guest.sshd
    if guest.sshd_installed is False:
        return False, "no OpenSSH server is installed"
    if cfg is None:
        return False, "the OpenSSH server's configuration is unknown"
    blocked = login_blocker(guest, cfg, name)
    if blocked and (not cfg.unread or account_blocker(guest, name) is not None):
        return False, blocked
    if cfg.unread:  # an unread file could set UsePAM, PermitRootLogin or Allow/Deny lists first
        return None, f"{unread_text(cfg.unread)}: not read, so sshd's configuration is incomplete"
    root_login = global_value(cfg, "permitrootlogin")
    if root_login is not None and root_login.value.strip().lower() == "no":
        return False, "PermitRootLogin no applies to every UID 0 account"
    use_pam = global_value(cfg, "usepam")
    pam = use_pam is not None and is_yes(use_pam.value)
    if not pam and all(e.lock_mark == "!" for e in entries):
        return False, "with UsePAM no, sshd refuses accounts whose password is locked with '!'"
    how = "UsePAM yes: sshd does not check the password lock" if pam else "its '*' field is no lock to sshd"
    keys = [k for k in guest.authorized_keys or () if k.user == name]
    return True, how + (f"; {len(keys)} authorized key(s) present" if keys else "")


def _key_evidence(guest: Guest, name: str) -> list[Evidence]:
    out = [ev(k.path, "authorized key", k.key_type) for k in (guest.authorized_keys or ()) if k.user == name]
    usepam = global_value(guest.sshd, "usepam") if guest.sshd is not None else None
    if usepam is not None:
        out.append(usepam.evidence("usepam"))
    return out[:4]


@check("VMS-GST-041", title="No account has an empty password", severity=Severity.HIGH,
       tags=(Tag.ACCESS_CONTROL, "accounts"), references=(SHADOW_DOC,))
def empty_passwords(guest: Guest, env: Environment) -> Iterator[Result]:
    """An empty password field means no password is asked where the login path allows it (PAM
    `nullok`, sshd `PermitEmptyPasswords yes`): a console, `su` or SSH login without a credential,
    as in Alpine's Docker images with `root::` (CVE-2019-5021). Critical when the account has a
    login shell and PAM `nullok` or sshd `PermitEmptyPasswords yes` accepts it.

    Remediation: Lock the account (`passwd -l`) or set a password; remove `nullok` from pam_unix.
    """
    shadow = _shadow(guest)
    empties = [e for e in shadow if e.empty]
    nullok = _nullok(guest)
    sshd_empty = False
    if guest.sshd is not None:
        g = global_value(guest.sshd, "permitemptypasswords")
        sshd_empty = g is not None and is_yes(g.value)
    for e in empties:
        account = guest.account(e.name)
        shell = account is not None and account.can_login is not False
        ways = [w for w, on in (("PAM nullok", nullok), ("sshd PermitEmptyPasswords yes", sshd_empty)) if on]
        worse = shell and bool(ways)
        how = f"; with a login shell and {' and '.join(ways)} it logs in without one" if worse else ""
        yield fail(f"account {e.name}", f"account {e.name} has an empty password{how}",
                   ev(e.origin, "password", "(empty)"), severity=Severity.CRITICAL if worse else None)
    if not empties:
        yield ok("empty passwords", f"none of the {len(shadow)} password entries is empty",
                 ev("/etc/shadow", "password"))


_WEAK = {"des": Severity.CRITICAL, "bigcrypt": Severity.CRITICAL, "nt": Severity.CRITICAL,
         "md5": Severity.HIGH, "bsdi": Severity.HIGH, "sunmd5": Severity.HIGH,
         "sha1crypt": Severity.MEDIUM, "sha256": Severity.LOW}
_STRONG = frozenset({"yescrypt", "gost-yescrypt", "scrypt", "sha512", "bcrypt"})


@check("VMS-GST-042", title="Passwords are hashed with a strong algorithm", severity=Severity.HIGH,
       tags=(Tag.ENCRYPTION, "accounts"), references=(CRYPT_DOC,))
def weak_hashes(guest: Guest, env: Environment) -> Iterator[Result]:
    """Whoever gets a copy of the disk or image gets the hashes. DES and NT hashes are cracked in
    seconds (critical), MD5-crypt in hours (high); SHA-256-crypt is acceptable but weaker than
    SHA-512, bcrypt or yescrypt (low). Only hashes that can be used to log in are judged.

    Remediation: Set `ENCRYPT_METHOD YESCRYPT` (or SHA512) in /etc/login.defs and in pam_unix, then
    have the affected users change their passwords (`passwd -e USER`).
    """
    shadow = _shadow(guest)
    usable = [e for e in shadow if _usable(e)]
    for e in usable:
        algo = e.hash_algorithm or "unknown"
        where = ev(e.origin, "password hash", algo)
        if algo in _WEAK:
            yield fail(f"account {e.name}", f"account {e.name}'s password is hashed with {algo}", where,
                       severity=_WEAK[algo])
        elif algo in _STRONG:
            yield ok(f"account {e.name}", f"account {e.name}'s password is hashed with {algo}", where)
        else:
            yield unknown(f"account {e.name}", f"account {e.name}'s password hash has an unrecognised "
                          "format", where)


@check("VMS-GST-043", title="Login accounts with passwords have password aging", severity=Severity.LOW,
       tags=(Tag.ACCESS_CONTROL, "accounts"), references=(SHADOW_DOC,))
def password_aging(guest: Guest, env: Environment) -> Iterator[Result]:
    """A password that never expires stays valid after it leaks. Current NIST guidance prefers
    screening over forced rotation, so this is a policy check (low): accounts with a login shell and a
    usable password whose maximum age is unset or above the profile parameter
    `password_max_days` (default 365).

    Remediation: `chage -M 365 USER`, and `PASS_MAX_DAYS 365` in /etc/login.defs for new accounts.
    """
    limit = int(env.param("password_max_days", 365))
    _accounts(guest)
    for e in _shadow(guest):
        account = guest.account(e.name)
        if not _usable(e) or account is None or account.can_login is False:
            continue
        where = ev(e.origin, "max days", e.max_days)
        if e.max_days is None or e.max_days > limit:
            shown = "not set" if e.max_days is None else f"{e.max_days} days"
            yield fail(f"account {e.name}", f"account {e.name} has a password that never needs changing "
                       f"(maximum age {shown}, limit {limit})", where)
        else:
            yield ok(f"account {e.name}", f"account {e.name}'s password expires after {e.max_days} days",
                     where)


@check("VMS-GST-044", title="System accounts have no login shell", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "accounts"), references=(LOGIN_DEFS_DOC,))
def system_account_shells(guest: Guest, env: Environment) -> Iterator[Result]:
    """Service accounts (UID below `UID_MIN` of /etc/login.defs, default 1000) should not be able to
    log in: a forgotten one with a shell is an entry point that nobody watches. Medium when it also
    has a usable password, low otherwise (a key or `su` could still use it).

    Remediation: `usermod -s /usr/sbin/nologin -L ACCOUNT`.
    """
    accounts = _accounts(guest)
    uid_min = _getdef_num((guest.login_defs or {}).get("UID_MIN"), 1000)
    found = False
    for a in accounts:
        # No exemption by name: halt, sync or shutdown with their own programs as shell cannot log in
        # (can_login), and an "operator" with bash can.
        if a.uid is None or a.uid == 0 or a.uid >= uid_min:
            continue
        if a.can_login is None:
            yield unknown(f"account {a.name}", f"account {a.name}'s shell is unknown", ev(a.origin, "shell"))
            continue
        if a.can_login:
            found = True
            usable = any(_usable(e) for e in _entries(guest, a.name))
            yield fail(f"account {a.name}", f"system account {a.name} (UID {a.uid}) has the login shell "
                       f"{a.shell}" + (" and a usable password" if usable else ""),
                       ev(a.origin, "shell", a.shell),
                       severity=None if usable else Severity.LOW)
    if not found:
        yield ok("system accounts", f"no account with a UID below {uid_min} other than root has a login "
                 "shell", ev("/etc/passwd", "shell"))


@check("VMS-GST-045", title="User IDs are unique", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "accounts"), references=(SHADOW_DOC,))
def duplicate_uids(guest: Guest, env: Environment) -> Iterator[Result]:
    """Two accounts with the same UID are the same user to the kernel: one can read and change the
    other's files, and logs cannot tell them apart. (Extra UID 0 accounts are VMS-GST-040.)

    Remediation: Give each account its own UID and fix file ownership.
    """
    by_uid: dict[int, list[Account]] = {}
    for a in _accounts(guest):
        if a.uid is not None and a.uid != 0:
            by_uid.setdefault(a.uid, []).append(a)
    dups = {uid: accts for uid, accts in by_uid.items() if len(accts) > 1}
    for uid, accts in sorted(dups.items()):
        yield fail(f"UID {uid}", f"UID {uid} is shared by " + ", ".join(a.name for a in accts),
                   *(ev(a.origin, "uid", uid) for a in accts[:5]))
    if not dups:
        yield ok("UIDs", f"all {sum(len(v) for v in by_uid.values())} non-root UIDs are unique",
                 ev("/etc/passwd", "uid"))


@check("VMS-GST-046", title="Account and group names are unique", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "accounts"), references=(SHADOW_DOC,))
def duplicate_names(guest: Guest, env: Environment) -> Iterator[Result]:
    """When a name appears twice in /etc/passwd or /etc/group, tools disagree on which entry counts
    (the first for login, maybe another for an audit script): a second `root` line with other
    values hides in plain sight.

    Remediation: Remove or rename the duplicate entries (`pwck`, `grpck`).
    """
    found = False
    for kind, entries in (("account", [(a.name, a.origin) for a in _accounts(guest)]),
                          ("group", [(g.name, g.origin) for g in guest.groups or ()])):
        seen: dict[str, list[str]] = {}
        for name, origin in entries:
            seen.setdefault(name, []).append(origin)
        for name, origins in seen.items():
            if len(origins) > 1:
                found = True
                yield fail(f"{kind} {name}", f"{kind} name {name} appears {len(origins)} times",
                           *(ev(o, "name", name) for o in origins[:5]))
    if guest.groups is None:
        yield unknown("group names", "/etc/group could not be read", ev("/etc/group"))
    if not found:
        yield ok("names", "account and group names are unique", ev("/etc/passwd", "name"))


@check("VMS-GST-047", title="New passwords are hashed with SHA-512 or yescrypt (login.defs)",
       severity=Severity.MEDIUM, tags=(Tag.ENCRYPTION, "accounts"), references=(LOGIN_DEFS_DOC,))
def encrypt_method(guest: Guest, env: Environment) -> Iterator[Result]:
    """`ENCRYPT_METHOD` in /etc/login.defs decides the hash of passwords set by `chpasswd`,
    `newusers` and `useradd -p`; when unset, shadow-utils fall back to DES (or MD5 with
    `MD5_CRYPT_ENAB yes`). Weak methods make every future password crackable after a leak.

    Remediation: Set `ENCRYPT_METHOD YESCRYPT` (or `SHA512`) in /etc/login.defs.
    """
    defs = need(guest.login_defs, "/etc/login.defs could not be read")
    method = defs.get("ENCRYPT_METHOD")
    where = ev("/etc/login.defs", "ENCRYPT_METHOD", method)
    if method is None:
        if not defs:
            yield unknown("login.defs ENCRYPT_METHOD", "/etc/login.defs is absent: the tools that set "
                          "passwords (PAM, busybox) decide the hash", where)
            return
        md5 = (defs.get("MD5_CRYPT_ENAB") or "").lower() == "yes"
        yield fail("login.defs ENCRYPT_METHOD", "ENCRYPT_METHOD is not set: new passwords set by "
                   f"shadow tools are hashed with {'MD5' if md5 else 'DES'}", where)
    elif method in ("SHA512", "YESCRYPT"):
        yield ok("login.defs ENCRYPT_METHOD", f"ENCRYPT_METHOD {method}", where)
    elif method in ("BCRYPT", "GOST_YESCRYPT") and (guest.os is None or guest.os.id not in _DEBIAN_LIKE):
        yield unknown("login.defs ENCRYPT_METHOD", f"ENCRYPT_METHOD {method}: strong if this build of "
                      "shadow-utils supports it, DES if it does not (Debian's does not)", where)
    elif method in ("BCRYPT", "GOST_YESCRYPT"):
        yield fail("login.defs ENCRYPT_METHOD", f"ENCRYPT_METHOD {method} is not built into this "
                   "distribution's shadow-utils: new passwords are hashed with DES", where)
    elif method not in ("MD5", "SHA256", "DES"):
        # salt.c compares with strcmp: "sha512" is no method, and shadow falls back to DES
        yield fail("login.defs ENCRYPT_METHOD", f"ENCRYPT_METHOD {method} is not a method shadow-utils "
                   "knows (they are case-sensitive): new passwords are hashed with DES", where)
    else:
        yield fail("login.defs ENCRYPT_METHOD", f"ENCRYPT_METHOD {method}: new passwords get a weak "
                   "hash", where, severity=Severity.LOW if method.upper() == "SHA256" else None)


@check("VMS-GST-048", title="Only root has group ID 0 as its primary group", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "accounts"), references=(SHADOW_DOC,))
def gid0_accounts(guest: Guest, env: Environment) -> Iterator[Result]:
    """Files owned by group root (GID 0) are often group-writable or readable for administrators; an
    ordinary account whose primary group is 0 gets that access. RHEL's sync, shutdown, halt and
    operator accounts are exempt (as in CIS).

    Remediation: `usermod -g <own group> ACCOUNT`.
    """
    extra = [a for a in _accounts(guest) if a.gid == 0 and a.name not in _GID0_EXEMPT]
    for a in extra:
        yield fail(f"account {a.name}", f"account {a.name} has primary group 0 (root)",
                   ev(a.origin, "gid", 0))
    if not extra:
        yield ok("GID 0", "no account other than root (and RHEL's system accounts) has primary group 0",
                 ev("/etc/passwd", "gid", 0))


@check("VMS-GST-049", title="Password hashes are not in the world-readable /etc/passwd",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "accounts"), references=(SHADOW_DOC,))
def unshadowed(guest: Guest, env: Environment) -> Iterator[Result]:
    """/etc/passwd is readable by every local user; a hash there can be copied and cracked offline
    by anyone with a shell. Hashes belong in /etc/shadow.

    Remediation: Run `pwconv` to move the hashes to /etc/shadow.
    """
    accounts = _accounts(guest)
    inline = [e for e in guest.shadow or () if e.origin.startswith("/etc/passwd")
              and e.hash_algorithm is not None]
    for e in inline:
        yield fail(f"account {e.name}", f"account {e.name}'s password hash ({e.hash_algorithm}) is in "
                   "/etc/passwd", ev(e.origin, "password", e.hash_algorithm))
    if not inline:
        yield ok("/etc/passwd", f"none of the {len(accounts)} accounts has a hash in /etc/passwd",
                 ev("/etc/passwd", "password"))
