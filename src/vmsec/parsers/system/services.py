"""Which services a root starts at boot: systemd, inetd, xinetd, SysV rc links and OpenRC.

systemd: the services listed as enabled are the units of the start transaction of ``default.target``
at the next boot, found as systemd 252 builds it (``systemd-analyze verify --root DIR default.target``
is the oracle in the tests): from default.target (usually an alias of graphical.target or
multi-user.target), every unit that a reached unit pulls in — ``Wants=``, ``Requires=``, ``BindsTo=``
and ``Upholds=`` in its unit file and drop-ins (``<unit>.d/*.conf``), links in its ``.wants/``,
``.requires/`` and ``.upholds/`` directories, and sysinit.target for services, sockets, timers and
paths with default dependencies. A unit name is looked up in the unit path (/etc/systemd/system.control,
/etc/systemd/system, /etc/systemd/system.attached, /usr/local/lib, /lib, /usr/lib; /run is empty at
the next boot), the first entry deciding: a link to /dev/null or an empty file masks the unit, and a
link to a unit of another name makes the name an alias (``display-manager.service`` → gdm3.service),
listed under the unit's own name. Presets are not state and are not read.

Listed besides: a unit linked into the ``.wants/`` of a target the boot does not reach
(rescue.target, graphical.target on a multi-user server) with ``enabled=False`` and an origin that
says so; a masked unit with ``enabled=False``; a wants link in a reached unit whose unit file exists
nowhere with ``enabled=None``. When default.target itself cannot be found, every unit linked in any
``.wants/`` or ``.requires/`` counts as enabled, as before the walk: a scan of a partial tree must not
pass a service because a target file is missing. A unit's ``ExecStart`` comes from its unit file and
drop-ins (an empty ``ExecStart=`` resets the list).

A unit that nothing starts is not listed: absence from the result means "not enabled".

inetd and xinetd entries say that the super-server would start the service; whether the
super-server itself is enabled is its own entry.
"""

from __future__ import annotations

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
    lines,
    link_target,
    list_dir,
    masked,
    read_optional,
    truthy,
    unreadable,
)
from vmsec.parsers.systemd_unit import parse_unit
from vmsec.reading import Reader

ETC_UNITS = "/etc/systemd/system"
# systemd 252's system unit path in its order (`systemd-analyze unit-paths`; generators and transient
# units left out: they are made at boot from other files).
UNIT_DIRS = ("/etc/systemd/system.control", "/run/systemd/system.control", ETC_UNITS,
             "/etc/systemd/system.attached", "/run/systemd/system", "/run/systemd/system.attached",
             "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
# What the next boot loads: /run is an empty tmpfs then, so a runtime mask or unit there does not count.
BOOT_UNIT_DIRS = tuple(d for d in UNIT_DIRS if not d.startswith("/run/"))
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".target", ".mount", ".automount",
                 ".swap", ".slice", ".scope", ".device")
# What pulls a unit into the start transaction (systemd.unit(5)); Requisite=, PartOf=, After= do not.
PULLING_KEYS = frozenset({"Wants", "Requires", "BindsTo", "Upholds"})
PULLING_DIRS = (".wants", ".requires", ".upholds")
# Units that, with DefaultDependencies=yes, require sysinit.target (systemd.service(5) and kin).
_SYSINIT_REQUIRED = (".service", ".socket", ".timer", ".path")
_SPECIFIER = re.compile(r"%(.)")
MAX_LINK_HOPS = 8
MAX_DROPINS = 64
MAX_SERVICES = 20_000
_RC_DIRS = ("/etc/rc1.d", "/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d", "/etc/rcS.d")
_RC_START = re.compile(r"^S\d{2}(.+)$")
_XINETD_SERVICE = re.compile(r"^(?:service\s+(\S+)|(defaults)\b)")


def unit_file(reader: Reader, name: str) -> str | None:
    """The unit file systemd would load for ``name`` at the next boot; None when there is none, or
    when the unit is masked (:func:`unit_state`)."""
    path, is_masked = unit_state(reader, name)
    return None if is_masked else path


