"""Keys that open SSH logins: the public keys in each account's authorized_keys files.

Each key is one subject (``path:line``). Keys are judged only where an OpenSSH server is installed.
Host keys are not part of the facts yet and are not judged here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, need, ok, unknown
from vmsec.checks.guest.ssh import SSHD_DOC
from vmsec.checks.helpers.clock import scan_instant
from vmsec.checks.helpers.sshd import sshd_of
from vmsec.checks.helpers.unread import guest_unread, not_read, ok_unless
from vmsec.facts import AuthorizedKey, Guest, SshdConfig
from vmsec.parsers.sshd_effective import DEFAULT, reachable

KEYS_DOC = "https://man.openbsd.org/sshd#AUTHORIZED_KEYS_FILE_FORMAT"


def _keys(guest: Guest) -> tuple[AuthorizedKey, ...] | None:
    """The keys, None when SSH does not apply (no server); UNKNOWN when they could not be read."""
    if guest.sshd_installed is False:
        return None
    return need(guest.authorized_keys, "the accounts' authorized_keys files could not be read")


def _from_command(guest: Guest) -> Iterator[Result]:
    """UNKNOWN when sshd also takes keys from an AuthorizedKeysCommand: its output is not on disk,
    so the keys judged here are not all the keys that log in."""
    cfg = guest.sshd
    for r in reachable(cfg, "authorizedkeyscommand") if cfg is not None else ():
        if r.value and r.value.lower() != "none":
            yield unknown("AuthorizedKeysCommand", f"sshd also accepts the keys AuthorizedKeysCommand "
                          f"{r.value[:80]} prints {r.where}; vmsec does not run it, so those keys are not "
                          "judged", r.evidence("authorizedkeyscommand"))
            return


def _subject(key: AuthorizedKey) -> str:
    return f"{key.path}:{key.line}" if key.line is not None else key.path


def _where(key: AuthorizedKey) -> str:
    return _subject(key)


def _by_file(keys: tuple[AuthorizedKey, ...]) -> dict[str, list[AuthorizedKey]]:
    files: dict[str, list[AuthorizedKey]] = {}
    for key in keys:
        files.setdefault(key.path, []).append(key)
    return files


def _describe(key: AuthorizedKey) -> str:
    size = f" {key.bits}-bit" if key.bits else ""
    who = f" ({key.comment})" if key.comment else ""
    users = key.user if not key.also_for else \
        f"{', '.join(key.users[:3])}" + (f" and {len(key.users) - 3} more" if len(key.users) > 3 else "")
    return f"{key.key_type}{size} key for {users}{who}"


# The signature algorithms that let a key of each type log in (PubkeyAcceptedAlgorithms names): an RSA
# key signs with rsa-sha2-256/512 as well as the SHA-1 "ssh-rsa".
_ALGORITHMS: dict[str, tuple[str, ...]] = {name: (name,) for name in (
    "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")}
_ALGORITHMS["ssh-rsa"] = ("ssh-rsa", "rsa-sha2-256", "rsa-sha2-512")
_ALGORITHMS["rsa-sha2-256"] = _ALGORITHMS["rsa-sha2-512"] = _ALGORITHMS["ssh-rsa"]
# A local time of the guest's zone is at most this far from UTC (UTC-12 to UTC+14).
_ZONE_SPAN = dt.timedelta(hours=14)
_TIMESPEC = re.compile(r"(\d{8})(\d{4}(\d{2})?)?(z|utc)?", re.IGNORECASE)


def _expiry(key: AuthorizedKey) -> tuple[str, dt.datetime | None] | None:
    """The key's ``expiry-time`` (the first, as sshd takes it): its text and the latest UTC instant
    it can mean (sshd reads a time without Z in its own zone, which vmsec does not know); None for the
    instant when sshd cannot parse it (it then refuses the line: "invalid expires time")."""
    option = next((o for o in key.options if o.lower().startswith("expiry-time=")), None)
    if option is None:
        return None
    text = _option_value(option)
    m = _TIMESPEC.fullmatch(text)
    if m is None:
        return text, None
    digits = m.group(1) + (m.group(2) or "0000") + ("" if m.group(3) else "00")
    try:
        when = dt.datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return text, None
    return text, when if m.group(4) else when + _ZONE_SPAN


def refusal(key: AuthorizedKey, user: str, cfg: SshdConfig | None, guest: Guest,
            now: dt.datetime) -> str | None:
    """Why sshd would refuse this key for a login as ``user`` whatever the connection, or None: an
    ``expiry-time`` that has passed (in any time zone), ``principals=`` without ``cert-authority``,
    a key type that PubkeyAcceptedAlgorithms leaves out (DSA since OpenSSH 7.0), or
    PubkeyAuthentication off."""
    options = [o.lower() for o in key.options]
    if any(o.startswith("principals=") for o in options) and "cert-authority" not in options:
        # auth_authorise_keyopts(): the principals list only means something for a CA's certificates
        return "it names principals= but is no cert-authority: sshd denies it (principals on non-CA key)"
    expiry = _expiry(key)
    if expiry is not None:
        text, latest = expiry
        if latest is None:
            return f"sshd cannot read its expiry-time {text[:40]!r} and ignores the line"
        if latest < now:
            return f"it expired (expiry-time {text}): sshd refuses it"
    if cfg is None:
        return None
    if _all_reachable(cfg, "pubkeyauthentication", user, guest, lambda v: v.lower() == "no"):
        return "PubkeyAuthentication is off: sshd takes no key"
    names = _ALGORITHMS.get((key.key_type or "").lower())
    if names is not None and _all_reachable(cfg, "pubkeyacceptedalgorithms", user, guest,
                                            lambda v: not set(names) & set(v.replace(",", " ").split())):
        return f"sshd does not accept {key.key_type} keys (PubkeyAcceptedAlgorithms)"
    return None


def _all_reachable(cfg: SshdConfig, keyword: str, user: str, guest: Guest,
                   refuses: Callable[[str], bool]) -> bool:
    """Whether every value of ``keyword`` a login as ``user`` can get refuses (none unread or unknown)."""
    values = reachable(cfg, keyword, user, guest)
    return bool(values) and not cfg.unread and all(r.value is not None and refuses(r.value) for r in values)


@check("VMS-GST-030", title="No DSA keys authorize SSH logins", severity=Severity.HIGH,
       tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "ssh", "keys"), references=(KEYS_DOC,))
def dsa_keys(guest: Guest, env: Environment) -> Iterator[Result]:
    """DSA (`ssh-dss`) keys are limited to 1024 bits and 80-bit security, and a DSA signature made
    with a weak random number leaks the private key. OpenSSH disabled DSA in 7.0 and removed it in
    10.0; a DSA key in authorized_keys is a credential that should have been replaced long ago.

    Remediation: Replace the key with an Ed25519 (or RSA ≥ 3072-bit) key and remove the `ssh-dss`
    line.
    """
    keys = _keys(guest)
    if keys is None:
        return
    yield from _from_command(guest)
    for path, file_keys in _by_file(keys).items():
        bad = [k for k in file_keys if (k.key_type or "").startswith("ssh-dss")]
        for k in bad:
            yield fail(_subject(k), f"{_describe(k)} in {_where(k)}",
                       ev(k.path, f"line {k.line}", k.key_type))
        if not bad:
            yield ok(path, f"no DSA key among the {len(file_keys)} key(s) in {path}", ev(path))


@check("VMS-GST-031", title="RSA keys authorizing SSH logins have at least 2048 bits",
       severity=Severity.HIGH, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "ssh", "keys"),
       references=(KEYS_DOC, "https://www.keylength.com/en/4/"))
def rsa_key_size(guest: Guest, env: Environment) -> Iterator[Result]:
    """RSA keys shorter than 2048 bits are within reach of factoring (1024-bit: nation-state today);
    NIST recommends 3072 bits for use beyond 2030. The minimum is the profile parameter
    `ssh_rsa_min_bits` (default 2048); keys below 3072 bits are named in the passing message.

    Remediation: Replace short RSA keys with Ed25519 or RSA 3072/4096-bit keys.
    """
    minimum = int(env.param("ssh_rsa_min_bits", 2048))
    keys = _keys(guest)
    if keys is None:
        return
    yield from _from_command(guest)
    for k in keys:
        if not (k.key_type or "").startswith(("ssh-rsa", "rsa-sha2")):
            continue
        where = ev(k.path, f"line {k.line}", f"{k.key_type} {k.bits} bits")
        if k.bits is None:
            yield fail(_subject(k), f"RSA key for {k.user} in {_where(k)} could not be decoded, so its "
                       "size is unknown", where, severity=Severity.INFO)
        elif k.bits < minimum:
            yield fail(_subject(k), f"{_describe(k)} in {_where(k)}: fewer than {minimum} bits", where)
        elif k.bits < 3072:
            yield ok(_subject(k), f"{_describe(k)} in {_where(k)}: at least {minimum} bits "
                     "(3072 recommended)", where)
        else:
            yield ok(_subject(k), f"{_describe(k)} in {_where(k)}", where)


@check("VMS-GST-032", title="No SSH keys log in as root while root login is allowed",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "ssh", "keys"), references=(SSHD_DOC,))
def root_keys(guest: Guest, env: Environment) -> Iterator[Result]:
    """A key in root's authorized_keys gives unattributable root access: the logs show only "root".
    With `PermitRootLogin prohibit-password` (the default) such keys work. `forced-commands-only`
    accepts only keys restricted by `command=`. A key sshd refuses passes: one whose `expiry-time`
    has passed in every time zone, or whose type PubkeyAcceptedAlgorithms leaves out (DSA since
    OpenSSH 7.0; VMS-GST-030 still asks for its removal).

    Remediation: Give administrators their own accounts and keys and use sudo; set
    `PermitRootLogin no`, or restrict automation keys with `command="…",restrict`.
    """
    keys = _keys(guest)
    cfg = sshd_of(guest)
    if keys is None or cfg is None:
        return
    yield from _from_command(guest)
    values = [r for r in reachable(cfg, "permitrootlogin", "root", guest) if r.value is not None]
    now = scan_instant(env)
    for k in keys:
        if "root" not in k.users or k.key_type is None:
            continue
        if (refused := refusal(k, "root", cfg, guest, now)) is not None:
            yield ok(_subject(k), f"{_describe(k)} in {_where(k)}, but {refused}",
                     ev(k.path, f"line {k.line}", k.key_type))
            continue
        forced = forced_command(k)
        allowed = [r for r in values
                   if r.value != "no" and not (r.value == "forced-commands-only" and forced)]
        where = ev(k.path, f"line {k.line}", k.key_type)
        if forced:
            yield ok(_subject(k), f"{_describe(k)} in {_where(k)} is limited to a forced command "
                     f"({forced[:80]})", where)
        elif not values:
            yield fail(_subject(k), f"{_describe(k)} in {_where(k)}; whether root may log in is unknown "
                       "(PermitRootLogin unset and OpenSSH version unknown)", where, severity=Severity.LOW)
        elif allowed and cfg.unread and allowed[0].origin == DEFAULT:  # an unread file could set it
            r = allowed[0]
            yield not_read(cfg.unread, _subject(k), f"{_describe(k)} in {_where(k)} and PermitRootLogin "
                           f"{r.value} {r.where}", where, r.evidence("permitrootlogin"))
        elif allowed:
            r = allowed[0]
            yield fail(_subject(k), f"{_describe(k)} in {_where(k)} and PermitRootLogin {r.value} {r.where}",
                       where, r.evidence("permitrootlogin"))
        else:
            yield ok_unless(cfg.unread, _subject(k), f"{_describe(k)} in {_where(k)}, but root cannot log "
                            "in over SSH (PermitRootLogin no)", where)


# A forced command that runs whatever the client asked for restricts nothing.
_PASS_THROUGH = re.compile(r"(?:(?:exec|eval)\s+|(?:\S*/)?(?:ba|da|k|z)?sh\s+-c\s+)?"
                           r"\$\{?SSH_ORIGINAL_COMMAND\}?")


def _option_value(option: str) -> str:
    value = option.partition("=")[2]
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def forced_command(key: AuthorizedKey) -> str | None:
    """The key's forced command (``command=``, the first as sshd takes it), None when it has none or
    when the command runs the client's own (``$SSH_ORIGINAL_COMMAND``, ``sh -c "$SSH_…"``)."""
    option = next((o for o in key.options if o.lower().startswith("command=")), None)
    if option is None:
        return None
    plain = " ".join(_option_value(option).replace('\\"', "").replace('"', "").replace("'", "").split())
    return None if _PASS_THROUGH.fullmatch(plain) else option


