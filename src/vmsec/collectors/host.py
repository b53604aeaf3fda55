"""The ``host`` collector: a hypervisor host's facts, read from its root directory.

For the running system the root is ``/`` and ``live`` is true: /proc and /sys describe this kernel.
For a copied root, files under ``<root>/proc`` and ``<root>/sys`` are used when they were captured;
a fact whose directory was not captured is ``None`` (unknown), never "absent".

Every file is read through a :class:`~vmsec.collectors.reader.Reader`, which keeps reads inside the
root, opens only regular files (a FIFO planted as /proc/cpuinfo cannot hang the scan) and caps sizes.
A file that is missing is a fact (absent); a file that exists but cannot be read or parsed makes its
fact ``None`` and adds a failed :class:`CollectionRecord` naming the file and the reason.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from msgspec import Struct

from vmsec.collectors.guest import collect_guest
from vmsec.collectors.reader import Reader, RootReader
from vmsec.errors import ErrorKind, ParseError, ReadError, SourceUnavailable
from vmsec.facts import (
    Account,
    CollectionRecord,
    ConfigFile,
    ConfValue,
    CpuInfo,
    Domain,
    FileKind,
    FileStat,
    Host,
    HypervisorDetection,
    InstalledPackage,
    Inventory,
    IommuInfo,
    Network,
    NwFilter,
    PolkitRule,
    RuntimeState,
    Secret,
    SocketUnit,
    StoragePool,
    SysctlValue,
    TlsFile,
    evolve,
)
from vmsec.facts.host import BlockLayer
from vmsec.parsers import x509
from vmsec.parsers.accounts import parse_group, parse_passwd
from vmsec.parsers.dpkg_status import parse_dpkg_status
from vmsec.parsers.kernel_cmdline import split_cmdline
from vmsec.parsers.libvirt_conf import MAX_CONF_BYTES, ConfParseError, parse_conf
from vmsec.parsers.libvirt_defaults import DAEMON_CONF_DEFAULTS, effective_defaults, qemu_conf_defaults
from vmsec.parsers.libvirt_loaders import keys_read, refusal
from vmsec.parsers.libvirt_xml import parse_libvirt_document
from vmsec.parsers.polkit_rules import DEFAULT_YES, evaluate_rules
from vmsec.parsers.safexml import DEFAULT_MAX_BYTES as MAX_XML_BYTES
from vmsec.parsers.systemd_unit import read_unit, socket_settings

if TYPE_CHECKING:
    from vmsec.collectors import CollectContext
    from vmsec.specs import HostSpec

SMALL = 64 * 1024  # one sysfs/procfs value, a hostname, a comm
MAX_TEXT = 4 * 1024 * 1024
MAX_DPKG_STATUS = 64 * 1024 * 1024
MAX_PROCESSES = 100_000
MAX_MODULE_PARAMS = 500
MAX_VULNERABILITY_FILES = 200
MAX_POLKIT_FILES = 1_000
MAX_SENSITIVE_PATHS = 5_000
MAX_OBJECTS = 10_000  # libvirt XML files per kind

KVM_MODULES = ("kvm", "kvm_intel", "kvm_amd", "kvm_pvm", "vfio", "vfio_iommu_type1")
DEVICE_NODES = ("/dev/kvm", "/dev/vhost-net", "/dev/vfio/vfio")
SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
# systemd's system unit search path, most important first (systemd-analyze unit-paths, systemd 252).
UNIT_DIRS = ("/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient",
             "/run/systemd/generator.early", "/etc/systemd/system", "/etc/systemd/system.attached",
             "/run/systemd/system", "/run/systemd/system.attached", "/run/systemd/generator",
             "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
             "/run/systemd/generator.late")
_HIDDEN_OR_BACKUP = (".", "~")  # conf_files_list() skips hidden files; backups end in "~" or as below
_BACKUP_SUFFIXES = (".rpmnew", ".rpmsave", ".rpmorig", ".dpkg-old", ".dpkg-new", ".dpkg-tmp", ".dpkg-dist",
                    ".dpkg-bak", ".dpkg-backup", ".dpkg-remove", ".ucf-new", ".ucf-old", ".ucf-dist", ".swp",
                    ".bak", ".old", ".new")
SOCKET_UNIT_PATTERNS = ("libvirtd*.socket", "virtqemud*.socket", "virtproxyd*.socket")
DAEMON_SOCKET_PATTERNS = ("libvirt-sock", "libvirt-sock-ro", "libvirt-admin-sock", "virtqemud-sock*",
                          "virtqemud-admin-sock", "virtproxyd-sock*", "virtproxyd-admin-sock")
POLKIT_DIRS = ("/etc/polkit-1/rules.d", "/usr/share/polkit-1/rules.d")
SBIN_DIRS = ("/usr/sbin", "/usr/bin", "/sbin")
QEMU_TLS_SERVICES = ("vnc", "spice", "migrate", "chardev", "nbd", "backup")
STACK_PREFIXES = ("qemu-system", "libvirt-daemon", "linux-image-", "xen-", "swtpm")
STACK_NAMES = frozenset({"qemu-kvm", "qemu-utils", "libvirt0", "ovmf", "seabios", "virtiofsd"})

# DMI vendor/product text → hypervisor name. Microsoft needs its "Virtual Machine" product name,
# since Surface hardware has the same vendor string.
_DMI_HYPERVISORS = (
    ("QEMU", "qemu"), ("KVM", "kvm"), ("VMware", "vmware"), ("VirtualBox", "virtualbox"),
    ("innotek", "virtualbox"), ("Xen", "xen"), ("Amazon EC2", "amazon"), ("Google Compute Engine", "google"),
    ("Parallels", "parallels"), ("OpenStack", "openstack"), ("Bochs", "bochs"), ("BHYVE", "bhyve"),
    ("Microsoft Corporation Virtual Machine", "microsoft"),
)
_CLOCKSOURCE_HYPERVISORS = (("kvm-clock", "kvm"), ("hyperv_clocksource", "microsoft"), ("xen", "xen"))
_X86_VENDORS = frozenset({"GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls", "Shanghai"})


# --- reading helpers ------------------------------------------------------------------------------


class _Absent:
    """A file that does not exist: a fact, not an error."""


ABSENT = _Absent()


class _Collection:
    def __init__(self, reader: Reader, live: bool) -> None:
        self.reader = reader
        self.live = live
        self.records: list[CollectionRecord] = []

    def fail(self, source: str, what: str, reason: str, kind: ErrorKind | None = None) -> None:
        self.records.append(CollectionRecord(source=source, what=what, ok=False, reason=reason, kind=kind))

    def read(self, path: str, what: str, limit: int = SMALL) -> str | _Absent | None:
        """The file's text (undecodable bytes as U+FFFD, as ``Reader.read_text``), ABSENT when it does
        not exist, or None (recorded) when it cannot be read."""
        data = self.read_bytes(path, what, limit)
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else data

    def read_bytes(self, path: str, what: str, limit: int = SMALL) -> bytes | _Absent | None:
        """The file's bytes, ABSENT when it does not exist, or None (recorded) when it cannot be read."""
        try:
            return self.reader.read_bytes(path, limit)
        except ReadError as exc:
            if exc.absent:
                return ABSENT
            self.fail(path, what, exc.reason, exc.kind)
            return None

    def value(self, path: str, what: str) -> str | None:
        """A one-line sysfs/procfs value, stripped; None when absent or unreadable."""
        text = self.read(path, what)
        return text.strip() if isinstance(text, str) else None

    def exists(self, path: str, what: str, follow: bool = True) -> bool | None:
        st = self.reader.stat(path, follow=follow)
        if st.exists is None:
            self.fail(path, what, st.error or "could not be examined")
        return st.exists

    def listdir(self, path: str, what: str, limit: int = 10_000) -> list[str] | _Absent | None:
        try:
            return self.reader.listdir(path, limit)
        except ReadError as exc:
            if exc.absent:
                return ABSENT
            self.fail(path, what, exc.reason, exc.kind)
            return None

    def absence_known(self, anchor: str) -> bool:
        """Whether a missing file under ``anchor`` means "absent": always on the live host; on a copied
        root only when ``anchor`` (a /proc or /sys directory) was captured."""
        return self.live or self.reader.stat(anchor).exists is True


