"""Guest encryption checks (VMS-GST-122…124)."""

from __future__ import annotations

from typing import Any

import pytest

from vmsec.checks.api import Environment
from vmsec.checks.guest import encryption as enc
from vmsec.facts import Guest, Inventory
from vmsec.facts.guest import CryptEntry, DiskAtRest, MountEntry
from vmsec.findings import Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN


def g(**kw: Any) -> Guest:
    return Guest(name="vm", origin="/img/vm.qcow2", **kw)


def mount(device: str, mp: str, fstype: str = "ext4") -> MountEntry:
    return MountEntry(device=device, mountpoint=mp, fstype=fstype)


def crypt(name: str, keyfile: str | None, device: str = "UUID=abcd") -> CryptEntry:
    return CryptEntry(name=name, device=device, keyfile=keyfile, options=("luks",))


PLAIN_ROOT = (mount("/dev/vda1", "/"),)
CRYPT_ROOT = (mount("/dev/mapper/root_crypt", "/"),)
LVM_ROOT = (mount("/dev/mapper/vg-root", "/"),)
BOOT = (mount("UUID=1111-boot", "/boot"),)


@pytest.mark.parametrize(("disk", "expected"), [
    (None, U), (DiskAtRest(scheme=None, detail="backing file unreadable"), U),
    (DiskAtRest(scheme="qcow2-luks"), P), (DiskAtRest(scheme="luks"), P),
    (DiskAtRest(scheme="luks-in-guest"), P), (DiskAtRest(scheme="none"), F),
    (DiskAtRest(scheme="bitlocker"), U),
])
def test_disk_encrypted(disk: DiskAtRest | None, expected: Status) -> None:
    [r] = enc.disk_encrypted(g(disk=disk), Environment(inventory=Inventory(), host=None))
    assert r.status is expected


@pytest.mark.parametrize(("fstab", "crypttab", "host_os", "expected"), [
    (CRYPT_ROOT, (crypt("root_crypt", "none"),), False, P),  # LUKS inside the OS
    (CRYPT_ROOT, (crypt("root_crypt", "none"),), True, P),
    (PLAIN_ROOT, (), True, F),  # the hypervisor's own root: no image layer below it
    (PLAIN_ROOT, (), False, U),  # a guest: the image format may still encrypt
    (LVM_ROOT, (crypt("sda5_crypt", "none"),), True, U),
    ((), (), True, U),
])
def test_disk_encrypted_from_fstab(fstab: Any, crypttab: Any, host_os: bool, expected: Status) -> None:
    guest = g(fstab=fstab, crypttab=crypttab)
    env = Environment(inventory=Inventory(host_os=guest if host_os else None), host=None)
    [r] = enc.disk_encrypted(guest, env)
    assert r.status is expected, r.message


