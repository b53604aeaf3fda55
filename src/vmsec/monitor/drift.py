"""Semantic drift: a domain's audit compared with its previous one, finding by finding.

Not "the file changed" but "web01 now fails *No host PCI device is passed through*" — each change is
a finding whose FAIL appeared (``new``) or went away (``resolved``), named by its check and carrying
the observed message. Pure functions over findings; no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vmsec.findings import Finding, Status, Target, TargetKind

__all__ = ["AuditedTarget", "DriftChange", "audited_targets", "compare"]

# What is kept of a finding that was not PASS: [check id, status, severity, title, subject, message].
Kept = tuple[str, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class AuditedTarget:
    """One domain's (or its guest's) last audit: its non-PASS findings by fingerprint and a digest of
    every finding and state (a change while the monitor was disconnected shows as a new digest)."""

    kind: str  # domain | guest
    name: str
    uuid: str | None
    digest: str
    findings: Mapping[str, Kept]

    def to_json(self) -> dict[str, Any]:
        return {fp: list(kept) for fp, kept in self.findings.items()}

    @classmethod
    def from_json(cls, kind: str, name: str, uuid: str | None, digest: str,
                  data: Mapping[str, Any]) -> AuditedTarget:
        return cls(kind, name, uuid, digest, {fp: tuple(v) for fp, v in data.items()})


@dataclass(frozen=True, slots=True)
class DriftChange:
    """A FAIL that appeared (``new``) or disappeared (``resolved``) on a domain or guest."""

    kind: str
    name: str
    change: str  # new | resolved
    fingerprint: str
    check_id: str
    severity: str
    title: str
    subject: str
    message: str

    def describe(self) -> str:
        verb = "now fails" if self.change == "new" else "no longer fails"
        return f"{self.kind} {self.name} {verb} {self.check_id} “{self.title}”: {self.message}"


def audited_targets(findings: Iterable[Finding], details: Mapping[Target, Mapping[str, Any]]
                    ) -> dict[tuple[str, str], AuditedTarget]:
    """Each domain's and guest's audit from a scan's findings (and its target details: UUID, state).

    The digest covers every finding's fingerprint, status and message in the engine's order (which is
    deterministic for the same facts) and the domain's state: run once per audit of a whole
    connection, so each finding's fingerprint is computed once."""
    domain, guest, passed = TargetKind.DOMAIN, TargetKind.GUEST, Status.PASS
    grouped: dict[tuple[str, str], list[tuple[str, Finding]]] = {}
    for f in findings:
        kind = f.target.kind
        if kind is domain or kind is guest:
            key = (kind.value, f.target.name)
            found = grouped.get(key)
            if found is None:
                found = grouped[key] = []
            found.append((f.fingerprint, f))
    states: dict[tuple[str, str], Mapping[str, Any]] = {}
    for target, detail in details.items():
        if target.kind in (domain, guest):
            states[(target.kind.value, target.name)] = detail
            grouped.setdefault((target.kind.value, target.name), [])
    out: dict[tuple[str, str], AuditedTarget] = {}
    for (kind_name, name), pairs in grouped.items():
        state = states.get((kind_name, name), {})
        digest = hashlib.sha256(repr((state.get("state"), state.get("persistent"))).encode())
        digest.update("\x1e".join(f"{fp}\x1f{f.status}\x1f{f.message}" for fp, f in pairs)
                      .encode("utf-8", "replace"))
        kept = {fp: (f.check_id, f.status.value, f.severity.value, f.title, f.subject, f.message)
                for fp, f in pairs if f.status is not passed}
        uuid = state.get("uuid")
        out[(kind_name, name)] = AuditedTarget(kind_name, name, uuid if isinstance(uuid, str) else None,
                                          digest.hexdigest(), kept)
    return out


def compare(before: AuditedTarget | None, after: AuditedTarget | None) -> list[DriftChange]:
    """The FAILs that appeared and disappeared from ``before`` to ``after`` (either may be None: a
    domain defined or undefined — an undefined domain's FAILs are not reported as resolved)."""
    if after is None:
        return []
    old = before.findings if before is not None else {}
    changes: list[DriftChange] = []
    fail = Status.FAIL.value
    for fp, (check, status, severity, title, subject, message) in after.findings.items():
        if status == fail and (fp not in old or old[fp][1] != fail):
            changes.append(DriftChange(after.kind, after.name, "new", fp, check, severity, title, subject,
                                       message))
    for fp, (check, status, severity, title, subject, message) in old.items():
        if status == fail and (fp not in after.findings or after.findings[fp][1] != fail):
            changes.append(DriftChange(after.kind, after.name, "resolved", fp, check, severity, title,
                                       subject, message))
    return changes
