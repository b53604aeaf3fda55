"""qemu.conf: how the QEMU driver confines each QEMU process (user, MAC labels, seccomp, mount
namespace, device cgroup), and what it lets guest memory leak into (core dumps, dump directories).

``host.qemu_conf`` is ``None`` when the QEMU driver is not installed or was not collected: the
checks then yield nothing. A ``ConfigFile`` whose settings cannot be read gives UNKNOWN.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.config import qemu_conf, qemu_settings, sev, show, unreadable, where
from vmsec.facts import ConfigFile, Host, Setting

QEMU_CONF_DOC = "https://libvirt.org/drvqemu.html"
PASSTHRU_DOC = "https://libvirt.org/kbase/qemu-passthrough-security.html"
QEMU_SECURITY = "https://www.qemu.org/docs/master/system/security.html"


def flag(s: Setting) -> bool | None:
    return s.as_bool()


def _is_root(value: str | None) -> bool:
    """Whether libvirt's virGetUserID/virGetGroupID give id 0 for ``value``: the name root, or — for a
    name no account has, and always after a "+" — a number as strtoul() reads it ("0", "00", "+000",
    " 0", "-0"). Another name that is id 0 on the host (a second root account) is not seen here."""
    if value is None:
        return False
    if value == "root":
        return True
    number = value[1:] if value.startswith("+") else value
    return re.fullmatch(r"[ \t\n\v\f\r]*[+-]?0+", number) is not None


def _build_default_user(host: Host) -> str | None:
    """The QEMU user compiled into the distribution's libvirt, when qemu.conf does not set one."""
    managers = {p.manager for p in host.packages or () if p.name.startswith("libvirt")}
    if managers == {"dpkg"}:
        return "libvirt-qemu"
    if managers == {"rpm"}:
        return "qemu"
    return None


@check("VMS-QEMU-001", title="QEMU processes do not run as root", severity=Severity.CRITICAL,
       tags=(Tag.ISOLATION, Tag.ACCESS_CONTROL, "qemu", "privileges"),
       references=(QEMU_SECURITY, PASSTHRU_DOC))
def qemu_not_root(host: Host) -> Iterator[Result]:
    """QEMU parses everything the guest sends to its emulated devices. A guest that exploits a
    device bug runs code as QEMU's user; as root ("poses a huge security risk", says QEMU), that is
    the whole host. Group root grants root-group files the same way.

    Remediation: Remove `user = "root"` / `group = "root"` from qemu.conf so that the distribution's
    unprivileged account (qemu, libvirt-qemu) applies.
    """
    conf = qemu_conf(host)
    for key, severity in (("user", Severity.CRITICAL), ("group", Severity.HIGH)):
        subject = f"qemu.conf {key}"
        s = conf.setting(key)
        if s is None:
            yield unreadable(conf, subject)
            continue
        value = s.as_str()
        if value is None and not s.explicit:
            built = _build_default_user(host)
            if built is None:
                yield unknown(subject, f"qemu.conf does not set {key}; the compiled-in default depends "
                              "on the build (root unless the distribution chose an account)", sev(s))
            else:
                yield ok(subject, f"qemu.conf does not set {key}; this distribution's build uses "
                         f"{built}", sev(s))
        elif _is_root(value):
            yield fail(subject, f"{key} = {show(s.value)} {where(s)}: QEMU runs with root "
                       f"{'privileges' if key == 'user' else 'group access'}, so a guest escape "
                       "into QEMU is a host compromise", sev(s), severity=severity)
        elif value is None:
            yield unknown(subject, f"{key} = {show(s.value)} {where(s)} is not a name", sev(s))
        else:
            yield ok(subject, f"{key} = {show(s.value)} {where(s)}", sev(s))


_MAC_MODELS = frozenset({"selinux", "apparmor"})


