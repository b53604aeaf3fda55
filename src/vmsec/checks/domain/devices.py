"""Per-VM emulated-device attack surface: every emulated device is guest-reachable host code.

Two kinds of check, consistently:

- *Presence* checks (a device that should not be there: floppy, sound/USB extras, emulated NVMe,
  shared memory, vsock) yield one PASS per VM when it is absent, and one FAIL per offending
  device otherwise — an audit wants "no floppy controller" confirmed.
- *Configuration* checks (NIC, video and USB controller models, disk buses, watchdog action,
  RNG and TPM backends) yield one result per device of that kind, and nothing when the VM has
  none. VMS-DOM-049 (crash dumps) judges VM-wide settings and always yields.

A model the XML leaves out is filled in by libvirt when the domain is defined, so XML from
libvirt always names it; for a hand-written file without one the result is UNKNOWN.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.platform import GuestArch, default_nic_model, effective_machine, guest_arch
from vmsec.checks.helpers.text import other_names
from vmsec.facts import Domain, Inventory, Setting
from vmsec.findings import Evidence

_I440FX = re.compile(r"^(pc|pc-i440fx-.*|pc-[0-9.]+)$")


def _machine(dom: Domain, env: Environment | None) -> tuple[str | None, Evidence, str, GuestArch]:
    """The machine type QEMU builds: the XML's, else QEMU's documented default for the architecture."""
    arch = guest_arch(dom, env.host if env is not None else None)
    machine, where, phrase = effective_machine(dom, arch)
    return machine, where, phrase, arch


def _is_i440fx(machine: str | None) -> bool:
    return machine is not None and bool(_I440FX.match(machine))


@check("VMS-DOM-040", title="No floppy drive or floppy controller",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "device"),
       references=("https://www.cve.org/CVERecord?id=CVE-2015-3456",
                   "https://www.cve.org/CVERecord?id=CVE-2021-3507"))
def no_floppy(dom: Domain, env: Environment) -> Iterator[Result]:
    """QEMU's floppy disk controller gave us VENOM (CVE-2015-3456), a guest-to-host code execution,
    and later CVE-2021-3507. On the i440fx (`pc`) machine type the ISA floppy controller exists
    even without a floppy drive, so the guest can reach that code regardless; `q35` creates it
    only for a configured floppy.

    Remediation: Remove floppy disks and `fdc` controllers; prefer the `q35` machine type; keep
    QEMU patched.
    """
    found = False
    for disk in dom.disks:
        if disk.device == "floppy" or disk.target_bus == "fdc":
            found = True
            yield fail(f"disk {disk.locator}",
                       f"floppy drive {disk.target_dev or ''} ({disk.source or 'empty'})",
                       ev(dom.origin, disk.locator + "/@device", disk.device))
    for ctl in dom.controllers:
        if ctl.type == "fdc":
            found = True
            yield fail(f"controller {ctl.locator}", "floppy disk controller",
                       ev(dom.origin, ctl.locator + "/@type", ctl.type))
    if found:
        return
    machine, machine_ev, phrase, arch = _machine(dom, env)
    if _is_i440fx(machine):
        yield fail("floppy controller", f"{phrase}: i440fx always has an ISA floppy controller", machine_ev,
                   severity=Severity.MEDIUM)
    elif machine is None and arch.x86 is not False:
        yield unknown("floppy controller", f"no floppy drive, but {phrase} and {arch.how}; i440fx machines "
                                           "have a built-in floppy controller", machine_ev)
    else:
        yield ok("floppy controller", "no floppy drive or floppy controller", machine_ev)


_PARAVIRT_NIC = re.compile(r"^(virtio.*|spapr-vlan|netfront|vmbus)$")
_LEGACY_NIC = {"rtl8139", "pcnet", "ne2k_pci", "ne2k_isa", "e1000", "e1000e", "e1000-82540em",
               "e1000-82544gc", "e1000-82545em", "vmxnet3", "i82551", "i82557b", "i82559er", "lan9118",
               "smc91c111", "usb-net", "igb", "tulip", "sungem"}


@check("VMS-DOM-041", title="Network interfaces use virtio, not legacy emulated NIC models",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "device"),
       references=("https://www.cve.org/CVERecord?id=CVE-2015-7504",
                   "https://www.cve.org/CVERecord?id=CVE-2021-20203"))
def nic_model_virtio(dom: Domain, env: Environment) -> Iterator[Result]:
    """Fully emulated NICs (rtl8139, e1000, pcnet, vmxnet3, ne2k …) emulate old hardware register
    by register and have a long record of guest-to-host bugs (CVE-2015-7504 pcnet, CVE-2021-20203
    vmxnet3). virtio-net is smaller, faster and the best-reviewed network device. An interface
    without `<model>` gets libvirt's default for the architecture and machine: rtl8139 on x86 and
    ppc64, virtio on s390x and on Arm/RISC-V `virt` machines.

    Remediation: `<model type='virtio'/>` on every interface (all current guests have drivers).
    """
    for nic in dom.interfaces:
        if nic.type in ("hostdev", "vdpa"):
            continue  # a real or vDPA device, not an emulated model
        subject = f"interface {nic.locator}"
        where = ev(dom.origin, nic.locator + "/model/@type", nic.model)
        model = nic.model
        if model is None:
            default, why = default_nic_model(dom, guest_arch(dom, env.host))
            if default is None:
                yield unknown(subject, f"the interface names no model and libvirt's default depends on the "
                              f"architecture: {why}", where)
            elif _PARAVIRT_NIC.match(default):
                yield ok(subject, f"no model: {why} is {default}, which is paravirtual", where)
            else:
                yield fail(subject, f"no model: {why} is {default}, a legacy emulated NIC", where)
        elif _PARAVIRT_NIC.match(model):
            yield ok(subject, f"NIC model {model} is paravirtual", where)
        elif model in _LEGACY_NIC:
            yield fail(subject, f"legacy emulated NIC model {model}", where)
        else:
            yield fail(subject, f"emulated NIC model {model}", where, severity=Severity.LOW)


_VIDEO_RISK = {"cirrus": Severity.MEDIUM, "vmvga": Severity.MEDIUM, "qxl": Severity.LOW}


@check("VMS-DOM-042", title="Video devices avoid cirrus, vmvga and (on servers) qxl",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "device"),
       references=("https://www.cve.org/CVERecord?id=CVE-2017-2615",
                   "https://www.kraxel.org/blog/2014/10/qemu-using-cirrus-considered-harmful/"))
def video_model_safe(dom: Domain) -> Iterator[Result]:
    """The Cirrus VGA emulation had a series of guest-to-host bugs in its bitblt code
    (CVE-2017-2615, CVE-2017-7980, …), VMware SVGA (`vmvga`) others; QXL is a large device only
    useful for SPICE desktops. `virtio`, `bochs`, `vga` or `none` keep the surface small.

    Remediation: `<model type='virtio'/>` (or `bochs`/`vga`); `<model type='none'/>` for headless
    servers.
    """
    for video in dom.devices_of("video"):
        subject = f"video {video.locator}"
        where = ev(dom.origin, video.locator + "/model/@type", video.model)
        model = video.model or video.type
        if model is None:
            yield unknown(subject, "the video device names no model; libvirt picks one when the domain "
                                   "is defined", where)
        elif model in _VIDEO_RISK:
            yield fail(subject, f"video model {model}", where, severity=_VIDEO_RISK[model])
        else:
            yield ok(subject, f"video model {model}", where)


@check("VMS-DOM-043", title="No sound, parallel, smartcard, USB hub or USB input devices",
       severity=Severity.LOW, tags=(Tag.ISOLATION, "device"),
       references=("https://docs.openstack.org/security-guide/compute/hardening-the-virtualization-layers.html",))
def no_optional_devices(dom: Domain) -> Iterator[Result]:
    """Sound cards, parallel ports, smartcard readers, USB hubs and USB keyboards/mice/tablets are
    emulated devices a server rarely needs; each is guest-reachable host code. (A USB tablet
    improves the VNC pointer; `virtio` input devices do the same with less code.)

    Remediation: Remove the devices a server does not need; use `<input type='tablet' bus='virtio'/>`.
    """
    found = False
    for dev in dom.devices:
        if dev.element in ("sound", "smartcard", "hub") or (dev.element == "input" and dev.bus == "usb"):
            found = True
            what = f"{dev.element} {dev.model or dev.type or ''}".strip()
            if dev.element == "input":
                what = f"USB {dev.type or 'input'}"
            yield fail(f"{dev.element} {dev.locator}", f"{what} present",
                       ev(dom.origin, dev.locator, dev.model or dev.type or dev.bus))
    for ch in dom.chardevs:
        if ch.element == "parallel":
            found = True
            yield fail(f"parallel {ch.locator}", f"parallel port ({ch.type})",
                       ev(dom.origin, ch.locator + "/@type", ch.type))
    if not found:
        yield ok("optional devices", "no sound, parallel, smartcard, USB hub or USB input device",
                 ev(dom.origin, "devices", None))


_LEGACY_USB = re.compile(r"^(piix3-uhci|piix4-uhci|ehci|ich9-ehci1|ich9-uhci[0-9]|vt82c686b-uhci|pci-ohci|"
                         r"vt82c686b-ehci)$")


def _uses_usb(dom: Domain) -> bool:
    if any(h.type == "usb" for h in dom.hostdevs) or dom.redirdevs:
        return True
    if any(d.target_bus == "usb" for d in dom.disks):
        return True
    return any(d.bus == "usb" or d.element in ("hub", "smartcard") for d in dom.devices)


@check("VMS-DOM-044", title="USB controllers are absent or a modern xHCI model",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "device"),
       references=("https://www.cve.org/CVERecord?id=CVE-2020-14364",))
def usb_controller_modern(dom: Domain, env: Environment) -> Iterator[Result]:
    """USB emulation had guest-to-host bugs (CVE-2020-14364, an out-of-bounds read/write in the
    common USB code). UHCI/OHCI/EHCI models are the oldest, least maintained ones; a controller
    with no USB device behind it is surface for nothing.

    Remediation: `<controller type='usb' model='none'/>` when no USB device is needed; otherwise
    `model='qemu-xhci'`.
    """
    needed = _uses_usb(dom)
    for ctl in dom.controllers:
        if ctl.type != "usb":
            continue
        subject = f"controller {ctl.locator}"
        where = ev(dom.origin, ctl.locator + "/@model", ctl.model)
        model = ctl.model
        if model == "none":
            yield ok(subject, "USB disabled (model='none')", where)
        elif model is not None and _LEGACY_USB.match(model):
            yield fail(subject, f"legacy USB controller model {model}", where)
        elif not needed:
            yield fail(subject, f"USB controller {model or '(default model)'} with no USB device attached",
                       where, severity=Severity.LOW)
        elif model is None:
            machine, _, phrase, _ = _machine(dom, env)
            default = "piix3-uhci" if _is_i440fx(machine) else None
            if default:
                yield fail(subject, f"no model: libvirt uses {default} on {machine} ({phrase})", where)
            else:
                yield unknown(subject, "the USB controller names no model; libvirt picks one when the "
                                       "domain is defined", where)
        else:
            yield ok(subject, f"USB controller model {model}", where)


@check("VMS-DOM-045", title="Disks do not use the emulated IDE or SATA (AHCI) bus",
       severity=Severity.LOW, tags=(Tag.ISOLATION, "device"),
       references=("https://www.cve.org/CVERecord?id=CVE-2015-5154",))
def disk_bus_paravirtual(dom: Domain) -> Iterator[Result]:
    """IDE and AHCI emulation (and ATAPI CD-ROMs on them) had guest-to-host bugs such as
    CVE-2015-5154. virtio-blk or virtio-scsi keep storage on paravirtual, better-reviewed code.
    IDE is judged medium, SATA low (q35 machines need a SATA CD-ROM for some installers).

    Remediation: `<target bus='virtio'/>`, or a `virtio-scsi` controller with `bus='scsi'`; detach
    installation CD-ROMs after use.
    """
    for disk in dom.disks:
        if disk.device == "floppy":
            continue  # VMS-DOM-040
        bus = disk.target_bus
        if bus is None and disk.target_dev and disk.target_dev.startswith("hd"):
            bus = "ide"  # libvirt derives the bus from the hd* name
        if bus is None:
            continue
        subject = f"disk {disk.locator}"
        where = ev(dom.origin, disk.locator + "/target/@bus", disk.target_bus or f"(from {disk.target_dev})")
        if bus == "ide":
            yield fail(subject, f"{disk.device} {disk.target_dev or ''} on the emulated IDE bus", where,
                       severity=Severity.MEDIUM)
        elif bus == "sata":
            yield fail(subject, f"{disk.device} {disk.target_dev or ''} on the emulated SATA (AHCI) bus",
                       where)
        else:
            yield ok(subject, f"{disk.device} {disk.target_dev or ''} on bus {bus}", where)


@check("VMS-DOM-046", title="No emulated NVMe controller",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "device"),
       references=("https://www.cve.org/CVERecord?id=CVE-2021-3929",))
def no_emulated_nvme(dom: Domain) -> Iterator[Result]:
    """QEMU's emulated NVMe controller is a large device model with a record of guest-to-host
    memory-safety bugs (CVE-2021-3929, a DMA re-entrancy use-after-free). (A `<disk type='nvme'>`
    is a host NVMe device driven by QEMU's userspace driver and is not judged here.)

    Remediation: Use virtio-blk or virtio-scsi disks.
    """
    found = False
    for disk in dom.disks:
        if disk.target_bus == "nvme":
            found = True
            yield fail(f"disk {disk.locator}", f"disk {disk.target_dev or ''} on an emulated NVMe controller",
                       ev(dom.origin, disk.locator + "/target/@bus", "nvme"))
    for ctl in dom.controllers:
        if ctl.type == "nvme":
            found = True
            yield fail(f"controller {ctl.locator}", "emulated NVMe controller",
                       ev(dom.origin, ctl.locator + "/@type", "nvme"))
    if not found:
        yield ok("nvme", "no emulated NVMe controller",
                 ev(dom.origin, "devices/controller[@type='nvme']", None))


def _shmem_users(inventory: Inventory) -> dict[str | None, tuple[list[str], frozenset[str]]]:
    """The names of the domains using each shared-memory object name: sorted, and as a set."""
    users: dict[str | None, set[str]] = {}
    for d in inventory.domains:
        for s in d.shmems:
            users.setdefault(s.name, set()).add(d.name)
    return {name: (sorted(doms), frozenset(doms)) for name, doms in users.items()}


@check("VMS-DOM-047", title="No shared-memory (ivshmem) device",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "device"),
       references=("https://libvirt.org/formatdomain.html#shared-memory-device",))
def no_shared_memory(dom: Domain, env: Environment) -> Iterator[Result]:
    """An ivshmem/shmem device maps a host shared-memory object into the guest. Every VM (and host
    process) that opens the same name shares that memory: an unmediated channel between VMs that
    bypasses the hypervisor's isolation, and a host-memory surface for the guest.

    Remediation: Remove `<shmem>`; use mediated channels (virtio-vsock, virtio-net) between VMs.
    """
    users = env.indexed("shmem-users", _shmem_users)
    for shm in dom.shmems:
        ordered, members = users.get(shm.name, ((), frozenset()))
        peers = len(members) - (dom.name in members)
        shared = f", shared with {other_names(ordered, peers, but=dom.name)}" if peers else ""
        yield fail(f"shmem {shm.locator}", f"shared memory {shm.name!r} ({shm.model or 'ivshmem'}){shared}",
                   ev(dom.origin, shm.locator + "/@name", shm.name))
    if not dom.shmems:
        yield ok("shmem", "no shared-memory device", ev(dom.origin, "devices/shmem", None))


@check("VMS-DOM-048", title="Watchdog does not dump guest memory",
       severity=Severity.MEDIUM, tags=(Tag.CONFIGURATION, "device"),
       references=("https://libvirt.org/formatdomain.html#watchdog-devices",))
def watchdog_no_dump(dom: Domain) -> Iterator[Result]:
    """`<watchdog action='dump'>` writes the guest's whole memory to qemu.conf's `auto_dump_path`
    whenever the watchdog fires; guest RAM holds the tenant's keys and passwords in clear text,
    and a guest can trigger the dump at will.

    Remediation: `action='reset'` (the default) or `poweroff`.
    """
    for wd in dom.devices_of("watchdog"):
        subject = f"watchdog {wd.locator}"
        where = ev(dom.origin, wd.locator + "/@action", wd.action)
        if wd.action == "dump":
            yield fail(subject, "watchdog action='dump' writes guest memory to the host", where)
        else:
            yield ok(subject, f"watchdog action {wd.action or 'reset (default)'}", where)


def _dump_guest_core(env: Environment) -> Setting | None:
    conf = env.host.qemu_conf if env.host is not None else None
    return conf.setting("dump_guest_core") if conf is not None else None


@check("VMS-DOM-049", title="Crashes do not write guest memory to disk",
       severity=Severity.MEDIUM, tags=(Tag.CONFIGURATION, Tag.ENCRYPTION, "device"),
       references=("https://libvirt.org/formatdomain.html#events-configuration",
                   "https://libvirt.org/formatdomain.html#memory-allocation"))
def no_crash_dumps(dom: Domain, env: Environment) -> Iterator[Result]:
    """`on_crash` `coredump-destroy`/`coredump-restart` dumps guest memory when the guest crashes,
    and `<memory dumpCore='on'>` (or qemu.conf `dump_guest_core = 1` when the XML says nothing)
    puts guest RAM in QEMU's own core dumps. Either leaves a clear-text copy of a tenant's memory
    on the host.

    Remediation: `<on_crash>destroy</on_crash>` or `restart`; `dumpCore='off'`, or leave it out
    with `dump_guest_core = 0` (the default) in qemu.conf.
    """
    crash_ev = ev(dom.origin, "on_crash", dom.on_crash)
    if dom.on_crash in ("coredump-destroy", "coredump-restart"):
        yield fail("on_crash", f"on_crash {dom.on_crash} dumps guest memory", crash_ev)
    else:
        yield ok("on_crash", f"on_crash {dom.on_crash or 'destroy (default)'}", crash_ev)
    core_ev = ev(dom.origin, "memory/@dumpCore", dom.memory.dump_core)
    if dom.memory.dump_core is True:
        yield fail("memory dumpCore", "dumpCore='on': QEMU core dumps include guest RAM", core_ev)
    elif dom.memory.dump_core is False:
        yield ok("memory dumpCore", "dumpCore='off'", core_ev)
    else:
        s = _dump_guest_core(env)
        conf_ev: Evidence = (ev(s.origin, s.key, s.value) if s is not None
                             else ev("qemu.conf", "dump_guest_core"))
        flag = s.as_bool() if s is not None else None
        if s is None:
            yield unknown("memory dumpCore", "no dumpCore in the XML, so qemu.conf dump_guest_core decides; "
                                             "it was not read", core_ev)
        elif flag is True:
            yield fail("memory dumpCore", "qemu.conf dump_guest_core=1 puts guest RAM in QEMU core dumps",
                       core_ev, conf_ev)
        elif flag is False or s.value is None:
            yield ok("memory dumpCore", "guest RAM is excluded from QEMU core dumps (dump_guest_core=0)",
                     core_ev, conf_ev)
        else:
            yield unknown("memory dumpCore", f"qemu.conf dump_guest_core has an unexpected value {s.value!r}",
                          conf_ev)


@check("VMS-DOM-050", title="Random-number generators do not take entropy from the network",
       severity=Severity.LOW, tags=(Tag.CONFIGURATION, "device"),
       references=("https://libvirt.org/formatdomain.html#random-number-generator-device",))
def rng_backend_local(dom: Domain) -> Iterator[Result]:
    """An `egd` backend over TCP or UDP feeds the guest's entropy from an unauthenticated network
    peer: whoever can answer there controls the guest's randomness (keys, nonces).

    Remediation: `<backend model='random'>/dev/urandom</backend>` or `model='builtin'`.
    """
    for rng in dom.rngs:
        subject = f"rng {rng.locator}"
        where = ev(dom.origin, rng.locator + "/backend/@type", rng.backend_type)
        if rng.backend_model == "egd" and rng.backend_type in ("tcp", "udp"):
            yield fail(subject, f"egd entropy over {rng.backend_type} ({rng.source or '?'})", where)
        else:
            kind = rng.backend_model or "?"
            yield ok(subject, f"rng backend {kind}" + (f" ({rng.backend_type})" if rng.backend_type else ""),
                     ev(dom.origin, rng.locator + "/backend/@model", rng.backend_model))


@check("VMS-DOM-051", title="vTPMs are emulated with encrypted state, not host-TPM passthrough",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, Tag.ENCRYPTION, "device"),
       references=("https://libvirt.org/formatdomain.html#tpm-device",))
def tpm_backend_safe(dom: Domain) -> Iterator[Result]:
    """A passthrough TPM hands the host's TPM to the guest: it can use (and exhaust) the host's
    keys and PCRs and break the host's measured boot. An emulated TPM (swtpm) without
    `<encryption secret=…>` keeps the vTPM's keys in clear text under `/var/lib/libvirt/swtpm`.

    Remediation: `<backend type='emulator'>` with `<encryption secret='UUID'/>`.
    """
    for tpm in dom.tpms:
        subject = f"tpm {tpm.locator}"
        where = ev(dom.origin, tpm.locator + "/backend/@type", tpm.backend_type)
        if tpm.backend_type == "passthrough":
            device = tpm.device_path or '(default device)'
            yield fail(subject, f"host TPM {device} passed through to the guest",
                       where)
        elif tpm.backend_type == "emulator":
            enc = ev(dom.origin, tpm.locator + "/backend/encryption/@secret", tpm.encryption_secret)
            if tpm.encryption_secret:
                yield ok(subject, "emulated TPM with encrypted state", where, enc)
            else:
                yield fail(subject, "emulated TPM state is not encrypted", where, enc,
                           severity=Severity.MEDIUM)
        else:
            yield unknown(subject, f"TPM backend {tpm.backend_type}: its state protection is outside "
                                   "the domain XML", where)


@check("VMS-DOM-052", title="No vsock or virtio host-guest channels (inventory)",
       severity=Severity.INFO, tags=(Tag.AUDIT, "device"),
       references=("https://libvirt.org/formatdomain.html#vsock",))
def host_guest_channels(dom: Domain) -> Iterator[Result]:
    """vsock devices and virtio-serial channels are direct host-guest paths outside the virtual
    network: host services listening on AF_VSOCK or on a channel socket receive data from the
    guest and must authenticate it. This is an inventory item (the guest agent is VMS-DOM-029).

    Remediation: Keep the channels that are used; make sure host services behind them treat guest
    input as untrusted.
    """
    found = False
    for dev in dom.devices_of("vsock"):
        found = True
        yield fail(f"vsock {dev.locator}", "vsock device", ev(dom.origin, dev.locator, dev.model))
    for ch in dom.chardevs:
        if (ch.element == "channel" and ch.target_type == "virtio" and ch.type != "spicevmc"
                and ch.target_name != "org.qemu.guest_agent.0"):
            found = True
            yield fail(f"channel {ch.locator}", f"virtio channel {ch.target_name or '(unnamed)'} ({ch.type})",
                       ev(dom.origin, ch.locator + "/target/@name", ch.target_name))
    if not found:
        yield ok("host-guest channels", "no vsock device or virtio channel besides the guest agent",
                 ev(dom.origin, "devices/vsock", None))
