"""Synthetic scans for the store tests; run as a script it writes a big scan into a store (the
writer the interruption test kills)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from vmsec.facts import Inventory
from vmsec.facts.common import CollectionRecord
from vmsec.findings import Evidence, Finding, Severity, Status, Target, TargetKind
from vmsec.results import ScanResult

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
HOST = Target(TargetKind.HOST, "hv1")


def finding(check_id: str, target: Target, subject: str, status: Status,
            severity: Severity = Severity.HIGH, message: str | None = None, **extra: object) -> Finding:
    return Finding(check_id=check_id, title=f"title of {check_id}", status=status, severity=severity,
                   target=target, subject=subject, message=message or f"{subject} is {status.value}",
                   evidence=(Evidence("/etc/libvirt/qemu/x.xml", "devices/graphics[1]", "0.0.0.0"),
                             Evidence("/proc/cmdline")),
                   tags=("console", "access-control"), remediation=f"fix {check_id}", **extra)


def scan(findings: list[Finding], targets: list[Target], *, source: str = "host /",
         records: tuple[CollectionRecord, ...] = (), started: datetime = T0) -> ScanResult:
    return ScanResult.from_inventory(inventory=Inventory(records=records, source=source),
                                     findings=tuple(findings),
                      profile="multi-tenant", started_at=started, finished_at=started.replace(second=7),
                      checks_run=42, targets=tuple(targets))


def big_scan(n_targets: int, per_target: int) -> ScanResult:
    targets = [Target(TargetKind.DOMAIN, f"vm{i:05d}", "hv1") for i in range(n_targets)]
    statuses = (Status.FAIL, Status.PASS, Status.PASS, Status.UNKNOWN)
    fs = [finding(f"VMS-DOM-{j:03d}", t, f"device {j}", statuses[j % 4], message="x" * 200)
          for t in targets for j in range(per_target)]
    return scan(fs, targets, source="synthetic")


if __name__ == "__main__":
    from vmsec.store import open_store

    with open_store(sys.argv[1]) as store:
        store.save(big_scan(int(sys.argv[2]), int(sys.argv[3])))
