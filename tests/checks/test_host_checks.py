"""Host checks (VMS-HOST-001…015): hardware isolation, side channels, kernel, device nodes.

Facts are built in the test; every table row is facts -> the statuses the check must yield.
"""

from __future__ import annotations

import inspect
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from components import require
from vmsec.checks.api import Environment, Result
from vmsec.checks.catalog import default_catalog
from vmsec.checks.host import files, hardware, kernel, side_channels
from vmsec.collectors.host import collect_host, collect_host_inventory
from vmsec.collectors.reader import RootReader
from vmsec.engine import run_checks
from vmsec.facts import (
    CpuInfo,
    Domain,
    FileKind,
    FileStat,
    Host,
    Hostdev,
    HypervisorDetection,
    Interface,
    Inventory,
    IommuInfo,
    MemoryConfig,
)
from vmsec.facts.host import BlockLayer
from vmsec.findings import Severity, Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN


def mk(**kw: Any) -> Host:
    return Host(name="h", root="/", live=kw.pop("live", True), **kw)


def env(h: Host, doms: tuple[Domain, ...] = ()) -> Environment:
    return Environment(inventory=Inventory(host=h, domains=doms), host=h)


def run(func: Callable[..., Iterator[Result]], h: Host, doms: tuple[Domain, ...] = ()) -> list[Result]:
    if len(inspect.signature(func).parameters) == 2:
        return list(func(h, env(h, doms)))
    return list(func(h))


def statuses(results: list[Result]) -> list[Status]:
    return [r.status for r in results]


def cpu(*flags: str, vendor: str = "GenuineIntel") -> CpuInfo:
    return CpuInfo(vendor=vendor, model_name="x", flags=frozenset(flags), logical_cpus=4)


def node(path: str, mode: int | None, exists: bool | None = True) -> FileStat:
    return FileStat(path=path, exists=exists, kind=FileKind.CHAR_DEVICE, mode=mode, uid=0, gid=0,
                    owner="root", group="kvm")


PCI_VM = Domain(name="gpu", origin="gpu.xml",
                hostdevs=(Hostdev(locator="devices/hostdev[1]", mode="subsystem", type="pci"),))
SRIOV_VM = Domain(name="nic", origin="nic.xml",
                  interfaces=(Interface(locator="devices/interface[1]", type="hostdev"),))
PLAIN_VM = Domain(name="plain", origin="plain.xml")

# --- VMS-HOST-001 -----------------------------------------------------------------------------

KVM = FileStat(path="/dev/kvm", exists=True, kind=FileKind.CHAR_DEVICE, mode=0o660)
NO_KVM = FileStat(path="/dev/kvm", exists=False)


@pytest.mark.parametrize(("facts", "expected"), [
    ({"cpu": cpu("vmx", "sse"), "kvm_device": KVM}, [P, P]),
    ({"cpu": cpu("svm", vendor="AuthenticAMD"), "kvm_device": KVM}, [P, P]),
    # No vmx/svm, but /dev/kvm is there (nested or paravirtual KVM, kvm_pvm): KVM is usable (class 6).
    ({"cpu": cpu("sse"), "kvm_device": KVM}, [P, P]),
    ({"cpu": cpu("sse"), "kvm_device": KVM, "kvm_api_version": 12}, [P, P]),
    ({"cpu": cpu("sse"), "kvm_device": NO_KVM}, [F, F]),
    ({"cpu": cpu("sse"), "kvm_device": NO_KVM, "live": False}, [U, U]),  # flags alone decide nothing
    ({"cpu": cpu("sse"), "kvm_device": NO_KVM, "live": False, "module_params": {"vfio": {}}}, [F, F]),
    ({"cpu": cpu("sse", vendor="ARM"), "kvm_device": KVM}, [P]),  # vmx/svm are x86 flags
    ({"cpu": cpu("vmx"), "kvm_device": NO_KVM}, [P, F]),
    ({"cpu": cpu("vmx"), "kvm_device": NO_KVM, "live": False}, [P, U]),
    ({"cpu": None, "kvm_device": None}, [U, U]),
    ({"cpu": cpu("vmx"), "kvm_device": FileStat(path="/dev/kvm", exists=None, error="EACCES")}, [P, U]),
])
def test_hardware_virtualization(facts: dict[str, Any], expected: list[Status]) -> None:
    assert statuses(run(hardware.hardware_virtualization, mk(**facts))) == expected