def unit_texts(reader: Reader, name: str, unit_path: str, errors: Errors | None) -> list[tuple[str, str]]:
    """(path, text) of a unit file and then its drop-ins at the next boot (``name.d/*.conf``; /run is
    empty then), in the order systemd applies them (a drop-in in an earlier directory overrides a
    same-named one in a later directory)."""
    return _boot_texts(_UnitPath(reader, errors), [name], unit_path)


def _exec_start(texts: list[tuple[str, str]]) -> str | None:
    """The unit's ``ExecStart=`` lines joined (an empty assignment resets the list)."""
    commands: list[str] = []
    for _path, body in texts:
        for section, key, value in parse_unit(body):
            if section == "Service" and key == "ExecStart":
                if value:
                    commands.append(value)
                else:
                    commands.clear()
    return "; ".join(commands) if commands else None


def unit_state(reader: Reader, name: str) -> tuple[str | None, bool]:
    """(the unit file systemd would load for ``name`` at the next boot, whether the unit is masked then;
    /run is not read): :func:`_resolve`'s answer — the first entry in systemd's search order decides; a
    mask there (a link to /dev/null, relative too, or an empty file) masks the unit whatever comes
    later; a dangling link is passed over; an instance without an entry of its own is its template's
    (``getty@.service`` masked masks ``getty@tty1.service``)."""
    _own, path, is_masked = _resolve(_UnitPath(reader, None), name)
    return path, is_masked


class _UnitPath:
    """The boot unit directories, each listed once: whether ``directory/name`` exists is then a set
    lookup, not a stat (the walk asks it a few dozen times per unit). A directory that could not be
    listed (denied, over the cap: recorded) is asked with a stat instead."""

    def __init__(self, reader: Reader, errors: Errors | None) -> None:
        self.reader = reader
        self.errors = errors
        self.names: dict[str, frozenset[str] | None] = {}
        self._links: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self._aliases: dict[str, list[str]] | None = None
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
            return bool(self.reader.stat(f"{directory}/{name}", follow=False).exists)
        return name in names

    def links(self, *dir_names: str) -> list[tuple[str, str]]:
        """(unit, link) for each entry of the ``dir_names`` (``multi-user.target.wants``, and the same
        kind of directory of the unit's other names) in the unit path that starts a unit. Under one
        name, an entry in an earlier directory hides a same-named one later (as drop-ins do): a link
        to /dev/null cancels that one dependency, not the unit; an entry that is no symlink is
        ignored ("is not a symlink, ignoring"), and so is a bare template (nothing to start). The
        unit is the link's name: where it points does not matter. Between two names of one unit
        systemd lets the order of its hash tables decide which same-named entry wins ("Skipping
        overridden file"): a link under any name counts here — a mask under an alias's name may or
        may not cancel it."""
        known = self._links.get(dir_names)
        if known is not None:
            return known
        out: dict[str, str] = {}
        for dir_name in dir_names:
            winners: dict[str, str] = {}
            for directory in BOOT_UNIT_DIRS:
                if not self.has(directory, dir_name):
                    continue
                wants = f"{directory}/{dir_name}"
                if self.reader.stat(wants).kind != FileKind.DIRECTORY:
                    continue
                for unit in list_dir(self.reader, wants, self.errors):
                    if unit.endswith(UNIT_SUFFIXES):
                        winners.setdefault(unit, f"{wants}/{unit}")
            for unit, link in winners.items():
                if unit not in out and "@." not in unit and is_symlink(self.reader, link) \
                        and not masked(self.reader, link):
                    out[unit] = link
        self._links[dir_names] = list(out.items())
        return self._links[dir_names]

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
                if not name.endswith(UNIT_SUFFIXES):
                    continue
                own, path, _masked = _resolve(self, name)
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


