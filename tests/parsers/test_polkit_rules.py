"""polkit rules are JavaScript: run in a sandboxed QuickJS, in polkitd's order, for libvirt's actions.

The oracle here is polkit's documented semantics (polkit(8), "AUTHORIZATION RULES"): rules files
are run sorted by file name (/etc hides the same name in /usr/share); for an authorization check
the rule functions are called in the order they were added and the first that returns a value
decides; a rule that throws is logged and skipped; polkit.Result.* are the strings "yes", "no",
"auth_self", "auth_admin" … Real polkitd + pkcheck as an oracle was not wired in yet: polkitd reads
its rules and action definitions only from fixed system directories, so a test would need a private
mount namespace with bind mounts, a private system D-Bus and test accounts (see docs/verdicts.md).
"""

from __future__ import annotations

from vmsec.parsers.polkit_rules import evaluate_rules

Answers = dict[str, set[tuple[str, str, str]]]


def grants(files: list[tuple[str, str]], groups: tuple[str, ...] = ()) -> Answers:
    ev = evaluate_rules(files, groups)
    assert ev.error is None
    return {p: {(g.action, g.subject, g.result) for g in gs} for p, gs in ev.decided.items()}


R = "/etc/polkit-1/rules.d/"


def test_a_comment_naming_yes_grants_nothing() -> None:
    text = "// return polkit.Result.YES for org.libvirt.unix.manage\npolkit.addRule(function(a, s) {});\n"
    assert grants([(R + "50.rules", text)]) == {}


def test_yes_for_every_action_to_a_group_grants_libvirt_actions() -> None:
    text = ('polkit.addRule(function(action, subject) { if (subject.isInGroup("ops")) '
            'return polkit.Result.YES; });')
    got = grants([(R + "50.rules", text)])[R + "50.rules"]
    assert ("org.libvirt.unix.manage", "members of group ops", "yes") in got
    assert ("org.libvirt.api.domain.write", "members of group ops", "yes") in got
    assert not any(subject == "any user" for _, subject, _ in got)


def test_the_first_rule_that_answers_wins_in_file_name_order() -> None:
    first = ('polkit.addRule(function(a, s) { if (a.id.indexOf("org.libvirt.") == 0) '
             'return polkit.Result.AUTH_ADMIN; });')
    later = 'polkit.addRule(function(a, s) { if (s.isInGroup("libvirt")) return polkit.Result.YES; });'
    got = grants([(R + "60-later.rules", later), ("/usr/share/polkit-1/rules.d/10-first.rules", first)],
                 ("libvirt",))
    assert set(got) == {"/usr/share/polkit-1/rules.d/10-first.rules"}
    assert all(result == "auth_admin" for _, _, result in got["/usr/share/polkit-1/rules.d/10-first.rules"])


def test_etc_hides_the_same_name_in_usr_share() -> None:
    yes = 'polkit.addRule(function(a, s) { return polkit.Result.YES; });'
    no = 'polkit.addRule(function(a, s) { return polkit.Result.NO; });'
    got = grants([("/usr/share/polkit-1/rules.d/50-x.rules", yes), (R + "50-x.rules", no)])
    assert set(got) == {R + "50-x.rules"}


def test_a_rule_that_throws_is_skipped() -> None:
    boom = 'polkit.addRule(function(a, s) { throw new Error("boom"); });'
    yes = ('polkit.addRule(function(a, s) { if (a.id == "org.libvirt.unix.manage") '
           'return polkit.Result.YES; });')
    got = grants([(R + "10.rules", boom), (R + "20.rules", yes)])
    assert ("org.libvirt.unix.manage", "any user", "yes") in got[R + "20.rules"]


def test_details_and_user_names_are_available() -> None:
    text = ('polkit.addRule(function(a, s) { if (a.id == "org.libvirt.api.domain.start" && '
            'a.lookup("connect_driver") == "QEMU" && s.user == "alice") return polkit.Result.YES; });')
    got = grants([(R + "50.rules", text)])[R + "50.rules"]
    assert got == {("org.libvirt.api.domain.start", "user alice", "yes")}


def test_hostile_rules_are_bounded() -> None:
    ev = evaluate_rules([(R + "10-loop.rules", "while (true) {}"),
                         (R + "20-mem.rules", "var a = []; for (;;) a.push(new Array(100000).fill(7));"),
                         (R + "30-syntax.rules", "polkit.addRule(function(a, s) { return "),
                         (R + "40-spawn.rules", 'polkit.spawn(["/bin/sh", "-c", "id"]);')])
    assert ev.error is None
    assert set(ev.errors) == {R + "10-loop.rules", R + "20-mem.rules", R + "30-syntax.rules",
                              R + "40-spawn.rules"}
    assert "interrupted" in ev.errors[R + "10-loop.rules"]
    assert "out of memory" in ev.errors[R + "20-mem.rules"]
