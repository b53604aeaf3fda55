"""Shared ordering and counting of findings, used by every reporter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from vmsec.findings import Finding, Severity, Status, Target, TargetKind

STATUS_ORDER = (Status.FAIL, Status.ERROR, Status.UNKNOWN, Status.WAIVED, Status.PASS)
_STATUS_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}
_SEVERITY_RANK = {s: s.rank for s in Severity}
_KIND_RANK = {TargetKind.HOST: 0, TargetKind.DOMAIN: 1, TargetKind.GUEST: 2, TargetKind.NETWORK: 3,
              TargetKind.ENDPOINT: 4}


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Deterministic order: target, then status (failures first), severity (worst first), id, subject."""
    return sorted(findings, key=lambda f: (_KIND_RANK.get(f.target.kind, 9), f.target.name,
                                           _STATUS_RANK[f.status], -f.severity.rank, f.check_id,
                                           f.subject))


def batch_order(findings: Sequence[Finding]) -> list[Finding]:
    """One target's findings in report order: failures first, worst first, then id and subject."""
    return [findings[i] for i in batch_order_indices(findings)]


def batch_order_indices(findings: Sequence[Finding]) -> list[int]:
    """The positions of :func:`batch_order` (so values computed per finding can follow the order)."""
    status_rank, severity_rank = _STATUS_RANK, _SEVERITY_RANK
    # Finding is a NamedTuple: check_id, title, status, severity, target, subject, …
    keys = [(status_rank[f[2]], -severity_rank[f[3]], f[0], f[5]) for f in findings]
    return sorted(range(len(keys)), key=keys.__getitem__)


def status_counts(findings: Iterable[Finding]) -> dict[str, int]:
    counts = Counter(f.status for f in findings)
    return {s.value: counts.get(s, 0) for s in Status}


def failed_severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    counts = Counter(f.severity for f in findings if f.status is Status.FAIL)
    return {s.value: counts.get(s, 0) for s in Severity}


def group_by_target(findings: Sequence[Finding],
                    targets: Sequence[Target]) -> list[tuple[Target, list[Finding]]]:
    """Findings per target, in the order targets were scanned; targets with findings only also appear."""
    groups: dict[Target, list[Finding]] = {t: [] for t in targets}
    for f in findings:
        groups.setdefault(f.target, []).append(f)
    ordered = sorted(groups, key=lambda t: (_KIND_RANK.get(t.kind, 9), t.name))
    return [(t, sort_findings(groups[t])) for t in ordered]


def worst_failed(findings: Iterable[Finding]) -> Severity | None:
    worst: Severity | None = None
    for f in findings:
        if f.status is Status.FAIL and (worst is None or f.severity.rank > worst.rank):
            worst = f.severity
    return worst
