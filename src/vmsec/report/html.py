"""The HTML report: one self-contained file a security team can hand to an auditor.

* Self-contained: inline CSS, inline SVG charts, one inline script; nothing is loaded from anywhere
  (a Content-Security-Policy with ``default-src 'none'`` and the script's own hash makes sure of it).
* Static HTML (readable without JavaScript): the summary with severity charts, one card per host
  and one per VM with its exposure summary (:mod:`vmsec.report.exposure`).
* The findings travel as compact JSON (check metadata once, findings as rows) and the script renders
  them a page at a time — per VM when its card is opened, and in the filtered list (severity,
  status, target, text) — so a report of 1,000 VMs and 100,000 findings stays usable.
* Hostile strings: static text goes through :func:`html.escape`; the JSON is embedded with ``<``,
  ``>`` and ``&`` as ``\\u`` escapes; the script builds the DOM with ``textContent`` only.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any, TextIO

from vmsec import __version__
from vmsec.checkinfo import CheckIndex
from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.report import ReportOptions
from vmsec.report.exposure import VmExposure, exposure
from vmsec.report.summary import failed_severity_counts, sort_findings, status_counts
from vmsec.results import ScanResult

SEVERITIES = tuple(Severity)  # critical … info
STATUSES = (Status.FAIL, Status.ERROR, Status.UNKNOWN, Status.WAIVED, Status.PASS)
SEV_COLOR = {Severity.CRITICAL: "#8b0000", Severity.HIGH: "#d9480f", Severity.MEDIUM: "#e0a100",
             Severity.LOW: "#1c7ed6", Severity.INFO: "#868e96"}
STATUS_COLOR = {Status.FAIL: "#c92a2a", Status.ERROR: "#862e9c", Status.UNKNOWN: "#e67700",
                Status.WAIVED: "#1971c2", Status.PASS: "#2b8a3e"}
KIND_LABEL = {TargetKind.HOST: "Host", TargetKind.DOMAIN: "VM", TargetKind.GUEST: "Guest OS",
              TargetKind.NETWORK: "Network", TargetKind.ENDPOINT: "Endpoint"}


def e(text: object) -> str:
    return escape(str(text), quote=True)


def embed_json(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element or open a comment, whatever strings it holds."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


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


# --- static parts -----------------------------------------------------------------------------------

def _bar_chart(title: str, items: Sequence[tuple[str, int, str]], chart_id: str) -> str:
    """A horizontal bar chart as inline SVG: one bar per (label, value, colour)."""
    top = max((v for _, v, _ in items), default=0) or 1
    row_h, label_w, bar_w = 26, 90, 220
    height = row_h * len(items) + 8
    parts = [f'<figure class="chart" id="{chart_id}"><figcaption>{e(title)}</figcaption>'
             f'<svg viewBox="0 0 {label_w + bar_w + 70} {height}" role="img" aria-label="{e(title)}">']
    for i, (label, value, color) in enumerate(items):
        y = 4 + i * row_h
        w = round(bar_w * value / top)
        parts.append(f'<text x="{label_w - 6}" y="{y + 17}" text-anchor="end">{e(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1)}" height="18" rx="3" '
                     f'fill="{color}"><title>{e(label)}: {value}</title></rect>'
                     f'<text x="{label_w + max(w, 1) + 6}" y="{y + 17}" class="v">{value}</text>')
    parts.append("</svg></figure>")
    return "".join(parts)


def _sev_badges(counts: dict[str, int]) -> str:
    out = [f'<span class="badge sev-{s.value}">{counts[s.value]} {s.value}</span>'
           for s in SEVERITIES if counts.get(s.value)]
    return "".join(out) or '<span class="badge ok">no failures</span>'


def _host_cards(scan: ScanResult, groups: dict[Target, list[Finding]], index: dict[Target, int]) -> str:
    cards = []
    for t in (t for t in index if t.kind is TargetKind.HOST):
        fs = groups.get(t, [])
        facts = []
        d = scan.details.get(t) or {}
        for label, value in (("kernel", d.get("kernel_release")), ("QEMU", d.get("qemu_version")),
                             ("libvirt", d.get("libvirt_version")), ("root", d.get("root")),
                             ("itself a VM", d.get("hypervisor") if d.get("is_virtual") else None)):
            if value:
                facts.append(f"<span>{e(label)} <b>{e(value)}</b></span>")
        c = status_counts(fs)
        cards.append(
            f'<details class="card target" data-target="{index[t]}"><summary><span class="kind">Host</span> '
            f'<b class="name">{e(t.name)}</b> {_sev_badges(failed_severity_counts(fs))}'
            f'<span class="muted"> {c["PASS"]} passed · {c["UNKNOWN"]} unknown · {c["ERROR"]} errors'
            f'</span></summary><div class="facts">{"".join(facts)}</div>'
            f'<div class="drill" data-targets="{index[t]}"></div></details>')
    others = [t for t in index if t.kind is TargetKind.NETWORK]
    for t in others:
        fs = groups.get(t, [])
        cards.append(
            f'<details class="card target" data-target="{index[t]}"><summary>'
            '<span class="kind">Network</span> '
            f'<b class="name">{e(t.name)}</b> {_sev_badges(failed_severity_counts(fs))}</summary>'
            f'<div class="drill" data-targets="{index[t]}"></div></details>')
    return "".join(cards) or '<p class="muted">No host was scanned (offline XML only).</p>'


def _vm_cards(views: Sequence[VmExposure], data_vms: Sequence[list[Any]],
              groups: dict[Target, list[Finding]], targets: Sequence[Target]) -> str:
    cards = []
    for i, (v, (dom_i, guest_i)) in enumerate(zip(views, data_vms, strict=True)):
        fs: list[Finding] = []
        for ti in (dom_i, guest_i):
            if ti is not None:
                fs += groups.get(targets[ti], [])
        worst = v.worst.value if v.worst else "none"
        items = "".join(f'<li><span class="badge sev-{it.severity.value}">{it.severity.value}</span> '
                        f'<span class="src">{e(it.source.value)}</span> {e(it.text)}</li>'
                        for it in v.items)
        if v.more:
            items += f'<li class="muted">… and {v.more} more (see the findings below)</li>'
        guest = f' <span class="muted">guest OS: {e(v.guest)}</span>' if v.guest else ""
        ids = ",".join(str(x) for x in (dom_i, guest_i) if x is not None)
        cards.append(
            f'<details class="card vm worst-{worst}" data-vm="{i}"><summary><span class="kind">VM</span> '
            f'<b class="name">{e(v.domain)}</b> {_sev_badges(failed_severity_counts(fs))}{guest}'
            f'<div class="headline">{e(v.headline())}</div></summary>'
            '<h4>Why this VM is exposed</h4>'
            f'<ol class="exposure">{items or "<li>No failed checks.</li>"}</ol>'
            + (f'<p class="muted">{v.unknown} checks could not decide (UNKNOWN).</p>' if v.unknown else "")
            + f'<h4>Findings</h4><div class="drill" data-targets="{ids}"></div></details>')
    return "".join(cards) or '<p class="muted">No VM was scanned.</p>'


def _kind_table(groups: dict[Target, list[Finding]]) -> str:
    per_kind: dict[TargetKind, Counter[str]] = defaultdict(Counter)
    n_targets: Counter[TargetKind] = Counter()
    for t, fs in groups.items():
        n_targets[t.kind] += 1
        per_kind[t.kind].update(f.severity.value for f in fs if f.status is Status.FAIL)
    rows = "".join(
        f"<tr><th>{KIND_LABEL[k]}s</th><td>{n_targets[k]}</td>"
        + "".join(f"<td>{per_kind[k][s.value]}</td>" for s in SEVERITIES) + "</tr>"
        for k in TargetKind if n_targets[k])
    head = "".join(f'<th class="sev-{s.value}-t">{s.value}</th>' for s in SEVERITIES)
    return (f'<div class="scroll"><table class="kinds"><thead><tr><th>Targets</th><th>scanned</th>{head}'
            f"</tr></thead><tbody>{rows}</tbody></table></div>")


def _collection_errors(scan: ScanResult) -> str:
    errors = scan.errors
    if not errors:
        return ""
    items = "".join(f"<li><code>{e(r.source)}</code> {e(r.what)}: {e(r.reason or 'unknown reason')}</li>"
                    for r in errors[:500])
    more = f"<li>… and {len(errors) - 500} more</li>" if len(errors) > 500 else ""
    return (f'<section id="inputs"><h2>Inputs that could not be read ({len(errors)})</h2>'
            f'<p>Checks that needed them report UNKNOWN, never PASS.</p><ul>{items}{more}</ul></section>')


def render(scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
    findings = sort_findings(scan.findings)
    views = exposure(scan)
    data = build_data(scan, checks, findings, views)
    targets = [Target(TargetKind(k), n, h) for k, n, h in data["targets"]]
    index = {t: i for i, t in enumerate(targets)}
    groups: dict[Target, list[Finding]] = defaultdict(list)
    for f in findings:
        groups[f.target].append(f)
    sev_counts = failed_severity_counts(findings)
    st_counts = status_counts(findings)
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    csp = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'")
    title = f"vmsec report — {scan.source or 'scan'}"
    complete = ('<span class="badge ok">complete</span>' if scan.complete
                else '<span class="badge sev-high">incomplete: some inputs or checks failed</span>')
    summary_cards = "".join(
        f'<div class="stat st-{s.value}" data-status="{s.value}"><b class="n">{st_counts[s.value]}</b>'
        f"<span>{s.value}</span></div>" for s in STATUSES)
    out.write(
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">'
        f'<meta name="generator" content="vmsec {e(__version__)}">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>vmsec report</h1><p class="scan"><span>{e(scan.source or "scan")}</span> '
        f"<span>profile <b>{e(scan.profile)}</b></span> "
        f'<span>started <time datetime="{e(scan.started_at.isoformat())}">'
        f'{e(scan.started_at.strftime("%Y-%m-%d %H:%M:%S %Z"))}</time></span> '
        f"<span>{scan.checks_run} checks</span> {complete}</p></header><main>"
        '<section id="summary"><h2>Summary</h2>'
        f'<div class="stats" id="status-counts">{summary_cards}</div>'
        '<div class="charts">'
        + _bar_chart("Failed checks by severity",
                     [(s.value, sev_counts[s.value], SEV_COLOR[s]) for s in SEVERITIES], "chart-severity")
        + _bar_chart("Findings by status",
                     [(s.value, st_counts[s.value], STATUS_COLOR[s]) for s in STATUSES], "chart-status")
        + "</div>" + _kind_table(groups) + _top_vms(views) + "</section>"
        + f'<section id="hosts"><h2>Hosts and networks</h2>{_host_cards(scan, groups, index)}</section>'
        + f'<section id="vms"><h2>Virtual machines ({len(views)})</h2>'
        '<p><input type="search" id="vm-filter" placeholder="Filter VMs by name" aria-label="Filter VMs"></p>'
        + _vm_cards(views, data["vms"], groups, targets) + "</section>"
        + '<section id="findings"><h2>All findings</h2>'
        '<div class="filters" role="search">'
        '<label>Severity <select id="f-severity"><option value="">all</option>'
        + "".join(f'<option value="{s.value}">{s.value}</option>' for s in SEVERITIES)
        + '</select></label><label>Status <select id="f-status"><option value="open">not PASS</option>'
        '<option value="">all</option>'
        + "".join(f'<option value="{s.value}">{s.value}</option>' for s in STATUSES)
        + '</select></label><label>Target <select id="f-target"><option value="">all</option></select>'
        '</label>'
        '<label class="grow">Text <input type="search" id="f-text" placeholder="id, title, subject, message">'
        '</label></div>'
        '<p id="shown" aria-live="polite"><b id="shown-count">0</b> of '
        f'<b id="total-count">{len(findings)}</b> findings match.</p>'
        '<noscript><p>The findings list needs JavaScript; the JSON and SARIF reports hold every finding.</p>'
        '</noscript><div id="list"></div><button id="more" type="button" hidden>Show more</button></section>'
        + _collection_errors(scan)
        + f'</main><footer>vmsec {e(__version__)} · report rendered from scan started '
        f'{e(scan.started_at.isoformat())}</footer>'
        f'<script type="application/json" id="vmsec-data">{embed_json(data)}</script>'
        f"<script>{SCRIPT}</script></body></html>\n")


def _top_vms(views: Iterable[VmExposure], limit: int = 10) -> str:
    rows: list[str] = []
    for v in views:
        if v.worst is None or len(rows) >= limit:
            break
        rows.append(f'<tr><td><span class="badge sev-{v.worst.value}">{v.worst.value}</span></td>'
                    f"<th>{e(v.domain)}</th><td>{e(v.headline(2))}</td></tr>")
    if not rows:
        return ""
    return ('<h3>Most exposed VMs</h3><div class="scroll"><table class="top"><thead><tr><th>worst</th>'
            f'<th>VM</th><th>why</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


CSS = """
:root{--fg:#1d2125;--muted:#5c6670;--bg:#f6f7f9;--card:#fff;--line:#dde1e6}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header,main,footer{max-width:1200px;margin:0 auto;padding:0 16px}
header{padding-top:16px}h1{margin:.2em 0;font-size:1.6em}
h2{margin-top:1.6em;border-bottom:2px solid var(--line)}
.scan span{margin-right:1em}.muted,footer{color:var(--muted)}footer{padding:24px 16px;font-size:.85em}
.stats{display:flex;flex-wrap:wrap;gap:8px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:96px}
.stat .n{display:block;font-size:1.6em}
.st-FAIL .n{color:#c92a2a}.st-ERROR .n{color:#862e9c}.st-UNKNOWN .n{color:#e67700}
.st-WAIVED .n{color:#1971c2}.st-PASS .n{color:#2b8a3e}
.charts{display:flex;flex-wrap:wrap;gap:16px;margin:12px 0}
.chart{flex:1 1 340px;background:var(--card);border:1px solid var(--line);border-radius:8px;margin:0;
padding:8px}
.chart svg{width:100%;height:auto;font-size:13px}.chart text{fill:var(--fg)}
figcaption{font-weight:600;margin-bottom:4px}
table{border-collapse:collapse;background:var(--card);width:100%;margin:8px 0}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
.kinds td{text-align:right}.scroll{overflow-x:auto;max-width:100%}.top th{overflow-wrap:anywhere}
.badge{display:inline-block;border-radius:10px;padding:0 8px;margin:1px 3px 1px 0;font-size:.82em;
color:#fff;background:#868e96;white-space:nowrap}
.badge.ok{background:#2b8a3e}
.sev-critical{background:#8b0000}.sev-high{background:#d9480f}.sev-medium{background:#e0a100;color:#222}
.sev-low{background:#1c7ed6}.sev-info{background:#868e96}
.badge.FAIL{background:#c92a2a}.badge.ERROR{background:#862e9c}.badge.UNKNOWN{background:#e67700}
.badge.WAIVED{background:#1971c2}.badge.PASS{background:#2b8a3e}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:8px 0;padding:8px 12px}
.card>summary{cursor:pointer;list-style-position:outside}
.card .kind{font-size:.8em;text-transform:uppercase;color:var(--muted);margin-right:4px}
.vm.worst-critical{border-left:6px solid #8b0000}.vm.worst-high{border-left:6px solid #d9480f}
.vm.worst-medium{border-left:6px solid #e0a100}.vm.worst-low{border-left:6px solid #1c7ed6}
.headline{color:var(--muted);font-size:.9em;margin:2px 0 0 0;overflow-wrap:anywhere}
.exposure li{margin:3px 0;overflow-wrap:anywhere}.src{font-size:.8em;color:var(--muted)}
.facts span{margin-right:1em}
.filters{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:end;background:var(--card);
border:1px solid var(--line);border-radius:8px;padding:8px 12px;position:sticky;top:0;z-index:2}
.filters label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}
.filters .grow{flex:1 1 200px}
select,input,button{font:inherit;padding:4px 6px;min-height:34px}
.finding{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 12px;margin:6px 0}
.finding .head{display:flex;flex-wrap:wrap;gap:4px;align-items:baseline}
.finding code{font-size:.85em}.finding .title{font-weight:600}
.finding .meta{color:var(--muted);font-size:.88em;overflow-wrap:anywhere}
.finding .msg{margin:4px 0;overflow-wrap:anywhere;white-space:pre-wrap}
.finding dl{margin:6px 0}.finding dt{font-weight:600;margin-top:6px}.finding dd{margin:2px 0 0 0;
overflow-wrap:anywhere;white-space:pre-wrap}
.finding pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--bg);padding:6px;font-size:.85em}
.ev{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em}
button.more{margin:6px 0}
@media (max-width:640px){
body{font-size:14px}h1{font-size:1.3em}.stat{min-width:0;flex:1 1 28%;padding:6px}
.top td:last-child{display:none}.kinds{font-size:.85em}
.filters{position:static}.filters label{flex:1 1 45%}th,td{padding:3px 4px}
}
@media print{.filters,#more,button{display:none}details{page-break-inside:avoid}}
"""

SCRIPT = r"""
(function(){
"use strict";
const D=JSON.parse(document.getElementById("vmsec-data").textContent);
const F=D.findings, C=D.checks, T=D.targets, SV=D.severities, ST=D.statuses, PAGE=100;
const byTarget=new Map();
F.forEach(function(f,i){let a=byTarget.get(f[3]);if(!a){a=[];byTarget.set(f[3],a);}a.push(i);});
let hay=null;
function el(tag,cls,text){const n=document.createElement(tag);if(cls)n.className=cls;
 if(text!==undefined&&text!==null)n.textContent=String(text);return n;}
function targetLabel(t){const x=T[t];return (D.kinds[x[0]]||x[0])+" "+x[1]+(x[2]?" @ "+x[2]:"");}
function card(i){
 const f=F[i],c=C[f[0]],st=ST[f[1]],sv=SV[f[2]];
 const d=el("div","finding");d.dataset.index=String(i);d.dataset.status=st;d.dataset.severity=sv;
 const h=el("div","head");h.append(el("span","badge "+st,st),el("span","badge sev-"+sv,sv),
  el("code",null,c[0]),el("span","title",c[1]));d.append(h);
 d.append(el("div","meta",targetLabel(f[3])+" · "+f[4]));
 d.append(el("div","msg",f[5]));
 const det=el("details");det.append(el("summary",null,"Evidence, remediation and why it matters"));
 const dl=el("dl");
 dl.append(el("dt",null,"Evidence"));
 if(f[6].length===0)dl.append(el("dd","muted","none recorded"));
 f[6].forEach(function(ev){
  dl.append(el("dd","ev",ev[0]+(ev[1]?" ["+ev[1]+"]":"")+(ev[2]!==null?" = "+ev[2]:"")));});
 dl.append(el("dt",null,"Remediation"),el("dd",null,f[7]!==null?f[7]:(c[3]||"none recorded")));
 if(c[2]){dl.append(el("dt",null,"Why this matters"),el("dd",null,c[2]));}
 if(c[4].length){dl.append(el("dt",null,"References"));c[4].forEach(function(r){const dd=el("dd");
  if(/^https:\/\//.test(r)){const a=el("a",null,r);a.href=r;a.rel="noopener noreferrer";dd.append(a);}
  else dd.textContent=r;dl.append(dd);});}
 det.append(dl);
 if(f[8]){det.append(el("pre",null,f[8]));}
 d.append(det);return d;}
function pager(container,indices){
 let shown=0;container.textContent="";
 const list=el("div","rows");container.append(list);
 const btn=el("button","more","Show more");btn.type="button";
 function more(){const end=Math.min(indices.length,shown+PAGE);const frag=document.createDocumentFragment();
  for(;shown<end;shown++)frag.append(card(indices[shown]));list.append(frag);
  btn.hidden=shown>=indices.length;btn.textContent="Show more ("+(indices.length-shown)+" left)";}
 btn.addEventListener("click",more);container.append(btn);
 if(indices.length===0)list.append(el("p","muted","No findings to show."));
 more();}
document.querySelectorAll(".drill").forEach(function(d){
 const det=d.closest("details");
 det.addEventListener("toggle",function(){if(!det.open||d.dataset.done)return;d.dataset.done="1";
  let idx=[];d.dataset.targets.split(",").filter(Boolean).forEach(function(t){
   (byTarget.get(Number(t))||[]).forEach(function(i){if(ST[F[i][1]]!=="PASS")idx.push(i);});});
  pager(d,idx);});});
const fs=document.getElementById("f-severity"),fst=document.getElementById("f-status"),
 ft=document.getElementById("f-target"),fx=document.getElementById("f-text"),
 list=document.getElementById("list"),moreBtn=document.getElementById("more"),
 count=document.getElementById("shown-count");
const opts=document.createDocumentFragment();
T.forEach(function(t,i){const o=el("option",null,targetLabel(i));o.value=String(i);opts.append(o);});
ft.append(opts);
let current=[],shown=0;
function apply(){
 const sv=fs.value?SV.indexOf(fs.value):-1,st=fst.value,stI=ST.indexOf(st),passI=ST.indexOf("PASS");
 const t=ft.value===""?-1:Number(ft.value),q=fx.value.trim().toLowerCase();
 if(q&&!hay){hay=F.map(function(f){const c=C[f[0]];
  return (c[0]+" "+c[1]+" "+T[f[3]][1]+" "+f[4]+" "+f[5]).toLowerCase();});}
 current=[];
 for(let i=0;i<F.length;i++){const f=F[i];
  if(sv>=0&&f[2]!==sv)continue;
  if(st==="open"){if(f[1]===passI)continue;}else if(st&&f[1]!==stI)continue;
  if(t>=0&&f[3]!==t)continue;
  if(q&&hay[i].indexOf(q)<0)continue;
  current.push(i);}
 count.textContent=String(current.length);list.textContent="";shown=0;more();}
function more(){const end=Math.min(current.length,shown+PAGE);const frag=document.createDocumentFragment();
 for(;shown<end;shown++)frag.append(card(current[shown]));list.append(frag);
 moreBtn.hidden=shown>=current.length;moreBtn.textContent="Show more ("+(current.length-shown)+" left)";}
moreBtn.addEventListener("click",more);
let timer=0;
[fs,fst,ft].forEach(function(s){s.addEventListener("change",apply);});
fx.addEventListener("input",function(){clearTimeout(timer);timer=setTimeout(apply,150);});
const vf=document.getElementById("vm-filter");
vf.addEventListener("input",function(){const q=vf.value.trim().toLowerCase();
 document.querySelectorAll("details.vm").forEach(function(d){
  d.hidden=q!==""&&d.querySelector(".name").textContent.toLowerCase().indexOf(q)<0;});});
document.querySelectorAll("#status-counts .stat").forEach(function(s){s.addEventListener("click",function(){
 fst.value=s.dataset.status;apply();document.getElementById("findings").scrollIntoView();});});
apply();
})();
"""


class HtmlReporter:
    """``--format html``."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
        render(scan, checks, out)
