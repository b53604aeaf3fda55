"""What an auth stack lets through, run as libpam runs it (Linux-PAM 1.5 pam_dispatch.c
``_pam_dispatch_aux``): each module's return picks an action from its control (``required`` is
``[success=ok new_authtok_reqd=ok ignore=ignore default=bad]`` …); ``ok`` and ``done`` make the
result positive unless it is already negative, ``done`` ends the stack, ``bad`` makes it negative,
``die`` also ends it, ``reset`` forgets, a number skips that many modules of the same level (a
substack counts as one). ``include`` runs the included lines at the caller's level — their ``done``
ends the whole stack and their jumps count the caller's lines — while ``substack`` runs them one
level down. The stack succeeds when the result is positive and the last deciding status a success.

The question asked is whether a login can succeed for someone without a credential (a backdoor),
or with the password but without the second factor. Modules are given the returns that someone
gets: pam_permit succeeds, pam_deny fails, a credential module fails without its credential, a
module whose answer depends on the user or the host (pam_succeed_if, pam_access …) may fail or be
ignored — a path that needs such a condition to *succeed* is a policy, not a bypass — and a module
vmsec does not know fails. Every combination is tried, up to :data:`MAX_COMBINATIONS`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from vmsec.facts import PamLine

__all__ = ["CREDENTIAL_MODULES", "MAX_COMBINATIONS", "succeeds"]

SUCCESS, FAILURE, IGNORE = "success", "auth_err", "ignore"
MAX_COMBINATIONS = 4096

_KEYWORDS = {
    "required": {"success": "ok", "new_authtok_reqd": "ok", "ignore": "ignore", "default": "bad"},
    "requisite": {"success": "ok", "new_authtok_reqd": "ok", "ignore": "ignore", "default": "die"},
    "sufficient": {"success": "done", "new_authtok_reqd": "done", "default": "ignore"},
    "optional": {"success": "ok", "new_authtok_reqd": "ok", "default": "ignore"},
}
_PAIR = re.compile(r"([A-Za-z_]+)\s*=\s*([A-Za-z_0-9]+)")
_ACTIONS = frozenset({"ignore", "bad", "die", "ok", "done", "reset"})

CREDENTIAL_MODULES = frozenset({
    "pam_unix.so", "pam_unix2.so", "pam_sss.so", "pam_ldap.so", "pam_krb5.so", "pam_winbind.so",
    "pam_pwdfile.so", "pam_userdb.so", "pam_radius_auth.so", "pam_tacplus.so", "pam_systemd_home.so"})
# Returns that depend on who logs in, from where or when.
_CONDITIONAL = frozenset({
    "pam_succeed_if.so", "pam_usertype.so", "pam_localuser.so", "pam_listfile.so", "pam_access.so",
    "pam_time.so", "pam_shells.so", "pam_securetty.so", "pam_wheel.so", "pam_rootok.so", "pam_group.so",
    "pam_nologin.so", "pam_sepermit.so", "pam_exec.so"})
# Modules that do not authenticate and answer the same to everyone.
_NEUTRAL = {"pam_env.so": IGNORE, "pam_faildelay.so": IGNORE, "pam_cap.so": IGNORE, "pam_motd.so": IGNORE,
            "pam_gnome_keyring.so": IGNORE, "pam_kwallet5.so": IGNORE, "pam_mount.so": IGNORE,
            "pam_ecryptfs.so": IGNORE, "pam_keyinit.so": IGNORE, "pam_loginuid.so": IGNORE,
            "pam_warn.so": IGNORE, "pam_echo.so": IGNORE, "pam_lastlog.so": IGNORE}


def _actions(control: str) -> dict[str, str] | None:
    """The control's action per return; None for include/substack markers."""
    if control in ("include", "substack"):
        return None
    if control in _KEYWORDS:
        return _KEYWORDS[control]
    table = {"default": "bad"}  # _pam_set_default_control(actions, _PAM_ACTION_BAD)
    if control.startswith("[") and control.endswith("]"):
        for value, action in _PAIR.findall(control[1:-1]):
            table[value.lower()] = action.lower() if action.lower() in _ACTIONS or action.isdigit() else "bad"
    return table


def _module(line: PamLine) -> str:
    return line.module.rsplit("/", 1)[-1]


def _returns(line: PamLine, password: bool, factor: bool, factors: frozenset[str]) -> tuple[str, ...]:
    module = _module(line)
    if module == "pam_permit.so":
        return (SUCCESS,)
    if module == "pam_deny.so":
        return (FAILURE,)
    if module in factors:  # with nullok, a user who has no secret set up passes without one
        return (SUCCESS,) if factor else ((SUCCESS, FAILURE) if "nullok" in line.args else (FAILURE,))
    if module in CREDENTIAL_MODULES:
        return (SUCCESS,) if password else (FAILURE,)
    if module == "pam_faillock.so":
        return (FAILURE,) if "authfail" in line.args else (SUCCESS,)
    if module in _NEUTRAL:
        return (_NEUTRAL[module],)
    if module in _CONDITIONAL:
        return (FAILURE, IGNORE)
    return (FAILURE,)  # a module vmsec does not know: it is not assumed to let anyone in


def _run(lines: Sequence[PamLine], returns: Sequence[str]) -> bool:
    """One run of the stack (modules only, markers removed) with these returns."""
    impression, status = "undef", FAILURE
    saved: dict[int, tuple[str, str]] = {}
    i, previous = 0, 0
    while i < len(lines):
        line, level = lines[i], lines[i].level
        if level > previous:
            saved[level] = (impression, status)
        previous = level
        actions = _actions(line.control) or {}
        returned = returns[i]
        action = actions.get(returned, actions.get("default", "bad"))
        if action == "reset":
            impression, status = saved.get(level, ("undef", FAILURE))
        elif action in ("ok", "done"):
            if impression == "undef" or (impression == "positive" and status == SUCCESS):
                impression, status = "positive", returned  # (an ignore too: not a cached chain)
            if impression != "negative" and action == "done":
                i = _end_of_level(lines, i, level)
                continue
        elif action in ("bad", "die"):
            if impression != "negative":
                impression, status = "negative", FAILURE
            if action == "die":
                i = _end_of_level(lines, i, level)
                continue
        elif action.isdigit():
            skip = int(action)
            j = i
            while skip and j + 1 < len(lines) and lines[j + 1].level >= level:
                j += 1
                while j + 1 < len(lines) and lines[j + 1].level > level:
                    j += 1
                skip -= 1
            if skip:  # a jump past the end: "bad jump in stack"
                impression, status = "negative", FAILURE
            i = j + 1
            continue
        i += 1
    return impression == "positive" and status == SUCCESS


def _end_of_level(lines: Sequence[PamLine], i: int, level: int) -> int:
    """The index after the rest of ``level`` (decision_made: skip while the next is at ≥ level)."""
    j = i + 1
    while j < len(lines) and lines[j].level >= level:
        j += 1
    return j


def succeeds(lines: Sequence[PamLine], *, password: bool, factor: bool,
             factors: frozenset[str] = frozenset()) -> bool | None:
    """Whether the auth stack can succeed for someone who has (or lacks) the password and the second
    factor (``factors``: the second-factor modules); None when there are too many combinations."""
    modules = [ln for ln in lines if ln.type == "auth" and _actions(ln.control) is not None]
    choices = [_returns(ln, password, factor, factors) for ln in modules]
    count = 1
    for options in choices:
        count *= len(options)
        if count > MAX_COMBINATIONS:
            return None
    return any(_run(modules, returns) for returns in itertools.product(*choices))
