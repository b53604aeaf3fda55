"""CycloneDX SBOM (JSON, spec 1.6), built and validated with cyclonedx-python-lib.

One document per scan: every OS root the scan read — the hypervisor host's own OS and each guest —
is a component of type ``operating-system`` whose nested components are all its installed packages
(with purls), and the vulnerability findings become CycloneDX ``vulnerabilities`` that point at the
affected package components. Deterministic: serial number and timestamp derive from the scan.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import TextIO

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.tool import Tool
from cyclonedx.model.vulnerability import (
    BomTarget,
    Vulnerability,
    VulnerabilityRating,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from vmsec import __version__
from vmsec.checkinfo import CheckIndex
from vmsec.errors import VmsecError
from vmsec.findings import Finding, TargetKind
from vmsec.report import ReportOptions
from vmsec.report.text import json_text
from vmsec.results import Component as Package
from vmsec.results import OsInventory, ScanResult

_PURL_TYPE = {"dpkg": "deb", "rpm": "rpm", "apk": "apk"}
_SEVERITY = {"critical": VulnerabilitySeverity.CRITICAL, "high": VulnerabilitySeverity.HIGH,
             "medium": VulnerabilitySeverity.MEDIUM, "low": VulnerabilitySeverity.LOW,
             "info": VulnerabilitySeverity.INFO}


def _roots(scan: ScanResult) -> Iterator[tuple[str, str, OsInventory]]:
    """Every OS root the scan read: the host's own OS, then each guest (in target order)."""
    for target, os in scan.os_inventories.items():
        if target.kind is TargetKind.HOST:
            yield "host", target.name, os
    for target, os in scan.os_inventories.items():
        if target.kind is TargetKind.GUEST:
            yield "guest", target.name, os


def _purl(pkg: Package, os: OsInventory) -> PackageURL | None:
    kind = _PURL_TYPE.get(pkg.manager)
    if kind is None:
        return None
    os_id = (os.os_id or "").lower()
    qualifiers: dict[str, str] = {}
    if pkg.arch:
        qualifiers["arch"] = pkg.arch
    if os.version_id:
        qualifiers["distro"] = f"{os_id}-{os.version_id}"
    if pkg.source and pkg.source != pkg.name:
        qualifiers["upstream"] = pkg.source
    return PackageURL(type=kind, namespace=os_id or None, name=pkg.name, version=pkg.version,
                      qualifiers=qualifiers or None)


def build_bom(scan: ScanResult) -> Bom:
    # uuid5 encodes strict UTF-8: a source's undecodable bytes (lone surrogates) as escapes.
    seed = f"{scan.source}|{scan.started_at.isoformat()}".encode("utf-8", "backslashreplace").decode("utf-8")
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"vmsec:{seed}"))
    bom.metadata.timestamp = scan.started_at
    bom.metadata.tools.tools.add(Tool(vendor="vmsec", name="vmsec", version=__version__))
    refs: dict[tuple[str, str, str], list[str]] = {}  # (kind, name, binary) -> bom refs
    for kind, name, os_info in _roots(scan):
        children = []
        for pkg in os_info.packages:
            ref = f"{kind}:{name}:{pkg.manager}:{pkg.name}@{pkg.version}:{pkg.arch or ''}"
            props = [Property(name="vmsec:source_package", value=pkg.source)] if pkg.source else []
            children.append(Component(type=ComponentType.LIBRARY, name=pkg.name, version=pkg.version,
                                      purl=_purl(pkg, os_info), bom_ref=ref, properties=props))
            refs.setdefault((kind, name, pkg.name), []).append(ref)
        bom.components.add(Component(
            type=ComponentType.OPERATING_SYSTEM, bom_ref=f"{kind}:{name}",
            name=os_info.os_id or "unknown-os", version=os_info.version_id,
            description=f"{kind} {name}: {os_info.pretty_name or 'OS'}",
            components=children, properties=[Property(name="vmsec:target", value=f"{kind}:{name}")]))
    for finding in scan.findings:
        vuln = _vulnerability(finding, refs)
        if vuln is not None:
            bom.vulnerabilities.add(vuln)
    return bom


def _vulnerability(f: Finding, refs: dict[tuple[str, str, str], list[str]]) -> Vulnerability | None:
    v = f.vulnerability
    if not v or f.status.value != "FAIL":
        return None
    kind = "host" if f.target.kind is TargetKind.HOST else "guest"
    targets = [BomTarget(ref=r) for binary in str(v.get("package", "")).split(", ")
               for r in refs.get((kind, f.target.name, binary), [])]
    return Vulnerability(
        bom_ref=f"{f.fingerprint}", id=str(v.get("id")), description=f.message,
        source=VulnerabilitySource(name=", ".join(v.get("feeds") or []) or "vmsec"),
        ratings=[VulnerabilityRating(severity=_SEVERITY[f.severity.value])],
        recommendation=(f"upgrade {v.get('source_package')} to {v.get('fixed_version')}"
                        if v.get("fixed_version") else None),
        affects=targets,
        properties=[Property(name="vmsec:state", value=str(v.get("state")))])


def validate(text: str) -> None:
    """Validate against the CycloneDX 1.6 JSON schema (strict). Costs ~2 s per thousand packages
    (the schema's uniqueItems checks are quadratic), so the test suite does it on every shape the
    renderer produces rather than every scan."""
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise VmsecError(f"the CycloneDX document did not validate: {error}")


def render(scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    text = JsonV1Dot6(build_bom(scan)).output_as_string(indent=2)  # ASCII: non-ASCII as \u escapes
    if "\\ud" in text:  # maybe a lone surrogate's escape (a target name's undecodable bytes)
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    out.write(json_text(text))
    out.write("\n")


class CycloneDxReporter:
    """``--format cyclonedx``."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
        render(scan, checks, out)
