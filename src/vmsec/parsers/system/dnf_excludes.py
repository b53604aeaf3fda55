"""Which installed packages dnf-automatic never upgrades: dnf's package excludes, as dnf 4 applies them.

dnf-automatic reads /etc/dnf/dnf.conf ``[main]``, then its own /etc/dnf/automatic.conf ``[base]``
over it. The ``excludepkgs`` option (``exclude`` is the same option) and ``includepkgs`` are lists
that each key of each layer adds to — in file order; an empty value empties the list — and
``disable_excludes`` holding ``main`` or ``all`` turns the main ones off (``*`` does not). Keys are
case-sensitive. A list value splits at spaces, commas and line breaks, never at tabs; an inline
``# note`` is two more entries.

An entry hides every package it matches, installed versions and updates alike: a glob (fnmatch,
case-sensitive) on the name or ``name.arch`` holds back every update of that package. An entry
that matches only a versioned form (``name-version[-release][.arch]``, with or without the epoch)
hides the versions it names, so whether it holds back the next update depends on that update's
version: unknown. With ``includepkgs`` set, every package it does not match is hidden.

A repository's own ``excludepkgs`` hide packages from that repository only: a package every
enabled repository excludes is held back; one only some exclude is unknown (which repository
carries its updates is not known offline). A repository's ``includepkgs`` only narrows what that
repository offers, which is what vendors' repositories set; it holds nothing back.

The versionlock plugin (python3-dnf-plugin-versionlock, enabled unless its configuration says
``enabled=0`` or dnf.conf ``plugins=0``), which dnf-automatic runs: each line of its ``locklist`` that
matches an installed package's version locks the package there — every other version is excluded,
updates included; a ``!`` line hides what it matches (all versions, for a bare name); a line naming
another version of the package is unknown. A bare name locks nothing (every version matches it).
With no ``locklist`` set, or the file missing, the plugin raises and dnf-automatic stops: nothing is
upgraded.

The oracle is dnf 4.14 itself (Debian's python3-dnf, and the versionlock plugin of Debian's
dnf-plugins-core, unpacked): tests/parsers/test_dnf_excludes.py builds RPMs with rpmbuild and asks
dnf which of them its configuration hides.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from vmsec.facts import InstalledPackage
from vmsec.parsers.system.unattended_filters import MAX_NAMED, HeldBack, them

MAX_ENTRIES = 1_000  # exclude/include entries judged; more are unknown
_SPLIT = re.compile(r"[ ,\n]+")
_KEYS = {"exclude": "exclude", "excludepkgs": "exclude", "includepkgs": "include",
         "disable_excludes": "disable"}
DNF_FILTER_KEYS = frozenset(_KEYS)


class Filters:
    """One scope's lists (main, or one repository), built layer by layer."""

    def __init__(self) -> None:
        self.lists: dict[str, list[str]] = {"exclude": [], "include": [], "disable": []}

    def add_section(self, section: Iterable[tuple[str, str]]) -> None:
        for key, value in section:
            option = _KEYS.get(key)
            if option is None:
                continue
            if not value.strip():
                self.lists[option] = []
            else:
                self.lists[option] += [t for t in _SPLIT.split(value.strip()) if t]

    @property
    def exclude(self) -> list[str]:
        return self.lists["exclude"]

    @property
    def include(self) -> list[str]:
        return self.lists["include"]

    @property
    def disabled(self) -> set[str]:
        return set(self.lists["disable"])


