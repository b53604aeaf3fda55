"""Real polkitd 122 and ``pkcheck`` are the oracle for vmsec's polkit rules evaluator.

Every polkit rules fixture of the tests (tests/data/polkit/*, the VMS-DMN-009 check fixtures, the host
fixtures) is loaded into a real polkitd, in a private mount and PID namespace with a private system
D-Bus (tests/polkit_oracle.py says how), and every question vmsec asked of those rules — each libvirt
action for each probe subject — is asked of polkitd too, with ``pkcheck --process`` for a process
running as an account that stands for that subject. The answers must agree:

==================  ===================================================
vmsec's answer      pkcheck's
==================  ===================================================
yes                 authorized (exit 0)
no                  not authorized (exit 1)
auth_self/_admin    challenge (exit 2)
…_keep              challenge with polkit.retains_authorization_after_challenge=1
no rule answered    the action's ``allow_any`` default from libvirt's own policy file
ran out of time     not authorized, after polkitd's 15 s runaway killer
==================  ===================================================

and so must the files each could not load. vmsec is asked with ``in_session=False``: nothing runs
systemd-logind here, so polkitd gives every subject ``local = active = false`` and null seat and
session. A probe subject "members of group G" is an account whose only group is G; "any user" and
"user U" are accounts whose only group is one that no rule names (vmsec's probes have no group), and
"polkitd" is never a probe (polkitd itself runs as that account).

Two differences are deliberate and asserted as such: vmsec never runs ``polkit.spawn`` (polkitd runs
the program, so the file loads there), and vmsec's QuickJS accepts ES2015 syntax that Debian's polkit
122 (Duktape, ES5.1) rejects as a syntax error — Fedora's and RHEL's polkit (mozjs) runs it, so vmsec
judges the file as the more capable engine would run it; for the answers, vmsec is then asked
without the files polkitd could not parse.

Observed while building this (and asserted): a rule that returns ``true`` (not a string) is a fatal
error in polkitd 122's Duktape backend — it logs "fatal Duktape JS backend error" and answers no
further question; vmsec counts that answer as "no".

Cost: one module-scoped run for all 28 cases (about 1,150 pkcheck questions). The three cases that keep
polkitd's runaway killer busy for 15 s run in their own namespaces beside the rest; this module took
46 s as a whole process on the 2-core development VM at load average 8 (figures and the command in
docs/performance.md; benchmarks/bench_polkit_oracle.py breaks them down).
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from components import require
from datapaths import DATA, LIBVIRT_POLKIT, POLKIT_CASES
from polkit_oracle import Case, Outcome, Question, available, rules_files, run
from vmsec.parsers.polkit_rules import DEFAULT_YES, LIBVIRT_ACTIONS, Answer, PolkitEvaluation, evaluate_rules

ACTIONS = sorted((LIBVIRT_POLKIT / "actions").glob("*.policy"))
DETAILS = dict(LIBVIRT_ACTIONS)
NOGROUP = "vmsec-probe-nogroup"
OUTCOME = {"yes": "authorized", "no": "not authorized", "auth_self": "challenge", "auth_admin": "challenge",
           "auth_self_keep": "challenge (keep)", "auth_admin_keep": "challenge (keep)"}
WEDGED_TIMEOUT_S = 5  # pkcheck answers in milliseconds; after polkitd's fatal error it never does
# (case, file): why polkitd and vmsec disagree on loading it, on purpose.
LOADED_ONLY_BY_POLKITD = {("hostile-limits", "/etc/polkit-1/rules.d/40-spawn.rules"):
                          "vmsec never runs polkit.spawn"}
LOADED_ONLY_BY_VMSEC = {("es2015-syntax", "/etc/polkit-1/rules.d/50-arrow.rules"):
                        "Debian's polkit 122 (Duktape) has no ES2015 arrow functions"}


def _case_roots() -> dict[str, Path]:
    roots = {p.name: p for p in sorted(POLKIT_CASES.iterdir()) if p.is_dir()}
    for top in (DATA / "checks" / "VMS-DMN-009", DATA / "hosts"):
        for root in sorted(top.iterdir()):
            if rules_files(root):
                roots[f"{top.name}/{root.name}"] = root
    return roots


ROOTS = _case_roots()
NO_RULES = "no-rules"  # libvirt's defaults alone


def defaults() -> dict[str, tuple[str, str, str]]:
    """Each libvirt action's (allow_any, allow_inactive, allow_active), from libvirt's policy files."""
    found = {}
    for policy in ACTIONS:
        for action in ET.parse(policy).getroot().iter("action"):
            found[action.get("id", "")] = tuple(action.findtext(f"defaults/{key}", "").strip()
                                                for key in ("allow_any", "allow_inactive", "allow_active"))
    return found  # type: ignore[return-value]


DEFAULTS = {action: values[0] for action, values in defaults().items()}  # no session: allow_any


def files_of(name: str) -> tuple[tuple[str, str], ...]:
    return () if name == NO_RULES else rules_files(ROOTS[name])


@functools.cache
def evaluation(name: str, *, parsable: bool = True) -> PolkitEvaluation:
    """vmsec's answers for all the files, or (``parsable``) for those that polkitd can parse."""
    skip = {path for (case, path) in LOADED_ONLY_BY_VMSEC if case == name} if parsable else set()
    if not skip and not parsable:
        return evaluation(name)
    ev = evaluate_rules([f for f in files_of(name) if f[0] not in skip], in_session=False)
    assert ev.error is None, ev.error
    return ev


def wedges(a: Answer) -> bool:
    """polkitd 122 fails fatally when a rule returns a truthy value that is not a string."""
    return a.note is not None and a.note.startswith("a rule returned a ")