@check("VMS-QEMU-002", title="A mandatory access control driver (SELinux/AppArmor) confines QEMU",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "qemu", "svirt"),
       references=(PASSTHRU_DOC, "https://libvirt.org/drvqemu.html#driver-security-architecture"))
def security_driver(host: Host, env: Environment) -> Iterator[Result]:
    """sVirt gives each QEMU its own SELinux (MCS) or AppArmor label, so a compromised QEMU can only
    touch its own VM's files. `security_driver = "none"` turns that off for every VM.

    Remediation: Remove `security_driver = "none"` (or set "selinux" / "apparmor") and keep the host's
    SELinux enforcing or AppArmor enabled.
    """
    subject = "qemu.conf security_driver"
    (s,) = qemu_settings(host, "security_driver", subject=subject)
    drivers = s.as_list() if isinstance(s.value, tuple) else ((s.as_str(),) if s.as_str() else ())
    if s.explicit and (not drivers or set(drivers) <= {"none"}):
        yield fail(subject, f"security_driver = {show(s.value)} {where(s)}: QEMU processes run "
                   "without SELinux/AppArmor confinement", sev(s))
        return
    if drivers and set(drivers) & _MAC_MODELS:
        yield ok(subject, f"security_driver = {show(s.value)} {where(s)}", sev(s))
        return
    # Unset: libvirt uses whichever LSM is active. Running domains' live labels show the outcome.
    running = [d for d in env.inventory.domains if d.state == "running" and d.seclabels]
    models = {lab.model for d in running for lab in d.seclabels if lab.type != "none"}
    if models & _MAC_MODELS:
        yield ok(subject, f"security_driver is not set and running domains carry "
                 f"{'/'.join(sorted(m for m in models if m in _MAC_MODELS))} labels", sev(s))
    elif running:
        yield fail(subject, f"security_driver is not set and running domains carry only "
                   f"{', '.join(sorted(m or 'default' for m in models)) or 'no'} labels: no "
                   "SELinux/AppArmor driver is active", sev(s),
                   ev(running[0].origin, "seclabel/@model", sorted(m or "" for m in models)))
    else:
        yield unknown(subject, "security_driver is not set, so libvirt uses the host's active LSM; "
                      "whether SELinux or AppArmor is active was not observed", sev(s))


@check("VMS-QEMU-003", title="VMs are confined by default and unconfined VMs are refused",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "qemu", "svirt"),
       references=(PASSTHRU_DOC,))
def confined_by_default(host: Host) -> Iterator[Result]:
    """`security_default_confined = 0` starts every VM without a security label unless its XML asks
    for one (high). `security_require_confined = 1` additionally refuses to start a VM whose XML
    says `<seclabel type='none'/>`; without it, one domain definition can opt out (low).

    Remediation: Keep `security_default_confined = 1` and set `security_require_confined = 1`.
    """
    conf = qemu_conf(host)
    for key, good, severity, harm in (
            ("security_default_confined", True, Severity.HIGH,
             "new VMs start without an SELinux/AppArmor label"),
            ("security_require_confined", True, Severity.LOW,
             "a domain can opt out of confinement with <seclabel type='none'/>")):
        subject = f"qemu.conf {key}"
        s = conf.setting(key)
        if s is None:
            yield unreadable(conf, subject)
            continue
        value = flag(s)
        if value is None:
            yield unknown(subject, f"{key} = {show(s.value)} {where(s)} is not 0 or 1", sev(s))
        elif value == good:
            yield ok(subject, f"{key} = {show(s.value)} {where(s)}", sev(s))
        else:
            yield fail(subject, f"{key} = {show(s.value)} {where(s)}: {harm}", sev(s),
                       severity=severity)


@check("VMS-QEMU-004", title="QEMU runs under its seccomp sandbox", severity=Severity.HIGH,
       tags=(Tag.ISOLATION, "qemu", "seccomp"),
       references=(PASSTHRU_DOC, "https://www.qemu.org/docs/master/system/invocation.html"))
