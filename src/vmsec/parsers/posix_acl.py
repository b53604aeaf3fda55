"""A file's POSIX access ACL (``system.posix_acl_access``) → the entries that widen its mode bits.

Two binary layouts carry the same list of (tag, permissions, id) entries:

- the one the kernel's getxattr(2) returns (linux/posix_acl_xattr.h): a little-endian version 2,
  then 8-byte entries ``u16 tag, u16 perm, u32 id``;
- the one ext2/3/4 keep on disk (fs/ext4/acl.h), which a disk image's reader sees: version 1, and
  the entries without a qualifier (owner, owning group, mask, others) are 4 bytes, ``u16 tag,
  u16 perm``.

Only the entries that the mode bits do not already say are kept: named users and groups, the owning
group's own entry and the mask. With an ACL, the mode's group bits are the mask — the most any named
entry or the owning group may have — not the owning group's permissions (acl(5)).

The value comes from the scanned machine: it is checked entry by entry, and anything malformed
(a short entry, an unknown tag or version, more entries than any filesystem stores) raises
``ValueError`` rather than yield a partial list.
"""

from __future__ import annotations

import struct

from vmsec.facts import AclEntry

XATTR_NAME = "system.posix_acl_access"

USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_NAMED = {USER: "user", GROUP: "group"}
_KEPT = {USER: "user", GROUP: "group", GROUP_OBJ: "group_obj", MASK: "mask"}
_VFS_VERSION, _EXT4_VERSION = 2, 1
# The kernel refuses ACLs over 32 entries on ext4 (one block) and a few thousand elsewhere (the
# 64 KiB xattr limit, 8 bytes an entry): anything longer is not an ACL a kernel wrote.
MAX_ENTRIES = 8192

_HEAD = struct.Struct("<I")
_SHORT = struct.Struct("<HH")
_FULL = struct.Struct("<HHI")


def parse_posix_acl(value: bytes, mode: int | None = None) -> tuple[AclEntry, ...]:
    """The named-user, named-group, owning-group and mask entries of an access ACL, in stored order —
    once the whole ACL is one the kernel would accept and agrees with the file's ``mode`` (when
    given): see :func:`check_acl`."""
    if len(value) < _HEAD.size:
        raise ValueError("shorter than an ACL header")
    (version,) = _HEAD.unpack_from(value)
    if version not in (_VFS_VERSION, _EXT4_VERSION):
        raise ValueError(f"unknown ACL version {version}")
    raw: list[tuple[int, int | None, int]] = []
    offset, end, count = _HEAD.size, len(value), 0
    while offset < end:
        count += 1
        if count > MAX_ENTRIES:
            raise ValueError(f"more than {MAX_ENTRIES} ACL entries")
        if end - offset < _SHORT.size:
            raise ValueError("a truncated ACL entry")
        tag, perm = _SHORT.unpack_from(value, offset)
        if tag not in (USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER):
            raise ValueError(f"unknown ACL entry tag {tag:#x}")
        ident: int | None = None
        if version == _VFS_VERSION or tag in _NAMED:
            if end - offset < _FULL.size:
                raise ValueError("a truncated ACL entry")
            _tag, _perm, raw_id = _FULL.unpack_from(value, offset)
            ident = raw_id if tag in _NAMED else None
            offset += _FULL.size
        else:
            offset += _SHORT.size
        raw.append((tag, ident, perm))
    return check_acl(raw, mode)


def check_acl(raw: list[tuple[int, int | None, int]], mode: int | None) -> tuple[AclEntry, ...]:
    """The kept entries of an ACL read from a disk or a kernel that did not check it: ``ValueError``
    unless it is one the kernel accepts (``posix_acl_valid``: the owner, then named users, the owning
    group, named groups, a mask — required with named entries — and others, once each, permissions
    within rwx) and, with ``mode``, one the kernel keeps in step with the mode bits (owner and others
    the mode's, the mask — or the owning group without one — its group bits). An ACL edited on disk
    can say otherwise, and the kernel then decides from the ACL's own owner, others and order: read
    as the mode bits plus named entries, it would be misread — so it is refused, and unknown."""
    state, needs_mask, done = USER_OBJ, False, 0  # the kernel's walk (fs/posix_acl.c)
    perms: dict[int, int] = {}
    for tag, _ident, perm in raw:
        if perm & ~0o7:
            raise ValueError(f"ACL permissions {perm:#o} beyond rwx")
        if tag == USER_OBJ and state == USER_OBJ:
            state = USER
        elif (tag == USER and state == USER) or (tag == GROUP and state == GROUP):
            needs_mask = True
        elif tag == GROUP_OBJ and state == USER:
            state = GROUP
        elif tag == MASK and state == GROUP:
            state = OTHER
        elif tag == OTHER and (state == OTHER or (state == GROUP and not needs_mask)):
            state = done
        else:
            raise ValueError("ACL entries out of the order or number the kernel accepts")
        perms.setdefault(tag, perm)
    if state != done:
        raise ValueError("an ACL without its owner, owning group, others or (with named entries) mask")
    if mode is not None and (perms[USER_OBJ] != (mode >> 6) & 7 or perms[OTHER] != mode & 7
                             or perms.get(MASK, perms[GROUP_OBJ]) != (mode >> 3) & 7):
        raise ValueError(f"an ACL that disagrees with the mode bits {mode & 0o777:04o}")
    return tuple(AclEntry(tag=_KEPT[tag], id=ident if tag in _NAMED else None, perms=perm)
                 for tag, ident, perm in raw if tag in _KEPT)


def acl_text(entry: AclEntry) -> str:
    """An entry as getfacl(1) writes it: ``user:bob:rw-``, ``group::r--``, ``mask::rw-``."""
    bits = "".join(ch if entry.perms & bit else "-" for ch, bit in (("r", 4), ("w", 2), ("x", 1)))
    tag = {"group_obj": "group", "user": "user", "group": "group", "mask": "mask"}[entry.tag]
    who = entry.name or (str(entry.id) if entry.id is not None else "")
    return f"{tag}:{who}:{bits}"


# XFS keeps a file's access ACL as the attribute "SGI_ACL_FILE" in its root namespace, in a layout
# of its own (fs/xfs/libxfs/xfs_format.h, struct xfs_acl): a big-endian count, then 12-byte entries
# ``be32 tag, be32 id, be16 perm, be16 pad`` with the same tags as above.
XFS_ACL_NAME = b"SGI_ACL_FILE"
_XFS_COUNT = struct.Struct(">I")
_XFS_ENTRY = struct.Struct(">IIHH")


def parse_xfs_acl(value: bytes, mode: int | None = None) -> tuple[AclEntry, ...]:
    """The entries :func:`parse_posix_acl` keeps, from XFS's own layout; ``ValueError`` when the value is
    not one (a count that disagrees with its length, an unknown tag, an ACL :func:`check_acl` refuses)."""
    if len(value) < _XFS_COUNT.size:
        raise ValueError("shorter than an XFS ACL header")
    (count,) = _XFS_COUNT.unpack_from(value)
    if count > MAX_ENTRIES or len(value) != _XFS_COUNT.size + count * _XFS_ENTRY.size:
        raise ValueError(f"an XFS ACL of {len(value)} bytes cannot hold {count} entries")
    raw: list[tuple[int, int | None, int]] = []
    for tag, ident, perm, _pad in _XFS_ENTRY.iter_unpack(value[_XFS_COUNT.size:]):
        if tag not in (USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER):
            raise ValueError(f"unknown ACL entry tag {tag:#x}")
        raw.append((tag, ident if tag in _NAMED else None, perm))
    return check_acl(raw, mode)