def test_hardware_virtualization_names_outer_hypervisor() -> None:
    h = mk(cpu=cpu("sse"), kvm_device=NO_KVM,
           virtualization=HypervisorDetection(is_virtual=True, hypervisor="kvm"))
    result = run(hardware.hardware_virtualization, h)[0]
    assert result.status is F
    assert "itself a virtual machine (kvm)" in result.message


# --- VMS-HOST-002 -----------------------------------------------------------------------------

@pytest.mark.parametrize(("detection", "expected"), [
    (HypervisorDetection(is_virtual=False), P),
    (HypervisorDetection(is_virtual=True, hypervisor="vmware", evidence=("dmi: VMware",)), F),
    (HypervisorDetection(is_virtual=None), U),
])
def test_host_is_bare_metal(detection: HypervisorDetection, expected: Status) -> None:
    [result] = run(hardware.host_is_bare_metal, mk(virtualization=detection))
    assert result.status is expected
    if expected is F:
        assert "vmware" in result.message


# --- VMS-HOST-003 / 004 -----------------------------------------------------------------------

def iommu(dmar: bool | None = False, ivrs: bool | None = False, groups: int | None = 0,
          devices: tuple[str, ...] | None = ()) -> IommuInfo:
    return IommuInfo(dmar_table=dmar, ivrs_table=ivrs, group_count=groups, iommu_devices=devices)


@pytest.mark.parametrize(("info", "doms", "expected", "severity"), [
    (iommu(dmar=True), (), P, None),
    (iommu(ivrs=True), (), P, None),
    (iommu(devices=("dmar0",)), (), P, None),
    (iommu(), (PLAIN_VM,), F, Severity.LOW),
    (iommu(), (PCI_VM,), F, Severity.HIGH),
    (iommu(), (SRIOV_VM,), F, Severity.HIGH),
    (iommu(dmar=None, ivrs=None, devices=None), (), U, None),
    (None, (), U, None),
])
def test_iommu_firmware_table(info: IommuInfo | None, doms: tuple[Domain, ...], expected: Status,
                              severity: Severity | None) -> None:
    [result] = run(hardware.iommu_firmware_table, mk(iommu=info), doms)
    assert result.status is expected
    assert result.severity is severity
    if doms == (PCI_VM,):
        assert "gpu" in result.message


@pytest.mark.parametrize(("info", "cmdline", "doms", "expected", "severity"), [
    (iommu(groups=12), ("intel_iommu=on",), (PCI_VM,), P, None),
    (iommu(groups=0), (), (PCI_VM,), F, Severity.CRITICAL),
    (iommu(groups=0), (), (), F, Severity.MEDIUM),
    (iommu(groups=12), ("quiet", "iommu=off"), (PCI_VM,), F, Severity.CRITICAL),
    (iommu(groups=None), ("quiet",), (), U, None),
    (None, None, (), U, None),
    # x86 iommu_setup(): "off" sets no_iommu, which no later iommu= or intel_iommu= clears.
    (iommu(groups=12), ("intel_iommu=on", "iommu=off", "iommu=pt"), (PCI_VM,), F, Severity.CRITICAL),
    (iommu(groups=12), ("iommu=pt,off",), (PCI_VM,), F, Severity.CRITICAL),
    # intel_iommu_setup() walks its comma list: the last on/off wins, over every occurrence.
    (iommu(groups=12), ("intel_iommu=sm_on,off",), (PCI_VM,), F, Severity.CRITICAL),
    (iommu(groups=12), ("intel_iommu=off", "intel_iommu=on"), (PCI_VM,), P, None),
    # amd_iommu=off is sticky (amd_iommu_disabled is never reset).
    (iommu(groups=12), ("amd_iommu=off", "amd_iommu=force_isolation"), (PCI_VM,), F, Severity.CRITICAL),
    # The kernel compares bytes: "OFF" is an option it does not know, not off.
    (iommu(groups=12), ("iommu=OFF",), (PCI_VM,), P, None),
])
def test_iommu_kernel_enabled(info: IommuInfo | None, cmdline: tuple[str, ...] | None,
                              doms: tuple[Domain, ...], expected: Status,
                              severity: Severity | None) -> None:
    [result] = run(hardware.iommu_kernel_enabled, mk(iommu=info, kernel_cmdline=cmdline), doms)
    assert (result.status, result.severity) == (expected, severity)


