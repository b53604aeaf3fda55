"""Time of the polkit rules evaluator (vmsec, QuickJS) and of its oracle (real polkitd + pkcheck) over
every rules fixture of the tests — the inner figures behind tests/parsers/test_polkit_oracle.py.

Prints, per case, vmsec's evaluation time (wall and CPU), how many questions it asked, polkitd's
start-up time (it loads the rules before it takes its bus name) and the sum of the pkcheck answers;
then the totals. The oracle part needs root (private mount and PID namespaces) and polkitd, pkcheck,
dbus-daemon; without them only vmsec's figures are printed.

Run: .venv/bin/python benchmarks/bench_polkit_oracle.py [--no-oracle]
Whole process as the test command runs it:
     time .venv/bin/pytest -q -p no:cacheprovider tests/parsers/test_polkit_oracle.py
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests"),
                str(Path(__file__).resolve().parents[1] / "tests" / "parsers")]

import test_polkit_oracle as oracle_test  # noqa: E402

import polkit_oracle  # noqa: E402


def _cpu() -> float:
    """CPU seconds of this process and its reaped children: the rules run in a child process
    (parsers/polkit_sandbox.py)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-oracle", action="store_true", help="time vmsec's evaluator only")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    names = [oracle_test.NO_RULES, *oracle_test.ROOTS]
    quick: list[polkit_oracle.Case] = []
    slow: list[list[polkit_oracle.Case]] = []
    rows = {}
    started = time.perf_counter()
    for name in names:
        wall, cpu = time.perf_counter(), _cpu()
        ev = oracle_test.evaluation(name)
        rows[name] = [time.perf_counter() - wall, _cpu() - cpu, len(ev.answers)]
        questions = tuple(oracle_test.question(a) for a in oracle_test.asked(ev))
        timeout = oracle_test.WEDGED_TIMEOUT_S if any(oracle_test.wedges(a) for a in ev.answers) else 60.0
        case = polkit_oracle.Case(name, oracle_test.files_of(name), questions, timeout)
        (slow.append([case]) if ev.limited else quick.append(case))
    vmsec_total = time.perf_counter() - started
    outcomes = {}
    oracle_total = None
    why = polkit_oracle.available()
    if not args.no_oracle and why is None:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="vmsec-polkit-bench-") as work:
            for o in polkit_oracle.run([quick, *slow], oracle_test.ACTIONS, Path(work)):
                outcomes[o.name] = o
        oracle_total = time.perf_counter() - started
    print(f"{'case':50} {'vmsec wall':>10} {'cpu':>6} {'questions':>9} {'polkitd start':>13} "
          f"{'pkcheck sum':>11}")
    for name in names:
        wall, cpu, asked = rows[name]
        o = outcomes.get(name)
        start = f"{o.start_seconds:13.2f}" if o else f"{'-':>13}"
        answers = f"{sum(a.seconds for a in o.answers):11.2f}" if o else f"{'-':>11}"
        print(f"{name:50} {wall:10.2f} {cpu:6.2f} {asked:9d} {start} {answers}")
    print(f"vmsec: {len(names)} cases evaluated in {vmsec_total:.1f} s")
    if oracle_total is not None:
        count = sum(len(o.answers) for o in outcomes.values())
        print(f"oracle: {len(outcomes)} cases, {count} pkcheck questions, {1 + len(slow)} namespaces at "
              f"once, {oracle_total:.1f} s")
    elif not args.no_oracle:
        print(f"oracle not run: {why}")


if __name__ == "__main__":
    main()
