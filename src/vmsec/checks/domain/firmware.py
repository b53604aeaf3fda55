"""Guest firmware and boot integrity: UEFI Secure Boot, SMM protection of the secure flash, and a
virtual TPM for measured boot and sealing. How the vTPM is backed (emulated, encrypted state, not
host passthrough) is judged with the other devices (VMS-DOM-051).

These are per-VM properties and yield one result per VM of a full-virtualization (`hvm`) guest on an
architecture with UEFI (x86, Arm, RISC-V), except VMS-DOM-151, which only judges VMs that ask for a
secure loader or Secure Boot.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok
from vmsec.facts import Domain

_REF_SB = "https://libvirt.org/kbase/secure_boot.html"
_REF_OS = "https://libvirt.org/formatdomain.html#bios-bootloader"
_REF_TPM = "https://libvirt.org/formatdomain.html#tpm-device"
# Architectures whose guests can boot UEFI firmware with Secure Boot.
_UEFI_ARCHES = frozenset({"x86_64", "i686", "aarch64", "armv7l", "riscv64", "loongarch64"})
# Loader file names of UEFI builds (edk2 OVMF/AAVMF) when the XML states no type.
_UEFI_LOADER_HINTS = ("ovmf", "aavmf", "edk2", "qemu_efi")


def _applies(dom: Domain) -> bool:
    if dom.os_type not in (None, "hvm"):
        return False
    return dom.arch is None or dom.arch in _UEFI_ARCHES


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


@check("VMS-DOM-150", title="Guests boot with UEFI Secure Boot", severity=Severity.MEDIUM,
       tags=(Tag.CONFIGURATION, "firmware", "secure-boot"), references=(_REF_SB, _REF_OS))
def secure_boot(dom: Domain) -> Iterator[Result]:
    """Without Secure Boot a bootkit planted in the guest's boot chain survives reinstalling the
    operating system's files and runs before any guest defence. Secure Boot needs UEFI firmware
    with the feature on and Microsoft/distribution keys enrolled: without enrolled keys "even
    unsigned operating systems" boot. It is requested with firmware autoselection features
    (`secure-boot`, `enrolled-keys`) or a loader with `secure='yes'`. Direct kernel boot
    (`<kernel>`) bypasses the firmware's signature checks.

    Remediation: `<os firmware='efi'><firmware><feature enabled='yes' name='secure-boot'/>
    <feature enabled='yes' name='enrolled-keys'/></firmware></os>`, then start once with
    `virsh start --reset-nvram`.
    """
    if not _applies(dom):
        return
    fw = dom.firmware
    sb_ev = ev(dom.origin, "os/firmware/feature[@name='secure-boot']/@enabled", _yes_no(fw.secure_boot))
    keys_ev = ev(dom.origin, "os/firmware/feature[@name='enrolled-keys']/@enabled",
                 _yes_no(fw.enrolled_keys))
    loader_ev = ev(dom.origin, "os/loader/@secure", _yes_no(fw.loader_secure))
    if fw.kernel:
        yield fail("firmware", f"direct kernel boot from {fw.kernel} bypasses firmware verification",
                   ev(dom.origin, "os/kernel", fw.kernel))
        return
    loader_name = (fw.loader or "").lower()
    efi = (fw.firmware == "efi" or fw.loader_type == "pflash" or fw.loader_secure is not None
           or fw.secure_boot is not None or any(n in loader_name for n in _UEFI_LOADER_HINTS))
    if not efi:
        yield fail("firmware", f"the VM boots {fw.firmware or 'legacy BIOS'} firmware without Secure Boot",
                   ev(dom.origin, "os/@firmware", fw.firmware), ev(dom.origin, "os/loader", fw.loader))
        return
    if fw.secure_boot is False:
        yield fail("firmware", "UEFI firmware with the secure-boot feature disabled", sb_ev)
    elif fw.enrolled_keys is False:
        yield fail("firmware", "Secure Boot has no enrolled keys: unsigned systems boot", keys_ev)
    elif fw.secure_boot or fw.loader_secure:
        yield ok("firmware", "UEFI Secure Boot is requested"
                 + (" with enrolled keys" if fw.enrolled_keys else ""),
                 sb_ev if fw.secure_boot else loader_ev)
    else:
        yield fail("firmware", "UEFI firmware without Secure Boot requested (no secure-boot feature, "
                   "loader not secure)", sb_ev, loader_ev)


@check("VMS-DOM-151", title="A secure loader runs with SMM protection", severity=Severity.MEDIUM,
       tags=(Tag.CONFIGURATION, "firmware", "secure-boot", "smm"), references=(_REF_OS, _REF_SB))
def secure_loader_smm(dom: Domain) -> Iterator[Result]:
    """Secure Boot variables live in the firmware's flash; only System Management Mode keeps the
    guest OS from rewriting them directly. A `secure='yes'` loader or Secure Boot without SMM
    leaves the keys writable by the guest kernel. With firmware autoselection (`firmware='efi'`)
    libvirt turns SMM on itself unless the XML turns it off.

    Remediation: Add `<features><smm state='on'/></features>`, or use `firmware='efi'`
    autoselection and remove `<smm state='off'/>`.
    """
    fw = dom.firmware
    if not (fw.loader_secure or fw.secure_boot):
        return
    where = ev(dom.origin, "features/smm/@state", None if fw.smm is None else ("on" if fw.smm else "off"))
    if fw.smm:
        yield ok("firmware", "SMM is on for the secure loader", where)
    elif fw.smm is False:
        yield fail("firmware", "secure loader / Secure Boot with SMM explicitly off", where)
    elif fw.firmware == "efi":
        yield ok("firmware", "firmware autoselection enables SMM for a secure loader", where)
    else:
        yield fail("firmware", "manually configured secure loader without <smm state='on'/>", where)


@check("VMS-DOM-152", title="Guests have a virtual TPM", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "firmware", "tpm"),
       references=(_REF_TPM, "https://docs.openstack.org/nova/latest/admin/emulated-tpm.html"))
def has_vtpm(dom: Domain) -> Iterator[Result]:
    """A vTPM lets the guest measure its boot, seal disk-encryption keys to a known-good state and
    prove that state remotely. Without one, tampering with the boot chain goes unnoticed.

    Remediation: Add `<tpm model='tpm-crb'><backend type='emulator' version='2.0'>
    <encryption secret='…'/></backend></tpm>` (`tpm-tis` on machines without CRB).
    """
    if not _applies(dom):
        return
    if not dom.tpms:
        yield fail("tpm", "the VM has no TPM device", ev(dom.origin, "devices/tpm", "absent"))
        return
    for tpm in dom.tpms:
        version = f" {tpm.version}" if tpm.version else ""
        yield ok(f"tpm {tpm.locator}", f"TPM{version} {tpm.model or '(default model)'}, "
                 f"backend {tpm.backend_type}",
                 ev(dom.origin, tpm.locator + "/backend/@type", tpm.backend_type))


__all__ = ["has_vtpm", "secure_boot", "secure_loader_smm"]
