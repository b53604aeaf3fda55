"""New / fixed / still open / unknown, per target, by fingerprint — through the store on both
backends, and the pure comparison on its own."""

from __future__ import annotations

import pytest
from store_synth import HOST, finding, scan

from vmsec.findings import Severity, Status, Target, TargetKind
from vmsec.store import Diff, open_store
from vmsec.store.diff import DiffRow, compute_diff

WEB = Target(TargetKind.DOMAIN, "web01", "hv1")
DB = Target(TargetKind.DOMAIN, "db01", "hv1")
OLD = Target(TargetKind.DOMAIN, "retired", "hv1")
NEW = Target(TargetKind.DOMAIN, "fresh", "hv1")


def _entries(d: Diff, target: Target, category: str) -> dict[str, tuple[Status | None, Status | None]]:
    [td] = [t for t in d.targets if t.target == target]
    return {e.check_id: (e.before, e.after) for e in getattr(td, category)}


def test_transitions_per_target(store_url: str) -> None:
    F, P, U, E, W = Status.FAIL, Status.PASS, Status.UNKNOWN, Status.ERROR, Status.WAIVED
    a = scan([
        finding("FAIL-PASS", WEB, "s", F), finding("FAIL-FAIL", WEB, "s", F),
        finding("PASS-FAIL", WEB, "s", P), finding("FAIL-GONE", WEB, "s", F),
        finding("FAIL-UNKNOWN", WEB, "s", F), finding("UNKNOWN-FAIL", WEB, "s", U),
        finding("UNKNOWN-PASS", WEB, "s", U), finding("PASS-PASS", WEB, "s", P),
        finding("FAIL-WAIVED", WEB, "s", F), finding("ERROR-ERROR", WEB, "s", E),
        finding("FAIL-ON-RETIRED", OLD, "s", F), finding("PASS-ON-RETIRED", OLD, "s", P),
        finding("HOST-FAIL", HOST, "iommu", F),
    ], [HOST, WEB, DB, OLD])
    b = scan([
        finding("FAIL-PASS", WEB, "s", P), finding("FAIL-FAIL", WEB, "s", F, message="changed words"),
        finding("PASS-FAIL", WEB, "s", F), finding("GONE-FAIL", WEB, "s", F),
        finding("FAIL-UNKNOWN", WEB, "s", U), finding("UNKNOWN-FAIL", WEB, "s", F),
        finding("UNKNOWN-PASS", WEB, "s", P), finding("PASS-PASS", WEB, "s", P),
        finding("FAIL-WAIVED", WEB, "s", W), finding("ERROR-ERROR", WEB, "s", E),
        finding("NEW-TARGET", NEW, "s", F),
        finding("HOST-FAIL", HOST, "iommu", F, severity=Severity.CRITICAL),
    ], [HOST, WEB, DB, NEW])
    with open_store(store_url) as store:
        d = store.diff(store.save(a), store.save(b))
    assert _entries(d, WEB, "new") == {"PASS-FAIL": (P, F), "GONE-FAIL": (None, F)}
    assert _entries(d, WEB, "fixed") == {"FAIL-PASS": (F, P), "FAIL-GONE": (F, None)}
    assert _entries(d, WEB, "still_open") == {"FAIL-FAIL": (F, F), "FAIL-WAIVED": (F, W)}
    assert _entries(d, WEB, "unknown") == {"FAIL-UNKNOWN": (F, U), "UNKNOWN-FAIL": (U, F),
                                           "UNKNOWN-PASS": (U, P)}
    # a target scan B did not look at: its open finding is not called fixed
    assert _entries(d, OLD, "unknown") == {"FAIL-ON-RETIRED": (F, None)}
    assert _entries(d, OLD, "fixed") == {}
    assert _entries(d, NEW, "new") == {"NEW-TARGET": (None, F)}
    assert _entries(d, HOST, "still_open") == {"HOST-FAIL": (F, F)}
    by_target = {t.target: t for t in d.targets}
    assert d.unchanged == 3  # PASS → PASS, ERROR → ERROR, and PASS → (target not scanned)
    # a fixed finding is told in the words of its failure
    assert [e.message for e in by_target[WEB].fixed if e.check_id == "FAIL-PASS"] == ["s is FAIL"]
    assert (by_target[OLD].in_a, by_target[OLD].in_b) == (True, False)
    assert (by_target[NEW].in_a, by_target[NEW].in_b) == (False, True)
    assert not by_target[DB].changed
    assert [e.message for e in by_target[WEB].still_open if e.check_id == "FAIL-FAIL"] == ["changed words"]
    assert by_target[HOST].still_open[0].severity is Severity.CRITICAL  # B's severity
    assert (d.count("new"), d.count("fixed"), d.count("still_open"), d.count("unknown")) == (3, 2, 3, 4)
    # and the other way round, new and fixed swap
    with open_store(store_url) as store:
        back = store.diff(2, 1)
    assert _entries(back, WEB, "fixed") == {"PASS-FAIL": (F, P), "GONE-FAIL": (F, None)}
    assert _entries(back, WEB, "new") == {"FAIL-PASS": (P, F), "FAIL-GONE": (None, F)}


def test_the_subject_is_part_of_the_identity() -> None:
    a = [DiffRow("fp-a", WEB, "VMS-DOM-020", Severity.HIGH, Status.FAIL, "graphics[1]", "m")]
    b = [DiffRow("fp-b", WEB, "VMS-DOM-020", Severity.HIGH, Status.FAIL, "graphics[2]", "m")]
    d = compute_diff(1, a, [WEB], 2, b, [WEB])
    assert (d.count("new"), d.count("fixed"), d.count("still_open")) == (1, 1, 0)


def test_a_fingerprint_reported_twice_counts_once_as_its_worst() -> None:
    a = [DiffRow("fp", WEB, "C", Severity.HIGH, Status.PASS, "s", "m")]
    b = [DiffRow("fp", WEB, "C", Severity.HIGH, s, "s", "m")
         for s in (Status.PASS, Status.FAIL, Status.UNKNOWN)]
    d = compute_diff(1, a, [WEB], 2, b, [WEB])
    assert d.count("new") == 1 and d.count("unknown") == 0


def test_unknown_scan_ids_are_refused(store_url: str) -> None:
    from vmsec.store import UnknownScan

    with open_store(store_url) as store:
        store.save(scan([], [HOST]))
        with pytest.raises(UnknownScan, match="no scan #7"):
            store.diff(1, 7)
