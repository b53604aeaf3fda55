"""Per-VM confinement: security labels, raw QEMU pass-through, the emulator binary, boot files, the
accelerator and the machine type.

Every check here judges a VM-wide property, so each yields one result per VM (PASS included):
an auditor wants "this VM is confined" confirmed, not only the exceptions listed. VMS-DOM-003 and
VMS-DOM-005 judge individual disks and labels and yield nothing when the VM has none.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.platform import effective_machine, guest_arch
from vmsec.checks.helpers.text import other_names
from vmsec.facts import Domain, Inventory, SecLabel
from vmsec.results import domain_target

__all__ = ["USER_WRITABLE_DIRS", "user_writable_dir"]

# Directories any local user can create files in (or that belong to ordinary users).
USER_WRITABLE_DIRS: tuple[str, ...] = ("/tmp", "/var/tmp", "/dev/shm", "/home", "/run/user", "/run/shm")


def user_writable_dir(path: str) -> str | None:
    """The user-writable directory that holds ``path`` (after resolving ``..``), or ``None``.

    A relative path is reported as ``"."``: libvirt would resolve it against an unknown directory.
    """
    if not path.startswith("/"):
        return "."
    norm = posixpath.normpath(path)
    if norm.startswith("//"):  # POSIX keeps a leading "//"; it names the same root
        norm = "/" + norm.lstrip("/")
    for top in USER_WRITABLE_DIRS:
        if norm == top or norm.startswith(top + "/"):
            return top
    return None


_MAC_MODELS = {"selinux", "apparmor"}


def _mac_model(label: SecLabel) -> str | None:
    """selinux, apparmor or None (DAC/none). A seclabel without @model belongs to the host's
    primary driver; guess it from the label's shape."""
    if label.model in _MAC_MODELS:
        return label.model
    if label.model is not None:
        return None
    text = label.label or label.baselabel
    if text is None:
        return None
    return "selinux" if text.count(":") >= 3 else "apparmor"


@check("VMS-DOM-001", title="VM does not opt out of MAC confinement (no seclabel type='none')",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "confinement"),
       references=("https://libvirt.org/kbase/qemu-passthrough-security.html",
                   "https://libvirt.org/formatdomain.html#security-label"))
def seclabel_not_none(dom: Domain) -> Iterator[Result]:
    """`<seclabel type='none'/>` tells libvirt not to confine this VM: QEMU runs without an sVirt
    (SELinux) or AppArmor label, so a guest that escapes into QEMU can reach every file and every
    other VM the QEMU user can. With `model='dac'` it only stops libvirt from relabelling files for
    the QEMU user, which is less severe but still removes per-VM file ownership.

    Remediation: Remove the `<seclabel type='none'>` element (or use `type='dynamic'`) so libvirt
    assigns a unique confined label; set `security_require_confined = 1` in qemu.conf.
    """
    found = False
    for label in dom.seclabels:
        if label.type != "none":
            continue
        found = True
        where = ev(dom.origin, label.locator + "/@type", label.type)
        if label.model == "dac":
            yield fail(f"seclabel {label.locator}",
                       "seclabel type='none' model='dac': libvirt does not manage file ownership "
                       "for this VM", where, severity=Severity.MEDIUM)
        else:
            model = label.model or "the host's default driver"
            yield fail(f"seclabel {label.locator}",
                       f"seclabel type='none' for {model}: QEMU runs unconfined", where)
    if not found:
        yield ok("seclabel", "no seclabel type='none': the VM does not opt out of confinement",
                 ev(dom.origin, "seclabel", "none of type 'none'"))


def _dac_part_is_root(part: str) -> bool:
    part = part.strip()
    return part.lstrip("+") == "0" or part == "root"


@check("VMS-DOM-002", title="QEMU does not run as root through a DAC seclabel",
       severity=Severity.CRITICAL, tags=(Tag.ISOLATION, Tag.ACCESS_CONTROL, "confinement"),
       references=("https://libvirt.org/kbase/qemu-passthrough-security.html",
                   "https://www.qemu.org/docs/master/system/security.html"))
