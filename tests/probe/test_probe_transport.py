"""NBD (qemu-nbd with and without TLS), TLS servers (openssl s_server), migration ports, hostile and
filtered servers, scope, and the JSON contract of a probe report."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import jsonschema
import pytest
from probekit import endpoint, free_port, need, probe, running, statuses

from components import require, require_module
from vmsec.errors import ConfigError
from vmsec.facts import Endpoint, PortState, Proto
from vmsec.findings import Status
from vmsec.pipeline import ScanOptions, scan
from vmsec.specs import ProbeSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.raw"
    path.write_bytes(b"\0" * 1024 * 1024)
    return path


@pytest.mark.parametrize("tls", [False, True])
def test_nbd_exports_listed_without_tls(tls: bool, image: Path, certs: Path) -> None:
    nbd = need("qemu-nbd", "the NBD probe test serves a disk with qemu-nbd (apt qemu-utils)")
    port = free_port()
    cmd = [nbd, "-r", "-f", "raw", "--bind", "127.0.0.1", "--port", str(port), "-x", "vm-disk",
           "--persistent", "--shared", "4"]
    if tls:
        cmd += ["--object", f"tls-creds-x509,id=t0,dir={certs},endpoint=server", "--tls-creds", "t0"]
    with running([*cmd, str(image)], [port]):
        result = probe([port])
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.protocol is Proto.NBD and seen.nbd is not None
    if tls:
        assert seen.nbd.tls_required is True and seen.nbd.exports is None
        assert statuses(result, "VMS-PRB-008", port) == [Status.PASS]
    else:
        assert seen.nbd.exports == ("vm-disk",)
        assert statuses(result, "VMS-PRB-008", port) == [Status.FAIL]


INTERMEDIATE = ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "-groups", "X25519:P-256:P-384"]


@pytest.mark.parametrize(("args", "cert", "tls_scan", "want"), [
    (INTERMEDIATE, "server", True, Status.PASS),
    (["-cipher", "AES128-SHA:@SECLEVEL=0", "-tls1"], "server", True, Status.FAIL),
    # Self-signed (the CA's own certificate): trust is not what the profile judges.
    (INTERMEDIATE, "ca", True, Status.PASS),
    # Without sslyze's enumeration the accepted versions and suites are unknown: never a PASS.
    (INTERMEDIATE, "server", False, Status.UNKNOWN),
], ids=["intermediate", "tls1.0", "self-signed", "no-tls-scan"])
def test_tls_endpoint_against_mozilla_intermediate(args: list[str], cert: str, tls_scan: bool, want: Status,
                                                   certs: Path) -> None:
    openssl = need("openssl", "openssl s_server is the TLS variant server")
    require_module("sslyze", "sslyze (pip install 'vmsec[probe]'): the TLS enumeration")
    port = free_port()
    cmd = [openssl, "s_server", "-quiet", "-accept", f"127.0.0.1:{port}", "-cert", f"{certs}/{cert}-cert.pem",
           "-key", f"{certs}/{cert}-key.pem", "-www", *args]
    with running(cmd, [port]):
        result = probe([f"{port}/https"], tls_scan=tls_scan)
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.tls is not None and seen.tls.certificate is not None, seen
    assert (seen.tls.versions is not None) is tls_scan, seen
    assert seen.tls.certificate.self_signed is (cert == "ca")
    got = statuses(result, "VMS-PRB-007", port)
    assert got == [want], [f.message for f in result.findings if f.check_id == "VMS-PRB-007"]
    if want is Status.FAIL:
        assert "TLSv1" in (seen.tls.versions or ())
    # A plain web server that is not a console is not a console finding.
    assert statuses(result, "VMS-PRB-012", port) == [Status.PASS]


def _listener(behaviour: str) -> tuple[socket.socket, list[bytes], threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        conn.settimeout(4)
        try:
            if behaviour == "flood":
                conn.sendall(b"RFB 003.008\n")
                conn.recv(12)
                conn.sendall(b"\x00\x7f\xff\xff\xff")  # zero types, then a reason of 2 GB …
                chunk = b"x" * 65536
                for _ in range(16_000):  # … of which it would send a gigabyte
                    conn.sendall(chunk)
            elif behaviour == "headers":
                received.append(conn.recv(100))
                chunk = b"X-Filler: " + b"y" * 65536
                for _ in range(16_000):  # a gigabyte of one header line, never a blank line
                    conn.sendall(chunk)
            else:
                received.append(conn.recv(100))
        except OSError:
            received.append(b"")
        finally:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, received, thread


def test_migration_port_is_connected_to_and_never_written() -> None:
    server, received, thread = _listener("silent")
    port = server.getsockname()[1]
    result = probe([f"{port}/migration"], timeout=1.0)
    thread.join(6)
    server.close()
    assert received == [b""]  # the peer closed without one byte
    assert statuses(result, "VMS-PRB-009", port) == [Status.FAIL]


def test_a_server_that_floods_costs_one_bounded_read() -> None:
    """A 2 GB RFB failure reason is read up to 4 KiB; an endless HTTP header is cut at 16 KiB."""
    server, _received, thread = _listener("flood")
    port = server.getsockname()[1]
    result = probe([port], timeout=3.0)
    server.close()
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.vnc is not None and seen.vnc.security_types == ()
    assert seen.vnc.failure_reason is not None and len(seen.vnc.failure_reason) == 4096
    assert statuses(result, "VMS-PRB-001", port) == [Status.PASS]  # it refuses every client
    thread.join(10)
    server, _received, thread = _listener("headers")
    port = server.getsockname()[1]
    result = probe([f"{port}/http"], timeout=3.0)
    server.close()
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.error is not None and "too large" in seen.error
    thread.join(10)


def test_outside_scope_is_refused_before_any_contact() -> None:
    with pytest.raises(ConfigError, match="outside the probe's scope"):
        scan([ProbeSpec(targets=("192.0.2.10",), ports=(22,))], ScanOptions())
    with pytest.raises(ConfigError, match="outside the probe's scope"):
        scan([ProbeSpec(targets=("127.0.0.1", "198.51.100.0/30"), scope=("198.51.100.0/31",), ports=(22,))],
             ScanOptions())


def test_closed_and_filtered_ports(tmp_path: Path) -> None:
    """A closed port refuses; a port behind a DROP rule (a private network namespace with nftables)
    costs one timeout and is reported filtered in the contact log."""
    ip = need("ip", "the filtered-port test makes a private network namespace (apt iproute2)")
    nft = need("nft", "the filtered-port test drops packets with nftables (apt nftables)")
    require(os.geteuid() == 0, "root", "network namespaces need root")
    ns = f"vmsec-probe-{uuid.uuid4().hex[:8]}"
    subprocess.run([ip, "netns", "add", ns], check=True)
    try:
        subprocess.run([ip, "-n", ns, "link", "set", "lo", "up"], check=True)
        rules = ("table inet vmsec {\n  chain input {\n    type filter hook input priority 0;\n"
                 "    tcp dport 7001 drop\n  }\n}\n")
        subprocess.run([ip, "netns", "exec", ns, nft, "-f", "-"], input=rules, text=True, check=True)
        log = tmp_path / "contacts.log"
        report = tmp_path / "r.json"
        cmd = [sys.executable, "-m", "vmsec.cli.main", "probe", "127.0.0.1", "--ports", "7000,7001",
               "--timeout", "1", "--no-store", "--format", "json", "-o", str(report), "--contact-log",
               str(log), "-q"]
        done = subprocess.run([ip, "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        subprocess.run([ip, "netns", "del", ns], check=False)
    outcomes = {int(line.split("\t")[2]): line.split("\t")[3] for line in log.read_text().splitlines()}
    assert outcomes == {7000: "closed", 7001: "filtered"}
    doc = json.loads(report.read_text())
    assert doc["targets"] == []  # nothing open, nothing predicted: no endpoint to report


def test_probe_json_report_follows_the_schema(tmp_path: Path, qemu: str) -> None:
    from click.testing import CliRunner

    from vmsec.cli.main import cli

    port = free_port()
    with running([qemu, "-machine", "none", "-nodefaults", "-display", "none", "-S", "-vnc",
                  f"127.0.0.1:{port - 5900}"], [port]):
        out = tmp_path / "r.json"
        done = CliRunner().invoke(cli, ["probe", "127.0.0.1", "--ports", str(port), "--no-store", "--format",
                                        "json", "-o", str(out), "--contact-log", str(tmp_path / "c.log"),
                                        "--fail-on", "high", "-q"])
    assert done.exit_code == 1, done.output  # the None console is a FAIL at or above high
    doc = json.loads(out.read_text())
    schema = json.loads((ROOT / "docs" / "json-report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    [target] = doc["targets"]
    assert (target["kind"], target["address"], target["port"], target["protocol"]) == \
        ("endpoint", "127.0.0.1", port, "vnc")
    assert target["details"]["state"] == PortState.OPEN.value
    assert all(f["target"]["protocol"] == "vnc" for f in doc["findings"])


def test_cli_port_list_and_exclusive_sources() -> None:
    from click.testing import CliRunner

    from vmsec.cli.main import cli
    from vmsec.cli.probe_commands import parse_ports

    assert parse_ports("22,5900-5902,7000/libvirt") == ((22, 5900, 5901, 5902, 7000), ((7000, "libvirt"),))
    runner = CliRunner()
    assert runner.invoke(cli, ["probe", "127.0.0.1", "--ports", "70000"]).exit_code == 2
    done = runner.invoke(cli, ["probe", "127.0.0.1", "--from-scan", "1", "--from-libvirt", "test:///default"])
    assert done.exit_code == 2 and "alternatives" in done.output
