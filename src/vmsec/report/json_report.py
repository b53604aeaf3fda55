"""The JSON report: vmsec's machine-readable contract (schema in docs/json-report.schema.json).

Stable: fields are added, never renamed or removed, within a ``schema_version`` major.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from vmsec import __version__
from vmsec.checks.catalog import Catalog
from vmsec.engine import ScanResult, domains_by_target
from vmsec.facts import Domain
from vmsec.findings import Finding, Target, TargetKind
from vmsec.report.summary import failed_severity_counts, sort_findings, status_counts

SCHEMA_VERSION = "1.0"


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "check_id": f.check_id,
        "title": f.title,
        "status": f.status.value,
        "severity": f.severity.value,
        "target": {"kind": f.target.kind.value, "name": f.target.name, "host": f.target.host},
        "subject": f.subject,
        "message": f.message,
        "evidence": [e.as_dict() for e in f.evidence],
        "tags": list(f.tags),
        "remediation": f.remediation,
        "fingerprint": f.fingerprint,
        "vulnerability": dict(f.vulnerability) if f.vulnerability is not None else None,
        "detail": f.detail,
    }


def _target_details(scan: ScanResult, target: Target, domains: dict[Target, Domain]) -> dict[str, Any]:
    inv = scan.inventory
    if target.kind is TargetKind.HOST and inv.host is not None and inv.host.name == target.name:
        h = inv.host
        return {
            "root": h.root, "live": h.live, "kernel_release": h.kernel_release,
            "is_virtual": h.virtualization.is_virtual, "hypervisor": h.virtualization.hypervisor,
            "qemu_version": h.qemu_version, "libvirt_version": h.libvirt_version,
            "daemon_mode": h.daemon_mode,
        }
    if target.kind is TargetKind.DOMAIN:
        d = domains.get(target)
        if d is not None:
            return {"origin": d.origin, "uuid": d.uuid, "virt_type": d.virt_type, "state": d.state,
                        "persistent": d.persistent, "autostart": d.autostart}
    if target.kind is TargetKind.GUEST:
        for g in inv.guests:
            if g.name == target.name:
                return {"origin": g.origin, "domain": g.domain,
                        "os": g.os.pretty_name or g.os.id if g.os else None,
                        "packages": len(g.packages) if g.packages is not None else None,
                        "disk_encryption": g.disk.scheme if g.disk else None,
                        "consistency_note": g.consistency_note}
    if target.kind is TargetKind.NETWORK:
        for n in inv.networks:
            if n.name == target.name:
                return {"origin": n.origin, "forward_mode": n.forward_mode, "active": n.active}
    return {}


def build_document(scan: ScanResult) -> dict[str, Any]:
    findings = sort_findings(scan.findings)
    by_target: dict[Target, list[Finding]] = {}
    for f in findings:  # one pass: a scan can have thousands of targets and 100k findings
        by_target.setdefault(f.target, []).append(f)
    domains = domains_by_target(scan.inventory)
    targets = []
    for t in scan.targets:
        mine = by_target.get(t, [])
        targets.append({"kind": t.kind.value, "name": t.name, "host": t.host,
                        "details": _target_details(scan, t, domains),
                        "summary": {"by_status": status_counts(mine),
                                    "failed_by_severity": failed_severity_counts(mine)}})
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "vmsec", "version": __version__},
        "scan": {
            "source": scan.inventory.source,
            "profile": scan.profile,
            "started_at": scan.started_at.isoformat(),
            "finished_at": scan.finished_at.isoformat(),
            "duration_s": round((scan.finished_at - scan.started_at).total_seconds(), 3),
            "complete": scan.complete,
            "checks_run": scan.checks_run,
        },
        "summary": {
            "findings": len(findings),
            "by_status": status_counts(findings),
            "failed_by_severity": failed_severity_counts(findings),
        },
        "targets": targets,
        "collection_errors": [{"source": r.source, "what": r.what, "reason": r.reason}
                              for r in scan.inventory.errors],
        "findings": [finding_dict(f) for f in findings],
    }


def render(scan: ScanResult, catalog: Catalog, out: TextIO) -> None:
    json.dump(build_document(scan), out, indent=2, ensure_ascii=False)
    out.write("\n")
