"""Disks: host block devices given to guests, sources shared between VMs, backing chains,
encryption at rest, network storage transports and I/O limits.

Results are per disk (subject ``disk devices/disk[N]``). A domain without disks, or without the
kind of disk a check is about, yields nothing — except VMS-DOM-106 (resource limits), which is a
per-VM property and yields one result per VM on multi-tenant hosts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from vmsec.checks.addresses import is_loopback
from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.domain.filesystems import normalise
from vmsec.checks.helpers.qemuconf import QemuConf
from vmsec.checks.helpers.text import other_names
from vmsec.facts import BackingStore, Disk, Domain, Inventory
from vmsec.results import domain_target

_REF_QEMU_SEC = "https://www.qemu.org/docs/master/system/security.html"
_REF_SECUSE = "https://libvirt.org/kbase/secureusage.html"
_REF_BACKING = "https://libvirt.org/kbase/backing_chains.html"
_REF_DISKS = "https://libvirt.org/formatdomain.html#hard-drives-floppy-disks-cdroms"
_REF_STORAGE_ENC = "https://libvirt.org/formatstorageencryption.html"

# Storage protocols that carry guest data in cleartext with no transport encryption available.
_CLEARTEXT_PROTOCOLS = frozenset({"http", "ftp", "tftp", "iscsi", "gluster", "sheepdog", "nfs"})
_NETWORK_POOL_TYPES = frozenset({"netfs", "iscsi", "iscsi-direct", "rbd", "gluster", "sheepdog"})
_NETWORK_SCHEMES = re.compile(
    r"^(nbd|nbd\+unix|nbd\+tcp|http|https|ftp|ftps|tftp|rbd|iscsi|gluster|gluster\+\w+|ssh|sheepdog|"
    r"nfs|vxhs|json):", re.IGNORECASE)

_WHOLE_DISK = re.compile(r"^/dev/(?:(?:s|v|h|xv)d[a-z]+|nvme\d+n\d+|mmcblk\d+|md\d+|md/[^/]+)$")
_PARTITION = re.compile(r"^/dev/(?:(?:s|v|h|xv)d[a-z]+\d+|nvme\d+n\d+p\d+|mmcblk\d+p\d+|md\d+p\d+)$")
_LOGICAL = re.compile(r"^/dev/(?:mapper/.+|dm-\d+|zd\d+|zvol/.+|[^/]+/[^/]+)$")


def block_device_kind(dev: str) -> str:
    """Classify a host block device path: ``whole``, ``partition``, ``logical`` or ``other``."""
    path = normalise(dev)
    if path.startswith("/dev/disk/"):
        kind, _, name = path.removeprefix("/dev/disk/").partition("/")
        if kind in ("by-uuid", "by-label", "by-partuuid", "by-partlabel"):
            return "partition"
        if name.startswith(("dm-", "lvm-")):
            return "logical"
        if re.search(r"-part\d+$", name):
            return "partition"
        return "whole" if kind in ("by-id", "by-path", "by-diskseq") else "other"
    if _WHOLE_DISK.match(path):
        return "whole"
    if _PARTITION.match(path):
        return "partition"
    if _LOGICAL.match(path):
        return "logical"
    return "other"


def _read_only(disk: Disk) -> bool:
    return disk.readonly or disk.device in ("cdrom", "floppy")


def _source_locator(disk: Disk) -> str:
    if disk.source_file:
        return disk.locator + "/source/@file"
    if disk.source_dev:
        return disk.locator + "/source/@dev"
    if disk.source_protocol:
        return disk.locator + "/source/@protocol"
    if disk.source_pool:
        return disk.locator + "/source/@pool"
    return disk.locator + "/source"


def _subject(disk: Disk) -> str:
    return f"disk {disk.locator}"


def source_key(disk: Disk) -> str | None:
    """What identifies a disk's storage across VMs (paths normalised), or None without a source."""
    if disk.source_file:
        return "file:" + normalise(disk.source_file)
    if disk.source_dev:
        return "dev:" + normalise(disk.source_dev)
    if disk.source_protocol:
        hosts = ",".join(sorted(disk.source_hosts))
        return f"net:{disk.source_protocol}:{hosts}:{disk.source_name or ''}"
    if disk.source_pool:
        return f"vol:{disk.source_pool}/{disk.source_volume or ''}"
    return None


