"""Filesystem-share and disk checks (VMS-DOM-090…106), called directly on facts built here."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from vmsec.checks.api import Environment, Result
from vmsec.checks.domain.disks import (
    backing_files_local,
    backing_formats_recorded,
    block_device_kind,
    disks_encrypted,
    network_disks_secure,
    no_shared_writable_disk,
    no_whole_host_disk,
    resource_limits,
)
from vmsec.checks.domain.filesystems import (
    ninep_not_passthrough,
    no_sensitive_host_share,
    normalise,
    sensitive_reason,
    shares_are_readonly,
    virtiofs_writable_idmapped,
)
from vmsec.facts import (
    BackingStore,
    ConfigFile,
    Disk,
    DiskEncryption,
    Domain,
    Filesystem,
    Host,
    Inventory,
    StoragePool,
)
from vmsec.findings import Severity, Status, TargetKind


def dom(name: str = "vm", **kw: object) -> Domain:
    return Domain(name=name, origin=f"{name}.xml", **kw)  # type: ignore[arg-type]


def env(inv: Inventory | None = None, host: Host | None = None, multi_tenant: bool = True) -> Environment:
    inv = inv or Inventory(host=host)
    return Environment(inventory=inv, host=host, multi_tenant=multi_tenant)


def statuses(results: Iterable[Result]) -> list[Status]:
    return [r.status for r in results]


def fs(source: str | None = "/srv/share", **kw: object) -> Filesystem:
    return Filesystem(locator="devices/filesystem[1]", type=str(kw.pop("type", "mount")),
                      source_dir=source, **kw)  # type: ignore[arg-type]


def disk(**kw: object) -> Disk:
    kw.setdefault("type", "file")
    kw.setdefault("device", "disk")
    return Disk(locator=str(kw.pop("locator", "devices/disk[1]")), **kw)  # type: ignore[arg-type]


def host_with_qemu_conf(values: dict[str, object] | None) -> Host:
    conf = None if values is None else ConfigFile(
        path="/etc/libvirt/qemu.conf", present=True, values=values,  # type: ignore[arg-type]
        defaults={"nbd_tls": 0})
    return Host(name="h", root="/", live=False, qemu_conf=conf)


# ---- filesystems -----------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "normalised"), [
    ("/etc", "/etc"), ("//etc//", "/etc"), ("/srv/../etc", "/etc"), ("/./root/x/..", "/root"),
    ("etc", "/etc"), ("/", "/"), ("///", "/"),
])
def test_normalise(path: str, normalised: str) -> None:
    assert normalise(path) == normalised


@pytest.mark.parametrize(("path", "sensitive"), [
    ("/", True), ("/etc", True), ("/etc/ssh", True), ("/root", True), ("/home", True),
    ("/var/lib/libvirt", True), ("/var/lib/libvirt/images", True), ("/var", True), ("/var/lib", True),
    ("/run", True), ("/var/run/docker.sock", True), ("/proc/1", True), ("/sys", True), ("/dev", True),
    ("/boot/efi", True), ("/srv/app/control.sock", True), ("/usr", True),
    # component comparison: a shared prefix of characters is not a shared path
    ("/etcetera", False), ("/rooted", False), ("/home/alice/vmshare", False), ("/srv/share", False),
    ("/usr/share/doc", False), ("/var/lib/libvirtx", False), ("/devices", False),
])
def test_sensitive_reason(path: str, sensitive: bool) -> None:
    assert (sensitive_reason(path) is not None) is sensitive


@pytest.mark.parametrize(("share", "expected"), [
    (fs("/srv/share"), [Status.PASS]),
    (fs("//etc/../etc/"), [Status.FAIL]),
    (fs("/var/run/../lib/libvirt/qemu"), [Status.FAIL]),
    (fs("/", readonly=True), [Status.FAIL]),
    (fs("/etc", type="ram"), []),  # no host directory behind a RAM filesystem
    (fs(None), []),
])
def test_sensitive_share(share: Filesystem, expected: list[Status]) -> None:
    results = list(no_sensitive_host_share(dom(filesystems=(share,))))
    assert statuses(results) == expected
    if expected == [Status.FAIL]:
        assert results[0].evidence[0].locator == "devices/filesystem[1]/source/@dir"


def test_sensitive_share_message_names_the_path() -> None:
    (result,) = no_sensitive_host_share(dom(filesystems=(fs("/var"),)))
    assert "/var" in result.message and "/var/lib/libvirt" in result.message


@pytest.mark.parametrize(("share", "expected"), [
    (fs(readonly=True), Status.PASS), (fs(readonly=False), Status.FAIL),
])
def test_share_readonly(share: Filesystem, expected: Status) -> None:
    assert statuses(shares_are_readonly(dom(filesystems=(share,)))) == [expected]


@pytest.mark.parametrize(("share", "virt_type", "expected", "severity"), [
    (fs(), "kvm", Status.FAIL, None),  # absent accessmode: libvirt's default is passthrough
    (fs(accessmode="passthrough", driver_type="path"), "kvm", Status.FAIL, None),
    (fs(accessmode="passthrough", readonly=True), "kvm", Status.FAIL, Severity.MEDIUM),
    (fs(accessmode="mapped", driver_type="handle"), "kvm", Status.PASS, None),
    (fs(accessmode="squash"), "kvm", Status.PASS, None),
    (fs(driver_type="virtiofs"), "kvm", None, None),
    (fs(), "lxc", None, None),
])
def test_9p_accessmode(share: Filesystem, virt_type: str, expected: Status | None,
                       severity: Severity | None) -> None:
    results = list(ninep_not_passthrough(dom(virt_type=virt_type, filesystems=(share,))))
    assert statuses(results) == ([expected] if expected else [])
    if expected is Status.FAIL:
        assert results[0].severity == severity


@pytest.mark.parametrize(("share", "expected"), [
    (fs(driver_type="virtiofs"), [Status.FAIL]),
    (fs(driver_type="virtiofs", idmap=True), [Status.PASS]),
    (fs(driver_type="virtiofs", readonly=True), [Status.PASS]),
    (fs(driver_type="path"), []),
])
def test_virtiofs_idmap(share: Filesystem, expected: list[Status]) -> None:
    assert statuses(virtiofs_writable_idmapped(dom(filesystems=(share,)))) == expected


# ---- host block devices ---------------------------------------------------------------------

@pytest.mark.parametrize(("dev", "kind"), [
    ("/dev/sda", "whole"), ("/dev/sdab", "whole"), ("/dev/nvme0n1", "whole"), ("/dev/vdb", "whole"),
    ("/dev/md0", "whole"), ("/dev/disk/by-id/ata-Samsung_SSD_860_S3Z", "whole"),
    ("/dev/disk/by-path/pci-0000:00:17.0-ata-1", "whole"),
    ("/dev/sda1", "partition"), ("/dev/nvme0n1p2", "partition"), ("/dev/mmcblk0p1", "partition"),
    ("/dev/disk/by-id/ata-Samsung_SSD_860_S3Z-part1", "partition"),
    ("/dev/disk/by-uuid/1234-ABCD", "partition"),
    ("/dev/HostVG/QEMUGuest1", "logical"), ("/dev/mapper/vg-lv", "logical"), ("/dev/dm-3", "logical"),
    ("/dev/disk/by-id/dm-name-vg-lv", "logical"), ("/dev/zvol/tank/vm", "logical"),
    ("/dev/loop0", "other"), ("/dev/sr0", "other"),
])
def test_block_device_kind(dev: str, kind: str) -> None:
    assert block_device_kind(dev) == kind


@pytest.mark.parametrize(("d", "status", "severity"), [
    (disk(type="block", source_dev="/dev/sdb"), Status.FAIL, None),
    (disk(type="block", source_dev="/dev/nvme1n1", readonly=True), Status.FAIL, Severity.MEDIUM),
    (disk(type="block", source_dev="/dev/sdb2"), Status.FAIL, Severity.LOW),
    (disk(type="block", source_dev="/dev/HostVG/guest"), Status.FAIL, Severity.LOW),
    (disk(type="block", source_dev="/dev/HostVG/guest", readonly=True), Status.PASS, None),
    (disk(type="nvme"), Status.FAIL, None),
    (disk(type="block", device="cdrom", source_dev="/dev/sr0"), Status.PASS, None),
])
def test_whole_host_disk(d: Disk, status: Status, severity: Severity | None) -> None:
    (result,) = no_whole_host_disk(dom(disks=(d,)))
    assert result.status is status
    assert result.severity == severity


def test_whole_host_disk_ignores_file_disks() -> None:
    assert list(no_whole_host_disk(dom(disks=(disk(source_file="/var/lib/libvirt/images/a.qcow2"),)))) == []


# ---- sources shared between VMs ---------------------------------------------------------------

def _shared_inventory(*doms: Domain) -> Inventory:
    return Inventory(domains=doms)


def test_shared_writable_disk_fails_in_both_vms_with_domain_targets() -> None:
    a = dom("a", disks=(disk(source_file="/images/shared.img"),))
    b = dom("b", disks=(disk(source_file="//images/./shared.img"),))
    inv = _shared_inventory(a, b)
    results = list(no_shared_writable_disk(inv, env(inv)))
    assert statuses(results) == [Status.FAIL, Status.FAIL]
    assert {r.target.name for r in results if r.target} == {"a", "b"}
    assert all(r.target and r.target.kind is TargetKind.DOMAIN for r in results)
    assert all(r.severity is None for r in results)  # two writers: the check's high severity
    assert "also written by b" in results[0].message


@pytest.mark.parametrize(("a_disk", "b_disk", "expected", "severity"), [
    (disk(source_file="/i/x"), disk(source_file="/i/x", readonly=True), Status.FAIL, Severity.MEDIUM),
    (disk(source_file="/i/x", shareable=True), disk(source_file="/i/x", shareable=True), Status.PASS, None),
    (disk(source_file="/i/x", readonly=True), disk(source_file="/i/x", device="cdrom"), Status.PASS, None),
    (disk(source_file="/i/x"), disk(source_file="/i/y"), Status.PASS, None),
    (disk(type="block", source_dev="/dev/sdc"), disk(type="block", source_dev="/dev/sdc"), Status.FAIL, None),
    (disk(type="network", source_protocol="rbd", source_name="pool/img", source_hosts=("mon:6789",)),
     disk(type="network", source_protocol="rbd", source_name="pool/img", source_hosts=("mon:6789",)),
     Status.FAIL, None),
])
def test_shared_disk_table(a_disk: Disk, b_disk: Disk, expected: Status, severity: Severity | None) -> None:
    inv = _shared_inventory(dom("a", disks=(a_disk,)), dom("b", disks=(b_disk,)))
    results = list(no_shared_writable_disk(inv, env(inv)))
    assert results and {r.status for r in results} == {expected}
    assert {r.severity for r in results} == {severity}


def test_same_vm_twice_is_not_sharing() -> None:
    # The same domain listed twice (e.g. live and inactive XML) must not be reported against itself.
    same = dom("a", disks=(disk(source_file="/i/x"),))
    inv = _shared_inventory(same, same)
    assert set(statuses(no_shared_writable_disk(inv, env(inv)))) == {Status.PASS}


# ---- backing chains ----------------------------------------------------------------------------

def chain(*entries: BackingStore) -> tuple[BackingStore, ...]:
    return entries


@pytest.mark.parametrize(("backing", "formats", "local"), [
    (chain(BackingStore(type="file", format="qcow2", source="/i/base.qcow2"),
           BackingStore(type=None, format=None, source=None, terminated=True)), Status.PASS, Status.PASS),
    (chain(BackingStore(type="file", format=None, source="/i/base.img")), Status.FAIL, Status.PASS),
    (chain(BackingStore(type="network", format="raw", source="nbd:example.org:6000")),
     Status.PASS, Status.FAIL),
    (chain(BackingStore(type="file", format="qcow2", source="/i/b1"),
           BackingStore(type="file", format=None, source="http://evil.example/x")), Status.FAIL, Status.FAIL),
    (chain(BackingStore(type=None, format=None, source=None, terminated=True)), Status.PASS, None),
    (None, None, None),
])
def test_backing_chain(backing: tuple[BackingStore, ...] | None, formats: Status | None,
                       local: Status | None) -> None:
    d = dom(disks=(disk(source_file="/i/top.qcow2", driver_type="qcow2", backing_chain=backing),))
    assert statuses(backing_formats_recorded(d)) == ([formats] if formats else [])
    assert statuses(backing_files_local(d)) == ([local] if local else [])


def test_missing_driver_type_alone_is_not_a_finding() -> None:
    d = dom(disks=(disk(source_file="/i/a.img", driver_type=None),))
    assert list(backing_formats_recorded(d)) == []


def test_backing_evidence_points_at_the_nested_entry() -> None:
    d = dom(disks=(disk(source_file="/i/top", backing_chain=chain(
        BackingStore(type="file", format="qcow2", source="/i/b1"),
        BackingStore(type="file", format=None, source="/i/b2"))),))
    (result,) = backing_formats_recorded(d)
    assert result.evidence[0].locator == "devices/disk[1]/backingStore/backingStore/format"


# ---- encryption at rest ------------------------------------------------------------------------

LUKS = DiskEncryption(format="luks", secret_uuid="0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f")


@pytest.mark.parametrize(("d", "expected", "severity"), [
    (disk(source_file="/i/a.qcow2", encryption=LUKS), [Status.PASS], None),
    (disk(source_file="/i/a.qcow2", encryption=DiskEncryption(format="luks2", placement="source")),
     [Status.PASS], None),
    (disk(source_file="/i/a.qcow2"), [Status.FAIL], None),
    (disk(source_file="/i/a.qcow2", encryption=DiskEncryption(format="qcow")), [Status.FAIL], Severity.HIGH),
    (disk(source_file="/i/install.iso", device="cdrom"), [], None),
    (disk(source_file="/i/data.img", readonly=True), [], None),
    (disk(type="network", source_protocol="iscsi", source_name="iqn.x/1"), [Status.FAIL], Severity.HIGH),
    (disk(type="network", source_protocol="rbd", source_name="pool/img"), [Status.FAIL], None),
    (disk(type="network", source_protocol="nbd", source_hosts=("/run/nbd.sock",)), [Status.FAIL], None),
    (disk(type="network", source_protocol="nbd", source_hosts=("example.org:6000",)),
     [Status.FAIL], Severity.HIGH),
    (disk(type="network", source_protocol="nbd", source_hosts=("example.org:6000",), source_tls=True),
     [Status.FAIL], None),
])
def test_disk_encryption(d: Disk, expected: list[Status], severity: Severity | None) -> None:
    results = list(disks_encrypted(dom(disks=(d,)), env()))
    assert statuses(results) == expected
    if expected:
        assert results[0].severity == severity


def test_disk_encryption_volume_in_network_pool_is_named() -> None:
    inv = Inventory(pools=(StoragePool(name="nfs", origin="nfs.xml", type="netfs"),))
    d = dom(disks=(disk(type="volume", source_pool="nfs", source_volume="v1"),))
    (result,) = disks_encrypted(d, env(inv))
    assert result.status is Status.FAIL and "netfs pool" in result.message


# ---- network disk transports ------------------------------------------------------------------

def net_disk(protocol: str, **kw: object) -> Disk:
    kw.setdefault("source_hosts", ("storage.example:1234",))
    return disk(type="network", source_protocol=protocol, source_name="img", **kw)


@pytest.mark.parametrize(("d", "host", "expected"), [
    (net_disk("nbd", source_tls=True), None, Status.PASS),
    (net_disk("nbd", source_tls=False), None, Status.FAIL),
    # No tls attribute and no qemu.conf: its documented default nbd_tls = 0 holds, and is named.
    (net_disk("nbd"), None, Status.FAIL),
    (net_disk("nbd"), host_with_qemu_conf(None), Status.FAIL),
    (net_disk("nbd", source_hosts=("127.0.0.1:10809",)), None, Status.PASS),  # loopback, as VMS-QEMU-021
    (net_disk("nbd"), host_with_qemu_conf({"nbd_tls": 1}), Status.PASS),
    (net_disk("nbd"), host_with_qemu_conf({}), Status.FAIL),  # default nbd_tls = 0
    (net_disk("nbd", source_tls=False), host_with_qemu_conf({"nbd_tls": 1}), Status.FAIL),
    (net_disk("nbd", source_hosts=("/var/run/nbdsock",)), None, Status.PASS),
    (net_disk("iscsi"), None, Status.FAIL),
    (net_disk("iscsi", auth=True), None, Status.PASS),
    (net_disk("rbd"), None, Status.FAIL),
    (net_disk("rbd", auth=True), None, Status.PASS),
    (net_disk("http"), None, Status.FAIL),
    (net_disk("tftp"), None, Status.FAIL),
    (net_disk("https"), None, Status.PASS),
])
def test_network_disk_transport(d: Disk, host: Host | None, expected: Status) -> None:
    assert statuses(network_disks_secure(dom(disks=(d,)), env(host=host))) == [expected]


def test_network_disk_transport_ignores_local_disks() -> None:
    assert list(network_disks_secure(dom(disks=(disk(source_file="/i/a"),)), env())) == []


# ---- resource limits ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kw", "multi_tenant", "expected"), [
    ({}, True, [Status.FAIL]),
    ({"has_cputune_limits": True}, True, [Status.FAIL]),
    ({"has_cputune_limits": True, "has_disk_iotune": True}, True, [Status.PASS]),
    ({"has_cputune_limits": True, "has_blkiotune": True}, True, [Status.PASS]),
    ({}, False, []),
])
def test_resource_limits(kw: dict[str, bool], multi_tenant: bool, expected: list[Status]) -> None:
    assert statuses(resource_limits(dom(**kw), env(multi_tenant=multi_tenant))) == expected


def test_shared_disk_message_is_bounded_with_many_vms() -> None:
    doms = tuple(dom(f"vm{i:03}", disks=(disk(source_file="/i/common.img"),)) for i in range(300))
    inv = _shared_inventory(*doms)
    results = list(no_shared_writable_disk(inv, env(inv)))
    assert len(results) == 300 and {r.status for r in results} == {Status.FAIL}
    assert max(len(r.message) for r in results) < 300
    assert "and 291 more" in results[0].message


def test_shared_disk_messages_name_others_never_the_vm_itself() -> None:
    # 12 writers and one reader of the same image: every message names at most 8 other VMs (never the
    # VM the finding is about) and counts the rest.
    writers = tuple(dom(f"vm{i:02}", disks=(disk(source_file="/i/common.img"),)) for i in range(12))
    reader = dom("vm05r", disks=(disk(source_file="/i/common.img", readonly=True),))
    inv = _shared_inventory(*writers, reader)
    results = {r.target.name: r for r in no_shared_writable_disk(inv, env(inv)) if r.target}
    first = results["vm00"].message
    assert "also written by vm01, vm02, vm03, vm04, vm05, vm06, vm07, vm08 and 3 more" in first
    middle = results["vm03"].message
    assert "also written by vm00, vm01, vm02, vm04, vm05, vm06, vm07, vm08 and 3 more" in middle
    reading = results["vm05r"].message
    assert "also written by vm00, vm01, vm02, vm03, vm04, vm05, vm06, vm07 and 4 more" in reading
    assert results["vm05r"].severity is None  # twelve writers: the check's high severity
