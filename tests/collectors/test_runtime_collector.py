"""What runs: the runtime collector's parsers on real kernel text, and the collector on this machine's
own running kernel, with real processes, sockets and a real QEMU whose binary is replaced under it.

Oracles: procps ``sysctl -n`` for sysctl values, util-linux ``findmnt`` for the mount table, the
sockets and processes the tests open themselves.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import vmsec.collectors.runtime
from components import require
from ports import free_port
from vmsec.checks.api import results_of
from vmsec.checks.catalog import default_catalog
from vmsec.checks.live.running import qemu_current
from vmsec.collectors.host import collect_host_inventory
from vmsec.collectors.reader import RootReader
from vmsec.collectors.runtime import (
    collect_runtime,
    domain_of,
    parse_dpkg_log,
    parse_inet_table,
    parse_mountinfo,
    parse_stat,
    parse_unix_table,
    stale_mappings,
    sysctl_path,
    version_at,
)
from vmsec.engine import run_checks
from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import Host, Listener, RuntimeState
from vmsec.findings import Status
from vmsec.reading import DEFAULT_READ_LIMIT

# --- parsers on real kernel text -----------------------------------------------------------------

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1163 1 0 100 0 0 10 0
   1: 0100007F:170C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0 100 0 0 10 0
   2: 0100007F:D2F0 0100007F:0016 01 00000000:00000000 02:000A7B0B 00000000     0        0 2002 2 0 20 4 30 10 -1
"""  # noqa: E501 - kernel table lines
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3001 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3002 1 0 100 0 0 10 0
"""  # noqa: E501 - kernel table lines
UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  101: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4001 2 0 0
  102: 0100007F:0035 0200007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 4002 2 0 0
"""  # noqa: E501 - kernel table lines
UNIX = """\
Num       RefCount Protocol Flags    Type St Inode Path
000000002a7761dc: 00000002 00000000 00010000 0001 01 93893 /run/libvirt/libvirt-sock
000000003ccc4ecc: 00000003 00000000 00000000 0001 03  1160
00000000aa11bb22: 00000002 00000000 00010000 0001 01 93900 @/tmp/.X11-unix/X0
"""


def test_inet_tables_give_listeners_only() -> None:
    tcp = parse_inet_table(TCP, "tcp")
    assert [(lst.address, lst.port, lst.inode) for lst in tcp] == [("0.0.0.0", 2024, 1163),
                                                                   ("127.0.0.1", 5900, 2001)]
    assert tcp[1].loopback_only and not tcp[0].loopback_only
    tcp6 = parse_inet_table(TCP6, "tcp6")
    assert [(lst.address, lst.port) for lst in tcp6] == [("::", 22), ("::1", 8080)]
    assert [lst.endpoint for lst in tcp6] == ["[::]:22", "[::1]:8080"]
    udp = parse_inet_table(UDP, "udp")
    assert [(lst.address, lst.port) for lst in udp] == [("0.0.0.0", 68)]  # the connected one is no listener
    unix = parse_unix_table(UNIX)
    assert [lst.address for lst in unix] == ["/run/libvirt/libvirt-sock", "@/tmp/.X11-unix/X0"]


def test_mountinfo_per_mount_options_and_escapes() -> None:
    text = ("22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw\n"
            "40 27 0:33 / /mnt/my\\040disk rw,relatime - ext4 /dev/vdb1 rw,errors=remount-ro\n"
            "garbage line\n")
    mounts = parse_mountinfo(text)
    assert [m.mountpoint for m in mounts] == ["/proc", "/mnt/my disk"]
    assert mounts[0].options == ("rw", "nosuid", "nodev", "noexec", "relatime")
    assert mounts[1].fstype == "ext4" and mounts[1].super_options == ("rw", "errors=remount-ro")


def test_stat_with_hostile_comm() -> None:
    comm, ppid, start = parse_stat("4242 (a) b) (c) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 "
                                   "98765 0 0")
    assert (comm, ppid, start) == ("a) b) (c", 1, 98765)


