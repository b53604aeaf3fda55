"""The terminal report (``--format terminal``, the default): worst first, for people who act on it.

It leads with a summary (totals by status and failed severity), the most exposed hosts and VMs with
their hardening score, and what to fix first; then the failures by severity — per check with its
remediation once and each finding's evidence location, vulnerabilities grouped per package — then
what could not be decided, accepted risks and the inputs that could not be read.

* **Width**: ``ReportOptions.width``, else the terminal's or ``$COLUMNS``, else 80; lines are
  wrapped at word boundaries and never padded with spaces.
* **Colour** only when writing to a terminal (``--no-color``/``NO_COLOR`` turn it off).
* **Streaming**: :meth:`TerminalReporter.stream` is a sink that keeps counts and the non-PASS
  findings only, so a scan of any size needs no list of its passes; rendering a finished or stored
  scan replays it through the same sink (same bytes either way).
* Hostile strings: every scanned string goes through :func:`~vmsec.report.text.visible`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TextIO

from vmsec.findings import Finding, Severity, TargetKind
from vmsec.report import ReportOptions
from vmsec.report.digest import (
    KIND_PLURAL,
    KIND_SINGULAR,
    CheckGroup,
    Digest,
    DigestBuilder,
    VulnGroup,
    evidence_location,
    says,
    target_label,
)
from vmsec.report.text import visible
from vmsec.results import ScanResult

if TYPE_CHECKING:
    from vmsec.checkinfo import CheckIndex
    from vmsec.pipeline import ScanHeader

plain = visible  # the name other modules import

MIN_WIDTH = 40
MAX_UNITS = 10  # units listed under "most exposed" (the rest are summed up)
MAX_UNKNOWN_MESSAGES = 3  # distinct messages shown per undecided check
MAX_RECORDS = 50

_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35",
        "cyan": "36", "critical": "1;97;41", "high": "1;31", "medium": "33", "low": "36", "info": "2"}


def terminal_width(out: TextIO, requested: int | None = None) -> int:
    """Columns to fill: ``requested``; else the terminal's (``out`` or standard output) or
    ``$COLUMNS``; else 80."""
    if requested:
        return max(MIN_WIDTH, requested)
    try:
        if out.isatty():
            import os

            return max(MIN_WIDTH, os.get_terminal_size(out.fileno()).columns)
    except (OSError, ValueError, AttributeError):
        pass
    return max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, style: str, text: str) -> str:
        if not self.color or not text:
            return text
        return f"\x1b[{_SGR[style]}m{text}\x1b[0m"


def wrap(text: str, width: int, prefix: str = "", cont: str | None = None,
         prefix_len: int | None = None) -> list[str]:
    """``text`` in lines of at most ``width`` columns: the first after ``prefix`` (whose printed
    length is ``prefix_len`` when it holds colour codes), the rest after ``cont`` (spaces as long as
    the prefix by default). Breaks at spaces; a word longer than a line is cut."""
    first_len = len(prefix) if prefix_len is None else prefix_len
    if cont is None:
        cont = " " * first_len
    room = max(width - first_len, 20)
    if len(text) <= room:
        return [prefix + text]
    lines: list[str] = []
    lead = prefix
    while True:
        if len(text) <= room:
            lines.append(lead + text)
            return lines
        cut = text.rfind(" ", 0, room + 1)
        if cut <= 0:
            head, text = text[:room], text[room:]
        else:
            head, text = text[:cut], text[cut + 1:].lstrip(" ")
        lines.append(lead + head.rstrip(" "))
        if not text:
            return lines
        lead = cont
        room = max(width - len(cont), 20)


_SGR_RE = re.compile("\x1b\\[[0-9;]*m")


def _visible_len(text: str) -> int:
    return len(_SGR_RE.sub("", text)) if "\x1b" in text else len(text)


def _kinds(counts: Mapping[TargetKind, int]) -> str:
    """``1 host, 12 VMs`` in target-kind order."""
    order = list(TargetKind)
    return ", ".join(f"{_n(n)} {KIND_PLURAL[k] if n != 1 else KIND_SINGULAR[k]}"
                     for k, n in sorted(counts.items(), key=lambda kv: order.index(kv[0])))


def _n(value: int) -> str:
    return f"{value:,}"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{_n(n)} {one if n == 1 else (many or one + 's')}"


class _Writer:
    def __init__(self, out: TextIO, width: int, color: bool) -> None:
        self.out = out
        self.width = width
        self.s = _Style(color)
        self.lines: list[str] = []

    def line(self, text: str = "", cont: str = "  ") -> None:
        """One line as given — wrapped at spaces (colour codes not counted) if it is too wide."""
        if len(text) <= self.width or _visible_len(text) <= self.width:
            self.lines.append(text)
            return
        current, length = "", 0
        for word in text.split(" "):
            n = _visible_len(word)
            if current and length + 1 + n > self.width:
                self.lines.append(current)
                current, length = cont + word, len(cont) + n
            else:
                current, length = (current + " " + word, length + 1 + n) if current else (word, n)
        self.lines.append(current)

    def para(self, text: str, prefix: str = "", cont: str | None = None,
             prefix_len: int | None = None) -> None:
        self.lines.extend(wrap(text, self.width, prefix, cont, prefix_len))

    def flush(self) -> None:
        self.out.write("\n".join(self.lines))
        self.out.write("\n")
        self.lines = []


# --- the report ----------------------------------------------------------------------------------------


def render_digest(d: Digest, out: TextIO, *, width: int, color: bool) -> None:
    w = _Writer(out, width, color)
    _header(w, d)
    _summary(w, d)
    _units(w, d)
    _fix_first(w, d)
    _failures(w, d)
    _undecided(w, d)
    _waived(w, d)
    _passed(w, d)
    _records(w, d)
    _footer(w, d)
    w.flush()


def _header(w: _Writer, d: Digest) -> None:
    s = w.s
    w.para(visible(f"vmsec scan of {d.source}"), s("bold", ""), prefix_len=0)
    when = d.started_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    kinds = _kinds(d.targets_by_kind)
    bits = [f"profile {visible(d.profile)}", when, f"{d.duration_s:.1f} s", f"{_n(d.checks_run)} checks",
            kinds or "no targets"]
    if d.scan_id is not None:
        bits.insert(0, f"scan #{d.scan_id}")
    w.para(" · ".join(bits))


def _sev_counts(s: _Style, counts: Mapping[str, int], zero: bool = False) -> str:
    parts = [s(sev.value, f"{_n(counts.get(sev.value, 0))} {sev.value}") for sev in Severity
             if zero or counts.get(sev.value, 0)]
    return ", ".join(parts)


def _sev_counts_len(counts: Mapping[str, int], zero: bool = False) -> int:
    parts = [f"{_n(counts.get(sev.value, 0))} {sev.value}" for sev in Severity
             if zero or counts.get(sev.value, 0)]
    return len(", ".join(parts))


def _summary(w: _Writer, d: Digest) -> None:
    s = w.s
    w.line()
    w.line(s("bold", "Summary"))
    fails = d.by_status.get("FAIL", 0)
    if fails:
        text = f"  {s('red', 'FAIL')} {_n(fails)}: " + _sev_counts(s, d.failed)
        w.line(text)
    else:
        w.line(f"  {s('green', 'No failed check.')}")
    w.line("  " + " · ".join(f"{st} {_n(d.by_status.get(st, 0))}"
                             for st in ("UNKNOWN", "ERROR", "WAIVED", "PASS")))
    if d.complete:
        w.para("Complete: every input was read and every check ran.", "  ")
    else:
        n_rec, n_err = len(d.records), d.by_status.get("ERROR", 0)
        why = []
        if d.not_audited:
            why.append(f"{_plural(len(d.not_audited), 'target')} not audited")
        if n_rec:
            why.append(f"{_plural(n_rec, 'input')} could not be read")
        if n_err:
            why.append(f"{_plural(n_err, 'check')} crashed")
        w.para(f"INCOMPLETE: {', '.join(why) or 'the scan did not finish'} (details follow): "
               "what was not read is not a pass.", "  " + s("yellow", ""), "  ", prefix_len=2)
    for target, reason in d.not_audited.items():
        w.para(visible(f"NOT AUDITED: {target_label(target)}: {reason}"), "  ")


def _units(w: _Writer, d: Digest) -> None:
    units = [u for u in d.units if u.score.failed_checks or u.undecided or u.kind is not TargetKind.NETWORK]
    if not units:
        return
    s = w.s
    w.line()
    w.line(s("bold", "Most exposed") + " (hardening score 0-100, higher is better)")
    shown = units[:MAX_UNITS] if len(units) > MAX_UNITS + 2 else units
    for i, u in enumerate(shown, start=1):
        score = "n/a" if u.score.value is None else str(u.score.value)
        counts = _sev_counts(s, u.failed) or s("green", "no failed check")
        tail = f"  score {score}  "
        head = f"{i:>3}. "
        label = visible(u.label)
        plain_len = len(head) + len(label) + len(tail) + (_sev_counts_len(u.failed) or len("no failed check"))
        if plain_len <= w.width:
            w.line(head + s("bold", label) + tail + counts)
        else:
            w.para(label, head, "     ")
            w.line("     " + tail.strip() + "  " + counts)
        for sentence in u.why:
            w.para(visible(sentence), "     - ")
        extra = []
        if u.more:
            extra.append(f"and {_plural(u.more, 'more failure')}")
        if u.undecided:
            extra.append(f"{_n(u.undecided)} undecided")
        if extra:
            w.line("       " + s("dim", "; ".join(extra)))
    rest = units[len(shown):]
    if rest:
        scores = [u.score.value for u in rest if u.score.value is not None]
        span = f" (scores {min(scores)}-{max(scores)})" if scores else ""
        w.line(f"     … and {_n(len(rest))} more{span}")


def _fix_first(w: _Writer, d: Digest) -> None:
    if not d.fix_first:
        return
    s = w.s
    w.line()
    w.line(s("bold", "Fix first"))
    for i, fx in enumerate(d.fix_first, start=1):
        where = _kinds(fx.kinds)
        kev = f", {fx.kev} KEV" if fx.kev else ""
        head = f"{i:>3}. "
        sev = fx.severity.value
        title = visible(f"{fx.check_id} {fx.title} ({where}{kev})")
        pad = " " * (8 - len(sev))
        w.para(title, head + s(sev, sev) + pad + " ", " " * (len(head) + 9), prefix_len=len(head) + 9)
        w.para(visible(fx.action), " " * (len(head) + 9) + "fix: ")


def _failures(w: _Writer, d: Digest) -> None:
    s = w.s
    for sev, groups in d.sections:
        n = d.failed.get(sev.value, 0)
        w.line()
        w.line(s(sev.value, f"{sev.value.upper()}") + s("bold", f" - {_n(n)} failed"))
        for g in groups:
            if isinstance(g, VulnGroup):
                _vuln_group(w, g)
            else:
                _check_group(w, g)


def _check_group(w: _Writer, g: CheckGroup) -> None:
    s = w.s
    w.line()
    count = f" ({_plural(len(g.findings), 'finding')}" + (
        f" on {_plural(g.targets, 'target')})" if g.targets > 1 else ")")
    w.para(visible(g.title) + count, s("bold", g.check_id) + "  ", "  ", prefix_len=len(g.check_id) + 2)
    if g.remediation:
        w.para(visible(" ".join(g.remediation.split())), "  fix: ", "       ")
    for f in g.findings:
        _finding(w, f)


def _finding(w: _Writer, f: Finding) -> None:
    w.para(visible(f"{target_label(f.target)} · {says(f.subject, f.message)}"), "  - ", "    ")
    where = evidence_location(f)
    if where:
        source = f.evidence[0].source
        if source and f.target.name.endswith(f"({source})"):
            where = where[len(source):].lstrip() or where  # the file is in the target's name already
        w.para(visible(where), "    at ", "       ")


def _vuln_group(w: _Writer, g: VulnGroup) -> None:
    s = w.s
    w.line()
    counts = ", ".join(f"{g.counts[sev.value]} {sev.value}" for sev in Severity if g.counts.get(sev.value))
    title = (f"{g.package} {g.installed} on {target_label(g.target)}: "
             f"{_plural(g.total, 'vulnerability', 'vulnerabilities')} ({counts})")
    w.para(visible(title), s("bold", g.findings[0].check_id) + "  ", "  ",
           prefix_len=len(g.findings[0].check_id) + 2)
    if g.binaries and g.binaries != g.package:
        w.para(visible(f"binary packages: {g.binaries}"), "  ")
    if g.fixed_version:
        fix = f"upgrade {g.package} to {g.fixed_version} or later"
        if g.unfixed:
            fix += f"; {_n(g.unfixed)} without a fix yet"
    else:
        fix = "no fixed version released yet"
    w.para(visible(fix), "  fix: ", "       ")
    if g.kev:
        w.para(visible(", ".join(g.kev)), "  " + s("critical", "KEV") + " (exploited in the wild): ",
               "       ", prefix_len=len("  KEV (exploited in the wild): "))
    if g.epss:
        w.para(", ".join(f"{visible(vid)} {score:.2f}" for vid, score in g.epss), "  highest EPSS: ",
               "       ")
    worst = [f for f in g.findings if f.severity is g.severity][:3]
    ids = ", ".join(visible(str((f.vulnerability or {}).get("id") or f.subject)) for f in worst)
    if ids:
        w.para(ids + (" …" if g.total > len(worst) else ""), f"  {g.severity.value}: ", "       ")


def _undecided(w: _Writer, d: Digest) -> None:
    s = w.s
    n_unknown = d.by_status.get("UNKNOWN", 0)
    n_error = d.by_status.get("ERROR", 0)
    if d.errors:
        w.line()
        w.line(s("magenta", "ERROR") + s("bold", f" - {_plural(n_error, 'check')} crashed (result unknown)"))
        for g in d.errors:
            w.line()
            w.para(visible(g.title), s("bold", g.check_id) + "  ", "  ", prefix_len=len(g.check_id) + 2)
            for f in g.findings:
                w.para(visible(f"{target_label(f.target)} · {says(f.subject, f.message)}"), "  - ", "    ")
    if not n_unknown:
        return
    w.line()
    w.line(s("yellow", "UNKNOWN") + s("bold", f" - {_n(n_unknown)} results undecided (not passes)"))
    hidden = sum(ts.by_status.get("UNKNOWN", 0) for ts in d.targets if ts.target in d.not_audited)
    if hidden:
        w.para(f"{_n(hidden)} of them on targets whose contents were not audited (see the summary "
               "above).", "  ")
    for g in d.unknown:
        messages: dict[str, int] = {}
        single = g.targets == 1
        for f in g.findings:
            text = says(f.subject, f.message)
            if single:
                text = f"{target_label(f.target)} · {text}"
            messages[text] = messages.get(text, 0) + 1
        w.para(visible(f"{g.title} ({_plural(g.targets, 'target')})"), s("bold", g.check_id) + "  ", "  ",
               prefix_len=len(g.check_id) + 2)
        top = sorted(messages.items(), key=lambda kv: (-kv[1], kv[0]))
        for text, n in top[:MAX_UNKNOWN_MESSAGES]:
            w.para(visible(text), f"  - {n}x " if n > 1 else "  - ", "    ")
        if len(top) > MAX_UNKNOWN_MESSAGES:
            w.line(f"    … and {_plural(len(top) - MAX_UNKNOWN_MESSAGES, 'other reason')}")


def _waived(w: _Writer, d: Digest) -> None:
    if not d.waived:
        return
    s = w.s
    w.line()
    w.line(s("blue", "WAIVED") + s("bold", f" - {_plural(d.by_status.get('WAIVED', 0), 'accepted risk')}"))
    for g in d.waived:
        for f in g.findings:
            text = f"{g.check_id} {target_label(f.target)} · {says(f.subject, f.message)}"
            w.para(visible(text), "  - ", "    ")


def _passed(w: _Writer, d: Digest) -> None:
    if not d.passed:
        return
    s = w.s
    w.line()
    w.line(s("green", "PASS") + s("bold", f" - {_n(d.by_status.get('PASS', 0))} passed"))
    for check_id, title, n in d.passed:
        w.para(visible(f"{title} ({_plural(n, 'target')})"), f"  {check_id}  ", "    ")


def _records(w: _Writer, d: Digest) -> None:
    if not d.records:
        return
    s = w.s
    w.line()
    w.line(s("yellow", "Inputs that could not be read") + f" ({_n(len(d.records))})")
    for rec in d.records[:MAX_RECORDS]:
        w.para(visible(f"{rec.source}: {rec.what}: {rec.reason or 'unknown reason'}"), "  - ", "    ")
    if len(d.records) > MAX_RECORDS:
        w.line(f"  … and {_n(len(d.records) - MAX_RECORDS)} more (see --format json)")


def _footer(w: _Writer, d: Digest) -> None:
    s = w.s
    w.line()
    fails = d.by_status.get("FAIL", 0)
    state = "complete" if d.complete else s("yellow", "incomplete")
    counts = _sev_counts(s, d.failed)
    unknown, passed = _n(d.by_status.get("UNKNOWN", 0)), _n(d.by_status.get("PASS", 0))
    w.line(f"{_n(fails)} failed" + (f" ({counts})" if counts else "")
           + f", {unknown} unknown, {passed} passed; scan {state}.")


# --- the reporter --------------------------------------------------------------------------------------


class _TerminalStream(DigestBuilder):
    """The streaming sink: collects, then renders at the end of the scan."""

    def __init__(self, out: TextIO, options: ReportOptions, select: Callable[[Finding], bool] | None) -> None:
        super().__init__(show_pass=options.show_pass, select=select)
        self.out = out
        self.options = options

    def end(self, result: ScanResult) -> None:
        super().end(result)
        color = self.options.color if self.options.color is not None else _isatty(self.out)
        width = terminal_width(self.out, self.options.width)
        render_digest(self.digest(), self.out, width=width, color=color)


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


class TerminalReporter:
    """``--format terminal`` (the default)."""

    def __init__(self, options: ReportOptions | None = None) -> None:
        self.options = options or ReportOptions()

    def stream(self, header: ScanHeader, out: TextIO, select: Callable[[Finding], bool] | None = None
               ) -> _TerminalStream:
        return _TerminalStream(out, self.options, select)

    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO,
               select: Callable[[Finding], bool] | None = None) -> None:
        sink = _TerminalStream(out, self.options, select)
        for batch in scan.batches():
            sink.add(batch, scan.details.get(batch.target, {}), scan.os_inventories.get(batch.target))
        sink.end(scan)


def render(scan: ScanResult, out: TextIO, *, show_pass: bool = False, width: int | None = None,
           color: bool | None = None) -> None:
    """Render a finished scan (convenience for callers and tests)."""
    from vmsec.checkinfo import CheckIndex

    TerminalReporter(ReportOptions(show_pass=show_pass, width=width, color=color)).render(
        scan, CheckIndex(()), out)


__all__ = ["TerminalReporter", "plain", "render", "render_digest", "terminal_width", "wrap"]
