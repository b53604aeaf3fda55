"""The live checks on facts built directly, for the cases the verdict fixtures cannot hold."""

from __future__ import annotations

import pytest

from vmsec.checks.api import Environment, results_of
from vmsec.checks.live.correlation import live_matches_disk
from vmsec.checks.live.running import libvirt_tcp_listener, qemu_current, qemu_listeners, restart_needed
from vmsec.facts import (
    Domain,
    Graphics,
    Guest,
    Host,
    Inventory,
    Listener,
    OsRelease,
    ProcessInfo,
    QemuProcess,
    RunningService,
    RuntimeState,
    SocketUnit,
    evolve,
)
from vmsec.findings import Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
DENIED = "some processes' sockets were not read: /proc/PID/fd: Permission denied (31 processes)"


def test_a_locked_agent_and_an_unreadable_disk_compare_nothing() -> None:
    live = Guest(name="web01", origin="guest agent of web01", domain="web01",
                 runtime=RuntimeState(source="guest agent of web01"))
    disk = Guest(name="web01 (disk)", origin="web01.qcow2", domain="web01")
    [result] = results_of(live_matches_disk, Inventory(guests=(live, disk)))
    assert result.status is Status.UNKNOWN and result.target is not None and result.target.name == "web01"


def test_only_guests_of_one_domain_are_paired() -> None:
    os = OsRelease(id="debian", version_id="12")
    live = Guest(name="web01", origin="ssh://web01", domain="web01", os=os,
                 runtime=RuntimeState(source="ssh web01"))
    other = Guest(name="db01 (disk)", origin="db01.qcow2", domain="db01",
                  os=OsRelease(id="debian", version_id="11"))
    assert results_of(live_matches_disk, Inventory(guests=(live, other))) == []


# --- VMS-LIVE-005/006: a socket whose holder was not seen ----------------------------------------


def _host(*listeners: Listener, qemu: tuple[QemuProcess, ...] = (), sockets_unread: str | None = None) \
        -> Host:
    runtime = RuntimeState(source="test", listeners=listeners, qemu=qemu, sockets_unread=sockets_unread)
    return Host(name="h", root="/", live=True, runtime=runtime)


def _tcp(address: str, port: int, *holders: tuple[int, str]) -> Listener:
    return Listener(protocol="tcp6" if ":" in address else "tcp", address=address, port=port,
                    pids=tuple(p for p, _ in holders), processes=tuple(n for _, n in holders))


def _qemu(listeners: tuple[Listener, ...] | None, reason: str | None = None) -> QemuProcess:
    return QemuProcess(pid=4242, domain="vm", exe="/usr/bin/qemu-system-x86_64", exe_deleted=False,
                       stale_files=(), started_at=None, listeners=listeners, listeners_reason=reason)


LIBVIRTD = (300, "libvirtd")


@pytest.mark.parametrize(("listeners", "sockets_unread", "expected"), [
    # the reviewer's case: 0.0.0.0:16509 held by a process whose descriptors a scan as nobody cannot list
    ((_tcp("0.0.0.0", 16509),), DENIED, [U]),
    ((_tcp("::", 16509),), DENIED, [U]),
    ((_tcp("0.0.0.0", 5977),), DENIED, [U]),  # tcp_port, --listen or a socket unit can pick any port
    ((_tcp("0.0.0.0", 16509),), None, [P]),  # every process read: no process holds it (a kernel socket)
    ((_tcp("127.0.0.1", 16509),), DENIED, [P]),  # libvirt's or not: loopback only passes
    ((_tcp("0.0.0.0", 16514),), DENIED, [P]),  # the TLS port passes whoever holds it
    ((_tcp("0.0.0.0", 22, (700, "sshd")),), DENIED, [P]),  # its holder was seen, and it is not libvirt
    ((Listener(protocol="udp", address="0.0.0.0", port=16509),), DENIED, [P]),  # libvirt speaks TCP
    # a daemon listener seen is judged as before, whatever else is unseen
    ((_tcp("0.0.0.0", 16509, LIBVIRTD), _tcp("0.0.0.0", 5000)), DENIED, [F]),
    ((_tcp("0.0.0.0", 16514, LIBVIRTD), _tcp("0.0.0.0", 5000)), DENIED, [P]),
], ids=["unseen-16509", "unseen-ipv6", "unseen-any-port", "all-read-kernel-socket", "unseen-loopback",
        "unseen-tls-port", "seen-sshd", "unseen-udp", "daemon-seen-plain", "daemon-seen-tls"])
