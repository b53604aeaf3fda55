"""Whether a root installs updates by itself: unattended-upgrades, dnf-automatic, yum-cron, apk in cron.

unattended-upgrades runs from apt-daily-upgrade.timer when ``APT::Periodic::Update-Package-Lists``
and ``APT::Periodic::Unattended-Upgrade`` are non-zero (apt.conf.d/20auto-upgrades); it is
security-only when every ``Unattended-Upgrade::Origins-Pattern`` / ``Allowed-Origins`` entry names a
security archive. dnf-automatic applies updates when ``dnf-automatic-install.timer`` is enabled, or
``dnf-automatic.timer`` with ``apply_updates = yes`` in /etc/dnf/automatic.conf; ``upgrade_type =
security`` limits it. yum-cron: the service enabled and ``apply_updates = yes``. Alpine: an
``apk upgrade`` in root's crontab or /etc/periodic.

When the package list is known and none of these is installed, automatic updates are off
(``enabled=False``); when it is unknown and no configuration is found, they are unknown (``None``).
"""

from __future__ import annotations

import configparser
import re

import msgspec

from vmsec.errors import ReadError
from vmsec.facts import AutoUpdates, InstalledPackage
from vmsec.parsers.system._common import (
    CONFIG_LIMIT,
    Errors,
    lines,
    list_dir,
    masked,
    note,
    read_optional,
    truthy,
    unreadable,
)
from vmsec.parsers.system.aptconf import AptConfig, apt_bool, read_apt_config
from vmsec.parsers.system.aptprefs import (
    MAX_LISTS_TOTAL,
    PinHold,
    Preferences,
    read_apt_preferences,
    read_carried,
    read_releases,
    security_pin_holds,
)
from vmsec.parsers.system.dnf_excludes import DNF_FILTER_KEYS, Filters, Section, dnf_held_back, ini_sections
from vmsec.parsers.system.unattended_filters import HeldBack, held_back, update_weekdays
from vmsec.parsers.system.unattended_origins import MAX_PATTERNS
from vmsec.reading import Reader

_WANTS_DIRS = ("/etc/systemd/system/timers.target.wants", "/etc/systemd/system/multi-user.target.wants",
               "/etc/systemd/system/default.target.wants")
_APK_UPGRADE = re.compile(r"\bapk\b[^\n]*\bupgrade\b")
_SECURITY = re.compile(r"security", re.IGNORECASE)


def _installed(packages: tuple[InstalledPackage, ...] | None, names: tuple[str, ...]) -> bool | None:
    if packages is None:
        return None
    return any(p.name in names for p in packages)


def _wanted(reader: Reader, unit: str) -> str | None:
    """The wants/ link enabling ``unit`` (None when not enabled, or masked in /etc)."""
    if masked(reader, f"/etc/systemd/system/{unit}"):
        return None
    for directory in _WANTS_DIRS:
        path = f"{directory}/{unit}"
        if reader.stat(path, follow=False).exists and not masked(reader, path):
            return path
    return None


def _interval_on(value: tuple[str, str] | None) -> bool:
    """Whether apt.systemd.daily runs the step of an APT::Periodic interval: its check_stamp skips it
    only for the exact text ``0`` (or when unset); any other value — ``always``, ``1``, ``00``, ``0x1``,
    ``true`` (0 days in shell arithmetic) — runs it."""
    return value is not None and value[0] not in ("0", "")


def _periodic_enabled(config: AptConfig) -> bool:
    """``APT::Periodic::Enable`` (default 1): apt.systemd.daily exits at once when it is 0
    (``[ $AutoAptEnable -eq 0 ]``)."""
    value = config.get("APT::Periodic::Enable")
    return value is None or re.fullmatch(r"\s*[+-]?0+\s*", value[0]) is None


