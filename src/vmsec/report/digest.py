"""What people act on, worst first: the digest the terminal and HTML reports render.

A :class:`DigestBuilder` is a :class:`~vmsec.pipeline.FindingSink`: it takes a scan one target at a
time (live, or replayed from a finished or stored scan), keeps every count and only the findings a
reader must see (not the passes), and :meth:`DigestBuilder.digest` arranges them:

* **summary** — totals by status and failed checks by severity, targets by kind;
* **units** — hosts and VMs (a VM with its guest OS), ranked most exposed first (worst failed
  severity, then failed weight, then hardening score — :mod:`vmsec.report.score`), each with a
  short "why" (its worst failures, one per subject, so one VNC problem is not told twice);
* **fix first** — failed checks and vulnerable packages ranked by severity, KEV, then how many
  targets they touch, with what to do;
* **sections** — FAIL findings by severity, grouped per check (remediation once, each finding with
  its evidence location) and vulnerabilities grouped per package per target (counts, fixed version,
  KEV and EPSS highlights) instead of one line per CVE;
* **undecided** (UNKNOWN, ERROR), **waived**, **passed** (counts per check) and the inputs that
  could not be read.

Nothing here judges: severities and statuses are the findings' own (reporters group and rank).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from msgspec import Struct, field

from vmsec.facts import CollectionRecord
from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.report.score import Score, ScoreTally
from vmsec.results import OsInventory, ScanResult, TargetBatch

if TYPE_CHECKING:
    from vmsec.pipeline import ScanHeader

KIND_LABEL = {TargetKind.HOST: "Host", TargetKind.DOMAIN: "VM", TargetKind.GUEST: "Guest OS",
              TargetKind.NETWORK: "Network", TargetKind.ENDPOINT: "Endpoint"}
KIND_SINGULAR = {TargetKind.HOST: "host", TargetKind.DOMAIN: "VM", TargetKind.GUEST: "guest OS",
                 TargetKind.NETWORK: "network", TargetKind.ENDPOINT: "endpoint"}
KIND_PLURAL = {TargetKind.HOST: "hosts", TargetKind.DOMAIN: "VMs", TargetKind.GUEST: "guest OSes",
               TargetKind.NETWORK: "networks", TargetKind.ENDPOINT: "endpoints"}
SEVERITIES: tuple[Severity, ...] = tuple(Severity)  # critical … info
_KIND_RANK = {TargetKind.HOST: 0, TargetKind.DOMAIN: 1, TargetKind.GUEST: 2, TargetKind.NETWORK: 3,
              TargetKind.ENDPOINT: 4}
FIX_FIRST = 10  # entries in "fix first"
WHY_ITEMS = 3  # sentences in a unit's "why"


def says(subject: str, message: str) -> str:
    """A finding as one phrase: ``subject: message`` — without repeating the subject when the
    message already starts with it, or with its last words (subject ``qemu.conf vnc_listen``,
    message ``vnc_listen = "0.0.0.0" …`` → ``qemu.conf vnc_listen = "0.0.0.0" …``)."""
    if not subject:
        return message
    if not message:
        return subject
    low = message.lower()
    words = subject.split(" ")
    for i in range(len(words)):
        tail = " ".join(words[i:])
        n = len(tail)
        if n >= 3 and low.startswith(tail.lower()) and (len(message) == n or not message[n].isalnum()):
            return " ".join(words[:i]) + " " + message if i else message
    return f"{subject}: {message}"


def target_label(target: Target) -> str:
    return f"{KIND_LABEL.get(target.kind, target.kind.value)} {target.name}"


def evidence_location(f: Finding) -> str:
    """Where the first piece of evidence was read: ``source [locator] = value`` (value when short)."""
    if not f.evidence:
        return ""
    e = f.evidence[0]
    text = e.source
    if e.locator:
        text += f" {e.locator}"
    if e.value is not None and len(e.value) <= 60:
        text += f" = {e.value}"
    if len(f.evidence) > 1:
        text += f" (+{len(f.evidence) - 1} more)"
    return text


_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z`<'\"(])")


def first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of a remediation, for summaries (whitespace folded)."""
    text = " ".join(text.split())
    end = _SENTENCE_END.search(text)
    if end is not None and end.end() <= limit:
        return text[: end.end()]
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > 0 else limit - 1].rstrip(",;:") + " …"


# --- the digest's parts ----------------------------------------------------------------------------------


class TargetSummary(Struct, frozen=True):
    target: Target
    details: Mapping[str, Any]
    by_status: Mapping[str, int]
    failed: Mapping[str, int]  # FAIL findings by severity
    score: Score


