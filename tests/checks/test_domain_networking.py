"""Guest interface checks (VMS-DOM-120…126), called directly on facts built here."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from vmsec.checks.api import Environment, Result
from vmsec.checks.domain.networking import (
    anti_spoof_filter,
    macvtap_mode,
    no_guestfwd,
    no_interface_scripts,
    no_trust_guest_rx_filters,
    port_isolated,
    reaches_anti_spoof,
    user_net_passt,
)
from vmsec.facts import Chardev, Domain, Interface, Inventory, Network, NwFilter
from vmsec.findings import Severity, Status


def dom(*ifaces: Interface, chardevs: tuple[Chardev, ...] = ()) -> Domain:
    return Domain(name="vm", origin="vm.xml", interfaces=ifaces, chardevs=chardevs)


def iface(type_: str = "bridge", **kw: object) -> Interface:
    if type_ == "bridge":
        kw.setdefault("source_bridge", "br0")
    if type_ == "network":
        kw.setdefault("source_network", "default")
    return Interface(locator="devices/interface[1]", type=type_, **kw)  # type: ignore[arg-type]


def env(nwfilters: tuple[NwFilter, ...] | None = None, networks: tuple[Network, ...] = (),
        multi_tenant: bool = True) -> Environment:
    inv = Inventory(nwfilters=nwfilters, networks=networks)
    return Environment(inventory=inv, host=None, multi_tenant=multi_tenant)


def statuses(results: Iterable[Result]) -> list[Status]:
    return [r.status for r in results]


def flt(name: str, *refs: str) -> NwFilter:
    return NwFilter(name=name, origin=f"/etc/libvirt/nwfilter/{name}.xml", references=refs)


# ---- anti-spoofing filters --------------------------------------------------------------------

CUSTOM = (flt("tenant-a", "allow-dhcp", "tenant-base"), flt("tenant-base", "clean-traffic"),
          flt("allow-dhcp"), flt("lonely", "allow-dhcp"), flt("loop-a", "loop-b"), flt("loop-b", "loop-a"))


@pytest.mark.parametrize(("name", "found", "undefined"), [
    ("clean-traffic", True, ()),
    ("tenant-a", True, ()),  # two levels down
    ("lonely", False, ()),
    ("loop-a", False, ()),  # a reference cycle ends
    ("ghost", False, ("ghost",)),
])
def test_reaches_anti_spoof(name: str, found: bool, undefined: tuple[str, ...]) -> None:
    assert reaches_anti_spoof(name, CUSTOM) == (found, undefined)


def test_reaches_anti_spoof_is_bounded_on_a_long_chain() -> None:
    chain = (*(flt(f"f{i}", f"f{i + 1}") for i in range(1000)), flt("f1000", "clean-traffic"))
    found, _ = reaches_anti_spoof("f0", chain)
    assert found is False  # too deep to follow: not credited


@pytest.mark.parametrize(("i", "filters", "networks", "expected"), [
    (iface(), CUSTOM, (), [Status.FAIL]),
    (iface(filterref="clean-traffic"), None, (), [Status.PASS]),
    (iface(filterref="no-mac-spoofing"), None, (), [Status.PASS]),
    (iface(filterref="tenant-a"), None, (), [Status.UNKNOWN]),
    (iface(filterref="tenant-a"), CUSTOM, (), [Status.PASS]),
    (iface(filterref="lonely"), CUSTOM, (), [Status.FAIL]),
    (iface(filterref="ghost"), CUSTOM, (), [Status.FAIL]),
    # A network the inventory lacks: UNKNOWN, as VMS-DOM-125 says for the same interface.
    (iface("network"), CUSTOM, (), [Status.UNKNOWN]),
    (iface("network", filterref="clean-traffic"), CUSTOM, (), [Status.PASS]),
    # a macvtap network: nwfilter does not apply
    (iface("network", source_network="mv"), CUSTOM,
     (Network(name="mv", origin="mv.xml", forward_mode="bridge", forward_devs=("eth0",)),), []),
    (iface("network", source_network="hb"), CUSTOM,
     (Network(name="hb", origin="hb.xml", forward_mode="bridge", bridge="br0"),), [Status.FAIL]),
    (iface("network", source_network="pf"), CUSTOM,
     (Network(name="pf", origin="pf.xml", forward_mode="hostdev"),), []),
    (iface("direct", source_dev="eth0"), CUSTOM, (), []),
    (iface("user"), CUSTOM, (), []),
])
def test_anti_spoof_filter(i: Interface, filters: tuple[NwFilter, ...] | None,
                           networks: tuple[Network, ...], expected: list[Status]) -> None:
    assert statuses(anti_spoof_filter(dom(i), env(filters, networks))) == expected


# ---- guest receive filters, macvtap, user, ethernet ---------------------------------------------

@pytest.mark.parametrize(("i", "expected"), [
    (iface("direct", source_dev="eth0", trust_guest_rx_filters=True), [Status.FAIL]),
    (iface("direct", source_dev="eth0", trust_guest_rx_filters=False), [Status.PASS]),
    (iface("direct", source_dev="eth0"), [Status.PASS]),
    (iface("hostdev", trust_guest_rx_filters=True), [Status.FAIL]),
    (iface("bridge"), []),
])
def test_trust_guest_rx_filters(i: Interface, expected: list[Status]) -> None:
    assert statuses(no_trust_guest_rx_filters(dom(i))) == expected


@pytest.mark.parametrize(("mode", "status", "severity"), [
    ("passthrough", Status.FAIL, None), ("bridge", Status.FAIL, Severity.LOW),
    ("vepa", Status.PASS, None), ("private", Status.PASS, None), (None, Status.PASS, None),
])
def test_macvtap_mode(mode: str | None, status: Status, severity: Severity | None) -> None:
    (result,) = macvtap_mode(dom(iface("direct", source_dev="eth0", source_mode=mode)))
    assert (result.status, result.severity) == (status, severity)


@pytest.mark.parametrize(("backend", "expected"), [("passt", Status.PASS), (None, Status.FAIL),
                                                   ("default", Status.FAIL)])
def test_user_net_passt(backend: str | None, expected: Status) -> None:
    assert statuses(user_net_passt(dom(iface("user", backend_type=backend)))) == [expected]


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, Status.PASS), ({"script": "/etc/qemu-ifup"}, Status.FAIL),
    ({"downscript": "/etc/qemu-ifdown"}, Status.FAIL),
])
def test_interface_scripts(kw: dict[str, str], expected: Status) -> None:
    results = list(no_interface_scripts(dom(iface("ethernet", **kw))))
    assert statuses(results) == [expected]
    if expected is Status.FAIL:
        assert results[0].evidence[0].locator.endswith("script/@path")


# ---- port isolation ---------------------------------------------------------------------------

ISOLATED_NET = Network(name="default", origin="default.xml", forward_mode="nat", port_isolated=True)
OPEN_NET = Network(name="default", origin="default.xml", forward_mode="nat")


@pytest.mark.parametrize(("i", "networks", "multi_tenant", "expected"), [
    (iface(port_isolated=True), (), True, [Status.PASS]),
    (iface(), (), True, [Status.FAIL]),
    (iface(), (), False, []),
    (iface("network"), (ISOLATED_NET,), True, [Status.PASS]),
    (iface("network"), (OPEN_NET,), True, [Status.FAIL]),
    (iface("network"), (), True, [Status.UNKNOWN]),
    (iface("network", port_isolated=False), (ISOLATED_NET,), True, [Status.FAIL]),  # explicit no wins
])
def test_port_isolated(i: Interface, networks: tuple[Network, ...], multi_tenant: bool,
                       expected: list[Status]) -> None:
    assert statuses(port_isolated(dom(i), env(networks=networks, multi_tenant=multi_tenant))) == expected


# ---- guestfwd ---------------------------------------------------------------------------------

GUESTFWD = Chardev(locator="devices/channel[1]", element="channel", type="tcp", source_host="127.0.0.1",
                   source_service="5432", target_type="guestfwd")


@pytest.mark.parametrize(("d", "expected"), [
    (dom(iface("user"), chardevs=(GUESTFWD,)), [Status.FAIL]),
    (dom(iface("user")), [Status.PASS]),
    (dom(iface("bridge")), []),
])
def test_guestfwd(d: Domain, expected: list[Status]) -> None:
    results = list(no_guestfwd(d))
    assert statuses(results) == expected
    if expected == [Status.FAIL]:
        assert "127.0.0.1:5432" in results[0].message


def test_unknown_network_gets_the_same_answer_in_every_check() -> None:
    """Class 4: an interface on a network that is not in the inventory, judged by two checks."""
    i = iface("network", source_network="tenants")
    e = Environment(inventory=Inventory(nwfilters=CUSTOM), host=None, multi_tenant=True)
    spoof = list(anti_spoof_filter(dom(i), e))
    isolation = list(port_isolated(dom(i), e))
    assert [r.status for r in spoof] == [r.status for r in isolation] == [Status.UNKNOWN]
    assert all("network 'tenants', which is not in the scanned inventory" in r.message
               for r in spoof + isolation)
