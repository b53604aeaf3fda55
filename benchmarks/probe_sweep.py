"""Probe figures (issue 12).

1. 10,000 host:port probes, mostly closed, as a user runs them: ``vmsec probe 127.0.0.0/26 --ports …``
   in a separate process (wall time and peak RSS), plus a few real listeners among them.
2. The VNC matrix: QEMU displays with none / password / x509 / x509+password / anonymous TLS / SASL,
   repeated; counts wrong "None auth" verdicts (VMS-PRB-001 FAIL exactly when None is offered).
3. Attribution: QEMU displays configured by domain XML in a host root, scanned into a store, probed
   with --from-scan; the share of endpoint findings that name their domain and XML element.

Usage: .venv/bin/python benchmarks/probe_sweep.py [--probes 10000] [--matrix-rounds 3]
Only loopback addresses are contacted (127.0.0.0/8), so nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VMSEC = str(Path(sys.executable).parent / "vmsec")
QEMU = ["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none", "-S"]


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port > 6000:
            return port


def wait(port: int) -> None:
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing on {port}")


def start(args: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*QEMU, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    wait(port)
    return proc


def sweep(probes: int) -> dict[str, object]:
    addresses = 64  # 127.0.0.0/26 → 62 hosts
    per = -(-probes // 62)
    ports = [free_port() for _ in range(3)]
    procs = [start(["-vnc", f"127.0.0.1:{p - 5900}"], p) for p in ports]
    base = 40000
    listed = ",".join([f"{base}-{base + per - len(ports) - 1}", *map(str, ports)])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        log = Path(tmp) / "contacts.log"
        began = time.perf_counter()
        done = subprocess.run([VMSEC, "probe", f"127.0.0.0/{32 - (addresses.bit_length() - 1)}", "--ports",
                               listed, "--no-store", "--format", "json", "-o", str(out), "--contact-log",
                               str(log), "-q", "--timeout", "3", "--rate", "0"],
                              capture_output=True, text=True)
        wall = time.perf_counter() - began
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        for p in procs:
            p.terminate()
        doc = json.loads(out.read_text())
        contacted = sum(1 for _ in log.open())
    return {"probes": contacted, "wall_s": round(wall, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "open_endpoints": len(doc["targets"]), "exit": done.returncode}


MATRIX = {
    "none": (["-vnc", "127.0.0.1:{d}"], True),
    "password": (["-object", "secret,id=s0,data=pw", "-vnc", "127.0.0.1:{d},password-secret=s0"], False),
    "x509": (["-object", "tls-creds-x509,id=t0,dir={certs},endpoint=server,verify-peer=off",
              "-vnc", "127.0.0.1:{d},tls-creds=t0"], False),
    "x509-password": (["-object", "secret,id=s0,data=pw", "-object",
                       "tls-creds-x509,id=t0,dir={certs},endpoint=server,verify-peer=on",
                       "-vnc", "127.0.0.1:{d},tls-creds=t0,password-secret=s0"], False),
    "anon-tls": (["-object", "tls-creds-anon,id=t0,endpoint=server",
                  "-vnc", "127.0.0.1:{d},tls-creds=t0"], False),
    "sasl": (["-vnc", "127.0.0.1:{d},sasl=on"], False),
}


def certs(folder: Path) -> Path:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca-cert.pem",
        "-days", "30", "-subj", "/CN=bench CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "s.csr", "-subj",
        "/CN=127.0.0.1")
    run("x509", "-req", "-in", "s.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
        "-out", "server-cert.pem", "-days", "30")
    return folder


def matrix(rounds: int) -> dict[str, object]:
    from vmsec.pipeline import ScanOptions, scan
    from vmsec.specs import ProbeSpec

    wrong = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        pki = certs(Path(tmp))
        sasl = Path(tmp) / "sasl2"
        sasl.mkdir()
        (sasl / "qemu.conf").write_text("mech_list: scram-sha-256\n")
        for _ in range(rounds):
            procs, ports, truth = [], [], {}
            for args, offers_none in MATRIX.values():
                port = free_port()
                procs.append(start([a.format(d=port - 5900, certs=pki) for a in args], port,
                                   {"SASL_CONF_PATH": str(sasl)}))
                ports.append(port)
                truth[f"127.0.0.1:{port}"] = offers_none
            result = scan([ProbeSpec(targets=("127.0.0.1",), ports=tuple(ports), tls_scan=False)],
                          ScanOptions(checks=("VMS-PRB-001",)))
            for p in procs:
                p.terminate()
            verdicts = {f.target.name: f.status.value for f in result.findings}
            for name, offers_none in truth.items():
                total += 1
                if (verdicts.get(name) == "FAIL") is not offers_none:
                    wrong += 1
    return {"vnc_servers_probed": total, "wrong_none_verdicts": wrong}


DOMAIN = """<domain type='kvm'><name>{name}</name><uuid>{uuid}</uuid><memory>65536</memory>
<os><type arch='x86_64'>hvm</type></os><devices>
<graphics type='vnc' port='{port}' autoport='no' listen='127.0.0.1'{passwd}/></devices></domain>"""


def attribution(domains: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        (root / "etc/libvirt/qemu").mkdir(parents=True)
        (root / "etc/libvirt/qemu.conf").write_text('vnc_listen = "127.0.0.1"\n')
        procs = []
        for i in range(domains):
            port = free_port()
            passwd = " passwd='pw'" if i % 2 else ""
            (root / f"etc/libvirt/qemu/vm{i}.xml").write_text(
                DOMAIN.format(name=f"vm{i}", uuid=f"00000000-0000-0000-0000-{i:012d}", port=port,
                              passwd=passwd))
            args = (["-object", "secret,id=s0,data=pw", "-vnc", f"127.0.0.1:{port - 5900},password-secret=s0"]
                    if i % 2 else ["-vnc", f"127.0.0.1:{port - 5900}"])
            procs.append(start(args, port))
        store = f"sqlite:///{tmp}/store.sqlite"
        subprocess.run([VMSEC, "scan", "host", "--root", str(root), "--store", store, "-q", "--format",
                        "json", "-o", f"{tmp}/scan.json"], check=False, capture_output=True)
        out = Path(tmp) / "probe.json"
        subprocess.run([VMSEC, "probe", "127.0.0.1", "--from-scan", "latest", "--store", store, "--format",
                        "json", "-o", str(out), "-q", "--no-tls-scan", "--contact-log", f"{tmp}/c.log"],
                       check=False, capture_output=True)
        for p in procs:
            p.terminate()
        findings = [f for f in json.loads(out.read_text())["findings"] if f["status"] in ("FAIL", "PASS")]
        # Tied: the correlation names a domain or daemon (not "unexplained") and the element or key.
        def tied(f: dict[str, object]) -> bool:
            evidence = f["evidence"]
            assert isinstance(evidence, list)
            state = next((e["value"] for e in evidence if e["source"] == "correlation"), None)
            keys = [e for e in evidence if e["source"] not in ("correlation",)
                    and not str(e["source"]).startswith("probe ")]
            return state in ("confirmed", "contradicted", "not-reachable") and bool(keys)

        domain = [f for f in findings if "domain vm" in str(f["message"])]
        ok = [f for f in findings if tied(f)]
    return {"endpoint_findings": len(findings), "tied_to_setting": len(ok),
            "share_pct": round(100 * len(ok) / max(1, len(findings)), 1),
            "domain_findings": len(domain),
            "domain_findings_with_element": sum(1 for f in domain if any(
                e["locator"] == "devices/graphics[1]/@port" for e in f["evidence"]))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=10_000)
    parser.add_argument("--matrix-rounds", type=int, default=3)
    parser.add_argument("--domains", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps({"sweep": sweep(args.probes), "vnc_matrix": matrix(args.matrix_rounds),
                      "attribution": attribution(args.domains)}, indent=2))


if __name__ == "__main__":
    main()
