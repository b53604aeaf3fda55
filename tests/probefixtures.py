"""The JSON verdict fixtures of the probe checks: what a probe recorded, as the real fact types.

A fixture ``tests/data/checks/VMS-PRB-NNN/NAME.PASS.json`` holds one probe inventory: an object with
``endpoints`` (what the probe saw, a list of :class:`~vmsec.facts.Endpoint`), optionally ``expected``
(the listeners the configuration predicts, :class:`~vmsec.facts.ExpectedListener`; absent or null: the
probe ran without configuration) and optionally ``probe`` (how it ran, :class:`~vmsec.facts.ProbeRun`):

```json
{"endpoints": [{"address": "192.0.2.10", "port": 5901, "state": "open", "protocol": "vnc",
                "vnc": {"version": "RFB 003.008", "security_types": [1]}}]}
```

It is decoded with ``msgspec.json.decode(data, type=ProbeFixture)`` into those fact types: a field the
facts do not have, a value of the wrong type or an unknown enum value is an error naming where it is
(``Object contains unknown field `tsl` - at `$.endpoints[0]```).

:func:`dump` writes an inventory in that format, leaving out every field at its default;
``tests/probe`` uses it to capture what the real probes record (``VMSEC_PROBE_CAPTURE=DIR``).

Tests import this module by name (``tests`` is on pytest's ``pythonpath``).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import msgspec

from vmsec.facts import Endpoint, ExpectedListener, Inventory, ProbeRun


class ProbeFixture(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    endpoints: tuple[Endpoint, ...]
    expected: tuple[ExpectedListener, ...] | None = None
    probe: ProbeRun | None = None


def load(path: Path) -> Inventory:
    """The inventory a probe fixture holds (``msgspec.ValidationError`` names a bad field)."""
    fixture = msgspec.json.decode(path.read_bytes(), type=ProbeFixture)
    return Inventory(endpoints=fixture.endpoints, expected=fixture.expected, probe=fixture.probe,
                     source=f"fixture {path.name}")


def compact(value: Any) -> Any:
    """JSON-able builtins of a fact, without the fields that are at their default."""
    if isinstance(value, msgspec.Struct):
        out: dict[str, Any] = {}
        for f in msgspec.structs.fields(value):
            item = getattr(value, f.name)
            default = f.default if f.default_factory is msgspec.NODEFAULT else f.default_factory()
            if default is not msgspec.NODEFAULT and item == default:
                continue
            out[f.encode_name] = compact(item)
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [compact(v) for v in value]
    return value


def dump(inventory: Inventory) -> str:
    """An inventory's endpoints, expected listeners and probe run in the fixture format."""
    doc: dict[str, Any] = {"endpoints": compact(inventory.endpoints)}
    if inventory.expected is not None:
        doc["expected"] = compact(inventory.expected)
    if inventory.probe is not None:
        doc["probe"] = compact(inventory.probe)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
