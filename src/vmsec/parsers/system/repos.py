"""Package sources: APT (one-line and deb822), yum/dnf, zypper and apk.

APT verifies every repository's signed Release file against its keyring unless told not to:
``[trusted=yes]`` / ``Trusted: yes`` ignores signatures (``trusted=True``, ``signed=False``);
``allow-insecure=yes`` and the global ``APT::Get::AllowUnauthenticated`` /
``Acquire::AllowInsecureRepositories`` let unsigned data through (``signed=False``; the global
switch is named in ``origin``). ``signed=True`` means the source pins its key with ``signed-by``;
``signed=None`` means it is checked against APT's global keyring (no pinned key). Only binary
(``deb``) sources are listed; ``deb-src`` fetches source code that nothing installs.

yum/dnf: a ``.repo`` value overrides ``[main]`` of /etc/dnf/dnf.conf (or /etc/yum.conf); ``enabled``
defaults to 1 and ``gpgcheck`` to 0 when nothing sets it (dnf.conf(5)). The URI reported is the first
plain-http one among baseurl/mirrorlist/metalink when there is one (the weakest transport), else the
first. zypper defaults to ``gpgcheck`` on (zypp.conf). apk verifies indexes against /etc/apk/keys:
``signed`` is whether that directory holds any key.
"""

from __future__ import annotations

import configparser
import re

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import PackageRepo
from vmsec.parsers.lines import split_lines
from vmsec.parsers.system._common import Errors, lines, list_dir, note, read_optional, truthy, unreadable
from vmsec.parsers.system.aptconf import AptConfig, apt_bool, apt_part_names, apt_path, read_apt_config
from vmsec.reading import Reader

MAX_REPOS = 5_000
MAX_DEB822_LINES = 50_000
# apt reads the options up to the first ']' (a '#' inside them is no comment) and needs no blank after it.
_ONE_LINE = re.compile(r"^(deb|deb-src)\s+(?:\[([^\]]*)\]\s*)?(\S+)\s*(.*)$")
_URL_SPLIT = re.compile(r"[\s,]+")
_ENCRYPTED = ("https://", "file:", "cdrom:")
_INSECURE_SWITCHES = ("apt::get::allowunauthenticated", "acquire::allowinsecurerepositories",
                      "acquire::allowdowngradetoinsecurerepositories")


