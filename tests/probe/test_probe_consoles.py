"""VNC and SPICE consoles served by a real QEMU, probed over the network, with nmap's vnc-info as the
oracle for the security types."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from probekit import endpoint, free_port, free_ports, need, probe, qemu_display, running, statuses

from components import require
from vmsec.facts import Endpoint, Proto
from vmsec.findings import Severity, Status

# name → (QEMU arguments for display port P, expected VMS-PRB-001, -002, -003 statuses)
VNC_MATRIX: dict[str, tuple[list[str], tuple[Status | None, Status | None, Status | None]]] = {
    "none": (["-vnc", "127.0.0.1:{d}"], (Status.FAIL, None, None)),
    "password": (["-object", "secret,id=s0,data=pw", "-vnc", "127.0.0.1:{d},password-secret=s0"],
                 (Status.PASS, Status.FAIL, None)),
    "x509": (["-object", "tls-creds-x509,id=t0,dir={certs},endpoint=server,verify-peer=off",
              "-vnc", "127.0.0.1:{d},tls-creds=t0"], (Status.PASS, Status.PASS, Status.PASS)),
    "x509-verify-password": (["-object", "secret,id=s0,data=pw",
                              "-object", "tls-creds-x509,id=t0,dir={certs},endpoint=server,verify-peer=on",
                              "-vnc", "127.0.0.1:{d},tls-creds=t0,password-secret=s0"],
                             (Status.PASS, Status.PASS, Status.PASS)),
    # x509 credentials, but GnuTLS limited to TLS 1.0: the TLS inside VeNCrypt is what fails.
    "x509-tls1.0": (["-object", "tls-creds-x509,id=t0,dir={certs},endpoint=server,verify-peer=off,"
                     "priority=NORMAL:-VERS-ALL:+VERS-TLS1.0", "-vnc", "127.0.0.1:{d},tls-creds=t0"],
                    (Status.PASS, Status.PASS, Status.FAIL)),
    "anon-tls": (["-object", "tls-creds-anon,id=t0,endpoint=server", "-vnc", "127.0.0.1:{d},tls-creds=t0"],
                 (Status.PASS, Status.PASS, Status.FAIL)),
    "sasl": (["-vnc", "127.0.0.1:{d},sasl=on"], (Status.PASS, Status.PASS, None)),
}


def _sasl_env(tmp_path: Path) -> dict[str, str]:
    conf = tmp_path / "sasl2"
    conf.mkdir()
    (conf / "qemu.conf").write_text("mech_list: scram-sha-256\n")
    return {"SASL_CONF_PATH": str(conf)}


def _start_vnc(qemu: str, name: str, certs: Path, tmp_path: Path) -> tuple[list[str], int, dict[str, str]]:
    port = free_port()
    args = [a.format(d=port - 5900, certs=certs) for a in VNC_MATRIX[name][0]]
    env = _sasl_env(tmp_path) if name == "sasl" else {}
    return qemu_display(qemu, *args), port, env


@pytest.mark.parametrize("name", sorted(VNC_MATRIX))
def test_vnc_matrix_verdicts(name: str, qemu: str, certs: Path, tmp_path: Path) -> None:
    cmd, port, env = _start_vnc(qemu, name, certs, tmp_path)
    with running(cmd, [port], env):
        result = probe([port])
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.protocol is Proto.VNC, seen
    checks = ("VMS-PRB-001", "VMS-PRB-002", "VMS-PRB-003")
    for check_id, want in zip(checks, VNC_MATRIX[name][1], strict=True):
        got = statuses(result, check_id, port)
        assert got == ([want] if want else []), (name, check_id, got, seen)
    assert result.complete


def _nmap_types(port: int) -> set[str]:
    nmap = need("nmap", "nmap's vnc-info is the peer oracle for VNC security types (apt nmap)")
    out = subprocess.run([nmap, "-Pn", "-n", "-p", str(port), "--script", "+vnc-info", "127.0.0.1"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return set(re.findall(r"\|_?\s+([A-Za-z][\w ]+?) \(\d+\)", out))


@pytest.mark.parametrize("name", ["none", "password", "x509", "anon-tls"])
def test_nmap_vnc_info_agrees_on_none(name: str, qemu: str, certs: Path, tmp_path: Path) -> None:
    """nmap's vnc-info sees the same offer: None listed exactly when VMS-PRB-001 fails."""
    cmd, port, env = _start_vnc(qemu, name, certs, tmp_path)
    with running(cmd, [port], env):
        result = probe([port])
        nmap_types = _nmap_types(port)
    assert nmap_types, "nmap printed no security types"
    ours = statuses(result, "VMS-PRB-001", port)
    assert ("None" in nmap_types) == (ours == [Status.FAIL]), (nmap_types, ours)
    vnc = endpoint(result, port).vnc  # type: ignore[attr-defined]
    assert ("VeNCrypt" in nmap_types) == (19 in vnc.security_types)


