"""Ctrl-C always ends a scan: a SIGINT that lands in a finaliser (where Python prints the
KeyboardInterrupt as "Exception ignored" and drops it) is raised again at the next target. Real
signals, sent to this process."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from vmsec.cli.interrupts import ScanInterrupts
from vmsec.findings import Target, TargetKind
from vmsec.results import TargetBatch

BATCH = TargetBatch(Target(TargetKind.DOMAIN, "web01", None), [])


def _busy() -> None:
    for _ in range(10_000):  # Python runs a signal's handler at a bytecode boundary: in here
        pass


class _SigintWhenCollected:
    """What the garbage collector runs at any allocation: here, a finaliser during which SIGINT arrives."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        _busy()


def test_an_interrupt_lost_in_a_finaliser_ends_the_scan_at_the_next_target(
        capfd: pytest.CaptureFixture[str]) -> None:
    hook = sys.unraisablehook
    with ScanInterrupts() as interrupts:
        interrupts.add(BATCH, {}, None)  # nothing pending: the scan goes on
        victim = _SigintWhenCollected()
        del victim  # the KeyboardInterrupt raised in __del__ cannot propagate
        assert interrupts.pending
        with pytest.raises(KeyboardInterrupt):
            interrupts.add(BATCH, {}, None)
        interrupts.add(BATCH, {}, None)  # raised once: the pipeline's own handling takes it from there
    assert "Exception ignored" not in capfd.readouterr().err  # the lost copy is not printed
    assert sys.unraisablehook is hook  # restored after the scan


def test_other_lost_exceptions_still_reach_the_previous_hook() -> None:
    class Broken:
        def __del__(self) -> None:
            raise ValueError("a finaliser's own bug")

    seen: list[BaseException | None] = []
    hook, sys.unraisablehook = sys.unraisablehook, lambda u: seen.append(u.exc_value)
    try:
        with ScanInterrupts() as interrupts:
            broken = Broken()
            del broken
            interrupts.add(BATCH, {}, None)  # not an interrupt: the scan goes on
    finally:
        sys.unraisablehook = hook
    assert [str(e) for e in seen] == ["a finaliser's own bug"]


def test_an_ordinary_ctrl_c_raises_where_it_lands_and_the_handler_is_untouched() -> None:
    handler = signal.getsignal(signal.SIGINT)
    with ScanInterrupts() as interrupts, pytest.raises(KeyboardInterrupt):
        assert signal.getsignal(signal.SIGINT) is handler  # asyncio still finds Python's default
        os.kill(os.getpid(), signal.SIGINT)
        _busy()
    assert not interrupts.pending
