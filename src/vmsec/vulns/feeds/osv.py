"""OSV records (osv.dev per-ecosystem ``all.zip`` dumps): Debian, Ubuntu, Alpine, AlmaLinux, Rocky …

Only ECOSYSTEM ranges count (GIT ranges speak of upstream commits). A record with ``withdrawn`` is
ignored. Distro records name the CVE in ``related`` or ``upstream`` rather than ``aliases``; all of
them become aliases here so duplicates across feeds merge.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

from vmsec.errors import AdvisorySourceError
from vmsec.vulns.model import AffectedPackage, FixState, ParsedFeed

SOURCE = "osv"
MAX_RECORD_BYTES = 8 * 1024 * 1024  # one OSV record; the largest real ones are ~1 MB
MAX_TOTAL_BYTES = 4 * 1024**3  # a whole dump, uncompressed (Debian's is ~350 MB)
MAX_MEMBERS = 500_000


def _ids(record: Mapping[str, Any]) -> tuple[str, ...]:
    ids: list[str] = []
    for key in ("aliases", "upstream", "related"):
        value = record.get(key)
        if isinstance(value, list):
            ids.extend(str(v) for v in value if isinstance(v, str))
    return tuple(dict.fromkeys(i for i in ids if i != record.get("id")))


def _severity(affected: Mapping[str, Any]) -> str | None:
    eco = affected.get("ecosystem_specific")
    if isinstance(eco, Mapping):
        for key in ("urgency", "ubuntu_priority", "severity"):
            value = eco.get(key)
            if isinstance(value, str) and value and value != "not yet assigned":
                return value.rstrip("*")
    db = affected.get("database_specific")
    if isinstance(db, Mapping) and isinstance(db.get("severity"), str):
        return str(db["severity"])
    return None


def _intervals(events: list[Any]) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(introduced, fixed, last_affected) per interval of one range's ordered events."""
    introduced: str | None = None
    open_interval = False
    for event in events:
        if not isinstance(event, Mapping):
            continue
        if "introduced" in event:
            if open_interval:
                yield introduced, None, None
            introduced = str(event["introduced"])
            open_interval = True
        elif "fixed" in event:
            yield introduced, str(event["fixed"]), None
            open_interval = False
        elif "last_affected" in event:
            yield introduced, None, str(event["last_affected"])
            open_interval = False
    if open_interval:
        yield introduced, None, None


def parse_record(record: Mapping[str, Any]) -> Iterator[AffectedPackage]:
    if record.get("withdrawn"):
        return
    vuln_id = record.get("id")
    if not isinstance(vuln_id, str):
        return
    aliases = _ids(record)
    summary = record.get("summary")
    for affected in record.get("affected") or ():
        if not isinstance(affected, Mapping):
            continue
        package = affected.get("package")
        if not isinstance(package, Mapping):
            continue
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str):
            continue
        severity = _severity(affected)
        for rng in affected.get("ranges") or ():
            if not isinstance(rng, Mapping) or rng.get("type") != "ECOSYSTEM":
                continue
            for introduced, fixed, last in _intervals(list(rng.get("events") or ())):
                if fixed == "0":  # "fixed in 0": never affected (pitfall: not a real version)
                    state = FixState.NOT_AFFECTED
                else:
                    state = FixState.FIXED if fixed else FixState.UNFIXED
                yield AffectedPackage(
                    source=SOURCE, vuln_id=vuln_id, ecosystem=ecosystem, package=name, state=state,
                    aliases=aliases, introduced=None if introduced in (None, "0") else introduced,
                    fixed=fixed if state is FixState.FIXED else None, last_affected=last,
                    severity=severity, summary=str(summary)[:500] if summary else None,
                    published=record.get("published"), modified=record.get("modified"),
                )


def parse_json(data: bytes | str, origin: str) -> Iterator[AffectedPackage]:
    try:
        record = json.loads(data)
    except ValueError as exc:
        raise AdvisorySourceError(f"{origin}: not JSON: {exc}") from exc
    if not isinstance(record, Mapping):
        raise AdvisorySourceError(f"{origin}: an OSV record is a JSON object")
    yield from parse_record(record)


def parse_zip(data: bytes, origin: str) -> Iterator[AffectedPackage]:
    """Every ``*.json`` member of an OSV ``all.zip``, with size caps against zip bombs."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise AdvisorySourceError(f"{origin}: not a zip archive: {exc}") from exc
    with archive:
        members = [m for m in archive.infolist() if m.filename.endswith(".json")]
        if len(members) > MAX_MEMBERS:
            raise AdvisorySourceError(f"{origin}: {len(members)} records, over the {MAX_MEMBERS} limit")
        total = 0
        for member in members:
            if member.file_size > MAX_RECORD_BYTES:
                raise AdvisorySourceError(f"{origin}: {member.filename} is {member.file_size} bytes")
            total += member.file_size
            if total > MAX_TOTAL_BYTES:
                raise AdvisorySourceError(f"{origin}: archive expands beyond {MAX_TOTAL_BYTES} bytes")
            with archive.open(member) as fh:
                raw = fh.read(MAX_RECORD_BYTES + 1)
            if len(raw) > MAX_RECORD_BYTES:
                raise AdvisorySourceError(f"{origin}: {member.filename} expands past its stated size")
            yield from parse_json(raw, f"{origin}:{member.filename}")


def recognise(name: str, data: bytes) -> ParsedFeed | None:
    """An OSV ``all.zip`` dump, or a single OSV record (JSON with ``id`` and ``affected``)."""
    lowered = name.rsplit("/", 1)[-1].lower()
    if data[:2] == b"PK":
        stem = lowered.removesuffix(".zip").removesuffix("-all").removesuffix("all").rstrip("-_/")
        return ParsedFeed(f"osv:{stem or lowered}", "osv", affected=parse_zip(data, name))
    head = data[:65536].lstrip()
    if head.startswith(b"{") and b'"affected"' in head and b'"id"' in head and b'"releases"' not in head:
        return ParsedFeed(f"osv:{lowered.removesuffix('.json')}", "osv", affected=parse_json(data, name))
    return None
