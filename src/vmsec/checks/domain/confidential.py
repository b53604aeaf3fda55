"""Confidential computing: AMD SEV / SEV-SNP, Intel TDX and IBM s390 protected virtualization
(`<launchSecurity>`), their policies, and configuration that undoes their protection.

VMS-DOM-160 yields one result per VM; the others only judge VMs that have `<launchSecurity>`
(VMS-DOM-161 only type `sev`, VMS-DOM-163 only `sev-snp` and `tdx`) and yield nothing otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.facts import Domain
from vmsec.findings import Evidence

_REF_SEV = "https://libvirt.org/kbase/launch_security_sev.html"
_REF_LAUNCH = "https://libvirt.org/formatdomain.html#launch-security"
_REF_SEV_API = "https://www.amd.com/system/files/TechDocs/55766_SEV-KM_API_Specification.pdf"
_REF_SNP_ABI = "https://www.amd.com/system/files/TechDocs/56860.pdf"

# SEV guest policy bits (AMD SEV API specification, "Guest Policy").
SEV_NODBG = 1 << 0
SEV_NOKS = 1 << 1
SEV_ES = 1 << 2
# SEV-SNP guest policy bit 19: DEBUG allowed (SNP firmware ABI). TDX TD attribute bit 0: DEBUG.
SNP_DEBUG = 1 << 19
TDX_DEBUG = 1 << 0


def _policy_ev(dom: Domain) -> Evidence:
    ls = dom.launch_security
    return ev(dom.origin, "launchSecurity/policy",
              None if ls is None else (ls.policy_text or (hex(ls.policy) if ls.policy is not None else None)))


@check("VMS-DOM-160", title="Guests run with memory encryption (launchSecurity)", severity=Severity.INFO,
       tags=(Tag.ENCRYPTION, "confidential-computing"), references=(_REF_LAUNCH, _REF_SEV))
def has_launch_security(dom: Domain) -> Iterator[Result]:
    """Without `<launchSecurity>` the host (its administrators, a compromised QEMU, a memory dump)
    can read all guest memory. AMD SEV-SNP, Intel TDX and s390 protected virtualization encrypt it
    with keys the host does not hold. Informational: it needs suitable hardware and is a policy
    choice.

    Remediation: On capable hardware, run guests that must be protected from the host with
    `<launchSecurity type='sev-snp'>` (or `tdx`, `s390-pv`) and attest them at launch.
    """
    ls = dom.launch_security
    if ls is None:
        yield fail("launchSecurity", "the VM's memory is not encrypted against the host",
                   ev(dom.origin, "launchSecurity", "absent"))
    else:
        yield ok("launchSecurity", f"the VM uses {ls.type} launch security",
                 ev(dom.origin, "launchSecurity/@type", ls.type))


@check("VMS-DOM-161", title="SEV policy forbids debugging and key sharing and requires SEV-ES",
       severity=Severity.HIGH, tags=(Tag.ENCRYPTION, "confidential-computing", "sev"),
       references=(_REF_SEV, _REF_SEV_API))
def sev_policy_bits(dom: Domain) -> Iterator[Result]:
    """The SEV guest policy decides what the hypervisor may do: with bit 0 (NODBG) clear the host
    can use the firmware's debug commands to decrypt guest memory (high); with bit 1 (NOKS) clear
    the guest's key may be shared with other guests (medium); with bit 2 (ES) clear the guest's
    register state stays unencrypted on every exit (medium).

    Remediation: Set `<policy>0x0007</policy>` (NODBG | NOKS | ES) — or better, move to SEV-SNP.
    """
    ls = dom.launch_security
    if ls is None or ls.type != "sev":
        return
    where = _policy_ev(dom)
    if ls.policy is None:
        yield unknown("launchSecurity/policy", "the SEV policy is absent or not a number", where)
        return
    missing = []
    if not ls.policy & SEV_NODBG:
        missing.append("NODBG (bit 0): the host may debug-decrypt guest memory")
    if not ls.policy & SEV_NOKS:
        missing.append("NOKS (bit 1): the guest key may be shared")
    if not ls.policy & SEV_ES:
        missing.append("ES (bit 2): register state is not encrypted")
    if missing:
        sev = None if not ls.policy & SEV_NODBG else Severity.MEDIUM
        yield fail("launchSecurity/policy", f"SEV policy {ls.policy:#06x} lacks " + "; ".join(missing),
                   where, severity=sev)
    else:
        yield ok("launchSecurity/policy", f"SEV policy {ls.policy:#06x} sets NODBG, NOKS and ES", where)


@check("VMS-DOM-162", title="AMD guests use SEV-SNP rather than plain SEV", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "confidential-computing", "sev"),
       references=(_REF_SEV, "https://www.cve.org/CVERecord?id=CVE-2020-12967"))
def snp_not_plain_sev(dom: Domain) -> Iterator[Result]:
    """SEV and SEV-ES encrypt guest memory but do not protect its integrity: the hypervisor can
    remap or replay encrypted pages through the nested page tables (CVE-2020-12967, SEVurity) and
    so steer guest execution. SEV-SNP adds the reverse-map table that prevents this.

    Remediation: On EPYC 7003 (Milan) or newer with SNP-capable firmware and kernel, switch to
    `<launchSecurity type='sev-snp'>`.
    """
    ls = dom.launch_security
    if ls is None:
        return
    where = ev(dom.origin, "launchSecurity/@type", ls.type)
    if ls.type == "sev":
        es = ls.policy is not None and bool(ls.policy & SEV_ES)
        yield fail("launchSecurity", f"the VM uses {'SEV-ES' if es else 'plain SEV'}, without "
                   "memory integrity protection", where)
    else:
        yield ok("launchSecurity", f"the VM uses {ls.type}", where)


@check("VMS-DOM-163", title="Confidential VM policy does not allow debugging", severity=Severity.HIGH,
       tags=(Tag.ENCRYPTION, "confidential-computing", "sev-snp", "tdx"),
       references=(_REF_LAUNCH, _REF_SNP_ABI,
                   "https://www.intel.com/content/www/us/en/developer/tools/trust-domain-extensions/"
                   "documentation.html"))
def no_debug_policy(dom: Domain) -> Iterator[Result]:
    """With the DEBUG bit in the policy (SEV-SNP policy bit 19, TDX attribute bit 0) the host can
    read and write the guest's private memory through the firmware's debug interface: the
    confidentiality guarantee is void. libvirt's default SNP policy (0x30000) leaves it clear.

    Remediation: Clear the debug bit in `<launchSecurity><policy>`, e.g. `0x00030000` for SEV-SNP.
    """
    ls = dom.launch_security
    if ls is None or ls.type not in ("sev-snp", "tdx"):
        return
    where = _policy_ev(dom)
    bit, name = (SNP_DEBUG, "bit 19") if ls.type == "sev-snp" else (TDX_DEBUG, "bit 0")
    if ls.policy is None:
        if ls.policy_text:
            yield unknown("launchSecurity/policy", f"the {ls.type} policy {ls.policy_text!r} is not "
                          "a number", where)
        else:
            yield ok("launchSecurity/policy", f"no {ls.type} policy given: the default has DEBUG "
                     "clear", where)
    elif ls.policy & bit:
        yield fail("launchSecurity/policy", f"{ls.type} policy {ls.policy:#x} sets DEBUG ({name})",
                   where)
    else:
        yield ok("launchSecurity/policy", f"{ls.type} policy {ls.policy:#x} has DEBUG ({name}) clear",
                 where)


@check("VMS-DOM-164", title="Confidential VMs have no side doors around memory encryption",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "confidential-computing"),
       references=(_REF_SEV, _REF_LAUNCH))
def no_side_doors(dom: Domain) -> Iterator[Result]:
    """Memory encryption protects a guest only if nothing else hands its data to the host:
    assigned host devices (DMA outside the encrypted path), raw QEMU command-line options libvirt
    does not vet, crash dumps written on the host (`on_crash` coredump), and host directory shares.
    The memory balloon is judged by VMS-DOM-142 and ivshmem devices by VMS-DOM-047.

    Remediation: Remove `<hostdev>` and hostdev interfaces, `<qemu:commandline>` and shared
    `<filesystem>` devices from confidential VMs, and set `<on_crash>destroy</on_crash>`.
    """
    if not dom.confidential:
        return
    found = 0
    for hd in dom.hostdevs:
        found += 1
        yield fail(f"hostdev {hd.locator}", f"host {hd.type} device {hd.address or '?'} is assigned",
                   ev(dom.origin, hd.locator + "/source", hd.address))
    for iface in dom.interfaces:
        if iface.type == "hostdev":
            found += 1
            yield fail(f"interface {iface.locator}", f"host network device {iface.hostdev_address or '?'} "
                       "is assigned", ev(dom.origin, iface.locator + "/source", iface.hostdev_address))
    if dom.qemu is not None and (dom.qemu.args or dom.qemu.env):
        found += 1
        yield fail("qemu:commandline", f"raw QEMU options: {' '.join(dom.qemu.args[:8])}".rstrip(),
                   ev(dom.origin, "qemu:commandline/qemu:arg/@value", dom.qemu.args[:8]))
    if dom.on_crash and dom.on_crash.startswith("coredump"):
        found += 1
        yield fail("on_crash", f"on_crash {dom.on_crash} writes a guest memory dump on the host",
                   ev(dom.origin, "on_crash", dom.on_crash))
    for fs in dom.filesystems:
        found += 1
        yield fail(f"filesystem {fs.locator}", f"host directory {fs.source_dir or fs.source_name or '?'} "
                   "is shared", ev(dom.origin, fs.locator + "/source/@dir", fs.source_dir))
    if not found:
        yield ok("launchSecurity", "no host devices, raw QEMU options, crash dumps or shares",
                 ev(dom.origin, "launchSecurity/@type", dom.launch_security.type
                    if dom.launch_security else None))


__all__ = ["SEV_ES", "SEV_NODBG", "SEV_NOKS", "SNP_DEBUG", "TDX_DEBUG", "has_launch_security",
           "no_debug_policy", "no_side_doors", "sev_policy_bits", "snp_not_plain_sev"]
