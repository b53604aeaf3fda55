"""The ``xml`` collector: libvirt XML files (domains, networks, filters, pools, secrets) from disk.

Inputs are files or directories named by the user, possibly copied off a compromised host. Every
read is capped, only regular files are opened (non-blocking, so a FIFO swapped in cannot hang the
scan), directory walks are bounded and never follow directory symlinks, and each file that cannot be
used becomes a failed :class:`CollectionRecord` while the scan goes on.
"""

from __future__ import annotations

import itertools
import os
import stat as st
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from vmsec.errors import ErrorKind, ReadError, SourceUnavailable
from vmsec.facts import CollectionRecord, Domain, Host, Inventory, Network, NwFilter, Secret, StoragePool
from vmsec.parsers.libvirt_xml import parse_libvirt_document
from vmsec.parsers.safexml import DEFAULT_MAX_BYTES

if TYPE_CHECKING:
    from vmsec.collectors import CollectContext
    from vmsec.specs import XmlSpec

MAX_FILE_BYTES = DEFAULT_MAX_BYTES
MAX_WALK_DEPTH = 6
MAX_FILES = 200_000
WHAT = "libvirt XML"


def read_regular_file(path: str, limit: int = MAX_FILE_BYTES, *, within: str | None = None) -> bytes:
    """Read a local regular file of at most ``limit`` bytes, or raise ReadError naming ``path``.

    ``within`` (a real directory path): the file opened must lie under it — judged on the open file
    itself, so a symbolic link swapped in after the directory walk looked cannot lead out of it."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ReadError.from_os(path, exc) from exc
    if not st.S_ISREG(info.st_mode):
        kind = "directory" if st.S_ISDIR(info.st_mode) else "special file"
        raise ReadError(path, f"not a regular file ({kind}); not opened", ErrorKind.NOT_REGULAR)
    if info.st_size > limit:
        raise ReadError(path, f"file is {info.st_size} bytes, over the {limit // (1024 * 1024)} MiB limit",
                        ErrorKind.TOO_LARGE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ReadError.from_os(path, exc) from exc
    try:
        now = os.fstat(fd)
        if not st.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            raise ReadError(path, "file changed while it was being opened", ErrorKind.CHANGED)
        if within is not None:
            _require_within(path, fd, within)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ReadError(path, f"file grew over the {limit // (1024 * 1024)} MiB limit while read",
                                ErrorKind.TOO_LARGE)
        return b"".join(chunks)
    except OSError as exc:
        raise ReadError.from_os(path, exc) from exc
    finally:
        os.close(fd)


def _require_within(path: str, fd: int, top: str) -> None:
    # What the kernel opened, not what the name said a moment ago (Linux: /proc/self/fd).
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError as exc:
        raise ReadError(path, f"cannot tell where the opened file lies ({exc.strerror}); not read",
                        ErrorKind.IO) from exc
    inside = top if top.endswith("/") else top + "/"  # both absolute and normalised: a prefix test
    if real != top and not real.startswith(inside):
        raise ReadError(path, f"opened {real}, outside {top} (a symbolic link swapped in while the "
                              "directory was walked); not read", ErrorKind.CHANGED)


class _Walk:
    """Expands the user's paths into XML files, recording what it could not walk."""

    def __init__(self, records: list[CollectionRecord], max_files: int, max_depth: int) -> None:
        self.records = records
        self.max_files = max_files
        self.max_depth = max_depth
        self.count = 0
        self.too_deep = 0
        self.truncated = False
        self.seen: set[object] = set()
        # A walked file -> the real path of the directory the user named: it must be read from there.
        self.within: dict[str, str] = {}

    def _emit(self, path: str, key: object = None) -> Iterator[str]:
        # Keyed by the file's identity (device, inode): a file named twice, or linked to (autostart/),
        # is read once. realpath() per file cost an lstat per path component.
        if key is None:
            try:
                info = os.stat(path)
                key = (info.st_dev, info.st_ino)
            except OSError:
                key = os.path.realpath(path)
        if key in self.seen:
            return
        if self.count >= self.max_files:
            self.truncated = True
            return
        self.seen.add(key)
        self.count += 1
        yield path

    def files(self, paths: Sequence[str]) -> Iterator[str]:
        for path in paths:
            if self.truncated:
                break
            try:
                is_dir = st.S_ISDIR(os.stat(path).st_mode)
            except OSError as exc:
                self.records.append(ReadError.from_os(path, exc).record(WHAT))
                continue
            if is_dir:
                yield from self._walk(path)
            else:
                yield from self._emit(path)
        if self.too_deep:
            self.records.append(CollectionRecord(
                source=", ".join(paths), what="XML directory walk", ok=False,
                reason=f"{self.too_deep} directories deeper than {self.max_depth} levels were not scanned"))
        if self.truncated:
            self.records.append(CollectionRecord(
                source=", ".join(paths), what="XML directory walk", ok=False,
                reason=f"more than {self.max_files} XML files; the rest were not read"))

    def _walk(self, top: str) -> Iterator[str]:
        real_top = os.path.realpath(top)
        stack: list[tuple[str, int]] = [(top, 0)]
        while stack and not self.truncated:
            directory, depth = stack.pop()
            try:
                with os.scandir(directory) as it:
                    # Bounded: a directory with millions of entries cannot exhaust memory.
                    entries = sorted(itertools.islice(it, self.max_files + 1), key=lambda e: e.name)
            except OSError as exc:
                self.records.append(ReadError.from_os(directory, exc).record("XML directory"))
                continue
            subdirs: list[str] = []
            try:
                device = os.stat(directory).st_dev
            except OSError:
                device = None
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if is_dir:
                    subdirs.append(entry.path)
                elif entry.name.endswith(".xml"):
                    if entry.is_symlink():
                        real = os.path.realpath(entry.path)
                        if os.path.commonpath([real_top, real]) != real_top:
                            # A copied tree must not pull in files of the machine running the scan.
                            self.records.append(CollectionRecord(
                                source=entry.path, what=WHAT, ok=False,
                                reason=f"symbolic link to {real}, outside {top}; not followed"))
                            continue
                        self.within[entry.path] = real_top
                        yield from self._emit(entry.path)
                    else:
                        key = (device, entry.inode()) if device is not None else None
                        self.within[entry.path] = real_top
                        yield from self._emit(entry.path, key)
            if depth >= self.max_depth:
                self.too_deep += len(subdirs)
                continue
            # Reversed so that the stack pops them in name order.
            stack.extend((sub, depth + 1) for sub in reversed(subdirs))


