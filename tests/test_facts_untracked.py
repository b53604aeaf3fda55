"""Facts are not tracked by Python's cycle collector (``gc=False``, see vmsec.facts): a large scan keeps
every domain's facts, and the collector walking them was a tenth of a 30,000-domain scan."""

from __future__ import annotations

import gc
import inspect

import msgspec

import vmsec.facts
from datapaths import LIBVIRT_CORPUS
from vmsec.collectors.xml import collect_xml


def _fact_classes() -> list[type[msgspec.Struct]]:
    return [obj for _, obj in inspect.getmembers(vmsec.facts, inspect.isclass)
            if issubclass(obj, msgspec.Struct) and obj.__module__.startswith("vmsec.facts.")]


def test_every_fact_class_is_untracked() -> None:
    classes = _fact_classes()
    assert len(classes) > 50, "the fact classes were found"
    assert sorted(c.__name__ for c in classes if c.__struct_config__.gc) == []


def test_collected_facts_are_not_in_the_collectors_view() -> None:
    files = sorted(str(p) for p in (LIBVIRT_CORPUS / "qemuxml2argvdata").glob("*.xml"))[:50]
    inventory = collect_xml(files)
    assert inventory.domains, "the corpus gave domains"
    assert not gc.is_tracked(inventory)
    for domain in inventory.domains:
        assert not gc.is_tracked(domain)
        assert not any(gc.is_tracked(d) for d in domain.disks)
