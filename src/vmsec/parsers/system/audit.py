"""Audit and logging: auditd, its rules, off-host log forwarding and journald storage.

Rules: what auditctl loads at boot — augenrules' compilation of /etc/audit/rules.d (see
:func:`_rules`), or /etc/audit/audit.rules where auditd.service loads that file itself. Off-host
forwarding evidence, from daemons that are installed and not disabled at boot: rsyslog's
forwarding actions as rsyslogd loads them (:mod:`vmsec.parsers.system.rsyslog`), syslog-ng's network
destinations that a log path uses (:mod:`vmsec.parsers.system.syslog_ng`), the audit remote plugin
(``active = yes``), systemd-journal-upload enabled, busybox syslogd ``-R host``. journald: the last
``Storage=`` of journald.conf and its drop-ins; ``auto`` (the default) is reported as what it means
here: ``persistent`` when /var/log/journal exists, else ``volatile``. None when journald is absent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vmsec.facts import AuditSetup, FileKind, Service
from vmsec.parsers.lines import split_lines
from vmsec.parsers.system._common import Errors, list_dir, read_lines, read_optional
from vmsec.parsers.systemd_unit import parse_unit
from vmsec.reading import Reader

MAX_RULES = 20_000
MAX_EVIDENCE = 100
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


_UNIT_FILES = ("/etc/systemd/system/auditd.service", "/usr/lib/systemd/system/auditd.service",
               "/lib/systemd/system/auditd.service")
_MOVED = re.compile(r"\s*(-e|-D|-f|-b|--backlog_wait_time)(?:\s|$)")


def _version_key(name: str) -> list[tuple[int, int | str]]:
    """``ls -v`` order, near enough: digit runs compare as numbers (``99-x`` before ``100-y``)."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"\d+|\D+", name)]


def _raw_lines(reader: Reader, path: str, errors: Errors | None) -> list[str]:
    """The file's lines as augenrules' awk and auditctl see them: split at \\n only, nothing
    stripped — a carriage return stays and auditctl refuses it."""
    text = read_optional(reader, path, errors)
    return split_lines(text)[:MAX_RULES] if text else []


def _augenrules(reader: Reader, errors: Errors | None) -> list[tuple[str, str]]:
    """(rule, file) as augenrules (audit 3.0) writes audit.rules: the rules.d files ``ls -1v`` lists
    (no dotfiles) ending in ``.rules``, comments and blank lines dropped, the last ``-D``, ``-b``,
    ``--backlog_wait_time`` and ``-f`` first, the other rules in order, the last ``-e`` at the end."""
    names = [n for n in list_dir(reader, "/etc/audit/rules.d", errors)
             if n.endswith(".rules") and not n.startswith(".")]
    moved: dict[str, tuple[str, str]] = {}
    rules: list[tuple[str, str]] = []
    for name in sorted(names, key=_version_key):
        path = f"/etc/audit/rules.d/{name}"
        for line in _raw_lines(reader, path, errors):
            if not line or re.match(r"\s*#", line):
                continue
            option = _MOVED.match(line)
            if option is not None:
                moved[option.group(1)] = (line, path)
            elif len(rules) < MAX_RULES:
                rules.append((line, path))
    head = [moved[k] for k in ("-D", "-b", "--backlog_wait_time", "-f") if k in moved]
    return head + rules + ([moved["-e"]] if "-e" in moved else [])


def _uses_augenrules(reader: Reader, errors: Errors | None) -> bool:
    """Whether auditd.service loads its rules with augenrules (Debian, RHEL 8+) rather than
    ``auditctl -R /etc/audit/audit.rules``; without a readable unit, whether rules.d holds rules."""
    for path in _UNIT_FILES:
        text = read_optional(reader, path, errors)
        if text is None:
            continue
        starts = [v for section, key, v in parse_unit(text)
                  if section == "Service" and key == "ExecStartPost"]
        return any("augenrules" in v for v in starts) or not any("auditctl" in v for v in starts)
    return any(n.endswith(".rules") for n in list_dir(reader, "/etc/audit/rules.d", errors))


