"""Which archives unattended-upgrades installs from: its origin patterns, matched as it matches them.

unattended-upgrades upgrades a package only from an archive one of its patterns allows
(``Unattended-Upgrade::Origins-Pattern``, and the older ``Allowed-Origins`` of ``origin:archive``
pairs). Enabled with none that matches the security archive, it runs every day and never installs a
security fix. The semantics, as unattended-upgrades 2.9 (Debian 12) implements them:

- an ``Allowed-Origins`` entry splits at its first unescaped ``:`` (else at whitespace) into exactly
  two parts and becomes ``o=ID,a=ARCHIVE`` (``\\:`` unescaped, ``,`` escaped);
- ``${distro_id}`` (``lsb_release -i``: ``Debian``, ``Ubuntu``) and ``${distro_codename}`` are
  substituted in each whole entry, and again in each value while matching, by ``string.Template.
  substitute``: any other ``$`` placeholder stops the program;
- a pattern is ``key=value`` tokens split at ``,`` (``\\,`` is a literal comma), each stripped; every
  token must hold (fnmatch, case-sensitive) against the archive's Release fields: ``o``/``origin``,
  ``l``/``label``, ``a``/``archive``/``suite``, ``c``/``component``, ``site``, ``n``/``codename``.
  An empty pattern matches nothing; a token that is not one ``key=value``, or an unknown key, stops
  the program (``UnknownMatcherError``, a ValueError it does not catch) — no upgrade at all.

tests/parsers/test_unattended_origins.py runs unattended-upgrades' own functions (its packaged
script) on the same patterns and archives as the oracle.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from vmsec.facts import AutoUpdates, OsRelease, PackageRepo

MAX_PATTERNS = 1_000  # a configuration's entries judged (hostile input: bounded work) …
MAX_TOKENS = 10_000  # … and their key=value tokens, each matched against ≤ 48 readings of the archive

_KEYS = {"o": "origin", "origin": "origin", "l": "label", "label": "label", "a": "archive",
         "suite": "archive", "archive": "archive", "c": "component", "component": "component",
         "site": "site", "n": "codename", "codename": "codename"}
_UNESCAPED_COLON = re.compile(r"(?<!\\):")


class PatternError(ValueError):
    """An entry that stops unattended-upgrades when it reads or matches it."""


def _substitute(text: str, variables: Mapping[str, str]) -> str:
    try:
        return string.Template(text).substitute(variables)
    except (KeyError, ValueError) as exc:
        raise PatternError(f"{text!r}: unattended-upgrades cannot substitute {exc}") from exc


def allowed_patterns(allowed_origins: Iterable[str], origins_pattern: Iterable[str],
                     variables: Mapping[str, str]) -> list[str]:
    """The patterns unattended-upgrades matches (its ``get_allowed_origins``): the legacy entries
    converted, then the patterns, each with its variables substituted. ``PatternError`` where it
    would stop."""
    patterns = []
    for entry in allowed_origins:
        parts = _UNESCAPED_COLON.split(entry) if _UNESCAPED_COLON.search(entry) else entry.split()
        if len(parts) != 2:
            raise PatternError(f"Allowed-Origins {entry!r} is not one origin and one archive")
        distro_id, archive = parts
        distro_id = re.sub(r"([^\\]),", r"\1\\,", distro_id.replace("\\:", ":"))
        archive = re.sub(r"([^\\]),", r"\1\\,", archive)
        patterns.append(f"o={_substitute(distro_id, variables)},a={_substitute(archive, variables)}")
    patterns += [_substitute(p, variables) for p in origins_pattern]
    return patterns


def parse_pattern(pattern: str, variables: Mapping[str, str]) -> list[tuple[str, str]] | None:
    """A pattern's (field, value) tokens, as ``match_whitelist_string`` reads them; None for an empty
    pattern (it matches nothing). ``PatternError`` where unattended-upgrades would stop."""
    pattern = pattern.strip()
    if not pattern:
        return None
    tokens = []
    for token in pattern.replace("\\,", "%2C").split(","):
        parts = [part.strip().replace("%2C", ",") for part in token.split("=")]
        if len(parts) != 2:
            raise PatternError(f"origin pattern {pattern!r}: {token!r} is not key=value")
        key, value = parts
        field = _KEYS.get(key)
        if field is None:
            raise PatternError(f"origin pattern {pattern!r}: unknown key {key!r}")
        tokens.append((field, _substitute(value, variables)))
    return tokens


def tokens_match(tokens: list[tuple[str, str]] | None, archive: Mapping[str, str | None]) -> bool | None:
    """Whether parsed tokens allow ``archive``: False at the first that fails; None when one needs a
    field that is not known here (``None``) and none fails."""
    if tokens is None:
        return False
    result: bool | None = True
    for field, value in tokens:
        known = archive.get(field)
        if known is None:
            result = None
        elif not fnmatch.fnmatchcase(known, value):
            return False
    return result


def pattern_matches(pattern: str, archive: Mapping[str, str | None], variables: Mapping[str, str]
                    ) -> bool | None:
    """Whether ``pattern`` allows ``archive`` (its Release fields: origin, label, archive, component,
    site, codename) — unattended-upgrades' ``match_whitelist_string``, errors included."""
    return tokens_match(parse_pattern(pattern, variables), archive)


