"""Facts: frozen data describing what collectors observed. No I/O, no imports from other stages."""

from vmsec.facts.common import CollectionRecord, ConfigFile, ConfValue, FileKind, FileStat, Setting
from vmsec.facts.domain import (
    BackingStore,
    Chardev,
    Controller,
    CpuConfig,
    CpuFeature,
    Disk,
    DiskEncryption,
    Domain,
    Filesystem,
    FirmwareConfig,
    Graphics,
    Hostdev,
    Interface,
    LaunchSecurity,
    Listen,
    MemoryConfig,
    PasswordState,
    QemuPassthrough,
    Redirdev,
    RedirFilterRule,
    Rng,
    SecLabel,
    Shmem,
    SimpleDevice,
    Tpm,
)
from vmsec.facts.host import (
    CpuInfo,
    Host,
    HypervisorDetection,
    InstalledPackage,
    IommuInfo,
    PolkitRule,
    SocketUnit,
    TlsFile,
)
from vmsec.facts.inventory import Inventory
from vmsec.facts.network import Network, NetworkIp, NwFilter, Secret, StoragePool

__all__ = [
    "BackingStore", "Chardev", "CollectionRecord", "ConfValue", "ConfigFile", "Controller", "CpuConfig",
    "CpuFeature", "CpuInfo", "Disk", "DiskEncryption", "Domain", "FileKind", "FileStat", "Filesystem",
    "FirmwareConfig", "Graphics", "Host", "Hostdev", "HypervisorDetection", "InstalledPackage",
    "Interface", "Inventory", "IommuInfo", "LaunchSecurity", "Listen", "MemoryConfig", "Network",
    "NetworkIp", "NwFilter", "PasswordState", "PolkitRule", "QemuPassthrough", "RedirFilterRule",
    "Redirdev", "Rng", "SecLabel", "Secret", "Setting", "Shmem", "SimpleDevice", "SocketUnit",
    "StoragePool", "TlsFile", "Tpm",
]
