"""A :class:`~vmsec.collectors.reader.Reader` over a guest filesystem inside a disk image.

The image is never mounted: dissect.target parses the partition table, LVM and the ext4/xfs
structures in user space, and this reader walks the resulting filesystem view with the same rules
as :class:`~vmsec.collectors.reader.RootReader`:

- paths resolve inside the guest: absolute symlinks are guest-absolute, ``..`` stops at the guest
  root. The walk is done here, one component at a time, on symlink-free prefixes, so dissect is
  never asked to follow a guest symlink itself;
- symlink chains are bounded (:data:`MAX_SYMLINK_HOPS`; loops end with "too many levels");
- only regular files are opened; reads and directory listings are capped;
- nothing is written (dissect reads the image through a read-only file handle).

A corrupt filesystem structure raises inside dissect with any exception type; every one of them
becomes a :class:`~vmsec.errors.ReadError` naming the path, so the guest collector records it and
moves on.
"""

from __future__ import annotations

import errno
import os
import stat as st
from collections import deque
from typing import Any

from vmsec.collectors.reader import DEFAULT_LIST_LIMIT, DEFAULT_READ_LIMIT, MAX_SYMLINK_HOPS, ReaderBase
from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileKind, FileStat
from vmsec.parsers.posix_acl import XATTR_NAME, XFS_ACL_NAME, parse_xfs_acl
from vmsec.parsers.xfs_attr import XFS_ATTR_ROOT, shortform_attribute

_XFS_LOCAL, _XFS_EXTENTS = 1, 2  # an inode fork's format (xfs_dinode_fmt): in the inode, in extents

_CHUNK = 65536


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _join(parts: list[str]) -> str:
    return "/" + "/".join(parts)


