"""Give a file a POSIX access ACL in tests, the way setfacl(1) does: through setxattr(2) in the kernel's
own layout (linux/posix_acl_xattr.h), which the kernel validates and turns into the file's ACL (and
its mode's group bits into the mask). No acl package needed.

A spec is setfacl's short text for the extra entries: ``user:1001:rw-,group:42:r--,mask::r--``
(numeric ids). The owner, owning group and others keep the file's mode bits unless the spec names
``group::``; without ``mask::`` the mask is the union of the group entries, as setfacl computes it.
"""

from __future__ import annotations

import os
import stat
import struct

_TAGS = {"user_obj": 0x01, "user": 0x02, "group_obj": 0x04, "group": 0x08, "mask": 0x10, "other": 0x20}
_NO_ID = 0xFFFFFFFF


def _perms(text: str) -> int:
    return sum(bit for ch, bit in (("r", 4), ("w", 2), ("x", 1)) if ch in text)


def acl_xattr(mode: int, spec: str) -> bytes:
    """The xattr value of ``mode``'s bits plus the entries of ``spec``."""
    entries: dict[tuple[int, int], int] = {
        (_TAGS["user_obj"], _NO_ID): (mode >> 6) & 7,
        (_TAGS["group_obj"], _NO_ID): (mode >> 3) & 7,
        (_TAGS["other"], _NO_ID): mode & 7}
    mask = None
    for item in filter(None, spec.split(",")):
        tag, ident, bits = item.split(":")
        if tag == "mask":
            mask = _perms(bits)
        elif ident:
            entries[(_TAGS[tag], int(ident))] = _perms(bits)
        else:
            entries[(_TAGS["group_obj" if tag == "group" else "user_obj"], _NO_ID)] = _perms(bits)
    if mask is None:
        mask = 0
        for (tag, _ident), perms in entries.items():
            if tag in (_TAGS["user"], _TAGS["group_obj"], _TAGS["group"]):
                mask |= perms
    entries[(_TAGS["mask"], _NO_ID)] = mask
    # The kernel wants them ordered by tag, then id (posix_acl_valid).
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perms, ident)
                                           for (tag, ident), perms in sorted(entries.items()))


def set_acl(path: str | os.PathLike[str], spec: str) -> None:
    mode = stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)
    os.setxattr(path, "system.posix_acl_access", acl_xattr(mode, spec), follow_symlinks=False)