def _apt_options(raw: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in raw.split():
        key, sep, value = item.partition("=")
        if sep:
            options[key.rstrip("+-").lower()] = value
    return options


def _apt_repo(uri: str, suite: str | None, components: tuple[str, ...], origin: str, *,
              trusted: bool, signed_by: bool, insecure: bool, enabled: bool,
              global_switch: tuple[str, str] | None) -> PackageRepo:
    signed: bool | None = True if signed_by else None
    if trusted or insecure:
        signed = False
    if global_switch is not None:
        signed = False
        origin = f"{origin}; {global_switch[0]} at {global_switch[1]}"
        trusted = trusted or global_switch[0].lower() == "apt::get::allowunauthenticated"
    return PackageRepo(manager="apt", uri=uri, origin=origin, suite=suite, components=components,
                       enabled=enabled, signed=signed, trusted=trusted)


def _without_comment(line: str) -> str:
    """A one-line source without its comment: a '#' inside the [options] is part of them."""
    start = line.find("[")
    hash_at = line.find("#")
    if 0 <= start < hash_at:
        end = line.find("]", start)
        hash_at = line.find("#", end) if end >= 0 else -1
    return line if hash_at < 0 else line[:hash_at]


def _global_switch(config: AptConfig) -> tuple[str, str] | None:
    for key in _INSECURE_SWITCHES:
        found = config.get(key)
        if found is not None and apt_bool(found[0]):
            return key.replace("apt::get::", "APT::Get::").replace("acquire::", "Acquire::"), found[1]
    return None


def _one_line(path: str, text: str, switch: tuple[str, str] | None,
              errors: Errors | None) -> list[PackageRepo]:
    out: list[PackageRepo] = []
    for number, line in lines(text, errors, path):
        line = _without_comment(line).strip()
        if not line:
            continue
        match = _ONE_LINE.match(line)
        if match is None:
            note(errors, f"{path}:{number}", "not an APT source line")
            continue
        kind, raw_options, uri, rest = match.groups()
        if kind != "deb":
            continue
        options = _apt_options(raw_options or "")
        words = rest.split()
        out.append(_apt_repo(uri, words[0] if words else None, tuple(words[1:]), f"{path}:{number}",
                             trusted=apt_bool(options.get("trusted", "no")) is True,
                             signed_by="signed-by" in options,
                             insecure=apt_bool(options.get("allow-insecure", "no")) is True,
                             enabled=True, global_switch=switch))
    return out


def _deb822_stanzas(text: str) -> list[tuple[int, dict[str, str]]]:
    stanzas: list[tuple[int, dict[str, str]]] = []
    fields: dict[str, str] = {}
    start = 0
    last: str | None = None
    for number, raw in enumerate(split_lines(text)[:MAX_DEB822_LINES], start=1):
        if raw.startswith("#"):
            continue
        if not raw:  # apt ends a stanza at an empty line only: one of blanks continues it
            if fields:
                stanzas.append((start, fields))
            fields, last = {}, None
            continue
        if raw[0] in " \t":
            if last is not None:
                fields[last] += "\n" + raw.strip()
            continue
        key, sep, value = raw.partition(":")
        if sep:
            if not fields:
                start = number
            last = key.strip().lower()
            fields[last] = value.strip()
    if fields:
        stanzas.append((start, fields))
    return stanzas


def _deb822(path: str, text: str, switch: tuple[str, str] | None, errors: Errors | None) -> list[PackageRepo]:
    out: list[PackageRepo] = []
    if text.count("\n") >= MAX_DEB822_LINES:
        unreadable(errors, ReadError(path, f"more than {MAX_DEB822_LINES} lines; the rest was not read",
                                     ErrorKind.TOO_LARGE))
    for number, fields in _deb822_stanzas(text):
        origin = f"{path}:{number}"
        if "deb" not in fields.get("types", "").split():
            continue
        uris = fields.get("uris", "").split()
        suites = fields.get("suites", "").split()
        if not uris or not suites:
            note(errors, origin, "deb822 source without URIs or Suites")
            continue
        if len(out) + len(uris) * len(suites) > MAX_REPOS:  # URIs × Suites: bounded before it is built
            unreadable(errors, ReadError(origin, f"more than {MAX_REPOS} sources (URIs × Suites); the rest "
                                         "was not read", ErrorKind.TOO_LARGE))
            break
        for uri in uris:
            for suite in suites:
                out.append(_apt_repo(uri, suite, tuple(fields.get("components", "").split()), origin,
                                     trusted=apt_bool(fields.get("trusted", "no")) is True,
                                     signed_by=bool(fields.get("signed-by")),
                                     insecure=apt_bool(fields.get("allow-insecure", "no")) is True,
                                     enabled=apt_bool(fields.get("enabled", "yes")) is not False,
                                     global_switch=switch))
    return out


def _apt(reader: Reader, errors: Errors | None) -> list[PackageRepo]:
    config = read_apt_config(reader, errors)
    switch = _global_switch(config)
    out: list[PackageRepo] = []
    source_list = apt_path(config, "Dir::Etc::SourceList", "sources.list")
    text = read_optional(reader, source_list, errors)
    if text is not None:
        out += _one_line(source_list, text, switch, errors)
    parts = apt_path(config, "Dir::Etc::SourceParts", "sources.list.d")
    names = list_dir(reader, parts, errors)
    # apt reads the names GetListOfFilesInDir accepts: "debian security.list" or ".x.list" are ignored
    for name in sorted({*apt_part_names(names, "list"), *apt_part_names(names, "sources")}):
        path = f"{parts}/{name}"
        if name.endswith(".list"):
            text = read_optional(reader, path, errors)
            out += _one_line(path, text, switch, errors) if text is not None else []
        elif name.endswith(".sources"):
            text = read_optional(reader, path, errors)
            out += _deb822(path, text, switch, errors) if text is not None else []
    return out


def _ini(path: str, text: str, errors: Errors | None) -> configparser.RawConfigParser | None:
    parser = configparser.RawConfigParser(strict=False, interpolation=None, allow_no_value=True,
                                          default_section="\x00no-defaults")
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        note(errors, path, f"not an INI file: {str(exc).splitlines()[0]}")
        return None
    return parser


def _pick_uri(section: configparser.SectionProxy) -> str | None:
    urls: list[str] = []
    for key in ("baseurl", "mirrorlist", "metalink"):
        urls += [u for u in _URL_SPLIT.split(section.get(key) or "") if u]
    for url in urls:
        if not url.startswith(_ENCRYPTED):
            return url
    return urls[0] if urls else None


def _bool_option(section: configparser.SectionProxy, key: str, default: bool | None,
                 origin: str, errors: Errors | None) -> bool | None:
    raw = section.get(key)
    if raw is None:
        return default
    value = truthy(raw)
    if value is None:
        note(errors, origin, f"{key}={raw!r} is not a boolean")
    return value


def _rpm_repos(reader: Reader, manager: str, directories: tuple[str, ...], main_gpgcheck: bool | None,
               main_repo_gpgcheck: bool | None, errors: Errors | None) -> list[PackageRepo]:
    out: list[PackageRepo] = []
    for directory in directories:
        for name in list_dir(reader, directory, errors):
            if not name.endswith(".repo"):
                continue
            path = f"{directory}/{name}"
            text = read_optional(reader, path, errors)
            parser = _ini(path, text, errors) if text is not None else None
            if parser is None:
                continue
            for repo_id in parser.sections():
                if repo_id == "main" or len(out) >= MAX_REPOS:
                    continue
                section = parser[repo_id]
                origin = f"{path} [{repo_id}]"
                uri = _pick_uri(section)
                if uri is None:
                    note(errors, origin, "repository without baseurl, mirrorlist or metalink")
                    continue
                gpgcheck = _bool_option(section, "gpgcheck", main_gpgcheck, origin, errors)
                if manager == "zypper" and section.get("pkg_gpgcheck") is not None:
                    gpgcheck = _bool_option(section, "pkg_gpgcheck", gpgcheck, origin, errors)
                out.append(PackageRepo(
                    manager=manager, uri=uri, origin=origin,
                    enabled=_bool_option(section, "enabled", True, origin, errors) is not False,
                    signed=gpgcheck, gpgcheck=gpgcheck,
                    repo_gpgcheck=_bool_option(section, "repo_gpgcheck", main_repo_gpgcheck, origin, errors)))
    return out


def _yum(reader: Reader, errors: Errors | None) -> list[PackageRepo]:
    manager = "yum"
    main: configparser.SectionProxy | None = None
    main_path = ""
    main_readable = True
    for candidate, name in (("/etc/dnf/dnf.conf", "dnf"), ("/etc/yum.conf", "yum")):
        problems: Errors = []
        text = read_optional(reader, candidate, problems)
        if errors is not None:
            errors += problems
        if text is None:
            main_readable = main_readable and not problems
            continue
        manager, main_path = name, candidate
        parser = _ini(candidate, text, errors)
        main = parser["main"] if parser is not None and parser.has_section("main") else None
        break
    # dnf.conf(5): gpgcheck defaults to False; an unreadable main file leaves the default unknown
    gpgcheck: bool | None = False if main_readable else None
    repo_gpgcheck: bool | None = False if main_readable else None
    directories = ["/etc/yum.repos.d"]
    if main is not None:
        origin = f"{main_path} [main]"
        gpgcheck = _bool_option(main, "gpgcheck", gpgcheck, origin, errors)
        repo_gpgcheck = _bool_option(main, "repo_gpgcheck", repo_gpgcheck, origin, errors)
        extra = (main.get("reposdir") or "").replace(",", " ").split()
        directories = [d.rstrip("/") for d in extra if d.startswith("/")][:8] or directories
    return _rpm_repos(reader, manager, tuple(directories), gpgcheck, repo_gpgcheck, errors)


def _zypper(reader: Reader, errors: Errors | None) -> list[PackageRepo]:
    return _rpm_repos(reader, "zypper", ("/etc/zypp/repos.d",), True, None, errors)


def _apk(reader: Reader, errors: Errors | None) -> list[PackageRepo]:
    text = read_optional(reader, "/etc/apk/repositories", errors)
    if text is None:
        return []
    problems: Errors = []
    keys = [k for k in list_dir(reader, "/etc/apk/keys", problems) if k.endswith(".pub")]
    signed: bool | None = None if problems else bool(keys)
    if errors is not None:
        errors += problems
    out: list[PackageRepo] = []
    for number, line in lines(text, errors, "/etc/apk/repositories"):
        if not line or line.startswith("#"):
            continue
        words = line.split()
        tag = words[0] if words[0].startswith("@") and len(words) > 1 else None
        uri = words[1] if tag else words[0]
        out.append(PackageRepo(manager="apk", uri=uri, origin=f"/etc/apk/repositories:{number}",
                               suite=tag, signed=signed))
    return out


def read_repos(reader: Reader, *, errors: Errors | None = None) -> tuple[PackageRepo, ...]:
    """Every configured package source of every package manager found in the root.

    An unreadable or malformed file (a FIFO named ``x.repo``, binary garbage) is appended to
    ``errors`` and skipped; the other sources are still read.
    """
    repos = [*_apt(reader, errors), *_yum(reader, errors), *_zypper(reader, errors), *_apk(reader, errors)]
    if len(repos) > MAX_REPOS:  # what is cut may be the one trusted=yes source: unread, not absent
        unreadable(errors, ReadError("/etc/apt/sources.list.d", f"more than {MAX_REPOS} sources; the rest "
                                     "was not read", ErrorKind.TOO_LARGE))
    return tuple(repos[:MAX_REPOS])