def _unattended(reader: Reader, packages: tuple[InstalledPackage, ...] | None,
                errors: Errors | None) -> AutoUpdates | None:
    installed = _installed(packages, ("unattended-upgrades",))
    if installed is False:
        return None
    if installed is None and not reader.exists("/usr/bin/unattended-upgrade"):
        return None
    config = read_apt_config(reader, errors)
    lists = config.get("APT::Periodic::Update-Package-Lists")
    upgrade = config.get("APT::Periodic::Unattended-Upgrade")
    origin = upgrade[1] if upgrade else (lists[1] if lists else "/etc/apt/apt.conf.d")
    # What starts apt.systemd.daily: under systemd the apt-daily-upgrade timer, enabled (a wants link)
    # and not masked — an empty unit file or a relative link to /dev/null mask it too; without systemd,
    # cron's apt-compat script.
    timer = "apt-daily-upgrade.timer"
    if any(reader.exists(p) for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd",
                                      f"/lib/systemd/system/{timer}", f"/usr/lib/systemd/system/{timer}")):
        started = _wanted(reader, timer) is not None and not any(
            masked(reader, f"{d}/{u}") for d in ("/etc/systemd/system", "/run/systemd/system")
            for u in (timer, "apt-daily-upgrade.service"))
        if not started:
            origin += f"; {timer} is not enabled (or is masked)"
    else:
        started = reader.exists("/etc/cron.daily/apt-compat")
        if not started:
            origin += "; no /etc/cron.daily/apt-compat runs it"
    if not _periodic_enabled(config):
        origin += "; APT::Periodic::Enable is 0"
    # apt refusing its configuration fails every `apt-config shell` of apt.systemd.daily: each interval
    # keeps the script's default, 0, and nothing runs
    enabled = (_interval_on(lists) and _interval_on(upgrade) and started and _periodic_enabled(config)
               and not config.refused)
    # one more than the cap: more than it are judged UNKNOWN, never cut short to a PASS
    legacy = config.items("Unattended-Upgrade::Allowed-Origins")[:MAX_PATTERNS + 1]
    patterns = config.items("Unattended-Upgrade::Origins-Pattern")[:MAX_PATTERNS + 1]
    security_only = all(_SECURITY.search(p) for p, _o in [*patterns, *legacy]) if patterns or legacy else None
    days = config.items("Unattended-Upgrade::Update-Days")
    blacklist = config.items("Unattended-Upgrade::Package-Blacklist")
    whitelist = config.items("Unattended-Upgrade::Package-Whitelist")
    strict = config.tree_get("Unattended-Upgrade::Package-Whitelist-Strict")  # python-apt: no Binary::
    strict_whitelist = strict is not None and apt_bool(strict[0]) is True
    # nothing runs: matching (and reading apt's preferences and lists) would only cost time
    prefs, pins = _security_pins(reader, config, packages, errors) if enabled else (Preferences(), PinHold())
    filters = held_back([v for v, _o in blacklist], [v for v, _o in whitelist], strict_whitelist, packages,
                        (pins.held, pins.why)) if enabled else HeldBack()
    if pins.refused:  # every program that opens apt's cache exits: unattended-upgrades too
        filters = HeldBack(error=pins.refused)
    elif pins.unknown and not filters.unknown:
        filters = msgspec.structs.replace(filters, unknown=pins.unknown)
    return AutoUpdates(mechanism="unattended-upgrades", enabled=enabled, security_only=security_only,
                       origin=origin, allowed_origins=tuple(v for v, _o in legacy),
                       origins_pattern=tuple(v for v, _o in patterns),
                       origins_from=", ".join(dict.fromkeys(o for _v, o in [*legacy, *patterns])),
                       apt_refused=config.refused, update_days=tuple(v for v, _o in days[:20]),
                       run_weekdays=tuple(sorted(update_weekdays(v for v, _o in days))),
                       held_back=filters.held, held_back_count=filters.held_count,
                       filters_error=filters.error, filters_unknown=filters.unknown,
                       filters_from=", ".join(dict.fromkeys(
                           [*(o for _v, o in [*blacklist, *whitelist, *days]), *prefs.sources])),
                       held_back_why=filters.why)


def _security_pins(reader: Reader, config: AptConfig, packages: tuple[InstalledPackage, ...] | None,
                   errors: Errors | None) -> tuple[Preferences, PinHold]:
    """apt's preferences, and what they and APT::Default-Release do to the security archive's updates
    (the lists are read only when one is set: the common case costs one directory listing)."""
    prefs = read_apt_preferences(reader, config, errors)
    default = config.tree_get("APT::Default-Release")
    if prefs.refused or prefs.unknown or not (prefs.pins or default):
        return prefs, security_pin_holds(prefs, (), packages, default[0] if default else None)
    releases, unread = read_releases(reader, config, errors)
    budget = [MAX_LISTS_TOTAL]  # every list of the guest together
    return prefs, security_pin_holds(prefs, releases, packages, default[0] if default else None,
                                     lambda archives: read_carried(reader, archives, packages or (), errors,
                                                                   budget), unread)


def _ini_section(reader: Reader, path: str, section: str, errors: Errors | None) -> dict[str, str] | None:
    text = read_optional(reader, path, errors)
    if text is None:
        return None
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        note(errors, path, f"not an INI file: {str(exc).splitlines()[0]}")
        return {}
    return dict(parser[section]) if parser.has_section(section) else {}