@check("VMS-DOM-100", title="Guests get no whole host disk", severity=Severity.HIGH,
       tags=(Tag.ISOLATION, "disk", "block-device"),
       references=(_REF_SECUSE, "https://libvirt.org/kbase/secureusage.html#storage"))
def no_whole_host_disk(dom: Domain) -> Iterator[Result]:
    """A guest that can write a whole host disk writes its partition table and filesystem labels;
    the host may later probe, auto-assemble or mount what the guest wrote. Read-only, a whole disk
    still exposes every partition on it (medium). A partition or logical volume is the recommended
    form; writable it can still carry a label the host probes (low). A host NVMe controller given
    with `type='nvme'` is a whole disk.

    Remediation: Give the guest a dedicated logical volume or partition rather than `/dev/sdX` or
    `/dev/nvmeXnY`, make sure the host does not mount by label, and add `<readonly/>` where possible.
    """
    for disk in dom.disks:
        if disk.type == "nvme":
            where = ev(dom.origin, disk.locator + "/source/address", disk.source_dev)
            kind, dev = "whole", f"NVMe controller {disk.source_dev or '?'}"
        elif disk.type == "block" and disk.source_dev:
            where = ev(dom.origin, disk.locator + "/source/@dev", disk.source_dev)
            kind, dev = block_device_kind(disk.source_dev), disk.source_dev
        else:
            continue
        ro = _read_only(disk)
        mode = "read-only" if ro else "writable"
        subject = _subject(disk)
        if kind == "whole":
            yield fail(subject, f"the guest gets whole host disk {dev}, {mode}", where,
                       severity=Severity.MEDIUM if ro else None)
        elif ro:
            yield ok(subject, f"host block device {dev} ({kind}) is read-only", where)
        else:
            yield fail(subject, f"host block device {dev} ({kind}) is writable by the guest", where,
                       severity=Severity.LOW)


@check("VMS-DOM-101", title="No writable disk source is used by two VMs unless shareable",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "disk", "cross-vm"),
       references=(_REF_QEMU_SEC, "https://libvirt.org/kbase/locking.html"))
def no_shared_writable_disk(inv: Inventory, env: Environment) -> Iterator[Result]:
    """QEMU's security model: disk images must be protected from other guests unless explicitly
    shared. A source writable in two VMs is cross-VM data exposure and, without a clustered
    filesystem, corruption; one writer and another VM reading it is data exposure (medium).
    `<shareable/>` in every writing VM marks the sharing as deliberate. Paths are compared after
    lexical normalisation; symlinks and hard links on the host are not resolved.

    Remediation: Give each VM its own image; where sharing is intended (cluster filesystems), mark
    the disk `<shareable/>` in every VM, and enable a lock manager (`lock_manager = "lockd"`).
    """
    users: dict[str, list[tuple[Domain, Disk]]] = {}
    for dom in inv.domains:
        for disk in dom.disks:
            key = source_key(disk)
            if key is not None:
                users.setdefault(key, []).append((dom, disk))
    for group in users.values():
        # A source shared by thousands of VMs (a distribution ISO) must not cost thousands squared:
        # names are sorted once per source and each VM's message shows a bounded few of the others.
        names = {dom.name for dom, _ in group}
        writers = [(dom, disk) for dom, disk in group if not _read_only(disk)]
        writer_names = {dom.name for dom, _ in writers}
        ordered, ordered_writers = sorted(names), sorted(writer_names)
        deliberate = all(disk.shareable for _, disk in writers)
        for dom, disk in group:
            target = domain_target(dom, env.host, env.ambiguous_names)
            where = ev(dom.origin, _source_locator(disk), disk.source)
            mode = "read-only" if _read_only(disk) else "writable"
            if len(names) == 1:
                if not _read_only(disk):
                    yield ok(_subject(disk), f"source {disk.source} is used by no other VM", where,
                             target=target)
                continue
            if not writers:
                yield ok(_subject(disk), f"source {disk.source} is read-only in every VM using it",
                         where, target=target)
            elif deliberate:
                yield ok(_subject(disk), f"source {disk.source} is marked <shareable/> by every VM "
                         f"that writes it ({other_names(ordered_writers, len(ordered_writers))})", where,
                         target=target)
            else:
                other_writers = len(writer_names) - (dom.name in writer_names)
                desc = (f"also written by {other_names(ordered_writers, other_writers, but=dom.name)}"
                        if other_writers else
                        f"also used by {other_names(ordered, len(names) - 1, but=dom.name)}")
                sev = None if len(writer_names) >= 2 else Severity.MEDIUM
                yield fail(_subject(disk), f"source {disk.source} ({mode} here) is {desc} "
                           "without <shareable/>", where, severity=sev, target=target)


