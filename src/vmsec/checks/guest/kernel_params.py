"""Kernel parameters set at boot from sysctl.d: network stack hardening (reverse-path filtering,
redirects, source routing, forwarding, SYN cookies) and kernel self-protection (ASLR, pointer and
log restriction, ptrace scope, link protection, core dumps of setuid programs, BPF).

The facts hold the value that wins across /etc, /run and /usr/lib sysctl.d and /etc/sysctl.conf,
as systemd-sysctl applies them. On a running system (the live host, a guest over SSH or its agent)
the kernel's own value in /proc/sys decides instead, and a configured value that differs is shown
as what changes at next boot. A key no file sets keeps the kernel's default. Where that default
is fixed in the kernel source it is used (and said so); where it depends on the kernel's build
configuration or on distribution patches (dmesg_restrict, Yama, unprivileged BPF) the result is
UNKNOWN: an offline root does not show which kernel will boot it. When a sysctl.d file or directory
could not be read (``Guest.unread["sysctl"]``), a configured value or a default may be overridden by
it: offline, only a bad value that is set is a finding; a good value or an unset key is UNKNOWN.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.unread import guest_unread, not_read, ok_unless
from vmsec.facts import Guest
from vmsec.facts.guest import SysctlValue
from vmsec.findings import Evidence

_SYSCTL_DOC = "https://docs.kernel.org/admin-guide/sysctl/kernel.html"
_NET_DOC = "https://docs.kernel.org/networking/ip-sysctl.html"


def _normalised(guest: Guest) -> Mapping[str, SysctlValue] | None:
    """The values that hold: on a running system the kernel's own (/proc/sys), each carrying the
    configured value when that differs (it changes at next boot); offline, the configuration's."""
    runtime = guest.runtime.sysctl if guest.runtime is not None else None
    if guest.sysctl is None and runtime is None:
        return None
    # keys come normalised by the parser (vmsec.parsers.system.sysctl.normalize_key), in systemd's order
    configured = dict(guest.sysctl or {})
    if runtime is None:
        return configured
    merged = dict(configured)
    for key, value in runtime.items():
        boot = _lookup(configured, key)
        differs = boot is not None and boot.value.split() != value.split()
        merged[key] = SysctlValue(value=value, origin=_proc_path(key), runtime=True,
                                  configured=boot if differs else None)
    return merged


def _proc_path(key: str) -> str:
    return "/proc/sys/" + "/".join(part.replace("/", ".") for part in key.split("."))


def _at_boot(setting: SysctlValue) -> tuple[str, tuple[Evidence, ...]]:
    """A note and evidence when the configuration sets another value than the kernel holds now."""
    boot = setting.configured
    if boot is None:
        return "", ()
    return (f"; {boot.origin} sets {boot.value}: that changes at next boot",
            (ev(boot.origin, "configured", boot.value),))