@pytest.mark.parametrize(("fstab", "entries", "expected"), [
    (PLAIN_ROOT, None, [U]),
    (PLAIN_ROOT, (), [P]),
    (PLAIN_ROOT, (crypt("data", "none"),), [P]),
    (PLAIN_ROOT, (crypt("data", None),), [P]),
    (PLAIN_ROOT, (crypt("data", "/etc/keys/data.key"),), [F]),
    (PLAIN_ROOT, (crypt("data", "/boot/data.key"),), [F]),
    (PLAIN_ROOT, (crypt("data", "/dev/disk/by-label/KEYUSB"),), [P]),
    (PLAIN_ROOT, (crypt("cswap", "/dev/urandom"),), [P]),
    (CRYPT_ROOT, (crypt("root_crypt", "none"), crypt("home", "/etc/keys/home.key")), [P, P]),
    # /boot without its own fstab line is part of the encrypted root (GRUB unlocks it)
    (CRYPT_ROOT, (crypt("root_crypt", "none"), crypt("home", "/boot/home.key")), [P, P]),
    (CRYPT_ROOT + BOOT, (crypt("root_crypt", "none"), crypt("home", "/boot/home.key")), [P, F]),
    (LVM_ROOT, (crypt("home", "/etc/keys/home.key"),), [U]),
    # found by a review against systemd-cryptsetup-generator, systemd-fstab-generator and
    # cryptsetup-initramfs: the key lies on whatever file system fstab mounts over its path
    ((*CRYPT_ROOT, mount("/dev/vdb1", "/srv")),
     (crypt("root_crypt", "none"), crypt("data", "/srv/keys/d.key")), [P, F]),
    ((*CRYPT_ROOT, mount("/dev/mapper/srv_crypt", "/srv")),
     (crypt("root_crypt", "none"), crypt("srv_crypt", "none"), crypt("data", "/srv/keys/d.key")), [P, P, P]),
    # the root's own key cannot come from the root: the initramfs on /boot carries a copy
    (CRYPT_ROOT + BOOT, (crypt("root_crypt", "/etc/keys/root.key"),), [F]),
    (CRYPT_ROOT, (crypt("root_crypt", "/etc/keys/root.key"),), [P]),
    # a root named by UUID= may be inside a crypttab volume (Fedora): not "unencrypted"
    ((mount("UUID=0b6e", "/"),), (crypt("luks-aaaa", "none"), crypt("data", "/etc/keys/d.key")), [P, U]),
    ((mount("UUID=0b6e", "/"),), (crypt("data", "/etc/keys/d.key"),), [U]),
])
def test_crypttab_keyfiles(fstab: Any, entries: Any, expected: list[Status]) -> None:
    assert [r.status for r in enc.crypttab_keyfiles(g(fstab=fstab, crypttab=entries))] == expected


@pytest.mark.parametrize(("fstab", "entries", "expected"), [
    (None, (), [U]),
    (PLAIN_ROOT, (), [P]),
    ((*PLAIN_ROOT, mount("/dev/vda2", "none", "swap")), (), [F]),
    ((*PLAIN_ROOT, mount("/dev/vda2", "none", "swap")), None, [U]),
    ((*PLAIN_ROOT, mount("/dev/mapper/cswap", "none", "swap")), (crypt("cswap", "/dev/urandom"),), [P]),
    ((*LVM_ROOT, mount("/dev/mapper/vg-swap_1", "none", "swap")), (crypt("sda5_crypt", "none"),), [U]),
    ((*CRYPT_ROOT, mount("/swapfile", "none", "swap")), (crypt("root_crypt", "none"),), [P]),  # on the root
    ((*PLAIN_ROOT, mount("/swapfile", "none", "swap")), (), [F]),
    ((*PLAIN_ROOT, mount("/dev/zram0", "none", "swap")), (), [P]),  # memory, never the disk
    ((*PLAIN_ROOT, MountEntry(device="/dev/vdb2", mountpoint="none", fstype="swap", options=("noauto",))), (),
     [P]),  # systemd-fstab-generator links no noauto swap into swap.target
])
def test_swap_encrypted(fstab: Any, entries: Any, expected: list[Status]) -> None:
    assert [r.status for r in enc.swap_encrypted(g(fstab=fstab, crypttab=entries, swap_units=()))] == expected


UNIT_SWAP = MountEntry(device="/swapfile", mountpoint="none", fstype="swap",
                       origin="/etc/systemd/system/swapfile.swap")


@pytest.mark.parametrize(("fstab", "units", "entries", "expected"), [
    (PLAIN_ROOT, None, (), [U]),  # the units could not be read: one of them may activate swap
    (PLAIN_ROOT, (UNIT_SWAP,), (), [F]),  # a .swap unit's swap file on the plain root
    (CRYPT_ROOT, (UNIT_SWAP,), (crypt("root_crypt", "none"),), [P]),
    ((*PLAIN_ROOT, mount("/swapfile", "none", "swap")), (UNIT_SWAP,), (), [F]),  # the same swap, once
])
def test_swap_from_systemd_units(fstab: Any, units: Any, entries: Any, expected: list[Status]) -> None:
    results = list(enc.swap_encrypted(g(fstab=fstab, crypttab=entries, swap_units=units)))
    assert [r.status for r in results] == expected