def _backing_locator(disk: Disk, index: int) -> str:
    return disk.locator + "/backingStore" * (index + 1)


def _real_backing(disk: Disk) -> list[tuple[int, BackingStore]]:
    return [(i, b) for i, b in enumerate(disk.backing_chain or ()) if not b.terminated]


@check("VMS-DOM-102", title="Every backing file has a recorded format", severity=Severity.HIGH,
       tags=(Tag.ISOLATION, "disk", "backing-chain"),
       references=(_REF_BACKING, _REF_SECUSE))
def backing_formats_recorded(dom: Domain) -> Iterator[Result]:
    """A backing file whose format is not recorded gets probed: a raw image written by the guest
    that looks like qcow2 can then name any host file as *its* backing file and read it. A disk
    without `driver/@type` is not a finding by itself: libvirt treats it as raw and does not probe.

    Remediation: Record the format of every layer (`qemu-img rebase -f qcow2 -F <fmt> -b <backing>`)
    and let libvirt see it in `<backingStore><format type='…'/>`; terminate chains with
    `<backingStore/>`.
    """
    for disk in dom.disks:
        if disk.backing_chain is None or not disk.backing_chain:
            continue
        entries = _real_backing(disk)
        if not entries:
            yield ok(_subject(disk), "the backing chain is terminated: the image has no backing file",
                     ev(dom.origin, disk.locator + "/backingStore", "empty"))
            continue
        missing = [(i, b) for i, b in entries if not b.format]
        if missing:
            evidence = [ev(dom.origin, _backing_locator(disk, i) + "/format", None) for i, _ in missing]
            names = ", ".join(b.source or "?" for _, b in missing)
            yield fail(_subject(disk), f"backing file(s) without a recorded format: {names}", *evidence)
        else:
            formats = ", ".join(f"{b.source or '?'} ({b.format})" for _, b in entries)
            yield ok(_subject(disk), f"every backing file has a format: {formats}",
                     ev(dom.origin, disk.locator + "/backingStore/format/@type", entries[0][1].format))


def _is_network_backing(b: BackingStore) -> bool:
    return b.type == "network" or bool(b.source and _NETWORK_SCHEMES.match(b.source))


@check("VMS-DOM-103", title="Backing files are local, not network locations", severity=Severity.HIGH,
       tags=(Tag.ISOLATION, "disk", "backing-chain"),
       references=(_REF_BACKING, _REF_SECUSE))
def backing_files_local(dom: Domain) -> Iterator[Result]:
    """A backing file on a network location (`nbd:`, `http:`, `rbd:`, `json:` …) usually comes
    from an image header nobody reviewed: QEMU then fetches guest data from wherever the header
    points, and the host connects out to it.

    Remediation: Rebase or flatten the image (`qemu-img convert`) so the chain only holds local
    files from the pool directories; reject uploaded images that carry a backing file.
    """
    for disk in dom.disks:
        entries = _real_backing(disk)
        if not entries:
            continue
        remote = [(i, b) for i, b in entries if _is_network_backing(b)]
        if remote:
            evidence = [ev(dom.origin, _backing_locator(disk, i) + "/source", b.source or b.type)
                        for i, b in remote]
            names = ", ".join(b.source or f"type={b.type}" for _, b in remote)
            yield fail(_subject(disk), f"backing chain reaches network storage: {names}", *evidence)
        else:
            yield ok(_subject(disk), f"all {len(entries)} backing file(s) are local",
                     ev(dom.origin, disk.locator + "/backingStore/source", entries[0][1].source))


def _nbd_tls(disk: Disk, env: Environment) -> bool | None:
    """Whether an NBD disk's transport is TLS: the disk's own attribute, else qemu.conf nbd_tls
    (its documented default, off, when qemu.conf was not read)."""
    if disk.source_tls is not None:
        return disk.source_tls
    return QemuConf(env).flag("nbd_tls", False)


def _local_sockets_only(disk: Disk) -> bool:
    return bool(disk.source_hosts) and all(h.startswith("/") for h in disk.source_hosts)


