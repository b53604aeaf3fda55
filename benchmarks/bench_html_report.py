"""HTML report at scale: 1,000 VMs / 100,000 synthetic findings — file size, render time, and how the
page behaves in headless Chromium (load to first rows, a filter, opening a VM card).

Run: .venv/bin/python benchmarks/bench_html_report.py [--vms 1000] [--per-vm 100] [--no-browser]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from vmsec.checks.catalog import default_catalog
from vmsec.facts import Domain, Guest, Inventory
from vmsec.findings import Evidence, Finding, Severity, Status, Target, TargetKind
from vmsec.report.html import render
from vmsec.results import ScanResult

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
STATUSES = (Status.PASS, Status.PASS, Status.FAIL, Status.PASS, Status.UNKNOWN, Status.PASS, Status.FAIL,
            Status.PASS, Status.PASS, Status.WAIVED)


def synthetic(vms: int, per_vm: int) -> ScanResult:
    """Per VM: ``per_vm`` findings, 80 % domain checks and 20 % guest vulnerabilities; plus a host."""
    catalog = default_catalog()
    dom_checks = [c for c in catalog.checks if c.id.startswith("VMS-DOM-")]
    host_checks = [c for c in catalog.checks if c.id.startswith(("VMS-HOST-", "VMS-QEMU-", "VMS-DMN-"))]
    host = Target(TargetKind.HOST, "hv1")
    findings: list[Finding] = [
        Finding(check_id=c.id, title=c.title, status=Status.FAIL if i % 5 == 0 else Status.PASS,
                severity=c.severity, target=host, subject=f"host setting {i}",
                message=f"host observation {i}",
                evidence=(Evidence("/etc/libvirt/qemu.conf", f"key{i}", "value"),), tags=c.tags,
                remediation=c.remediation) for i, c in enumerate(host_checks)]
    targets = [host]
    domains, guests = [], []
    n_dom = per_vm * 4 // 5
    for v in range(vms):
        name = f"vm{v:04d}"
        dom = Target(TargetKind.DOMAIN, name, "hv1")
        guest = Target(TargetKind.GUEST, f"{name}-disk", "hv1")
        targets += [dom, guest]
        domains.append(Domain(name=name, origin=f"/etc/libvirt/qemu/{name}.xml"))
        guests.append(Guest(name=guest.name, origin=f"/var/lib/libvirt/images/{name}.qcow2", domain=name))
        for i in range(n_dom):
            c = dom_checks[(v + i) % len(dom_checks)]
            findings.append(Finding(
                check_id=c.id, title=c.title, status=STATUSES[(v + i) % len(STATUSES)], severity=c.severity,
                target=dom, subject=f"devices/x[{i}]", message=f"observed value {i} on {name}",
                evidence=(Evidence(f"/etc/libvirt/qemu/{name}.xml", f"devices/x[{i}]", "on"),),
                tags=c.tags, remediation=c.remediation))
        for i in range(per_vm - n_dom):
            cve = f"CVE-2024-{1000 + (v * 7 + i) % 3000}"
            findings.append(Finding(
                check_id=f"VULN-{cve}", title=f"pkg{i}: {cve}", status=Status.FAIL,
                severity=(Severity.HIGH, Severity.MEDIUM, Severity.LOW)[i % 3], target=guest,
                subject=f"pkg{i}", message=f"pkg{i} 1.0-1 is affected by {cve}, fixed in 1.0-2",
                evidence=(Evidence("/var/lib/dpkg/status", f"Package: pkg{i}", "1.0-1"),),
                tags=("patching",), remediation=f"Upgrade pkg{i} to 1.0-2.",
                vulnerability={"id": cve, "package": f"pkg{i}", "kev": i == 0 and v % 10 == 0}))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return ScanResult.from_inventory(
        inventory=Inventory(domains=tuple(domains), guests=tuple(guests), source="synthetic"),
        findings=tuple(findings), profile="default", started_at=start, finished_at=start,
                      checks_run=len(catalog.checks), targets=tuple(targets))


def browse(path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        t0 = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_selector("#list .finding")
        t1 = time.perf_counter()
        print(f"browser: load to first rows {t1 - t0:.2f} s, "
              f"{page.locator('#list .finding').count()} rows in the DOM, "
              f"{page.text_content('#shown-count')} findings match")
        t0 = time.perf_counter()
        page.select_option("#f-severity", "critical")
        shown = page.text_content("#shown-count")
        print(f"browser: severity filter {time.perf_counter() - t0:.3f} s ({shown} match)")
        t0 = time.perf_counter()
        page.fill("#f-text", "vm0999")
        expect(page.locator("#shown-count")).not_to_have_text(shown or "", timeout=10_000)
        print(f"browser: text filter (150 ms debounce included) {time.perf_counter() - t0:.3f} s "
              f"({page.text_content('#shown-count')} match)")
        card = page.locator("details.vm").nth(500)
        t0 = time.perf_counter()
        card.locator("summary").click()
        card.locator(".drill .finding").first.wait_for()
        print(f"browser: open a VM card with its findings {time.perf_counter() - t0:.3f} s")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--per-vm", type=int, default=100)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    scan = synthetic(args.vms, args.per_vm)
    catalog = default_catalog()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        t0 = time.perf_counter()
        with path.open("w", encoding="utf-8") as out:
            render(scan, catalog, out)
        elapsed = time.perf_counter() - t0
        size = path.stat().st_size
        print(f"{args.vms} VMs, {len(scan.findings)} findings: render {elapsed:.2f} s, "
              f"file {size / 1e6:.1f} MB")
        if not args.no_browser:
            browse(path)


if __name__ == "__main__":
    main()
