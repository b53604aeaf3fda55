"""Any libvirt XML document → its fact, chosen by the root element."""

from __future__ import annotations

from collections.abc import Callable
from xml.etree.ElementTree import Element

from vmsec.errors import ReadError
from vmsec.facts import Domain, Network, NwFilter, Secret, StoragePool
from vmsec.parsers.domain_xml import domain_from_root, parse_as_libvirt
from vmsec.parsers.libvirt_objects import parse_network, parse_nwfilter, parse_pool, parse_secret

LibvirtObject = Domain | Network | NwFilter | StoragePool | Secret

_PARSERS: dict[str, Callable[[Element, str], Network | NwFilter | StoragePool | Secret]] = {
    "network": parse_network,
    "filter": parse_nwfilter,
    "pool": parse_pool,
    "secret": parse_secret,
}


def parse_libvirt_document(data: bytes | str | Element, origin: str, *, secure: bool = True) -> LibvirtObject:
    """Parse a domain, network, nwfilter, storage pool or secret document.

    Raises :class:`vmsec.errors.ReadError` naming ``origin`` for anything else or anything invalid.
    """
    # Read as libvirt reads it once here (attributes by local name), not again by the domain parser.
    root = parse_as_libvirt(data, origin)
    tag = root.tag
    if tag == "domain":
        return domain_from_root(root, origin, secure=secure)
    parser = _PARSERS.get(tag)
    if parser is None:
        raise ReadError(origin, f"not a libvirt domain, network, filter, pool or secret document "
                                f"(root element <{tag}>)")
    return parser(root, origin)
