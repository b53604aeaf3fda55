"""The findings store on SQLite and on a real PostgreSQL server: round trips, history, migrations,
hostile text and a writer killed half-way."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from msgspec import structs
from sqlalchemy import create_engine, func, inspect, select, text
from store_synth import HOST, T0, big_scan, finding, scan

from vmsec.checks.catalog import default_catalog
from vmsec.collectors.xml import collect_xml
from vmsec.engine import run_checks
from vmsec.errors import StoreError
from vmsec.facts.common import CollectionRecord
from vmsec.findings import Severity, Status, Target, TargetKind
from vmsec.report import FORMATS, make_reporter
from vmsec.report.json_report import build_document
from vmsec.results import ScanResult
from vmsec.store import UnknownScan, default_store_url, open_store, resolve_url, schema
from vmsec.store.migrations import HEAD_REVISION

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "tests" / "data" / "checks"
WEB = Target(TargetKind.DOMAIN, "web01", "hv1")


@pytest.fixture(scope="module")
def real_scan() -> ScanResult:
    """The real verdict fixtures collected and checked by the real engine."""
    files = sorted(str(p) for p in CHECKS.glob("VMS-DOM-*/*.xml"))
    assert len(files) > 50
    return run_checks(collect_xml(files), default_catalog(), clock=lambda: T0)


def test_a_real_scan_round_trips(store_url: str, real_scan: ScanResult) -> None:
    with open_store(store_url) as store:
        scan_id = store.save(real_scan)
        loaded = store.load(scan_id)
    assert list(loaded.findings) == list(real_scan.findings)
    assert loaded.targets == real_scan.targets
    assert loaded.records == real_scan.records
    assert loaded.details == real_scan.details
    assert loaded.complete == real_scan.complete
    assert (loaded.started_at, loaded.finished_at) == (real_scan.started_at, real_scan.finished_at)
    # Re-rendered = live: the stored scan gives the same report as the live one.
    assert build_document(loaded) == build_document(structs.replace(real_scan, scan_id=scan_id))


def test_every_reporter_renders_a_stored_scan(store_url: str, real_scan: ScanResult) -> None:
    with open_store(store_url) as store:
        loaded = store.load(store.save(real_scan))
    checks = default_catalog().index()
    for name in FORMATS:
        out = io.StringIO()
        make_reporter(name).render(loaded, checks, out)
        assert len(out.getvalue()) > 200, name
    sarif = io.StringIO()
    make_reporter("sarif").render(loaded, checks, sarif)
    fails = sum(f.status is Status.FAIL for f in loaded.findings)
    assert fails > 0
    results = json.loads(sarif.getvalue())["runs"][0]["results"]
    assert sum(r.get("kind", "fail") == "fail" for r in results) >= fails


def test_history_lists_scans_newest_first_with_counts(store_url: str) -> None:
    first = scan([finding("VMS-DOM-020", WEB, "vnc", Status.FAIL, Severity.CRITICAL),
                  finding("VMS-DOM-021", WEB, "vnc", Status.PASS)], [HOST, WEB], source="first")
    second = scan([finding("VMS-DOM-020", WEB, "vnc", Status.FAIL, Severity.HIGH),
                   finding("VMS-DOM-021", WEB, "vnc", Status.UNKNOWN),
                   finding("VMS-HOST-004", HOST, "iommu", Status.ERROR)], [HOST, WEB], source="second",
                  records=(CollectionRecord(source="/etc/libvirt/qemu.conf", what="qemu.conf", ok=False,
                                            reason="permission denied"),))
    with open_store(store_url) as store:
        a, b = store.save(first), store.save(second)
        summaries = store.scans(10)
        assert [s.id for s in summaries] == [b, a]
        assert [s.id for s in store.scans(1)] == [b]
        new, old = summaries
        assert (old.source, old.state, old.complete) == ("first", "complete", True)
        assert old.by_status["FAIL"] == 1 and old.by_status["PASS"] == 1
        assert old.failed_by_severity["critical"] == 1
        assert (new.state, new.complete) == ("incomplete", False)
        assert new.by_status["UNKNOWN"] == 1 and new.by_status["ERROR"] == 1
        assert new.failed_by_severity["high"] == 1 and new.failed_by_severity["critical"] == 0
        assert (new.targets_stored, new.targets_expected) == (2, 2)
        assert new.started_at == T0
        assert store.resolve("latest") == b and store.resolve("previous") == a
        assert store.resolve(str(a)) == a
        for bad in ("999", "yesterday", "-1"):
            with pytest.raises(UnknownScan):
                store.resolve(bad)
        assert store.load(b).errors[0].reason == "permission denied"


def test_resolve_on_an_empty_store_says_so(store_url: str) -> None:
    with open_store(store_url) as store, pytest.raises(UnknownScan, match="no latest scan"):
        store.resolve("latest")


def test_hostile_text_is_stored_not_refused(store_url: str) -> None:
    nul = "bad\x00name"
    undecodable = b"caf\xe9".decode("utf-8", "surrogateescape")
    target = Target(TargetKind.GUEST, "g\x00uest", "hv1")
    result = scan([finding("VMS-GST-001", target, nul, Status.FAIL, message=undecodable,
                           vulnerability={"id": "CVE-1", "note": "nul\x00 and " + undecodable}),
                   finding("VMS-GST-002", target, "<script>'; DROP TABLE findings;--", Status.PASS)],
                  [target])
    with open_store(store_url) as store:
        loaded = store.load(store.save(result))
        bad, sqlish = loaded.findings
        assert bad.subject == "bad\\x00name" and bad.message == "caf\\udce9"
        assert bad.target.name == "g\\x00uest"
        assert sqlish.subject == "<script>'; DROP TABLE findings;--"
        # the stored fingerprint is the original one, so history still matches the finding
        assert store.diff(1, 1).count("still_open") == 1


def _finding_indexes(store_url: str) -> set[str]:
    from sqlalchemy import inspect

    engine = create_engine(store_url)
    try:
        return {i["name"] for i in inspect(engine).get_indexes("findings")}
    finally:
        engine.dispose()


def test_the_finding_list_indexes_come_when_a_store_is_first_served(store_url: str) -> None:
    """A CLI user's history pays for no index only the service uses; serving the store adds them,
    once, even when several service processes start together."""
    import threading

    wanted = {name for name, _ in schema.FINDING_LIST_INDEXES}
    open_store(store_url).close()
    assert not wanted & _finding_indexes(store_url)
    with open_store(store_url) as store:
        store.save(scan([finding("VMS-DOM-001", HOST, "x", Status.FAIL)], [HOST]))
        errors: list[BaseException] = []

        def serve() -> None:
            try:
                store.ensure_finding_list_indexes()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=serve) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        store.ensure_finding_list_indexes()  # again: nothing to do
    assert wanted <= _finding_indexes(store_url)
    with open_store(store_url) as store:  # a served store still opens at the head revision
        assert len(store.scans(5)) == 1


def test_migrations_build_exactly_the_declared_schema(store_url: str) -> None:
    open_store(store_url).close()
    open_store(store_url).close()  # a second open finds the head revision and does nothing
    engine = create_engine(store_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn)
        assert ctx.get_current_revision() == HEAD_REVISION
        assert compare_metadata(ctx, schema.metadata) == []
    engine.dispose()


def test_a_store_from_a_newer_vmsec_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision 9999"):
        open_store(store_url)


def test_bad_urls_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("://not a url")
    with pytest.raises(StoreError):
        open_store(f"postgresql+psycopg://nobody:secret@/x?host={tmp_path}&port=1")
    try:
        open_store(f"postgresql+psycopg://nobody:secret@/x?host={tmp_path}&port=1")
    except StoreError as exc:
        assert "secret" not in str(exc)


def test_url_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VMSEC_STORE", raising=False)
    assert default_store_url() == f"sqlite:///{tmp_path / 'xdg' / 'vmsec' / 'history.sqlite'}"
    assert resolve_url(None) == default_store_url()
    monkeypatch.setenv("VMSEC_STORE", "sqlite:////elsewhere.sqlite")
    assert resolve_url(None) == "sqlite:////elsewhere.sqlite"
    assert resolve_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("VMSEC_STORE", f"sqlite:///{tmp_path / 'env.sqlite'}")
    with open_store(None) as store:
        store.save(scan([], [HOST]))
    assert (tmp_path / "env.sqlite").exists()


def test_a_writer_killed_half_way_leaves_an_interrupted_scan(store_url: str) -> None:
    with open_store(store_url) as store:
        before = store.save(scan([finding("VMS-DOM-020", WEB, "vnc", Status.FAIL)], [WEB]))
    writer = subprocess.Popen([sys.executable, str(Path(__file__).with_name("store_synth.py")), store_url,
                               "3000", "40"], env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    engine = create_engine(store_url)
    try:
        deadline = time.monotonic() + 120
        stored = 0
        while time.monotonic() < deadline and writer.poll() is None:
            with engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(schema.targets)
                                      .where(schema.targets.c.scan_id > before)).scalar_one()
            if stored >= 50:
                break
            time.sleep(0.05)
        assert writer.poll() is None, "the writer finished before it could be killed; make the scan bigger"
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    finally:
        if writer.poll() is None:
            writer.kill()
        engine.dispose()
    assert stored >= 50
    with open_store(store_url) as store:
        latest = store.scans(1)[0]
        assert latest.id > before
        assert latest.state == "interrupted" and not latest.complete
        assert 50 <= latest.targets_stored < latest.targets_expected == 3000
        # one transaction per target: every stored target has all of its 40 findings
        assert latest.findings_stored == 40 * latest.targets_stored
        loaded = store.load(latest.id)
        assert not loaded.complete
        assert "interrupted while being stored" in (loaded.errors[-1].reason or "")
        # the store is still usable: the earlier scan is intact and a new one can be written
        assert store.load(before).findings[0].subject == "vnc"
        again = store.save(scan([finding("VMS-DOM-020", WEB, "vnc", Status.PASS)], [WEB]))
        assert store.diff(before, again).count("fixed") == 1
    if store_url.startswith("sqlite"):
        engine = create_engine(store_url)
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        engine.dispose()


def test_fast_path_revision_is_the_migrations_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from vmsec.store.store import HEAD_REVISION, MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert set(ScriptDirectory.from_config(cfg).get_heads()) == {HEAD_REVISION}


def test_writing_through_a_pooled_connection_leaves_its_planning_as_it_was(pg_cluster: Any) -> None:
    """The store's pooled PostgreSQL connections plan every statement for its parameters (the service
    needs it); the writer turns that off for its own transactions only (the foreign-key checks of
    COPY replanned per row halved the write rate), and the connection goes back to the pool as it was."""
    url = pg_cluster.new_database()
    with open_store(url, pool_size=1) as store:
        big = big_scan(20, 5)
        scan_id = store.save(big)
        assert len(store.load(scan_id).findings) == len(big.findings)
        with store.engine.connect() as conn:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"


def _sink_begin(url: str, result: ScanResult) -> Any:
    from vmsec.checkinfo import CheckIndex
    from vmsec.pipeline import ScanHeader
    from vmsec.store.writer import StoreSink

    sink = StoreSink.open(url)  # the CLI's writer: its own driver connection
    sink.begin(ScanHeader(source=result.source, profile=result.profile, started_at=result.started_at,
                          checks_run=result.checks_run, checks=CheckIndex(()),
                          targets_expected=len(result.targets)))
    return sink


def _write_through_sink(url: str, result: ScanResult) -> int:
    """``result`` written as the CLI writes a scan (StoreSink.open, a batch per target); its scan id."""
    from vmsec.store.writer import StoreSink

    return StoreSink.open(url).write(result)


def test_the_writer_keeps_every_row_tied_to_its_scan_and_target(store_url: str) -> None:
    """The SQLite writer checks its parent rows once per transaction instead of per row: what it
    writes must still pass the database's own foreign-key check."""
    open_store(store_url).close()
    big = big_scan(30, 7)
    scan_id = _write_through_sink(store_url, big)
    with open_store(store_url) as store:
        loaded = store.load(scan_id)
        assert len(loaded.findings) == 30 * 7 and loaded.complete
        if store.dialect == "sqlite":
            with store.engine.connect() as conn:
                assert conn.execute(text("PRAGMA foreign_key_check")).all() == []