# --- configuration files --------------------------------------------------------------------------


def load_config_file(reader: Reader, path: str, defaults: Mapping[str, ConfValue]) -> ConfigFile:
    """Read and parse one libvirt configuration file.

    Missing → ``present=False`` and the defaults apply, exactly as libvirt does. Existing but
    unreadable or unparsable → ``error`` set, and :meth:`ConfigFile.setting` answers ``None``.
    """
    try:
        text = reader.read_text(path, MAX_CONF_BYTES)
    except ReadError as exc:
        st = reader.stat(path)
        if st.exists is False:
            return ConfigFile(path=path, present=False, defaults=effective_defaults(defaults, {}))
        return ConfigFile(path=path, present=st.exists, defaults=defaults,
                          error=exc.reason if st.exists else (st.error or exc.reason))
    try:
        values, lines = parse_conf(text, path, reads=keys_read(posixpath.basename(path)))
    except ConfParseError as exc:
        return ConfigFile(path=path, present=True, defaults=defaults, error=f"line {exc.line}: {exc.reason}")
    refused = refusal(values, lines, posixpath.basename(path))
    if refused is not None:  # the daemon does not start with it: its settings decide nothing
        return ConfigFile(path=path, present=True, defaults=defaults, error=refused)
    return ConfigFile(path=path, present=True, values=values, lines=lines,
                      defaults=effective_defaults(defaults, values))


# --- kernel and hardware --------------------------------------------------------------------------


def _parse_cpuinfo(text: str) -> CpuInfo:
    first: dict[str, str] = {}
    count = 0
    in_first = True
    for line in text.splitlines():
        if not line.strip():
            if first:
                in_first = False
            continue
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            count += 1
        if in_first:
            first.setdefault(key, value.strip())
    flags = first.get("flags") or first.get("Features") or ""
    return CpuInfo(vendor=first.get("vendor_id") or first.get("CPU implementer"),
                   model_name=first.get("model name") or first.get("Model name"),
                   flags=frozenset(flags.split()), logical_cpus=count or None)


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p)


def _kernel_from_packages(packages: Iterable[InstalledPackage]) -> str | None:
    releases = [p.name.removeprefix("linux-image-") for p in packages
                if p.name.startswith("linux-image-") and p.name[12:13].isdigit()]
    releases = [r.removesuffix("-unsigned") for r in releases]
    return max(releases, key=_natural_key) if releases else None


def _collect_cpu(c: _Collection) -> CpuInfo | None:
    text = c.read("/proc/cpuinfo", "cpu information", MAX_TEXT)
    if not isinstance(text, str):
        return None
    return _parse_cpuinfo(text)


def _detect_hypervisor(c: _Collection, cpu: CpuInfo | None) -> HypervisorDetection:
    evidence: list[str] = []
    names: list[str] = []
    if cpu is not None and "hypervisor" in cpu.flags:
        evidence.append("/proc/cpuinfo: the 'hypervisor' CPU flag is set")
    hv_type = c.value("/sys/hypervisor/type", "hypervisor type")
    if hv_type:
        evidence.append(f"/sys/hypervisor/type: {hv_type}")
        names.append(hv_type.lower())
    vendor = c.value("/sys/class/dmi/id/sys_vendor", "DMI system vendor")
    product = c.value("/sys/class/dmi/id/product_name", "DMI product name")
    dmi = f"{vendor or ''} {product or ''}".strip()
    for needle, name in _DMI_HYPERVISORS:
        if dmi and needle in dmi:
            evidence.append(f"/sys/class/dmi/id: {dmi}")
            names.append(name)
            break
    clocks = c.value("/sys/devices/system/clocksource/clocksource0/available_clocksource", "clock sources")
    for needle, name in _CLOCKSOURCE_HYPERVISORS:
        if clocks and needle in clocks.split():
            evidence.append(f"clocksource: {needle} is available")
            names.append(name)
            break
    if evidence:
        return HypervisorDetection(is_virtual=True, hypervisor=names[0] if names else None,
                                   evidence=tuple(evidence))
    # Every mainstream x86 hypervisor sets the CPUID hypervisor bit, so its absence is conclusive there.
    if cpu is not None and cpu.vendor in _X86_VENDORS:
        return HypervisorDetection(is_virtual=False, evidence=("/proc/cpuinfo: no 'hypervisor' CPU flag",))
    if vendor:
        return HypervisorDetection(is_virtual=False, evidence=(f"/sys/class/dmi/id: {dmi}",))
    return HypervisorDetection(is_virtual=None)


def _collect_module_params(c: _Collection) -> dict[str, dict[str, str | None]] | None:
    if not c.live and c.reader.stat("/sys/module").exists is not True:
        return None
    result: dict[str, dict[str, str | None]] = {}
    for module in KVM_MODULES:
        base = f"/sys/module/{module}"
        names = c.listdir(f"{base}/parameters", f"{module} module parameters", MAX_MODULE_PARAMS)
        if names is None:
            return None
        if isinstance(names, _Absent):
            if c.reader.stat(base).exists:
                result[module] = {}  # loaded, no parameters
            continue
        params: dict[str, str | None] = {}
        for name in names:
            path = f"{base}/parameters/{name}"
            try:
                params[name] = c.reader.read_text(path, SMALL).strip()
            except ReadError as exc:
                st = c.reader.stat(path)
                if st.mode is not None and not st.mode & 0o444:
                    continue  # a write-only parameter has no value to read
                c.fail(path, "module parameter", exc.reason)
                params[name] = None  # unknown, not absent: the checks must not read it as unset
        result[module] = params
    return result


MAX_IOMMU_GROUPS_NAMED = 4096  # groups whose name is read (a host has tens to hundreds)


