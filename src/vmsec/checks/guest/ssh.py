"""The OpenSSH server: who may log in and how, the algorithms it offers, and what it lets an
authenticated client do.

Values are the *effective* ones (Include expanded, first value wins, compiled defaults filled in by
the collector). A ``Match`` block changes a value for some connections only: a block whose criteria
match every connection (``Match all``, ``Match Address 0.0.0.0/0``) counts as global; any other
block is reported as a narrower finding naming its criteria. Within Match blocks the first block
that matches a connection wins per keyword, so a block shadowed by an earlier catch-all block that
sets the same keyword is never applied and is not reported. When a file of the configuration could
not be read (``SshdConfig.unread``), a value the files read set badly is still a finding; a good value,
and a bad compiled-in default, are UNKNOWN naming that file (it could set the keyword first).

The helpers here are shared by the other OS-access modules (keys, PAM).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, unknown
from vmsec.checks.helpers.sshd import is_yes, setting_results, sshd_of
from vmsec.checks.helpers.unread import not_read, ok_unless
from vmsec.facts import Guest
from vmsec.parsers.sshd_defaults import compiled_defaults
from vmsec.parsers.sshd_effective import (
    DEFAULT,
    global_value,
    is_default,
    keyword_name,
    lookup,
    reachable,
    split_list,
    sshd_version,
)

SSHD_DOC = "https://man.openbsd.org/sshd_config"
CIS_DOC = "https://www.cisecurity.org/benchmark/debian_linux"

# --- authentication --------------------------------------------------------------------------------

@check("VMS-GST-001", title="SSH does not accept root logins with a password", severity=Severity.HIGH,
       tags=(Tag.ACCESS_CONTROL, "ssh"), references=(SSHD_DOC, CIS_DOC))
def root_login(guest: Guest, env: Environment) -> Iterator[Result]:
    """`PermitRootLogin yes` lets anyone on the network guess root's password directly; a success is
    full control of the system with no record of who it was. `prohibit-password` (the default since
    OpenSSH 7.0), `forced-commands-only` and `no` do not accept a password for root. A `Match` block
    that can apply to root counts as well. Escalated to critical when root has an empty password or
    a weak (DES, MD5) hash.

    Remediation: Set `PermitRootLogin no` (or `prohibit-password`) in the first file sshd reads —
    the lowest-sorted file in /etc/ssh/sshd_config.d/ — and in any `Match` block; administrators log
    in as themselves and use sudo.
    """
    worse = None
    for entry in guest.shadow or ():
        weak = entry.empty or entry.hash_algorithm in ("des", "md5")
        if entry.name == "root" and not entry.locked and weak:
            worse = Severity.CRITICAL
    for r in setting_results(guest, "permitrootlogin", "sshd PermitRootLogin",
                             lambda v: "root can log in with a password" if is_yes(v) else None,
                             "root cannot log in with a password", user="root", credential="password"):
        if r.status.value == "FAIL" and worse is not None:
            r = r._replace(severity=worse,
                           message=r.message + " (and root's password is empty or weakly hashed)")
        yield r


@check("VMS-GST-002", title="SSH does not accept password authentication", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "ssh"), references=(SSHD_DOC,))
def password_authentication(guest: Guest, env: Environment) -> Iterator[Result]:
    """Password logins can be guessed online from anywhere the port is reachable, and passwords are
    reused and phished; keys (ideally hardware-backed) cannot be guessed. The compiled default is
    `yes`, and cloud-init's `50-cloud-init.conf` often sets it before the main file is read.

    Remediation: Set `PasswordAuthentication no` in the first file sshd reads (look for
    `50-cloud-init.conf` in /etc/ssh/sshd_config.d/) and in `Match` blocks; use public keys.
    """
    yield from setting_results(guest, "passwordauthentication", "sshd PasswordAuthentication",
                               lambda v: "passwords are accepted" if is_yes(v) else None,
                               "passwords are not accepted", narrow=Severity.LOW, credential="password")


@check("VMS-GST-003", title="SSH does not accept empty passwords", severity=Severity.HIGH,
       tags=(Tag.ACCESS_CONTROL, "ssh"), references=(SSHD_DOC, CIS_DOC))
def permit_empty_passwords(guest: Guest, env: Environment) -> Iterator[Result]:
    """With `PermitEmptyPasswords yes`, an account whose password field is empty can be logged into
    over the network with no credential at all. Critical when such an account exists.

    Remediation: Set `PermitEmptyPasswords no` (the default) and lock accounts without a password.
    """
    empty = [e.name for e in guest.shadow or () if e.empty]
    for r in setting_results(guest, "permitemptypasswords", "sshd PermitEmptyPasswords",
                             lambda v: "accounts with an empty password can log in" if is_yes(v) else None,
                             "empty passwords are refused", credential="password"):
        if r.status.value == "FAIL" and empty:
            r = r._replace(severity=Severity.CRITICAL,
                           message=r.message + f"; accounts with an empty password: {', '.join(empty)}")
        yield r


_MFA_MODULES = ("pam_google_authenticator.so", "pam_u2f.so", "pam_oath.so", "pam_duo.so",
                "pam_yubico.so", "pam_radius_auth.so")


def sshd_pam_modules(guest: Guest) -> tuple[str, ...] | None:
    """Module names in the sshd PAM auth stack (includes expanded), or None when unknown/absent."""
    for stack in guest.pam or ():
        if stack.service == "sshd":
            return tuple(line.module.rsplit("/", 1)[-1] for line in stack.lines if line.type == "auth")
    return None


@check("VMS-GST-004", title="SSH keyboard-interactive login is not a second password prompt",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "ssh", "pam"), references=(SSHD_DOC,))
def keyboard_interactive(guest: Guest, env: Environment) -> Iterator[Result]:
    """With `KbdInteractiveAuthentication yes` (the compiled default; `ChallengeResponseAuthentication`
    is its old name) and `UsePAM yes`, sshd runs the PAM auth stack as a prompt dialogue. When that
    stack asks only for the Unix password, passwords are accepted even with
    `PasswordAuthentication no`. A stack with a one-time-password or FIDO module is fine.

    Remediation: Set `KbdInteractiveAuthentication no`, unless the sshd PAM stack asks for a second
    factor (pam_google_authenticator, pam_oath, pam_u2f …).
    """
    cfg = sshd_of(guest)
    if cfg is None:
        return
    use_pam = global_value(cfg, "usepam")
    modules = sshd_pam_modules(guest)
    mfa = modules is not None and any(m in _MFA_MODULES for m in modules)

    def bad(value: str) -> str | None:
        if not is_yes(value) or use_pam is None or not is_yes(use_pam.value):
            return None
        if mfa:
            return None
        if modules is None:
            return "with UsePAM yes, PAM prompts (no sshd PAM stack with a second factor was found)"
        return "with UsePAM yes, the sshd PAM stack asks only for a password: " + ", ".join(modules)

    kbd_on = any(is_yes(r.value) for r in reachable(cfg, "kbdinteractiveauthentication", None, guest))
    if kbd_on and use_pam is not None and is_yes(use_pam.value) and guest.pam is None:
        yield unknown("sshd KbdInteractiveAuthentication", "UsePAM is yes and the PAM configuration "
                      "could not be read", use_pam.evidence("usepam"))
        return
    yield from setting_results(guest, "kbdinteractiveauthentication", "sshd KbdInteractiveAuthentication",
                               bad, "keyboard-interactive login does not fall back to a password",
                               narrow=Severity.LOW)


# --- algorithms ------------------------------------------------------------------------------------

def _algorithms(value: str) -> tuple[str, list[str]]:
    """(modifier, names) of an algorithm list: "+aes128-cbc" → ("+", ["aes128-cbc"])."""
    value = value.strip()
    modifier = value[0] if value[:1] in ("+", "-", "^") else ""
    return modifier, split_list(value[1:] if modifier else value)


def _list_results(guest: Guest, keywords: tuple[str, ...], subject: str,
                  weak: Callable[[str], str | None], min_version: tuple[int, int],
                  explicit_only: Callable[[str], bool] = lambda _a: False) -> Iterator[Result]:
    """Judge algorithm lists: weak names in the effective list (``+``/``^`` add to the default; ``-``
    only removes) fail; an unset list is the compiled default, fine from ``min_version`` on.
    ``explicit_only`` names algorithms tolerated while the version's default list offers them —
    however the configured list came to include them — and flagged otherwise."""
    cfg = sshd_of(guest)
    if cfg is None:
        return
    for keyword in keywords:
        reach = global_value(cfg, keyword)
        name = keyword_name(keyword)
        subj = f"{subject} {name}" if len(keywords) > 1 else subject
        version = sshd_version(cfg)
        configured_at = cfg.origins.get(keyword)
        if lookup(cfg.settings, keyword) is None and not is_default(configured_at):
            yield unknown(subj, f"{name} is set at {configured_at} but the list it gives could not be "
                          "resolved (a pattern, or a change to a default list unknown for OpenSSH "
                          f"{cfg.version or '(unknown version)'})", ev(configured_at or guest.origin, name))
            continue
        if reach is None or reach.origin == DEFAULT:
            listed = lookup(cfg.settings, keyword)
            if listed is not None:  # the collector filled the version's default list
                found = [(a, w) for a in _algorithms(" ".join(listed))[1]
                         if (w := weak(a)) and not explicit_only(a)]
                if found and cfg.unread:  # an unread file could set the list
                    yield not_read(cfg.unread, subj, f"{name} is not set; the default of OpenSSH "
                                   f"{cfg.version} offers " + "; ".join(f"{a} ({w})" for a, w in found),
                                   ev(DEFAULT, name, listed))
                elif found:
                    yield fail(subj, f"the default {name} of OpenSSH {cfg.version} offers "
                               + "; ".join(f"{a} ({w})" for a, w in found), ev(DEFAULT, name, listed))
                else:
                    yield ok_unless(cfg.unread, subj, f"{name} is the compiled-in default of OpenSSH "
                                    f"{cfg.version}, which has no weak algorithm", ev(DEFAULT, name, listed))
            elif version is None:
                yield unknown(subj, f"{name} is not set and the OpenSSH version, which decides the "
                              "default list, is unknown", ev(guest.origin))
            elif version < min_version and cfg.unread:
                yield not_read(cfg.unread, subj, f"{name} is not set and the default list of OpenSSH "
                               f"{cfg.version} still offers legacy algorithms",
                               ev(DEFAULT, name, cfg.version))
            elif version < min_version:
                yield fail(subj, f"{name} is not set and the default list of OpenSSH {cfg.version} "
                           "still offers legacy algorithms", ev(DEFAULT, name, cfg.version))
            else:
                yield ok_unless(cfg.unread, subj, f"{name} is the compiled-in default of OpenSSH "
                                f"{cfg.version}, which has no weak algorithm", ev(DEFAULT, name, cfg.version))
            continue
        modifier, names = _algorithms(reach.value)
        if modifier == "-":
            yield ok_unless(cfg.unread, subj, f"{name} {reach.value} only removes algorithms from the "
                            f"default {reach.where}", reach.evidence(keyword))
            continue
        # The verdict depends on the list offered, not on how it was written: an algorithm the
        # version's own default list offers is tolerated (explicit_only) whether the list was left
        # unset, written out in full, or written as "+name" that resolves to the same list.
        default_list = set(compiled_defaults(cfg.version).get(keyword, ()))
        found = [(a, w) for a in names if (w := weak(a))
                 and not (explicit_only(a) and a in default_list)]
        if found:
            yield fail(subj, f"{name} {reach.where} offers " + "; ".join(f"{a} ({w})" for a, w in found),
                       reach.evidence(keyword))
        else:
            yield ok_unless(cfg.unread, subj, f"{name} {reach.where} offers no weak algorithm",
                            reach.evidence(keyword))


def _weak_cipher(a: str) -> str | None:
    a = a.lower()
    if a == "none":
        return "no encryption"
    if a.startswith("arcfour"):
        return "RC4, broken"
    if a.startswith("3des"):
        return "64-bit block, Sweet32"
    if a.startswith(("blowfish", "cast128")):
        return "64-bit block"
    if "-cbc" in a:
        return "CBC mode, plaintext recovery attacks"
    return None


@check("VMS-GST-005", title="SSH offers only strong ciphers", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "ssh"), references=(SSHD_DOC, CIS_DOC))
def ciphers(guest: Guest, env: Environment) -> Iterator[Result]:
    """Ciphers in the server's offer can be chosen by a client or a man in the middle: `none`,
    RC4 (`arcfour*`), 64-bit block ciphers (3DES, Blowfish, CAST) and CBC modes weaken the
    confidentiality of the session. OpenSSH has offered none of them by default since 6.7; they
    appear when configured. Escalated to high for `none`, RC4 and 3DES.

    Remediation: Remove the `Ciphers` line, or set `Ciphers chacha20-poly1305@openssh.com,
    aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr`.
    """
    for r in _list_results(guest, ("ciphers",), "sshd Ciphers", _weak_cipher, (6, 7)):
        if r.status.value == "FAIL" and re.search(r"\b(none|arcfour\S*|3des\S*) \(", r.message):
            r = r._replace(severity=Severity.HIGH)
        yield r


def _weak_mac(a: str) -> str | None:
    a = a.lower()
    if "md5" in a:
        return "MD5"
    if "ripemd160" in a:
        return "RIPEMD-160"
    if "-96" in a:
        return "truncated to 96 bits"
    if a.startswith("umac-64"):
        return "64-bit tag"
    return None


@check("VMS-GST-006", title="SSH offers only strong MACs", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "ssh"), references=(SSHD_DOC, CIS_DOC))
def macs(guest: Guest, env: Environment) -> Iterator[Result]:
    """Message authentication codes protect the session against tampering. MD5, RIPEMD-160,
    96-bit truncated and 64-bit UMAC tags are weak. `umac-64` is in OpenSSH's default list: it is
    tolerated while the version's default offers it, whether the list is left unset or written (a
    `MACs +hmac-sha1` that resolves to the default list gets the default's verdict).

    Remediation: Set `MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,
    umac-128-etm@openssh.com`.
    """
    yield from _list_results(guest, ("macs",), "sshd MACs", _weak_mac, (7, 4),
                             explicit_only=lambda a: a.lower().startswith("umac-64"))


def _weak_kex(a: str) -> str | None:
    a = a.lower()
    if a in ("diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1",
             "diffie-hellman-group-exchange-sha1", "rsa1024-sha1"):
        return "SHA-1" + (", 1024-bit group" if "group1-" in a or "1024" in a else "")
    if a.startswith("gss-") and "sha1" in a:
        return "SHA-1"
    return None


@check("VMS-GST-007", title="SSH offers only strong key exchange", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "ssh"), references=(SSHD_DOC, CIS_DOC))
def kex(guest: Guest, env: Environment) -> Iterator[Result]:
    """Key exchange with SHA-1 or the 1024-bit Oakley group 1 (Logjam-class precomputation) weakens
    every session key. OpenSSH has not offered them by default since 7.0.

    Remediation: Remove SHA-1 methods from `KexAlgorithms`; prefer `mlkem768x25519-sha256`,
    `sntrup761x25519-sha512@openssh.com`, `curve25519-sha256`.
    """
    yield from _list_results(guest, ("kexalgorithms",), "sshd KexAlgorithms", _weak_kex, (7, 0))


def _weak_sig(a: str) -> str | None:
    a = a.lower()
    if a.startswith("ssh-dss"):
        return "DSA, 80-bit security"
    if a.startswith("ssh-rsa"):
        return "RSA with SHA-1 signatures"
    return None


@check("VMS-GST-008", title="SSH accepts no SHA-1 or DSA signatures", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "ssh"), references=(SSHD_DOC,))
def signature_algorithms(guest: Guest, env: Environment) -> Iterator[Result]:
    """`ssh-dss` (DSA) and `ssh-rsa` (RSA with SHA-1) signatures are forgeable at chosen-prefix
    collision cost; OpenSSH disabled them by default in 7.0 and 8.8. Re-enabling them in
    `HostKeyAlgorithms`, `PubkeyAcceptedAlgorithms` or `CASignatureAlgorithms` brings them back.
    `ssh-rsa` in the default list of OpenSSH before 8.8 is not reported (only an explicit one).

    Remediation: Remove `ssh-dss` and `ssh-rsa` from those lists; RSA keys keep working with
    `rsa-sha2-256`/`rsa-sha2-512`.
    """
    yield from _list_results(guest, ("hostkeyalgorithms", "pubkeyacceptedalgorithms",
                                     "casignaturealgorithms"), "sshd", _weak_sig, (7, 0),
                             explicit_only=lambda a: a.lower().startswith("ssh-rsa"))


@check("VMS-GST-009", title="SSH protocol 1 is not enabled", severity=Severity.HIGH,
       tags=(Tag.ENCRYPTION, Tag.PATCHING, "ssh"), references=(SSHD_DOC,))
def protocol_1(guest: Guest, env: Environment) -> Iterator[Result]:
    """SSH protocol 1 is cryptographically broken (CRC-32 integrity, session hijacking). OpenSSH
    removed server support in 7.4; from then on a `Protocol` line is ignored, and is reported as
    dead configuration (info).

    Remediation: Remove the `Protocol` line (and upgrade OpenSSH if it is older than 7.4).
    """
    cfg = sshd_of(guest)
    if cfg is None:
        return
    values = lookup(cfg.settings, "protocol")
    if values is None or is_default(cfg.origins.get("protocol")):
        yield ok_unless(cfg.unread, "sshd Protocol", "no Protocol line: only protocol 2 is served",
                        ev(DEFAULT, "Protocol"))
        return
    r = global_value(cfg, "protocol")
    assert r is not None
    if "1" not in split_list(r.value):
        yield ok_unless(cfg.unread, "sshd Protocol", f"Protocol {r.value} {r.where}: only protocol 2",
                        r.evidence("protocol"))
        return
    version = sshd_version(cfg)
    if version is None:
        yield unknown("sshd Protocol", f"Protocol {r.value} {r.where}; whether this OpenSSH still "
                      "serves protocol 1 (before 7.4) is unknown, its version is unknown",
                      r.evidence("protocol"))
    elif version < (7, 4):
        yield fail("sshd Protocol", f"Protocol {r.value} {r.where}: OpenSSH {cfg.version} serves the "
                   "broken protocol 1", r.evidence("protocol"))
    else:
        yield fail("sshd Protocol", f"Protocol {r.value} {r.where} is ignored by OpenSSH {cfg.version} "
                   "(no protocol 1 since 7.4): dead configuration", r.evidence("protocol"),
                   severity=Severity.INFO)


# --- what an authenticated client may do -----------------------------------------------------------

@check("VMS-GST-010", title="SSH X11 forwarding is disabled", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "ssh"), references=(SSHD_DOC, CIS_DOC))
def x11_forwarding(guest: Guest, env: Environment) -> Iterator[Result]:
    """X11 forwarding exposes the client's display to the server side: a compromised server (or a
    user with root on it) can read keystrokes and screenshots on the client. Debian, Ubuntu and RHEL
    ship `X11Forwarding yes` in their default configuration.

    Remediation: Set `X11Forwarding no` (or `DisableForwarding yes`).
    """
    yield from _forwarding(guest, "x11forwarding", "sshd X11Forwarding", "X11 sessions are forwarded")


def _forwarding(guest: Guest, keyword: str, subject: str, what: str,
                bad_values: tuple[str, ...] = ("yes",), *, disable_covers: bool = True) -> Iterator[Result]:
    """``disable_covers``: DisableForwarding turns this kind of forwarding off (not tun devices)."""
    cfg = sshd_of(guest)
    if cfg is None:
        return
    # DisableForwarding yes settles it only where every connection gets it: a Match block that sets
    # it to no gives its connections the forwarding keywords back.
    reaches = reachable(cfg, "disableforwarding") if disable_covers else []
    disabled = next((r for r in reaches if r.universal and r.origin != DEFAULT), None)
    if disabled is not None and all(is_yes(r.value) for r in reaches):
        yield ok_unless(cfg.unread, subject, f"DisableForwarding yes {disabled.where}: no forwarding",
                        disabled.evidence("disableforwarding"))
        return
    yield from setting_results(guest, keyword, subject,
                               lambda v: what if v.strip().lower() in bad_values else None,
                               "not enabled", narrow=Severity.INFO)


@check("VMS-GST-011", title="SSH allows few authentication attempts per connection",
       severity=Severity.LOW, tags=(Tag.ACCESS_CONTROL, "ssh"), references=(SSHD_DOC, CIS_DOC))
def max_auth_tries(guest: Guest, env: Environment) -> Iterator[Result]:
    """Each connection may try `MaxAuthTries` credentials (default 6); fewer tries per connection
    slow down guessing and make failures show in the logs. The limit is the profile parameter
    `ssh_max_auth_tries` (default 4).

    Remediation: Set `MaxAuthTries 4` or lower.
    """
    limit = int(env.param("ssh_max_auth_tries", 4))

    def bad(v: str) -> str | None:
        try:
            n = int(v)
        except ValueError:
            return f"not a number (sshd refuses to start), limit {limit}"
        return f"more than {limit} tries per connection" if n > limit else None

    yield from setting_results(guest, "maxauthtries", "sshd MaxAuthTries", bad, f"at most {limit}",
                               narrow=Severity.INFO)


def _seconds(value: str) -> int | None:
    """sshd time format: 90, 2m, 1h30m."""
    total = 0
    parts = re.findall(r"(\d+)([smhdwSMHDW]?)", value.strip())
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        return None
    for number, unit in parts:
        total += int(number) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit.lower()]
    return total


@check("VMS-GST-012", title="SSH login grace time is short", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "ssh"), references=(SSHD_DOC, CIS_DOC))
def login_grace_time(guest: Guest, env: Environment) -> Iterator[Result]:
    """Unauthenticated connections hold a slot for `LoginGraceTime` (default 120 s); long or
    unlimited (0) grace times let a few clients exhaust `MaxStartups` (and 0 was the mitigation-less
    case of CVE-2024-6387). Limit: profile parameter `ssh_login_grace_time` (default 60 s);
    escalated to medium for 0.

    Remediation: Set `LoginGraceTime 60`.
    """
    limit = int(env.param("ssh_login_grace_time", 60))
    cfg = sshd_of(guest)
    if cfg is None:
        return
    r = global_value(cfg, "logingracetime")
    if r is None:
        yield unknown("sshd LoginGraceTime", "LoginGraceTime is unknown", ev(guest.origin))
        return
    seconds = _seconds(r.value)
    if seconds is None:
        yield unknown("sshd LoginGraceTime", f"LoginGraceTime {r.value} {r.where} is not a time",
                      r.evidence("logingracetime"))
    elif seconds == 0:
        yield fail("sshd LoginGraceTime", f"LoginGraceTime {r.value} {r.where}: unauthenticated "
                   "connections are never timed out", r.evidence("logingracetime"), severity=Severity.MEDIUM)
    elif seconds > limit and cfg.unread and r.origin == DEFAULT:  # an unread file could set it
        yield not_read(cfg.unread, "sshd LoginGraceTime", f"LoginGraceTime {r.value} {r.where}: {seconds} s, "
                       f"more than {limit} s", r.evidence("logingracetime"))
    elif seconds > limit:
        yield fail("sshd LoginGraceTime", f"LoginGraceTime {r.value} {r.where}: {seconds} s, more "
                   f"than {limit} s", r.evidence("logingracetime"))
    else:
        yield ok_unless(cfg.unread, "sshd LoginGraceTime", f"LoginGraceTime {r.value} {r.where}: {seconds} s",
                        r.evidence("logingracetime"))


@check("VMS-GST-013", title="SSH logins are limited to listed users or groups", severity=Severity.INFO,
       tags=(Tag.ACCESS_CONTROL, "ssh"), references=(SSHD_DOC, CIS_DOC))
def allow_list(guest: Guest, env: Environment) -> Iterator[Result]:
    """Without `AllowUsers`/`AllowGroups` (or `DenyUsers`/`DenyGroups`), every account with a login
    shell and a credential can log in over SSH, including ones created later for services.

    Remediation: Add `AllowGroups ssh-users` (and put administrators in that group).
    """
    cfg = sshd_of(guest)
    if cfg is None:
        return
    set_by = [(k, v) for k in ("allowusers", "allowgroups", "denyusers", "denygroups")
              if (v := lookup(cfg.settings, k)) is not None
              and not is_default(cfg.origins.get(k))]
    if set_by:
        k, v = set_by[0]
        yield ok_unless(cfg.unread, "sshd AllowUsers/AllowGroups", "SSH logins are restricted: " + "; ".join(
            f"{keyword_name(kw)} {' '.join(vals)}" for kw, vals in set_by),
            ev(cfg.origins[k], keyword_name(k), v))
    elif cfg.unread:  # "none is set" would be a claim about the unread files too
        yield not_read(cfg.unread, "sshd AllowUsers/AllowGroups", "none of AllowUsers, AllowGroups, "
                       "DenyUsers, DenyGroups is set", ev(cfg.files[0] if cfg.files else guest.origin,
                                                          "AllowUsers"))
    else:
        yield fail("sshd AllowUsers/AllowGroups", "none of AllowUsers, AllowGroups, DenyUsers, "
                   "DenyGroups is set: every account with a shell may log in over SSH",
                   ev(cfg.files[0] if cfg.files else guest.origin, "AllowUsers"))


@check("VMS-GST-014", title="SSH does not trust hosts (rhosts / host-based authentication)",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "ssh"), references=(SSHD_DOC, CIS_DOC))
def host_based(guest: Guest, env: Environment) -> Iterator[Result]:
    """Host-based authentication and `.rhosts`/`.shosts` files trust the client machine's name
    and host key instead of the user: whoever controls a trusted host logs in as anyone.

    Remediation: Keep `HostbasedAuthentication no` and `IgnoreRhosts yes` (the defaults).
    """
    yield from setting_results(guest, "hostbasedauthentication", "sshd HostbasedAuthentication",
                               lambda v: "logins are trusted by client host" if is_yes(v) else None,
                               "host-based authentication is off")
    yield from setting_results(guest, "ignorerhosts", "sshd IgnoreRhosts",
                               lambda v: None if is_yes(v) else ".rhosts/.shosts files are honoured",
                               ".rhosts and .shosts files are ignored")


@check("VMS-GST-015", title="SSH clients cannot set environment variables for the login",
       severity=Severity.MEDIUM, tags=(Tag.CONFIGURATION, "ssh"), references=(SSHD_DOC, CIS_DOC))
def permit_user_environment(guest: Guest, env: Environment) -> Iterator[Result]:
    """`PermitUserEnvironment yes` (or a pattern list) lets `~/.ssh/environment` and
    `environment=` key options set variables such as `LD_PRELOAD` for the session, which defeats
    `ForceCommand` and command-restricted keys.

    Remediation: Set `PermitUserEnvironment no` (the default).
    """
    yield from setting_results(guest, "permituserenvironment", "sshd PermitUserEnvironment",
                               lambda v: None if v.strip() == "no"
                               else "users can set LD_PRELOAD and other variables", "no user environment")


@check("VMS-GST-016", title="SSH TCP forwarding, gateway ports and tunnels are disabled",
       severity=Severity.LOW, tags=(Tag.CONFIGURATION, "ssh"), references=(SSHD_DOC, CIS_DOC))
def tcp_forwarding(guest: Guest, env: Environment) -> Iterator[Result]:
    """TCP forwarding turns any SSH account into a pivot into networks this system can reach;
    `GatewayPorts yes` (medium) opens forwarded ports to other hosts; `PermitTunnel` creates layer 2/3
    tunnels.

    Remediation: Set `DisableForwarding yes`, or `AllowTcpForwarding no`, `GatewayPorts no`,
    `PermitTunnel no`, where forwarding is not needed.
    """
    yield from _forwarding(guest, "allowtcpforwarding", "sshd AllowTcpForwarding",
                           "TCP ports are forwarded", ("yes", "all", "local", "remote"))
    for r in _forwarding(guest, "gatewayports", "sshd GatewayPorts",
                         "forwarded ports listen for other hosts", ("yes", "clientspecified")):
        yield r._replace(severity=Severity.MEDIUM) if r.status.value == "FAIL" and r.severity is None else r
    yield from _forwarding(guest, "permittunnel", "sshd PermitTunnel", "tun devices are forwarded",
                           ("yes", "point-to-point", "ethernet"), disable_covers=False)


@check("VMS-GST-017", title="SSH agent forwarding is disabled", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "ssh"), references=(SSHD_DOC,))
def agent_forwarding(guest: Guest, env: Environment) -> Iterator[Result]:
    """A forwarded agent lets root on this system (or an attacker who has it) use the connecting
    user's keys for as long as the session lasts, to log in elsewhere as that user.

    Remediation: Set `AllowAgentForwarding no`; use `ProxyJump` on the client instead.
    """
    yield from _forwarding(guest, "allowagentforwarding", "sshd AllowAgentForwarding",
                           "the client's agent is forwarded")


@check("VMS-GST-018", title="SSH uses PAM", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "ssh", "pam"), references=(SSHD_DOC, CIS_DOC))
def use_pam(guest: Guest, env: Environment) -> Iterator[Result]:
    """With `UsePAM no` (the compiled default; Debian and RHEL set `yes`) sshd skips PAM's account
    and session stacks: lockout, account expiry, access rules and MFA configured in PAM do not apply
    to SSH logins.

    Remediation: Set `UsePAM yes`.
    """
    yield from setting_results(guest, "usepam", "sshd UsePAM",
                               lambda v: None if is_yes(v) else "PAM lockout, expiry and MFA do not apply",
                               "PAM applies to SSH logins")


@check("VMS-GST-019", title="SSH logs authentication (LogLevel INFO or VERBOSE)", severity=Severity.LOW,
       tags=(Tag.AUDIT, "ssh"), references=(SSHD_DOC, CIS_DOC))
def log_level(guest: Guest, env: Environment) -> Iterator[Result]:
    """Below INFO (QUIET, FATAL, ERROR) sshd does not log logins and failures, leaving nothing to
    investigate; VERBOSE also logs the key fingerprint used.

    Remediation: Set `LogLevel VERBOSE` (or INFO).
    """
    yield from setting_results(guest, "loglevel", "sshd LogLevel",
                               lambda v: "logins are not logged" if v.strip().upper() in
                               ("QUIET", "FATAL", "ERROR") else None, "logins are logged",
                               narrow=Severity.INFO)


@check("VMS-GST-020", title="SSH ends idle sessions (ClientAliveInterval)", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "ssh"), references=(SSHD_DOC, CIS_DOC))
def client_alive(guest: Guest, env: Environment) -> Iterator[Result]:
    """`ClientAliveInterval 0` (the default) never checks that the client is still there: sessions
    left open on unattended terminals and dead connections stay logged in.

    Remediation: Set `ClientAliveInterval 300` and `ClientAliveCountMax 3`.
    """
    def bad(v: str) -> str | None:
        seconds = _seconds(v)
        return "idle or dead sessions are never ended" if seconds == 0 else None

    yield from setting_results(guest, "clientaliveinterval", "sshd ClientAliveInterval", bad,
                               "dead sessions are ended", narrow=Severity.INFO)


@check("VMS-GST-021", title="SSH shows a login banner", severity=Severity.INFO,
       tags=(Tag.CONFIGURATION, "ssh"), references=(SSHD_DOC,))
def banner(guest: Guest, env: Environment) -> Iterator[Result]:
    """Some policies require a legal notice before login. It does not stop attackers.

    Remediation: Set `Banner /etc/issue.net` with the notice your policy requires.
    """
    yield from setting_results(guest, "banner", "sshd Banner",
                               lambda v: "no banner is shown" if v.strip().lower() == "none" else None,
                               "a banner is shown")


@check("VMS-GST-022", title="SSH GSSAPI and Kerberos authentication are off unless used",
       severity=Severity.LOW, tags=(Tag.CONFIGURATION, "ssh"), references=(SSHD_DOC, CIS_DOC))
def gssapi(guest: Guest, env: Environment) -> Iterator[Result]:
    """GSSAPI and Kerberos authentication add pre-authentication code paths; RHEL enables GSSAPI in
    `50-redhat.conf`. Leave them on only on systems joined to a realm.

    Remediation: Set `GSSAPIAuthentication no` and `KerberosAuthentication no`.
    """
    for kw in ("gssapiauthentication", "kerberosauthentication"):
        yield from setting_results(guest, kw, f"sshd {keyword_name(kw)}",
                                   lambda v: "enabled" if is_yes(v) else None, "disabled")
