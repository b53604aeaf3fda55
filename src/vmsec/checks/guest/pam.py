"""PAM: empty passwords, password quality, brute-force lockout, second factors for SSH, bypass
modules and who may use `su`.

A stack is one service file with its includes expanded (``common-auth``, ``system-auth`` …), so a
line shared by several services appears in each; results are per line (its ``origin``) or per service.
A system without PAM (an empty tuple: Alpine without linux-pam) gets no PAM results.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, need, ok, unknown
from vmsec.checks.helpers.pam import unix_nullok
from vmsec.checks.helpers.pam_flow import action_on, succeeds
from vmsec.checks.helpers.sshd import sshd_of
from vmsec.checks.helpers.unread import not_read, ok_unless
from vmsec.facts import Guest, ModuleConfig, PamLine, PamStack
from vmsec.findings import Evidence
from vmsec.parsers.pam_module_conf import FAILLOCK, PWQUALITY
from vmsec.parsers.sshd_effective import DEFAULT, reachable

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


# Compiled-in defaults of the modules (libpwquality pwqprivate.h; pam_cracklib.c; pam_faillock.h;
# pam_passwdqc: min=disabled,24,11,8,7, enforce=everyone).
PWQUALITY_DEFAULTS = {"minlen": "8", "dcredit": "0", "ucredit": "0", "lcredit": "0", "ocredit": "0",
                      "enforcing": "1"}
CRACKLIB_DEFAULTS = {"minlen": "9", "dcredit": "1", "ucredit": "1", "lcredit": "1", "ocredit": "1"}
FAILLOCK_DEFAULTS = {"deny": "3", "unlock_time": "600", "fail_interval": "900"}
PASSWDQC_MIN = "disabled,24,11,8,7"


class Effective:
    """The value a module uses for one option: its argument, else its configuration file, else its
    compiled-in default; ``value`` None when that cannot be told (the file could not be read)."""

    def __init__(self, value: str | None, origin: str) -> None:
        self.value = value
        self.origin = origin

    def evidence(self, key: str) -> Evidence:
        source = self.origin.removeprefix("the argument at ")
        return ev(source.split(" ", 1)[0].split("'", 1)[0], key, self.value)


def _argument(line: PamLine, key: str) -> str | None:
    """The module's own reading of its option ``key`` over the line's arguments, in order (a later
    one wins, one the module refuses leaves the earlier): libpwquality compares names without regard
    to case and reads numbers with strtol(); pam_faillock reads its numbers with sscanf("%u")."""
    module = _module(line)
    found: str | None = None
    for arg in line.args:
        name, _, value = arg.partition("=")
        if not (name == key or (module == "pam_pwquality.so" and name.lower() == key)):
            continue
        read = module_value(module, key, value)
        if read is not None:
            found = read
    return found


_C_BLANKS = " \t\n\v\f\r"
_PWQUALITY_NUMBERS = frozenset({"difok", "minlen", "dcredit", "ucredit", "lcredit", "ocredit", "minclass",
                                "maxrepeat", "maxsequence", "maxclassrepeat", "gecoscheck", "dictcheck",
                                "usercheck", "usersubstr", "enforcing", "retry"})
# pam_faillock.c: sscanf() into an unsigned short (deny) or an unsigned int (the times)
_FAILLOCK_NUMBERS = {"deny": 16, "unlock_time": 32, "fail_interval": 32, "root_unlock_time": 32}
_NUMBER = re.compile(r"([+-]?)([0-9]+)")


def module_value(module: str, key: str, value: str) -> str | None:
    """``value`` as the module reads it (a number normalised to its decimal digits), None when the
    module refuses it."""
    if module == "pam_pwquality.so" and key in _PWQUALITY_NUMBERS:
        match = _NUMBER.fullmatch(value.lstrip(_C_BLANKS))  # strtol(), the whole value
        if match is None or len(match.group(2).lstrip("0")) > 18:
            return None
        return str(int(match.group(1) + match.group(2)))
    if module == "pam_faillock.so" and key in _FAILLOCK_NUMBERS:
        if key != "deny" and value == "never":
            return "0"
        match = _NUMBER.match(value.lstrip(_C_BLANKS))  # sscanf("%u"): a prefix is enough
        if match is None:
            return None
        bits = _FAILLOCK_NUMBERS[key]
        digits = match.group(2).lstrip("0") or "0"
        number = min(int(digits[:21]), 2**64 - 1)  # strtoul saturates
        if match.group(1) == "-":
            number = -number % 2**64
        return str(number % 2**bits)
    return value


def _conf_of(guest: Guest, line: PamLine) -> tuple[str | None, ModuleConfig | None]:
    """(path, configuration) the module of ``line`` reads, (None, None) for modules without one;
    configuration None when it could not be read."""
    module = _module(line)
    if module == "pam_pwquality.so":
        path = PWQUALITY
    elif module == "pam_faillock.so":
        path = _argument(line, "conf") or FAILLOCK
    else:
        return None, None
    configs = guest.pam_module_configs
    return path, (configs.get(path) if configs is not None else None)


def effective(guest: Guest, line: PamLine, key: str) -> Effective:
    """The option ``key`` as the module of ``line`` resolves it (argument, file, default)."""
    arg = _argument(line, key)
    if arg is not None:
        return Effective(arg, f"the argument at {line.origin}")
    path, conf = _conf_of(guest, line)
    defaults = {"pam_pwquality.so": PWQUALITY_DEFAULTS, "pam_cracklib.so": CRACKLIB_DEFAULTS,
                "pam_faillock.so": FAILLOCK_DEFAULTS}.get(_module(line), {})
    if path is not None:
        if conf is None:
            return Effective(None, f"{path}, which could not be read")
        if key in conf.values:
            value = module_value(_module(line), key, conf.values[key])
            if value is not None:
                return Effective(value, conf.origins.get(key, path))
        return Effective(defaults.get(key), f"{_module(line)}'s default ({path} does not set it)")
    return Effective(defaults.get(key), f"{_module(line)}'s default")


def _warns_only(guest: Guest, line: PamLine) -> str | None:
    """Why a quality module only warns (its reason), "" when it enforces, None when unknown."""
    module = _module(line)
    if module == "pam_pwquality.so":
        e = effective(guest, line, "enforcing")
        if e.value is None:
            return None
        return f"enforcing={e.value} from {e.origin}" if e.value.strip() == "0" else ""
    if module == "pam_passwdqc.so":
        enforce = _argument(line, "enforce")
        return f"enforce={enforce}" if enforce == "none" else ""
    return ""  # pam_cracklib always enforces


def _deny(guest: Guest, line: PamLine) -> Effective:
    """Failures before the account locks; "0" for never."""
    if _module(line) in ("pam_tally2.so", "pam_tally.so"):
        arg = _argument(line, "deny")
        return Effective(arg or "0",
                         f"the argument at {line.origin}" if arg else f"{line.origin} (no deny=: no lock)")
    return effective(guest, line, "deny")


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
    bad = [ln for ln in lines if unix_nullok(ln)]
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
    verdicts = [(ln, _warns_only(guest, ln)) for ln in lines]
    enforcing = [(ln, why) for ln, why in verdicts if why == ""]
    if enforcing:
        ln = enforcing[0][0]
        yield ok("pam password quality", f"{_module(ln)} checks new passwords ({ln.origin})",
                 ev(_source(ln), ln.origin, " ".join(ln.args)))
    elif any(why is None for _, why in verdicts):
        ln = next(ln for ln, why in verdicts if why is None)
        yield unknown("pam password quality", f"{_module(ln)} at {ln.origin} is configured in "
                      f"{PWQUALITY}, which could not be read: whether it enforces is unknown",
                      ev(_source(ln), ln.origin, " ".join(ln.args)))
    elif lines:
        ln, why = verdicts[0]
        yield fail("pam password quality", f"{_module(ln)} at {ln.origin}: {why}, so weak passwords "
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
        if lines and not _records_failures(lines):
            ln = lines[0]
            yield fail(f"pam {stack.service}", f"pam_faillock at {ln.origin} only checks the tally (no "
                       "'authfail' line records a failure), so no account ever locks",
                       ev(_source(ln), ln.origin, " ".join(ln.args)))
            continue
        denies = [(ln, _deny(guest, ln)) for ln in lines]
        active = [(ln, d) for ln, d in denies if d.value not in (None, "0")]
        if active:
            ln, d = active[0]
            yield ok(f"pam {stack.service}", f"{_module(ln)} locks accounts after "
                     f"{d.value} failures ({ln.origin}; deny from {d.origin})",
                     ev(_source(ln), ln.origin, " ".join(ln.args)))
        elif any(d.value is None for _, d in denies):
            ln, d = next((ln, d) for ln, d in denies if d.value is None)
            yield unknown(f"pam {stack.service}", f"{_module(ln)} at {ln.origin} takes deny "
                          f"from {d.origin}", ev(_source(ln), ln.origin, " ".join(ln.args)))
        elif lines:
            ln, d = denies[0]
            yield fail(f"pam {stack.service}", f"{_module(ln)} at {ln.origin} has deny=0 "
                       f"from {d.origin}, which never locks", ev(_source(ln), ln.origin, " ".join(ln.args)))
        else:
            yield fail(f"pam {stack.service}", "no lockout module in the auth stack; "
                       "failed logins are unlimited", ev(stack.path, "auth"))


def _records_failures(lines: list[PamLine]) -> bool:
    """Whether the lockout lines count failures: pam_tally2 always; pam_faillock only in its
    'authfail' mode (pam_faillock.c: preauth only reads the tally, authsucc clears it)."""
    return any(_module(ln) != "pam_faillock.so" or "authfail" in ln.args for ln in lines)


def _mfa_lines(stack: PamStack) -> list[PamLine]:
    return [ln for ln in stack.lines if ln.type == "auth" and _module(ln) in MFA_MODULES]


@check("VMS-GST-058", title="SSH logins through PAM ask for a second factor", severity=Severity.LOW,
       tags=(Tag.ACCESS_CONTROL, "pam", "ssh", "mfa"),
       references=("https://github.com/google/google-authenticator-libpam",
                   "https://developers.yubico.com/pam-u2f/"))
def sshd_pam_mfa(guest: Guest, env: Environment) -> Iterator[Result]:
    """An OTP or FIDO module in the sshd PAM stack (pam_google_authenticator, pam_u2f, pam_oath,
    pam_duo, pam_yubico) makes a stolen password or key insufficient. A module marked `optional` or
    `sufficient`, or given `nullok` (users without a secret skip it), does not enforce anything; nor
    does a required one that the stack, run as libpam runs it, lets a password alone skip.

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
    strong = [ln for ln in lines if ln.control in ("required", "requisite") and not unix_nullok(ln)]
    if strong and succeeds(stack.lines, password=True, factor=False, factors=frozenset(MFA_MODULES)):
        ln = strong[0]
        yield fail("pam sshd", f"{_module(ln)} at {ln.origin} is required, but a password alone gets through "
                   "the sshd auth stack as libpam runs it: an earlier line (sufficient, done, a jump, or "
                   "an include that ends the stack) lets logins skip it",
                   ev(_source(ln), ln.origin, f"{ln.control} {' '.join(ln.args)}"), severity=Severity.MEDIUM)
    elif strong:
        ln = strong[0]
        yield ok("pam sshd", f"{_module(ln)} is required for SSH logins ({ln.origin})",
                 ev(_source(ln), ln.origin, f"{ln.control} {' '.join(ln.args)}"))
    elif lines:
        ln = lines[0]
        why = "nullok lets users without a secret skip it" if unix_nullok(ln) else \
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
        if cfg.unread and r.origin == DEFAULT:  # an unread file could set it
            yield not_read(cfg.unread, subject, f"AuthenticationMethods {r.value} {r.where}",
                           r.evidence("authenticationmethods"))
        elif r.value.strip() == "any":
            yield fail(subject, f"AuthenticationMethods any {r.where}: one method is enough",
                       r.evidence("authenticationmethods"))
        elif single:
            yield fail(subject, f"AuthenticationMethods {r.value} {r.where}: "
                       f"{', '.join(single)} alone is enough", r.evidence("authenticationmethods"))
        else:
            yield ok_unless(cfg.unread, subject, f"AuthenticationMethods {r.value} {r.where}: every login "
                            "needs two methods", r.evidence("authenticationmethods"))


