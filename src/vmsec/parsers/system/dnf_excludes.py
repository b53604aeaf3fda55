"""Which installed packages dnf-automatic never upgrades: dnf's package excludes, as dnf 4 applies them.

dnf-automatic reads /etc/dnf/dnf.conf ``[main]``, then its own /etc/dnf/automatic.conf ``[base]``
over it, with libdnf's INI reader (:func:`ini_sections`): a file it refuses (a line without ``=``, a
continuation line with no value above it, ``[main`` …) stops dnf-automatic. The ``excludepkgs``
option (``exclude`` is the same option) and ``includepkgs`` are lists each key of each layer adds
to, in file order, a value whose first item is empty (``""``, ``None``, ``,x``) emptying it first;
``disable_excludes`` is replaced by each layer, and ``main`` or ``all`` in it turns the main lists off
(``*`` does not). Keys are case-sensitive; a value loses one pair of outer quotes; it splits at
spaces, commas and line breaks, never at tabs, and an inline ``# note`` is two more entries.

An entry is a glibc ``fnmatch`` glob (``[^…]``, ``[[:alpha:]]``, ``\\x``: :func:`glibc_glob`). A main
entry hides what it matches, installed packages included: matching the name, ``name.arch`` or the
installed version in any NEVRA form (``openssh-server-8.7p1*``, ``vim-enhanced-2:*``) holds the
package back for good. An entry that names another version of a package (``openssh-server-9*``), or
starts with a glob and matches no name (``*el9_5*``), may hide its next update: unknown. With
``includepkgs`` set, every package it does not match is hidden.

A repository's own lists hide packages from that repository only (never the installed ones): a
package every enabled repository excludes, or leaves out of its ``includepkgs``, is held back; one
only some exclude is unknown; a repository's ``includepkgs`` alone (what vendors' repositories set)
holds nothing back. Repositories are dnf.conf's other sections and the ``*.repo`` files of
``reposdir`` (not those starting with a dot), a repeated id keeping its first definition.

The versionlock plugin (python3-dnf-plugin-versionlock, enabled unless its configuration says
``enabled=0`` or dnf.conf ``plugins=0``), which dnf-automatic runs: each line of its ``locklist`` that
matches exactly the installed version-release locks the package there — every other version is
excluded, updates included; a ``!`` line hides what it matches (all versions, for a bare name); a
line that also matches other releases, or names another version, is unknown. A bare name locks
nothing (every version matches it). With no ``locklist`` set, or the file missing, the plugin raises
and dnf-automatic stops: nothing is upgraded.

The oracles are dnf 4.14 itself (Debian's python3-dnf: libdnf's ConfigParser, dnf's exclude code on
RPMs built with rpmbuild) and the versionlock plugin of Debian's dnf-plugins-core, unpacked:
tests/parsers/test_dnf_excludes.py. A review ran dnf-automatic's own flow against repositories made
by hand (2026-12-06); its cases are in the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from vmsec.facts import InstalledPackage
from vmsec.parsers.system.unattended_filters import MAX_NAMED, HeldBack, them

MAX_ENTRIES = 1_000  # exclude/include/lock entries judged; more are unknown
MAX_ENTRY_CHARS = 256
MAX_NAME_CHARS = 256  # an rpm "name" longer than this is a hostile database's, not a package's
MAX_WORK = 50_000_000  # characters of entries × characters of names matched; more are unknown
_SPLIT = re.compile(r"[ ,\n]+")
_KEYS = {"exclude": "exclude", "excludepkgs": "exclude", "includepkgs": "include",
         "disable_excludes": "disable"}
DNF_FILTER_KEYS = frozenset(_KEYS)
_POSIX_CLASSES = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
                  "xdigit": "0-9A-Fa-f", "space": " \t\n\r\f\v", "blank": " \t"}

Section = tuple[str, list[tuple[str, str]]]


class Filters:
    """One scope's lists (main, or one repository), built layer by layer as libdnf's options: the
    exclude and include lists append (``optionTListAppend``: a value whose first item is empty —
    ``""``, ``None``, ``,x``, a value starting on its next line — empties the list first), and
    ``disable_excludes`` is replaced by each layer that sets it."""

    def __init__(self) -> None:
        self.lists: dict[str, list[str]] = {"exclude": [], "include": [], "disable": []}

    def add_section(self, section: Iterable[tuple[str, str]]) -> None:
        for key, value in section:
            option = _KEYS.get(key)
            if option is None:
                continue
            items = _SPLIT.split("" if value == "None" else value)
            if option == "disable":
                self.lists[option] = [i for i in items if i]
                continue
            if not items[0]:
                self.lists[option] = []
            self.lists[option] += [i for i in items if i]

    @property
    def exclude(self) -> list[str]:
        return self.lists["exclude"]

    @property
    def include(self) -> list[str]:
        return self.lists["include"]

    @property
    def disabled(self) -> set[str]:
        return set(self.lists["disable"])


def ini_sections(text: str) -> tuple[list[Section], str]:
    """A dnf INI file as libdnf's ``IniParser`` reads it: (sections in order, each with its keys in
    order; the error that makes libdnf refuse the file, or ""). A UTF-8 BOM is dropped; a comment is a
    line starting with ``#`` or ``;`` in its first column (an indented one continues the value above);
    a line starting with a blank continues the value above — right after a section header, a comment
    or an empty line it is an error — and so is a line without ``=``; a value loses one pair of
    matching outer quotes. Keys are case-sensitive; a repeated key keeps its last value, a repeated
    section merges."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    key: str | None = None  # the key a continuation line would extend
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip() or line[0] in "#;":
            key = None
        elif line[0] in " \t":
            if current is None or key is None:
                return [], f"line {number}: a continuation line with no value above it"
            current[key] += "\n" + line.strip()
        elif line[0] == "[":
            close = line.find("]")
            if close < 0:
                return [], f"line {number}: a section header without ']'"
            if close == 1:
                return [], f"line {number}: an empty section name"
            after = close + 1 + len(line[close + 1:]) - len(line[close + 1:].lstrip(" \t"))
            if after < len(line) - 1 and line[after] not in "#;":  # libdnf lets one last character by
                return [], f"line {number}: text after the section header"
            current = sections.setdefault(line[1:close], {})
            key = None
        else:
            name, equals, value = line.partition("=")
            if not equals:
                return [], f"line {number}: no '='"
            if current is None:
                return [], f"line {number}: a setting before any section"
            key = name.strip()
            current[key] = value.strip()  # a repeated key: its last value, in its first place
    return [(name, [(k, _unquote(v)) for k, v in items.items()]) for name, items in sections.items()], ""


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def glibc_glob(pattern: str) -> str | None:
    """A glibc ``fnmatch(3)`` pattern (what libdnf matches with) as Python's fnmatch dialect: ``\\x`` is
    a literal x, ``[^…]`` negates like ``[!…]``, ``[[:alpha:]]`` and its kin are classes. None for a
    class vmsec does not spell (``[:punct:]``, ``[:cntrl:]`` …)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(f"[{nxt}]" if nxt in "*?[" else nxt)
            i += 2
            continue
        if c == "[":
            close = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^") else i + 1)
            while close > 0 and pattern[close - 1] == ":" and "[:" in pattern[i + 1:close]:
                close = pattern.find("]", close + 1)  # "]" of a [:class:] is not the set's end
            if close < 0:
                out.append("[[]")
                i += 1
                continue
            body = pattern[i + 1:close]
            if body.startswith("^"):
                body = "!" + body[1:]
            for name in re.findall(r"\[:([a-z]+):\]", body):
                if name not in _POSIX_CLASSES:
                    return None
                body = body.replace(f"[:{name}:]", _POSIX_CLASSES[name])
            out.append(f"[{body}]")
            i = close + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


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


def _mentions(entry: str, p: InstalledPackage) -> bool:
    """Whether an entry that does not match the installed package could match one of its other
    versions: its name part is the package's, or it starts with a glob (``*el9_5*``). An entry with
    a ``$`` (a variable dnf does not substitute here: ``*el$releasever``) matches no package."""
    if "$" in entry:
        return False
    return entry[:1] in "*?[" or any(fnmatchcase(p.name, n) for n in _names_in(entry))


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
        if _hides([pattern], versioned) or _mentions(pattern, p):
            state = "uncertain"
    return state


def _split_outside_brackets(pattern: str, sep: str) -> list[int]:
    """The positions of ``sep`` in a glob, outside its ``[…]`` sets."""
    out, depth = [], False
    for i, c in enumerate(pattern):
        if c == "[" and not depth:
            depth = True
        elif c == "]" and depth:
            depth = False
        elif c == sep and not depth:
            out.append(i)
    return out


def _selects(pattern: str, p: InstalledPackage, form: str) -> bool:
    """Whether ``pattern`` read in one of hawkey's forms selects the installed package ``p``."""
    name, epoch, version, release, arch = _parts(p)
    dashes, dots = _split_outside_brackets(pattern, "-"), _split_outside_brackets(pattern, ".")

    def ev_matches(ev: str) -> bool:
        e, colon, v = ev.partition(":")
        return fnmatchcase(epoch or "0", e) and fnmatchcase(version, v) if colon else fnmatchcase(version, ev)

    if form == "NA":
        dot = dots[-1] if dots else -1
        return dot > 0 and fnmatchcase(name, pattern[:dot]) and fnmatchcase(arch, pattern[dot + 1:])
    if form == "NAME":
        return fnmatchcase(name, pattern)
    if form == "NEV":
        dash = dashes[-1] if dashes else -1
        return dash > 0 and fnmatchcase(name, pattern[:dash]) and ev_matches(pattern[dash + 1:])
    if len(dashes) < 2:
        return False
    n, ev, rest = pattern[:dashes[-2]], pattern[dashes[-2] + 1:dashes[-1]], pattern[dashes[-1] + 1:]
    if form == "NEVR":
        return fnmatchcase(name, n) and ev_matches(ev) and fnmatchcase(release, rest)
    last_dot = rest.rfind(".") if "[" not in rest else -1  # NEVRA: the release, then the architecture
    return last_dot > 0 and fnmatchcase(name, n) and ev_matches(ev) and \
        fnmatchcase(release, rest[:last_dot]) and fnmatchcase(arch, rest[last_dot + 1:])


