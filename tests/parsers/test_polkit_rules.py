"""polkit rules are JavaScript: run in a sandboxed QuickJS, in polkitd's order, for libvirt's actions.

Each case is a fixture folder under tests/data/polkit/ (its etc/ and usr/share/ rules directories).
What is asserted here is polkit 122's behaviour as real polkitd shows it: tests/parsers/
test_polkit_oracle.py runs every one of these fixtures through polkitd and ``pkcheck`` and compares
every answer. In short: files run sorted by file name, of two with the same name the one in /etc first
(both run); the first rule that returns a truthy value decides; a value that is not one of the six
results, or a rule that throws, makes the check "not authorized"; ``polkit.Result.*`` are the strings
"yes", "no", "auth_self", "auth_admin" …
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from datapaths import POLKIT_CASES
from polkit_oracle import rules_files
from vmsec.parsers import polkit_rules
from vmsec.parsers.polkit_rules import LIBVIRT_ACTIONS, PolkitEvaluation, evaluate_rules

Answers = dict[str, set[tuple[str, str, str]]]
R = "/etc/polkit-1/rules.d/"
S = "/usr/share/polkit-1/rules.d/"
MANAGE, MONITOR = "org.libvirt.unix.manage", "org.libvirt.unix.monitor"
# QuickJS's regular-expression engine does not call the interrupt handler that enforces its time limit:
# in the process that ran this, nothing could stop it (28 a's took 17 s, 36 take hours).
BACKTRACKS = '/(a+)+$/.test("a".repeat(36) + "!")'
OPS_YES = 'polkit.addRule(function (a, s) { if (s.isInGroup("ops")) return polkit.Result.YES; });'


def case(name: str, groups: tuple[str, ...] = (), *, in_session: bool = True) -> PolkitEvaluation:
    ev = evaluate_rules(rules_files(POLKIT_CASES / name), groups, in_session=in_session)
    assert ev.error is None
    return ev


def grants(ev: PolkitEvaluation) -> Answers:
    return {p: {(g.action, g.subject, g.result) for g in gs} for p, gs in ev.decided.items()}


def answer(ev: PolkitEvaluation, action: str, subject: str) -> tuple[str | None, str | None]:
    found = [(a.result, a.path) for a in ev.answers if a.action == action and a.subject == subject]
    assert len(found) == 1, (action, subject)
    return found[0]


def test_a_comment_naming_yes_grants_nothing() -> None:
    ev = case("comment-names-yes")
    assert grants(ev) == {} and ev.errors == {}
    assert {a.result for a in ev.answers} == {None}


def test_yes_for_every_action_to_a_group_grants_libvirt_actions() -> None:
    got = grants(case("yes-to-group-for-every-action"))[R + "50-ops.rules"]
    assert {action for action, _ in LIBVIRT_ACTIONS} == {a for a, s, r in got if s == "members of group ops"}
    assert all(result == "yes" for _, _, result in got)
    assert not any(subject == "any user" for _, subject, _ in got)


def test_the_first_rule_that_answers_wins_in_file_name_order() -> None:
    got = grants(case("first-answer-wins", ("libvirt",)))
    assert set(got) == {S + "10-first.rules"}
    assert all(result == "auth_admin" for _, _, result in got[S + "10-first.rules"])


def test_a_file_in_etc_runs_before_the_same_name_in_usr_share_and_both_run() -> None:
    ev = case("same-name-etc-runs-first")
    assert answer(ev, "org.libvirt.api.domain.start", "any user") == ("no", R + "50-x.rules")
    assert answer(ev, MANAGE, "any user") == ("yes", S + "50-x.rules")


def test_an_empty_file_in_etc_does_not_mask_the_vendor_rule() -> None:
    got = grants(case("same-name-etc-does-not-mask"))
    assert got == {S + "60-libvirt.rules": {(MANAGE, "members of group libvirt", "yes")}}


def test_a_rule_that_throws_makes_the_check_not_authorized() -> None:
    ev = case("throw-denies")
    assert answer(ev, "org.libvirt.api.domain.write", "members of group ops") == ("no", R + "10-broken.rules")
    assert answer(ev, MANAGE, "members of group ops") == ("yes", R + "20-yes.rules")
    notes = {a.note for a in ev.answers if a.path == R + "10-broken.rules"}
    assert notes == {"a rule threw an exception"}


def test_details_and_user_names_are_available() -> None:
    got = grants(case("details-and-user"))[R + "50-alice.rules"]
    assert got == {("org.libvirt.api.domain.start", "user alice", "yes")}


def test_subject_and_action_checks() -> None:
    ev = case("subject-and-action-checks")
    path = R + "50-libvirt.rules"
    assert answer(ev, "org.libvirt.api.domain.start", "user carol") == ("yes", path)
    assert answer(ev, MANAGE, "members of group kvm") == ("auth_self", path)
    assert answer(ev, "org.libvirt.api.domain.write", "any user") == ("auth_admin", path)
    assert answer(ev, MONITOR, "user dave") == ("no", path)
    assert answer(ev, MONITOR, "members of group wheel") == ("no", path)
    assert answer(ev, MONITOR, "any user") == (None, None)


def test_only_the_six_results_decide_and_falsy_values_pass_on() -> None:
    ev = case("result-values")
    assert answer(ev, MANAGE, "user erin") == ("no", R + "10-values.rules")  # "YES" is no result
    assert {a.note for a in ev.answers if a.subject == "user erin"} == {"a rule returned an unknown result"}
    for user in ("frank", "grace", "heidi"):
        assert answer(ev, MANAGE, f"user {user}") == ("yes", R + "20-yes.rules")
        assert answer(ev, MONITOR, f"user {user}") == (None, None)


def test_a_boolean_result_allows_nothing() -> None:
    ev = case("returns-true")
    assert answer(ev, MANAGE, "user ivan") == ("no", R + "50-true.rules")
    assert grants(ev)[R + "50-true.rules"] == {(MANAGE, "user ivan", "no")}


def test_a_rule_that_is_not_a_function_denies_everything() -> None:
    ev = case("add-rule-not-a-function")
    assert {(a.result, a.path) for a in ev.answers} == {("no", R + "50-typo.rules")}


def test_an_admin_rule_answers_no_action() -> None:
    ev = case("admin-rule-only")
    assert grants(ev) == {} and {a.result for a in ev.answers} == {None}


def test_the_subject_is_in_a_local_active_session_unless_asked_otherwise() -> None:
    path = R + "50-console.rules"
    in_session, no_session = case("session-checks"), case("session-checks", in_session=False)
    assert answer(in_session, MANAGE, "any user") == ("yes", path)
    assert answer(in_session, "org.libvirt.api.domain.start", "any user") == (None, None)
    assert answer(no_session, MANAGE, "any user") == (None, None)
    assert answer(no_session, "org.libvirt.api.domain.start", "any user") == ("auth_admin_keep", path)


def test_hostile_rules_are_bounded() -> None:
    ev = case("hostile-limits")
    assert set(ev.errors) == {R + "10-loop.rules", R + "20-mem.rules", R + "30-syntax.rules",
                              R + "40-spawn.rules"}
    assert ev.limited == {R + "10-loop.rules", R + "20-mem.rules"}
    assert "interrupted" in ev.errors[R + "10-loop.rules"]
    assert "out of memory" in ev.errors[R + "20-mem.rules"]


def test_a_rule_that_loops_leaves_its_question_unanswered_and_the_rest_answered() -> None:
    ev = case("rule-loops-for-one-question")
    loop = R + "40-loop.rules"
    assert set(ev.errors) == {loop} and ev.limited == {loop}
    assert ("ran past the 2 s limit when asked about org.libvirt.unix.monitor for user mallory"
            in ev.errors[loop])
    stopped = [(a.action, a.subject) for a in ev.answers if a.limited]
    assert stopped == [(MONITOR, "user mallory")]
    assert answer(ev, MANAGE, "members of group ops") == ("auth_self_keep", R + "50-ops.rules")


def test_a_file_cannot_change_how_vmsec_asks() -> None:
    """vmsec's own functions are held before any rules file runs: redefining globals changes nothing."""
    hostile = ('JSON.stringify = function () { return \'[null, -1, null]\'; }; __vmsec = {};\n'
               'Array.prototype.indexOf = function () { return -1; };\n')
    yes = 'polkit.addRule(function (a, s) { if (s.isInGroup("ops")) return polkit.Result.YES; });'
    ev = evaluate_rules([(R + "10-hostile.rules", hostile), (R + "20-yes.rules", yes)])
    assert answer(ev, MANAGE, "members of group ops") == ("yes", R + "20-yes.rules")


