"""The libvirt collector against libvirt's real test driver (``test:///ABS/PATH/node.xml``).

The node file tests/data/libvirt/node-risky.xml holds three domains with risky settings, a
network that trusts guests' RX filters and a world-writable pool. The test driver keeps console
passwords (shown only with the secure flag), seclabels, encryption and hostdevs; it has no
network-filter or secret API, and it drops ``qemu:commandline``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components import require_module
from vmsec.checks.catalog import default_catalog
from vmsec.collectors.libvirt import collect_from_connection, collect_libvirt, is_local_host_uri
from vmsec.engine import run_checks
from vmsec.errors import SourceUnavailable
from vmsec.facts import Domain, Inventory, PasswordState
from vmsec.findings import Status
from vmsec.results import ScanResult

libvirt = require_module("libvirt", "libvirt-python (pip extra [libvirt], built against libvirt-dev)")

DATA = Path(__file__).resolve().parents[1] / "data" / "libvirt"
NODE = DATA / "node-risky.xml"
URI = f"test://{NODE}"


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return collect_libvirt(URI)


@pytest.fixture
def readonly_conn() -> Iterator[Any]:
    conn = libvirt.openReadOnly(URI)
    try:
        yield conn
    finally:
        conn.close()


def _domain(inv: Inventory, name: str) -> Domain:
    [dom] = [d for d in inv.domains if d.name == name]
    return dom


# --- domains --------------------------------------------------------------------------------------


def test_every_domain_is_collected_with_its_origin(inventory: Inventory) -> None:
    assert sorted(d.name for d in inventory.domains) == ["batch01", "db01", "web01"]
    assert _domain(inventory, "web01").origin == f"{URI}#web01"
    assert inventory.source == f"libvirt {URI}"


@pytest.mark.parametrize(("name", "state"), [("web01", "running"), ("db01", "running"),
                                             ("batch01", "shutoff")])
def test_live_state_comes_from_the_api(inventory: Inventory, name: str, state: str) -> None:
    dom = _domain(inventory, name)
    assert dom.state == state
    assert dom.persistent is True
    assert dom.autostart is False


def test_secure_flag_shows_set_and_absent_passwords(inventory: Inventory) -> None:
    web, db = _domain(inventory, "web01"), _domain(inventory, "db01")
    assert web.secure_xml is True and db.secure_xml is True
    assert [g.password for g in web.graphics] == [PasswordState.SET]
    assert [g.password for g in db.graphics] == [PasswordState.ABSENT]
    assert [lst.address for lst in web.graphics[0].listens] == ["0.0.0.0"]
    assert web.graphics[0].port == 5901


def test_read_only_connection_hides_passwords_instead_of_calling_them_absent(readonly_conn: Any) -> None:
    inv = collect_from_connection(readonly_conn, URI)
    for name in ("web01", "db01"):
        dom = _domain(inv, name)
        assert dom.secure_xml is False
        assert [g.password for g in dom.graphics] == [PasswordState.HIDDEN]
    hidden = [r for r in inv.records if r.what == "domain XML (secure flag)"]
    assert len(hidden) == 1 and "hidden" in (hidden[0].reason or "")
    # Hidden passwords are UNKNOWN findings, not an incomplete scan.
    assert hidden[0].ok and not inv.errors
    # Everything else is still read.
    assert _domain(inv, "batch01").state == "shutoff"
    assert [n.name for n in inv.networks] == ["trusting"]


def test_risky_devices_survive_the_round_trip(inventory: Inventory) -> None:
    web, db, batch = (_domain(inventory, n) for n in ("web01", "db01", "batch01"))
    assert [(s.type, s.model) for s in web.seclabels] == [("dynamic", "apparmor")]
    assert [s.type for s in db.seclabels] == ["none"]
    enc = web.disks[0].encryption
    assert enc is not None and enc.format == "luks"
    assert sorted(h.type for h in db.hostdevs) == ["pci", "usb"]
    assert {d.device for d in db.disks} == {"disk", "floppy"}
    # The same block device in two VMs, marked shareable by only one of them.
    assert [(d.source, d.shareable) for d in (db.disks[0], batch.disks[0])] == [
        ("/dev/vg0/shared", True), ("/dev/vg0/shared", False)]
    [direct] = db.interfaces
    assert (direct.type, direct.source_dev, direct.source_mode) == ("direct", "eth0", "passthrough")
    assert web.interfaces[0].source_network == "trusting"


# --- networks, pools, filters, secrets ----------------------------------------------------------


def test_network_facts_and_live_flags(inventory: Inventory) -> None:
    net = inventory.network("trusting")
    assert net is not None
    assert net.trust_guest_rx_filters is True
    assert net.forward_mode == "nat"
    assert net.bridge == "virbr9"
    assert net.active is True and net.autostart is False
    assert net.origin == f"{URI}#network/trusting"


def test_pool_facts(inventory: Inventory) -> None:
    [pool] = inventory.pools
    assert (pool.name, pool.type, pool.target_path) == ("images", "dir", "/var/lib/libvirt/images")
    assert pool.mode == 0o777
    assert pool.active is True


def test_unsupported_filters_and_secrets_are_unknown_and_recorded(inventory: Inventory) -> None:
    assert inventory.nwfilters is None
    assert inventory.secrets is None
    reasons = {r.what: r.reason or "" for r in inventory.records}
    assert not inventory.errors  # a driver without these APIs does not make the scan incomplete
    assert "cannot list network filters" in reasons["network filters"]
    assert "cannot list secrets" in reasons["secrets"]


# --- host -----------------------------------------------------------------------------------------


def test_host_of_a_non_local_uri_comes_from_the_api_only(inventory: Inventory) -> None:
    host = inventory.host
    assert host is not None
    assert host.live is False and host.root == URI
    major, minor, release = (int(p) for p in (host.libvirt_version or "").split("."))
    assert major * 1_000_000 + minor * 1_000 + release == libvirt.getVersion()
    assert host.qemu_version is None  # the test driver is not QEMU
    assert host.cpu is None  # the test driver's fake i686 host lists no CPU features
    assert host.kernel_release is None and host.cpu_vulnerabilities is None  # unknown, not clean


@pytest.mark.parametrize(("uri", "local"), [
    ("qemu:///system", True),
    ("qemu:///session", True),
    ("qemu+unix:///system", True),
    ("qemu:///system?socket=/run/libvirt/libvirt-sock", True),
    ("qemu:///embed?root=/tmp/x", False),
    ("qemu+ssh://root@hv1/system", False),
    ("qemu+tls://hv1.example.org/system", False),
    ("test:///default", False),
    ("lxc:///system", False),
    ("", False),
])
def test_local_host_uri_classification(uri: str, local: bool) -> None:
    assert is_local_host_uri(uri) is local


def test_include_host_reads_this_machines_root() -> None:
    conn = libvirt.open(URI)
    try:
        inv = collect_from_connection(conn, URI, include_host=True)
    finally:
        conn.close()
    host = inv.host
    assert host is not None and host.live is True and host.root == "/"
    assert host.kernel_release == Path("/proc/sys/kernel/osrelease").read_text().strip()
    assert host.libvirt_version is not None  # from the files, or else from the API


# --- the catalogue over the collected inventory -------------------------------------------------


def _statuses(scan: ScanResult, check_id: str, target: str) -> list[Status]:
    return [f.status for f in scan.findings if f.check_id == check_id and f.target.name == target]


@pytest.fixture(scope="module")
def scan(inventory: Inventory) -> ScanResult:
    return run_checks(inventory, default_catalog())


@pytest.mark.parametrize(("check_id", "target", "expected"), [
    ("VMS-DOM-001", "db01", Status.FAIL),  # seclabel type='none'
    ("VMS-DOM-001", "web01", Status.PASS),
    ("VMS-DOM-020", "web01", Status.FAIL),  # VNC on 0.0.0.0 (with a password: still exposed)
    ("VMS-DOM-020", "db01", Status.FAIL),
    ("VMS-DOM-020", "batch01", Status.PASS),  # loopback
    ("VMS-DOM-071", "db01", Status.FAIL),  # PCI hostdev
    ("VMS-DOM-072", "db01", Status.FAIL),  # USB hostdev
    ("VMS-DOM-101", "batch01", Status.FAIL),  # writes db01's disk without <shareable/>
    ("VMS-DOM-104", "web01", Status.PASS),  # LUKS
    ("VMS-DOM-104", "db01", Status.FAIL),
    ("VMS-DOM-122", "db01", Status.FAIL),  # macvtap passthrough
    ("VMS-NET-002", "trusting", Status.FAIL),  # trustGuestRxFilters='yes'
])
def test_catalogue_judges_the_collected_facts(scan: ScanResult, check_id: str, target: str,
                                              expected: Status) -> None:
    statuses = _statuses(scan, check_id, target)
    assert expected in statuses, statuses
    if expected is Status.PASS:
        assert Status.FAIL not in statuses


def test_catalogue_flags_the_floppy_drive(scan: ScanResult) -> None:
    subjects = {f.subject for f in scan.findings
                if f.check_id == "VMS-DOM-040" and f.target.name == "db01" and f.status is Status.FAIL}
    assert "disk devices/disk[2]" in subjects


def test_catalogue_flags_the_world_writable_pool(scan: ScanResult) -> None:
    [pool] = [f for f in scan.findings if f.check_id == "VMS-STO-001"]
    assert pool.status is Status.FAIL and "0777" in pool.message


def test_facts_the_driver_cannot_give_stay_unknown(scan: ScanResult) -> None:
    # No qemu.conf (host from the API only), no filter or secret listing: UNKNOWN, never PASS.
    for check_id in ("VMS-NET-004", "VMS-STO-003"):
        assert {f.status for f in scan.findings if f.check_id == check_id} == {Status.UNKNOWN}
    # db01's VNC on 0.0.0.0 without a passwd: without qemu.conf its documented defaults hold (no
    # vnc_password, vnc_sasl = 0, vnc_tls = 0) and the finding names them (docs/verdicts.md, class 3).
    assert _statuses(scan, "VMS-DOM-021", "db01") == [Status.FAIL]
    [vnc] = [f for f in scan.findings if f.check_id == "VMS-DOM-021" and f.target.name == "db01"]
    assert "qemu.conf was not read" in vnc.message and "vnc_sasl = 0" in vnc.message
    assert not [f for f in scan.findings if f.status is Status.ERROR], \
        [(f.check_id, f.message) for f in scan.findings if f.status is Status.ERROR]


# --- failures -------------------------------------------------------------------------------------


def test_unreachable_uri_is_a_clear_source_unavailable(tmp_path: Path) -> None:
    uri = f"test://{tmp_path}/missing-node.xml"
    with pytest.raises(SourceUnavailable) as raised:
        collect_libvirt(uri)
    assert uri in str(raised.value)
    assert "missing-node.xml" in str(raised.value.__cause__ or raised.value)


def test_oversized_domain_xml_is_recorded_and_the_scan_goes_on() -> None:
    # A node-file URI gets a private driver per connection, so this domain stays in this test.
    conn = libvirt.open(URI)
    try:
        huge = "x" * (9 * 1024 * 1024)
        conn.defineXML(f"""<domain type='test'><name>bloated</name><description>{huge}</description>
            <memory>65536</memory><os><type>hvm</type></os></domain>""")
        inv = collect_from_connection(conn, URI)
    finally:
        conn.close()
    assert sorted(d.name for d in inv.domains) == ["batch01", "db01", "web01"]
    [bad] = [r for r in inv.errors if r.source == f"{URI}#bloated"]
    assert bad.what == "domain XML" and "limit" in (bad.reason or "")


def test_missing_libvirt_python_is_source_unavailable() -> None:
    # A child interpreter where "import libvirt" fails, as on a machine without the extra.
    code = (
        "import sys; sys.modules['libvirt'] = None\n"
        "from vmsec.collectors.libvirt import collect_libvirt\n"
        "from vmsec.errors import SourceUnavailable\n"
        "try:\n    collect_libvirt('test:///default')\n"
        "except SourceUnavailable as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "libvirt-python is not installed: pip install 'vmsec[libvirt]'"
