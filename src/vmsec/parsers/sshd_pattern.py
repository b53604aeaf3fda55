"""OpenSSH's wildcard patterns (match.c): ``*`` and ``?`` over a whole string, and comma-separated
lists with ``!`` negation.

Matched without backtracking: a guest's ``Match User *a*a*a…*b`` against a long account name is
bounded by the product of the two lengths. A translation to a regular expression backtracks
exponentially there (a 64-character name ran for minutes).
"""

from __future__ import annotations

__all__ = ["match_pattern", "match_pattern_list"]


def match_pattern(text: str, pattern: str) -> bool:
    """OpenSSH ``match_pattern``: does ``pattern`` (``*`` any run, ``?`` any one character, the rest
    literal) match the whole of ``text``?"""
    t = p = 0
    star = -1  # the last "*" seen in the pattern, and where in the text it started to match
    resume = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            t += 1
            p += 1
        elif star >= 0:  # let the last "*" take one more character, and go on from there
            resume += 1
            t, p = resume, star + 1
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def match_pattern_list(text: str, patterns: str, lower: bool = False) -> int:
    """OpenSSH ``match_pattern_list``: 1 when a pattern matches, -1 when a negated one (``!x``) does
    (which decides at once), 0 when none does. ``lower``: the patterns are compared in lower case."""
    positive = 0
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        if match_pattern(text, pattern.lower() if lower else pattern):
            if negated:
                return -1
            positive = 1
    return positive
