"""Host hardware isolation: hardware-assisted virtualization, nesting inside another hypervisor,
and the IOMMU that confines DMA from assigned devices."""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.facts import Domain, Host
from vmsec.parsers.kernel_cmdline import Cmdline, kstrtobool, parse_cmdline

_QEMU_SECURITY = "https://www.qemu.org/docs/master/system/security.html"
_VFIO_DOC = "https://docs.kernel.org/driver-api/vfio.html"


def passthrough_domains(env: Environment) -> tuple[str, ...]:
    """Names of the inventory's domains that assign a host PCI device (hostdev or interface)."""
    return tuple(dom.name for dom in env.inventory.domains if _assigns_pci(dom))


def _assigns_pci(dom: Domain) -> bool:
    return (any(h.type == "pci" and h.mode == "subsystem" for h in dom.hostdevs)
            or any(i.type == "hostdev" for i in dom.interfaces))


def _nested_note(host: Host) -> str:
    virt = host.virtualization
    if virt.is_virtual:
        outer = virt.hypervisor or "an unidentified hypervisor"
        return (f"; this host is itself a virtual machine ({outer}), so the outer hypervisor must "
                "expose vmx/svm (nested virtualization)")
    return ""


@check("VMS-HOST-001", title="Hardware-assisted virtualization (KVM) is available",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "kvm", "hardware"),
       references=(_QEMU_SECURITY,))
def hardware_virtualization(host: Host) -> Iterator[Result]:
    """Without VT-x/AMD-V and /dev/kvm, libvirt runs guests under QEMU's TCG emulator. QEMU's
    security policy covers only the virtualization use case (KVM or another accelerator); under TCG
    a guest is not considered isolated, and guest-to-host bugs are not treated as security issues.

    Usable KVM is judged by /dev/kvm and, on the running host, by the KVM API itself
    (`KVM_GET_API_VERSION`), not by CPU flags alone: nested or paravirtual KVM (kvm_pvm) provides it
    without vmx/svm, and vmx/svm are x86 flags that Arm, POWER and s390x hosts never show.

    Remediation: Enable VT-x/AMD-V (and VT-d/AMD-Vi) in the firmware setup and load the kvm_intel or
    kvm_amd module. On a host that is itself a VM, enable nested virtualization in the outer
    hypervisor.
    """
    note = _nested_note(host)
    usable, kvm_result = _kvm_usable(host, note)
    flags_result = _cpu_flags(host, usable, note)
    if flags_result is not None:
        yield flags_result
    yield kvm_result


def _kvm_usable(host: Host, note: str) -> tuple[bool | None, Result]:
    """Whether KVM is usable, judged by /dev/kvm and, on the running host, the KVM API itself."""
    kvm = host.kvm_device
    if kvm is None or kvm.exists is None:
        why = kvm.error if kvm is not None and kvm.error else "it was not examined"
        return None, unknown("/dev/kvm", f"whether /dev/kvm exists could not be told: {why}")
    if kvm.exists and host.kvm_api_version is not None:
        return True, ok("/dev/kvm", f"/dev/kvm answers the KVM API (version {host.kvm_api_version}): "
                        "guests run with hardware virtualization", ev(kvm.path, "KVM_GET_API_VERSION",
                                                                      host.kvm_api_version))
    if kvm.exists and host.kvm_api_error:
        return None, unknown("/dev/kvm", f"/dev/kvm exists, but {host.kvm_api_error}",
                             ev(kvm.path, "exists", True))
    if kvm.exists:
        return True, ok("/dev/kvm", "/dev/kvm exists", ev(kvm.path, "exists", True))
    if host.module_params is not None and "kvm" not in host.module_params:
        return False, fail("/dev/kvm", f"the kvm module is not loaded (no /sys/module/kvm), so guests can"
                           f" only run under the TCG emulator{note}", ev("/sys/module/kvm", "exists", False))
    if not host.live:
        return None, unknown("/dev/kvm", "a copied host root has no device nodes, so /dev/kvm cannot be "
                             "checked", ev(kvm.path, "exists", False))
    return False, fail("/dev/kvm", f"/dev/kvm does not exist: the kvm module is not loaded or not "
                       f"usable, so guests can only run under the TCG emulator{note}",
                       ev(kvm.path, "exists", False))


