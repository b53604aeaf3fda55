"""A probe guided by a stored scan's configuration: the listeners a host root predicts — VNC with x509
TLS, its WebSocket over TLS (wss), qemu.conf's migration range — are the ports contacted, with the
protocol and TLS the configuration gives them, and every finding is tied to the domain or key."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from probekit import endpoint, free_ports, of, probe, qemu_display, running, statuses

from ports import claim
from vmsec.facts import Endpoint, PortState, Proto
from vmsec.findings import Status

DOMAIN = """<domain type='kvm'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory>65536</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <graphics type='vnc' port='{port}' autoport='no' websocket='{ws}' listen='127.0.0.1'{passwd}/>
  </devices>
</domain>
"""


@contextlib.contextmanager
def migration_listener() -> Iterator[int]:
    """A silent listener on port L where L+1 is closed: a migration range with one incoming migration."""
    for _ in range(50):
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        try:
            with socket.create_server(("127.0.0.1", port + 1)):
                pass
        except OSError:
            server.close()
            continue
        break
    else:
        raise RuntimeError("no port L with L+1 free")
    claim(port, port + 1)  # L+1 must stay closed: no other server of the tests may get it
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(2)
        server.close()


def test_configuration_guides_tls_websockets_and_the_migration_range(tmp_path: Path, qemu: str,
                                                                    certs: Path) -> None:
    """db01's VNC and WebSocket need x509 TLS and a password; db02 has TLS and no password (its
    wss WebSocket is an open console behind TLS); one migration port is open, the next closed."""
    from click.testing import CliRunner

    from vmsec.cli.main import cli

    with migration_listener() as low:
        p1, w1, p2, w2 = free_ports(4)  # after the listener: L and L+1 are claimed by then
        root = tmp_path / "root"
        (root / "etc/libvirt/qemu").mkdir(parents=True)
        (root / "etc/libvirt/qemu.conf").write_text(
            f'vnc_listen = "127.0.0.1"\nvnc_tls = 1\nvnc_tls_x509_cert_dir = "{certs}"\n'
            f"migration_port_min = {low}\nmigration_port_max = {low + 1}\n")
        for name, uuid, port, ws, passwd in (
                ("db01", "22222222-3333-4444-5555-666666666601", p1, w1, " passwd='pw'"),
                ("db02", "22222222-3333-4444-5555-666666666602", p2, w2, "")):
            (root / f"etc/libvirt/qemu/{name}.xml").write_text(
                DOMAIN.format(name=name, uuid=uuid, port=port, ws=ws, passwd=passwd))
        store = f"sqlite:///{tmp_path / 'store.sqlite'}"
        done = CliRunner().invoke(cli, ["scan", "host", "--root", str(root), "--store", store, "-q",
                                        "--format", "json", "-o", str(tmp_path / "scan.json")])
        assert done.exit_code in (0, 1, 3), done.output
        x509 = f"tls-creds-x509,id=t0,dir={certs},endpoint=server,verify-peer=off"
        with running(qemu_display(qemu, "-object", "secret,id=s0,data=pw", "-object", x509, "-vnc",
                                  f"127.0.0.1:{p1 - 5900},websocket={w1},tls-creds=t0,password-secret=s0"),
                     [p1, w1]), \
                running(qemu_display(qemu, "-object", x509, "-vnc",
                                     f"127.0.0.1:{p2 - 5900},websocket={w2},tls-creds=t0"), [p2, w2]):
            result = probe([], from_scan="latest", store_url=store)
    assert result.inventory is not None and result.inventory.expected is not None
    assert result.inventory.probe is not None
    # Exactly the predicted ports were contacted, and each is reported (open, or predicted and closed).
    assert set(result.inventory.probe.ports) == {e.port for e in result.inventory.endpoints} == \
        {p1, w1, p2, w2, low, low + 1}
    # The WebSockets were spoken to over TLS because the configuration says vnc_tls = 1.
    for ws, types in ((w1, (2,)), (w2, (1,))):
        seen = endpoint(result, ws)
        assert isinstance(seen, Endpoint) and seen.http is not None and seen.http.tls, seen
        assert seen.http.vnc is not None and seen.http.vnc.security_types == types
    assert statuses(result, "VMS-PRB-012", w1) == [Status.PASS]  # TLS and the VNC password
    assert statuses(result, "VMS-PRB-012", w2) == [Status.FAIL]  # TLS, then None: anyone's console
    assert statuses(result, "VMS-PRB-001", w2) == [Status.FAIL]
    assert statuses(result, "VMS-PRB-003", p1) == [Status.PASS]
    assert statuses(result, "VMS-PRB-003", p2) == [Status.PASS]
    # The migration range: the open port fails, the closed one is what the range should look like.
    closed = endpoint(result, low + 1)
    assert isinstance(closed, Endpoint) and closed.state is PortState.CLOSED
    assert closed.protocol is Proto.MIGRATION
    assert statuses(result, "VMS-PRB-009", low) == [Status.FAIL]
    assert statuses(result, "VMS-PRB-009", low + 1) == [Status.PASS]
    correlation = {port: of(result, "VMS-PRB-013", port) for port in (p1, w1, p2, w2, low, low + 1)}
    assert all(len(found) == 1 and found[0].status is Status.PASS for found in correlation.values()), \
        {p: [(f.status, f.message) for f in fs] for p, fs in correlation.items()}
    assert "confirmed: domain db01 (22222222-3333-4444-5555-666666666601), devices/graphics[1]/@websocket" \
        in correlation[w1][0].message
    assert "confirmed: qemu (daemon), migration_port_min" in correlation[low][0].message
    assert "not reachable" in correlation[low + 1][0].message
