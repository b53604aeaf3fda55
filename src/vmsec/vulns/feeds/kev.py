"""CISA Known Exploited Vulnerabilities catalogue (JSON)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from typing import Any

from vmsec.errors import AdvisorySourceError
from vmsec.vulns.model import KevEntry, ParsedFeed


def parse_kev(data: bytes | str, origin: str = "kev") -> Iterator[KevEntry]:
    try:
        doc: Any = json.loads(data)
    except ValueError as exc:
        raise AdvisorySourceError(f"{origin}: not JSON: {exc}") from exc
    if not isinstance(doc, Mapping) or not isinstance(doc.get("vulnerabilities"), list):
        raise AdvisorySourceError(f"{origin}: not a KEV catalogue (no vulnerabilities list)")
    for v in doc["vulnerabilities"]:
        if isinstance(v, Mapping) and isinstance(v.get("cveID"), str):
            yield KevEntry(cve=v["cveID"], date_added=v.get("dateAdded"), due_date=v.get("dueDate"),
                           vendor=v.get("vendorProject"), product=v.get("product"),
                           name=v.get("vulnerabilityName"), ransomware=v.get("knownRansomwareCampaignUse"))


def recognise(name: str, data: bytes) -> ParsedFeed | None:
    """The KEV catalogue, plain or gzip-compressed."""
    if data[:2] == b"\x1f\x8b" and name.rsplit("/", 1)[-1].lower().startswith("known_exploited"):
        try:
            data = gzip.decompress(data)
        except OSError as exc:
            raise AdvisorySourceError(f"{name}: bad gzip: {exc}") from exc
    head = data[:65536].lstrip()
    if head.startswith(b"{") and b'"vulnerabilities"' in head and b'"catalogVersion"' in head:
        return ParsedFeed("kev", "kev", kev=parse_kev(data, name))
    return None