def walk_xml_files(paths: Sequence[str], records: list[CollectionRecord], *, max_files: int = MAX_FILES,
                   max_depth: int = MAX_WALK_DEPTH) -> Iterator[str]:
    """The ``*.xml`` files named by ``paths`` (files as given, directories walked), each once.

    Directory symlinks are never followed; walks stop at ``max_depth`` levels and ``max_files``
    files. What could not be walked, or was cut off, is appended to ``records``.
    """
    return _Walk(records, max_files, max_depth).files(paths)


def collect_xml(paths: Sequence[str], *, host_root: str | None = None, secure: bool = True,
                progress: Callable[[str], None] | None = None) -> Inventory:
    """Read libvirt XML files (or directories of them) into an :class:`Inventory`.

    ``host_root`` adds host context (qemu.conf & co.) read from that directory tree. ``secure``
    says whether the files would show passwords (on-disk configuration does).
    """
    records: list[CollectionRecord] = []
    domains: list[Domain] = []
    networks: list[Network] = []
    filters: list[NwFilter] = []
    pools: list[StoragePool] = []
    secrets: list[Secret] = []
    walk = _Walk(records, MAX_FILES, MAX_WALK_DEPTH)
    for path in walk.files(paths):
        if progress is not None:
            progress(f"xml {path}")
        try:
            data = read_regular_file(path, within=walk.within.get(path))
            obj = parse_libvirt_document(data, path, secure=secure)
        except ReadError as exc:
            records.append(exc.record(WHAT, path))
            continue
        if isinstance(obj, Domain):
            domains.append(obj)
        elif isinstance(obj, Network):
            networks.append(obj)
        elif isinstance(obj, NwFilter):
            filters.append(obj)
        elif isinstance(obj, StoragePool):
            pools.append(obj)
        else:
            secrets.append(obj)
        records.append(CollectionRecord(source=path, what=WHAT, ok=True))

    host: Host | None = None
    if host_root is not None:
        # Imported here: the host collector is heavier and only needed with a host root.
        from vmsec.collectors.host import collect_host
        from vmsec.collectors.reader import RootReader

        try:
            host, host_records = collect_host(RootReader(host_root), live=False)
        except ReadError as exc:
            records.append(CollectionRecord(source=host_root, what="host root", ok=False, reason=exc.reason))
        else:
            records.extend(host_records)

    return Inventory(
        host=host, domains=tuple(domains), networks=tuple(networks),
        nwfilters=tuple(filters) if filters else None, pools=tuple(pools),
        secrets=tuple(secrets) if secrets else None, records=tuple(records),
        source="xml " + " ".join(paths),
    )


def collect(spec: XmlSpec, context: CollectContext) -> Inventory:
    """The collector interface (``vmsec.collectors``): offline libvirt XML files.

    Paths that hold no libvirt XML at all (an empty directory, a mistyped one) are not a clean
    scan: :class:`SourceUnavailable` names what was expected.
    """
    inventory = collect_xml(list(spec.paths), host_root=spec.host_root, secure=spec.secure,
                            progress=context.step)
    found = (inventory.domains or inventory.networks or inventory.nwfilters or inventory.pools
             or inventory.secrets)
    if not found and not any(r.what == WHAT for r in inventory.records):
        raise SourceUnavailable(f"{' '.join(spec.paths)}: no libvirt XML found (expected *.xml domain, "
                                "network, nwfilter, storage pool or secret definitions)", ErrorKind.ABSENT)
    return inventory
