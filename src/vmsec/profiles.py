"""Profiles: how strict a scan is. The default assumes a multi-tenant host (guests do not trust each
other or the operator of another guest); ``single-tenant`` relaxes checks whose risk only exists
between mutually untrusted guests. A profile is a TOML file: built-in ones ship in
``vmsec/data/profiles``; ``--profile PATH`` loads a custom one.

The built-in TOML files are the source; they also ship pre-parsed in ``builtin.json`` (written by
``scripts/gen_checks_doc.py``, checked by tests/test_docs.py), because every scan loads a profile and
importing tomllib compiles its regular expressions: ≈ 10 M instructions, 2–3 ms of every scan
(a profile file given by path, and vmsec.toml, are still read with tomllib).

```toml
name = "single-tenant"
description = "..."
multi_tenant = false
disabled = ["VMS-DOM-035"]
[severity]
VMS-HOST-013 = "low"
[params]
cert_expiry_warning_days = 30
```
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from msgspec import Struct, field

from vmsec import DATA_DIR
from vmsec.errors import ConfigError
from vmsec.findings import Severity

DEFAULT_PROFILE = "multi-tenant"
BUILTIN_DIR = DATA_DIR / "profiles"
BUILTIN_JSON = BUILTIN_DIR / "builtin.json"


class Profile(Struct, frozen=True, kw_only=True):
    name: str
    description: str = ""
    multi_tenant: bool = True
    severity: Mapping[str, Severity] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    params: Mapping[str, Any] = field(default_factory=dict)

    def severity_for(self, check_id: str, default: Severity) -> Severity:
        return self.severity.get(check_id, default)


def builtin_profiles() -> tuple[str, ...]:
    return tuple(sorted(p.name.removesuffix(".toml") for p in BUILTIN_DIR.iterdir()
                        if p.name.endswith(".toml")))


@cache
def default_profile() -> Profile:
    return load_profile(DEFAULT_PROFILE)


def load_profile(name_or_path: str) -> Profile:
    """Load a built-in profile by name, or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"profile {name_or_path}: {exc.strerror or exc}") from exc
        return parse_profile(text, str(path))
    builtin = orjson.loads(BUILTIN_JSON.read_bytes())
    if name_or_path not in builtin:
        raise ConfigError(f"unknown profile {name_or_path!r}; built-in: {', '.join(builtin_profiles())}")
    return profile_from_data(builtin[name_or_path], name_or_path)


def render_builtin_json() -> str:
    """``builtin.json``: every built-in TOML profile, parsed, by name."""
    import tomllib

    return orjson.dumps({p.name.removesuffix(".toml"): tomllib.loads(p.read_text(encoding="utf-8"))
                         for p in sorted(BUILTIN_DIR.glob("*.toml"))},
                        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


_KEYS = frozenset({"name", "description", "multi_tenant", "disabled", "severity", "params"})


def parse_profile(text: str, origin: str) -> Profile:
    """A profile from TOML text. An unknown key (a typo such as ``disable``) or a check id the
    catalogue does not know is a :class:`ConfigError` naming it: a profile that silently does
    nothing would read as a clean bill of health."""
    import tomllib  # here: built-in profiles come pre-parsed (see the module's docstring)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile {origin}: {exc}") from exc
    return profile_from_data(data, origin)


def profile_from_data(data: dict[str, Any], origin: str) -> Profile:
    """A profile from its parsed TOML, validated as :func:`parse_profile` describes."""
    unknown_keys = sorted(set(data) - _KEYS)
    if unknown_keys:
        raise ConfigError(f"profile {origin}: unknown key(s) {', '.join(unknown_keys)} "
                          f"(allowed: {', '.join(sorted(_KEYS))})")
    for table in ("severity", "params"):
        if table in data and not isinstance(data[table], dict):
            raise ConfigError(f"profile {origin}: [{table}] must be a table")
    try:
        severity = {str(k).upper(): Severity(str(v).lower())
                    for k, v in dict(data.get("severity", {})).items()}
    except ValueError as exc:
        raise ConfigError(f"profile {origin}: {exc}") from exc
    disabled = data.get("disabled", [])
    if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
        raise ConfigError(f"profile {origin}: 'disabled' must be a list of check ids")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"profile {origin}: [params] must be a table")
    from vmsec.checkinfo import packaged_index

    known = packaged_index()
    unknown_ids = sorted({*severity, *(d.upper() for d in disabled)} - set(known))
    if unknown_ids:
        raise ConfigError(f"profile {origin}: unknown check id(s) {', '.join(unknown_ids)} "
                          "(see 'vmsec checks list')")
    return Profile(
        name=str(data.get("name", origin)), description=str(data.get("description", "")),
        multi_tenant=bool(data.get("multi_tenant", True)), severity=severity,
        disabled=frozenset(d.upper() for d in disabled), params=params,
    )
