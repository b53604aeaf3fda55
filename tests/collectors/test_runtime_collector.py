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
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from components import require
from ports import free_port
from vmsec.checks.catalog import default_catalog
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
from vmsec.findings import Status

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
