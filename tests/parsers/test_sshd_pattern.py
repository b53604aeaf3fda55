"""OpenSSH's wildcard patterns, against a reference that cannot be wrong (fnmatch with only * and ?
special), and on the hostile pattern that made a regular expression run for minutes."""

from __future__ import annotations

import fnmatch
import itertools

import pytest

from vmsec.parsers.sshd_pattern import match_pattern, match_pattern_list


def _reference(text: str, pattern: str) -> bool:
    # fnmatch with "[" escaped: "*" and "?" are then the only special characters, as in match.c.
    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]"))


def test_every_short_text_and_pattern_agree_with_the_reference() -> None:
    alphabet = "ab*?["
    texts = ["".join(t) for n in range(5) for t in itertools.product("ab[", repeat=n)]
    patterns = ["".join(p) for n in range(5) for p in itertools.product(alphabet, repeat=n)]
    wrong = [(t, p) for t in texts for p in patterns if match_pattern(t, p) != _reference(t, p)]
    assert wrong == []


@pytest.mark.parametrize(("text", "patterns", "lower", "expected"), [
    ("root", "root", False, 1),
    ("root", "admin,ro*", False, 1),
    ("root", "*,!root", False, -1),  # a matching negation decides at once
    ("bob", "!root", False, 0),  # a negation alone matches nothing
    ("root", "ROOT", False, 0),
    ("root", "ROOT", True, 1),
    ("root", "", False, 0),
])
def test_pattern_lists(text: str, patterns: str, lower: bool, expected: int) -> None:
    assert match_pattern_list(text, patterns, lower) == expected


def test_a_hostile_pattern_is_answered() -> None:
    # A regular expression made of this pattern backtracks ~10^19 steps on a 64-character name; the
    # matcher's work is bounded by the product of the lengths (~10^3 here, 10^6 for the second).
    assert match_pattern("a" * 64, "*a" * 20 + "*b") is False
    assert match_pattern("a" * 6400, ("*a" * 20 + "*b") * 10) is False
    assert match_pattern("a" * 64 + "b", "*a" * 20 + "*b") is True
