"""polkit ``.rules`` files are JavaScript: evaluate them, as polkitd does, for libvirt's actions.

The files are run in one sandboxed QuickJS context (the ``quickjs`` binding, with a memory limit, a
time limit per file and per question, and a CPU time budget for all of it) in a child process that is
killed where QuickJS cannot stop itself (vmsec.parsers.polkit_sandbox), in polkitd's order: every
file of /etc/polkit-1/rules.d and /usr/share/polkit-1/rules.d sorted by file name, and of two files
with the same name the one in /etc first (both run: polkitd does not let one hide the other). A
minimal ``polkit`` object (``addRule``, ``addAdminRule``, ``Result``, ``log``; ``spawn`` refuses to
run anything) collects the rule functions. Then, for each libvirt action and each probe subject (an
ordinary user; a member of each group the host defines or the rules name; each user the rules name),
the rules are asked in order, as polkitd 122 asks them (its init.js ``_runRules`` and
``check_authorization_sync``), until one returns a truthy value: one of the six results decides; any
other value, or a rule that throws, ends the check as "not authorized"; a rule that runs past the
time limit (a loop, or a regular expression that backtracks) leaves that question (and its file)
unanswered — polkitd's runaway killer stops it after 15 s and denies. Nothing is matched as text — a
comment that says ``polkit.Result.YES`` grants nothing, and a rule that returns YES for every action
grants libvirt's too.

Real polkitd 122 and ``pkcheck`` are the oracle for all of this in tests/parsers/test_polkit_oracle.py.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from msgspec import Struct

from vmsec.parsers.polkit_sandbox import TIME_LIMIT_S
from vmsec.parsers.polkit_sandbox import short as _short

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
BUDGET_S = 20.0  # CPU seconds for the whole evaluation: bounds a thousand files that each loop, or a
# rule that spins just under the limit for every question
WALL_FACTOR, WALL_EXTRA_S = 3, 5.0  # the sandboxes' wall-clock limit: the budget thrice (a busy machine)
MAX_PROBES = 200  # subjects asked about (groups and users named by the host and the rules)
# Run in a child process of this interpreter, which imports what this process imports (-I -S: no PYTHON*
# variables, no site or .pth files: the parent's sys.path instead).
_SANDBOX = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
            "from vmsec.parsers.polkit_sandbox import main; main()")
_UNINTERRUPTIBLE = "in code that QuickJS cannot interrupt (such as a regular expression that backtracks)"

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

    The files run in a child process (vmsec.parsers.polkit_sandbox), killed when a call into QuickJS
    runs past the time limit in code that QuickJS cannot interrupt (a regular expression). That file,
    or that question, is then left unanswered as one stopped by QuickJS's own limit is, and another
    child loads the files again (without a file that was being loaded) and asks the next question:
    state that rules keep between questions starts afresh there, as when polkitd reloads its rules.
    """
    ordered = _order(files)
    literals = [literal for _, text in ordered for literal in _LITERAL.findall(text)]
    group_probes = list(dict.fromkeys([*groups, *literals]))[:MAX_PROBES]
    user_probes = list(dict.fromkeys(literals))[:MAX_PROBES]
    subjects: list[tuple[str, str, list[str]]] = [("any user", PROBE_USER, [])]
    subjects += [(f"members of group {g}", PROBE_USER, [g]) for g in group_probes]
    subjects += [(f"user {u}", u, []) for u in user_probes if u != "root"]
    questions = [(action, details, label, user, member_of)
                 for action, details in LIBVIRT_ACTIONS for label, user, member_of in subjects]
    errors: dict[str, str] = {}
    limited: set[str] = set()
    decided: dict[str, list[RuleGrant]] = {}
    answers: list[Answer] = []
    seen: set[tuple[str, str, str]] = set()
    base: dict[str, str | None] = {}  # action -> what "any user" got

    def evaluation(error: str | None = None) -> PolkitEvaluation:
        return PolkitEvaluation(decided, errors, error=error, answers=tuple(answers),
                                limited=frozenset(limited))

    def answered(q: int, result: str | None, file: int, note: str | None) -> None:
        action, _, label, user, member_of = questions[q]
        answered_by = ordered[file][0] if result is not None and file >= 0 else None
        answers.append(Answer(action, label, user, tuple(member_of), result, answered_by, note))
        if result is None or answered_by is None:
            return
        if label == "any user":
            base[action] = result
        elif result == base.get(action):
            return  # the same answer every user gets: reported once, for any user
        key = (answered_by, action, label)
        if key not in seen:
            seen.add(key)
            decided.setdefault(answered_by, []).append(RuleGrant(action, label, result))

    def stopped(q: int, file: int, why: str) -> None:
        action, _, label, user, member_of = questions[q]
        looping = ordered[file][0]
        errors.setdefault(looping, f"ran past the {TIME_LIMIT_S} s limit when asked about {action} "
                          f"for {label}{why}")
        limited.add(looping)
        answers.append(Answer(action, label, user, tuple(member_of), None, looping, limited=True))

    def out_of_budget(stage: str, index: int) -> PolkitEvaluation:
        if stage == "load":
            return PolkitEvaluation({}, errors, limited=frozenset(limited),
                                    error=f"loading the rules files took longer than {budget_s:g} s of "
                                    f"CPU time ({index} of {len(ordered)} loaded)")
        return evaluation(f"the rules took longer than {budget_s:g} s of CPU time (answered {len(answers)} "
                          "questions)")

    request: dict[str, Any] = {"files": [text for _, text in ordered], "skip": [], "first": 0,
                               "questions": [[a, d, u, g] for a, d, _, u, g in questions],
                               "in_session": in_session}
    spent = 0.0  # the CPU time of the children that were killed
    wall_s = budget_s * WALL_FACTOR + WALL_EXTRA_S
    wall_end = time.monotonic() + wall_s
    while True:  # each child that is killed has spent more than GRACE_S of the budget, and moved on
        request["budget"] = budget_s - spent
        events, ended = _sandbox(request, wall_end - time.monotonic(), wall_s)
        for event in events:
            kind = event[0]
            if kind == "file":
                _, index, message, by_limit = event
                errors.setdefault(ordered[index][0], message)  # a later child reports it again
                if by_limit:
                    limited.add(ordered[index][0])
            elif kind == "answer":
                answered(*event[1:])
            elif kind == "limit":
                stopped(event[1], event[2], f": {event[3]}")
            elif kind == "fail":
                _, q, message = event
                return evaluation(f"asking the rules about {questions[q][0]}: {message}" if q >= 0
                                  else f"listing the rules: {message}")
            elif kind == "budget":
                return out_of_budget(event[1], event[2])
            elif kind == "unavailable":
                return PolkitEvaluation({}, {}, error="the quickjs JavaScript engine is not installed: "
                                        f"{event[1]}")
            elif kind == "done":
                return evaluation()
        if not events or events[-1][0] != "overran":
            return evaluation(f"the polkit rules sandbox {ended}")
        _, stage, index, file, cpu = events[-1]
        spent += cpu
        if stage == "load":
            path = ordered[index][0]
            errors.setdefault(path, f"ran past the {TIME_LIMIT_S} s limit while loading, {_UNINTERRUPTIBLE}: "
                              "the other files were evaluated without it")
            limited.add(path)
            request["skip"].append(index)
        elif file >= 0:
            stopped(index, file, f", {_UNINTERRUPTIBLE}")
            request["first"] = index + 1
            if index + 1 == len(questions):
                return evaluation()
        else:
            return evaluation(f"asking the rules about {questions[index][0]}: ran past the {TIME_LIMIT_S} s "
                              f"limit {_UNINTERRUPTIBLE}")
        if spent > budget_s:
            return out_of_budget(stage, index + 1 if stage == "load" else 0)


