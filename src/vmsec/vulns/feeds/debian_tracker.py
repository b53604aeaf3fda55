"""The Debian Security Tracker JSON (``tracker/data/json``): {source: {CVE-or-TEMP id: {releases}}}.

Preferred for Debian over OSV: it keeps the states OSV drops — no-dsa (minor), ignored (won't fix),
postponed, undetermined, end-of-life — and ``fixed_version "0"`` (not affected).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from vmsec.errors import AdvisorySourceError
from vmsec.vulns.model import AffectedPackage, FixState, ParsedFeed
from vmsec.vulns.versions import InvalidVersion, dpkg_compare

SOURCE = "debian-tracker"

# Debian release code names → the OSV-style ecosystem the matcher keys on.
DEBIAN_RELEASES: Mapping[str, str] = {
    "buster": "Debian:10", "bullseye": "Debian:11", "bookworm": "Debian:12", "trixie": "Debian:13",
    "forky": "Debian:14", "duke": "Debian:15", "sid": "Debian:unstable",
}


def _state(release: Mapping[str, Any]) -> tuple[FixState, bool, str | None]:
    status = release.get("status")
    nodsa = release.get("nodsa")
    reason = release.get("nodsa_reason")
    urgency = str(release.get("urgency") or "")
    if status == "resolved":
        if release.get("fixed_version") == "0":
            return FixState.NOT_AFFECTED, False, None
        return FixState.FIXED, False, None
    if status == "undetermined":
        return FixState.UNDER_INVESTIGATION, False, None
    if urgency == "end-of-life":
        return FixState.END_OF_LIFE, False, "package is out of security support"
    if reason == "ignored":
        return FixState.WILL_NOT_FIX, True, str(nodsa) if nodsa else "ignored"
    if reason == "postponed":
        return FixState.FIX_DEFERRED, True, str(nodsa) if nodsa else "postponed"
    return FixState.UNFIXED, bool(nodsa), str(nodsa) if nodsa else None


def parse_tracker(data: bytes | str | Mapping[str, Any],
                  origin: str = "tracker json") -> Iterator[AffectedPackage]:
    """Yield one AffectedPackage per (source package, vulnerability, known release)."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise AdvisorySourceError(f"{origin}: not JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise AdvisorySourceError(f"{origin}: expected an object of source packages")
    for package, vulns in data.items():
        if not isinstance(vulns, Mapping):
            continue
        for vuln_id, record in vulns.items():
            if not isinstance(record, Mapping):
                continue
            releases = record.get("releases")
            if not isinstance(releases, Mapping):  # the real feed has "releases": [] at times
                continue
            description = record.get("description")
            for codename, release in releases.items():
                ecosystem = DEBIAN_RELEASES.get(codename)
                if ecosystem is None or not isinstance(release, Mapping):
                    continue
                state, minor, note = _state(release)
                fixed = release.get("fixed_version") if state is FixState.FIXED else None
                if fixed and not _released(str(fixed), release.get("repositories")):
                    # A fix the suite does not carry yet is not a fix (trivy-db #380).
                    state, note = FixState.UNFIXED, f"fixed in {fixed}, not yet released for {codename}"
                    fixed = None
                yield AffectedPackage(
                    source=SOURCE, vuln_id=str(vuln_id), ecosystem=ecosystem, package=str(package),
                    state=state, fixed=str(fixed) if fixed else None,
                    severity=_urgency(release.get("urgency")), minor=minor, note=note,
                    summary=str(description)[:500] if description else None,
                )


def _released(fixed: str, repositories: object) -> bool:
    """True when some pocket of the release (bookworm, bookworm-security …) carries ``fixed`` or newer.
    Without repository data the tracker's word is taken."""
    if not isinstance(repositories, Mapping) or not repositories:
        return True
    for version in repositories.values():
        try:
            if dpkg_compare(str(version), fixed) >= 0:
                return True
        except InvalidVersion:
            continue
    return False


def _urgency(value: object) -> str | None:
    """Debian urgencies; the ``*``/``**`` suffixes mark ratings derived from NVD scores."""
    if not value or value == "not yet assigned":
        return None
    return str(value).rstrip("*")


def recognise(name: str, data: bytes) -> ParsedFeed | None:
    """The tracker JSON: an object of source packages (checked last: it is the most generic shape)."""
    if data[:65536].lstrip().startswith(b"{"):
        return ParsedFeed(SOURCE, SOURCE, affected=parse_tracker(data, name))
    return None
