"""``vmsec monitor`` against a private libvirtd whose QEMU driver emits real events: the tests define,
change, start, connect to the console of, hot-plug into, and undefine domains, and assert the alerts —
on standard output, through a signed webhook, to syslog, in the store and in /metrics. Then libvirtd
is killed and restarted behind the monitor's back."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ports import free_port
from vmsec.store import open_store, schema

VMSEC = str(Path(sys.executable).with_name("vmsec"))
SECRET = b"monitor-test-secret"
HOSTDEV = ("<hostdev mode='subsystem' type='pci' managed='yes'><source>"
           "<address domain='0x0000' bus='0x03' slot='0x00' function='0x0'/></source></hostdev>")


def domain_xml(name: str) -> str:
    """A QEMU (TCG) domain without disks: it boots to the firmware, enough for a console."""
    return (f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
            "<emulator>/usr/bin/qemu-system-x86_64</emulator>"
            "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/><input type='tablet' bus='usb'/>"
            "</devices></domain>")



class Receivers:
    """A webhook endpoint and a UDP syslog collector on 127.0.0.1."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self.lines: list[str] = []
        self._stop = threading.Event()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        while not self._stop.is_set():
            try:
                self.lines.append(self.udp.recv(65536).decode())
            except TimeoutError:
                continue
            except OSError:  # closed
                return

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.http.server_port}/hook"

    @property
    def syslog(self) -> str:
        return f"udp://127.0.0.1:{self.udp.getsockname()[1]}"

    def close(self) -> None:
        self._stop.set()
        self.http.shutdown()
        self.udp.close()


class MonitorProcess:
    def __init__(self, uri: str, store: str, receivers: Receivers, tmp: Path, *extra: str) -> None:
        secret = tmp / "secret"
        secret.write_bytes(SECRET)
        self.metrics_port = free_port()
        self.proc = subprocess.Popen(
            [VMSEC, "monitor", uri, "--no-host", "--store", store, "--format", "json", "--debounce", "0.2",
             "--reconnect-max", "1", "--webhook", receivers.webhook, "--webhook-secret-file", str(secret),
             "--syslog", receivers.syslog, "--metrics-port", str(self.metrics_port), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.alerts: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr or ()), daemon=True).start()
        self.wait(lambda: any(line.startswith("monitoring ") for line in self.stderr), 90, "start")

    def _read_out(self) -> None:
        for line in self.proc.stdout or ():
            self.alerts.append(json.loads(line))

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = condition()
            if found:
                return found
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stderr = "".join(self.stderr)[-3000:]
                pytest.fail(f"monitor: no {what}; alerts {self.alerts}; stderr {stderr}")
            time.sleep(0.05)

    def alert(self, timeout: float = 30, **match: Any) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((a for a in self.alerts if all(a.get(k) == v for k, v in match.items())), None)

        return dict(self.wait(find, timeout, f"alert {match}"))

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    r = Receivers()
    yield r
    r.close()


def vnc_session(port: int) -> None:
    """A VNC client: the RFB handshake with security type None, then goodbye."""
    deadline = time.monotonic() + 20
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with sock:
        version = sock.recv(12)
        sock.sendall(version)
        count = sock.recv(1)[0]
        assert 1 in sock.recv(count)  # None offered (the test domain has no password)
        sock.sendall(b"\x01")
        assert sock.recv(4) == b"\x00\x00\x00\x00"
        sock.sendall(b"\x01")  # ClientInit: shared
        sock.recv(1024)
        time.sleep(0.3)


def events_of(store: str, domain: str) -> list[tuple[str, str | None]]:
    with open_store(store) as s, s.transaction("read") as conn:
        me = schema.monitor_events
        return [(r.event, r.detail) for r in conn.execute(
            select(me.c.event, me.c.detail).where(me.c.domain == domain).order_by(me.c.id))]


