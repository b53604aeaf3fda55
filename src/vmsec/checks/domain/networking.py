"""Guest network interfaces: anti-spoofing filters, guest-controlled receive filters, macvtap modes,
user-mode networking, host scripts, port isolation and guest forwarding channels.

Results are per interface (subject ``interface devices/interface[N]``). A domain without the kind
of interface a check is about yields nothing. VMS-DOM-126 (guestfwd) yields one per-VM PASS when a
VM uses user networking without any guestfwd channel, since only then is the PASS meaningful.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.network import network_or_reason
from vmsec.facts import Domain, Interface, Network, NwFilter

_REF_NWFILTER = "https://libvirt.org/formatnwfilter.html"
_REF_IFACES = "https://libvirt.org/formatdomain.html#network-interfaces"

# libvirt's built-in filters that stop a guest from spoofing MAC, IP or ARP identities.
ANTI_SPOOF_FILTERS = frozenset({
    "clean-traffic", "clean-traffic-gateway", "no-mac-spoofing", "no-ip-spoofing", "no-arp-spoofing",
    "no-arp-mac-spoofing", "no-arp-ip-spoofing",
})
# Bounds on following filter references: definitions come from the scanned host and may be hostile.
_MAX_FILTERS_VISITED = 256
_MAX_DEPTH = 16
# Forward modes where the guest's traffic leaves through macvtap or a VF, which nwfilter cannot see.
_NO_NWFILTER_MODES = frozenset({"hostdev", "passthrough", "private", "vepa"})


def _subject(iface: Interface) -> str:
    return f"interface {iface.locator}"


def _source(iface: Interface) -> str:
    return iface.source_network or iface.source_bridge or iface.source_dev or iface.type


def reaches_anti_spoof(name: str, filters: tuple[NwFilter, ...]) -> tuple[bool, tuple[str, ...]]:
    """Whether filter ``name`` is, or transitively references, an anti-spoofing filter.

    Returns the verdict and the names of referenced filters that are not defined. The walk is
    breadth-first, visits each filter once and stops after a fixed number of filters or levels.
    """
    by_name = {f.name: f for f in filters}
    seen = {name}
    frontier = [name]
    undefined: list[str] = []
    for _ in range(_MAX_DEPTH):
        following: list[str] = []
        for current in frontier:
            if current in ANTI_SPOOF_FILTERS:
                return True, ()
            definition = by_name.get(current)
            if definition is None:
                undefined.append(current)
                continue
            for ref in definition.references:
                if ref not in seen and len(seen) < _MAX_FILTERS_VISITED:
                    seen.add(ref)
                    following.append(ref)
        if not following:
            break
        frontier = following
    return False, tuple(undefined)


def bypasses_nwfilter(net: Network) -> bool:
    """True for networks whose guests attach through macvtap or a VF rather than a tap device."""
    if net.forward_mode in _NO_NWFILTER_MODES:
        return True
    # forward mode 'bridge' with a pool of devices and no bridge name is macvtap in bridge mode
    return net.forward_mode == "bridge" and net.bridge is None and bool(net.forward_devs)


def _network_of(iface: Interface, env: Environment) -> tuple[Network | None, str]:
    """The network a network-type interface is on, or None and (for a network the inventory lacks)
    the shared wording of why its definition is unknown."""
    if iface.type != "network":
        return None, ""
    return network_or_reason(env, iface.source_network)


@check("VMS-DOM-120", title="Bridged interfaces have an anti-spoofing filter", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "network", "nwfilter", "spoofing"),
       references=(_REF_NWFILTER, "https://libvirt.org/firewall.html"))
def anti_spoof_filter(dom: Domain, env: Environment) -> Iterator[Result]:
    """Without a filter, a guest on a shared bridge can send frames with another guest's MAC or IP
    address, answer ARP for it and take over its traffic. libvirt's `clean-traffic` filter (or
    `no-mac-spoofing`, `no-ip-spoofing`, `no-arp-spoofing`) prevents this. A custom filter counts
    when it references one of them, directly or through other filters; that needs the host's
    defined filters, so it is UNKNOWN when they could not be listed. An interface on a network the
    inventory lacks is UNKNOWN without a filter, as in VMS-DOM-125: the network's definition decides
    whether nwfilter applies (macvtap and VF networks bypass it).

    Remediation: Add `<filterref filter='clean-traffic'/>` (with `<parameter name='IP' …/>` where
    the address is static) to each bridge or network interface, or reference `clean-traffic` from
    your custom filter.
    """
    for iface in dom.interfaces:
        if iface.type not in ("bridge", "network"):
            continue
        net, missing = _network_of(iface, env)
        if net is not None and bypasses_nwfilter(net):
            continue
        subject = _subject(iface)
        name = iface.filterref
        where = ev(dom.origin, iface.locator + "/filterref/@filter", name)
        if not name and missing:
            yield unknown(subject, f"the interface has no <filterref> and is on {missing}: whether its guests"
                          " attach through a tap device that nwfilter can guard is unknown", where)
        elif not name:
            yield fail(subject, f"{iface.type} interface on {_source(iface)} has no <filterref>", where)
        elif name in ANTI_SPOOF_FILTERS:
            yield ok(subject, f"filter {name} blocks spoofing", where)
        elif env.inventory.nwfilters is None:
            yield unknown(subject, f"custom filter {name} cannot be followed: the host's network "
                          "filters were not listed", where)
        else:
            found, undefined = reaches_anti_spoof(name, env.inventory.nwfilters)
            if found:
                yield ok(subject, f"custom filter {name} includes an anti-spoofing filter", where)
            elif undefined:
                yield fail(subject, f"filter {name} includes no anti-spoofing filter among the defined "
                           f"ones; undefined: {', '.join(sorted(set(undefined))[:10])}", where)
            else:
                yield fail(subject, f"custom filter {name} includes no anti-spoofing filter", where)


@check("VMS-DOM-121", title="Interfaces do not trust guest receive filters", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "network", "spoofing"), references=(_REF_IFACES,))
def no_trust_guest_rx_filters(dom: Domain) -> Iterator[Result]:
    """With `trustGuestRxFilters='yes'` the host applies the MAC address and multicast filters the
    guest asks for to the macvtap device or SR-IOV VF, so the guest can change its MAC and receive
    traffic meant for others. libvirt's default is `no` for exactly that reason. The attribute has
    effect on direct, hostdev and network interfaces, which are the ones judged here.

    Remediation: Remove `trustGuestRxFilters='yes'` from the `<interface>`.
    """
    for iface in dom.interfaces:
        value = iface.trust_guest_rx_filters
        where = ev(dom.origin, iface.locator + "/@trustGuestRxFilters",
                   None if value is None else ("yes" if value else "no"))
        if value:
            yield fail(_subject(iface), f"{iface.type} interface trusts guest receive filters", where)
        elif iface.type in ("direct", "hostdev", "network"):
            state = "no" if value is False else "not set (default no)"
            yield ok(_subject(iface), f"trustGuestRxFilters is {state}", where)


@check("VMS-DOM-122", title="macvtap interfaces use vepa or private mode", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "network", "macvtap"), references=(_REF_IFACES,))
def macvtap_mode(dom: Domain) -> Iterator[Result]:
    """A direct (macvtap) interface in `passthrough` mode hands the guest the host NIC, which it can
    put into promiscuous mode (medium). In `bridge` mode, guests on the same NIC talk to each other
    inside the host, bypassing the ACLs of the external switch (low). `vepa` (the default) sends
    all traffic to the switch; `private` isolates guests from one another.

    Remediation: Use `mode='vepa'` (with a switch that does hairpinning) or `mode='private'` where
    guests must not reach each other, or a bridge with nwfilter.
    """
    for iface in dom.interfaces:
        if iface.type != "direct":
            continue
        mode = iface.source_mode or "vepa"
        where = ev(dom.origin, iface.locator + "/source/@mode", iface.source_mode)
        dev = iface.source_dev or "?"
        if mode == "passthrough":
            yield fail(_subject(iface), f"macvtap on {dev} in passthrough mode: the guest owns the NIC",
                       where)
        elif mode == "bridge":
            yield fail(_subject(iface), f"macvtap on {dev} in bridge mode: guests on it bypass the "
                       "external switch", where, severity=Severity.LOW)
        else:
            shown = mode if iface.source_mode else "vepa (default)"
            yield ok(_subject(iface), f"macvtap on {dev} in {shown} mode", where)


@check("VMS-DOM-123", title="User-mode networking uses the passt backend", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "network", "slirp"),
       references=(_REF_IFACES, "https://www.cve.org/CVERecord?id=CVE-2019-14378",
                   "https://www.cve.org/CVERecord?id=CVE-2020-7039"))
def user_net_passt(dom: Domain) -> Iterator[Result]:
    """User-mode networking with the default backend runs libslirp inside the QEMU process, parsing
    guest packets with a long record of memory-safety bugs (CVE-2019-6778, CVE-2019-14378,
    CVE-2020-7039). passt does the same job in a separate, sandboxed process.

    Remediation: Add `<backend type='passt'/>` to the interface, or use a bridge or network
    interface.
    """
    for iface in dom.interfaces:
        if iface.type != "user":
            continue
        where = ev(dom.origin, iface.locator + "/backend/@type", iface.backend_type)
        if iface.backend_type == "passt":
            yield ok(_subject(iface), "user networking uses the passt backend", where)
        else:
            yield fail(_subject(iface), "user networking runs SLiRP inside QEMU "
                       f"(backend {iface.backend_type or 'default'})", where)


@check("VMS-DOM-124", title="Ethernet interfaces run no host scripts", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "network", "scripts"),
       references=(_REF_IFACES, "https://libvirt.org/drvqemu.html"))
def no_interface_scripts(dom: Domain) -> Iterator[Result]:
    """`<script path=…>` and `<downscript>` on an ethernet interface make libvirt run an arbitrary
    host program when the interface comes up or goes away; libvirt marks such domains tainted
    (`shell-scripts`). Whoever can edit the domain XML or the script gets code running on the host.

    Remediation: Use a managed network or a bridge interface; do host-side plumbing in the network
    configuration, not in per-VM scripts.
    """
    for iface in dom.interfaces:
        if iface.type != "ethernet":
            continue
        scripts = [(tag, value) for tag, value in (("script", iface.script),
                                                   ("downscript", iface.downscript)) if value]
        if scripts:
            evidence = [ev(dom.origin, f"{iface.locator}/{tag}/@path", value) for tag, value in scripts]
            named = ", ".join(f"{tag} {value}" for tag, value in scripts)
            yield fail(_subject(iface), f"ethernet interface runs host scripts: {named}", *evidence)
        else:
            yield ok(_subject(iface), "ethernet interface runs no script",
                     ev(dom.origin, iface.locator + "/script", "absent"))


@check("VMS-DOM-125", title="Guest ports on shared bridges are isolated", severity=Severity.LOW,
       tags=(Tag.ISOLATION, "network", "multi-tenant"), references=(_REF_IFACES,))
def port_isolated(dom: Domain, env: Environment) -> Iterator[Result]:
    """`<port isolated='yes'/>` stops guests on the same bridge from exchanging traffic directly;
    they reach only the uplink. Tenants that need not talk to each other should not share a
    broadcast domain. Only evaluated for multi-tenant profiles. For a network interface, the
    network's own `<port isolated='yes'/>` applies when the interface sets nothing, so the network
    definition is needed.

    Remediation: Add `<port isolated='yes'/>` to the interface, or to the `<network>` to cover all
    its ports.
    """
    if not env.multi_tenant:
        return
    for iface in dom.interfaces:
        if iface.type not in ("bridge", "network"):
            continue
        subject = _subject(iface)
        where = ev(dom.origin, iface.locator + "/port/@isolated",
                   None if iface.port_isolated is None else ("yes" if iface.port_isolated else "no"))
        if iface.port_isolated:
            yield ok(subject, "the port is isolated", where)
            continue
        if iface.port_isolated is None and iface.type == "network":
            net, missing = _network_of(iface, env)
            if net is None:
                yield unknown(subject, f"the interface sets no port isolation and is on {missing}: whether "
                              "the network isolates its ports is unknown", where)
                continue
            if bypasses_nwfilter(net):
                continue
            if net.port_isolated:
                yield ok(subject, f"network {net.name} isolates its ports",
                         ev(net.origin, "port/@isolated", "yes"))
                continue
        yield fail(subject, f"port on {_source(iface)} is not isolated from other guests", where)


@check("VMS-DOM-126", title="No guestfwd channel reaches host services", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "network", "slirp"), references=(_REF_IFACES,))
def no_guestfwd(dom: Domain) -> Iterator[Result]:
    """A `guestfwd` channel forwards connections the guest makes to a user-network address to a
    host-side socket or TCP service, so the guest reaches something on the host that the network
    would otherwise not expose.

    Remediation: Remove the `<channel>` with `<target type='guestfwd'>`; expose the service on a
    network the guest is meant to reach instead.
    """
    channels = [c for c in dom.chardevs if c.target_type == "guestfwd"]
    for chan in channels:
        dest = chan.source_path or ":".join(p for p in (chan.source_host, chan.source_service) if p)
        yield fail(f"channel {chan.locator}", f"guestfwd channel forwards guest connections to "
                   f"host {chan.type} {dest or '?'}", ev(dom.origin, chan.locator + "/target/@type",
                                                        "guestfwd"))
    if not channels and any(i.type == "user" for i in dom.interfaces):
        yield ok("guestfwd channels", "user networking is used without guestfwd channels",
                 ev(dom.origin, "devices/channel/target/@type", "no guestfwd"))


__all__ = ["ANTI_SPOOF_FILTERS", "anti_spoof_filter", "bypasses_nwfilter", "macvtap_mode", "no_guestfwd",
           "no_interface_scripts", "no_trust_guest_rx_filters", "port_isolated", "reaches_anti_spoof",
           "user_net_passt"]