_FORMS = ("NEVRA", "NA", "NAME", "NEVR", "NEV")
_ARCHES = ("x86_64", "i686", "noarch", "aarch64", "ppc64le", "s390x", "src")


def _selection(pattern: str, rpms: list[InstalledPackage]) -> tuple[set[int], bool]:
    """The installed packages a main exclude or include entry selects, as dnf's ``Subject`` does:
    the first of its forms (NEVRA, NA, NAME, NEVR, NEV) that selects any package wins, then the
    whole NEVRA string as one glob. dnf decides the form on every package it knows, updates and
    packages not installed too; vmsec knows the installed ones — so the answer is certain (the
    second value) unless a ``name.arch`` reading that could name an uninstalled package
    (``python3.*``: a ``python3`` in a repository) came before the form that selected."""
    dots = _split_outside_brackets(pattern, ".")
    na_open = bool(dots) and any(fnmatchcase(a, pattern[dots[-1] + 1:]) for a in _ARCHES)
    for form in _FORMS:
        hit = {i for i, p in enumerate(rpms) if _selects(pattern, p, form)}
        if hit:
            return hit, form in ("NEVRA", "NA") or not na_open
    return {i for i, p in enumerate(rpms) if _hides([pattern], _forms(p)[1][-2:])}, True


def _main_state(main: Filters, p: InstalledPackage, excluded: bool, included: bool,
                versioned: list[str]) -> str | None:
    """What the main lists do to an installed package: "held" when an exclude selects it (dnf hides
    the installed package too: it is never upgraded) or includepkgs selects nothing of it;
    "uncertain" when an entry that selected nothing installed names another version of it."""
    if excluded:
        return "held"
    if main.include and not included:
        return "uncertain" if any(_mentions(e, p) for e in main.include) else "held"
    if any(_mentions(e, p) or _hides([e], versioned) for e in main.exclude):
        return "uncertain"
    return None


