"""Issue 14's monitor figure: domain change → alert for 500 domains, p95 (goal ≤ 5 s).

Run: ``.venv/bin/python benchmarks/bench_monitor.py [--domains 500] [--rate 50]``

A private libvirtd (tests/libvirtd.py: the session daemon as an unprivileged user, its own
directories and socket) holds ``--domains`` domains in its test driver (``test+unix:///default``).
``vmsec monitor`` watches it as a user runs it (``--no-host --format json``). Once it has audited
everything, each domain gains a host PCI device (``defineXML``) — first at ``--rate`` changes per
second, then all at once (a burst). A change's latency runs from just before its ``defineXML`` call
to the moment its drift alert line is read from the monitor's standard output (so it includes the
event's trip through libvirtd, the re-audit of the whole connection and the alert's delivery).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))  # fleetdata, libvirtd: the in-repo data and the private daemon
from fleetdata import domain_templates, domain_xml  # noqa: E402
from libvirtd import PrivateLibvirtd  # noqa: E402

VMSEC = str(Path(sys.executable).with_name("vmsec"))
HOSTDEV = ("<hostdev mode='subsystem' type='pci' managed='yes'><source>"
           "<address domain='0x0000' bus='0x05' slot='0x00' function='0x0'/></source></hostdev>")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(domains: int, rate: float) -> None:
    import libvirt

    daemon = PrivateLibvirtd()
    daemon.start()
    monitor = None
    try:
        conn = libvirt.open(daemon.test_uri)
        templates = [t for t in domain_templates() if "<hostdev" not in t]
        for n in range(domains):
            conn.defineXML(domain_xml(templates[n % len(templates)], f"vm{n:04d}"))
        store = f"sqlite:///{daemon.base / 'monitor.sqlite'}"
        began = time.perf_counter()
        monitor = subprocess.Popen([VMSEC, "monitor", daemon.test_uri, "--no-host", "--format", "json",
                                    "--store", store], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        arrivals: dict[str, float] = {}
        ready = threading.Event()

        def read_out() -> None:
            assert monitor is not None and monitor.stdout is not None
            for line in monitor.stdout:
                alert = json.loads(line)
                if (alert["kind"], alert["check_id"], alert["change"]) == ("drift", "VMS-DOM-071", "new"):
                    arrivals.setdefault(alert["domain"], time.perf_counter())

        def read_err() -> None:
            assert monitor is not None and monitor.stderr is not None
            for line in monitor.stderr:
                if line.startswith("monitoring "):
                    ready.set()

        threading.Thread(target=read_out, daemon=True).start()
        threading.Thread(target=read_err, daemon=True).start()
        if not ready.wait(300):
            raise SystemExit("the monitor did not start")
        print(f"monitor ready (first audit of {domains + 1} domains) after "
              f"{time.perf_counter() - began:.1f} s")

        def change(names: list[str], pace: float | None) -> dict[str, float]:
            sent: dict[str, float] = {}
            for name in names:
                dom = conn.lookupByName(name)
                xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                xml = xml.replace("<devices>", "<devices>" + HOSTDEV, 1)
                sent[name] = time.perf_counter()
                conn.defineXML(xml)
                if pace:
                    time.sleep(pace)
            return sent

        def report(label: str, sent: dict[str, float]) -> None:
            deadline = time.perf_counter() + 120
            while len([n for n in sent if n in arrivals]) < len(sent) and time.perf_counter() < deadline:
                time.sleep(0.05)
            lags = [arrivals[n] - t for n, t in sent.items() if n in arrivals]
            missing = len(sent) - len(lags)
            print(f"{label}: {len(sent)} changes, {len(lags)} alerts ({missing} missing); latency "
                  f"p50 {statistics.median(lags):.2f} s, p95 {percentile(lags, 95):.2f} s, "
                  f"max {max(lags):.2f} s (goal p95 <= 5 s)")

        names = [f"vm{n:04d}" for n in range(domains)]
        half = len(names) // 2
        report(f"paced at {rate:g}/s", change(names[:half], 1 / rate))
        report("burst (all at once)", change(names[half:], None))
    finally:
        if monitor is not None:
            monitor.terminate()
            monitor.wait(30)
        daemon.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="changes per second in the paced half")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    run(args.domains, args.rate)


if __name__ == "__main__":
    main()
