"""Guest memory and CPU model: page sharing, shared memory files, balloons on confidential VMs,
speculative-execution mitigations and nested virtualization.

These are per-VM properties: each check yields one result per VM (subject ``memory``, ``cpu`` or
the device), except where the check does not apply (VMS-DOM-142 only judges confidential VMs;
VMS-DOM-143 and VMS-DOM-144 only x86 guests, judged by QEMU's own CPU model data).
Whether host swap is encrypted is a host check (VMS-HOST-014), not repeated per VM here.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, FactMissing, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.platform import GuestArch, effective_cpu_model, guest_arch
from vmsec.facts import Domain, Host
from vmsec.findings import Evidence
from vmsec.qemu_data import x86_data

_REF_MEMBACKING = "https://libvirt.org/formatdomain.html#memory-backing"
_REF_CPU_MODELS = "https://www.qemu.org/docs/master/system/i386/cpu.html"
_REF_KSM = "https://www.cve.org/CVERecord?id=CVE-2015-2877"
_REF_NESTED = "https://www.linux-kvm.org/page/Nested_Guests"

# CPU features through which a guest mitigates Spectre v2, SSB and MDS itself.
MITIGATION_FEATURES = frozenset({
    "spec-ctrl", "ssbd", "md-clear", "stibp", "arch-capabilities", "ibpb", "ibrs", "virt-ssbd",
    "amd-ssbd", "amd-stibp",
})
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


def _x86_only(dom: Domain, env: Environment) -> GuestArch | None:
    """The guest's architecture when it is x86 (the checks below apply); None when it is not (they do
    not). Stops the check with UNKNOWN when the architecture cannot be told."""
    arch = guest_arch(dom, env.host)
    if arch.x86 is None:
        raise FactMissing(f"whether this is an x86 guest cannot be told: {arch.how}", "cpu",
                          (ev(dom.origin, "os/type/@arch", None),))
    return arch if arch.x86 else None


@check("VMS-DOM-143", title="The guest CPU model keeps speculative-execution mitigations",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "cpu", "side-channel"),
       references=(_REF_CPU_MODELS, "https://libvirt.org/formatdomain.html#cpu-model-and-topology"))
def cpu_mitigations(dom: Domain, env: Environment) -> Iterator[Result]:
    """Without `spec-ctrl`, `ssbd`, `md-clear`, `stibp`, `arch-capabilities` (Intel) or `ibpb`,
    `virt-ssbd`, `amd-ssbd` (AMD), the guest kernel cannot turn on its own Spectre v2, SSB and MDS
    mitigations, and its processes can attack each other. The features are lost when the XML
    disables them, or when the CPU model QEMU starts carries none of them and nothing adds them. A
    named model is judged by what QEMU itself puts in it (QEMU's model data, shipped with vmsec:
    plain `Haswell`, `EPYC`, `qemu64` carry none; the `-IBRS`/`-IBPB` variants and newer models do).
    A VM without `<cpu>`, or with a `<cpu>` that only holds `<topology>`/`<numa>`, starts QEMU's
    default model for its machine type (qemu64 on x86_64, qemu32 for i686). Only x86 guests are
    judged; host-model and host-passthrough pass the host's features.

    Remediation: Use `mode='host-model'` (or host-passthrough where migration allows), or a current
    named model plus `<feature policy='require' name='spec-ctrl'/>`, `ssbd`, `md-clear` (Intel) or
    `ibpb`, `virt-ssbd` (AMD); remove `disable`/`forbid` on these features.
    """
    arch = _x86_only(dom, env)
    if arch is None:
        return
    cpu = dom.cpu
    features = cpu.features if cpu is not None else ()
    disabled = sorted(f.name for f in features
                      if f.name in MITIGATION_FEATURES and f.policy in ("disable", "forbid"))
    if disabled:
        yield fail("cpu", f"mitigation feature(s) disabled: {', '.join(disabled)}",
                   ev(dom.origin, "cpu/feature[@policy='disable' or @policy='forbid']/@name", disabled))
        return
    model = effective_cpu_model(dom, arch)
    if model is None:
        assert cpu is not None
        yield ok("cpu", f"CPU mode {cpu.mode} passes the host's mitigation features",
                 ev(dom.origin, "cpu/@mode", cpu.mode))
        return
    added = sorted(f.name for f in features
                   if f.name in MITIGATION_FEATURES and (f.policy or "require") in _ENABLING)
    data = x86_data()
    carried = data.model_features(model.name) if model.name else None
    if carried is None and not added:
        why = (f"{model.phrase} is not a model {data.name} defines" if model.name else model.phrase)
        yield unknown("cpu", f"{why}: whether it carries mitigation flags is unknown", model.evidence)
        return
    present = sorted(set(added) | (MITIGATION_FEATURES & (carried or frozenset())))
    if present:
        via = f"; the XML adds {', '.join(added)}" if added else ""
        yield ok("cpu", f"{model.phrase} carries {', '.join(present)}{via}", model.evidence)
    else:
        yield fail("cpu", f"{model.phrase} carries no mitigation flag (spec-ctrl, ssbd, ibpb …, per "
                   f"{data.name}'s model data) and the XML adds none", model.evidence)


def host_nested(host: Host | None) -> tuple[bool | None, Evidence | None]:
    """Whether the host's KVM module allows nested virtualization, with the parameter read."""
    _, nested, where = _host_nesting(host)
    return nested, where


