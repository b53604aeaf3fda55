"""What VMS-GST-076's package filters cost: whole ``vmsec scan rootfs`` processes on its fixtures.

Run: ``.venv/bin/python benchmarks/bench_update_filters.py [--rounds N]``

CPU seconds (user + system, ``getrusage(RUSAGE_CHILDREN)``) of whole processes, the best of
``--rounds`` interleaved runs, bytecode cache warm. A Debian guest without package lists, with a
package on hold, and with a Package-Blacklist (its patterns run in a child interpreter:
parsers/system/unattended_filters.py); an AlmaLinux guest with dnf-automatic, with and without a
version lock; a Debian guest with APT pins (parsers/system/aptprefs.py), and one whose
APT::Default-Release makes vmsec read a package list. Also the in-process time of ``held_back`` for an
800-package guest, and of judging APT::Default-Release against this machine's own dpkg status and
apt lists (CPU and peak memory: on a Debian host the main archive's list is ≈ 90 MB decompressed).
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
    "Debian, the security archive pinned to never": "security-archive-pinned-never.FAIL",
    "… APT::Default-Release (a package list read)": "default-release-outranks-security.FAIL",
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
    _this_machine()


def _this_machine() -> None:
    """APT::Default-Release "<this machine's codename>" judged on its own status file and lists."""
    import resource

    from vmsec.collectors.reader import RootReader
    from vmsec.parsers.dpkg_status import parse_dpkg_status
    from vmsec.parsers.os_release import parse_os_release
    from vmsec.parsers.system.aptconf import AptConfig
    from vmsec.parsers.system.aptprefs import Preferences, read_carried, read_releases, security_pin_holds

    status = Path("/var/lib/dpkg/status")
    if not status.exists() or not Path("/var/lib/apt/lists").is_dir():
        print("this machine: no dpkg status or apt lists")
        return
    codename = parse_os_release(Path("/etc/os-release").read_text(), "/etc/os-release").version_codename or ""
    reader = RootReader("/")
    packages = tuple(parse_dpkg_status(status.read_text(), str(status)))
    started = time.process_time()
    releases, _unread = read_releases(reader, AptConfig(), [])
    hold = security_pin_holds(Preferences(), releases, packages, codename,
                              lambda others: read_carried(reader, others, packages, []))
    cpu = time.process_time() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this machine, APT::Default-Release {codename!r}, {len(packages)} packages, "
          f"{sum(len(r.package_lists) for r in releases)} lists: {cpu * 1000:.0f} ms CPU, "
          f"{len(hold.held)} held back, {len(hold.undecided)} unknown; peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
