"""Facts about one libvirt domain (a VM), as its domain XML states them.

Each device keeps ``locator``: an XPath-like pointer into the XML (``devices/graphics[1]``), so a
finding can show exactly which element it is about. Attributes the XML omits are ``None``;
checks decide what libvirt's default for an omitted attribute means.
"""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct


class PasswordState(StrEnum):
    SET = "set"
    EMPTY = "empty"  # passwd="" — libvirt/QEMU treat an empty password as none
    ABSENT = "absent"  # no passwd attribute, and the XML was read so that it would show one
    HIDDEN = "hidden"  # no passwd attribute, but the XML was read without the secure flag


class Listen(Struct, frozen=True, kw_only=True, gc=False):
    type: str  # address | network | socket | none
    address: str | None = None
    network: str | None = None
    socket: str | None = None


class Graphics(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    type: str  # vnc | spice | rdp | dbus | sdl | desktop | egl-headless
    listens: tuple[Listen, ...] = ()
    listen_attr: str | None = None  # legacy @listen; for a D-Bus display, its bus @address
    port: int | None = None
    autoport: bool | None = None
    tls_port: int | None = None
    websocket: int | None = None
    password: PasswordState = PasswordState.ABSENT
    passwd_valid_to: str | None = None
    default_mode: str | None = None  # spice: any | secure | insecure
    channel_modes: tuple[tuple[str, str], ...] = ()  # spice <channel name= mode=>
    filetransfer: bool | None = None
    copypaste: bool | None = None
    auth: str | None = None  # spice/vnc @auth (sasl) where given
    p2p: bool | None = None  # dbus


class BackingStore(Struct, frozen=True, kw_only=True, gc=False):
    type: str | None
    format: str | None
    source: str | None
    terminated: bool = False  # an empty <backingStore/>: libvirt told there is no backing file


class DiskEncryption(Struct, frozen=True, kw_only=True, gc=False):
    format: str | None  # luks | luks2 | luks-any | qcow | default
    engine: str | None = None
    secret_uuid: str | None = None
    secret_usage: str | None = None
    placement: str = "disk"  # "disk" (<disk><encryption>) or "source" (<source><encryption>)


class Disk(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    type: str | None  # file | block | network | volume | dir | nvme | vhostuser
    device: str  # disk | cdrom | floppy | lun
    source_file: str | None = None
    source_dev: str | None = None
    source_dir: str | None = None
    source_protocol: str | None = None  # nbd | iscsi | rbd | http | https | ftp | gluster | …
    source_name: str | None = None
    source_pool: str | None = None
    source_volume: str | None = None
    source_hosts: tuple[str, ...] = ()  # "host:port" or socket paths
    source_tls: bool | None = None  # <source tls='yes'>
    auth: bool = False  # <auth> present
    driver_name: str | None = None
    driver_type: str | None = None  # raw | qcow2 | …
    target_dev: str | None = None
    target_bus: str | None = None
    readonly: bool = False
    shareable: bool = False
    transient: bool = False
    encryption: DiskEncryption | None = None
    rawio: bool | None = None
    sgio: str | None = None  # filtered | unfiltered
    backing_chain: tuple[BackingStore, ...] | None = None  # None: the XML says nothing
    relabel: bool | None = None  # <source><seclabel relabel=>

    @property
    def source(self) -> str | None:
        """A human-readable source for messages and cross-VM comparison."""
        if self.source_file:
            return self.source_file
        if self.source_dev:
            return self.source_dev
        if self.source_dir:
            return self.source_dir
        if self.source_protocol:
            return f"{self.source_protocol}:{self.source_name or ''}"
        if self.source_pool:
            return f"{self.source_pool}/{self.source_volume or ''}"
        return None


class Controller(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    type: str
    model: str | None = None
    index: str | None = None


class Interface(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    type: str  # network | bridge | direct | hostdev | user | ethernet | vhostuser | …
    mac: str | None = None
    model: str | None = None
    source_network: str | None = None
    source_bridge: str | None = None
    source_dev: str | None = None
    source_mode: str | None = None  # direct: vepa | bridge | private | passthrough
    filterref: str | None = None
    filter_params: tuple[tuple[str, str], ...] = ()
    trust_guest_rx_filters: bool | None = None
    port_isolated: bool | None = None
    backend_type: str | None = None  # user: passt | default
    script: str | None = None
    downscript: str | None = None
    virtualport_type: str | None = None
    hostdev_address: str | None = None  # interface type='hostdev' PCI address


class Hostdev(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    mode: str  # subsystem | capabilities
    type: str  # pci | usb | scsi | scsi_host | mdev | storage | misc | net
    managed: bool | None = None
    driver: str | None = None  # vfio | kvm | xen
    address: str | None = None  # "0000:06:12.5" / "bus 1 device 3" / vendor:product
    rom_file: str | None = None
    rom_bar: bool | None = None
    rom_enabled: bool | None = None
    readonly: bool = False
    sgio: str | None = None
    rawio: bool | None = None


class Redirdev(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    bus: str
    type: str  # spicevmc | tcp
    host: str | None = None
    port: str | None = None


class RedirFilterRule(Struct, frozen=True, kw_only=True, gc=False):
    allow: bool
    usb_class: str | None = None
    vendor: str | None = None
    product: str | None = None
    version: str | None = None


class Filesystem(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    type: str  # mount | template | file | block | ram | bind
    accessmode: str | None = None  # passthrough (default) | mapped | squash
    driver_type: str | None = None  # path | handle | loop | nbd | ploop | virtiofs
    source_dir: str | None = None
    source_name: str | None = None
    target_dir: str | None = None
    readonly: bool = False
    binary_path: str | None = None  # virtiofsd binary
    idmap: bool = False
    # <source socket=…>: virtiofs served by an externally started virtiofsd; the shared directory
    # is then not in the XML.
    source_socket: str | None = None


class Chardev(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    element: str  # serial | console | channel | parallel
    type: str  # pty | file | unix | tcp | udp | dev | pipe | spicevmc | spiceport | null | …
    source_mode: str | None = None  # bind | connect
    source_host: str | None = None
    source_service: str | None = None
    source_path: str | None = None
    tls: bool | None = None  # <source tls='yes|no'>
    protocol: str | None = None  # raw | telnet | telnets | tls
    target_type: str | None = None  # virtio | guestfwd | xen | serial …
    target_name: str | None = None  # org.qemu.guest_agent.0, …


class Tpm(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    model: str | None
    backend_type: str  # passthrough | emulator | external
    version: str | None = None
    encryption_secret: str | None = None
    device_path: str | None = None


class Rng(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    model: str | None
    backend_model: str | None  # random | egd | builtin
    backend_type: str | None = None  # for egd: tcp | udp | unix | …
    source: str | None = None


class Shmem(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    name: str
    model: str | None = None  # ivshmem | ivshmem-plain | ivshmem-doorbell
    server_path: str | None = None
    size: str | None = None


class SimpleDevice(Struct, frozen=True, kw_only=True, gc=False):
    """A device where only presence, model and bus matter for security (sound, video, input, …)."""

    locator: str
    element: str  # video | sound | input | hub | smartcard | watchdog | memballoon | vsock | panic | iommu
    model: str | None = None
    type: str | None = None
    bus: str | None = None
    action: str | None = None  # watchdog @action
    extra: tuple[tuple[str, str], ...] = ()  # autodeflate, freePageReporting, …


class SecLabel(Struct, frozen=True, kw_only=True, gc=False):
    locator: str
    type: str | None  # dynamic | static | none
    model: str | None  # selinux | apparmor | dac | None (default driver)
    relabel: bool | None = None
    label: str | None = None
    baselabel: str | None = None
    imagelabel: str | None = None
    labelskip: bool | None = None


class CpuFeature(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    policy: str | None  # force | require | optional | disable | forbid


class CpuConfig(Struct, frozen=True, kw_only=True, gc=False):
    mode: str | None  # custom | host-model | host-passthrough | maximum
    model: str | None = None
    features: tuple[CpuFeature, ...] = ()


class MemoryConfig(Struct, frozen=True, kw_only=True, gc=False):
    dump_core: bool | None = None  # <memory dumpCore='on|off'>
    nosharepages: bool = False
    locked: bool = False
    hugepages: bool = False
    source_type: str | None = None  # file | anonymous | memfd
    access_mode: str | None = None  # shared | private
    hard_limit: bool = False


class FirmwareConfig(Struct, frozen=True, kw_only=True, gc=False):
    firmware: str | None = None  # os/@firmware: efi | bios
    loader: str | None = None
    loader_type: str | None = None  # rom | pflash
    loader_secure: bool | None = None
    nvram: str | None = None
    nvram_type: str | None = None  # os/nvram/@type: file | block | network (libvirt ≥ 8.5); None: a path
    secure_boot: bool | None = None  # os/firmware/feature[@name='secure-boot']/@enabled
    enrolled_keys: bool | None = None
    kernel: str | None = None
    initrd: str | None = None
    dtb: str | None = None
    smm: bool | None = None  # features/smm/@state


class LaunchSecurity(Struct, frozen=True, kw_only=True, gc=False):
    type: str  # sev | sev-snp | tdx | s390-pv
    policy: int | None = None
    policy_text: str | None = None


class QemuPassthrough(Struct, frozen=True, kw_only=True, gc=False):
    """The ``qemu:`` namespace: options libvirt passes to QEMU without understanding them."""

    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()  # qemu:capabilities add/del names
    override: bool = False  # qemu:override present
    deprecation: str | None = None


class Domain(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    origin: str  # file path, or "URI#domain"
    uuid: str | None = None
    virt_type: str | None = None  # kvm | qemu | xen | lxc | test | …
    # Live facts where a libvirt connection provides them; None for offline XML.
    state: str | None = None  # running | paused | shutoff | …
    persistent: bool | None = None
    autostart: bool | None = None
    # True when passwords would be visible if set (secure flag or an on-disk config file).
    secure_xml: bool = True
    arch: str | None = None
    machine: str | None = None
    os_type: str | None = None
    emulator: str | None = None
    vcpus: int | None = None
    on_crash: str | None = None
    libosinfo_id: str | None = None
    firmware: FirmwareConfig = FirmwareConfig()
    cpu: CpuConfig | None = None
    memory: MemoryConfig = MemoryConfig()
    seclabels: tuple[SecLabel, ...] = ()
    launch_security: LaunchSecurity | None = None
    qemu: QemuPassthrough | None = None
    graphics: tuple[Graphics, ...] = ()
    disks: tuple[Disk, ...] = ()
    controllers: tuple[Controller, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    hostdevs: tuple[Hostdev, ...] = ()
    redirdevs: tuple[Redirdev, ...] = ()
    redirfilter: tuple[RedirFilterRule, ...] | None = None  # None: no <redirfilter> element
    filesystems: tuple[Filesystem, ...] = ()
    chardevs: tuple[Chardev, ...] = ()
    tpms: tuple[Tpm, ...] = ()
    rngs: tuple[Rng, ...] = ()
    shmems: tuple[Shmem, ...] = ()
    devices: tuple[SimpleDevice, ...] = ()  # video, sound, input, hub, smartcard, watchdog, memballoon …
    has_cputune_limits: bool = False
    has_blkiotune: bool = False
    has_disk_iotune: bool = False
    # libvirt's own "tainted" reasons from the domain log, when a collector could read them.
    taints: tuple[str, ...] | None = None

    def devices_of(self, element: str) -> tuple[SimpleDevice, ...]:
        return tuple(d for d in self.devices if d.element == element)

    @property
    def confidential(self) -> bool:
        return self.launch_security is not None