def seccomp_sandbox(host: Host) -> Iterator[Result]:
    """libvirt starts QEMU with `-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,
    resourcecontrol=deny`, so a compromised QEMU cannot run programs, gain privileges or use obsolete
    system calls. `seccomp_sandbox = 0` removes that filter.

    Remediation: Remove `seccomp_sandbox = 0` (the default is 1).
    """
    (s,) = qemu_settings(host, "seccomp_sandbox", subject="qemu.conf seccomp_sandbox")
    if s.value == 0:
        yield fail("qemu.conf seccomp_sandbox", f"seccomp_sandbox = 0 {where(s)}: QEMU can make "
                   "every system call, including spawning programs", sev(s))
    else:
        yield ok("qemu.conf seccomp_sandbox", f"seccomp_sandbox = {show(s.value)} {where(s)}", sev(s))


@check("VMS-QEMU-005", title="QEMU runs in a private mount namespace", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "qemu", "namespaces"), references=(PASSTHRU_DOC,))
def mount_namespace(host: Host) -> Iterator[Result]:
    """With the default `namespaces = [ "mount" ]`, each QEMU gets a private /dev holding only the
    device nodes its VM needs. `namespaces = []` exposes the fully populated host /dev to QEMU.

    Remediation: Remove `namespaces = []` (the default is `[ "mount" ]`).
    """
    (s,) = qemu_settings(host, "namespaces", subject="qemu.conf namespaces")
    spaces = s.as_list()
    if spaces is not None and "mount" not in spaces:
        yield fail("qemu.conf namespaces", f"namespaces = {show(s.value)} {where(s)}: QEMU sees the "
                   "host's full /dev", sev(s))
    elif spaces is None:
        yield unknown("qemu.conf namespaces", f"namespaces = {show(s.value)} {where(s)} is not a list",
                      sev(s))
    else:
        yield ok("qemu.conf namespaces", f"namespaces = {show(s.value)} {where(s)}", sev(s))


# libvirt's own list, plus nodes earlier releases or the docs add; none of them grants host data.
_DEFAULT_ACL = frozenset({"/dev/null", "/dev/full", "/dev/zero", "/dev/random", "/dev/urandom",
                          "/dev/ptmx", "/dev/kvm", "/dev/userfaultfd", "/dev/rtc", "/dev/hpet",
                          "/dev/sev", "/dev/vfio/vfio"})
# Entries that hand QEMU host memory, disks, assigned devices or input devices.
_DANGEROUS_ACL = ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/sd*", "/dev/hd*", "/dev/vd*",
                  "/dev/xvd*", "/dev/nvme*", "/dev/dm-*", "/dev/mapper/*", "/dev/disk/*", "/dev/md*",
                  "/dev/loop*", "/dev/vfio/*", "/dev/input/*", "/dev/bus/usb*", "/dev/mtd*", "/dev/sg*")


@check("VMS-QEMU-006", title="The per-VM device cgroup keeps libvirt's default allow-list",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "qemu", "cgroups"),
       references=(PASSTHRU_DOC, QEMU_CONF_DOC))
