"""The per-VM exposure summary: host, management plane, domain, guest and vulnerabilities, ranked."""

from __future__ import annotations

from msgspec.structs import replace
from report_scans import GPU, XSS

from vmsec.findings import Finding, Severity, Status
from vmsec.report.exposure import MAX_ITEMS, Source, by_domain, exposure
from vmsec.results import ScanResult


def test_every_domain_has_a_view_worst_first(sample_scan: ScanResult) -> None:
    views = exposure(sample_scan)
    assert sorted(v.domain for v in views) == sorted(["web01", "gpu-box", XSS])
    ranks = [v.worst.rank if v.worst else -1 for v in views]
    assert ranks == sorted(ranks, reverse=True)


def test_web01_combines_its_own_guest_host_and_plane(sample_scan: ScanResult) -> None:
    web = by_domain(exposure(sample_scan))["web01"]
    assert web.guest == "web01-disk" and web.host == "hv1"
    sentences = [i.sentence for i in web.items]
    # KEV-listed vulnerabilities rank as critical, ahead of host issues of the same rank.
    assert sentences[0] == ("1 KEV-listed (exploited in the wild) vulnerability in the guest: "
                            "CVE-2023-4911 (libc6)")
    assert "host: the kernel IOMMU is off (no intel_iommu=on)" in sentences
    assert 'management plane: the TCP listener accepts clients with auth_tcp = "none"' in sentences
    # VMS-DOM-020 and VMS-DOM-021 fail on the same VNC device: said once (the worst), not twice.
    vnc = [i for i in web.items if "VNC" in i.text]
    assert len(vnc) == 1 and set(vnc[0].check_ids) == {"VMS-DOM-020", "VMS-DOM-021"}
    assert "2 known vulnerabilities in the guest (1 high; openssh-server, zlib1g)" in sentences
    # A host vulnerability in QEMU (the VM-escape surface) is part of every VM's exposure.
    assert "host: 1 known vulnerability in its VM-escape surface (1 high; qemu-system-x86)" in sentences
    # The waived floppy drive is not an exposure; PASS findings are not either.
    assert not any("floppy" in s for s in sentences)
    severities = [i.severity.rank for i in web.items]
    assert severities == sorted(severities, reverse=True)
    assert {i.source for i in web.items} == {Source.VULNERABILITY, Source.HOST_ISOLATION, Source.MANAGEMENT,
                                             Source.DOMAIN}
    assert len(web.items) == 6 and web.headline(2).endswith("; and 4 more")


def test_host_and_vm_correlation_leads_the_vm(sample_scan: ScanResult) -> None:
    """VMS-DOM-070 judges the host's IOMMU with the VM's passthrough (a check tagged correlation);
    the exposure view shows its finding first, as a host + VM item."""
    gpu = by_domain(exposure(sample_scan))["gpu-box"]
    first = gpu.items[0]
    assert first.source is Source.CORRELATION and first.severity is Severity.CRITICAL
    assert first.sentence == "0000:06:12.5 is assigned while the kernel IOMMU is off (no IOMMU groups)"
    assert first.check_ids == ("VMS-DOM-070",)
    assert gpu.unknown == 1
    # web01 has no PCI device: no such sentence there.
    assert not any(i.source is Source.CORRELATION for i in by_domain(exposure(sample_scan))["web01"].items)


def test_the_reporter_does_not_judge(sample_scan: ScanResult) -> None:
    """Without the correlation finding there is no correlation sentence, whatever the host's failures
    (judgement lives in checks only, so it is stored, diffed and waived)."""
    findings = tuple(f for f in sample_scan.findings if f.check_id != "VMS-DOM-070")
    gpu = by_domain(exposure(replace(sample_scan, findings=findings)))["gpu-box"]
    assert not any(i.source is Source.CORRELATION for i in gpu.items)
    assert gpu.worst is Severity.CRITICAL  # still the host's own IOMMU failure and the TCP listener


def test_many_subjects_of_one_check_are_one_sentence_and_items_are_bounded(sample_scan: ScanResult) -> None:
    template = next(f for f in sample_scan.findings if f.check_id == "VMS-DOM-071")
    many: list[Finding] = [template._replace(subject=f"hostdev[{i}]", message=f"PCI device {i} is assigned")
                           for i in range(30)]
    many += [template._replace(check_id=f"VMS-DOM-{200 + i}", subject=f"device {i}", status=Status.FAIL)
             for i in range(20)]
    scan = replace(sample_scan, findings=(*sample_scan.findings, *many))
    gpu = by_domain(exposure(scan))["gpu-box"]
    assert len(gpu.items) == MAX_ITEMS and gpu.more > 0
    grouped = [i for i in gpu.items if i.check_ids == ("VMS-DOM-071",)]
    assert len(grouped) == 1 and grouped[0].sentence.endswith("(and 30 more like it)")
    assert GPU.name == "gpu-box"


def test_a_vm_without_failures_says_so(sample_scan: ScanResult) -> None:
    findings = tuple(f for f in sample_scan.findings if f.target.kind.value != "host"
                     and f.target.name != "gpu-box")
    gpu = by_domain(exposure(replace(sample_scan, findings=findings)))["gpu-box"]
    assert gpu.items == () and gpu.worst is None and gpu.headline() == "no failed checks"
