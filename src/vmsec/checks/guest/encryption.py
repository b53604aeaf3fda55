"""Encryption at rest: the disk itself, where its keys are kept, and swap."""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.unread import guest_unread, ok_unless
from vmsec.facts import Guest
from vmsec.facts.guest import CryptEntry, LogicalVolume, MountEntry
from vmsec.parsers.lvm_metadata import dm_name

_CRYPTTAB = "https://man7.org/linux/man-pages/man5/crypttab.5.html"
_PASS_KEYS = frozenset({"", "-", "none"})
_ENCRYPTED = frozenset({"qcow2-luks", "luks", "luks-in-guest"})


@check("VMS-GST-122", title="The disk is encrypted at rest", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "disk", "luks"),
       references=("https://www.qemu.org/docs/master/system/qemu-block-drivers.html#cmdoption-qcow2-arg-encrypt",
                   "https://gitlab.com/cryptsetup/cryptsetup/-/wikis/FrequentlyAskedQuestions"))
def disk_encrypted(guest: Guest, env: Environment) -> Iterator[Result]:
    """An unencrypted disk image is readable by whoever gets a copy: a backup, a snapshot, a
    storage administrator, a decommissioned drive. Encryption in the image format (qcow2 LUKS) or
    inside the guest (LUKS) keeps the data with whoever holds the key.

    Remediation: Create images with `qemu-img create -f qcow2 -o encrypt.format=luks` and a libvirt
    secret, or encrypt inside the guest with LUKS2.
    """
    disk = guest.disk
    if disk is None or disk.scheme is None:
        yield _from_fstab(guest, env, disk.detail if disk is not None else "")
        return
    where = ev(guest.origin, "encryption", disk.scheme)
    if disk.scheme in _ENCRYPTED:
        note = " (read with an operator-supplied key)" if disk.unlocked else ""
        yield ok("disk at rest", f"the disk is encrypted ({disk.scheme}){note}", where)
    elif disk.scheme == "none":
        yield fail("disk at rest", "the disk is not encrypted: a copy of the image exposes its "
                   f"contents{': ' + disk.detail if disk.detail else ''}", where)
    else:
        yield unknown("disk at rest", f"unrecognised encryption scheme {disk.scheme!r}", where)


def _from_fstab(guest: Guest, env: Environment, detail: str) -> Result:
    """Without image-level facts: LUKS inside the OS shows in fstab and crypttab. For the
    hypervisor host's own OS there is no image layer below, so a plain root is unencrypted."""
    root = next((m for m in guest.fstab or () if m.mountpoint == "/"), None)
    why = f": {detail}" if detail else ""
    if root is None:
        return unknown("disk at rest", f"how the disk is protected at rest could not be determined{why}")
    where = ev(root.origin, "/", root.device)
    lv = _lvm_of(root.device, guest)
    via = f", an LVM volume on {', '.join(d or '?' for d in lv.devices)} ({lv.origin})" if lv else ""
    if _root_encrypted(guest) is True:
        return ok("disk at rest", f"/ is on the LUKS volume {root.device}{via} (crypttab)", where)
    if guest is env.inventory.host_os and _root_encrypted(guest) is False:
        return fail("disk at rest", f"the host's root file system is on {root.device}{via}, not on an "
                    "encrypted volume (hardware encryption, if any, is not visible here)", where)
    return unknown("disk at rest", "no encrypted volume for / in fstab/crypttab; encryption below the "
                   f"OS (image format or storage) could not be determined{why}", where)


_KERNEL_NAMES = ("/dev/sd", "/dev/vd", "/dev/hd", "/dev/xvd", "/dev/nvme", "/dev/mmcblk")
_BOOT_MOUNTS = ("/boot", "/boot/efi", "/efi")


def device_encrypted(device: str, guest: Guest, _depth: int = 0) -> bool | None:
    """Whether an fstab device is a volume crypttab unlocks (None: cannot tell from the files).

    A mapping crypttab names is. An LVM logical volume (``/dev/mapper/vg-lv``, ``/dev/vg/lv``) is
    encrypted when every physical volume its extents lie on is, as the guest's /etc/lvm/backup
    names them (Debian's "encrypted LVM": the volume group on ``/dev/mapper/vda5_crypt``), and plain
    when one of them is a partition; another mapping (a volume the initramfs unlocks) may be either.
    A file system named by UUID= or LABEL= may sit inside a crypttab volume when there is one
    (Fedora writes the root that way), and is plain when crypttab unlocks nothing; a kernel device
    name (/dev/vda2) is the raw disk."""
    names = {c.name for c in guest.crypttab or ()}
    for prefix in ("/dev/mapper/", "/dev/disk/by-id/dm-name-"):
        if device.startswith(prefix):
            return True if device.removeprefix(prefix) in names else \
                _lvm_encrypted(_lvm_of(device, guest), guest, _depth)
    if device.startswith(_KERNEL_NAMES):
        return False
    if device.startswith(("UUID=", "LABEL=", "PARTUUID=", "PARTLABEL=", "/dev/disk/")):
        return None if names or guest.crypttab is None else False
    if device.count("/") == 3:  # /dev/<vg>/<lv>
        return _lvm_encrypted(_lvm_of(device, guest), guest, _depth)
    return None  # /dev/dm-N, /dev/md*, a network file system …


