"""The findings store: scans, targets, findings and collection records in SQLite or PostgreSQL.

``open_store(url)`` opens (and migrates) a store; ``Store.save``, ``scans``, ``load`` and ``diff``
keep, list, re-load and compare scans; :mod:`vmsec.store.writer` streams a scan in as it runs. See
docs/store.md. Names are imported on first use: the writer path must not pay for SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Diff": "vmsec.store.diff", "DiffEntry": "vmsec.store.diff", "TargetDiff": "vmsec.store.diff",
    "ENV_VAR": "vmsec.store.location", "default_store_url": "vmsec.store.location",
    "resolve_url": "vmsec.store.location",
    "ScanSummary": "vmsec.store.store", "Store": "vmsec.store.store", "UnknownScan": "vmsec.store.store",
    "StoreMissing": "vmsec.store.store",
    "open_store": "vmsec.store.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vmsec.store' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
