"""Guest audit and logging checks (VMS-GST-110…117)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from vmsec.checks.guest import logging as lg
from vmsec.facts import Guest
from vmsec.facts.guest import AuditSetup, Service
from vmsec.facts.runtime import RunningService, RuntimeState
from vmsec.findings import Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN

CIS_RULES = (
    "-D", "-b 8192",
    "-w /etc/passwd -p wa -k identity", "-w /etc/shadow -p wa -k identity",
    "-w /etc/group -p wa -k identity",
    "-w /etc/sudoers -p wa -k scope", "-w /etc/sudoers.d -p wa -k scope",
    "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change",
    "-e 2",
)


def audit(**kw: Any) -> AuditSetup:
    kw.setdefault("auditd_installed", True)
    kw.setdefault("auditd_enabled", True)
    return AuditSetup(**kw)


def g(a: AuditSetup | None, services: tuple[Service, ...] | None = ()) -> Guest:
    return Guest(name="vm", origin="/img", audit=a, services=services)


@pytest.mark.parametrize(("a", "expected"), [
    (None, U),
    (audit(auditd_installed=False, auditd_enabled=False), F),
    (audit(auditd_enabled=False), F),
    (audit(auditd_enabled=None), U),
    (audit(auditd_installed=None), U),
    (audit(), P),
])
def test_auditd_enabled(a: AuditSetup | None, expected: Status) -> None:
    [r] = lg.auditd_enabled(g(a))
    assert r.status is expected


@pytest.mark.parametrize(("func", "rules", "expected"), [
    (lg.audit_rules_present, CIS_RULES, [P]),
    (lg.audit_rules_present, ("-D", "-b 8192", "-f 1"), [F]),
    (lg.audit_rules_present, (), [F]),
    (lg.audit_identity, CIS_RULES, [P]),
    (lg.audit_identity, ("-w /etc/passwd -p wa", "-a always,exit -F path=/etc/shadow -F perm=wa"), [F]),
    (lg.audit_identity, ("-w /etc/passwd -p wa", "-a always,exit -F path=/etc/shadow -F perm=wa",
                         "-w /etc/group -p wa"), [P]),
    (lg.audit_identity, ("-w /etc/passwd- -p wa",), [F]),  # a backup file is not the file
    (lg.audit_sudoers, CIS_RULES, [P]),
    (lg.audit_sudoers, ("-w /etc/sudoers -p wa",), [F]),
    (lg.audit_time_change, CIS_RULES, [P]),
    (lg.audit_time_change, ("-a always,exit -F arch=b64 -S clock_settime -F a0=0x0",), [P]),
    (lg.audit_time_change, ("-w /etc/localtime -p wa",), [F]),
    (lg.audit_immutable, CIS_RULES, [P]),
    (lg.audit_immutable, ("-e 2", "-e 1"), [F]),
    (lg.audit_immutable, ("-w /etc/passwd",), [F]),
])
def test_audit_rules(func: Any, rules: tuple[str, ...], expected: list[Status]) -> None:
    assert [r.status for r in func(g(audit(rules=rules)))] == expected


def test_rules_checks_stay_quiet_without_auditd_and_unknown_without_facts() -> None:
    none = audit(auditd_installed=False, auditd_enabled=False)
    for func in (lg.audit_rules_present, lg.audit_identity, lg.audit_sudoers, lg.audit_time_change,
                 lg.audit_immutable):
        assert list(func(g(none))) == []
        assert [r.status for r in func(g(None))] == [U]


def test_missing_identity_files_are_named() -> None:
    [r] = lg.audit_identity(g(audit(rules=("-w /etc/passwd -p wa",))))
    assert "/etc/shadow" in r.message and "/etc/group" in r.message and "/etc/passwd," not in r.message


@pytest.mark.parametrize(("remote", "expected"), [
    ((), F), (("/etc/rsyslog.d/60-remote.conf:1 *.* @@logs.example.com:6514",), P)])
def test_remote_logging(remote: tuple[str, ...], expected: Status) -> None:
    [r] = lg.remote_logging(g(audit(remote_logging=remote)))
    assert r.status is expected


RSYSLOG = Service(name="rsyslog.service", manager="systemd", enabled=True)


@pytest.mark.parametrize(("storage", "services", "expected"), [
    ("persistent", (), P),
    ("volatile", (), F),
    ("none", (), F),
    ("volatile", (RSYSLOG,), P),
    ("volatile", None, U),
    ("auto", (), U),  # the collector resolves auto; unresolved it stays unknown
    (None, (), F),  # no journald, no syslog daemon
    (None, (RSYSLOG,), P),
])
def test_persistent_logs(storage: str | None, services: Any, expected: Status) -> None:
    [r] = lg.persistent_logs(g(audit(journald_storage=storage), services))
    assert r.status is expected


UNREAD = {"audit": ("/etc/audit/rules.d/99-finalize.rules: Permission denied",)}


@pytest.mark.parametrize(("func", "a", "expected"), [
    (lg.audit_rules_present, audit(rules=CIS_RULES), [U]),
    (lg.audit_rules_present, audit(rules=()), [U]),  # "no rules" may be wrong
    (lg.audit_identity, audit(rules=CIS_RULES), [U]),
    (lg.audit_identity, audit(rules=()), [U]),
    (lg.audit_immutable, audit(rules=CIS_RULES), [U]),
    (lg.audit_immutable, audit(rules=("-e 1",)), [U]),  # the last file may end with -e 2
    # a forwarding that was read is there
    (lg.remote_logging, audit(remote_logging=("rsyslog /etc/rsyslog.conf:3: *.* @@log",)), [P]),
    (lg.remote_logging, audit(), [U]),
    (lg.persistent_logs, audit(journald_storage="persistent"), [U]),
    (lg.persistent_logs, audit(journald_storage="volatile"), [U]),
])
def test_with_an_unread_audit_or_logging_file(func: Any, a: AuditSetup, expected: list[Status]) -> None:
    results = list(func(Guest(name="vm", origin="/img", audit=a, services=(), unread=UNREAD)))
    assert [r.status for r in results] == expected


def test_auditd_not_enabled_is_unknown_when_a_service_directory_was_unread() -> None:
    guest = Guest(name="vm", origin="/img", audit=audit(auditd_enabled=False), services=(),
                  unread={"services": ("/etc/systemd/system/multi-user.target.wants: Permission denied",)})
    assert [r.status for r in lg.auditd_enabled(guest)] == [U]


def _seen(*running: str, hidden: str | None = "hidepid=invisible: other users' processes are hidden"
          ) -> RuntimeState:
    """Services read from the process table, which ``hidden`` says is incomplete (None: complete)."""
    return RuntimeState(source="ssh admin@vm", services_source="process table", processes_unread=hidden,
                        services=tuple(RunningService(name=n, source="process", pid=100 + i)
                                       for i, n in enumerate(running)))


@pytest.mark.parametrize(("runtime", "expected"), [
    (_seen("sshd"), U),  # auditd may run among the hidden processes
    (_seen("sshd", hidden=None), F),  # the whole table: it does not run
    (_seen("auditd"), P),  # seen running
])
def test_auditd_not_in_an_incomplete_process_table_is_unknown(runtime: RuntimeState,
                                                             expected: Status) -> None:
    guest = msgspec.structs.replace(g(audit()), runtime=runtime)
    assert [r.status for r in lg.auditd_enabled(guest)] == [expected]


@pytest.mark.parametrize(("runtime", "expected"), [
    (_seen("sshd"), U),
    (_seen("sshd", hidden=None), F),
    (_seen("systemd-journald"), U),  # journald with the default Storage, and a syslog daemon may be hidden
    (_seen("rsyslogd"), P),
])
def test_no_logging_daemon_in_an_incomplete_process_table_is_unknown(runtime: RuntimeState,
                                                                   expected: Status) -> None:
    guest = msgspec.structs.replace(g(audit(journald_storage="volatile")), runtime=runtime)
    assert [r.status for r in lg.persistent_logs(guest)] == [expected]
