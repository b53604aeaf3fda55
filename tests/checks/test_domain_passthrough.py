"""Passthrough checks (VMS-DOM-070…075)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from vmsec.checks.api import Environment
from vmsec.checks.catalog import default_catalog
from vmsec.checks.domain import passthrough as p
from vmsec.collectors.host import collect_host_inventory
from vmsec.engine import run_checks
from vmsec.facts import (
    Chardev,
    Disk,
    Domain,
    Host,
    Hostdev,
    Interface,
    Inventory,
    IommuInfo,
    Redirdev,
    RedirFilterRule,
)
from vmsec.findings import Severity, Status


def dom(**kw: Any) -> Domain:
    kw.setdefault("name", "vm")
    kw.setdefault("origin", "vm.xml")
    return Domain(**kw)


def pci(**kw: Any) -> Hostdev:
    kw.setdefault("locator", "devices/hostdev[1]")
    kw.setdefault("type", "pci")
    kw.setdefault("address", "0000:06:12.5")
    return Hostdev(mode="subsystem", **kw)


def host(groups: int | None = 12, params: Mapping[str, Mapping[str, str | None]] | None = None,
         iommu: bool = True) -> Host:
    info = (IommuInfo(dmar_table=True, ivrs_table=False, group_count=groups, iommu_devices=("dmar0",))
            if iommu else None)
    return Host(name="h", root="/", live=True, iommu=info,
                module_params={"vfio": {"enable_unsafe_noiommu_mode": "N"}} if params is None else params)


def run(d: Domain, h: Host | None) -> list[tuple[Status, Severity | None]]:
    env = Environment(inventory=Inventory(host=h, domains=(d,)), host=h)
    return [(r.status, r.severity) for r in p.pci_passthrough_isolated(d, env)]


@pytest.mark.parametrize(("d", "h", "expected"), [
    (dom(), None, []),
    (dom(hostdevs=(pci(driver="kvm"),)), None, [(Status.FAIL, None)]),
    (dom(hostdevs=(pci(driver="vfio"),)), None, [(Status.UNKNOWN, None)]),
    (dom(hostdevs=(pci(),)), host(), [(Status.PASS, None)]),
    (dom(hostdevs=(pci(),)), host(groups=0), [(Status.FAIL, Severity.CRITICAL)]),
    (dom(hostdevs=(pci(),)), host(iommu=False), [(Status.UNKNOWN, None)]),
    (dom(hostdevs=(pci(),)), host(groups=None), [(Status.UNKNOWN, None)]),
    (dom(hostdevs=(pci(),)), host(params={"vfio": {"enable_unsafe_noiommu_mode": "Y"}}),
     [(Status.FAIL, Severity.CRITICAL)]),
    (dom(hostdevs=(pci(),)), host(params={"vfio_iommu_type1": {"allow_unsafe_interrupts": "Y"}}),
     [(Status.FAIL, Severity.HIGH)]),
    (dom(hostdevs=(pci(),)), host(params={}), [(Status.PASS, None)]),  # vfio not loaded yet: defaults
    # vfio loaded, its switch unreadable: unknown, never "off"
    (dom(hostdevs=(pci(),)), host(params={"vfio": {"enable_unsafe_noiommu_mode": None}}),
     [(Status.UNKNOWN, None)]),
    (dom(hostdevs=(pci(),)), host(params={"vfio": {}, "vfio_iommu_type1": {"allow_unsafe_interrupts": None}}),
     [(Status.UNKNOWN, None)]),
    (dom(interfaces=(Interface(locator="devices/interface[1]", type="hostdev",
                               hostdev_address="0000:3b:10.1"),)),
     host(groups=0), [(Status.FAIL, Severity.CRITICAL)]),
    (dom(hostdevs=(pci(type="usb"),)), host(groups=0), []),
])
def test_pci_isolation(d: Domain, h: Host | None, expected: list[tuple[Status, Severity | None]]) -> None:
    assert run(d, h) == expected


def test_module_params_unreadable_is_unknown() -> None:
    h = Host(name="h", root="/", live=True, module_params=None,
             iommu=IommuInfo(dmar_table=True, ivrs_table=None, group_count=3, iommu_devices=()))
    assert run(dom(hostdevs=(pci(),)), h) == [(Status.UNKNOWN, None)]


def test_unread_vfio_switch_is_unknown_naming_it(tmp_path: Path) -> None:
    """A host root whose vfio module is loaded but whose enable_unsafe_noiommu_mode cannot be read
    (a FIFO stands in: the reader opens regular files only, and root reads any mode)."""
    (tmp_path / "sys/kernel/iommu_groups/7").mkdir(parents=True)
    (tmp_path / "sys/module/vfio/parameters").mkdir(parents=True)
    os.mkfifo(tmp_path / "sys/module/vfio/parameters/enable_unsafe_noiommu_mode")
    (tmp_path / "sys/module/vfio_iommu_type1/parameters").mkdir(parents=True)
    (tmp_path / "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts").write_text("N\n")
    (tmp_path / "etc/libvirt/qemu").mkdir(parents=True)
    (tmp_path / "etc/libvirt/qemu/gpu.xml").write_text(
        "<domain type='kvm'><name>gpu</name><devices><hostdev mode='subsystem' type='pci' managed='yes'>"
        "<source><address domain='0x0000' bus='0x06' slot='0x12' function='0x5'/></source></hostdev>"
        "</devices></domain>")
    inventory = collect_host_inventory(str(tmp_path))
    assert [e.source for e in inventory.errors] == ["/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"]
    [finding] = run_checks(inventory, default_catalog().select(ids=["VMS-DOM-070"])).findings
    assert finding.status is Status.UNKNOWN
    assert "vfio.enable_unsafe_noiommu_mode" in finding.message
    assert "allow_unsafe_interrupts" not in finding.message  # read: N


@pytest.mark.parametrize(("d", "expected"), [
    (dom(), [(Status.PASS, None)]),
    (dom(hostdevs=(pci(),)), [(Status.FAIL, None)]),
    (dom(hostdevs=(pci(rom_file="/usr/share/roms/nic.rom"),)), [(Status.FAIL, None)]),
    (dom(hostdevs=(pci(rom_file="/home/u/evil.rom"),)), [(Status.FAIL, Severity.HIGH)]),
    (dom(hostdevs=(pci(type="mdev"),)), [(Status.PASS, None)]),
])
def test_pci_presence(d: Domain, expected: list[tuple[Status, Severity | None]]) -> None:
    assert [(r.status, r.severity) for r in p.no_pci_passthrough(d)] == expected


def spicevmc(i: int = 1) -> Redirdev:
    return Redirdev(locator=f"devices/redirdev[{i}]", bus="usb", type="spicevmc")


DENY_ALL = RedirFilterRule(allow=False)
ALLOW_ALL = RedirFilterRule(allow=True, usb_class="-1", vendor="-1", product="-1", version="-1")
ALLOW_HID = RedirFilterRule(allow=True, usb_class="0x03")


@pytest.mark.parametrize(("d", "expected"), [
    (dom(), [(Status.PASS, None)]),
    (dom(hostdevs=(pci(type="usb", address="1234:beef"),)), [(Status.FAIL, None)]),
    (dom(redirdevs=(spicevmc(),)), [(Status.FAIL, None)]),
    (dom(redirdevs=(spicevmc(),), redirfilter=()), [(Status.FAIL, None)]),
    (dom(redirdevs=(spicevmc(),), redirfilter=(ALLOW_HID, DENY_ALL)), [(Status.PASS, None)]),
    (dom(redirdevs=(spicevmc(),), redirfilter=(ALLOW_ALL, DENY_ALL)), [(Status.FAIL, None)]),
    (dom(redirdevs=(spicevmc(),), redirfilter=(ALLOW_HID,)), [(Status.FAIL, None)]),
    (dom(redirdevs=(Redirdev(locator="devices/redirdev[1]", bus="usb", type="tcp", host="192.0.2.1",
                             port="4000"),), redirfilter=(DENY_ALL,)), [(Status.FAIL, Severity.HIGH)]),
])
def test_usb(d: Domain, expected: list[tuple[Status, Severity | None]]) -> None:
    assert [(r.status, r.severity) for r in p.usb_passthrough_controlled(d)] == expected


def lun(**kw: Any) -> Disk:
    return Disk(locator="devices/disk[1]", type="block", device="lun", source_dev="/dev/sdb", **kw)


@pytest.mark.parametrize(("d", "expected"), [
    (dom(), [(Status.PASS, None)]),
    (dom(disks=(Disk(locator="devices/disk[1]", type="block", device="disk", source_dev="/dev/sdb"),)),
     [(Status.PASS, None)]),
    (dom(disks=(lun(),)), [(Status.PASS, None)]),
    (dom(disks=(lun(sgio="filtered"),)), [(Status.PASS, None)]),
    (dom(disks=(lun(rawio=True),)), [(Status.FAIL, None)]),
    (dom(disks=(lun(sgio="unfiltered"),)), [(Status.FAIL, None)]),
    (dom(hostdevs=(pci(type="scsi", address="scsi_host0:0:0:0"),)), [(Status.FAIL, Severity.MEDIUM)]),
    (dom(hostdevs=(pci(type="scsi", sgio="unfiltered"),)), [(Status.FAIL, None)]),
    (dom(hostdevs=(pci(type="scsi_host", address="naa.5123456789abcde0"),)),
     [(Status.FAIL, Severity.MEDIUM)]),
])
def test_raw_scsi(d: Domain, expected: list[tuple[Status, Severity | None]]) -> None:
    assert [(r.status, r.severity) for r in p.no_raw_scsi(d)] == expected


def test_host_chardevs() -> None:
    assert [r.status for r in p.no_host_chardevs(dom())] == [Status.PASS]
    pty = Chardev(locator="devices/serial[1]", element="serial", type="pty")
    dev = Chardev(locator="devices/parallel[1]", element="parallel", type="dev", source_path="/dev/parport0")
    got = list(p.no_host_chardevs(dom(chardevs=(pty, dev))))
    assert [r.status for r in got] == [Status.FAIL]
    assert "/dev/parport0" in got[0].message


def test_mdev() -> None:
    assert [r.status for r in p.no_mediated_devices(dom())] == [Status.PASS]
    md = pci(type="mdev", address="53764d0e-85a0-42b4-af5c-2046b460b1dc")
    got = p.no_mediated_devices(dom(hostdevs=(md,)))
    assert [(r.status, r.severity) for r in got] == [(Status.FAIL, None)]