def test_libvirt_tcp_listener_is_unknown_when_a_listeners_holder_was_not_seen(
        listeners: tuple[Listener, ...], sockets_unread: str | None, expected: list[Status]) -> None:
    results = results_of(libvirt_tcp_listener, _host(*listeners, sockets_unread=sockets_unread))
    assert [r.status for r in results] == expected
    if expected == [U]:
        assert listeners[0].endpoint in results[0].message and "Permission denied" in results[0].message


def test_libvirt_tcp_listener_unknown_names_a_bounded_list_of_listeners() -> None:
    listeners = tuple(_tcp("0.0.0.0", 6000 + n) for n in range(40))
    [result] = results_of(libvirt_tcp_listener, _host(*listeners, sockets_unread=DENIED))
    assert result.status is U and "0.0.0.0:6004" in result.message and "and 35 more" in result.message
    assert "0.0.0.0:6005" not in result.message


@pytest.mark.parametrize("reason", [
    "/proc/4242/fd could not be listed: Permission denied (only root sees other users' descriptors)",
    "its descriptors were not read: the scan's limit of 200000 descriptors was reached before it",
], ids=["fd-unreadable", "fd-limit"])
def test_qemu_listeners_is_unknown_when_its_sockets_were_not_read(reason: str) -> None:
    """A VNC console without a password on 0.0.0.0:5977, seen by a scan that could not read QEMU's
    descriptors: not "loopback only (no TCP port)"."""
    dom = Domain(name="vm", origin="vm.xml",
                 graphics=(Graphics(locator="devices/graphics[1]", type="vnc", port=5977),))
    h = _host(_tcp("0.0.0.0", 5977), qemu=(_qemu(None, reason),), sockets_unread=DENIED)
    [result] = results_of(qemu_listeners, h, Environment(inventory=Inventory(host=h, domains=(dom,)), host=h))
    assert result.status is U and result.subject == "domain vm (pid 4242)"
    assert "domain vm (pid 4242)" in result.message and reason in result.message


@pytest.mark.parametrize(("listeners", "expected"), [
    ((), [P]),  # its descriptors were read and hold no listener
    ((_tcp("127.0.0.1", 5900, (4242, "qemu-system-x86_64")),), [P]),
    ((_tcp("0.0.0.0", 5900, (4242, "qemu-system-x86_64")),), [F]),
    (None, [U]),
], ids=["read-none", "read-loopback", "read-any", "not-read"])
def test_qemu_listeners_pass_only_on_sockets_that_were_read(listeners: tuple[Listener, ...] | None,
                                                            expected: list[Status]) -> None:
    h = _host(*(listeners or ()), qemu=(_qemu(listeners, None if listeners is not None else "not read"),))
    results = results_of(qemu_listeners, h, Environment(inventory=Inventory(host=h), host=h))
    assert [r.status for r in results] == expected


# --- "no such process runs" from an incomplete process table --------------------------------------

HIDDEN = "the process table is incomplete: /proc hides other users' processes from this reader (hidepid)"
CAPPED = "the process table is incomplete: beyond the limit of 20000 processes (12 processes)"


def _running(qemu: tuple[QemuProcess, ...], processes_unread: str | None) -> Host:
    runtime = RuntimeState(source="test", processes=(ProcessInfo(pid=1, comm="systemd", stale_files=()),),
                           listeners=(), qemu=qemu, processes_unread=processes_unread)
    return Host(name="h", root="/", live=True, runtime=runtime)


@pytest.mark.parametrize(("processes_unread", "expected"), [
    (None, [P]),  # every running process was read: none is a QEMU
    (HIDDEN, [U]),  # QEMU runs as libvirt-qemu: an unprivileged scan under hidepid sees none
    (CAPPED, [U]),  # the processes past the cap are the youngest: a VM started last among them
], ids=["complete", "hidepid", "capped"])
def test_qemu_current_no_qemu_seen_is_unknown_when_the_process_table_is_incomplete(
        processes_unread: str | None, expected: list[Status]) -> None:
    results = results_of(qemu_current, _running((), processes_unread))
    assert [r.status for r in results] == expected
    if expected == [U]:
        assert results[0].subject == "QEMU processes" and processes_unread in results[0].message
    else:
        assert results[0].message == "no QEMU process runs"