def dac_label_not_root(dom: Domain) -> Iterator[Result]:
    """A DAC seclabel names the uid:gid QEMU runs as for this VM. `+0:+0` or `root:root` means
    QEMU runs with full root privileges: any device-emulation bug becomes host root. A running
    domain's live XML shows the effective DAC label, so this also catches `user = "root"` in
    qemu.conf on a live scan.

    Remediation: Remove the `<seclabel model='dac'>` label (the qemu.conf `user`/`group`, normally
    `qemu` or `libvirt-qemu`, then applies) or name an unprivileged, per-VM uid:gid.
    """
    dac = [s for s in dom.seclabels if s.model == "dac" and s.label]
    for label in dac:
        text = label.label or ""
        user, _, group = text.partition(":")
        where = ev(dom.origin, label.locator + "/label", text)
        subject = f"seclabel {label.locator}"
        if _dac_part_is_root(user):
            yield fail(subject, f"DAC label {text!r}: QEMU runs as root", where)
        elif group and _dac_part_is_root(group):
            yield fail(subject, f"DAC label {text!r}: QEMU runs with the root group", where,
                       severity=Severity.MEDIUM)
        else:
            yield ok(subject, f"DAC label {text!r} is not root", where)
    if not dac:
        yield ok("seclabel dac", "no per-VM DAC label: QEMU runs as qemu.conf's user",
                 ev(dom.origin, "seclabel[@model='dac']", None))


@check("VMS-DOM-003", title="Writable disk images are relabelled for this VM",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "confinement", "storage"),
       references=("https://libvirt.org/kbase/qemu-passthrough-security.html",
                   "https://libvirt.org/formatdomain.html#security-label"))
def writable_disks_relabelled(dom: Domain) -> Iterator[Result]:
    """With relabelling off (`relabel='no'` on a disk's `<source><seclabel>`, a static domain label
    without `relabel='yes'`, or `labelskip`), libvirt leaves the image's existing label. Images are
    then typically labelled for sharing (`svirt_image_t:s0`), which every other confined VM may
    read and write: the per-VM separation of disk contents is lost. Shareable and read-only disks
    are not judged here.

    Remediation: Use dynamic labelling and drop `relabel='no'`; give static labels `relabel='yes'`,
    or label each image with the VM's own MCS categories.
    """
    domain_off: Result | None = None
    for label in dom.seclabels:
        if _mac_model(label) is None or label.type == "none":
            continue
        if label.relabel is False or (label.type == "static" and label.relabel is None):
            state = "relabel='no'" if label.relabel is False else "static label without relabel='yes'"
            domain_off = fail("", state, ev(dom.origin, label.locator + "/@relabel", label.relabel))
        elif label.labelskip:
            domain_off = fail("", "labelskip='yes'", ev(dom.origin, label.locator + "/@labelskip", "yes"))
    for disk in dom.disks:
        if disk.readonly or disk.shareable or disk.device in ("cdrom", "floppy") or disk.source is None:
            continue
        subject = f"disk {disk.locator}"
        if disk.relabel is False:
            yield fail(subject, f"{disk.source}: relabel='no', the image keeps its existing label",
                       ev(dom.origin, disk.locator + "/source/seclabel/@relabel", "no"))
        elif disk.relabel is None and domain_off is not None:
            yield fail(subject, f"{disk.source}: the domain seclabel has {domain_off.message}, so the "
                                "image keeps its existing label", *domain_off.evidence)
        else:
            yield ok(subject, f"{disk.source} is relabelled for this VM",
                     ev(dom.origin, disk.locator + "/source/seclabel/@relabel", disk.relabel))


def _selinux_level(label: str) -> str | None:
    parts = label.split(":", 3)
    return parts[3] if len(parts) == 4 else None


@check("VMS-DOM-004", title="No two VMs share one SELinux/AppArmor label",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "confinement"),
       references=("https://libvirt.org/formatdomain.html#security-label",))
