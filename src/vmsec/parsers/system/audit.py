"""Audit and logging: auditd, its rules, off-host log forwarding and journald storage.

Rules: augenrules compiles /etc/audit/rules.d/*.rules (name order) into /etc/audit/audit.rules;
both are read and the lines kept once, rules.d first. Off-host forwarding evidence: rsyslog
(``*.* @host`` UDP, ``@@host`` TCP, ``:omfwd:``, ``action(type="omfwd"|"omrelp" …)``), syslog-ng
(a ``destination`` with ``network()``, ``tcp()``, ``udp()`` or ``syslog()``), the audit remote plugin
(``active = yes``), systemd-journal-upload enabled, busybox syslogd ``-R host``. journald: the last
``Storage=`` of journald.conf and its drop-ins; ``auto`` (the default) is reported as what it means
here: ``persistent`` when /var/log/journal exists, else ``volatile``. None when journald is absent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from vmsec.facts import AuditSetup, FileKind, Service
from vmsec.parsers.lines import split_lines
from vmsec.parsers.system._common import Errors, lines, list_dir, read_lines, read_optional
from vmsec.parsers.systemd_unit import parse_unit
from vmsec.reading import Reader

MAX_RULES = 20_000
MAX_EVIDENCE = 100
_RSYSLOG_LEGACY = re.compile(r"^\S+\s+(?:\(o\))?(?:@@?|:omfwd:|:omrelp:)\s*\S")
_RSYSLOG_ACTION = re.compile(r'action\s*\((?:[^()"]|"[^"]*")*?\btype\s*=\s*"(omfwd|omrelp)"', re.DOTALL)
_SYSLOG_NG_DEST = re.compile(r"destination\s+[\w.-]+\s*\{[^{}]*?\b(network|tcp6?|udp6?|syslog)\s*\(",
                             re.DOTALL)
_BUSYBOX_REMOTE = re.compile(r"(?:^|\s)-R\s*\S")
_JOURNALD_DIRS = ("/etc/systemd/journald.conf.d", "/run/systemd/journald.conf.d",
                  "/usr/local/lib/systemd/journald.conf.d", "/usr/lib/systemd/journald.conf.d")


def _enabled(services: Sequence[Service] | None, names: tuple[str, ...]) -> bool | None:
    if services is None:
        return None
    states = [s.enabled for s in services if s.name in names]
    if False in states:
        return False  # masked wins
    if True in states:
        return True
    return None if None in states else False


def _rules(reader: Reader, errors: Errors | None) -> tuple[str, ...]:
    paths = [f"/etc/audit/rules.d/{n}" for n in list_dir(reader, "/etc/audit/rules.d", errors)
             if n.endswith(".rules")]
    seen: dict[str, None] = {}
    for path in [*paths, "/etc/audit/audit.rules"]:
        for _number, line in read_lines(reader, path, errors):
            if line and not line.startswith("#") and len(seen) < MAX_RULES:
                seen.setdefault(line)
    return tuple(seen)


def _line_counter(text: str) -> Callable[[int], int]:
    """The line of each offset in ``text``, asked in increasing order: each newline is counted once
    (counting from the start for every match had made a 1 MiB rsyslog.conf take 22 s)."""
    where = [0, 1]  # the last offset asked, its line

    def line_of(offset: int) -> int:
        where[1] += text.count("\n", where[0], offset)
        where[0] = offset
        return where[1]

    return line_of


def _remote(reader: Reader, services: Sequence[Service] | None, errors: Errors | None) -> list[str]:
    evidence: list[str] = []
    dropins = list_dir(reader, "/etc/rsyslog.d", errors)
    rsyslog = ["/etc/rsyslog.conf", *(f"/etc/rsyslog.d/{n}" for n in dropins if n.endswith(".conf"))]
    for path in rsyslog:
        text = read_optional(reader, path, errors) or ""
        for number, line in lines(text, errors, path):
            if line and not line.startswith("#") and _RSYSLOG_LEGACY.match(line):
                evidence.append(f"rsyslog {path}:{number}: {line[:120]}")
        uncommented = "\n".join("" if raw.lstrip().startswith("#") else raw for raw in split_lines(text))
        line_of = _line_counter(uncommented)
        for match in _RSYSLOG_ACTION.finditer(uncommented):
            where = f"{path}:{line_of(match.start())}"
            evidence.append(f'rsyslog {where}: action(type="{match.group(1)}")')
    syslog_ng = ["/etc/syslog-ng/syslog-ng.conf",
                 *(f"/etc/syslog-ng/conf.d/{n}" for n in list_dir(reader, "/etc/syslog-ng/conf.d", errors)
                   if n.endswith(".conf"))]
    for path in syslog_ng:
        text = read_optional(reader, path, errors) or ""
        uncommented = "\n".join(raw.split("#", 1)[0] for raw in split_lines(text))
        line_of = _line_counter(uncommented)
        for match in _SYSLOG_NG_DEST.finditer(uncommented):
            where = f"{path}:{line_of(match.start())}"
            evidence.append(f"syslog-ng {where}: {match.group(1)}() destination")
    for path in ("/etc/audit/plugins.d/au-remote.conf", "/etc/audisp/plugins.d/au-remote.conf"):
        for number, line in read_lines(reader, path, errors):
            key, _sep, value = line.partition("=")
            if key.strip() == "active" and value.strip().lower() == "yes":
                evidence.append(f"audisp-remote {path}:{number}: active = yes")
    if _enabled(services, ("systemd-journal-upload.service",)):
        url = None
        upload = read_optional(reader, "/etc/systemd/journal-upload.conf", errors) or ""
        for section, key, value in parse_unit(upload):
            if section == "Upload" and key == "URL" and value:
                url = value
        evidence.append(f"systemd-journal-upload.service enabled (URL={url or 'unset'})")
    for number, line in read_lines(reader, "/etc/conf.d/syslog", errors):
        if line.startswith("SYSLOGD_OPTS") and _BUSYBOX_REMOTE.search(line.partition("=")[2].strip("\"'")):
            evidence.append(f"busybox syslogd /etc/conf.d/syslog:{number}: {line[:120]}")
    return evidence[:MAX_EVIDENCE]


def _journald_storage(reader: Reader, errors: Errors | None) -> str | None:
    binaries = ("/usr/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald")
    if not any(reader.exists(p) for p in binaries):
        return None
    dropins: dict[str, str] = {}
    for directory in reversed(_JOURNALD_DIRS):
        for name in list_dir(reader, directory, errors):
            if name.endswith(".conf"):
                dropins[name] = f"{directory}/{name}"
    main = "/etc/systemd/journald.conf"
    if not reader.exists(main):
        main = "/usr/lib/systemd/journald.conf"  # systemd >= 253 ships the defaults there
    storage = "auto"
    for path in [main, *(dropins[n] for n in sorted(dropins))]:
        for section, key, value in parse_unit(read_optional(reader, path, errors) or ""):
            if section == "Journal" and key == "Storage" and value:
                storage = value.strip().lower()
    if storage == "auto":
        return "persistent" if reader.stat("/var/log/journal").kind == FileKind.DIRECTORY else "volatile"
    return storage


def read_audit(reader: Reader, services: Sequence[Service] | None, *,
               errors: Errors | None = None) -> AuditSetup:
    """auditd, its rules, remote-logging evidence and journald storage.

    ``services`` is what :func:`read_services` returned (None when unknown: enablement is then None).
    """
    installed = any(reader.exists(p) for p in ("/usr/sbin/auditd", "/sbin/auditd"))
    enabled = _enabled(services, ("auditd.service", "auditd")) if installed else False
    return AuditSetup(auditd_installed=installed, auditd_enabled=enabled, rules=_rules(reader, errors),
                      remote_logging=tuple(_remote(reader, services, errors)),
                      journald_storage=_journald_storage(reader, errors))
