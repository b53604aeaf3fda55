"""Virtual network, nwfilter, storage pool and secret checks (VMS-NET-*, VMS-STO-*), on facts built here."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from vmsec.checks.api import Environment, Result
from vmsec.checks.network.storage import (
    disks_in_pool,
    network_pool_encryption,
    pool_permissions,
    secrets_private,
)
from vmsec.checks.network.virtual_networks import (
    clean_traffic_defined,
    network_no_trust_rx,
    network_ports_isolated,
    no_open_forward,
)
from vmsec.facts import (
    Disk,
    DiskEncryption,
    Domain,
    FileKind,
    FileStat,
    Host,
    Inventory,
    Network,
    NwFilter,
    Secret,
    StoragePool,
)
from vmsec.findings import Severity, Status, TargetKind

HOST = Host(name="hv1", root="/", live=False)


def net(**kw: object) -> Network:
    return Network(name="n", origin="n.xml", **kw)  # type: ignore[arg-type]


def env(inv: Inventory | None = None, host: Host | None = HOST, multi_tenant: bool = True) -> Environment:
    inv = inv or Inventory(host=host)
    return Environment(inventory=inv, host=host, multi_tenant=multi_tenant)


def statuses(results: Iterable[Result]) -> list[Status]:
    return [r.status for r in results]


# ---- virtual networks --------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "expected"), [
    ("open", Status.FAIL), ("nat", Status.PASS), ("route", Status.PASS), (None, Status.PASS),
    ("bridge", Status.PASS),
])
def test_open_forward(mode: str | None, expected: Status) -> None:
    assert statuses(no_open_forward(net(forward_mode=mode))) == [expected]


@pytest.mark.parametrize(("trust", "expected"), [
    (True, Status.FAIL), (False, Status.PASS), (None, Status.PASS),
])
def test_network_trust_rx(trust: bool | None, expected: Status) -> None:
    assert statuses(network_no_trust_rx(net(trust_guest_rx_filters=trust))) == [expected]


@pytest.mark.parametrize(("n", "multi_tenant", "expected"), [
    (net(forward_mode="nat"), True, [Status.FAIL]),
    (net(forward_mode="nat", port_isolated=True), True, [Status.PASS]),
    (net(forward_mode="nat"), False, []),
    (net(), True, [Status.FAIL]),  # isolated network: guests still share its bridge
    (net(forward_mode="hostdev"), True, []),
    (net(forward_mode="bridge", forward_devs=("eth0",)), True, []),  # macvtap pool
    (net(forward_mode="bridge", bridge="br0"), True, [Status.FAIL]),
])
def test_network_ports_isolated(n: Network, multi_tenant: bool, expected: list[Status]) -> None:
    assert statuses(network_ports_isolated(n, env(multi_tenant=multi_tenant))) == expected


@pytest.mark.parametrize(("filters", "host", "expected"), [
    ((NwFilter(name="clean-traffic", origin="ct.xml", references=("no-mac-spoofing",)),), HOST,
     [Status.PASS]),
    ((NwFilter(name="allow-dhcp", origin="ad.xml"),), HOST, [Status.FAIL]),
    ((), HOST, [Status.FAIL]),
    (None, HOST, [Status.UNKNOWN]),
    (None, None, []),  # offline XML: no host filters expected
])
def test_clean_traffic_defined(filters: tuple[NwFilter, ...] | None, host: Host | None,
                               expected: list[Status]) -> None:
    inv = Inventory(host=host, nwfilters=filters)
    results = list(clean_traffic_defined(inv, env(inv, host)))
    assert statuses(results) == expected
    assert all(r.target is not None and r.target.kind is TargetKind.HOST for r in results)


# ---- storage pools -------------------------------------------------------------------------------

def pool(**kw: object) -> StoragePool:
    kw.setdefault("type", "dir")
    kw.setdefault("target_path", "/var/lib/libvirt/images")
    return StoragePool(name=str(kw.pop("name", "default")), origin="default.xml", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("p", "status", "severity"), [
    (pool(mode=0o711), Status.PASS, None),
    (pool(mode=0o700), Status.PASS, None),
    (pool(mode=0o755), Status.FAIL, None),
    (pool(mode=0o777), Status.FAIL, Severity.HIGH),
    (pool(mode=0o1733), Status.FAIL, Severity.HIGH),
    (pool(), Status.UNKNOWN, None),
])
def test_pool_permissions(p: StoragePool, status: Status, severity: Severity | None) -> None:
    inv = Inventory(host=HOST, pools=(p,))
    (result,) = pool_permissions(inv, env(inv))
    assert (result.status, result.severity) == (status, severity)
    assert result.target is not None and result.target.name == "hv1"


def test_pool_permissions_prefers_the_observed_directory_mode() -> None:
    stat = FileStat(path="/var/lib/libvirt/images", exists=True, kind=FileKind.DIRECTORY, mode=0o777)
    h = Host(name="hv1", root="/", live=True, sensitive_paths=(stat,))
    inv = Inventory(host=h, pools=(pool(mode=0o711),))
    (result,) = pool_permissions(inv, env(inv, h))
    assert result.status is Status.FAIL and "0777" in result.message


def test_pool_permissions_skips_pools_without_a_directory() -> None:
    inv = Inventory(host=HOST, pools=(pool(type="logical", target_path="/dev/vg"), pool(type="rbd",
                                                                                        target_path=None)))
    assert list(pool_permissions(inv, env(inv))) == []


LUKS = DiskEncryption(format="luks")


def vm(name: str, *disks: Disk) -> Domain:
    return Domain(name=name, origin=f"{name}.xml", disks=disks)


def disk(**kw: object) -> Disk:
    kw.setdefault("type", "file")
    return Disk(locator="devices/disk[1]", device="disk", **kw)  # type: ignore[arg-type]


NFS = pool(name="nfs", type="netfs", target_path="/mnt/nfs", source_hosts=("filer",))


def test_disks_in_pool_by_name_and_by_path() -> None:
    a = vm("a", disk(type="volume", source_pool="nfs", source_volume="v"))
    b = vm("b", disk(source_file="/mnt/nfs/b.qcow2"))
    c = vm("c", disk(source_file="/mnt/nfsx/c.qcow2"))
    assert [d.name for d, _ in disks_in_pool(NFS, (a, b, c))] == ["a", "b"]


@pytest.mark.parametrize(("domains", "expected"), [
    ((vm("a", disk(source_file="/mnt/nfs/a.qcow2", encryption=LUKS)),), Status.PASS),
    ((vm("a", disk(source_file="/mnt/nfs/a.qcow2", encryption=LUKS)),
      vm("b", disk(source_file="/mnt/nfs/b.qcow2"))), Status.FAIL),
    ((vm("a", disk(source_file="/mnt/nfs/a.qcow2", encryption=DiskEncryption(format="qcow"))),), Status.FAIL),
    ((), Status.UNKNOWN),
])
def test_network_pool_encryption(domains: tuple[Domain, ...], expected: Status) -> None:
    inv = Inventory(host=HOST, pools=(NFS, pool()), domains=domains)
    assert statuses(network_pool_encryption(inv, env(inv))) == [expected]


# ---- secrets ---------------------------------------------------------------------------------------

def secret(private: bool | None) -> Secret:
    return Secret(uuid="0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f", origin="s.xml", private=private,
                  usage_type="volume", usage_id="/var/lib/libvirt/images/a.img")


@pytest.mark.parametrize(("secrets", "host", "expected"), [
    ((secret(True),), HOST, [Status.PASS]),
    ((secret(False),), HOST, [Status.FAIL]),
    ((secret(None),), HOST, [Status.FAIL]),  # libvirt's default is private='no'
    ((), HOST, []),
    (None, HOST, [Status.UNKNOWN]),
    (None, None, []),
])
def test_secrets_private(secrets: tuple[Secret, ...] | None, host: Host | None,
                         expected: list[Status]) -> None:
    inv = Inventory(host=host, secrets=secrets)
    results = list(secrets_private(inv, env(inv, host)))
    assert statuses(results) == expected
    if expected == [Status.FAIL]:
        assert results[0].subject == "secret 0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f"