# Two names of one knob: writing net.ipv4.conf.all.forwarding sets net.ipv4.ip_forward (the kernel's
# devinet_sysctl_forward), so whichever of them systemd writes last decides.
_ALIASES = {"net.ipv4.ip_forward": ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding")}
# The range the kernel's proc_dointvec_minmax accepts: a value outside it is refused (EINVAL) and the
# kernel keeps what it had.
_RANGES = {"kernel.kptr_restrict": (0, 2), "net.core.bpf_jit_harden": (0, 2),
           "kernel.yama.ptrace_scope": (0, 3), "kernel.dmesg_restrict": (0, 1),
           "fs.protected_symlinks": (0, 1), "fs.protected_hardlinks": (0, 1), "fs.suid_dumpable": (0, 2),
           "kernel.unprivileged_bpf_disabled": (0, 2)}
_GLOB_CHARS = frozenset("*?[")


def _glob_match(pattern: str, key: str, compiled: dict[str, re.Pattern[str]]) -> bool:
    """glob(3) over /proc/sys, one path component at a time: ``*`` never crosses a dot."""
    parts, names = pattern.split("."), key.split(".")
    if len(parts) != len(names):
        return False
    for part, name in zip(parts, names, strict=True):
        if not _GLOB_CHARS.intersection(part):
            if part != name:
                return False
            continue
        rx = compiled.get(part)
        if rx is None:
            rx = compiled[part] = re.compile(fnmatch.translate(part))
        if rx.match(name) is None:
            return False
    return True


def _find(values: Mapping[str, SysctlValue], key: str) -> tuple[int, SysctlValue] | None:
    """(position, setting) systemd-sysctl leaves ``key`` with: an explicit assignment (a negative match:
    none — globs skip the key and the kernel keeps its value), else the last glob in apply order that
    matches it."""
    explicit = values.get(key)
    if explicit is not None:
        return None if explicit.excluded else (list(values).index(key), explicit)
    found = None
    compiled: dict[str, re.Pattern[str]] = {}
    for position, (pattern, value) in enumerate(values.items()):
        if not value.excluded and _GLOB_CHARS.intersection(pattern) and _glob_match(pattern, key, compiled):
            found = (position, value)
    return found


def _lookup(values: Mapping[str, SysctlValue], key: str) -> SysctlValue | None:
    hits = [hit for name in _ALIASES.get(key, (key,)) if (hit := _find(values, name)) is not None]
    return max(hits, key=lambda hit: hit[0])[1] if hits else None


_KERNEL_INT = re.compile(r"(-?[0-9]+)(?:[ \t\n].*)?", re.DOTALL)


def _int(text: str) -> int | None:
    """The number the kernel's proc_dointvec takes from the written value: ASCII digits with an
    optional minus, then the end or a blank — ``+1``, ``0_0``, ``0\\v`` or ``١`` are refused (EINVAL)."""
    match = _KERNEL_INT.fullmatch(text)
    return int(match.group(1)) if match else None


def _judge(guest: Guest, keys: tuple[str, ...], good: Callable[[int], bool], *,
           default: int | None, bad: str, default_note: str = "") -> Iterator[Result]:
    """One result per key. ``default`` is the kernel's fixed default, None when it varies."""
    values = _normalised(guest)
    if values is None:
        yield unknown(keys[0], "the sysctl configuration could not be read")
        return
    running = guest.runtime.sysctl if guest.runtime is not None else None
    # Offline the configuration decides, and an unread file of it may set any key (last one wins).
    unread = guest_unread(guest, "sysctl") if running is None else ()
    for key in keys:
        setting = _lookup(values, key)
        if running is not None and (setting is None or not setting.runtime):
            yield unknown(key, f"the running kernel has no {key} ({_proc_path(key)} does not exist)")
            continue
        if setting is None:
            if default is None:
                yield unknown(key, f"{key} is not set in sysctl.d; its value then depends on the "
                              f"kernel build or distribution{default_note}")
                continue
            where = ev("(kernel default)", key, default)
            if good(default):
                yield ok_unless(unread, key, f"{key} not set; the kernel default {default} applies", where)
            elif unread:
                yield not_read(unread, key, f"{key} is not set (the kernel default {default}: {bad})", where)
            else:
                yield fail(key, f"{key} not set; the kernel default {default} applies: {bad}", where)
            continue
        where = ev(setting.origin, key, setting.value)
        note, boot = _at_boot(setting)
        now = " in the running kernel" if setting.runtime else ""
        number = _int(setting.value)
        low, high = _RANGES.get(key, (None, None))
        if number is None:
            yield unknown(key, f"{key} = {setting.value!r} is not a number the kernel takes", where)
        elif low is not None and high is not None and not low <= number <= high:
            yield unknown(key, f"{key} = {number} is outside what the kernel takes ({low} to {high}): the "
                          "write is refused and the value stays what it was", where)
        elif good(number):
            yield ok_unless(unread, key, f"{key} = {number}{now}{note}", where, *boot)
        else:
            yield fail(key, f"{key} = {number}{now}: {bad}{note}", where, *boot)


@check("VMS-GST-095", title="Reverse-path filtering is on", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "sysctl", "network"), references=(_NET_DOC,))
def rp_filter(guest: Guest) -> Iterator[Result]:
    """Reverse-path filtering drops packets whose source address could not be routed back through
    the interface they arrived on: spoofed sources from a neighbouring network. The kernel default
    is 0 (off); systemd's 50-default.conf sets 2 (loose).

    Remediation: `net.ipv4.conf.all.rp_filter = 1` and `net.ipv4.conf.default.rp_filter = 1`
    (2, loose, where routing is asymmetric).
    """
    yield from _judge(guest, ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"),
                      lambda v: v in (1, 2), default=0, bad="source addresses are not validated")