def test_stale_mappings_count_code_only() -> None:
    maps = ("55d0-55d1 r-xp 00000000 fe:01 100 /usr/sbin/sshd\n"
            "7f1c-7f1d r-xp 00000000 fe:01 200 /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)\n"
            "7f1e-7f1f r--s 00000000 fe:01 300 /var/log/journal/x/system.journal (deleted)\n"
            "7f20-7f21 rw-s 00000000 00:01 400 /memfd:wayland (deleted)\n"
            "7f22-7f23 r--p 00000000 fe:01 500 /usr/lib/locale/locale-archive (deleted)\n"
            "7f24-7f25 rw-p 00000000 00:00 0 \n")
    assert stale_mappings(maps) == ("/usr/lib/x86_64-linux-gnu/libssl.so.3",)


@pytest.mark.parametrize(("cmdline", "domain"), [
    (["qemu-system-x86_64", "-name", "guest=web01,debug-threads=on"], "web01"),
    (["qemu-system-x86_64", "-name", "guest=a,,b,debug-threads=on"], "a,b"),  # libvirt doubles commas
    (["qemu-system-x86_64", "-name", "plain"], "plain"),
    (["qemu-system-x86_64", "-m", "64"], None),
])
def test_domain_from_qemu_command_line(cmdline: list[str], domain: str | None) -> None:
    assert domain_of(cmdline) == domain


def test_version_at_process_start_from_dpkg_log() -> None:
    log = ("2024-01-10 09:00:00 install qemu-system-x86:amd64 <none> 1:7.2+dfsg-7+deb12u1\n"
           "2024-03-01 09:00:00 status installed qemu-system-x86:amd64 1:7.2+dfsg-7+deb12u1\n"
           "2024-05-02 12:30:00 upgrade qemu-system-x86:amd64 1:7.2+dfsg-7+deb12u1 1:7.2+dfsg-7+deb12u5\n")
    events = parse_dpkg_log(log, dt.UTC)
    assert len(events) == 2
    started = dt.datetime(2024, 4, 1, tzinfo=dt.UTC).timestamp()
    event = version_at(events, "qemu-system-x86", started)
    assert event is not None and event.new == "1:7.2+dfsg-7+deb12u1"
    later = version_at(events, "qemu-system-x86", dt.datetime(2024, 6, 1, tzinfo=dt.UTC).timestamp())
    assert later is not None and later.new == "1:7.2+dfsg-7+deb12u5"
    # a process older than the log: the first upgrade after it says what it had (its "old" version)
    early = version_at(events[1:], "qemu-system-x86", dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp())
    assert early is not None and early.old == "1:7.2+dfsg-7+deb12u1"


def test_sysctl_path_of_interface_names_with_dots() -> None:
    assert sysctl_path("net.ipv4.conf.eth0/100.rp_filter") == "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"


# --- this machine's running kernel --------------------------------------------------------------


@pytest.fixture(scope="module")
def live() -> object:
    state, _records = collect_runtime(RootReader("/"), source="test", local_time=True)
    return state


def test_sysctl_values_are_the_running_kernels(live: object) -> None:
    """Every value read equals what procps' sysctl reports for the same key: 100 %."""
    require(shutil.which("sysctl"), "procps", "sysctl is the oracle for /proc/sys values")
    values = live.sysctl  # type: ignore[attr-defined]
    assert values and "kernel.randomize_va_space" in values
    keys = sorted(values)
    done = subprocess.run(["sysctl", "-n", *keys], capture_output=True, text=True, check=False)
    oracle = [" ".join(line.split()) for line in done.stdout.splitlines()]
    assert [values[k] for k in keys] == oracle


def test_mount_table_is_the_kernels(live: object) -> None:
    require(shutil.which("findmnt"), "util-linux", "findmnt is the oracle for the mount table")
    done = subprocess.run(["findmnt", "-J", "-l", "-o", "TARGET,FSTYPE,VFS-OPTIONS"], capture_output=True,
                          text=True, check=True)
    oracle = {(m["target"], m["fstype"], m["vfs-options"]) for m in json.loads(done.stdout)["filesystems"]}
    ours = {(m.mountpoint, m.fstype, ",".join(m.options)) for m in live.mounts}  # type: ignore[attr-defined]
    assert ours == oracle


