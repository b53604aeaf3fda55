"""Findings: the outcome of a check (or, later, of the vulnerability matcher) on one subject.

A finding's fingerprint is stable across scans for the same check, target and subject, so history,
waivers and SARIF can say "new", "fixed" or "still open".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

from msgspec import Struct

try:  # hashlib.blake2b is this very type; importing hashlib also loads OpenSSL, ≈ 3 ms of every process
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter built without its own BLAKE2
    from hashlib import blake2b


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"
    ERROR = "ERROR"
    WAIVED = "WAIVED"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: critical 4 … info 0."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 4, Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1,
                  Severity.INFO: 0}


class TargetKind(StrEnum):
    HOST = "host"
    DOMAIN = "domain"
    NETWORK = "network"
    GUEST = "guest"
    ENDPOINT = "endpoint"  # a network listener (address:port/protocol) seen by a probe


class Target(Struct, frozen=True):
    kind: TargetKind
    name: str
    host: str | None = None  # the hypervisor host this target belongs to, when known


class Evidence(NamedTuple):
    """One observed fact: where it was read (file, URI, sysfs path), which element or key, its value."""

    source: str
    locator: str = ""
    value: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"source": self.source, "locator": self.locator, "value": self.value}


class Finding(NamedTuple):
    """One result of one check on one subject.

    A NamedTuple rather than a frozen dataclass: just as immutable, and about four times cheaper to
    build — a scan of a thousand domains makes tens of thousands of these (see docs/performance.md).
    Build it with keywords.
    """

    check_id: str
    title: str
    status: Status
    severity: Severity
    target: Target
    subject: str
    message: str
    evidence: tuple[Evidence, ...] = ()
    tags: tuple[str, ...] = ()
    remediation: str = ""
    vulnerability: Mapping[str, Any] | None = None
    detail: str | None = None  # e.g. the traceback of an ERROR

    @property
    def fingerprint(self) -> str:
        # Computed when asked for: hashing every finding eagerly was a fifth of the engine's time.
        return make_fingerprint(self.check_id, self.target, self.subject)


def make_fingerprint(check_id: str, target: Target, subject: str) -> str:
    """Stable identity of a finding: check, target and subject — never the message or status."""
    return _hash("\x1f".join((check_id, target.kind, target.host or "", target.name, subject)))


def _hash(raw: str) -> str:
    # The text as the store keeps it (store.writer.clean_text: NUL as "\x00", a lone surrogate as
    # "\udcff"), so that a finding re-read from the store has the fingerprint it had when it ran.
    if "\x00" in raw:
        raw = raw.replace("\x00", "\\x00")
    return blake2b(raw.encode("utf-8", "backslashreplace"), digest_size=16).hexdigest()


def fingerprints_of(findings: Sequence[Finding]) -> list[str]:
    """:func:`make_fingerprint` of each finding, the target's part of the hashed text built once per
    run of findings of one target (a batch is one target's findings) instead of once per finding."""
    out: list[str] = []
    append = out.append
    target: Target | None = None
    middle = ""
    for f in findings:
        t = f[4]  # Finding is a NamedTuple: check_id, title, status, severity, target, subject, …
        if t is not target and t != target:
            target, middle = t, "\x1f".join(("", t.kind, t.host or "", t.name, ""))
        raw = f[0] + middle + f[5]  # _hash, inlined: this runs once per finding of every scan
        if "\x00" in raw:
            raw = raw.replace("\x00", "\\x00")
        append(blake2b(raw.encode("utf-8", "backslashreplace"), digest_size=16).hexdigest())
    return out