def ini_sections(text: str, path: str) -> list[tuple[str, list[tuple[str, str]]]] | None:
    """The sections of a dnf INI file as dnf reads them (case-sensitive keys, a repeated key's last
    value, continuation lines); None when it is not INI."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None, default_section="\0none")
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # dnf's keys are case-sensitive
    try:
        parser.read_string(text, source=path)
    except configparser.Error:
        return None
    return [(name, list(parser[name].items())) for name in parser.sections()]


def _versioned(name: str, epoch: str, version: str, release: str, arch: str) -> list[str]:
    """The versioned forms dnf matches an entry against: name-version[-release[.arch]], with and
    without the epoch."""
    evr = f"{epoch or 0}:{version}"
    forms = [f"{name}-{version}", f"{name}-{evr}"]
    if release:
        dot_arch = f".{arch}" if arch else ""
        forms += [f"{name}-{v}-{release}{a}" for v in (version, evr) for a in ("", dot_arch)]
    return forms


def _parts(p: InstalledPackage) -> tuple[str, str, str, str, str]:
    epoch, _, vr = p.version.rpartition(":")
    version, _, release = vr.partition("-")
    return p.name, epoch, version, release, p.arch or ""


def _forms(p: InstalledPackage) -> tuple[list[str], list[str]]:
    """The name forms (name, name.arch) and the versioned forms dnf matches an entry against."""
    names = [p.name, *([f"{p.name}.{p.arch}"] if p.arch else [])]
    return names, _versioned(*_parts(p))


def _hides(entries: list[str], names: list[str]) -> bool:
    return any(fnmatchcase(n, e) for e in entries for n in names)


def _names_in(entry: str) -> list[str]:
    """The package names a ``name-[epoch:]version[-release[.arch]]`` entry may mean, as hawkey's
    NEVRA forms split it: before the last dash, or before the one ahead of it."""
    return [part for part in (entry.rsplit("-", 1)[0], entry.rsplit("-", 2)[0]) if part != entry]


def _lock_state(locks: list[str], p: InstalledPackage) -> str | None:
    """What the versionlock plugin's list does to a package's updates: "held" (locked at exactly the
    installed version-release — every other version is excluded — or all its versions excluded by a
    ``!`` entry), "uncertain" (an entry names some of its versions: the update's is not known), or
    None. A lock is exact when it matches the installed version but neither the same version with
    another release nor another version."""
    names, versioned = _forms(p)
    name, epoch, version, release, arch = _parts(p)
    # another release before this one's text (a ".*" architecture glob would take a suffix), another version
    others = [*_versioned(name, epoch, version, f"0vmsec~other.{release}", arch),
              *_versioned(name, epoch, f"{version}.vmsec~other", release, arch)]
    state = None
    for entry in locks:
        exclude = entry.startswith("!")
        pattern = entry[1:] if exclude else entry
        if exclude and _hides([pattern], names):
            return "held"
        if not exclude and _hides([pattern], versioned) and not _hides([pattern], others):
            return "held"
        if _hides([pattern], versioned) or any(fnmatchcase(name, n) for n in _names_in(pattern)):
            state = "uncertain"
    return state


def dnf_held_back(main: Filters, repos: Mapping[str, Filters], packages: tuple[InstalledPackage, ...] | None,
                  where: str, locks: list[str] | None = None, locks_from: str = "") -> HeldBack:
    """The installed rpm packages dnf's excludes keep from upgrade (see the module docstring); ``repos``
    are the enabled repositories by id, ``where`` names the files for the messages; ``locks`` the
    versionlock plugin's entries when it is active (from ``locks_from``)."""
    main_on = not ({"main", "all"} & main.disabled)
    repo_on = {rid: f for rid, f in repos.items() if not ({rid, "all"} & main.disabled)}
    scopes = [main, *repo_on.values()] if main_on else [*repo_on.values()]
    locks = locks or []
    if not any(f.exclude or f.include for f in scopes) and not locks:
        return HeldBack()
    if sum(len(f.exclude) + len(f.include) for f in scopes) + len(locks) > MAX_ENTRIES:
        return HeldBack(unknown=f"more than {MAX_ENTRIES} exclude/include/versionlock entries in {where}")
    if packages is None:
        return HeldBack(unknown="the installed packages are unknown")
    held: list[str] = []
    locked: list[str] = []
    uncertain: list[str] = []
    for p in sorted({p.name: p for p in packages if p.manager == "rpm"}.values(), key=lambda p: p.name):
        names, versioned = _forms(p)
        if main_on and (_hides(main.exclude, names) or (main.include and not _hides(main.include, names))):
            held.append(p.name)
            continue
        repo_hides = [_hides(f.exclude, names) for f in repo_on.values()]
        lock = _lock_state(locks, p)
        if repo_hides and all(repo_hides):
            held.append(p.name)
        elif lock == "held":
            locked.append(p.name)
        elif any(repo_hides) or lock or _hides([e for f in scopes for e in f.exclude], versioned):
            uncertain.append(p.name)
    if held or locked:
        every = sorted(held + locked)
        why = [f"dnf's excludes in {where} hide {them(len(held))}" if held else "",
               f"the versionlock plugin ({locks_from}) locks {them(len(locked))}" if locked else ""]
        return HeldBack(held=tuple(every[:MAX_NAMED]), held_count=len(every),
                        why="; ".join(w for w in why if w))
    if uncertain:
        shown = ", ".join(uncertain[:8]) + (f" and {len(uncertain) - 8} more" if len(uncertain) > 8 else "")
        return HeldBack(unknown=f"whether dnf's excludes or version locks ({where}) hold back the updates of "
                        f"{shown} depends on the repository or the version that carries them")
    return HeldBack()