# --- VMS-HOST-005 -----------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "cmdline", "expected"), [
    ({"vfio": {"enable_unsafe_noiommu_mode": "N"},
      "vfio_iommu_type1": {"allow_unsafe_interrupts": "N"}}, (), [P, P]),
    ({"vfio": {"enable_unsafe_noiommu_mode": "Y"},
      "vfio_iommu_type1": {"allow_unsafe_interrupts": "N"}}, (), [F, P]),
    ({"vfio": {"enable_unsafe_noiommu_mode": "N"},
      "vfio_iommu_type1": {"allow_unsafe_interrupts": "Y"}}, (), [P, F]),
    ({}, (), []),  # vfio not loaded: nothing is assigned through it
    ({}, ("vfio_iommu_type1.allow_unsafe_interrupts=1",), [F]),
    (None, (), [U, U]),
    # loaded, but the switch could not be read: unknown, not "not loaded"
    ({"vfio": {"enable_unsafe_noiommu_mode": None},
      "vfio_iommu_type1": {"allow_unsafe_interrupts": "N"}}, (), [U, P]),
    ({"vfio": {}}, (), []),  # loaded without the parameter (no CONFIG_VFIO_NOIOMMU): no such mode
    # param_set_bool(): a bare flag is "1"; kstrtobool() takes y/t/1/on in any case as true ...
    ({}, ("vfio.enable_unsafe_noiommu_mode",), [F]),
    ({}, ("vfio.enable_unsafe_noiommu_mode=true", "vfio_iommu_type1.allow_unsafe_interrupts=T"), [F, F]),
    # ... and refuses what it cannot read, keeping the value an earlier occurrence set.
    ({}, ("vfio_iommu_type1.allow_unsafe_interrupts=1", "vfio_iommu_type1.allow_unsafe_interrupts=maybe"),
     [F]),
    ({}, ("vfio_iommu_type1.allow_unsafe_interrupts=1", "vfio_iommu_type1.allow_unsafe_interrupts=n"), []),
])
def test_vfio_unsafe_modes(params: Mapping[str, Mapping[str, str | None]] | None, cmdline: tuple[str, ...],
                           expected: list[Status]) -> None:
    results = run(hardware.vfio_unsafe_modes, mk(module_params=params, kernel_cmdline=cmdline))
    assert statuses(results) == expected
    for r in results:
        if r.status is F and r.subject.startswith("vfio."):
            assert r.severity is Severity.CRITICAL


# --- VMS-HOST-006 -----------------------------------------------------------------------------

REAL_VULNS = {  # as a Debian 12 kernel on a Xeon reports them
    "meltdown": "Not affected",
    "spectre_v1": "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
    "spectre_v2": "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling; "
                  "PBRSB-eIBRS: SW sequence; BHI: Vulnerable",
    "mds": "Mitigation: Clear CPU buffers; SMT vulnerable",
    "gather_data_sampling": "Vulnerable: No microcode",
    "mmio_stale_data": "Unknown: No mitigations",
}


def test_cpu_vulnerabilities_one_result_per_file() -> None:
    results = run(side_channels.cpu_vulnerabilities,
                  mk(cpu_vulnerabilities=REAL_VULNS, kernel_cmdline=("quiet",)))
    by_subject = {r.subject: r.status for r in results}
    assert by_subject == {
        "kernel cmdline mitigations": P,
        "cpu vulnerability gather_data_sampling": F,
        "cpu vulnerability mds": P,  # SMT part is VMS-HOST-007's
        "cpu vulnerability meltdown": P,
        "cpu vulnerability mmio_stale_data": U,
        "cpu vulnerability spectre_v1": P,
        "cpu vulnerability spectre_v2": F,  # BHI: Vulnerable inside a Mitigation line
    }
    [bhi] = [r for r in results if r.subject.endswith("spectre_v2")]
    assert "BHI" in bhi.message


