"""Running services asked of a real systemd over a real D-Bus system bus.

This machine's PID 1 is not systemd, so the test starts one: systemd 252 as PID 1 of new PID, mount and
cgroup namespaces, with its cgroup tree rooted in a cgroup of the test's own (nothing is created
elsewhere in the host's hierarchy), a private /run bound from a test directory, and only the units the
test writes: dbus.socket/dbus.service (the real dbus-daemon) and a probe service. vmsec then runs
*inside* those namespaces, where PID 1 is systemd, and must take the running services from systemd over
D-Bus — not from the process table.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components import missing, require
from vmsec.collectors.reader import RootReader
from vmsec.collectors.runtime import collect_runtime
from vmsec.collectors.systemd_dbus import SystemdUnavailable, running_units

SYSTEMD = "/lib/systemd/systemd"
UNITS = {
    "vmsec.target": "[Unit]\nDescription=vmsec test target\nDefaultDependencies=no\n"
                    "Wants=dbus.socket dbus.service vmsec-probe.service\n",
    "dbus.socket": "[Unit]\nDescription=D-Bus system bus socket (vmsec test)\nDefaultDependencies=no\n"
                   "[Socket]\nListenStream=/run/dbus/system_bus_socket\n",
    "dbus.service": "[Unit]\nDescription=D-Bus system bus (vmsec test)\nDefaultDependencies=no\n"
                    "Requires=dbus.socket\n[Service]\nExecStart=/usr/bin/dbus-daemon --system "
                    "--address=systemd: --nofork --nopidfile --systemd-activation --syslog-only\n",
    "vmsec-probe.service": "[Unit]\nDescription=a service that runs (vmsec test)\nDefaultDependencies=no\n"
                           "[Service]\nExecStart=/bin/sleep infinity\n",
}
BOOT = """#!/bin/sh
# PID 1 of new pid/mount/cgroup namespaces: private /run, /proc of this namespace, a cgroup2 tree
# rooted at the test's cgroup, the test's units only.
set -e
mount --make-rprivate /
mount --bind "$1/run" /run
mount -t proc proc /proc
mount -t tmpfs tmpfs /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /etc/systemd/system
cp "$1"/units/* /etc/systemd/system/
export container=vmsec-test
exec {systemd} --system --unit=vmsec.target
"""
START = """#!/bin/sh
set -e
echo $$ > "$2/cgroup.procs"
exec unshare --cgroup --pid --fork --mount "$1/boot.sh" "$1"
"""


def _cgroup2_mount() -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        if "-" in fields and fields[fields.index("-") + 1] == "cgroup2":
            return Path(fields[4])
    return None


def _own_cgroup() -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return "/"


def _remove_tree(path: Path) -> None:
    """Kill whatever still runs in the test's cgroup subtree (systemd and its units), then remove it."""
    for procs in path.rglob("cgroup.procs"):
        for pid in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    for _ in range(50):
        dirs = sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, path]:
            with contextlib.suppress(OSError):
                d.rmdir()
        if not path.exists():
            return
        time.sleep(0.1)


@dataclass
class PrivateSystemd:
    pid: int  # systemd's pid as this machine sees it
    bus: str  # the D-Bus address of its system bus, reachable from outside


@pytest.fixture(scope="module")
def private_systemd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateSystemd]:
    require(os.path.exists(SYSTEMD), "systemd", "a real systemd answers ListUnits")
    require(shutil.which("dbus-daemon"), "dbus-daemon (package dbus)", "the real system bus")
    require(shutil.which("unshare") and os.geteuid() == 0, "unshare as root",
            "namespaces for a private PID 1")
    mount = _cgroup2_mount()
    if mount is None:
        missing("a cgroup v2 hierarchy", "systemd needs one to run as PID 1")
    assert mount is not None
    cgroup = mount / _own_cgroup().lstrip("/") / f"vmsec-systemd-{os.getpid()}"
    try:
        cgroup.mkdir()
    except OSError as exc:
        missing("a writable cgroup v2 hierarchy", f"{cgroup}: {exc}")
    work = tmp_path_factory.mktemp("systemd")
    (work / "run").mkdir()
    (work / "units").mkdir()
    for name, text in UNITS.items():
        (work / "units" / name).write_text(text)
    (work / "boot.sh").write_text(BOOT.replace("{systemd}", SYSTEMD))
    (work / "start.sh").write_text(START)
    os.chmod(work / "boot.sh", 0o755)
    os.chmod(work / "start.sh", 0o755)
    starter = subprocess.Popen(["sh", str(work / "start.sh"), str(work), str(cgroup)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    systemd_pid = None
    try:
        socket_path = work / "run/dbus/system_bus_socket"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and systemd_pid is None:
            procs = (cgroup / "init.scope" / "cgroup.procs", cgroup / "cgroup.procs")
            for procs_file in procs:
                if procs_file.exists():
                    for pid in procs_file.read_text().split():
                        try:
                            comm = Path(f"/proc/{pid}/comm").read_text().strip()
                        except OSError:  # a short-lived process of the boot exited meanwhile
                            continue
                        if comm == "systemd":
                            systemd_pid = int(pid)
            if starter.poll() is not None:
                pytest.fail(f"systemd did not start: {starter.stdout.read() if starter.stdout else ''!r}")
            time.sleep(0.1)
        while time.monotonic() < deadline and not socket_path.exists():
            time.sleep(0.1)
        if systemd_pid is None or not socket_path.exists():
            pytest.fail("the private systemd did not bring up its system bus in 30 s")
        bus = f"unix:path={socket_path}"
        while time.monotonic() < deadline:  # systemd registers on the bus once dbus-daemon runs
            try:
                if any(u.name == "vmsec-probe.service" for u in running_units(bus, timeout=2)):
                    break
            except SystemdUnavailable:
                pass
            time.sleep(0.2)
        yield PrivateSystemd(pid=systemd_pid, bus=bus)
    finally:
        if systemd_pid is not None:
            os.kill(systemd_pid, signal.SIGKILL)  # the namespace's init: everything in it ends
        starter.kill()
        starter.wait()
        _remove_tree(cgroup)


def test_running_units_from_systemd_over_dbus(private_systemd: PrivateSystemd) -> None:
    units = {u.name: u for u in running_units(private_systemd.bus)}
    assert {"dbus.service", "dbus.socket", "vmsec-probe.service"} <= set(units)
    probe = units["vmsec-probe.service"]
    assert probe.state == "running" and probe.source == "systemd"


def test_where_pid1_is_systemd_services_come_from_dbus(private_systemd: PrivateSystemd) -> None:
    """vmsec inside the namespaces, where PID 1 is systemd and /run/dbus is its bus: the live host path."""
    code = ("import json; from vmsec.collectors.host import collect_host_inventory\n"
            "inv = collect_host_inventory('/')\n"
            "rt = inv.host.runtime\n"
            "print(json.dumps({'source': rt.services_source, 'names': [s.name for s in rt.services],"
            " 'pid1': [p.comm for p in rt.processes if p.pid == 1]}))\n")
    done = subprocess.run(["nsenter", "-t", str(private_systemd.pid), "-p", "-m", "--", sys.executable, "-c",
                           code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["pid1"] == ["systemd"]
    assert seen["source"] == "systemd"
    assert "vmsec-probe.service" in seen["names"] and "dbus.service" in seen["names"]


def test_without_a_bus_the_process_table_answers(tmp_path: Path) -> None:
    """PID 1 is systemd but its bus cannot be reached: said so, and the process table is used."""
    root = tmp_path / "root"
    for pid, comm in ((1, "systemd"), (77, "sshd")):
        (root / f"proc/{pid}").mkdir(parents=True)
        (root / f"proc/{pid}/stat").write_text(f"{pid} ({comm}) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 "
                                               "0 0\n")
        (root / f"proc/{pid}/comm").write_text(comm + "\n")
    (root / "proc/1/exe").symlink_to("/usr/lib/systemd/systemd")
    (root / "proc/77/exe").symlink_to("/usr/sbin/sshd")
    state, records = collect_runtime(RootReader(str(root)), source="fixture",
                                     system_bus=f"unix:path={tmp_path}/no-bus")
    assert state.services_source == "process table"
    assert {s.name for s in state.services or ()} == {"systemd", "sshd"}
    assert any("D-Bus" in r.what and "process table" in (r.reason or "") for r in records)
    with pytest.raises(SystemdUnavailable):
        running_units(f"unix:path={tmp_path}/no-bus", timeout=1)