@check("VMS-GST-096", title="ICMP redirects are not accepted", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "sysctl", "network"), references=(_NET_DOC,))
def accept_redirects(guest: Guest) -> Iterator[Result]:
    """An accepted ICMP redirect rewrites the routing table on the word of any host on the link:
    a neighbour can route this system's traffic through itself. The kernel accepts them by
    default on a host (1), not on a system that forwards.

    Remediation: `net.ipv4.conf.all.accept_redirects = 0`, `net.ipv4.conf.default.accept_redirects
    = 0`, `net.ipv6.conf.all.accept_redirects = 0`, `net.ipv6.conf.default.accept_redirects = 0`.
    """
    values = _normalised(guest)
    for family, forward_key in (("ipv4", "net.ipv4.ip_forward"), ("ipv6", "net.ipv6.conf.all.forwarding")):
        # Enabling forwarding switches the default off (a router ignores redirects).
        fwd = _lookup(values, forward_key) if values is not None else None
        default = 0 if fwd is not None and (_int(fwd.value) or 0) > 0 else 1
        yield from _judge(guest, (f"net.{family}.conf.all.accept_redirects",
                                  f"net.{family}.conf.default.accept_redirects"),
                          lambda v: v == 0, default=default, bad="ICMP redirects can rewrite routes")


@check("VMS-GST-097", title="ICMP redirects are not sent", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "sysctl", "network"), references=(_NET_DOC,))
def send_redirects(guest: Guest) -> Iterator[Result]:
    """Only a router should send ICMP redirects; a host that sends them advertises routing it does
    not intend and helps an attacker map the network. The kernel default is 1.

    Remediation: `net.ipv4.conf.all.send_redirects = 0` and `net.ipv4.conf.default.send_redirects = 0`.
    """
    yield from _judge(guest, ("net.ipv4.conf.all.send_redirects",
                              "net.ipv4.conf.default.send_redirects"),
                      lambda v: v == 0, default=1, bad="the system sends ICMP redirects like a router")


@check("VMS-GST-098", title="Source-routed packets are not accepted", severity=Severity.MEDIUM,
       tags=(Tag.CONFIGURATION, "sysctl", "network"), references=(_NET_DOC,))
def accept_source_route(guest: Guest) -> Iterator[Result]:
    """A source-routed packet names the path it wants to take, which lets a sender steer replies
    around firewalls. The IPv4 kernel default is off for a host and on for a router, so an unset
    value is only known when forwarding is off; IPv6 no longer honours type-0 routing headers.

    Remediation: `net.ipv4.conf.all.accept_source_route = 0`,
    `net.ipv4.conf.default.accept_source_route = 0` (and the same for net.ipv6.conf).
    """
    values = _normalised(guest)
    if values is None:
        yield unknown("net.ipv4.conf.all.accept_source_route", "the sysctl configuration could not "
                      "be read")
        return
    fwd = _lookup(values, "net.ipv4.ip_forward")
    routes = fwd is not None and _int(fwd.value) == 1
    keys = ("net.ipv4.conf.all.accept_source_route", "net.ipv4.conf.default.accept_source_route")
    yield from _judge(guest, keys, lambda v: v == 0, default=None if routes else 0,
                      bad="source-routed packets are accepted",
                      default_note=" (the default is on when the system forwards packets)")
    for key in ("net.ipv6.conf.all.accept_source_route", "net.ipv6.conf.default.accept_source_route"):
        setting = _lookup(values, key)
        if setting is not None and (_int(setting.value) or 0) > 0:
            yield fail(key, f"{key} = {setting.value}: source-routed packets are accepted",
                       ev(setting.origin, key, setting.value))


@check("VMS-GST-099", title="IP forwarding is off unless the system routes", severity=Severity.LOW,
       tags=(Tag.ISOLATION, "sysctl", "network", "forwarding"), references=(_NET_DOC,))