def _host_part(endpoint: str) -> str:
    """"[::1]:10809" -> "::1"; "nbd.example:10809" -> "nbd.example"."""
    if endpoint.startswith("["):
        return endpoint[1:endpoint.find("]")] if "]" in endpoint else endpoint
    return endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint


def _loopback_only(disk: Disk) -> bool:
    """Every TCP host of the disk is a loopback address (the same rule as VMS-QEMU-021)."""
    hosts = [h for h in disk.source_hosts if not h.startswith("/")]
    return bool(hosts) and all(is_loopback(_host_part(h)) for h in hosts)


def _pool_type(disk: Disk, inv: Inventory) -> str | None:
    for pool in inv.pools:
        if disk.source_pool and pool.name == disk.source_pool:
            return pool.type
    return None


def _encryption_exempt(disk: Disk) -> bool:
    return _read_only(disk) or disk.type in ("dir", "vhostuser")


@check("VMS-DOM-104", title="Disks are encrypted at rest with LUKS", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "disk", "at-rest"),
       references=(_REF_SECUSE, _REF_STORAGE_ENC, "https://libvirt.org/kbase/luks_encryption.html"))
def disks_encrypted(dom: Domain, env: Environment) -> Iterator[Result]:
    """libvirt's secure-usage guide recommends encrypting guest storage against rogue storage and
    network administrators. Without `<encryption>`, whoever reads the image file, the storage array
    or the network carrying it reads the guest's data; on network storage whose protocol is itself
    cleartext this is high. Legacy qcow AES encryption (`format='qcow'`) is weak and refused by
    current QEMU system emulators (high). CD-ROMs, floppies and read-only media are exempt. A
    host-level dm-crypt layer under the pool is not visible in the XML: waive the finding if one is
    in place.

    Remediation: Create volumes with `<encryption format='luks'>` and a libvirt secret
    (`virsh vol-create`), or convert legacy qcow-encrypted images to LUKS (`qemu-img convert`
    with `--object secret` and `-o encrypt.format=luks`).
    """
    for disk in dom.disks:
        if _encryption_exempt(disk):
            continue
        subject = _subject(disk)
        enc = disk.encryption
        if enc is not None:
            where = ev(dom.origin, disk.locator + ("/source" if enc.placement == "source" else "")
                       + "/encryption/@format", enc.format)
            if enc.format == "qcow":
                yield fail(subject, "disk uses legacy qcow AES encryption (format='qcow')", where,
                           severity=Severity.HIGH)
            else:
                yield ok(subject, f"disk is encrypted (format {enc.format or 'default'})", where)
            continue
        where = ev(dom.origin, disk.locator + "/encryption", "absent")
        source = disk.source or disk.type or "?"
        protocol = disk.source_protocol
        if protocol:
            cleartext = protocol in _CLEARTEXT_PROTOCOLS or (
                protocol == "nbd" and not _local_sockets_only(disk) and _nbd_tls(disk, env) is not True)
            if cleartext:
                yield fail(subject, f"network disk {source} is unencrypted over a cleartext "
                           f"{protocol} transport", where, severity=Severity.HIGH)
            else:
                yield fail(subject, f"network disk {source} ({protocol}) has no <encryption>", where)
            continue
        pool_type = _pool_type(disk, env.inventory)
        if pool_type in _NETWORK_POOL_TYPES:
            yield fail(subject, f"disk {source} in {pool_type} pool has no <encryption>", where)
        else:
            yield fail(subject, f"disk {source} has no <encryption>", where)


@check("VMS-DOM-105", title="Network disks use authenticated, encrypted transports",
       severity=Severity.MEDIUM, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "disk", "network-storage"),
       references=("https://libvirt.org/kbase/tlscerts.html",
                   "https://libvirt.org/formatdomain.html#hard-drives-floppy-disks-cdroms"))