def test_qemu_current_judges_the_qemu_seen_and_is_unknown_about_the_others() -> None:
    stale = QemuProcess(pid=4242, domain="vm", exe="/usr/bin/qemu-system-x86_64", exe_deleted=True,
                        stale_files=("/usr/bin/qemu-system-x86_64",), started_at=None)
    results = results_of(qemu_current, _running((stale,), CAPPED))
    assert sorted((r.subject, r.status) for r in results) == [("QEMU processes", U),
                                                               ("domain vm (pid 4242)", F)]
    results = results_of(qemu_current, _running((_qemu(()),), None))
    assert [(r.subject, r.status) for r in results] == [("domain vm (pid 4242)", P)]


@pytest.mark.parametrize(("processes_unread", "expected"), [(None, [P]), (HIDDEN, [U]), (CAPPED, [U])],
                         ids=["complete", "hidepid", "capped"])
def test_restart_needed_none_stale_is_unknown_when_the_process_table_is_incomplete(
        processes_unread: str | None, expected: list[Status]) -> None:
    """Under hidepid a scan sees only its own processes, all of whose maps it reads: "none of 3
    processes runs replaced code" would speak for the daemons it cannot see."""
    processes = tuple(ProcessInfo(pid=pid, comm="bash", exe="/usr/bin/bash", exe_deleted=False,
                                  stale_files=()) for pid in (700, 701, 702))
    guest = Guest(name="g", origin="ssh g", runtime=RuntimeState(source="ssh g", processes=processes,
                                                                 processes_unread=processes_unread))
    results = results_of(restart_needed, guest)
    assert [r.status for r in results] == expected
    if processes_unread:
        assert processes_unread in results[0].message


def test_restart_needed_names_the_processes_whose_maps_were_refused() -> None:
    """As root too a map can be refused (PID 1 of a container's outer namespace): the UNKNOWN names
    the processes instead of guessing that the scan lacked root."""
    processes = (ProcessInfo(pid=1, comm="init", exe=None, exe_deleted=None, stale_files=None),
                 ProcessInfo(pid=700, comm="bash", exe="/usr/bin/bash", exe_deleted=False, stale_files=()))
    guest = Guest(name="g", origin="/", runtime=RuntimeState(source="/", processes=processes))
    results = results_of(restart_needed, guest)
    assert [r.status for r in results] == [U]
    assert "of 1 could not be read (pid 1 init)" in results[0].message
    assert "root" not in results[0].message


@pytest.mark.parametrize(("listeners", "processes_unread", "expected"), [
    ((_tcp("0.0.0.0", 5900),), HIDDEN, [U]),  # a hidden QEMU's VNC console looks just like this
    ((_tcp("0.0.0.0", 5900),), None, []),  # every process seen, none a QEMU: nothing to judge
    ((_tcp("127.0.0.1", 5900),), HIDDEN, []),  # loopback would pass whoever holds it
    ((_tcp("0.0.0.0", 22, (700, "sshd")),), HIDDEN, []),  # its holder was seen
], ids=["hidden-any", "complete", "hidden-loopback", "seen-holder"])
def test_qemu_listeners_unknown_when_a_hidden_qemu_may_hold_a_listener(
        listeners: tuple[Listener, ...], processes_unread: str | None, expected: list[Status]) -> None:
    runtime = RuntimeState(source="test", listeners=listeners, qemu=(), processes_unread=processes_unread,
                           sockets_unread=processes_unread)
    h = Host(name="h", root="/", live=True, runtime=runtime)
    results = results_of(qemu_listeners, h, Environment(inventory=Inventory(host=h), host=h))
    assert [r.status for r in results] == expected
    if expected:
        assert "0.0.0.0:5900" in results[0].message and "hidepid" in results[0].message


# --- VMS-LIVE-005: systemd holding libvirt's port (socket activation) ----------------------------

SYSTEMD = (1, "systemd")
LIBVIRTD_TCP = SocketUnit(name="libvirtd-tcp.socket", path="/usr/lib/systemd/system/libvirtd-tcp.socket",
                          enabled=True, listen_streams=("16509",))
