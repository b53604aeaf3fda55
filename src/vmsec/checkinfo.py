"""Check metadata without the checks: what reporters, ``vmsec checks list|explain``, SARIF rules and the
web need to say about a check (title, severity, rationale, remediation, references).

The catalogue's metadata ships as ``vmsec/data/catalog.json``, generated from the check modules by
``scripts/gen_checks_doc.py`` (a test keeps it identical to the live catalogue). Reading it costs a
few milliseconds; importing every check module and the fact classes they need costs far more — so a
report rendered from the store, or ``vmsec checks list``, never imports a check.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import Any

import msgspec
from msgspec import Struct

from vmsec import DATA_DIR
from vmsec.findings import Severity

__all__ = ["CheckIndex", "CheckInfo", "packaged_index"]


class CheckInfo(Struct, frozen=True, kw_only=True):
    """One check's reviewed metadata."""

    id: str
    title: str
    severity: Severity
    scope: str  # host | domain | network | guest | inventory
    tags: tuple[str, ...]
    references: tuple[str, ...]
    rationale: str
    remediation: str
    module: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "severity": self.severity.value, "scope": self.scope,
                "tags": list(self.tags), "references": list(self.references), "rationale": self.rationale,
                "remediation": self.remediation, "module": self.module}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckInfo:
        return cls(id=data["id"], title=data["title"], severity=Severity(data["severity"]),
                   scope=data["scope"], tags=tuple(data["tags"]), references=tuple(data["references"]),
                   rationale=data["rationale"], remediation=data["remediation"], module=data["module"])


class CheckIndex(Mapping[str, CheckInfo]):
    """Check metadata by id, in catalogue order."""

    def __init__(self, infos: Iterable[CheckInfo]) -> None:
        self._by_id = {i.id: i for i in infos}

    def __getitem__(self, check_id: str) -> CheckInfo:
        return self._by_id[check_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def checks(self) -> tuple[CheckInfo, ...]:
        return tuple(self._by_id.values())

    def lookup(self, check_id: str) -> CheckInfo | None:
        """Case-insensitive lookup."""
        return self._by_id.get(check_id.upper())

    def select(self, ids: Iterable[str] | None = None, tags: Iterable[str] | None = None) -> CheckIndex:
        """The checks named by ``ids`` (``VMS-DOM-*`` selects a prefix) and carrying one of ``tags``."""
        chosen: Iterable[CheckInfo] = self._by_id.values()
        if ids:
            wanted = [i.upper() for i in ids]
            exact = {w for w in wanted if not w.endswith("*")}
            prefixes = tuple(w.rstrip("*") for w in wanted if w.endswith("*"))
            chosen = [c for c in chosen if c.id in exact or (prefixes and c.id.startswith(prefixes))]
        if tags:
            tagset = set(tags)
            chosen = [c for c in chosen if tagset & set(c.tags)]
        return CheckIndex(chosen)

    def to_json(self) -> str:
        import json  # the catalogue generator's; reading it back goes through msgspec

        return json.dumps([c.as_dict() for c in self._by_id.values()], indent=1, ensure_ascii=False) + "\n"


@cache
def packaged_index() -> CheckIndex:
    """The catalogue's metadata as shipped with this vmsec (no check module is imported)."""
    # Decoded straight into CheckInfo structs by msgspec (validated, in C): a third of the cost of
    # loading the JSON and building each struct in Python, on every scan (docs/performance.md).
    data = (DATA_DIR / "catalog.json").read_bytes()
    return CheckIndex(msgspec.json.decode(data, type=list[CheckInfo]))
