"""Running guests audited through their QEMU guest agent: real Debian 12 guests booted under TCG through
``qemu:///embed`` (tests/realvm/build_agent_guest.sh), with qemu-guest-agent 7.2 running inside, in two
allow-list variants — everything allowed, and guest-exec plus guest-file-* blocked (RHEL's default) —
and a third domain whose agent never connects, for ``--guests auto`` to fall back to its disk.

The guests boot concurrently, once for this module (about 15-30 s under TCG).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vmsec.checks.catalog import default_catalog
from vmsec.collectors.libvirt import collect_from_connection
from vmsec.engine import run_checks
from vmsec.errors import ErrorKind
from vmsec.facts import Guest, Inventory
from vmsec.findings import Finding, Status

pytestmark = pytest.mark.realvm

BUILD = Path(__file__).resolve().parent / "build_agent_guest.sh"
LOCKED = "guest-exec,guest-exec-status,guest-file-open,guest-file-read,guest-file-close,guest-file-write," \
         "guest-file-seek,guest-file-flush"
PLANTED_KEY = "vmsec-agent-test"


@dataclass
class AgentGuests:
    conn: Any
    uri: str
    root: Path

    def collect(self, guests: str, allow_exec: bool = False) -> Inventory:
        inventory: Inventory = collect_from_connection(self.conn, self.uri, guests=guests,
                                                       allow_guest_exec=allow_exec)
        return inventory


def _domain(name: str, image: Path, overlay: Path, log: Path, block: str | None, boot: bool) -> str:
    kernel = (f"<kernel>{image}/vmlinuz</kernel><initrd>{image}/initrd.img</initrd>"
              f"<cmdline>root=/dev/vda rw console=ttyS0 init=/usr/local/sbin/vmsec-init"
              f"{' vmsec.qga_block=' + block if block else ''}</cmdline>") if boot else ""
    return f"""<domain type='qemu'><name>{name}</name><memory unit='MiB'>512</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type>{kernel}</os>
<devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{overlay}'/>
    <target dev='vda' bus='virtio'/></disk>
  <serial type='file'><source path='{log}'/><target port='0'/></serial>
  <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
