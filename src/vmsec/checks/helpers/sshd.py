"""The OpenSSH server as the checks judge it: whether the check applies, one result per value a
connection can get, and small account helpers shared by the SSH, PAM, key and account checks.

How values are resolved (defaults, aliases, ``Match`` blocks) is :mod:`vmsec.parsers.sshd_effective`.

A configuration with files that could not be read (``SshdConfig.unread``) is judged on what was read
for findings only: an unread file could set any keyword first or hold a Match block, so a good value,
or a bad one that is only the compiled-in default, is UNKNOWN naming the unread files
(:func:`complete`, :func:`setting_results`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from vmsec.checks.api import Result, Severity, ev, fail, need, ok, unknown
from vmsec.checks.helpers.unread import not_read, ok_unless, unless_unread
from vmsec.facts import Guest, SshdConfig, SshdMatch
from vmsec.parsers.sshd_effective import (
    DEFAULT,
    criteria_text,
    family_wide,
    keyword_name,
    lookup,
    may_apply,
    reachable,
)
from vmsec.parsers.sshd_pattern import match_pattern, match_pattern_list


def sshd_of(guest: Guest) -> SshdConfig | None:
    """The server configuration; None when no OpenSSH server is installed (the check does not apply).

    Stops the check with UNKNOWN when installation or configuration could not be told.
    """
    if guest.sshd_installed is False:
        return None
    if guest.sshd is None:
        if guest.sshd_installed is None:
            need(None, "whether an OpenSSH server is installed could not be told")
        need(None, "the OpenSSH server is installed but its configuration could not be read")
    return guest.sshd


def complete(cfg: SshdConfig, results: Iterable[Result]) -> Iterator[Result]:
    """``results`` of a check on ``cfg``, each PASS made UNKNOWN when a file of the configuration could
    not be read (it could set the keyword first, or hold a Match block that changes it)."""
    return unless_unread(results, cfg.unread)


def setting_results(guest: Guest, keyword: str, subject: str, bad: Callable[[str], str | None],
                    good: str, narrow: Severity | None = None,
                    user: str | None = None, credential: str = "any") -> Iterator[Result]:
    """One result per reachable value: FAIL with ``bad(value)``'s reason, else OK for the global
    value. ``narrow`` is the severity for a finding limited to some connections. A Match block's
    finding is rated by who can use it (:func:`match_users`): a block no account can reach is not a
    finding. ``credential``: "password" when the setting only matters to password logins.
    With files unread, a good value and a bad compiled-in default are UNKNOWN (see the module)."""
    cfg = sshd_of(guest)
    if cfg is None:
        return
    reaches = reachable(cfg, keyword, user, guest)
    if not any(r.universal for r in reaches):  # no global value, no catch-all Match block
        yield unknown(subject, f"the effective {keyword_name(keyword)} is unknown: it is not set and "
                      "the OpenSSH version (which decides its default) is unknown", ev(guest.origin))
    if user is not None:
        blocked = login_blocker(guest, cfg, user, credential)
        # An account that cannot log in anyway stays so; Allow/Deny lists could be changed by an unread file.
        if blocked is not None and (not cfg.unread or account_blocker(guest, user, credential) is not None):
            yield ok(subject, f"{user} cannot log in over SSH at all: {blocked}", ev(guest.origin, "", user))
            return
    for i, r in enumerate(reaches):
        reason = bad(r.value)
        if reason is not None and r.match is not None and not r.universal and user is None:
            # Rate a Match block by who can actually use it.
            users, why = match_users(guest, cfg, r.match, credential)
            if users is not None and not users:
                yield ok_unless(cfg.unread, subject + r.suffix, f"{keyword_name(keyword)} {r.value} "
                                f"{r.where}, but no account can use it: {why}", r.evidence(keyword))
                continue
            if users:
                shown = ", ".join(users[:6]) + (" …" if len(users) > 6 else "")
                reason = f"{reason} (accounts that can use it: {shown})"
        if reason is not None and cfg.unread and r.origin == DEFAULT:  # no file was seen to set it
            yield not_read(cfg.unread, subject + r.suffix, f"{keyword_name(keyword)} {r.value} {r.where}: "
                           f"{reason}", r.evidence(keyword))
        elif reason is not None:
            yield fail(subject + r.suffix, f"{keyword_name(keyword)} {r.value} {r.where}: {reason}",
                       r.evidence(keyword),
                       severity=None if r.universal or (r.match and family_wide(r.match)) else narrow)
        elif i == 0 and r.universal:  # what most connections get; narrower good values need no result
            yield ok_unless(cfg.unread, subject + r.suffix, f"{keyword_name(keyword)} {r.value} {r.where}: "
                            f"{good}", r.evidence(keyword))


def is_yes(value: str) -> bool:
    return value.strip().lower() == "yes"


def usable_password(guest: Guest, name: str) -> bool | None:
    """Does the account have a password one can log in with (not empty, not locked)?"""
    if guest.shadow is None:
        return None
    for entry in guest.shadow:
        if entry.name == name:
            return not entry.locked and not entry.empty and entry.hash_algorithm is not None
    return False


_NO_LOGIN_SHELLS = ("/nologin", "/false", "/sync", "/halt", "/shutdown")


def _patterns_match(patterns: str, subject: str) -> bool:
    """A Match criterion's pattern list (``*``, ``?``, ``!negation``), as sshd's match_pattern_list."""
    return match_pattern_list(subject, patterns.replace(" ", ",")) > 0


def _groups(guest: Guest, name: str) -> set[str]:
    account = guest.account(name)
    out = {g.name for g in guest.groups or () if name in g.members}
    if account is not None and account.gid is not None:
        out |= {g.name for g in guest.groups or () if g.gid == account.gid}
    return out


_ACCESS_LISTS = ("denyusers", "allowusers", "denygroups", "allowgroups")


def login_blocker(guest: Guest, cfg: SshdConfig, name: str, credential: str = "any") -> str | None:
    """Why ``name`` cannot log in over SSH (AllowUsers/AllowGroups/DenyUsers/DenyGroups, no login
    shell, a locked password where only passwords matter or sshd refuses locked accounts), or None
    when it can (or the facts do not say).

    The lists block only what they block on every connection: a Match block that may apply to
    ``name`` replaces them for its connections (servconf.c copy_set_server_options), so each such
    block is judged too, and a ``user@host`` entry denies from that host only."""
    if guest.accounts is not None and guest.account(name) is None:
        return f"there is no account {name}"
    contexts = [cfg.settings]
    for block in cfg.matches:
        lists = {k: v for k, v in block.settings.items() if k in _ACCESS_LISTS}
        if lists and may_apply(block, name, guest)[0]:
            contexts.append({**cfg.settings, **lists})
    why = None
    for settings in contexts:
        why = _lists_block(guest, settings, name)
        if why is None:
            break
    return why or account_blocker(guest, name, credential)


def _lists_block(guest: Guest, settings: Mapping[str, tuple[str, ...]], name: str) -> str | None:
    """Why sshd's allowed_user() refuses ``name`` on every connection under these lists, or None.
    Each entry is one pattern (match_user, ga_match): no comma lists, no negation."""
    for keyword, deny in (("denyusers", True), ("allowusers", False)):
        values = lookup(settings, keyword)
        if values:
            # a deny must hold on every connection; an allow lets in from any host it names
            hit = any(_user_entry(v, name, every_host=deny) for v in values)
            if hit == deny:
                return f"{keyword_name(keyword)} {' '.join(values)} {'denies' if deny else 'excludes'} {name}"
    for keyword, deny in (("denygroups", True), ("allowgroups", False)):
        values = lookup(settings, keyword)
        if values and guest.groups is not None:
            groups = _groups(guest, name)
            hit = any(match_pattern(g, v) for v in values for g in groups)
            if hit == deny:
                return f"{keyword_name(keyword)} {' '.join(values)} {'denies' if deny else 'excludes'} {name}"
    return None


def _user_entry(entry: str, name: str, *, every_host: bool) -> bool:
    """Does a DenyUsers/AllowUsers entry (``pattern`` or ``pattern@host``, split at the last ``@``)
    match ``name`` — on every connection (``every_host``) or on some?"""
    user, at, host = entry.rpartition("@") if "@" in entry else (entry, "", "")
    if not match_pattern(name, user):
        return False
    return not at or not every_host or host == "*"


def account_blocker(guest: Guest, name: str, credential: str = "any") -> str | None:
    """Why the account itself cannot log in over SSH, whatever sshd's configuration: none, no login
    shell, a locked or unset password where only passwords matter."""
    account = guest.account(name)
    if guest.accounts is not None and account is None:
        return f"there is no account {name}"
    if account is not None and account.shell and account.shell.endswith(_NO_LOGIN_SHELLS):
        return f"{name} has no login shell ({account.shell})"
    entry = next((e for e in guest.shadow or () if e.name == name), None)
    if entry is not None and credential == "password" and (entry.locked or entry.hash_algorithm is None) \
            and not entry.empty:
        return f"{name}'s password is locked or unset, so no password login is possible"
    return None


def match_users(guest: Guest, cfg: SshdConfig, match: SshdMatch,
                credential: str = "any") -> tuple[list[str] | None, str]:
    """The accounts that can log in through connections a Match block applies to, and — when none
    can — why. None when the accounts are unknown."""
    if guest.accounts is None:
        return None, "the accounts are unknown"
    users = [c[1] for c in match.criteria if c[0].lower() == "user"]
    groups = [c[1] for c in match.criteria if c[0].lower() == "group"]
    if groups and guest.groups is None:
        return None, "the groups are unknown"
    candidates = [a.name for a in guest.accounts
                  if all(_patterns_match(u, a.name) for u in users)
                  and all(any(_patterns_match(g, grp) for grp in _groups(guest, a.name)) for g in groups)]
    if not candidates:
        return [], f"no account matches `Match {criteria_text(match)}`"
    reasons: list[str] = []
    able: list[str] = []
    for name in candidates:
        why = login_blocker(guest, cfg, name, credential)
        if why is None:
            able.append(name)
        else:
            reasons.append(why)
    if able:
        return able, ""
    shown = "; ".join(reasons[:4]) + (" …" if len(reasons) > 4 else "")
    return [], shown