def test_listeners_are_tied_to_their_process() -> None:
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    path = tempfile.mktemp(prefix="vmsec-unix-", dir="/tmp")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(path)
    unix.listen()
    try:
        state, _ = collect_runtime(RootReader("/"), source="test", local_time=True)
        mine = [lst for lst in state.listeners or () if os.getpid() in lst.pids]
        seen = {(lst.protocol, lst.address, lst.port) for lst in mine}
        assert ("tcp", "127.0.0.1", tcp.getsockname()[1]) in seen
        assert ("udp", "127.0.0.1", udp.getsockname()[1]) in seen
        assert ("unix", path, None) in seen
        assert all(lst.processes for lst in mine)
    finally:
        tcp.close()
        udp.close()
        unix.close()
        os.unlink(path)



@pytest.fixture
def replaced_qemu(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, int]]:
    """A real QEMU started from a copy of its binary, with a VNC console and a TCP chardev on
    loopback; the copy is then replaced (a new file renamed over it, as a package upgrade does)."""
    qemu = shutil.which("qemu-system-x86_64")
    require(qemu, "qemu-system-x86", "a real QEMU process is the subject")
    assert qemu is not None
    copy = tmp_path / "qemu-system-x86_64"
    shutil.copy2(qemu, copy)
    domain = f"vmsec-stale-{os.getpid()}"
    port = free_port()
    # A copy outside /usr finds neither its modules nor its data files by its own path: name them.
    env = {**os.environ, "QEMU_MODULE_DIR": "/usr/lib/x86_64-linux-gnu/qemu"}
    proc = subprocess.Popen(
        [str(copy), "-L", "/usr/share/qemu", "-name", f"guest={domain},debug-threads=on", "-machine", "none",
         "-nodefaults",
         "-display", "none", "-S", "-vnc", "127.0.0.1:0,to=99",
         "-chardev", f"socket,id=c0,host=127.0.0.1,port={port},server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("QEMU did not open its chardev port in 30 s")
        staged = tmp_path / "qemu-system-x86_64.dpkg-new"
        shutil.copy2(qemu, staged)
        os.replace(staged, copy)  # the old inode is unlinked: the process maps a deleted file
        yield proc, domain, port
    finally:
        proc.kill()
        proc.wait()


def test_qemu_running_a_replaced_binary_is_named_by_domain(
        replaced_qemu: tuple[subprocess.Popen[bytes], str, int]) -> None:
    proc, domain, port = replaced_qemu
    inventory = collect_host_inventory("/")
    assert inventory.host is not None and inventory.host.runtime is not None
    [q] = [q for q in inventory.host.runtime.qemu or () if q.pid == proc.pid]
    assert q.domain == domain
    assert q.exe_deleted is True and q.exe is not None and q.exe.endswith("/qemu-system-x86_64")
    assert q.stale_files and q.exe in q.stale_files
    assert q.listeners is not None  # root reads its descriptors
    ports = {lst.port for lst in q.listeners}
    assert port in ports and any(5900 <= p < 6000 for p in ports if p is not None)  # chardev and VNC
    findings = run_checks(inventory, default_catalog().select(ids=["VMS-LIVE-004", "VMS-LIVE-006"])).findings
    mine = [f for f in findings if domain in f.subject]
    stale = [f for f in mine if f.check_id == "VMS-LIVE-004"]
    assert [f.status for f in stale] == [Status.FAIL]
    assert "replaced code" in stale[0].message and "qemu-system-x86_64" in stale[0].message
    listening = [f for f in mine if f.check_id == "VMS-LIVE-006"]
    assert [f.status for f in listening] == [Status.PASS]  # loopback only, and it says which ports
    assert str(port) in listening[0].message


def test_qemu_listeners_are_unknown_when_the_descriptor_limit_is_reached(
        replaced_qemu: tuple[subprocess.Popen[bytes], str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy host has more descriptors than one scan reads: a QEMU past the limit was not looked at,
    so "loopback only (no TCP port)" would be a guess."""
    proc, domain, _port = replaced_qemu
    monkeypatch.setattr(vmsec.collectors.runtime, "MAX_FD_LINKS", 1)
    inventory = collect_host_inventory("/")
    assert inventory.host is not None and inventory.host.runtime is not None
    runtime = inventory.host.runtime
    [q] = [q for q in runtime.qemu or () if q.pid == proc.pid]
    assert q.listeners is None and q.listeners_reason and "limit of 1 descriptors" in q.listeners_reason
    assert runtime.sockets_unread and "limit of 1 descriptors" in runtime.sockets_unread
    findings = run_checks(inventory, default_catalog().select(ids=["VMS-LIVE-006"])).findings
    mine = [f for f in findings if domain in f.subject]
    assert [f.status for f in mine] == [Status.UNKNOWN]
    assert f"domain {domain}" in mine[0].message and "limit of 1 descriptors" in mine[0].message


def _process(root: Path, pid: int, cmdline: list[str], sockets: dict[int, int] | None) -> None:
    """A /proc/PID of a host root; ``sockets`` (fd → socket inode) None: no fd directory to read."""
    base = root / f"proc/{pid}"
    base.mkdir(parents=True)
    name = Path(cmdline[0]).name
    (base / "stat").write_text(f"{pid} ({name[:15]}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n")
    (base / "cmdline").write_bytes(b"\0".join(w.encode() for w in cmdline) + b"\0")
    (base / "exe").symlink_to(cmdline[0])
    if sockets is not None:
        (base / "fd").mkdir()
        for fd, inode in sockets.items():
            (base / f"fd/{fd}").symlink_to(f"socket:[{inode}]")


def test_which_sockets_a_collection_did_not_read_is_said(tmp_path: Path) -> None:
    """A QEMU whose /proc/PID/fd could not be listed has unknown listeners, not none; a process that
    ended meanwhile (no fd directory) holds nothing, but one hidden by hidepid (no PID 1) might."""
    root = tmp_path / "root"
    (root / "proc/net").mkdir(parents=True)
    (root / "proc/net/tcp").write_text(TCP)  # 0.0.0.0:2024 (inode 1163), 127.0.0.1:5900 (2001)
    _process(root, 1, ["/usr/lib/systemd/systemd"], {3: 1163})
    _process(root, 4242, ["/usr/bin/qemu-system-x86_64", "-name", "guest=vm"], None)
    state, _ = collect_runtime(RootReader(str(root)), source="fixture")
    [q] = state.qemu or ()
    assert q.domain == "vm" and q.listeners is None
    assert q.listeners_reason and q.listeners_reason.startswith("/proc/4242/fd could not be listed")
    assert state.sockets_unread is None
    assert [(lst.endpoint, lst.pids) for lst in _tcp_of(state.listeners)] == [("0.0.0.0:2024", (1,)),
                                                                              ("127.0.0.1:5900", ())]
    shutil.rmtree(root / "proc/1")
    state, _ = collect_runtime(RootReader(str(root)), source="fixture")
    assert state.sockets_unread and "hidepid" in state.sockets_unread
    assert [(lst.endpoint, lst.pids) for lst in _tcp_of(state.listeners)] == [("0.0.0.0:2024", ()),
                                                                              ("127.0.0.1:5900", ())]


def _tcp_of(listeners: tuple[Listener, ...] | None) -> list[Listener]:
    return [lst for lst in listeners or () if lst.protocol == "tcp"]


class _NoAccess(RootReader):
    """/proc mounted with hidepid=noaccess, as an unprivileged reader sees it: other users' /proc/PID
    are listed, but everything inside them is refused."""

    def __init__(self, root: str, refused: tuple[int, ...]) -> None:
        super().__init__(root)
        self.refused = tuple(f"/proc/{pid}/" for pid in refused)

    def _check(self, path: str) -> None:
        if path.startswith(self.refused):
            raise ReadError(path, "Operation not permitted", ErrorKind.DENIED)

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        self._check(path)
        return super().read_bytes(path, limit)

    def readlink(self, path: str) -> str:
        self._check(path)
        return super().readlink(path)


QEMU = ["/usr/bin/qemu-system-x86_64", "-name", "guest=vm"]


def _no_qemu_verdict(state: RuntimeState) -> list[tuple[Status, str]]:
    host = Host(name="h", root="/", live=True, runtime=state)
    return [(r.status, r.message) for r in results_of(qemu_current, host)]


def test_a_process_table_that_lacks_processes_says_so(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A QEMU that runs as libvirt-qemu is hidden from an unprivileged scan by hidepid, refused by
    hidepid=noaccess, or cut by the process cap: "no QEMU process runs" is then unknown, not a PASS."""
    root = tmp_path / "root"
    (root / "proc/net").mkdir(parents=True)
    (root / "proc/net/tcp").write_text(TCP)
    _process(root, 1, ["/usr/lib/systemd/systemd"], {})
    _process(root, 4242, QEMU, {})
    state, records = collect_runtime(RootReader(str(root)), source="fixture")
    assert state.processes_unread is None and [q.pid for q in state.qemu or ()] == [4242]
    assert not any(r.what == "process table" for r in records)

    # hidepid=invisible: PID 1 and the QEMU are not listed, only the scanning user's own shell is
    shutil.rmtree(root / "proc/1")
    shutil.rmtree(root / "proc/4242")
    _process(root, 5000, ["/usr/bin/bash"], {})
    state, records = collect_runtime(RootReader(str(root)), source="fixture")
    assert state.qemu == () and state.processes_unread
    assert "hidepid" in state.processes_unread and "hidepid" in (state.sockets_unread or "")
    assert any(r.what == "process table" and "hidepid" in (r.reason or "") for r in records)
    [(status, message)] = _no_qemu_verdict(state)
    assert status is Status.UNKNOWN and "no QEMU process is seen" in message and "hidepid" in message

    # hidepid=noaccess: listed, but its /proc/PID/stat is refused
    shutil.rmtree(root / "proc/5000")
    _process(root, 1, ["/usr/lib/systemd/systemd"], {})
    _process(root, 4242, QEMU, {})
    state, _ = collect_runtime(_NoAccess(str(root), (4242,)), source="fixture")
    assert state.qemu == ()
    assert state.processes_unread == ("the process table is incomplete: /proc/PID/stat: Operation not "
                                      "permitted (1 process)")
    assert [s for s, _ in _no_qemu_verdict(state)] == [Status.UNKNOWN]

    # more processes than one scan reads: the youngest (highest PIDs) are cut
    monkeypatch.setattr(vmsec.collectors.runtime, "MAX_PROCESSES", 1)
    state, _ = collect_runtime(RootReader(str(root)), source="fixture")
    assert state.qemu == ()
    assert state.processes_unread == ("the process table is incomplete: beyond the limit of 1 processes "
                                      "(1 process)")
    [(status, message)] = _no_qemu_verdict(state)
    assert status is Status.UNKNOWN and "beyond the limit of 1 processes" in message


TCP6_LIBVIRT = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:407D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 51001 1 0 100 0 0 10 0
"""  # noqa: E501 - kernel table lines


@pytest.mark.parametrize(("enabled", "expected"), [(True, Status.FAIL), (False, Status.UNKNOWN)],
                         ids=["enabled", "not-enabled"])
def test_systemd_holding_libvirts_port_for_its_socket_unit_is_libvirt_listening(
        tmp_path: Path, enabled: bool, expected: Status) -> None:
    """Socket activation: systemd (PID 1) holds [::]:16509 for libvirtd-tcp.socket, and libvirtd runs
    only once a client connects (and exits again when idle). Not "no libvirt daemon holds a TCP
    listener"; a unit that is not enabled may still have been started by hand (no D-Bus here)."""
    root = tmp_path / "root"
    (root / "proc/net").mkdir(parents=True)
    (root / "proc/net/tcp6").write_text(TCP6_LIBVIRT)
    (root / "proc/stat").write_text("btime 1700000000\n")
    _process(root, 1, ["/usr/lib/systemd/systemd"], {3: 51001})
    (root / ".vmsec-live").write_text("")
    units = root / "usr/lib/systemd/system"
    units.mkdir(parents=True)
    (units / "libvirtd-tcp.socket").write_text("[Socket]\nListenStream=16509\nService=libvirtd.service\n")
    (root / "etc/systemd/system/sockets.target.wants").mkdir(parents=True)
    if enabled:
        (root / "etc/systemd/system/sockets.target.wants/libvirtd-tcp.socket").symlink_to(
            "/usr/lib/systemd/system/libvirtd-tcp.socket")
    inventory = collect_host_inventory(str(root), live=True)
    assert inventory.host is not None and inventory.host.runtime is not None
    assert inventory.host.runtime.processes_unread is None
    findings = run_checks(inventory, default_catalog().select(ids=["VMS-LIVE-005"])).findings
    assert [f.status for f in findings] == [expected]
    assert "[::]:16509" in findings[0].message and "libvirtd-tcp.socket" in findings[0].message
    if expected is Status.FAIL:
        assert findings[0].message == ("systemd listens for plain, unencrypted TCP on [::]:16509 for "
                                       "libvirtd-tcp.socket (libvirtd starts on the first connection)")
        assert any(e.source == "/usr/lib/systemd/system/libvirtd-tcp.socket" and e.locator == "ListenStream"
                   for e in findings[0].evidence)


@pytest.fixture
def private_net() -> Iterator[list[str]]:
    """A private network namespace (only its own loopback): what listens there on every address is
    reachable from nowhere else, so the tests can listen on 0.0.0.0 and fixed ports. Yields the command
    prefix that runs a program inside it."""
    ip = shutil.which("ip")
    require(ip, "iproute2", "the test listens on every address of a private network namespace")
    require(os.geteuid() == 0, "root", "network namespaces need root")
    assert ip is not None
    ns = f"vmsec-runtime-{uuid.uuid4().hex[:8]}"
    subprocess.run([ip, "netns", "add", ns], check=True)
    try:
        subprocess.run([ip, "-n", ns, "link", "set", "lo", "up"], check=True)
        yield [ip, "netns", "exec", ns]
    finally:
        subprocess.run([ip, "netns", "del", ns], check=False)


def _listening(pid: int, port: int) -> bool:
    """``pid``'s network namespace has a TCP listener on ``port`` (its own /proc/PID/net/tcp)."""
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text()
    except OSError:
        return False
    return any(lst.port == port for lst in parse_inet_table(table, "tcp"))


def _live_findings(prefix: list[str], user: list[str], subject: str) -> dict[str, list[tuple[str, str]]]:
    """(status, message) of VMS-LIVE-005 and of VMS-LIVE-006 about ``subject``, from ``vmsec scan host``
    run inside the namespace as ``user`` (a setpriv prefix)."""
    cmd = [*prefix, *user, sys.executable, "-m", "vmsec.cli.main", "scan", "host", "--no-store", "--format",
           "json", "--check", "VMS-LIVE-005", "--check", "VMS-LIVE-006", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HOME": "/nonexistent"}, check=False)
    assert done.returncode in (0, 3), done.stderr
    findings = json.loads(done.stdout)["findings"]
    return {"tcp": [(f["status"], f["message"]) for f in findings if f["check_id"] == "VMS-LIVE-005"],
            "vnc": [(f["status"], f["message"]) for f in findings
                    if f["check_id"] == "VMS-LIVE-006" and subject in f["subject"]]}


def test_listeners_a_scan_cannot_tie_to_their_process_are_unknown(private_net: list[str],
                                                                   tmp_path: Path) -> None:
    """The reviewer's case: root's QEMU on 0.0.0.0:5977 and a libvirtd on 0.0.0.0:16509. Root sees who
    holds them (FAIL); a scan as nobody cannot list their /proc/PID/fd and must say UNKNOWN, not
    "loopback only" or "no libvirt daemon holds a TCP listener"."""
    qemu = shutil.which("qemu-system-x86_64")
    setpriv = shutil.which("setpriv")
    require(qemu, "qemu-system-x86", "a real QEMU process is the subject")
    require(setpriv, "util-linux", "setpriv runs the scan as an unprivileged user")
    assert qemu is not None and setpriv is not None
    (tmp_path / "bin").mkdir()
    daemon = tmp_path / "bin" / "libvirtd"  # a listener the collector names libvirtd (its executable)
    shutil.copy2(os.path.realpath(sys.executable), daemon)
    domain = f"vmsec-unseen-{os.getpid()}"
    started = [
        subprocess.Popen([*private_net, str(daemon), "-c", "import socket, time; s = socket.socket(); "
                          "s.bind(('0.0.0.0', 16509)); s.listen(); time.sleep(300)"]),
        subprocess.Popen([*private_net, qemu, "-name", f"guest={domain}", "-machine", "none", "-nodefaults",
                          "-display", "none", "-S", "-vnc", "0.0.0.0:77"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 30
        while not (_listening(started[0].pid, 16509) and _listening(started[1].pid, 5977)):
            assert all(p.poll() is None for p in started) and time.monotonic() < deadline, "no listeners"
            time.sleep(0.1)
        root = _live_findings(private_net, [], domain)
        nobody = _live_findings(private_net, [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"],
                                domain)
    finally:
        for p in started:
            p.kill()
            p.wait()
    assert root["tcp"] == [("FAIL", "libvirtd listens for plain, unencrypted TCP on 0.0.0.0:16509")]
    assert [s for s, _ in root["vnc"]] == ["FAIL"] and "0.0.0.0:5977" in root["vnc"][0][1]
    [(status, message)] = nobody["tcp"]
    assert status == "UNKNOWN" and "0.0.0.0:16509" in message and "Permission denied" in message
    [(status, message)] = nobody["vnc"]
    assert status == "UNKNOWN" and f"domain {domain}" in message
    assert "/fd could not be listed: Permission denied" in message


def test_a_process_running_a_replaced_binary_needs_a_restart(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    copy = tmp_path / "vmsec-sleeper"
    shutil.copy2(sleep, copy)
    proc = subprocess.Popen([str(copy), "300"])
    try:
        time.sleep(0.2)
        staged = tmp_path / "new"
        shutil.copy2(sleep, staged)
        os.replace(staged, copy)
        inventory = collect_host_inventory("/")
        findings = run_checks(inventory, default_catalog().select(ids=["VMS-LIVE-003"])).findings
        mine = [f for f in findings if f.subject == f"pid {proc.pid} vmsec-sleeper"]
        assert [f.status for f in mine] == [Status.FAIL], [f.subject for f in findings]
        assert str(copy) in mine[0].message
    finally:
        proc.kill()
        proc.wait()


def test_a_copied_root_stays_offline(tmp_path: Path) -> None:
    """No runtime fact of the scanning machine is used for another root: not its sysctl values, not its
    processes, not its D-Bus."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\nVERSION_ID=12\n")
    (root / "etc/sysctl.conf").write_text("fs.protected_symlinks = 1\n")
    inventory = collect_host_inventory(str(root))
    assert inventory.host is not None and inventory.host.runtime is None and inventory.host.live is False
    assert inventory.host_os is not None and inventory.host_os.runtime is None
    assert any(r.what == "runtime state" and "offline root" in (r.reason or "") for r in inventory.records)
    findings = run_checks(inventory, default_catalog().select(ids=["VMS-LIVE-*", "VMS-GST-105"])).findings
    lsm = [f for f in findings if f.check_id == "VMS-LIVE-001"]
    assert [f.status for f in lsm] == [Status.UNKNOWN] and "offline" in lsm[0].message
    links = [f for f in findings if f.check_id == "VMS-GST-105" and f.subject == "fs.protected_symlinks"]
    assert [f.status for f in links] == [Status.PASS]  # the file's value, not this kernel's
    assert all("in the running kernel" not in f.message for f in findings)
