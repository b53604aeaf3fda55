"""What VMS-GST-076's package filters cost: whole ``vmsec scan rootfs`` processes on its fixtures.

Run: ``.venv/bin/python benchmarks/bench_update_filters.py [--rounds N]``

CPU seconds (user + system, ``getrusage(RUSAGE_CHILDREN)``) of whole processes, the best of
``--rounds`` interleaved runs, bytecode cache warm. A Debian guest without package lists, with a
package on hold, and with a Package-Blacklist (its patterns run in a child interpreter:
parsers/system/unattended_filters.py); an AlmaLinux guest with dnf-automatic, with and without a
version lock. Also the in-process time of ``held_back`` for an 800-package guest.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench_pipeline import VMSEC, cpu_of
from vmsec.facts import InstalledPackage
from vmsec.parsers.system.unattended_filters import held_back

FIXTURES = Path(__file__).resolve().parents[1] / "tests/data/checks/VMS-GST-076"
CASES = {
    "Debian, unattended-upgrades": "unattended-upgrades.PASS",
    "… a kernel on hold": "kernel-on-hold.FAIL",
    "… a Package-Blacklist (child interpreter)": "kernel-blacklisted.FAIL",
    "AlmaLinux, dnf-automatic": "dnf-automatic-installs-updates.PASS",
    "… a version lock": "dnf-versionlock-holds-the-kernel.FAIL",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = {name: [str(VMSEC), "scan", "rootfs", str(FIXTURES / fixture), "--no-store", "--format",
                       "json", "-o", os.devnull, "-q"] for name, fixture in CASES.items()}
    for command in commands.values():  # warm the bytecode cache
        cpu_of(command, env)
    best = dict.fromkeys(commands, float("inf"))
    for _ in range(args.rounds):
        for name, command in commands.items():
            best[name] = min(best[name], cpu_of(command, env))
    print(f"whole process, CPU seconds, best of {args.rounds}")
    for name, seconds in best.items():
        print(f"  {name:45} {seconds * 1000:6.1f} ms")
    packages = (InstalledPackage(name="dpkg", version="1", arch="amd64"),
                *(InstalledPackage(name=f"pkg{i}-lib", version="1", arch="amd64") for i in range(800)))
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        held_back(["linux-", "libc6$", "vim.*"], [], False, packages)
        runs.append(time.perf_counter() - started)
    print(f"held_back, 800 packages, three patterns, in process: {min(runs) * 1000:.1f} ms wall (best of 5)")


if __name__ == "__main__":
    main()