class DissectReader(ReaderBase):
    """Read-only, bounded access to one guest filesystem view (a dissect ``Filesystem``, usually
    ``Target.fs`` with the guest's own mounts). ``label`` names it in errors ("disk.qcow2")."""

    def __init__(self, fs: Any, label: str) -> None:
        self._fs = fs
        self._label = label
        self._names: dict[str, dict[int, str]] = {}

    @property
    def label(self) -> str:
        return self._label

    # --- resolution -------------------------------------------------------------------------

    def _get(self, resolved: list[str]) -> Any:
        """The entry at a symlink-free path (dissect then follows nothing)."""
        try:
            return self._fs.get(_join(resolved))
        except (FileNotFoundError, KeyError) as exc:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT)) from exc
        except NotADirectoryError as exc:
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)) from exc
        except OSError:
            raise
        except Exception as exc:  # a corrupt inode, directory block or extent tree
            raise OSError(errno.EIO, f"filesystem error: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _lstat(entry: Any) -> Any:
        try:
            return entry.lstat()
        except OSError:
            raise
        except Exception as exc:
            raise OSError(errno.EIO, f"filesystem error: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _readlink(entry: Any) -> str:
        try:
            return str(entry.readlink())
        except Exception as exc:
            raise OSError(errno.EIO, f"unreadable symbolic link: {type(exc).__name__}: {exc}") from exc

    def _walk(self, path: str, follow_last: bool) -> tuple[str, Any, Any]:
        """Resolve ``path`` in the guest: (resolved path, entry, lstat of the entry)."""
        parts = deque(_split(path))
        resolved: list[str] = []
        hops = 0
        if not parts:
            entry = self._get(resolved)
            return "/", entry, self._lstat(entry)
        while parts:
            comp = parts.popleft()
            if comp == "..":
                if resolved:
                    resolved.pop()
                if not parts:
                    parts.append(".")
                continue
            if comp == ".":  # only appended above, to name the directory reached so far
                entry = self._get(resolved)
                return _join(resolved), entry, self._lstat(entry)
            candidate = [*resolved, comp]
            entry = self._get(candidate)
            info = self._lstat(entry)
            last = not parts
            if st.S_ISLNK(info.st_mode) and (follow_last or not last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links")
                target = self._readlink(entry)
                if target.startswith("/"):
                    resolved = []
                parts.extendleft(reversed(_split(target)))
                if not parts:
                    parts.append(".")
                continue
            if last:
                return _join(candidate), entry, info
            if not st.S_ISDIR(info.st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            resolved = candidate
        raise OSError(errno.ENOENT, "empty path")  # pragma: no cover - the loop always returns

    @staticmethod
    def _error(path: str, exc: OSError) -> ReadError:
        return ReadError.from_os(path, exc)

    # --- reading ----------------------------------------------------------------------------

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        try:
            _resolved, entry, info = self._walk(path, follow_last=True)
        except OSError as exc:
            raise self._error(path, exc) from exc
        if not st.S_ISREG(info.st_mode):
            kind = FileKind.from_mode(info.st_mode)
            raise ReadError(path, f"not a regular file ({kind}); not opened", ErrorKind.NOT_REGULAR)
        if info.st_size > limit:
            raise ReadError(path, f"file is {info.st_size} bytes, over the {limit}-byte limit",
                            ErrorKind.TOO_LARGE)
        try:
            fh = entry.open()
        except Exception as exc:
            raise ReadError(path, f"cannot open: {type(exc).__name__}: {exc}") from exc
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                chunk = fh.read(min(_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise ReadError(path, f"file is over the {limit}-byte limit", ErrorKind.TOO_LARGE)
        except ReadError:
            raise
        except Exception as exc:  # a corrupt extent map or a truncated image
            raise ReadError(path, f"read failed: {type(exc).__name__}: {exc}") from exc
        finally:
            close = getattr(fh, "close", None)
            if callable(close):
                close()
        return b"".join(chunks)

    def stat(self, path: str, follow: bool = True) -> FileStat:
        try:
            resolved, entry, info = self._walk(path, follow_last=follow)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return FileStat(path=path, exists=False)
            return FileStat(path=path, exists=None, error=exc.strerror or str(exc))
        uid = int(info.st_uid) if info.st_uid is not None else None
        gid = int(info.st_gid) if info.st_gid is not None else None
        return FileStat(path=path, exists=True, kind=FileKind.from_mode(info.st_mode),
                        mode=st.S_IMODE(info.st_mode), uid=uid, gid=gid,
                        owner=None if uid is None else self._lookup("/etc/passwd", uid),
                        group=None if gid is None else self._lookup("/etc/group", gid),
                        size=int(info.st_size), mtime=float(info.st_mtime), file_id=resolved,
                        **self._acl_fields(entry, int(info.st_mode)))

    def _acl_fields(self, entry: Any, mode: int) -> dict[str, Any]:
        """``acl``/``acl_error`` of an entry: read on ext2/3/4 (an xattr in ext4's layout) and on XFS
        when the inode holds its attributes itself (the short form: an ACL and a label fit). Anywhere
        else (btrfs, XFS attributes in blocks of their own) an ACL not looked for is unknown, not
        "none" — said so, so that a mode that is fine does not judge PASS."""
        # A disk image's filesystem is mounted in dissect's root filesystem, whose entries wrap the
        # layers' own: the ACL is the top layer's (reading only unwrapped ext entries had missed
        # every ACL of every image the collector opened).
        while getattr(entry, "entries", None):
            entry = entry.entries[-1]
        module = type(entry).__module__
        try:
            if module.endswith(".xfs"):
                return self._xfs_acl(entry.entry, mode)
            if not module.endswith(".extfs"):
                kind = module.rsplit(".", 1)[-1].upper()
                return {"acl_error": f"its ACL was not read (ACLs on {kind} filesystems are not read)"}
            attrs = entry.lattr()
            raw = next((bytes(a.value) for a in attrs if getattr(a, "name", None) == XATTR_NAME), None)
        except Exception as exc:  # a corrupt xattr block or inode: this file's ACL stays unknown
            return {"acl_error": f"its ACL could not be read: {type(exc).__name__}: {exc}"}
        acl, error = self._acl(raw, mode)
        return {"acl": acl, "acl_error": error}

    def _xfs_acl(self, inode: Any, mode: int) -> dict[str, Any]:
        """An XFS inode's access ACL (parsers/xfs_attr.py, parsers/posix_acl.py's XFS layout)."""
        core = inode.inode
        if not core.di_forkoff or (core.di_aformat == _XFS_EXTENTS and not inode.attr_extents):
            return {"acl": (), "acl_error": None}  # no attribute fork, or an empty one: no ACL
        if core.di_aformat != _XFS_LOCAL:
            return {"acl_error": "its ACL was not read (its XFS attributes are kept in blocks of their "
                                 "own, which vmsec does not read)"}
        value = shortform_attribute(inode.attrfork().read(), XFS_ACL_NAME, XFS_ATTR_ROOT)
        if value is None:
            return {"acl": (), "acl_error": None}
        try:
            entries = parse_xfs_acl(value, mode)
        except ValueError as exc:
            return {"acl_error": f"its ACL is malformed ({exc})"}
        return {"acl": self._named(entries), "acl_error": None}

    def readlink(self, path: str) -> str:
        try:
            _resolved, entry, info = self._walk(path, follow_last=False)
            if not st.S_ISLNK(info.st_mode):
                raise ReadError(path, "not a symbolic link", ErrorKind.NOT_REGULAR)
            return self._readlink(entry)
        except OSError as exc:
            raise self._error(path, exc) from exc

    def listdir(self, path: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]:
        """Names in a directory, sorted; at most ``limit`` (a larger directory raises ReadError)."""
        try:
            _resolved, entry, info = self._walk(path, follow_last=True)
        except OSError as exc:
            raise self._error(path, exc) from exc
        if not st.S_ISDIR(info.st_mode):
            # The path exists but is no directory: not "absent" (that is ENOTDIR on the way).
            raise ReadError(path, os.strerror(errno.ENOTDIR), ErrorKind.NOT_REGULAR)
        names: list[str] = []
        try:
            for name in entry.iterdir():
                if name in (".", ".."):
                    continue
                names.append(str(name))
                if len(names) > limit:
                    raise ReadError(path, f"directory has more than {limit} entries", ErrorKind.TOO_LARGE)
        except ReadError:
            raise
        except Exception as exc:
            raise ReadError(path, f"cannot list: {type(exc).__name__}: {exc}") from exc
        return sorted(names)


__all__ = ["DissectReader"]
