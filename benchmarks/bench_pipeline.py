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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)
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
        for _ in range(args.rounds):
            for name, command in commands.items():
                figures[name] = min(figures[name], cpu_of(command, env))
    print(f"corpus: {n} domain XML files ({args.corpus}); CPU seconds, best of {args.rounds}")
    for name, seconds in figures.items():
        print(f"  {name:<36} {seconds:6.3f} s")
    marginal = figures["corpus, JSON, --no-store"] - figures["one domain, JSON, --no-store"]
    marginal_stored = figures["corpus, JSON, stored (SQLite)"] - figures["one domain, JSON, stored"]
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
