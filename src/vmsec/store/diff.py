"""What changed between two scans, per target, by finding fingerprint (pure: no database here).

- **new**: open (FAIL or WAIVED) in B, absent or PASS in A;
- **fixed**: open in A, PASS in B — or no longer reported although B scanned the same target;
- **still open**: open in both (a FAIL that became WAIVED is still open: a waiver accepts a risk,
  it does not remove it);
- **unknown**: any change to or from UNKNOWN/ERROR, and open findings of targets B did not scan —
  vmsec cannot tell whether those were fixed, so it says so instead of calling them fixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from msgspec import Struct

from vmsec.findings import Severity, Status, Target

OPEN = frozenset({Status.FAIL, Status.WAIVED})
UNCERTAIN = frozenset({Status.UNKNOWN, Status.ERROR})
# When one scan reports the same fingerprint twice, the most open status represents it.
_PRECEDENCE = {Status.FAIL: 4, Status.WAIVED: 3, Status.ERROR: 2, Status.UNKNOWN: 1, Status.PASS: 0}


class DiffRow(NamedTuple):
    """The part of a stored finding a diff needs."""

    fingerprint: str
    target: Target
    check_id: str
    severity: Severity
    status: Status
    subject: str
    message: str


class DiffEntry(NamedTuple):
    fingerprint: str
    check_id: str
    severity: Severity
    subject: str
    before: Status | None  # None: not reported by scan A
    after: Status | None  # None: not reported by scan B
    message: str  # scan B's words, unless B passed or did not report it: then scan A's


class TargetDiff(Struct, frozen=True, kw_only=True):
    target: Target
    in_a: bool
    in_b: bool
    new: tuple[DiffEntry, ...] = ()
    fixed: tuple[DiffEntry, ...] = ()
    still_open: tuple[DiffEntry, ...] = ()
    unknown: tuple[DiffEntry, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.new or self.fixed or self.unknown) or self.in_a != self.in_b


class Diff(Struct, frozen=True, kw_only=True):
    a: int
    b: int
    targets: tuple[TargetDiff, ...]
    unchanged: int = 0  # findings in neither category (PASS → PASS, UNKNOWN → UNKNOWN, …)

    def count(self, category: str) -> int:
        """Total entries of ``category`` ("new", "fixed", "still_open", "unknown") over all targets."""
        return sum(len(getattr(t, category)) for t in self.targets)


def _index(rows: Iterable[DiffRow]) -> dict[str, DiffRow]:
    rows = list(rows)
    out = {row.fingerprint: row for row in rows}
    if len(out) == len(rows):
        return out
    out = {}
    for row in rows:
        seen = out.get(row.fingerprint)
        if seen is None or _PRECEDENCE[row.status] > _PRECEDENCE[seen.status]:
            out[row.fingerprint] = row
    return out


def _sort_key(e: DiffEntry) -> tuple[int, str, str]:
    return (-e.severity.rank, e.check_id, e.subject)


def compute_diff(a: int, a_rows: Iterable[DiffRow], a_targets: Iterable[Target],
                 b: int, b_rows: Iterable[DiffRow], b_targets: Iterable[Target]) -> Diff:
    """Compare scan ``a`` (before) with scan ``b`` (after)."""
    before, after = _index(a_rows), _index(b_rows)
    in_a, in_b = dict.fromkeys(a_targets), dict.fromkeys(b_targets)
    # PASS in both: most of a real scan, set aside with set operations before the Python loop
    passed = Status.PASS
    both_pass = ({fp for fp, r in before.items() if r.status is passed}
                 & {fp for fp, r in after.items() if r.status is passed})
    unchanged = len(both_pass)
    buckets: dict[Target, dict[str, list[DiffEntry]]] = {}

    def put(target: Target, category: str, entry: DiffEntry) -> None:
        buckets.setdefault(target, {}).setdefault(category, []).append(entry)

    get_a, get_b = before.get, after.get
    for fp in (before.keys() | after.keys()) - both_pass:
        ra, rb = get_a(fp), get_b(fp)
        sa = ra.status if ra is not None else None
        sb = rb.status if rb is not None else None
        # an entry's words come from the side that is not PASS (B's, unless B passed or is absent)
        row = rb if rb is not None and sb is not Status.PASS else ra
        if row is None:
            row = rb
        assert row is not None
        target = row.target
        if sa in OPEN and sb is None and target not in in_b:
            category = "unknown"  # B did not scan this target: fate unknown
        elif sa in OPEN and sb in OPEN:
            category = "still_open"
        elif sa in OPEN and (sb is Status.PASS or sb is None):
            category = "fixed"
        elif sb in OPEN and (sa is None or sa is Status.PASS):
            category = "new"
        elif sa != sb and (sa in UNCERTAIN or sb in UNCERTAIN):
            category = "unknown"
        else:
            unchanged += 1
            continue
        put(target, category, DiffEntry(fp, row.check_id, row.severity, row.subject, sa, sb, row.message))

    order = list(in_b) + [t for t in in_a if t not in in_b]
    order += [t for t in buckets if t not in in_a and t not in in_b]
    out = []
    for target in order:
        cats = buckets.get(target, {})
        out.append(TargetDiff(
            target=target, in_a=target in in_a, in_b=target in in_b,
            new=tuple(sorted(cats.get("new", ()), key=_sort_key)),
            fixed=tuple(sorted(cats.get("fixed", ()), key=_sort_key)),
            still_open=tuple(sorted(cats.get("still_open", ()), key=_sort_key)),
            unknown=tuple(sorted(cats.get("unknown", ()), key=_sort_key))))
    return Diff(a=a, b=b, targets=tuple(out), unchanged=unchanged)
