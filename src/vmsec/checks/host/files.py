"""Host files that hand out virtualization privileges: the KVM and vhost device nodes."""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.facts import Host

# /dev/vfio/vfio (the container node) is meant to be 0666: it grants nothing by itself. The
# per-group nodes /dev/vfio/<N> are what give access to an assigned device.
_NODES = ("/dev/kvm", "/dev/vhost-net", "/dev/vhost-vsock")


def _is_guarded_node(path: str) -> bool:
    if path in _NODES:
        return True
    return path.startswith("/dev/vfio/") and path.rsplit("/", 1)[-1].isdigit()


@check("VMS-HOST-015", title="KVM, vhost and VFIO group device nodes are not world-accessible",
       severity=Severity.LOW, tags=(Tag.ACCESS_CONTROL, "kvm", "device-node"),
       references=("https://docs.kernel.org/virt/kvm/api.html",
                   "https://docs.kernel.org/driver-api/vfio.html"))
def device_node_permissions(host: Host) -> Iterator[Result]:
    """Anyone who can open /dev/kvm can create VMs and reach the whole KVM ioctl surface; /dev/vhost-net
    is in-kernel network emulation; a /dev/vfio/<group> node is a physical device. On a host with
    unprivileged users, world read-write (0666) exposes that kernel attack surface to all of them
    (some distributions ship /dev/kvm 0666 on purpose).

    Remediation: Restrict the nodes to 0660 root:kvm (a udev rule) and keep only trusted users in
    the kvm group.
    """
    nodes = list(host.device_nodes)
    if host.kvm_device is not None and all(n.path != host.kvm_device.path for n in nodes):
        nodes.insert(0, host.kvm_device)
    for node in nodes:
        if not _is_guarded_node(node.path) or node.exists is False:
            continue
        subject = f"device {node.path}"
        if node.exists is None or node.mode is None:
            yield unknown(subject, f"{node.path} could not be examined: {node.error or 'no mode'}")
            continue
        where = ev(node.path, "mode", f"{node.mode_text} {node.owner or node.uid}:"
                   f"{node.group or node.gid}")
        if node.mode & 0o006 == 0o006:
            yield fail(subject, f"{node.path} is mode {node.mode_text}: every local user can open it "
                       "read-write", where)
        else:
            yield ok(subject, f"{node.path} is mode {node.mode_text}", where)
