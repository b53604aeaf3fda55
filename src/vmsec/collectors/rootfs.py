"""The ``rootfs`` collector: guest operating systems read from root directories on this machine
(an extracted image, a mounted snapshot, a container root), one :class:`Guest` per directory."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from vmsec.collectors.guest import collect_guest
from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, ReadError, SourceUnavailable
from vmsec.facts import CollectionRecord, Guest, Inventory

if TYPE_CHECKING:
    from vmsec.collectors import CollectContext
    from vmsec.specs import RootfsSpec


# A guest root has at least one of these (an empty or mistyped directory has none).
OS_MARKERS = ("/etc/os-release", "/usr/lib/os-release", "/etc/passwd")


def collect_rootfs(paths: Sequence[str], *, progress: Callable[[str], None] | None = None,
                   packages_only: bool = False) -> Inventory:
    """One :class:`Guest` per root directory in ``paths``, named after the directory.

    A path that is not a directory, or not an OS root (none of :data:`OS_MARKERS`), is recorded and
    skipped; when none is usable the source as a whole is unavailable (:class:`SourceUnavailable`).
    """
    tell = progress or (lambda _msg: None)
    guests: list[Guest] = []
    records: list[CollectionRecord] = []
    for path in paths:
        try:
            reader = RootReader(path)
        except ReadError as exc:
            records.append(CollectionRecord(source=path, what="guest root directory", ok=False,
                                            reason=exc.reason, kind=exc.kind))
            continue
        if not any(reader.stat(p).exists for p in OS_MARKERS):
            records.append(CollectionRecord(
                source=path, what="guest root directory", ok=False, kind=ErrorKind.ABSENT,
                reason=f"not an OS root: none of {', '.join(OS_MARKERS)} is there"))
            continue
        name = os.path.basename(reader.root.rstrip("/")) or reader.root
        tell(f"guest OS facts of {reader.root}")
        guest, guest_records = collect_guest(reader, name=name, origin=reader.root,
                                             packages_only=packages_only)
        guests.append(guest)
        records.extend(guest_records)
    if not guests:
        reasons = "; ".join(f"{r.source}: {r.reason}" for r in records) or "no paths given"
        raise SourceUnavailable(f"no usable root directory ({reasons})")
    return Inventory(guests=tuple(guests), records=tuple(records),
                     source="rootfs " + " ".join(g.origin for g in guests))


def collect(spec: RootfsSpec, context: CollectContext) -> Inventory:
    """The collector interface (``vmsec.collectors``): guest root directories."""
    return collect_rootfs(list(spec.paths), progress=context.step, packages_only=context.packages_only)


__all__ = ["collect_rootfs"]
