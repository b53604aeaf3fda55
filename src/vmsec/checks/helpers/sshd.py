"""The OpenSSH server as the checks judge it: whether the check applies, one result per value a
connection can get, and small account helpers shared by the SSH, PAM, key and account checks.

How values are resolved (defaults, aliases, ``Match`` blocks) is :mod:`vmsec.parsers.sshd_effective`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from vmsec.checks.api import Result, Severity, ev, fail, need, ok, unknown
from vmsec.facts import Guest, SshdConfig
from vmsec.parsers.sshd_effective import keyword_name, reachable


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


def setting_results(guest: Guest, keyword: str, subject: str, bad: Callable[[str], str | None],
                    good: str, narrow: Severity | None = None,
                    user: str | None = None) -> Iterator[Result]:
    """One result per reachable value: FAIL with ``bad(value)``'s reason, else OK for the global
    value. ``narrow`` is the severity for a finding limited to some connections."""
    cfg = sshd_of(guest)
    if cfg is None:
        return
    reaches = reachable(cfg, keyword, user, guest)
    if not any(r.universal for r in reaches):  # no global value, no catch-all Match block
        yield unknown(subject, f"the effective {keyword_name(keyword)} is unknown: it is not set and "
                      "the OpenSSH version (which decides its default) is unknown", ev(guest.origin))
    for i, r in enumerate(reaches):
        reason = bad(r.value)
        if reason is not None:
            yield fail(subject + r.suffix, f"{keyword_name(keyword)} {r.value} {r.where}: {reason}",
                       r.evidence(keyword), severity=None if r.universal else narrow)
        elif i == 0 and r.universal:  # what most connections get; narrower good values need no result
            yield ok(subject + r.suffix, f"{keyword_name(keyword)} {r.value} {r.where}: {good}",
                     r.evidence(keyword))


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