def _any_source(option: str) -> bool:
    """Whether a ``from=`` pattern list admits every address: an entry that is only wildcards (``*``,
    ``?*``) or a /0 network; negated entries take out single addresses, not the rest of the world."""
    for entry in _option_value(option).split(","):
        entry = entry.strip()
        if entry.startswith("!"):
            continue
        if entry and set(entry) <= {"*", "?"} and "*" in entry:
            return True
        if entry.endswith("/0"):
            return True
    return False


@check("VMS-GST-033", title="SSH keys are restricted by source address or command",
       severity=Severity.INFO, tags=(Tag.ACCESS_CONTROL, "ssh", "keys"), references=(KEYS_DOC,))
def unrestricted_keys(guest: Guest, env: Environment) -> Iterator[Result]:
    """A stolen private key works from anywhere. `from="10.0.0.0/8"` limits where a key may be used;
    `command=` limits what it may do — worthwhile for automation and root keys. `restrict`,
    `permitopen=` and `permitlisten=` limit forwarding only: the key still runs any command from any
    address, as does a forced command that runs `$SSH_ORIGINAL_COMMAND`, and a `from=` list with `*`.
    A key sshd refuses (expired, or of a type it does not accept) passes.

    Remediation: Prefix keys with `from="<admin network>"` and, for automation, `restrict,command="…"`.
    """
    keys = _keys(guest)
    if keys is None:
        return
    yield from _from_command(guest)
    cfg, now = sshd_of(guest), scan_instant(env)
    for k in keys:
        if k.key_type is None:
            continue
        where = ev(k.path, f"line {k.line}", ",".join(k.options) or "(no options)")
        refused = [refusal(k, user, cfg, guest, now) for user in k.users]
        if all(refused):
            yield ok(_subject(k), f"{_describe(k)} in {_where(k)}, but {refused[0]}", where)
            continue
        sources = [o for o in k.options if o.lower().startswith("from=")]
        command = forced_command(k)
        opts = [o for o in sources if not _any_source(o)] + ([command] if command else [])
        if sources and not opts:
            yield fail(_subject(k), f"{_describe(k)} in {_where(k)} has {sources[0][:80]}: any source",
                       where)
        elif opts:
            yield ok(_subject(k), f"{_describe(k)} in {_where(k)} is restricted: {', '.join(opts)}", where)
        else:
            yield fail(_subject(k), f"{_describe(k)} in {_where(k)} works from any address, for any "
                       "command", where)


