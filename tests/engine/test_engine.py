"""The engine isolates failures: a crashing check is one ERROR finding, a missing fact is UNKNOWN."""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest

from vmsec.checks.api import Environment, Result, Severity, Tag, build_spec, check, fail, need, ok
from vmsec.checks.catalog import Catalog, load_catalog
from vmsec.engine import MAX_RESULTS_PER_CHECK, run_checks
from vmsec.errors import CheckDefinitionError
from vmsec.facts import Domain, Host, Inventory
from vmsec.findings import Status, TargetKind
from vmsec.profiles import Profile


@check("VMS-TST-001", title="Always fine", severity=Severity.LOW, tags=(Tag.CONFIGURATION,))
def always_ok(dom: Domain) -> Iterator[Result]:
    """A test check.

    Remediation: none needed.
    """
    yield ok("domain", f"{dom.name} is fine")


@check("VMS-TST-002", title="Crashes", severity=Severity.HIGH, tags=(Tag.ISOLATION,))
def crashes(dom: Domain) -> Iterator[Result]:
    """A check with a bug.

    Remediation: fix the check.
    """
    raise ZeroDivisionError("boom")
    yield  # pragma: no cover


@check("VMS-TST-003", title="Needs the host", severity=Severity.MEDIUM, tags=(Tag.ISOLATION,))
def needs_host(dom: Domain, env: Environment) -> Iterator[Result]:
    """Needs host facts.

    Remediation: scan with a host.
    """
    host = need(env.host, "no host facts were collected")
    yield fail("x", f"host {host.name}", severity=Severity.CRITICAL)


def _catalog(*funcs: object) -> Catalog:
    return Catalog(tuple(build_spec(f) for f in funcs))  # type: ignore[arg-type]


def test_crash_becomes_error_and_the_scan_goes_on() -> None:
    inv = Inventory(domains=(Domain(name="a", origin="a.xml"), Domain(name="b", origin="b.xml")))
    result = run_checks(inv, _catalog(always_ok, crashes))
    by_status = sorted((f.target.name, f.check_id, f.status) for f in result.findings)
    assert by_status == [
        ("a", "VMS-TST-001", Status.PASS),
        ("a", "VMS-TST-002", Status.ERROR),
        ("b", "VMS-TST-001", Status.PASS),
        ("b", "VMS-TST-002", Status.ERROR),
    ]
    error = next(f for f in result.findings if f.status is Status.ERROR)
    assert "ZeroDivisionError: boom" in error.message
    assert error.detail and "ZeroDivisionError" in error.detail
    assert not result.complete


def test_missing_fact_becomes_unknown_with_the_reason() -> None:
    inv = Inventory(domains=(Domain(name="a", origin="a.xml"),))
    (finding,) = run_checks(inv, _catalog(needs_host)).findings
    assert finding.status is Status.UNKNOWN
    assert finding.message == "no host facts were collected"
    assert finding.target.kind is TargetKind.DOMAIN


def test_result_severity_escalates_and_profile_overrides() -> None:
    host = Host(name="hv1", root="/", live=False)
    inv = Inventory(host=host, domains=(Domain(name="a", origin="a.xml"),))
    (escalated,) = run_checks(inv, _catalog(needs_host)).findings
    assert escalated.severity is Severity.CRITICAL
    relaxed = Profile(name="p", severity={"VMS-TST-003": Severity.LOW})
    (finding,) = run_checks(inv, _catalog(needs_host), relaxed).findings
    assert finding.severity is Severity.LOW
    disabled = Profile(name="p", disabled=frozenset({"VMS-TST-003"}))
    assert run_checks(inv, _catalog(needs_host), disabled).findings == ()


def test_fingerprint_is_stable_and_ignores_message() -> None:
    inv = Inventory(domains=(Domain(name="a", origin="a.xml"),))
    first = run_checks(inv, _catalog(always_ok)).findings[0]
    second = run_checks(inv, _catalog(always_ok)).findings[0]
    assert first.fingerprint == second.fingerprint
    assert len(first.fingerprint) == 32
    other = run_checks(Inventory(domains=(Domain(name="b", origin="a.xml"),)), _catalog(always_ok))
    assert other.findings[0].fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("declare", "problem"),
    [
        (dict(id="DOM-1", tags=(Tag.ISOLATION,)), "is not like"),
        (dict(id="VMS-DOM-001", tags=("console",)), "tags must include"),
    ],
)
def test_bad_declarations_are_refused(declare: dict[str, object], problem: str) -> None:
    def f(dom: Domain) -> Iterator[Result]:
        """Doc.

        Remediation: x.
        """
        yield ok("a", "b")

    decorated = check(title="t", severity=Severity.LOW, **declare)(f)  # type: ignore[arg-type]
    with pytest.raises(CheckDefinitionError, match=problem):
        build_spec(decorated)


def test_docstring_needs_remediation() -> None:
    @check("VMS-DOM-999", title="t", severity=Severity.LOW, tags=(Tag.ISOLATION,))
    def f(dom: Domain) -> Iterator[Result]:
        """Only a rationale."""
        yield ok("a", "b")

    with pytest.raises(CheckDefinitionError, match="Remediation"):
        build_spec(f)


