"""Guest network-service checks (VMS-GST-085…094)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from denied_reader import DeniedReader
from vmsec.checks.api import Result
from vmsec.checks.guest import services as s
from vmsec.collectors.guest import collect_guest
from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind
from vmsec.facts import Guest
from vmsec.facts.guest import Service
from vmsec.findings import Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN


def svc(name: str, enabled: bool | None = True, manager: str = "systemd") -> Service:
    return Service(name=name, manager=manager, enabled=enabled,
                   origin=f"/etc/systemd/system/multi-user.target.wants/{name}")


BASE = (svc("ssh.service"), svc("cron.service"), svc("systemd-journald.service"))

CASES: list[tuple[Callable[[Guest], Iterator[Result]], tuple[Service, ...] | None, list[Status]]] = [
    (s.telnet_server, None, [U]),
    (s.telnet_server, BASE, [P]),
    (s.telnet_server, (*BASE, svc("telnet.socket")), [F]),
    (s.telnet_server, (svc("telnet", manager="inetd"),), [F]),
    (s.telnet_server, (svc("telnetd", manager="openrc"),), [F]),
    (s.telnet_server, (svc("telnet.socket", enabled=False),), [P]),
    (s.telnet_server, (svc("telnet.socket", enabled=None),), [U]),
    (s.r_services, (svc("rlogin.socket"), svc("rsh.socket")), [F, F]),
    (s.r_services, (svc("shell", manager="inetd"),), [F]),
    (s.r_services, (svc("login.service"),), [P]),  # a systemd unit named login is not rlogin
    (s.tftp_server, (svc("tftpd-hpa.service"),), [F]),
    (s.tftp_server, (svc("in.tftpd", manager="xinetd"),), [F]),
    (s.ftp_server, (svc("vsftpd.service"),), [F]),
    (s.ftp_server, BASE, [P]),
    (s.super_server, (svc("xinetd.service"),), [F]),
    (s.super_server, (svc("openbsd-inetd.service", enabled=False),), [P]),
    (s.nis_services, (svc("ypbind.service"),), [F]),
    (s.talk_server, (svc("ntalk", manager="inetd"),), [F]),
    (s.snmp_agent, (svc("snmpd.service"),), [F]),
    (s.display_manager, (svc("gdm3.service"),), [F]),
    (s.display_manager, (svc("display-manager.service"),), [F]),
    (s.display_manager, BASE, [P]),
    (s.rpcbind_without_nfs, (svc("rpcbind.service"),), [F]),
    (s.rpcbind_without_nfs, (svc("rpcbind.service"), svc("nfs-server.service")), [P]),
    (s.rpcbind_without_nfs, (svc("rpcbind.socket", enabled=False),), [P]),
    (s.rpcbind_without_nfs, BASE, [P]),
    (s.rpcbind_without_nfs, None, [U]),
]


@pytest.mark.parametrize(("func", "services", "expected"), CASES,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(CASES)])
def test_services(func: Any, services: tuple[Service, ...] | None, expected: list[Status]) -> None:
    guest = Guest(name="vm", origin="/img", services=services)
    assert [r.status for r in func(guest)] == expected


def test_fail_message_names_the_unit_and_manager() -> None:
    [r] = s.telnet_server(Guest(name="vm", origin="/img", services=(svc("telnet", manager="inetd"),)))
    assert "telnet" in r.message and "inetd" in r.message and r.subject == "inetd telnet"


# --- a service manager's configuration that could not be read ----------------------------------------

INETD_DENIED = {"services": ("/etc/inetd.conf: Permission denied",)}
_CHECKS = [s.telnet_server, s.r_services, s.tftp_server, s.ftp_server, s.super_server, s.nis_services,
           s.talk_server, s.snmp_agent, s.display_manager, s.rpcbind_without_nfs]


@pytest.mark.parametrize("func", _CHECKS, ids=[f.__name__ for f in _CHECKS])
@pytest.mark.parametrize("services", [BASE, (svc("telnet.socket", enabled=False),
                                             svc("rpcbind.socket", enabled=False))])
def test_with_an_unread_service_file_nothing_passes(func: Any, services: tuple[Service, ...]) -> None:
    partial = Guest(name="vm", origin="/img", services=services, unread=INETD_DENIED)
    statuses = [r.status for r in func(partial)]
    assert statuses and P not in statuses
    complete = [r.status for r in func(Guest(name="vm", origin="/img", services=services))]
    assert [U if x is P else x for x in complete] == statuses  # only the passes changed


def test_rpcbind_without_nfs_is_unknown_when_nfs_may_be_unread() -> None:
    [r] = s.rpcbind_without_nfs(Guest(name="vm", origin="/img", services=(svc("rpcbind.service"),),
                                      unread=INETD_DENIED))
    assert r.status is U and "/etc/inetd.conf" in r.message


def test_an_enabled_service_read_stays_a_fail_with_an_unread_file() -> None:
    [r] = s.telnet_server(Guest(name="vm", origin="/img", services=(svc("telnet.socket"),),
                                unread=INETD_DENIED))
    assert r.status is F
    # rpcbind enabled for an NFS server that was read: what is there is there
    [r] = s.rpcbind_without_nfs(Guest(name="vm", origin="/img", unread=INETD_DENIED,
                                      services=(svc("rpcbind.service"), svc("nfs-server.service"))))
    assert r.status is P



def test_an_unreadable_inetd_conf_makes_r_services_unknown(tmp_path: Path) -> None:
    # The reviewer's case: /etc/inetd.conf (0600) starts rshd; scanned as nobody it passed "no r-services
    # service among 0 services". The unread file is kept on the guest, and the check says UNKNOWN.
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/inetd.conf").write_text("shell stream tcp nowait root /usr/sbin/tcpd in.rshd\n")
    guest, records = collect_guest(DeniedReader(tmp_path, "/etc/inetd.conf"), name="vm",
                                   origin=str(tmp_path))
    assert guest.services == ()
    assert guest.unread == {"services": ("/etc/inetd.conf: Permission denied",)}
    assert any(r.source == "/etc/inetd.conf" and r.kind is ErrorKind.DENIED for r in records)
    [r] = s.r_services(guest)
    assert r.status is U and "/etc/inetd.conf: Permission denied" in r.message
    whole, _ = collect_guest(RootReader(str(tmp_path)), name="vm", origin=str(tmp_path))
    assert [r.status for r in s.r_services(whole)] == [F] and whole.unread == {}


@pytest.mark.parametrize(("hidden", "expected"), [
    ("hidepid=invisible: other users' processes are hidden", U),  # a telnetd not listed may run
    (None, P),  # the whole table read: none runs
])
def test_no_telnet_in_an_incomplete_process_table_is_unknown(hidden: str | None, expected: Status) -> None:
    from vmsec.facts.runtime import RunningService, RuntimeState

    runtime = RuntimeState(source="ssh admin@vm", services_source="process table", processes_unread=hidden,
                           services=(RunningService(name="sshd", source="process", pid=100),))
    guest = Guest(name="vm", origin="/img", services=(svc("ssh.service"),), runtime=runtime)
    [result] = s.telnet_server(guest)
    assert result.status is expected
    if hidden:
        assert "hidepid=invisible" in result.message
