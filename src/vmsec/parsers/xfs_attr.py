"""An extended attribute kept inside an XFS inode: the attribute fork's short form.

dissect.xfs gives an inode's attribute fork as raw bytes and parses none of it. Small attribute sets
(an ACL, an SELinux label) live in the inode itself, in the short form of fs/xfs/libxfs/xfs_da_format.h:
``struct xfs_attr_sf_hdr`` (``be16 totsize, u8 count, u8 pad``), then ``count`` entries of ``u8
namelen, u8 valuelen, u8 flags`` followed by the name and the value. The flags name the namespace:
root (trusted/system, where XFS keeps ACLs) or secure; none is the user namespace. Larger sets go to
blocks outside the inode (the extents or B-tree forms), which this module does not read.

The bytes come from the scanned image: every length is checked against the header's total and the
fork, so a malformed fork raises ``ValueError`` instead of reading past it.
"""

from __future__ import annotations

import struct

XFS_ATTR_ROOT = 0x02
XFS_ATTR_SECURE = 0x04
XFS_ATTR_INCOMPLETE = 0x80  # never valid in the short form (the kernel calls such a fork corrupt)
_NAMESPACES = XFS_ATTR_ROOT | XFS_ATTR_SECURE
_HEADER = struct.Struct(">HBx")


def shortform_attribute(fork: bytes, name: bytes, namespace: int) -> bytes | None:
    """The value of attribute ``name`` in ``namespace`` (a flag above, 0: user) of a short-form
    attribute fork; None when it has no such attribute."""
    if len(fork) < _HEADER.size:
        raise ValueError("shorter than an XFS attribute fork header")
    total, count = _HEADER.unpack_from(fork)
    if not _HEADER.size <= total <= len(fork):
        raise ValueError(f"an XFS attribute fork of {total} bytes in {len(fork)}")
    # Checked as the kernel checks a short form before it uses one (xfs_attr_shortform_verify): every
    # entry whole and named, in one namespace at most, nothing half-set, the entries ending exactly
    # at the total. A fork it would call corrupt must not read as "no such attribute".
    offset, found = _HEADER.size, None
    for _ in range(count):
        if offset + 3 > total:
            raise ValueError("a truncated XFS attribute entry")
        name_length, value_length, flags = fork[offset], fork[offset + 1], fork[offset + 2]
        start = offset + 3
        end = start + name_length + value_length
        if end > total:
            raise ValueError("an XFS attribute entry runs past the fork")
        if not name_length or flags & ~_NAMESPACES or flags == _NAMESPACES:
            raise ValueError(f"an XFS attribute entry the kernel calls corrupt (flags {flags:#x})")
        if found is None and flags == namespace and fork[start:start + name_length] == name:
            found = fork[start + name_length:end]
        offset = end
    if offset != total:
        raise ValueError(f"XFS attribute entries end at {offset}, not at the fork's total {total}")
    return found