class Unit(Struct, frozen=True):
    """A host, or a VM with its guest OS (or a guest OS without a VM): what gets a score and a rank."""

    kind: TargetKind
    name: str
    host: str | None
    targets: tuple[Target, ...]
    score: Score
    failed: Mapping[str, int]
    worst: Severity | None
    why: tuple[str, ...]  # its worst failures as sentences, one per subject
    more: int  # failed findings not in ``why``
    undecided: int  # UNKNOWN and ERROR findings

    @property
    def label(self) -> str:
        return f"{KIND_LABEL.get(self.kind, self.kind.value)} {self.name}"


class Fix(Struct, frozen=True):
    """One thing to fix: a failed check (everywhere it failed), or a vulnerable package."""

    severity: Severity
    check_id: str
    title: str
    action: str  # what to do (the remediation's first sentence, or the upgrade)
    targets: int  # distinct targets affected
    findings: int
    kev: int = 0  # KEV-listed vulnerabilities among them
    package: str | None = None
    kinds: Mapping[TargetKind, int] = field(default_factory=dict)  # targets affected, per kind


class CheckGroup(Struct, frozen=True):
    """Findings of one check (one status), in target order; the check's remediation said once."""

    check_id: str
    title: str
    severity: Severity
    remediation: str
    findings: tuple[Finding, ...]

    @property
    def targets(self) -> int:
        return len({f.target for f in self.findings})


class VulnGroup(Struct, frozen=True):
    """The vulnerabilities of one package on one target, as one entry."""

    target: Target
    package: str  # the source package (or the binaries when it is not known)
    binaries: str
    installed: str
    severity: Severity  # the worst among them
    counts: Mapping[str, int]  # distinct advisories by severity
    fixed_version: str | None  # the version that fixes every fixed advisory (None: none fixed)
    unfixed: int  # advisories without a fix
    kev: tuple[str, ...]  # KEV-listed advisory ids
    epss: tuple[tuple[str, float], ...]  # the highest EPSS scores (id, score), at most 3
    findings: tuple[Finding, ...]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Digest(Struct, frozen=True):
    source: str
    profile: str
    started_at: datetime
    finished_at: datetime
    checks_run: int
    complete: bool
    scan_id: int | None
    by_status: Mapping[str, int]
    failed: Mapping[str, int]  # FAIL by severity
    findings: int
    targets_by_kind: Mapping[TargetKind, int]
    targets: tuple[TargetSummary, ...]
    units: tuple[Unit, ...]  # most exposed first
    fix_first: tuple[Fix, ...]
    sections: tuple[tuple[Severity, tuple[CheckGroup | VulnGroup, ...]], ...]  # FAIL, worst first
    errors: tuple[CheckGroup, ...]  # ERROR findings per check
    unknown: tuple[CheckGroup, ...]  # UNKNOWN findings per check
    waived: tuple[CheckGroup, ...]
    passed: tuple[tuple[str, str, int], ...]  # (check id, title, targets) when asked for
    not_audited: Mapping[Target, str]  # targets whose contents could not be audited, and why
    records: tuple[CollectionRecord, ...]  # inputs that could not be read (not_audited ones apart)

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


# --- building it ---------------------------------------------------------------------------------------


class DigestBuilder:
    """A :class:`~vmsec.pipeline.FindingSink` that keeps what a digest needs (counts for every
    finding, the findings that are not PASS). ``select`` drops findings the reader asked not to see
    (``--severity``, ``--ignore-unfixed``) before anything is counted."""

    def __init__(self, *, show_pass: bool = False, select: Callable[[Finding], bool] | None = None) -> None:
        self.show_pass = show_pass
        self.select = select
        self.header: ScanHeader | None = None
        self.result: ScanResult | None = None
        self._targets: list[tuple[Target, Mapping[str, Any], dict[str, int], dict[str, int], ScoreTally]] = []
        self._kept: list[Finding] = []
        self._passed: dict[str, list[Any]] = {}  # check id -> [title, targets]

    def begin(self, header: ScanHeader) -> None:
        self.header = header

    def add(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None) -> None:
        findings: Iterable[Finding] = batch.findings
        if self.select is not None:
            findings = [f for f in findings if self.select(f)]
        by_status = dict.fromkeys(("PASS", "FAIL", "UNKNOWN", "ERROR", "WAIVED"), 0)
        failed = dict.fromkeys(("critical", "high", "medium", "low", "info"), 0)
        tally = ScoreTally()
        kept = self._kept
        passed_checks: set[str] = set()
        p, fail = Status.PASS, Status.FAIL
        for f in findings:
            status = f.status
            by_status[status.value] += 1
            if status is p:
                passed_checks.add(f.check_id)
                continue
            if status is fail:
                failed[f.severity.value] += 1
            kept.append(f)
        tally.add(findings)
        if self.show_pass:
            for f in findings:
                if f.status is p and f.check_id in passed_checks:
                    entry = self._passed.setdefault(f.check_id, [f.title, 0])
                    entry[1] += 1
                    passed_checks.discard(f.check_id)
        self._targets.append((batch.target, details, by_status, failed, tally))

    def end(self, result: ScanResult) -> None:
        self.result = result

    def digest(self) -> Digest:
        result = self.result
        assert result is not None, "digest() before end()"
        return _arrange(self, result)


