"""The libvirt network an interface or a listen address refers to, with one wording for every check
when it is not in the scanned inventory (the same situation gets the same answer)."""

from __future__ import annotations

from vmsec.checks.api import Environment
from vmsec.facts import Network

__all__ = ["network_or_reason"]


def network_or_reason(env: Environment, name: str | None) -> tuple[Network | None, str]:
    """The network named ``name`` and "", or None and why its definition is unknown."""
    if not name:
        return None, "a network element that names no network"
    net = env.inventory.network(name)
    if net is None:
        return None, f"network {name!r}, which is not in the scanned inventory"
    return net, ""
