"""libvirt network, nwfilter, storage pool and secret XML → facts.

Single pass over each document's children, like :mod:`vmsec.parsers.domain_xml`. A secret's value
is never in its XML and is never read: only its metadata is.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from vmsec.errors import ReadError
from vmsec.facts import Network, NetworkIp, NwFilter, Secret, StoragePool
from vmsec.parsers.domain_xml import _bool, _c_int, _first_children, _pci_address, _text, parse_as_libvirt

# Pool types whose storage is reached over the network: the pool type names the protocol.
_NETWORK_POOLS = frozenset({"iscsi", "iscsi-direct", "rbd", "gluster", "sheepdog", "vstorage"})


# libvirt's network forward modes (virNetworkForwardType), compared as written
_FORWARD_MODES = frozenset({"nat", "route", "open", "bridge", "private", "vepa", "passthrough", "hostdev"})
_RULE_ACTIONS = frozenset({"drop", "accept", "reject", "return", "continue"})
_CHAINS = ("root", "mac", "vlan", "stp", "arp", "rarp", "ipv4", "ipv6")  # virNWFilterChainSuffix


def _root(data: bytes | str | Element, origin: str, expected: str) -> Element:
    """The document's root, read as libvirt reads it: an attribute by its local name whatever its
    namespace (libxml2's xmlGetProp, the first in the document)."""
    root = parse_as_libvirt(data, origin)
    if root.tag != expected:
        raise ReadError(origin, f"not a {expected} document (root element <{root.tag}>)")
    return root


def _name(root: Element, origin: str) -> str:
    for child in root:
        if child.tag == "name":
            name = _text(child)
            if name:
                return name
    raise ReadError(origin, f"<{root.tag}> has no <name>")


def _prefix_from_netmask(netmask: str) -> str:
    """``255.255.255.0`` → ``24``; anything that is not a contiguous IPv4 mask stays as written."""
    parts = netmask.split(".")
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() and int(p) < 256 for p in parts):
        return netmask
    bits = "".join(f"{int(p):08b}" for p in parts)
    ones = bits.count("1")
    return str(ones) if bits == "1" * ones + "0" * (32 - ones) else netmask


_NETWORK_PLURAL = frozenset({"ip", "route", "portgroup", "dns", "mac", "vlan"})


def parse_network(data: bytes | str | Element, origin: str) -> Network:
    root = _root(data, origin, "network")
    name = _name(root, origin)
    uuid = bridge = forward_mode = virtualport = None
    port_isolated = None
    devs: list[str] = []
    ips: list[NetworkIp] = []
    # libvirt reads one <forward>, <port>, <bridge> … (the first of each); every <ip>, <route> …
    for child in _first_children(root, _NETWORK_PLURAL):
        tag = child.tag
        if tag == "uuid":
            uuid = _text(child)
        elif tag == "bridge":
            bridge = child.get("name")
        elif tag == "forward":
            # A <forward/> without a mode is NAT, as libvirt reads it; a mode it does not know is an
            # error (virNetworkForwardTypeFromString, case and blanks included).
            mode = child.get("mode")
            if mode is not None and mode not in _FORWARD_MODES:
                raise ReadError(origin, f"unknown forward mode {mode!r}: libvirt refuses the network")
            forward_mode = mode or "nat"
            if child.get("dev"):
                devs.append(child.get("dev") or "")
            for sub in child:
                if sub.tag in ("interface", "pf") and sub.get("dev"):
                    dev = sub.get("dev") or ""
                    if dev not in devs:
                        devs.append(dev)
                elif sub.tag == "address":
                    address = _pci_address(sub)
                    if address:
                        devs.append(address)
        elif tag == "ip":
            prefix = child.get("prefix")
            netmask = child.get("netmask")
            if prefix is None and netmask:
                prefix = _prefix_from_netmask(netmask)
            dhcp = any(sub.tag == "dhcp" for sub in child)
            ips.append(NetworkIp(address=child.get("address"), prefix=prefix, family=child.get("family"),
                                 dhcp=dhcp))
        elif tag == "port":
            isolated = child.get("isolated")
            if isolated is not None and isolated not in ("yes", "no"):
                raise ReadError(origin, f"invalid value {isolated!r} for <port isolated>: libvirt refuses "
                                "the network")
            port_isolated = _bool(isolated)
        elif tag == "virtualport":
            virtualport = child.get("type")
    return Network(name=name, origin=origin, uuid=uuid, forward_mode=forward_mode, forward_devs=tuple(devs),
                   bridge=bridge, ips=tuple(ips),
                   trust_guest_rx_filters=_bool(root.get("trustGuestRxFilters")),
                   port_isolated=port_isolated, virtualport_type=virtualport)


