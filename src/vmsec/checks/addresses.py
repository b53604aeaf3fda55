"""Listen-address helpers shared by the console, chardev and migration checks."""

from __future__ import annotations

import ipaddress

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 (and its IPv4-mapped form) and the usual localhost names.
    Any other name may resolve to anything, so it counts as non-loopback."""
    text = address.strip().strip("[]").lower()
    if text in _LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_wildcard(address: str) -> bool:
    """0.0.0.0 or :: — every interface."""
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_unspecified
    except ValueError:
        return False
