"""Collectors: transports that read a target and turn what they read into facts.

Each collector implements one small interface — a function ``collect(spec, context) -> Inventory``
for its kind of :class:`~vmsec.specs.TargetSpec` — and is listed once in :data:`COLLECTORS`. A
network transport may also offer ``async def collect_async(spec, context)``: the pipeline then runs
many targets of that kind on one event loop instead of one thread each. Each is
imported only when used, so optional heavy dependencies (libvirt-python, dissect.target, asyncssh)
are needed only by the collector that uses them; a missing one is a clear
:class:`~vmsec.errors.SourceUnavailable`.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, cast

from msgspec import Struct

from vmsec.errors import ErrorKind, SourceUnavailable
from vmsec.facts import Inventory
from vmsec.specs import TargetSpec

ProgressHook = Callable[[str], None]

# kind → "module:function". Adding a transport touches this line and its own module.
COLLECTORS: Mapping[str, str] = {
    "host": "vmsec.collectors.host:collect",
    "libvirt": "vmsec.collectors.libvirt:collect",
    "xml": "vmsec.collectors.xml:collect",
    "rootfs": "vmsec.collectors.rootfs:collect",
    "image": "vmsec.collectors.image:collect",
    "ssh": "vmsec.collectors.ssh:collect",
    "probe": "vmsec.collectors.probe:collect",
}


class CollectContext(Struct, frozen=True):
    """What a collector gets beside its spec: where to report progress, and its deadline.

    Collectors call :meth:`step` between units of work (a file, a domain, a guest): it reports
    progress and raises :class:`SourceUnavailable` (kind TIMEOUT) once the deadline has passed, so a
    slow or hanging target costs at most its timeout and the scan goes on with the next one.
    """

    progress: ProgressHook | None = None
    deadline: float | None = None  # time.monotonic() value
    # The selected checks need only each OS's release and installed packages (a vulnerability-only
    # scan): OS collectors may skip every other fact (they stay None, unknown).
    packages_only: bool = False

    def step(self, message: str) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise SourceUnavailable(f"timed out (at: {message})", ErrorKind.TIMEOUT)
        if self.progress is not None:
            self.progress(message)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


class Collector(Protocol):
    def __call__(self, spec: TargetSpec, context: CollectContext, /) -> Inventory: ...


def get_collector(kind: str) -> Collector:
    """The collector for a spec kind."""
    try:
        target = COLLECTORS[kind]
    except KeyError:
        raise SourceUnavailable(f"no collector for targets of kind {kind!r}") from None
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return cast(Collector, getattr(module, attr))


def get_async_collector(kind: str) -> Callable[[TargetSpec, CollectContext], Awaitable[Inventory]] | None:
    """The collector module's ``collect_async`` when it has one (network transports: many targets
    share one event loop), else None (the pipeline runs ``collect`` in a worker thread)."""
    module_name, _, _attr = COLLECTORS[kind].partition(":")
    module = importlib.import_module(module_name)
    found = getattr(module, "collect_async", None)
    return cast(Callable[[TargetSpec, CollectContext], Awaitable[Inventory]] | None, found)


def collect(spec: TargetSpec, context: CollectContext | None = None) -> Inventory:
    """Collect the inventory of one target spec."""
    return get_collector(spec.kind)(spec, context or CollectContext())


__all__ = ["COLLECTORS", "CollectContext", "Collector", "ProgressHook", "collect", "get_async_collector",
           "get_collector"]
