"""Fleet inventories: the YAML file that lists every target of a fleet scan.

```yaml
defaults:
  hypervisor_limit: 4      # targets of one hypervisor scanned at once (across every worker)
  timeout: 600             # seconds per target (collection)
  attempts: 3              # tries per target before it is marked failed
hypervisors:
  hv7: {limit: 2}          # a smaller cap for one host
groups:
  production: {every: 6h}  # `vmsec fleet schedule add NAME INVENTORY --group production`
targets:
  - {kind: libvirt, uri: "qemu+ssh://hv7/system", guests: auto, hypervisor: hv7, groups: [production]}
  - {kind: ssh, host: root@10.0.0.5, hypervisor: hv7}
  - {kind: xml, path: /srv/exports/hv9/qemu, name: hv9-configs}
```

Each entry is a target spec read by :func:`vmsec.specs.spec_from_mapping` (every kind: xml, libvirt,
ssh, image, rootfs, host, probe, with that spec's options), plus the fleet's own keys:

- ``name``: the target's key in the run (default: the spec's description, e.g. ``xml /srv/hv9``);
  keys are unique, and a retried task finds its target by it;
- ``hypervisor``: the host the target belongs to — its scans share that host's concurrency cap, and
  its domains, guests and networks are reported under that host;
- ``groups``: named groups, to scan or schedule part of the fleet (``--group``);
- ``timeout``: seconds for this target instead of the default.

Relative paths are resolved against the inventory file's directory. The file is untrusted input only
as far as its size (capped) and its structure (every error names the entry).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vmsec.errors import ConfigError
from vmsec.specs import TargetSpec, spec_from_mapping

MAX_INVENTORY_BYTES = 16 * 1024 * 1024
MAX_TARGETS = 100_000
DEFAULT_HYPERVISOR_LIMIT = 4
DEFAULT_ATTEMPTS = 3

# Spec options that name files or directories (resolved against the inventory's directory).
_PATH_KEYS = frozenset({"path", "paths", "root", "host_root", "host-root", "key_file", "key-file",
                        "identity", "known_hosts", "known-hosts"})
_FLEET_KEYS = frozenset({"name", "hypervisor", "groups", "timeout"})
_NAME = re.compile(r"^[A-Za-z0-9_.:@/+=-][A-Za-z0-9_.:@/+= -]{0,199}$")

__all__ = ["FleetInventory", "FleetTarget", "GroupSettings", "load_inventory", "parse_duration",
           "parse_inventory"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetTarget:
    """One inventory entry: its key, the spec to scan, and the fleet's settings for it."""

    key: str
    spec: TargetSpec
    mapping: Mapping[str, Any]  # what spec_from_mapping reads (JSON-able; kept with the run)
    hypervisor: str | None = None
    hypervisor_limit: int | None = None
    groups: tuple[str, ...] = ()
    timeout: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSettings:
    """Settings of a named group: ``every`` is the default interval of its scheduled scans."""

    name: str
    every_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetInventory:
    """A parsed inventory (see the module docstring)."""

    source: str
    targets: tuple[FleetTarget, ...]
    groups: Mapping[str, GroupSettings] = field(default_factory=dict)
    timeout: float | None = None
    attempts: int = DEFAULT_ATTEMPTS
    hypervisor_limit: int = DEFAULT_HYPERVISOR_LIMIT
    document: Mapping[str, Any] = field(default_factory=dict)  # as read, paths resolved

    def select(self, group: str | None) -> FleetInventory:
        """Only the targets of ``group`` (None: all). An unknown or empty group is a ConfigError."""
        if group is None:
            return self
        chosen = tuple(t for t in self.targets if group in t.groups)
        if not chosen:
            known = sorted({g for t in self.targets for g in t.groups} | set(self.groups))
            raise ConfigError(f"{self.source}: no target is in group {group!r}"
                              f" (groups: {', '.join(known) or 'none'})")
        return replace(self, targets=chosen)