def _template(name: str) -> tuple[str, str] | None:
    """(template, instance) of an instance name: ``getty@tty1.service`` → (``getty@.service``, ``tty1``)."""
    prefix, at, rest = name.partition("@")
    if not at or rest.startswith("."):
        return None
    dot = rest.rfind(".")
    return f"{prefix}@{rest[dot:]}", rest[:dot]


def _resolve(units: _UnitPath, name: str) -> tuple[str, str | None, bool]:
    """(the unit's own name, the file systemd loads it from — None when found nowhere —, whether it is
    masked) for a name as a dependency gives it. The first entry in the unit path decides, as in
    systemd's unit name map: a link to /dev/null or an empty file masks; a link into a unit directory
    names another unit — ``name`` is its alias, looked up by that name (a template's alias keeps the
    instance), whether or not the file is where the link points —; a link out of the unit path is a
    linked unit file, loaded from where the links end; a dangling link is passed over. An instance
    without an entry of its own is its template's."""
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
            if where in UNIT_DIRS and own != candidate and own.endswith(UNIT_SUFFIXES):
                if template is not None and candidate != name and "@." in own:
                    own = own.replace("@.", f"@{template[1]}.", 1)
                return own, path, False
            final = _follow(reader, path)
            linked = reader.stat(final) if final is not None else None
            if linked is None or linked.kind != FileKind.FILE:
                continue
            return name, path, final == "/dev/null" or linked.size == 0
    return name, None, False


def _default_target(units: _UnitPath) -> str | None:
    """The unit default.target is (following aliases); None when it is missing or masked."""
    name = "default.target"
    for _ in range(MAX_LINK_HOPS):
        own, path, is_masked = _resolve(units, name)
        if path is None or is_masked:
            return None
        if own == name:
            return own
        name = own
    return None


def _expand(value: str, name: str) -> str | None:
    """A dependency name with the unit's specifiers filled in (``%i`` …); None when it uses one that
    only a running system can say (``%H``, ``%u`` …)."""
    template = _template(name)
    instance = template[1] if template is not None else ""
    stem = name[:name.rfind(".")]
    values = {"i": instance, "I": instance, "n": name, "N": stem, "p": stem.split("@", 1)[0],
              "P": stem.split("@", 1)[0], "%": "%"}
    unknown = False

    def fill(match: re.Match[str]) -> str:
        nonlocal unknown
        if match.group(1) not in values:
            unknown = True
            return ""
        return values[match.group(1)]

    expanded = _SPECIFIER.sub(fill, value) if "%" in value else value
    return None if unknown else expanded


def _boot_texts(units: _UnitPath, names: list[str], path: str) -> list[tuple[str, str]]:
    """(path, text) of a unit file and then the drop-ins of all its names, in the order systemd
    applies them (a drop-in in an earlier directory overrides a same-named one later)."""
    texts: list[tuple[str, str]] = []
    text = read_optional(units.reader, path, units.errors)
    if text is not None:
        texts.append((path, text))
    dropins: dict[str, str] = {}
    for directory in reversed(BOOT_UNIT_DIRS):
        for name in names:
            if not units.has(directory, f"{name}.d"):
                continue
            dropdir = f"{directory}/{name}.d"
            for entry in list_dir(units.reader, dropdir, units.errors, limit=MAX_DROPINS)[:MAX_DROPINS]:
                if entry.endswith(".conf"):
                    dropins[entry] = f"{dropdir}/{entry}"
    for entry in sorted(dropins):
        dropin_text = read_optional(units.reader, dropins[entry], units.errors)
        if dropin_text is not None:
            texts.append((dropins[entry], dropin_text))
    return texts


