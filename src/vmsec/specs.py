"""What to scan: one typed spec per kind of target.

A spec says *what* to read, never how; each kind has one collector (``vmsec.collectors.COLLECTORS``).
The CLI, the web service, the fleet workers and the monitor all build specs and hand them to
:func:`vmsec.pipeline.scan`. :func:`spec_from_mapping` reads one from a fleet inventory entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from msgspec import Struct, structs

from vmsec.errors import ConfigError

GuestMode = Literal["disk", "agent", "auto"]

__all__ = [
    "SPEC_TYPES", "GuestMode", "HostSpec", "ImageSpec", "LibvirtSpec", "ProbeSpec", "RootfsSpec", "SshSpec",
    "TargetSpec", "XmlSpec", "spec_from_mapping",
]


class TargetSpec(Struct, frozen=True, kw_only=True):
    """Base of every target spec. ``kind`` names its collector."""

    kind: ClassVar[str] = ""
    # Targets of one group (the hypervisor a guest runs on) are collected at most
    # ScanOptions.group_limit at a time, so a scan does not overload one host.
    group: str | None = None

    def describe(self) -> str:
        """A short human label: "host /", "libvirt qemu:///system", "xml a.xml b/"."""
        return self.kind


class HostSpec(TargetSpec, frozen=True, kw_only=True):
    """A hypervisor host by its root: ``/`` is the running system (live), any other directory a
    copied root read offline."""

    kind: ClassVar[str] = "host"
    root: str = "/"

    def describe(self) -> str:
        return f"host {self.root}"


class LibvirtSpec(TargetSpec, frozen=True, kw_only=True):
    """A libvirt connection: every domain, network, filter, pool and secret it knows.

    ``include_host`` audits the local host too (None: yes for local ``qemu:///`` URIs); ``guests``
    audits each domain's guest OS (from its disks, through the guest agent, or the agent where it
    answers and the disks elsewhere).
    """

    kind: ClassVar[str] = "libvirt"
    uri: str = "qemu:///system"
    include_host: bool | None = None
    guests: GuestMode | None = None
    key_file: str | None = None  # passphrase for encrypted guest disks
    allow_guest_exec: bool = False  # the guest agent may run read-only commands (operator opt-in)

    def describe(self) -> str:
        return f"libvirt {self.uri}"


class XmlSpec(TargetSpec, frozen=True, kw_only=True):
    """Offline libvirt XML files or directories, optionally with a host root for context."""

    kind: ClassVar[str] = "xml"
    paths: tuple[str, ...]
    host_root: str | None = None
    secure: bool = True  # the files would show passwords (on-disk configuration does)

    def describe(self) -> str:
        return "xml " + " ".join(self.paths)


class RootfsSpec(TargetSpec, frozen=True, kw_only=True):
    """Guest root filesystem directories, offline."""

    kind: ClassVar[str] = "rootfs"
    paths: tuple[str, ...]

    def describe(self) -> str:
        return "rootfs " + " ".join(self.paths)


class ImageSpec(TargetSpec, frozen=True, kw_only=True):
    """VM disk images, offline and read-only."""

    kind: ClassVar[str] = "image"
    paths: tuple[str, ...]
    key_file: str | None = None

    def describe(self) -> str:
        return "image " + " ".join(self.paths)


class SshSpec(TargetSpec, frozen=True, kw_only=True):
    """A running guest (or host) audited over SSH, agentless and read-only. ``group`` names the
    hypervisor it runs on, when known. Host keys are verified against ``known_hosts`` (a mismatch is
    refused; an unknown key is accepted only with ``accept_new``)."""

    kind: ClassVar[str] = "ssh"
    host: str
    user: str | None = None
    port: int = 22
    identity: str | None = None  # private key file; None: the SSH agent / default keys
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    accept_new: bool = False
    sudo: bool = False  # run the documented read-only allow-list through sudo -n

    def describe(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port != 22 else ""
        return f"ssh {user}{self.host}{port}"


class ProbeSpec(TargetSpec, frozen=True, kw_only=True):
    """Listeners looked at from the network (handshakes only, never a login). ``targets`` are hosts,
    addresses or CIDRs; ``ports`` the ports to try (None: those the configuration predicts, or the
    default console/management set); non-loopback addresses only within ``scope``."""

    kind: ClassVar[str] = "probe"
    targets: tuple[str, ...]
    ports: tuple[int, ...] | None = None
    scope: tuple[str, ...] = ()
    from_scan: str | None = None  # a stored scan whose configuration predicts the listeners
    from_libvirt: str | None = None  # a libvirt URI whose configuration predicts the listeners
    timeout: float = 3.0  # per connection
    concurrency: int = 500  # sockets open at once
    rate: float | None = 1000.0  # new connections per second (None: no limit)
    store_url: str | None = None  # the findings store ``from_scan`` is read from (None: the default)
    contact_log: str | None = None  # file that gets one line per address:port contacted (None: none)
    tls_scan: bool = True  # enumerate TLS versions and cipher suites with sslyze (the Mozilla check)
    hints: tuple[tuple[int, str], ...] = ()  # (port, protocol) the operator says a port speaks ("5901/vnc")

    def describe(self) -> str:
        return "probe " + " ".join(self.targets)


# Every spec type by kind: a new transport (ssh, probe …) adds its spec class above, one entry here
# and one collector in vmsec.collectors.COLLECTORS.
SPEC_TYPES: dict[str, type[TargetSpec]] = {
    cls.kind: cls for cls in (HostSpec, LibvirtSpec, XmlSpec, RootfsSpec, ImageSpec, SshSpec, ProbeSpec)
}


def spec_from_mapping(data: Mapping[str, Any], where: str = "target") -> TargetSpec:
    """A spec from ``{kind: xml, paths: [...], ...}`` (a fleet inventory entry). Unknown kinds or keys
    are a :class:`ConfigError` naming ``where``; ``path`` is accepted for ``paths``."""
    kind = data.get("kind")
    cls = SPEC_TYPES.get(str(kind))
    if cls is None:
        raise ConfigError(f"{where}: unknown kind {kind!r} (one of {', '.join(sorted(SPEC_TYPES))})")
    allowed = {f.name: f for f in structs.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "kind":
            continue
        name = key.replace("-", "_")
        if name == "path" and "paths" in allowed:
            name, value = "paths", [value]
        if name not in allowed:
            raise ConfigError(f"{where}: {kind} targets have no option {key!r} "
                              f"(known: {', '.join(sorted(allowed))})")
        if name == "paths":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: {key} must be a path or a list of paths")
            value = tuple(value)
        values[name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
