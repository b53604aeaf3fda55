"""Ctrl-C that always ends a scan.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be — also inside a
finaliser or a weakref callback that the garbage collector runs at any allocation. There the
exception cannot propagate: Python prints it as "Exception ignored in …" and the scan runs on to the
end as if the user had not pressed Ctrl-C (seen in CI: SQLAlchemy's event registry cleaning up
after the store's migration). :class:`ScanInterrupts` remembers the signal and, as a finding sink,
raises the interrupt again at the next target, so the pipeline reports a partial scan as for any
other Ctrl-C; the lost copy is not printed.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmsec.pipeline import ScanHeader
    from vmsec.results import OsInventory, ScanResult, TargetBatch


class ScanInterrupts:
    """A context manager (the SIGINT handler while a scan runs) and a finding sink (where a lost
    interrupt is raised again). Outside the main thread, or when someone else handles SIGINT
    already, it changes nothing."""

    def __init__(self) -> None:
        self.pending = False
        self._installed = False
        self._previous: Any = None
        self._previous_hook: Any = None

    def __enter__(self) -> ScanInterrupts:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            try:
                self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            except ValueError:  # not the main thread: signals are not ours to handle
                return self
            self._installed = True
            self._previous_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            sys.unraisablehook = self._previous_hook
            self._installed = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.pending = True
        raise KeyboardInterrupt

    def _unraisable(self, unraisable: Any) -> None:
        if self.pending and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # remembered: raised again at the next target
        self._previous_hook(unraisable)

    def _raise_pending(self) -> None:
        if self.pending:
            raise KeyboardInterrupt

    # FindingSink: called between targets, where raising is safe.
    def begin(self, header: ScanHeader) -> None:
        self._raise_pending()

    def add(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None) -> None:
        self._raise_pending()

    def end(self, result: ScanResult) -> None:
        """Not raised here: every target is done and the store has already recorded the scan as
        complete — a complete scan is what the user gets."""
