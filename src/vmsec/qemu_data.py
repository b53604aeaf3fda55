"""QEMU's own knowledge of its x86 CPU models and machine defaults, shipped as data.

``data/qemu-cpu-models-x86_64.json`` is generated from a real QEMU over QMP by
``scripts/gen_qemu_cpu_models.py`` (``query-cpu-definitions``, ``query-cpu-model-expansion``,
``query-machines``) and records the QEMU version it came from. Checks ask it what a named model
carries (``vmx``/``svm``, ``spec-ctrl`` …), which machine type QEMU picks when a domain names none,
and which CPU model a machine type starts when the domain names none — never a hand-kept list.
The test suite compares the file with the live QEMU (tests/checks/test_qemu_cpu_models.py).
"""

from __future__ import annotations

import json
import re
from functools import cache
from types import MappingProxyType
from typing import Any

from msgspec import Struct

from vmsec import DATA_DIR

__all__ = ["QemuX86Data", "x86_data"]

_FILE = "qemu-cpu-models-x86_64.json"
# Machine types of newer or distribution-patched QEMU builds than the recorded one start the same
# default CPU as their family (pc-q35-9.0, pc-i440fx-rhel7.6.0 …).
_FAMILIES = (re.compile(r"^(pc|q35|microvm|pc-(i440fx|q35)-.*|pc-[0-9.]+|xenfv.*)$"),)


class QemuX86Data(Struct, frozen=True):
    """What one QEMU release says about its x86 CPU models and machine types."""

    qemu_version: str
    package: str
    features: MappingProxyType[str, frozenset[str]]  # model -> features its full expansion turns on
    aliases: MappingProxyType[str, str]  # "EPYC" -> "EPYC-v1"
    default_machine: MappingProxyType[str, str]  # guest arch (x86_64, i686) -> machine type
    default_cpu: MappingProxyType[str, MappingProxyType[str, str]]  # arch -> machine -> CPU model

    @property
    def name(self) -> str:
        return f"QEMU {self.qemu_version}"

    @property
    def source(self) -> str:
        return f"QEMU {self.qemu_version} ({self.package})" if self.package else f"QEMU {self.qemu_version}"

    def model_features(self, model: str) -> frozenset[str] | None:
        """The features QEMU's named ``model`` turns on, or None for a model QEMU does not define."""
        return self.features.get(model)

    def machine_default(self, arch: str) -> str | None:
        """The machine type QEMU uses for ``arch`` when the domain names none (``pc`` on x86)."""
        return self.default_machine.get(_arch_key(arch))

    def cpu_default(self, arch: str, machine: str | None) -> str | None:
        """The CPU model QEMU starts for ``machine`` (or the default machine) when no model is named."""
        key = _arch_key(arch)
        table = self.default_cpu.get(key)
        if table is None:
            return None
        machine = machine or self.default_machine.get(key)
        if machine is None:
            return None
        if machine in table:
            return table[machine]
        if any(p.match(machine) for p in _FAMILIES):
            return table.get("pc")
        return None


def _arch_key(arch: str) -> str:
    return "i686" if arch in ("i686", "i386") else arch


@cache
def x86_data() -> QemuX86Data:
    """The shipped data (read once per process)."""
    raw: dict[str, Any] = json.loads((DATA_DIR / _FILE).read_text(encoding="utf-8"))
    prov = raw["provenance"]
    return QemuX86Data(
        qemu_version=prov["qemu"], package=prov.get("package", ""),
        features=MappingProxyType({n: frozenset(m["features"]) for n, m in raw["models"].items()}),
        aliases=MappingProxyType({n: m["alias_of"] for n, m in raw["models"].items() if "alias_of" in m}),
        default_machine=MappingProxyType({a: m["default_machine"] for a, m in raw["machines"].items()
                                          if m.get("default_machine")}),
        default_cpu=MappingProxyType({a: MappingProxyType(m["default_cpu"])
                                      for a, m in raw["machines"].items()}),
    )
