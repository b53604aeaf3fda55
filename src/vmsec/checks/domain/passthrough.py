"""Per-VM passthrough of host devices: PCI, USB, SCSI, mediated devices and host character devices.

Presence checks (VMS-DOM-071…075: "no host PCI device", "no USB passthrough" …) yield one PASS per
VM when nothing is passed through, and one FAIL per device otherwise. VMS-DOM-070 judges the DMA
isolation of PCI devices that *are* assigned, so it yields nothing for a VM without any.
"""

from __future__ import annotations

from collections.abc import Iterator

from msgspec import Struct

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.domain.confinement import user_writable_dir
from vmsec.facts import Domain, Hostdev, RedirFilterRule
from vmsec.findings import Evidence


class _PciDevice(Struct, frozen=True):
    locator: str
    address: str | None
    driver: str | None
    hostdev: Hostdev | None  # None for <interface type='hostdev'>


def _pci_devices(dom: Domain) -> list[_PciDevice]:
    out = [_PciDevice(h.locator, h.address, h.driver, h)
           for h in dom.hostdevs if h.mode == "subsystem" and h.type == "pci"]
    out += [_PciDevice(i.locator, i.hostdev_address, None, None)
            for i in dom.interfaces if i.type == "hostdev"]
    return out


@check("VMS-DOM-070", title="Assigned PCI devices are DMA-isolated (VFIO with an active IOMMU)",
       severity=Severity.CRITICAL, tags=(Tag.ISOLATION, "passthrough", "correlation"),
       references=("https://docs.kernel.org/driver-api/vfio.html",
                   "https://docs.openstack.org/security-guide/compute/hardening-the-virtualization-layers.html"))
