"""The HTML report: one self-contained file a security team can hand to an auditor, rendered from
autoescaping Jinja2 templates (``vmsec/report/templates``) that the web dashboard shares.

* It leads with what to fix first, then the summary, the most exposed hosts and VMs with their
  hardening score, a card per target (a VM's card says why it is exposed), every finding, the
  compliance view when asked for, and the inputs that could not be read.
* Self-contained: inline CSS, inline SVG charts, one inline script; nothing is loaded from anywhere
  (a Content-Security-Policy with ``default-src 'none'`` and the script's own hash makes sure of it).
* Static HTML (readable without JavaScript) except the full findings list: the findings travel as
  compact JSON (check metadata once, findings as rows) and the script renders them a page at a time,
  so a report of 1,000 VMs and 100,000 findings stays usable.
* Hostile strings: the templates autoescape every value, and control characters are shown as
  visible escapes (:func:`environment`'s ``finalize``); the JSON is embedded with ``<``, ``>``, ``&``
  and control, bidi and invisible characters as ``\\u`` escapes (lone surrogates as visible text,
  :func:`~vmsec.report.text.json_text`); the script builds the DOM with ``textContent`` only.

:func:`environment` is the template environment (loader, autoescaping, filters) for any caller —
the web dashboard renders its pages with it and the same ``base.html.j2`` and partials.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, TextIO

from markupsafe import Markup

from vmsec import __version__
from vmsec.checkinfo import CheckIndex
from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.report import ReportOptions
from vmsec.report.digest import KIND_PLURAL, KIND_SINGULAR, Digest, digest_of, says, target_label
from vmsec.report.exposure import VmExposure, exposure
from vmsec.report.summary import failed_severity_counts, sort_findings, status_counts
from vmsec.report.text import json_text, visible_lines
from vmsec.results import ScanResult

if TYPE_CHECKING:
    import jinja2

    from vmsec.compliance.frameworks import ComplianceResult

SEVERITIES = tuple(Severity)  # critical … info
STATUSES = (Status.FAIL, Status.ERROR, Status.UNKNOWN, Status.WAIVED, Status.PASS)
SEV_COLOR = {Severity.CRITICAL: "#8b0000", Severity.HIGH: "#d9480f", Severity.MEDIUM: "#e0a100",
             Severity.LOW: "#1c7ed6", Severity.INFO: "#868e96"}
STATUS_COLOR = {Status.FAIL: "#c92a2a", Status.ERROR: "#862e9c", Status.UNKNOWN: "#e67700",
                Status.WAIVED: "#1971c2", Status.PASS: "#2b8a3e"}
KIND_LABEL = {TargetKind.HOST: "Host", TargetKind.DOMAIN: "VM", TargetKind.GUEST: "Guest OS",
              TargetKind.NETWORK: "Network", TargetKind.ENDPOINT: "Endpoint"}
UNITS_SHOWN = 25  # rows of the "most exposed" table


def embed_json(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element or open a comment, whatever strings it holds,
    with control, bidi and invisible characters escaped (:func:`~vmsec.report.text.json_text`)."""
    text = json_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


# --- the template environment ---------------------------------------------------------------------------


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}``: control characters from scanned machines become visible escapes."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible_lines(value)
    return value


def _kinds(counts: Mapping[TargetKind, int]) -> str:
    order = list(TargetKind)
    return ", ".join(f"{n:,} {KIND_PLURAL[k] if n != 1 else KIND_SINGULAR[k]}"
                     for k, n in sorted(counts.items(), key=lambda kv: order.index(kv[0])))


def _https_only(url: str) -> str:
    return url if url.startswith("https://") else "#"


def _requirement_summary(r: Any) -> str:
    if not r.mapped:
        return "no vmsec check maps to this requirement"
    if not r.findings:
        return "no mapped check ran on this scan"
    counts = Counter(f.status for f in r.findings)
    return ", ".join(f"{counts[s]} {s.value.lower()}" for s in Status if counts.get(s))


def _static(name: str) -> str:
    from importlib import resources

    return (resources.files("vmsec.report") / "templates" / name).read_text(encoding="utf-8")


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of vmsec's HTML: templates from ``vmsec/report/templates``,
    autoescaping on for every template, control characters neutralised, and the filters the
    templates use (``num``, ``kinds``, ``label``, ``says``, ``https_only``, ``requirement_summary``)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vmsec.report", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, finalize=_finalize, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters.update(num=lambda n: f"{n:,}", kinds=_kinds, label=target_label, says=says,
                       https_only=_https_only, requirement_summary=_requirement_summary)
    env.globals.update(severities=[s.value for s in SEVERITIES], statuses=[s.value for s in STATUSES],
                       version=__version__)
    return env


