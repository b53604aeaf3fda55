"""End to end on a real guest: libvirt's embedded QEMU driver starts a TCG guest with a VNC console,
the libvirt collector reads it back, the catalogue judges it, and a raw socket proves the console
is really listening where the facts say.

The guest has no disk and no kernel: SeaBIOS finds nothing to boot and sits idle, which is all
a live domain with a live VNC server needs.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from vmsec.checks.catalog import default_catalog
from vmsec.collectors.libvirt import collect_from_connection
from vmsec.engine import run_checks
from vmsec.facts import PasswordState
from vmsec.findings import Status

pytestmark = pytest.mark.realvm

# QEMU's VNC password is DES-based: libvirt refuses one longer than 8 characters.
DOMAIN_XML = """\
<domain type='qemu'>
  <name>vmsec-embed-live</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='vmsecpw1'/>
  </devices>
</domain>
"""

VNC_LISTEN_CHECK = "VMS-DOM-020"  # VNC listens only on loopback or a UNIX socket
TCG_CHECK = "VMS-DOM-009"  # the VM uses KVM, not TCG emulation (domain type qemu)


def _rfb_banner(port: int) -> bytes:
    """The first 12 bytes a VNC server sends: its RFB protocol version."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        banner = b""
        deadline = time.monotonic() + 10
        while len(banner) < 12 and time.monotonic() < deadline:
            chunk = sock.recv(12 - len(banner))
            if not chunk:
                break
            banner += chunk
        return banner


def test_embedded_guest_vnc_console_is_collected_and_judged(libvirt_module: Any, embed_uri: str) -> None:
    libvirt = libvirt_module
    started = time.monotonic()
    conn = libvirt.open(embed_uri)
    dom = None
    try:
        dom = conn.createXML(DOMAIN_XML, 0)
        booted = time.monotonic()

        inv = collect_from_connection(conn, embed_uri)

        [guest] = [d for d in inv.domains if d.name == "vmsec-embed-live"]
        assert guest.state == "running"
        assert guest.persistent is False  # createXML makes a transient domain
        assert guest.virt_type == "qemu"
        assert guest.secure_xml is True
        [vnc] = guest.graphics
        assert vnc.type == "vnc"
        # The live XML holds the effective address and the port autoport picked.
        assert vnc.listen_attr == "127.0.0.1"
        assert [lst.address for lst in vnc.listens if lst.type == "address"] == ["127.0.0.1"]
        assert vnc.port is not None and vnc.port >= 5900
        assert vnc.password is PasswordState.SET

        # Embed mode has no network, storage, filter or secret drivers: unknown, said so, not empty.
        assert inv.nwfilters is None and inv.secrets is None
        unsupported = {r.what for r in inv.records if "cannot list" in (r.reason or "")}
        assert {"networks", "storage pools", "network filters", "secrets"} <= unsupported
        assert not inv.errors  # a driver without those APIs does not make the scan incomplete
        # Host facts come from the API: an embed root is not this machine's libvirt.
        assert inv.host is not None and inv.host.live is False and inv.host.root == embed_uri
        assert inv.host.qemu_version is not None and inv.host.qemu_version.count(".") == 2

        # The console is real: a VNC server answers on the collected port.
        assert _rfb_banner(vnc.port) == b"RFB 003.008\n"

        scan = run_checks(inv, default_catalog())
        mine = [f for f in scan.findings if f.target.name == guest.name]
        assert not [f for f in mine if f.status is Status.ERROR], [f.message for f in mine]
        listen = [f for f in mine if f.check_id == VNC_LISTEN_CHECK]
        assert listen and all(f.status is Status.PASS for f in listen), listen
        tcg = [f for f in mine if f.check_id == TCG_CHECK]
        assert [f.status for f in tcg] == [Status.FAIL], tcg
    finally:
        if dom is not None:
            dom.destroy()
        conn.close()
    print(f"\nembed guest: start {booted - started:.1f} s, total {time.monotonic() - started:.1f} s")
