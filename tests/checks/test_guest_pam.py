"""PAM checks (VMS-GST-055…061) on PAM stacks built here (includes already expanded, as the
collector gives them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vmsec.checks.api import Environment, FactMissing, Result
from vmsec.checks.guest import pam
from vmsec.facts import Guest, Inventory, PamLine, PamStack, ShadowEntry, SshdConfig
from vmsec.findings import Severity, Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN


def line(spec: str, origin: str) -> PamLine:
    kind, rest = spec.split(None, 1)
    if rest.startswith("["):
        control, _, rest = rest[1:].partition("]")
        words = [kind, f"[{control}]", *rest.split()]
    else:
        words = [kind, *rest.split()]
    return PamLine(type=words[0], control=words[1], module=words[2], args=tuple(words[3:]), origin=origin)


def stack(service: str, *specs: str, file: str | None = None) -> PamStack:
    path = f"/etc/pam.d/{service}"
    return PamStack(service=service, path=path, lines=tuple(
        line(s, f"{file or path}:{i}") for i, s in enumerate(specs, 1)))


DEBIAN_AUTH = ("auth [success=1 default=ignore] pam_unix.so nullok",
               "auth requisite pam_deny.so", "auth required pam_permit.so")


def guest(*stacks: PamStack, sshd: SshdConfig | None = None, **facts: Any) -> Guest:
    return Guest(name="t", origin="/srv/root", pam=stacks, sshd=sshd,
                 sshd_installed=sshd is not None, **facts)


def run(func: Callable[..., Iterator[Result]], g: Guest) -> list[Result]:
    try:
        return list(func(g, Environment(inventory=Inventory(guests=(g,)), host=None)))
    except FactMissing as e:
        return [Result(U, e.subject or "", e.reason)]


def st(results: list[Result]) -> list[Status]:
    return [r.status for r in results]


@pytest.mark.parametrize("func", [pam.nullok, pam.password_quality, pam.lockout, pam.auth_bypass])
def test_unknown_and_no_pam(func: Callable[..., Iterator[Result]]) -> None:
    unread = Guest(name="t", origin="/srv/root", pam=None)
    assert st(run(func, unread)) == [U]
    assert run(func, guest()) == []  # no PAM at all (Alpine): nothing to judge


def test_nullok_reported_once_per_line_and_escalated() -> None:
    common = "/etc/pam.d/common-auth"
    g = guest(stack("sshd", *DEBIAN_AUTH, file=common), stack("login", *DEBIAN_AUTH, file=common))
    results = run(pam.nullok, g)
    assert st(results) == [F] and results[0].severity is None
    empty = (ShadowEntry(name="kiosk", hash_algorithm=None, empty=True, locked=False),)
    results = run(pam.nullok, guest(stack("login", *DEBIAN_AUTH), shadow=empty))
    assert results[0].severity is Severity.HIGH and "kiosk" in results[0].message
    assert st(run(pam.nullok, guest(stack("login", "auth required pam_unix.so")))) == [P]


@pytest.mark.parametrize(("spec", "expected"), [
    ("password requisite pam_pwquality.so retry=3", P),
    ("password required pam_passwdqc.so min=disabled,24,12,8,7", P),
    ("password requisite pam_pwquality.so enforcing=0", F),
    ("password [success=1 default=ignore] pam_unix.so obscure yescrypt", F),
])
def test_password_quality(spec: str, expected: Status) -> None:
    assert st(run(pam.password_quality, guest(stack("common-password", spec)))) == [expected]


def test_lockout_per_login_service() -> None:
    g = guest(stack("sshd", "auth required pam_faillock.so preauth", *DEBIAN_AUTH),
              stack("login", *DEBIAN_AUTH), stack("cron", "account required pam_unix.so"))
    results = run(pam.lockout, g)
    assert [(r.subject, r.status) for r in results] == [("pam sshd", P), ("pam login", F)]
    results = run(pam.lockout, guest(stack("sshd", "auth required pam_faillock.so deny=0")))
    assert st(results) == [F] and "deny=0" in results[0].message


SSHD = SshdConfig(version="9.2p1", settings={"authenticationmethods": ("any",)},
                  origins={"authenticationmethods": "default (OpenSSH 9.2p1)"})


@pytest.mark.parametrize(("specs", "expected", "severity"), [
    (("auth required pam_google_authenticator.so",), P, None),
    (("auth required pam_google_authenticator.so nullok",), F, Severity.MEDIUM),
    (("auth sufficient pam_u2f.so",), F, Severity.MEDIUM),
    (("auth required pam_unix.so",), F, None),
])
def test_sshd_mfa(specs: tuple[str, ...], expected: Status, severity: Severity | None) -> None:
    results = run(pam.sshd_pam_mfa, guest(stack("sshd", *specs), sshd=SSHD))
    assert st(results) == [expected] and results[0].severity is severity
    assert run(pam.sshd_pam_mfa, guest(stack("sshd", *specs))) == []  # no sshd: not applicable


@pytest.mark.parametrize(("methods", "expected"), [
    ("any", F), ("publickey", F), ("publickey,keyboard-interactive", P),
    ("publickey,password publickey,keyboard-interactive", P), ("publickey,password password", F)])
def test_authentication_methods(methods: str, expected: Status) -> None:
    cfg = SshdConfig(version="9.2p1", settings={"authenticationmethods": tuple(methods.split())},
                     origins={"authenticationmethods": "/etc/ssh/sshd_config:9"})
    assert st(run(pam.authentication_methods, guest(sshd=cfg))) == [expected]


def test_auth_bypass() -> None:
    assert st(run(pam.auth_bypass, guest(stack("sshd", *DEBIAN_AUTH)))) == [P]
    g = guest(stack("sshd", "auth sufficient pam_permit.so", *DEBIAN_AUTH))
    results = run(pam.auth_bypass, g)
    assert st(results) == [F] and "/etc/pam.d/sshd:1" in results[0].message


def test_su_wheel() -> None:
    assert st(run(pam.su_wheel, guest(stack("su", "auth sufficient pam_rootok.so")))) == [F]
    assert st(run(pam.su_wheel, guest(stack("su", "auth required pam_wheel.so use_uid")))) == [P]
    assert st(run(pam.su_wheel, guest(stack("su", "auth sufficient pam_wheel.so trust")))) == [F]
    assert run(pam.su_wheel, guest(stack("login", *DEBIAN_AUTH))) == []