@pytest.mark.parametrize(("cmdline", "vulns", "expected"), [
    (("quiet", "mitigations=off"), {}, [F]),
    (None, {"meltdown": "Not affected"}, [U, P]),
    (("quiet",), None, [P, U]),
    # arm64 kpti= is kstrtobool(): n, no, false, 0 and off all turn it off.
    (("kpti=n",), {}, [P, F]),
    (("kpti=false",), {}, [P, F]),
    # nospectre_v1 is an early_param: its handler runs whatever the value.
    (("nospectre_v1=1",), {}, [P, F]),
    # x86 looks nospectre_v2, nopti, spectre_v2= … up in the raw line (arch/x86/lib/cmdline.c): "--"
    # and quotes mean nothing there, so these still turn the mitigations off.
    (("quiet", "--", "nospectre_v2"), {}, [P, F]),
    (('dyndbg="x nopti y"',), {}, [P, F]),
    (("--", "spectre_v2=off"), {}, [P, F]),
])
def test_cpu_vulnerabilities_cmdline_and_unreadable(cmdline: tuple[str, ...] | None,
                                                   vulns: dict[str, str] | None,
                                                   expected: list[Status]) -> None:
    h = mk(kernel_cmdline=cmdline, cpu_vulnerabilities=vulns)
    assert statuses(run(side_channels.cpu_vulnerabilities, h)) == expected


# --- VMS-HOST-007 -----------------------------------------------------------------------------

@pytest.mark.parametrize(("smt", "vulns", "expected"), [
    ("on", {"l1tf": "Mitigation: PTE Inversion; VMX: conditional cache flushes, SMT vulnerable"}, F),
    ("on", {"l1tf": "Not affected", "mds": "Not affected"}, P),
    ("off", {"mds": "Mitigation: Clear CPU buffers; SMT vulnerable"}, P),
    ("notsupported", {}, P),
    ("on", None, U),
    (None, {}, U),
])
def test_smt_vulnerable(smt: str | None, vulns: dict[str, str] | None, expected: Status) -> None:
    [result] = run(side_channels.smt_vulnerable, mk(smt_control=smt, cpu_vulnerabilities=vulns))
    assert result.status is expected


def test_nosmt_on_the_command_line_does_not_stand_in_for_an_unread_smt_control() -> None:
    # Without smt/control the kernel may lack CONFIG_HOTPLUG_SMT, where "nosmt" is not even a
    # parameter (kernel/cpu.c): the flag proves nothing about the siblings.
    h = mk(smt_control=None, cpu_vulnerabilities={}, kernel_cmdline=("quiet", "nosmt"))
    [result] = run(side_channels.smt_vulnerable, h)
    assert result.status is U
    assert "nosmt" in result.message


# --- VMS-HOST-008 / 009 -----------------------------------------------------------------------

L1TF_AFFECTED = {"l1tf": "Mitigation: PTE Inversion; VMX: cache flushes, SMT disabled"}


@pytest.mark.parametrize(("params", "vulns", "expected"), [
    ({"kvm_intel": {"vmentry_l1d_flush": "cond"}}, L1TF_AFFECTED, [P]),
    ({"kvm_intel": {"vmentry_l1d_flush": "never"}}, L1TF_AFFECTED, [F]),
    ({"kvm_intel": {"vmentry_l1d_flush": "never"}}, {"l1tf": "Not affected"}, [P]),
    ({"kvm_intel": {"vmentry_l1d_flush": "never"}}, None, [U]),
    ({"kvm_amd": {"nested": "1"}}, L1TF_AFFECTED, []),
    (None, L1TF_AFFECTED, [U]),
    ({"kvm_intel": {"vmentry_l1d_flush": None}}, L1TF_AFFECTED, [U]),
    ({"kvm_intel": {"vmentry_l1d_flush": None}}, None, [U]),
    ({"kvm_intel": {"vmentry_l1d_flush": None}}, {"l1tf": "Not affected"}, [P]),  # never would pass too
])
def test_l1d_flush(params: Mapping[str, Mapping[str, str | None]] | None, vulns: dict[str, str] | None,
                   expected: list[Status]) -> None:
    h = mk(module_params=params, cpu_vulnerabilities=vulns)
    assert statuses(run(side_channels.l1d_flush, h)) == expected