def asked(ev: PolkitEvaluation) -> list[Answer]:
    """The answers to ask polkitd about: all but "polkitd" itself, and of those that make polkitd fail
    fatally only the first, last (nothing after it would be answered)."""
    plain = [a for a in ev.answers if a.user != "polkitd" and not wedges(a)]
    return plain + [a for a in ev.answers if wedges(a)][:1]


def question(a: Answer) -> Question:
    details = DETAILS[a.action]
    if a.subject.startswith("members of group "):
        (group,) = a.groups
        return Question(a.action, f"vmsec-in-{group}", group, details)
    assert not a.groups, a
    return Question(a.action, a.user, NOGROUP, details)


def expected(a: Answer) -> str:
    if a.limited:
        return "not authorized"  # after polkitd's runaway killer
    if wedges(a):
        return "no answer"
    return OUTCOME[a.result if a.result is not None else DEFAULTS[a.action]]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    why = available()
    require(why is None, "real polkitd (packages polkitd, dbus-daemon; root)", f"it is the oracle: {why}")
    quick: list[Case] = []
    slow: list[list[Case]] = []  # each keeps polkitd's runaway killer busy for 15 s: run beside the rest
    for name in [NO_RULES, *ROOTS]:
        ev = evaluation(name)
        questions = tuple(question(a) for a in asked(ev))
        timeout = WEDGED_TIMEOUT_S if any(wedges(a) for a in ev.answers) else 60.0
        case = Case(name, files_of(name), questions, timeout)
        if ev.limited:
            slow.append([case])
        else:
            quick.append(case)
    outcomes = run([quick, *slow], ACTIONS, tmp_path_factory.mktemp("polkit-oracle"))
    yield {o.name: o for o in outcomes}


def test_every_rules_fixture_is_a_case() -> None:
    """Every polkit .rules file under tests/data is in one of the cases the oracle runs."""
    covered = {(root / path.lstrip("/")).resolve()
               for root in ROOTS.values() for path, _ in rules_files(root)}
    every = {p.resolve() for p in DATA.rglob("polkit-1/rules.d/*.rules")}
    assert every <= covered
    assert len(ROOTS) >= 24


def test_the_defaults_are_libvirts() -> None:
    assert {a: DEFAULTS[a] for a, _ in LIBVIRT_ACTIONS} == {
        "org.libvirt.unix.manage": "auth_admin_keep", "org.libvirt.unix.monitor": "yes",
        "org.libvirt.api.connect.getattr": "yes", "org.libvirt.api.connect.write": "no",
        "org.libvirt.api.domain.getattr": "yes", "org.libvirt.api.domain.start": "no",
        "org.libvirt.api.domain.write": "no", "org.libvirt.api.domain.open-graphics": "no"}
    every_yes = {action for action, values in defaults().items() if values == ("yes", "yes", "yes")}
    assert every_yes & {action for action, _ in LIBVIRT_ACTIONS} == DEFAULT_YES


@pytest.mark.parametrize("name", [NO_RULES, *ROOTS])
def test_polkitd_answers_as_vmsec_does(oracle: dict[str, Outcome], name: str) -> None:
    outcome = oracle[name]
    ev = evaluation(name)
    answers = asked(ev)
    assert len(outcome.answers) == len(answers)
    disagree = [f"{a.action} for {a.subject}: vmsec {a.result!r} ({a.path}) -> {expected(a)}, "
                f"polkitd {got.outcome}"
                for a, got in zip(answers, outcome.answers, strict=True) if expected(a) != got.outcome]
    assert disagree == [], "\n".join(disagree) + "\n" + outcome.log
    assert len(answers) >= len(LIBVIRT_ACTIONS)


@pytest.mark.parametrize("name", [NO_RULES, *ROOTS])
def test_polkitd_fails_to_load_the_files_vmsec_does(oracle: dict[str, Outcome], name: str) -> None:
    outcome = oracle[name]
    ev = evaluation(name, parsable=False)
    at_question = {a.path for a in ev.answers if a.limited}
    vmsec_failed = set(ev.errors) - at_question
    vmsec_failed -= {p for (case, p) in LOADED_ONLY_BY_POLKITD if case == name}
    vmsec_failed |= {p for (case, p) in LOADED_ONLY_BY_VMSEC if case == name}
    named = outcome.failed_files()  # a syntax error or an exception: polkitd names the file
    assert named <= vmsec_failed, outcome.log
    assert outcome.loaded() == len(files_of(name)) - len(vmsec_failed), outcome.log
    # the others were stopped by polkitd's runaway killer (its log does not name them) and by a
    # limit in vmsec; polkit 122 may log a spurious runaway now and then (see Outcome.runaways)
    assert vmsec_failed - named <= ev.limited
    assert outcome.runaways(loading=True) >= len(vmsec_failed - named), outcome.log
    if any(wedges(a) for a in ev.answers):
        assert "fatal Duktape JS backend error" in outcome.log


def test_a_rule_that_runs_away_is_stopped_by_polkitd_too(oracle: dict[str, Outcome]) -> None:
    """A question that ran past vmsec's time limit ran into polkitd's 15 s runaway killer."""
    name = "rule-loops-for-one-question"
    assert [n for n in ROOTS if any(a.limited for a in evaluation(n).answers)] == [name]
    outcome = oracle[name]
    stopped = [got for a, got in zip(asked(evaluation(name)), outcome.answers, strict=True) if a.limited]
    assert stopped and all(got.outcome == "not authorized" and got.seconds >= 14 for got in stopped)
    assert outcome.runaways(loading=False) >= len(stopped), outcome.log