def _repo_state(f: Filters, p: InstalledPackage, names: list[str], versioned: list[str]) -> str | None:
    """What one repository's lists do to a package's updates (never to the installed package):
    "excluded" (its excludes hide them from that repository), "left out" (its includepkgs do),
    "uncertain" (an entry names some of its versions), or None."""
    if _hides(f.exclude, names):
        return "excluded"
    if f.include and not _hides(f.include, names + versioned):
        return "left out"
    if any(_mentions(e, p) or _hides([e], versioned) for e in f.exclude):
        return "uncertain"
    return None


def dnf_held_back(main: Filters, repos: Mapping[str, Filters], packages: tuple[InstalledPackage, ...] | None,
                  where: str, locks: list[str] | None = None, locks_from: str = "") -> HeldBack:
    """The installed rpm packages dnf's excludes keep from upgrade (see the module docstring); ``repos``
    are the enabled repositories by id (their ``disable_excludes`` already applied), ``where`` names the
    files for the messages; ``locks`` the versionlock plugin's entries when it is active (from
    ``locks_from``)."""
    main_on = not ({"main", "all"} & main.disabled)
    repo_filters = {rid: f if not ({rid, "all"} & main.disabled) else Filters() for rid, f in repos.items()}
    scopes = [main, *repo_filters.values()] if main_on else [*repo_filters.values()]
    locks = locks or []
    entries = [e for f in scopes for e in (*f.exclude, *f.include)] + locks
    if not entries:
        return HeldBack()
    if len(entries) > MAX_ENTRIES or any(len(e) > MAX_ENTRY_CHARS for e in entries):
        return HeldBack(unknown=f"more than {MAX_ENTRIES} exclude/include/versionlock entries, or one of "
                        f"more than {MAX_ENTRY_CHARS} characters, in {where}")
    translated = {e: glibc_glob(e.removeprefix("!")) for e in entries}
    if any(t is None for t in translated.values()):
        return HeldBack(unknown=f"an exclude or lock entry in {where} uses a character class vmsec does not "
                        "read")
    if packages is None:
        return HeldBack(unknown="the installed packages are unknown")
    rpms = [p for p in packages if p.manager == "rpm" and len(p.name) <= MAX_NAME_CHARS]
    if sum(map(len, entries)) * sum(len(p.name) + len(p.version) + 16 for p in rpms) > MAX_WORK:
        return HeldBack(unknown=f"too many exclude/include/versionlock entries in {where} for the installed "
                        "packages to be judged")
    main = _translated(main, translated)
    repo_filters = {rid: _translated(f, translated) for rid, f in repo_filters.items()}
    locks = [("!" if e.startswith("!") else "") + (translated[e] or "") for e in locks]
    arches: dict[str, set[str]] = {}
    for p in rpms:
        arches.setdefault(p.name, set()).add(p.arch or "")
    held: set[str] = set()
    locked: set[str] = set()
    uncertain: set[str] = set()
    excluded: set[int] = set()
    doubtful: set[int] = set()  # selected only if no uninstalled package answers an earlier form
    included: set[int] = set()
    if main_on:
        for entry in main.exclude:
            hit, certain = _selection(entry, rpms)
            (excluded if certain else doubtful).update(hit)
        for entry in main.include:
            included |= _selection(entry, rpms)[0]
    for i, p in enumerate(rpms):
        label = p.name if len(arches[p.name]) == 1 or not p.arch else f"{p.name}.{p.arch}"
        names, versioned = _forms(p)
        state = _main_state(main, p, i in excluded, i in included, versioned) if main_on else None
        state = "uncertain" if state is None and i in doubtful else state
        per_repo = [_repo_state(f, p, names, versioned) for f in repo_filters.values()]
        lock = _lock_state(locks, p)
        if state == "held" or (per_repo and all(s in ("excluded", "left out") for s in per_repo)):
            held.add(label)
        elif lock == "held":
            locked.add(label)
        # a repository's includepkgs leaving a package out is what vendors' repositories set: its
        # updates come from the others
        elif state or lock or any(s in ("excluded", "uncertain") for s in per_repo):
            uncertain.add(label)
    # the architectures of one name move in lockstep (multilib): one held holds the others
    for name, kinds in arches.items():
        if len(kinds) > 1 and any(f"{name}.{a}" in held | locked for a in kinds):
            held |= {f"{name}.{a}" for a in kinds} - locked
    if held or locked:
        every = sorted(held | locked)
        why = [f"dnf's excludes in {where} hide {them(len(held))}" if held else "",
               f"the versionlock plugin ({locks_from}) locks {them(len(locked))}" if locked else ""]
        return HeldBack(held=tuple(every[:MAX_NAMED]), held_count=len(every),
                        why="; ".join(w for w in why if w))
    if uncertain:
        ordered = sorted(uncertain)
        shown = ", ".join(ordered[:8]) + (f" and {len(ordered) - 8} more" if len(ordered) > 8 else "")
        return HeldBack(unknown=f"whether dnf's excludes or version locks ({where}) hold back the updates of "
                        f"{shown} depends on the repository or the version that carries them")
    return HeldBack()


def _translated(f: Filters, translated: Mapping[str, str | None]) -> Filters:
    out = Filters()
    out.lists = {"exclude": [translated[e] or "" for e in f.exclude],
                 "include": [translated[e] or "" for e in f.include], "disable": f.lists["disable"]}
    return out