def _cpu_flags(host: Host, usable: bool | None, note: str) -> Result | None:
    """What the CPU flags say — never on their own a claim about KVM: nested or paravirtual KVM
    (kvm_pvm) provides /dev/kvm without vmx/svm, and non-x86 hosts have no such flags at all."""
    if host.cpu is None:
        return unknown("cpu flags", "/proc/cpuinfo could not be read")
    if host.cpu.vendor is not None and host.cpu.vendor not in _X86_VENDORS:
        return None  # vmx/svm are x86 flags: an Arm, POWER or s390x host has other means (judged by /dev/kvm)
    flags = sorted(host.cpu.flags & {"vmx", "svm"})
    where = ev("/proc/cpuinfo", "flags", flags or "no vmx/svm")
    if flags:
        return ok("cpu flags", f"the CPU advertises {'/'.join(flags)}{note}", where)
    if usable:
        return ok("cpu flags", "the CPU advertises neither vmx nor svm, but KVM is usable through /dev/kvm "
                  "(nested or paravirtual KVM)", where, ev("/dev/kvm", "usable", True))
    if usable is False:
        return fail("cpu flags", f"the CPU advertises neither vmx nor svm and KVM is not usable: guests can "
                    f"only run under the TCG emulator{note}", where)
    return unknown("cpu flags", "the CPU advertises neither vmx nor svm, but whether KVM is usable anyway "
                   "(nested or paravirtual KVM) could not be told from /dev/kvm", where)


_X86_VENDORS = frozenset({"GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls", "Shanghai"})


@check("VMS-HOST-002", title="The host runs on bare metal, not inside another hypervisor",
       severity=Severity.INFO, tags=(Tag.ISOLATION, "nested"),
       references=(_QEMU_SECURITY,))
def host_is_bare_metal(host: Host) -> Iterator[Result]:
    """When the hypervisor host is itself a virtual machine, its guests are nested: their isolation
    then also depends on the outer hypervisor, its nested-virtualization code and whoever administers
    it. This is reported for information; it is normal in labs and some clouds.

    Remediation: Nothing to fix if nesting is intended. Otherwise run production guests on a bare-metal
    host, and treat the outer hypervisor's operator as able to read every guest.
    """
    virt = host.virtualization
    where = ev("host virtualization detection", "evidence", virt.evidence or None)
    if virt.is_virtual is None:
        yield unknown("host platform", "whether this host is a virtual machine could not be told",
                      where)
    elif virt.is_virtual:
        outer = virt.hypervisor or "an unidentified hypervisor"
        yield fail("host platform", f"this host is a virtual machine running under {outer}: guests "
                   "here are nested, and their isolation also depends on the outer hypervisor", where)
    else:
        yield ok("host platform", "this host runs on bare metal", where)


@check("VMS-HOST-003", title="The firmware provides an IOMMU (VT-d / AMD-Vi ACPI table)",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "iommu", "passthrough"),
       references=(_VFIO_DOC, "https://libvirt.org/kbase/secureusage.html"))
def iommu_firmware_table(host: Host, env: Environment) -> Iterator[Result]:
    """A device assigned to a guest does DMA. Only an IOMMU confines that DMA to the guest's memory;
    the firmware announces it with the ACPI DMAR (Intel VT-d) or IVRS (AMD-Vi) table. Without it,
    PCI passthrough is unsafe (high severity when a domain assigns a PCI device, low otherwise).

    Remediation: Enable VT-d / AMD-Vi ("IOMMU", "Directed I/O") in the firmware setup.
    """
    users = passthrough_domains(env)
    iommu = host.iommu
    if iommu is None:
        yield unknown("iommu acpi table", "/sys/firmware/acpi/tables could not be read")
        return
    evidence = (ev("/sys/firmware/acpi/tables/DMAR", "exists", iommu.dmar_table),
                ev("/sys/firmware/acpi/tables/IVRS", "exists", iommu.ivrs_table))
    if iommu.dmar_table or iommu.ivrs_table:
        table = "DMAR" if iommu.dmar_table else "IVRS"
        yield ok("iommu acpi table", f"the firmware provides the ACPI {table} table", *evidence)
    elif iommu.iommu_devices:
        yield ok("iommu acpi table", f"the kernel registered IOMMU units "
                 f"({', '.join(iommu.iommu_devices[:4])})",
                 ev("/sys/class/iommu", "entries", iommu.iommu_devices[:8]))
    elif iommu.dmar_table is None and iommu.ivrs_table is None:
        yield unknown("iommu acpi table", "whether the ACPI DMAR/IVRS tables exist could not be told",
                      *evidence)
    else:
        used = (f"; domains {', '.join(users)} assign PCI devices, whose DMA is then unconfined"
                if users else "")
        yield fail("iommu acpi table", f"no ACPI DMAR or IVRS table: the firmware provides no "
                   f"IOMMU, or it is disabled{used}", *evidence,
                   severity=Severity.HIGH if users else Severity.LOW)


def _options(value: str | None) -> list[str]:
    """A handler's comma-separated options, as its ``strcspn(str, ",")`` loop walks them."""
    return [o for o in (value or "").split(",") if o]


def _iommu_disabled_by(cmdline: Cmdline) -> list[str]:
    """The parameters that leave the kernel without an IOMMU, as their handlers read them: options match
    by prefix (``strncmp``) and case. ``iommu=off`` (arch/x86/kernel/pci-dma.c, ``no_iommu``) and
    ``amd_iommu=off`` (``amd_iommu_disabled``) are never undone; ``intel_iommu=`` (``dmar_disabled``)
    is on or off as its last ``on``/``off`` option says, over every occurrence."""
    disabled = [p.text for name in ("iommu", "amd_iommu") for p in cmdline.every(name)
                if any(o.startswith("off") for o in _options(p.value))]
    intel: str | None = None
    for p in cmdline.every("intel_iommu"):
        for option in _options(p.value):
            if option.startswith("on"):
                intel = None
            elif option.startswith("off"):
                intel = p.text
    return [*disabled, intel] if intel is not None else disabled