def cgroup_device_acl(host: Host) -> Iterator[Result]:
    """The devices cgroup lets each QEMU open only the block and character devices its own VM uses.
    Extending `cgroup_device_acl` grants a node to every VM (high for host disks, /dev/mem, VFIO
    groups or input devices); dropping "devices" from `cgroup_controllers` removes the filter.

    Remediation: Restore the default `cgroup_device_acl`; give devices to a single VM through its
    XML (disk, hostdev) instead; keep "devices" in `cgroup_controllers` (or leave it unset).
    """
    acl, controllers = qemu_settings(host, "cgroup_device_acl", "cgroup_controllers",
                                     subject="qemu.conf cgroup_device_acl")
    entries = acl.as_list()
    subject = "qemu.conf cgroup_device_acl"
    if not acl.explicit or entries is None:
        yield ok(subject, "cgroup_device_acl is libvirt's default", sev(acl))
    else:
        extra = [e for e in entries if e not in _DEFAULT_ACL]
        risky = [e for e in extra if any(fnmatch.fnmatch(e, p) for p in _DANGEROUS_ACL)]
        if risky:
            yield fail(subject, f"cgroup_device_acl {where(acl)} lets every VM open "
                       f"{', '.join(risky[:6])}: host memory, disks or assigned devices", sev(acl),
                       severity=Severity.HIGH)
        elif extra:
            yield fail(subject, f"cgroup_device_acl {where(acl)} adds {', '.join(extra[:6])} "
                       "beyond libvirt's defaults for every VM", sev(acl))
        else:
            yield ok(subject, f"cgroup_device_acl {where(acl)} adds nothing beyond the defaults",
                     sev(acl))
    subject = "qemu.conf cgroup_controllers"
    listed = controllers.as_list()
    if controllers.explicit and listed is not None and "devices" not in listed:
        yield fail(subject, f"cgroup_controllers = {show(controllers.value)} {where(controllers)} "
                   "omits \"devices\": QEMU may open any device node", sev(controllers),
                   severity=Severity.HIGH)
    else:
        yield ok(subject, f"cgroup_controllers = {show(controllers.value)} {where(controllers)}",
                 sev(controllers))


@check("VMS-QEMU-007", title="The QEMU driver manages image ownership dynamically",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "qemu", "dac"),
       references=(QEMU_CONF_DOC,))
def dynamic_ownership(host: Host) -> Iterator[Result]:
    """With `dynamic_ownership = 1`, libvirt gives each VM's images to the QEMU user only while the VM
    runs. Turned off, administrators make images permanently readable by the QEMU user (often by
    every VM). `remember_owner = 0` leaves images owned by QEMU after the VM stops (low).

    Remediation: Keep `dynamic_ownership = 1` and `remember_owner = 1` (the defaults).
    """
    conf = qemu_conf(host)
    for key, severity, harm in (
            ("dynamic_ownership", Severity.MEDIUM,
             "images must be made readable by the QEMU user permanently, for every VM"),
            ("remember_owner", Severity.LOW,
             "images stay owned by the QEMU user after their VM stops")):
        subject = f"qemu.conf {key}"
        s = conf.setting(key)
        if s is None:
            yield unreadable(conf, subject)
        elif s.value == 0:
            yield fail(subject, f"{key} = 0 {where(s)}: {harm}", sev(s), severity=severity)
        else:
            yield ok(subject, f"{key} = {show(s.value)} {where(s)}", sev(s))


@check("VMS-QEMU-008", title="No legacy unsafe qemu.conf switches are set",
       severity=Severity.CRITICAL, tags=(Tag.ISOLATION, "qemu", "legacy"),
       references=("https://libvirt.org/kbase/secureusage.html",))
def legacy_unsafe_keys(host: Host) -> Iterator[Result]:
    """Older libvirt had two dangerous switches, still found in copied configurations:
    `allow_disk_format_probing = 1` lets a guest write a qcow2 header into its raw disk and then read
    any host file as a backing file (critical); `clear_emulator_capabilities = 0` leaves QEMU its
    capabilities when run as root (high).

    Remediation: Delete both keys from qemu.conf; give every disk an explicit format.
    """
    conf = qemu_conf(host)
    if not conf.readable:
        yield unreadable(conf, "qemu.conf legacy keys")
        return
    for key, bad, severity, harm in (
            ("allow_disk_format_probing", 1, Severity.CRITICAL,
             "QEMU guesses image formats, so a guest can turn its raw disk into a qcow2 that reads "
             "host files"),
            ("clear_emulator_capabilities", 0, Severity.HIGH,
             "QEMU keeps its Linux capabilities")):
        subject = f"qemu.conf {key}"
        s = conf.setting(key)
        if s is None or not s.explicit:
            yield ok(subject, f"{key} is not set", ev(conf.path, key, None))
        elif s.value == bad:
            yield fail(subject, f"{key} = {show(s.value)} {where(s)}: {harm}", sev(s),
                       severity=severity)
        else:
            yield ok(subject, f"{key} = {show(s.value)} {where(s)}", sev(s))