def _before_bullseye(version_id: str | None) -> bool:
    """Debian 10 and older: the security suite is "buster/updates", its codename the release's own
    (since 11: "bookworm-security")."""
    major = (version_id or "").partition(".")[0]
    return major.isdigit() and int(major) <= 10


def security_archives(os_id: str | None, version_id: str | None, codename: str | None,
                      sites: Iterable[str] | None) -> list[dict[str, str | None]] | None:
    """The Release fields of the archive that carries a Debian or Ubuntu release's security updates,
    one dict per reading of what is not fixed: Debian names its suite by the release's current place
    (stable, oldstable, oldoldstable, which moves with time), and the site is the host of each
    configured security source (``sites``; None: the sources are unknown). None for other
    distributions, or without a codename."""
    if not codename or os_id not in ("debian", "ubuntu"):
        return None
    if os_id == "ubuntu":
        fixed: dict[str, str | None] = {"origin": "Ubuntu", "label": "Ubuntu", "codename": codename,
                                        "component": "main"}
        suites = [f"{codename}-security"]
    else:
        modern = not _before_bullseye(version_id)
        fixed = {"origin": "Debian", "label": "Debian-Security", "component": "main",
                 "codename": f"{codename}-security" if modern else codename}
        places = ("stable", "oldstable", "oldoldstable")
        suites = [f"{place}-security" if modern else place for place in places]
    hosts: list[str | None] = [None]  # unknown: a pattern naming a site is then undecided
    if sites:
        hosts = [*sorted(set(sites))[:16]]
    return [{**fixed, "archive": suite, "site": host} for suite in suites for host in hosts]


def security_coverage(auto: AutoUpdates, os: OsRelease | None, repos: Iterable[PackageRepo] | None
                      ) -> tuple[bool | None, str]:
    """Whether unattended-upgrades, as configured in ``auto``, installs from the security archive of
    the release ``os`` names: (True, the pattern that allows it), (False, why not), or (None, why that
    cannot be told)."""
    if os is None or not os.version_codename:
        return None, "the release and its codename are unknown"
    codename = os.version_codename
    old_debian = os.id == "debian" and _before_bullseye(os.version_id)
    suite = f"{codename}/updates" if old_debian else f"{codename}-security"
    sites = None if repos is None else [
        host for r in repos if r.manager == "apt" and r.enabled and r.suite == suite
        and (host := urlsplit(r.uri).hostname)]
    archives = security_archives(os.id, os.version_id, codename, sites)
    if archives is None:
        return None, f"which archive carries the security updates of {os.id or 'this system'} is not known"
    variables = {"distro_id": (os.name or os.id or "").split(" ")[0], "distro_codename": codename}
    if len(auto.allowed_origins) + len(auto.origins_pattern) > MAX_PATTERNS:
        return None, f"more than {MAX_PATTERNS} origin entries: they were not all judged"
    try:
        patterns = allowed_patterns(auto.allowed_origins, auto.origins_pattern, variables)
        parsed = [parse_pattern(p, variables) for p in patterns]  # every one: a bad one stops it
    except PatternError as exc:
        return False, f"unattended-upgrades stops on its configuration ({exc}) and installs nothing"
    if sum(len(tokens or ()) for tokens in parsed) > MAX_TOKENS:
        return None, f"more than {MAX_TOKENS} origin tokens: they were not all judged"
    verdicts = [(p, {tokens_match(tokens, a) for a in archives}) for p, tokens in zip(patterns, parsed,
                                                                                     strict=True)]
    first = archives[0]
    security = f"origin={first['origin']}, label={first['label']}, codename={first['codename']}"
    if not patterns:
        return False, "no Origins-Pattern or Allowed-Origins entry allows any archive: it installs nothing"
    for pattern, results in verdicts:
        if results == {True}:
            return True, f"{pattern!r} allows the security archive ({security})"
    if all(results == {False} for _p, results in verdicts):
        return False, (f"none of its origins ({'; '.join(patterns[:8])}) is the security archive "
                       f"({security})")
    undecided = next(p for p, results in verdicts if results != {False})
    return None, (f"whether {undecided!r} allows the security archive ({security}) depends on what "
                  "is not known here: the release's place (stable, oldstable) or the security source's site")
