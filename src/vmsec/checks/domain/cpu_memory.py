"""Guest memory and CPU model: page sharing, shared memory files, balloons on confidential VMs,
speculative-execution mitigations and nested virtualization.

These are per-VM properties: each check yields one result per VM (subject ``memory``, ``cpu`` or
the device), except where the check does not apply (VMS-DOM-142 only judges confidential VMs;
VMS-DOM-143 only x86 guests; VMS-DOM-144 yields nothing for a VM without a ``<cpu>`` element).
Whether host swap is encrypted is a host check (VMS-HOST-014), not repeated per VM here.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.facts import CpuConfig, Domain, Host
from vmsec.findings import Evidence

_REF_MEMBACKING = "https://libvirt.org/formatdomain.html#memory-backing"
_REF_CPU_MODELS = "https://www.qemu.org/docs/master/system/i386/cpu.html"
_REF_KSM = "https://www.cve.org/CVERecord?id=CVE-2015-2877"
_REF_NESTED = "https://www.linux-kvm.org/page/Nested_Guests"

# CPU features through which a guest mitigates Spectre v2, SSB and MDS itself.
MITIGATION_FEATURES = frozenset({
    "spec-ctrl", "ssbd", "md-clear", "stibp", "arch-capabilities", "ibpb", "ibrs", "virt-ssbd",
    "amd-ssbd", "amd-stibp",
})
# QEMU's named x86 models that predate the mitigation flags; the "-IBRS"/"-IBPB" variants and newer
# models (Cascadelake, Icelake, EPYC-Rome …) carry them.
_PRE_MITIGATION_MODELS = frozenset({
    "486", "pentium", "pentium2", "pentium3", "coreduo", "core2duo", "n270", "athlon", "phenom",
    "qemu32", "qemu64", "kvm32", "kvm64", "Conroe", "Penryn", "Nehalem", "Westmere", "SandyBridge",
    "IvyBridge", "Haswell", "Haswell-noTSX", "Broadwell", "Broadwell-noTSX", "Skylake-Client",
    "Skylake-Server", "Opteron_G1", "Opteron_G2", "Opteron_G3", "Opteron_G4", "Opteron_G5", "EPYC",
    "Dhyana",
})
_X86_ARCHES = frozenset({"x86_64", "i686", "i386"})
_NESTED_FEATURES = frozenset({"vmx", "svm"})
_ENABLING = frozenset({"require", "force", "optional"})


@check("VMS-DOM-140", title="Guest memory is not merged by KSM", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "memory", "side-channel", "multi-tenant"),
       references=(_REF_KSM, _REF_MEMBACKING))
def no_ksm_merging(dom: Domain, env: Environment) -> Iterator[Result]:
    """When KSM runs on the host (`/sys/kernel/mm/ksm/run` = 1), identical pages of different guests
    are merged; the copy-on-write delay on a merged page tells one guest what another holds in
    memory (CAIN, CVE-2015-2877) and merged pages make Rowhammer attacks across VMs practical.
    `<nosharepages/>` opts a VM out. Confidential VMs are not judged: their memory is encrypted
    per guest and pinned, so KSM cannot merge it. UNKNOWN without host facts.

    Remediation: Add `<memoryBacking><nosharepages/></memoryBacking>` to the VM, or stop KSM on the
    host (`echo 2 > /sys/kernel/mm/ksm/run`, disable ksmtuned).
    """
    subject = "memory"
    sharing = ev(dom.origin, "memoryBacking/nosharepages",
                 "present" if dom.memory.nosharepages else "absent")
    if dom.memory.nosharepages:
        yield ok(subject, "the VM opts out of page sharing (<nosharepages/>)", sharing)
        return
    if dom.confidential:
        yield ok(subject, "confidential VM: its encrypted, pinned memory is not merged by KSM", sharing)
        return
    if env.host is None or env.host.ksm_run is None:
        yield unknown(subject, "whether KSM runs on the host is unknown (no host facts)", sharing)
        return
    ksm = ev(f"{env.host.root.rstrip('/')}/sys/kernel/mm/ksm/run", "", env.host.ksm_run)
    if env.host.ksm_run.strip() == "1":
        yield fail(subject, "KSM merges pages on the host (run=1) and the VM lacks <nosharepages/>",
                   ksm, sharing)
    else:
        yield ok(subject, f"KSM is not merging pages on the host (run={env.host.ksm_run.strip()})", ksm)


def _memory_backing_dir(host: Host | None) -> str | None:
    if host is None or host.qemu_conf is None:
        return None
    setting = host.qemu_conf.setting("memory_backing_dir")
    return setting.as_str() if setting else None


@check("VMS-DOM-141", title="Guest RAM is not a shared file on the host", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "memory"),
       references=(_REF_MEMBACKING, "https://libvirt.org/kbase/virtiofs.html"))
def no_shared_memory_file(dom: Domain, env: Environment) -> Iterator[Result]:
    """File-backed guest RAM mapped shared (`<source type='file'/>` or hugepages with
    `<access mode='shared'/>`) lives in files under qemu.conf `memory_backing_dir` or the hugetlbfs
    mount: anyone who can open those files reads and writes the guest's memory. Shared memory is
    needed for vhost-user and virtiofs; `memfd` provides it without a path on the host.

    Remediation: Use `<source type='memfd'/>` with `<access mode='shared'/>` when a vhost-user
    device or virtiofs needs shared memory; otherwise drop `<access mode='shared'/>`. Keep
    `memory_backing_dir` at mode 0700 owned by the QEMU user.
    """
    mem = dom.memory
    file_backed = mem.source_type == "file" or (mem.hugepages and mem.source_type != "memfd")
    where = ev(dom.origin, "memoryBacking/access/@mode", mem.access_mode)
    if mem.access_mode != "shared":
        yield ok("memory", "guest RAM is mapped private", where)
    elif not file_backed:
        yield ok("memory", f"guest RAM is shared through {mem.source_type or 'anonymous'} memory, "
                 "not a file on the host", where)
    else:
        place = "the hugetlbfs mount" if mem.hugepages else "memory_backing_dir"
        backing_dir = _memory_backing_dir(env.host)
        if backing_dir and not mem.hugepages:
            place = f"memory_backing_dir {backing_dir}"
        yield fail("memory", f"guest RAM is a shared file in {place}", where,
                   ev(dom.origin, "memoryBacking/source/@type", mem.source_type or "hugepages"))


@check("VMS-DOM-142", title="Confidential VMs have no memory balloon", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "memory", "confidential-computing"),
       references=("https://libvirt.org/kbase/launch_security_sev.html",
                   "https://libvirt.org/formatdomain.html#memory-balloon-device"))
def confidential_no_balloon(dom: Domain) -> Iterator[Result]:
    """A balloon lets the guest and host negotiate which guest pages the host reclaims: on a
    confidential VM this is a host-influenced channel into the guest's memory management, and
    virtio devices of such guests must use bounce buffers. libvirt adds a virtio balloon when the
    XML names none, so only `model='none'` removes it. Only confidential VMs are judged.

    Remediation: Add `<memballoon model='none'/>` to VMs with `<launchSecurity>`.
    """
    if not dom.confidential:
        return
    balloons = dom.devices_of("memballoon")
    if not balloons:
        yield fail("memballoon", "no <memballoon> element: libvirt adds a virtio balloon by default",
                   ev(dom.origin, "devices/memballoon", "absent"))
        return
    for balloon in balloons:
        where = ev(dom.origin, balloon.locator + "/@model", balloon.model)
        if balloon.model == "none":
            yield ok(f"memballoon {balloon.locator}", "the memory balloon is disabled", where)
        else:
            yield fail(f"memballoon {balloon.locator}",
                       f"confidential VM has a {balloon.model or 'virtio'} memory balloon", where)


def _is_x86(dom: Domain) -> bool:
    if dom.arch is not None:
        return dom.arch in _X86_ARCHES
    return dom.cpu is not None and dom.cpu.model in _PRE_MITIGATION_MODELS


@check("VMS-DOM-143", title="The guest CPU model keeps speculative-execution mitigations",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "cpu", "side-channel"),
       references=(_REF_CPU_MODELS, "https://libvirt.org/formatdomain.html#cpu-model-and-topology"))
def cpu_mitigations(dom: Domain) -> Iterator[Result]:
    """Without `spec-ctrl`, `ssbd`, `md-clear`, `stibp`, `arch-capabilities` (Intel) or `ibpb`,
    `virt-ssbd`, `amd-ssbd` (AMD), the guest kernel cannot turn on its own Spectre v2, SSB and MDS
    mitigations, and its processes can attack each other. The features are lost when the XML
    disables them, when a custom model predates them (QEMU's plain `Haswell`, `Skylake-Client`,
    `EPYC`, `qemu64` … rather than the `-IBRS`/`-IBPB` variants) and nothing adds them, or when the
    VM has no `<cpu>` at all (QEMU's default x86 model is qemu64). Only x86 guests are judged.

    Remediation: Use `mode='host-model'` (or host-passthrough where migration allows), or a current
    named model plus `<feature policy='require' name='spec-ctrl'/>`, `ssbd`, `md-clear` (Intel) or
    `ibpb`, `virt-ssbd` (AMD); remove `disable`/`forbid` on these features.
    """
    if not _is_x86(dom):
        return
    cpu = dom.cpu
    if cpu is None:
        yield fail("cpu", "no <cpu> element: QEMU's default qemu64 model carries no mitigation flags",
                   ev(dom.origin, "cpu", "absent"))
        return
    disabled = sorted(f.name for f in cpu.features
                      if f.name in MITIGATION_FEATURES and f.policy in ("disable", "forbid"))
    if disabled:
        yield fail("cpu", f"mitigation feature(s) disabled: {', '.join(disabled)}",
                   ev(dom.origin, "cpu/feature[@policy='disable' or @policy='forbid']/@name", disabled))
        return
    mode = cpu.mode or "custom"
    where = ev(dom.origin, "cpu/@mode", cpu.mode)
    if mode != "custom":
        yield ok("cpu", f"CPU mode {mode} passes the host's mitigation features", where)
        return
    added = sorted(f.name for f in cpu.features
                   if f.name in MITIGATION_FEATURES and (f.policy or "require") in _ENABLING)
    model_ev = ev(dom.origin, "cpu/model", cpu.model)
    if cpu.model in _PRE_MITIGATION_MODELS and not added:
        yield fail("cpu", f"custom model {cpu.model} predates spec-ctrl/ibpb and no mitigation "
                   "feature is added", model_ev)
    elif added:
        yield ok("cpu", f"custom model {cpu.model or '?'} adds {', '.join(added)}", model_ev)
    else:
        yield ok("cpu", f"custom model {cpu.model or '?'} is not a pre-mitigation model", model_ev)


def host_nested(host: Host | None) -> tuple[bool | None, Evidence | None]:
    """Whether the host's KVM module allows nested virtualization, with the parameter read."""
    if host is None or host.module_params is None:
        return None, None
    for module in ("kvm_intel", "kvm_amd"):
        value = host.module_param(module, "nested")
        if value is not None:
            where = ev(f"{host.root.rstrip('/')}/sys/module/{module}/parameters/nested", "", value)
            return value.strip().upper() in ("Y", "1"), where
    return None, None


def _nested_exposure(cpu: CpuConfig) -> tuple[str | None, bool]:
    """How the CPU definition exposes vmx/svm: (description, needs-host-nested-to-tell)."""
    names = {f.name: f.policy or "require" for f in cpu.features if f.name in _NESTED_FEATURES}
    if any(p in ("disable", "forbid") for p in names.values()):
        return None, False
    if any(p in ("require", "force") for p in names.values()):
        shown = ", ".join(f"{n} ({p})" for n, p in sorted(names.items()))
        return f"feature {shown}", False
    if cpu.mode in ("host-passthrough", "maximum"):
        return f"mode {cpu.mode}", False
    if cpu.mode == "host-model":
        return "mode host-model", True
    return None, False


@check("VMS-DOM-144", title="Guests are not given nested virtualization", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "cpu", "nested", "host-escape"),
       references=(_REF_NESTED, "https://www.cve.org/CVERecord?id=CVE-2021-3656",
                   "https://www.cve.org/CVERecord?id=CVE-2021-29657"))
