"""The findings store: scans, targets, findings and collection records in SQLite or PostgreSQL.

``open_store(url)`` opens (and migrates) a store; ``Store.save``, ``scans``, ``load`` and ``diff``
keep, list, re-load and compare scans. See docs/store.md.
"""

from __future__ import annotations

from vmsec.store.diff import Diff, DiffEntry, TargetDiff
from vmsec.store.store import (
           ENV_VAR,
           ScanSummary,
           Store,
           StoreMissing,
           UnknownScan,
           default_store_url,
           open_store,
           resolve_url,
)

__all__ = ["ENV_VAR", "Diff", "DiffEntry", "ScanSummary", "Store", "StoreMissing", "TargetDiff",
           "UnknownScan",
           "default_store_url",
           "open_store", "resolve_url"]