@cache
def page_assets() -> tuple[Markup, Markup, str]:
    """(CSS, script, Content-Security-Policy) of the report page: the policy allows only the
    script's own hash."""
    css, script = _static("report.css"), _static("report.js")
    script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'")
    return Markup(css), Markup(script), csp


# --- data for the script ----------------------------------------------------------------------------

def build_data(scan: ScanResult, checks: CheckIndex, findings: Sequence[Finding],
               views: Sequence[VmExposure]) -> dict[str, Any]:
    check_index: dict[str, int] = {}
    rows_of_checks: list[list[Any]] = []
    specs = checks
    targets: list[Target] = []
    target_index: dict[Target, int] = {}

    def target_id(t: Target) -> int:
        if t not in target_index:
            target_index[t] = len(targets)
            targets.append(t)
        return target_index[t]

    for t in scan.targets:
        target_id(t)
    rows: list[list[Any]] = []
    sev_i = {s: i for i, s in enumerate(SEVERITIES)}
    st_i = {s: i for i, s in enumerate(STATUSES)}
    for f in findings:
        ci = check_index.get(f.check_id)
        if ci is None:
            spec = specs.get(f.check_id)
            ci = check_index[f.check_id] = len(rows_of_checks)
            if spec is not None:
                rows_of_checks.append([spec.id, spec.title, spec.rationale, spec.remediation,
                                       list(spec.references)])
            else:
                rows_of_checks.append([f.check_id, f.title, "", f.remediation, []])
        remediation = None if f.remediation == rows_of_checks[ci][3] else f.remediation
        rows.append([ci, st_i[f.status], sev_i[f.severity], target_id(f.target), f.subject, f.message,
                     [[ev.source, ev.locator, ev.value] for ev in f.evidence], remediation, f.detail])
    guest_by_name = {t.name: target_index[t] for t in targets if t.kind is TargetKind.GUEST}
    dom_by_name = {t.name: target_index[t] for t in targets if t.kind is TargetKind.DOMAIN}
    vms = [[dom_by_name.get(v.domain), guest_by_name.get(v.guest) if v.guest else None] for v in views]
    return {
        "severities": [s.value for s in SEVERITIES],
        "statuses": [s.value for s in STATUSES],
        "kinds": {k.value: KIND_LABEL[k] for k in TargetKind},
        "checks": rows_of_checks,
        "targets": [[t.kind.value, t.name, t.host] for t in targets],
        "findings": rows,
        "vms": vms,
    }



# --- the page -----------------------------------------------------------------------------------------


def _host_cards(scan: ScanResult, groups: Mapping[Target, list[Finding]], index: Mapping[Target, int],
                scores: Mapping[Target, int | None]) -> list[dict[str, Any]]:
    cards = []
    for t in index:
        if t.kind not in (TargetKind.HOST, TargetKind.NETWORK):
            continue
        fs = groups.get(t, [])
        d = scan.details.get(t) or {}
        facts = []
        if t.kind is TargetKind.HOST:
            for label, value in (("kernel", d.get("kernel_release")), ("QEMU", d.get("qemu_version")),
                                 ("libvirt", d.get("libvirt_version")), ("root", d.get("root")),
                                 ("itself a VM", d.get("hypervisor") if d.get("is_virtual") else None)):
                if value:
                    facts.append((label, str(value)))
        cards.append({"index": index[t], "kind": KIND_LABEL[t.kind], "name": t.name,
                      "failed": failed_severity_counts(fs), "counts": status_counts(fs), "facts": facts,
                      "score": scores.get(t) if t.kind is TargetKind.HOST else None})
    cards.sort(key=lambda c: (c["kind"] != "Host", c["name"]))
    return cards


def _vm_cards(views: Sequence[VmExposure], data_vms: Sequence[list[Any]],
              groups: Mapping[Target, list[Finding]], targets: Sequence[Target],
              scores: Mapping[tuple[str | None, str], int | None]) -> list[dict[str, Any]]:
    cards = []
    for v, (dom_i, guest_i) in zip(views, data_vms, strict=True):
        fs: list[Finding] = []
        for ti in (dom_i, guest_i):
            if ti is not None:
                fs += groups.get(targets[ti], [])
        cards.append({"name": v.domain, "worst": v.worst.value if v.worst else "none",
                      "failed": failed_severity_counts(fs), "guest": v.guest, "headline": v.headline(),
                      "exposure": v.items, "more": v.more, "unknown": v.unknown,
                      "ids": ",".join(str(x) for x in (dom_i, guest_i) if x is not None),
                      "score": scores.get((v.host, v.domain))})
    return cards