@check("VMS-HOST-004", title="The kernel IOMMU is enabled", severity=Severity.CRITICAL,
       tags=(Tag.ISOLATION, "iommu", "passthrough"), references=(_VFIO_DOC,))
def iommu_kernel_enabled(host: Host, env: Environment) -> Iterator[Result]:
    """The firmware may offer an IOMMU that the kernel does not use (no `intel_iommu=on`, or an
    explicit `iommu=off`). Then /sys/kernel/iommu_groups is empty, and a device assigned to a guest
    can DMA into all host memory: critical when a domain assigns a PCI device, medium otherwise.

    Remediation: Add `intel_iommu=on` (Intel) to the kernel command line, remove `iommu=off` /
    `amd_iommu=off`, and reboot.
    """
    users = passthrough_domains(env)
    sev = Severity.CRITICAL if users else Severity.MEDIUM
    used = (f"; domains {', '.join(users)} assign PCI devices that can then DMA into all host memory"
            if users else "")
    cmdline = parse_cmdline(host.kernel_cmdline) if host.kernel_cmdline is not None else None
    disabled = _iommu_disabled_by(cmdline) if cmdline is not None else []
    if disabled:
        yield fail("kernel iommu", f"the kernel command line disables the IOMMU "
                   f"({' '.join(disabled)}){used}", ev("/proc/cmdline", "", " ".join(disabled)),
                   severity=sev)
        return
    groups = host.iommu.group_count if host.iommu else None
    if groups is None:
        yield unknown("kernel iommu", "/sys/kernel/iommu_groups could not be read")
    elif groups > 0:
        yield ok("kernel iommu", f"the kernel uses the IOMMU ({groups} IOMMU groups)",
                 ev("/sys/kernel/iommu_groups", "groups", groups))
    else:
        yield fail("kernel iommu", f"/sys/kernel/iommu_groups is empty: the kernel does not use an "
                   f"IOMMU{used}", ev("/sys/kernel/iommu_groups", "groups", 0), severity=sev)


# (module, parameter, severity, what goes wrong)
_VFIO_UNSAFE = (
    ("vfio", "enable_unsafe_noiommu_mode", Severity.CRITICAL,
     "VFIO assigns devices without any IOMMU, so their DMA reaches all host memory"),
    ("vfio_iommu_type1", "allow_unsafe_interrupts", Severity.HIGH,
     "devices are assigned without interrupt remapping, so a guest can inject MSIs into the host"),
)
_YES = frozenset({"y", "1", "yes", "on"})


@check("VMS-HOST-005", title="VFIO unsafe modes are disabled", severity=Severity.CRITICAL,
       tags=(Tag.ISOLATION, "vfio", "passthrough"), references=(_VFIO_DOC,))
def vfio_unsafe_modes(host: Host) -> Iterator[Result]:
    """`vfio.enable_unsafe_noiommu_mode` lets VFIO hand devices to userspace with no IOMMU at all
    (critical: DMA into host memory); `vfio_iommu_type1.allow_unsafe_interrupts` assigns devices on
    hardware without interrupt remapping, so a guest can forge MSI writes (high).

    Remediation: Set both parameters to N (remove them from /etc/modprobe.d and the kernel command
    line); use hardware with interrupt remapping for passthrough.
    """
    cmdline = parse_cmdline(host.kernel_cmdline or ())
    for module, param, sev, harm in _VFIO_UNSAFE:
        subject = f"{module}.{param}"
        given = None  # param_set_bool() for each occurrence ("-" and "_" alike); a refused value keeps
        for p in cmdline.every(subject):  # the earlier one
            setting = kstrtobool(p.value)
            if setting is not None:
                given = p if setting else None
        if given is not None:
            yield fail(subject, f"the kernel command line sets {given.text}: {harm}",
                       ev("/proc/cmdline", subject, given.text), severity=sev)
            continue
        if host.module_params is None:
            yield unknown(subject, "/sys/module could not be read")
            continue
        value = host.module_param(module, param)
        if value is None and host.module_param_unread(module, param):
            yield unknown(subject, f"{module} is loaded, but /sys/module/{module}/parameters/{param} "
                          "could not be read", ev(f"/sys/module/{module}/parameters/{param}", param))
            continue
        if value is None:
            continue  # the module is not loaded: nothing is assigned through it
        where = ev(f"/sys/module/{module}/parameters/{param}", param, value)
        if value.strip().lower() in _YES:
            yield fail(subject, f"{subject} = {value}: {harm}", where, severity=sev)
        else:
            yield ok(subject, f"{subject} = {value}", where)