def load_inventory(path: str | os.PathLike[str]) -> FleetInventory:
    """Read and check an inventory file (YAML)."""
    import yaml

    where = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_INVENTORY_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the inventory {where}: {exc.strerror or exc}") from exc
    if len(data) > MAX_INVENTORY_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_INVENTORY_BYTES // (1024 * 1024)} MiB")
    try:
        document = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    return parse_inventory(document, where, base_dir=Path(path).resolve().parent)


MAX_DURATION = 366 * 86400  # a year and a day: longer is no schedule, and overflows the clock


def parse_duration(value: object, where: str) -> int:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"6h"`` or ``"1d"``; 1 s to :data:`MAX_DURATION`."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
        if not match:
            raise ConfigError(f"{where}: not a duration: {value!r} (e.g. 90s, 15m, 6h, 1d)")
        seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if not 1 <= seconds <= MAX_DURATION:  # also NaN and infinity
        raise ConfigError(f"{where}: a duration from 1 s to {MAX_DURATION // 86400} days is needed, "
                          f"not {value!r}")
    return int(seconds)


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: a positive whole number is needed, not {value!r}")
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: a mapping is needed, not {type(value).__name__}")
    return value


def schedule_name(value: str) -> str:
    """A schedule's name: the same characters as an inventory's names (a usage error otherwise)."""
    return _name(value, "schedule name")