def _simple_flag(host: Host, key: str, bad: object, harm: str) -> Iterator[Result]:
    (s,) = qemu_settings(host, key, subject=f"qemu.conf {key}")
    if s.value == bad:
        yield fail(f"qemu.conf {key}", f"{key} = {show(s.value)} {where(s)}: {harm}", sev(s))
    else:
        yield ok(f"qemu.conf {key}", f"{key} = {show(s.value)} {where(s)}", sev(s))


@check("VMS-QEMU-009", title="PCI devices behind non-ACS switches cannot be assigned",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "qemu", "passthrough", "iommu"),
       references=(QEMU_CONF_DOC, "https://docs.kernel.org/driver-api/vfio.html"))
def relaxed_acs(host: Host) -> Iterator[Result]:
    """Devices below a PCIe switch without Access Control Services can talk to each other directly,
    bypassing the IOMMU. `relaxed_acs_check = 1` lets libvirt assign such a device to a guest, which
    can then DMA to its peers (the host's or another VM's devices).

    Remediation: Remove `relaxed_acs_check = 1`; assign whole IOMMU groups only.
    """
    yield from _simple_flag(host, "relaxed_acs_check", 1,
                            "devices without ACS isolation can be assigned (peer-to-peer DMA)")


@check("VMS-QEMU-010", title="Core scheduling keeps different VMs off sibling hyperthreads",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "qemu", "smt", "side-channel"),
       references=(QEMU_CONF_DOC, "https://docs.kernel.org/admin-guide/hw-vuln/core-scheduling.html"))
def sched_core(host: Host) -> Iterator[Result]:
    """On an SMT host, vCPUs of different VMs can share a physical core and leak data through its
    shared buffers (L1TF, MDS). `sched_core = "vcpus"` (or "emulator"/"full") puts each VM in its own
    core-scheduling group, so no other process shares its hyperthreads.

    Remediation: Set `sched_core = "vcpus"` (kernel 5.14 or later), or disable SMT.
    """
    (s,) = qemu_settings(host, "sched_core", subject="qemu.conf sched_core")
    subject = "qemu.conf sched_core"
    value = s.as_str() or "none"
    if value != "none":
        yield ok(subject, f"sched_core = {show(s.value)} {where(s)}", sev(s))
    elif host.smt_control is None:
        yield unknown(subject, f"sched_core = \"none\" {where(s)}, and whether SMT is on could not "
                      "be read", sev(s))
    elif host.smt_control.strip() == "on":
        yield fail(subject, f"sched_core = \"none\" {where(s)} on a host with SMT on: vCPUs of "
                   "different VMs can share a core", sev(s),
                   ev("/sys/devices/system/cpu/smt/control", "control", "on"))
    else:
        yield ok(subject, f"sched_core = \"none\", but SMT is {host.smt_control.strip()}", sev(s),
                 ev("/sys/devices/system/cpu/smt/control", "control", host.smt_control.strip()))


@check("VMS-QEMU-011", title="QEMU output goes through virtlogd", severity=Severity.MEDIUM,
       tags=(Tag.CONFIGURATION, "qemu", "dos"), references=(QEMU_CONF_DOC,))
def stdio_handler(host: Host) -> Iterator[Result]:
    """With `stdio_handler = "file"`, QEMU writes its stdout/stderr straight to a file, so a guest
    that makes QEMU print endlessly can fill the host's filesystem. virtlogd ("logd") rotates and caps
    the logs.

    Remediation: Remove `stdio_handler = "file"` (the default is "logd").
    """
    yield from _simple_flag(host, "stdio_handler", "file",
                            "QEMU's output is unbounded, so a guest can fill the host filesystem")