def test_domain_changes_become_alerts(libvirtd: Any, receivers: Receivers, tmp_path: Path) -> None:
    import libvirt

    conn = libvirt.open(libvirtd.qemu_uri)
    web = conn.defineXML(domain_xml("web"))
    db = conn.defineXML(domain_xml("db"))
    store = f"sqlite:///{tmp_path / 'monitor.sqlite'}"
    monitor = MonitorProcess(libvirtd.qemu_uri, store, receivers, tmp_path)
    try:
        # A host PCI device appears in web's configuration: semantic drift, not "the file changed".
        conn.defineXML(web.XMLDesc(0).replace("<devices>", "<devices>" + HOSTDEV))
        gained = monitor.alert(kind="drift", change="new", domain="web", check_id="VMS-DOM-071")
        assert "now fails VMS-DOM-071" in gained["message"] and "0000:03:00.0" in gained["message"]
        assert gained["lag_s"] is not None and gained["lag_s"] > 0
        assert not [a for a in monitor.alerts if a["kind"] == "drift" and a["domain"] == "db"]
        conn.defineXML(re.sub(r"<hostdev .*?</hostdev>", "", web.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE),
                              flags=re.S))
        monitor.alert(kind="drift", change="resolved", domain="web", check_id="VMS-DOM-071")

        # Started, a console client, hot-plug, metadata, stopped, and db undefined.
        web.create()
        port = int(re.search(r"<graphics type='vnc' port='(\d+)'", web.XMLDesc(0)).group(1))  # type: ignore[union-attr]
        vnc_session(port)
        connected = monitor.alert(kind="console", change="connect", domain="web")
        assert connected["data"]["remote"]["node"] == "127.0.0.1" and connected["data"]["auth"] == "none"
        assert "console client 127.0.0.1:" in connected["message"]
        monitor.alert(kind="console", change="disconnect", domain="web")
        web.attachDeviceFlags("<input type='mouse' bus='usb'/>", libvirt.VIR_DOMAIN_AFFECT_LIVE)
        monitor.wait(lambda: ("device-added", "input3") in events_of(store, "web"), 30, "device-added")
        web.detachDeviceFlags("<input type='mouse' bus='usb'/>", libvirt.VIR_DOMAIN_AFFECT_LIVE)
        web.setMetadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, "owner: ops", None, None,
                        libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        web.destroy()
        db.undefine()
        monitor.alert(kind="lifecycle", change="undefined", domain="db")
        monitor.wait(lambda: ("stopped", "destroyed") in events_of(store, "web"), 30, "the stopped event")
        names = [e for e, _ in events_of(store, "web")]
        for expected in ("defined", "started", "graphics-connect", "graphics-initialize",
                         "graphics-disconnect",
                         "device-added", "device-removed", "metadata-changed",
                         "stopped"):
            assert expected in names, names

        # The same alerts went to the webhook (signed) and to syslog (RFC 5424).
        monitor.wait(lambda: len(receivers.posts) >= 4, 30, "webhook posts")
        for headers, body in receivers.posts:
            signed = hmac.new(SECRET, headers["x-vmsec-timestamp"].encode() + b"." + body, hashlib.sha256)
            assert hmac.compare_digest(headers["x-vmsec-signature"], "sha256=" + signed.hexdigest())
        assert any(json.loads(body)["alert"]["check_id"] == "VMS-DOM-071" for _, body in receivers.posts)
        line = monitor.wait(lambda: next((x for x in receivers.lines if 'check="VMS-DOM-071"' in x), None),
                            30, "syslog line")
        assert re.match(r"<1\d\d>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ vmsec \d+ drift \[vmsec@32473 ", line)

        text = monitor.metrics()
        assert re.search(r'vmsec_events_total\{event="device-added",uri="[^"]+"\} 1\.0', text)
        assert re.search(r'vmsec_findings\{host="[^"]*",severity="medium",vm="web"\}', text)
        assert re.search(r"vmsec_event_to_alert_seconds_count [1-9]", text)
        assert re.search(r'vmsec_connected\{uri="[^"]+"\} 1\.0', text)
    finally:
        monitor.stop()
        for name in ("web", "db"):
            try:
                dom = conn.lookupByName(name)
            except libvirt.libvirtError:
                continue
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        conn.close()
    with open_store(store) as s, s.transaction("read") as c:
        kinds = {r[0] for r in c.execute(select(schema.monitor_alerts.c.kind))}
    assert {"drift", "console", "lifecycle"} <= kinds


def test_libvirtd_restart_reconnects_and_resynchronises(libvirtd: Any, receivers: Receivers,
                                                        tmp_path: Path) -> None:
    import libvirt

    conn = libvirt.open(libvirtd.qemu_uri)
    conn.defineXML(domain_xml("app"))
    conn.close()
    store = f"sqlite:///{tmp_path / 'monitor.sqlite'}"
    monitor = MonitorProcess(libvirtd.qemu_uri, store, receivers, tmp_path, "--syslog-format", "cef")
    try:
        libvirtd.kill()
        monitor.alert(kind="connection", severity="medium", timeout=30)  # lost
        # While the daemon is down its configuration changes: no event can announce it.
        config = libvirtd.config_dir / "app.xml"
        config.write_text(config.read_text().replace("<devices>", "<devices>\n    " + HOSTDEV))
        libvirtd.start()
        monitor.wait(lambda: any("connection restored" in a["message"] for a in monitor.alerts), 30,
                     "reconnect")
        drift = monitor.alert(kind="drift", change="new", domain="app", check_id="VMS-DOM-071")
        assert drift["data"]["found_on"] == "resynchronisation" and drift["lag_s"] is None
        missed = monitor.wait(lambda: next((a for a in monitor.alerts if "possibly missed" in a["message"]),
                                           None), 30, "the missed-events alert")
        assert missed["data"]["missed"] == 1 and missed["data"]["reason"] == "resync"
        # Events flow again on the new connection.
        conn = libvirt.open(libvirtd.qemu_uri)
        conn.lookupByName("app").undefine()
        conn.close()
        monitor.alert(kind="lifecycle", change="undefined", domain="app")
        text = monitor.metrics()
        assert re.search(r'vmsec_missed_events_total\{uri="[^"]+"\} 1\.0', text)
        assert re.search(r'vmsec_reconnects_total\{uri="[^"]+"\} 1\.0', text)
        cef = monitor.wait(lambda: next((x for x in receivers.lines if "CEF:0|vmsec|vmsec|" in x
                                         and "VMS-DOM-071" in x), None), 30, "CEF line")
        assert "|VMS-DOM-071|drift new|" in cef and "cs2=app" in cef
    finally:
        monitor.stop()
