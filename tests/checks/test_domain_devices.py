"""Emulated-device checks (VMS-DOM-040…052)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from vmsec.checks.api import Environment
from vmsec.checks.domain import devices as d
from vmsec.facts import (
    Chardev,
    ConfigFile,
    ConfValue,
    Controller,
    Disk,
    Domain,
    Host,
    Hostdev,
    Interface,
    Inventory,
    MemoryConfig,
    Rng,
    Shmem,
    SimpleDevice,
    Tpm,
)
from vmsec.findings import Severity, Status


def dom(**kw: Any) -> Domain:
    kw.setdefault("name", "vm")
    kw.setdefault("origin", "vm.xml")
    return Domain(**kw)


def disk(**kw: Any) -> Disk:
    kw.setdefault("locator", "devices/disk[1]")
    kw.setdefault("type", "file")
    kw.setdefault("device", "disk")
    return Disk(**kw)


ENV = Environment(inventory=Inventory(), host=None)


def sev_status(results: Any) -> list[tuple[Status, Severity | None]]:
    return [(r.status, r.severity) for r in results]


@pytest.mark.parametrize(("kw", "expected"), [
    ({"machine": "pc-q35-7.2", "arch": "x86_64"}, [(Status.PASS, None)]),
    ({"machine": "pc-i440fx-7.2", "arch": "x86_64"}, [(Status.FAIL, Severity.MEDIUM)]),
    ({"machine": "pc", "arch": "x86_64"}, [(Status.FAIL, Severity.MEDIUM)]),
    ({"machine": "virt", "arch": "aarch64"}, [(Status.PASS, None)]),
    ({"arch": "x86_64"}, [(Status.FAIL, Severity.MEDIUM)]),  # no machine: QEMU's default pc (i440fx)
    ({"arch": "i686"}, [(Status.FAIL, Severity.MEDIUM)]),
    ({"emulator": "/usr/bin/qemu-system-x86_64"}, [(Status.FAIL, Severity.MEDIUM)]),  # arch from emulator
    ({}, [(Status.UNKNOWN, None)]),  # no arch, no emulator, no host facts
    ({"arch": "aarch64"}, [(Status.PASS, None)]),
    ({"machine": "q35", "disks": (disk(device="floppy", target_dev="fda", target_bus="fdc"),)},
     [(Status.FAIL, None)]),
    ({"machine": "q35", "controllers": (Controller(locator="devices/controller[2]", type="fdc"),)},
     [(Status.FAIL, None)]),
])
def test_floppy(kw: dict[str, Any], expected: list[tuple[Status, Severity | None]]) -> None:
    assert sev_status(d.no_floppy(dom(**kw), ENV)) == expected


def nic(model: str | None, type_: str = "network") -> Interface:
    return Interface(locator="devices/interface[1]", type=type_, model=model)


@pytest.mark.parametrize(("arch", "iface", "expected"), [
    ("x86_64", nic("virtio"), [(Status.PASS, None)]),
    ("x86_64", nic("virtio-non-transitional"), [(Status.PASS, None)]),
    ("x86_64", nic("rtl8139"), [(Status.FAIL, None)]),
    ("x86_64", nic("e1000e"), [(Status.FAIL, None)]),
    ("x86_64", nic("pcnet"), [(Status.FAIL, None)]),
    ("x86_64", nic("some-future-nic"), [(Status.FAIL, Severity.LOW)]),
    ("x86_64", nic(None), [(Status.FAIL, None)]),  # libvirt's default on x86: rtl8139
    ("ppc64", nic(None), [(Status.FAIL, None)]),  # rtl8139 on pseries too
    ("aarch64", nic(None), [(Status.PASS, None)]),  # virtio on the virt machine
    ("s390x", nic(None), [(Status.PASS, None)]),
    (None, nic(None), [(Status.UNKNOWN, None)]),
    ("x86_64", nic(None, "hostdev"), []),
])
def test_nic_model(arch: str, iface: Interface, expected: list[tuple[Status, Severity | None]]) -> None:
    assert sev_status(d.nic_model_virtio(dom(arch=arch, interfaces=(iface,)), ENV)) == expected


@pytest.mark.parametrize(("model", "expected"), [
    ("cirrus", (Status.FAIL, Severity.MEDIUM)), ("vmvga", (Status.FAIL, Severity.MEDIUM)),
    ("qxl", (Status.FAIL, Severity.LOW)), ("virtio", (Status.PASS, None)), ("vga", (Status.PASS, None)),
    ("bochs", (Status.PASS, None)), ("none", (Status.PASS, None)), (None, (Status.UNKNOWN, None)),
])
def test_video(model: str | None, expected: tuple[Status, Severity | None]) -> None:
    video = SimpleDevice(locator="devices/video[1]", element="video", model=model)
    assert sev_status(d.video_model_safe(dom(devices=(video,)))) == [expected]


def test_optional_devices() -> None:
    assert [r.status for r in d.no_optional_devices(dom())] == [Status.PASS]
    ps2 = SimpleDevice(locator="devices/input[1]", element="input", type="mouse", bus="ps2")
    assert [r.status for r in d.no_optional_devices(dom(devices=(ps2,)))] == [Status.PASS]
    devs = (SimpleDevice(locator="devices/sound[1]", element="sound", model="ich9"),
            SimpleDevice(locator="devices/input[2]", element="input", type="tablet", bus="usb"),
            SimpleDevice(locator="devices/smartcard[1]", element="smartcard", type="host"))
    par = Chardev(locator="devices/parallel[1]", element="parallel", type="pty")
    results = list(d.no_optional_devices(dom(devices=devs, chardevs=(par,))))
    assert [r.status for r in results] == [Status.FAIL] * 4
    assert {r.subject for r in results} == {"sound devices/sound[1]", "input devices/input[2]",
                                            "smartcard devices/smartcard[1]", "parallel devices/parallel[1]"}


USB_TABLET = SimpleDevice(locator="devices/input[1]", element="input", type="tablet", bus="usb")


@pytest.mark.parametrize(("machine", "model", "devices", "expected"), [
    ("q35", "none", (), (Status.PASS, None)),
    ("q35", "qemu-xhci", (USB_TABLET,), (Status.PASS, None)),
    ("q35", "qemu-xhci", (), (Status.FAIL, Severity.LOW)),
    ("q35", "piix3-uhci", (USB_TABLET,), (Status.FAIL, None)),
    ("q35", "ich9-ehci1", (USB_TABLET,), (Status.FAIL, None)),
    ("pc", None, (USB_TABLET,), (Status.FAIL, None)),
    ("q35", None, (USB_TABLET,), (Status.UNKNOWN, None)),
])
def test_usb_controller(machine: str, model: str | None, devices: tuple[SimpleDevice, ...],
                        expected: tuple[Status, Severity | None]) -> None:
    ctl = Controller(locator="devices/controller[1]", type="usb", model=model)
    assert sev_status(d.usb_controller_modern(dom(machine=machine, controllers=(ctl,), devices=devices),
                                              ENV)) == [expected]


def test_usb_needed_by_hostdev() -> None:
    ctl = Controller(locator="devices/controller[1]", type="usb", model="qemu-xhci")
    hd = Hostdev(locator="devices/hostdev[1]", mode="subsystem", type="usb")
    got = d.usb_controller_modern(dom(controllers=(ctl,), hostdevs=(hd,)), ENV)
    assert [r.status for r in got] == [Status.PASS]


@pytest.mark.parametrize(("dk", "expected"), [
    (disk(target_dev="vda", target_bus="virtio"), [(Status.PASS, None)]),
    (disk(target_dev="sda", target_bus="scsi"), [(Status.PASS, None)]),
    (disk(target_dev="hda", target_bus="ide"), [(Status.FAIL, Severity.MEDIUM)]),
    (disk(target_dev="hdc"), [(Status.FAIL, Severity.MEDIUM)]),
    (disk(device="cdrom", target_dev="sda", target_bus="sata"), [(Status.FAIL, None)]),
    (disk(target_dev="sdb"), []),
    (disk(device="floppy", target_dev="fda", target_bus="fdc"), []),
])
def test_disk_bus(dk: Disk, expected: list[tuple[Status, Severity | None]]) -> None:
    assert sev_status(d.disk_bus_paravirtual(dom(disks=(dk,)))) == expected


def test_nvme() -> None:
    assert [r.status for r in d.no_emulated_nvme(dom())] == [Status.PASS]
    host_nvme = disk(type="nvme", target_dev="vda", target_bus="virtio")
    assert [r.status for r in d.no_emulated_nvme(dom(disks=(host_nvme,)))] == [Status.PASS]
    emulated = disk(target_dev="nvme0n1", target_bus="nvme")
    ctl = Controller(locator="devices/controller[3]", type="nvme")
    got = d.no_emulated_nvme(dom(disks=(emulated,), controllers=(ctl,)))
    assert [r.status for r in got] == [Status.FAIL] * 2


def test_shmem_names_peers() -> None:
    a = dom(name="a", shmems=(Shmem(locator="devices/shmem[1]", name="shared", model="ivshmem-plain"),))
    b = dom(name="b", shmems=(Shmem(locator="devices/shmem[1]", name="shared"),))
    clean = dom(name="c")
    env = Environment(inventory=Inventory(domains=(a, b, clean)), host=None)
    [ra] = d.no_shared_memory(a, env)
    assert ra.status is Status.FAIL and "shared with b" in ra.message
    assert [r.status for r in d.no_shared_memory(clean, env)] == [Status.PASS]


def test_shmem_peers_are_bounded_and_never_the_domain_itself() -> None:
    doms = tuple(dom(name=f"vm{i:02}", shmems=(Shmem(locator="devices/shmem[1]", name="bus"),))
                 for i in range(12))
    env = Environment(inventory=Inventory(domains=doms), host=None)
    [r] = d.no_shared_memory(doms[3], env)
    assert r.status is Status.FAIL
    assert r.message.endswith("shared with vm00, vm01, vm02, vm04, vm05, vm06, vm07, vm08 and 3 more")


@pytest.mark.parametrize(("action", "expected"), [
    ("dump", Status.FAIL), ("reset", Status.PASS), (None, Status.PASS), ("poweroff", Status.PASS),
])
def test_watchdog(action: str | None, expected: Status) -> None:
    wd = SimpleDevice(locator="devices/watchdog[1]", element="watchdog", model="i6300esb", action=action)
    assert [r.status for r in d.watchdog_no_dump(dom(devices=(wd,)))] == [expected]
    assert list(d.watchdog_no_dump(dom())) == []


def qhost(values: Mapping[str, ConfValue]) -> Host:
    conf = ConfigFile(path="/etc/libvirt/qemu.conf", present=True, values=dict(values),
                      defaults={"dump_guest_core": 0})
    return Host(name="h", root="/", live=True, qemu_conf=conf)


@pytest.mark.parametrize(("on_crash", "dump_core", "h", "expected"), [
    ("destroy", False, None, [Status.PASS, Status.PASS]),
    ("coredump-restart", False, None, [Status.FAIL, Status.PASS]),
    ("restart", True, None, [Status.PASS, Status.FAIL]),
    (None, None, None, [Status.PASS, Status.UNKNOWN]),
    (None, None, qhost({}), [Status.PASS, Status.PASS]),
    (None, None, qhost({"dump_guest_core": 1}), [Status.PASS, Status.FAIL]),
])
def test_crash_dumps(on_crash: str | None, dump_core: bool | None, h: Host | None,
                     expected: list[Status]) -> None:
    env = Environment(inventory=Inventory(host=h), host=h)
    got = d.no_crash_dumps(dom(on_crash=on_crash, memory=MemoryConfig(dump_core=dump_core)), env)
    assert [r.status for r in got] == expected


@pytest.mark.parametrize(("rng", "expected"), [
    (Rng(locator="devices/rng[1]", model="virtio", backend_model="random", source="/dev/urandom"),
     Status.PASS),
    (Rng(locator="devices/rng[1]", model="virtio", backend_model="builtin"), Status.PASS),
    (Rng(locator="devices/rng[1]", model="virtio", backend_model="egd", backend_type="tcp",
         source="192.0.2.1:1234"), Status.FAIL),
    (Rng(locator="devices/rng[1]", model="virtio", backend_model="egd", backend_type="unix"), Status.PASS),
])
def test_rng(rng: Rng, expected: Status) -> None:
    assert [r.status for r in d.rng_backend_local(dom(rngs=(rng,)))] == [expected]


@pytest.mark.parametrize(("tpm", "expected"), [
    (Tpm(locator="devices/tpm[1]", model="tpm-crb", backend_type="passthrough", device_path="/dev/tpm0"),
     (Status.FAIL, None)),
    (Tpm(locator="devices/tpm[1]", model="tpm-crb", backend_type="emulator", version="2.0"),
     (Status.FAIL, Severity.MEDIUM)),
    (Tpm(locator="devices/tpm[1]", model="tpm-crb", backend_type="emulator", encryption_secret="uuid"),
     (Status.PASS, None)),
    (Tpm(locator="devices/tpm[1]", model="tpm-crb", backend_type="external"), (Status.UNKNOWN, None)),
])
def test_tpm(tpm: Tpm, expected: tuple[Status, Severity | None]) -> None:
    assert sev_status(d.tpm_backend_safe(dom(tpms=(tpm,)))) == [expected]


def test_host_guest_channels() -> None:
    ga = Chardev(locator="devices/channel[1]", element="channel", type="unix", target_type="virtio",
                 target_name="org.qemu.guest_agent.0")
    assert [r.status for r in d.host_guest_channels(dom(chardevs=(ga,)))] == [Status.PASS]
    other = Chardev(locator="devices/channel[2]", element="channel", type="unix", target_type="virtio",
                    target_name="org.example.svc")
    vsock = SimpleDevice(locator="devices/vsock[1]", element="vsock", model="virtio")
    got = list(d.host_guest_channels(dom(chardevs=(ga, other), devices=(vsock,))))
    assert [(r.status, r.subject) for r in got] == [(Status.FAIL, "vsock devices/vsock[1]"),
                                                    (Status.FAIL, "channel devices/channel[2]")]