def _collect_iommu(c: _Collection) -> IommuInfo | None:
    dmar = ivrs = None
    tables = "/sys/firmware/acpi/tables"
    st = c.reader.stat(tables)
    if st.exists:
        dmar = c.exists(f"{tables}/DMAR", "ACPI DMAR table")
        ivrs = c.exists(f"{tables}/IVRS", "ACPI IVRS table")
    elif st.exists is False and c.absence_known("/sys/firmware"):
        dmar = ivrs = False  # no ACPI tables at all: no VT-d / AMD-Vi table either
    groups = c.listdir("/sys/kernel/iommu_groups", "IOMMU groups")
    group_count = (_real_iommu_groups(c, groups) if isinstance(groups, list)
                   else 0 if isinstance(groups, _Absent) and c.live else None)
    units = c.listdir("/sys/class/iommu", "IOMMU units")
    devices = (tuple(units) if isinstance(units, list)
               else () if isinstance(units, _Absent) and c.live else None)
    if dmar is None and ivrs is None and group_count is None and devices is None:
        return None
    return IommuInfo(dmar_table=dmar, ivrs_table=ivrs, group_count=group_count, iommu_devices=devices)


def _real_iommu_groups(c: _Collection, groups: list[str]) -> int | None:
    """The groups an IOMMU made: VFIO's no-IOMMU mode adds groups named "vfio-noiommu", which only
    say that no IOMMU protects the device. None when a group's name could not be read."""
    count = 0
    for group in groups[:MAX_IOMMU_GROUPS_NAMED]:
        name = c.read(f"/sys/kernel/iommu_groups/{group}/name", "IOMMU group name")
        if name is None:
            return None
        count += not (isinstance(name, str) and name.strip() == "vfio-noiommu")
    return count + max(0, len(groups) - MAX_IOMMU_GROUPS_NAMED)


def _collect_vulnerabilities(c: _Collection) -> dict[str, str] | None:
    base = "/sys/devices/system/cpu/vulnerabilities"
    names = c.listdir(base, "CPU vulnerabilities", MAX_VULNERABILITY_FILES)
    if not isinstance(names, list):
        return None
    result: dict[str, str] = {}
    for name in names:
        text = c.read(f"{base}/{name}", "CPU vulnerability")
        if text is None:
            return None
        if isinstance(text, str):
            result[name] = text.strip()
    return result


def _bracketed(text: str | None) -> str | None:
    if text is None:
        return None
    match = re.search(r"\[([^\]]+)\]", text)
    return match.group(1) if match else None


def _collect_lockdown(c: _Collection) -> str | None:
    text = c.read("/sys/kernel/security/lockdown", "kernel lockdown")
    if isinstance(text, str):
        return _bracketed(text)
    if text is None:
        return None
    # No lockdown file: with securityfs mounted, the kernel has no lockdown LSM (mode "none").
    entries = c.listdir("/sys/kernel/security", "securityfs")
    return "none" if isinstance(entries, list) and entries else None


KVM_GET_API_VERSION = 0xAE00  # _IO(KVMIO, 0x00)


def _kvm_api(c: _Collection) -> tuple[int | None, str | None]:
    """Ask the live host's /dev/kvm for its API version: usable KVM is what the KVM API says, not what
    the CPU flags suggest (nested or paravirtual KVM such as kvm_pvm provides /dev/kvm without
    vmx/svm). Only on the running system; nothing is created (no VM, no vCPU)."""
    if not c.live:
        return None, None
    import fcntl
    import os

    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        return None, f"/dev/kvm could not be opened: {exc.strerror or exc}"
    try:
        return fcntl.ioctl(fd, KVM_GET_API_VERSION), None
    except OSError as exc:
        return None, f"KVM_GET_API_VERSION failed: {exc.strerror or exc}"
    finally:
        os.close(fd)


def _collect_boot_firmware(c: _Collection) -> str | None:
    efi = c.reader.stat("/sys/firmware/efi")
    if efi.exists:
        return "uefi"
    if efi.exists is False and c.absence_known("/sys/firmware"):
        return "bios"
    return None


def _collect_secure_boot(c: _Collection) -> bool | None:
    efi = c.reader.stat("/sys/firmware/efi")
    if efi.exists is False:
        return False if c.absence_known("/sys/firmware") else None  # no EFI: no Secure Boot
    if efi.exists is None:
        return None
    try:
        data = c.reader.read_bytes(SECURE_BOOT_VAR, SMALL)
    except ReadError as exc:
        var = c.reader.stat(SECURE_BOOT_VAR)
        if var.exists is False and c.reader.stat("/sys/firmware/efi/efivars").exists:
            return False  # firmware without the variable: Secure Boot is not enabled
        c.fail(SECURE_BOOT_VAR, "Secure Boot EFI variable", exc.reason)
        return None
    return data[-1:] == b"\x01" if len(data) >= 5 else None


def _collect_tpm(c: _Collection) -> bool | None:
    present = c.exists("/sys/class/tpm/tpm0", "TPM device")
    if present is False and not c.absence_known("/sys/class"):
        return None
    return present


def _collect_swaps(c: _Collection) -> tuple[str, ...] | None:
    text = c.read("/proc/swaps", "active swap", MAX_TEXT)
    if not isinstance(text, str):
        return None
    names = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if fields:
            # /proc/swaps escapes blanks in names as octal (\040)
            names.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[0]))
    return tuple(names)


MAX_BLOCK_LAYERS = 16  # device-mapper, md and partitions stacked under one swap area


def _dm_names(c: _Collection) -> dict[str, str] | None:
    """/dev/mapper names -> their dm-N devices (/sys/class/block/dm-N/dm/name); None when unreadable."""
    entries = c.listdir("/sys/class/block", "block devices")
    if not isinstance(entries, list):
        return None
    names: dict[str, str] = {}
    for entry in entries:
        if entry.startswith("dm-"):
            name = c.read(f"/sys/class/block/{entry}/dm/name", "device-mapper name")
            if name is None:
                return None
            if isinstance(name, str):
                names[name.strip()] = entry
    return names


def _block_layers(c: _Collection, top: str) -> tuple[BlockLayer, ...] | None:
    """``top`` (a name in /sys/class/block) and every block device it stores its data on, down to
    devices that build on nothing, and not below dm-crypt. None when any of it could not be read."""
    layers: list[BlockLayer] = []
    pending, seen = [top], {top}
    while pending:
        if len(layers) >= MAX_BLOCK_LAYERS:
            c.fail(f"/sys/class/block/{top}", "swap device layers", f"more than {MAX_BLOCK_LAYERS} layers")
            return None
        name = pending.pop(0)
        base = f"/sys/class/block/{name}"
        if c.reader.stat(base).exists is not True:
            return None  # not captured, or gone: no answer either way
        uuid = c.read(f"{base}/dm/uuid", "device-mapper UUID")
        if uuid is None:
            return None
        layer = BlockLayer(name=name, dm_uuid=uuid.strip() if isinstance(uuid, str) else None)
        if not layer.dm_crypt:  # below dm-crypt lies ciphertext only
            slaves = c.listdir(f"{base}/slaves", "block device slaves")
            if slaves is None:
                return None
            below = tuple(slaves) if isinstance(slaves, list) else ()
            if isinstance(slaves, _Absent) and c.reader.stat(f"{base}/partition").exists:
                # a partition has no slaves/: its directory lies inside its disk's
                try:
                    below = (posixpath.basename(posixpath.dirname(c.reader.readlink(base))),)
                except ReadError as exc:
                    c.fail(base, "partition's disk", exc.reason, exc.kind)
                    return None
            layer = evolve(layer, below=below)
            pending += [b for b in below if b not in seen]
            seen.update(below)
        layers.append(layer)
    return tuple(layers)