def digest_of(scan: ScanResult, *, show_pass: bool = False,
              select: Callable[[Finding], bool] | None = None) -> Digest:
    """The digest of a finished (or stored) scan."""
    builder = DigestBuilder(show_pass=show_pass, select=select)
    for batch in scan.batches():
        builder.add(batch, scan.details.get(batch.target, {}), scan.os_inventories.get(batch.target))
    builder.end(scan)
    return builder.digest()


def _arrange(b: DigestBuilder, result: ScanResult) -> Digest:
    targets = [TargetSummary(t, d, s, fl, tally.score()) for t, d, s, fl, tally in b._targets]
    by_status: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    kinds: Counter[TargetKind] = Counter()
    for ts in targets:
        by_status.update(ts.by_status)
        failed.update(ts.failed)
        kinds[ts.target.kind] += 1
    kept = b._kept
    fails = [f for f in kept if f.status is Status.FAIL]
    not_audited = _not_audited(result.records, targets)
    said = set(not_audited.values())
    records = tuple(r for r in result.errors if not (r.what == "guest contents" and (r.reason or "") in said))
    unknown = [f for f in kept if f.status is Status.UNKNOWN and f.target not in not_audited]
    return Digest(
        source=result.source, profile=result.profile, started_at=result.started_at,
        finished_at=result.finished_at, checks_run=result.checks_run, complete=result.complete,
        scan_id=result.scan_id,
        by_status={s.value: by_status.get(s.value, 0) for s in Status},
        failed={s.value: failed.get(s.value, 0) for s in Severity},
        findings=sum(by_status.values()), targets_by_kind=dict(kinds), targets=tuple(targets),
        units=_units(b, kept), fix_first=_fix_first(fails), sections=_sections(fails),
        errors=_per_check([f for f in kept if f.status is Status.ERROR]),
        unknown=_per_check(unknown),
        waived=_per_check([f for f in kept if f.status is Status.WAIVED]),
        passed=tuple((cid, title, n) for cid, (title, n) in sorted(b._passed.items())),
        not_audited=not_audited, records=records)


def _not_audited(records: Sequence[CollectionRecord], targets: Sequence[TargetSummary]) -> dict[Target, str]:
    """Guests whose contents could not be read at all (an encrypted disk without its key): their
    UNKNOWN results are said once, by the record, instead of one line per check."""
    reasons = {r.source: r.reason or "" for r in records if not r.ok and r.what == "guest contents"}
    if not reasons:
        return {}
    return {ts.target: reasons[str(ts.details.get("origin"))] for ts in targets
            if ts.target.kind is TargetKind.GUEST and str(ts.details.get("origin")) in reasons}


def _units(b: DigestBuilder, kept: Sequence[Finding]) -> tuple[Unit, ...]:
    by_target: dict[Target, list[Finding]] = defaultdict(list)
    for f in kept:
        by_target[f.target].append(f)
    entries = {t: (d, tally) for t, d, _s, _f, tally in b._targets}
    guests_of: dict[tuple[str | None, str], list[Target]] = defaultdict(list)
    for t, (d, _tally) in entries.items():
        if t.kind is TargetKind.GUEST and d.get("domain"):
            guests_of[(t.host, str(d["domain"]))].append(t)
    domain_names = {(t.host, t.name) for t in entries if t.kind is TargetKind.DOMAIN}
    units: list[Unit] = []
    for t in entries:
        if t.kind is TargetKind.HOST:
            members = [t]
        elif t.kind is TargetKind.DOMAIN:
            members = [t, *guests_of.get((t.host, t.name), ())]
        elif t.kind is TargetKind.GUEST and (t.host, str(entries[t][0].get("domain"))) not in domain_names:
            members = [t]
        else:
            continue
        merged = ScoreTally()
        for m in members:
            merged.merge(entries[m][1])
        found = [f for m in members for f in by_target.get(m, ())]
        units.append(_unit(t, members, merged.score(), found))
    units.sort(key=lambda u: (-(u.worst.rank if u.worst else -1), -u.score.failed_weight,
                              u.score.value if u.score.value is not None else 101,
                              _KIND_RANK.get(u.kind, 9), u.name))
    return tuple(units)