class _Walk:
    """The start transaction of default.target at the next boot, as systemd 252 builds it: the units
    it pulls in, then the conflicts it resolves (systemd's transaction.c)."""

    def __init__(self, units: _UnitPath) -> None:
        self.units = units
        self.found: dict[str, Service] = {}
        self.reached: set[str] = set()  # every name looked up, aliases included
        self.aliases: dict[str, list[str]] = {}
        self.own: dict[str, str] = {}  # name as a dependency gives it -> the unit's own name
        # unit -> (dependency name, whether it requires it: Requires=, BindsTo=, .requires/)
        self.pulls: dict[str, list[tuple[str, bool]]] = {}
        self.conflicts: dict[str, list[str]] = {}

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
                return
            self.reached.add(name)
            own, path, is_masked = _resolve(self.units, name)
            self.own[name] = own
            if own != name:  # an alias: the unit itself (its dependency directories count with it)
                self.aliases.setdefault(own, []).append(name)
                queue.appendleft((own, f"{why} ({name} is an alias of {own}: {path})", by_link, "", True))
                continue
            if path is None:
                if by_link:  # the link is there, but nothing can be started from it
                    target = link_target(self.units.reader, why)
                    self.found[name] = Service(name=name, manager="systemd", enabled=None,
                                               origin=f"{why} -> {target} (unit file not found)")
                continue
            if is_masked:  # systemd.unit(5): a unit linked to /dev/null or empty is masked
                self.found[name] = Service(name=name, manager="systemd", enabled=False,
                                           origin=_mask_origin(self.units.reader, path))
                continue
            names = list(dict.fromkeys([name, *self.aliases.get(name, ()),
                                        *self.units.aliases().get(name, ())]))
            template = _template(name)
            if template is not None:
                names.append(template[0])
            texts = _boot_texts(self.units, names, path)
            default_dependencies = True
            for source, body in texts:
                for section, key, value in parse_unit(body):
                    if section == "Unit" and (key in PULLING_KEYS or key == "Conflicts"):
                        for dep in value.split():
                            expanded = _expand(dep, name)
                            if not expanded or not expanded.endswith(UNIT_SUFFIXES):
                                continue
                            if key == "Conflicts":
                                self.conflicts.setdefault(name, []).append(expanded)
                            else:
                                queue.append((expanded, f"{source}: {key}={dep}", False, name,
                                              key in ("Requires", "BindsTo")))
                    elif section == "Unit" and key == "DefaultDependencies":
                        default_dependencies = truthy(value) is not False
            if default_dependencies and name.endswith(_SYSINIT_REQUIRED):
                queue.append(("sysinit.target", f"{path}: DefaultDependencies=yes", False, name, True))
            queue.extend(self._dir_deps(names, name))
            self.found[name] = Service(name=name, manager="systemd", enabled=True, origin=why,
                                       exec_start=_exec_start(texts))
        self._resolve_conflicts(start)

    def _dir_deps(self, names: list[str], unit: str) -> list[tuple[str, str, bool, str, bool]]:
        return [(dep, link, True, unit, kind == ".requires") for kind in PULLING_DIRS
                for dep, link in self.units.links(*(f"{name}{kind}" for name in names))]

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


def _systemd(reader: Reader, errors: Errors | None) -> dict[str, Service]:
    units = _UnitPath(reader, errors)
    default = _default_target(units)
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
            if owner in reached:
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
                                   origin=_mask_origin(reader, path))
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
            _own, unit_path, is_masked = _resolve(units, unit)
            if is_masked:
                found[unit] = Service(name=unit, manager="systemd", enabled=False,
                                      origin=_mask_origin(reader, unit_path or unit))
            elif unit_path is None:
                found[unit] = Service(name=unit, manager="systemd", enabled=None,
                                      origin=f"{link} -> {link_target(reader, link)} (unit file not found)")
            else:
                found[unit] = Service(name=unit, manager="systemd", enabled=True, origin=link,
                                      exec_start=_exec_start(_boot_texts(units, [unit], unit_path)))
    return found


def _mask_origin(reader: Reader, path: str) -> str:
    target = link_target(reader, path)
    return f"{path} -> {target} (masked)" if target is not None else f"{path} is empty (masked)"