@check("VMS-QEMU-012", title="The software TPM emulator does not run as root",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "qemu", "tpm", "privileges"),
       references=(QEMU_CONF_DOC,))
def swtpm_user(host: Host, env: Environment) -> Iterator[Result]:
    """swtpm emulates each VM's TPM and parses the guest's TPM commands. Running it as root turns a
    bug in that parser into host root.

    Remediation: Remove `swtpm_user = "root"` / `swtpm_group = "root"` (the default is tss).
    """
    conf = qemu_conf(host)
    emulated = any(t.backend_type == "emulator" for d in env.inventory.domains for t in d.tpms)
    for key in ("swtpm_user", "swtpm_group"):
        subject = f"qemu.conf {key}"
        s = conf.setting(key)
        if s is None:
            yield unreadable(conf, subject)
        elif s.value is None and not s.explicit:
            # The default is left out only when the host's accounts could not be read.
            db, kind = ("/etc/passwd", "account") if key == "swtpm_user" else ("/etc/group", "group")
            default = f"libvirt's default is tss, or root when no tss {kind} exists; {db} could not be read"
            if emulated:
                yield unknown(subject, f"qemu.conf does not set {key}: {default}", sev(s), ev(db))
            else:
                # Even root would do no harm here, as for the known root default below.
                yield ok(subject, f"qemu.conf does not set {key} ({default}), but no domain uses an "
                         "emulated TPM", sev(s))
        elif _is_root(s.as_str()) and not s.explicit and not emulated:
            # libvirt falls back to root only because no "tss" account exists; nothing uses swtpm.
            yield ok(subject, f"{key} defaults to root (no tss account), but no domain uses an "
                     "emulated TPM", sev(s))
        elif _is_root(s.as_str()):
            yield fail(subject, f"{key} = {show(s.value)} {where(s)}: the TPM emulator runs with "
                       "root privileges", sev(s))
        else:
            yield ok(subject, f"{key} = {show(s.value)} {where(s)}", sev(s))


def _core_limit(s: Setting) -> str | None:
    """The effective max_core, or None when dumps are disabled (0, or unset: libvirt's default)."""
    if s.value in (None, 0, "0"):
        return None
    return str(s.value)


@check("VMS-QEMU-013", title="QEMU core dumps do not include guest memory",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "qemu", "memory", "core-dump"),
       references=(QEMU_CONF_DOC,))
def guest_core_dumps(host: Host, env: Environment) -> Iterator[Result]:
    """A QEMU core dump that includes guest RAM puts the guest's keys and data into a host file.
    Dumps are off unless `max_core` is raised; then `dump_guest_core = 1` (or a domain's
    `<memory dumpCore='on'>`) includes the full guest memory.

    Remediation: Keep `dump_guest_core = 0` and leave `max_core` unset; remove `dumpCore='on'` from
    domain XML.
    """
    dump, max_core = qemu_settings(host, "dump_guest_core", "max_core",
                                   subject="qemu.conf dump_guest_core")
    limit = _core_limit(max_core)
    subject = "qemu.conf dump_guest_core"
    if dump.value == 1 and limit is not None:
        yield fail(subject, f"dump_guest_core = 1 {where(dump)} and max_core = {limit}: QEMU core "
                   "dumps contain guest memory", sev(dump), sev(max_core))
    elif dump.value == 1:
        yield ok(subject, f"dump_guest_core = 1 {where(dump)}, but max_core is 0 so no core is "
                 "written", sev(dump), sev(max_core))
    else:
        yield ok(subject, f"dump_guest_core = {show(dump.value)} {where(dump)}", sev(dump))
    for dom in env.inventory.domains:
        if dom.memory.dump_core and limit is not None:
            yield fail(f"domain {dom.name} dumpCore", f"domain {dom.name} sets <memory dumpCore='on'> "
                       f"and max_core = {limit}: its core dumps contain guest memory",
                       ev(dom.origin, "memory/@dumpCore", "on"), sev(max_core))


