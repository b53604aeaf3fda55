"""The terminal report: grouped host → VMs → networks, failures first, counts by severity.

Written with rich to the given stream; colour only when that stream is a terminal.
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from vmsec.checkinfo import CheckIndex
from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.report import ReportOptions
from vmsec.report.exposure import by_domain, exposure
from vmsec.report.summary import failed_severity_counts, group_by_target, status_counts
from vmsec.results import ScanResult

SEVERITY_STYLE = {Severity.CRITICAL: "bold white on red", Severity.HIGH: "bold red",
                  Severity.MEDIUM: "yellow", Severity.LOW: "cyan", Severity.INFO: "dim"}
STATUS_STYLE = {Status.FAIL: "bold red", Status.ERROR: "bold magenta", Status.UNKNOWN: "yellow",
                Status.WAIVED: "blue", Status.PASS: "green"}
KIND_LABEL = {TargetKind.HOST: "Host", TargetKind.DOMAIN: "VM", TargetKind.NETWORK: "Network",
              TargetKind.GUEST: "Guest", TargetKind.ENDPOINT: "Endpoint"}
SHOWN = (Status.FAIL, Status.ERROR, Status.UNKNOWN, Status.WAIVED)


def plain(value: object) -> str:
    """Scanned machines control these strings: no control character (ESC, CSI, BEL …) reaches the
    terminal; each is shown as a visible ``\\xNN`` escape instead."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in text)


def severity_counts_text(findings: list[Finding]) -> Text:
    counts = failed_severity_counts(findings)
    text = Text()
    for sev in Severity:
        n = counts[sev.value]
        if n:
            if text:
                text.append("  ")
            text.append(f"{n} {sev.value}", style=SEVERITY_STYLE[sev])
    if not text:
        text.append("no failures", style="green")
    return text


def _target_heading(scan: ScanResult, target: Target) -> str:
    label = f"{KIND_LABEL.get(target.kind, target.kind)} {target.name}"
    d = scan.details.get(target)
    if not d:
        return plain(label)
    if target.kind is TargetKind.HOST and "root" in d:
        bits = [f"root {d['root']}"]
        if d.get("is_virtual"):
            bits.append(f"itself a VM ({d.get('hypervisor') or 'unknown hypervisor'})")
        if d.get("qemu_version"):
            bits.append(f"qemu {d['qemu_version']}")
        if d.get("libvirt_version"):
            bits.append(f"libvirt {d['libvirt_version']}")
        return plain(f"{label} [{', '.join(bits)}]")
    if target.kind is TargetKind.DOMAIN and d.get("state"):
        return plain(f"{label} [{d['state']}]")
    if target.kind is TargetKind.GUEST:
        bits = [d.get("os") or "OS unknown"]
        if d.get("disk_encryption"):
            bits.append(f"disk: {d['disk_encryption']}")
        if d.get("consistency_note"):
            bits.append(d["consistency_note"])
        return plain(f"{label} [{'; '.join(bits)}]")
    return plain(label)


def _vm_ordered(scan: ScanResult, groups: list[tuple[Target, list[Finding]]]
                ) -> list[tuple[Target, list[Finding]]]:
    """Host first, then each VM followed by its guest OS, then guests without a VM, then networks."""
    guest_of = {t.name: str(d["domain"]) for t, d in scan.details.items()
                if t.kind is TargetKind.GUEST and d.get("domain")}
    guests = {t.name: (t, f) for t, f in groups if t.kind is TargetKind.GUEST}
    ordered: list[tuple[Target, list[Finding]]] = []
    for target, findings in groups:
        if target.kind is TargetKind.GUEST:
            continue
        ordered.append((target, findings))
        if target.kind is TargetKind.DOMAIN:
            ordered.extend(guests.pop(name) for name, dom in list(guest_of.items())
                           if dom == target.name and name in guests)
    rest = [g for g in guests.values()]
    networks = [g for g in ordered if g[0].kind is TargetKind.NETWORK]
    return [g for g in ordered if g[0].kind is not TargetKind.NETWORK] + rest + networks


class TerminalReporter:
    """``--format terminal`` (the default)."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None:
        render(scan, out, show_pass=self.options.show_pass)


def render(scan: ScanResult, out: TextIO, *, show_pass: bool = False) -> None:
    console = Console(file=out, width=140 if not out.isatty() else None, highlight=False,
                      soft_wrap=False)
    console.print(Text(plain(f"vmsec scan: {scan.source}  (profile {scan.profile})"), style="bold"))
    views = by_domain(exposure(scan))
    nested = {t.name for t, d in scan.details.items() if t.kind is TargetKind.GUEST and d.get("domain")}
    for target, findings in _vm_ordered(scan, group_by_target(scan.findings, scan.targets)):
        indent = "" if target.kind is TargetKind.HOST else "  "
        if target.kind is TargetKind.GUEST and target.name in nested:
            indent = "    "  # the guest OS of the VM printed just above
        heading = Text(indent + "▸ " + _target_heading(scan, target) + "  ", style="bold")
        heading.append_text(severity_counts_text(findings))
        counts = status_counts(findings)
        heading.append(f"   ({counts['PASS']} passed, {counts['UNKNOWN']} unknown)", style="dim")
        console.print()
        console.print(heading)
        view = views.get(target.name) if target.kind is TargetKind.DOMAIN else None
        if view is not None and view.items:
            why = Text(indent + "  why exposed: ", style="bold")
            why.append(plain(view.headline(3)), style=SEVERITY_STYLE.get(view.items[0].severity, ""))
            console.print(why)
        shown = [f for f in findings if f.status in SHOWN or (show_pass and f.status is Status.PASS)]
        if not shown:
            continue
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1), expand=False)
        table.add_column(width=len(indent) + 1)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(ratio=1)
        for f in shown:
            table.add_row("", Text(f.status.value, style=STATUS_STYLE[f.status]),
                          Text(f.severity.value, style=SEVERITY_STYLE[f.severity]),
                          Text(plain(f.check_id), style="dim"),
                          Text.from_markup(f"[bold]{escape(plain(f.title))}[/] — {escape(plain(f.subject))}: "
                                           f"{escape(plain(f.message))}"))
        console.print(table)
    errors = scan.errors
    if errors:
        console.print()
        console.print(Text(f"Inputs that could not be read ({len(errors)}):", style="bold yellow"))
        for rec in errors[:50]:
            console.print(Text(plain(f"  {rec.source}: {rec.what}: {rec.reason}")))
        if len(errors) > 50:
            console.print(Text(f"  … and {len(errors) - 50} more (see --format json)"))
    console.print()
    total = Text("Total: ", style="bold")
    total.append_text(severity_counts_text(list(scan.findings)))
    counts = status_counts(scan.findings)
    total.append(f"   {counts['PASS']} passed, {counts['UNKNOWN']} unknown, {counts['ERROR']} errors",
                 style="dim")
    if not scan.complete:
        total.append("   (scan incomplete)", style="bold yellow")
    console.print(total)