@pytest.mark.parametrize(("nx", "text", "expected"), [
    ("N", "KVM: Vulnerable", [F]),
    ("Y", "KVM: Mitigation: Split huge pages", [P]),
    ("auto", "Not affected", [P]),
    ("N", None, [U]),
])
def test_itlb_multihit(nx: str, text: str | None, expected: list[Status]) -> None:
    vulns = {} if text is None else {"itlb_multihit": text}
    h = mk(module_params={"kvm": {"nx_huge_pages": nx}}, cpu_vulnerabilities=vulns)
    assert statuses(run(side_channels.itlb_multihit, h)) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("KVM: Vulnerable", [F]),
    ("KVM: Mitigation: Split huge pages", [P]),
    (None, [U]),
])
def test_itlb_multihit_unread_nx_huge_pages_is_judged_by_the_kernel(text: str | None,
                                                                     expected: list[Status]) -> None:
    """kvm is loaded and its nx_huge_pages unreadable: the kernel's own report decides, never "no kvm"."""
    vulns = {} if text is None else {"itlb_multihit": text}
    results = run(side_channels.itlb_multihit, mk(module_params={"kvm": {"nx_huge_pages": None}},
                                                  cpu_vulnerabilities=vulns))
    assert statuses(results) == expected
    assert all("nx_huge_pages" not in e.source for r in results for e in r.evidence)  # not read: not cited


def test_itlb_multihit_without_kvm_is_not_applicable() -> None:
    h = mk(module_params={}, cpu_vulnerabilities={"itlb_multihit": "KVM: Vulnerable"})
    assert run(side_channels.itlb_multihit, h) == []


# --- VMS-HOST-010 -----------------------------------------------------------------------------

@pytest.mark.parametrize(("vulns", "cmdline", "vendor", "expected"), [
    ({"vmscape": "Mitigation: IBPB before exit to userspace"}, (), "GenuineIntel", P),
    ({"vmscape": "Vulnerable"}, (), "GenuineIntel", F),
    ({"vmscape": "Not affected"}, ("vmscape=off",), "GenuineIntel", F),
    ({"meltdown": "Not affected"}, (), "AuthenticAMD", F),  # kernel predates the fix
    ({"meltdown": "Not affected"}, (), "ARM", U),
    (None, (), "GenuineIntel", U),
])
def test_vmscape(vulns: dict[str, str] | None, cmdline: tuple[str, ...], vendor: str,
                 expected: Status) -> None:
    h = mk(cpu_vulnerabilities=vulns, kernel_cmdline=cmdline, cpu=cpu(vendor=vendor))
    [result] = run(side_channels.vmscape, h)
    assert result.status is expected


# --- VMS-HOST-011 -----------------------------------------------------------------------------

NOSHARE_VM = Domain(name="private", origin="p.xml", memory=MemoryConfig(nosharepages=True))


@pytest.mark.parametrize(("run_value", "doms", "expected"), [
    ("0", (PLAIN_VM,), P),
    ("2", (PLAIN_VM,), P),
    ("1", (PLAIN_VM, NOSHARE_VM), F),
    ("1", (NOSHARE_VM,), P),
    ("1", (), F),
    (None, (), U),
])
def test_ksm(run_value: str | None, doms: tuple[Domain, ...], expected: Status) -> None:
    [result] = run(side_channels.ksm_merging, mk(ksm_run=run_value), doms)
    assert result.status is expected
    if expected is F and doms:
        assert "plain" in result.message and "private" not in result.message


# --- VMS-HOST-012 / 013 / 014 -----------------------------------------------------------------

