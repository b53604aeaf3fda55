"""Ctrl-C that always ends a scan.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be — also inside a
finaliser or a weakref callback that the garbage collector runs at any allocation. There the
exception cannot propagate: Python hands it to ``sys.unraisablehook``, which prints "Exception
ignored in …", and the scan runs on to the end as if the user had not pressed Ctrl-C (seen in CI:
SQLAlchemy's event registry cleaning up after the store's migration). :class:`ScanInterrupts`
takes that hook while a scan runs: it remembers such an interrupt and, as a finding sink, raises it
again at the next target, so the pipeline reports a partial scan as for any other Ctrl-C.

The SIGINT handler itself is left as it is: asyncio (``scan ssh``, probes) installs its own
graceful one only where it finds Python's default.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmsec.pipeline import ScanHeader
    from vmsec.results import OsInventory, ScanResult, TargetBatch


class ScanInterrupts:
    """A context manager (the unraisable-exception hook while a scan runs) and a finding sink (where
    a swallowed interrupt is raised again)."""

    def __init__(self) -> None:
        self.pending = False
        self._previous_hook: Any = None

    def __enter__(self) -> ScanInterrupts:
        self._previous_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        sys.unraisablehook = self._previous_hook

    def _unraisable(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            self.pending = True  # raised again at the next target; not printed
            return
        self._previous_hook(unraisable)

    def _raise_pending(self) -> None:
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    # FindingSink: called between targets, where raising is safe.
    def begin(self, header: ScanHeader) -> None:
        self._raise_pending()

    def add(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None) -> None:
        self._raise_pending()

    def end(self, result: ScanResult) -> None:
        """Not raised here: every target is done and the store has already recorded the scan as
        complete — a complete scan is what the user gets."""