def test_duplicate_ids_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    # Two modules declaring the same id.
    mod = types.ModuleType("vmsec_test_fake_checks")

    @check("VMS-TST-001", title="first", severity=Severity.LOW, tags=(Tag.AUDIT,))
    def first(dom: Domain) -> Iterator[Result]:
        """First.

        Remediation: x.
        """
        yield ok("a", "b")

    first.__module__ = mod.__name__
    mod.first = first  # type: ignore[attr-defined]
    mod2 = types.ModuleType("vmsec_test_fake_checks2")

    @check("VMS-TST-001", title="dup", severity=Severity.LOW, tags=(Tag.AUDIT,))
    def dup(dom: Domain) -> Iterator[Result]:
        """Dup.

        Remediation: x.
        """
        yield ok("a", "b")

    dup.__module__ = mod2.__name__
    mod2.dup = dup  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(sys.modules, mod2.__name__, mod2)
    with pytest.raises(CheckDefinitionError, match="declared twice"):
        load_catalog([mod.__name__, mod2.__name__])


@check("VMS-TST-004", title="Knows the date", severity=Severity.LOW, tags=(Tag.PATCHING,))
def knows_today(dom: Domain, env: Environment) -> Iterator[Result]:
    """Reads the scan date.

    Remediation: none.
    """
    yield ok("date", str(env.params["today"]))


def test_scan_date_is_a_parameter_from_the_injected_clock() -> None:
    from datetime import UTC, datetime

    inv = Inventory(domains=(Domain(name="a", origin="a.xml"),))
    clock = lambda: datetime(2031, 5, 4, 12, 0, tzinfo=UTC)  # noqa: E731
    (finding,) = run_checks(inv, _catalog(knows_today), clock=clock).findings
    assert finding.message == "2031-05-04"
    fixed = Profile(name="p", params={"today": "2020-01-01"})
    (finding,) = run_checks(inv, _catalog(knows_today), fixed, clock=clock).findings
    assert finding.message == "2020-01-01"


def test_same_named_domains_from_different_files_are_different_targets() -> None:
    inv = Inventory(
        domains=(
            Domain(name="QEMUGuest1", origin="a.xml"),
            Domain(name="QEMUGuest1", origin="b.xml"),
            Domain(name="solo", origin="c.xml"),
        )
    )
    result = run_checks(inv, _catalog(always_ok))
    names = sorted(f.target.name for f in result.findings)
    assert names == ["QEMUGuest1 (a.xml)", "QEMUGuest1 (b.xml)", "solo"]
    assert len({f.fingerprint for f in result.findings}) == 3


def test_a_domain_named_like_another_ones_disambiguation_stays_apart() -> None:
    # a review's case: a real "web (a.xml)" beside two "web" merged with the first of them — one
    # target in the report, its origin lost, 30 findings sharing fingerprints
    inv = Inventory(domains=(Domain(name="web", origin="a.xml"), Domain(name="web", origin="b.xml"),
                             Domain(name="web (a.xml)", origin="z.xml")))
    result = run_checks(inv, _catalog(always_ok))
    names = sorted(f.target.name for f in result.findings)
    assert names == ["web (a.xml)", "web (a.xml) (z.xml)", "web (b.xml)"]
    assert len({f.fingerprint for f in result.findings}) == 3


@check("VMS-TST-009", title="Says a lot", severity=Severity.LOW, tags=(Tag.CONFIGURATION,))
def very_talkative(dom: Domain) -> Iterator[Result]:
    """Yields one result per subject of a hostile fact that was not bounded.

    Remediation: none needed.
    """
    for i in range(MAX_RESULTS_PER_CHECK + 500):
        yield ok(f"item {i}", "fine") if i % 100 else fail(f"item {i}", "bad", severity=Severity.HIGH)


def test_results_of_one_check_on_one_target_are_capped_with_a_summary() -> None:
    result = run_checks(Inventory(domains=(Domain(name="a", origin="a.xml"),)), _catalog(very_talkative))
    findings = result.findings
    assert len(findings) == MAX_RESULTS_PER_CHECK
    failures = (MAX_RESULTS_PER_CHECK + 500 + 99) // 100
    assert sum(f.status is Status.FAIL for f in findings[:-1]) == failures  # failures are kept first
    summary = findings[-1]
    assert summary.subject == "(results over the limit)" and summary.status is Status.PASS
    assert "501 more results" in summary.message and "0 failed" in summary.message


def test_a_batch_computes_each_findings_own_fingerprint() -> None:
    """TargetBatch hashes the target's part once; the result is make_fingerprint's, finding by finding,
    also when findings name other targets, no host, or undecodable guest bytes."""
    from vmsec.findings import Finding, Severity, Status, Target, TargetKind, make_fingerprint
    from vmsec.results import TargetBatch

    host = Target(TargetKind.HOST, "hv\udce9")
    vm = Target(TargetKind.DOMAIN, "web01", "hv1")
    same_vm = Target(TargetKind.DOMAIN, "web01", "hv1")
    findings = [Finding(check_id=f"VMS-X-{i}", title="t", status=Status.PASS, severity=Severity.LOW,
                        target=t, subject=s, message="m")
                for i, (t, s) in enumerate([(vm, "a"), (same_vm, "b"), (host, "c\udcff"), (vm, ""),
                                            (Target(TargetKind.DOMAIN, "web01", None), "a")])]
    got = TargetBatch(vm, findings).fingerprints
    assert got == [make_fingerprint(f.check_id, f.target, f.subject) for f in findings]
    assert len(set(got)) == len(got)