def _unit(t: Target, members: Sequence[Target], score: Score, found: Sequence[Finding]) -> Unit:
    fails = [f for f in found if f.status is Status.FAIL]
    failed = Counter(f.severity.value for f in fails)
    worst = max((f.severity for f in fails), key=lambda s: s.rank, default=None)
    checks = sorted((f for f in fails if f.vulnerability is None),
                    key=lambda f: (-f.severity.rank, f.check_id, f.target.kind != t.kind, f.subject))
    why: list[str] = []
    seen: set[tuple[Target, str]] = set()
    for f in checks:
        key = (f.target, f.subject)
        if key in seen:
            continue  # one sentence per subject: the worst (two checks on one VNC device say it once)
        seen.add(key)
        if len(why) < WHY_ITEMS:
            prefix = "guest: " if f.target.kind is TargetKind.GUEST and t.kind is TargetKind.DOMAIN else ""
            why.append(prefix + (f.message or f.title))
    more = len(seen) - len(why)
    vulns = [f for f in fails if f.vulnerability is not None]
    if vulns and len(why) >= WHY_ITEMS:
        more += 1
    elif vulns:
        ids = {str(f.vulnerability.get("id") or f.subject) for f in vulns if f.vulnerability is not None}
        kev = {str(f.vulnerability.get("id")) for f in vulns
               if f.vulnerability and f.vulnerability.get("kev")}
        why.append(f"{len(ids)} known vulnerabilit{'y' if len(ids) == 1 else 'ies'}"
                   + (f" ({len(kev)} exploited in the wild, KEV)" if kev else ""))
    undecided = sum(1 for f in found if f.status in (Status.UNKNOWN, Status.ERROR))
    return Unit(kind=t.kind, name=t.name, host=t.host, targets=tuple(members), score=score,
                failed={s.value: failed.get(s.value, 0) for s in Severity}, worst=worst, why=tuple(why),
                more=more, undecided=undecided)


# --- fix first -------------------------------------------------------------------------------------------


def _package_key(f: Finding) -> str:
    v = f.vulnerability or {}
    return str(v.get("source_package") or v.get("package") or f.subject)


def _fix_first(fails: Sequence[Finding]) -> tuple[Fix, ...]:
    checks: dict[str, list[Finding]] = defaultdict(list)
    packages: dict[str, list[Finding]] = defaultdict(list)
    for f in fails:
        if f.vulnerability is not None:
            packages[_package_key(f)].append(f)
        else:
            checks[f.check_id].append(f)
    fixes: list[Fix] = []
    for check_id, fs in checks.items():
        worst = max(fs, key=lambda f: f.severity.rank)
        targets = {f.target for f in fs}
        fixes.append(Fix(severity=worst.severity, check_id=check_id, title=worst.title,
                         action=first_sentence(worst.remediation) or worst.title, targets=len(targets),
                         findings=len(fs), kinds=Counter(t.kind for t in targets)))
    for package, fs in packages.items():
        worst = max(fs, key=lambda f: f.severity.rank)
        targets = {f.target for f in fs}
        ids = {str((f.vulnerability or {}).get("id") or f.subject) for f in fs}
        kev = {str((f.vulnerability or {}).get("id")) for f in fs if (f.vulnerability or {}).get("kev")}
        fixed = _fixed_version(fs)
        unfixed = sum(1 for f in fs if not (f.vulnerability or {}).get("fixed_version"))
        if fixed:
            action = f"upgrade {package} to {fixed} or later"
            if unfixed:
                action += f" ({unfixed} without a fix yet)"
        else:
            action = f"no fixed {package} released yet: mitigate, or remove the package where unused"
        fixes.append(Fix(severity=worst.severity, check_id=worst.check_id,
                         title=f"{len(ids)} vulnerabilit{'y' if len(ids) == 1 else 'ies'} in {package}",
                         action=action, targets=len(targets), findings=len(ids), kev=len(kev),
                         package=package, kinds=Counter(t.kind for t in targets)))
    fixes.sort(key=lambda x: (-x.severity.rank, -x.kev, -x.targets, -x.findings, x.check_id,
                              x.package or ""))
    return tuple(fixes[:FIX_FIRST])


