"""Accountability for the libvirt daemons: audit records of VM lifecycle events, and logs."""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.daemon.remote import LIBVIRTD_CONF_DOC
from vmsec.checks.helpers.config import conf_name, daemon_of, sev, show, unreadable, where
from vmsec.facts import Host

_LOGGING_DOC = "https://libvirt.org/logging.html"
_AUDIT_DOC = "https://libvirt.org/auditlog.html"
_PERSISTENT_OUTPUTS = frozenset({"file", "syslog", "journald"})


@check("VMS-DMN-012", title="The libvirt daemons send VM lifecycle events to the audit subsystem",
       severity=Severity.MEDIUM, tags=(Tag.AUDIT, "libvirtd"),
       references=(_AUDIT_DOC, LIBVIRTD_CONF_DOC))
def audit_level(host: Host) -> Iterator[Result]:
    """libvirt records VM start/stop, migration and resource assignment (disks, devices, network,
    security labels) as VIRT_* audit records. `audit_level = 0` turns that off; with the default `1`,
    records are only kept if auditd is running.

    Remediation: Set `audit_level = 2` (the daemon refuses to run without auditing) and run auditd.
    """
    for conf in host.daemon_confs:
        if daemon_of(conf) == "virtproxyd":
            continue  # the proxy runs no hypervisor driver; virtqemud audits the VMs
        subject = f"{conf_name(conf)} audit_level"
        s = conf.setting("audit_level")
        if s is None:
            yield unreadable(conf, subject)
            continue
        auditd = ev("auditd", "running", host.auditd_running)
        if s.value == 0:
            yield fail(subject, f"audit_level = 0 {where(s)}: VM lifecycle and resource "
                       "assignments are not audited", sev(s))
        elif s.value == 2:
            yield ok(subject, f"audit_level = 2 {where(s)}: the daemon requires auditing", sev(s))
        elif s.value != 1:
            yield unknown(subject, f"audit_level = {show(s.value)} {where(s)} is not 0, 1 or 2", sev(s))
        elif host.auditd_running is None:
            yield unknown(subject, f"audit_level = 1 {where(s)}, and whether auditd runs could not "
                          "be told", sev(s), auditd)
        elif host.auditd_running:
            yield ok(subject, f"audit_level = 1 {where(s)} and auditd is running", sev(s), auditd)
        else:
            yield fail(subject, f"audit_level = 1 {where(s)} but auditd is not running: VM "
                       "lifecycle events are not recorded", sev(s), auditd)


def _outputs(text: str) -> list[tuple[str, str]]:
    """`"3:journald 1:file:/var/log/x.log"` -> [("3", "journald"), ("1", "file")]."""
    found = []
    for item in text.split():
        level, _, rest = item.partition(":")
        found.append((level, rest.partition(":")[0].lower()))
    return found


@check("VMS-DMN-013", title="The libvirt daemons log persistently, without debug logging",
       severity=Severity.LOW, tags=(Tag.AUDIT, "libvirtd", "logging"),
       references=(_LOGGING_DOC, LIBVIRTD_CONF_DOC))
def log_outputs(host: Host) -> Iterator[Result]:
    """Daemon logs are the trail of who did what to which VM. Outputs only to stderr leave nothing
    behind after a restart; `log_level = 1` (debug) in production fills disks and writes sensitive
    detail (VM XML, commands) to the log.

    Remediation: Keep `log_outputs` pointing to journald, syslog or a file (the default is journald
    at level 3) and forward it off-host; use `log_level = 3`, debug only while troubleshooting.
    """
    for conf in host.daemon_confs:
        name = conf_name(conf)
        outputs = conf.setting("log_outputs")
        level = conf.setting("log_level")
        if outputs is None or level is None:
            yield unreadable(conf, f"{name} log_outputs")
            continue
        text = outputs.as_str()
        if not outputs.explicit or not text:
            yield ok(f"{name} log_outputs", "log_outputs is not set: the daemon logs warnings and "
                     "errors to journald (or its log file)", sev(outputs))
        else:
            kinds = {kind for _, kind in _outputs(text)}
            if kinds & _PERSISTENT_OUTPUTS:
                yield ok(f"{name} log_outputs", f"log_outputs = {show(text)} {where(outputs)}",
                         sev(outputs))
            else:
                yield fail(f"{name} log_outputs", f"log_outputs = {show(text)} {where(outputs)}: no "
                           "persistent output (file, syslog or journald)", sev(outputs))
        if level.value == 1:
            yield fail(f"{name} log_level", f"log_level = 1 {where(level)}: debug logging in "
                       "production fills the disk and records VM configuration", sev(level))
        else:
            yield ok(f"{name} log_level", f"log_level = {show(level.value)} {where(level)}",
                     sev(level))