_DUMP_DIRS = ("/var/lib/libvirt/qemu/dump", "/var/lib/libvirt/qemu/save",
              "/var/lib/libvirt/qemu/snapshot", "/var/lib/libvirt/qemu/ram")


def _memory_dirs(conf: ConfigFile) -> tuple[str, ...]:
    dirs = list(_DUMP_DIRS)
    for key in ("auto_dump_path", "memory_backing_dir"):
        s = conf.setting(key)
        if s is not None and s.as_str():
            dirs.append(s.as_str() or "")
    return tuple(d.rstrip("/") for d in dirs if d)


def _within(path: str, dirs: tuple[str, ...]) -> bool:
    return any(path == d or path.startswith(d + "/") for d in dirs)


@check("VMS-QEMU-014", title="Saved, dumped and file-backed guest memory is private",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "qemu", "memory", "file-permissions"),
       references=(QEMU_CONF_DOC,))
def memory_dirs_private(host: Host) -> Iterator[Result]:
    """`virsh save`, `virsh dump`, automatic crash dumps, memory snapshots and file-backed guest RAM
    (`memory_backing_dir`) are cleartext copies of guest memory. If other users can read them, or
    list and open them, they get every secret in the guest.

    Remediation: `chmod 0700` these directories (owned by root or the QEMU user) and `0600` the files
    in them; keep them on encrypted storage.
    """
    conf = qemu_conf(host)
    if not conf.readable:  # the default directories are still checked below
        yield unreadable(conf, "qemu.conf auto_dump_path")
    dirs = _memory_dirs(conf)
    for st in host.sensitive_paths:
        if not _within(st.path, dirs) or st.exists is False:
            continue
        subject = f"memory path {st.path}"
        if st.exists is None or st.mode is None:
            yield unknown(subject, f"{st.path} could not be examined: {st.error or 'no mode'}")
            continue
        where_ = ev(st.path, "mode", f"{st.mode_text} {st.owner or st.uid}:{st.group or st.gid}")
        if st.mode & 0o007:
            yield fail(subject, f"{st.path} is mode {st.mode_text}: other users can reach the guest "
                       "memory it holds", where_)
        else:
            yield ok(subject, f"{st.path} is mode {st.mode_text}", where_)


@check("VMS-QEMU-015", title="Developer-only QEMU overrides are not set",
       severity=Severity.LOW, tags=(Tag.CONFIGURATION, "qemu"), references=(QEMU_CONF_DOC,))
def developer_overrides(host: Host) -> Iterator[Result]:
    """`capability_filters` hides QEMU features from libvirt and `deprecation_behavior` changes how
    QEMU treats deprecated commands. qemu.conf marks both as testing aids: "DO NOT use in
    production".

    Remediation: Remove `capability_filters` and `deprecation_behavior` from qemu.conf.
    """
    filters, deprecation = qemu_settings(host, "capability_filters", "deprecation_behavior",
                                         subject="qemu.conf capability_filters")
    if filters.explicit and filters.as_list():
        yield fail("qemu.conf capability_filters", f"capability_filters = {show(filters.value)} "
                   f"{where(filters)}: QEMU capabilities are hidden from libvirt", sev(filters))
    else:
        yield ok("qemu.conf capability_filters", "capability_filters is not set", sev(filters))
    if deprecation.explicit and deprecation.as_str() not in (None, "none"):
        yield fail("qemu.conf deprecation_behavior", f"deprecation_behavior = "
                   f"{show(deprecation.value)} {where(deprecation)}: a testing aid is active",
                   sev(deprecation))
    else:
        yield ok("qemu.conf deprecation_behavior",
                 f"deprecation_behavior = {show(deprecation.value)}", sev(deprecation))