def ip_forward(guest: Guest, env: Environment) -> Iterator[Result]:
    """With forwarding on, the system routes packets between its interfaces: a VM with two networks
    becomes a bridge around the segmentation they were meant to enforce. A hypervisor host, a
    container host or a router needs it; other systems do not. The kernel default is 0.

    Remediation: `net.ipv4.ip_forward = 0` and `net.ipv6.conf.all.forwarding = 0`, unless the
    system is meant to route.
    """
    # The hypervisor routes for its NAT/routed virtual networks: forwarding is its job there.
    routed = sorted(n.name for n in env.inventory.networks if n.forward_mode in ("nat", "route", "open"))
    on_host = guest is env.inventory.host_os and bool(routed)
    values = _normalised(guest)
    if values is None:
        yield unknown("net.ipv4.ip_forward", "the sysctl configuration could not be read")
        return
    unread = guest_unread(guest, "sysctl") if guest.runtime is None or guest.runtime.sysctl is None else ()
    for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
        setting = _lookup(values, key)
        if setting is None:
            yield ok_unless(unread, key, f"{key} not set; the kernel default 0 applies",
                            ev("(kernel default)", key, 0))
            continue
        where = ev(setting.origin, key, setting.value)
        note, boot = _at_boot(setting)
        number = _int(setting.value)
        if number is None:
            yield unknown(key, f"{key} = {setting.value!r} is not a number", where)
        elif number == 0:
            yield ok_unless(() if setting.runtime else unread, key, f"{key} = 0{note}", where, *boot)
        elif on_host:
            yield ok(key, f"{key} = {number}: expected on a hypervisor host that routes the virtual "
                     f"networks {', '.join(routed)}{note}", where, *boot)
        else:
            yield fail(key, f"{key} = {number}: the system forwards packets between its networks{note}",
                       where, *boot)


@check("VMS-GST-100", title="TCP SYN cookies are on", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "sysctl", "network"), references=(_NET_DOC,))
def tcp_syncookies(guest: Guest) -> Iterator[Result]:
    """SYN cookies keep a listening service reachable during a SYN flood. The kernel default is 1;
    turning it off only helps an attacker.

    Remediation: `net.ipv4.tcp_syncookies = 1`.
    """
    yield from _judge(guest, ("net.ipv4.tcp_syncookies",), lambda v: v >= 1, default=1,
                      bad="a SYN flood can exhaust the listen queues")


@check("VMS-GST-101", title="Address-space layout randomisation is full", severity=Severity.MEDIUM,
       tags=(Tag.CONFIGURATION, "sysctl", "kernel-hardening"), references=(_SYSCTL_DOC,))
def randomize_va_space(guest: Guest) -> Iterator[Result]:
    """ASLR (`kernel.randomize_va_space = 2`, the kernel default) randomises stack, mmap, VDSO and
    heap addresses, turning many memory-corruption bugs from exploits into crashes. 0 or 1
    weakens it.

    Remediation: `kernel.randomize_va_space = 2` (or remove the line that lowers it).
    """
    yield from _judge(guest, ("kernel.randomize_va_space",), lambda v: v == 2, default=2,
                      bad="address-space randomisation is reduced")


@check("VMS-GST-102", title="Kernel pointers are hidden from unprivileged users",
       severity=Severity.LOW, tags=(Tag.CONFIGURATION, "sysctl", "kernel-hardening"),
       references=(_SYSCTL_DOC,))
def kptr_restrict(guest: Guest) -> Iterator[Result]:
    """With `kernel.kptr_restrict = 0` (the kernel default) kernel addresses printed through %pK
    (/proc/kallsyms, /proc/modules …) are visible, which defeats kernel address randomisation for a
    local attacker.

    Remediation: `kernel.kptr_restrict = 1` (2 hides them from root too).
    """
    yield from _judge(guest, ("kernel.kptr_restrict",), lambda v: v >= 1, default=0,
                      bad="kernel addresses leak to unprivileged users")


@check("VMS-GST-103", title="The kernel log is restricted to privileged users", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "sysctl", "kernel-hardening"), references=(_SYSCTL_DOC,))
def dmesg_restrict(guest: Guest) -> Iterator[Result]:
    """The kernel log holds addresses and driver details useful to a local exploit. Its default
    comes from CONFIG_SECURITY_DMESG_RESTRICT (on in Debian's kernels, off upstream), so an unset
    value is reported as unknown.

    Remediation: `kernel.dmesg_restrict = 1`.
    """
    yield from _judge(guest, ("kernel.dmesg_restrict",), lambda v: v == 1, default=None,
                      bad="any user can read the kernel log",
                      default_note=" (CONFIG_SECURITY_DMESG_RESTRICT)")


