"""What systemd starts at the next boot: the start transaction of ``default.target``, walked as
systemd 252 builds it (``systemd-analyze verify --root DIR default.target`` is the oracle in the tests).

From default.target (usually an alias of graphical.target or multi-user.target), every unit that a
reached unit pulls in:

- ``Wants=``, ``Requires=``, ``BindsTo=`` and ``Upholds=`` in its unit file and drop-ins;
- links in its ``.wants/``, ``.requires/`` and ``.upholds/`` directories;
- sysinit.target for services, sockets, timers and paths with default dependencies, the slice it
  runs in (``Slice=``, else system.slice or, for an instance, ``system-PREFIX.slice``; a slice's
  parent slice), the sockets a service names in ``Sockets=``, and the mount units (with a file) of
  the paths ``RequiresMountsFor=`` names.

The directories and drop-ins of a unit are those of every name it has — its aliases, its template,
the dash-truncated prefixes (``a-b-.service.d`` for ``a-b-c.service``) and the type
(``service.d``). A name is looked up in the unit path (/etc/systemd/system.control,
/etc/systemd/system, /etc/systemd/system.attached, /usr/local/lib, /lib, /usr/lib; /run is empty at
the next boot), the first entry deciding, as in systemd's unit name map: a link to /dev/null or an
empty file masks the unit; a link to a unit directory names an alias, looked up by that name, when
systemd accepts the alias (same type, a type that may alias, a template for a template); a link out of
the unit path is a linked unit file. Dependency names are checked as systemd checks unit names
(characters, length), their specifiers filled in (``%i``, ``%p``, ``%j``, ``%u`` …; one that only the
running system knows, such as ``%H``, matches every unit name that fits), and a bare template named
as a dependency gets the unit's instance, or its prefix.

``Conflicts=`` is settled as the transaction settles it: of two started units, the one the anchor
requires keeps its start. Not modelled (docs/verdicts.md): ordering cycles, ``Requires=`` of a unit
that cannot load, conflicts where neither start matters (both stay listed), implicit mount
requirements (``WorkingDirectory=`` …), generators, udev, D-Bus and socket activation, the kernel
command line.

Work is bounded by the input: each directory is listed once, each file read and parsed once, and a
walk follows at most :data:`MAX_EDGES` dependencies and lists at most :data:`MAX_LINK_ENTRIES`
entries of dependency directories; past either, what was not read is recorded.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections import deque

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileKind, Service
from vmsec.parsers.system._common import (
    DIR_LIMIT,
    Errors,
    absent,
    is_symlink,
    link_target,
    list_dir,
    masked,
    read_optional,
    truthy,
    unreadable,
)
from vmsec.parsers.systemd_unit import Assignments, parse_unit
from vmsec.reading import Reader

ETC_UNITS = "/etc/systemd/system"
# systemd 252's system unit path in its order (`systemd-analyze unit-paths`; generators and transient
# units left out: they are made at boot from other files).
UNIT_DIRS = ("/etc/systemd/system.control", "/run/systemd/system.control", ETC_UNITS,
             "/etc/systemd/system.attached", "/run/systemd/system", "/run/systemd/system.attached",
             "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
# What the next boot loads: /run is an empty tmpfs then, so a runtime mask or unit there does not count.
BOOT_UNIT_DIRS = tuple(d for d in UNIT_DIRS if not d.startswith("/run/"))
_TYPES = ("service", "socket", "timer", "path", "target", "mount", "automount", "swap", "slice", "scope",
          "device")
UNIT_SUFFIXES = tuple(f".{t}" for t in _TYPES)
# What pulls a unit into the start transaction (systemd.unit(5)); Requisite=, PartOf=, After= do not.
PULLING_KEYS = frozenset({"Wants", "Requires", "BindsTo", "Upholds"})
_REQUIRING = frozenset({"Requires", "BindsTo"})
PULLING_DIRS = (".wants", ".requires", ".upholds")
# Units that, with DefaultDependencies=yes, require sysinit.target (systemd.service(5) and kin).
_SYSINIT_REQUIRED = (".service", ".socket", ".timer", ".path")
_IN_SLICE = {".service": "Service", ".socket": "Socket", ".mount": "Mount", ".swap": "Swap",
             ".scope": "Scope"}
_MAY_ALIAS = (".service", ".socket", ".target", ".device", ".timer", ".path")  # unit_type_may_alias()
# unit_name_is_valid(): the prefix's and the instance's characters, a known type, at most 255 bytes
_VALID_NAME = re.compile(r"[0-9A-Za-z:_.\\-]+(?:@[0-9A-Za-z:_.\\@-]*)?\.(?:" + "|".join(_TYPES) + r")\Z")
MAX_NAME = 255
_SPECIFIER = re.compile(r"%(.)")
# unit_name_printf()'s specifiers that depend on the running system (hostname, machine id, kernel …):
# a name using one matches every unit name that fits the rest.
_RUNTIME_SPECIFIERS = frozenset("aAbBHlmMoqvwW")
MAX_LINK_HOPS = 8
MAX_DROPINS = 64
MAX_SERVICES = 20_000
MAX_EDGES = 100_000  # dependencies one walk follows; a real system has a few thousand
MAX_LINK_ENTRIES = 100_000  # entries of dependency directories one read lists


def valid_name(name: str) -> bool:
    """Whether systemd accepts ``name`` as a unit name (``unit_name_is_valid``)."""
    return len(name) <= MAX_NAME and _VALID_NAME.match(name) is not None


def _split(name: str) -> tuple[str, str | None, str]:
    """(prefix, instance — "" for a template, None for a plain name —, ".type")."""
    stem, _, kind = name.rpartition(".")
    prefix, at, instance = stem.partition("@")
    return prefix, instance if at else None, f".{kind}"


def _template(name: str) -> tuple[str, str] | None:
    """(template, instance) of an instance name: ``getty@tty1.service`` → (``getty@.service``, ``tty1``)."""
    prefix, instance, kind = _split(name)
    return (f"{prefix}@{kind}", instance) if instance else None


def _instantiate(dependency: str, unit: str) -> str:
    """A bare template named as a dependency gets the unit's instance, or else its prefix
    (systemd's ``resolve_template``): ``evil@.service`` in multi-user.target.wants is
    ``evil@multi-user.service``."""
    prefix, instance, kind = _split(dependency)
    if instance != "":
        return dependency
    unit_prefix, unit_instance, _ = _split(unit)
    return f"{prefix}@{unit_instance or unit_prefix}{kind}"


def _names_of(name: str) -> list[str]:
    """The names whose drop-ins and dependency directories apply to a unit besides its own: its
    template, the dash-truncated prefixes (``a-b-.service`` for ``a-b-c.service``) and its type."""
    prefix, instance, kind = _split(name)
    names = [name] if instance is None else [name, f"{prefix}@{kind}"]
    dash = prefix.rfind("-", 0, len(prefix) - 1)
    while dash > 0:
        names.append(f"{prefix[:dash + 1]}{kind}")
        dash = prefix.rfind("-", 0, dash)
    names.append(kind[1:])
    return names


def _expand(value: str, unit: str) -> str | None:
    """A dependency name with the unit's specifiers filled in as ``unit_name_printf`` fills them for
    the system manager; a specifier only the running system knows becomes ``*``. None when systemd
    refuses the name ("Failed to resolve unit specifiers", an invalid name)."""
    if "%" in value:
        prefix, instance, kind = _split(unit)
        values = {"i": instance or "", "n": unit, "N": unit[:-len(kind)], "p": prefix,
                  "j": prefix.rpartition("-")[2], "u": "root", "g": "root", "U": "0", "G": "0", "%": "%"}
        refused = False

        def fill(match: re.Match[str]) -> str:
            nonlocal refused
            letter = match.group(1)
            if letter in values:
                return values[letter]
            if letter in _RUNTIME_SPECIFIERS:
                return "*"
            refused = True
            return ""

        value = _SPECIFIER.sub(fill, value)
        if refused:
            return None
    return value if valid_name(value.replace("*", "x")) else None


class _UnitPath:
    """The boot unit directories, each listed once: whether ``directory/name`` exists is then a set
    lookup, not a stat. A directory that could not be listed (denied, over the cap: recorded) is asked
    with a stat instead. Files are read and parsed once, whichever units load them."""

    def __init__(self, reader: Reader, errors: Errors | None) -> None:
        self.reader = reader
        self.errors = errors
        self.names: dict[str, frozenset[str] | None] = {}
        self._links: dict[str, list[tuple[str, str]]] = {}
        self._aliases: dict[str, list[str]] | None = None
        self._parsed: dict[str, Assignments] = {}
        self._listed_entries = 0
        self._over_budget = False  # the entry budget is spent (said once)
        for directory in BOOT_UNIT_DIRS:
            try:
                self.names[directory] = frozenset(reader.listdir(directory, DIR_LIMIT))
            except ReadError as exc:
                if absent(exc):
                    self.names[directory] = frozenset()
                else:
                    unreadable(errors, exc)
                    self.names[directory] = None

    def has(self, directory: str, name: str) -> bool:
        names = self.names[directory]
        if names is None:
            try:
                return bool(self.reader.stat(f"{directory}/{name}", follow=False).exists)
            except ValueError:  # a name no file can have
                return False
        return name in names

    def matching(self, pattern: str) -> list[str]:
        """Unit names in the unit path that ``pattern`` (with ``*``) matches."""
        found: dict[str, None] = {}
        for names in self.names.values():
            for name in sorted(names or ()):
                if fnmatch.fnmatchcase(name, pattern) and valid_name(name):
                    found.setdefault(name)
        return list(found)

    def parsed(self, path: str) -> Assignments | None:
        """The assignments of a unit file or drop-in (None: absent or unreadable, recorded), read and
        parsed once per file it resolves to."""
        key = _follow(self.reader, path) or path
        if key not in self._parsed:
            text = read_optional(self.reader, path, self.errors)
            if text is None:
                return None
            self._parsed[key] = parse_unit(text)
        return self._parsed[key]

    def links(self, *dir_names: str) -> list[tuple[str, str]]:
        """(unit, link) for each entry of the ``dir_names`` (``multi-user.target.wants``, and the same
        kind of directory of the unit's other names) in the unit path that starts a unit. Under one
        name, an entry in an earlier directory hides a same-named one later (as drop-ins do): a link
        to /dev/null cancels that one dependency, not the unit; an entry that is no symlink is
        ignored ("is not a symlink, ignoring"), and so is a name systemd refuses; a bare template
        gets the owner's prefix. The unit is the link's name: where it points does not matter.
        Between two names of one unit systemd lets the order of its hash tables decide which
        same-named entry wins ("Skipping overridden file"): a link under any name counts here."""
        out: dict[str, str] = {}
        for dir_name in dir_names:
            for unit, link in self._links_of(dir_name):
                out.setdefault(unit, link)
        return list(out.items())

    def _links_of(self, dir_name: str) -> list[tuple[str, str]]:
        known = self._links.get(dir_name)
        if known is not None:
            return known
        owner = dir_name[:dir_name.rfind(".")]
        winners: dict[str, str] = {}
        for directory in BOOT_UNIT_DIRS:
            if not self.has(directory, dir_name):
                continue
            wants = f"{directory}/{dir_name}"
            if self.reader.stat(wants).kind != FileKind.DIRECTORY:
                continue
            if self._listed_entries >= MAX_LINK_ENTRIES:
                if not self._over_budget:
                    unreadable(self.errors, ReadError(
                        wants, f"more than {MAX_LINK_ENTRIES} entries in dependency directories; this and "
                        "later ones were not read", ErrorKind.TOO_LARGE))
                self._over_budget = True
                break
            entries = list_dir(self.reader, wants, self.errors)
            self._listed_entries += len(entries)
            for unit in entries:
                winners.setdefault(unit, f"{wants}/{unit}")
        out = [(_instantiate(unit, owner), link) for unit, link in winners.items()
               if valid_name(unit) and is_symlink(self.reader, link) and not masked(self.reader, link)]
        self._links[dir_name] = out
        return out

    def dependency_dirs(self) -> list[str]:
        """Every ``*.wants``/``*.requires``/``*.upholds`` name in the unit path."""
        return [entry for entry in self._configured() if entry.endswith(PULLING_DIRS)]

    def _configured(self) -> list[str]:
        """The dependency and drop-in directory names (``foo.service.wants``, ``foo.service.d``)."""
        names: dict[str, None] = {}
        for directory in BOOT_UNIT_DIRS:
            listed = self.names[directory]
            for entry in sorted(listed) if listed is not None else list_dir(self.reader, directory, None):
                if entry.endswith((*PULLING_DIRS, ".d")):
                    names.setdefault(entry)
        return list(names)

    def aliases(self) -> dict[str, list[str]]:
        """unit -> its other names that have dependency or drop-in directories: systemd reads those of
        every name a unit has (``alias.target.wants/`` counts for the unit it aliases), whichever name
        the boot reaches it by. Only names with such a directory are resolved."""
        if self._aliases is None:
            self._aliases = {}
            for entry in self._configured():
                name = entry[:entry.rfind(".")]
                if not valid_name(name):
                    continue
                own, path, _masked = resolve(self, name)
                if path is not None and own != name and name not in self._aliases.get(own, ()):
                    self._aliases.setdefault(own, []).append(name)
        return self._aliases


def _follow(reader: Reader, path: str) -> str | None:
    """The path in the root where the chain of symlinks from ``path`` ends (None: a loop)."""
    for _ in range(MAX_LINK_HOPS):
        target = link_target(reader, path)
        if target is None:
            return path
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return None


def _alias_accepted(name: str, own: str) -> bool:
    """Whether systemd accepts a link from ``name`` to ``own`` as an alias
    (``unit_validate_alias_symlink_or_warn``): the same type, one that may alias, and names of the
    same kind — an instance may alias its own instance or a template."""
    _, instance, kind = _split(name)
    _, own_instance, own_kind = _split(own)
    if kind != own_kind or kind not in _MAY_ALIAS:
        return False
    if instance is None or instance == "":
        return own_instance == instance
    return own_instance in ("", instance)


def resolve(units: _UnitPath, name: str) -> tuple[str, str | None, bool]:
    """(the unit's own name, the file systemd loads it from — None when found nowhere —, whether it is
    masked) for a name as a dependency gives it. The first entry in the unit path decides, as in
    systemd's unit name map: a link to /dev/null or an empty file masks; a link into the unit path
    names another unit — ``name`` is its alias, looked up by that name (a template's alias keeps the
    instance), whether or not the file is where the link points — when systemd accepts the alias, and
    is passed over when it does not ("rejecting"); a link out of the unit path is a linked unit file,
    loaded from where the links end; a dangling link is passed over. An instance without an entry of
    its own is its template's."""
    reader = units.reader
    template = _template(name)
    for candidate in (name,) if template is None else (name, template[0]):
        for directory in BOOT_UNIT_DIRS:
            if not units.has(directory, candidate):
                continue
            path = f"{directory}/{candidate}"
            target = link_target(reader, path)
            if target is None:
                info = reader.stat(path, follow=False)
                if info.kind != FileKind.FILE:
                    continue
                return name, path, info.size == 0
            destination = posixpath.normpath(posixpath.join(directory, target))
            if destination == "/dev/null":
                return name, path, True
            where, own = posixpath.split(destination)
            if own != candidate and any(where == d or where.startswith(f"{d}/") for d in UNIT_DIRS):
                if not _alias_accepted(candidate, own):
                    continue
                if template is not None and candidate != name and _split(own)[1] == "":
                    own = _instantiate(own, name)
                return own, path, False
            final = _follow(reader, path)
            linked = reader.stat(final) if final is not None else None
            if linked is None or linked.kind != FileKind.FILE:
                continue
            return name, path, final == "/dev/null" or linked.size == 0
    return name, None, False


def default_target(units: _UnitPath) -> str | None:
    """The unit default.target is (following aliases); None when it is missing or masked."""
    name = "default.target"
    for _ in range(MAX_LINK_HOPS):
        own, path, is_masked = resolve(units, name)
        if path is None or is_masked:
            return None
        if own == name:
            return own
        name = own
    return None


def boot_texts(units: _UnitPath, names: list[str], path: str | None) -> list[tuple[str, Assignments]]:
    """(path, assignments) of a unit file and then the drop-ins of all its names, in the order systemd
    applies them: by file name, a drop-in of a more specific name (the unit's own before its prefix
    and type) or of an earlier directory hiding a same-named one."""
    texts: list[tuple[str, Assignments]] = []
    if path is not None and (own := units.parsed(path)) is not None:
        texts.append((path, own))
    dropins: dict[str, str] = {}
    for name in names:
        for directory in BOOT_UNIT_DIRS:
            if not units.has(directory, f"{name}.d"):
                continue
            dropdir = f"{directory}/{name}.d"
            for entry in list_dir(units.reader, dropdir, units.errors, limit=MAX_DROPINS)[:MAX_DROPINS]:
                if entry.endswith(".conf"):
                    dropins.setdefault(entry, f"{dropdir}/{entry}")
    for entry in sorted(dropins):
        if (assignments := units.parsed(dropins[entry])) is not None:
            texts.append((dropins[entry], assignments))
    return texts


def exec_start(texts: list[tuple[str, Assignments]]) -> str | None:
    """The unit's ``ExecStart=`` lines joined (an empty assignment resets the list)."""
    commands: list[str] = []
    for _path, assignments in texts:
        for section, key, value in assignments:
            if section == "Service" and key == "ExecStart":
                if value:
                    commands.append(value)
                else:
                    commands.clear()
    return "; ".join(commands) if commands else None


def _slice_of(name: str, texts: list[tuple[str, Assignments]]) -> str | None:
    """The slice a unit runs in: its ``Slice=``, else system.slice (``system-PREFIX.slice`` for an
    instance); a slice's parent (``a-b.slice`` → ``a.slice`` → ``-.slice``)."""
    kind = name[name.rfind("."):]
    if kind == ".slice":
        if name == "-.slice":
            return None
        stem = name[:-len(kind)]
        return f"{stem[:stem.rfind('-')]}.slice" if "-" in stem else "-.slice"
    section = _IN_SLICE.get(kind)
    if section is None:
        return None
    chosen = None
    for _path, assignments in texts:
        for found_section, key, value in assignments:
            if found_section == section and key == "Slice":
                chosen = value or None
    if chosen is not None:
        return chosen
    prefix, instance, _ = _split(name)
    return f"system-{prefix}.slice" if instance else "system.slice"


def _path_escape(parts: list[str]) -> str:
    """systemd's ``unit_name_path_escape`` of a path's components, joined by ``-``: ``/srv/my-data`` →
    ``srv-my\\x2ddata`` (a leading dot and every byte outside ``[A-Za-z0-9:_.]`` as ``\\xNN``)."""
    text = "/".join(parts)
    out = []
    for i, c in enumerate(text):
        if c == "/":
            out.append("-")
        elif c.isascii() and (c.isalnum() or c in ":_.") and not (i == 0 and c == "."):
            out.append(c)
        else:
            out.append("".join(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogateescape")))
    return "".join(out)


def mask_origin(reader: Reader, path: str) -> str:
    target = link_target(reader, path)
    return f"{path} -> {target} (masked)" if target is not None else f"{path} is empty (masked)"


class _Walk:
    """The start transaction of default.target at the next boot, as systemd 252 builds it: the units
    it pulls in, then the conflicts it resolves (systemd's transaction.c)."""

    def __init__(self, units: _UnitPath) -> None:
        self.units = units
        self.found: dict[str, Service] = {}
        self.reached: set[str] = set()  # every name looked up, aliases included
        self.consulted: set[str] = set()  # every dependency directory name read
        self.aliases: dict[str, list[str]] = {}
        self.own: dict[str, str] = {}  # name as a dependency gives it -> the unit's own name
        self.hops: dict[str, int] = {}  # alias links followed to reach a unit's own name
        # unit -> (dependency name, whether it requires it: Requires=, BindsTo=, .requires/)
        self.pulls: dict[str, list[tuple[str, bool]]] = {}
        self.conflicts: dict[str, list[str]] = {}
        self.edges = 0

    def run(self, start: str) -> None:
        # (name, why, from a wants/ link, the unit that pulls it in, whether that one requires it)
        queue: deque[tuple[str, str, bool, str, bool]] = deque([(start, start, False, "", True)])
        while queue:
            name, why, by_link, parent, required = queue.popleft()
            if parent:
                self.pulls.setdefault(parent, []).append((name, required))
            if name in self.reached:
                continue
            if len(self.reached) >= MAX_SERVICES:
                unreadable(self.units.errors, ReadError(
                    start, f"more than {MAX_SERVICES} units started at boot; the rest was not read",
                    ErrorKind.TOO_LARGE))
                break
            self.reached.add(name)
            own, path, is_masked = resolve(self.units, name)
            self.own[name] = own
            if own != name:  # an alias: the unit itself (its dependency directories count with it)
                hops = self.hops.get(name, 0) + 1
                if hops >= MAX_LINK_HOPS:  # systemd: "Too many levels of symbolic links", nothing loads
                    continue
                self.hops.setdefault(own, hops)
                self.aliases.setdefault(own, []).append(name)
                queue.appendleft((own, f"{why} ({name} is an alias of {own}: {path})", by_link, "", True))
                continue
            if is_masked:  # systemd.unit(5): a unit linked to /dev/null or empty is masked
                self.found[name] = Service(name=name, manager="systemd", enabled=False,
                                           origin=mask_origin(self.units.reader, path or name))
                continue
            if path is None and not name.endswith(".slice"):  # slices load without a file of their own
                if by_link:  # the link is there, but nothing can be started from it
                    target = link_target(self.units.reader, why)
                    self.found[name] = Service(name=name, manager="systemd", enabled=None,
                                               origin=f"{why} -> {target} (unit file not found)")
                continue
            every_name = (name, *self.aliases.get(name, ()), *self.units.aliases().get(name, ()))
            names = list(dict.fromkeys(n for alias in every_name for n in _names_of(alias)))
            texts = boot_texts(self.units, names, path)
            queue.extend(self._dependencies(name, path, names, texts))
            self.found[name] = Service(name=name, manager="systemd", enabled=True, origin=why,
                                       exec_start=exec_start(texts))
        self._resolve_conflicts(start)

    def _dependencies(self, name: str, path: str | None, names: list[str],
                      texts: list[tuple[str, Assignments]]) -> list[tuple[str, str, bool, str, bool]]:
        """What ``name`` pulls in, each dependency once (requiring when any mention requires it)."""
        if self.edges >= MAX_EDGES:
            return []
        deps: dict[str, tuple[str, bool, bool]] = {}  # name -> (why, by a link, required)

        def add(dep: str, why: str, by_link: bool, required: bool) -> None:
            known = deps.get(dep)
            if known is None:
                deps[dep] = (why, by_link, required)
            elif required and not known[2]:
                deps[dep] = (known[0], known[1], True)

        default_dependencies = True
        for source, assignments in texts:
            for section, key, value in assignments:
                if section == "Unit" and (key in PULLING_KEYS or key == "Conflicts"):
                    for word in dict.fromkeys(value.split()):
                        for dep in self._named(word, name, path):
                            if key == "Conflicts":
                                self.conflicts.setdefault(name, []).append(dep)
                            else:
                                add(dep, f"{source}: {key}={word}", False, key in _REQUIRING)
                elif section == "Unit" and key == "DefaultDependencies":
                    default_dependencies = truthy(value) is not False
                elif section == "Service" and key == "Sockets":
                    for word in dict.fromkeys(value.split()):
                        for dep in self._named(word, name):
                            add(dep, f"{source}: Sockets={word}", False, False)
                elif section == "Unit" and key == "RequiresMountsFor":
                    for where in dict.fromkeys(value.split()):
                        for dep in self._mounts_for(where):
                            add(dep, f"{source}: RequiresMountsFor={where}", False, True)
        if default_dependencies and name.endswith(_SYSINIT_REQUIRED):
            add("sysinit.target", f"{path}: DefaultDependencies=yes", False, True)
        slice_name = _slice_of(name, texts)
        if slice_name is not None and valid_name(slice_name):
            add(slice_name, f"{path or name}: runs in {slice_name}", False, True)
        for kind in PULLING_DIRS:
            dir_names = [f"{n}{kind}" for n in names]
            self.consulted.update(dir_names)
            for dep, link in self.units.links(*dir_names):
                add(_instantiate(dep, name), link, True, kind == ".requires")
        out = [(dep, why, by_link, name, required) for dep, (why, by_link, required) in deps.items()]
        self.edges += len(out)
        if self.edges >= MAX_EDGES:
            unreadable(self.units.errors, ReadError(
                path or name, f"more than {MAX_EDGES} dependencies among the units started at boot; the "
                "rest was not followed", ErrorKind.TOO_LARGE))
        return out

    def _named(self, word: str, unit: str, path: str | None = None) -> list[str]:
        """The unit names a dependency word stands for (none when systemd refuses it, or drops it as
        a template's dependency on an ever longer instance of itself)."""
        expanded = _expand(word, unit)
        if expanded is None:
            return []
        if "*" in expanded:
            return [_instantiate(n, unit) for n in self.units.matching(expanded)]
        if path is not None and self._recursive(word, expanded, unit, path):
            return []
        return [_instantiate(expanded, unit)]

    def _recursive(self, word: str, expanded: str, unit: str, path: str) -> bool:
        """systemd's ``unit_is_likely_recursive_template_dependency``: ``t@.service`` wanting
        ``t@%n.service`` (or ``t@%i%i``, ``t@x%i``) — the same template, its instance built from a
        specifier that holds the unit's instance — would instantiate without end, and is dropped."""
        prefix, instance, kind = _split(expanded)
        unit_prefix, _, unit_kind = _split(unit)
        if not instance or prefix != unit_prefix or kind != unit_kind:
            return False
        at = word.find("@")
        dot = word.rfind(".")
        part = word[at + 1:dot if dot > at else len(word)]
        if part == "%i" or not re.search(r"(?<!%)(?:%%)*%[inN]", part):
            return False
        return resolve(self.units, expanded)[1] == path

    def _mounts_for(self, where: str) -> list[str]:
        """The mount units (with a file in the unit path) of a path and of every directory above it:
        ``RequiresMountsFor=/srv/data`` requires srv.mount and srv-data.mount where they exist."""
        if not where.startswith("/") or "%" in where or len(where) > 4096:
            return []
        parts = [p for p in where.split("/") if p and p != "."]
        if ".." in parts:
            return []
        names = ["-.mount", *(f"{_path_escape(parts[:n + 1])}.mount" for n in range(len(parts)))]
        return [n for n in names if valid_name(n) and resolve(self.units, n)[1] is not None]

    def _own_name(self, name: str) -> str:
        for _ in range(MAX_LINK_HOPS):
            own = self.own.get(name, name)
            if own == name:
                break
            name = own
        return name

    def _started_from(self, start: str, *, required_only: bool, skip: set[str]) -> set[str]:
        seen: set[str] = set()
        todo = [self._own_name(start)]
        while todo:
            unit = todo.pop()
            if unit in seen or unit in skip or not (svc := self.found.get(unit)) or not svc.enabled:
                continue
            seen.add(unit)
            todo += [self._own_name(dep) for dep, required in self.pulls.get(unit, ())
                     if required or not required_only]
        return seen

    def _resolve_conflicts(self, start: str) -> None:
        """``Conflicts=`` between two started units: the transaction keeps the start that matters to
        default.target (reached from it through requirements alone) and drops the other, with every
        unit only that one pulled in (multi-user.target drops rescue.target a Wants= names). When
        neither matters, systemd keeps one of the two by the order of its hash tables: both stay
        listed — a service that may start is not passed."""
        if not self.conflicts:
            return
        started = self._started_from(start, required_only=False, skip=set())
        matters = self._started_from(start, required_only=True, skip=set())
        dropped: dict[str, str] = {}
        for unit in started:
            for name in self.conflicts.get(unit, ()):
                other = self._own_name(name)
                if other not in started or other == unit:
                    continue
                if unit in matters and other not in matters:
                    dropped[other] = unit
                elif other in matters and unit not in matters:
                    dropped[unit] = other
        if not dropped:
            return
        kept = self._started_from(start, required_only=False, skip=set(dropped))
        for unit in started - kept:
            svc = self.found[unit]
            why = (f"{dropped[unit]} conflicts with it" if unit in dropped
                   else "only units a conflict keeps from starting pull it in")
            self.found[unit] = Service(name=unit, manager="systemd", enabled=False, exec_start=svc.exec_start,
                                       origin=f"{svc.origin}; not started at boot: {why}")


def systemd_services(reader: Reader, errors: Errors | None) -> dict[str, Service]:
    """The units the next boot starts (``enabled=True``), the masked and not-started ones that are
    linked or named (``False``), and links to units found nowhere (``None``); see the module."""
    units = _UnitPath(reader, errors)
    default = default_target(units)
    found: dict[str, Service]
    if default is not None:
        walk = _Walk(units)
        walk.run("default.target")
        found = walk.found
        # A unit linked only into a target the boot does not reach does not start (until someone
        # isolates that target): listed as not enabled, saying where it is linked.
        reached = walk.reached | {alias for own, aliases in units.aliases().items() if own in walk.reached
                                  for alias in aliases}
        for dir_name in units.dependency_dirs():
            owner = dir_name[:dir_name.rfind(".")]
            if owner in reached or dir_name in walk.consulted:
                continue
            for unit, link in units.links(dir_name):
                if unit not in found and unit not in walk.reached:
                    found[unit] = Service(name=unit, manager="systemd", enabled=False,
                                          origin=f"{link}: {owner} is not started at boot (default.target "
                                          f"is {default})")
    else:  # no default.target: every link counts (a partial tree must not pass a service)
        found = _every_link(units)
    for entry in list_dir(reader, ETC_UNITS, errors):
        if not entry.endswith(UNIT_SUFFIXES) or entry in found:
            continue
        path = f"{ETC_UNITS}/{entry}"
        if masked(reader, path):
            found[entry] = Service(name=entry, manager="systemd", enabled=False,
                                   origin=mask_origin(reader, path))
    return found


def _every_link(units: _UnitPath) -> dict[str, Service]:
    """Every unit linked in a ``.wants/``, ``.requires/`` or ``.upholds/`` directory, as enabled."""
    reader, found = units.reader, dict[str, Service]()
    for dir_name in units.dependency_dirs():
        for unit, link in units.links(dir_name):
            if unit in found:
                continue
            if len(found) >= MAX_SERVICES:
                unreadable(units.errors, ReadError(link, f"more than {MAX_SERVICES} units; the rest was "
                                                   "not read", ErrorKind.TOO_LARGE))
                return found
            _own, unit_path, is_masked = resolve(units, unit)
            if is_masked:
                found[unit] = Service(name=unit, manager="systemd", enabled=False,
                                      origin=mask_origin(reader, unit_path or unit))
            elif unit_path is None:
                found[unit] = Service(name=unit, manager="systemd", enabled=None,
                                      origin=f"{link} -> {link_target(reader, link)} (unit file not found)")
            else:
                found[unit] = Service(name=unit, manager="systemd", enabled=True, origin=link,
                                      exec_start=exec_start(boot_texts(units, _names_of(unit), unit_path)))
    return found


def unit_settings(reader: Reader, name: str,
                  errors: Errors | None) -> tuple[str, list[tuple[str, Assignments]]] | None:
    """(the unit file systemd would load for ``name`` at the next boot, then (path, assignments) of
    that file and its drop-ins in the order systemd applies them); None when the unit is found
    nowhere or masked (:func:`resolve` decides, with one listing of the unit path for both)."""
    units = _UnitPath(reader, errors)
    _own, path, is_masked = resolve(units, name)
    if path is None or is_masked:
        return None
    return path, boot_texts(units, _names_of(name), path)