def network_disks_secure(dom: Domain, env: Environment) -> Iterator[Result]:
    """Guest disk traffic over NBD without TLS, iSCSI or RBD without authentication, or plain
    HTTP/FTP/TFTP, NFS, Gluster and Sheepdog can be read and altered on the network, and an
    unauthenticated target can be attached by anyone who reaches it. For NBD the disk's own `tls`
    attribute wins; otherwise qemu.conf `nbd_tls` (default off) decides — without qemu.conf its
    documented default holds and the finding names the key. NBD over a local UNIX socket or to a
    loopback address needs no TLS.

    Remediation: `<source protocol='nbd' tls='yes'>` or `nbd_tls = 1` in qemu.conf; `<auth>` with a
    CHAP or cephx secret for iSCSI and RBD; HTTPS instead of HTTP/FTP/TFTP; replace NFS, Gluster
    and Sheepdog disk access with an authenticated, encrypted transport.
    """
    for disk in dom.disks:
        protocol = disk.source_protocol
        if disk.type != "network" or not protocol:
            continue
        subject = _subject(disk)
        where = ev(dom.origin, disk.locator + "/source/@protocol", protocol)
        if protocol == "nbd":
            tls_where = ev(dom.origin, disk.locator + "/source/@tls",
                           None if disk.source_tls is None else ("yes" if disk.source_tls else "no"))
            if _local_sockets_only(disk):
                yield ok(subject, f"NBD disk {disk.source} uses a local UNIX socket", where)
                continue
            if _loopback_only(disk):
                yield ok(subject, f"NBD disk {disk.source} stays on loopback "
                         f"({', '.join(disk.source_hosts)})", where)
                continue
            conf = QemuConf(env)
            tls = disk.source_tls if disk.source_tls is not None else conf.flag("nbd_tls", False)
            tls_ev = tls_where if disk.source_tls is not None else conf.evidence("nbd_tls")
            if tls is None:
                r = unknown(subject, "qemu.conf nbd_tls is not 0 or 1", tls_ev)
            elif tls:
                r = ok(subject, f"NBD disk {disk.source} uses TLS", tls_ev)
            else:
                r = fail(subject, f"NBD disk {disk.source} runs without TLS", tls_where, tls_ev)
            yield conf.settle(r)
        elif protocol in ("iscsi", "rbd"):
            auth_where = ev(dom.origin, disk.locator + "/source/auth", "present" if disk.auth else "absent")
            if disk.auth:
                yield ok(subject, f"{protocol} disk {disk.source} authenticates with <auth>", auth_where)
            else:
                yield fail(subject, f"{protocol} disk {disk.source} has no <auth>", auth_where)
        elif protocol in ("http", "ftp", "tftp", "nfs", "gluster", "sheepdog"):
            yield fail(subject, f"{protocol} disk {disk.source} uses an unauthenticated cleartext "
                       "protocol", where)
        elif protocol in ("https", "ftps", "ssh"):
            yield ok(subject, f"{protocol} disk {disk.source} uses an encrypted transport", where)


@check("VMS-DOM-106", title="Guests have CPU and disk I/O limits", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "resource-limits", "denial-of-service"),
       references=(_REF_QEMU_SEC, "https://libvirt.org/formatdomain.html#cpu-tuning",
                   "https://libvirt.org/formatdomain.html#block-i-o-tuning"))
def resource_limits(dom: Domain, env: Environment) -> Iterator[Result]:
    """QEMU's security model says guests must be unable to exceed their resource limits; on a host
    shared by mutually untrusted guests one guest can otherwise starve the others of CPU time or
    storage bandwidth (noisy neighbour). Only evaluated for multi-tenant profiles. A memory
    hard_limit is not required: libvirt advises against it unless the value is carefully sized.

    Remediation: Add `<cputune>` shares/quota (or period/quota) and `<blkiotune>` weights or
    per-disk `<iotune>` limits, typically from the flavour or template the VM was created from.
    """
    if not env.multi_tenant:
        return
    missing = []
    if not dom.has_cputune_limits:
        missing.append("CPU (<cputune>)")
    if not (dom.has_blkiotune or dom.has_disk_iotune):
        missing.append("disk I/O (<blkiotune>/<iotune>)")
    where = ev(dom.origin, "cputune|blkiotune|devices/disk/iotune",
               "absent: " + ", ".join(missing) if missing else "present")
    if missing:
        yield fail("resource limits", f"no {' and no '.join(missing)} limits are set", where)
    else:
        yield ok("resource limits", "CPU and disk I/O limits are set", where)


__all__ = ["backing_files_local", "backing_formats_recorded", "block_device_kind", "disks_encrypted",
           "network_disks_secure", "no_shared_writable_disk", "no_whole_host_disk", "resource_limits",
           "source_key"]
