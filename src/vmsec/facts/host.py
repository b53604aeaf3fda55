"""Facts about a hypervisor host: hardware isolation features, kernel state, the libvirt daemons and
their configuration, and the installed virtualization stack.

Every field that could not be read is ``None`` (unknown); an empty tuple means "read, and none".
"""

from __future__ import annotations

from collections.abc import Mapping

from msgspec import Struct, field

from vmsec.facts.common import ConfigFile, FileStat
from vmsec.facts.runtime import RuntimeState


class CpuInfo(Struct, frozen=True, kw_only=True, gc=False):
    vendor: str | None  # "GenuineIntel", "AuthenticAMD", …
    model_name: str | None
    flags: frozenset[str]  # flags of the first processor in /proc/cpuinfo
    logical_cpus: int | None

    @property
    def hardware_virtualization(self) -> bool:
        return "vmx" in self.flags or "svm" in self.flags


class HypervisorDetection(Struct, frozen=True, kw_only=True, gc=False):
    """Whether this host is itself a virtual machine, and how that was concluded."""

    is_virtual: bool | None
    hypervisor: str | None = None  # "kvm", "xen", "vmware", "microsoft", …
    evidence: tuple[str, ...] = ()


class IommuInfo(Struct, frozen=True, kw_only=True, gc=False):
    dmar_table: bool | None  # /sys/firmware/acpi/tables/DMAR (Intel VT-d)
    ivrs_table: bool | None  # /sys/firmware/acpi/tables/IVRS (AMD-Vi)
    group_count: int | None  # entries in /sys/kernel/iommu_groups
    iommu_devices: tuple[str, ...] | None  # /sys/class/iommu/*


class SocketUnit(Struct, frozen=True, kw_only=True, gc=False):
    """A systemd socket unit of a libvirt daemon (socket activation overrides listen_* keys)."""

    name: str  # "libvirtd-tcp.socket"
    path: str | None  # the unit file that defines it (vendor or /etc override)
    enabled: bool | None  # a wants/ symlink exists in an enabled target
    listen_streams: tuple[str, ...] = ()
    socket_mode: int | None = None  # None: not set, systemd's default 0666 applies
    socket_group: str | None = None
    # Why the settings above are unknown: the unit file or a drop-in (or a drop-in directory) could
    # not be read, so any of them may have set what is missing. None: every file was read.
    problem: str | None = None


# cryptsetup names its devices "CRYPT-<type>-[uuid-]<name>" (lib/libdevmapper.c, dm_prepare_uuid);
# these are the types that encrypt.
_DM_CRYPT_PREFIXES = tuple(f"CRYPT-{t}-" for t in ("LUKS1", "LUKS2", "PLAIN", "LOOPAES", "TCRYPT", "BITLK",
                                                   "FVAULT2"))


class BlockLayer(Struct, frozen=True, kw_only=True, gc=False):
    """One block device a swap area stands on, as /sys/class/block/<name> describes it."""

    name: str  # "dm-1", "md0", "sda3"
    # A device-mapper device's dm/uuid, which names what made it: "CRYPT-LUKS2-…" (cryptsetup),
    # "LVM-…", "mpath-…"; "" when it has none. None: not a device-mapper device.
    dm_uuid: str | None = None
    # What it stores its data on: its slaves/ (device-mapper, md), or a partition's disk. Not
    # followed below dm-crypt (only ciphertext is there), so () there too.
    below: tuple[str, ...] = ()

    @property
    def dm_crypt(self) -> bool:
        """dm-crypt set up by cryptsetup ("CRYPT-<type>-…"); its integrity-only and verity devices
        (CRYPT-INTEGRITY, CRYPT-VERITY) encrypt nothing."""
        return (self.dm_uuid or "").startswith(_DM_CRYPT_PREFIXES)


class PolkitRule(Struct, frozen=True, kw_only=True, gc=False):
    """What one polkit rules file decides for libvirt's actions, found by running its JavaScript
    (vmsec.parsers.polkit_rules), never by matching its text."""

    path: str
    mentions_libvirt: bool  # its rules answer at least one libvirt action (first, in polkitd's order)
    grants_without_auth: bool  # it answers polkit.Result.YES for a libvirt action to someone
    excerpt: str = ""  # the answers, "org.libvirt.unix.manage: yes for members of group libvirt; …"
    grants: tuple[str, ...] = ()  # "org.libvirt.unix.manage to members of group libvirt", for YES answers
    error: str | None = None  # the file could not be evaluated (a syntax error, a time or memory limit)


