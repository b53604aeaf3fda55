"""The check catalogue: one deterministic walk over an explicit list of modules.

Adding a check module means adding one line to ``CHECK_MODULES``. Nothing registers itself on
import; the catalogue is built when asked for and cached.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from functools import cache

from msgspec import Struct

from vmsec.checkinfo import CheckIndex
from vmsec.checks.api import CHECK_ATTR, CheckSpec, Scope, build_spec
from vmsec.errors import CheckDefinitionError

CHECK_MODULES: tuple[str, ...] = (
    "vmsec.checks.host.hardware",
    "vmsec.checks.host.side_channels",
    "vmsec.checks.host.kernel",
    "vmsec.checks.host.files",
    "vmsec.checks.daemon.remote",
    "vmsec.checks.daemon.local_access",
    "vmsec.checks.daemon.audit",
    "vmsec.checks.daemon.tls_certificates",
    "vmsec.checks.qemu.confinement",
    "vmsec.checks.qemu.consoles",
    "vmsec.checks.qemu.transport",
    "vmsec.checks.domain.confinement",
    "vmsec.checks.domain.consoles",
    "vmsec.checks.domain.devices",
    "vmsec.checks.domain.passthrough",
    "vmsec.checks.domain.filesystems",
    "vmsec.checks.domain.disks",
    "vmsec.checks.domain.networking",
    "vmsec.checks.domain.cpu_memory",
    "vmsec.checks.domain.firmware",
    "vmsec.checks.domain.confidential",
    "vmsec.checks.network.virtual_networks",
    "vmsec.checks.network.storage",
    "vmsec.checks.guest.ssh",
    "vmsec.checks.guest.ssh_keys",
    "vmsec.checks.guest.accounts",
    "vmsec.checks.guest.file_permissions",
    "vmsec.checks.guest.groups",
    "vmsec.checks.guest.pam",
    "vmsec.checks.guest.sudo",
    "vmsec.checks.guest.patching",
    "vmsec.checks.guest.services",
    "vmsec.checks.guest.kernel_params",
    "vmsec.checks.guest.logging",
    "vmsec.checks.guest.firewall",
    "vmsec.checks.guest.encryption",
    "vmsec.checks.guest.mounts",
    "vmsec.checks.guest.provisioning",
    "vmsec.checks.vulns.packages",
    "vmsec.checks.live.running",
    "vmsec.checks.live.correlation",
    "vmsec.checks.probe.consoles",
    "vmsec.checks.probe.management",
    "vmsec.checks.probe.transport",
)


class Catalog(Struct, frozen=True):
    checks: tuple[CheckSpec, ...]

    @property
    def by_id(self) -> Mapping[str, CheckSpec]:
        return {c.id: c for c in self.checks}

    def get(self, check_id: str) -> CheckSpec | None:
        return self.by_id.get(check_id.upper())

    def index(self) -> CheckIndex:
        """The checks' metadata (what reporters receive)."""
        return CheckIndex(c.info for c in self.checks)

    def of_scope(self, scope: Scope) -> tuple[CheckSpec, ...]:
        return tuple(c for c in self.checks if c.scope is scope)

    def select(self, ids: Iterable[str] | None = None, tags: Iterable[str] | None = None) -> Catalog:
        chosen = self.checks
        if ids:
            wanted = {i.upper() for i in ids}
            chosen = tuple(c for c in chosen if c.id in wanted or any(c.id.startswith(w.rstrip("*"))
                                                                        for w in wanted if w.endswith("*")))
        if tags:
            tagset = set(tags)
            chosen = tuple(c for c in chosen if tagset & set(c.tags))
        return Catalog(chosen)


def load_catalog(modules: Iterable[str] = CHECK_MODULES) -> Catalog:
    """Import the check modules and collect their checks, in module then definition order."""
    specs: list[CheckSpec] = []
    seen: dict[str, str] = {}
    for name in modules:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if callable(obj) and hasattr(obj, CHECK_ATTR) and obj.__module__ == name:
                spec = build_spec(obj)
                if spec.id in seen:
                    raise CheckDefinitionError(
                        f"check id {spec.id} is declared twice: {seen[spec.id]} and {name}")
                seen[spec.id] = name
                specs.append(spec)
    return Catalog(tuple(specs))


@cache
def default_catalog() -> Catalog:
    return load_catalog()


def selected_catalog(ids: Iterable[str]) -> Catalog:
    """The checks named by ``ids`` (``VMS-DOM-*`` selects a prefix), importing only the modules that
    hold them (found in the shipped metadata, vmsec/data/catalog.json): ``--check VMS-VULN-*`` need
    not import the other thirty-odd check modules and the facts and parsers they use."""
    from vmsec.checkinfo import packaged_index

    wanted = packaged_index().select(ids=ids)
    modules = {info.module for info in wanted.checks}
    if not modules <= set(CHECK_MODULES):  # the metadata is stale: fall back to every module
        return default_catalog().select(ids=ids)
    return load_catalog([m for m in CHECK_MODULES if m in modules]).select(ids=ids)