def test_loading_and_all_questions_share_one_time_budget() -> None:
    """A rule that spins just under the per-question limit cannot multiply it by every question, nor
    can many files that each loop multiply the per-file limit."""
    spin = ('polkit.addRule(function (a, s) { var end = Date.now() + 100; while (Date.now() < end) {} '
            'if (s.user == "x") return "no"; });')
    started = time.monotonic()
    ev = evaluate_rules([(R + "10-spin.rules", spin)], budget_s=0.5)
    assert time.monotonic() - started < 5
    assert ev.error is not None and "took longer than 0.5 s of CPU time" in ev.error
    started = time.monotonic()
    ev = evaluate_rules([(R + f"{n:03}-loop.rules", "while (true) {}") for n in range(1000)], budget_s=1)
    assert time.monotonic() - started < 60
    assert ev.error == "loading the rules files took longer than 1 s of CPU time (1 of 1000 loaded)"


def children() -> set[str]:
    """This process's child processes, zombies included."""
    return {pid for task in Path("/proc/self/task").iterdir()
            for pid in (task / "children").read_text().split()}


def test_a_regular_expression_that_backtracks_is_stopped_while_loading() -> None:
    """The sandbox that runs it is killed; another loads the other files and asks every question."""
    before = children()
    ev = evaluate_rules([(R + "10-regex.rules", BACKTRACKS + ";"), (R + "20-yes.rules", OPS_YES)])
    assert ev.error is None and ev.limited == {R + "10-regex.rules"} and set(ev.errors) == ev.limited
    assert ev.errors[R + "10-regex.rules"].startswith("ran past the 2 s limit while loading, in code that "
                                                      "QuickJS cannot interrupt")
    assert answer(ev, MANAGE, "members of group ops") == ("yes", R + "20-yes.rules")
    assert not any(a.limited for a in ev.answers)
    assert children() == before  # the killed sandbox was reaped