def parse_nwfilter(data: bytes | str | Element, origin: str) -> NwFilter:
    root = _root(data, origin, "filter")
    name = root.get("name")
    if not name:
        raise ReadError(origin, "<filter> has no name attribute")
    chain = root.get("chain")
    if chain is not None and not (chain in _CHAINS or chain.startswith(tuple(f"{c}-" for c in _CHAINS))):
        raise ReadError(origin, f"invalid chain name {chain!r}: libvirt refuses the filter")
    uuid = None
    refs: list[str] = []
    rules = 0
    for child in root:
        tag = child.tag
        if tag == "rule":
            rules += 1
            action, priority = child.get("action"), child.get("priority")
            if action not in _RULE_ACTIONS:
                raise ReadError(origin, f"rule action {action!r}: libvirt refuses the filter")
            number = _c_int(priority) if priority is not None else 0
            if number is None or not -1000 <= number <= 1000:
                raise ReadError(origin, f"rule priority {priority!r} outside -1000…1000: libvirt refuses "
                                "the filter")
        elif tag == "filterref":
            ref = child.get("filter")
            if not ref:
                raise ReadError(origin, "<filterref> without a filter: libvirt refuses the filter")
            if ref == name:
                raise ReadError(origin, f"<filterref filter='{ref}'> refers to the filter itself: libvirt "
                                "refuses it (a loop)")
            refs.append(ref)
        elif tag == "uuid":
            uuid = _text(child)
    return NwFilter(name=name, origin=origin, uuid=uuid, chain=chain, references=tuple(refs),
                    rule_count=rules)


def _octal(text: str | None) -> int | None:
    if text is None or not text.isascii() or not text.isdigit() or not all(c in "01234567" for c in text):
        return None
    return int(text, 8)


def _pool_name(root: Element, origin: str) -> str:
    try:
        return _name(root, origin)
    except ReadError:
        # libvirt names a pool after its source (volume group, rbd pool …) when <name> is absent.
        for child in root:
            if child.tag == "source":
                for sub in child:
                    if sub.tag == "name":
                        name = _text(sub)
                        if name:
                            return name
        raise


def parse_pool(data: bytes | str | Element, origin: str) -> StoragePool:
    root = _root(data, origin, "pool")
    name = _pool_name(root, origin)
    ptype = root.get("type")
    uuid = path = owner = group = fmt = None
    mode: int | None = None
    hosts: list[str] = []
    for child in root:
        tag = child.tag
        if tag == "uuid":
            uuid = _text(child)
        elif tag == "source":
            for sub in child:
                if sub.tag == "host":
                    host = sub.get("name")
                    if host:
                        port = sub.get("port")
                        if ":" in host and port:
                            host = f"[{host}]"
                        hosts.append(f"{host}:{port}" if port else host)
                elif sub.tag == "format":
                    fmt = sub.get("type")
        elif tag == "target":
            for sub in child:
                if sub.tag == "path":
                    path = _text(sub)
                elif sub.tag == "permissions":
                    for perm in sub:
                        if perm.tag == "mode":
                            mode = _octal(_text(perm))
                        elif perm.tag == "owner":
                            owner = _text(perm)
                        elif perm.tag == "group":
                            group = _text(perm)
    protocol = None
    if ptype == "netfs":
        protocol = fmt
    elif ptype in _NETWORK_POOLS:
        protocol = ptype
    return StoragePool(name=name, origin=origin, type=ptype, uuid=uuid, target_path=path, mode=mode,
                       owner=owner, group=group, source_hosts=tuple(hosts), source_protocol=protocol)


def parse_secret(data: bytes | str | Element, origin: str) -> Secret:
    root = _root(data, origin, "secret")
    uuid = description = usage_type = usage_id = None
    for child in root:
        tag = child.tag
        if tag == "uuid":
            uuid = _text(child)
        elif tag == "description":
            description = _text(child)
        elif tag == "usage":
            usage_type = child.get("type")
            for sub in child:
                if sub.tag in ("volume", "name", "target"):
                    usage_id = _text(sub)
                    break
    return Secret(uuid=uuid, origin=origin, private=_bool(root.get("private")),
                  ephemeral=_bool(root.get("ephemeral")), usage_type=usage_type, usage_id=usage_id,
                  description=description)