@check("VMS-GST-060", title="No PAM auth stack lets anyone in (pam_permit sufficient)",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, "pam"), references=(PAM_DOC,))
def auth_bypass(guest: Guest, env: Environment) -> Iterator[Result]:
    """`auth sufficient pam_permit.so` ends the auth stack with success before any password is
    checked: every login through that service needs no credential. It is a known backdoor (a
    `required` pam_permit after the real modules, as Debian ships, is harmless). Each stack is also
    run as libpam runs it — controls like `[default=done]`, jumps over the password module, an
    `include` whose `done` ends the caller's stack — for someone with no credential at all.

    Remediation: Restore the distribution's PAM files (`pam-auth-update --force`, `authselect
    select … --force`) and find out who changed them.
    """
    stacks = _stacks(guest)
    if not stacks:
        return
    lines = _unique(stacks, "auth")
    # A pam_permit whose success ends the stack (`sufficient`, `[success=done]`, `default=done` …, the
    # control parsed as libpam parses it).
    bad = [ln for ln in lines
           if _module(ln) == "pam_permit.so" and action_on(ln.control, "success") == "done"]
    for ln in bad:
        yield fail(f"pam {ln.origin}", f"auth {ln.control} pam_permit.so at {ln.origin}: authentication "
                   "succeeds without a credential", ev(_source(ln), ln.origin, ln.control))
    open_stacks = [] if bad else [stack for stack in stacks
                                  if succeeds(stack.lines, password=False, factor=False) is True]
    for stack in open_stacks:
        yield fail(f"pam {stack.service}", f"the {stack.service} auth stack succeeds without any credential "
                   "as libpam runs it (its controls, jumps and includes let a login through on pam_permit "
                   "or with nothing failing)", ev(stack.path, "auth"))
    if not bad and not open_stacks and lines:
        yield ok("pam pam_permit", f"no auth line ends the stack with pam_permit, and no auth stack lets a "
                 f"login through without a credential as libpam runs it ({len(lines)} lines checked)",
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


def _min_length(guest: Guest, line: PamLine) -> tuple[int | None, str, list[Evidence]]:
    """(the shortest password the module accepts, how that follows, evidence); None when unknown."""
    module = _module(line)
    if module == "pam_passwdqc.so":
        config = _argument(line, "config")
        if config is not None:
            return None, f"pam_passwdqc at {line.origin} reads its limits from {config}", []
        spec = _argument(line, "min") or PASSWDQC_MIN
        values = [int(v) for v in spec.split(",") if v.strip().isascii() and v.strip().isdigit()]
        where = ev(_source(line), line.origin, f"min={spec}")
        if not values:
            return None, f"pam_passwdqc min={spec} at {line.origin} cannot be read", [where]
        given = "argument" if _argument(line, "min") else "default"
        return min(values), f"pam_passwdqc min={spec} ({given})", [where]
    minlen = effective(guest, line, "minlen")
    credits = [effective(guest, line, k) for k in ("dcredit", "ucredit", "lcredit", "ocredit")]
    known = [minlen, *credits]
    if any(e.value is None for e in known):
        unread = next(e for e in known if e.value is None)
        return None, f"{module} at {line.origin} takes its settings from {unread.origin}", []
    try:
        length = int(str(minlen.value))
        bonus = sum(max(0, int(str(e.value))) for e in credits)
    except ValueError:
        return None, f"{module} at {line.origin}: minlen or a credit is not a number", []
    floor = 6  # both libpwquality and pam_cracklib refuse minlen below 6
    shortest = max(floor, length - bonus)
    how = f"minlen={length} from {minlen.origin}"
    if bonus:
        how += f" less {bonus} for positive character credits"
    return shortest, how, [minlen.evidence("minlen")]


@check("VMS-GST-146", title="New passwords must be at least 14 characters long (as configured)",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "pam", "passwords"),
       references=("https://man7.org/linux/man-pages/man5/pwquality.conf.5.html",
                   "https://pages.nist.gov/800-63-4/sp800-63b.html",
                   "https://www.cisecurity.org/benchmark/debian_linux"))