def test_a_regular_expression_that_backtracks_leaves_its_question_unanswered() -> None:
    regex = ('polkit.addRule(function (a, s) {\n'
             '  if (a.id == "org.libvirt.unix.monitor" && s.user == "mallory") '
             f'return {BACKTRACKS} ? "yes" : "no";\n}});')
    ev = evaluate_rules([(R + "40-regex.rules", regex), (R + "50-ops.rules", OPS_YES)])
    assert ev.error is None and set(ev.errors) == ev.limited == {R + "40-regex.rules"}
    assert ev.errors[R + "40-regex.rules"] == (
        "ran past the 2 s limit when asked about org.libvirt.unix.monitor for user mallory, in code that "
        "QuickJS cannot interrupt (such as a regular expression that backtracks)")
    assert [(a.action, a.subject, a.path) for a in ev.answers if a.limited] == [
        (MONITOR, "user mallory", R + "40-regex.rules")]
    asked = [(a.action, a.subject) for a in ev.answers]  # each question once, in a sandbox or the next
    assert len(asked) == len(set(asked)) == len(LIBVIRT_ACTIONS) * len({a.subject for a in ev.answers})
    assert answer(ev, MONITOR, "members of group ops") == ("yes", R + "50-ops.rules")


def test_a_regular_expression_that_backtracks_for_every_question_runs_out_the_budget() -> None:
    regex = f'polkit.addRule(function (a, s) {{ return {BACKTRACKS} ? "yes" : null; }});'
    ev = evaluate_rules([(R + "10-regex.rules", regex)], budget_s=1)
    assert ev.error == "the rules took longer than 1 s of CPU time (answered 1 questions)"
    assert ev.limited == {R + "10-regex.rules"}


@pytest.mark.parametrize(("code", "error"), [
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "was killed by SIGKILL"),
    ("import sys; sys.exit('no quickjs here')", "ended with exit status 1: no quickjs here"),
    ("import time; time.sleep(60)", "took longer than 0.3 s (wall clock)"),
])
def test_a_sandbox_that_dies_or_stalls_is_an_evaluation_error(monkeypatch: pytest.MonkeyPatch, code: str,
                                                               error: str) -> None:
    monkeypatch.setattr(polkit_rules, "_SANDBOX", code)
    monkeypatch.setattr(polkit_rules, "WALL_EXTRA_S", 0)
    before = children()
    ev = evaluate_rules([(R + "20-yes.rules", OPS_YES)], budget_s=0.1)
    assert ev.error == f"the polkit rules sandbox {error}" and ev.answers == ()
    assert children() == before
