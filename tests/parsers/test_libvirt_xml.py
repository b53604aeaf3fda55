"""Networks, nwfilters, storage pools, secrets, and the root-element dispatcher, on real corpus files."""

from __future__ import annotations

import pytest

from datapaths import LIBVIRT_CORPUS as CORPUS
from vmsec.errors import ReadError
from vmsec.facts import Domain, Network, NetworkIp, NwFilter, Secret, StoragePool
from vmsec.parsers.libvirt_objects import parse_network, parse_nwfilter, parse_pool, parse_secret
from vmsec.parsers.libvirt_xml import parse_libvirt_document


def _read(rel: str) -> tuple[bytes, str]:
    path = CORPUS / rel
    return path.read_bytes(), str(path)


def test_nat_network() -> None:
    net = parse_network(*_read("networkxml2xmlin/nat-network.xml"))
    assert (net.name, net.forward_mode, net.forward_devs, net.bridge) == (
        "default", "nat", ("eth1",), "virbr0")
    assert net.ips[0] == NetworkIp(address="192.168.122.1", prefix="24", family=None, dhcp=True)
    assert net.ips[2] == NetworkIp(address="2001:db8:ac10:fe01::1", prefix="64", family="ipv6")
    assert net.active is None and net.autostart is None  # offline XML cannot tell


@pytest.mark.parametrize(("rel", "mode", "devs"), [
    ("networkxml2xmlin/isolated-network.xml", None, ()),
    ("networkxml2xmlin/direct-net.xml", "bridge", ("eth10",)),
    ("networkxml2xmlin/passthrough-pf.xml", "passthrough", ("eth0",)),
    ("networkxml2xmlin/hostdev-pf.xml", "hostdev", ("eth2",)),
    ("networkxml2xmlin/hostdev.xml", "hostdev", ("0000:03:00.1", "0000:03:00.2", "0000:03:00.3")),
])
def test_forward_modes(rel: str, mode: str | None, devs: tuple[str, ...]) -> None:
    net = parse_network(*_read(rel))
    assert net.forward_mode == mode
    assert net.forward_devs[:3] == devs


def test_network_isolation_and_virtualport() -> None:
    assert parse_network(*_read("networkxml2xmlin/isolated-ports.xml")).port_isolated is True
    assert parse_network(*_read("networkxml2xmlin/openvswitch-net.xml")).virtualport_type == "openvswitch"
    assert parse_network("<network><name>n</name><forward/></network>", "n.xml").forward_mode == "nat"
    trusting = parse_network("<network trustGuestRxFilters='yes'><name>n</name></network>", "n.xml")
    assert trusting.trust_guest_rx_filters is True


def test_nwfilter() -> None:
    flt = parse_nwfilter(*_read("nwfilterxml2xmlin/ref-rule-test.xml"))
    assert (flt.name, flt.uuid, flt.references) == ("testcase", "83011800-f663-96d6-8841-fd836b4318c6",
                                                   ("clean-traffic",))
    assert flt.rule_count == 3
    assert parse_nwfilter(*_read("nwfilterxml2xmlin/ref-test.xml")).rule_count == 0


def test_pools() -> None:
    pool = parse_pool(*_read("storagepoolxml2xmlin/pool-dir.xml"))
    assert (pool.type, pool.target_path, pool.mode, pool.owner, pool.group) == (
        "dir", "///var/////lib/libvirt/images//", 0o700, "-1", "-1")
    nfs = parse_pool(*_read("storagepoolxml2xmlin/pool-netfs.xml"))
    assert (nfs.source_protocol, nfs.source_hosts, nfs.mode) == ("nfs", ("localhost",), 0o700)
    rbd = parse_pool(*_read("storagepoolxml2xmlin/pool-rbd-ipv6.xml"))
    assert rbd.source_protocol == "rbd"
    assert rbd.source_hosts == ("localhost:6789", "localhost:6790", "[2205::192:168:205:141]:6789")
    # libvirt names a logical pool after its volume group when <name> is missing.
    assert parse_pool(*_read("storagepoolxml2xmlin/pool-logical-noname.xml")).name == "zily"


def test_pool_mode_that_is_not_octal_is_unknown() -> None:
    xml = ("<pool type='dir'><name>p</name>"
           "<target><permissions><mode>0789</mode></permissions></target></pool>")
    assert parse_pool(xml, "p.xml").mode is None


def test_secrets() -> None:
    sec = parse_secret(*_read("secretxml2xmlin/usage-vtpm.xml"))
    assert sec == Secret(uuid="aa6c7af2-45a7-477c-85a2-fe86d9f2514e", origin=sec.origin, private=True,
                         ephemeral=False, usage_type="vtpm", usage_id="vTPMvTPMvTPM",
                         description="vTPM secret")
    tls = parse_secret(*_read("secretxml2xmlin/usage-tls.xml"))
    assert (tls.private, tls.usage_type) == (False, "tls")
    vol = parse_secret(*_read("secretxml2xmlin/usage-volume.xml"))
    assert vol.usage_id == "/var/lib/libvirt/images/image.img"