def _comparator(ecosystem: str) -> Callable[[str, str], int]:
    from vmsec.vulns.versions import apk_compare, dpkg_compare, rpm_compare

    if ecosystem.startswith(("Debian", "Ubuntu")):
        return dpkg_compare
    if ecosystem.startswith("Alpine"):
        return apk_compare
    return rpm_compare


def _fixed_version(fs: Sequence[Finding]) -> str | None:
    """The highest fixed version among ``fs`` (installing it fixes every advisory that has a fix)."""
    best: str | None = None
    compare: Callable[[str, str], int] | None = None
    for f in fs:
        v = f.vulnerability or {}
        fixed = v.get("fixed_version")
        if not fixed:
            continue
        fixed = str(fixed)
        if best is None:
            best = fixed
            continue
        if compare is None:
            compare = _comparator(str(v.get("ecosystem") or ""))
        try:
            if compare(fixed, best) > 0:
                best = fixed
        except Exception:  # a version a comparator cannot read: keep the one we have
            continue
    return best


# --- sections --------------------------------------------------------------------------------------------


def _order(fs: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(fs, key=lambda f: (_KIND_RANK.get(f.target.kind, 9), f.target.name, f.subject)))


def _per_check(fs: Iterable[Finding]) -> tuple[CheckGroup, ...]:
    groups: dict[str, list[Finding]] = defaultdict(list)
    for f in fs:
        groups[f.check_id].append(f)
    out = [CheckGroup(cid, g[0].title, max((f.severity for f in g), key=lambda s: s.rank), g[0].remediation,
                      _order(g)) for cid, g in groups.items()]
    out.sort(key=lambda g: (-g.severity.rank, -len(g.findings), g.check_id))
    return tuple(out)


def _sections(fails: Sequence[Finding]) -> tuple[tuple[Severity, tuple[CheckGroup | VulnGroup, ...]], ...]:
    checks: dict[tuple[Severity, str], list[Finding]] = defaultdict(list)
    packages: dict[tuple[Target, str], list[Finding]] = defaultdict(list)
    for f in fails:
        if f.vulnerability is not None:
            packages[(f.target, _package_key(f))].append(f)
        else:
            checks[(f.severity, f.check_id)].append(f)
    per_severity: dict[Severity, list[CheckGroup | VulnGroup]] = defaultdict(list)
    check_groups = [CheckGroup(cid, fs[0].title, sev, fs[0].remediation, _order(fs))
                    for (sev, cid), fs in checks.items()]
    check_groups.sort(key=lambda g: (-g.targets, -len(g.findings), g.check_id))
    for g in check_groups:
        per_severity[g.severity].append(g)
    vuln_groups = [_vuln_group(t, pkg, fs) for (t, pkg), fs in packages.items()]
    vuln_groups.sort(key=lambda g: (-len(g.kev), -g.total, _KIND_RANK.get(g.target.kind, 9), g.target.name,
                                    g.package))
    for vg in vuln_groups:
        per_severity[vg.severity].append(vg)
    return tuple((sev, tuple(per_severity[sev])) for sev in SEVERITIES if per_severity.get(sev))


def _vuln_group(target: Target, package: str, fs: Sequence[Finding]) -> VulnGroup:
    by_id: dict[str, Finding] = {}
    for f in fs:
        vid = str((f.vulnerability or {}).get("id") or f.subject)
        if vid not in by_id or f.severity.rank > by_id[vid].severity.rank:
            by_id[vid] = f
    counts = Counter(f.severity.value for f in by_id.values())
    kev = tuple(sorted(vid for vid, f in by_id.items() if (f.vulnerability or {}).get("kev")))
    epss: list[tuple[str, float]] = []
    for vid, f in by_id.items():
        e = (f.vulnerability or {}).get("epss")
        score = e.get("score") if isinstance(e, Mapping) else None
        if isinstance(score, int | float):
            epss.append((vid, float(score)))
    epss.sort(key=lambda x: (-x[1], x[0]))
    first = fs[0].vulnerability or {}
    binaries = sorted({str((f.vulnerability or {}).get("package") or "") for f in fs} - {""})
    worst = max((f.severity for f in fs), key=lambda s: s.rank)
    return VulnGroup(target=target, package=package, binaries=", ".join(binaries),
                     installed=str(first.get("installed_version") or "?"), severity=worst,
                     counts={s.value: counts.get(s.value, 0) for s in Severity},
                     fixed_version=_fixed_version(fs),
                     unfixed=sum(1 for f in by_id.values()
                                 if not (f.vulnerability or {}).get("fixed_version")),
                     kev=kev, epss=tuple(epss[:3]),
                     findings=tuple(sorted(fs, key=lambda f: (-f.severity.rank, f.subject))))