def labels_unique_across_vms(inv: Inventory, env: Environment) -> Iterator[Result]:
    """sVirt keeps VMs apart by giving each a unique MCS category pair (`s0:c12,c345`). Two VMs with
    the same static SELinux level (or the same AppArmor profile) can read and write each other's
    images and memory-backing files, so a compromise of one is a compromise of both. Labels of
    running VMs (dynamic labels in the live XML) are compared as well.

    Remediation: Prefer `type='dynamic'`; give every static label its own category pair and every
    AppArmor label its own profile.
    """
    seen: dict[tuple[str, str | None], Domain] = {}
    for dom in inv.domains:  # one entry per VM even when a collector saw it twice
        seen.setdefault((dom.name, dom.uuid), dom)
    keyed: dict[tuple[str, str], list[tuple[Domain, SecLabel]]] = {}
    for dom in seen.values():
        for label in dom.seclabels:
            model = _mac_model(label)
            if model is None or not label.label or label.type == "none":
                continue
            key = _selinux_level(label.label) if model == "selinux" else label.label
            if key is None:
                continue
            keyed.setdefault((model, key), []).append((dom, label))
    for (model, key), members in sorted(keyed.items()):
        member_names = {d.name for d, _ in members}
        names = sorted(member_names)
        for dom, label in members:
            target = domain_target(dom, env.host, env.ambiguous_names)
            where = ev(dom.origin, label.locator + "/label", label.label)
            subject = f"seclabel {label.locator}"
            others = len(member_names) - (dom.name in member_names)
            what = "MCS level" if model == "selinux" else "AppArmor label"
            if others:
                also = other_names(names, others, but=dom.name)
                yield fail(subject, f"{what} {key} is also used by {also}", where, target=target)
            else:
                yield ok(subject, f"{what} {key} is unique to this VM", where, target=target)


_UNCONFINED_APPARMOR = {"unconfined"}


def _confined_type(model: str, text: str) -> tuple[bool, str]:
    if model == "selinux":
        parts = text.split(":")
        kind = parts[2] if len(parts) >= 3 else text
        return kind.startswith("svirt_"), kind
    return text not in _UNCONFINED_APPARMOR, text


@check("VMS-DOM-005", title="The VM's security label is a confined sVirt/AppArmor type",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "confinement"),
       references=("https://libvirt.org/formatdomain.html#security-label",))
def label_type_confined(dom: Domain) -> Iterator[Result]:
    """A label or `baselabel` with an unconfined type (`unconfined_t`, `spc_t`, `virtd_t`, AppArmor
    `unconfined`) keeps the seclabel element but removes the confinement it stands for: QEMU
    runs with the rights of that type instead of the restricted `svirt_t` domain.

    Remediation: Drop the custom label/baselabel, or use an `svirt_*` type (`svirt_t`,
    `svirt_tcg_t`) or a libvirt-generated AppArmor profile.
    """
    for label in dom.seclabels:
        model = _mac_model(label)
        if model is None or label.type == "none":
            continue
        for field, text in (("baselabel", label.baselabel), ("label", label.label)):
            if not text:
                continue
            confined, kind = _confined_type(model, text)
            where = ev(dom.origin, f"{label.locator}/{field}", text)
            subject = f"seclabel {label.locator}/{field}"
            if confined:
                yield ok(subject, f"{model} {field} type {kind} is confined", where)
            else:
                yield fail(subject, f"{model} {field} type {kind} is not a confined VM type", where)


# Options whose presence in raw QEMU arguments opens the host or the guest to the network, or
# turns protections off. Values are matched case-insensitively.
_NET_VALUE = re.compile(r"(^|[,:=])(tcp|telnet|udp|websocket)[:,=]|host=|^(tcp|telnet|udp)", re.I)


def _dangerous(opt: str, value: str) -> bool:
    low = value.lower()
    net = bool(_NET_VALUE.search(value))
    if opt in ("-monitor", "-qmp", "-qmp-pretty", "-serial", "-parallel", "-gdb", "-incoming"):
        return net
    rules = {
        "-chardev": low.startswith(("socket", "udp")) and "host=" in low,
        "-sandbox": low.split(",")[0] in ("off", "0", "no", "false"),
        "-drive": "file=" in low,
        "-blockdev": "filename" in low,
        "-device": "ivshmem" in low,
        "-vnc": "tls" not in low and not low.startswith(("unix:", "none")),
    }
    return rules.get(opt, False)


