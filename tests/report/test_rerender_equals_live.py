"""Re-rendered = live: a scan rendered from the store (``vmsec report ID``) is the same report, byte for
byte, as the one rendered when it ran — in every format.

The scan goes through the real pipeline (:func:`vmsec.pipeline.scan`) with a SQLite store: a copied
host root with its own OS and packages (the SBOM), domains, networks and vulnerability findings from
real advisory records, plus XML fixtures and a guest root — every kind of target the reporters draw.
"""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from report_scans import ROOT

from vmsec.checkinfo import packaged_index
from vmsec.pipeline import ScanOptions, scan
from vmsec.report import FORMATS, ReportOptions, make_reporter
from vmsec.results import ScanResult
from vmsec.specs import HostSpec, RootfsSpec, XmlSpec
from vmsec.store import open_store
from vmsec.vulns.db import import_feeds

CHECKS = ROOT / "tests" / "data" / "checks"
SUDO = CHECKS / "VMS-VULN-002" / "sudo-no-dsa.FAIL"  # a Debian root with dpkg status and real advisories


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> tuple[ScanResult, ScanResult]:
    tmp = tmp_path_factory.mktemp("rerender")
    feeds = SUDO.with_name(SUDO.name + ".feeds")
    db = tmp / "vulndb.sqlite"
    import_feeds([(str(f), f.read_bytes()) for f in sorted(feeds.iterdir()) if f.name != "imported-at"], db,
                 now=datetime(2026, 1, 1, tzinfo=UTC))
    host = tmp / "host"
    shutil.copytree(SUDO, host, symlinks=True)
    shutil.copytree(CHECKS / "VMS-DOM-021" / "vnc-open.FAIL" / "etc" / "libvirt", host / "etc" / "libvirt",
                    symlinks=True, dirs_exist_ok=True)
    ticks = iter(datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC) + timedelta(seconds=i) for i in range(100))
    store_url = f"sqlite:///{tmp / 'history.sqlite'}"
    live = scan([HostSpec(root=str(host)),
                 XmlSpec(paths=(str(CHECKS / "VMS-DOM-020" / "vnc-any.FAIL.xml"),
                                str(CHECKS / "VMS-DOM-071" / "vfio-hostdev.FAIL.xml"))),
                 RootfsSpec(paths=(str(CHECKS / "VMS-GST-095" / "weakened.FAIL"),))],
                ScanOptions(store_url=store_url, advisory_db=str(db), clock=lambda: next(ticks)))
    assert live.scan_id is not None and live.store_error is None
    with open_store(store_url, create=False) as store:
        stored = store.load(live.scan_id)
    return live, stored


def test_the_scan_has_every_kind_of_content(scans: tuple[ScanResult, ScanResult]) -> None:
    live, _ = scans
    kinds = {t.kind.value for t in live.targets}
    assert {"host", "domain", "guest"} <= kinds
    assert any(f.vulnerability for f in live.findings)
    assert any(os.packages for os in live.os_inventories.values())  # the SBOM has components


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_renders_the_same_from_the_store(fmt: str, scans: tuple[ScanResult, ScanResult]) -> None:
    live, stored = scans
    texts = []
    for result in (live, stored):
        out = io.StringIO(newline="")
        make_reporter(fmt, ReportOptions(width=100, color=False, show_pass=True)).render(
            result, packaged_index(), out)
        texts.append(out.getvalue())
    assert texts[0] == texts[1], f"{fmt}: the stored scan renders differently from the live one"
    if fmt == "cyclonedx":
        assert '"components"' in texts[0] and '"purl"' in texts[0]


@pytest.mark.parametrize("fmt", ["terminal", "json"])
def test_streamed_cli_report_equals_vmsec_report(fmt: str, tmp_path: Path) -> None:
    """The CLI streams terminal and JSON reports while the scan runs: `vmsec report` of the stored scan
    writes the same bytes."""
    import os
    import subprocess
    import sys

    vmsec = str(Path(sys.executable).with_name("vmsec"))
    env = {**os.environ, "COLUMNS": "100"}
    store = tmp_path / "h.sqlite"
    live, again = tmp_path / "live.out", tmp_path / "again.out"
    subprocess.run([vmsec, "scan", "host", "--root", str(CHECKS / "VMS-DOM-021" / "vnc-open.FAIL"),
                    "--store", str(store), "--format", fmt, "-o", str(live), "-q"], env=env, check=True,
                   capture_output=True, timeout=120)
    subprocess.run([vmsec, "report", "latest", "--store", str(store), "--format", fmt, "-o", str(again)],
                   env=env, check=True, capture_output=True, timeout=120)
    assert live.read_text(encoding="utf-8") == again.read_text(encoding="utf-8")


def test_a_subject_the_store_keeps_escaped_has_the_same_fingerprint(tmp_path: Path) -> None:
    """A guest file name with an undecodable byte (a lone surrogate in Python) is kept as the text
    "\\udcff" by the store: the finding read back must keep the fingerprint it had when it ran (diffs,
    waivers and `vmsec report` rely on it)."""
    guest = tmp_path / "guest"
    shutil.copytree(CHECKS / "VMS-GST-095" / "weakened.FAIL", guest, symlinks=True)
    dropins = guest / "etc" / "sudoers.d"
    dropins.mkdir(parents=True, exist_ok=True)
    (guest / "etc" / "sudoers").write_text("#includedir /etc/sudoers.d\n")
    (dropins / "x\udcff").write_text("root ALL=(ALL) NOPASSWD: ALL\n")  # file name byte 0xff
    store_url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    live = scan([RootfsSpec(paths=(str(guest),))], ScanOptions(store_url=store_url))
    assert live.scan_id is not None and live.store_error is None
    with open_store(store_url, create=False) as store:
        stored = store.load(live.scan_id)
    odd = [f for f in live.findings if "\udcff" in f.subject]
    assert odd, "the scan names the file in a subject"
    assert {f.fingerprint for f in live.findings} == {f.fingerprint for f in stored.findings}
    kept = {o.fingerprint for o in odd}
    assert all("\\udcff" in f.subject for f in stored.findings if f.fingerprint in kept)
