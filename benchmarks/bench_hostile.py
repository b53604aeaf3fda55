"""Hostile guests (issue 9): time and peak RSS of a whole ``vmsec scan`` process per case.

Goal for any guest of a few MB: ≤ 60 s and ≤ 1 GB RSS. Each case is built by tests/hostile_guests.py
(the same builders the tests use) in a temporary directory, then scanned by a fresh CLI process
(``vmsec scan rootfs ROOT`` or ``vmsec scan image IMAGE``, JSON to /dev/null, no store). The child
runs under a wall-clock timeout and an address-space cap, so a case that still explodes is reported
as such instead of taking the machine down. One warm-up scan of an empty root runs first (imports,
page cache); each case reports the fastest of ``--runs`` scans and the largest peak RSS.

Run: .venv/bin/python benchmarks/bench_hostile.py [--case NAME …] [--runs 3] [--timeout 600] [--mem-cap-gb 4]
     [--src DIR]   (another vmsec source tree, e.g. ``git archive main src | tar -x -C /tmp/base``,
                    to measure a baseline with the same environment)
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hostile_guests import CASES  # noqa: E402


def _run(argv: list[str], timeout: float, mem_cap: int, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, outcome) of one child process, from its own rusage."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem_cap, mem_cap))

    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit,
                                start_new_session=True, env=env)
        killed: list[bool] = []

        def kill() -> None:
            killed.append(True)
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        err.seek(0)
        stderr = err.read()
    rss = usage.ru_maxrss / 1024
    if killed:
        return wall, rss, f"killed after {timeout:.0f} s"
    tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
    outcome = f"exit {proc.returncode}" + (" (MemoryError)" if b"MemoryError" in stderr else "")
    if tail and proc.returncode not in (0, 1, 3):
        outcome += f": {tail[0][:100]}"
    return wall, rss, outcome


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--mem-cap-gb", type=float, default=4.0)
    parser.add_argument("--src", help="run vmsec from this source tree (its src/ directory)")
    parser.add_argument("--runs", type=int, default=3, help="scans per case (the fastest is shown)")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve() / "src")
    cases = args.case or list(CASES)
    print(f"# {platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
          f"vmsec from {args.src or ROOT}")
    print("| case | guest size on disk | wall time | peak RSS | outcome |")
    print("|---|---|---|---|---|")
    entry = [sys.executable, "-c", "from vmsec.cli.main import main; main()", "scan"]
    with tempfile.TemporaryDirectory(prefix="vmsec-warmup-") as tmp:
        (Path(tmp) / "etc").mkdir()
        (Path(tmp) / "etc/os-release").write_text("ID=debian\n")
        _run([*entry, "rootfs", tmp, "--format", "json", "-o", os.devnull, "--no-store", "--quiet"],
             args.timeout, int(args.mem_cap_gb * 1024 ** 3), env)
    for name in cases:
        with tempfile.TemporaryDirectory(prefix="vmsec-hostile-") as tmp:
            target = CASES[name](Path(tmp) / "guest")
            kind = "image" if target.is_file() else "rootfs"
            on_disk = subprocess.run(["du", "-sk", str(target)], capture_output=True, text=True,
                                     check=True).stdout.split()[0]
            argv = [*entry, kind, str(target), "--format", "json", "-o", os.devnull, "--no-store", "--quiet"]
            runs = [_run(argv, args.timeout, int(args.mem_cap_gb * 1024 ** 3), env) for _ in range(args.runs)]
            wall = min(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            outcome = runs[-1][2]
            print(f"| {name} | {int(on_disk) / 1024:.1f} MiB | {wall:.1f} s | {rss:.0f} MiB | {outcome} |",
                  flush=True)


if __name__ == "__main__":
    main()
