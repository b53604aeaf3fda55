"""sudo: who may become root, whether they must authenticate, and whether it is recorded.

The policy is /etc/sudoers with its includes and include directories, aliases expanded. A system
without /etc/sudoers (no files read) gets no sudo results. Defaults carry no line numbers in the
facts; evidence names the main file. An included file or directory that could not be read
(``Sudoers.unread``) may grant anything or set any Defaults: what the files read show is still a
finding, but no result says a thing is absent or unset — that is UNKNOWN, naming the unread input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, need
from vmsec.checks.helpers.unread import not_read, ok_unless
from vmsec.facts import Guest, Sudoers, SudoRule

SUDOERS_DOC = "https://www.sudo.ws/docs/man/sudoers.man/"
# Principals that mean "every user", or nearly (the users group holds every regular account).
BROAD = frozenset({"all", "%users", "%everyone", "%domain users", "%domain\\ users", "%staff"})
ROOT_RUNAS = frozenset({"all", "root", "all:all", "root:root", "#0"})
# uid 0 however written (#00), and a group root is in (%root, %#0): sudo runs the command as root.
_ROOT_RUNAS_FORMS = re.compile(r"#0+|%(?:root|#0+)")


def _sudoers(guest: Guest) -> Sudoers | None:
    sudoers = need(guest.sudoers, "the sudoers policy could not be read")
    return sudoers if sudoers.files else None


def _all_commands(rule: SudoRule) -> bool:
    return any(c.strip().upper() == "ALL" for c in rule.commands)


def _as_root(rule: SudoRule) -> bool:
    return not rule.runas or any(r.strip().lower() in ROOT_RUNAS or _ROOT_RUNAS_FORMS.fullmatch(r.strip())
                                 for r in rule.runas)


def _broad(rule: SudoRule) -> list[str]:
    return [u for u in rule.users if u.strip().lower() in BROAD]


def _text(rule: SudoRule) -> str:
    runas = f"({', '.join(rule.runas)}) " if rule.runas else ""
    tag = "NOPASSWD: " if rule.nopasswd else ""
    return f"{', '.join(rule.users)} {', '.join(rule.hosts)} = {runas}{tag}{', '.join(rule.commands)}"


def _source(origin: str, sudoers: Sudoers) -> str:
    return origin.rsplit(":", 1)[0] if ":" in origin else (sudoers.files[0] if sudoers.files else origin)


def _defaults(sudoers: Sudoers, name: str) -> list[tuple[str, str]]:
    """Defaults entries that set or negate ``name`` (``name``, ``!name``, ``name=…``), in order."""
    pattern = re.compile(rf"^!*\s*{re.escape(name)}(?:[+-]?=.*)?$")
    return [(scope, s) for scope, s in sudoers.defaults if pattern.match(s.strip())]


def _enabled(sudoers: Sudoers, name: str) -> bool | None:
    """The global state of a boolean Defaults flag after all plain Defaults lines (last wins);
    None when no plain Defaults line names it."""
    state = None
    for scope, setting in _defaults(sudoers, name):
        if scope == "":
            state = not setting.strip().startswith("!")
    return state


@check("VMS-GST-065", title="sudo does not grant root without a password (NOPASSWD: ALL)",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "sudo"), references=(SUDOERS_DOC,))
def nopasswd_all(guest: Guest, env: Environment) -> Iterator[Result]:
    """`NOPASSWD: ALL` makes a stolen session or SSH key of that user root, with no second secret.
    Cloud images add it for their default user (`90-cloud-init-users`). Critical when granted to
    everyone (`ALL`, `%users`).

    Remediation: Drop `NOPASSWD:` or limit it to the few commands that need it (`NOPASSWD:
    /usr/bin/systemctl restart app`).
    """
    sudoers = _sudoers(guest)
    if sudoers is None:
        return
    bad = [r for r in sudoers.rules if r.nopasswd and _all_commands(r) and _as_root(r)]
    for r in bad:
        yield fail(f"sudo {r.origin}", f"{_text(r)} ({r.origin}): root without a password",
                   ev(_source(r.origin, sudoers), r.origin, _text(r)),
                   severity=Severity.CRITICAL if _broad(r) else None)
    if not bad:
        yield ok_unless(sudoers.unread, "sudo NOPASSWD", f"no rule grants every command without a "
                        f"password ({len(sudoers.rules)} rule(s) in {len(sudoers.files)} file(s))",
                        ev(sudoers.files[0]))


@check("VMS-GST-066", title="sudo does not grant ALL to every user", severity=Severity.HIGH,
       tags=(Tag.ACCESS_CONTROL, "sudo"), references=(SUDOERS_DOC,))
def broad_all(guest: Guest, env: Environment) -> Iterator[Result]:
    """A rule like `ALL ALL=(ALL) ALL` or `%users ALL=(ALL) ALL` makes every account an administrator:
    any compromised account is root with its own password.

    Remediation: Grant sudo to an administrators group (`%sudo`, `%wheel`) with named members only.
    """
    sudoers = _sudoers(guest)
    if sudoers is None:
        return
    bad = [r for r in sudoers.rules if _broad(r) and _all_commands(r) and _as_root(r)]
    for r in bad:
        yield fail(f"sudo {r.origin}", f"{_text(r)} ({r.origin}): {', '.join(_broad(r))} may run any "
                   "command as root", ev(_source(r.origin, sudoers), r.origin, _text(r)))
    if not bad:
        yield ok_unless(sudoers.unread, "sudo ALL", "no rule gives every user all commands",
                        ev(sudoers.files[0]))


@check("VMS-GST-067", title="sudo asks users for their own password", severity=Severity.HIGH,
       tags=(Tag.ACCESS_CONTROL, "sudo"), references=(SUDOERS_DOC,))
def authentication(guest: Guest, env: Environment) -> Iterator[Result]:
    """`Defaults !authenticate` (globally or for a user, host or command) turns every rule it covers
    into NOPASSWD. `targetpw`, `rootpw` and `runaspw` (medium) make users type root's password, which
    must then be shared among administrators.

    Remediation: Remove `!authenticate`, `targetpw`, `rootpw` and `runaspw` from the Defaults lines.
    """
    sudoers = _sudoers(guest)
    if sudoers is None:
        return
    found = False
    for scope, setting in _defaults(sudoers, "authenticate"):
        if setting.strip().startswith("!"):
            found = True
            yield fail(f"sudo Defaults{scope} !authenticate", "sudo does not "
                       "ask for a password" + (f" for {scope[1:]}" if scope else ""),
                       ev(sudoers.files[0], f"Defaults{scope}", setting))
    for flag in ("targetpw", "rootpw", "runaspw"):
        for scope, setting in _defaults(sudoers, flag):
            if not setting.strip().startswith("!"):
                found = True
                yield fail(f"sudo Defaults{scope} {flag}", "users type the "
                           "target's (root's) password, which must be shared",
                           ev(sudoers.files[0], f"Defaults{scope}", setting), severity=Severity.MEDIUM)
    if not found:
        yield ok_unless(sudoers.unread, "sudo authenticate", "no Defaults line disables authentication "
                        "or asks for root's password", ev(sudoers.files[0], "Defaults"))


def _sudo_version(guest: Guest) -> tuple[int, int, int] | None:
    for p in guest.packages or ():
        if p.name == "sudo":
            m = re.match(r"(?:\d+:)?(\d+)\.(\d+)\.(\d+)", p.version)
            if m:
                return int(m.group(1)), int(m.group(2)), int(m.group(3))
    return None


@check("VMS-GST-068", title="sudo runs commands in a pseudo-terminal (use_pty)", severity=Severity.LOW,
       tags=(Tag.ACCESS_CONTROL, "sudo"), references=(SUDOERS_DOC,))
def use_pty(guest: Guest, env: Environment) -> Iterator[Result]:
    """Without `use_pty`, a command run through sudo shares the user's terminal and can push input
    into it after sudo ends (TIOCSTI injection). sudo 1.9.14 turned it on by default. A scoped
    `Defaults:user !use_pty` (or `@host`, `>runas`, `!cmnd`) turns it off for that scope and is
    reported on its own. (`requiretty` only refuses sudo without a terminal and is not a substitute.)

    Remediation: Add `Defaults use_pty` to /etc/sudoers.
    """
    sudoers = _sudoers(guest)
    if sudoers is None:
        return
    yield from _global_use_pty(guest, sudoers)
    # Defaults:user, Defaults@host, Defaults>runas and Defaults!cmnd apply on top of the plain
    # Defaults for their scope (sudoers(5)): a scoped !use_pty turns it off there.
    for scope, state in _scoped_states(sudoers, "use_pty").items():
        where = ev(sudoers.files[0], f"Defaults{scope}", "use_pty" if state else "!use_pty")
        if state is False:
            yield fail(f"sudo Defaults{scope} use_pty", f"Defaults{scope} !use_pty: commands run "
                       f"{_scope_text(scope)} share the user's terminal", where)


def _scoped_states(sudoers: Sudoers, name: str) -> dict[str, bool]:
    """The state a boolean flag ends in for each scope that sets it (the last entry of a scope wins)."""
    states: dict[str, bool] = {}
    for scope, setting in _defaults(sudoers, name):
        if scope:
            states[scope] = not setting.strip().startswith("!")
    return states


def _scope_text(scope: str) -> str:
    kind, who = scope[:1], scope[1:]
    return {":": f"by {who}", "@": f"on host {who}", ">": f"as {who}", "!": f"for command {who}"}.get(
        kind, f"in scope {scope}")


def _global_use_pty(guest: Guest, sudoers: Sudoers) -> Iterator[Result]:
    state = _enabled(sudoers, "use_pty")
    version = _sudo_version(guest)
    where = ev(sudoers.files[0], "Defaults", {True: "use_pty", False: "!use_pty", None: "(unset)"}[state])
    if state is True:
        yield ok_unless(sudoers.unread, "sudo use_pty", "Defaults use_pty is set", where)
    elif state is False:
        yield fail("sudo use_pty", "Defaults !use_pty: commands share the user's terminal", where)
    elif version is not None and version >= (1, 9, 14):
        yield ok_unless(sudoers.unread, "sudo use_pty",
                        f"use_pty is on by default in sudo {'.'.join(map(str, version))}", where)
    elif sudoers.unread:  # "not set" would be a claim about the unread files too
        yield not_read(sudoers.unread, "sudo use_pty", "use_pty is not set", where)
    else:
        shown = "of unknown version" if version is None else ".".join(map(str, version))
        yield fail("sudo use_pty", f"use_pty is not set, and sudo {shown} does not turn it on by "
                   "default", where)


@check("VMS-GST-069", title="sudo keeps its own log (logfile or log_output)", severity=Severity.LOW,
       tags=(Tag.AUDIT, "sudo"), references=(SUDOERS_DOC,))
def sudo_logging(guest: Guest, env: Environment) -> Iterator[Result]:
    """sudo logs to syslog by default; a dedicated `logfile` (or I/O logs with `log_output`) keeps a
    record that survives syslog misconfiguration and is what CIS asks for. With `!syslog` and no
    logfile, sudo use is not recorded at all (medium).

    Remediation: Add `Defaults logfile="/var/log/sudo.log"` (and consider `log_output`).
    """
    sudoers = _sudoers(guest)
    if sudoers is None:
        return
    logfile = [s for scope, s in _defaults(sudoers, "logfile") if scope == "" and not s.startswith("!")]
    output = _enabled(sudoers, "log_output")
    syslog_off = any(scope == "" and s.strip() == "!syslog" for scope, s in sudoers.defaults)
    if logfile or output:
        shown = logfile[-1] if logfile else "log_output"
        yield ok_unless(sudoers.unread, "sudo logging", f"sudo keeps its own log: {shown}",
                        ev(sudoers.files[0], "Defaults", shown))
    elif sudoers.unread:  # "no logfile" would be a claim about the unread files too
        yield not_read(sudoers.unread, "sudo logging", "no Defaults logfile or log_output is set",
                       ev(sudoers.files[0], "Defaults", "!syslog" if syslog_off else "(unset)"))
    elif syslog_off:
        yield fail("sudo logging", "Defaults !syslog and no logfile: sudo use is not recorded",
                   ev(sudoers.files[0], "Defaults", "!syslog"), severity=Severity.MEDIUM)
    else:
        yield fail("sudo logging", "no Defaults logfile or log_output: sudo use is only in syslog",
                   ev(sudoers.files[0], "Defaults", "(unset)"))
