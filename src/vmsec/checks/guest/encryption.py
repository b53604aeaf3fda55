"""Encryption at rest: the disk itself, where its keys are kept, and swap."""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.unread import guest_unread, ok_unless
from vmsec.facts import Guest
from vmsec.facts.guest import CryptEntry

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
    if _root_encrypted(guest) is True:
        return ok("disk at rest", f"/ is on the LUKS volume {root.device} (crypttab)", where)
    if guest is env.inventory.host_os and not root.device.startswith(("/dev/mapper/", "/dev/dm-")):
        return fail("disk at rest", f"the host's root file system is on {root.device}, not on an "
                    "encrypted volume (hardware encryption, if any, is not visible here)", where)
    return unknown("disk at rest", "no encrypted volume for / in fstab/crypttab; encryption below the "
                   f"OS (image format or storage) could not be determined{why}", where)


def _root_encrypted(guest: Guest) -> bool | None:
    """Whether / sits on a crypttab mapping (None: cannot tell from fstab)."""
    names = {c.name for c in guest.crypttab or ()}
    for m in guest.fstab or ():
        if m.mountpoint == "/":
            dev = m.device
            if dev.startswith("/dev/mapper/"):
                name = dev.removeprefix("/dev/mapper/")
                if name in names:
                    return True
                return None  # LVM or another mapping: maybe on LUKS, maybe not
            return False
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
    root_enc = _root_encrypted(guest)
    for entry in guest.crypttab:
        yield _judge_key(entry, root_enc)
    if not guest.crypttab:  # a crypttab longer than vmsec reads has lines it did not see
        yield ok_unless(guest_unread(guest, "crypttab"), "crypttab",
                        "no encrypted volumes are unlocked through /etc/crypttab")


def _judge_key(entry: CryptEntry, root_enc: bool | None) -> Result:
    subject = f"crypttab {entry.name}"
    key = (entry.keyfile or "").strip()
    where = ev(entry.origin, entry.name, key or "none")
    if key in _PASS_KEYS:
        return ok(subject, f"{entry.name} is unlocked with a passphrase or token", where)
    if key in ("/dev/urandom", "/dev/random"):
        return ok(subject, f"{entry.name} uses a random key at every boot (swap or tmp)", where)
    if _key_on_device(key):
        return ok(subject, f"{entry.name}'s key {key} is on another device", where)
    if key.startswith("/boot/"):
        return fail(subject, f"{entry.name}'s key file {key} is on /boot, which is not encrypted",
                    where)
    if root_enc is True:
        return ok(subject, f"{entry.name}'s key file {key} is on the encrypted root", where)
    if root_enc is None:
        return unknown(subject, f"{entry.name}'s key file {key}: whether / is encrypted could not be "
                       "determined", where)
    return fail(subject, f"{entry.name}'s key file {key} is on the unencrypted root file system",
                where)


@check("VMS-GST-124", title="Swap is encrypted", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "swap", "luks"), references=(_CRYPTTAB,))
def swap_encrypted(guest: Guest) -> Iterator[Result]:
    """Swap receives whatever memory the kernel pages out: keys, passwords, decrypted data. On a
    plain swap device it outlives the process, and the reboot, in clear.

    Remediation: Encrypt swap with a random key at each boot: crypttab `cswap /dev/vdb2
    /dev/urandom swap,cipher=aes-xts-plain64,size=512` and fstab `/dev/mapper/cswap none swap sw`.
    """
    if guest.fstab is None:
        yield unknown("swap", "/etc/fstab could not be read")
        return
    swaps = [m for m in guest.fstab if m.fstype == "swap"]
    if not swaps:
        yield ok_unless(guest_unread(guest, "fstab"), "swap", "no swap is configured in /etc/fstab")
        return
    names = {c.name for c in guest.crypttab or ()}
    for m in swaps:
        subject = f"swap {m.device}"
        where = ev(m.origin, m.device, "swap")
        name = m.device.removeprefix("/dev/mapper/") if m.device.startswith("/dev/mapper/") else None
        if name is not None and name in names:
            yield ok(subject, f"swap is on the encrypted mapping {name}", where)
        elif name is not None:
            yield unknown(subject, f"swap is on the device-mapper volume {name}; whether it lies on an "
                          "encrypted volume cannot be told from fstab", where)
        elif guest.crypttab is None:
            yield unknown(subject, "swap is on a plain device, and /etc/crypttab could not be read",
                          where)
        else:
            yield fail(subject, f"swap on {m.device} is not encrypted", where)