def pci_passthrough_isolated(dom: Domain, env: Environment) -> Iterator[Result]:
    """A PCI device given to a guest does DMA on the guest's behalf. Only VFIO with an active IOMMU
    confines that DMA to the guest's memory: with the IOMMU off, VFIO's no-IOMMU mode, or the
    legacy KVM assignment (`driver name='kvm'`) the guest can program the device to read and
    write all host memory. Without interrupt remapping (`allow_unsafe_interrupts`) it can inject
    interrupts (MSI) into the host.

    Remediation: Enable VT-d/AMD-Vi in firmware and `intel_iommu=on` (or the AMD equivalent) on
    the kernel command line; use `<driver name='vfio'/>`; never set
    `vfio.enable_unsafe_noiommu_mode` or `vfio_iommu_type1.allow_unsafe_interrupts`.
    """
    devices = _pci_devices(dom)
    if not devices:
        return
    host = env.host
    for dev in devices:
        subject = f"hostdev {dev.locator}"
        label = dev.address or "PCI device"
        if dev.driver == "kvm":
            yield fail(subject, f"{label} uses legacy KVM device assignment (no IOMMU confinement)",
                       ev(dom.origin, dev.locator + "/driver/@name", "kvm"))
            continue
        if host is None:
            yield unknown(subject, f"{label} is assigned, but the host's IOMMU state was not collected "
                                   "(no host facts)")
            continue
        problems: list[tuple[str, Severity, Evidence]] = []
        missing: list[str] = []
        iommu = host.iommu
        if iommu is None or iommu.group_count is None:
            missing.append("IOMMU groups")
        elif iommu.group_count == 0:
            problems.append(("the kernel IOMMU is off (no IOMMU groups)", Severity.CRITICAL,
                             ev("/sys/kernel/iommu_groups", "count", 0)))
        if host.module_params is None:
            missing.append("VFIO module parameters")
        else:
            # A loaded module whose switch could not be read is unknown, not "off".
            missing += [f"{m}.{param}" for m, param in (("vfio", "enable_unsafe_noiommu_mode"),
                                                          ("vfio_iommu_type1", "allow_unsafe_interrupts"))
                        if host.module_param_unread(m, param)]
            noiommu = host.module_param("vfio", "enable_unsafe_noiommu_mode")
            if noiommu is not None and noiommu.strip().upper() in ("Y", "1"):
                problems.append(("VFIO no-IOMMU mode is enabled", Severity.CRITICAL,
                                 ev("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "", noiommu)))
            unsafe = host.module_param("vfio_iommu_type1", "allow_unsafe_interrupts")
            if unsafe is not None and unsafe.strip().upper() in ("Y", "1"):
                problems.append(("VFIO allows unsafe interrupts (no interrupt remapping)", Severity.HIGH,
                                 ev("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "",
                                    unsafe)))
        if problems:
            worst = max((p[1] for p in problems), key=lambda s: s.rank)
            yield fail(subject, f"{label} is assigned while " + "; ".join(p[0] for p in problems),
                       *(p[2] for p in problems), severity=worst)
        elif missing:
            yield unknown(subject, f"{label} is assigned; could not read the host's {' and '.join(missing)}")
        else:
            yield ok(subject, f"{label} is assigned through VFIO with the IOMMU on",
                     ev("/sys/kernel/iommu_groups", "count", iommu.group_count if iommu else None))


@check("VMS-DOM-071", title="No host PCI device is passed through",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "passthrough"),
       references=("https://docs.openstack.org/security-guide/compute/hardening-the-virtualization-layers.html",
                   "https://csrc.nist.gov/pubs/sp/800/125/a/r1/final"))
def no_pci_passthrough(dom: Domain) -> Iterator[Result]:
    """A guest that owns a physical device can rewrite its firmware ("hardware infection") so that
    it attacks the next tenant or the host, and its device bugs are outside QEMU's control. A
    `<rom file=…>` the guest boots from in a user-writable directory lets a local user replace
    the option ROM.

    Remediation: Avoid passthrough on multi-tenant hosts, or use SR-IOV virtual functions, reset or
    reflash devices between tenants, set `<rom bar='off'/>` unless needed, and keep ROM files in
    root-owned directories.
    """
    devices = _pci_devices(dom)
    for dev in devices:
        subject = f"hostdev {dev.locator}"
        where = ev(dom.origin, dev.locator + "/source/address", dev.address)
        rom = dev.hostdev.rom_file if dev.hostdev else None
        top = user_writable_dir(rom) if rom else None
        if rom and top is not None:
            yield fail(subject, f"PCI device {dev.address or ''} with option ROM {rom} in a user-writable "
                                "place", where, ev(dom.origin, dev.locator + "/rom/@file", rom),
                       severity=Severity.HIGH)
        else:
            extra = f" (option ROM {rom})" if rom else ""
            yield fail(subject, f"host PCI device {dev.address or '(unknown address)'} passed through{extra}",
                       where)
    if not devices:
        yield ok("pci passthrough", "no host PCI device passed through",
                 ev(dom.origin, "devices/hostdev[@type='pci']", None))


_WILDCARD = {None, "-1"}


def _catch_all(rule: RedirFilterRule) -> bool:
    return all(v in _WILDCARD for v in (rule.usb_class, rule.vendor, rule.product, rule.version))


def _filter_denies_by_default(rules: tuple[RedirFilterRule, ...] | None) -> bool:
    """True when the filter ends with a catch-all deny and no catch-all allow comes before it."""
    if not rules:
        return False
    for rule in rules:
        if _catch_all(rule):
            return not rule.allow
    return False


@check("VMS-DOM-072", title="No USB passthrough or unfiltered USB redirection",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "passthrough"),
       references=("https://libvirt.org/formatdomain.html#redirected-devices",
                   "https://libvirt.org/formatdomain.html#usb-pci-scsi-devices"))
def usb_passthrough_controlled(dom: Domain) -> Iterator[Result]:
    """A host USB device given to a guest exposes the host's device (and its firmware) to the guest.
    USB redirection lets the *console client* plug arbitrary, possibly malicious USB devices
    into the guest's USB emulation; without a `<redirfilter>` ending in a catch-all deny any device
    class is accepted. `redirdev type='tcp'` accepts a USB device stream from the network with
    no authentication at all.

    Remediation: Remove USB hostdevs where possible; add a `<redirfilter>` that allows only the
    needed classes and ends with `<usbdev allow='no'/>`; never use `type='tcp'` redirection.
    """
    found = False
    for hd in dom.hostdevs:
        if hd.type == "usb":
            found = True
            yield fail(f"hostdev {hd.locator}", f"host USB device {hd.address or '(unknown)'} passed through",
                       ev(dom.origin, hd.locator + "/source", hd.address))
    filtered = _filter_denies_by_default(dom.redirfilter)
    filter_ev = ev(dom.origin, "devices/redirfilter",
                   None if dom.redirfilter is None else f"{len(dom.redirfilter)} rule(s)")
    for rd in dom.redirdevs:
        found = True
        subject = f"redirdev {rd.locator}"
        if rd.type == "tcp":
            yield fail(subject, f"USB redirection over TCP from {rd.host or '?'}:{rd.port or '?'}",
                       ev(dom.origin, rd.locator + "/@type", "tcp"), severity=Severity.HIGH)
        elif filtered:
            yield ok(subject, f"USB redirection ({rd.type}) restricted by a redirfilter ending in deny",
                     filter_ev)
        else:
            why = ("no redirfilter" if dom.redirfilter is None
                   else "the redirfilter does not end in a catch-all deny")
            yield fail(subject, f"USB redirection ({rd.type}) accepts any device: {why}",
                       ev(dom.origin, rd.locator + "/@type", rd.type), filter_ev)
    if not found:
        yield ok("usb passthrough", "no USB hostdev or USB redirection",
                 ev(dom.origin, "devices/redirdev", None))


@check("VMS-DOM-073", title="No raw SCSI access to host devices (rawio, unfiltered SG_IO, SCSI hostdev)",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "passthrough"),
       references=("https://libvirt.org/formatdomain.html#hard-drives-floppy-disks-cdroms",))