def _lvm_of(device: str, guest: Guest) -> LogicalVolume | None:
    """The logical volume a device names (/dev/mapper/<dm name> or /dev/<vg>/<lv>), from the guest's
    LVM metadata (None: not a logical volume vmsec knows of)."""
    for lv in guest.lvm or ():
        name = dm_name(lv.vg, lv.name)
        if device in (f"/dev/mapper/{name}", f"/dev/disk/by-id/dm-name-{name}", f"/dev/{lv.vg}/{lv.name}"):
            return lv
    return None


def _lvm_encrypted(lv: LogicalVolume | None, guest: Guest, depth: int) -> bool | None:
    if lv is None or depth > 4 or not lv.devices:  # LVM on LVM is bounded: the metadata is the guest's
        return None
    below = [device_encrypted(d, guest, depth + 1) if d is not None else None for d in lv.devices]
    if False in below:
        return False
    return True if all(below) else None


def mount_holding(path: str, guest: Guest) -> MountEntry | None:
    """The fstab file system ``path`` lies on at boot: the longest mount point above it (the first
    line of a repeated one, as systemd takes it); swap and noauto lines mount nothing."""
    best: MountEntry | None = None
    for m in guest.fstab or ():
        if m.fstype == "swap" or "noauto" in m.options:
            continue
        point = m.mountpoint.rstrip("/") or "/"
        if (point == "/" or path == point or path.startswith(point + "/")) and \
                (best is None or len(point) > len(best.mountpoint.rstrip("/") or "/")):
            best = m
    return best


def _on_boot_partition(m: MountEntry, guest: Guest) -> bool:
    """A separate /boot (or EFI partition) the boot loader reads before anything is unlocked: plain
    unless it is itself a crypttab mapping."""
    return (m.mountpoint.rstrip("/") or "/") in _BOOT_MOUNTS and device_encrypted(m.device, guest) is not True


def _root_encrypted(guest: Guest) -> bool | None:
    """Whether / sits on a crypttab volume (None: cannot tell from fstab)."""
    root = next((m for m in guest.fstab or () if m.mountpoint == "/"), None)
    if root is not None:
        return device_encrypted(root.device, guest)
    if guest.disk is not None and guest.disk.scheme == "luks-in-guest":
        return True
    return None


def _key_on_device(keyfile: str) -> bool:
    # A key on another device ("/dev/disk/by-label/KEYUSB", "/dev/urandom", "LABEL=…:/key") or a
    # TPM/FIDO token is not stored in this file system.
    return keyfile.startswith(("/dev/", "LABEL=", "UUID=", "PARTUUID=")) or ":" in keyfile


@check("VMS-GST-123", title="Disk encryption keys are not stored next to the encrypted data",
       severity=Severity.HIGH, tags=(Tag.ENCRYPTION, "luks", "key-management"),
       references=(_CRYPTTAB,))
def crypttab_keyfiles(guest: Guest) -> Iterator[Result]:
    """A crypttab entry that unlocks a volume with a key file kept on an unencrypted file system
    (/boot, or a root that is itself plain) gives the key to whoever copies the disk: the
    encryption then protects nothing. A key on an already-unlocked encrypted root is fine.

    Remediation: Unlock with a passphrase, a TPM2 policy with a PIN, or a network key server
    (clevis/tang); keep key files only on an encrypted root.
    """
    if guest.crypttab is None:
        yield unknown("crypttab", "/etc/crypttab could not be read")
        return
    for entry in guest.crypttab:
        yield _judge_key(entry, guest)
    if not guest.crypttab:  # a crypttab longer than vmsec reads has lines it did not see
        yield ok_unless(guest_unread(guest, "crypttab"), "crypttab",
                        "no encrypted volumes are unlocked through /etc/crypttab")


