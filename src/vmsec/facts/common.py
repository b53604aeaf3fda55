"""Facts shared by every target kind: file metadata, configuration settings and collection notes.

Facts are data: frozen structs with no I/O (msgspec.Struct: like frozen, slotted, keyword-only
dataclasses, built in C). Unknown is ``None``, never ``False``.
"""

from __future__ import annotations

import errno as _errno
import stat as _stat
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from msgspec import Struct, field, structs

T = TypeVar("T")


def evolve(fact: T, **changes: Any) -> T:
    """A copy of a fact with ``changes`` (facts are frozen msgspec Structs: class creation in C keeps
    importing them cheap, which every vmsec process pays; ``dataclasses.replace`` does not apply)."""
    if isinstance(fact, Struct):
        return structs.replace(fact, **changes)
    import dataclasses

    return dataclasses.replace(fact, **changes)  # type: ignore[type-var]


class FileKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    SOCKET = "socket"
    CHAR_DEVICE = "char-device"
    BLOCK_DEVICE = "block-device"
    FIFO = "fifo"
    OTHER = "other"

    @classmethod
    def from_mode(cls, mode: int) -> FileKind:
        for test, kind in (
            (_stat.S_ISREG, cls.FILE),
            (_stat.S_ISDIR, cls.DIRECTORY),
            (_stat.S_ISLNK, cls.SYMLINK),
            (_stat.S_ISSOCK, cls.SOCKET),
            (_stat.S_ISCHR, cls.CHAR_DEVICE),
            (_stat.S_ISBLK, cls.BLOCK_DEVICE),
            (_stat.S_ISFIFO, cls.FIFO),
        ):
            if test(mode):
                return kind
        return cls.OTHER


class AclEntry(Struct, frozen=True, kw_only=True, gc=False):
    """One entry of a file's POSIX access ACL that its mode bits do not show (vmsec.parsers.posix_acl)."""

    tag: str  # "user" / "group" (named, with ``id``), "group_obj" (the owning group), "mask"
    id: int | None = None  # uid or gid of a named entry
    perms: int = 0  # r=4, w=2, x=1, as stored (before the mask applies)
    name: str | None = None  # the account or group name, through the target's own /etc/passwd, /etc/group


class FileStat(Struct, frozen=True, kw_only=True, gc=False):
    """Metadata of one path on the target, as seen from inside the target's root.

    ``exists`` is ``None`` when the path could not be examined at all (then ``error`` says why).
    """

    path: str
    exists: bool | None
    kind: FileKind | None = None
    mode: int | None = None  # permission bits only (st_mode & 0o7777)
    uid: int | None = None
    gid: int | None = None
    owner: str | None = None  # resolved through the target's own /etc/passwd
    group: str | None = None
    size: int | None = None
    mtime: float | None = None
    error: str | None = None
    # What the path resolves to, for telling two paths to the same file apart from two files:
    # (device, inode) on a local root, the symlink-free path inside a disk image.
    file_id: tuple[int, int] | str | None = None
    # The access ACL's entries beyond the mode bits: () when the file has none, None when unknown —
    # and then ``acl_error`` says why (a reader that cannot read ACLs says so: SFTP, the guest agent,
    # btrfs in an image), so that a mode that is fine judges UNKNOWN, not PASS.
    acl: tuple[AclEntry, ...] | None = None
    acl_error: str | None = None  # why an ACL the file has could not be read

    @property
    def world_readable(self) -> bool | None:
        return None if self.mode is None else bool(self.mode & 0o004)

    @property
    def world_writable(self) -> bool | None:
        return None if self.mode is None else bool(self.mode & 0o002)

    @property
    def group_writable(self) -> bool | None:
        return None if self.mode is None else bool(self.mode & 0o020)

    @property
    def mode_text(self) -> str:
        return "unknown" if self.mode is None else f"{self.mode:04o}"


# A value in libvirt's configuration syntax (virConf): a string, an integer or a list of strings.
ConfValue = str | int | tuple[str, ...]


class Setting(Struct, frozen=True, kw_only=True, gc=False):
    """The effective value of one configuration key, with where it came from."""

    key: str
    value: ConfValue | None  # None: not set and no documented default
    explicit: bool  # True when the file sets it; False when the documented default applies
    path: str
    line: int | None = None

    @property
    def origin(self) -> str:
        if self.explicit:
            return f"{self.path}:{self.line}" if self.line else self.path
        return f"{self.path} (default)"

    def as_bool(self) -> bool | None:
        """libvirt treats integer 0/1 as booleans; anything else is not a boolean."""
        if isinstance(self.value, int):
            return self.value != 0
        return None

    def as_str(self) -> str | None:
        return self.value if isinstance(self.value, str) else None

    def as_list(self) -> tuple[str, ...] | None:
        return self.value if isinstance(self.value, tuple) else None