def no_nested_virtualization(dom: Domain, env: Environment) -> Iterator[Result]:
    """A guest that sees vmx (Intel) or svm (AMD) can run its own hypervisor and drive KVM's nested
    code, a recurring source of guest-to-host escapes (CVE-2021-29657, CVE-2021-3653,
    CVE-2021-3656). host-passthrough and `maximum` expose the flag, as does a `require`/`force`
    feature; host-model exposes it when the host enables nesting. High when the host's kvm_intel or
    kvm_amd `nested` parameter is on; PASS when it is off, since KVM then hides the flag. A VM
    without `<cpu>` is not judged.

    Remediation: Add `<feature policy='disable' name='vmx'/>` (or `svm`) to the `<cpu>`, and set
    `options kvm_intel nested=0` (or kvm_amd) on hosts that run untrusted guests.
    """
    cpu = dom.cpu
    if cpu is None:
        return
    how, host_decides = _nested_exposure(cpu)
    where = ev(dom.origin, "cpu/@mode" if how and how.startswith("mode") else "cpu/feature",
               how or cpu.mode)
    if how is None:
        yield ok("cpu", f"the CPU definition (mode {cpu.mode or 'custom'}) does not expose vmx/svm",
                 where)
        return
    nested, nested_ev = host_nested(env.host)
    if nested is False:
        yield ok("cpu", f"{how} would expose vmx/svm, but the host's KVM has nesting off", where,
                 *(e for e in (nested_ev,) if e))
    elif nested:
        yield fail("cpu", f"{how} exposes vmx/svm and the host's KVM allows nesting", where,
                   *(e for e in (nested_ev,) if e), severity=Severity.HIGH)
    elif host_decides:
        yield unknown("cpu", f"{how} exposes vmx/svm only if the host enables nesting, which is "
                      "unknown", where)
    else:
        yield fail("cpu", f"{how} exposes vmx/svm (the host's nested setting is unknown)", where)


__all__ = ["MITIGATION_FEATURES", "confidential_no_balloon", "cpu_mitigations", "host_nested",
           "no_ksm_merging", "no_nested_virtualization", "no_shared_memory_file"]
