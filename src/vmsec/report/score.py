"""The hardening score of a host or a VM: one number, 0–100, higher is better (like Lynis' hardening
index), with a formula a reader can redo by hand (docs/report-formats.md).

* Each **check** counts once per scored unit (a host; a VM with its guest OS): FAIL if any of its
  findings on the unit failed, else passed if any passed or was waived, else undecided (UNKNOWN,
  ERROR: left out, and counted apart — an audit that could not look is not a pass).
* A check weighs by severity: critical 10, high 5, medium 3, low 1, info 0 — the worst severity
  of its failed findings when it failed, else the worst of its findings (its own severity).
* ``score = round(100 × passed weight / (passed weight + failed weight))``. No score (``None``)
  when no decided check has a weight, or when more checks were undecided than decided: a guest
  whose disk could not be read is not "100" because the one check that could look passed.

Vulnerability checks (VMS-VULN-*) count like any other check: one failed check at the worst
severity among the vulnerabilities, however many there are — the score measures hardening; the
vulnerability groups and their counts are beside it in every report.
"""

from __future__ import annotations

from collections.abc import Iterable

from msgspec import Struct

from vmsec.findings import Finding, Status

WEIGHTS: dict[str, int] = {"critical": 10, "high": 5, "medium": 3, "low": 1, "info": 0}

_FAILED, _PASSED, _UNDECIDED = 2, 1, 0
_STATE = {Status.FAIL: _FAILED, Status.PASS: _PASSED, Status.WAIVED: _PASSED, Status.UNKNOWN: _UNDECIDED,
          Status.ERROR: _UNDECIDED}


class Score(Struct, frozen=True):
    """A unit's score and the numbers it is made of."""

    value: int | None  # 0–100, None when no decided check has a weight
    passed_weight: int
    failed_weight: int
    passed_checks: int
    failed_checks: int
    undecided_checks: int

    def __str__(self) -> str:
        return "n/a" if self.value is None else str(self.value)


class ScoreTally:
    """Per check id: the folded state and its weight. Fed finding by finding (streaming)."""

    __slots__ = ("checks",)

    def __init__(self) -> None:
        self.checks: dict[str, list[int]] = {}  # check id -> [state, weight]

    def add(self, findings: Iterable[Finding]) -> None:
        checks, state_of, weights = self.checks, _STATE, WEIGHTS
        for f in findings:
            state = state_of[f.status]
            weight = weights[f.severity]  # a StrEnum: hashes and compares as its value
            entry = checks.get(f.check_id)
            if entry is None:
                checks[f.check_id] = [state, weight]
            elif state > entry[0]:
                entry[0], entry[1] = state, weight
            elif state == entry[0] and weight > entry[1]:
                entry[1] = weight

    def merge(self, other: ScoreTally) -> None:
        for check_id, (state, weight) in other.checks.items():
            entry = self.checks.get(check_id)
            if entry is None:
                self.checks[check_id] = [state, weight]
            elif state > entry[0] or (state == entry[0] and weight > entry[1]):
                entry[0], entry[1] = state, weight

    def score(self) -> Score:
        passed_w = failed_w = passed = failed = undecided = 0
        for state, weight in self.checks.values():
            if state == _FAILED:
                failed += 1
                failed_w += weight
            elif state == _PASSED:
                passed += 1
                passed_w += weight
            else:
                undecided += 1
        total = passed_w + failed_w
        value = round(100 * passed_w / total) if total and undecided <= passed + failed else None
        return Score(value, passed_w, failed_w, passed, failed, undecided)


def score_of(findings: Iterable[Finding]) -> Score:
    """The score of one unit's findings."""
    tally = ScoreTally()
    tally.add(findings)
    return tally.score()