</devices></domain>"""


def _agent_answers(libvirt: Any, dom: Any) -> bool:
    import libvirt_qemu

    try:
        libvirt_qemu.qemuAgentCommand(dom, '{"execute": "guest-ping"}', 2, 0)
        return True
    except libvirt.libvirtError:
        return False


@pytest.fixture(scope="module")
def agent_guests(libvirt_module: Any, embed_uri: str) -> Iterator[AgentGuests]:
    libvirt = libvirt_module
    done = subprocess.run(["sh", str(BUILD)], capture_output=True, text=True, timeout=1200, check=False)
    if done.returncode != 0:
        pytest.fail(f"{BUILD} failed:\n{done.stderr[-3000:]}", pytrace=False)
    image = Path(done.stdout.strip().splitlines()[-1])
    root = Path(tempfile.mkdtemp(prefix="vmsec-agent-", dir="/tmp"))  # the guests' disks and logs
    uri = embed_uri
    conn = libvirt.open(uri)
    doms = []
    try:
        plan = {"vmsec-agent": (None, True), "vmsec-agent-locked": (LOCKED, True),
                "vmsec-agent-absent": (None, False)}
        logs = {}
        for name, (block, boot) in plan.items():
            overlay = root / f"{name}.qcow2"
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image / "root.qcow2"), "-F",
                            "qcow2", str(overlay)], check=True)
            logs[name] = root / f"{name}.log"
            doms.append(conn.createXML(_domain(name, image, overlay, logs[name], block, boot), 0))
        deadline = time.monotonic() + 240
        waiting = {d for d in doms if d.name() != "vmsec-agent-absent"}
        while waiting and time.monotonic() < deadline:
            for dom in list(waiting):
                log = logs[dom.name()]
                ready = log.exists() and "VMSEC-READY" in log.read_text(errors="replace")
                if ready and _agent_answers(libvirt, dom):
                    waiting.discard(dom)
            time.sleep(0.5)
        if waiting:
            tails = {d.name(): logs[d.name()].read_text(errors="replace")[-1500:] for d in waiting}
            pytest.fail(f"guests did not come up with their agent in 240 s: {tails}")
        yield AgentGuests(conn=conn, uri=uri, root=root)
    finally:
        for dom in doms:
            with contextlib.suppress(libvirt.libvirtError):
                dom.destroy()
        conn.close()
        shutil.rmtree(root, ignore_errors=True)


def _guest(inventory: Inventory, name: str) -> Guest:
    found = [g for g in inventory.guests if g.name == name]
    assert len(found) == 1, [g.name for g in inventory.guests]
    return found[0]


def _findings(inventory: Inventory, ids: list[str], guest: str) -> list[Finding]:
    found = run_checks(inventory, default_catalog().select(ids=ids)).findings
    return [f for f in found if f.target.name == guest]


def test_the_agent_reads_the_guests_files_and_what_runs(agent_guests: AgentGuests) -> None:
    inventory = agent_guests.collect("agent")
    guest = _guest(inventory, "vmsec-agent")
    assert guest.domain == "vmsec-agent" and guest.origin == "guest agent of vmsec-agent"
    assert guest.os is not None and guest.os.id == "debian" and guest.os.origin == "/etc/os-release"
    assert guest.packages and any(p.name == "qemu-guest-agent" for p in guest.packages)
    assert guest.accounts and any(a.name == "root" for a in guest.accounts)
    assert guest.authorized_keys and any(k.comment == PLANTED_KEY for k in guest.authorized_keys)
    runtime = guest.runtime
    assert runtime is not None and runtime.sysctl is not None
    assert runtime.sysctl["kernel.kptr_restrict"] == "0"  # the guest's init set it at boot
    assert runtime.mounts and runtime.mount("/") is not None
    # no guest-exec: nothing built from directory listings is half-read — it is unknown, and said so
    assert runtime.processes is None and guest.services is None and guest.pam is None
    note = [r for r in inventory.records
            if r.what == "guest agent" and r.source == "guest agent of vmsec-agent"]
    assert note and "guest-exec" in (note[0].reason or "")
    kptr = _findings(inventory, ["VMS-GST-102"], "vmsec-agent")
    assert [f.status for f in kptr] == [Status.FAIL] and "running kernel" in kptr[0].message
    telnet = _findings(inventory, ["VMS-GST-085"], "vmsec-agent")
    assert [f.status for f in telnet] == [Status.UNKNOWN]  # never "no telnet among 0 services"


def test_with_guest_exec_allowed_listings_are_read_too(agent_guests: AgentGuests) -> None:
    inventory = agent_guests.collect("agent", allow_exec=True)
    guest = _guest(inventory, "vmsec-agent")
    assert guest.services is not None and guest.pam is not None
    assert guest.sysctl is not None and guest.sysctl["kernel.kptr_restrict"].value == "1"
    assert guest.runtime is not None and guest.runtime.processes is None
    assert "over SSH" in guest.runtime.reason("processes")
    [kptr] = _findings(inventory, ["VMS-GST-102"], "vmsec-agent")
    assert kptr.status is Status.FAIL and "99-vmsec.conf" in kptr.message and "next boot" in kptr.message
    # find gives the modes; no agent command shows an ACL: a mode that is fine is not enough to pass
    shadow = {f.subject: f for f in _findings(inventory, ["VMS-GST-140"], "vmsec-agent")}["/etc/shadow"]
    assert shadow.status is Status.UNKNOWN and "guest agent shows no ACLs" in shadow.message, shadow.message
    assert "0640 root:shadow" in shadow.message  # owners by name, through the guest's own /etc/group


def test_a_locked_down_agent_gives_what_it_allows(agent_guests: AgentGuests) -> None:
    inventory = agent_guests.collect("agent")
    guest = _guest(inventory, "vmsec-agent-locked")
    assert guest.os is not None and guest.os.id == "debian" and guest.os.origin == "guest-get-osinfo"
    assert guest.packages is None and guest.accounts is None
    assert guest.runtime is not None and guest.runtime.kernel is not None and guest.runtime.kernel.running
    assert "file reads" in guest.runtime.reason("sysctl")
    mine = [r for r in inventory.records if "vmsec-agent-locked" in r.source]
    assert mine and all(r.ok for r in mine)  # a locked agent is a fact about the guest, not a failed read
    statuses = {f.check_id: f.status for f in _findings(inventory, ["VMS-GST-*"], "vmsec-agent-locked")}
    assert statuses and Status.PASS not in statuses.values()


def test_an_agent_that_is_not_connected(agent_guests: AgentGuests) -> None:
    strict = agent_guests.collect("agent")
    assert not [g for g in strict.guests if g.domain == "vmsec-agent-absent"]
    [record] = [r for r in strict.records if r.source == "guest agent of vmsec-agent-absent"]
    assert not record.ok and record.kind is ErrorKind.UNREACHABLE and "not connected" in (record.reason or "")
    auto = agent_guests.collect("auto")
    disk = _guest(auto, "vmsec-agent-absent")  # its disk, read offline instead
    assert disk.runtime is None and disk.os is not None and disk.os.id == "debian"
    [record] = [r for r in auto.records if r.source == "guest agent of vmsec-agent-absent"]
    assert record.ok and "disk is read instead" in (record.reason or "")


def test_both_live_and_disk_are_compared(agent_guests: AgentGuests) -> None:
    inventory = agent_guests.collect("both")
    live = _guest(inventory, "vmsec-agent")
    disk = _guest(inventory, "vmsec-agent (disk)")
    assert live.runtime is not None and disk.runtime is None and disk.domain == live.domain
    [finding] = _findings(inventory, ["VMS-LIVE-007"], "vmsec-agent")
    assert finding.status is Status.PASS and "packages" in finding.message, finding.message
