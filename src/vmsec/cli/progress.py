"""Progress on standard error while a scan runs: targets done of expected, elapsed time, the current
stage (collect, match, check, store, render) and what is being read.

On a terminal one status line is repainted four times a second, so the display is never silent for
more than a second, even inside one long step (a disk image being read); it is erased before the
report is written. Elsewhere (CI logs, pipes) a plain line is written at most every
``PLAIN_EVERY`` seconds once the scan has run that long, so short scans stay silent. Names in it
come from scanned machines: shown through :func:`~vmsec.report.text.visible`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

from vmsec.report.text import visible

REPAINT_S = 0.25
PLAIN_EVERY = 2.0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class Progress:
    """A :class:`~vmsec.pipeline.FindingSink` (it counts targets) and the pipeline's ``progress`` and
    ``on_stage`` hooks. Use as a context manager; :meth:`stage` also marks the CLI's own stages."""

    def __init__(self, stream: TextIO, *, live: bool, width: int = 80,
                 clock: Any = time.monotonic) -> None:
        self.stream = stream
        self.live = live
        self.width = max(20, width)
        self.clock = clock
        self.started = clock()
        self.current_stage = "collect"
        self.what = ""
        self.done = 0
        self.expected = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_plain = self.started
        self._shown = False

    # --- hooks ----------------------------------------------------------------------------------

    def stage(self, stage: str, what: str = "") -> None:
        with self._lock:
            changed = stage != self.current_stage
            self.current_stage = stage
            if what:
                self.what = what
        if changed and not self.live:
            self._plain(force=False)

    def message(self, message: str) -> None:
        with self._lock:
            self.what = message
        if not self.live:
            self._plain(force=False)

    def begin(self, header: Any) -> None:
        with self._lock:
            self.expected = int(getattr(header, "targets_expected", 0) or 0)
            self.current_stage = "check"

    def add(self, batch: Any, details: Mapping[str, Any], os: Any) -> None:
        with self._lock:
            self.done += 1
            target = batch.target
            self.what = f"{target.kind} {target.name}"

    def end(self, result: Any) -> None:
        pass

    # --- drawing ----------------------------------------------------------------------------------

    def status(self) -> str:
        """The status line's text (no colour, no control characters)."""
        with self._lock:
            return self._status_unlocked()

    def _status_unlocked(self) -> str:
        elapsed = self.clock() - self.started
        count = f"{self.done:,}/{self.expected:,} targets · " if self.expected else ""
        return visible(f"vmsec: {_clock(elapsed)} · {count}{self.current_stage} · {self.what}")

    def _paint(self, text: str) -> None:
        if len(text) > self.width - 1:
            text = text[: self.width - 2] + "…"
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
        self._shown = True

    def _plain(self, *, force: bool) -> None:
        now = self.clock()
        if now - self.started < PLAIN_EVERY:
            return
        if not force and now - self._last_plain < PLAIN_EVERY:
            return
        self._last_plain = now
        self.stream.write(self.status() + "\n")
        self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(REPAINT_S):
            if self.live:
                text = self.status()
                with self._lock:
                    if not self._stop.is_set():
                        self._paint(text)
            else:
                self._plain(force=False)

    def __enter__(self) -> Progress:
        if self.live:
            with self._lock:
                self._paint(self._status_unlocked())  # at once: the scan has started
        self._thread = threading.Thread(target=self._run, name="vmsec-progress", daemon=True)
        self._thread.start()
        return self

    def clear(self) -> None:
        """Erase the status line (before the report or a message is written)."""
        if self.live and self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False

    def stop(self) -> None:
        """Stop repainting and erase the line (the report is about to be written)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        with self._lock:
            self.clear()

    def __exit__(self, *exc: object) -> None:
        self.stop()
