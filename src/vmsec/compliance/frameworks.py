"""Compliance frameworks as data, and the per-requirement view of a finished scan.

A framework file (``vmsec/data/compliance/frameworks/NAME.toml``) lists requirements; each names the
vmsec checks whose findings are evidence for it, where its id and title come from, and whether that id
and wording were read in the source (``verified``). :func:`evaluate` turns a :class:`ScanResult` into a
status per requirement. Nothing here runs a check or reads a host: it only regroups findings.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import cache
from typing import Any

from msgspec import Struct

from vmsec import DATA_DIR
from vmsec.checkinfo import CheckIndex
from vmsec.errors import ConfigError
from vmsec.findings import Finding, Status
from vmsec.results import ScanResult

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_CHECK_ID = re.compile(r"^VMS-[A-Z]+-[0-9]{3}$")
_MAX_FILE = 1 << 20  # a framework file is hand-written data; anything bigger is not one
_MAX_REQUIREMENTS = 5000


class ReqStatus(StrEnum):
    """The verdict on one requirement."""

    PASS = "pass"  # every finding of every mapped check is PASS
    FAIL = "fail"  # at least one mapped finding FAILs
    UNKNOWN = "unknown"  # no FAIL, but some mapped finding is UNKNOWN or ERROR
    WAIVED = "waived"  # no FAIL/UNKNOWN/ERROR, but a failure was accepted by a waiver
    NOT_ASSESSED = "not-assessed"  # no mapped check produced a finding (or none is mapped)


STATUS_ORDER: tuple[ReqStatus, ...] = (ReqStatus.FAIL, ReqStatus.UNKNOWN, ReqStatus.WAIVED,
                                      ReqStatus.PASS, ReqStatus.NOT_ASSESSED)


class Requirement(Struct, frozen=True, kw_only=True):
    id: str
    title: str
    source: str
    verified: bool  # the id and wording were read in the source document
    checks: tuple[str, ...]
    note: str = ""


class Framework(Struct, frozen=True, kw_only=True):
    name: str
    title: str
    version: str
    url: str
    scope: str
    requirements: tuple[Requirement, ...]
    # The whole benchmark's item count and where it was counted (None: not recorded). The file
    # lists only the items vmsec maps; coverage is reported against this total when it is known.
    total_items: int | None = None
    total_items_source: str | None = None

    @property
    def check_ids(self) -> frozenset[str]:
        return frozenset(c for r in self.requirements for c in r.checks)


class RequirementResult(Struct, frozen=True, kw_only=True):
    requirement: Requirement
    status: ReqStatus
    findings: tuple[Finding, ...]  # the evidence: every finding of a mapped check, worst first
    checks_run: tuple[str, ...]  # mapped checks that produced at least one finding

    @property
    def mapped(self) -> bool:
        return bool(self.requirement.checks)


class Coverage(Struct, frozen=True, kw_only=True):
    total: int  # requirements in the framework file
    mapped: int  # requirements with at least one mapped check
    assessed: int  # mapped requirements with at least one finding in this scan
    benchmark_total: int | None = None  # items in the whole benchmark (None: not recorded)
    benchmark_source: str | None = None

    @property
    def mapped_ratio(self) -> float:
        return self.mapped / self.total if self.total else 0.0

    @property
    def benchmark_ratio(self) -> float | None:
        """Mapped requirements over the whole benchmark's items (None when its size is unknown)."""
        if not self.benchmark_total:
            return None
        return self.mapped / self.benchmark_total

    @property
    def assessed_ratio(self) -> float:
        return self.assessed / self.mapped if self.mapped else 0.0


class ComplianceResult(Struct, frozen=True, kw_only=True):
    framework: Framework
    requirements: tuple[RequirementResult, ...]
    coverage: Coverage

    @property
    def status_counts(self) -> dict[ReqStatus, int]:
        counts = dict.fromkeys(STATUS_ORDER, 0)
        for r in self.requirements:
            counts[r.status] += 1
        return counts


def _frameworks_dir() -> Any:
    return DATA_DIR / "compliance" / "frameworks"


def available() -> list[str]:
    """Names of the built-in frameworks, sorted."""
    return sorted(p.name.removesuffix(".toml") for p in _frameworks_dir().iterdir()
                  if p.name.endswith(".toml") and _NAME.fullmatch(p.name.removesuffix(".toml")))


@cache
def load_framework(name: str) -> Framework:
    """The built-in framework ``name`` (see :func:`available`); ConfigError if there is none or it is bad."""
    if not _NAME.fullmatch(name) or name not in available():
        raise ConfigError(f"unknown compliance framework {name!r}; available: {', '.join(available())}")
    resource = _frameworks_dir() / f"{name}.toml"
    data = resource.read_bytes()
    if len(data) > _MAX_FILE:
        raise ConfigError(f"compliance framework {name}: file larger than {_MAX_FILE} bytes")
    return parse_framework(data.decode("utf-8"), origin=f"{name}.toml", expected_name=name)


