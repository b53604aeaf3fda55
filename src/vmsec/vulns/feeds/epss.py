"""FIRST EPSS daily scores (CSV, optionally gzip): ``#model_version:…,score_date:…`` then
``cve,epss,percentile``. The model version is kept: scores of different models do not compare."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator

from vmsec.errors import AdvisorySourceError
from vmsec.vulns.model import EpssScore, ParsedFeed


def parse_epss(data: bytes, origin: str = "epss") -> Iterator[EpssScore]:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError as exc:
            raise AdvisorySourceError(f"{origin}: bad gzip: {exc}") from exc
    text = data.decode("utf-8", "replace")
    model = score_date = None
    lines = text.splitlines()
    if lines and lines[0].startswith("#"):
        for part in lines[0].lstrip("#").split(","):
            key, _, value = part.partition(":")
            if key.strip() == "model_version":
                model = value.strip()
            elif key.strip() == "score_date":
                score_date = value.strip()
        lines = lines[1:]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    if reader.fieldnames is None or not {"cve", "epss", "percentile"} <= set(reader.fieldnames):
        raise AdvisorySourceError(f"{origin}: expected columns cve,epss,percentile")
    for row in reader:
        try:
            yield EpssScore(cve=row["cve"], score=float(row["epss"]), percentile=float(row["percentile"]),
                            model_version=model, score_date=score_date)
        except (TypeError, ValueError):
            continue


def recognise(name: str, data: bytes) -> ParsedFeed | None:
    """EPSS scores: a CSV (or gzip CSV) whose name says epss or whose header is cve,epss,percentile."""
    lowered = name.rsplit("/", 1)[-1].lower()
    head = data[:4096]
    if data[:2] == b"\x1f\x8b" and "epss" in lowered:
        return ParsedFeed("epss", "epss", epss=parse_epss(data, name))
    if b"cve,epss,percentile" in head or (lowered.endswith((".csv", ".csv.gz")) and "epss" in lowered):
        return ParsedFeed("epss", "epss", epss=parse_epss(data, name))
    return None
