"""Confinement checks (VMS-DOM-001…010) on Domain facts built in the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vmsec.checks.api import Environment, Result
from vmsec.checks.domain import confinement as c
from vmsec.facts import Disk, Domain, FirmwareConfig, Inventory, QemuPassthrough, SecLabel
from vmsec.findings import Severity, Status, TargetKind


def dom(**kw: Any) -> Domain:
    kw.setdefault("name", "vm1")
    kw.setdefault("origin", "vm1.xml")
    return Domain(**kw)


def label(type_: str | None = "dynamic", model: str | None = "selinux", **kw: Any) -> SecLabel:
    return SecLabel(locator=kw.pop("locator", "seclabel[1]"), type=type_, model=model, **kw)


def statuses(func: Callable[..., Iterator[Result]], *args: Any) -> list[Status]:
    return [r.status for r in func(*args)]


@pytest.mark.parametrize(("labels", "expected", "severity"), [
    ((), Status.PASS, None),
    ((label("dynamic"),), Status.PASS, None),
    ((label("none", None),), Status.FAIL, None),
    ((label("none", "selinux"),), Status.FAIL, None),
    ((label("none", "dac"),), Status.FAIL, Severity.MEDIUM),
])
def test_seclabel_none(labels: tuple[SecLabel, ...], expected: Status, severity: Severity | None) -> None:
    results = list(c.seclabel_not_none(dom(seclabels=labels)))
    assert [r.status for r in results] == [expected]
    assert results[0].severity == severity


@pytest.mark.parametrize(("text", "expected", "severity"), [
    ("+0:+0", Status.FAIL, None),
    ("root:root", Status.FAIL, None),
    ("0:107", Status.FAIL, None),
    ("qemu:root", Status.FAIL, Severity.MEDIUM),
    ("+107:+107", Status.PASS, None),
    ("qemu:qemu", Status.PASS, None),
    ("+1000:+0", Status.FAIL, Severity.MEDIUM),
    ("+100:+100", Status.PASS, None),  # not root just because it contains a 0
])
def test_dac_label(text: str, expected: Status, severity: Severity | None) -> None:
    results = list(c.dac_label_not_root(dom(seclabels=(label("static", "dac", label=text),))))
    assert [r.status for r in results] == [expected]
    assert results[0].severity == severity


def test_dac_absent_passes() -> None:
    assert statuses(c.dac_label_not_root, dom(seclabels=(label("dynamic", "selinux"),))) == [Status.PASS]


def disk(**kw: Any) -> Disk:
    kw.setdefault("locator", "devices/disk[1]")
    kw.setdefault("type", "file")
    kw.setdefault("device", "disk")
    kw.setdefault("source_file", "/var/lib/libvirt/images/a.qcow2")
    return Disk(**kw)


@pytest.mark.parametrize(("labels", "disks", "expected"), [
    ((), (disk(),), [Status.PASS]),
    ((), (disk(relabel=False),), [Status.FAIL]),
    ((), (disk(relabel=False, readonly=True),), []),
    ((), (disk(relabel=False, shareable=True),), []),
    ((), (disk(device="cdrom", relabel=False),), []),
    ((label("static", "selinux", label="system_u:system_r:svirt_t:s0:c1,c2"),), (disk(),), [Status.FAIL]),
    ((label("static", "selinux", label="system_u:system_r:svirt_t:s0:c1,c2", relabel=True),),
     (disk(),), [Status.PASS]),
    ((label("static", "selinux", relabel=False, label="x:y:svirt_t:s0"),), (disk(relabel=True),),
     [Status.PASS]),
    ((label("dynamic", "selinux", labelskip=True),), (disk(),), [Status.FAIL]),
    ((label("static", "dac", label="+107:+107"),), (disk(),), [Status.PASS]),  # DAC does not separate VMs
])
def test_relabel(labels: tuple[SecLabel, ...], disks: tuple[Disk, ...], expected: list[Status]) -> None:
    assert statuses(c.writable_disks_relabelled, dom(seclabels=labels, disks=disks)) == expected


def env_of(*doms: Domain) -> Environment:
    return Environment(inventory=Inventory(domains=doms), host=None)


def test_shared_mcs_label_fails_on_both_domains() -> None:
    lab = "system_u:system_r:svirt_t:s0:c10,c20"
    a = dom(name="a", uuid="1", seclabels=(label("static", "selinux", label=lab),))
    b = dom(name="b", uuid="2", seclabels=(label("static", "selinux",
                                                 label="system_u:system_r:svirt_tcg_t:s0:c10,c20"),))
    other = dom(name="c", uuid="3", seclabels=(label("dynamic", "selinux",
                                                     label="system_u:system_r:svirt_t:s0:c1,c2"),))
    results = list(c.labels_unique_across_vms(env_of(a, b, other).inventory, env_of(a, b, other)))
    by_target = {r.target.name: r for r in results if r.target}
    got = {n: r.status for n, r in by_target.items()}
    assert got == {"a": Status.FAIL, "b": Status.FAIL, "c": Status.PASS}
    assert all(r.target and r.target.kind is TargetKind.DOMAIN for r in results)
    assert "b" in by_target["a"].message


def test_same_domain_twice_is_not_sharing() -> None:
    lab = "system_u:system_r:svirt_t:s0:c10,c20"
    a = dom(name="a", uuid="1", seclabels=(label("static", "selinux", label=lab),))
    env = env_of(a, a)
    assert statuses(c.labels_unique_across_vms, env.inventory, env) == [Status.PASS]


def test_a_label_shared_by_many_names_a_bounded_few_others() -> None:
    lab = "system_u:system_r:svirt_t:s0:c10,c20"
    doms = tuple(dom(name=f"vm{i:02}", uuid=str(i), seclabels=(label("static", "selinux", label=lab),))
                 for i in range(12))
    env = env_of(*doms)
    by_target = {r.target.name: r for r in c.labels_unique_across_vms(env.inventory, env) if r.target}
    assert by_target["vm04"].message.endswith(
        "also used by vm00, vm01, vm02, vm03, vm05, vm06, vm07, vm08 and 3 more")


def test_shared_apparmor_profile() -> None:
    a = dom(name="a", seclabels=(label("static", "apparmor", label="shared-profile"),))
    b = dom(name="b", seclabels=(label("static", None, label="shared-profile"),))
    env = env_of(a, b)
    assert statuses(c.labels_unique_across_vms, env.inventory, env) == [Status.FAIL, Status.FAIL]


@pytest.mark.parametrize(("lab", "expected"), [
    (label("dynamic", "selinux", baselabel="system_u:system_r:svirt_t:s0"), [Status.PASS]),
    (label("dynamic", "selinux", baselabel="system_u:system_r:unconfined_t:s0"), [Status.FAIL]),
    (label("static", "selinux", label="unconfined_u:unconfined_r:spc_t:s0"), [Status.FAIL]),
    (label("static", "apparmor", label="unconfined"), [Status.FAIL]),
    (label("dynamic", "apparmor", label="libvirt-1234"), [Status.PASS]),
    (label("dynamic", "selinux"), []),
    (label("none", None), []),
])
def test_label_type(lab: SecLabel, expected: list[Status]) -> None:
    assert statuses(c.label_type_confined, dom(seclabels=(lab,))) == expected


@pytest.mark.parametrize(("qemu", "expected", "severity"), [
    (None, Status.PASS, None),
    (QemuPassthrough(), Status.PASS, None),
    (QemuPassthrough(args=("-unknown", "parameter")), Status.FAIL, None),
    (QemuPassthrough(capabilities=("vnc-colon",)), Status.FAIL, None),
    (QemuPassthrough(override=True), Status.FAIL, None),
    (QemuPassthrough(args=("-monitor", "tcp:0.0.0.0:4444,server,nowait")), Status.FAIL, Severity.CRITICAL),
    (QemuPassthrough(args=("-qmp", "tcp:127.0.0.1:4444,server")), Status.FAIL, Severity.CRITICAL),
    (QemuPassthrough(args=("-monitor", "stdio")), Status.FAIL, None),
    (QemuPassthrough(args=("-sandbox", "off")), Status.FAIL, Severity.CRITICAL),
    (QemuPassthrough(args=("-sandbox on,obsolete=deny",)), Status.FAIL, None),
    (QemuPassthrough(args=("--drive", "file=/etc/shadow,format=raw")), Status.FAIL, Severity.CRITICAL),
    (QemuPassthrough(args=("-device", "ivshmem-plain,memdev=hostmem")), Status.FAIL, Severity.CRITICAL),
    (QemuPassthrough(args=("-vnc", ":1")), Status.FAIL, Severity.CRITICAL),
    (QemuPassthrough(args=("-vnc", "0.0.0.0:1,tls-creds=tls0")), Status.FAIL, None),
    (QemuPassthrough(args=("-chardev socket,id=c,host=0.0.0.0,port=9,server=on",)), Status.FAIL,
     Severity.CRITICAL),
    (QemuPassthrough(env=("LD_PRELOAD=/tmp/x.so",)), Status.FAIL, Severity.CRITICAL),
    (QemuPassthrough(args=("-drive",)), Status.FAIL, None),  # truncated: no value, no crash
])
def test_qemu_passthrough(qemu: QemuPassthrough | None, expected: Status, severity: Severity | None) -> None:
    results = list(c.no_qemu_passthrough(dom(qemu=qemu)))
    assert [r.status for r in results] == [expected]
    assert results[0].severity == severity


def test_qemu_passthrough_bounded_output() -> None:
    many = tuple(x for i in range(5000) for x in ("-vnc", f":{i}" + "x" * 10_000))
    [result] = c.no_qemu_passthrough(dom(qemu=QemuPassthrough(args=many, env=("LD_PRELOAD=" + "y" * 10**6,))))
    assert result.severity is Severity.CRITICAL
    assert len(result.message) < 2000
    assert all(len(e.value or "") < 10_000 for e in result.evidence)


@pytest.mark.parametrize(("path", "expected", "severity"), [
    (None, Status.PASS, None),
    ("/usr/bin/qemu-system-x86_64", Status.PASS, None),
    ("/usr/libexec/qemu-kvm", Status.PASS, None),
    ("/usr/bin/kvm", Status.PASS, None),
    ("/tmp/qemu-system-x86_64", Status.FAIL, None),
    ("/home/alice/qemu/build/qemu-system-x86_64", Status.FAIL, None),
    ("/usr/bin/../../tmp/qemu", Status.FAIL, None),
    ("qemu-system-x86_64", Status.FAIL, None),
    ("/usr/local/bin/qemu-system-x86_64", Status.FAIL, Severity.MEDIUM),
    ("/opt/qemu/bin/qemu-system-x86_64", Status.FAIL, Severity.MEDIUM),
    ("/usr/bin/python3", Status.FAIL, Severity.MEDIUM),
])
def test_emulator(path: str | None, expected: Status, severity: Severity | None) -> None:
    results = list(c.emulator_packaged(dom(emulator=path)))
    assert [r.status for r in results] == [expected]
    assert results[0].severity == severity


@pytest.mark.parametrize(("fw", "expected"), [
    (FirmwareConfig(), Status.PASS),
    (FirmwareConfig(kernel="/var/lib/libvirt/boot/vmlinuz", initrd="/var/lib/libvirt/boot/initrd"),
     Status.PASS),
    (FirmwareConfig(loader="/usr/share/OVMF/OVMF_CODE.fd", nvram="/var/lib/libvirt/qemu/nvram/a.fd"),
     Status.PASS),
    (FirmwareConfig(kernel="/tmp/vmlinuz"), Status.FAIL),
    (FirmwareConfig(dtb="/home/bob/board.dtb"), Status.FAIL),
    (FirmwareConfig(loader="/dev/shm/OVMF.fd"), Status.FAIL),
    (FirmwareConfig(nvram="/var/tmp/vars.fd"), Status.FAIL),
    (FirmwareConfig(initrd="/tmpfoo/initrd"), Status.PASS),  # a prefix is not a parent directory
])
def test_boot_files(fw: FirmwareConfig, expected: Status) -> None:
    assert statuses(c.boot_files_protected, dom(firmware=fw)) == [expected]


@pytest.mark.parametrize(("virt", "qemu", "expected"), [
    ("kvm", None, [Status.PASS]),
    ("qemu", None, [Status.FAIL]),
    ("kvm", QemuPassthrough(args=("-accel", "tcg")), [Status.FAIL]),
    ("kvm", QemuPassthrough(args=("-machine", "q35,accel=tcg")), [Status.FAIL]),
    (None, None, [Status.UNKNOWN]),
    ("lxc", None, []),
    ("test", None, []),
])
def test_virt_type(virt: str | None, qemu: QemuPassthrough | None, expected: list[Status]) -> None:
    assert statuses(c.hardware_accelerated, dom(virt_type=virt, qemu=qemu)) == expected


@pytest.mark.parametrize(("arch", "machine", "expected"), [
    ("x86_64", "pc-q35-7.2", Status.PASS),
    ("x86_64", "pc-i440fx-rhel7.6.0", Status.PASS),
    ("x86_64", "q35", Status.PASS),
    ("x86_64", "pc", Status.PASS),
    ("x86_64", "microvm", Status.PASS),
    ("x86_64", "isapc", Status.FAIL),
    ("x86_64", "none", Status.FAIL),
    ("x86_64", "virt", Status.FAIL),
    ("aarch64", "virt-7.2", Status.PASS),
    ("aarch64", "raspi3b", Status.FAIL),
    ("ppc64le", "pseries-rhel9.2.0", Status.PASS),
    ("s390x", "s390-ccw-virtio-7.2", Status.PASS),
    ("mips64el", "malta", Status.FAIL),
    (None, "q35", Status.PASS),
    ("x86_64", None, Status.PASS),  # QEMU's documented default machine for x86_64 is pc
    ("i686", None, Status.PASS),
    ("aarch64", None, Status.UNKNOWN),  # QEMU has no default machine for aarch64
])
def test_machine_type(arch: str | None, machine: str | None, expected: Status) -> None:
    d = dom(virt_type="kvm", arch=arch, machine=machine)
    assert statuses(c.supported_machine_type, d, env_of(d)) == [expected]


@pytest.mark.parametrize(("path", "expected"), [
    ("/tmp/x", "/tmp"), ("/tmp", "/tmp"), ("//tmp/x", "/tmp"), ("/var/lib/../../tmp/x", "/tmp"),
    ("/home/u/x", "/home"), ("/var/lib/libvirt/x", None), ("relative/x", "."), ("/tmpx/y", None),
])
def test_user_writable_dir(path: str, expected: str | None) -> None:
    assert c.user_writable_dir(path) == expected