def test_vnc_websocket_without_tls_is_an_open_web_console(qemu: str, tmp_path: Path) -> None:
    port, ws = free_ports(2)
    with running(qemu_display(qemu, "-vnc", f"127.0.0.1:{port - 5900},websocket={ws}"), [port, ws]):
        result = probe([port, f"{ws}/vnc-websocket"])
    web = endpoint(result, ws)
    assert isinstance(web, Endpoint) and web.http is not None and web.http.websocket
    assert web.http.vnc is not None and 1 in (web.http.vnc.security_types or ())
    assert statuses(result, "VMS-PRB-012", ws) == [Status.FAIL]
    assert statuses(result, "VMS-PRB-001", ws) == [Status.FAIL]  # the same None, through the WebSocket


def test_tls_websocket_probed_without_configuration_is_unknown_never_pass(qemu: str, certs: Path) -> None:
    """A WebSocket that speaks only TLS (wss), named by --ports alone, is asked in clear (the probe
    uses TLS for a WebSocket only when the configuration says so): QEMU resets the connection, and
    the VNC verdicts say UNKNOWN with that reason — never PASS."""
    port, ws = free_ports(2)
    args = ["-object", "secret,id=s0,data=pw", "-object",
            f"tls-creds-x509,id=t0,dir={certs},endpoint=server,verify-peer=off",
            "-vnc", f"127.0.0.1:{port - 5900},websocket={ws},tls-creds=t0,password-secret=s0"]
    with running(qemu_display(qemu, *args), [port, ws]):
        result = probe([f"{ws}/vnc-websocket"])
    seen = endpoint(result, ws)
    assert isinstance(seen, Endpoint) and seen.protocol is Proto.VNC_WEBSOCKET and seen.http is None
    assert seen.error is not None
    assert statuses(result, "VMS-PRB-001", ws) == [Status.UNKNOWN]
    assert statuses(result, "VMS-PRB-002", ws) == [Status.UNKNOWN]


def test_spice_plain_without_ticket_is_critical_remote(qemu: str) -> None:
    port = free_port()
    with running(qemu_display(qemu, "-spice", f"port={port},addr=127.0.0.1,disable-ticketing=on"), [port]):
        result = probe([f"{port}/spice"])
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.spice is not None and seen.spice.ticket_required is False
    [finding] = [f for f in result.findings if f.check_id == "VMS-PRB-004"]
    # Critical, one step less on loopback.
    assert finding.status is Status.FAIL and finding.severity is Severity.HIGH


def test_spice_ticket_on_plain_port_and_tls_port(qemu: str, certs: Path) -> None:
    port, tls_port = free_ports(2)
    args = ["-object", "secret,id=s0,data=pw", "-spice",
            f"port={port},tls-port={tls_port},addr=127.0.0.1,x509-dir={certs},password-secret=s0"]
    with running(qemu_display(qemu, *args), [port, tls_port]):
        result = probe([f"{port}/spice", f"{tls_port}/spice-tls"], tls_scan=True)
    plain, tls = endpoint(result, port), endpoint(result, tls_port)
    assert isinstance(plain, Endpoint) and plain.spice is not None and plain.spice.ticket_required is True
    assert statuses(result, "VMS-PRB-004", port) == [Status.FAIL]  # the session is in clear
    assert isinstance(tls, Endpoint) and tls.spice is not None and tls.spice.ticket_required is True
    assert statuses(result, "VMS-PRB-004", tls_port) == [Status.PASS]
    assert tls.tls is not None and tls.tls.certificate is not None
    assert "vmsec-server" in tls.tls.certificate.subject and tls.tls.certificate.key_bits == 2048
    # sslyze enumerated the versions; the verdict against Mozilla's profile exists either way.
    assert tls.tls.versions is not None and "TLSv1.2" in tls.tls.versions
    assert statuses(result, "VMS-PRB-007", tls_port) in ([Status.PASS], [Status.FAIL])


def test_spice_secure_main_channel_refuses_plain(qemu: str, certs: Path) -> None:
    port, tls_port = free_ports(2)
    args = ["-object", "secret,id=s0,data=pw", "-spice",
            f"port={port},tls-port={tls_port},addr=127.0.0.1,x509-dir={certs},password-secret=s0,"
            "tls-channel=default"]
    with running(qemu_display(qemu, *args), [port, tls_port]):
        result = probe([f"{port}/spice"])
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.spice is not None and seen.spice.link_error == 5
    assert statuses(result, "VMS-PRB-004", port) == [Status.PASS]


def test_nothing_is_sent_to_a_silent_unknown_port() -> None:
    require(True, "", "")
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        conn.settimeout(3)
        try:
            received.append(conn.recv(100))
        except OSError:
            received.append(b"")
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    result = probe([port], timeout=0.5)
    t.join(5)
    server.close()
    assert received == [b""]
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.protocol is Proto.UNKNOWN