def _dangerous_args(args: tuple[str, ...]) -> list[str]:
    """The argument pairs that make raw pass-through critical, described for the message."""
    tokens: list[str] = []
    for arg in args:  # tolerate "-opt value" written as one qemu:arg
        tokens.extend(arg.split(None, 1) if arg.startswith("-") else [arg])
    found: list[str] = []
    for i, raw in enumerate(tokens):
        if not raw.startswith("-"):
            continue
        opt = "-" + raw.lstrip("-")
        value = tokens[i + 1] if i + 1 < len(tokens) else ""
        if _dangerous(opt, value):
            found.append(f"{opt} {value}")
    return found


_DANGEROUS_ENV = ("LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT")
_SHOWN_ITEMS = 40  # arguments quoted in evidence
_SHOWN_CHARS = 200  # characters kept of each quoted argument


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def _shown(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_clip(i) for i in items[:_SHOWN_ITEMS])


@check("VMS-DOM-006", title="No raw QEMU arguments bypass libvirt (qemu:commandline/override)",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, Tag.CONFIGURATION, "confinement"),
       references=("https://libvirt.org/kbase/qemu-passthrough-security.html",
                   "https://libvirt.org/drvqemu.html#pass-through-of-arbitrary-qemu-commands"))
def no_qemu_passthrough(dom: Domain) -> Iterator[Result]:
    """Arguments, environment, property overrides and capability changes given in the
    `qemu:` namespace are opaque to libvirt: it neither labels the files they name nor lets the
    seccomp/namespace setup account for them, and taints the domain (`custom-argv`). Some are
    outright dangerous: a monitor or chardev on TCP is unauthenticated host-side control,
    `-sandbox off` removes seccomp, `-drive file=` opens host files, `-device ivshmem` shares
    memory, `-vnc` without TLS is an open console, `LD_PRELOAD` injects code into QEMU.

    Remediation: Express the feature in regular domain XML (libvirt supports almost everything
    natively) and delete the `qemu:commandline`, `qemu:override` and `qemu:capabilities` elements.
    """
    q = dom.qemu
    if q is None or not (q.args or q.env or q.capabilities or q.override):
        yield ok("qemu namespace", "no qemu:commandline, qemu:override or qemu:capabilities",
                 ev(dom.origin, "qemu:commandline", None))
        return
    evidence = []
    parts = []
    if q.args:
        evidence.append(ev(dom.origin, "qemu:commandline/qemu:arg", _shown(q.args)))
        parts.append(f"{len(q.args)} qemu:arg")
    if q.env:
        evidence.append(ev(dom.origin, "qemu:commandline/qemu:env", _shown(q.env)))
        parts.append(f"{len(q.env)} qemu:env")
    if q.capabilities:
        evidence.append(ev(dom.origin, "qemu:capabilities", _shown(q.capabilities)))
        parts.append("qemu:capabilities")
    if q.override:
        evidence.append(ev(dom.origin, "qemu:override", "present"))
        parts.append("qemu:override")
    bad = _dangerous_args(q.args)
    bad += [e for e in q.env if e.split("=", 1)[0].strip().upper() in _DANGEROUS_ENV]
    if bad:
        shown = "; ".join(_clip(b) for b in bad[:5]) + (" …" if len(bad) > 5 else "")
        yield fail("qemu namespace", f"raw QEMU pass-through ({', '.join(parts)}) includes {shown}",
                   *evidence, severity=Severity.CRITICAL)
    else:
        yield fail("qemu namespace", f"raw QEMU pass-through: {', '.join(parts)}", *evidence)


# Where distributions install QEMU. A path elsewhere is a local build nobody patches, or worse.
_EMULATOR_DIRS = ("/usr/bin/", "/usr/libexec/", "/usr/lib/qemu/", "/usr/lib64/qemu/", "/bin/",
                  "/usr/sbin/", "/nix/store/", "/run/current-system/")
_EMULATOR_NAME = re.compile(r"^(qemu-system-[a-z0-9_]+|qemu-kvm|kvm|kvm-spice|qemu)$")


@check("VMS-DOM-007", title="The emulator is a distribution-packaged QEMU binary",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, Tag.PATCHING, "confinement"),
       references=("https://libvirt.org/formatdomain.html#devices",))
