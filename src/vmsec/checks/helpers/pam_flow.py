"""What an auth stack lets through, run as libpam runs it (Linux-PAM 1.5 pam_dispatch.c
``_pam_dispatch_aux``): each module's return picks an action from its control (``required`` is
``[success=ok new_authtok_reqd=ok ignore=ignore default=bad]`` …); ``ok`` and ``done`` make the
result positive unless it is already negative, ``done`` ends the stack, ``bad`` makes it negative,
``die`` also ends it, ``reset`` forgets, a number skips that many modules of the same level (a
substack counts as one). ``include`` runs the included lines at the caller's level — their ``done``
ends the whole stack and their jumps count the caller's lines — while ``substack`` runs them one
level down, behind a handler of its own at the caller's level that dispatch skips but that a jump
counts and that separates two substacks (a ``done`` or ``reset`` in one stays in it). Controls are
parsed as ``_pam_parse_control`` parses them, brackets or not: case-sensitive prefixes, no zero
jump, the first ``default`` wins, and any error makes every return ``bad``. The stack succeeds when
the result is positive and the last deciding status a success. Checked against libpam 1.5.2 itself
(tests/checks/test_pam_flow_as_libpam.py).

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
from functools import lru_cache

from vmsec.facts import PamLine

__all__ = ["CREDENTIAL_MODULES", "MAX_COMBINATIONS", "action_on", "succeeds"]

SUCCESS, FAILURE, IGNORE = "success", "auth_err", "ignore"
MAX_COMBINATIONS = 4096

_KEYWORDS = {
    "required": {"success": "ok", "new_authtok_reqd": "ok", "ignore": "ignore", "default": "bad"},
    "requisite": {"success": "ok", "new_authtok_reqd": "ok", "ignore": "ignore", "default": "die"},
    "sufficient": {"success": "done", "new_authtok_reqd": "done", "default": "ignore"},
    "optional": {"success": "ok", "new_authtok_reqd": "ok", "default": "ignore"},
}

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


_RETURN_NAMES = (  # pam_tokens.h _pam_token_returns, in order (strncmp: a prefix match, first wins)
    "success", "open_err", "symbol_err", "service_err", "system_err", "buf_err", "perm_denied", "auth_err",
    "cred_insufficient", "authinfo_unavail", "user_unknown", "maxtries", "new_authtok_reqd", "acct_expired",
    "session_err", "cred_unavail", "cred_expired", "cred_err", "no_module_data", "conv_err", "authtok_err",
    "authtok_recover_err", "authtok_lock_busy", "authtok_disable_aging", "try_again", "ignore", "abort",
    "authtok_expired", "module_unknown", "bad_item", "conv_again", "incomplete")
_ACTION_NAMES = ("ignore", "ok", "done", "bad", "die", "reset")  # _pam_token_actions, in order
_SPACES = re.compile(r"[ \t\n\v\f\r]*")  # C's isspace()
_DIGITS = re.compile(r"[0-9]*")
_FAR = 10**9  # a jump no bounded stack reaches the end of
_ALL_BAD = {"default": "bad"}  # any parse error (shared: the tables are only read)


def _end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a run of ``pattern`` (which may be empty) starting at ``pos`` ends."""
    match = pattern.match(text, pos)
    return match.end() if match else pos


def _parse_control(text: str) -> dict[str, str]:
    """pam_misc.c _pam_parse_control() then _pam_set_default_control(BAD): names and actions are
    case-sensitive prefixes, ``default`` fills only the values not set yet, a jump is a non-zero
    number, and any error makes every value ``bad``."""
    table: dict[str, str] = {}
    n = len(text)
    pos = _end(_SPACES, text, 0)
    while pos < n:
        name = next((v for v in (*_RETURN_NAMES, "default") if text.startswith(v, pos)), None)
        if name is None or pos + len(name) >= n:
            return _ALL_BAD
        pos = _end(_SPACES, text, pos + len(name))
        if text[pos:pos + 1] != "=":
            return _ALL_BAD
        pos = _end(_SPACES, text, pos + 1)
        action = next((a for a in _ACTION_NAMES if text.startswith(a, pos)), None)
        if action is not None:
            pos += len(action)
        else:
            end = _end(_DIGITS, text, pos)
            digits = text[pos:end].lstrip("0")
            if not digits:  # none (the end of the text too), or zero: "expecting non-zero"
                return _ALL_BAD
            # A jump longer than any stack (a hostile line of thousands of digits is never turned
            # into an int): past the end either way.
            action, pos = (digits if len(digits) <= 9 else str(_FAR)), end
        if name == "default":
            for value in _RETURN_NAMES:
                table.setdefault(value, action)
        else:
            table[name] = action
        pos = _end(_SPACES, text, pos)
    table.setdefault("default", "bad")
    return table


@lru_cache(maxsize=1024)  # a stack is run once per combination of returns: each control parsed once
def _actions(control: str) -> dict[str, str] | None:
    """The control's action per return; None for include/substack markers."""
    if control in ("include", "substack"):
        return None
    if control in _KEYWORDS:
        return _KEYWORDS[control]
    # anything else goes to _pam_parse_control(), bracketed or not (the parser keeps the brackets)
    return _parse_control(control[1:-1] if control.startswith("[") and control.endswith("]") else control)


def action_on(control: str, returned: str) -> str | None:
    """What libpam does when a module under ``control`` returns ``returned`` (``ok``, ``done``, ``bad``,
    ``die``, ``ignore``, ``reset`` or a jump); None for an include or substack line."""
    actions = _actions(control)
    return None if actions is None else actions.get(returned, actions.get("default", "bad"))


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
    """One run of the stack (modules and substack markers, include markers removed) with these returns."""
    impression, status = "undef", FAILURE
    saved: dict[int, tuple[str, str]] = {}
    i, previous = 0, 0
    while i < len(lines):
        line, level = lines[i], lines[i].level
        if level > previous:
            saved[level] = (impression, status)
        previous = level
        if line.control == "substack":  # the PAM_HT_SUBSTACK handler: skipped, but counted by jumps
            i += 1
            continue
        if returns[i] == "incomplete":
            return False  # PAM_INCOMPLETE: libpam stops and returns it
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


def _stack_lines(lines: Sequence[PamLine]) -> list[PamLine]:
    """The auth handlers libpam links: modules, and the substack markers (PAM_HT_SUBSTACK) that
    dispatch skips but that a jump counts and that separate two substacks of the same level."""
    return [ln for ln in lines if ln.type == "auth" and ln.control != "include"]


def succeeds(lines: Sequence[PamLine], *, password: bool, factor: bool,
             factors: frozenset[str] = frozenset()) -> bool | None:
    """Whether the auth stack can succeed for someone who has (or lacks) the password and the second
    factor (``factors``: the second-factor modules); None when there are too many combinations."""
    modules = _stack_lines(lines)
    choices = [(IGNORE,) if ln.control == "substack" else _returns(ln, password, factor, factors)
               for ln in modules]
    count = 1
    for options in choices:
        count *= len(options)
        if count > MAX_COMBINATIONS:
            return None
    return any(_run(modules, returns) for returns in itertools.product(*choices))