def test_a_scan_deleted_while_it_is_stored_fails_the_writer_and_leaves_no_orphans(store_url: str) -> None:
    open_store(store_url).close()
    big = big_scan(4, 3)
    batches = list(big.batches())
    sink = _sink_begin(store_url, big)
    try:
        sink.add(batches[0], {}, None)
        sink.flush()  # the first target is stored
        with open_store(store_url) as store, store.transaction("deleting") as conn:
            conn.execute(schema.scans.delete().where(schema.scans.c.id == sink.scan_id))  # cascades
        # PostgreSQL's own foreign keys catch it; the SQLite writer's check per transaction says so
        said = (f"scan {sink.scan_id} was deleted while it was being stored" if store_url.startswith("sqlite")
                else "ForeignKeyViolation")
        with pytest.raises(StoreError, match=said):
            for batch in batches[1:]:
                sink.add(batch, {}, None)
            sink.end(big)
    finally:
        sink.close()
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            for table in (schema.targets, schema.findings, schema.collection_records):
                assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0, table.name
    finally:
        engine.dispose()


def test_revision_0007_keeps_the_data_and_deleting_a_scan_still_removes_its_findings(store_url: str) -> None:
    """findings.scan_id loses its redundant foreign key (migration 0007): a store written before it
    keeps every finding, reads back the same, and deleting a scan still cascades through its targets."""
    from alembic import command

    from vmsec.store.store import _alembic_config

    with open_store(store_url) as store:
        first = store.save(big_scan(3, 4))
        second = store.save(scan([finding("VMS-DOM-020", WEB, "vnc", Status.FAIL)], [WEB]))
        before = store.load(first)
    engine = create_engine(store_url)
    try:
        def scan_id_has_a_foreign_key() -> bool:
            with engine.connect() as conn:
                fks = inspect(conn).get_foreign_keys("findings")
            return any(fk["constrained_columns"] == ["scan_id"] for fk in fks)

        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0006")
        assert scan_id_has_a_foreign_key()
        with open_store(store_url) as store:  # upgrades to the head
            assert not scan_id_has_a_foreign_key()
            assert store.load(first).findings == before.findings
            with store.transaction("deleting") as conn:
                conn.execute(schema.scans.delete().where(schema.scans.c.id == first))
            assert [s.id for s in store.scans(5)] == [second]
        with engine.connect() as conn:
            left = conn.execute(select(schema.findings.c.scan_id).distinct()).scalars().all()
            assert left == [second]  # the deleted scan's findings went with its targets
            ctx = MigrationContext.configure(conn)
            assert compare_metadata(ctx, schema.metadata) == []
    finally:
        engine.dispose()


