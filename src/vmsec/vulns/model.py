"""Normalised advisory data: what every feed is turned into before it reaches the database.

One :class:`AffectedPackage` says how one package of one distribution release stands with respect to
one vulnerability. Feeds differ wildly (OSV ranges, the Debian tracker's per-release status and
no-dsa notes, Alpine's fixed-only secfixes); the matcher sees only this shape, with the distro's own
states kept apart instead of collapsed (unfixed is not won't-fix is not not-affected).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple

from msgspec import Struct


class FixState(StrEnum):
    FIXED = "fixed"  # fixed in ``fixed``; vulnerable below it (and at/above ``introduced``)
    UNFIXED = "unfixed"  # affected, no fix released for this release yet
    WILL_NOT_FIX = "will_not_fix"  # the distribution decided not to fix (Debian nodsa ignored)
    FIX_DEFERRED = "fix_deferred"  # fix postponed to a later update (Debian postponed)
    NOT_AFFECTED = "not_affected"  # Debian fixed_version "0", Alpine secfixes "0"
    UNDER_INVESTIGATION = "under_investigation"  # Debian undetermined
    END_OF_LIFE = "end_of_life"  # the package is out of security support


class AffectedPackage(NamedTuple):
    """(A NamedTuple: tens of thousands are built per scan; build it with keywords.)"""

    source: str  # feed: debian-tracker, osv, alpine-secdb
    vuln_id: str  # CVE-2024-6387, DSA-5724-1, ALSA-2024:4312, TEMP-…
    ecosystem: str  # OSV-style: "Debian:12", "Alpine:v3.20", "AlmaLinux:9", "Rocky Linux:9"
    package: str  # source package for Debian/Ubuntu/Alpine; binary RPM name for RHEL family
    state: FixState
    aliases: tuple[str, ...] = ()  # other ids of the same vulnerability (CVE, DSA, USN …)
    introduced: str | None = None  # None or "0": since the beginning
    fixed: str | None = None
    last_affected: str | None = None
    severity: str | None = None  # the distribution's own rating (urgency / priority)
    minor: bool = False  # Debian no-dsa: "minor issue", may be fixed in a point release
    note: str | None = None
    summary: str | None = None
    published: str | None = None
    modified: str | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.vuln_id, *self.aliases)

    @property
    def cves(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i for i in self.ids if i.startswith("CVE-")))


class KevEntry(Struct, frozen=True, kw_only=True):
    cve: str
    date_added: str | None
    due_date: str | None = None
    vendor: str | None = None
    product: str | None = None
    name: str | None = None
    ransomware: str | None = None  # "Known" | "Unknown"


class EpssScore(Struct, frozen=True, kw_only=True):
    cve: str
    score: float
    percentile: float
    model_version: str | None = None
    score_date: str | None = None


class ParsedFeed(Struct, frozen=True):
    """One feed file, recognised and parsed (lazily, by the iterators)."""

    name: str  # source name in the database, e.g. "osv:debian", "debian-tracker", "kev"
    kind: str  # osv | debian-tracker | alpine-secdb | kev | epss
    affected: Iterable[AffectedPackage] = ()
    kev: Iterable[KevEntry] = ()
    epss: Iterable[EpssScore] = ()
