"""Guest network-service checks (VMS-GST-085…094)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vmsec.checks.api import Result
from vmsec.checks.guest import services as s
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