@pytest.mark.parametrize(("params", "expected"), [
    ({"kvm_intel": {"nested": "Y"}}, [F]),
    ({"kvm_intel": {"nested": "N"}}, [P]),
    ({"kvm_amd": {"nested": "1"}}, [F]),
    ({"kvm_amd": {"nested": "0"}}, [P]),
    ({"kvm": {"nx_huge_pages": "auto"}}, []),
    (None, [U]),
    ({"kvm_intel": {"nested": None}}, [U]),
])
def test_nested(params: Mapping[str, Mapping[str, str | None]] | None, expected: list[Status]) -> None:
    assert statuses(run(kernel.nested_virtualization, mk(module_params=params))) == expected


@pytest.mark.parametrize(("sb", "lockdown", "expected"), [
    (True, "integrity", [P, P]),
    (True, "confidentiality", [P, P]),
    (False, "none", [F, F]),
    (True, "none", [P, F]),
    (None, None, [U, U]),
])
def test_secure_boot_lockdown(sb: bool | None, lockdown: str | None, expected: list[Status]) -> None:
    h = mk(secure_boot=sb, lockdown=lockdown)
    assert statuses(run(kernel.secure_boot_lockdown, h)) == expected


@pytest.mark.parametrize(("swaps", "expected"), [
    ((), [P]),
    (("/dev/zram0",), [P]),
    (("/dev/sda2",), [F]),
    (("/swapfile",), [U]),
    (("/dev/nvme0n1p3", "/dev/zram0"), [F, P]),
    (None, [U]),
])
def test_encrypted_swap(swaps: tuple[str, ...] | None, expected: list[Status]) -> None:
    assert statuses(run(kernel.encrypted_swap, mk(swaps=swaps))) == expected


def dm(name: str, uuid: str | None, *below: str) -> BlockLayer:
    return BlockLayer(name=name, dm_uuid=uuid, below=below)


LUKS = "CRYPT-LUKS2-0f1e2d3c4b5a69788796a5b4c3d2e1f0-luks-root"
LVM = "LVM-Jy3kQ0Xn0bY7cD1sG5WbH2hR8vT4fA6eZx9uK3mP1qL7sN5dF2gH8jK4lM6nB0vC"


@pytest.mark.parametrize(("layers", "expected"), [
    ((dm("dm-1", "CRYPT-PLAIN-cryptswap1"),), P),                    # crypttab's random-key swap
    ((dm("dm-2", LVM, "dm-0"), dm("dm-0", LUKS)), P),                 # LVM on LUKS ("encrypted LVM")
    ((dm("dm-1", LVM, "sda3"), dm("sda3", None, "sda"), dm("sda", None)), F),   # plain LVM
    # a mirror with one leg on LUKS and one plain: the plain leg holds cleartext
    ((dm("dm-1", LVM, "md0"), dm("md0", None, "dm-0", "sdb1"), dm("dm-0", LUKS), dm("sdb1", None)), F),
    ((dm("dm-1", "CRYPT-INTEGRITY-swap", "sda3"), dm("sda3", None)), F),  # integrity only: no cipher
    ((dm("dm-1", "", "sda3"), dm("sda3", None)), U),                   # a hand-made table: maybe crypt
    ((dm("dm-1", LVM, "loop0"), dm("loop0", None)), U),                # the file may be on an encrypted fs
    (None, U),                                                         # /sys/class/block unreadable
])
def test_device_mapper_swap_is_judged_by_its_layers(layers: tuple[BlockLayer, ...] | None,
                                                    expected: Status) -> None:
    h = mk(swaps=("/dev/dm-1",), swap_layers={"/dev/dm-1": layers})
    [result] = run(kernel.encrypted_swap, h)
    assert result.status is expected
    if expected is F:
        assert "without dm-crypt" in result.message


def test_device_mapper_swap_without_layer_facts_is_unknown() -> None:
    """Facts from a collector that does not read /sys/class/block: device-mapper alone proves nothing."""
    assert statuses(run(kernel.encrypted_swap, mk(swaps=("/dev/mapper/cryptswap1",)))) == [U]


