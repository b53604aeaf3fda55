"""Audit and logging: the kernel audit daemon and its rules, off-host log forwarding, and logs
that survive a reboot.

When a file of the audit or logging configuration could not be read (``Guest.unread["audit"]``, or
``["services"]`` for what is enabled), a rule or a forwarding seen is still there, but "no rule
covers …" or "nothing is forwarded" is UNKNOWN naming what was not read, and so is a PASS that a
later file could undo (``-D``, ``-e 1``, another ``Storage=``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.unread import guest_unread, not_read, ok_unless
from vmsec.facts import Guest
from vmsec.facts.guest import AuditSetup
from vmsec.findings import Evidence

_AUDIT_RULES = "/etc/audit/rules.d"
_AUDITCTL = "https://man7.org/linux/man-pages/man8/auditctl.8.html"


def _watch_or_syscall(rule: str) -> bool:
    return bool(re.search(r"(^|\s)(-w|-a|--watch|--append|-A)\s", rule + " "))


def _rules_evidence(audit: AuditSetup) -> tuple[Evidence, ...]:
    return tuple(ev(_AUDIT_RULES, "rule", r) for r in audit.rules[:3])


@check("VMS-GST-110", title="The audit daemon (auditd) is installed and enabled", severity=Severity.MEDIUM,
       tags=(Tag.AUDIT, "auditd"),
       references=("https://man7.org/linux/man-pages/man8/auditd.8.html",))
def auditd_enabled(guest: Guest) -> Iterator[Result]:
    """The Linux audit subsystem records security-relevant events (logins, privilege use, changes
    to accounts and configuration) at the kernel, where a user-space intruder cannot skip them.
    Without auditd the records are lost.

    Remediation: Install auditd (`auditd` on Debian/Ubuntu, `audit` on RHEL) and
    `systemctl enable --now auditd`.
    """
    audit = guest.audit
    if audit is None:
        yield unknown("auditd", "the audit configuration could not be read")
        return
    where = ev("auditd.service", "installed/enabled", f"{audit.auditd_installed}/{audit.auditd_enabled}")
    runtime = guest.runtime
    if runtime is not None and runtime.services is not None:
        running = runtime.running("auditd")
        now = ev(runtime.source, "auditd", "running" if running else "not running")
        if running:
            yield ok("auditd", "auditd runs now", where, now)
        elif audit.auditd_installed and audit.auditd_enabled and runtime.services_unread:
            yield unknown("auditd", f"auditd is enabled at boot and not among the running processes read, "
                          f"but {runtime.services_unread}: whether it runs is unknown", where, now)
        elif audit.auditd_installed and audit.auditd_enabled:
            yield fail("auditd", "auditd is enabled at boot but does not run now: no audit trail is kept",
                       where, now)
        elif audit.auditd_installed:
            yield fail("auditd", "auditd is installed but neither enabled nor running", where, now)
        else:
            yield fail("auditd", "auditd is not installed and does not run: no kernel audit trail is kept",
                       where, now)
        return
    if audit.auditd_installed is None:
        yield unknown("auditd", "whether auditd is installed could not be determined", where)
    elif not audit.auditd_installed:
        yield fail("auditd", "auditd is not installed: no kernel audit trail is kept", where)
    elif audit.auditd_enabled is None:
        yield unknown("auditd", "auditd is installed; whether it is enabled could not be determined",
                      where)
    elif not audit.auditd_enabled and guest_unread(guest, "services"):  # the link may be in it
        yield not_read(guest_unread(guest, "services"), "auditd", "auditd is installed but not enabled "
                       "at boot", where)
    elif not audit.auditd_enabled:
        yield fail("auditd", "auditd is installed but not enabled at boot", where)
    else:
        yield ok("auditd", "auditd is installed and enabled", where)


@check("VMS-GST-111", title="Audit rules are defined", severity=Severity.MEDIUM,
       tags=(Tag.AUDIT, "auditd"), references=(_AUDITCTL,))
def audit_rules_present(guest: Guest) -> Iterator[Result]:
    """auditd with no watch or syscall rules records little beyond its own start and logins. The
    rules decide what is recorded.

    Remediation: Install a rule set in /etc/audit/rules.d/ (the CIS or STIG sets shipped in
    /usr/share/doc/auditd/examples/rules/ are a start) and run `augenrules --load`.
    """
    audit = guest.audit
    if audit is None:
        yield unknown("audit rules", "the audit configuration could not be read")
        return
    if audit.auditd_installed is False:
        return  # VMS-GST-110 reports the missing daemon
    active = [r for r in audit.rules if _watch_or_syscall(r)]
    unread = guest_unread(guest, "audit")
    if active:
        yield ok_unless(unread, "audit rules", f"{len(active)} watch/syscall rules are defined",
                        *(ev(_AUDIT_RULES, "rule", r) for r in active[:3]))
    elif unread:
        yield not_read(unread, "audit rules", f"no watch or syscall rules among {len(audit.rules)} audit "
                       "rule lines", *_rules_evidence(audit))
    else:
        yield fail("audit rules", f"no watch or syscall rules among {len(audit.rules)} audit rule "
                   "lines", *_rules_evidence(audit))


def _covers(audit: AuditSetup, label: str, required: tuple[tuple[str, str], ...],
            unread: tuple[str, ...]) -> Iterator[Result]:
    """``required``: (what, regex) pairs; each must match some rule line."""
    if audit.auditd_installed is False:
        return
    missing = []
    hits = []
    recording = [r for r in audit.rules if _records(r)]
    for what, pattern in required:
        rx = re.compile(pattern)
        hit = next((r for r in recording if rx.search(r)), None)
        if hit is None:
            missing.append(what)
        else:
            hits.append(ev(_AUDIT_RULES, what, hit))
    refused = f" ({audit.load_error})" if audit.load_error else ""
    if missing and unread:
        yield not_read(unread, label, f"no audit rule covers {', '.join(missing)}{refused}", *hits)
    elif missing:
        yield fail(label, f"no audit rule covers {', '.join(missing)}{refused}", *hits)
    else:  # a later, unread file could delete them (-D)
        yield ok_unless(unread, label, f"audit rules cover {', '.join(w for w, _ in required)}", *hits)


def _records(rule: str) -> bool:
    """Whether a loaded rule writes records: not a ``never`` action, and a watch's permissions
    (``-p``, all of rwxa when absent) include writes or attribute changes."""
    if re.search(r"(^|\s)-[aA]\s*(\S*\bnever\b)", rule):
        return False
    perms = re.search(r"(^|\s)-p\s*([rwxa]+)", rule)
    if perms is not None and re.match(r"\s*-w\s", rule):
        return bool(set(perms.group(2)) & {"w", "a"})
    return True


def _path(p: str) -> str:
    return rf"(-w\s+|path=|dir=){re.escape(p)}(\s|/|$)"


@check("VMS-GST-112", title="Audit rules watch account and group files", severity=Severity.LOW,
       tags=(Tag.AUDIT, "auditd", "identity"), references=(_AUDITCTL,))
def audit_identity(guest: Guest) -> Iterator[Result]:
    """Changes to /etc/passwd, /etc/shadow and /etc/group create accounts and grant groups: the
    first thing an intruder does to keep access. Watching them records who did it.

    Remediation: `-w /etc/passwd -p wa -k identity`, the same for /etc/shadow, /etc/group,
    /etc/gshadow and /etc/security/opasswd.
    """
    if guest.audit is None:
        yield unknown("audit identity", "the audit configuration could not be read")
        return
    yield from _covers(guest.audit, "audit identity", (
        ("/etc/passwd", _path("/etc/passwd")), ("/etc/shadow", _path("/etc/shadow")),
        ("/etc/group", _path("/etc/group"))), guest_unread(guest, "audit"))


@check("VMS-GST-113", title="Audit rules watch sudo configuration", severity=Severity.LOW,
       tags=(Tag.AUDIT, "auditd", "sudo"), references=(_AUDITCTL,))
def audit_sudoers(guest: Guest) -> Iterator[Result]:
    """/etc/sudoers and /etc/sudoers.d decide who may become root; an edit there is a privilege
    grant and should leave a record.

    Remediation: `-w /etc/sudoers -p wa -k scope` and `-w /etc/sudoers.d -p wa -k scope`.
    """
    if guest.audit is None:
        yield unknown("audit sudoers", "the audit configuration could not be read")
        return
    yield from _covers(guest.audit, "audit sudoers", (
        ("/etc/sudoers", _path("/etc/sudoers")), ("/etc/sudoers.d", _path("/etc/sudoers.d"))),
        guest_unread(guest, "audit"))


@check("VMS-GST-114", title="Audit rules record clock changes", severity=Severity.LOW,
       tags=(Tag.AUDIT, "auditd", "time"), references=(_AUDITCTL,))
def audit_time_change(guest: Guest) -> Iterator[Result]:
    """Setting the clock back or forward hides an intrusion in the timeline and can replay expired
    credentials; the system calls that do it should be recorded.

    Remediation: `-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change`
    (and b32), plus `-w /etc/localtime -p wa -k time-change`.
    """
    if guest.audit is None:
        yield unknown("audit time change", "the audit configuration could not be read")
        return
    yield from _covers(guest.audit, "audit time change", (
        ("adjtimex/settimeofday/clock_settime",
         r"-S\s+\S*(adjtimex|settimeofday|clock_settime)"),), guest_unread(guest, "audit"))


@check("VMS-GST-115", title="Audit rules are immutable until reboot", severity=Severity.LOW,
       tags=(Tag.AUDIT, "auditd"), references=(_AUDITCTL,))
def audit_immutable(guest: Guest) -> Iterator[Result]:
    """`-e 2` locks the loaded rules: an intruder with root must reboot — which is noticed — to stop
    the audit trail.

    Remediation: End the last rules file (e.g. /etc/audit/rules.d/99-finalize.rules) with `-e 2`.
    """
    audit = guest.audit
    if audit is None:
        yield unknown("audit immutable", "the audit configuration could not be read")
        return
    if audit.auditd_installed is False:
        return
    last = [r for r in audit.rules if re.match(r"\s*-e\s+\d", r)]
    unread = guest_unread(guest, "audit")
    if last and re.match(r"\s*-e\s+2\b", last[-1]):
        yield ok_unless(unread, "audit immutable", "the audit rules end with -e 2",
                        ev(_AUDIT_RULES, "-e", last[-1]))
    elif unread:  # the last rules file may be the unread one
        yield not_read(unread, "audit immutable", "the audit rules are not locked (-e 2)",
                       *(ev(_AUDIT_RULES, "-e", r) for r in last[-1:]))
    else:
        refused = f" ({audit.load_error})" if audit.load_error else ""
        yield fail("audit immutable", f"the audit rules are not locked (-e 2){refused}: root can remove "
                   "them silently", *(ev(_AUDIT_RULES, "-e", r) for r in last[-1:]))


@check("VMS-GST-116", title="Logs are forwarded off the system", severity=Severity.MEDIUM,
       tags=(Tag.AUDIT, "logging", "remote-logging"),
       references=("https://www.rsyslog.com/doc/configuration/modules/omfwd.html",
                   "https://www.freedesktop.org/software/systemd/man/latest/journal-upload.conf.html"))
def remote_logging(guest: Guest) -> Iterator[Result]:
    """Logs kept only on the system itself are the first thing an intruder with root edits. A copy
    on a log server keeps the evidence, and is where detection can see several systems at once.
    A syslog daemon counts only when it is installed and not disabled at boot, and rsyslog's
    forwarding actions only as rsyslogd loads them: the files its configuration includes, outside
    comments, in a ruleset messages reach, with the module and template they name defined before
    them, and not after a syntax error that ends the configuration; syslog-ng's network destinations
    only when a log path uses them (and none when a log path names an object defined nowhere, since
    syslog-ng then refuses the whole configuration).

    Remediation: Forward to a log server: rsyslog `action(type="omfwd" … StreamDriver="gtls")`,
    systemd-journal-upload, audisp-remote, or an agent (Vector, Fluent Bit, Wazuh).
    """
    audit = guest.audit
    if audit is None:
        yield unknown("remote logging", "the logging configuration could not be read")
        return
    if audit.remote_logging:
        yield ok("remote logging", f"logs are forwarded: {audit.remote_logging[0]}",
                 *(ev(r.split(" ", 1)[0], "forwarding", r) for r in audit.remote_logging[:3]))
    elif guest_unread(guest, "audit"):
        yield not_read(guest_unread(guest, "audit"), "remote logging", "no off-host log forwarding is "
                       "configured")
    else:
        yield fail("remote logging", "no off-host log forwarding is configured (rsyslog, syslog-ng, "
                   "journal-upload, audisp-remote or a log agent)")


_SYSLOG_DAEMONS = frozenset({"rsyslog", "syslog-ng", "syslogd", "sysklogd", "busybox-syslogd",
                             "metalog", "syslog"})  # "syslog": Alpine's OpenRC busybox syslogd


@check("VMS-GST-117", title="Local logs survive a reboot", severity=Severity.MEDIUM,
       tags=(Tag.AUDIT, "logging", "journald"),
       references=("https://www.freedesktop.org/software/systemd/man/latest/journald.conf.html",))
def persistent_logs(guest: Guest) -> Iterator[Result]:
    """With journald `Storage=volatile` (or `none`) and no syslog daemon, logs live in memory and
    vanish at the next reboot — including the ones that would explain why it rebooted. `auto`
    (the default) keeps them only if /var/log/journal exists.

    Remediation: `Storage=persistent` in /etc/systemd/journald.conf (or a drop-in), or enable
    rsyslog.
    """
    audit = guest.audit
    if audit is None:
        yield unknown("persistent logs", "the logging configuration could not be read")
        return
    syslog = [s for s in guest.services or ()
              if s.enabled and s.name.removesuffix(".service").lower() in _SYSLOG_DAEMONS]
    storage = (audit.journald_storage or "").strip().lower() or None
    where = ev("/etc/systemd/journald.conf", "Storage", audit.journald_storage)
    runtime = guest.runtime
    if runtime is not None and runtime.services is not None:
        # What runs decides: a configured journald keeps nothing when it is not running.
        daemons = runtime.running(*_SYSLOG_DAEMONS, "rsyslogd", "syslog-ng", "systemd-journald")
        syslogd = [d for d in daemons if "journald" not in d.name]
        journald = [d for d in daemons if "journald" in d.name]
        if syslogd:
            yield ok("persistent logs", f"{syslogd[0].name} runs and writes logs to disk", where,
                     ev(runtime.source, syslogd[0].name, syslogd[0].state))
        elif journald and storage == "persistent":
            yield ok("persistent logs", "journald runs with Storage=persistent", where,
                     ev(runtime.source, journald[0].name, journald[0].state))
        elif runtime.services_unread:
            # a syslog daemon (or journald) not in the incomplete process table may run all the same
            yield unknown("persistent logs", f"no syslog daemon is among the running processes read, but "
                          f"{runtime.services_unread}: whether logs reach the disk is unknown", where,
                          ev(runtime.source, "logging daemons", "incomplete"))
        elif journald and storage in ("volatile", "none"):
            yield fail("persistent logs", f"journald runs with Storage={storage} and no syslog daemon "
                       "runs: logs are lost at reboot", where,
                       ev(runtime.source, journald[0].name, "running"))
        elif journald:
            yield unknown("persistent logs", f"journald runs with Storage={storage or 'auto'}: persistent "
                          "only if /var/log/journal exists, and no syslog daemon runs", where)
        else:
            yield fail("persistent logs", "neither journald nor a syslog daemon runs: nothing is logged "
                       f"to disk ({runtime.services_source})", where,
                       ev(runtime.source, "logging daemons", "none running"))
        return
    unread = guest_unread(guest, "audit", "services")
    if storage == "persistent":  # a later, unread drop-in could set another Storage=
        yield ok_unless(guest_unread(guest, "audit"), "persistent logs", "journald Storage=persistent",
                        where)
    elif syslog:
        yield ok("persistent logs", f"{syslog[0].name} writes logs to disk", where,
                 ev(syslog[0].origin or syslog[0].manager, syslog[0].name, "enabled"))
    elif guest.services is None:
        yield unknown("persistent logs", "the enabled services (syslog daemons) could not be read",
                      where)
    elif unread and storage in ("volatile", "none", None):
        yield not_read(unread, "persistent logs", f"journald Storage={storage or '(no journald)'} and no "
                       "syslog daemon is enabled", where)
    elif storage in ("volatile", "none"):
        yield fail("persistent logs", f"journald Storage={storage} and no syslog daemon is enabled: "
                   "logs are lost at reboot", where)
    elif storage is None:
        yield fail("persistent logs", "neither journald nor an enabled syslog daemon keeps logs on "
                   "disk", where)
    else:
        yield unknown("persistent logs", f"journald Storage={storage}: persistent only if "
                      "/var/log/journal exists, and no syslog daemon is enabled", where)
