"""Facts about libvirt virtual networks, network filters, storage pools and secrets' metadata."""

from __future__ import annotations

from msgspec import Struct


class NetworkIp(Struct, frozen=True, kw_only=True, gc=False):
    address: str | None
    prefix: str | None = None
    family: str | None = None
    dhcp: bool = False


class Network(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    origin: str
    uuid: str | None = None
    forward_mode: str | None = None  # None: isolated; nat | route | open | bridge | passthrough | …
    forward_devs: tuple[str, ...] = ()
    bridge: str | None = None
    ips: tuple[NetworkIp, ...] = ()
    trust_guest_rx_filters: bool | None = None
    port_isolated: bool | None = None
    virtualport_type: str | None = None
    active: bool | None = None
    autostart: bool | None = None


class NwFilter(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    origin: str
    uuid: str | None = None
    chain: str | None = None
    references: tuple[str, ...] = ()  # names of filters it includes
    rule_count: int = 0


class StoragePool(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    origin: str
    type: str | None
    uuid: str | None = None
    target_path: str | None = None
    mode: int | None = None  # target/permissions/mode
    owner: str | None = None
    group: str | None = None
    source_hosts: tuple[str, ...] = ()
    source_protocol: str | None = None
    active: bool | None = None


class Secret(Struct, frozen=True, kw_only=True, gc=False):
    """A libvirt secret's metadata. The value is never read."""

    uuid: str | None
    origin: str
    private: bool | None = None
    ephemeral: bool | None = None
    usage_type: str | None = None  # volume | ceph | iscsi | tls | vtpm
    usage_id: str | None = None
    description: str | None = None