def _collect_swap_layers(c: _Collection, swaps: tuple[str, ...] | None
                         ) -> dict[str, tuple[BlockLayer, ...] | None] | None:
    """What each device-mapper swap area stands on (only these: a plain partition is judged by its
    name). None when /proc/swaps was not read."""
    if swaps is None:
        return None
    mapped = [s for s in swaps if s.startswith(("/dev/dm-", "/dev/mapper/"))]
    if not mapped or not c.absence_known("/sys/class/block"):
        return {s: None for s in mapped}
    mapper = _dm_names(c) if any(s.startswith("/dev/mapper/") for s in mapped) else {}
    result: dict[str, tuple[BlockLayer, ...] | None] = {}
    for swap in mapped:
        if swap.startswith("/dev/dm-"):
            dm: str | None = swap.removeprefix("/dev/")
        else:
            dm = None if mapper is None else mapper.get(swap.removeprefix("/dev/mapper/"))
        result[swap] = None if dm is None else _block_layers(c, dm)
    return result


def _collect_auditd(c: _Collection) -> bool | None:
    if not c.live:
        return None
    entries = c.listdir("/proc", "process list", MAX_PROCESSES)
    if not isinstance(entries, list):
        return None
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            if c.reader.read_text(f"/proc/{pid}/comm", 64).strip() == "auditd":
                return True
        except ReadError:
            continue  # the process ended while the list was read
    return False


def _collect_kernel_release(c: _Collection, packages: tuple[InstalledPackage, ...] | None) -> str | None:
    text = c.read("/proc/sys/kernel/osrelease", "kernel release")
    if isinstance(text, str) and text.strip():
        return text.strip()
    if packages is not None:
        return _kernel_from_packages(packages)
    return None


def _collect_hostname(c: _Collection) -> str:
    text = c.read("/etc/hostname", "hostname")
    if isinstance(text, str):
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                return line.strip()[:255]
    if c.live:
        return socket.gethostname()
    return c.reader.label


# --- accounts, distribution, packages -------------------------------------------------------------


def _parse_colon_db(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines()[:200_000] if line and not line.startswith("#")]


def _collect_groups(c: _Collection, accounts: tuple[Account, ...] | None
                    ) -> tuple[dict[str, tuple[str, ...]], dict[str, int]] | None:
    """Every group's members — /etc/group's list and the accounts whose primary group it is (passwd's
    gid; unknown when /etc/passwd was not read) — and every group's id, as the system reads them."""
    text = c.read("/etc/group", "groups", MAX_TEXT)
    if text is None:
        return None
    if isinstance(text, _Absent):
        return {}, {}
    try:
        entries = parse_group(text)
    except ReadError as exc:
        c.fail(exc.source, "groups", exc.reason, exc.kind)
        return None
    members: dict[str, tuple[str, ...]] = {}
    ids: dict[str, int] = {}
    for g in entries:
        if g.name in members:
            continue  # getgrnam() answers with the first entry of a name
        primary = tuple(a.name for a in accounts or () if g.gid is not None and a.gid == g.gid)
        members[g.name] = tuple(dict.fromkeys((*g.members, *primary)))
        if g.gid is not None:
            ids[g.name] = g.gid
    return members, ids


def _collect_accounts(c: _Collection) -> tuple[Account, ...] | None:
    text = c.read("/etc/passwd", "user accounts", MAX_TEXT)
    if text is None:
        return None
    if isinstance(text, _Absent):
        return ()
    try:
        return parse_passwd(text)[0]
    except ReadError as exc:
        c.fail(exc.source, "user accounts", exc.reason, exc.kind)
        return None


def _distro_ids(c: _Collection) -> tuple[str, ...]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = c.read(path, "os-release")
        if not isinstance(text, str):
            continue
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = value.strip().strip("\"'")
        return tuple(i for i in (fields.get("ID", ""), *fields.get("ID_LIKE", "").split()) if i)
    return ()


def _collect_packages(c: _Collection) -> tuple[InstalledPackage, ...] | None:
    """Every installed dpkg package; None for hosts without a dpkg database (rpm/apk: not yet)."""
    path = "/var/lib/dpkg/status"
    text = c.read(path, "dpkg status", MAX_DPKG_STATUS)
    if not isinstance(text, str):
        return None
    try:
        return parse_dpkg_status(text, path)
    except ReadError as exc:
        c.fail(path, "dpkg status", exc.reason)
        return None


def _is_stack_package(name: str) -> bool:
    return name in STACK_NAMES or name.startswith(STACK_PREFIXES)


def _version_of(packages: Iterable[InstalledPackage], *candidates: str) -> str | None:
    by_name = {p.name: p.version for p in packages}
    for pattern in candidates:
        for name in sorted(by_name):
            if fnmatch.fnmatchcase(name, pattern):
                return by_name[name]
    return None


# --- libvirt --------------------------------------------------------------------------------------


class _Installed(Struct, frozen=True):
    libvirt: bool
    libvirtd: bool
    virtqemud: bool
    virtproxyd: bool


def _daemon_installed(c: _Collection, daemon: str, unit_names: Iterable[str]) -> bool:
    if any(c.reader.stat(f"{d}/{daemon}").exists for d in SBIN_DIRS):
        return True
    if c.reader.stat(f"/etc/libvirt/{daemon}.conf").exists:
        return True
    return any(name.startswith(f"{daemon}") for name in unit_names)


def _detect_installed(c: _Collection, packages: tuple[InstalledPackage, ...] | None,
                      unit_names: Iterable[str]) -> _Installed:
    names = list(unit_names)
    libvirtd = _daemon_installed(c, "libvirtd", names)
    virtqemud = _daemon_installed(c, "virtqemud", names)
    virtproxyd = _daemon_installed(c, "virtproxyd", names)
    libvirt = (libvirtd or virtqemud or virtproxyd or bool(c.reader.stat("/etc/libvirt").exists)
               or any(p.name.startswith("libvirt-daemon") for p in packages or ()))
    return _Installed(libvirt=libvirt, libvirtd=libvirtd, virtqemud=virtqemud, virtproxyd=virtproxyd)


def _load_conf(c: _Collection, path: str, defaults: Mapping[str, ConfValue], what: str) -> ConfigFile:
    conf = load_config_file(c.reader, path, defaults)
    if conf.error is not None:
        c.fail(path, what, conf.error)
    elif conf.present:
        c.records.append(CollectionRecord(source=path, what=what, ok=True))
    return conf


