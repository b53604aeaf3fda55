"""Host directories shared into guests (``<filesystem>``: 9p and virtiofs).

A shared directory is a hole in the VM boundary by design; these checks judge what is shared and how.
Only filesystems backed by a host directory (``type='mount'`` or ``'bind'`` with a source) are
judged. A domain without such shares yields nothing: there is no per-VM PASS, because "no share"
is the common case and says nothing about the host.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok
from vmsec.facts import Domain, Filesystem

_REF_QEMU_SEC = "https://www.qemu.org/docs/master/system/security.html"
_REF_FORMATDOMAIN = "https://libvirt.org/formatdomain.html#filesystems"

# Paths whose exposure to a guest hands it the host: sharing one of them, a directory that contains
# one of them (`/var` contains /var/lib/libvirt) or — for _INSIDE — anything below them is critical.
_INSIDE_ORDERED = (
    "/etc", "/root", "/var/lib/libvirt", "/run", "/var/run", "/proc", "/sys", "/dev", "/boot",
    "/var/lib/docker", "/var/lib/containerd", "/var/lib/containers", "/var/lib/kubelet",
)
_EXACT_ORDERED = (*_INSIDE_ORDERED, "/home", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/var/log",
                  "/var/lib")
_INSIDE = frozenset(_INSIDE_ORDERED)
# Control sockets of other managers: a guest that can reach them can start host containers.
_SOCKET_NAMES = frozenset({"docker.sock", "containerd.sock", "podman.sock", "libvirt-sock",
                           "virtqemud-sock", "crio.sock"})


def host_source(fs: Filesystem) -> str | None:
    """The host directory a filesystem exposes, or None when it is not a host-directory share."""
    if fs.type not in ("mount", "bind") or fs.source_socket:
        return None  # an external virtiofsd's socket: the directory it serves is not in the XML
    return fs.source_dir or None


def normalise(path: str) -> str:
    """Lexically normalise a host path: one leading slash, no '.', '..' or repeated slashes.

    Symlinks on the host are not resolved (the XML is judged without host access); `/var/run` is in
    the sensitive list because it is a link to `/run` on current distributions.
    """
    cleaned = posixpath.normpath("/" + path.lstrip("/"))
    return "/" + cleaned.lstrip("/")


def _components(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.split("/") if p)


def _is_within(path: str, base: str) -> bool:
    """True when ``path`` is ``base`` or below it, comparing whole components."""
    p, b = _components(path), _components(base)
    return p[: len(b)] == b


def sensitive_reason(path: str) -> str | None:
    """Why sharing ``path`` (already normalised) exposes the host, or None."""
    if path == "/":
        return "it is the host's root directory"
    if posixpath.basename(path) in _SOCKET_NAMES or path.endswith(".sock"):
        return "it is a control socket of a host service"
    if path in _EXACT_ORDERED:
        return f"it is the host's {path}"
    contained = [s for s in _EXACT_ORDERED if _is_within(s, path)]
    if contained:
        more = f" and {len(contained) - 3} more" if len(contained) > 3 else ""
        return f"it contains the host's {', '.join(contained[:3])}{more}"
    for sensitive in _INSIDE_ORDERED:
        if _is_within(path, sensitive):
            return f"it lies inside the host's {sensitive}"
    return None


def _is_9p(dom: Domain, fs: Filesystem) -> bool:
    # LXC domains bind-mount directly; 9p is QEMU's transport when the driver is not virtiofs.
    return dom.virt_type != "lxc" and fs.driver_type in (None, "path", "handle")


@check("VMS-DOM-090", title="No sensitive host path is shared into a guest", severity=Severity.CRITICAL,
       tags=(Tag.ISOLATION, "filesystem", "host-escape"),
       references=(_REF_QEMU_SEC, _REF_FORMATDOMAIN))
def no_sensitive_host_share(dom: Domain) -> Iterator[Result]:
    """A guest that can see the host's /, /etc, /root, /run, /proc, /sys, /dev, /boot, libvirt's state
    directory or a container-manager socket can read host secrets and, if the share is writable,
    take over the host. QEMU's security model: the QEMU process should not have access to resources
    the guest cannot reach, and a shared directory is exactly such a resource.

    Remediation: Share a dedicated directory created for the guest (for example
    `/srv/vm-shares/<vm>`), never a system directory or a directory containing one; add
    `<readonly/>` where the guest only reads.
    """
    for fs in dom.filesystems:
        source = host_source(fs)
        if source is None:
            continue
        path = normalise(source)
        where = ev(dom.origin, fs.locator + "/source/@dir", source)
        reason = sensitive_reason(path)
        if reason:
            mode = "read-only" if fs.readonly else "writable"
            yield fail(f"filesystem {fs.locator}",
                       f"host path {path} is shared {mode} with the guest: {reason}", where)
        else:
            yield ok(f"filesystem {fs.locator}", f"host path {path} is not a system path", where)


@check("VMS-DOM-091", title="Host directory shares are read-only", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "filesystem"),
       references=(_REF_QEMU_SEC, _REF_FORMATDOMAIN))
def shares_are_readonly(dom: Domain) -> Iterator[Result]:
    """A writable share lets the guest plant files the host (or another guest using the same
    directory) later opens or executes, and lets it fill the host filesystem.

    Remediation: Add `<readonly/>` to the `<filesystem>` unless the guest must write; if it must,
    use a dedicated directory on its own filesystem with a quota.
    """
    for fs in dom.filesystems:
        source = host_source(fs)
        if source is None:
            continue
        where = ev(dom.origin, fs.locator + "/readonly", "present" if fs.readonly else "absent")
        if fs.readonly:
            yield ok(f"filesystem {fs.locator}", f"host path {source} is shared read-only", where)
        else:
            yield fail(f"filesystem {fs.locator}",
                       f"host path {source} is shared writable (no <readonly/>)", where)


@check("VMS-DOM-092", title="9p shares do not use accessmode passthrough", severity=Severity.HIGH,
       tags=(Tag.ISOLATION, "filesystem", "9p"),
       references=(_REF_FORMATDOMAIN, "https://github.com/advisories/GHSA-ppj8-867g-rgjr",
                   "https://www.cve.org/CVERecord?id=CVE-2023-2861"))
def ninep_not_passthrough(dom: Domain) -> Iterator[Result]:
    """With 9p `accessmode='passthrough'` — libvirt's default when the attribute is absent — files
    are created with the guest's uids and modes on the host. Setuid/setgid files and device nodes
    made by the guest then exist on the host as such (9pfs did not drop SUID/SGID; CVE-2023-2861
    let a guest open host special files). A read-only share removes the creation path and lowers
    the finding to medium.

    Remediation: Set `accessmode='mapped'` (credentials kept in extended attributes) or
    `accessmode='squash'`, or move to virtiofs with `<idmap>` and `<readonly/>`.
    """
    for fs in dom.filesystems:
        source = host_source(fs)
        if source is None or not _is_9p(dom, fs):
            continue
        mode = fs.accessmode or "passthrough"
        where = ev(dom.origin, fs.locator + "/@accessmode", fs.accessmode)
        subject = f"filesystem {fs.locator}"
        if mode != "passthrough":
            yield ok(subject, f"9p share of {source} uses accessmode {mode}", where)
            continue
        stated = "accessmode passthrough" if fs.accessmode else "no accessmode (default passthrough)"
        if fs.readonly:
            yield fail(subject, f"9p share of {source} has {stated}, read-only", where,
                       severity=Severity.MEDIUM)
        else:
            yield fail(subject, f"9p share of {source} has {stated} and is writable", where)


@check("VMS-DOM-093", title="Writable virtiofs shares map guest ids (idmap)", severity=Severity.HIGH,
       tags=(Tag.ISOLATION, "filesystem", "virtiofs"),
       references=(_REF_FORMATDOMAIN, "https://github.com/advisories/GHSA-mv2v-9q68-4c8h",
                   "https://www.cve.org/CVERecord?id=CVE-2022-0358"))
def virtiofs_writable_idmapped(dom: Domain) -> Iterator[Result]:
    """virtiofsd runs as root under the system libvirt daemon. Without `<idmap>`, a writable share
    lets guest root create files owned by host root — including setgid ones (CVE-2022-0358) and
    special files (CVE-2020-35517).

    Remediation: Add `<readonly/>`, or an `<idmap>` mapping guest ids to an unprivileged host range,
    and keep virtiofsd current.
    """
    for fs in dom.filesystems:
        source = host_source(fs)
        if source is None or fs.driver_type != "virtiofs":
            continue
        subject = f"filesystem {fs.locator}"
        if fs.readonly:
            yield ok(subject, f"virtiofs share of {source} is read-only",
                     ev(dom.origin, fs.locator + "/readonly", "present"))
        elif fs.idmap:
            yield ok(subject, f"virtiofs share of {source} maps guest ids through <idmap>",
                     ev(dom.origin, fs.locator + "/idmap", "present"))
        else:
            yield fail(subject, f"virtiofs share of {source} is writable and has no <idmap>",
                       ev(dom.origin, fs.locator + "/idmap", "absent"))


__all__ = ["host_source", "ninep_not_passthrough", "no_sensitive_host_share", "normalise",
           "sensitive_reason", "shares_are_readonly", "virtiofs_writable_idmapped"]