def _inetd(reader: Reader, errors: Errors | None) -> list[Service]:
    text = read_optional(reader, "/etc/inetd.conf", errors)
    out: list[Service] = []
    for number, line in lines(text or "", errors, "/etc/inetd.conf"):
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 6:
            if errors is not None:
                errors.append(ReadError(f"/etc/inetd.conf:{number}", "not an inetd service line"))
            continue
        out.append(Service(name=fields[0], manager="inetd", enabled=True,
                           origin=f"/etc/inetd.conf:{number}", exec_start=" ".join(fields[5:])))
    return out


def _xinetd_blocks(text: str, path: str, errors: Errors | None) -> list[tuple[str, dict[str, str], int]]:
    blocks: list[tuple[str, dict[str, str], int]] = []
    current: tuple[str, dict[str, str], int] | None = None
    pending: tuple[str, int] | None = None
    for number, line in lines(text, errors, path):
        if not line or line.startswith("#"):
            continue
        match = _XINETD_SERVICE.match(line)
        if match and current is None:
            pending = (match.group(1) or match.group(2), number)
            if "{" in line:
                current, pending = (pending[0], {}, pending[1]), None
            continue
        if line.startswith("{") and pending is not None:
            current, pending = (pending[0], {}, pending[1]), None
            continue
        if line.startswith("}"):
            if current is not None:
                blocks.append(current)
            current = None
            continue
        if current is not None:
            key, sep, value = line.partition("=")
            if sep:
                current[1][key.strip().rstrip("+-").strip().lower()] = value.strip()
    return blocks


def _xinetd(reader: Reader, errors: Errors | None) -> list[Service]:
    disabled: set[str] = set()
    main = read_optional(reader, "/etc/xinetd.conf", errors) or ""
    for name, attrs, _line in _xinetd_blocks(main, "/etc/xinetd.conf", errors):
        if name == "defaults":
            disabled.update(attrs.get("disabled", "").split())
    out: list[Service] = []
    for entry in list_dir(reader, "/etc/xinetd.d", errors):
        if entry.startswith(".") or entry.endswith("~") or "." in entry:
            continue  # xinetd's includedir skips names with a dot or ending in ~
        path = f"/etc/xinetd.d/{entry}"
        text = read_optional(reader, path, errors)
        if text is None:
            continue
        for name, attrs, number in _xinetd_blocks(text, path, errors):
            if name == "defaults":
                continue
            off = attrs.get("disable", "no").lower() == "yes" or name in disabled
            command = " ".join(v for v in (attrs.get("server"), attrs.get("server_args")) if v) or None
            out.append(Service(name=name, manager="xinetd", enabled=not off,
                               origin=f"{path}:{number}", exec_start=command))
    return out


def _sysv(reader: Reader, errors: Errors | None) -> list[Service]:
    seen: dict[str, Service] = {}
    for directory in _RC_DIRS:
        for entry in list_dir(reader, directory, errors):
            match = _RC_START.match(entry)
            if match and match.group(1) not in seen:
                seen[match.group(1)] = Service(name=match.group(1), manager="sysv", enabled=True,
                                               origin=f"{directory}/{entry}")
    return list(seen.values())


def _openrc(reader: Reader, errors: Errors | None) -> list[Service]:
    seen: dict[str, Service] = {}
    for level in list_dir(reader, "/etc/runlevels", errors):
        if level == "shutdown":
            continue
        directory = f"/etc/runlevels/{level}"
        for entry in list_dir(reader, directory, errors):
            if entry not in seen:
                seen[entry] = Service(name=entry, manager="openrc", enabled=True,
                                      origin=f"{directory}/{entry}")
    return list(seen.values())


def read_services(reader: Reader, *, errors: Errors | None = None) -> tuple[Service, ...]:
    """Services enabled (or masked) at boot, from every service manager found in the root.

    Problems (an unreadable unit file, a directory over the listing cap) are appended to ``errors``
    and the rest is still read.
    """
    systemd = _systemd(reader, errors)
    return (*systemd.values(), *_inetd(reader, errors), *_xinetd(reader, errors),
            *_sysv(reader, errors), *_openrc(reader, errors))