class ConfigFile(Struct, frozen=True, kw_only=True, gc=False):
    """A libvirt-syntax configuration file (libvirtd.conf, virtqemud.conf, qemu.conf …) plus the
    defaults libvirt documents for it, so that a missing key reads as libvirt would apply it.

    ``present`` is ``None`` when it could not be told whether the file exists; ``error`` is set when
    the file exists but could not be read or parsed. In both cases :meth:`setting` returns ``None``
    (unknown) rather than the default.
    """

    path: str
    present: bool | None
    values: Mapping[str, ConfValue] = field(default_factory=dict)
    lines: Mapping[str, int] = field(default_factory=dict)
    defaults: Mapping[str, ConfValue] = field(default_factory=dict)
    error: str | None = None

    @property
    def readable(self) -> bool:
        return self.present is not None and self.error is None

    def setting(self, key: str) -> Setting | None:
        """Effective setting for ``key``, or ``None`` when the file could not be read."""
        if not self.readable:
            return None
        if key in self.values:
            return Setting(key=key, value=self.values[key], explicit=True, path=self.path,
                           line=self.lines.get(key))
        return Setting(key=key, value=self.defaults.get(key), explicit=False, path=self.path)

    def is_set(self, key: str) -> bool:
        return key in self.values


class ErrorKind(StrEnum):
    """Why something could not be read: decided on this value, never on the wording of a message.

    Derived from the errno of the failed system call where there is one (:func:`kind_of_errno`).
    """

    ABSENT = "absent"  # ENOENT: the path does not exist (often a fact, not a failure)
    NOT_A_DIRECTORY = "not-a-directory"  # ENOTDIR: a component of the path is not a directory
    NOT_REGULAR = "not-regular"  # a FIFO, socket, device or directory where a file was expected
    TOO_LARGE = "too-large"  # over vmsec's cap for this kind of input (files, entries, records)
    DENIED = "denied"  # EACCES / EPERM
    LOOP = "loop"  # ELOOP: too many symbolic links, or an include cycle
    CHANGED = "changed"  # the file changed while it was being opened or read
    INVALID = "invalid"  # read, but not valid for its format (a parse error)
    UNSUPPORTED = "unsupported"  # a format or variant vmsec does not read
    TIMEOUT = "timeout"  # the source did not answer in time
    UNREACHABLE = "unreachable"  # a remote source could not be connected to
    IO = "io-error"  # any other failure

    @property
    def absent(self) -> bool:
        """True when the error only says that the path does not exist (ENOENT or ENOTDIR)."""
        return self in (ErrorKind.ABSENT, ErrorKind.NOT_A_DIRECTORY)


_ERRNO_KINDS = {
    _errno.ENOENT: ErrorKind.ABSENT, _errno.ENOTDIR: ErrorKind.NOT_A_DIRECTORY,
    _errno.EISDIR: ErrorKind.NOT_REGULAR, _errno.EACCES: ErrorKind.DENIED, _errno.EPERM: ErrorKind.DENIED,
    _errno.ELOOP: ErrorKind.LOOP, _errno.EFBIG: ErrorKind.TOO_LARGE, _errno.ETIMEDOUT: ErrorKind.TIMEOUT,
    _errno.ECONNREFUSED: ErrorKind.UNREACHABLE, _errno.EHOSTUNREACH: ErrorKind.UNREACHABLE,
    _errno.ENETUNREACH: ErrorKind.UNREACHABLE, _errno.ENXIO: ErrorKind.NOT_REGULAR,
}


def kind_of_errno(code: int | None) -> ErrorKind:
    """The :class:`ErrorKind` for an ``errno`` value (IO for anything not listed)."""
    return _ERRNO_KINDS.get(code or 0, ErrorKind.IO)


class CollectionRecord(Struct, frozen=True, kw_only=True, gc=False):
    """What a collector tried to read and how that went: errors are results, never only log lines."""

    source: str  # a path, a URI or a fact name
    what: str  # short description: "qemu.conf", "domain XML", "cpu vulnerabilities"
    ok: bool
    reason: str | None = None
    duration_s: float | None = None
    kind: ErrorKind | None = None  # why it failed (None for a success, or an unclassified note)
