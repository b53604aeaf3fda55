"""CPU side channels between guests and the host: speculative-execution mitigations, SMT, the L1D
flush on VM entry, iTLB multihit, VMSCAPE, and memory deduplication (KSM)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.facts import Host
from vmsec.parsers.kernel_cmdline import Cmdline, kernel_version, kstrtobool, parse_cmdline

_VULN_DIR = "/sys/devices/system/cpu/vulnerabilities"
_HW_VULN = "https://docs.kernel.org/admin-guide/hw-vuln/index.html"
_L1TF = "https://docs.kernel.org/admin-guide/hw-vuln/l1tf.html"
_MULTIHIT = "https://docs.kernel.org/admin-guide/hw-vuln/multihit.html"
_VMSCAPE = "https://docs.kernel.org/admin-guide/hw-vuln/vmscape.html"
_KSM = "https://docs.kernel.org/admin-guide/mm/ksm.html"

# "BHI: Vulnerable" inside an otherwise mitigated spectre_v2 line; "SMT vulnerable" is VMS-HOST-007's.
_PART_VULNERABLE = re.compile(r"(?:^|[;,]\s*)([A-Za-z0-9_ /-]+):\s*Vulnerable", re.IGNORECASE)


# Per-vulnerability switches that turn a mitigation off (kernel-parameters.txt), by parameter name:
# flags that disable by being present, and "name=off"-style values.
_OFF_FLAGS = ("nospectre_v1", "nospectre_v2", "nopti", "nospec_store_bypass_disable", "nospectre_bhb")
_OFF_VALUES = {
    "pti": ("off",), "spectre_v2": ("off",), "spectre_v2_user": ("off",), "spectre_bhi": ("off",),
    "spec_store_bypass_disable": ("off",), "l1tf": ("off",), "mds": ("off",), "tsx_async_abort": ("off",),
    "mmio_stale_data": ("off",), "retbleed": ("off",), "srbds": ("off",), "gather_data_sampling": ("off",),
    "reg_file_data_sampling": ("off",), "spec_rstack_overflow": ("off",),
    "indirect_target_selection": ("off",), "tsa": ("off",), "vmscape": ("off",),
    "ssbd": ("force-off",),
}
# arm64 ``kpti=`` is read with kstrtobool(): any false value turns page-table isolation off.
_GUEST_VECTORS = ("guest_host", "guest_guest")


def cmdline_of(host: Host) -> Cmdline | None:
    return parse_cmdline(host.kernel_cmdline) if host.kernel_cmdline is not None else None


def _cmdline_mitigations(host: Host) -> Iterator[Result]:
    """The kernel command line, as the kernel reads it: the last occurrence wins, nothing after
    ``--`` counts, and ``mitigations=auto,no_guest_host`` turns off exactly what a hypervisor needs."""
    subject = "kernel cmdline mitigations"
    cmdline = cmdline_of(host)
    if cmdline is None:
        yield unknown(subject, "/proc/cmdline could not be read")
        return
    kernel = kernel_version(host.kernel_release)
    m = cmdline.mitigations(kernel)
    where = ev("/proc/cmdline", "mitigations", m.written)
    guest = [v for v in m.disabled_vectors if v in _GUEST_VECTORS]
    if m.mode == "off":
        yield fail(subject, f"the kernel command line sets {m.written}: every speculative-execution "
                   "mitigation is disabled", where, severity=Severity.CRITICAL)
    elif guest and kernel is None:
        yield unknown(subject, f"the kernel command line sets {m.written}, which turns off the "
                      f"{', '.join(v.replace('_', '-') for v in guest)} mitigations on Linux 6.17 and later "
                      "(attack-vector controls); the kernel's version is unknown", where)
    elif guest:
        yield fail(subject, f"the kernel command line sets {m.written}: the "
                   f"{' and '.join(v.replace('_', '-') for v in guest)} mitigations are off, so guests can "
                   "attack the host" + (" and each other" if "guest_guest" in guest else ""), where,
                   severity=Severity.CRITICAL if "guest_host" in guest else None)
    elif m.written is None:
        yield ok(subject, "the kernel command line does not set mitigations= (the default, auto, applies)",
                 where)
    else:
        note = f" ({m.ignored})" if m.ignored else ""
        yield ok(subject, f"the kernel command line keeps guest mitigations on: {m.written}{note}", where)
    # The flags are early parameters: their handlers run whatever value follows (nospectre_v1=1).
    off = [p.text for p in cmdline.params if p.name in _OFF_FLAGS]
    off += [p.text for name, bad in _OFF_VALUES.items() if (p2 := cmdline.last(name)) is not None
            for p in (p2,) if (p.value or "").split(",")[0].strip().lower() in bad]
    kpti = cmdline.last("kpti")
    if kpti is not None and kstrtobool(kpti.value) is False:
        off.append(kpti.text)
    off += _x86_raw_switches(cmdline)
    if off:
        shown = " ".join(dict.fromkeys(off))
        yield fail("kernel cmdline per-vulnerability switches", f"the kernel command line turns off "
                   f"individual mitigations: {shown}", ev("/proc/cmdline", "", shown))


# x86 reads these through arch/x86/lib/cmdline.c, in the raw line: words end at any byte up to the
# space, quotes and "--" mean nothing, names match byte for byte, and the last "name=" wins.
_X86_RAW_FLAGS = frozenset({"nospectre_v2", "nopti", "nospec_store_bypass_disable"})
_X86_RAW_OFF = {"spectre_v2": "off", "spectre_v2_user": "off", "pti": "off",
                "spec_store_bypass_disable": "off"}
_X86_WORD_END = re.compile(r"[\x00-\x20]+")


def _x86_raw_switches(cmdline: Cmdline) -> list[str]:
    words = [w for token in (*(p.text for p in cmdline.params), *cmdline.init_args)
             for w in _X86_WORD_END.split(token) if w]
    found = [w for w in words if w in _X86_RAW_FLAGS]
    last: dict[str, str] = {}
    for w in words:
        name, sep, value = w.partition("=")
        if sep and name in _X86_RAW_OFF:
            last[name] = value
    return found + [f"{name}={value}" for name, value in last.items() if value == _X86_RAW_OFF[name]]


def _unreadable_vulns(subject: str) -> Result:
    return unknown(subject, f"{_VULN_DIR} could not be read")


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@check("VMS-HOST-006", title="The kernel mitigates the CPU's speculative-execution vulnerabilities",
       severity=Severity.HIGH, tags=(Tag.PATCHING, Tag.ISOLATION, "cpu", "side-channel"),
       references=(_HW_VULN,))
def cpu_vulnerabilities(host: Host) -> Iterator[Result]:
    """The kernel reports, per known CPU vulnerability, whether this CPU is affected and which
    mitigation is active. An unmitigated one (Spectre, L1TF, MDS, Retbleed, GDS, …) can let a guest
    read host or other guests' memory. The kernel command line is read as the kernel reads it (words
    cut as the kernel cuts them, nothing after `--` counts, a repeated parameter as its handler
    takes it — an earlier `mitigations=off` survives a later value the kernel rejects, and since
    6.17 a vector once turned off stays off): `mitigations=off` disables them
    all, and on Linux 6.17 and later the attack-vector controls `mitigations=auto,no_guest_host`
    (critical) and `no_guest_guest` turn off exactly the guest-to-host and guest-to-guest mitigations
    a hypervisor needs; per-vulnerability switches (`spectre_v2=off`, `nopti`, `l1tf=off` …) are
    listed separately.

    Remediation: Update the kernel and the CPU microcode (intel-microcode / amd64-microcode), and
    remove `mitigations=off`, `no_guest_host`/`no_guest_guest` and per-vulnerability `=off` switches
    from the kernel command line.
    """
    yield from _cmdline_mitigations(host)
    vulns = host.cpu_vulnerabilities
    if vulns is None:
        yield _unreadable_vulns("cpu vulnerabilities")
        return
    for name in sorted(vulns):
        text = vulns[name].strip()
        subject = f"cpu vulnerability {name}"
        where = ev(f"{_VULN_DIR}/{name}", name, _short(text))
        partial = [m.group(1).strip() for m in _PART_VULNERABLE.finditer(text)]
        if text.startswith("Vulnerable"):
            yield fail(subject, f"the kernel reports \"{_short(text)}\"", where)
        elif text.startswith("Mitigation") and partial:
            yield fail(subject, f"{name} is mitigated only in part ({', '.join(partial)}: "
                       f"Vulnerable): {_short(text)}", where)
        elif text == "Not affected" or text.startswith("Mitigation"):
            yield ok(subject, f"the kernel reports \"{_short(text)}\"", where)
        else:
            yield unknown(subject, f"{name} reports an unrecognised state: {_short(text) or '(empty)'}",
                          where)


@check("VMS-HOST-007", title="SMT is off where the CPU is SMT-vulnerable",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "cpu", "side-channel", "smt"),
       references=(_L1TF, _HW_VULN))
def smt_vulnerable(host: Host) -> Iterator[Result]:
    """With simultaneous multithreading on, two guests' vCPUs can run on sibling threads of one core
    and share its L1 cache and buffers. On CPUs the kernel reports as "SMT vulnerable" (L1TF, MDS,
    MMIO stale data) a guest can then read its sibling's data. This matters when guests do not trust
    each other.

    Remediation: Boot with `nosmt` (or `mitigations=auto,nosmt`), or set `sched_core = "vcpus"` in
    qemu.conf so that different VMs never share a core (VMS-QEMU-010).
    """
    if host.smt_control is None:
        # "nosmt" on the command line proves nothing alone: a kernel without CONFIG_HOTPLUG_SMT has no
        # smt/control and no "nosmt" parameter either (kernel/cpu.c), and keeps its siblings on.
        cmdline = cmdline_of(host)
        nosmt = cmdline.last("nosmt") if cmdline is not None else None
        also = (f" (the kernel command line sets {nosmt.text}, which only a kernel with SMT control "
                "obeys)") if nosmt is not None else ""
        yield unknown("smt", f"/sys/devices/system/cpu/smt/control could not be read{also}")
        return
    control = host.smt_control.strip()
    where = ev("/sys/devices/system/cpu/smt/control", "control", control)
    if control != "on":
        yield ok("smt", f"SMT control is {control!r}: sibling threads are not in use", where)
        return
    if host.cpu_vulnerabilities is None:
        yield _unreadable_vulns("smt")
        return
    smt_vuln = sorted(n for n, t in host.cpu_vulnerabilities.items() if "smt vulnerable" in t.lower())
    if smt_vuln:
        yield fail("smt", f"SMT is on and the kernel reports \"SMT vulnerable\" for "
                   f"{', '.join(smt_vuln)}: guests on sibling threads can read each other's data",
                   where, *(ev(f"{_VULN_DIR}/{n}", n, _short(host.cpu_vulnerabilities[n]))
                            for n in smt_vuln[:4]))
    else:
        yield ok("smt", "SMT is on, but no vulnerability file reports \"SMT vulnerable\"", where)


@check("VMS-HOST-008", title="KVM flushes the L1 data cache on VM entry",
       severity=Severity.HIGH, tags=(Tag.ISOLATION, "cpu", "side-channel", "l1tf"),
       references=(_L1TF,))
def l1d_flush(host: Host) -> Iterator[Result]:
    """On CPUs affected by L1TF, KVM flushes the L1 data cache before entering a guest
    (`vmentry_l1d_flush=cond` by default). `never` lets a guest read host and other guests' data that
    is still in L1D.

    Remediation: Remove `kvm_intel.vmentry_l1d_flush=never` (use `cond` or `always`).
    """
    if host.module_params is None:
        yield unknown("kvm_intel vmentry_l1d_flush", "/sys/module could not be read")
        return
    value = host.module_param("kvm_intel", "vmentry_l1d_flush")
    l1tf = (host.cpu_vulnerabilities or {}).get("l1tf")
    if value is None and host.module_param_unread("kvm_intel", "vmentry_l1d_flush"):
        path = "/sys/module/kvm_intel/parameters/vmentry_l1d_flush"
        if l1tf is not None and l1tf.strip() == "Not affected":
            yield ok("kvm_intel vmentry_l1d_flush", f"{path} could not be read, but the CPU is not "
                     "affected by L1TF", ev(f"{_VULN_DIR}/l1tf", "l1tf", l1tf.strip()))
        else:
            yield unknown("kvm_intel vmentry_l1d_flush", f"kvm_intel is loaded, but {path} could not "
                          "be read", ev(path, "vmentry_l1d_flush"))
        return
    if value is None:
        return  # kvm_intel is not loaded (AMD or no KVM): L1TF does not apply through it
    value = value.strip()
    where = ev("/sys/module/kvm_intel/parameters/vmentry_l1d_flush", "vmentry_l1d_flush", value)
    if value != "never":
        yield ok("kvm_intel vmentry_l1d_flush", f"vmentry_l1d_flush = {value}", where)
    elif l1tf is not None and l1tf.strip() == "Not affected":
        yield ok("kvm_intel vmentry_l1d_flush", "vmentry_l1d_flush = never, but the CPU is not "
                 "affected by L1TF", where, ev(f"{_VULN_DIR}/l1tf", "l1tf", l1tf.strip()))
    elif l1tf is None:
        yield unknown("kvm_intel vmentry_l1d_flush", "vmentry_l1d_flush = never, and whether the CPU "
                      "is affected by L1TF could not be read", where)
    else:
        yield fail("kvm_intel vmentry_l1d_flush", "vmentry_l1d_flush = never on an L1TF-affected "
                   "CPU: a guest can read host and other guests' data left in L1D", where,
                   ev(f"{_VULN_DIR}/l1tf", "l1tf", _short(l1tf.strip())))


@check("VMS-HOST-009", title="KVM mitigates iTLB multihit (nx_huge_pages)",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "cpu", "dos"),
       references=(_MULTIHIT,))
def itlb_multihit(host: Host) -> Iterator[Result]:
    """On affected Intel CPUs a guest can trigger a machine check, crashing the host, unless KVM
    marks huge pages non-executable (`kvm.nx_huge_pages`). The kernel then reports itlb_multihit as
    "KVM: Mitigation: Split huge pages"; "KVM: Vulnerable" means the mitigation is off.

    Remediation: Set `kvm.nx_huge_pages=auto` (the default) or `force`.
    """
    if host.module_params is None:
        yield unknown("kvm nx_huge_pages", "/sys/module could not be read")
        return
    nx = host.module_param("kvm", "nx_huge_pages")
    unread = nx is None and host.module_param_unread("kvm", "nx_huge_pages")
    if nx is None and not unread:
        return  # kvm is not loaded: no guest runs with hardware virtualization
    # kvm is loaded; the kernel's itlb_multihit report decides, nx_huge_pages is the evidence.
    path = "/sys/module/kvm/parameters/nx_huge_pages"
    shown = f"nx_huge_pages = {nx.strip()}" if nx is not None else f"{path} could not be read"
    nx_ev = (ev(path, "nx_huge_pages", nx.strip()),) if nx is not None else ()
    if host.cpu_vulnerabilities is None:
        yield _unreadable_vulns("kvm nx_huge_pages")
        return
    text = host.cpu_vulnerabilities.get("itlb_multihit")
    if text is None:
        yield unknown("kvm nx_huge_pages", f"the kernel does not report itlb_multihit ({shown})", *nx_ev)
        return
    vuln = ev(f"{_VULN_DIR}/itlb_multihit", "itlb_multihit", text.strip())
    if "kvm: vulnerable" in text.lower():
        yield fail("kvm nx_huge_pages", f"{shown} and itlb_multihit reports \"{text.strip()}\": a guest "
                   "can crash the host with a machine check", *nx_ev, vuln)
    else:
        yield ok("kvm nx_huge_pages", f"itlb_multihit: {text.strip()}", *nx_ev, vuln)


@check("VMS-HOST-010", title="The kernel mitigates VMSCAPE (CVE-2025-40300)",
       severity=Severity.HIGH, tags=(Tag.PATCHING, Tag.ISOLATION, "cpu", "side-channel"),
       references=(_VMSCAPE, "https://www.cve.org/CVERecord?id=CVE-2025-40300"))
def vmscape(host: Host) -> Iterator[Result]:
    """VMSCAPE lets a guest poison branch prediction for the host's userspace (QEMU), which can leak
    host memory. Kernels with the fix issue an IBPB on VM exit and report
    vulnerabilities/vmscape; an x86 kernel without that file predates the fix.

    Remediation: Update the kernel to a release with the VMSCAPE fix; remove `vmscape=off` from the
    kernel command line.
    """
    cmdline = cmdline_of(host)
    if cmdline is not None:
        switch = cmdline.last("vmscape")
        m = cmdline.mitigations(kernel_version(host.kernel_release))
        if switch is not None and (switch.value or "").strip().lower() == "off":
            yield fail("vmscape", f"the kernel command line sets {switch.text}",
                       ev("/proc/cmdline", "vmscape", switch.value))
            return
        if m.mode == "off" or "guest_host" in m.disabled_vectors:
            yield fail("vmscape", f"the kernel command line sets {m.written}, which turns the VMSCAPE "
                       "mitigation off with the other guest-to-host ones",
                       ev("/proc/cmdline", "mitigations", m.written))
            return
    if host.cpu_vulnerabilities is None:
        yield _unreadable_vulns("vmscape")
        return
    text = host.cpu_vulnerabilities.get("vmscape")
    if text is not None:
        where = ev(f"{_VULN_DIR}/vmscape", "vmscape", text.strip())
        if text.strip().startswith("Vulnerable"):
            yield fail("vmscape", f"the kernel reports \"{text.strip()}\"", where)
        elif text.strip() == "Not affected" or text.strip().startswith("Mitigation"):
            yield ok("vmscape", f"the kernel reports \"{text.strip()}\"", where)
        else:
            yield unknown("vmscape", f"vmscape reports an unrecognised state: {text.strip()}", where)
        return
    vendor = host.cpu.vendor if host.cpu else None
    if vendor in ("GenuineIntel", "AuthenticAMD", "HygonGenuine"):
        yield fail("vmscape", f"the kernel does not report vmscape on this {vendor} CPU: it "
                   "predates the VMSCAPE fix", ev(f"{_VULN_DIR}/vmscape", "exists", False))
    else:
        yield unknown("vmscape", "the kernel does not report vmscape, and the CPU vendor "
                      f"({vendor or 'unknown'}) does not say whether it is affected",
                      ev(f"{_VULN_DIR}/vmscape", "exists", False))


@check("VMS-HOST-011", title="Memory deduplication (KSM) does not merge guests' memory",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "memory", "side-channel", "ksm"),
       references=(_KSM, "https://www.cve.org/CVERecord?id=CVE-2015-2877"))
def ksm_merging(host: Host, env: Environment) -> Iterator[Result]:
    """KSM merges identical memory pages across VMs. Write timing then reveals whether another guest
    holds a given page (CVE-2015-2877), and shared pages help Rowhammer-style attacks. A domain can
    opt out with `<memoryBacking><nosharepages/>`.

    Remediation: `echo 2 > /sys/kernel/mm/ksm/run` (unmerge) and disable ksmtuned/ksm services, or
    add `<nosharepages/>` to every domain's `<memoryBacking>`.
    """
    if host.ksm_run is None:
        yield unknown("ksm", "/sys/kernel/mm/ksm/run could not be read")
        return
    run = host.ksm_run.strip()
    where = ev("/sys/kernel/mm/ksm/run", "run", run)
    if run != "1":
        yield ok("ksm", f"KSM is not merging (run = {run})", where)
        return
    sharing = sorted(d.name for d in env.inventory.domains if not d.memory.nosharepages)
    if env.inventory.domains and not sharing:
        yield ok("ksm", f"KSM is running, but all {len(env.inventory.domains)} domains opt out with "
                 "<nosharepages/>", where)
    elif sharing:
        shown = ", ".join(sharing[:8]) + (" …" if len(sharing) > 8 else "")
        yield fail("ksm", f"KSM is running (run = 1) and domains without <nosharepages/> can share "
                   f"pages: {shown}", where)
    else:
        yield fail("ksm", "KSM is running (run = 1): any guest started without <nosharepages/> "
                   "has its pages merged with other guests'", where)