def _name(value: object, where: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or not _NAME.fullmatch(str(value)):
        raise ConfigError(f"{where}: {value!r} is not a usable name (letters, digits, . _ - : @ / + = "
                          "and spaces, at most 200)")
    return str(value)


def _resolve_paths(entry: Mapping[str, Any], base_dir: Path | None) -> dict[str, Any]:
    out = dict(entry)
    if base_dir is None:
        return out
    for key in _PATH_KEYS & set(out):
        value = out[key]
        if isinstance(value, str) and value and not os.path.isabs(value):
            out[key] = str(base_dir / value)
        elif isinstance(value, list):
            out[key] = [str(base_dir / v) if isinstance(v, str) and v and not os.path.isabs(v) else v
                        for v in value]
    return out


def _jsonable(value: Any, where: str) -> Any:
    """YAML may hold dates, sets or binary: a run keeps its entries as JSON, so only JSON types."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    raise ConfigError(f"{where}: {type(value).__name__} values are not supported ({value!r})")


def _storable(value: Any, where: str) -> None:
    """A run keeps its targets in the store as JSON text, which cannot carry a byte that is not UTF-8
    (here a lone surrogate: a path under a directory so named, or a YAML ``\\udcff`` escape). It is
    refused by name, not left to crash the run's creation."""
    if isinstance(value, str):
        if any("\ud800" <= c <= "\udfff" for c in value):
            from vmsec.report.text import visible

            raise ConfigError(f"{where}: {visible(value)!r} holds a byte that is not UTF-8, which a fleet "
                              "run cannot keep (rename it, or scan it with 'vmsec scan')")
    elif isinstance(value, list):
        for item in value:
            _storable(item, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, where)
            _storable(item, f"{where}.{key}")


def parse_inventory(document: object, source: str = "inventory", *,
                    base_dir: Path | None = None) -> FleetInventory:
    """An inventory from its parsed YAML document (see the module docstring)."""
    top = _mapping(document, source)
    unknown = set(top) - {"defaults", "hypervisors", "groups", "targets"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level keys {', '.join(sorted(map(str, unknown)))} "
                          "(known: defaults, hypervisors, groups, targets)")
    defaults = _mapping(top.get("defaults"), f"{source}: defaults")
    bad = set(defaults) - {"hypervisor_limit", "timeout", "attempts"}
    if bad:
        raise ConfigError(f"{source}: defaults: unknown keys {', '.join(sorted(map(str, bad)))} "
                          "(known: hypervisor_limit, timeout, attempts)")
    limit = _positive_int(defaults.get("hypervisor_limit", DEFAULT_HYPERVISOR_LIMIT),
                          f"{source}: defaults.hypervisor_limit")
    attempts = _positive_int(defaults.get("attempts", DEFAULT_ATTEMPTS), f"{source}: defaults.attempts")
    timeout = (float(parse_duration(defaults["timeout"], f"{source}: defaults.timeout"))
               if defaults.get("timeout") is not None else None)

    caps: dict[str, int] = {}
    for name, settings in _mapping(top.get("hypervisors"), f"{source}: hypervisors").items():
        where = f"{source}: hypervisors.{name}"
        settings = _mapping(settings, where)
        if set(settings) - {"limit"}:
            raise ConfigError(f"{where}: only 'limit' can be set")
        if "limit" in settings:
            caps[_name(name, where)] = _positive_int(settings["limit"], f"{where}.limit")

    groups: dict[str, GroupSettings] = {}
    for name, settings in _mapping(top.get("groups"), f"{source}: groups").items():
        where = f"{source}: groups.{name}"
        settings = _mapping(settings, where)
        if set(settings) - {"every"}:
            raise ConfigError(f"{where}: only 'every' can be set")
        every = parse_duration(settings["every"], f"{where}.every") if "every" in settings else None
        groups[_name(name, where)] = GroupSettings(name=str(name), every_s=every)

    entries = top.get("targets")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: 'targets' must be a non-empty list")
    if len(entries) > MAX_TARGETS:
        raise ConfigError(f"{source}: {len(entries)} targets, more than the {MAX_TARGETS} supported")
    targets: list[FleetTarget] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(entries, start=1):
        where = f"{source}: targets[{n}]"
        entry = _jsonable(_mapping(raw, where), where)
        entry = _resolve_paths(entry, base_dir)
        _storable(entry, where)
        spec_keys = {k: v for k, v in entry.items() if k not in _FLEET_KEYS}
        hypervisor = entry.get("hypervisor")
        if hypervisor is not None:
            hypervisor = _name(hypervisor, f"{where}.hypervisor")
            if spec_keys.get("group") not in (None, hypervisor):
                raise ConfigError(f"{where}: 'group' and 'hypervisor' disagree")
            spec_keys["group"] = hypervisor
        elif isinstance(spec_keys.get("group"), str):
            hypervisor = _name(spec_keys["group"], f"{where}.group")
        spec = spec_from_mapping(spec_keys, where)
        raw_groups = entry.get("groups", [])
        if isinstance(raw_groups, str):
            raw_groups = [raw_groups]
        if not isinstance(raw_groups, list):
            raise ConfigError(f"{where}: 'groups' must be a list of names")
        member_of = tuple(_name(g, f"{where}.groups") for g in raw_groups)
        key = _name(entry["name"], f"{where}.name") if "name" in entry else spec.describe()[:200]
        if key in seen:
            raise ConfigError(f"{where}: target {key!r} is listed twice (also targets[{seen[key]}]); "
                              "give one a 'name'")
        seen[key] = n
        target_timeout = (float(parse_duration(entry["timeout"], f"{where}.timeout"))
                          if entry.get("timeout") is not None else timeout)
        targets.append(FleetTarget(
            key=key, spec=spec, mapping=spec_keys, hypervisor=hypervisor,
            hypervisor_limit=caps.get(hypervisor, limit) if hypervisor else None,
            groups=member_of, timeout=target_timeout))
    normalised = dict(top)
    normalised["targets"] = [_resolve_paths(_jsonable(_mapping(e, source), source), base_dir)
                             for e in entries]
    return FleetInventory(source=source, targets=tuple(targets), groups=groups, timeout=timeout,
                          attempts=attempts, hypervisor_limit=limit,
                          document=_jsonable(normalised, source))


def describe_targets(targets: Sequence[FleetTarget]) -> str:
    """"3 targets on 2 hypervisors" — for progress lines."""
    hypervisors = {t.hypervisor for t in targets if t.hypervisor}
    text = f"{len(targets)} target{'s' if len(targets) != 1 else ''}"
    if hypervisors:
        text += f" on {len(hypervisors)} hypervisor{'s' if len(hypervisors) != 1 else ''}"
    return text