@check("VMS-GST-034", title="No keys are kept in the legacy authorized_keys2 file",
       severity=Severity.LOW, tags=(Tag.ACCESS_CONTROL, "ssh", "keys"), references=(SSHD_DOC,))
def authorized_keys2(guest: Guest, env: Environment) -> Iterator[Result]:
    """`~/.ssh/authorized_keys2` has been deprecated since OpenSSH 3.0 but is still read by the
    default `AuthorizedKeysFile`; keys hidden there are easily missed in reviews (and are a known
    persistence trick).

    Remediation: Move wanted keys to `authorized_keys`, delete `authorized_keys2`, and set
    `AuthorizedKeysFile .ssh/authorized_keys`.
    """
    keys = _keys(guest)
    if keys is None:
        return
    files = _by_file(keys)
    legacy = {p: ks for p, ks in files.items() if p.endswith("/authorized_keys2")}
    for path, ks in legacy.items():
        yield fail(path, f"{len(ks)} key(s) in {path}: " + "; ".join(_describe(k) for k in ks[:5]),
                   ev(path, "", len(ks)))
    if not legacy and files:
        yield ok_unless(guest_unread(guest, "authorized_keys"), "authorized_keys2",
                        f"no keys in authorized_keys2 files ({len(files)} key file(s) read)",
                        ev(next(iter(files))))


@check("VMS-GST-035", title="Every authorized_keys line is a valid key", severity=Severity.INFO,
       tags=(Tag.CONFIGURATION, "ssh", "keys"), references=(KEYS_DOC,))
def garbled_keys(guest: Guest, env: Environment) -> Iterator[Result]:
    """A line that cannot be decoded as a public key is ignored by sshd, but it may be a broken key
    someone relies on, or a sign of tampering; either way it deserves a look.

    Remediation: Fix or delete the line.
    """
    keys = _keys(guest)
    if keys is None:
        return
    for path, file_keys in _by_file(keys).items():
        bad = [k for k in file_keys if k.key_type is None]
        for k in bad:
            yield fail(_subject(k), f"line {k.line} of {k.path} is not a public key sshd can use",
                       ev(k.path, f"line {k.line}"))
        if not bad:
            yield ok(path, f"all {len(file_keys)} line(s) of {path} are public keys", ev(path))
