"""Alert formats (RFC 5424, CEF) with hostile text, and drift at finding level (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.monitor.alerts import Alert, cef_line, rfc5424_line
from vmsec.monitor.drift import audited_targets, compare

HOSTILE = 'evil\n<13>1 2026-01-01T00:00:00Z forged vmsec - - - injected] "x"|y=z\\'


def alert(**kw: object) -> Alert:
    values: dict[str, object] = {"at": datetime(2026, 12, 5, 10, 0, 0, 123456, tzinfo=UTC),
                                 "uri": "qemu:///system",
                                 "kind": "drift", "severity": "high", "domain": HOSTILE, "change": "new",
                                 "check_id": "VMS-DOM-071", "fingerprint": "f" * 32,
                                 "message": f"domain {HOSTILE} now fails"}
    values.update(kw)
    return Alert(**values)  # type: ignore[arg-type]


def test_rfc5424_line_cannot_be_forged_by_a_domain_name() -> None:
    line = rfc5424_line(alert(), hostname="hv1")
    assert "\n" not in line and "\r" not in line  # one line: the forged record stays inside it
    assert line.endswith('] domain evil\\x0a<13>1 2026-01-01T00:00:00Z forged vmsec - - - '
                         'injected] "x"|y=z\\ now fails')  # the message: escaped, on the same line
    assert line.startswith("<131>1 2026-12-05T10:00:00.123456Z hv1 vmsec ")  # local0 (16) * 8 + err (3)
    structured = line[line.index("[vmsec@32473 "):]
    assert 'domain="evil\\\\x0a<13>1' in structured and 'injected\\] \\"x\\"|y=z\\\\' in structured
    assert 'check="VMS-DOM-071"' in structured


def test_cef_escapes_header_and_extension_separators() -> None:
    line = cef_line(alert(check_id="A|B"))
    header, _, extension = line.partition("|8|")
    assert header.startswith("CEF:0|vmsec|vmsec|") and header.endswith("|A\\|B|drift new")
    assert "\n" not in line and "cs2=evil\\\\x0a" in extension and "y\\=z\\\\" in extension


def _finding(check: str, status: Status, name: str = "web01", subject: str = "s") -> Finding:
    return Finding(check_id=check, title=f"{check} title", status=status, severity=Severity.HIGH,
                   target=Target(TargetKind.DOMAIN, name, "hv1"), subject=subject,
                   message=f"{check} {status}")


def test_drift_is_a_fail_that_appears_or_goes_away() -> None:
    before = audited_targets([_finding("A", Status.FAIL), _finding("B", Status.PASS),
                              _finding("C", Status.UNKNOWN), _finding("D", Status.FAIL)], {})
    after = audited_targets([_finding("A", Status.FAIL), _finding("B", Status.FAIL),
                             _finding("C", Status.PASS), _finding("D", Status.PASS)], {})
    key = ("domain", "web01")
    changes = {(c.change, c.check_id) for c in compare(before[key], after[key])}
    assert changes == {("new", "B"), ("resolved", "D")}  # UNKNOWN→PASS and a steady FAIL are no drift
    assert before[key].digest != after[key].digest
    assert {c.check_id for c in compare(None, after[key])} == {"A", "B"}  # a new domain's FAILs
    assert compare(before[key], None) == []  # undefined: the lifecycle alert says it
    same = audited_targets([_finding("A", Status.FAIL)], {})
    assert compare(same[key], audited_targets([_finding("A", Status.FAIL)], {})[key]) == []