def test_findings_with_and_without_advisory_data_keep_their_order_and_content(store_url: str) -> None:
    """The SQLite writer inserts rows without vulnerability and detail by a shorter statement, many rows
    to a statement: a scan mixing both kinds reads back finding for finding, in order, and the ids
    follow that order."""
    open_store(store_url).close()
    vuln = {"id": "CVE-2024-6387", "package": "openssh-server", "fixed_version": "1:9.2p1-2+deb12u3"}
    kinds = [{}, {"vulnerability": vuln}, {}, {}, {"detail": "Traceback …"}, {"vulnerability": vuln},
             {"vulnerability": vuln, "detail": "both"}, {}]
    # Runs longer than one multi-row INSERT (64 rows) on both sides of the mixed part.
    findings = [finding(f"VMS-VULN-{i:03d}", WEB, f"subject {i}", Status.FAIL, **kind)
                for i, kind in enumerate([{}] * 100 + kinds * 3 + [{}] * 70)]
    result = scan(findings, [WEB])
    scan_id = _write_through_sink(store_url, result)
    with open_store(store_url) as store:
        loaded = store.load(scan_id)
        assert [(f.subject, f.vulnerability, f.detail) for f in loaded.findings] == [
            (f.subject, f.vulnerability, f.detail) for f in findings]
        with store.engine.connect() as conn:
            rows = conn.execute(select(schema.findings.c.id, schema.findings.c.seq)
                                .where(schema.findings.c.scan_id == scan_id)
                                .order_by(schema.findings.c.id)).all()
        assert [seq for _id, seq in rows] == sorted(seq for _id, seq in rows)


def test_a_new_sqlite_store_has_16_kib_pages_in_wal_mode_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """New stores get 16 KiB pages (a quarter of the write-ahead log's frames to copy back after a scan:
    docs/performance.md); a store created with SQLite's default 4 KiB keeps it — the pragma is ignored
    once a database has pages, so opening an old store never rewrites it."""
    import sqlite3

    open_store(f"sqlite:///{tmp_path}/new.sqlite").close()
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE t (x)")
    open_store(f"sqlite:///{old}").close()
    for path, size in ((tmp_path / "new.sqlite", 16384), (old, 4096)):
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA page_size").fetchone()[0] == size, path
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal", path
        finally:
            conn.close()