@check("VMS-GST-104", title="Process tracing (ptrace) is restricted by Yama", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "sysctl", "kernel-hardening"),
       references=("https://docs.kernel.org/admin-guide/LSM/Yama.html",))
def ptrace_scope(guest: Guest) -> Iterator[Result]:
    """With `kernel.yama.ptrace_scope = 0` any process can attach to every other process of the same
    user and read its memory: one compromised program yields the user's SSH agent keys and browser
    secrets. Upstream Yama defaults to 1, but Debian's kernel patches it to 0, so an unset value is
    reported as unknown.

    Remediation: `kernel.yama.ptrace_scope = 1` (2 or 3 for stricter systems).
    """
    yield from _judge(guest, ("kernel.yama.ptrace_scope",), lambda v: v >= 1, default=None,
                      bad="processes can trace any process of the same user",
                      default_note=" (Debian disables Yama by default)")


@check("VMS-GST-105", title="Symlink and hardlink protection is on", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "sysctl", "kernel-hardening"),
       references=("https://docs.kernel.org/admin-guide/sysctl/fs.html",))
def protected_links(guest: Guest) -> Iterator[Result]:
    """`fs.protected_symlinks` and `fs.protected_hardlinks` stop the classic /tmp race in which a
    user plants a link that a root process then follows or writes through. The kernel default is
    0; systemd and procps turn them on.

    Remediation: `fs.protected_symlinks = 1` and `fs.protected_hardlinks = 1`.
    """
    yield from _judge(guest, ("fs.protected_symlinks", "fs.protected_hardlinks"), lambda v: v == 1,
                      default=0, bad="links in world-writable directories are followed")


@check("VMS-GST-106", title="Setuid programs do not dump core", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "sysctl", "kernel-hardening"),
       references=("https://docs.kernel.org/admin-guide/sysctl/fs.html",))
def suid_dumpable(guest: Guest) -> Iterator[Result]:
    """With `fs.suid_dumpable` 1 or 2 a crashing setuid program may write its memory — password
    hashes, keys — to a core file. The kernel default is 0.

    Remediation: `fs.suid_dumpable = 0`.
    """
    yield from _judge(guest, ("fs.suid_dumpable",), lambda v: v == 0, default=0,
                      bad="privileged processes may dump core")


@check("VMS-GST-107", title="Unprivileged users cannot load BPF programs", severity=Severity.MEDIUM,
       tags=(Tag.CONFIGURATION, "sysctl", "kernel-hardening", "bpf"), references=(_SYSCTL_DOC,))
def unprivileged_bpf(guest: Guest) -> Iterator[Result]:
    """The BPF verifier has been a steady source of local privilege escalation (CVE-2021-3490,
    CVE-2021-31440, CVE-2022-23222). Its default comes from CONFIG_BPF_UNPRIV_DEFAULT_OFF (2 on
    Debian 11+, RHEL 9), so an unset value is reported as unknown.

    Remediation: `kernel.unprivileged_bpf_disabled = 1` (irreversible until reboot) or 2.
    """
    yield from _judge(guest, ("kernel.unprivileged_bpf_disabled",), lambda v: v in (1, 2),
                      default=None, bad="unprivileged users reach the BPF verifier",
                      default_note=" (CONFIG_BPF_UNPRIV_DEFAULT_OFF)")


@check("VMS-GST-108", title="The BPF JIT is hardened", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "sysctl", "kernel-hardening", "bpf"),
       references=("https://docs.kernel.org/admin-guide/sysctl/net.html",))
def bpf_jit_harden(guest: Guest) -> Iterator[Result]:
    """`net.core.bpf_jit_harden` blinds constants in JIT-compiled BPF, which blocks JIT spraying.
    The kernel default is 0.

    Remediation: `net.core.bpf_jit_harden = 2`.
    """
    yield from _judge(guest, ("net.core.bpf_jit_harden",), lambda v: v >= 1, default=0,
                      bad="BPF JIT constants are not blinded")
