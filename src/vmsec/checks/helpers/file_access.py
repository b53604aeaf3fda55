"""Who besides the owner may read or write a file: the mode bits and, where the reader could read it,
the POSIX access ACL (``FileStat.acl``).

acl(5): a named user or group gets its entry's permissions under the mask; with an ACL the owning
group's permissions are its own entry (under the mask too), and the mode's group bits show the mask
rather than them. The checks that judge credential files, TLS keys and libvirt's configuration ask
these questions instead of reading the mode bits themselves.
"""

from __future__ import annotations

from collections.abc import Collection

from vmsec.facts import FileStat
from vmsec.parsers.posix_acl import acl_text

READ, WRITE = 0o4, 0o2


def group_bits(st: FileStat) -> int:
    """What the owning group may do (r=4, w=2, x=1)."""
    assert st.mode is not None
    if st.acl:
        own = next((e.perms for e in st.acl if e.tag == "group_obj"), None)
        if own is not None:
            return own & acl_mask(st)
    return (st.mode >> 3) & 0o7


def acl_mask(st: FileStat) -> int:
    return next((e.perms for e in st.acl or () if e.tag == "mask"), 0o7)


def acl_grants(st: FileStat, bit: int, groups_allowed: Collection[str], verb: str) -> list[str]:
    """The named users and groups the ACL lets ``verb`` the file (``bit`` under the mask), other than
    root and ``groups_allowed``, each as a reason: the mode bits alone do not show them."""
    mask = acl_mask(st)
    out = []
    for e in st.acl or ():
        if not e.perms & mask & bit or e.id == 0:
            continue
        if e.tag == "user":
            out.append(f"user {e.name or e.id} can {verb} it (ACL {acl_text(e)})")
        elif e.tag == "group" and (e.name or "") not in groups_allowed:
            out.append(f"group {e.name or e.id} can {verb} it (ACL {acl_text(e)})")
    return out


def mode_and_owners(st: FileStat) -> str:
    """``0640 root:shadow``; with an ACL, ``ls -l``'s ``+`` and the entries:
    ``0660+ root:root (user:bob:rw-, …)``."""
    who = f"{st.owner or st.uid}:{st.group or st.gid}"
    if st.acl:
        return f"{st.mode_text}+ {who} ({', '.join(acl_text(e) for e in st.acl)})"
    return f"{st.mode_text} {who}"