def _dnf_automatic(reader: Reader, packages: tuple[InstalledPackage, ...] | None,
                   errors: Errors | None) -> AutoUpdates | None:
    installed = _installed(packages, ("dnf-automatic", "dnf5-plugin-automatic"))
    conf_path = "/etc/dnf/automatic.conf"
    if not reader.exists(conf_path) and reader.exists("/etc/dnf/dnf5-plugins/automatic.conf"):
        conf_path = "/etc/dnf/dnf5-plugins/automatic.conf"
    if installed is False or (installed is None and not reader.exists(conf_path)):
        return None
    automatic, refused = _dnf_ini(reader, conf_path, errors)
    commands = dict(next((items for name, items in automatic if name == "commands"), []))
    apply = _dnf_bool(commands.get("apply_updates", ""), False)
    upgrade_type = commands.get("upgrade_type", "default").strip().lower()
    install_timer = _wanted(reader, "dnf-automatic-install.timer") or _wanted(reader, "dnf5-automatic.timer")
    timer = _wanted(reader, "dnf-automatic.timer")
    enabled = bool(install_timer) or (bool(timer) and apply)
    origin = install_timer or timer or conf_path
    if (install_timer or timer) and refused:  # dnf-automatic exits on a file libdnf refuses
        enabled, filters, where = True, HeldBack(error=f"libdnf refuses {conf_path} ({refused})"), conf_path
    elif enabled:
        filters, where = _dnf_filters(reader, (conf_path, automatic), packages, errors)
    else:
        filters, where = HeldBack(), ""
    return AutoUpdates(mechanism="dnf-automatic", enabled=enabled,
                       security_only=upgrade_type == "security", origin=origin, held_back=filters.held,
                       held_back_count=filters.held_count, filters_unknown=filters.unknown,
                       filters_error=filters.error, filters_from=where, held_back_why=filters.why)


def _dnf_bool(value: str, default: bool) -> bool:
    """libdnf's OptionBool: 1/yes/true/on and 0/no/false/off in any case; anything else is refused
    with a logged error, and the option keeps its value."""
    word = value.strip().lower()
    return True if word in ("1", "yes", "true", "on") else False if word in ("0", "no", "false", "off") \
        else default


def _dnf_ini(reader: Reader, path: str, errors: Errors | None) -> tuple[list[Section], str]:
    """A dnf INI file's sections as libdnf reads them, and why libdnf refuses it ("" when it does not)."""
    text = read_optional(reader, path, errors)
    if text is None:
        return [], ""
    sections, refused = ini_sections(text)
    if refused:
        note(errors, path, f"libdnf refuses it: {refused}")
    return sections, refused


def _dnf_filters(reader: Reader, automatic: tuple[str, list[Section]],
                 packages: tuple[InstalledPackage, ...] | None,
                 errors: Errors | None) -> tuple[HeldBack, str]:
    """What dnf's excludes hold back (parsers/system/dnf_excludes.py): /etc/dnf/dnf.conf [main], then
    dnf-automatic's [base] (``automatic``: its path and sections), and the enabled repositories' own;
    with the files that set them."""
    dnf_conf, refused = _dnf_ini(reader, "/etc/dnf/dnf.conf", errors)
    if refused:  # dnf's Base cannot read its configuration: dnf-automatic exits
        return HeldBack(error=f"libdnf refuses /etc/dnf/dnf.conf ({refused})"), "/etc/dnf/dnf.conf"
    main = Filters()
    used: list[str] = []
    reposdir = ["/etc/yum.repos.d", "/etc/yum/repos.d", "/etc/distro.repos.d"]  # dnf.conf(5)
    plugins = True
    layers = [("/etc/dnf/dnf.conf", "main", dnf_conf), (automatic[0], "base", automatic[1])]
    for path, wanted, sections in layers:
        for name, items in sections:
            if name == wanted:
                main.add_section(items)
                settings = dict(items)
                plugins = _dnf_bool(settings.get("plugins", ""), plugins)
                used += [f"{path} [{name}]"] if any(k in DNF_FILTER_KEYS for k, _v in items) else []
                if "reposdir" in settings:
                    dirs = settings["reposdir"].replace(",", " ").split()
                    reposdir = [d.rstrip("/") for d in dirs if d[:1] == "/"][:8]
    repos: dict[str, Filters] = {}
    seen: set[str] = set()
    # dnf.conf's other sections are repositories too; then the .repo files in path order, a repeated
    # id keeping its first definition, names starting with a dot skipped (dnf's glob of "*.repo")
    sources = [("/etc/dnf/dnf.conf", [s for s in dnf_conf if s[0] != "main"])]
    for directory in reposdir:
        for file in list_dir(reader, directory, errors):
            if file.endswith(".repo") and not file.startswith("."):
                path = f"{directory}/{file}"
                sections, refused = _dnf_ini(reader, path, errors)
                sources.append((path, [] if refused else sections))  # a refused file is skipped
    for path, sections in sources:
        for repo_id, items in sections:
            if repo_id in seen:
                continue
            seen.add(repo_id)
            if _dnf_bool(dict(items).get("enabled", ""), True):
                repos[repo_id] = Filters()
                repos[repo_id].add_section(items)
                used += [f"{path} [{repo_id}]"] if any(k in DNF_FILTER_KEYS for k, _v in items) else []
    locks, locks_from, stops, unread = (_versionlock(reader, packages, errors) if plugins
                                        else (None, "", "", ""))
    if stops:
        return HeldBack(error=stops), locks_from
    named = list(dict.fromkeys([*used, *([locks_from] if locks else [])]))
    where = ", ".join(named[:8]) + (f" and {len(named) - 8} more" if len(named) > 8 else "")
    held = dnf_held_back(main, repos, packages, where or "dnf's configuration", locks, locks_from)
    if unread and not held.held_count:  # what the unread list locks is unknown, never "nothing"
        return HeldBack(unknown=unread), where
    return held, where


