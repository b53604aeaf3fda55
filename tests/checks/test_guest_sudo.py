"""sudo checks (VMS-GST-065…069) on sudoers policies built here (aliases already expanded)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from denied_reader import DeniedReader
from vmsec.checks.api import Environment, FactMissing, Result, results_of
from vmsec.checks.guest import sudo
from vmsec.collectors.guest import collect_guest
from vmsec.collectors.reader import RootReader
from vmsec.facts import Guest, InstalledPackage, Inventory, Sudoers, SudoRule
from vmsec.findings import Severity, Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN


def rule(users: str, commands: str = "ALL", runas: str = "ALL", nopasswd: bool = False,
         origin: str = "/etc/sudoers:20") -> SudoRule:
    return SudoRule(users=tuple(users.split(",")), hosts=("ALL",),
                    runas=tuple(runas.split(",")) if runas else (),
                    commands=tuple(commands.split(",")), nopasswd=nopasswd, origin=origin)


def policy(*rules: SudoRule, defaults: tuple[tuple[str, str], ...] = ()) -> Sudoers:
    return Sudoers(rules=rules, defaults=defaults, files=("/etc/sudoers",))


def run(func: Callable[..., Iterator[Result]], s: Sudoers | None,
        sudo_version: str | None = None) -> list[Result]:
    packages = (InstalledPackage(name="sudo", version=sudo_version),) if sudo_version else ()
    g = Guest(name="t", origin="/srv/root", sudoers=s, packages=packages)
    try:
        return list(func(g, Environment(inventory=Inventory(guests=(g,)), host=None)))
    except FactMissing as e:
        return [Result(U, e.subject or "", e.reason)]


def st(results: list[Result]) -> list[Status]:
    return [r.status for r in results]


@pytest.mark.parametrize("func", [sudo.nopasswd_all, sudo.broad_all, sudo.authentication, sudo.use_pty,
                                  sudo.sudo_logging])
def test_unknown_and_absent(func: Callable[..., Iterator[Result]]) -> None:
    assert st(run(func, None)) == [U]
    assert run(func, Sudoers()) == []  # no /etc/sudoers: sudo not configured


@pytest.mark.parametrize(("r", "expected", "severity"), [
    (rule("%sudo"), P, None),
    (rule("debian", nopasswd=True), F, None),
    (rule("ALL", nopasswd=True), F, Severity.CRITICAL),
    (rule("%users", nopasswd=True, runas=""), F, Severity.CRITICAL),
    (rule("deploy", "/usr/bin/systemctl restart app", nopasswd=True), P, None),
    (rule("deploy", nopasswd=True, runas="www-data"), P, None),
])
def test_nopasswd_all(r: SudoRule, expected: Status, severity: Severity | None) -> None:
    results = run(sudo.nopasswd_all, policy(r))
    assert st(results) == [expected] and results[0].severity is severity


def test_broad_all() -> None:
    assert st(run(sudo.broad_all, policy(rule("%sudo"), rule("ALL", origin="/etc/sudoers.d/x:1")))) == [F]
    assert st(run(sudo.broad_all, policy(rule("%sudo"), rule("%users", "/usr/bin/uptime")))) == [P]


@pytest.mark.parametrize(("defaults", "expected", "severity"), [
    ((("", "env_reset"),), [P], [None]),
    ((("", "!authenticate"),), [F], [None]),
    (((":ADMINS", "!authenticate"),), [F], [None]),
    ((("", "authenticate"),), [P], [None]),
    ((("", "targetpw"), ("", "rootpw")), [F, F], [Severity.MEDIUM, Severity.MEDIUM]),
    ((("", "!rootpw"),), [P], [None]),
])
def test_authentication(defaults: tuple[tuple[str, str], ...], expected: list[Status],
                        severity: list[Severity | None]) -> None:
    results = run(sudo.authentication, policy(defaults=defaults))
    assert st(results) == expected and [r.severity for r in results] == severity


@pytest.mark.parametrize(("defaults", "version", "expected"), [
    ((("", "use_pty"),), None, P),
    ((("", "use_pty"), ("", "!use_pty")), None, F),
    ((), "1.9.13p3-1", F),
    ((), "1.9.15p5-3", P),
    ((), None, F),
    (((":alice", "use_pty"),), "1.9.5p2", F),  # only for alice
])
def test_use_pty(defaults: tuple[tuple[str, str], ...], version: str | None, expected: Status) -> None:
    assert st(run(sudo.use_pty, policy(defaults=defaults), version)) == [expected]


@pytest.mark.parametrize(("defaults", "expected", "severity"), [
    ((("", 'logfile="/var/log/sudo.log"'),), P, None),
    ((("", "log_output"),), P, None),
    ((), F, None),
    ((("", "!syslog"),), F, Severity.MEDIUM),
])
def test_sudo_logging(defaults: tuple[tuple[str, str], ...], expected: Status,
                      severity: Severity | None) -> None:
    results = run(sudo.sudo_logging, policy(defaults=defaults))
    assert st(results) == [expected] and results[0].severity is severity


@pytest.mark.parametrize(("defaults", "expected"), [
    # Class 9: Defaults:user / @host / >runas / !cmnd apply to their scope.
    ((("", "use_pty"), (":ops", "!use_pty")), [Status.PASS, Status.FAIL]),
    (((":ops", "!use_pty"),), [Status.PASS, Status.FAIL]),  # sudo 1.9.14 default on, off for ops
    ((("@db01", "!use_pty"),), [Status.PASS, Status.FAIL]),
    (((">root", "!use_pty"),), [Status.PASS, Status.FAIL]),
    (((":ops", "!use_pty"), (":ops", "use_pty")), [Status.PASS]),  # the last entry of a scope wins
    ((("", "!use_pty"), (":ops", "use_pty")), [Status.FAIL]),  # decoy: a scoped enable is no finding
])
def test_use_pty_scoped_defaults(defaults: tuple[tuple[str, str], ...], expected: list[Status]) -> None:
    results = run(sudo.use_pty, policy(defaults=defaults), sudo_version="1.9.15p5")
    assert st(results) == expected
    if Status.FAIL in expected and len(expected) == 2:
        assert results[1].subject.startswith("sudo Defaults") and "!use_pty" in results[1].message


# --- an included file that could not be read -------------------------------------------------------

UNREAD = ("/etc/sudoers.d/90-cloud-init-users: Permission denied",)
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "checks"


def partial(*rules: SudoRule, defaults: tuple[tuple[str, str], ...] = ()) -> Sudoers:
    """A policy whose sudoers.d file could not be read (a scan by a user who is not root)."""
    return Sudoers(rules=rules, defaults=defaults, files=("/etc/sudoers",), unread=UNREAD)


@pytest.mark.parametrize(("func", "defaults", "version"), [
    (sudo.nopasswd_all, (), None),
    (sudo.broad_all, (), None),
    (sudo.authentication, (), None),
    (sudo.use_pty, (("", "use_pty"),), None),  # the unread file could say !use_pty after it
    (sudo.use_pty, (), "1.9.15"),
    (sudo.use_pty, (), "1.9.5p2"),  # "not set" is a claim about the unread file too
    (sudo.sudo_logging, (("", 'logfile="/var/log/sudo.log"'),), None),
    (sudo.sudo_logging, (), None),
])
def test_a_policy_with_an_unread_file_is_unknown_not_pass(func: Callable[..., Iterator[Result]],
                                                          defaults: tuple[tuple[str, str], ...],
                                                          version: str | None) -> None:
    results = run(func, partial(rule("%sudo"), defaults=defaults), version)
    assert st(results) == [U]
    assert "/etc/sudoers.d/90-cloud-init-users: Permission denied" in results[0].message


@pytest.mark.parametrize(("func", "policy_", "expected"), [
    (sudo.nopasswd_all, partial(rule("debian", nopasswd=True)), [F]),
    (sudo.broad_all, partial(rule("ALL")), [F]),
    (sudo.authentication, partial(defaults=((":alice", "!authenticate"),)), [F]),
    (sudo.use_pty, partial(defaults=(("", "!use_pty"),)), [F]),
])
def test_a_rule_that_was_read_stays_a_fail(func: Callable[..., Iterator[Result]], policy_: Sudoers,
                                           expected: list[Status]) -> None:
    assert st(run(func, policy_)) == expected



@pytest.mark.parametrize("func", [sudo.nopasswd_all, sudo.broad_all, sudo.authentication])
def test_cloud_init_drop_in_unreadable_to_the_scanner_is_unknown(
        func: Callable[..., Iterator[Result]]) -> None:
    # The reviewer's case: 90-cloud-init-users (0440) grants ubuntu NOPASSWD:ALL; scanned as root it
    # fails, scanned as nobody it passed. Now it is UNKNOWN, naming the file.
    root = FIXTURES / "VMS-GST-065" / "cloud-init-nopasswd.FAIL"
    guest, records = collect_guest(DeniedReader(root, "/etc/sudoers.d/90-cloud-init-users"),
                                   name="t", origin=str(root))
    assert any(r.source == "/etc/sudoers.d/90-cloud-init-users" and not r.ok for r in records)
    env = Environment(inventory=Inventory(guests=(guest,)), host=None)
    results = results_of(func, guest, env)
    assert st(results) == [U]
    assert "/etc/sudoers.d/90-cloud-init-users: Permission denied" in results[0].message
    whole, _ = collect_guest(RootReader(str(root)), name="t", origin=str(root))
    assert F in st(results_of(sudo.nopasswd_all, whole, env))  # read in full: the rule is found