def password_min_length(guest: Guest, env: Environment) -> Iterator[Result]:
    """Length is what makes a password hard to guess. The shortest password a quality module accepts
    is its `minlen` — from the module's arguments, else /etc/security/pwquality.conf (whose
    pwquality.conf.d drop-ins are read first, so the main file wins), else the compiled-in default
    (libpwquality 8, pam_cracklib 9) — less one character per positive `dcredit`/`ucredit`/
    `lcredit`/`ocredit` credit, and never under 6. CIS asks for 14 (the profile parameter
    `password_min_length`). Without any quality module, VMS-GST-056 reports it.

    Remediation: Set `minlen = 14` in /etc/security/pwquality.conf (and no positive credits), or
    `minlen=14` on the pam_pwquality line; for passwdqc, `min=disabled,disabled,disabled,disabled,14`.
    """
    minimum = int(env.param("password_min_length", 14))
    stacks = _stacks(guest)
    for line in _unique(stacks, "password"):
        if _module(line) not in QUALITY_MODULES:
            continue
        subject = f"pam {line.origin}"
        shortest, how, evidence = _min_length(guest, line)
        if shortest is None:
            yield unknown(subject, f"the minimum password length is unknown: {how}", ev(_source(line),
                          line.origin))
        elif shortest < minimum:
            yield fail(subject,
                       f"{_module(line)} at {line.origin} accepts passwords of {shortest} characters "
                       f"({how}); at least {minimum} wanted", *evidence)
        else:
            yield ok(subject, f"{_module(line)} at {line.origin} requires {shortest} characters ({how})",
                     *evidence)


