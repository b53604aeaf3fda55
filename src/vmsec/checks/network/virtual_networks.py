"""libvirt virtual networks and the network filters guests rely on.

Network-scope checks yield one result per network (subject ``forward``, ``trustGuestRxFilters`` or
``port``). VMS-NET-004 is inventory-scoped: it judges the host's set of defined filters and yields
nothing for an offline XML scan without a host, where no filters are expected.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.domain.networking import bypasses_nwfilter
from vmsec.facts import Inventory, Network
from vmsec.results import host_target

_REF_NETWORK = "https://libvirt.org/formatnetwork.html"
_REF_NWFILTER = "https://libvirt.org/formatnwfilter.html"
# Forward modes where guests share a bridge or a routed segment that libvirt controls.
_BRIDGED_MODES = frozenset({None, "nat", "route", "open", "bridge"})


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


@check("VMS-NET-001", title="Virtual networks keep a firewall boundary (no forward mode 'open')",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "network", "firewall"),
       references=(_REF_NETWORK, "https://libvirt.org/firewall.html"))
def no_open_forward(net: Network) -> Iterator[Result]:
    """For `nat` and `route` networks libvirt installs firewall rules that let guests out and keep
    unsolicited traffic away; with `<forward mode='open'/>` it installs none, so guests and the
    outside reach each other (and the host) according to whatever the host's own firewall happens
    to allow.

    Remediation: Use `mode='nat'` or `mode='route'`, or keep an explicit host firewall for the
    network's bridge and document it (then waive this finding).
    """
    mode = net.forward_mode
    where = ev(net.origin, "forward/@mode", mode)
    if mode == "open":
        yield fail("forward", f"network {net.name} forwards in open mode: libvirt adds no firewall rules",
                   where)
    else:
        yield ok("forward", f"network {net.name} forward mode is {mode or 'none (isolated)'}", where)


@check("VMS-NET-002", title="Virtual networks do not trust guest receive filters",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "network", "spoofing"),
       references=(_REF_NETWORK,))
def network_no_trust_rx(net: Network) -> Iterator[Result]:
    """`trustGuestRxFilters='yes'` on a network applies to every interface connected to it that
    does not override it: the host then honours the MAC address and multicast filters each guest
    asks for, letting guests change their MAC and receive traffic meant for others.

    Remediation: Remove `trustGuestRxFilters='yes'` from the `<network>`.
    """
    where = ev(net.origin, "network/@trustGuestRxFilters", _yes_no(net.trust_guest_rx_filters))
    if net.trust_guest_rx_filters:
        yield fail("trustGuestRxFilters", f"network {net.name} trusts guest receive filters", where)
    else:
        yield ok("trustGuestRxFilters", f"network {net.name} does not trust guest receive filters", where)


@check("VMS-NET-003", title="Virtual networks isolate guest ports", severity=Severity.LOW,
       tags=(Tag.ISOLATION, "network", "multi-tenant"), references=(_REF_NETWORK,))
def network_ports_isolated(net: Network, env: Environment) -> Iterator[Result]:
    """`<port isolated='yes'/>` on a bridged network keeps its guests from exchanging traffic with
    each other directly; they only reach the uplink. On a host shared by tenants, guests of
    different tenants should not share a broadcast domain. Only evaluated for multi-tenant profiles
    and bridge-based forward modes (macvtap and hostdev networks use other mechanisms).

    Remediation: Add `<port isolated='yes'/>` to the `<network>` (or per interface), or give each
    tenant its own network.
    """
    if not env.multi_tenant or net.forward_mode not in _BRIDGED_MODES or bypasses_nwfilter(net):
        return
    where = ev(net.origin, "port/@isolated", _yes_no(net.port_isolated))
    if net.port_isolated:
        yield ok("port", f"network {net.name} isolates its ports", where)
    else:
        yield fail("port", f"guests on network {net.name} can reach each other directly", where)


@check("VMS-NET-004", title="The built-in clean-traffic filter is defined", severity=Severity.MEDIUM,
       tags=(Tag.CONFIGURATION, "network", "nwfilter"), references=(_REF_NWFILTER,))
def clean_traffic_defined(inv: Inventory, env: Environment) -> Iterator[Result]:
    """libvirt ships `clean-traffic` and the `no-*-spoofing` filters it is built from. When the
    definition is missing (deleted, or the nwfilter driver's files were not installed), interfaces
    that reference it fail to start or cannot be protected, and administrators fall back to no
    filtering at all. UNKNOWN when the host's filters could not be listed.

    Remediation: Reinstall the libvirt package that provides `/etc/libvirt/nwfilter/*.xml` (for
    example libvirt-daemon-config-nwfilter) and restart the nwfilter daemon.
    """
    filters = inv.nwfilters
    target = host_target(env.host)
    if filters is None:
        if env.host is not None:
            yield unknown("nwfilter clean-traffic", "the host's network filters could not be listed",
                          target=target)
        return
    for flt in filters:
        if flt.name == "clean-traffic":
            yield ok("nwfilter clean-traffic", "the clean-traffic filter is defined",
                     ev(flt.origin, "filter/@name", flt.name), target=target)
            return
    yield fail("nwfilter clean-traffic", f"clean-traffic is not among the {len(filters)} defined "
               "network filters", ev(inv.source or "nwfilters", "filter/@name", "clean-traffic absent"),
               target=target)


__all__ = ["clean_traffic_defined", "network_no_trust_rx", "network_ports_isolated", "no_open_forward"]
