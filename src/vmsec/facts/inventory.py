"""The inventory: everything one scan collected, handed to the engine as a whole."""

from __future__ import annotations

from msgspec import Struct

from vmsec.facts.common import CollectionRecord
from vmsec.facts.domain import Domain
from vmsec.facts.endpoint import Endpoint, ExpectedListener, ProbeRun
from vmsec.facts.guest import Guest
from vmsec.facts.host import Host
from vmsec.facts.network import Network, NwFilter, Secret, StoragePool


class Inventory(Struct, frozen=True, kw_only=True, gc=False):
    host: Host | None = None  # None when only offline XML was given, without a host root
    domains: tuple[Domain, ...] = ()
    networks: tuple[Network, ...] = ()
    nwfilters: tuple[NwFilter, ...] | None = None  # None: the defined filters are unknown
    pools: tuple[StoragePool, ...] = ()
    secrets: tuple[Secret, ...] | None = None  # None: secrets could not be listed
    guests: tuple[Guest, ...] = ()  # guest OSes read offline (images, root directories)
    host_os: Guest | None = None  # the hypervisor host's own OS, audited with the same OS checks
    # Listeners seen by a probe, the listeners the configuration predicts (None: no configuration
    # was given), and how the probe ran.
    endpoints: tuple[Endpoint, ...] = ()
    expected: tuple[ExpectedListener, ...] | None = None
    probe: ProbeRun | None = None
    records: tuple[CollectionRecord, ...] = ()
    source: str = ""  # what was scanned: "host /", "libvirt qemu:///system", "xml …"

    @property
    def errors(self) -> tuple[CollectionRecord, ...]:
        return tuple(r for r in self.records if not r.ok)

    def network(self, name: str) -> Network | None:
        for net in self.networks:
            if net.name == name:
                return net
        return None