def _host_nesting(host: Host | None) -> tuple[str | None, bool | None, Evidence | None]:
    """(the loaded KVM vendor module, its nested parameter, evidence)."""
    if host is None or host.module_params is None:
        return None, None, None
    for module in ("kvm_intel", "kvm_amd"):
        value = host.module_param(module, "nested")
        if value is not None:
            where = ev(f"{host.root.rstrip('/')}/sys/module/{module}/parameters/nested", "", value)
            return module, value.strip().upper() in ("Y", "1"), where
    return None, None, None


_FLAG_MODULE = {"vmx": "kvm_intel", "svm": "kvm_amd"}


def _nested_exposure(dom: Domain, arch: GuestArch) -> tuple[str | None, str, frozenset[str] | None]:
    """How the CPU definition exposes vmx/svm: (description or None, kind, flags).

    kind: "explicit" (a required feature, host-passthrough, maximum: the host's flag), "host-model"
    (the host decides), "model" (the named or default model carries the flags listed), "none",
    "unknown" (the model is not in QEMU's data)."""
    cpu = dom.cpu
    features = cpu.features if cpu is not None else ()
    names = {f.name: f.policy or "require" for f in features if f.name in _NESTED_FEATURES}
    if any(p in ("disable", "forbid") for p in names.values()):
        return None, "none", frozenset()
    if any(p in ("require", "force") for p in names.values()):
        shown = ", ".join(f"{n} ({p})" for n, p in sorted(names.items()))
        return f"feature {shown}", "explicit", frozenset(names)
    if cpu is not None and cpu.mode in ("host-passthrough", "maximum"):
        return f"mode {cpu.mode}", "explicit", _NESTED_FEATURES
    if cpu is not None and cpu.mode == "host-model":
        return "mode host-model", "host-model", _NESTED_FEATURES
    model = effective_cpu_model(dom, arch)
    if model is None or model.name is None:
        return model.phrase if model else "the CPU model", "unknown", None
    carried = x86_data().model_features(model.name)
    if carried is None:
        return f"{model.phrase} (not a model {x86_data().name} defines)", "unknown", None
    flags = (carried & _NESTED_FEATURES) | frozenset(n for n, p in names.items() if p == "optional")
    if not flags:
        return None, "none", frozenset()
    return f"{model.phrase}, which carries {'/'.join(sorted(flags))}", "model", flags


@check("VMS-DOM-144", title="Guests are not given nested virtualization", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "cpu", "nested", "host-escape"),
       references=(_REF_NESTED, "https://www.cve.org/CVERecord?id=CVE-2021-3656",
                   "https://www.cve.org/CVERecord?id=CVE-2021-29657"))
