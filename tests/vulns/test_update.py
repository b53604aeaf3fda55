"""`db update` against a real HTTP server on 127.0.0.1 serving the real feed files: good runs,
a truncated download, a server error mid-way, and retries."""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from datapaths import VULN as DATA
from vmsec.errors import AdvisorySourceError
from vmsec.vulns.db import open_db
from vmsec.vulns.update import update

FILES = {
    "debian-tracker.json": (
        DATA / "debian-tracker" / "bookworm_tracker_excerpt_RECONSTRUCTED.json"
    ).read_bytes(),
    "Debian-all.zip": (DATA / "osv" / "Debian-subset-all.zip").read_bytes(),
    "known_exploited_vulnerabilities.json": gzip.decompress(
        (DATA / "kev" / "known_exploited_vulnerabilities.json.gz").read_bytes()
    ),
}
FEEDS = list(FILES)


class _Server(http.server.ThreadingHTTPServer):
    behaviour: dict[str, list[str]]  # file name -> queue of "ok" | "500" | "truncate"
    hits: dict[str, int]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.strip("/")
        self.server.hits[name] = self.server.hits.get(name, 0) + 1
        queue = self.server.behaviour.get(name, [])
        mode = queue.pop(0) if queue else "ok"
        body = FILES.get(name)
        if body is None:
            self.send_error(404)
            return
        if mode == "500":
            self.send_error(500)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if mode == "ok" else body[: len(body) // 2])
        if mode == "truncate":
            self.close_connection = True


@pytest.fixture()
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.behaviour, srv.hits = {}, {}
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_update_downloads_and_imports_atomically(server: _Server, tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    imported = update(db_path, feeds=FEEDS, mirror=_url(server), backoff=0)
    assert {i.name for i in imported} == {"debian-tracker", "osv:debian", "kev"}
    db = open_db(db_path)
    assert db is not None and "Debian:12" in db.ecosystems()


def test_server_error_is_retried(server: _Server, tmp_path: Path) -> None:
    server.behaviour["debian-tracker.json"] = ["500", "500"]
    update(tmp_path / "v.sqlite", feeds=FEEDS, mirror=_url(server), retries=3, backoff=0)
    assert server.hits["debian-tracker.json"] == 3


@pytest.mark.parametrize("failure", ["truncate", "500"])
def test_a_failed_update_leaves_the_database_untouched(server: _Server, tmp_path: Path, failure: str) -> None:
    db_path = tmp_path / "v.sqlite"
    update(db_path, feeds=FEEDS, mirror=_url(server), backoff=0)
    before = db_path.read_bytes()
    server.behaviour["known_exploited_vulnerabilities.json"] = [failure] * 5  # the last feed, after others
    with pytest.raises(AdvisorySourceError, match="download failed after 2 attempt"):
        update(db_path, feeds=FEEDS, mirror=_url(server), retries=2, backoff=0, timeout=5)
    assert db_path.read_bytes() == before
    # no temporary files left behind (the lock file stays: it is how imports take turns)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".vulndb.lock", "v.sqlite"]


def test_not_found_is_not_retried(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(AdvisorySourceError, match="HTTP 404"):
        update(tmp_path / "v.sqlite", feeds=["Alpine-all.zip"], mirror=_url(server), retries=3, backoff=0)
    assert server.hits["Alpine-all.zip"] == 1
