"""sudoers aliases are expanded once each, however many rules and aliases name them: a chain of
aliases that each name the next ten times (558 bytes) was ten to the power of its length in steps.
The expansion stays what sudo applies (negations, cycles, order), and what a bound cuts off is named
in ``Sudoers.unread`` with a problem naming the rule."""

from __future__ import annotations

from typing import Any

import pytest

from vmsec.errors import ErrorKind, Problems
from vmsec.facts import Sudoers
from vmsec.parsers import sudoers as sudoers_parser
from vmsec.parsers.sudoers import MAX_ALIAS_DEPTH, MAX_EXPANDED, _Parse, parse_sudoers

ORIGIN = "/etc/sudoers"


def chain(levels: int, leaf: str) -> str:
    """User_Alias A0 = A1 ×10, A1 = A2 ×10 … and the last one = ``leaf``; A0 may run anything."""
    lines = [f"User_Alias A{i} = " + ", ".join([f"A{i + 1}"] * 10) for i in range(levels - 1)]
    return "\n".join([*lines, f"User_Alias A{levels - 1} = {leaf}", "A0 ALL=(ALL) NOPASSWD: ALL", ""])


class Lookups(dict[Any, Any]):
    """The alias table, counting the lookups made while the rules are expanded."""

    def __init__(self, table: dict[Any, Any], bound: int) -> None:
        super().__init__(table)
        self.count = 0
        self.bound = bound

    def get(self, key: Any, default: Any = None) -> Any:
        self.count += 1
        if self.count > self.bound:
            raise AssertionError(f"more than {self.bound} alias lookups")
        return super().get(key, default)


def expand_counting(text: str, bound: int) -> tuple[Sudoers, int, Problems]:
    problems = Problems()
    parse = _Parse(None, problems)
    parse.files.append(ORIGIN)
    parse.parse_text(text, ORIGIN, (ORIGIN,))
    lookups = Lookups(parse.aliases, bound)
    parse.aliases = lookups
    return parse.result(), lookups.count, problems


@pytest.mark.parametrize(("leaf", "users"), [("", ()), ("alice, %ops", ("alice", "%ops"))])
def test_an_alias_chain_is_expanded_once_per_alias(leaf: str, users: tuple[str, ...]) -> None:
    sudoers, lookups, problems = expand_counting(chain(10, leaf), bound=1_000)  # before: 10**9
    assert lookups <= 10 * 10 + 5
    [rule] = sudoers.rules
    assert rule.users == users and rule.nopasswd  # the aliases' real members, nothing else
    assert sudoers.unread == () and list(problems) == []


def test_negation_order_and_reuse_are_as_before() -> None:
    text = ("User_Alias OPS = carol, !dave\nUser_Alias ADMINS = alice, !bob, OPS, alice\n"
            "ADMINS ALL = ALL\n!ADMINS, erin ALL = /bin/ls\nOPS, !!ADMINS ALL = /bin/cat\n")
    sudoers = parse_sudoers(text, ORIGIN)
    assert [r.users for r in sudoers.rules] == [
        ("alice", "!bob", "carol", "!dave"),
        ("!alice", "bob", "!carol", "dave", "erin"),
        ("carol", "!dave", "alice", "!bob"),
    ]


def test_a_cycle_is_noted_and_bounded() -> None:
    problems = Problems()
    sudoers = parse_sudoers("Cmnd_Alias A = B, /bin/a\nCmnd_Alias B = A, /bin/b\nx ALL = A\n", ORIGIN,
                            problems=problems)
    assert sudoers.rules[0].commands == ("A", "/bin/b", "/bin/a")
    assert [(p.source, p.kind) for p in problems] == [(f"{ORIGIN}:3", ErrorKind.LOOP)]


def test_nesting_deeper_than_the_bound_is_unread() -> None:
    problems = Problems()
    sudoers = parse_sudoers(chain(MAX_ALIAS_DEPTH + 4, "alice").replace(", A", ", B"), ORIGIN,
                            problems=problems)
    assert sudoers.unread == (f"{ORIGIN}:{MAX_ALIAS_DEPTH + 5}: aliases nested deeper than "
                              f"{MAX_ALIAS_DEPTH} (A{MAX_ALIAS_DEPTH}) were not expanded",)
    assert [(p.source, p.kind) for p in problems] == [
        (f"{ORIGIN}:{MAX_ALIAS_DEPTH + 5}", ErrorKind.TOO_LARGE)]


def test_more_names_than_the_bound_are_unread() -> None:
    names = ", ".join(f"u{i}" for i in range(MAX_EXPANDED + 50))
    sudoers = parse_sudoers(f"User_Alias MANY = {names}\nMANY ALL = ALL\n", ORIGIN)
    assert len(sudoers.rules[0].users) == MAX_EXPANDED
    assert sudoers.unread == (f"{ORIGIN}:2: alias MANY stands for more than {MAX_EXPANDED} names; the rest "
                              "were not examined",)


def test_the_expansion_budget_covers_the_whole_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    # every rule naming a large alias again is work too: past the budget, aliases stay unexpanded
    monkeypatch.setattr(sudoers_parser, "MAX_ALIAS_WORK", 500)
    names = ", ".join(f"u{i}" for i in range(100))
    text = f"User_Alias BIG = {names}\n" + "BIG ALL = ALL\n" * 20
    problems = Problems()
    sudoers = parse_sudoers(text, ORIGIN, problems=problems)
    assert len(sudoers.rules[0].users) == 100
    assert sudoers.rules[-1].users == ("BIG",)  # not expanded: named, and the policy is incomplete
    assert sudoers.unread and sudoers.unread[0].startswith(f"{ORIGIN}:")
    assert "more than 500 steps expanding aliases" in sudoers.unread[0]
    assert {p.kind for p in problems} == {ErrorKind.TOO_LARGE}