class InstalledPackage(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    version: str
    source: str | None = None  # source package name where the package manager records it
    manager: str = "dpkg"  # dpkg | rpm | apk
    # The source package's version when it differs from the binary's (dpkg "Source: name (version)",
    # binNMUs, epochs only on the binary); None means "same as version".
    source_version: str | None = None
    arch: str | None = None
    # dpkg: the selection is "hold" (apt-mark hold): apt and unattended-upgrades never upgrade it
    held: bool = False


class X509Certificate(Struct, frozen=True, kw_only=True, gc=False):
    """What an X.509 certificate says (read with the ``cryptography`` library); times are UTC ISO 8601."""

    subject: str  # RFC 4514
    issuer: str
    not_before: str
    not_after: str
    key_type: str  # rsa | ec | ed25519 | ed448 | dsa | other
    key_bits: int | None
    signature_hash: str | None  # sha256, sha1, md5 …; None for Ed25519/Ed448 (no separate hash)
    is_ca: bool | None  # basicConstraints CA; None when the extension is absent
    self_signed: bool  # issuer == subject and the certificate's own key verifies its signature
    public_key_id: str  # SHA-256 of the SubjectPublicKeyInfo: pairs a certificate with its key
    # The CA file of the same TLS set whose key verifies this certificate's signature; None when
    # it does not verify (or there is no CA to check against: see TlsFile.group).
    verified_by: str | None = None
    # Why the signature could not be checked against that CA (an algorithm ``cryptography`` does not
    # support): then neither verified_by nor "not issued by it" is known.
    verify_error: str | None = None
    key_curve: str | None = None  # an EC key's curve as cryptography names it (secp256r1, brainpoolP256r1)


class PrivateKey(Struct, frozen=True, kw_only=True, gc=False):
    """What a private key file says, never the key itself."""

    key_type: str  # rsa | ec | ed25519 | ed448 | dsa | other
    key_bits: int | None
    public_key_id: str | None  # None when the key is encrypted (no passphrase is ever tried)
    encrypted: bool = False
    key_curve: str | None = None  # an EC key's curve, as on X509Certificate


class TlsFile(Struct, frozen=True, kw_only=True, gc=False):
    """A TLS key or certificate a daemon is configured to use."""

    role: str  # "libvirtd server key", "qemu vnc server key", …
    stat: FileStat
    not_after: str | None = None  # ISO date of certificate expiry, when parsed
    key_bits: int | None = None
    # The TLS set the file belongs to, whose key, certificate and CA go together: "libvirtd",
    # "virtproxyd", "qemu default", "qemu vnc" …; and its place in it: key | cert | ca | crl |
    # client-key | client-cert | dh | other.
    group: str = ""
    purpose: str = ""
    certificate: X509Certificate | None = None
    private_key: PrivateKey | None = None
    problem: str | None = None  # why the content could not be read or parsed (None: read, or absent)


class Host(Struct, frozen=True, kw_only=True, gc=False):
    name: str
    root: str  # "/" for the running system, else the copied root directory
    live: bool  # True when /proc and /sys describe this host (not a copied root)
    kernel_release: str | None = None
    kernel_cmdline: tuple[str, ...] | None = None
    cpu: CpuInfo | None = None
    virtualization: HypervisorDetection = field(
        default_factory=lambda: HypervisorDetection(is_virtual=None))
    kvm_device: FileStat | None = None
    # KVM_GET_API_VERSION answered by /dev/kvm (12 on every kernel since 2.6.22); None when not asked
    # (a copied root, or /dev/kvm could not be opened — then kvm_api_error says why).
    kvm_api_version: int | None = None
    kvm_api_error: str | None = None
    device_nodes: tuple[FileStat, ...] = ()  # /dev/kvm, /dev/vhost-net, /dev/vfio/vfio
    # Loaded kernel modules' parameters: {"kvm": {"nx_huge_pages": "auto"}, "kvm_intel": {...}}.
    # A module that is not loaded is absent, and so is a parameter the module does not have; a
    # parameter that exists but could not be read is None; None means /sys/module could not be read.
    module_params: Mapping[str, Mapping[str, str | None]] | None = None
    iommu: IommuInfo | None = None
    # /sys/devices/system/cpu/vulnerabilities/<name> -> text; None when the directory was unreadable.
    cpu_vulnerabilities: Mapping[str, str] | None = None
    smt_control: str | None = None  # on | off | forceoff | notsupported | notimplemented
    ksm_run: str | None = None  # 0 | 1 | 2
    lockdown: str | None = None  # the bracketed mode of /sys/kernel/security/lockdown
    secure_boot: bool | None = None
    # How the host booted: "uefi" (/sys/firmware/efi exists), "bios" (it does not), None: unknown.
    boot_firmware: str | None = None
    tpm_present: bool | None = None
    swaps: tuple[str, ...] | None = None  # device/file names in /proc/swaps
    # Each device-mapper swap of ``swaps`` ("/dev/dm-1", "/dev/mapper/…") -> the block devices it
    # stands on, itself first (see BlockLayer.below). None (an entry) when that could not be read or
    # /sys was not captured; None (the field) when /proc/swaps was not read.
    swap_layers: Mapping[str, tuple[BlockLayer, ...] | None] | None = None
    auditd_running: bool | None = None
    # Daemon configuration files, with libvirt's documented defaults applied for missing keys.
    libvirtd_conf: ConfigFile | None = None
    virtqemud_conf: ConfigFile | None = None
    virtproxyd_conf: ConfigFile | None = None
    qemu_conf: ConfigFile | None = None
    # Which daemon layout is installed: "monolithic" (libvirtd), "modular" (virtqemud …), or None.
    daemon_mode: str | None = None
    sasl_configs: Mapping[str, Mapping[str, str]] | None = None  # "libvirt" -> {"mech_list": "..."}
    sockets: tuple[FileStat, ...] = ()  # /run/libvirt/*-sock* as they exist now
    socket_units: tuple[SocketUnit, ...] | None = None
    polkit_rules: tuple[PolkitRule, ...] | None = None
    polkit_error: str | None = None  # why polkit_rules is None (unreadable, or its evaluation failed)
    # /etc/group: group -> members (its list, and the accounts whose primary group it is)
    groups: Mapping[str, tuple[str, ...]] | None = None
    group_ids: Mapping[str, int] | None = None  # /etc/group: group -> gid
    # /etc/passwd could not be read: ``groups`` lacks the accounts whose primary group each is
    group_members_partial: bool = False
    sensitive_paths: tuple[FileStat, ...] = ()  # libvirt config, secrets, hooks, dump dirs, images
    tls_files: tuple[TlsFile, ...] = ()
    # The virtualization stack as installed: qemu, libvirt, the kernel image, firmware, virtiofsd.
    packages: tuple[InstalledPackage, ...] | None = None
    qemu_version: str | None = None
    libvirt_version: str | None = None
    # What runs now (live host only): processes, listening sockets, QEMU processes by domain, the LSM
    # stack, sysctl values. None for a copied root (offline) or a host seen only through libvirt's API.
    runtime: RuntimeState | None = None

    def module_param(self, module: str, param: str) -> str | None:
        """The parameter's value; None when it is absent or unknown (see :meth:`module_param_unread`)."""
        if self.module_params is None:
            return None
        return self.module_params.get(module, {}).get(param)

    def module_param_unread(self, module: str, param: str) -> bool:
        """Whether the parameter's value is unknown: /sys/module could not be read, or the module is
        loaded and has the parameter but it could not be read. A module that is not loaded, or a
        parameter it does not have, is known to be absent (False)."""
        if self.module_params is None:
            return True
        params = self.module_params.get(module, {})
        return param in params and params[param] is None

    @property
    def daemon_confs(self) -> tuple[ConfigFile, ...]:
        """The configuration files of the daemons that accept client connections."""
        return tuple(c for c in (self.libvirtd_conf, self.virtqemud_conf, self.virtproxyd_conf)
                     if c is not None)

    def path_stat(self, path: str) -> FileStat | None:
        for st in (*self.sensitive_paths, *self.device_nodes, *self.sockets):
            if st.path == path:
                return st
        return None
