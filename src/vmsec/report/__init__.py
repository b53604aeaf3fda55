"""Reporters: one module per format, one line each in ``FORMATS``.

A reporter is built with its :class:`ReportOptions` and renders a finished
:class:`~vmsec.results.ScanResult` with the checks' metadata (:class:`~vmsec.checkinfo.CheckIndex`,
never the check functions) to a text stream — the CLI, files and the web share it. Reporters read
only what the store keeps (findings, targets with their details, OS inventories, records), so a scan
re-rendered from the store is the same report as the live one.

A reporter that can write while the scan runs also offers ``stream(header, out)``, returning a
:class:`~vmsec.pipeline.FindingSink` (JSON does: a scan of any size is written as it is produced).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol, TextIO, cast

if TYPE_CHECKING:
    from vmsec.checkinfo import CheckIndex
    from vmsec.pipeline import FindingSink, ScanHeader
    from vmsec.results import ScanResult

FORMATS: Mapping[str, str] = {
    "terminal": "vmsec.report.terminal:TerminalReporter",
    "json": "vmsec.report.json_report:JsonReporter",
    "sarif": "vmsec.report.sarif:SarifReporter",
    "csv": "vmsec.report.csv_report:CsvReporter",
    "junit": "vmsec.report.junit:JunitReporter",
    "markdown": "vmsec.report.markdown:MarkdownReporter",
    "html": "vmsec.report.html:HtmlReporter",
    "cyclonedx": "vmsec.report.cyclonedx:CycloneDxReporter",
}


class ReportOptions(NamedTuple):
    """Options every reporter accepts (each uses those that apply to its format); pass them by name.

    A NamedTuple, not a Struct: every ``vmsec`` process imports this package (its standard error goes
    through ``report.text``), and ``vmsec --version`` should not pay for importing msgspec."""

    show_pass: bool = False  # list PASS findings too (terminal)
    width: int | None = None  # columns (terminal); None: the terminal's, else $COLUMNS, else 80
    color: bool | None = None  # None: when writing to a terminal


class Reporter(Protocol):
    def render(self, scan: ScanResult, checks: CheckIndex, out: TextIO) -> None: ...


class StreamingReporter(Reporter, Protocol):
    def stream(self, header: ScanHeader, out: TextIO) -> FindingSink: ...


def make_reporter(fmt: str, options: ReportOptions | None = None) -> Reporter:
    """The reporter for ``fmt`` (a key of :data:`FORMATS`)."""
    module_name, _, attr = FORMATS[fmt].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    return cast(Reporter, cls(options or ReportOptions()))


def render(fmt: str, scan: ScanResult, out: TextIO, checks: CheckIndex | None = None,
           options: ReportOptions | None = None) -> None:
    """Render ``scan`` as ``fmt`` with the packaged check metadata (convenience for callers)."""
    from vmsec.checkinfo import packaged_index

    make_reporter(fmt, options).render(scan, checks if checks is not None else packaged_index(), out)


__all__ = ["FORMATS", "ReportOptions", "Reporter", "StreamingReporter", "make_reporter", "render"]
