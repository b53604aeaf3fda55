"""Reporters: one module per format, one line each in ``FORMATS``.

A reporter is ``render(scan, catalog, out)``: it writes to a text stream and does nothing else, so
the CLI, files and (later) the web share it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TextIO, cast

from vmsec.checks.catalog import Catalog
from vmsec.engine import ScanResult

Renderer = Callable[[ScanResult, Catalog, TextIO], None]

FORMATS: Mapping[str, str] = {
    "terminal": "vmsec.report.terminal:render",
    "json": "vmsec.report.json_report:render",
    "sarif": "vmsec.report.sarif:render",
    "csv": "vmsec.report.csv_report:render",
    "junit": "vmsec.report.junit:render",
    "markdown": "vmsec.report.markdown:render",
    "html": "vmsec.report.html:render",
    "cyclonedx": "vmsec.report.cyclonedx:render",
}


def get_renderer(name: str) -> Renderer:
    module_name, _, attr = FORMATS[name].partition(":")
    return cast(Renderer, getattr(importlib.import_module(module_name), attr))
