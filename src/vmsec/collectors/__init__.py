"""Collectors: transports that read a target and turn what they read into facts.

Listed in one explicit mapping; each is imported only when used, so optional heavy dependencies
(libvirt-python) are needed only by the collector that uses them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import cast

from vmsec.facts import Inventory

COLLECTORS: Mapping[str, str] = {
    "host": "vmsec.collectors.host:collect_host_inventory",
    "libvirt": "vmsec.collectors.libvirt:collect_libvirt",
    "xml": "vmsec.collectors.xml:collect_xml",
    "rootfs": "vmsec.collectors.rootfs:collect_rootfs",
    "image": "vmsec.collectors.image:collect_images",
}


def get_collector(name: str) -> Callable[..., Inventory]:
    module_name, _, attr = COLLECTORS[name].partition(":")
    module = importlib.import_module(module_name)
    return cast(Callable[..., Inventory], getattr(module, attr))


