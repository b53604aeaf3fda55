"""Alpine secdb (secdb.alpinelinux.org/v3.xx/{main,community}.json).

Only fixes are listed (an unfixed vulnerability is absent, so secdb alone cannot report unfixed
issues — say so in results). Package names are origin (source) packages; the key "0" means not
affected; one id string may hold several ids separated by spaces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from vmsec.errors import AdvisorySourceError
from vmsec.vulns.model import AffectedPackage, FixState, ParsedFeed

SOURCE = "alpine-secdb"


def parse_secdb(data: bytes | str, origin: str = "secdb") -> Iterator[AffectedPackage]:
    try:
        doc: Any = json.loads(data)
    except ValueError as exc:
        raise AdvisorySourceError(f"{origin}: not JSON: {exc}") from exc
    if not isinstance(doc, Mapping) or not isinstance(doc.get("distroversion"), str):
        raise AdvisorySourceError(f"{origin}: not an Alpine secdb document (no distroversion)")
    ecosystem = f"Alpine:{doc['distroversion']}"
    for entry in doc.get("packages") or ():
        pkg = entry.get("pkg") if isinstance(entry, Mapping) else None
        if not isinstance(pkg, Mapping) or not isinstance(pkg.get("name"), str):
            continue
        secfixes = pkg.get("secfixes")
        if not isinstance(secfixes, Mapping):
            continue
        for version, ids in secfixes.items():
            if not isinstance(ids, list):
                continue
            state = FixState.NOT_AFFECTED if str(version) == "0" else FixState.FIXED
            for id_text in ids:
                parts = str(id_text).split()
                if not parts:
                    continue
                yield AffectedPackage(
                    source=SOURCE, vuln_id=parts[0], aliases=tuple(parts[1:]), ecosystem=ecosystem,
                    package=str(pkg["name"]), state=state,
                    fixed=str(version) if state is FixState.FIXED else None,
                )


def recognise(name: str, data: bytes) -> ParsedFeed | None:
    head = data[:65536].lstrip()
    if head.startswith(b"{") and b'"distroversion"' in head and b'"packages"' in head:
        stem = name.rsplit("/", 1)[-1].lower().removesuffix(".json")
        return ParsedFeed(f"alpine-secdb:{stem}", "alpine-secdb", affected=parse_secdb(data, name))
    return None
