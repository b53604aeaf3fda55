"""Storage pools and libvirt secrets, judged across the inventory (target: the host).

Results are per pool (subject ``pool NAME``) or per secret (``secret UUID``). Without pools or
secrets nothing is yielded. When the host's secrets could not be listed, VMS-STO-003 is UNKNOWN;
an offline XML scan without a host yields nothing, since there are no host secrets to judge.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.domain.filesystems import normalise
from vmsec.facts import Disk, Domain, Inventory, StoragePool
from vmsec.results import host_target

_REF_STORAGE = "https://libvirt.org/formatstorage.html"
_REF_SECRET = "https://libvirt.org/formatsecret.html"
_REF_SECUSE = "https://libvirt.org/kbase/secureusage.html"
NETWORK_POOL_TYPES = frozenset({"netfs", "iscsi", "iscsi-direct", "rbd", "gluster", "sheepdog"})
# Pools whose target is a directory of image files (others point at /dev or have no target).
_DIRECTORY_POOL_TYPES = frozenset({"dir", "fs", "netfs"})


def _within(path: str, base: str) -> bool:
    p = [c for c in posixpath.normpath(path).split("/") if c]
    b = [c for c in posixpath.normpath(base).split("/") if c]
    return bool(b) and p[: len(b)] == b


def disks_in_pool(pool: StoragePool, domains: tuple[Domain, ...]) -> list[tuple[Domain, Disk]]:
    """Domain disks stored in ``pool``: named by pool, or files below its target path."""
    found = []
    for dom in domains:
        for disk in dom.disks:
            if disk.source_pool == pool.name or (
                    pool.target_path and disk.source_file and _within(disk.source_file, pool.target_path)):
                found.append((dom, disk))
    return found


@check("VMS-STO-001", title="Storage pool directories are not world-accessible", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "storage", "permissions"),
       references=(_REF_STORAGE, "https://www.qemu.org/docs/master/system/security.html"))
def pool_permissions(inv: Inventory, env: Environment) -> Iterator[Result]:
    """A pool directory that everyone may list (world-read) reveals every guest image name and, with
    a careless image mode, its data; a world-writable one lets any local user replace or add images
    that guests then boot (high). The mode in the pool definition is what libvirt applies when it
    builds the directory; the directory's actual mode, when the host collector read it, wins.

    Remediation: `<permissions><mode>0711</mode></permissions>` (or 0700) on the pool target, owned
    by root or the QEMU user, then `chmod 0711 <path>`; images themselves 0600.
    """
    target = host_target(env.host)
    for pool in inv.pools:
        if pool.type not in _DIRECTORY_POOL_TYPES or not pool.target_path:
            continue
        subject = f"pool {pool.name}"
        path = normalise(pool.target_path)
        stat = env.host.path_stat(path) if env.host else None
        if stat is not None and stat.mode is not None:
            mode, where = stat.mode, ev(stat.path, "mode", stat.mode_text)
        elif pool.mode is not None:
            mode, where = pool.mode, ev(pool.origin, "target/permissions/mode", f"{pool.mode:04o}")
        else:
            yield unknown(subject, f"pool {pool.name} states no target mode and {path} "
                          "was not examined", ev(pool.origin, "target/permissions/mode", None),
                          target=target)
            continue
        if mode & 0o002:
            yield fail(subject, f"pool directory {path} is world-writable (mode {mode:04o})", where,
                       severity=Severity.HIGH, target=target)
        elif mode & 0o004:
            yield fail(subject, f"pool directory {path} is world-readable (mode {mode:04o})", where,
                       target=target)
        else:
            yield ok(subject, f"pool directory {path} has mode {mode:04o}", where, target=target)


@check("VMS-STO-002", title="Volumes on network storage pools are encrypted", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "storage", "network-storage"),
       references=(_REF_SECUSE, "https://libvirt.org/formatstorageencryption.html"))
def network_pool_encryption(inv: Inventory, env: Environment) -> Iterator[Result]:
    """Images on NFS, iSCSI, Ceph RBD or Gluster pools sit on storage that other administrators run
    and travel over networks that are often cleartext: libvirt's secure-usage guide recommends
    encrypting guest storage against rogue storage and network admins. Judged through the disks
    VMs use from the pool; a pool no scanned VM uses is UNKNOWN, since volume definitions are not
    collected.

    Remediation: Create volumes with `<encryption format='luks'>` and a libvirt secret, and attach
    them with the matching `<encryption>` in the domain.
    """
    target = host_target(env.host)
    for pool in inv.pools:
        if pool.type not in NETWORK_POOL_TYPES:
            continue
        subject = f"pool {pool.name}"
        where = ev(pool.origin, "pool/@type", pool.type)
        used = disks_in_pool(pool, inv.domains)
        if not used:
            yield unknown(subject, f"no scanned VM uses {pool.type} pool {pool.name}; its volumes' "
                          "encryption is unknown", where, target=target)
            continue
        plain = [f"{dom.name}:{disk.target_dev or disk.locator}" for dom, disk in used
                 if disk.encryption is None or disk.encryption.format == "qcow"]
        if plain:
            listed = ", ".join(plain[:10]) + (" …" if len(plain) > 10 else "")
            yield fail(subject, f"{len(plain)} disk(s) on {pool.type} pool {pool.name} are not "
                       f"LUKS-encrypted: {listed}", where, target=target)
        else:
            yield ok(subject, f"all {len(used)} disk(s) on {pool.type} pool {pool.name} are encrypted",
                     where, target=target)


@check("VMS-STO-003", title="libvirt secrets are private", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "secrets"), references=(_REF_SECRET,))
def secrets_private(inv: Inventory, env: Environment) -> Iterator[Result]:
    """A secret with `private='no'` — libvirt's default — can be read back over the API
    (`virsh secret-get-value`) by any client with a read-write connection: disk-encryption
    passphrases, vTPM state keys, Ceph and iSCSI credentials. Private secrets can be used by
    libvirt but never returned.

    Remediation: Define secrets with `<secret private='yes'>` (undefine and redefine: the flag
    cannot be changed in place) and set the value again.
    """
    target = host_target(env.host)
    secrets = inv.secrets
    if secrets is None:
        if env.host is not None:
            yield unknown("secrets", "the host's libvirt secrets could not be listed", target=target)
        return
    for secret in secrets:
        usage = f"{secret.usage_type} {secret.usage_id}" if secret.usage_type else "no usage"
        subject = f"secret {secret.uuid or secret.origin}"
        value = None if secret.private is None else ("yes" if secret.private else "no")
        where = ev(secret.origin, "secret/@private", value)
        if secret.private:
            yield ok(subject, f"secret ({usage}) is private", where, target=target)
        else:
            stated = "private='no'" if secret.private is False else "no private attribute (default no)"
            yield fail(subject, f"secret ({usage}) can be read back over the API: {stated}", where,
                       target=target)


__all__ = ["NETWORK_POOL_TYPES", "disks_in_pool", "network_pool_encryption", "pool_permissions",
           "secrets_private"]