@pytest.mark.parametrize(("rel", "kind"), [
    ("qemuxml2argvdata/minimal.xml", Domain),
    ("networkxml2xmlin/nat-network.xml", Network),
    ("nwfilterxml2xmlin/example-1.xml", NwFilter),
    ("storagepoolxml2xmlin/pool-iscsi.xml", StoragePool),
    ("secretxml2xmlin/usage-ceph.xml", Secret),
])
def test_dispatch_on_root_element(rel: str, kind: type) -> None:
    assert isinstance(parse_libvirt_document(*_read(rel)), kind)


def test_dispatch_passes_the_secure_flag() -> None:
    dom = parse_libvirt_document(*_read("qemuxml2argvdata/graphics-vnc.xml"), secure=False)
    assert isinstance(dom, Domain) and dom.secure_xml is False


def test_dispatch_refuses_other_documents() -> None:
    with pytest.raises(ReadError) as err:
        parse_libvirt_document(*_read("storagevolxml2xmlin/vol-file.xml"))
    assert err.value.reason == ("not a libvirt domain, network, filter, pool or secret document "
                                "(root element <volume>)")


@pytest.mark.parametrize(("xml", "reason"), [
    ("<network/>", "<network> has no <name>"),
    ("<filter/>", "<filter> has no name attribute"),
    ("<pool type='dir'/>", "<pool> has no <name>"),
    ("<pool/>", "<pool> has no <name>"),
])
def test_objects_without_names(xml: str, reason: str) -> None:
    with pytest.raises(ReadError) as err:
        parse_libvirt_document(xml, "x.xml")
    assert err.value.reason == reason


# --- network and nwfilter XML as libvirt 9.0 reads it (test:///default and a private libvirtd) -------

@pytest.mark.parametrize(("xml", "mode", "isolated", "trust"), [
    # a child libvirt reads once is the first of its name (virXPathNode "./forward[1]")
    ("<network><name>n</name><forward mode='open'/><forward mode='nat'/></network>", "open", None, None),
    ("<network><name>n</name><forward mode='nat'/><forward mode='vepa'><interface dev='eth0'/></forward>"
     "</network>", "nat", None, None),
    ("<network><name>n</name><port isolated='no'/><port isolated='yes'/></network>", None, False, None),
    # xmlGetProp matches an attribute whatever its namespace, the first in the document
    ("<network xmlns:x='urn:x' x:trustGuestRxFilters='yes'><name>n</name></network>", None, None, True),
    ("<network xmlns:x='urn:x'><name>n</name><port x:isolated='no' isolated='yes'/></network>",
     None, False, None),
])
def test_network_read_as_libvirt_reads_it(xml: str, mode: str | None, isolated: bool | None,
                                          trust: bool | None) -> None:
    net = parse_network(xml, "n.xml")
    assert (net.forward_mode, net.port_isolated, net.trust_guest_rx_filters) == (mode, isolated, trust)


@pytest.mark.parametrize(("xml", "reason"), [
    ("<network><name>n</name><forward mode='OPEN'/></network>", "forward mode"),
    ("<network><name>n</name><forward mode=' open'/></network>", "forward mode"),
    ("<network><name>n</name><port isolated='true'/></network>", "isolated"),
    ("<filter name='f' chain='root'><rule action='bogus' direction='in'/></filter>", "action"),
    ("<filter name='f' chain='root'><rule action='accept' direction='in' priority='-2000'/></filter>",
     "priority"),
    ("<filter name='f' chain='root'><filterref/></filter>", "filterref"),
    ("<filter name='f' chain='root'><filterref filter='f'/></filter>", "itself"),
    # virNWFilterDefParseXML: a chain is a known one, or one of them with a "-suffix"
    ("<filter name='f' chain='bogus'><rule action='accept' direction='in'/></filter>", "chain"),
])
def test_documents_libvirt_refuses_are_refused(xml: str, reason: str) -> None:
    parse = parse_network if xml.startswith("<network") else parse_nwfilter
    with pytest.raises(ReadError, match=reason):
        parse(xml, "x.xml")


def test_nwfilter_reference_with_a_namespaced_attribute() -> None:
    f = parse_nwfilter("<filter name='custom' chain='root' xmlns:x='urn:x'>"
                       "<filterref x:filter='allow-all' filter='clean-traffic'/></filter>", "f.xml")
    assert f.references == ("allow-all",)