_VERSIONLOCK_CONF = "/etc/dnf/plugins/versionlock.conf"


def _versionlock(reader: Reader, packages: tuple[InstalledPackage, ...] | None,
                 errors: Errors | None) -> tuple[list[str] | None, str, str, str]:
    """The versionlock plugin's entries when dnf-automatic runs it (parsers/system/dnf_excludes.py):
    (the entries, or None when it is not active; the list's path; why it stops dnf-automatic; why
    its entries are unknown)."""
    installed = _installed(packages, ("python3-dnf-plugin-versionlock", "python2-dnf-plugin-versionlock"))
    if installed is False or (installed is None and not reader.exists(_VERSIONLOCK_CONF)):
        return None, "", "", ""
    section = dict(next((items for name, items in _dnf_ini(reader, _VERSIONLOCK_CONF, errors)[0]
                         if name == "main"), []))
    if not _dnf_bool(section.get("enabled", ""), True):
        return None, "", "", ""
    locklist = section.get("locklist", "").strip()
    if not locklist:  # the plugin raises "locklist not set" in its sack hook; dnf-automatic exits
        why = f"the versionlock plugin is enabled but {_VERSIONLOCK_CONF} sets no locklist"
        return None, _VERSIONLOCK_CONF, why, ""
    try:
        text = reader.read_text(locklist, CONFIG_LIMIT)
    except ReadError as exc:
        if exc.absent:  # "Unable to read version lock configuration": dnf-automatic exits
            return None, locklist, f"the versionlock plugin's list {locklist} does not exist", ""
        unreadable(errors, exc)
        return None, locklist, "", f"the versionlock plugin's list {locklist} was not read ({exc.reason})"
    entries = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return entries, locklist, "", ""


def _yum_cron(reader: Reader, packages: tuple[InstalledPackage, ...] | None,
              errors: Errors | None) -> AutoUpdates | None:
    installed = _installed(packages, ("yum-cron",))
    path = "/etc/yum/yum-cron.conf"
    if installed is False or (installed is None and not reader.exists(path)):
        return None
    commands = _ini_section(reader, path, "commands", errors) or {}
    rc_links = [f"/etc/rc3.d/{n}" for n in list_dir(reader, "/etc/rc3.d", errors)
                if n.startswith("S") and n.endswith("yum-cron")]
    service = _wanted(reader, "yum-cron.service") or (rc_links[0] if rc_links else None)
    apply = truthy(commands.get("apply_updates", "no")) is True
    return AutoUpdates(mechanism="yum-cron", enabled=bool(service) and apply,
                       security_only=commands.get("update_cmd", "default").strip().startswith("security"),
                       origin=service or path)


def _apk_cron(reader: Reader, errors: Errors | None) -> AutoUpdates | None:
    if not reader.exists("/etc/apk/repositories"):
        return None
    candidates = ["/etc/crontabs/root"]
    for period in ("15min", "hourly", "daily", "weekly", "monthly"):
        directory = f"/etc/periodic/{period}"
        candidates += [f"{directory}/{n}" for n in list_dir(reader, directory, errors)]
    for path in candidates:
        text = read_optional(reader, path, errors)
        for number, line in lines(text or "", errors, path):
            if line and not line.startswith("#") and _APK_UPGRADE.search(line):
                return AutoUpdates(mechanism="apk-cron", enabled=True, origin=f"{path}:{number}")
    return None


def read_auto_updates(reader: Reader, packages: tuple[InstalledPackage, ...] | None, *,
                      errors: Errors | None = None) -> AutoUpdates:
    """The automatic-update mechanism found (an enabled one first) and whether it installs updates."""
    found = [a for a in (_unattended(reader, packages, errors), _dnf_automatic(reader, packages, errors),
                         _yum_cron(reader, packages, errors), _apk_cron(reader, errors)) if a is not None]
    for auto in found:
        if auto.enabled:
            return auto
    if found:
        return found[0]
    if packages is None:
        return AutoUpdates(mechanism=None, enabled=None, origin="package list unknown")
    return AutoUpdates(mechanism=None, enabled=False, origin="no automatic-update package installed")