def emulator_packaged(dom: Domain) -> Iterator[Result]:
    """`<emulator>` names the binary libvirt starts for this VM. A binary in a user-writable
    directory lets any local user run code in every QEMU process of the VM (with its access to
    the disks and the guest); a binary outside the distribution's paths is a local build that the
    host's package updates do not patch.

    Remediation: Point `<emulator>` at the packaged binary (`/usr/bin/qemu-system-x86_64`,
    `/usr/libexec/qemu-kvm`) or remove the element so libvirt chooses one.
    """
    path = dom.emulator
    where = ev(dom.origin, "devices/emulator", path)
    if path is None:
        yield ok("emulator", "no <emulator>: libvirt picks the host's QEMU binary", where)
        return
    norm = posixpath.normpath(path) if path.startswith("/") else path
    writable = user_writable_dir(path)
    name = posixpath.basename(norm)
    if writable is not None:
        where_text = "a relative path" if writable == "." else f"under {writable}"
        yield fail("emulator", f"emulator {path} is {where_text}", where)
    elif not norm.startswith(_EMULATOR_DIRS):
        yield fail("emulator", f"emulator {path} is outside the distribution's QEMU paths", where,
                   severity=Severity.MEDIUM)
    elif not _EMULATOR_NAME.fullmatch(name) and not norm.startswith(("/nix/store/", "/run/current-system/")):
        yield fail("emulator", f"emulator {path} is not a QEMU binary name", where,
                   severity=Severity.MEDIUM)
    else:
        yield ok("emulator", f"emulator {path} is a standard QEMU path", where)


@check("VMS-DOM-008", title="Kernel, initrd, DTB, firmware and NVRAM are not in user-writable dirs",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "confinement", "boot"),
       references=("https://libvirt.org/formatdomain.html#operating-system-booting",))
def boot_files_protected(dom: Domain) -> Iterator[Result]:
    """A direct-boot kernel, initrd or device tree, a firmware loader or an NVRAM store in `/tmp`,
    `/home` or another user-writable place can be replaced by a local user: code then runs in the
    guest (kernel, initrd), or in the guest firmware before any OS protection (loader, NVRAM).

    A network-backed NVRAM (`<nvram type='network'>`) or a boot file given as an URL is not a host
    path and is not judged here.

    Remediation: Keep boot files under root-owned directories (`/var/lib/libvirt/boot`,
    `/usr/share/OVMF`, `/var/lib/libvirt/qemu/nvram`).
    """
    fw = dom.firmware
    items = (("kernel", "os/kernel", fw.kernel), ("initrd", "os/initrd", fw.initrd),
             ("dtb", "os/dtb", fw.dtb), ("loader", "os/loader", fw.loader), ("nvram", "os/nvram", fw.nvram))
    bad = []
    seen = []
    remote: list[str] = []
    for what, locator, path in items:
        if not path:
            continue
        if (what == "nvram" and fw.nvram_type == "network") or "://" in path:
            # A network volume (iSCSI, NBD, an URL) is not a path on this host.
            seen.append(ev(dom.origin, locator + ("/source" if what == "nvram" else ""), path))
            remote.append(f"{what} {path}")
            continue
        seen.append(ev(dom.origin, locator, path))
        top = user_writable_dir(path)
        if top is not None:
            where_text = "a relative path" if top == "." else f"under {top}"
            bad.append((f"{what} {path} is {where_text}", ev(dom.origin, locator, path)))
    if bad:
        yield fail("boot files", "; ".join(m for m, _ in bad), *(e for _, e in bad))
    else:
        text = "boot files are in protected directories" if len(seen) > len(remote) else (
            "no boot file is a host path" if remote else "no boot files named")
        if remote:
            text += f" ({'; '.join(remote)} on the network, not a host path)"
        yield ok("boot files", text, *seen)


_HW_ACCEL = {"kvm", "hvf", "whpx", "nvmm", "xen"}
_QEMU_DRIVER_TYPES = _HW_ACCEL | {"qemu"}
_TCG_ARG = re.compile(r"(^|[,=])tcg(,|$)|^accel=tcg", re.I)


def _forces_tcg(args: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if arg.lstrip("-") in ("accel", "machine", "M") and _TCG_ARG.search(nxt):
            return _clip(f"{arg} {nxt}")
        if arg.startswith("-") and "accel=tcg" in arg:
            return _clip(arg)
    return None


@check("VMS-DOM-009", title="The VM uses hardware virtualization (KVM), not TCG emulation",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "confinement"),
       references=("https://www.qemu.org/docs/master/system/security.html",))