def parse_framework(text: str, *, origin: str, expected_name: str | None = None) -> Framework:
    """Parse and validate one framework file; every problem is a ConfigError naming ``origin``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc
    head = data.get("framework")
    if not isinstance(head, dict):
        raise ConfigError(f"{origin}: missing [framework] table")
    name = _text(head, "name", origin)
    if expected_name is not None and name != expected_name:
        raise ConfigError(f"{origin}: [framework] name {name!r} does not match the file name")
    raw = data.get("requirement", [])
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{origin}: no [[requirement]] entries")
    if len(raw) > _MAX_REQUIREMENTS:
        raise ConfigError(f"{origin}: more than {_MAX_REQUIREMENTS} requirements")
    reqs: list[Requirement] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw, 1):
        where = f"{origin}: requirement #{i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: not a table")
        rid = _text(entry, "id", where)
        where = f"{origin}: requirement {rid!r}"
        if rid in seen:
            raise ConfigError(f"{where}: duplicate id")
        seen.add(rid)
        verified = entry.get("verified")
        if not isinstance(verified, bool):
            raise ConfigError(f"{where}: 'verified' must be true or false")
        checks = entry.get("checks")
        if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
            raise ConfigError(f"{where}: 'checks' must be a list of check ids")
        bad = [c for c in checks if not _CHECK_ID.match(c)]
        if bad:
            raise ConfigError(f"{where}: not check ids: {', '.join(bad)}")
        if len(set(checks)) != len(checks):
            raise ConfigError(f"{where}: a check is listed twice")
        note = entry.get("note", "")
        if not isinstance(note, str):
            raise ConfigError(f"{where}: 'note' must be text")
        reqs.append(Requirement(id=rid, title=_text(entry, "title", where),
                                source=_text(entry, "source", where), verified=verified,
                                checks=tuple(checks), note=note))
    total = head.get("total_items")
    total_source = head.get("total_items_source")
    if (total is None) != (total_source is None):
        raise ConfigError(f"{origin}: give total_items and total_items_source together (the count and "
                          "where it was counted)")
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < len(reqs)):
        raise ConfigError(f"{origin}: total_items must be a whole number of at least {len(reqs)} (the "
                          "requirements listed)")
    if total_source is not None and (not isinstance(total_source, str) or not total_source.strip()):
        raise ConfigError(f"{origin}: total_items_source must be non-empty text")
    return Framework(name=name, title=_text(head, "title", origin), version=_text(head, "version", origin),
                     url=_text(head, "url", origin), scope=_text(head, "scope", origin),
                     requirements=tuple(reqs), total_items=total, total_items_source=total_source)


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' must be non-empty text")
    return value


def unknown_checks(framework: Framework, checks: CheckIndex) -> list[str]:
    """Check ids the framework maps that the catalogue does not have (a stale or mistyped mapping)."""
    known = checks
    return sorted(c for c in framework.check_ids if c not in known)


_FINDING_RANK = {Status.FAIL: 0, Status.ERROR: 1, Status.UNKNOWN: 2, Status.WAIVED: 3, Status.PASS: 4}


def requirement_status(statuses: Iterable[Status]) -> ReqStatus:
    """Fold the statuses of a requirement's findings into its verdict (see :class:`ReqStatus`)."""
    present = set(statuses)
    if not present:
        return ReqStatus.NOT_ASSESSED
    if Status.FAIL in present:
        return ReqStatus.FAIL
    if present & {Status.UNKNOWN, Status.ERROR}:
        return ReqStatus.UNKNOWN
    if Status.WAIVED in present:
        return ReqStatus.WAIVED
    return ReqStatus.PASS


def evaluate(framework: Framework, scan: ScanResult) -> ComplianceResult:
    """The status of every requirement of ``framework`` given the findings of ``scan``."""
    by_check: dict[str, list[Finding]] = {}
    wanted = framework.check_ids
    for f in scan.findings:
        if f.check_id in wanted:
            by_check.setdefault(f.check_id, []).append(f)
    results: list[RequirementResult] = []
    for req in framework.requirements:
        found = [f for c in req.checks for f in by_check.get(c, ())]
        found.sort(key=lambda f: (_FINDING_RANK.get(f.status, 5), -f.severity.rank, f.check_id,
                                  f.target.kind, f.target.name, f.subject))
        results.append(RequirementResult(
            requirement=req, status=requirement_status(f.status for f in found), findings=tuple(found),
            checks_run=tuple(c for c in req.checks if c in by_check)))
    mapped = sum(1 for r in results if r.mapped)
    assessed = sum(1 for r in results if r.mapped and r.findings)
    return ComplianceResult(framework=framework, requirements=tuple(results),
                            coverage=Coverage(total=len(results), mapped=mapped, assessed=assessed,
                                              benchmark_total=framework.total_items,
                                              benchmark_source=framework.total_items_source))
