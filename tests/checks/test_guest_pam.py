"""PAM checks (VMS-GST-055…061) on PAM stacks built here (includes already expanded, as the
collector gives them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vmsec.checks.api import Environment, FactMissing, Result
from vmsec.checks.guest import pam
from vmsec.facts import Guest, Inventory, ModuleConfig, PamLine, PamStack, ShadowEntry, SshdConfig
from vmsec.findings import Severity, Status
from vmsec.parsers.pam_module_conf import FAILLOCK, PWQUALITY

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


# pwquality.conf and faillock.conf read, and absent: the modules' compiled-in defaults apply
NO_CONFS = {PWQUALITY: ModuleConfig(path=PWQUALITY, present=False),
            FAILLOCK: ModuleConfig(path=FAILLOCK, present=False)}


def confs(**files: dict[str, str]) -> dict[str, ModuleConfig]:
    """Module configurations with these settings, e.g. confs(pwquality={"minlen": "14"})."""
    out = dict(NO_CONFS)
    for name, values in files.items():
        path = {"pwquality": PWQUALITY, "faillock": FAILLOCK}[name]
        out[path] = ModuleConfig(path=path, present=True, values=values,
                                 origins={k: f"{path}:{i}" for i, k in enumerate(values, 1)}, files=(path,))
    return out


def guest(*stacks: PamStack, sshd: SshdConfig | None = None, **facts: Any) -> Guest:
    facts.setdefault("pam_module_configs", NO_CONFS)
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
    g = guest(stack("sshd", "auth required pam_faillock.so preauth", *DEBIAN_AUTH,
                    "auth [default=die] pam_faillock.so authfail"),
              stack("login", *DEBIAN_AUTH), stack("cron", "account required pam_unix.so"))
    results = run(pam.lockout, g)
    assert [(r.subject, r.status) for r in results] == [("pam sshd", P), ("pam login", F)]
    # preauth only reads the tally: with no authfail line nothing is counted (checked with libpam:
    # six failures, no lock)
    results = run(pam.lockout, guest(stack("sshd", "auth required pam_faillock.so preauth", *DEBIAN_AUTH)))
    assert st(results) == [F] and "authfail" in results[0].message
    results = run(pam.lockout, guest(stack("sshd", "auth required pam_faillock.so authfail deny=0")))
    assert st(results) == [F] and "deny=0" in results[0].message


# --- as actually configured: pwquality.conf and faillock.conf, overridden by module arguments ---------

PWQ = "password requisite pam_pwquality.so retry=3"
FAILLOCK_LINE = "auth required pam_faillock.so authfail"


@pytest.mark.parametrize(("spec", "files", "expected"), [
    (PWQ, {"pwquality": {"enforcing": "0"}}, F),  # the file turns enforcement off: only warnings
    (PWQ + " enforcing=1", {"pwquality": {"enforcing": "0"}}, P),  # the argument wins over the file
    (PWQ, {"pwquality": {"minlen": "14"}}, P),  # decoy: a file that sets other things
    (PWQ, {}, P),  # no file: libpwquality enforces by default
])
def test_password_quality_reads_pwquality_conf(spec: str, files: dict[str, dict[str, str]],
                                               expected: Status) -> None:
    g = guest(stack("common-password", spec), pam_module_configs=confs(**files))
    assert st(run(pam.password_quality, g)) == [expected]


def test_unreadable_module_configuration_is_unknown_not_pass() -> None:
    g = guest(stack("common-password", PWQ), stack("sshd", FAILLOCK_LINE), pam_module_configs={})
    assert st(run(pam.password_quality, g)) == [U]
    assert st(run(pam.lockout, g)) == [U]
    assert st(run(pam.password_min_length, g)) == [U]


@pytest.mark.parametrize(("files", "spec_extra", "expected"), [
    ({"faillock": {"deny": "0"}}, "", F),  # faillock.conf "deny = 0" never locks (was a PASS)
    ({"faillock": {"deny": "0"}}, " deny=4", P),
    ({}, "", P),  # default deny 3
])
def test_lockout_reads_faillock_conf(files: dict[str, dict[str, str]], spec_extra: str,
                                     expected: Status) -> None:
    g = guest(stack("sshd", FAILLOCK_LINE + spec_extra), pam_module_configs=confs(**files))
    assert st(run(pam.lockout, g)) == [expected]


@pytest.mark.parametrize(("spec", "files", "expected", "words"), [
    (PWQ, {}, F, "accepts passwords of 8 characters"),  # libpwquality's default minlen 8
    (PWQ, {"pwquality": {"minlen": "14"}}, P, "requires 14 characters"),
    (PWQ + " minlen=10", {"pwquality": {"minlen": "14"}}, F, "accepts passwords of 10"),  # argument wins
    (PWQ, {"pwquality": {"minlen": "14", "dcredit": "1", "ocredit": "2"}}, F, "less 3 for positive"),
    (PWQ, {"pwquality": {"minlen": "14", "dcredit": "-1"}}, P, "requires 14"),  # negative credit: a rule
    (PWQ, {"pwquality": {"minlen": "3"}}, F, "accepts passwords of 6"),  # never under 6
    ("password requisite pam_cracklib.so", {}, F, "accepts passwords of 6"),  # 9 less 4 credits, floor 6
    ("password requisite pam_passwdqc.so", {}, F, "accepts passwords of 7"),  # default min=…,8,7
    ("password requisite pam_passwdqc.so min=disabled,disabled,disabled,disabled,16", {}, P, "16"),
])
def test_password_min_length_as_configured(spec: str, files: dict[str, dict[str, str]], expected: Status,
                                           words: str) -> None:
    results = run(pam.password_min_length, guest(stack("common-password", spec),
                  pam_module_configs=confs(**files)))
    assert st(results) == [expected] and words in results[0].message


def test_password_min_length_is_a_profile_parameter() -> None:
    g = guest(stack("common-password", PWQ), pam_module_configs=confs(pwquality={"minlen": "12"}))
    env = Environment(inventory=Inventory(guests=(g,)), host=None, params={"password_min_length": 12})
    assert [r.status for r in pam.password_min_length(g, env)] == [P]


@pytest.mark.parametrize(("spec", "files", "expected", "words"), [
    (FAILLOCK_LINE, {}, F, "unlock_time=600"),  # defaults: deny 3, unlock_time 600 (< 900)
    (FAILLOCK_LINE, {"faillock": {"deny": "5", "unlock_time": "900"}}, P, "for 900 seconds"),
    (FAILLOCK_LINE, {"faillock": {"deny": "5", "unlock_time": "0"}}, P, "until an administrator"),
    (FAILLOCK_LINE, {"faillock": {"deny": "10", "unlock_time": "900"}}, F, "deny=10"),
    (FAILLOCK_LINE + " unlock_time=60", {"faillock": {"unlock_time": "900"}}, F, "unlock_time=60"),
    ("auth required pam_tally2.so deny=3 unlock_time=1200", {}, P, "for 1200 seconds"),
])
def test_lockout_thresholds_as_configured(spec: str, files: dict[str, dict[str, str]], expected: Status,
                                          words: str) -> None:
    results = run(pam.lockout_thresholds, guest(stack("sshd", spec), pam_module_configs=confs(**files)))
    assert st(results) == [expected] and words in results[0].message


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


def test_passwdqc_limits_in_other_digits_cannot_be_read() -> None:
    # '²' is a digit to str.isdigit() but not to int(): the check crashed on it.
    results = run(pam.password_min_length, guest(stack("common-password", "password required pam_passwdqc.so "
                                                                          "min=²,²,²,²,²")))
    assert st(results) == [U] and "cannot be read" in results[0].message


# --- module arguments as each module reads them (libpam 1.5.2, libpwquality 1.4.5; checked live) ------

@pytest.mark.parametrize("arg", ["nullok", "nullokx", "nullok=0", "nullok_secure"])
def test_pam_unix_takes_its_options_by_prefix(arg: str) -> None:
    # support.c _set_ctrl: strncmp(arg, token, strlen(token)) — all of these enable nullok.
    g = guest(stack("common-auth", f"auth required pam_unix.so {arg}"))
    assert st(run(pam.nullok, g)) == [F]


@pytest.mark.parametrize(("spec", "expected"), [
    (PWQ + " ENFORCING=0", F),  # option names without regard to case (strcasecmp)
    (PWQ + " enforcing=00", F),  # values through strtol
    (PWQ + " enforcing=0 enforcing=1x", F),  # a value libpwquality refuses leaves the earlier one
])
def test_pwquality_options_as_libpwquality_reads_them(spec: str, expected: Status) -> None:
    g = guest(stack("common-password", spec), pam_module_configs=confs())
    assert st(run(pam.password_quality, g)) == [expected]


def test_pwquality_minlen_it_refuses_is_not_the_minimum() -> None:
    # "minlen=1_4" is no number to strtol (Python's int() says 14): libpwquality keeps the file's 8.
    g = guest(stack("common-password", "password requisite pam_pwquality.so minlen=1_4"),
              pam_module_configs=confs(pwquality={"minlen": "8"}))
    assert st(run(pam.password_min_length, g)) == [F]
    upper = guest(stack("common-password", "password requisite pam_pwquality.so MINLEN=8"),
                  pam_module_configs=confs(pwquality={"minlen": "14"}))
    assert st(run(pam.password_min_length, upper)) == [F]


@pytest.mark.parametrize("deny", ["00", "0x5", "65536", "+0", "-65536"])
def test_faillock_deny_as_sscanf_reads_it(deny: str) -> None:
    # pam_faillock.c: sscanf("%hu") — these are all 0 to it, and deny 0 never locks.
    g = guest(stack("sshd", f"auth required pam_faillock.so authfail deny={deny}"),
              pam_module_configs=confs())
    assert st(run(pam.lockout, g)) == [F]


# --- the stack run as libpam runs it (pam_dispatch.c; each case succeeded in libpam 1.5.2) ------------

MFA_LINE = "auth required pam_google_authenticator.so"


@pytest.mark.parametrize("specs", [
    ("auth [default=done] pam_permit.so", "auth required pam_unix.so"),
    ("auth [success = done default=ignore] pam_permit.so", "auth required pam_unix.so"),
    ("auth [success=2 default=ignore] pam_permit.so", "auth required pam_unix.so", MFA_LINE,
     "auth required pam_permit.so"),
    ("auth optional pam_permit.so",),  # nothing else decides: the stack is positive
])
def test_a_stack_that_lets_anyone_in_is_a_bypass(specs: tuple[str, ...]) -> None:
    results = run(pam.auth_bypass, guest(stack("sshd", *specs)))
    assert F in st(results), results


@pytest.mark.parametrize("specs", [
    DEBIAN_AUTH,
    ("auth required pam_env.so", "auth required pam_faildelay.so delay=2000000",
     "auth [default=1 ignore=ignore success=ok] pam_usertype.so isregular",
     "auth [default=1 ignore=ignore success=ok] pam_localuser.so", "auth sufficient pam_unix.so nullok",
     "auth [default=1 ignore=ignore success=ok] pam_usertype.so isregular",
     "auth sufficient pam_sss.so forward_pass", "auth required pam_deny.so"),  # RHEL 9 system-auth
    ("auth sufficient pam_rootok.so", "auth required pam_unix.so"),  # su: root only
])
def test_distribution_stacks_are_no_bypass(specs: tuple[str, ...]) -> None:
    assert st(run(pam.auth_bypass, guest(stack("su", *specs)))) == [P]


def _ssh_guest(*stacks: PamStack) -> Guest:
    return guest(*stacks, sshd=SshdConfig(version="9.2p1", settings={"usepam": ("yes",)}))


@pytest.mark.parametrize("specs", [
    ("auth sufficient pam_unix.so", MFA_LINE),  # the password ends the stack before the factor
    ("auth [success=1 default=ignore] pam_unix.so", MFA_LINE, "auth required pam_permit.so"),
])
def test_a_second_factor_a_password_skips_is_not_required(specs: tuple[str, ...]) -> None:
    results = run(pam.sshd_pam_mfa, _ssh_guest(stack("sshd", *specs)))
    assert st(results) == [F] and "skip" in results[0].message


def test_include_runs_at_the_callers_level_and_substack_below_it() -> None:
    # include: common's "sufficient" success ends the whole stack, the factor never runs; substack:
    # it ends only the substack, and the factor still runs.
    common = [PamLine(type="auth", control="sufficient", module="pam_unix.so", origin="c:1"),
              PamLine(type="auth", control="required", module="pam_deny.so", origin="c:2")]
    for control, level, expected in (("include", 0, F), ("substack", 1, P)):
        lines = (PamLine(type="auth", control=control, module="common", origin="s:1"),
                 *(PamLine(type=ln.type, control=ln.control, module=ln.module, origin=ln.origin, level=level)
                   for ln in common),
                 PamLine(type="auth", control="required", module="pam_google_authenticator.so", origin="s:2"))
        g = _ssh_guest(PamStack(service="sshd", path="/etc/pam.d/sshd", lines=lines))
        assert st(run(pam.sshd_pam_mfa, g)) == [expected], control