def _kind_rows(groups: Mapping[Target, list[Finding]]) -> list[tuple[str, int, dict[str, int]]]:
    per_kind: dict[TargetKind, Counter[str]] = defaultdict(Counter)
    n_targets: Counter[TargetKind] = Counter()
    for t, fs in groups.items():
        n_targets[t.kind] += 1
        per_kind[t.kind].update(f.severity.value for f in fs if f.status is Status.FAIL)
    return [(f"{KIND_LABEL[k]}s", n_targets[k], dict(per_kind[k])) for k in TargetKind if n_targets[k]]


def context(scan: ScanResult, checks: CheckIndex, digest: Digest | None = None,
            compliance: ComplianceResult | None = None) -> dict[str, Any]:
    """Everything report.html.j2 needs (a dashboard page can render the same partials with it)."""
    digest = digest or digest_of(scan)
    findings = sort_findings(scan.findings)
    views = exposure(scan)
    data = build_data(scan, checks, findings, views)
    targets = [Target(TargetKind(k), n, h) for k, n, h in data["targets"]]
    index = {t: i for i, t in enumerate(targets)}
    groups: dict[Target, list[Finding]] = defaultdict(list)
    for t in scan.targets:
        groups.setdefault(t, [])
    for f in findings:
        groups[f.target].append(f)
    host_scores = {ts.target: ts.score.value for ts in digest.targets}
    vm_scores = {(u.host, u.name): u.score.value for u in digest.units if u.kind is TargetKind.DOMAIN}
    sev_counts, st_counts = digest.failed, digest.by_status
    css, script, csp = page_assets()
    out: dict[str, Any] = {
        "scan": scan, "digest": digest, "csp": csp, "css": css, "script": script,
        "data_json": Markup(embed_json(data)), "total_findings": len(findings),
        "severity_bars": [(s.value, sev_counts.get(s.value, 0), SEV_COLOR[s]) for s in SEVERITIES],
        "status_bars": [(s.value, st_counts.get(s.value, 0), STATUS_COLOR[s]) for s in STATUSES],
        "kind_rows": _kind_rows(groups), "units_limit": UNITS_SHOWN,
        "host_cards": _host_cards(scan, groups, index, host_scores),
        "vm_cards": _vm_cards(views, data["vms"], groups, targets, vm_scores),
        "records": list(scan.errors), "compliance": compliance,
    }
    if compliance is not None:
        out.update(compliance_context(compliance, checks))
    return out


def compliance_context(compliance: ComplianceResult, checks: CheckIndex) -> dict[str, Any]:
    from vmsec.compliance.frameworks import unknown_checks
    from vmsec.report.compliance import _coverage_sentence

    stale = unknown_checks(compliance.framework, checks)
    return {"compliance": compliance, "coverage_sentence": _coverage_sentence(compliance),
            "stale": f"Mapped checks missing from the catalogue: {', '.join(stale)}." if stale else ""}


_CHUNK = 64 * 1024


def _write(out: TextIO, page: str) -> None:
    """Write a page of megabytes in 64 KiB pieces: CPython's buffered writer takes a pipe's short
    write of one huge string as done, so a reader that went away (``| head``) lost the rest silently
    and vmsec exited 0 with a cut page; piece by piece, the next write fails with EPIPE (exit 141)."""
    for start in range(0, len(page), _CHUNK):
        out.write(page[start:start + _CHUNK])


def render(scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    _write(out, environment().get_template("report.html.j2").render(context(scan, checks)))


def render_compliance_page(compliance: ComplianceResult, scan: ScanResult, checks: CheckIndex,
                           out: TextIO) -> None:
    """The compliance view as its own page (``--compliance NAME --format html``)."""
    css, _script, csp = page_assets()
    page = environment().get_template("compliance.html.j2").render(
        scan=scan, css=css, csp=csp, **compliance_context(compliance, checks))
    _write(out, page)


class HtmlReporter:
    """``--format html``."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
        render(scan, checks, out)


__all__ = ["HtmlReporter", "context", "embed_json", "environment", "page_assets", "render",
           "render_compliance_page"]