def _rules(reader: Reader, errors: Errors | None) -> tuple[tuple[str, ...], str | None]:
    """The rules auditctl loads at boot: augenrules' audit.rules compiled from rules.d (a hand-written
    /etc/audit/audit.rules is overwritten then, so not read), or audit.rules itself. auditctl stops at
    the first line it refuses — an inline ``#`` comment, a carriage return — and loads nothing after
    it, the final ``-e`` included (the refused line is returned beside the rules); ``-W`` removes an
    earlier watch of the same path."""
    if _uses_augenrules(reader, errors):
        source = _augenrules(reader, errors)
    else:
        path = "/etc/audit/audit.rules"
        source = [(line, path) for line in _raw_lines(reader, path, errors)
                  if line.strip() and not re.match(r"\s*#", line)][:MAX_RULES]
    loaded: list[str] = []
    for line, path in source:
        words = line.split()
        if "\r" in line or not words or not words[0].startswith("-") \
                or any(w.startswith("#") for w in words[1:]):
            return tuple(loaded), f"{path}: auditctl refuses {line[:80]!r} and loads nothing after it"
        if words[0] == "-W" and len(words) > 1:
            loaded = [r for r in loaded if not re.match(rf"\s*-w\s+{re.escape(words[1])}(\s|$)", r)]
            continue
        loaded.append(line)
    return tuple(loaded), None


def _runs(reader: Reader, services: Sequence[Service] | None, binaries: tuple[str, ...],
          units: tuple[str, ...]) -> bool:
    """Installed (its binary exists) and not disabled at boot (unknown enablement still counts)."""
    return any(reader.exists(b) for b in binaries) and _enabled(services, units) is not False


def _remote(reader: Reader, services: Sequence[Service] | None, errors: Errors | None) -> list[str]:
    evidence: list[str] = []
    # A daemon that is not installed, or not enabled at boot, forwards nothing whatever its files say.
    # The two readers are imported only for a daemon that runs: compiling their lexers' patterns
    # costs ≈ 15 ms, which a guest without them should not pay.
    if _runs(reader, services, ("/usr/sbin/rsyslogd", "/sbin/rsyslogd"), ("rsyslog.service", "rsyslog")):
        from vmsec.parsers.system.rsyslog import rsyslog_forwards

        evidence += [f.evidence() for f in rsyslog_forwards(reader, errors)[:MAX_EVIDENCE]]
    syslog_ng = ("/usr/sbin/syslog-ng", "/sbin/syslog-ng")
    if _runs(reader, services, syslog_ng, ("syslog-ng.service", "syslog-ng")):
        from vmsec.parsers.system.syslog_ng import syslog_ng_config

        evidence += [d.evidence() for d in syslog_ng_config(reader, errors).forwards()[:MAX_EVIDENCE]]
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
        # Without a URL the uploader exits at once ("Required --url/-u option missing"): the unit
        # may carry one on its command line, which is not read here, so only a set URL counts.
        if url:
            evidence.append(f"systemd-journal-upload.service enabled (URL={url})")
    for number, line in read_lines(reader, "/etc/conf.d/syslog", errors):
        if line.startswith("SYSLOGD_OPTS") and _BUSYBOX_REMOTE.search(line.partition("=")[2].strip("\"'")):
            evidence.append(f"busybox syslogd /etc/conf.d/syslog:{number}: {line[:120]}")
    return evidence[:MAX_EVIDENCE]


_STORAGE_MODES = frozenset({"volatile", "persistent", "auto", "none"})


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
            # journald takes the four names exactly (storage_from_string); anything else — another
            # case, quotes, a trailing comment — it logs and ignores, keeping what came before.
            if section == "Journal" and key == "Storage" and value in _STORAGE_MODES:
                storage = value
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
    rules, load_error = _rules(reader, errors)
    return AuditSetup(auditd_installed=installed, auditd_enabled=enabled, rules=rules, load_error=load_error,
                      remote_logging=tuple(_remote(reader, services, errors)),
                      journald_storage=_journald_storage(reader, errors))
