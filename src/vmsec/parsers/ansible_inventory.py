"""Ansible inventories (INI and YAML) → the hosts ``vmsec scan ssh`` connects to.

What is read, as Ansible reads it: groups, ``[group:vars]`` / ``vars:``, ``[group:children]`` /
``children:`` (variables of a group reach the hosts of its children; a child's override its parent's,
a host's its groups'), host ranges (``web[01:20].example.com``, ``db-[a:f]``), ``host:port`` aliases, and
the connection variables ``ansible_host``, ``ansible_port``, ``ansible_user`` and
``ansible_ssh_private_key_file`` (and their older ``ansible_ssh_*`` spellings). Two variables are
vmsec's own: ``vmsec_hypervisor`` (the hypervisor a guest runs on: at most ``--per-hypervisor`` of its
guests are scanned at once) and ``vmsec_sudo`` (use the read-only sudo allow-list). Nothing is
evaluated: Jinja templates and plugins are not run, and a value that is a template is ignored.

An inventory is configuration, but still bounded: at most :data:`MAX_HOSTS` hosts (ranges included).
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Iterator, Mapping
from typing import Any

from msgspec import Struct

from vmsec.errors import ConfigError

MAX_HOSTS = 100_000
MAX_DEPTH = 64  # nested children
_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::(\d+))?\]")
_TRUE = frozenset({"1", "yes", "true", "on", "y"})


class InventoryHost(Struct, frozen=True, kw_only=True):
    alias: str  # the inventory's name for it (the target's name in reports)
    host: str  # what to connect to
    port: int | None = None
    user: str | None = None
    identity: str | None = None
    hypervisor: str | None = None
    sudo: bool = False
    groups: tuple[str, ...] = ()


class _Group(Struct):
    hosts: dict[str, dict[str, Any]]
    vars: dict[str, Any]
    children: list[str]


def expand_range(pattern: str) -> list[str]:
    """``web[01:03]`` → web01, web02, web03 (zero padding kept); ``db-[a:c]`` → db-a, db-b, db-c;
    an optional stride: ``[0:10:5]``. Several ranges multiply (bounded)."""
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    start, end, stride = match.group(1), match.group(2), int(match.group(3) or 1)
    if stride < 1:
        raise ConfigError(f"inventory: bad range stride in {pattern!r}")
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        if int(end) - int(start) > MAX_HOSTS:
            raise ConfigError(f"inventory: range {pattern!r} has more than {MAX_HOSTS} hosts")
        values = [str(n).zfill(width) for n in range(int(start), int(end) + 1, stride)]
    elif len(start) == len(end) == 1 and start.isalpha() and end.isalpha():
        letters = string.ascii_letters
        values = [letters[i] for i in range(letters.index(start), letters.index(end) + 1, stride)]
    else:
        raise ConfigError(f"inventory: bad host range in {pattern!r}")
    out: list[str] = []
    for value in values:
        out += expand_range(pattern[:match.start()] + value + pattern[match.end():])
        if len(out) > MAX_HOSTS:
            raise ConfigError(f"inventory: {pattern!r} expands to more than {MAX_HOSTS} hosts")
    return out


def _value(text: str) -> Any:
    """An INI value as Ansible's INI loader takes it: quoted strings, numbers, booleans stay strings
    where Ansible keeps them (we only need strings, ints and the truthiness of vmsec_sudo)."""
    return text


def _parse_ini(text: str, where: str) -> dict[str, _Group]:
    groups: dict[str, _Group] = {"all": _Group({}, {}, []), "ungrouped": _Group({}, {}, [])}
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            name, _, kind = line[1:-1].strip().partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise ConfigError(f"{where}:{number}: unknown section kind {kind!r}")
            section = name.strip()
            groups.setdefault(section, _Group({}, {}, []))
            continue
        group = groups[section]
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise ConfigError(f"{where}:{number}: {exc}") from exc
        if not words:
            continue
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise ConfigError(f"{where}:{number}: expected key=value in [{section}:vars]")
            group.vars[key.strip()] = _value(value.strip().strip("'\""))
        elif kind == "children":
            group.children.append(words[0])
            groups.setdefault(words[0], _Group({}, {}, []))
        else:
            variables: dict[str, Any] = {}
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if not sep:
                    raise ConfigError(f"{where}:{number}: expected key=value after the host name, "
                                      f"got {word!r}")
                variables[key] = _value(value)
            for alias in expand_range(words[0]):
                group.hosts.setdefault(alias, {}).update(variables)
        if sum(len(g.hosts) for g in groups.values()) > MAX_HOSTS:
            raise ConfigError(f"{where}: more than {MAX_HOSTS} hosts")
    return groups


def _parse_yaml(data: Any, where: str) -> dict[str, _Group]:
    groups: dict[str, _Group] = {"all": _Group({}, {}, []), "ungrouped": _Group({}, {}, [])}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: a YAML inventory is a mapping of groups")

    def visit(name: str, body: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ConfigError(f"{where}: groups nested deeper than {MAX_DEPTH}")
        group = groups.setdefault(str(name), _Group({}, {}, []))
        if body is None:
            return
        if not isinstance(body, Mapping):
            raise ConfigError(f"{where}: group {name!r} must be a mapping")
        hosts, variables_of, children = (body.get(k) or {} for k in ("hosts", "vars", "children"))
        if not all(isinstance(part, Mapping) for part in (hosts, variables_of, children)):
            raise ConfigError(f"{where}: hosts, vars and children of group {name!r} must be mappings")
        for alias, variables in hosts.items():
            if variables is not None and not isinstance(variables, Mapping):
                raise ConfigError(f"{where}: host {alias!r} must map to variables")
            for expanded in expand_range(str(alias)):
                group.hosts.setdefault(expanded, {}).update(dict(variables or {}))
        group.vars.update(dict(variables_of))
        for child, child_body in children.items():
            group.children.append(str(child))
            visit(str(child), child_body, depth + 1)

    for name, body in data.items():
        visit(str(name), body, 0)
    if sum(len(g.hosts) for g in groups.values()) > MAX_HOSTS:
        raise ConfigError(f"{where}: more than {MAX_HOSTS} hosts")
    return groups


def _ancestry(groups: Mapping[str, _Group]) -> dict[str, list[str]]:
    """group → its groups from the outermost (all) to itself, for variable precedence."""
    parents: dict[str, list[str]] = {name: [] for name in groups}
    for name, group in groups.items():
        for child in group.children:
            parents.setdefault(child, []).append(name)

    def chain(name: str, seen: frozenset[str]) -> list[str]:
        if name in seen or len(seen) > MAX_DEPTH:
            return []
        out: list[str] = []
        for parent in parents.get(name, []):
            out += [g for g in chain(parent, seen | {name}) if g not in out]
        return [*out, name]

    return {name: ["all", *[g for g in chain(name, frozenset()) if g != "all"]] for name in groups}


def _template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _text(value: Any) -> str | None:
    if value is None or _template(value):
        return None
    return str(value)


def _hosts(groups: Mapping[str, _Group], where: str) -> Iterator[InventoryHost]:
    ancestry = _ancestry(groups)
    member_of: dict[str, list[str]] = {}
    host_vars: dict[str, dict[str, Any]] = {}
    for name, group in groups.items():
        for alias, variables in group.hosts.items():
            member_of.setdefault(alias, []).append(name)
            host_vars.setdefault(alias, {}).update(variables)
    for alias in member_of:
        merged: dict[str, Any] = {}
        order: list[str] = []
        for group_name in member_of[alias]:
            order += [g for g in ancestry.get(group_name, ["all", group_name]) if g not in order]
        for group_name in order:
            merged.update(groups[group_name].vars if group_name in groups else {})
        merged.update(host_vars[alias])
        host = _text(merged.get("ansible_host", merged.get("ansible_ssh_host"))) or alias
        port_text = _text(merged.get("ansible_port", merged.get("ansible_ssh_port")))
        if ":" in host and host.count(":") == 1 and "ansible_host" not in merged:
            host, _, port_text = host.partition(":")  # "host:port" as the alias
        try:
            port = int(port_text) if port_text else None
        except ValueError:
            raise ConfigError(f"{where}: host {alias!r}: port {port_text!r} is not a number") from None
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"{where}: host {alias!r}: port {port} is out of range")
        sudo = _text(merged.get("vmsec_sudo"))
        yield InventoryHost(
            alias=alias, host=host, port=port,
            user=_text(merged.get("ansible_user", merged.get("ansible_ssh_user"))),
            identity=_text(merged.get("ansible_ssh_private_key_file")),
            hypervisor=_text(merged.get("vmsec_hypervisor")),
            sudo=bool(sudo and sudo.strip().lower() in _TRUE),
            groups=tuple(g for g in member_of[alias] if g not in ("all", "ungrouped")))


def parse_inventory(text: str, where: str = "inventory") -> list[InventoryHost]:
    """Every host of an Ansible inventory (INI or YAML, told apart by content), in file order."""
    stripped = text.lstrip()
    first = stripped.split("\n", 1)[0]
    yaml_like = stripped.startswith(("---", "all:")) or bool(re.match(r"^[\w.-]+:\s*$", first))
    if yaml_like and not stripped.startswith("["):
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            data = yaml.load(text, Loader=loader)  # a safe loader: plain data only
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
        groups = _parse_yaml(data, where)
    else:
        groups = _parse_ini(text, where)
    return list(_hosts(groups, where))


__all__ = ["MAX_HOSTS", "InventoryHost", "expand_range", "parse_inventory"]
