"""The host kernel's own exposure: nested virtualization, boot integrity (Secure Boot, lockdown) and
where guest memory can end up on disk (swap)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.facts import Host
from vmsec.findings import Evidence

_YES = frozenset({"y", "1", "yes", "on"})


@check("VMS-HOST-012", title="Nested virtualization is disabled", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "kvm", "nested"),
       references=("https://docs.kernel.org/virt/kvm/x86/running-nested-guests.html",
                   "https://www.cve.org/CVERecord?id=CVE-2021-29657",
                   "https://www.cve.org/CVERecord?id=CVE-2021-3656"))
def nested_virtualization(host: Host) -> Iterator[Result]:
    """With nested virtualization on, a guest given vmx/svm drives KVM's nested VMX/SVM emulation,
    a recurring source of guest-to-host escapes (CVE-2021-29657, CVE-2021-3653, CVE-2021-3656).
    Unless guests must run their own hypervisors, keep it off.

    Remediation: `options kvm_intel nested=0` (or `kvm_amd nested=0`) in /etc/modprobe.d, then reload
    the module; and do not expose vmx/svm to guests.
    """
    if host.module_params is None:
        yield unknown("kvm nested", "/sys/module could not be read")
        return
    for module in ("kvm_intel", "kvm_amd"):
        value = host.module_param(module, "nested")
        if value is None and host.module_param_unread(module, "nested"):
            yield unknown(f"{module} nested", f"{module} is loaded, but /sys/module/{module}/parameters/"
                          "nested could not be read", ev(f"/sys/module/{module}/parameters/nested", "nested"))
            continue
        if value is None:
            continue  # module not loaded
        where = ev(f"/sys/module/{module}/parameters/nested", "nested", value.strip())
        if value.strip().lower() in _YES:
            yield fail(f"{module} nested", f"{module} nested = {value.strip()}: guests with vmx/svm "
                       "reach KVM's nested-virtualization code", where)
        else:
            yield ok(f"{module} nested", f"{module} nested = {value.strip()}", where)


_EFIVAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


@check("VMS-HOST-013", title="The host boots with Secure Boot and kernel lockdown",
       severity=Severity.MEDIUM, tags=(Tag.CONFIGURATION, "boot-integrity"),
       references=("https://doi.org/10.6028/NIST.SP.800-125Ar1",
                   "https://man7.org/linux/man-pages/man7/kernel_lockdown.7.html"))
def secure_boot_lockdown(host: Host) -> Iterator[Result]:
    """Secure Boot makes the firmware verify the boot loader and kernel; kernel lockdown then keeps
    even root from modifying the running kernel (unsigned modules, /dev/mem, kexec). Without them,
    a compromise of the hypervisor host can persist below every guest.

    Remediation: Enable UEFI Secure Boot, enrol the distribution's keys, and boot with
    `lockdown=integrity`.
    """
    # Each claim cites what was read: the EFI variable's value, its absence, or the absence of EFI.
    if host.boot_firmware == "bios":
        yield fail("secure boot", "the host booted with legacy BIOS (no /sys/firmware/efi): there is no "
                   "Secure Boot", ev("/sys/firmware/efi", "exists", False))
    elif host.secure_boot is None:
        how = " (whether the host booted with UEFI is unknown)" if host.boot_firmware is None else ""
        yield unknown("secure boot", f"the SecureBoot EFI variable could not be read{how}")
    elif host.secure_boot:
        yield ok("secure boot", "Secure Boot is enabled", ev(_EFIVAR, "", "1"))
    elif host.boot_firmware == "uefi" and host.secure_boot is False:
        yield fail("secure boot", "Secure Boot is disabled (UEFI boot; the SecureBoot variable is 0 or "
                   "absent)", ev(_EFIVAR, "", "0 or absent"), ev("/sys/firmware/efi", "exists", True))
    else:
        yield fail("secure boot", "Secure Boot is disabled", ev(_EFIVAR, "", "0"))
    if host.lockdown is None:
        yield unknown("kernel lockdown", "/sys/kernel/security/lockdown could not be read")
        return
    mode = host.lockdown.strip()
    where = ev("/sys/kernel/security/lockdown", "", mode)
    if mode in ("integrity", "confidentiality"):
        yield ok("kernel lockdown", f"kernel lockdown is {mode}", where)
    elif mode == "none":
        yield fail("kernel lockdown", "kernel lockdown is none: root can modify the running "
                   "kernel", where)
    else:
        yield unknown("kernel lockdown", f"kernel lockdown reports an unrecognised mode {mode!r}",
                      where)


@check("VMS-HOST-014", title="Swap is encrypted", severity=Severity.LOW,
       tags=(Tag.ENCRYPTION, "memory", "swap"),
       references=("https://libvirt.org/formatdomain.html#memory-backing",))
def encrypted_swap(host: Host) -> Iterator[Result]:
    """Guest RAM that the host swaps out lands on disk. On a plain partition it stays there in
    cleartext (keys, passwords) after the guest is gone. Swap on dm-crypt (directly, or below LVM or
    md) or on zram does not leave cleartext on disk; swap on plain LVM, multipath or an integrity-only
    device does — the device-mapper layers are read from /sys to tell them apart.

    Remediation: Put swap on dm-crypt (a random-key `swap` entry in /etc/crypttab), use zram, or lock
    sensitive guests' memory with `<memoryBacking><locked/>`.
    """
    if host.swaps is None:
        yield unknown("swap", "/proc/swaps could not be read")
        return
    if not host.swaps:
        yield ok("swap", "no swap is active", ev("/proc/swaps", "", "(none)"))
        return
    for dev in host.swaps:
        where = ev("/proc/swaps", "Filename", dev)
        subject = f"swap {dev}"
        if dev.startswith(("/dev/mapper/", "/dev/dm-")):
            yield _device_mapper_swap(host, dev, subject, where)
        elif dev.startswith("/dev/zram"):
            yield ok(subject, f"swap {dev} is compressed RAM (zram), not a disk", where)
        elif dev.startswith("/dev/"):
            yield fail(subject, f"swap {dev} is a plain block device: swapped-out guest memory "
                       "is written to disk in cleartext", where)
        else:
            yield unknown(subject, f"swap {dev} is a file: whether its filesystem is encrypted "
                          "could not be told", where)


# Device-mapper UUIDs of devices known not to encrypt: LVM, multipath, kpartx partitions, and
# cryptsetup's integrity-only and verity devices. Anything else (a hand-made dmsetup table) may be.
_PLAIN_DM = re.compile(r"LVM-|mpath-|part\d+-|CRYPT-(INTEGRITY|VERITY)-")


def _device_mapper_swap(host: Host, dev: str, subject: str, where: Evidence) -> Result:
    layers = (host.swap_layers or {}).get(dev)
    if layers is None:
        return unknown(subject, f"swap {dev} is on device-mapper, and what it is (dm-crypt or plain "
                       "LVM) could not be read from /sys/class/block", where)
    shown = ev("/sys/class/block", "dm/uuid", ", ".join(
        b.name if b.dm_uuid is None else f"{b.name} {b.dm_uuid or '(no UUID)'}" for b in layers))
    # Encrypted when every way down to a disk passes through dm-crypt (zram is RAM, not a disk).
    leaves = [b for b in layers if not b.dm_crypt and not b.below and not b.name.startswith("zram")]
    if not leaves:
        crypt = ", ".join(b.name for b in layers if b.dm_crypt)
        how = f"written through dm-crypt ({crypt})" if crypt else "kept in compressed RAM (zram)"
        return ok(subject, f"swap {dev} is {how}", where, shown)
    odd = [b.name for b in layers if b.dm_uuid is not None and not b.dm_crypt
           and not _PLAIN_DM.match(b.dm_uuid)]
    loops = [b.name for b in leaves if b.name.startswith("loop")]
    if odd or loops:
        what = (f"device-mapper device {', '.join(odd)}, which cryptsetup, LVM or multipath did not make"
                if odd else f"loop device {', '.join(loops)}, whose file may be on an encrypted filesystem")
        return unknown(subject, f"swap {dev} stands on {what}: whether it is encrypted could not be told",
                       where, shown)
    return fail(subject, f"swap {dev} is on device-mapper without dm-crypt (down to "
                f"{', '.join(b.name for b in leaves)}): swapped-out guest memory is written to disk in "
                "cleartext", where, shown)