@check("VMS-GST-147", title="Failed logins lock the account after at most 5 tries, for at least 15 minutes",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "pam"),
       references=("https://man7.org/linux/man-pages/man5/faillock.conf.5.html",
                   "https://www.cisecurity.org/benchmark/debian_linux"))
def lockout_thresholds(guest: Guest, env: Environment) -> Iterator[Result]:
    """A lockout only slows guessing if it comes soon and lasts. pam_faillock takes `deny`
    (failures before the lock, default 3) and `unlock_time` (seconds locked, default 600) from its
    arguments, else /etc/security/faillock.conf (or the `conf=` file), else its defaults; pam_tally2
    from its arguments only. CIS asks for deny ≤ 5 and unlock_time 0 (until an administrator unlocks)
    or ≥ 900 — profile parameters `lockout_max_deny` and `lockout_min_unlock_time`. `deny = 0` (never
    locks) is VMS-GST-057's finding.

    Remediation: Set `deny = 5` and `unlock_time = 900` in /etc/security/faillock.conf, and remove
    conflicting `deny=`/`unlock_time=` arguments from the pam_faillock lines.
    """
    max_deny = int(env.param("lockout_max_deny", 5))
    min_unlock = int(env.param("lockout_min_unlock_time", 900))
    stacks = _stacks(guest)
    recording = any(_records_failures([ln for ln in stack.lines if ln.type == "auth"
                                       and _module(ln) == "pam_faillock.so"] or [])
                    for stack in stacks)
    for line in _unique(stacks, "auth"):
        if _module(line) not in LOCKOUT_MODULES:
            continue
        if _module(line) == "pam_faillock.so" and not recording:
            continue  # nothing is ever counted: VMS-GST-057
        subject = f"pam {line.origin}"
        deny = _deny(guest, line)
        unlock = Effective(_argument(line, "unlock_time"), f"the argument at {line.origin}") \
            if _module(line) != "pam_faillock.so" else effective(guest, line, "unlock_time")
        if deny.value is None or (unlock.value is None and _module(line) == "pam_faillock.so"):
            unread = deny if deny.value is None else unlock
            yield unknown(subject, f"{_module(line)} at {line.origin} takes its limits from {unread.origin}",
                          ev(_source(line), line.origin))
            continue
        if deny.value == "0":
            continue  # never locks: VMS-GST-057
        problems = []
        try:
            if int(deny.value) > max_deny:
                problems.append(f"deny={deny.value} from {deny.origin}: more than {max_deny} tries")
        except ValueError:
            problems.append(f"deny={deny.value!r} from {deny.origin} is not a number")
        unlock_value = unlock.value
        if unlock_value is not None and unlock_value != "never":
            try:
                seconds = int(unlock_value)
            except ValueError:
                problems.append(f"unlock_time={unlock_value!r} from {unlock.origin} is not a number")
            else:
                if 0 < seconds < min_unlock:
                    problems.append(f"unlock_time={seconds} from {unlock.origin}: unlocked after less than "
                                    f"{min_unlock} seconds")
        evidence = [deny.evidence("deny")] + ([unlock.evidence("unlock_time")] if unlock.value else [])
        if problems:
            yield fail(subject, f"{_module(line)} at {line.origin}: {'; '.join(problems)}",
                       *evidence)
        else:
            how = "until an administrator unlocks it" if unlock_value in ("0", "never") else \
                f"for {unlock_value} seconds" if unlock_value else "until unlocked (no unlock_time)"
            yield ok(subject, f"{_module(line)} at {line.origin} locks after {deny.value} failures, "
                     f"{how}", *evidence)