def _block(root: Any, name: str, uuid: str | None = None, slaves: tuple[str, ...] = (),
           disk: str | None = None) -> None:
    """/sys/class/block/<name> as the kernel lays it out: a link into /sys/devices, a partition's
    directory inside its disk's."""
    where = root / "sys/devices/virtual/block" / (f"{disk}/{name}" if disk else name)
    where.mkdir(parents=True, exist_ok=True)
    if disk:
        (where / "partition").write_text("3\n")
    else:
        (where / "slaves").mkdir()
        for slave in slaves:
            (where / "slaves" / slave).symlink_to(f"../../{slave}")
    if uuid is not None:
        (where / "dm").mkdir()
        (where / "dm/uuid").write_text(uuid + "\n")
        (where / "dm/name").write_text(f"{name}-name\n")
    (root / "sys/class/block").mkdir(parents=True, exist_ok=True)
    rel = f"{disk}/{name}" if disk else name
    (root / "sys/class/block" / name).symlink_to(f"../../devices/virtual/block/{rel}")


@pytest.mark.parametrize(("lower", "expected"), [(LUKS, P), (None, F)])
def test_host014_lvm_swap_root(tmp_path: Any, lower: str | None, expected: Status) -> None:
    """Swap on an LVM volume (dm-1) whose PV is a LUKS device on sda3, or sda3 itself."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n"
                                         "/dev/mapper/dm-1-name\tpartition\t8388604\t0\t-2\n")
    _block(tmp_path, "dm-1", LVM, ("dm-0",) if lower else ("sda3",))
    if lower:
        _block(tmp_path, "dm-0", lower, ("sda3",))
    _block(tmp_path, "sda")
    _block(tmp_path, "sda3", disk="sda")
    inventory = collect_host_inventory(str(tmp_path))
    assert not inventory.errors
    findings = run_checks(inventory, default_catalog().select(ids=["VMS-HOST-014"])).findings
    assert [(f.subject, f.status) for f in findings] == [("swap /dev/mapper/dm-1-name", expected)]
    if expected is F:
        assert "down to sda" in findings[0].message


# --- VMS-HOST-015 -----------------------------------------------------------------------------

@pytest.mark.parametrize(("nodes", "expected"), [
    ((node("/dev/kvm", 0o660), node("/dev/vhost-net", 0o600)), [P, P]),
    ((node("/dev/kvm", 0o666),), [F]),
    ((node("/dev/vfio/vfio", 0o666),), []),  # the container node grants nothing by itself
    ((node("/dev/vfio/12", 0o666),), [F]),
    ((node("/dev/vhost-net", None, exists=None),), [U]),
    ((node("/dev/vhost-net", None, exists=False),), []),
])
def test_device_nodes(nodes: tuple[FileStat, ...], expected: list[Status]) -> None:
    assert statuses(run(files.device_node_permissions, mk(device_nodes=nodes))) == expected


def test_device_nodes_include_kvm_device_field() -> None:
    h = mk(kvm_device=node("/dev/kvm", 0o666), device_nodes=(node("/dev/vhost-net", 0o660),))
    assert [(r.subject, r.status) for r in run(files.device_node_permissions, h)] == [
        ("device /dev/kvm", F), ("device /dev/vhost-net", P)]


# --- verdicts on host roots built here (git cannot carry a 0666 device node) --------------------

@pytest.mark.parametrize(("mode", "expected"), [(0o660, P), (0o666, F)])
def test_host015_device_node_root(tmp_path: Any, mode: int, expected: Status) -> None:

    (tmp_path / "dev").mkdir()
    kvm = tmp_path / "dev/kvm"
    if os.geteuid() == 0:
        os.mknod(kvm, stat.S_IFCHR | mode, os.makedev(10, 232))
    else:
        kvm.write_text("")  # a stand-in: only the permission bits matter to this check
    os.chmod(kvm, mode)
    inventory = collect_host_inventory(str(tmp_path))
    assert not inventory.errors
    findings = run_checks(inventory, default_catalog().select(ids=["VMS-HOST-015"])).findings
    assert [(f.subject, f.status) for f in findings] == [("device /dev/kvm", expected)]


# A module parameter that exists but cannot be read (a FIFO stands in for it: the reader opens
# regular files only, and root reads any mode) is never "module not loaded". The CPU is affected by
# L1TF and iTLB multihit, so the parameter is what the verdict turns on.
UNREAD_PARAMS = [
    ("VMS-HOST-005", "vfio", "enable_unsafe_noiommu_mode", "vfio.enable_unsafe_noiommu_mode", U),
    ("VMS-HOST-005", "vfio_iommu_type1", "allow_unsafe_interrupts",
     "vfio_iommu_type1.allow_unsafe_interrupts", U),
    ("VMS-HOST-008", "kvm_intel", "vmentry_l1d_flush", "kvm_intel vmentry_l1d_flush", U),
    ("VMS-HOST-009", "kvm", "nx_huge_pages", "kvm nx_huge_pages", F),  # the kernel's report decides
    ("VMS-HOST-012", "kvm_amd", "nested", "kvm_amd nested", U),
]


@pytest.mark.parametrize(("check_id", "module", "param", "subject", "expected"), UNREAD_PARAMS,
                         ids=[f"{c}-{p}" for c, _, p, _, _ in UNREAD_PARAMS])
def test_unread_module_parameter_is_unknown_not_pass(tmp_path: Any, check_id: str, module: str, param: str,
                                                    subject: str, expected: Status) -> None:
    params = tmp_path / "sys/module" / module / "parameters"
    params.mkdir(parents=True)
    os.mkfifo(params / param)
    (tmp_path / "sys/module/kvm_intel").mkdir(exist_ok=True)  # decoy: loaded, without parameters
    vulns = tmp_path / "sys/devices/system/cpu/vulnerabilities"
    vulns.mkdir(parents=True)
    (vulns / "l1tf").write_text("Mitigation: PTE Inversion; VMX: conditional cache flushes, SMT vulnerable\n")
    (vulns / "itlb_multihit").write_text("KVM: Vulnerable\n")
    inventory = collect_host_inventory(str(tmp_path))
    assert [e.source for e in inventory.errors] == [f"/sys/module/{module}/parameters/{param}"]
    findings = run_checks(inventory, default_catalog().select(ids=[check_id])).findings
    assert [(f.subject, f.status) for f in findings] == [(subject, expected)]
    assert f"/sys/module/{module}/parameters/{param} could not be read" in findings[0].message


def test_module_not_loaded_is_still_not_applicable(tmp_path: Any) -> None:
    """/sys/module captured without vfio, kvm_intel or kvm_amd: nothing is loaded to be judged."""
    (tmp_path / "sys/module/kvm/parameters").mkdir(parents=True)
    (tmp_path / "sys/module/kvm/parameters/nx_huge_pages").write_text("Y\n")
    inventory = collect_host_inventory(str(tmp_path))
    assert not inventory.errors
    ids = ["VMS-HOST-005", "VMS-HOST-008", "VMS-HOST-012"]
    assert run_checks(inventory, default_catalog().select(ids=ids)).findings == ()


# --- class 6: claims match the evidence read ---------------------------------------------------

def test_legacy_bios_boot_is_said_with_its_own_evidence() -> None:
    h = mk(boot_firmware="bios", secure_boot=False, lockdown="integrity")
    [sb, _] = run(kernel.secure_boot_lockdown, h)
    assert sb.status is F and "legacy BIOS" in sb.message
    assert [e.source for e in sb.evidence] == ["/sys/firmware/efi"]  # never the efivars file not read


def test_secure_boot_disabled_on_uefi_cites_the_variable() -> None:
    [sb, _] = run(kernel.secure_boot_lockdown, mk(boot_firmware="uefi", secure_boot=False, lockdown="none"))
    assert sb.status is F and any("SecureBoot-" in e.source for e in sb.evidence)


def test_live_kvm_api_is_asked() -> None:
    """The running host's /dev/kvm answers KVM_GET_API_VERSION (12); here it is kvm_pvm, without vmx/svm."""
    require(os.path.exists("/dev/kvm"), "/dev/kvm", "the KVM API is the oracle for usable KVM")
    host, _ = collect_host(RootReader("/"), live=True, packages=())
    assert host.kvm_api_version == 12, host.kvm_api_error
    [*_, kvm_result] = run(hardware.hardware_virtualization, host)
    assert kvm_result.status is P and "KVM API" in kvm_result.message
