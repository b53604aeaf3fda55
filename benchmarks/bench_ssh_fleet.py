"""P4: `vmsec scan ssh` over a fleet of simulated guests, as a user runs it (one whole process).

Each guest is a real OpenSSH server on loopback whose sessions are chrooted into a real Debian 12 root
(the cached debootstrap of tests/images, extracted once), so every guest is a real root filesystem read
over a real SSH connection with host-key verification and key authentication. One sshd listens on up to
16 ports (OpenSSH's limit); each sshd stands for one hypervisor (``vmsec_hypervisor`` in the Ansible
inventory), so ``--per-hypervisor`` applies. The scan runs with the CLI defaults (--concurrency 64,
--per-hypervisor 4) and writes a JSON report.

Figures: wall time, CPU seconds and peak RSS of the vmsec process, targets scanned, targets failed.

    .venv/bin/python benchmarks/bench_ssh_fleet.py --guests 1000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # sshd.py: private OpenSSH servers

import sshd

ROOT = Path(__file__).resolve().parents[1]


def debian_root(work: Path) -> Path:
    done = subprocess.run(["sh", str(ROOT / "tests" / "images" / "build_images.sh"), "--rootfs"],
                          capture_output=True, text=True, check=True)
    root = work / "debian12"
    root.mkdir()
    subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-xpf", done.stdout.strip().splitlines()[-1]],
                   check=True)
    root.chmod(0o755)
    return root


def sshd_cpu(servers: list[sshd.SshServer]) -> float:
    """CPU seconds of the sshd daemons and of their finished sessions (utime, stime, cutime, cstime)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for server in servers:
        try:
            pid = (server.work / "sshd.pid").read_text().split()[0]
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(v) for v in fields[11:15])
    return total / tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guests", type=int, default=1000)
    parser.add_argument("--ports-per-sshd", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--per-hypervisor", type=int, default=4)
    args = parser.parse_args()
    why = sshd.available()
    if why:
        sys.exit(f"cannot run: {why}")
    work = Path(tempfile.mkdtemp(prefix="vmsec-fleet-"))
    servers: list[sshd.SshServer] = []
    try:
        root = debian_root(work)
        client = work / "client_ed25519"
        sshd.keygen(client)
        started = time.monotonic()
        remaining = args.guests
        while remaining > 0:
            ports = min(args.ports_per_sshd, remaining)
            servers.append(sshd.start_sshd(work / f"sshd{len(servers):03d}", root=root, ports=ports,
                                           client_key=client))
            remaining -= ports
        known = work / "known_hosts"
        known.write_text("".join(s.known_hosts.read_text() for s in servers))
        inventory = work / "fleet.ini"
        lines = []
        for n, server in enumerate(servers):
            lines.append(f"[hv{n:03d}]")
            lines += [f"guest-{n:03d}-{i:02d} ansible_host=127.0.0.1 ansible_port={port}"
                      for i, port in enumerate(server.ports)]
            lines += [f"[hv{n:03d}:vars]", "ansible_user=root", f"vmsec_hypervisor=hv{n:03d}"]
        inventory.write_text("\n".join(lines) + "\n")
        print(f"{args.guests} guests behind {len(servers)} sshd servers, up in "
              f"{time.monotonic() - started:.1f} s", flush=True)

        report = work / "report.json"
        server_before = sshd_cpu(servers)
        began = time.monotonic()
        errors = work / "stderr.txt"
        with errors.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "vmsec.cli.main", "scan", "ssh", "--inventory", str(inventory),
                 "--identity", str(client), "--known-hosts", str(known),
                 "--concurrency", str(args.concurrency),
                 "--per-hypervisor", str(args.per_hypervisor), "--format", "json", "-o", str(report),
                 "--no-store", "--quiet"], stdout=subprocess.DEVNULL, stderr=err)
            _pid, status, usage = os.wait4(process.pid, 0)  # this process's own CPU and peak RSS
        wall = time.monotonic() - began
        returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        server_cpu = sshd_cpu(servers) - server_before
        data = json.loads(report.read_text()) if report.exists() else {}
        guests = [t for t in data.get("targets", []) if t.get("kind") == "guest"]
        failed = [e for e in data.get("collection_errors", []) if e.get("what") == "ssh target"]
        result = {"guests": args.guests, "sshd_servers": len(servers), "scanned": len(guests),
                  "failed_targets": len(failed), "findings": data.get("summary", {}).get("findings"),
                  "wall_s": round(wall, 1), "vmsec_cpu_s": round(cpu, 1), "sshd_cpu_s": round(server_cpu, 1),
                  "vmsec_peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit_code": returncode,
                  "cores": os.cpu_count(), "load_average_before": os.getloadavg()}
        print(json.dumps(result, indent=2))
        if returncode not in (0, 1) and not guests:
            print(errors.read_text()[-3000:], file=sys.stderr)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
