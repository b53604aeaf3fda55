"""Ctrl-C always ends a scan: a SIGINT that lands in a finaliser (where Python prints the
KeyboardInterrupt as "Exception ignored" and drops it) is raised again at the next target. Real
signals, sent to this process."""

from __future__ import annotations

import os
import signal

import pytest

from vmsec.cli.interrupts import ScanInterrupts
from vmsec.findings import Target, TargetKind
from vmsec.results import TargetBatch

BATCH = TargetBatch(Target(TargetKind.DOMAIN, "web01", None), [])


class _SigintWhenCollected:
    """What the garbage collector runs at any allocation: here, a finaliser during which SIGINT arrives."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # Python runs the handler at a bytecode boundary: inside this finaliser
            pass


def test_an_interrupt_lost_in_a_finaliser_ends_the_scan_at_the_next_target(
        capfd: pytest.CaptureFixture[str]) -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with ScanInterrupts() as interrupts:
        interrupts.add(BATCH, {}, None)  # nothing pending: the scan goes on
        victim = _SigintWhenCollected()
        del victim  # the KeyboardInterrupt raised in __del__ cannot propagate
        assert interrupts.pending
        with pytest.raises(KeyboardInterrupt):
            interrupts.add(BATCH, {}, None)
    assert "Exception ignored" not in capfd.readouterr().err  # the lost copy is not printed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after the scan


def test_an_ordinary_ctrl_c_still_raises_where_it_lands() -> None:
    with ScanInterrupts() as interrupts, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):
            pass
    assert interrupts.pending


def test_someone_elses_handler_is_left_alone() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: seen.append(signum))
    try:
        with ScanInterrupts() as interrupts:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):
                pass
        assert seen == [signal.SIGINT] and not interrupts.pending
    finally:
        signal.signal(signal.SIGINT, previous)