def no_nested_virtualization(dom: Domain, env: Environment) -> Iterator[Result]:
    """A guest that sees vmx (Intel) or svm (AMD) can run its own hypervisor and drive KVM's nested
    code, a recurring source of guest-to-host escapes (CVE-2021-29657, CVE-2021-3653,
    CVE-2021-3656). host-passthrough and `maximum` expose the flag, as does a `require`/`force`
    feature; host-model exposes it when the host enables nesting. A named model exposes what QEMU
    puts in it (QEMU's model data: `qemu64`, `EPYC`, `Opteron_G*` carry svm), and a VM without a
    model — no `<cpu>`, or one with only `<topology>`/`<numa>` — gets QEMU's default model (qemu64 on
    x86_64). KVM passes the flag only when the host's vendor module (kvm_intel for vmx, kvm_amd for
    svm) has `nested` on, which is the kernel's default: High when it is on; PASS when it is off or
    the host's vendor cannot provide the flag. vmx and svm exist only on x86: other guests are not
    judged, nor are TCG guests (VMS-DOM-009), whose nesting is emulated without KVM.

    Remediation: Add `<feature policy='disable' name='vmx'/>` and `<feature policy='disable'
    name='svm'/>` to the `<cpu>`, and set `options kvm_intel nested=0` (or kvm_amd) on hosts that
    run untrusted guests.
    """
    arch = _x86_only(dom, env)
    if arch is None:
        return
    if dom.virt_type == "qemu":
        yield ok("cpu", "the VM runs under TCG: nested guests would be emulated by QEMU, not run by KVM's "
                 "nested code (VMS-DOM-009 judges TCG itself)", ev(dom.origin, "@type", "qemu"))
        return
    how, kind, flags = _nested_exposure(dom, arch)
    cpu = dom.cpu
    locator = ("cpu/@mode" if how and how.startswith("mode") else
               "cpu/feature" if kind == "explicit" else "cpu/model")
    where = ev(dom.origin, locator, how)
    if kind == "none":
        yield ok("cpu", f"the CPU definition (mode {(cpu.mode if cpu else None) or 'custom'}) does not "
                 "expose vmx/svm", where)
        return
    if kind == "unknown":
        yield unknown("cpu", f"whether {how} exposes vmx/svm is unknown", where)
        return
    assert flags is not None and how is not None
    module, nested, nested_ev = _host_nesting(env.host)
    host_ev = tuple(e for e in (nested_ev,) if e)
    if kind == "model" and module in _FLAG_MODULE.values() and not any(_FLAG_MODULE[f] == module
                                                                        for f in flags):
        yield ok("cpu", f"{how}, but the host's KVM is {module}, which cannot provide "
                 f"{'/'.join(sorted(flags))}: QEMU drops it", where, *host_ev)
    elif nested is False:
        yield ok("cpu", f"{how} would expose vmx/svm, but the host's KVM has nesting off", where, *host_ev)
    elif nested:
        yield fail("cpu", f"{how} exposes vmx/svm and the host's KVM allows nesting", where, *host_ev,
                   severity=Severity.HIGH)
    elif kind == "host-model":
        yield unknown("cpu", f"{how} exposes vmx/svm only if the host enables nesting, which is "
                      "unknown", where)
    elif kind == "model":
        needs = " or ".join(f"{_FLAG_MODULE[f]} nested on (the kernel's default)" for f in sorted(flags))
        yield unknown("cpu", f"{how}: the guest gets it on a host with {needs}; the host's KVM module "
                      "is unknown", where)
    else:
        yield fail("cpu", f"{how} exposes vmx/svm (the host's nested setting is unknown; the kernel's "
                   "default is on)", where)


__all__ = ["MITIGATION_FEATURES", "confidential_no_balloon", "cpu_mitigations", "host_nested",
           "no_ksm_merging", "no_nested_virtualization", "no_shared_memory_file"]