def hardware_accelerated(dom: Domain) -> Iterator[Result]:
    """`<domain type='qemu'>` runs the guest under TCG, QEMU's instruction emulator. QEMU's security
    policy only covers the virtualization use case (KVM, HVF, …): under TCG a guest escape is not
    treated as a security bug, so a hostile guest must not run this way.

    Remediation: Use `<domain type='kvm'>` on a host with VT-x/AMD-V and `/dev/kvm`.
    """
    kind = dom.virt_type
    where = ev(dom.origin, "@type", kind)
    if kind is None:
        yield unknown("virt type", "the domain XML has no type attribute", where)
        return
    if kind not in _QEMU_DRIVER_TYPES:
        return  # another driver (lxc, test, …): not a QEMU guest
    tcg = _forces_tcg(dom.qemu.args) if dom.qemu else None
    if kind == "qemu":
        yield fail("virt type", "domain type='qemu': the guest runs under TCG emulation", where)
    elif tcg:
        yield fail("virt type", f"domain type='{kind}' but raw QEMU arguments force TCG ({tcg})", where,
                   ev(dom.origin, "qemu:commandline/qemu:arg", tcg))
    else:
        yield ok("virt type", f"domain type='{kind}' uses hardware virtualization", where)


# QEMU's security documentation: machine types supported for the virtualization use case.
_X86 = re.compile(r"^(pc|q35|microvm|xenfv|xenpv|xenpvh|xenfv-[0-9.]+|pc-[0-9.]+|pc-i440fx-[0-9.]+"
                  r"|pc-q35-[0-9.]+|pc-i440fx-rhel[0-9.]+|pc-q35-rhel[0-9.]+)$")
_VIRT = re.compile(r"^virt(-(rhel)?[0-9.]+)?$")
_PSERIES = re.compile(r"^pseries(-(rhel)?[0-9.]+)?$")
_SUPPORTED: dict[str, re.Pattern[str]] = {
    "x86_64": _X86, "i686": _X86, "aarch64": _VIRT, "armv7l": _VIRT, "riscv64": _VIRT,
    "riscv32": _VIRT, "loongarch64": _VIRT,
    "ppc64": _PSERIES, "ppc64le": _PSERIES,
    "s390x": re.compile(r"^s390-ccw-virtio(-(rhel)?[0-9.]+)?$"),
}


@check("VMS-DOM-010", title="The machine type is one QEMU supports for secure virtualization",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "confinement"),
       references=("https://www.qemu.org/docs/master/system/security.html",))
def supported_machine_type(dom: Domain, env: Environment) -> Iterator[Result]:
    """QEMU promises guest isolation only for a short list of machine types (x86: `pc`/i440fx, `q35`,
    `microvm`, Xen; arm/riscv/loongarch: `virt`; ppc64: `pseries`; s390x: `s390-ccw-virtio`).
    Boards outside that list "should not be considered to be providing guest isolation or security
    guarantees": their device models are not hardened against a hostile guest.

    Remediation: Use a supported machine type (`q35` on x86, `virt` on Arm).
    """
    if dom.virt_type is not None and dom.virt_type not in _QEMU_DRIVER_TYPES:
        return
    guest = guest_arch(dom, env.host)
    machine, where, phrase = effective_machine(dom, guest)
    if machine is None:
        yield unknown("machine type", f"{phrase}, and the emulator's default for it is not known "
                                      f"({guest.how})", where)
        return
    arch = dom.arch or guest.arch
    patterns = [_SUPPORTED[arch]] if arch in _SUPPORTED else list(_SUPPORTED.values())
    if any(p.match(machine) for p in patterns):
        shown = phrase if dom.machine is None else f"machine type {machine}"
        yield ok("machine type", f"{shown}: supported for virtualization", where)
    elif arch is not None and arch not in _SUPPORTED:
        yield fail("machine type", f"architecture {arch} (machine {machine}) is outside QEMU's "
                                   "virtualization use case", where, ev(dom.origin, "os/type/@arch", arch))
    else:
        yield fail("machine type", f"machine type {machine} is not in QEMU's supported list"
                   + (f" for {arch}" if arch else ""), where)