def _judge_key(entry: CryptEntry, guest: Guest) -> Result:
    subject = f"crypttab {entry.name}"
    key = (entry.keyfile or "").strip()
    where = ev(entry.origin, entry.name, key or "none")
    if key in _PASS_KEYS:
        return ok(subject, f"{entry.name} is unlocked with a passphrase or token", where)
    if key in ("/dev/urandom", "/dev/random"):
        return ok(subject, f"{entry.name} uses a random key at every boot (swap or tmp)", where)
    if _key_on_device(key):
        return ok(subject, f"{entry.name}'s key {key} is on another device", where)
    holder = mount_holding(key, guest)
    if holder is None:
        return unknown(subject, f"{entry.name}'s key file {key}: the file system holding it is not in "
                       "fstab", where)
    point = holder.mountpoint.rstrip("/") or "/"
    if holder.device == f"/dev/mapper/{entry.name}" and point == "/":
        # The root's own key cannot come from the root: cryptsetup-initramfs copies it into the
        # initramfs (KEYFILE_PATTERN), which the boot loader reads from /boot.
        boot = mount_holding("/boot/initrd.img", guest)
        if boot is not None and _on_boot_partition(boot, guest):
            return fail(subject, f"{entry.name}'s key file {key} unlocks the root it lies on: to boot, it "
                        f"is copied into the initramfs on {boot.mountpoint} ({boot.device}), which is not "
                        "encrypted",
                        where, ev(boot.origin, boot.mountpoint, boot.device))
        return ok(subject, f"{entry.name}'s key file {key} and the initramfs that carries it are on the "
                  "encrypted root", where)
    if _on_boot_partition(holder, guest):
        return fail(subject, f"{entry.name}'s key file {key} is on {holder.mountpoint}, which is not "
                    "encrypted",
                    where, ev(holder.origin, holder.mountpoint, holder.device))
    encrypted = device_encrypted(holder.device, guest)
    on = "the root" if point == "/" else f"{point} ({holder.device})"
    if encrypted is True:
        return ok(subject, f"{entry.name}'s key file {key} is on {on}, an encrypted volume", where,
                  ev(holder.origin, holder.mountpoint, holder.device))
    if encrypted is None:
        return unknown(subject, f"{entry.name}'s key file {key} is on {on}; whether that is encrypted could "
                       "not be determined", where, ev(holder.origin, holder.mountpoint, holder.device))
    return fail(subject, f"{entry.name}'s key file {key} is on {on}, which is not encrypted", where,
                ev(holder.origin, holder.mountpoint, holder.device))


@check("VMS-GST-124", title="Swap is encrypted", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "swap", "luks"), references=(_CRYPTTAB,))
def swap_encrypted(guest: Guest) -> Iterator[Result]:
    """Swap receives whatever memory the kernel pages out: keys, passwords, decrypted data. On a
    plain swap device it outlives the process, and the reboot, in clear.

    Swap comes from /etc/fstab and from systemd `.swap` units enabled at boot (`What=`).

    Remediation: Encrypt swap with a random key at each boot: crypttab `cswap /dev/vdb2
    /dev/urandom swap,cipher=aes-xts-plain64,size=512` and fstab `/dev/mapper/cswap none swap sw`.
    """
    if guest.fstab is None:
        yield unknown("swap", "/etc/fstab could not be read")
        return
    if guest.swap_units is None:
        yield unknown("swap", "the systemd units (which may activate swap of their own) could not be read")
        return
    swaps = [m for m in guest.fstab if m.fstype == "swap"]
    seen = {m.device for m in swaps}
    swaps += [m for m in guest.swap_units if m.device not in seen]
    if not swaps:
        yield ok_unless(guest_unread(guest, "fstab") or guest_unread(guest, "swap_units"), "swap",
                        "no swap is configured (/etc/fstab, systemd .swap units)")
        return
    for m in swaps:
        subject = f"swap {m.device}"
        where = ev(m.origin, m.device, "swap")
        if "noauto" in m.options:
            yield ok(subject, f"swap on {m.device} is not activated at boot (noauto)", where)
            continue
        if m.device.startswith("/dev/zram"):
            yield ok(subject, f"swap on {m.device} is compressed memory: it never reaches the disk", where)
            continue
        device, what = m.device, "swap"
        if m.device.startswith("/") and not m.device.startswith("/dev/"):  # a swap file
            holder = mount_holding(m.device, guest)
            if holder is None:
                yield unknown(subject, f"swap file {m.device}: the file system holding it is not in fstab",
                              where)
                continue
            device, what = holder.device, f"swap file on {holder.mountpoint}"
        encrypted = device_encrypted(device, guest)
        if encrypted is True:
            yield ok(subject, f"{what} is on the encrypted volume {device}", where)
        elif encrypted is None:
            yield unknown(subject, f"{what} is on {device}; whether that lies on an encrypted volume cannot "
                          "be told from fstab and crypttab", where)
        elif guest.crypttab is None:
            yield unknown(subject, f"{what} is on the plain device {device}, and /etc/crypttab could not be "
                          "read", where)
        else:
            yield fail(subject, f"swap on {m.device} is not encrypted", where)
