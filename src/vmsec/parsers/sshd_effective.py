"""sshd's effective configuration per connection: which value of a keyword a connection gets, given
the global settings, the compiled-in defaults of the installed OpenSSH and the ``Match`` blocks
(evaluated in order; the first block that sets a keyword wins for the connections it matches).

Pure functions over :class:`~vmsec.facts.SshdConfig` (and the guest's accounts and groups for
``Match User/Group``), beside the parser that builds those facts. The checks in
``vmsec.checks.guest`` judge the values this module says connections get.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from msgspec import Struct

from vmsec.facts import Guest, SshdConfig, SshdMatch
from vmsec.findings import Evidence
from vmsec.parsers.sshd_pattern import match_pattern_list

# Keywords as written in sshd_config, for messages (the facts keep them lower-case).
_NAMES = {k.lower(): k for k in (
    "PermitRootLogin", "PasswordAuthentication", "PermitEmptyPasswords", "KbdInteractiveAuthentication",
    "ChallengeResponseAuthentication", "UsePAM", "Ciphers", "MACs", "KexAlgorithms",
    "HostKeyAlgorithms", "PubkeyAcceptedAlgorithms", "PubkeyAcceptedKeyTypes", "CASignatureAlgorithms",
    "Protocol", "X11Forwarding", "MaxAuthTries", "LoginGraceTime", "LogLevel", "PermitUserEnvironment",
    "HostbasedAuthentication", "IgnoreRhosts", "AllowUsers", "AllowGroups", "DenyUsers", "DenyGroups",
    "ClientAliveInterval", "ClientAliveCountMax", "Banner", "AllowTcpForwarding", "GatewayPorts",
    "PermitTunnel", "AllowAgentForwarding", "DisableForwarding", "GSSAPIAuthentication",
    "KerberosAuthentication", "AuthenticationMethods", "AuthorizedKeysFile", "MaxStartups",
    "MaxSessions", "StrictModes",
)}

# Aliases sshd accepts for a keyword; the facts may keep either spelling.
_ALIASES = {
    "kbdinteractiveauthentication": ("challengeresponseauthentication",),
    "pubkeyacceptedalgorithms": ("pubkeyacceptedkeytypes",),
}

# Compiled-in defaults that have not changed in any OpenSSH release still in use (≥ 7.4), used when
# the collector could not fill a keyword. Version-dependent ones are handled by `_default`.
_STABLE_DEFAULTS = {
    "passwordauthentication": "yes", "permitemptypasswords": "no", "kbdinteractiveauthentication": "yes",
    "usepam": "no", "x11forwarding": "no", "maxauthtries": "6", "logingracetime": "120",
    "ignorerhosts": "yes", "hostbasedauthentication": "no", "allowtcpforwarding": "yes",
    "allowagentforwarding": "yes", "gatewayports": "no", "permittunnel": "no", "disableforwarding": "no",
    "permituserenvironment": "no", "loglevel": "INFO", "clientaliveinterval": "0",
    "clientalivecountmax": "3", "banner": "none", "gssapiauthentication": "no",
    "kerberosauthentication": "no", "authenticationmethods": "any", "strictmodes": "yes",
    "authorizedkeysfile": ".ssh/authorized_keys .ssh/authorized_keys2",
}

DEFAULT = "compiled-in default"


def is_default(origin: str | None) -> bool:
    """Does an origin say the value is a compiled-in default (the collector writes "default (…)")?"""
    return not origin or origin.startswith(("default", DEFAULT))


def keyword_name(keyword: str) -> str:
    return _NAMES.get(keyword.lower(), keyword)


def sshd_version(cfg: SshdConfig) -> tuple[int, int] | None:
    """(major, minor) of the OpenSSH version, or None when unknown."""
    m = re.match(r"\s*(?:\d+:)?(\d+)\.(\d+)", cfg.version or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


class Reach(Struct, frozen=True):
    """A value of a keyword that some connections get."""

    value: str
    origin: str  # "path:line" or DEFAULT
    match: SshdMatch | None = None  # None: the global value
    universal: bool = True  # every connection (global, or a Match block matching everything)
    user: str | None = None  # the user whose connections were considered, if any

    @property
    def where(self) -> str:
        if self.match is None:
            return f"globally ({self.origin})"
        block = f"`Match {criteria_text(self.match)}` at {self.match.origin or self.origin}"
        if self.universal:
            return f"for every connection{' as ' + self.user if self.user else ''}, by {block}"
        return f"for connections matching {block}"

    @property
    def suffix(self) -> str:
        """Subject suffix: "" for the global value, " [Match …]" for a Match block."""
        return "" if self.match is None else f" [Match {criteria_text(self.match)}]"

    def evidence(self, keyword: str) -> Evidence:
        return Evidence(self.match.origin if self.match and self.match.origin else self.origin,
                        keyword_name(keyword), self.value)


def criteria_text(m: SshdMatch) -> str:
    return " ".join(f"{k.capitalize()} {v}".rstrip() if k != "all" else "All" for k, v in m.criteria)


def lookup(settings: Mapping[str, tuple[str, ...]], keyword: str) -> tuple[str, ...] | None:
    """The values of ``keyword`` (or an alias sshd accepts for it) in ``settings``; None when unset."""
    for kw in (keyword, *_ALIASES.get(keyword, ())):
        values = settings.get(kw)
        if values:
            return tuple(values)
    return None


def _default(cfg: SshdConfig, keyword: str) -> str | None:
    if keyword == "permitrootlogin":
        version = sshd_version(cfg)
        if version is None:
            return None
        return "prohibit-password" if version >= (7, 0) else "yes"
    return _STABLE_DEFAULTS.get(keyword)


def global_value(cfg: SshdConfig, keyword: str) -> Reach | None:
    """The global effective value, or None when neither the files nor a known default give one."""
    keyword = keyword.lower()
    values = lookup(cfg.settings, keyword)
    if values is not None:
        origin = next((cfg.origins[k] for k in (keyword, *_ALIASES.get(keyword, ())) if k in cfg.origins),
                      "")
        return Reach(" ".join(values), DEFAULT if is_default(origin) else origin)
    default = _default(cfg, keyword)
    return Reach(default, DEFAULT) if default is not None else None


def split_list(value: str) -> list[str]:
    """A comma- or space-separated sshd list."""
    return [p for p in re.split(r"[,\s]+", value) if p]


def _pattern_match(patterns: str, subject: str) -> bool:
    """OpenSSH pattern-list semantics: a matching negated pattern refuses, else any positive match."""
    return match_pattern_list(subject, patterns) > 0


def _universal_criterion(key: str, value: str, families: frozenset[int]) -> bool:
    """Does this criterion match every connection?"""
    if key == "all":
        return True
    pats = split_list(value)
    if not pats or any(p.startswith("!") for p in pats):
        return False
    if key in ("address", "localaddress"):
        if "*" in pats:
            return True
        # 0.0.0.0/0 is every IPv4 connection only: sshd listens on IPv6 too unless AddressFamily inet.
        covered = set()
        for p in pats:
            try:
                net = ipaddress.ip_network(p, strict=False)
            except ValueError:
                continue
            if net.prefixlen == 0:
                covered.add(net.version)
        return covered >= families
    if key in ("user", "host", "localport", "rdomain"):
        return "*" in pats
    return False  # group: membership varies by user


def family_wide(m: SshdMatch) -> bool:
    """Whether the block applies to every connection of at least one IP version (``Match Address
    0.0.0.0/0``): not every connection, so the global value still reaches the others, but no narrow
    exception either — a finding on it is rated like a global one."""
    for key, value in m.criteria:
        key = key.lower()
        if key in ("address", "localaddress"):
            if not _universal_criterion(key, value, frozenset({4})) and \
                    not _universal_criterion(key, value, frozenset({6})):
                return False
        elif not _universal_criterion(key, value, frozenset({4, 6})):
            return False
    return True


def address_families(cfg: SshdConfig | None) -> frozenset[int]:
    """The IP versions sshd accepts connections on (AddressFamily; ``any`` by default)."""
    family = (cfg.value("addressfamily") or "any").lower() if cfg is not None else "any"
    return {"inet": frozenset({4}), "inet6": frozenset({6})}.get(family, frozenset({4, 6}))


def _groups_of(guest: Guest | None, user: str) -> set[str] | None:
    if guest is None or guest.groups is None:
        return None
    account = guest.account(user)
    names = {g.name for g in guest.groups if user in g.members}
    if account is not None and account.gid is not None:
        names |= {g.name for g in guest.groups if g.gid == account.gid}
    return names


def may_apply(m: SshdMatch, user: str | None, guest: Guest | None,
              families: frozenset[int] = frozenset({4, 6})) -> tuple[bool, bool]:
    """(may apply, applies to every connection [of that user]); ``families``: the IP versions sshd
    listens on (:func:`address_families`)."""
    universal = True
    for key, value in m.criteria:
        key = key.lower()
        if user is not None and key == "user":
            if not _pattern_match(value, user):
                return False, False
            continue
        if user is not None and key == "group":
            groups = _groups_of(guest, user)
            if groups is None:
                universal = False
                continue
            if not any(_pattern_match(value, g) for g in groups):
                return False, False
            continue
        if not _universal_criterion(key, value, families):
            universal = False
    return True, universal


def reachable(cfg: SshdConfig, keyword: str, user: str | None = None,
              guest: Guest | None = None) -> list[Reach]:
    """Every value of ``keyword`` some connection gets: the global value (unless a catch-all Match
    block replaces it), then each Match block that sets it and is not shadowed by an earlier
    catch-all block (the first matching block wins per keyword). With ``user``, only connections as
    that user are considered (its User/Group criteria are evaluated)."""
    keyword = keyword.lower()
    found: list[Reach] = []
    shadowed = False
    for m in cfg.matches:
        values = lookup(m.settings, keyword)
        if values is None:
            continue
        applies, universal = may_apply(m, user, guest, address_families(cfg))
        if not applies:
            continue
        found.append(Reach(" ".join(values), m.origin or "", m, universal, user))
        if universal:
            shadowed = True
            break
    g = global_value(cfg, keyword)
    if not shadowed and g is not None:
        found.insert(0, g)
    return found
