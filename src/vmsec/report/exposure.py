"""One view per VM: why is this VM exposed?

For each domain, :func:`exposure` gathers the failures that put it at risk — the host's isolation
failures, the management plane's, the domain's own configuration, its guest OS and the guest's
known vulnerabilities — and turns them into short plain sentences ranked by severity. A few
correlations are stated explicitly because neither finding says them alone: "the host lacks an
IOMMU while the VM has PCI passthrough" — those are checks that read the host's facts beside the
VM's (tagged ``correlation``, e.g. VMS-DOM-070), so they are stored, diffed and waived like any other
finding of the VM and shown here first. Nothing here judges: severities are the findings' own.

The sentences are plain text built from finding messages, which may carry strings a hostile guest
chose: every renderer escapes them for its own format.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from msgspec import Struct

from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.results import ScanResult

MAX_ITEMS = 12  # per VM; the rest are counted in ``VmExposure.more``


class Source(StrEnum):
    """Where an exposure comes from, in the order a reader should see ties."""

    CORRELATION = "host + VM"
    DOMAIN = "VM configuration"
    GUEST = "guest OS"
    VULNERABILITY = "guest vulnerabilities"
    HOST_ISOLATION = "host isolation"
    MANAGEMENT = "management plane"


_SOURCE_RANK = {s: i for i, s in enumerate(Source)}
_CORRELATION = "correlation"  # the tag of checks that judge host facts and VM configuration together


_PREFIX = {Source.HOST_ISOLATION: "host: ", Source.MANAGEMENT: "management plane: ", Source.GUEST: "guest: "}


class ExposureItem(Struct, frozen=True):
    severity: Severity
    source: Source
    text: str  # what was observed, without saying where (the source says that)
    check_ids: tuple[str, ...]
    subject: str = ""  # "TARGET|SUBJECT" of the worst finding: two checks on one subject say it once

    @property
    def sentence(self) -> str:
        """The text, prefixed with its source where the text alone would not say it."""
        return _PREFIX.get(self.source, "") + self.text


class VmExposure(Struct, frozen=True):
    domain: str
    host: str | None
    guest: str | None  # the guest OS target read for this domain, when there is one
    items: tuple[ExposureItem, ...]  # worst first, at most MAX_ITEMS
    more: int  # further exposures not listed
    unknown: int  # checks on this VM (domain + guest) that could not decide

    @property
    def worst(self) -> Severity | None:
        return self.items[0].severity if self.items else None

    def headline(self, limit: int = 3) -> str:
        """The first ``limit`` sentences joined: "VNC open on 0.0.0.0 without password; …"."""
        if not self.items:
            return "no failed checks"
        text = "; ".join(i.sentence for i in self.items[:limit])
        rest = len(self.items) - limit + self.more
        return text + (f"; and {rest} more" if rest > 0 else "")


def exposure(scan: ScanResult) -> list[VmExposure]:
    """The exposure of every domain in ``scan``: worst VM first, then by name."""
    by_target: dict[Target, list[Finding]] = defaultdict(list)
    for f in scan.findings:
        by_target[f.target].append(f)
    host_items = _host_items(f for t, fs in by_target.items() if t.kind is TargetKind.HOST for f in fs)
    guests = {str(details["domain"]): t.name for t, details in scan.details.items()
              if t.kind is TargetKind.GUEST and details.get("domain")}
    guest_targets = {t.name: t for t in by_target if t.kind is TargetKind.GUEST}
    guest_targets.update({t.name: t for t in scan.targets if t.kind is TargetKind.GUEST})
    seen: set[str] = set()
    views: list[VmExposure] = []
    dom_targets = [t for t in (*scan.targets, *by_target) if t.kind is TargetKind.DOMAIN]
    for target in dom_targets:
        if target.name in seen:
            continue
        seen.add(target.name)
        own = by_target.get(target, [])
        guest_name = guests.get(target.name)
        guest_t = guest_targets.get(guest_name) if guest_name else None
        guest_f = by_target.get(guest_t, []) if guest_t else []
        items = [*_grouped([f for f in own if _CORRELATION not in f.tags], Source.DOMAIN),
                 *_grouped([f for f in own if _CORRELATION in f.tags], Source.CORRELATION),
                 *_grouped([f for f in guest_f if f.vulnerability is None], Source.GUEST),
                 *_vulnerability_items(guest_f, "in the guest", Source.VULNERABILITY),
                 *host_items]
        items.sort(key=lambda i: (-i.severity.rank, _SOURCE_RANK[i.source], i.check_ids, i.text))
        items = _one_per_subject(items)
        unknown = sum(1 for f in (*own, *guest_f) if f.status is Status.UNKNOWN)
        views.append(VmExposure(domain=target.name, host=target.host, guest=guest_name,
                                items=tuple(items[:MAX_ITEMS]), more=max(0, len(items) - MAX_ITEMS),
                                unknown=unknown))
    views.sort(key=lambda v: (-(v.worst.rank if v.worst else -1), v.domain))
    return views


def _one_per_subject(items: list[ExposureItem]) -> list[ExposureItem]:
    """The worst sentence per subject: VMS-DOM-020 and VMS-DOM-021 both fail on one VNC device, and
    "why exposed" says so once (the other check ids stay on the kept item)."""
    kept: list[ExposureItem] = []
    index: dict[str, int] = {}
    for item in items:
        i = index.get(item.subject) if item.subject else None
        if i is None:
            if item.subject:
                index[item.subject] = len(kept)
            kept.append(item)
        else:
            first = kept[i]
            kept[i] = ExposureItem(first.severity, first.source, first.text,
                                   tuple(sorted({*first.check_ids, *item.check_ids})), first.subject)
    return kept


def _grouped(findings: Iterable[Finding], source: Source) -> list[ExposureItem]:
    """One sentence per failing check: its worst message, "(and N more like it)" for the rest."""
    per_check: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.status is Status.FAIL:
            per_check[f.check_id].append(f)
    items = []
    for check_id, fs in per_check.items():
        fs.sort(key=lambda f: (-f.severity.rank, f.subject))
        first = fs[0]
        sentence = first.message or first.title
        if len(fs) > 1:
            sentence += f" (and {len(fs) - 1} more like it)"
        items.append(ExposureItem(first.severity, source, sentence, (check_id,),
                                  f"{first.target.kind}:{first.target.name}|{first.subject}"))
    return items


def _host_items(findings: Iterable[Finding]) -> list[ExposureItem]:
    fails = [f for f in findings if f.status is Status.FAIL]
    checks = [f for f in fails if f.vulnerability is None]
    vulns = [f for f in fails if f.vulnerability is not None]
    escape = [f for f in vulns if "vm-escape-surface" in f.tags]  # QEMU, the kernel, libvirt …
    return [*_grouped([f for f in checks if "isolation" in f.tags], Source.HOST_ISOLATION),
            *_grouped([f for f in checks if "isolation" not in f.tags], Source.MANAGEMENT),
            *_vulnerability_items(escape, "in its VM-escape surface", Source.HOST_ISOLATION),
            *_vulnerability_items([f for f in vulns if "vm-escape-surface" not in f.tags], "in the host OS",
                                  Source.MANAGEMENT)]


def _vulnerability_items(findings: Iterable[Finding], where: str, source: Source) -> list[ExposureItem]:
    """Vulnerabilities summed up: the KEV-listed ones named, the rest counted."""
    vulns = [f for f in findings if f.status is Status.FAIL and f.vulnerability is not None]
    if not vulns:
        return []
    items = []
    kev = [f for f in vulns if _vuln(f).get("kev")]
    if kev:
        named = sorted({_vuln_name(f) for f in kev})
        shown = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
        worst_kev = max((f.severity for f in kev), key=lambda s: s.rank)  # VMS-VULN-* rate KEV critical
        items.append(ExposureItem(worst_kev, source,
                                  f"{len(named)} KEV-listed (exploited in the wild) "
                                  f"vulnerabilit{'y' if len(named) == 1 else 'ies'} {where}: {shown}",
                                  tuple(sorted({f.check_id for f in kev}))))
    rest = [f for f in vulns if not _vuln(f).get("kev")]
    if rest:
        worst = max((f.severity for f in rest), key=lambda s: s.rank)
        n_worst = sum(1 for f in rest if f.severity is worst)
        pkgs = sorted({str(_vuln(f).get("package") or "") for f in rest} - {""})
        in_pkgs = f"; {', '.join(pkgs[:3])}{' and others' if len(pkgs) > 3 else ''}" if pkgs else ""
        n = len({(_vuln_name(f), f.subject) for f in rest})
        items.append(ExposureItem(worst, source,
                                  f"{n} known vulnerabilit{'y' if n == 1 else 'ies'} {where} "
                                  f"({n_worst} {worst.value}{in_pkgs})",
                                  tuple(sorted({f.check_id for f in rest}))))
    return items


def _vuln_name(f: Finding) -> str:
    v = _vuln(f)
    name = str(v.get("id") or f.subject)
    return f"{name} ({v['package']})" if v.get("package") else name


def _vuln(f: Finding) -> Mapping[str, object]:
    return f.vulnerability or {}


def by_domain(views: Sequence[VmExposure]) -> dict[str, VmExposure]:
    return {v.domain: v for v in views}
