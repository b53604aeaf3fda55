"""Readers over local directory trees: the one place where vmsec touches a local target's files.

The protocol is :class:`vmsec.reading.Reader`; this module holds what implementations share
(:class:`ReaderBase`) and the one over a local root (:class:`RootReader`). A target (a host root, a
guest root) may be hostile; :class:`RootReader` enforces the rules:

- paths are resolved inside the target's root: absolute symlinks are target-absolute, ``..`` stops
  at the root, so nothing resolves outside it;
- resolution walks one component at a time with ``openat``-style directory descriptors and
  ``O_NOFOLLOW``, so a component swapped for a symlink mid-walk cannot redirect it;
- symlink chains are bounded (loops end with ELOOP);
- only regular files are opened for reading (never FIFOs, sockets or device nodes), non-blocking;
- every read is capped; directory listings are capped;
- nothing is ever opened for writing.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat as st
import weakref
from collections import deque
from collections.abc import Callable, Iterator

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import AclEntry, FileKind, FileStat
from vmsec.parsers.posix_acl import XATTR_NAME, parse_posix_acl
from vmsec.reading import DEFAULT_LIST_LIMIT, DEFAULT_READ_LIMIT, MAX_SYMLINK_HOPS, Reader, complete_acls

__all__ = ["DEFAULT_LIST_LIMIT", "DEFAULT_READ_LIMIT", "MAX_SYMLINK_HOPS", "CachedReader", "Reader",
           "ReaderBase", "RootReader"]


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


class ReaderBase:
    """What every Reader implementation shares: text decoding, existence, last-component globbing and
    owner names from the target's own account database. Subclasses provide read_bytes, stat and
    listdir, and set ``self._names = {}``."""

    _names: dict[str, dict[int, str]]

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        raise NotImplementedError

    def stat(self, path: str, follow: bool = True) -> FileStat:
        raise NotImplementedError

    def listdir(self, path: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]:
        raise NotImplementedError

    def read_text(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> str:
        """Decode as UTF-8; undecodable bytes become U+FFFD rather than failing the read."""
        return self.read_bytes(path, limit).decode("utf-8", "replace")

    def exists(self, path: str) -> bool:
        return bool(self.stat(path).exists)

    def glob(self, pattern: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]:
        """Expand a pattern whose wildcards are in the last component only (``/etc/libvirt/qemu/*.xml``)."""
        directory, _, name_pattern = pattern.rpartition("/")
        directory = directory or "/"
        try:
            names = self.listdir(directory, limit)
        except ReadError as exc:
            if exc.absent:
                return []
            raise
        return [f"{directory.rstrip('/')}/{n}" for n in names if fnmatch.fnmatchcase(n, name_pattern)]

    # --- access ACLs -------------------------------------------------------------------------

    def _acl(self, raw: bytes | None, mode: int | None = None
             ) -> tuple[tuple[AclEntry, ...] | None, str | None]:
        """(entries, why they are unknown) of an access ACL's stored value; ``None``: the file has none.
        ``mode``: the file's, which an ACL must agree with (:func:`vmsec.parsers.posix_acl.check_acl`)."""
        if raw is None:
            return (), None
        try:
            entries = parse_posix_acl(raw, mode)
        except ValueError as exc:
            return None, f"its ACL is malformed ({exc})"
        return self._named(entries), None

    def _named(self, entries: tuple[AclEntry, ...]) -> tuple[AclEntry, ...]:
        """Entries with the names of their users and groups, through the target's own account files."""
        return tuple(AclEntry(tag=e.tag, id=e.id, perms=e.perms,
                              name=self._lookup("/etc/passwd" if e.tag == "user" else "/etc/group", e.id))
                     if e.id is not None else e for e in entries)

    # --- owner names from the target's own account database -----------------------------------

    # Where the account databases are read from: this reader, or a CachedReader over it (so that
    # /etc/passwd is read once for owner names and the account facts together).
    _name_source: Callable[[], Reader | None] | None = None
    _in_lookup = False  # reading an account database: stats made meanwhile have no owner names

    def _lookup(self, dbfile: str, ident: int) -> str | None:
        table = self._names.get(dbfile)
        if table is None:
            if self._in_lookup:
                return None
            table = {}
            source = (self._name_source() if self._name_source is not None else None) or self
            self._in_lookup = True
            try:
                text = source.read_text(dbfile, limit=8 * 1024 * 1024)
            except ReadError:
                text = ""
            finally:
                self._in_lookup = False
            for line in text.splitlines()[:200_000]:
                fields = line.split(":")
                if len(fields) >= 3 and fields[2].isdigit():
                    table.setdefault(int(fields[2]), fields[0])
            self._names[dbfile] = table
        return table.get(ident)


class RootReader(ReaderBase):
    """A :class:`Reader` over a directory tree on this machine: ``/`` for the running host, or a
    copied host or guest root. Paths given to it are always absolute *inside* the root."""

    def __init__(self, root: str) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise ReadError(root, "not a directory", ErrorKind.NOT_A_DIRECTORY)
        self._root = real
        self._names: dict[str, dict[int, str]] = {}

    @property
    def label(self) -> str:
        return self._root

    @property
    def root(self) -> str:
        return self._root

    # --- resolution -------------------------------------------------------------------------

    def _walk(self, path: str, follow_last: bool) -> tuple[int, str, os.stat_result]:
        """Resolve ``path`` inside the root. Returns (parent dir fd, final name, lstat of final).

        The caller owns the returned fd. For the root itself the name is "." and the fd the root.
        """
        if "\0" in path:  # no file has such a name (os.stat would raise ValueError, not OSError)
            raise OSError(errno.ENOENT, "a NUL byte in the path")
        parts = deque(_split(path))
        root_fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack = [root_fd]
        hops = 0
        try:
            if not parts:
                dup = os.dup(root_fd)
                return dup, ".", os.stat(".", dir_fd=dup, follow_symlinks=False)
            while parts:
                comp = parts.popleft()
                if comp == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    if not parts:  # "a/.." names the directory reached so far
                        parts.append(".")
                    continue
                info = os.stat(comp, dir_fd=stack[-1], follow_symlinks=False)
                last = not parts
                if st.S_ISLNK(info.st_mode) and (follow_last or not last):
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links")
                    target = os.readlink(comp, dir_fd=stack[-1])
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    parts.extendleft(reversed(_split(target)))
                    if not parts:  # link to "/" (or ".")
                        parts.append(".")
                    continue
                if last:
                    return os.dup(stack[-1]), comp, info
                if not st.S_ISDIR(info.st_mode):
                    raise OSError(errno.ENOTDIR, "not a directory")
                fd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=stack[-1])
                stack.append(fd)
            raise OSError(errno.ENOENT, "empty path")  # pragma: no cover - loop always returns
        finally:
            for fd in stack:
                os.close(fd)

    def _error(self, path: str, exc: OSError) -> ReadError:
        return ReadError.from_os(path, exc)

    # --- reading ----------------------------------------------------------------------------

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        try:
            parent, name, info = self._walk(path, follow_last=True)
        except OSError as exc:
            raise self._error(path, exc) from exc
        try:
            if name == "." or not st.S_ISREG(info.st_mode):
                kind = FileKind.from_mode(info.st_mode)
                raise ReadError(path, f"not a regular file ({kind}); not opened", ErrorKind.NOT_REGULAR)
            if info.st_size > limit:
                raise ReadError(path, f"file is {info.st_size} bytes, over the {limit}-byte limit",
                                ErrorKind.TOO_LARGE)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                             dir_fd=parent)
            except OSError as exc:
                raise self._error(path, exc) from exc
            try:
                now = os.fstat(fd)
                if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino) or not st.S_ISREG(now.st_mode):
                    raise ReadError(path, "file changed while it was being opened", ErrorKind.CHANGED)
                chunks: list[bytes] = []
                total = 0
                while True:
                    chunk = os.read(fd, min(65536, limit + 1 - total))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
                    if total > limit:
                        raise ReadError(path, f"file is over the {limit}-byte limit", ErrorKind.TOO_LARGE)
                return b"".join(chunks)
            except OSError as exc:
                raise self._error(path, exc) from exc
            finally:
                os.close(fd)
        finally:
            os.close(parent)

    def stat(self, path: str, follow: bool = True) -> FileStat:
        try:
            parent, name, info = self._walk(path, follow_last=follow)
        except FileNotFoundError:
            return FileStat(path=path, exists=False)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return FileStat(path=path, exists=False)
            return FileStat(path=path, exists=None, error=exc.strerror or str(exc))
        try:
            acl, acl_error = self._acl_at(parent, name, info.st_mode)
        finally:
            os.close(parent)
        return FileStat(path=path, exists=True, kind=FileKind.from_mode(info.st_mode),
                        mode=st.S_IMODE(info.st_mode), uid=info.st_uid, gid=info.st_gid,
                        owner=self._lookup("/etc/passwd", info.st_uid),
                        group=self._lookup("/etc/group", info.st_gid),
                        size=info.st_size, mtime=info.st_mtime, file_id=(info.st_dev, info.st_ino),
                        acl=acl, acl_error=acl_error)

    def _acl_at(self, parent: int, name: str, mode: int) -> tuple[tuple[AclEntry, ...] | None, str | None]:
        """The access ACL of ``name`` in the directory ``parent``, without following a symlink there.
        getxattr(2) takes a path, not a directory descriptor: the path goes through /proc's link to
        the descriptor, so the directory already resolved inside the root is the one asked."""
        try:
            raw = os.getxattr(f"/proc/self/fd/{parent}/{name}", XATTR_NAME, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                return (), None  # none set, or a filesystem without ACLs
            return None, f"its ACL could not be read: {exc.strerror or exc}"
        return self._acl(raw, mode)

    def readlink(self, path: str) -> str:
        try:
            parent, name, info = self._walk(path, follow_last=False)
        except OSError as exc:
            raise self._error(path, exc) from exc
        try:
            if not st.S_ISLNK(info.st_mode):
                raise ReadError(path, "not a symbolic link", ErrorKind.NOT_REGULAR)
            try:
                return os.readlink(name, dir_fd=parent)
            except OSError as exc:  # /proc/PID/exe of another user's process: EACCES
                raise self._error(path, exc) from exc
        finally:
            os.close(parent)

    def listdir(self, path: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]:
        """Names in a directory, sorted; at most ``limit`` (a larger directory raises ReadError)."""
        return sorted(self._iterdir(path, limit))

    def _iterdir(self, path: str, limit: int) -> Iterator[str]:
        try:
            parent, name, info = self._walk(path, follow_last=True)
        except OSError as exc:
            raise self._error(path, exc) from exc
        try:
            if not st.S_ISDIR(info.st_mode):
                # The path exists but is no directory: not "absent" (that is ENOTDIR on the way).
                raise ReadError(path, "not a directory", ErrorKind.NOT_REGULAR)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except OSError as exc:
            os.close(parent)
            raise self._error(path, exc) from exc
        os.close(parent)
        names: list[str] = []
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    names.append(entry.name)
                    if len(names) > limit:
                        raise ReadError(path, f"directory has more than {limit} entries", ErrorKind.TOO_LARGE)
        finally:
            os.close(fd)
        return iter(names)


# A guest's files are read once per scan: the cache keeps small files (configuration) only.
CACHE_FILE_LIMIT = 1024 * 1024
CACHE_TOTAL = 64 * 1024 * 1024
# Everything the parsers of one guest are handed, cache hits included: far above a real guest
# (package databases are the largest inputs: dpkg status ≤ 64 MiB, rpmdb.sqlite ≤ 256 MiB).
READ_BUDGET = 512 * 1024 * 1024


class CachedReader(ReaderBase):
    """A :class:`Reader` over another one that reads each file once, however many paths lead to it,
    and bounds the total work of one collection.

    - ``stat`` and ``listdir`` results are kept per path; file contents per *file* (``file_id``:
      device and inode on a local root, the symlink-free path in an image), so a file reached
      through a symlink, a second include or a shared home directory is read from the target once;
      a failed read is remembered too (with its kind) and not retried, except a TOO_LARGE failure
      when a caller allows more;
    - only files up to :data:`CACHE_FILE_LIMIT` are kept, up to :data:`CACHE_TOTAL` in all;
    - every byte handed out counts against ``budget`` (:data:`READ_BUDGET`), cache hits included:
      once spent, reads fail with ``ErrorKind.TOO_LARGE`` and the facts needing them are unknown.
    """

    def __init__(self, inner: Reader, budget: int = READ_BUDGET) -> None:
        self._inner = inner
        if isinstance(inner, ReaderBase) and not inner._names:
            inner._name_source = weakref.ref(self)
        self._names: dict[str, dict[int, str]] = {}
        self._stats: dict[tuple[str, bool], FileStat] = {}
        self._lists: dict[str, list[str] | ReadError] = {}
        self._data: dict[object, bytes] = {}
        self._failed: dict[object, tuple[ReadError, int]] = {}
        self._cached_bytes = 0
        self.budget = budget
        self.handed_out = 0
        self.reads = 0  # reads that reached the target (for tests and benchmarks)

    @property
    def label(self) -> str:
        return self._inner.label

    def stat(self, path: str, follow: bool = True) -> FileStat:
        key = (path, follow)
        info = self._stats.get(key)
        if info is None:
            if len(self._stats) >= 200_000:
                self._stats.clear()  # bounded memory; correctness does not depend on the cache
            info = self._inner.stat(path, follow)
            if not getattr(self._inner, "_in_lookup", False):  # complete, with owner names
                self._stats[key] = info
        return info

    def complete_acls(self, stats: dict[str, FileStat]) -> dict[str, FileStat]:
        """The inner reader's :func:`vmsec.reading.complete_acls`."""
        return complete_acls(self._inner, stats)

    def _afford(self, path: str, size: int) -> None:
        if self.handed_out + size > self.budget:
            raise ReadError(path, f"not read: this system's read budget of {self.budget} bytes "
                            "is spent (hostile input?)", ErrorKind.TOO_LARGE)

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        info = self.stat(path)
        key: object = info.file_id if info.exists and info.file_id is not None else ("path", path)
        data = self._data.get(key)
        if data is None:
            failed = self._failed.get(key)
            if failed is not None and not (failed[0].kind is ErrorKind.TOO_LARGE and limit > failed[1]):
                raise ReadError(path, failed[0].reason, failed[0].kind)
            if info.size is not None and info.size <= limit:
                self._afford(path, info.size)  # refuse before reading, not after
            try:
                self.reads += 1
                data = self._inner.read_bytes(path, limit)
            except ReadError as exc:
                self._failed[key] = (exc, limit)
                raise
            if len(data) <= CACHE_FILE_LIMIT and self._cached_bytes + len(data) <= CACHE_TOTAL:
                self._data[key] = data
                self._cached_bytes += len(data)
        elif len(data) > limit:
            raise ReadError(path, f"file is {len(data)} bytes, over the {limit}-byte limit",
                            ErrorKind.TOO_LARGE)
        self._afford(path, len(data))
        self.handed_out += len(data)
        return data

    def listdir(self, path: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]:
        cached = self._lists.get(path)
        if isinstance(cached, ReadError) and cached.kind is ErrorKind.TOO_LARGE:
            cached = None  # a caller allowing more entries may succeed
        if cached is None:
            try:
                cached = self._inner.listdir(path, limit)
            except ReadError as exc:
                cached = exc
            if len(self._lists) < 100_000:
                self._lists[path] = cached
        if isinstance(cached, ReadError):
            raise ReadError(path, cached.reason, cached.kind)
        if len(cached) > limit:
            raise ReadError(path, f"directory has more than {limit} entries", ErrorKind.TOO_LARGE)
        return list(cached)

    def readlink(self, path: str) -> str:
        return self._inner.readlink(path)
