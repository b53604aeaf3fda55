"""polkit ``.rules`` files are JavaScript: evaluate them, as polkitd does, for libvirt's actions.

The files are run in one sandboxed QuickJS context (the ``quickjs`` binding, with a memory limit, a
time limit per file and per question, and a CPU time budget for all of it), in polkitd's order: every
file of /etc/polkit-1/rules.d and /usr/share/polkit-1/rules.d sorted by file name, and of two files
with the same name the one in /etc first (both run: polkitd does not let one hide the other). A
minimal ``polkit`` object (``addRule``, ``addAdminRule``, ``Result``, ``log``; ``spawn`` refuses to
run anything) collects the rule functions. Then, for each libvirt action and each probe subject (an
ordinary user; a member of each group the host defines or the rules name; each user the rules name),
the rules are asked in order, as polkitd 122 asks them (its init.js ``_runRules`` and
``check_authorization_sync``), until one returns a truthy value: one of the six results decides; any
other value, or a rule that throws, ends the check as "not authorized"; a rule that runs past the
time limit leaves that question (and its file) unanswered — polkitd's runaway killer stops it after
15 s and denies. Nothing is matched as text — a comment that says ``polkit.Result.YES`` grants
nothing, and a rule that returns YES for every action grants libvirt's too.

Real polkitd 122 and ``pkcheck`` are the oracle for all of this in tests/parsers/test_polkit_oracle.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence

from msgspec import Struct

__all__ = ["DEFAULT_YES", "LIBVIRT_ACTIONS", "Answer", "PolkitEvaluation", "RuleGrant", "evaluate_rules"]

# libvirt's polkit actions: the socket-level ones and a representative set of the fine-grained ACL
# (access_drivers = ["polkit"]) ones, with the details libvirt passes for them.
LIBVIRT_ACTIONS: tuple[tuple[str, dict[str, str]], ...] = (
    ("org.libvirt.unix.manage", {}),
    ("org.libvirt.unix.monitor", {}),
    ("org.libvirt.api.connect.getattr", {"connect_driver": "QEMU"}),
    ("org.libvirt.api.connect.write", {"connect_driver": "QEMU"}),
    ("org.libvirt.api.domain.getattr", {"connect_driver": "QEMU", "domain_name": "vmsec-probe",
                                        "domain_uuid": "00000000-0000-4000-8000-000000000001"}),
    ("org.libvirt.api.domain.start", {"connect_driver": "QEMU", "domain_name": "vmsec-probe",
                                      "domain_uuid": "00000000-0000-4000-8000-000000000001"}),
    ("org.libvirt.api.domain.write", {"connect_driver": "QEMU", "domain_name": "vmsec-probe",
                                      "domain_uuid": "00000000-0000-4000-8000-000000000001"}),
    ("org.libvirt.api.domain.open-graphics", {"connect_driver": "QEMU", "domain_name": "vmsec-probe",
                                              "domain_uuid": "00000000-0000-4000-8000-000000000001"}),
)
# The actions whose defaults in libvirt's own policy files (allow_any, allow_inactive, allow_active)
# are all "yes": a rule's YES for them grants nothing that every local user does not already have.
DEFAULT_YES = frozenset({"org.libvirt.unix.monitor", "org.libvirt.api.connect.getattr",
                         "org.libvirt.api.domain.getattr"})
RESULTS = ("no", "yes", "auth_self", "auth_self_keep", "auth_admin", "auth_admin_keep")
PROBE_USER = "vmsec-probe-user"
MEMORY_LIMIT = 32 * 1024 * 1024
TIME_LIMIT_S = 2  # CPU seconds, per file and per question
BUDGET_S = 20.0  # CPU seconds for the whole evaluation: bounds a thousand files that each loop, or a
# rule that spins just under the limit for every question
MAX_PROBES = 200  # subjects asked about (groups and users named by the host and the rules)

# The rules see only what polkitd's init.js gives them (``polkit``, ``Subject``, ``Action``); vmsec's own
# state lives in a closure whose functions Python holds before any rules file runs, so a file that
# redefines globals (JSON, __vmsec, Array.prototype.indexOf) cannot change how vmsec asks or reads.
_PRELUDE = r"""
var polkit, __vmsec = (function () {
  var rules = [], file = -1, current = -1, stringify = JSON.stringify;
  var results = {"no": 1, "yes": 1, "auth_self": 1, "auth_self_keep": 1, "auth_admin": 1,
                 "auth_admin_keep": 1};
  var has = Function.prototype.call.bind(Object.prototype.hasOwnProperty);
  polkit = {
    Result: {NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
             AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null},
    addRule: function (f) { rules.push([file, f]); },
    addAdminRule: function (f) { },
    log: function (m) { },
    spawn: function (argv) { throw new Error("polkit.spawn is not run by vmsec"); }
  };
  function Subject(user, groups, session) {
    this.pid = 4242; this.user = user; this.groups = groups;
    this.seat = session ? "seat0" : null; this.session = session ? "c1" : null;
    this.local = session; this.active = session;
  }
  Subject.prototype.isInGroup = function (g) {
    for (var n = 0; n < this.groups.length; n++) if (this.groups[n] == g) return true;
    return false;
  };
  Subject.prototype.isInNetGroup = function (g) { return false; };
  Subject.prototype.toString = function () { return "[Subject user='" + this.user + "']"; };
  function Action(id, details) { this.id = id; this.__d = details; }
  Action.prototype.lookup = function (k) { return this.__d[k]; };
  Action.prototype.toString = function () { return "[Action id='" + this.id + "']"; };
  function ask(id, details, user, groups, session) {
    // polkitd 122 (init.js _runRules, check_authorization_sync): the first truthy value decides; a
    // value that is not one of the results, or an exception, makes the whole check "not authorized".
    var a = new Action(id, details), s = new Subject(user, groups, session), r;
    for (var i = 0; i < rules.length; i++) {
      current = rules[i][0];
      try {
        r = rules[i][1](a, s);
      } catch (e) {
        return stringify(["no", current, "a rule threw an exception"]);
      }
      if (r) {
        if (typeof r === "string" && has(results, r)) return stringify([r, current, null]);
        return stringify(["no", current, typeof r === "string" ? "a rule returned an unknown result"
                                                               : "a rule returned a " + typeof r]);
      }
    }
    return stringify([null, -1, null]);
  }
  return {ask: ask, setFile: function (i) { file = i; }, current: function () { return current; }};
})();
"""

_LITERAL = re.compile(r"""["']([A-Za-z_][A-Za-z0-9_.-]{0,31})["']""")


class RuleGrant(Struct, frozen=True):
    action: str
    subject: str  # "any user", "members of group libvirt", "user alice"
    result: str  # yes | no | auth_self | auth_admin | …


class Answer(Struct, frozen=True):
    """What the rules answered one question: ``action`` for the probe subject ``subject``."""

    action: str
    subject: str  # the label: "any user", "members of group libvirt", "user alice"
    user: str  # the subject's user name and groups, as the rules saw them
    groups: tuple[str, ...]
    result: str | None  # one of RESULTS; None: no rule answered (polkit applies the action's defaults)
    path: str | None = None  # the file whose rule answered (or threw, or ran out of time)
    note: str | None = None  # why a "no" that no rule returned: an exception, a value that is no result
    limited: bool = False  # the question ran past the time limit: unanswered


class PolkitEvaluation(Struct, frozen=True):
    """What each rules file decides for libvirt's actions."""

    decided: dict[str, list[RuleGrant]]  # path -> the answers its rules gave first
    errors: dict[str, str]  # path -> why it could not be evaluated (a syntax error, a limit)
    error: str | None = None  # the evaluator itself could not run, or its time budget ran out
    answers: tuple[Answer, ...] = ()  # every question asked, in order
    limited: frozenset[str] = frozenset()  # the files stopped by the time or memory limit (in errors)


def _order(files: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """polkitd's order: by file name; of two files with the same name, /etc first (both run)."""
    return sorted(files, key=lambda f: (f[0].rsplit("/", 1)[-1], f[0]))


def evaluate_rules(files: Sequence[tuple[str, str]], groups: Iterable[str] = (), *,
                   in_session: bool = True, budget_s: float = BUDGET_S) -> PolkitEvaluation:
    """Run the rules ``files`` ((path, text), any order) and ask them about libvirt's actions.

    ``in_session``: each probe subject is in a local, active login session on a seat (the most a rule
    can ask of a subject, so the answers show every grant); False: in no login session (a daemon, a
    cron job, or any process where systemd-logind is not running), as polkitd then passes it —
    ``local`` and ``active`` false, ``seat`` and ``session`` null. ``budget_s``: the CPU time that loading
    the files and asking the questions may take together (QuickJS's own limits count CPU time too, so
    a busy machine does not change the answer); past it the evaluation ends with an error.
    """
    try:
        import quickjs
    except ImportError as exc:  # a declared dependency; a broken install is an evaluation error
        return PolkitEvaluation({}, {}, error=f"the quickjs JavaScript engine is not installed: {exc}")
    ordered = _order(files)
    ctx = quickjs.Context()
    ctx.set_memory_limit(MEMORY_LIMIT)
    ctx.set_time_limit(TIME_LIMIT_S)
    ctx.eval(_PRELUDE)
    ask, set_file, current_file = (ctx.eval(f"__vmsec.{name}") for name in ("ask", "setFile", "current"))
    errors: dict[str, str] = {}
    limited: set[str] = set()
    literals: list[str] = []
    budget_end = time.process_time() + budget_s
    for index, (path, text) in enumerate(ordered):
        if time.process_time() > budget_end:
            return PolkitEvaluation({}, errors, limited=frozenset(limited),
                                    error=f"loading the rules files took longer than {budget_s:g} s of "
                                    f"CPU time ({index} of {len(ordered)} loaded)")
        literals.extend(_LITERAL.findall(text))
        try:
            set_file(index)
            ctx.eval(text)
        except quickjs.JSException as exc:
            errors[path] = _short(str(exc))
            if _is_limit(str(exc)):
                limited.add(path)
    group_probes = list(dict.fromkeys([*groups, *literals]))[:MAX_PROBES]
    user_probes = list(dict.fromkeys(literals))[:MAX_PROBES]
    subjects: list[tuple[str, str, list[str]]] = [("any user", PROBE_USER, [])]
    subjects += [(f"members of group {g}", PROBE_USER, [g]) for g in group_probes]
    subjects += [(f"user {u}", u, []) for u in user_probes if u != "root"]
    decided: dict[str, list[RuleGrant]] = {}
    answers: list[Answer] = []
    seen: set[tuple[str, str, str]] = set()
    for action, details in LIBVIRT_ACTIONS:
        base: str | None = None
        for label, user, member_of in subjects:
            if time.process_time() > budget_end:
                return PolkitEvaluation(decided, errors, error="the rules took longer than "
                                        f"{budget_s:g} s of CPU time (answered {len(answers)} questions)",
                                        answers=tuple(answers), limited=frozenset(limited))
            try:
                raw = ask(action, ctx.parse_json(json.dumps(details)), user,
                          ctx.parse_json(json.dumps(member_of)), in_session)
            except quickjs.JSException as exc:
                current = current_file()
                if not _is_limit(str(exc)) or not isinstance(current, int) or current < 0:
                    return PolkitEvaluation(decided, errors, error=f"asking the rules about {action}: "
                                            f"{_short(str(exc))}", answers=tuple(answers),
                                            limited=frozenset(limited))
                looping = ordered[current][0]
                errors.setdefault(looping, f"ran past the {TIME_LIMIT_S} s limit when asked about {action} "
                                  f"for {label}: {_short(str(exc).splitlines()[0], 80)}")
                limited.add(looping)
                answers.append(Answer(action, label, user, tuple(member_of), None, looping, limited=True))
                continue
            try:
                result, file_index, note = json.loads(raw)
            except (TypeError, ValueError) as exc:
                return PolkitEvaluation(decided, errors, error=f"asking the rules about {action}: {exc}",
                                        answers=tuple(answers), limited=frozenset(limited))
            answered_by = ordered[file_index][0] if result is not None and file_index >= 0 else None
            answers.append(Answer(action, label, user, tuple(member_of), result, answered_by, note))
            if answered_by is None:
                continue
            if label == "any user":
                base = result
            elif result == base:
                continue  # the same answer every user gets: reported once, for any user
            key = (answered_by, action, label)
            if key not in seen:
                seen.add(key)
                decided.setdefault(answered_by, []).append(RuleGrant(action, label, result))
    return PolkitEvaluation(decided, errors, answers=tuple(answers), limited=frozenset(limited))


def _is_limit(message: str) -> bool:
    """QuickJS's time limit ("InternalError: interrupted") or memory limit ("out of memory")."""
    return "interrupted" in message or "out of memory" in message


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
