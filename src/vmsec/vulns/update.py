"""``vmsec db update``: download the feeds, verify them, and import them atomically.

Every file is downloaded completely (Content-Length checked, so a truncated transfer is caught),
with timeouts and retries with backoff; then all of them are parsed and imported in one atomic swap
(:func:`vmsec.vulns.db.import_feeds`). If any feed fails, nothing is imported and the existing
database stays as it was.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from msgspec import Struct

from vmsec import __version__
from vmsec.errors import AdvisorySourceError
from vmsec.vulns.db import MAX_FEED_BYTES, SourceInfo, import_feeds


class Feed(Struct, frozen=True):
    name: str  # also the file name under a --mirror base URL
    url: str


FEEDS: Mapping[str, Feed] = {f.name: f for f in (
    Feed("debian-tracker.json", "https://security-tracker.debian.org/tracker/data/json"),
    Feed("Debian-all.zip", "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip"),
    Feed("Ubuntu-all.zip", "https://osv-vulnerabilities.storage.googleapis.com/Ubuntu/all.zip"),
    Feed("Alpine-all.zip", "https://osv-vulnerabilities.storage.googleapis.com/Alpine/all.zip"),
    Feed("AlmaLinux-all.zip", "https://osv-vulnerabilities.storage.googleapis.com/AlmaLinux/all.zip"),
    Feed("Rocky-Linux-all.zip", "https://osv-vulnerabilities.storage.googleapis.com/Rocky%20Linux/all.zip"),
    Feed("alpine-v3.20-main.json", "https://secdb.alpinelinux.org/v3.20/main.json"),
    Feed("alpine-v3.21-main.json", "https://secdb.alpinelinux.org/v3.21/main.json"),
    Feed("alpine-v3.21-community.json", "https://secdb.alpinelinux.org/v3.21/community.json"),
    Feed("known_exploited_vulnerabilities.json",
         "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"),
    Feed("epss_scores-current.csv.gz", "https://epss.cyentia.com/epss_scores-current.csv.gz"),
)}

Progress = Callable[[str, int, int | None], None]  # feed name, bytes so far, total (if known)


def download(url: str, *, timeout: float = 60.0, retries: int = 3, backoff: float = 1.0,
             limit: int = MAX_FEED_BYTES, progress: Progress | None = None, name: str = "") -> bytes:
    """GET ``url`` completely, or raise AdvisorySourceError after ``retries`` attempts."""
    last: str = ""
    for attempt in range(1, retries + 1):
        try:
            request = urllib.request.Request(url, headers={"User-Agent": f"vmsec/{__version__}"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > limit:
                    raise AdvisorySourceError(f"{url}: {total} bytes, over the {limit}-byte limit")
                chunks: list[bytes] = []
                got = 0
                while True:
                    chunk = response.read(1 << 20)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
                    if got > limit:
                        raise AdvisorySourceError(f"{url}: more than {limit} bytes")
                    if progress:
                        progress(name or url, got, total)
                if total is not None and got != total:
                    raise OSError(f"truncated download: {got} of {total} bytes")
                return b"".join(chunks)
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                break  # a client error will not heal by retrying
        except (OSError, urllib.error.URLError) as exc:  # incl. timeouts and IncompleteRead
            last = str(getattr(exc, "reason", exc))
        except ValueError as exc:  # not a URL urllib can fetch ("unknown url type"): no retry heals it
            raise AdvisorySourceError(f"{url}: not a URL vmsec can download ({exc})") from exc
        if attempt < retries:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise AdvisorySourceError(f"{url}: download failed after {retries} attempt(s): {last}")


def update(db_path: str | Path | None = None, *, feeds: Sequence[str] | None = None,
           mirror: str | None = None, timeout: float = 60.0, retries: int = 3, backoff: float = 1.0,
           progress: Progress | None = None) -> list[SourceInfo]:
    """Download ``feeds`` (default: all) — from ``mirror``/<name> when given — and import them."""
    chosen = [FEEDS[n] for n in feeds] if feeds else list(FEEDS.values())
    files: list[tuple[str, bytes]] = []
    for feed in chosen:
        url = f"{mirror.rstrip('/')}/{feed.name}" if mirror else feed.url
        files.append((feed.name, download(url, timeout=timeout, retries=retries, backoff=backoff,
                                          progress=progress, name=feed.name)))
    return import_feeds(files, db_path)
