"""Scans and helpers for the reporter tests (imported by conftest.py and the test modules).

``sample_scan``: a small hand-built scan with every status, a vulnerability, a waiver, a crash, a
collection error and hostile strings (HTML, formula, Markdown, control characters), with a fixed clock —
what golden files are made of. ``real_scan``: the real XML verdict fixtures collected and checked by
the real engine, for schema validation over real messages and evidence.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from vmsec.checks.catalog import Catalog
from vmsec.facts import Domain, Guest, Inventory
from vmsec.facts.common import CollectionRecord
from vmsec.facts.domain import Hostdev
from vmsec.findings import Evidence, Finding, Severity, Status, Target, TargetKind
from vmsec.report import make_reporter
from vmsec.results import ScanResult

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "tests" / "data" / "checks"
STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FINISHED = datetime(2026, 1, 2, 3, 4, 9, 250000, tzinfo=UTC)
XSS = "<script>alert(1)</script>"
FORMULA = "=HYPERLINK(\"http://evil.example/\",\"x\")"
MD_HOSTILE = "pipe | and `tick` and [link](http://evil.example) *bold*\nnew line"

HOST = Target(TargetKind.HOST, "hv1")
WEB = Target(TargetKind.DOMAIN, "web01", "hv1")
EVIL = Target(TargetKind.DOMAIN, XSS, "hv1")
GPU = Target(TargetKind.DOMAIN, "gpu-box", "hv1")
WEB_GUEST = Target(TargetKind.GUEST, "web01-disk", "hv1")
NET = Target(TargetKind.NETWORK, "default", "hv1")


def _f(catalog: Catalog, check_id: str, status: Status, target: Target, subject: str, message: str,
       *evidence: Evidence, severity: Severity | None = None, detail: str | None = None) -> Finding:
    spec = catalog.by_id[check_id]
    return Finding(check_id=check_id, title=spec.title, status=status, severity=severity or spec.severity,
                   target=target, subject=subject, message=message, evidence=evidence, tags=spec.tags,
                   remediation=spec.remediation, detail=detail)


def _vuln(catalog: Catalog, check_id: str, cve: str, package: str, severity: Severity, kev: bool,
          target: Target = WEB_GUEST, tags: tuple[str, ...] = ()) -> Finding:
    """A vulnerability finding shaped like vmsec.checks.vulns.packages makes them."""
    spec = catalog.by_id[check_id]
    return Finding(check_id=check_id, title=spec.title, status=Status.FAIL, severity=severity,
                   target=target, subject=f"{cve} {package}",
                   message=f"{package} 1.0-1 ({package}) is affected by {cve}; fixed in 1.0-2",
                   evidence=(Evidence("package database", package, "1.0-1"),
                             Evidence("osv:Debian (Debian:12)", cve, "1.0-2")),
                   tags=(*spec.tags, *tags), remediation=spec.remediation,
                   vulnerability={"id": cve, "aliases": [], "package": package, "source_package": package,
                                  "installed_version": "1.0-1", "fixed_version": "1.0-2", "state": "fixed",
                                  "kev": {"date_added": "2023-11-21", "known_ransomware_use": "Unknown"}
                                  if kev else None, "epss": None, "feeds": ["osv:Debian"]})


def build_sample_scan(catalog: Catalog) -> ScanResult:
    c = catalog
    findings = (
        _f(c, "VMS-HOST-004", Status.FAIL, HOST, "kernel IOMMU",
           "the kernel IOMMU is off (no intel_iommu=on)",
           Evidence("/proc/cmdline", "", "BOOT_IMAGE=/vmlinuz ro quiet")),
        _f(c, "VMS-DMN-001", Status.FAIL, HOST, "libvirtd.conf listen_tcp",
           "the TCP listener accepts clients with auth_tcp = \"none\"",
           Evidence("/etc/libvirt/libvirtd.conf", "auth_tcp", "none")),
        _f(c, "VMS-HOST-001", Status.PASS, HOST, "/dev/kvm", "KVM is available"),
        _f(c, "VMS-QEMU-004", Status.UNKNOWN, HOST, "qemu.conf seccomp_sandbox",
           "qemu.conf could not be read"),
        _f(c, "VMS-QEMU-001", Status.ERROR, HOST, "host hv1", "check crashed: ValueError: bad user",
           detail="Traceback (most recent call last):\nValueError: bad user"),
        _f(c, "VMS-DOM-020", Status.FAIL, WEB, "graphics[1] vnc", "VNC listens on 0.0.0.0:5901",
           Evidence("/etc/libvirt/qemu/web01.xml", "devices/graphics[1]/@listen", "0.0.0.0")),
        _f(c, "VMS-DOM-021", Status.FAIL, WEB, "graphics[1] vnc", "VNC 0.0.0.0:5901 has no password",
           Evidence("/etc/libvirt/qemu/web01.xml", "devices/graphics[1]", None)),
        _f(c, "VMS-DOM-040", Status.WAIVED, WEB, "disk fda", "a floppy drive is attached",
           detail="waived by ops until 2026-06-30: legacy installer"),
        _f(c, "VMS-DOM-150", Status.PASS, WEB, "os firmware", "UEFI Secure Boot is on"),
        _f(c, "VMS-DOM-001", Status.FAIL, EVIL, XSS, XSS,
           Evidence("/etc/libvirt/qemu/evil.xml", "seclabel", XSS)),
        _f(c, "VMS-DOM-006", Status.FAIL, EVIL, FORMULA, MD_HOSTILE + " \x07bell"),
        _f(c, "VMS-DOM-071", Status.FAIL, GPU, "hostdev[1] 0000:06:12.5",
           "PCI device 0000:06:12.5 is assigned"),
        _f(c, "VMS-DOM-070", Status.FAIL, GPU, "hostdev devices/hostdev[1]",
           "0000:06:12.5 is assigned while the kernel IOMMU is off (no IOMMU groups)",
           Evidence("/sys/kernel/iommu_groups", "count", "0")),
        _f(c, "VMS-DOM-029", Status.UNKNOWN, GPU, "channel",
           "the domain XML was read without the secure flag"),
        _vuln(c, "VMS-VULN-001", "CVE-2023-4911", "libc6", Severity.CRITICAL, True),
        _vuln(c, "VMS-VULN-001", "CVE-2024-6387", "openssh-server", Severity.HIGH, False),
        _vuln(c, "VMS-VULN-002", "CVE-2023-0001", "zlib1g", Severity.LOW, False),
        _vuln(c, "VMS-VULN-001", "CVE-2024-0002", "qemu-system-x86", Severity.HIGH, False, HOST,
              ("vm-escape-surface",)),
        _f(c, "VMS-NET-001", Status.FAIL, NET, "network default", "forward mode is 'open'",
           Evidence("/etc/libvirt/qemu/networks/default.xml", "forward/@mode", "open")),
    )
    inventory = Inventory(
        domains=(Domain(name="web01", origin="/etc/libvirt/qemu/web01.xml"),
                 Domain(name=XSS, origin="/etc/libvirt/qemu/evil.xml"),
                 Domain(name="gpu-box", origin="/etc/libvirt/qemu/gpu-box.xml",
                        hostdevs=(Hostdev(locator="devices/hostdev[1]", mode="subsystem", type="pci",
                                          address="0000:06:12.5"),))),
        guests=(Guest(name="web01-disk", origin="/var/lib/libvirt/images/web01.qcow2", domain="web01"),),
        records=(CollectionRecord(source="/etc/libvirt/qemu.conf", what="qemu.conf", ok=False,
                                  reason="permission denied"),),
        source="host hv1",
    )
    return ScanResult.from_inventory(inventory=inventory, findings=findings, profile="default",
                                     started_at=STARTED,
                      finished_at=FINISHED, checks_run=42,
                      targets=(HOST, WEB, EVIL, GPU, WEB_GUEST, NET))


def render_text(fmt: str, scan: ScanResult, catalog: Catalog) -> str:
    out = io.StringIO(newline="")
    make_reporter(fmt).render(scan, catalog.index(), out)
    return out.getvalue()


def golden_catalog(scan: ScanResult, catalog: Catalog) -> Catalog:
    """Only the checks the scan names: golden files then change with those checks, not the whole catalogue."""
    return catalog.select(ids={f.check_id for f in scan.findings if f.check_id in catalog.by_id})


def synthetic_scan(catalog: Catalog, vms: int, per_vm: int) -> ScanResult:
    """``vms`` domains with ``per_vm`` findings each (a status/severity mix), for scale tests."""
    domain_checks = [c for c in catalog.checks if c.id.startswith("VMS-DOM-")]
    statuses = (Status.FAIL, Status.PASS, Status.PASS, Status.UNKNOWN, Status.FAIL, Status.PASS)
    findings: list[Finding] = []
    targets: list[Target] = [HOST]
    for v in range(vms):
        t = Target(TargetKind.DOMAIN, f"vm{v:04d}", "hv1")
        targets.append(t)
        for i in range(per_vm):
            spec = domain_checks[i % len(domain_checks)]
            findings.append(Finding(check_id=spec.id, title=spec.title, status=statuses[(v + i) % 6],
                                    severity=spec.severity, target=t, subject=f"device[{i}]",
                                    message=f"observation {i} on vm{v:04d}",
                                    evidence=(Evidence(f"/etc/libvirt/qemu/vm{v:04d}.xml", f"devices/x[{i}]",
                                                       "value"),),
                                    tags=spec.tags, remediation=spec.remediation))
    inventory = Inventory(domains=tuple(Domain(name=t.name, origin=f"/etc/libvirt/qemu/{t.name}.xml")
                                        for t in targets[1:]), source="synthetic")
    return ScanResult.from_inventory(inventory=inventory, findings=tuple(findings), profile="default",
                                     started_at=STARTED,
                      finished_at=FINISHED, checks_run=len(domain_checks), targets=tuple(targets))
