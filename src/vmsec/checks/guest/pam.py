"""PAM: empty passwords, password quality, brute-force lockout, second factors for SSH, bypass
modules and who may use `su`.

A stack is one service file with its includes expanded (``common-auth``, ``system-auth`` …), so a
line shared by several services appears in each; results are per line (its ``origin``) or per service.
A system without PAM (an empty tuple: Alpine without linux-pam) gets no PAM results.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, need, ok
from vmsec.checks.helpers.sshd import sshd_of
from vmsec.facts import Guest, PamLine, PamStack
from vmsec.parsers.sshd_effective import reachable

PAM_DOC = "https://www.man7.org/linux/man-pages/man8/pam.8.html"
MFA_MODULES = ("pam_google_authenticator.so", "pam_u2f.so", "pam_oath.so", "pam_duo.so",
               "pam_yubico.so")
QUALITY_MODULES = ("pam_pwquality.so", "pam_cracklib.so", "pam_passwdqc.so")
LOCKOUT_MODULES = ("pam_faillock.so", "pam_tally2.so", "pam_tally.so")
# Services a person logs in through; their auth stacks should lock out repeated failures.
LOGIN_SERVICES = ("sshd", "login", "common-auth", "system-auth", "password-auth")


def _stacks(guest: Guest) -> tuple[PamStack, ...]:
    return need(guest.pam, "the PAM configuration (/etc/pam.d) could not be read")


def _module(line: PamLine) -> str:
    return line.module.rsplit("/", 1)[-1]


def _unique(stacks: tuple[PamStack, ...], kind: str) -> list[PamLine]:
    """Lines of one type across all stacks, each file line once (includes repeat them)."""
    seen: set[str] = set()
    out: list[PamLine] = []
    for stack in stacks:
        for line in stack.lines:
            if line.type == kind and line.control not in ("include", "substack") and line.origin not in seen:
                seen.add(line.origin)
                out.append(line)
    return out


def _stack(stacks: tuple[PamStack, ...], service: str) -> PamStack | None:
    return next((s for s in stacks if s.service == service), None)


def _source(line: PamLine) -> str:
    return line.origin.rsplit(":", 1)[0] if ":" in line.origin else line.origin


@check("VMS-GST-055", title="PAM does not accept empty passwords (no nullok)", severity=Severity.LOW,
       tags=(Tag.ACCESS_CONTROL, "pam"), references=("https://man7.org/linux/man-pages/man8/pam_unix.8.html",))
def nullok(guest: Guest, env: Environment) -> Iterator[Result]:
    """`pam_unix.so nullok` lets an account whose password field is empty authenticate with no
    password (console, `su`, SSH keyboard-interactive). Debian and RHEL ship it; it only matters when
    an account has an empty password, and then it is high.

    Remediation: Remove `nullok` from the pam_unix lines (`common-auth`, `system-auth`,
    `password-auth`).
    """
    stacks = _stacks(guest)
    if not stacks:
        return
    empty = [e.name for e in guest.shadow or () if e.empty]
    lines = [ln for ln in _unique(stacks, "auth") if _module(ln) == "pam_unix.so"]
    bad = [ln for ln in lines if "nullok" in ln.args]
    for ln in bad:
        extra = f"; accounts with an empty password: {', '.join(empty)}" if empty else ""
        yield fail(f"pam {ln.origin}", f"pam_unix accepts empty passwords (nullok) at {ln.origin}{extra}",
                   ev(_source(ln), ln.origin, " ".join(ln.args)), severity=Severity.HIGH if empty else None)
    if not bad and lines:
        yield ok("pam nullok", f"no pam_unix auth line has nullok ({len(lines)} checked)",
                 ev(_source(lines[0]), lines[0].origin, " ".join(lines[0].args)))


@check("VMS-GST-056", title="New passwords are checked for strength (pwquality, cracklib, passwdqc)",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "pam"),
       references=("https://man7.org/linux/man-pages/man8/pam_pwquality.8.html",))
def password_quality(guest: Guest, env: Environment) -> Iterator[Result]:
    """Without a quality module in the password stack, `passwd` accepts short and dictionary
    passwords (stock Debian's `pam_unix obscure` only asks for 6 characters). An `enforcing=0`
    argument turns the module into a warning.

    Remediation: Install libpam-pwquality (Debian) or enable it with authselect (RHEL); set
    `minlen = 14` and `dictcheck = 1` in /etc/security/pwquality.conf.
    """
    stacks = _stacks(guest)
    if not stacks:
        return
    lines = [ln for ln in _unique(stacks, "password") if _module(ln) in QUALITY_MODULES]
    enforcing = [ln for ln in lines if "enforcing=0" not in ln.args]
    if enforcing:
        ln = enforcing[0]
        yield ok("pam password quality", f"{_module(ln)} checks new passwords ({ln.origin})",
                 ev(_source(ln), ln.origin, " ".join(ln.args)))
    elif lines:
        ln = lines[0]
        yield fail("pam password quality", f"{_module(ln)} at {ln.origin} has enforcing=0: weak passwords "
                   "are only warned about", ev(_source(ln), ln.origin, " ".join(ln.args)))
    else:
        yield fail("pam password quality", "no pam_pwquality, pam_cracklib or pam_passwdqc in any "
                   "password stack: weak passwords are accepted", ev("/etc/pam.d", "password"))


@check("VMS-GST-057", title="Repeated failed logins lock the account (faillock)", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "pam"),
       references=("https://man7.org/linux/man-pages/man8/pam_faillock.8.html",))
def lockout(guest: Guest, env: Environment) -> Iterator[Result]:
    """Without pam_faillock (or the older pam_tally2), password guessing is limited only by
    connection speed. `deny=0` disables the lock.

    Remediation: Enable faillock (`authselect enable-feature with-faillock`, or the Debian
    pam-auth-update profile) with `deny = 5` and `unlock_time = 900` in /etc/security/faillock.conf.
    """
    stacks = _stacks(guest)
    if not stacks:
        return
    login = [s for s in stacks if s.service in LOGIN_SERVICES] or list(stacks)
    for stack in login:
        lines = [ln for ln in stack.lines if ln.type == "auth" and _module(ln) in LOCKOUT_MODULES]
        active = [ln for ln in lines if "deny=0" not in ln.args]
        if active:
            ln = active[0]
            yield ok(f"pam {stack.service}", f"{_module(ln)} locks accounts after "
                     f"failures ({ln.origin})", ev(_source(ln), ln.origin, " ".join(ln.args)))
        elif lines:
            ln = lines[0]
            yield fail(f"pam {stack.service}", f"{_module(ln)} has deny=0, which never "
                       "locks", ev(_source(ln), ln.origin, " ".join(ln.args)))
        else:
            yield fail(f"pam {stack.service}", "no lockout module in the auth stack; "
                       "failed logins are unlimited", ev(stack.path, "auth"))


def _mfa_lines(stack: PamStack) -> list[PamLine]:
    return [ln for ln in stack.lines if ln.type == "auth" and _module(ln) in MFA_MODULES]


@check("VMS-GST-058", title="SSH logins through PAM ask for a second factor", severity=Severity.LOW,
       tags=(Tag.ACCESS_CONTROL, "pam", "ssh", "mfa"),
       references=("https://github.com/google/google-authenticator-libpam",
                   "https://developers.yubico.com/pam-u2f/"))
def sshd_pam_mfa(guest: Guest, env: Environment) -> Iterator[Result]:
    """An OTP or FIDO module in the sshd PAM stack (pam_google_authenticator, pam_u2f, pam_oath,
    pam_duo, pam_yubico) makes a stolen password or key insufficient. A module marked `optional` or
    `sufficient`, or given `nullok` (users without a secret skip it), does not enforce anything.

    Remediation: Add the module as `auth required` to /etc/pam.d/sshd, without `nullok`, and set
    `AuthenticationMethods publickey,keyboard-interactive` (see VMS-GST-059).
    """
    if sshd_of(guest) is None:
        return
    stacks = _stacks(guest)
    if not stacks:
        return
    stack = _stack(stacks, "sshd")
    if stack is None:
        yield fail("pam sshd", "there is no /etc/pam.d/sshd stack, so no second factor",
                   ev("/etc/pam.d/sshd"))
        return
    lines = _mfa_lines(stack)
    strong = [ln for ln in lines if ln.control in ("required", "requisite") and "nullok" not in ln.args]
    if strong:
        ln = strong[0]
        yield ok("pam sshd", f"{_module(ln)} is required for SSH logins ({ln.origin})",
                 ev(_source(ln), ln.origin, f"{ln.control} {' '.join(ln.args)}"))
    elif lines:
        ln = lines[0]
        why = "nullok lets users without a secret skip it" if "nullok" in ln.args else \
            f"its control '{ln.control}' does not require it"
        yield fail("pam sshd", f"{_module(ln)} at {ln.origin} can be bypassed: {why}",
                   ev(_source(ln), ln.origin, f"{ln.control} {' '.join(ln.args)}"),
                   severity=Severity.MEDIUM)
    else:
        yield fail("pam sshd", "no second-factor module in the sshd PAM stack", ev(stack.path, "auth"))


@check("VMS-GST-059", title="SSH requires two authentication methods (AuthenticationMethods)",
       severity=Severity.LOW, tags=(Tag.ACCESS_CONTROL, "ssh", "mfa"),
       references=("https://man.openbsd.org/sshd_config#AuthenticationMethods",))
def authentication_methods(guest: Guest, env: Environment) -> Iterator[Result]:
    """`AuthenticationMethods publickey,keyboard-interactive` requires a key and then the PAM
    dialogue (a one-time code); `any` (the default) or a single method per list lets one credential
    suffice. PAM MFA modules are never reached by a public-key login unless this is set.

    Remediation: Set `AuthenticationMethods publickey,keyboard-interactive` (or `publickey,password`)
    with a second factor in the sshd PAM stack.
    """
    cfg = sshd_of(guest)
    if cfg is None:
        return
    for r in reachable(cfg, "authenticationmethods"):
        lists = r.value.split()
        single = [m for m in lists if "," not in m]
        subject = "sshd AuthenticationMethods" + r.suffix
        if r.value.strip() == "any":
            yield fail(subject, f"AuthenticationMethods any {r.where}: one method is enough",
                       r.evidence("authenticationmethods"))
        elif single:
            yield fail(subject, f"AuthenticationMethods {r.value} {r.where}: "
                       f"{', '.join(single)} alone is enough", r.evidence("authenticationmethods"))
        else:
            yield ok(subject, f"AuthenticationMethods {r.value} {r.where}: every login needs two methods",
                     r.evidence("authenticationmethods"))


@check("VMS-GST-060", title="No PAM auth stack lets anyone in (pam_permit sufficient)",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, "pam"), references=(PAM_DOC,))
def auth_bypass(guest: Guest, env: Environment) -> Iterator[Result]:
    """`auth sufficient pam_permit.so` ends the auth stack with success before any password is
    checked: every login through that service needs no credential. It is a known backdoor (a
    `required` pam_permit after the real modules, as Debian ships, is harmless).

    Remediation: Restore the distribution's PAM files (`pam-auth-update --force`, `authselect
    select … --force`) and find out who changed them.
    """
    stacks = _stacks(guest)
    if not stacks:
        return
    lines = _unique(stacks, "auth")
    bad = [ln for ln in lines if _module(ln) == "pam_permit.so"
           and (ln.control == "sufficient" or "success=done" in ln.control)]
    for ln in bad:
        yield fail(f"pam {ln.origin}", f"auth {ln.control} pam_permit.so at {ln.origin}: authentication "
                   "succeeds without a credential", ev(_source(ln), ln.origin, ln.control))
    if not bad and lines:
        yield ok("pam pam_permit", f"no auth line ends the stack with pam_permit ({len(lines)} checked)",
                 ev("/etc/pam.d", "auth"))


@check("VMS-GST-061", title="su is restricted to an admin group (pam_wheel)", severity=Severity.LOW,
       tags=(Tag.ACCESS_CONTROL, "pam"),
       references=("https://man7.org/linux/man-pages/man8/pam_wheel.8.html",))
def su_wheel(guest: Guest, env: Environment) -> Iterator[Result]:
    """Without pam_wheel, any local user can try root's password with `su`, unthrottled and
    without sudo's logging.

    Remediation: Uncomment `auth required pam_wheel.so use_uid` in /etc/pam.d/su (optionally with
    `group=` an empty group, so nobody can su).
    """
    stacks = _stacks(guest)
    stack = _stack(stacks, "su")
    if stack is None:
        return
    lines = [ln for ln in stack.lines if ln.type == "auth" and _module(ln) == "pam_wheel.so"
             and ln.control in ("required", "requisite") and "trust" not in ln.args]
    if lines:
        ln = lines[0]
        yield ok("pam su", f"su requires group membership (pam_wheel {' '.join(ln.args)} at {ln.origin})",
                 ev(_source(ln), ln.origin, " ".join(ln.args)))
    else:
        yield fail("pam su", "su has no required pam_wheel: any user may try root's password",
                   ev(stack.path, "auth"))
