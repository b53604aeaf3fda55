"""Groups that are root in all but name: membership of docker, lxd, disk or libvirt gives a user
root on the system without sudo, without a password and without a log line saying so.

Facts are /etc/group (explicit members, of every line with the group's GID), /etc/passwd (an
account whose primary group is the group is a member too) and /etc/gshadow (a group administrator
adds members with gpasswd, themselves included; a group password lets whoever knows it in with
newgrp).
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, need, ok, unknown
from vmsec.facts import Group, Guest

# group -> (why membership is root, severity)
ROOT_EQUIVALENT: dict[str, tuple[str, Severity]] = {
    "docker": ("the Docker socket starts a container with the host's / mounted", Severity.HIGH),
    "lxd": ("LXD starts a privileged container with the host's / mounted", Severity.HIGH),
    "incus-admin": ("Incus starts a privileged container with the host's / mounted", Severity.HIGH),
    "disk": ("raw read and write access to the block devices, file systems included", Severity.HIGH),
    "libvirt": ("libvirt's read-write socket defines a VM that attaches any host disk", Severity.HIGH),
    "shadow": ("reading /etc/shadow: every password hash", Severity.MEDIUM),
}


def _shown(names: list[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


@check("VMS-GST-148", title="No user is in a root-equivalent group (docker, lxd, disk, libvirt, shadow)",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "accounts", "groups"),
       references=("https://docs.docker.com/engine/security/#docker-daemon-attack-surface",
                   "https://wiki.debian.org/SystemGroups",
                   "https://libvirt.org/auth.html"))
def root_equivalent_groups(guest: Guest, env: Environment) -> Iterator[Result]:
    """Some groups hand out root: a `docker` or `lxd` member starts a container that mounts the
    host's root file system, a `disk` member writes the block devices under the file systems, a
    `libvirt` member defines a VM that attaches the host's disks, a `shadow` member reads every
    password hash (medium). Each is root without sudo's password prompt or its log. A member is
    listed in /etc/group, or has the group as primary group in /etc/passwd. A group administrator in
    /etc/gshadow is one in waiting (`gpasswd -a` needs no other right), and so is anyone who knows a
    group password set there (`newgrp`); with /etc/gshadow unread, a group without members is UNKNOWN.

    Remediation: Remove the users from these groups (`gpasswd -d USER GROUP`), the administrators and
    passwords from /etc/gshadow (`gpasswd -A "" GROUP`, `gpasswd -r GROUP`); give administrators
    sudo rules instead, and use rootless Docker or Podman for developers.
    """
    groups = need(guest.groups, "/etc/group could not be read")
    accounts = need(guest.accounts, "/etc/passwd could not be read")
    # The group is its GID: the kernel and `id` know no names. Every /etc/group line with that GID
    # lists members of it — an alias under another name, a duplicate, a NIS "+name" line alike.
    named: dict[str, Group] = {}
    for group in groups:
        if group.name in ROOT_EQUIVALENT and group.name not in named:  # getgrnam: the first line
            named[group.name] = group
    for name, group in named.items():
        same = [g for g in groups if g is group or (group.gid is not None and g.gid == group.gid)]
        listed = [m for g in same for m in g.members]
        primary = [a.name for a in accounts
                   if group.gid is not None and a.gid == group.gid and a.name != "root"]
        members = list(dict.fromkeys([*listed, *primary]))
        why, severity = ROOT_EQUIVALENT[name]
        where = [ev(g.origin, g.name, ",".join(g.members) or "(no members)") for g in same[:4]]
        # gpasswd and newgrp look the group up by name in /etc/gshadow: the first line of that name.
        gshadow = next((e for e in guest.group_shadow or () if e.name == name), None)
        admins = [a for a in gshadow.admins if a != "root"] if gshadow is not None else []
        ways = []
        if members:
            ways.append(f"member(s) {_shown(members)}")
        if admins:
            ways.append(f"administrator(s) {_shown(admins)}, who can add members with gpasswd")
        if gshadow is not None and gshadow.password:
            ways.append("a group password, with which anyone who knows it joins with newgrp")
        if gshadow is not None:
            where.append(ev(gshadow.origin, name, f"administrators {','.join(gshadow.admins) or '(none)'}"
                            + ("; password set" if gshadow.password else "")))
        gid = f" (GID {group.gid})" if group.gid is not None else ""
        if ways:
            yield fail(f"group {name}", f"group {name}{gid} has {'; '.join(ways)}: {why}", *where,
                       severity=severity)
        elif guest.group_shadow is None:
            yield unknown(f"group {name}", f"group {name}{gid} has no members, but /etc/gshadow could not "
                          "be read: an administrator named there could add members", *where)
        else:
            yield ok(f"group {name}", f"group {name}{gid} has no members", *where)
    if not named:
        yield ok("root-equivalent groups", "none of docker, lxd, incus-admin, disk, libvirt or shadow exists",
                 ev("/etc/group"))
