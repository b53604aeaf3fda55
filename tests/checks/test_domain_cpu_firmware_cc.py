"""Memory, CPU, firmware and confidential-computing checks (VMS-DOM-140…164), on facts built here."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from vmsec.checks.api import Environment, Result, results_of
from vmsec.checks.domain.confidential import (
    has_launch_security,
    no_debug_policy,
    no_side_doors,
    sev_policy_bits,
    snp_not_plain_sev,
)
from vmsec.checks.domain.cpu_memory import (
    confidential_no_balloon,
    cpu_mitigations,
    host_nested,
    no_ksm_merging,
    no_nested_virtualization,
    no_shared_memory_file,
)
from vmsec.checks.domain.firmware import has_vtpm, secure_boot, secure_loader_smm
from vmsec.facts import (
    ConfigFile,
    CpuConfig,
    CpuFeature,
    Domain,
    Filesystem,
    FirmwareConfig,
    Host,
    Hostdev,
    Interface,
    Inventory,
    LaunchSecurity,
    MemoryConfig,
    QemuPassthrough,
    SimpleDevice,
    Tpm,
)
from vmsec.findings import Severity, Status

SNP = LaunchSecurity(type="sev-snp", policy=0x30000, policy_text="0x00030000")


def dom(**kw: object) -> Domain:
    kw.setdefault("arch", "x86_64")
    kw.setdefault("os_type", "hvm")
    return Domain(name="vm", origin="vm.xml", **kw)  # type: ignore[arg-type]


def host(**kw: object) -> Host:
    return Host(name="h", root="/", live=False, **kw)  # type: ignore[arg-type]


def env(h: Host | None = None) -> Environment:
    return Environment(inventory=Inventory(host=h), host=h)


def statuses(results: Iterable[Result]) -> list[Status]:
    return [r.status for r in results]


def cpu(mode: str | None = "custom", model: str | None = None, **features: str) -> CpuConfig:
    feats = tuple(CpuFeature(name=n.replace("_", "-"), policy=p) for n, p in features.items())
    return CpuConfig(mode=mode, model=model, features=feats)


# ---- KSM ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("d", "h", "expected"), [
    (dom(), host(ksm_run="1\n"), Status.FAIL),
    (dom(memory=MemoryConfig(nosharepages=True)), host(ksm_run="1"), Status.PASS),
    (dom(), host(ksm_run="0"), Status.PASS),
    (dom(), host(ksm_run="2"), Status.PASS),
    (dom(), host(), Status.UNKNOWN),  # the host could not tell
    (dom(), None, Status.UNKNOWN),  # offline XML
    (dom(memory=MemoryConfig(nosharepages=True)), None, Status.PASS),
    (dom(launch_security=SNP), host(ksm_run="1"), Status.PASS),
])
def test_ksm(d: Domain, h: Host | None, expected: Status) -> None:
    assert statuses(no_ksm_merging(d, env(h))) == [expected]


# ---- shared memory files ---------------------------------------------------------------------

@pytest.mark.parametrize(("mem", "expected"), [
    (MemoryConfig(), Status.PASS),
    (MemoryConfig(source_type="file", access_mode="shared"), Status.FAIL),
    (MemoryConfig(hugepages=True, access_mode="shared"), Status.FAIL),
    (MemoryConfig(source_type="memfd", access_mode="shared"), Status.PASS),
    (MemoryConfig(hugepages=True, source_type="memfd", access_mode="shared"), Status.PASS),
    (MemoryConfig(source_type="file", access_mode="private"), Status.PASS),
])
def test_shared_memory_file(mem: MemoryConfig, expected: Status) -> None:
    assert statuses(no_shared_memory_file(dom(memory=mem), env())) == [expected]


def test_shared_memory_file_names_the_backing_dir() -> None:
    conf = ConfigFile(path="/etc/libvirt/qemu.conf", present=True,
                      defaults={"memory_backing_dir": "/var/lib/libvirt/qemu/ram"})
    (result,) = no_shared_memory_file(dom(memory=MemoryConfig(source_type="file", access_mode="shared")),
                                      env(host(qemu_conf=conf)))
    assert "/var/lib/libvirt/qemu/ram" in result.message


# ---- balloon on confidential VMs --------------------------------------------------------------

@pytest.mark.parametrize(("d", "expected"), [
    (dom(launch_security=SNP), [Status.FAIL]),  # libvirt adds a virtio balloon
    (dom(launch_security=SNP, devices=(SimpleDevice(locator="devices/memballoon[1]", element="memballoon",
                                                    model="none"),)), [Status.PASS]),
    (dom(launch_security=SNP, devices=(SimpleDevice(locator="devices/memballoon[1]", element="memballoon",
                                                    model="virtio"),)), [Status.FAIL]),
    (dom(), []),
])
def test_confidential_balloon(d: Domain, expected: list[Status]) -> None:
    assert statuses(confidential_no_balloon(d)) == expected


# ---- CPU mitigations ----------------------------------------------------------------------------

@pytest.mark.parametrize(("d", "expected"), [
    (dom(cpu=cpu("host-model")), [Status.PASS]),
    (dom(cpu=cpu("host-passthrough")), [Status.PASS]),
    (dom(cpu=cpu("host-model", spec_ctrl="disable")), [Status.FAIL]),
    (dom(cpu=cpu("custom", "Skylake-Client-IBRS", md_clear="forbid")), [Status.FAIL]),
    (dom(cpu=cpu("custom", "Haswell")), [Status.FAIL]),
    (dom(cpu=cpu("custom", "Haswell", spec_ctrl="require", ssbd="require")), [Status.PASS]),
    (dom(cpu=cpu("custom", "Haswell-noTSX-IBRS")), [Status.PASS]),
    (dom(cpu=cpu("custom", "EPYC-Rome")), [Status.PASS]),
    (dom(cpu=cpu(None, "qemu64")), [Status.FAIL]),
    (dom(), [Status.FAIL]),  # no <cpu>: QEMU's qemu64
    (dom(cpu=CpuConfig(mode=None)), [Status.FAIL]),  # <cpu> with only <topology>: the same qemu64
    (dom(arch="i686", machine="pc"), [Status.FAIL]),  # qemu32
    (dom(cpu=cpu("custom", "EPYC")), [Status.FAIL]),  # QEMU's plain EPYC carries no ibpb
    (dom(cpu=cpu("custom", "EPYC-IBPB")), [Status.PASS]),
    (dom(cpu=cpu("custom", "Cascadelake-Server")), [Status.PASS]),  # not in any hand list: QEMU's data
    (dom(cpu=cpu("custom", "NoSuchModel")), [Status.UNKNOWN]),
    (dom(arch="aarch64"), []),
    (dom(arch="aarch64", cpu=cpu("custom", "cortex-a57")), []),
    (dom(arch=None, emulator="/usr/bin/qemu-system-aarch64", cpu=cpu("host-passthrough")), []),
    (dom(arch=None, machine="pseries", cpu=cpu("host-model")), []),
    (dom(arch=None), [Status.UNKNOWN]),  # no arch, no emulator, no host: cannot tell
])
def test_cpu_mitigations(d: Domain, expected: list[Status]) -> None:
    assert statuses(results_of(cpu_mitigations, d, env(), "cpu")) == expected


# ---- nested virtualization ------------------------------------------------------------------------

NESTED_ON = host(module_params={"kvm": {}, "kvm_intel": {"nested": "Y"}})
NESTED_OFF = host(module_params={"kvm_amd": {"nested": "0"}})
AMD_NESTED_ON = host(module_params={"kvm": {}, "kvm_amd": {"nested": "1"}})
NO_KVM = host(module_params={})


def test_host_nested() -> None:
    assert host_nested(NESTED_ON)[0] is True
    assert host_nested(NESTED_OFF)[0] is False
    assert host_nested(NO_KVM) == (None, None)
    assert host_nested(None) == (None, None)


@pytest.mark.parametrize(("c", "h", "status", "severity"), [
    (cpu("host-passthrough"), NESTED_ON, Status.FAIL, Severity.HIGH),
    (cpu("host-passthrough"), None, Status.FAIL, None),
    (cpu("host-passthrough"), NESTED_OFF, Status.PASS, None),
    (cpu("host-passthrough", vmx="disable"), NESTED_ON, Status.PASS, None),
    (cpu("custom", "Skylake-Client-IBRS", vmx="require"), None, Status.FAIL, None),
    (cpu("custom", "EPYC", svm="force"), NESTED_ON, Status.FAIL, Severity.HIGH),
    (cpu("custom", "Skylake-Client-IBRS"), NESTED_ON, Status.PASS, None),
    (cpu("host-model"), NESTED_ON, Status.FAIL, Severity.HIGH),
    (cpu("host-model"), None, Status.UNKNOWN, None),
    (cpu("host-model"), NESTED_OFF, Status.PASS, None),
    (cpu("maximum"), NO_KVM, Status.FAIL, None),
])
def test_nested(c: CpuConfig, h: Host | None, status: Status, severity: Severity | None) -> None:
    (result,) = no_nested_virtualization(dom(cpu=c), env(h))
    assert (result.status, result.severity) == (status, severity)


@pytest.mark.parametrize(("d", "h", "status", "severity"), [
    # No <cpu>, or a <cpu> with only <topology>: QEMU's default qemu64 carries svm (QEMU's own data).
    (dom(machine="pc"), AMD_NESTED_ON, Status.FAIL, Severity.HIGH),
    (dom(machine="pc", cpu=CpuConfig(mode=None)), AMD_NESTED_ON, Status.FAIL, Severity.HIGH),
    (dom(machine="pc"), NESTED_ON, Status.PASS, None),  # an Intel host's KVM cannot give svm
    (dom(machine="pc"), None, Status.UNKNOWN, None),
    (dom(machine="pc", cpu=CpuConfig(mode=None)), None, Status.UNKNOWN, None),
    (dom(machine="q35", cpu=cpu("custom", "EPYC")), AMD_NESTED_ON, Status.FAIL, Severity.HIGH),
    (dom(machine="q35", cpu=cpu("custom", "kvm64")), AMD_NESTED_ON, Status.PASS, None),
    (dom(machine="q35", cpu=cpu("custom", "qemu64", svm="disable")), AMD_NESTED_ON, Status.PASS, None),
    (dom(virt_type="qemu", cpu=cpu("maximum")), AMD_NESTED_ON, Status.PASS, None),  # TCG: not KVM's code
])
def test_nested_judges_the_model_qemu_starts(d: Domain, h: Host | None, status: Status,
                                             severity: Severity | None) -> None:
    (result,) = no_nested_virtualization(d, env(h))
    assert (result.status, result.severity) == (status, severity)


@pytest.mark.parametrize("d", [
    dom(arch="aarch64", cpu=cpu("host-passthrough")),
    dom(arch="ppc64", cpu=cpu("host-model")),
    dom(arch="s390x", cpu=cpu("host-model")),
    dom(arch="aarch64"),
])
def test_nested_is_x86_only(d: Domain) -> None:
    assert list(no_nested_virtualization(d, env(AMD_NESTED_ON))) == []


# ---- firmware ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fw", "expected"), [
    (FirmwareConfig(firmware="efi", secure_boot=True, enrolled_keys=True), [Status.PASS]),
    (FirmwareConfig(firmware="efi", secure_boot=True), [Status.PASS]),
    (FirmwareConfig(loader="/usr/share/OVMF/OVMF_CODE.secboot.fd", loader_type="pflash",
                    loader_secure=True), [Status.PASS]),
    (FirmwareConfig(firmware="efi", secure_boot=True, enrolled_keys=False), [Status.FAIL]),
    (FirmwareConfig(firmware="efi", secure_boot=False), [Status.FAIL]),
    (FirmwareConfig(firmware="efi"), [Status.FAIL]),
    (FirmwareConfig(loader="/usr/share/OVMF/OVMF_CODE.fd"), [Status.FAIL]),
    (FirmwareConfig(), [Status.FAIL]),  # SeaBIOS
    (FirmwareConfig(firmware="efi", secure_boot=True, kernel="/boot/vmlinuz"), [Status.FAIL]),
])
def test_secure_boot(fw: FirmwareConfig, expected: list[Status]) -> None:
    assert statuses(secure_boot(dom(firmware=fw))) == expected


def test_secure_boot_skips_non_uefi_architectures() -> None:
    assert list(secure_boot(dom(arch="s390x"))) == []
    assert list(secure_boot(dom(os_type="xen"))) == []


@pytest.mark.parametrize(("fw", "expected"), [
    (FirmwareConfig(loader_secure=True, loader_type="pflash", smm=True), [Status.PASS]),
    (FirmwareConfig(loader_secure=True, loader_type="pflash"), [Status.FAIL]),
    (FirmwareConfig(loader_secure=True, smm=False), [Status.FAIL]),
    (FirmwareConfig(firmware="efi", secure_boot=True), [Status.PASS]),  # autoselection turns SMM on
    (FirmwareConfig(firmware="efi", secure_boot=True, smm=False), [Status.FAIL]),
    (FirmwareConfig(firmware="efi"), []),
])
def test_secure_loader_smm(fw: FirmwareConfig, expected: list[Status]) -> None:
    assert statuses(secure_loader_smm(dom(firmware=fw))) == expected


@pytest.mark.parametrize(("tpms", "expected"), [
    ((), [Status.FAIL]),
    ((Tpm(locator="devices/tpm[1]", model="tpm-crb", backend_type="emulator", version="2.0"),),
     [Status.PASS]),
])
def test_vtpm(tpms: tuple[Tpm, ...], expected: list[Status]) -> None:
    assert statuses(has_vtpm(dom(tpms=tpms))) == expected


# ---- confidential computing ------------------------------------------------------------------

def sev(policy: int | None, text: str | None = None) -> LaunchSecurity:
    shown = text or (None if policy is None else hex(policy))
    return LaunchSecurity(type="sev", policy=policy, policy_text=shown)


def test_launch_security_presence() -> None:
    assert statuses(has_launch_security(dom())) == [Status.FAIL]
    assert statuses(has_launch_security(dom(launch_security=SNP))) == [Status.PASS]


@pytest.mark.parametrize(("policy", "status", "severity", "words"), [
    (0x0001, Status.FAIL, Severity.MEDIUM, ("NOKS", "ES")),  # libvirt's own test fixture policy
    (0x0000, Status.FAIL, None, ("NODBG", "NOKS", "ES")),
    (0x0006, Status.FAIL, None, ("NODBG",)),
    (0x0003, Status.FAIL, Severity.MEDIUM, ("ES",)),
    (0x0007, Status.PASS, None, ()),
    (0x0037, Status.PASS, None, ()),
])
def test_sev_policy_bits(policy: int, status: Status, severity: Severity | None,
                         words: tuple[str, ...]) -> None:
    (result,) = sev_policy_bits(dom(launch_security=sev(policy)))
    assert (result.status, result.severity) == (status, severity)
    for word in words:
        assert word in result.message


def test_sev_policy_unparsable_is_unknown() -> None:
    assert statuses(sev_policy_bits(dom(launch_security=sev(None, "0xZZ")))) == [Status.UNKNOWN]
    assert list(sev_policy_bits(dom(launch_security=SNP))) == []


@pytest.mark.parametrize(("ls", "expected"), [
    (sev(0x7), [Status.FAIL]), (sev(0x1), [Status.FAIL]), (SNP, [Status.PASS]),
    (LaunchSecurity(type="tdx"), [Status.PASS]), (LaunchSecurity(type="s390-pv"), [Status.PASS]),
    (None, []),
])
def test_snp_not_plain_sev(ls: LaunchSecurity | None, expected: list[Status]) -> None:
    assert statuses(snp_not_plain_sev(dom(launch_security=ls))) == expected


@pytest.mark.parametrize(("ls", "expected"), [
    (SNP, [Status.PASS]),
    (LaunchSecurity(type="sev-snp", policy=0x30000 | (1 << 19)), [Status.FAIL]),
    (LaunchSecurity(type="sev-snp"), [Status.PASS]),  # libvirt's default policy
    (LaunchSecurity(type="sev-snp", policy_text="junk"), [Status.UNKNOWN]),
    (LaunchSecurity(type="tdx", policy=0x10000001), [Status.FAIL]),
    (LaunchSecurity(type="tdx", policy=0x10000000), [Status.PASS]),
    (sev(0x0), []),  # plain SEV's debug bit is VMS-DOM-161
    (LaunchSecurity(type="s390-pv"), []),
])
def test_no_debug_policy(ls: LaunchSecurity, expected: list[Status]) -> None:
    assert statuses(no_debug_policy(dom(launch_security=ls))) == expected


def test_side_doors() -> None:
    clean = dom(launch_security=SNP, on_crash="destroy")
    assert statuses(no_side_doors(clean)) == [Status.PASS]
    leaky = dom(
        launch_security=SNP, on_crash="coredump-destroy",
        hostdevs=(Hostdev(locator="devices/hostdev[1]", mode="subsystem", type="pci",
                          address="0000:06:12.5"),),
        interfaces=(Interface(locator="devices/interface[1]", type="hostdev",
                              hostdev_address="0000:07:00.1"),),
        qemu=QemuPassthrough(args=("-device", "foo")),
        filesystems=(Filesystem(locator="devices/filesystem[1]", type="mount", source_dir="/srv"),),
    )
    results = list(no_side_doors(leaky))
    assert statuses(results) == [Status.FAIL] * 5
    assert {r.subject for r in results} == {
        "hostdev devices/hostdev[1]", "interface devices/interface[1]", "qemu:commandline", "on_crash",
        "filesystem devices/filesystem[1]"}
    assert list(no_side_doors(dom(on_crash="coredump-destroy"))) == []  # not confidential