VIRTPROXYD_TCP = SocketUnit(name="virtproxyd-tcp.socket", path="/etc/systemd/system/virtproxyd-tcp.socket",
                            enabled=True, listen_streams=("0.0.0.0:16600",))
DISABLED = SocketUnit(name="libvirtd-tcp.socket", path="/usr/lib/systemd/system/libvirtd-tcp.socket",
                      enabled=False, listen_streams=("16509",))
ACTIVE = (RunningService(name="libvirtd-tcp.socket", source="systemd", state="listening"),)


def _activated(lst: Listener, units: tuple[SocketUnit, ...] | None,
               services: tuple[RunningService, ...] | None = None) -> Host:
    runtime = RuntimeState(source="test", listeners=(lst,), services=services,
                           services_source="systemd" if services is not None else "process table")
    return Host(name="h", root="/", live=True, runtime=runtime, socket_units=units)


@pytest.mark.parametrize(("listener", "units", "services", "expected"), [
    # libvirtd exited when idle (or never started): only systemd holds its port
    (_tcp("::", 16509, SYSTEMD), (LIBVIRTD_TCP,), None, [F]),
    (_tcp("0.0.0.0", 16600, SYSTEMD), (VIRTPROXYD_TCP,), None, [F]),  # a ListenStream with an address
    (_tcp("127.0.0.1", 16509, SYSTEMD), (LIBVIRTD_TCP,), None, [P]),  # loopback only, as for the daemon
    # started by hand, not enabled: systemd's active units say so
    (_tcp("::", 16509, SYSTEMD), (DISABLED,), ACTIVE, [F]),
    (_tcp("::", 16509, SYSTEMD), (DISABLED,), (), [P]),  # not active: another unit holds the port
    (_tcp("::", 16509, SYSTEMD), (DISABLED,), None, [U]),  # not enabled, and what is active is unknown
    (_tcp("::", 16509, SYSTEMD), (evolve(LIBVIRTD_TCP, enabled=None),), None, [U]),
    (_tcp("::", 16509, SYSTEMD), None, None, [U]),  # socket units unknown: libvirt's default port
    (_tcp("::", 22, SYSTEMD), None, None, [P]),  # sshd.socket and the like: not libvirt's default port
    (_tcp("::", 16509, SYSTEMD), (), None, [P]),  # no libvirt TCP unit is installed
    (_tcp("::", 16510, SYSTEMD), (LIBVIRTD_TCP,), None, [P]),  # the unit names another port
    # an unread drop-in may have moved the enabled unit to this port
    (_tcp("::", 16510, SYSTEMD), (evolve(LIBVIRTD_TCP, problem="x.conf: denied"),), None,
     [U]),
], ids=["enabled-unit", "address-stream", "loopback", "active-not-enabled", "inactive-not-enabled",
        "not-enabled-unknown-active", "enabled-unknown", "units-unknown-default-port",
        "units-unknown-other-port", "no-libvirt-unit", "other-port", "unit-not-fully-read"])
def test_libvirt_tcp_listener_held_by_systemd_for_a_libvirt_socket_unit(
        listener: Listener, units: tuple[SocketUnit, ...] | None, services: tuple[RunningService, ...] | None,
        expected: list[Status]) -> None:
    results = results_of(libvirt_tcp_listener, _activated(listener, units, services))
    assert [r.status for r in results] == expected
    if expected == [F]:
        [unit] = units or ()
        assert unit.name in results[0].message and listener.endpoint in results[0].message
        assert any(e.source == unit.path and e.locator == "ListenStream" for e in results[0].evidence)
    if expected == [U]:
        assert listener.endpoint in results[0].message


def test_libvirt_tcp_listener_held_by_systemd_and_the_daemon_is_the_daemons() -> None:
    """Once a connection started libvirtd, it holds the socket systemd passed it: judged as before."""
    h = _activated(_tcp("0.0.0.0", 16509, SYSTEMD, LIBVIRTD), (LIBVIRTD_TCP,))
    assert [(r.status, r.message) for r in results_of(libvirt_tcp_listener, h)] == [
        (F, "systemd/libvirtd listens for plain, unencrypted TCP on 0.0.0.0:16509")]