def _sandbox(request: dict[str, Any], timeout_s: float, wall_s: float) -> tuple[list[list[Any]], str]:
    """Run one child (vmsec.parsers.polkit_sandbox) to its end, within ``timeout_s`` of wall-clock time.
    Returns the events it wrote and how it ended; a child that overruns is killed and reaped."""
    if timeout_s <= 0:
        return [], f"took longer than {wall_s:g} s (wall clock)"
    try:
        child = subprocess.Popen([sys.executable, "-I", "-S", "-c", _SANDBOX, json.dumps(sys.path)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        return [], f"could not be started: {exc}"
    try:
        try:
            out, err = child.communicate(json.dumps(request).encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            ended = f"took longer than {wall_s:g} s (wall clock)"
        else:
            ended = _ended(child.returncode)
            last = err.decode(errors="replace").strip().splitlines()[-1:]
            ended += f": {_short(last[0])}" if last else ""
    finally:
        if child.poll() is None:  # an exception (KeyboardInterrupt) on its way out: leave no process
            child.kill()
            child.wait()
    events: list[list[Any]] = []
    for line in out.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            break  # a line cut short by the kill
    return events, ended


def _ended(status: int) -> str:
    if status >= 0:
        return f"ended with exit status {status}"
    try:
        return f"was killed by {signal.Signals(-status).name}"
    except ValueError:
        return f"was killed by signal {-status}"