def _parse_sasl(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines()[:10_000]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            out.setdefault(key.strip(), value.strip())
    return out


def _collect_sasl(c: _Collection) -> dict[str, dict[str, str]] | None:
    result: dict[str, dict[str, str]] = {}
    for name in ("libvirt", "qemu"):
        text = c.read(f"/etc/sasl2/{name}.conf", "SASL configuration")
        if text is None:
            return None
        if isinstance(text, str):
            result[name] = _parse_sasl(text)
    return result


def _collect_sockets(c: _Collection, directory: str) -> tuple[FileStat, ...]:
    names = c.listdir(directory, "libvirt socket directory")
    if not isinstance(names, list):
        return ()
    return tuple(c.reader.stat(f"{directory}/{n}", follow=False) for n in names
                 if any(fnmatch.fnmatchcase(n, p) for p in DAEMON_SOCKET_PATTERNS))


def _socket_unit_names(c: _Collection) -> list[str] | None:
    names: set[str] = set()
    for directory in UNIT_DIRS:
        entries = c.listdir(directory, "systemd units")
        if entries is None:
            return None
        if isinstance(entries, list):
            names.update(n for n in entries if any(fnmatch.fnmatchcase(n, p) for p in SOCKET_UNIT_PATTERNS))
    return sorted(names)


def _enabled_units(c: _Collection) -> set[str] | None:
    """The units something pulls in at boot: every ``*.wants``/``*.requires`` directory of the unit
    search path, and ``Wants=``/``Requires=`` in a target's drop-ins (``sockets.target.d``)."""
    enabled: set[str] = set()
    for directory in UNIT_DIRS:
        entries = c.listdir(directory, "systemd units")
        if entries is None:
            return None
        for entry in entries if isinstance(entries, list) else ():
            if entry.endswith((".wants", ".requires")):
                wanted = c.listdir(f"{directory}/{entry}", "systemd wants")
                if wanted is None:
                    return None
                if isinstance(wanted, list):
                    enabled.update(wanted)
            elif entry.endswith(".target.d"):
                unlisted: list[str] = []
                confs = _dropin_files(c, [f"{directory}/{entry}"], unlisted)
                if unlisted:  # a Wants= there could start any unit
                    return None
                for conf in confs:
                    data = c.read_bytes(conf, "systemd drop-in")
                    if data is None:
                        return None
                    if isinstance(data, bytes):
                        for section, key, value in read_unit(data)[0]:
                            if section == "Unit" and key in ("Wants", "Requires"):
                                enabled.update(value.split())
    return enabled


def _dropin_files(c: _Collection, directories: Sequence[str], problems: list[str]) -> list[str]:
    """The ``*.conf`` drop-ins of these directories (most important first) as systemd applies them:
    a file name given in an earlier directory hides the later ones, hidden and backup files are
    skipped, and the rest are read in file-name order."""
    found: dict[str, str] = {}
    for directory in directories:
        listed = c.listdir(directory, "systemd drop-ins", 1_000)
        if listed is None:
            problems.append(f"{directory} could not be listed")
        for conf in listed if isinstance(listed, list) else ():
            if conf.endswith(".conf") and not conf.startswith(_HIDDEN_OR_BACKUP) and \
                    not conf.endswith(_BACKUP_SUFFIXES):
                found.setdefault(conf, f"{directory}/{conf}")
    return [found[conf] for conf in sorted(found)]


def _dropin_dirs(name: str) -> list[str]:
    """Where systemd looks for a unit's drop-ins: ``name.d``, then each prefix at a dash
    (``libvirtd-.socket.d`` for ``libvirtd-admin.socket``), then the type's (``socket.d``), in every
    directory of the search path."""
    stem, _, kind = name.rpartition(".")
    names = [f"{name}.d"]
    parts = stem.split("-")
    names += [f"{'-'.join(parts[:i])}-.{kind}.d" for i in range(len(parts) - 1, 0, -1)]
    names.append(f"{kind}.d")
    return [f"{directory}/{dropin}" for dropin in names for directory in UNIT_DIRS]


def _masked(c: _Collection, path: str) -> bool:
    """An empty unit file, or a link to /dev/null (absolute or relative), masks the unit."""
    try:
        target = c.reader.readlink(path)
    except ReadError:
        target = None
    if target is not None:
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        return resolved == "/dev/null"
    info = c.reader.stat(path)
    return info.kind == FileKind.FILE and info.size == 0


def _collect_socket_unit(c: _Collection, name: str, enabled: set[str] | None) -> SocketUnit:
    # Any file that could not be read may set SocketMode= and the like: the unit then says so
    # (``problem``) rather than showing systemd's defaults as if they were read.
    problems: list[str] = []
    unit_path: str | None = None
    for directory in UNIT_DIRS:
        st = c.reader.stat(f"{directory}/{name}", follow=False)
        if st.exists is None:
            c.fail(f"{directory}/{name}", "systemd socket unit", st.error or "could not be examined")
            problems.append(f"{directory}/{name} could not be examined")
        if st.exists:
            unit_path = f"{directory}/{name}"
            break
    if unit_path is not None and _masked(c, unit_path):
        return SocketUnit(name=name, path=unit_path, enabled=False, problem="; ".join(problems) or None)
    files = []
    if unit_path is not None:
        data = c.read_bytes(unit_path, "systemd socket unit")
        if isinstance(data, bytes):
            assignments, error = read_unit(data)
            if error is not None:  # the unit fails to load: systemd starts nothing from it
                c.fail(unit_path, "systemd socket unit", f"{error}: the unit does not load")
                return SocketUnit(name=name, path=unit_path, enabled=False,
                                  problem="; ".join(problems) or None)
            files.append(assignments)
        elif data is None:
            problems.append(f"{unit_path} could not be read")
    for path in _dropin_files(c, _dropin_dirs(name), problems):
        data = c.read_bytes(path, "systemd drop-in")
        if isinstance(data, bytes):
            assignments, error = read_unit(data)
            files.append(assignments)  # what systemd read before it stopped
            if error is not None:
                c.fail(path, "systemd drop-in", error)
        elif data is None:
            problems.append(f"{path} could not be read")
    settings = socket_settings(files)
    return SocketUnit(name=name, path=unit_path, enabled=None if enabled is None else name in enabled,
                      listen_streams=settings.listen_streams, socket_mode=settings.socket_mode,
                      socket_group=settings.socket_group, problem="; ".join(problems) or None)


def _collect_polkit(c: _Collection, groups: Mapping[str, tuple[str, ...]] | None
                    ) -> tuple[tuple[PolkitRule, ...] | None, str | None]:
    """Run the host's polkit rules (JavaScript, sandboxed) and record what each file decides for
    libvirt's actions. Returns the rules, or None and why."""
    files: list[tuple[str, str]] = []
    for directory in POLKIT_DIRS:
        names = c.listdir(directory, "polkit rules", MAX_POLKIT_FILES)
        if names is None:
            return None, f"{directory} could not be read"
        for name in names if isinstance(names, list) else ():
            if not name.endswith(".rules"):
                continue
            path = f"{directory}/{name}"
            text = c.read(path, "polkit rule", 1024 * 1024)
            if isinstance(text, str):
                files.append((path, text))
    evaluation = evaluate_rules(files, sorted(groups or ()))
    if evaluation.error is not None:
        c.fail(POLKIT_DIRS[0], "polkit rules", evaluation.error)
        return None, f"the polkit rules could not be evaluated: {evaluation.error}"
    rules: list[PolkitRule] = []
    for path, _ in files:
        answers = evaluation.decided.get(path, [])
        error = evaluation.errors.get(path)
        if not answers and error is None:
            continue
        yes = tuple(f"{g.action} to {g.subject}" for g in answers
                    if g.result == "yes" and g.action not in DEFAULT_YES)
        excerpt = "; ".join(f"{g.action}: {g.result} for {g.subject}" for g in answers[:6])
        rules.append(PolkitRule(path=path, mentions_libvirt=bool(answers), grants_without_auth=bool(yes),
                                excerpt=excerpt[:400], grants=yes[:20], error=error))
    return tuple(rules), None


def _glob(c: _Collection, pattern: str, what: str, limit: int = MAX_OBJECTS) -> list[str]:
    try:
        return c.reader.glob(pattern, limit)
    except ReadError as exc:
        c.fail(pattern, what, exc.reason)
        return []


def _collect_sensitive_paths(c: _Collection, qemu_conf: ConfigFile | None) -> tuple[FileStat, ...]:
    paths: list[str] = ["/etc/libvirt"]
    paths += _glob(c, "/etc/libvirt/*.conf", "libvirt configuration")
    paths += ["/etc/libvirt/qemu"]
    paths += _glob(c, "/etc/libvirt/qemu/*.xml", "domain definitions")
    paths += ["/etc/libvirt/qemu/networks", "/etc/libvirt/secrets"]
    paths += _glob(c, "/etc/libvirt/secrets/*", "libvirt secrets")
    paths += ["/etc/libvirt/storage", "/etc/libvirt/hooks"]
    for hook in _glob(c, "/etc/libvirt/hooks/*", "libvirt hooks"):
        paths.append(hook)
        if hook.endswith(".d"):
            paths += _glob(c, f"{hook}/*", "libvirt hooks")
    paths += [f"/var/lib/libvirt/qemu/{d}" for d in ("dump", "save", "snapshot", "ram", "nvram")]
    paths.append("/var/lib/libvirt/images")
    if qemu_conf is not None:
        dump = qemu_conf.setting("auto_dump_path")
        if dump is not None and isinstance(dump.value, str):
            paths.append(dump.value)
        ram = qemu_conf.setting("memory_backing_dir")
        if ram is not None and isinstance(ram.value, str):
            paths.append(ram.value)
            if ram.explicit:  # libvirt keeps guest RAM files in <dir>/libvirt/qemu
                paths.append(f"{ram.value.rstrip('/')}/libvirt/qemu")
    unique = list(dict.fromkeys(paths))[:MAX_SENSITIVE_PATHS]
    return tuple(c.reader.stat(p) for p in unique)


LIBVIRT_TLS_FILE_LIMIT = 64 * 1024
_QEMU_TLS_PURPOSES = {"server-key.pem": "key", "server-cert.pem": "cert", "ca-cert.pem": "ca",
                      "ca-crl.pem": "crl", "client-key.pem": "client-key", "client-cert.pem": "client-cert",
                      "dh-params.pem": "dh"}


def _read_tls(c: _Collection, tls: TlsFile) -> TlsFile:
    """The file's certificate or key facts (never the key itself), or the reason they are unknown."""
    if not tls.stat.exists or tls.stat.kind != FileKind.FILE:
        return tls
    size = tls.stat.size
    if not tls.group.startswith("qemu") and size is not None and size > LIBVIRT_TLS_FILE_LIMIT:
        # virNetTLSContext reads its files with virFileReadAll(…, 64 KiB): a larger one (a CA file
        # with the whole system bundle appended) fails the TLS listener at start
        reason = (f"{size} bytes: libvirt reads at most {LIBVIRT_TLS_FILE_LIMIT} bytes of a TLS file and "
                  "refuses this one (the TLS listener does not start)")
        c.fail(tls.stat.path, f"TLS file ({tls.role})", reason)
        return evolve(tls, problem=reason)
    try:
        # libvirt and QEMU read the file as a C string: nothing after a NUL byte is there for them
        data = c.reader.read_bytes(tls.stat.path, x509.MAX_PEM_BYTES).split(b"\0", 1)[0]
        kind = x509.pem_kind(data)
        # The configured role decides which block GnuTLS takes, not the first marker: a certificate
        # file that starts with a key still has its certificate read (and judged).
        if tls.purpose in ("cert", "ca", "client-cert") and b"-----BEGIN CERTIFICATE-----" in data:
            kind = "certificate"
        elif tls.purpose in ("key", "client-key") and any(m in data for m in x509.KEY_MARKERS):
            kind = "key"
        if kind == "certificate":
            cert = x509.parse_certificate(data, tls.stat.path)
            return evolve(tls, certificate=cert, not_after=cert.not_after,
                                       key_bits=cert.key_bits)
        if kind == "key":
            key = x509.parse_private_key(data, tls.stat.path)
            return evolve(tls, private_key=key, key_bits=key.key_bits)
        if kind in ("dh", "crl"):
            return tls
        raise ParseError(tls.stat.path, "no PEM certificate, private key, CRL or DH parameters in it")
    except ReadError as exc:
        c.fail(exc.source, f"TLS file ({tls.role})", exc.reason)
        return evolve(tls, problem=exc.reason)


def _verify_against_ca(c: _Collection, files: list[TlsFile]) -> list[TlsFile]:
    """Record, for each certificate of a TLS set, whether the set's CA signed it."""
    out: list[TlsFile] = []
    for tls in files:
        ca = next((f for f in files if f.group == tls.group and f.purpose == "ca" and f.certificate), None)
        if tls.certificate is None or ca is None or tls is ca:
            out.append(tls)
            continue
        try:
            cert_pem = c.reader.read_bytes(tls.stat.path, x509.MAX_PEM_BYTES).split(b"\0", 1)[0]
            ca_pem = c.reader.read_bytes(ca.stat.path, x509.MAX_PEM_BYTES).split(b"\0", 1)[0]
            # libvirt loads up to 16 CA certificates from the file: any of them may be the issuer
            verified = any(x509.signed_by(cert_pem, block, tls.stat.path)
                           for block in x509.certificate_blocks(ca_pem)[:16])
        except ReadError as exc:  # not read, or a signature that cannot be checked: unknown, not "no"
            out.append(evolve(tls, certificate=evolve(tls.certificate, verify_error=exc.reason)))
            continue
        out.append(evolve(tls, certificate=evolve(
            tls.certificate, verified_by=ca.stat.path if verified else None)))
    return out


def _collect_tls_files(c: _Collection, daemon_confs: Iterable[tuple[str, ConfigFile | None]],
                       qemu_conf: ConfigFile | None) -> tuple[TlsFile, ...]:
    files: dict[str, TlsFile] = {}

    def add(role: str, path: str, group: str, purpose: str) -> None:
        if path and path not in files:
            files[path] = TlsFile(role=role, stat=c.reader.stat(path), group=group, purpose=purpose)

    for daemon, conf in daemon_confs:
        if conf is None:
            continue
        for key, role, purpose in (("key_file", "server key", "key"),
                                   ("cert_file", "server certificate", "cert"),
                                   ("ca_file", "CA certificate", "ca"),
                                   ("crl_file", "certificate revocation list", "crl")):
            setting = conf.setting(key)
            if setting is not None and isinstance(setting.value, str):
                add(f"{daemon} {role}", setting.value, daemon, purpose)
    if qemu_conf is not None:
        default_dir = qemu_conf.setting("default_tls_x509_cert_dir")
        dirs = [("default", default_dir.value if default_dir and isinstance(default_dir.value, str)
                 else "/etc/pki/qemu")]
        for service in QEMU_TLS_SERVICES:
            explicit = qemu_conf.setting(f"{service}_tls_x509_cert_dir")
            dirs.append((service, explicit.value if explicit and isinstance(explicit.value, str)
                         else f"/etc/pki/libvirt-{service}"))
        for service, directory in dirs:
            if service == "default":
                for name in ("server-key.pem", "server-cert.pem", "ca-cert.pem"):
                    add(f"qemu {service} {name}", f"{directory}/{name}", f"qemu {service}",
                        _QEMU_TLS_PURPOSES[name])
            for path in _glob(c, f"{directory}/*.pem", "QEMU TLS files", 100):
                name = path.rsplit("/", 1)[-1]
                add(f"qemu {service} {name}", path, f"qemu {service}", _QEMU_TLS_PURPOSES.get(name, "other"))
    parsed = [_read_tls(c, tls) for tls in files.values()]
    return tuple(_verify_against_ca(c, parsed))


# --- the host -------------------------------------------------------------------------------------


OFFLINE_NOTE = ("offline root: what runs (sysctl values in the kernel, mounts, processes, listening sockets, "
                "the LSM mode) is not collected; verdicts follow the configuration files, as at next boot")


def live_runtime(reader: Reader, packages: tuple[InstalledPackage, ...] | None,
                 config_sysctl: Mapping[str, SysctlValue] | None = None,
                 progress: Callable[[str], None] | None = None,
                 ) -> tuple[RuntimeState, list[CollectionRecord]]:
    """The runtime state of the system ``reader``'s root is. Only the host vmsec runs on (root ``/``)
    is asked over its own D-Bus system bus; no runtime fact of this machine is used for another root."""
    from vmsec.collectors.runtime import collect_runtime
    from vmsec.collectors.systemd_dbus import SYSTEM_BUS

    this_machine = reader.label == "/"
    return collect_runtime(reader, source="/proc and /sys of the running host" if this_machine
                           else f"/proc and /sys under {reader.label}", packages=packages,
                           config_sysctl=config_sysctl, system_bus=SYSTEM_BUS if this_machine else None,
                           local_time=this_machine, progress=progress)


def collect_host(reader: Reader, *, live: bool,
                 packages: tuple[InstalledPackage, ...] | None = None,
                 runtime: RuntimeState | None = None) -> tuple[Host, list[CollectionRecord]]:
    """Collect every :class:`Host` fact from ``reader``'s root. ``live``: the root is this running system.
    ``packages``: the root's installed packages when the caller has read them already (any manager).
    ``runtime``: the running system's state when the caller has read it already (live only)."""
    c = _Collection(reader, live)
    started = time.monotonic()

    all_packages = packages if packages is not None else _collect_packages(c)
    if live and runtime is None:
        runtime, runtime_records = live_runtime(reader, all_packages)
        c.records += runtime_records
    elif not live:
        runtime = None
        c.records.append(CollectionRecord(source=reader.label, what="runtime state", ok=True,
                                          reason=OFFLINE_NOTE))
    cpu = _collect_cpu(c)
    cmdline = c.read_bytes("/proc/cmdline", "kernel command line")
    device_nodes = tuple(reader.stat(p) for p in DEVICE_NODES)
    kvm_api = _kvm_api(c) if device_nodes[0].exists else (None, None)
    ksm = c.value("/sys/kernel/mm/ksm/run", "KSM state")
    swaps = _collect_swaps(c)
    smt = c.value("/sys/devices/system/cpu/smt/control", "SMT control")

    unit_names = _socket_unit_names(c)
    installed = _detect_installed(c, all_packages, unit_names or ())
    accounts = _collect_accounts(c)
    group_table = _collect_groups(c, accounts)
    groups, group_ids = group_table if group_table is not None else (None, None)

    libvirtd_conf = virtqemud_conf = virtproxyd_conf = qemu_conf = None
    if installed.libvirtd:
        libvirtd_conf = _load_conf(c, "/etc/libvirt/libvirtd.conf", DAEMON_CONF_DEFAULTS, "libvirtd.conf")
    if installed.virtqemud:
        virtqemud_conf = _load_conf(c, "/etc/libvirt/virtqemud.conf", DAEMON_CONF_DEFAULTS, "virtqemud.conf")
    if installed.virtproxyd:
        virtproxyd_conf = _load_conf(c, "/etc/libvirt/virtproxyd.conf", DAEMON_CONF_DEFAULTS,
                                     "virtproxyd.conf")
    if installed.libvirt:
        defaults = qemu_conf_defaults(_distro_ids(c), accounts=None if accounts is None else
                                      [a.name for a in accounts],
                                      groups=None if groups is None else groups.keys())
        qemu_conf = _load_conf(c, "/etc/libvirt/qemu.conf", defaults, "qemu.conf")
    daemon_mode = "modular" if installed.virtqemud else "monolithic" if installed.libvirtd else None

    sock_dirs: list[str] = []
    for conf in (virtqemud_conf, libvirtd_conf, virtproxyd_conf):
        setting = conf.setting("unix_sock_dir") if conf is not None else None
        if setting is not None and isinstance(setting.value, str):
            sock_dirs.append(setting.value)
    sockets: tuple[FileStat, ...] = ()
    for directory in dict.fromkeys(sock_dirs or ["/run/libvirt"]):
        sockets += _collect_sockets(c, directory)

    socket_units: tuple[SocketUnit, ...] | None = None
    if unit_names is not None:
        enabled = _enabled_units(c)
        socket_units = tuple(_collect_socket_unit(c, n, enabled) for n in unit_names)

    packages = None if all_packages is None else tuple(p for p in all_packages if _is_stack_package(p.name))
    polkit_rules, polkit_error = _collect_polkit(c, groups)
    host = Host(
        name=_collect_hostname(c),
        root=reader.label,
        live=live,
        kernel_release=_collect_kernel_release(c, all_packages),
        kernel_cmdline=split_cmdline(cmdline) if isinstance(cmdline, bytes) else None,
        cpu=cpu,
        virtualization=_detect_hypervisor(c, cpu),
        kvm_device=device_nodes[0],
        kvm_api_version=kvm_api[0],
        kvm_api_error=kvm_api[1],
        device_nodes=device_nodes,
        module_params=_collect_module_params(c),
        iommu=_collect_iommu(c),
        cpu_vulnerabilities=_collect_vulnerabilities(c),
        smt_control=smt,
        ksm_run=ksm,
        lockdown=_collect_lockdown(c),
        secure_boot=_collect_secure_boot(c),
        boot_firmware=_collect_boot_firmware(c),
        tpm_present=_collect_tpm(c),
        swaps=swaps,
        swap_layers=_collect_swap_layers(c, swaps),
        auditd_running=_collect_auditd(c),
        libvirtd_conf=libvirtd_conf,
        virtqemud_conf=virtqemud_conf,
        virtproxyd_conf=virtproxyd_conf,
        qemu_conf=qemu_conf,
        daemon_mode=daemon_mode,
        sasl_configs=_collect_sasl(c),
        sockets=sockets,
        socket_units=socket_units,
        polkit_rules=polkit_rules, polkit_error=polkit_error,
        groups=groups,
        group_ids=group_ids,
        group_members_partial=groups is not None and accounts is None,
        sensitive_paths=_collect_sensitive_paths(c, qemu_conf),
        tls_files=_collect_tls_files(c, (("libvirtd", libvirtd_conf), ("virtproxyd", virtproxyd_conf)),
                                     qemu_conf),
        packages=packages,
        qemu_version=_version_of(packages or (), "qemu-system-x86", "qemu-system-arm", "qemu-system-[a-z]*",
                                 "qemu-kvm", "qemu-system-common", "qemu-utils"),
        libvirt_version=_version_of(packages or (), "libvirt-daemon", "libvirt-daemon-system", "libvirt0"),
        runtime=runtime,
    )
    c.records.append(CollectionRecord(source=reader.label, what="host facts", ok=True,
                                      duration_s=round(time.monotonic() - started, 4)))
    return host, c.records


# --- the inventory: host facts plus libvirt's on-disk objects -------------------------------------


def _read_objects(c: _Collection, pattern: str, what: str) -> list[object]:
    objects: list[object] = []
    for path in _glob(c, pattern, what):
        try:
            data = c.reader.read_bytes(path, MAX_XML_BYTES)
            obj = parse_libvirt_document(data, path)
        except ReadError as exc:
            c.fail(path, what, exc.reason)
            continue
        c.records.append(CollectionRecord(source=path, what=what, ok=True))
        objects.append(obj)
    return objects


def _autostart_names(c: _Collection, directory: str) -> set[str]:
    names = c.listdir(directory, "autostart links")
    return {n.removesuffix(".xml") for n in names} if isinstance(names, list) else set()


# A copied host root holds at least one of these; an empty or mistyped directory holds none.
HOST_ROOT_MARKERS = ("/etc", "/proc", "/sys", "/dev", "/usr", "/var")


def collect_host_inventory(root: str = "/", *, progress: Callable[[str], None] | None = None,
                           live: bool | None = None, packages_only: bool = False) -> Inventory:
    """Host facts of ``root`` plus the libvirt objects defined on its disk (/etc/libvirt/…).

    ``live`` (default: the root is ``/``) reads what runs from the root's /proc and /sys. A library
    caller may set it for a captured root (a forensic capture holding /proc and /sys trees); the
    running machine's D-Bus is only ever asked about ``/`` itself.
    """
    tell = progress or (lambda _msg: None)
    try:
        reader = RootReader(root)
    except ReadError as exc:
        raise SourceUnavailable(f"{root}: {exc.reason}") from exc
    live = reader.root == "/" if live is None else live
    # The same OS checks as on guests run on the host's own OS — when the root is an OS root at all
    # (a copied root holding only libvirt's files has no os-release: nothing to audit there). Its
    # package list (dpkg, rpm or apk) also gives the host its virtualization stack: read once.
    host_os = None
    os_records: list[CollectionRecord] = []
    if any(reader.stat(p).exists is not False for p in ("/etc/os-release", "/usr/lib/os-release")):
        tell(f"OS facts of {reader.root}")
        host_os, os_records = collect_guest(reader, name=reader.root, origin=reader.root,
                                            packages_only=packages_only)
    runtime = None
    runtime_records: list[CollectionRecord] = []
    if live:
        tell("what runs: /proc and /sys")
        runtime, runtime_records = live_runtime(
            reader, host_os.packages if host_os is not None else None,
            host_os.sysctl if host_os is not None else None, progress)
    tell(f"host facts of {reader.root}")
    host, records = collect_host(reader, live=live,
                                 packages=host_os.packages if host_os is not None else None, runtime=runtime)
    c = _Collection(reader, live)
    c.records = runtime_records + records
    if host_os is not None:
        # the root is the running system when live: its kernel is the one running
        host_os = evolve(host_os, name=host.name,
                         running_kernel=host.kernel_release if live else None, runtime=runtime)
        c.records.extend(evolve(r, what=f"host OS: {r.what}") for r in os_records)
    else:
        c.records.append(CollectionRecord(source=reader.root, what="host OS facts", ok=True,
                                          reason="no os-release: not an OS root; not collected"))

    tell("libvirt definitions in /etc/libvirt")
    found: list[object] = []
    for pattern, what in (("/etc/libvirt/qemu/*.xml", "domain XML"),
                          ("/etc/libvirt/qemu/networks/*.xml", "network XML"),
                          ("/etc/libvirt/nwfilter/*.xml", "network filter XML"),
                          ("/etc/libvirt/storage/*.xml", "storage pool XML"),
                          ("/etc/libvirt/secrets/*.xml", "secret XML")):
        found += _read_objects(c, pattern, what)

    dom_autostart = _autostart_names(c, "/etc/libvirt/qemu/autostart")
    net_autostart = _autostart_names(c, "/etc/libvirt/qemu/networks/autostart")
    domains = [evolve(o, persistent=True, autostart=o.name in dom_autostart)
               for o in found if isinstance(o, Domain)]
    networks = [evolve(o, autostart=o.name in net_autostart)
                for o in found if isinstance(o, Network)]
    filters = [o for o in found if isinstance(o, NwFilter)]
    pools = [o for o in found if isinstance(o, StoragePool)]
    secrets = [o for o in found if isinstance(o, Secret)]

    libvirt_present = host.qemu_conf is not None or host.daemon_mode is not None
    nwfilters: tuple[NwFilter, ...] | None = tuple(filters)
    if not filters and not reader.stat("/etc/libvirt/nwfilter").exists and not libvirt_present:
        nwfilters = None
    secret_facts: tuple[Secret, ...] | None = tuple(secrets)
    if not secrets and not reader.stat("/etc/libvirt/secrets").exists and not libvirt_present:
        secret_facts = None
    return Inventory(host=host, domains=tuple(domains), networks=tuple(networks), nwfilters=nwfilters,
                     pools=tuple(pools), secrets=secret_facts, host_os=host_os, records=tuple(c.records),
                     source=f"host {reader.root}")


def collect(spec: HostSpec, context: CollectContext) -> Inventory:
    """The collector interface (``vmsec.collectors``): a host by its root.

    A root that holds nothing of a host (an empty or mistyped directory) is not a clean scan:
    :class:`SourceUnavailable` names what was expected.
    """
    if spec.root != "/":
        try:
            reader = RootReader(spec.root)
        except ReadError as exc:
            raise SourceUnavailable(f"{spec.root}: {exc.reason}", exc.kind) from exc
        if not any(reader.stat(p).exists for p in HOST_ROOT_MARKERS):
            raise SourceUnavailable(f"{reader.root}: not a host root: none of "
                                    f"{', '.join(p.lstrip('/') for p in HOST_ROOT_MARKERS)} is there "
                                    "(expected a copy of a hypervisor's / with etc/libvirt)",
                                    ErrorKind.ABSENT)
    return collect_host_inventory(spec.root, progress=context.step, packages_only=context.packages_only)


__all__ = ["collect_host", "collect_host_inventory", "load_config_file"]
