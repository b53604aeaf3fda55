"""The engine: runs checks over an inventory and turns their results into findings.

Failures are isolated: a check that raises becomes one ERROR finding (with a short trace) and the
scan goes on; a check that needed a missing fact (:func:`vmsec.checks.api.need`) becomes UNKNOWN.

:func:`evaluate` yields the findings one target at a time, in report order (host, domains, guests,
networks, each by name, then endpoints), every target exactly once: inventory-scope checks run first and their
results join the batch of the target they name. Callers can therefore stream a huge scan to the
store and a report without holding its findings.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from vmsec.checks.api import CheckSpec, Environment, FactMissing, NotApplicable, Result, Scope
from vmsec.checks.catalog import Catalog
from vmsec.facts import Domain, Endpoint, Guest, Host, Inventory, Network
from vmsec.findings import Finding, Severity, Status, Target
from vmsec.profiles import Profile, default_profile
from vmsec.results import ScanResult, TargetBatch, ambiguous_domain_names, host_target, inventory_targets
from vmsec.times import as_utc

_SCOPE_OF: dict[type, Scope] = {Host: Scope.HOST, Domain: Scope.DOMAIN, Guest: Scope.GUEST,
                                Network: Scope.NETWORK, Endpoint: Scope.ENDPOINT}


# A check as the hot loop runs it: spec, function, takes_env, id, title, tags, remediation, severity.
_Plan = tuple[CheckSpec, Any, bool, str, str, tuple[str, ...], str, Severity]


def _now() -> datetime:
    return datetime.now(UTC)


# Results one check may give for one target. Facts are bounded by the input's size, so a real target
# stays far below (a guest's known vulnerabilities: hundreds); a hostile one that still gets here is
# cut, and the last result says how many were left out and how they stood.
MAX_RESULTS_PER_CHECK = 10_000
_ORDER = {Status.FAIL: 0, Status.ERROR: 0, Status.UNKNOWN: 1}


def _capped(results: list[Result]) -> list[Result]:
    """The first results, failures first, plus one summary of the rest (FAIL if any failed)."""
    kept = sorted(results, key=lambda r: _ORDER.get(r.status, 2))[:MAX_RESULTS_PER_CHECK - 1]
    rest = sorted(results, key=lambda r: _ORDER.get(r.status, 2))[MAX_RESULTS_PER_CHECK - 1:]
    counts = {s: sum(1 for r in rest if r.status is s) for s in (Status.FAIL, Status.UNKNOWN, Status.PASS)}
    status = Status.FAIL if counts[Status.FAIL] else Status.UNKNOWN if counts[Status.UNKNOWN] else Status.PASS
    worst = next((r.severity for r in rest if r.status is Status.FAIL and r.severity is not None), None)
    message = (f"{len(rest)} more results of this check on this target are not listed (at most "
               f"{MAX_RESULTS_PER_CHECK} are kept): {counts[Status.FAIL]} failed, {counts[Status.UNKNOWN]} "
               f"unknown, {counts[Status.PASS]} passed")
    return [*kept, Result(status, "(results over the limit)", message, (), worst)]


class Evaluation:
    """Checks of one catalogue and profile, ready to run over inventories."""

    def __init__(self, catalog: Catalog, profile: Profile | None = None, *,
                 today: str | None = None, now: datetime | None = None) -> None:
        self.profile = profile or default_profile()
        self.checks = [c for c in catalog.checks if c.id not in self.profile.disabled]
        self.by_scope: dict[Scope, list[CheckSpec]] = {scope: [] for scope in Scope}
        for spec in self.checks:
            self.by_scope[spec.scope].append(spec)
        self.severities = {spec.id: self.profile.severity_for(spec.id, spec.severity) for spec in self.checks}
        # What the hot loop needs of each check, unpacked once (attribute lookups per call add up over
        # a hundred checks × thousands of domains).
        self.plans: dict[Scope, list[_Plan]] = {
            scope: [(spec, spec.func, spec.takes_env, spec.id, spec.title, spec.tags, spec.remediation,
                     self.severities[spec.id]) for spec in specs]
            for scope, specs in self.by_scope.items()}
        # Checks are pure: the day they judge against (end of life) and the instant (a certificate's
        # end) come in as parameters — the scan's start, in UTC; ``today`` alone names another day.
        if now is None and today is None:
            now = _now()
        instant = {} if now is None else {"now": as_utc(now).isoformat()}
        day = today or instant["now"][:10]
        self.params = {"today": day, **instant, **self.profile.params}

    def environment(self, inventory: Inventory) -> Environment:
        return Environment(inventory=inventory, host=inventory.host, params=self.params,
                           multi_tenant=self.profile.multi_tenant,
                           ambiguous_names=ambiguous_domain_names(inventory))

    def run_scope(self, scope: Scope, subject: object, target: Target, env: Environment,
                  out: list[Finding]) -> None:
        # The hot loop of large scans (thousands of domains × ~100 checks): kept flat on purpose.
        # Findings are built with tuple.__new__ (the NamedTuple's own __new__ is Python code, three
        # times slower); the field order is Finding's.
        append = out.append
        profile = self.profile
        new, finding = tuple.__new__, Finding
        for spec, func, takes_env, check_id, title, tags, remediation, severity in self.plans[scope]:
            try:
                # Materialise inside the try: a generator raises only when iterated.
                results = list(func(subject, env) if takes_env else func(subject))
            except FactMissing as missing:
                results = [Result(Status.UNKNOWN, missing.subject or _default_subject(target),
                                  missing.reason, missing.evidence)]
            except NotApplicable:
                continue
            except Exception as exc:  # a crashing check must not end the scan
                append(_error_finding(spec, exc, target, severity))
                continue
            if len(results) > MAX_RESULTS_PER_CHECK and scope is not Scope.INVENTORY:
                results = _capped(results)
            for status, subject_, message, evidence, r_severity, r_target, vuln, r_tags in results:
                sev = severity if r_severity is None else profile.severity_for(check_id, r_severity)
                append(new(finding, (check_id, title, status, sev, r_target or target, subject_, message,
                                     evidence, tags + r_tags if r_tags else tags, remediation, vuln, None)))

    def evaluate(self, inventory: Inventory,
                 progress: Callable[[str], None] | None = None) -> Iterator[TargetBatch]:
        """The findings of every target of ``inventory``, one batch per target, in report order."""
        env = self.environment(inventory)
        host = inventory.host
        cross: list[Finding] = []
        self.run_scope(Scope.INVENTORY, inventory, host_target(host), env, cross)
        pending: dict[Target, list[Finding]] = {}
        for f in cross:
            pending.setdefault(f.target, []).append(f)
        for target, fact in inventory_targets(inventory):
            if progress is not None:
                progress(f"{target.kind} {target.name}")
            found: list[Finding] = []
            self.run_scope(_SCOPE_OF[type(fact)], fact, target, env, found)
            if isinstance(fact, Host) and inventory.host_os is not None:
                # The hypervisor's own OS (SSH, accounts, sudo) is part of the management plane.
                self.run_scope(Scope.GUEST, inventory.host_os, target, env, found)
            found += pending.pop(target, ())
            yield TargetBatch(target, found)
        if host is None and (inventory.host_os is not None or pending.get(host_target(None))):
            found = []
            if inventory.host_os is not None:
                self.run_scope(Scope.GUEST, inventory.host_os, host_target(None), env, found)
            found += pending.pop(host_target(None), ())
            yield TargetBatch(host_target(None), found)
        # Results an inventory check attributed to a target outside the inventory (rare): kept.
        for target, found in pending.items():
            yield TargetBatch(target, found)


def run_checks(inventory: Inventory, catalog: Catalog, profile: Profile | None = None,
               progress: Callable[[str], None] | None = None,
               clock: Callable[[], datetime] = _now) -> ScanResult:
    """Evaluate every applicable check of ``catalog`` on every target of ``inventory``, keeping every
    finding in memory. (The whole pipeline, with collection, matching and sinks, is
    :func:`vmsec.pipeline.scan`.)"""
    started = clock()
    evaluation = Evaluation(catalog, profile, now=started)
    findings: list[Finding] = []
    targets: list[Target] = []
    for batch in evaluation.evaluate(inventory, progress):
        targets.append(batch.target)
        findings += batch.findings
    return ScanResult.from_inventory(inventory, tuple(findings), profile=evaluation.profile.name,
                                     started_at=started, finished_at=clock(),
                                     checks_run=len(evaluation.checks), targets=tuple(targets))


def _error_finding(spec: CheckSpec, exc: Exception, target: Target, severity: Severity) -> Finding:
    trace = "".join(traceback.format_exception(exc, limit=-3)).strip()
    return Finding(check_id=spec.id, title=spec.title, status=Status.ERROR, severity=severity,
                   target=target, subject=_default_subject(target),
                   message=f"check crashed: {type(exc).__name__}: {exc}", tags=spec.tags,
                   remediation=spec.remediation, detail=trace[-2000:])


def _default_subject(target: Target) -> str:
    return f"{target.kind} {target.name}"


__all__ = ["Evaluation", "run_checks"]