def no_raw_scsi(dom: Domain) -> Iterator[Result]:
    """`<disk device='lun'>` passes SCSI commands from the guest to a host device. `rawio='yes'`
    gives QEMU CAP_SYS_RAWIO for the whole process, and `sgio='unfiltered'` lets the guest send
    any command (firmware download, vendor-specific, persistent reservations) to the device. A
    SCSI hostdev hands a host SCSI device to the guest outright.

    Remediation: Use `device='disk'`; if `lun` is needed keep `sgio='filtered'` and no `rawio`;
    avoid SCSI hostdevs.
    """
    found = False
    for disk in dom.disks:
        if disk.device != "lun":
            continue
        found = True
        subject = f"disk {disk.locator}"
        bad = []
        if disk.rawio:
            bad.append("rawio='yes' (CAP_SYS_RAWIO for QEMU)")
        if disk.sgio == "unfiltered":
            bad.append("sgio='unfiltered'")
        lun_ev = (ev(dom.origin, disk.locator + "/@rawio", disk.rawio),
                  ev(dom.origin, disk.locator + "/@sgio", disk.sgio))
        if bad:
            yield fail(subject, f"lun {disk.source or ''}: {', '.join(bad)}", *lun_ev)
        else:
            yield ok(subject, f"lun {disk.source or ''} with filtered SCSI commands and no rawio", *lun_ev)
    for hd in dom.hostdevs:
        if hd.type not in ("scsi", "scsi_host"):
            continue
        found = True
        subject = f"hostdev {hd.locator}"
        where = ev(dom.origin, hd.locator + "/@type", hd.type)
        if hd.rawio or hd.sgio == "unfiltered":
            flags = ", ".join(f for f, on in (("rawio='yes'", hd.rawio),
                                              ("sgio='unfiltered'", hd.sgio == "unfiltered")) if on)
            yield fail(subject, f"SCSI hostdev {hd.address or ''} with {flags}", where)
        else:
            kind = "vhost-scsi target" if hd.type == "scsi_host" else "SCSI device"
            yield fail(subject, f"host {kind} {hd.address or '(unknown)'} passed through", where,
                       severity=Severity.MEDIUM)
    if not found:
        yield ok("scsi passthrough", "no lun disk or SCSI hostdev",
                 ev(dom.origin, "devices/disk[@device='lun']", None))


@check("VMS-DOM-074", title="No host character devices passed to the guest",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "passthrough"),
       references=("https://libvirt.org/formatdomain.html#host-interface",))
def no_host_chardevs(dom: Domain) -> Iterator[Result]:
    """A serial, parallel or console device of `type='dev'` connects the guest to a host device node
    (`/dev/ttyS0`, `/dev/parport0`): the guest can talk to whatever is attached to it and reach
    the host kernel driver directly.

    Remediation: Remove the device, or use a `pty`/`unix` chardev.
    """
    found = False
    for ch in dom.chardevs:
        if ch.type == "dev":
            found = True
            yield fail(f"{ch.element} {ch.locator}", f"host device {ch.source_path or '?'} as {ch.element}",
                       ev(dom.origin, ch.locator + "/source/@path", ch.source_path))
    if not found:
        yield ok("host chardevs", "no character device of type='dev'",
                 ev(dom.origin, "devices/serial[@type='dev']", None))


@check("VMS-DOM-075", title="No mediated devices (vGPU, vfio-ap, vfio-ccw)",
       severity=Severity.LOW, tags=(Tag.ISOLATION, Tag.PATCHING, "passthrough"),
       references=("https://libvirt.org/drvnodedev.html#mediated-devices-mdevs",))
def no_mediated_devices(dom: Domain) -> Iterator[Result]:
    """A mediated device (vGPU slice, vfio-ap crypto queue, vfio-ccw subchannel) is shared hardware
    whose isolation is implemented by the vendor's host driver: its bugs are guest-to-host and
    cross-tenant paths, so the driver must be patched like the kernel.

    Remediation: Keep vendor mdev drivers patched; inventory which VMs share a physical device.
    """
    found = False
    for hd in dom.hostdevs:
        if hd.type == "mdev":
            found = True
            yield fail(f"hostdev {hd.locator}", f"mediated device {hd.address or ''}".strip(),
                       ev(dom.origin, hd.locator + "/source/address/@uuid", hd.address))
    if not found:
        yield ok("mdev", "no mediated device", ev(dom.origin, "devices/hostdev[@type='mdev']", None))
