"""Issue 8's figures: the whole CLI as a user runs it, start to exit, on libvirt 9.0's domain corpus.

Run: ``.venv/bin/python benchmarks/bench_pipeline.py [--rounds N] [--corpus DIR]``

Every figure is CPU seconds (user + system) of a whole ``vmsec`` process, the best of ``--rounds``
runs (the rounds interleave the commands), measured with ``getrusage(RUSAGE_CHILDREN)``. Python
writes its bytecode cache as it would on a user's machine (``PYTHONDONTWRITEBYTECODE`` is removed
from the environment and one warm-up run fills the cache). Printed:

- start-up: ``vmsec --version``, ``vmsec checks list``, and a scan of a one-domain directory (every
  fixed cost of a scan: imports, the catalogue, the profile, writing an empty-ish report);
- the corpus as JSON without the store, as JSON with the default SQLite store, and as the terminal
  report — and domains per CPU-second excluding start-up: ``(N - 1) / (T(corpus) - T(one domain))``;
- the ratios the issue sets goals for: store on / off ≤ 1.5, terminal / JSON ≤ 1.5.

With ``--instructions`` each command runs once under valgrind's callgrind and the figures are
instructions executed instead of CPU seconds: deterministic, where CPU seconds on a shared VM vary by
a third between runs (a change of a few per cent shows only this way). Needs valgrind (apt); a process
runs about fifty times slower under it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # datapaths: the in-repo data
from datapaths import LIBVIRT_CORPUS

ROOT = Path(__file__).resolve().parents[1]
VMSEC = ROOT / ".venv" / "bin" / "vmsec"
DEFAULT_CORPUS = LIBVIRT_CORPUS / "qemuxml2argvdata"


def cpu_of(args: list[str], env: dict[str, str], stdout: int | None = subprocess.DEVNULL) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, env=env, stdout=stdout, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def instructions_of(args: list[str], env: dict[str, str]) -> float:
    """Instructions the whole process executed (callgrind's "Collected"), in billions."""
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    collected = [line for line in proc.stderr.splitlines() if "Collected :" in line]
    if not collected:
        raise SystemExit(f"valgrind did not report a count for {args}: {proc.stderr[-500:]}")
    return int(collected[-1].rsplit(":", 1)[1]) / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions under callgrind (one run each) instead of CPU seconds")
    args = parser.parse_args(argv)
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind: apt-get install valgrind")
    measure, unit = (instructions_of, "billion instructions") if args.instructions else (cpu_of, "s")
    rounds = 1 if args.instructions else args.rounds
    files = sorted(args.corpus.glob("*.xml"))
    n = len(files)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one"
        one.mkdir()
        shutil.copy(files[0], one / files[0].name)
        env["VMSEC_STORE"] = f"sqlite:///{tmp}/history.sqlite"
        out = f"{tmp}/out"
        scan = [str(VMSEC), "scan", "xml", "-q"]
        cpu_of([*scan, str(args.corpus), "--format", "json", "-o", out], env)  # warm the bytecode cache
        commands = {
            "vmsec --version": [str(VMSEC), "--version"],
            "vmsec checks list": [str(VMSEC), "checks", "list"],
            "one domain, JSON, --no-store": [*scan, str(one), "--format", "json", "--no-store", "-o", out],
            # The store exists (a user's history): its creation and migration are a one-off.
            "one domain, JSON, stored": [*scan, str(one), "--format", "json", "-o", out],
            "corpus, JSON, --no-store": [*scan, str(args.corpus), "--format", "json", "--no-store",
                                         "-o", out],
            "corpus, JSON, stored (SQLite)": [*scan, str(args.corpus), "--format", "json", "-o", out],
            "corpus, terminal, --no-store": [*scan, str(args.corpus), "--format", "terminal", "--no-store",
                                             "-o", out],
        }
        # Rounds go through every command in turn, so a slow spell of the machine (a VM's neighbours)
        # touches all figures alike instead of one figure's whole series: the ratios stay meaningful.
        figures = dict.fromkeys(commands, float("inf"))
        for _ in range(rounds):
            for name, command in commands.items():
                figures[name] = min(figures[name], measure(command, env))
    what = "instructions, one run each" if args.instructions else f"CPU seconds, best of {rounds}"
    print(f"corpus: {n} domain XML files ({args.corpus}); {what}")
    for name, value in figures.items():
        print(f"  {name:<36} {value:6.3f} {unit}")
    marginal = figures["corpus, JSON, --no-store"] - figures["one domain, JSON, --no-store"]
    marginal_stored = figures["corpus, JSON, stored (SQLite)"] - figures["one domain, JSON, stored"]
    if args.instructions:
        print(f"instructions per domain excluding start-up (JSON, no store): "
              f"{marginal / (n - 1) * 1e3:,.2f} M")
        print(f"instructions per domain excluding start-up (JSON, stored):   "
              f"{marginal_stored / (n - 1) * 1e3:,.2f} M")
    else:
        print(f"domains per CPU-second excluding start-up (JSON, no store): {(n - 1) / marginal:,.0f}"
              "   (goal ≥ 5,000)")
        print(f"domains per CPU-second excluding start-up (JSON, stored):   {(n - 1) / marginal_stored:,.0f}")
    stored, plain = figures["corpus, JSON, stored (SQLite)"], figures["corpus, JSON, --no-store"]
    print(f"store on / off (whole process): {stored / plain:.2f}   (goal ≤ 1.5)")
    terminal = figures["corpus, terminal, --no-store"]
    print(f"terminal / JSON (whole process): {terminal / plain:.2f}   (goal ≤ 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
