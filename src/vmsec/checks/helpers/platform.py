"""What a domain runs as when its XML leaves it to libvirt and QEMU: the guest architecture, the
machine type and the CPU model — decided from the defaults libvirt and QEMU document (QEMU's own data,
:mod:`vmsec.qemu_data`), never guessed.

- architecture: ``os/type/@arch``; else the emulator binary's name (``qemu-system-aarch64``); else the
  machine type's family (``pc``/``q35`` are x86, ``pseries`` ppc64, ``s390-ccw-virtio`` s390x); else
  the host's own architecture, which is what libvirt picks (known only with host facts).
- machine type: ``os/type/@machine``; else QEMU's default machine for the architecture (``pc`` on x86).
- CPU model: ``cpu/model``; a ``<cpu>`` without a model (only ``<topology>``/``<numa>``) or no
  ``<cpu>`` at all starts the machine type's default model (``qemu64`` on x86_64, ``qemu32`` for i686
  guests, which libvirt asks for explicitly).
"""

from __future__ import annotations

import posixpath
import re

from msgspec import Struct

from vmsec.facts import Domain, Host
from vmsec.findings import Evidence
from vmsec.qemu_data import x86_data

__all__ = ["X86_ARCHES", "CpuModel", "GuestArch", "effective_cpu_model", "effective_machine", "guest_arch",
           "host_arch"]

X86_ARCHES = frozenset({"x86_64", "i686", "i386"})
_X86_VENDORS = frozenset({"GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls", "Shanghai"})
_MACHINE_ARCH = (
    (re.compile(r"^(pc|q35|isapc|microvm|pc-.*|xenfv.*|xenpv.*)$"), "x86_64"),
    (re.compile(r"^pseries.*|^powernv.*"), "ppc64"),
    (re.compile(r"^s390-ccw-virtio.*"), "s390x"),
)
_KERNEL_ARCH = (("x86_64", "x86_64"), ("amd64", "x86_64"), ("aarch64", "aarch64"), ("arm64", "aarch64"),
                ("ppc64le", "ppc64le"), ("ppc64el", "ppc64le"), ("s390x", "s390x"), ("riscv64", "riscv64"))


class GuestArch(Struct, frozen=True):
    arch: str | None
    how: str  # "os/type/@arch", "emulator …", "machine type …", "host", or why it is unknown

    @property
    def x86(self) -> bool | None:
        return None if self.arch is None else self.arch in X86_ARCHES


def host_arch(host: Host | None) -> str | None:
    """The host's architecture from its CPU vendor or kernel release, when host facts exist."""
    if host is None:
        return None
    if host.cpu is not None and host.cpu.vendor in _X86_VENDORS:
        return "x86_64"
    release = host.kernel_release or ""
    for needle, arch in _KERNEL_ARCH:
        if release.endswith(needle):
            return arch
    return None


def guest_arch(dom: Domain, host: Host | None) -> GuestArch:
    if dom.arch:
        return GuestArch(dom.arch, "os/type/@arch")
    if dom.emulator:
        name = posixpath.basename(dom.emulator)
        if name.startswith("qemu-system-") and len(name) > 12:
            return GuestArch(name[12:], f"emulator {name}")
    if dom.machine:
        for pattern, arch in _MACHINE_ARCH:
            if pattern.match(dom.machine):
                return GuestArch(arch, f"machine type {dom.machine}")
    from_host = host_arch(host)
    if from_host is not None:
        return GuestArch(from_host, "the host's architecture, which libvirt uses when os/type names none")
    return GuestArch(None, "the XML names no architecture and the host's is unknown")


def effective_machine(dom: Domain, arch: GuestArch) -> tuple[str | None, Evidence, str]:
    """(machine type, evidence, phrase): the XML's, else QEMU's default for the architecture."""
    if dom.machine:
        where = Evidence(dom.origin, "os/type/@machine", dom.machine)
        return dom.machine, where, f"machine type {dom.machine}"
    if arch.arch in X86_ARCHES:
        data = x86_data()
        default = data.machine_default(arch.arch)
        if default:
            return default, Evidence(data.source, "default machine", default), (
                f"no machine type in the XML: {data.name}'s default for {arch.arch} is {default}")
    return None, Evidence(dom.origin, "os/type/@machine", None), "the XML names no machine type"


class CpuModel(Struct, frozen=True):
    """The named CPU model a custom-mode domain starts, and how that was decided."""

    name: str | None
    default: bool  # True: the XML names no model, QEMU's default for the machine applies
    evidence: Evidence
    phrase: str  # "custom model Haswell", "QEMU's default model qemu64 (machine pc)"


def effective_cpu_model(dom: Domain, arch: GuestArch) -> CpuModel | None:
    """For x86 guests in custom mode (or without ``<cpu>``), the model QEMU starts; None for other modes."""
    cpu = dom.cpu
    if cpu is not None and (cpu.mode or "custom") != "custom":
        return None
    if cpu is not None and cpu.model:
        return CpuModel(cpu.model, False, Evidence(dom.origin, "cpu/model", cpu.model),
                        f"custom model {cpu.model}")
    data = x86_data()
    machine, _, _ = effective_machine(dom, arch)
    name = data.cpu_default(arch.arch or "x86_64", machine)
    shape = "no <cpu>" if cpu is None else "a <cpu> without <model>"
    if name is None:
        return CpuModel(None, True, Evidence(dom.origin, "cpu/model", None),
                        f"{shape}: QEMU's default model for machine {machine or '?'} is not recorded")
    return CpuModel(name, True, Evidence(data.source, f"default CPU of machine {machine}", name),
                    f"{shape}: QEMU's default model {name} for machine {machine}")


def default_nic_model(dom: Domain, arch: GuestArch) -> tuple[str | None, str]:
    """The NIC model libvirt's QEMU driver gives an interface without ``<model>`` (libvirt 9.0
    ``qemuDomainDefaultNetModel``): virtio on s390x, on Arm and RISC-V ``virt`` machines;
    smc91c111 on versatilepb and lan9118 on other Arm boards; everywhere else the first of rtl8139,
    e1000, virtio-net the emulator has — rtl8139, which every qemu-system-x86/ppc build has.
    Returns (model or None, why)."""
    a = arch.arch
    machine = dom.machine or ""
    if a is None:
        return None, arch.how
    if a.startswith("s390"):
        return "virtio", f"libvirt's default NIC on {a}"
    if a in ("aarch64", "armv7l", "armv6l"):
        if machine == "versatilepb":
            return "smc91c111", "libvirt's default NIC on the versatilepb board"
        if machine.startswith("virt") or not machine:
            return "virtio", f"libvirt's default NIC on {a} virt machines"
        return "lan9118", f"libvirt's default NIC on the {machine} board"
    if a.startswith("riscv") and (machine.startswith("virt") or not machine):
        return "virtio", f"libvirt's default NIC on {a} virt machines"
    return "rtl8139", f"libvirt's default NIC on {a} (the first of rtl8139, e1000, virtio the emulator has)"
