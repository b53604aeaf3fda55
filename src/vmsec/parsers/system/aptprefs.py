"""APT's preferences (apt_preferences(5)) as apt 2.6 reads them, and which installed packages their
pins keep from the security archive.

apt reads ``Dir::Etc::Preferences`` (/etc/apt/preferences), then the files of
``Dir::Etc::PreferencesParts`` (/etc/apt/preferences.d: no extension or ``.pref``). Each record is a
deb822 stanza (``#`` lines are comments) with ``Package``, ``Pin`` and ``Pin-Priority``. apt refuses
the whole configuration — every program that opens its cache exits, unattended-upgrades too — on a
record without ``Package``, a priority that is missing, zero or out of range, or ``never`` on a named
package. The real program is the oracle: tests/parsers/test_aptprefs.py runs ``apt-cache policy`` on
planted roots.

What a pin does (apt-pkg/policy.cc): a ``Package: *`` pin sets the priority of the archives it
matches (the first such pin wins; ``never`` wins always); a pin naming packages sets the priority of
their versions it matches (the first wins). The candidate is the highest-priority version, a newer
one winning a tie; a version whose priority is ≤ 0 is never chosen, and one below the installed
version's priority never replaces it. The installed version's priority is the highest of the files
that list it: the dpkg status file (100) and any archive that still carries it.

Only the release files apt downloaded (/var/lib/apt/lists/*Release) say how the security archive is
labelled; without them, a pin that may match it is unknown. Whether an installed version is still in
another archive is not read (the package lists are tens of megabytes): where that decides, the answer
is unknown, and says so.
"""

from __future__ import annotations

import bisect
import fnmatch
import re
from collections.abc import Callable, Iterable
from typing import Any

from msgspec import Struct

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileKind, InstalledPackage
from vmsec.parsers.system._common import Errors, list_dir, note, read_optional, unreadable
from vmsec.parsers.system.aptconf import AptConfig, apt_part_names, apt_path
from vmsec.parsers.system.dnf_excludes import glibc_glob
from vmsec.parsers.system.unattended_filters import apt_names
from vmsec.reading import Reader

NEVER = -32768  # apt's NEVER_PIN: "Pin-Priority: never"
MAX_PINS = 2_000  # a file of more is judged unknown, never cut short to "no pin"
MAX_FILES = 256
MAX_OUTCOMES = 256  # the ways undecidable pins on one package may combine: past it, unknown
MAX_WORK = 400_000  # installed packages × pins naming packages: more is judged unknown (≈ 1 s of matching)
_WS = " \t\n\r\v\f"
_STRTOL = re.compile(r"[ \t\n\r\v\f]*([+-]?[0-9]+)")
_PACKAGES_LIST = re.compile(r"_Packages(\.gz|\.xz|\.lz4)?$")  # apt's .zst lists are not read
MAX_LIST_BYTES = 256 * 1024 * 1024  # a package list, decompressed (Debian's main is ≈ 50 MB)
_BASE_GNU_LINUX = ("amd64", "i386", "arm64", "ppc64el", "s390x", "riscv64")  # dpkg's tuples base-gnu-linux-*
_STANZA_NAME = re.compile(rb"^Package: *([^\s]+)", re.MULTILINE)


class Pin(Struct, frozen=True, kw_only=True):
    packages: tuple[str, ...]  # () for "Package: *", a pin on archives
    kind: str  # version | release | origin
    data: str
    priority: int
    where: str  # file:line of the record


class Release(Struct, frozen=True, kw_only=True):
    """An archive as apt labels it: its Release file's fields and the host it comes from."""

    path: str
    site: str
    origin: str = ""
    label: str = ""
    suite: str = ""  # apt's "archive" (a=)
    codename: str = ""
    version: str = ""
    not_automatic: bool = False
    but_automatic_upgrades: bool = False
    package_lists: tuple[str, ...] = ()  # its binary Packages lists beside it (paths)

    @property
    def security(self) -> bool:
        """Debian's (label Debian-Security, suite stable-security) or Ubuntu's (jammy-security)."""
        return any(v.lower().endswith("-security") for v in (self.suite, self.codename)) \
            or self.label == "Debian-Security"


class Preferences(Struct, frozen=True, kw_only=True):
    pins: tuple[Pin, ...] = ()
    refused: str = ""  # why apt refuses them ("FILE: no Package header"); nothing then installs
    unknown: str = ""  # why some were not read
    sources: tuple[str, ...] = ()  # the files read


class PinHold(Struct, frozen=True, kw_only=True):
    """What the pins do to the installed packages' security updates."""

    held: tuple[str, ...] = ()  # every installed package the pins keep from the security archive
    why: str = ""
    unknown: str = ""  # why some packages could not be judged
    undecided: tuple[str, ...] = ()  # those packages (every one when nothing could be judged)
    refused: str = ""  # why apt refuses to start (APT::Default-Release names no archive it has)


# --- reading -------------------------------------------------------------------------------------

def _strip_comments(text: str) -> tuple[str, list[tuple[int, int]]]:
    """pkgTagFile's comment removal: a line starting with ``#`` goes, with its newline. Also the
    (offset in the result, line number in the file) of each kept line, to name records by line."""
    out: list[str] = []
    starts: list[tuple[int, int]] = []
    size = 0
    parts = text.split("\n")  # lines end at "\n" only: apt does not split at "\r"
    lines = [f"{p}\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    for number, line in enumerate(lines, 1):
        if line.startswith("#"):
            continue
        starts.append((size, number))
        out.append(line)
        size += len(line)
    return "".join(out), starts


def _scan(buf: str, section: int, pushed: list[tuple[str, int, int]] | None
          ) -> tuple[bool, list[tuple[str, int, int]], int, int]:
    """apt's pkgTagSection::Scan of the record at ``section``: whether it is complete, its fields
    (name, name offset, value offset), where the last value ends and where the next record starts.
    ``pushed``: the fields a failed scan kept (apt's retry with Restart=false resumes after them).
    A field starts on a line that does not begin with a blank and runs to the next ``:`` (even on a
    later line); its value may start on the next line when that begins with a space; a ``\\r`` after
    a newline is skipped; a newline followed by a newline ends the record."""
    n = len(buf)
    tags = list(pushed or [])
    if tags:
        nl = buf.find("\n", tags[-1][1])
        if nl < 0:
            return False, tags, 0, 0
        stop = nl + 1
    else:
        stop = section
    last: tuple[str, int, int] | None = None
    while stop < n:
        if buf[stop] not in _WS:
            if last:
                tags.append(last)
            last = None
            colon = buf.find(":", stop)
            if colon < 0:
                return False, tags, 0, 0
            end_tag = colon - 1
            while end_tag > stop and buf[end_tag] in _WS:
                end_tag -= 1
            value = colon + 1
            while value < n and buf[value] in _WS:
                if buf[value] == "\n" and (value + 1 >= n or buf[value + 1] != " "):
                    break
                value += 1
            if value >= n:
                return False, tags, 0, 0
            last = (buf[stop:end_tag + 1], stop, value)
            stop = value
        nl = buf.find("\n", stop)
        if nl < 0:
            return False, tags, 0, 0
        stop = nl
        while stop + 1 < n and buf[stop + 1] == "\r":
            stop += 1
        if stop + 1 < n and buf[stop + 1] == "\n":
            if last:
                tags.append(last)
            end = stop
            stop += 1
            while stop < n and buf[stop] in "\r\n":
                stop += 1
            return True, tags, end, stop
        stop += 1
    return False, tags, 0, 0


def _records(text: str) -> tuple[list[tuple[int, dict[str, str]]], str]:
    """The records of a preferences file as apt's pkgTagFile reads them: each with the line it starts
    on and its fields (names folded to lower case, a later field of a name winning), and why apt
    refuses the file ("" when it does not). A record whose scan fails is scanned once more from after
    the fields it found (apt's Restart=false); failing again, apt reports "Unable to parse package
    file"."""
    buf, starts = _strip_comments(text)
    if not buf:
        return [], ""
    trailing = len(buf) - len(buf.rstrip("\r\n"))
    buf += "\n" * max(0, 2 - buf[len(buf) - trailing:].count("\n"))  # apt ensures the last record's end
    offsets = [o for o, _n in starts]
    records: list[tuple[int, dict[str, str]]] = []
    pos = 0
    while pos < len(buf):
        ok, tags, end, following = _scan(buf, pos, None)
        if not ok:
            ok, tags, end, following = _scan(buf, pos, tags)
            if not ok:
                where = _line(offsets, starts, pos)
                return records, f"line {where}: unable to parse the record (a field with no ':')"
        fields: dict[str, str] = {}
        ends = [t[1] for t in tags[1:]] + [end] if tags else []
        for (key, _start, value), value_end in zip(tags, ends, strict=True):
            fields[key.lower()] = buf[value:value_end].rstrip(_WS)
        if fields:
            records.append((_line(offsets, starts, tags[0][1]), fields))
        pos = following
    return records, ""


def _line(offsets: list[int], starts: list[tuple[int, int]], offset: int) -> int:
    return starts[max(0, bisect.bisect_right(offsets, offset) - 1)][1] if starts else 1


def _priority(text: str | None, generic: bool) -> tuple[int | None, str]:
    """The Pin-Priority as apt reads it (``strtol``, base 10, a prefix), or None and why apt refuses."""
    if text == "never":
        return (NEVER, "") if generic else (None, "the special 'Pin-Priority: never' can only be used for "
                                            "'Package: *' records")
    m = _STRTOL.match(text or "") if text is not None and len(text) < 300 else None
    value = int(m.group(1)) if m else 0
    if not -32768 <= value <= 32767:
        return None, f"value {text} is outside the range of valid pin priorities (-32768 to 32767)"
    if value == 0:
        return None, "no priority (or zero) specified for pin"
    return (NEVER + 1 if value == NEVER else value), ""


def parse_preferences(text: str, path: str) -> tuple[list[Pin], str]:
    """The pins of one preferences file in apt's order, and why apt refuses the file ("" when it does
    not). Records apt skips (no Pin, a pin type it does not know) are skipped."""
    pins: list[Pin] = []
    records, unparsed = _records(text)
    for number, fields in records:
        name = fields.get("package", "")
        if not name:
            return pins, f"{path}: invalid record (line {number}), no Package header"
        generic = name == "*"
        pin = fields.get("pin")
        if pin is None:
            continue
        word_end = next((i for i, c in enumerate(pin) if c in _WS), len(pin))
        kind, data = pin[:word_end].lower(), pin[word_end:].lstrip(_WS)
        if kind not in ("release", "origin") and not (kind == "version" and not generic):
            continue  # apt: "Did not understand pin type", a warning
        priority, why = _priority(fields.get("pin-priority"), generic)
        if priority is None:
            return pins, f"{path} (line {number}): {why}"
        pins.append(Pin(packages=() if generic else tuple(name.split()), kind=kind, data=data,
                        priority=priority, where=f"{path}:{number}"))
    return pins, f"{path} ({unparsed})" if unparsed else ""


def read_apt_preferences(reader: Reader, config: AptConfig, errors: Errors | None) -> Preferences:
    """The pins of the preferences file and directory apt reads, in its order."""
    main = apt_path(config, "Dir::Etc::Preferences", "preferences")
    parts = apt_path(config, "Dir::Etc::PreferencesParts", "preferences.d")
    paths = [main, *(f"{parts}/{n}" for n in apt_part_names(list_dir(reader, parts, errors), "pref"))]
    pins: list[Pin] = []
    read: list[str] = []
    for path in paths[:MAX_FILES + 1]:
        if reader.stat(path).kind != FileKind.FILE:  # apt reads only regular files (RealFileExists)
            continue
        text = read_optional(reader, path, errors)
        if text is None:
            return Preferences(pins=tuple(pins), unknown=f"{path} could not be read", sources=tuple(read))
        read.append(path)
        found, refused = parse_preferences(text, path)
        pins += found
        if refused:
            return Preferences(pins=tuple(pins), refused=refused, sources=tuple(read))
    if len(paths) > MAX_FILES or len(pins) > MAX_PINS:
        return Preferences(unknown=f"more than {MAX_FILES} preference files or {MAX_PINS} pins",
                           sources=tuple(read))
    return Preferences(pins=tuple(pins), sources=tuple(read))


def _release_fields(text: str) -> dict[str, str]:
    if text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        text = text.partition("\n\n")[2].partition("\n-----BEGIN PGP SIGNATURE-----")[0]
    fields: dict[str, str] = {}
    for line in text.split("\n"):
        if not line.strip():
            break
        if line[:1] in _WS:
            continue
        key, colon, value = line.partition(":")
        if colon:
            fields[key.strip().lower()] = value.strip()
    return fields


def read_releases(reader: Reader, config: AptConfig, errors: Errors | None) -> tuple[Release, ...]:
    """The archives apt has downloaded the Release file of (Dir::State::lists), labelled as apt sees
    them. The host is the list file's name up to its first ``_`` (apt's URItoFileName)."""
    state = (config.tree_get("Dir::State") or ("var/lib/apt/", ""))[0]
    lists = (config.tree_get("Dir::State::lists") or ("lists/", ""))[0]
    root = (config.tree_get("Dir") or ("/", ""))[0]
    state = state if state.startswith("/") else f"/{root.strip('/')}/{state}"
    where = lists if lists.startswith("/") else f"{state.rstrip('/')}/{lists}"
    where = re.sub("/+", "/", where).rstrip("/")
    out: list[Release] = []
    listed = list_dir(reader, where, errors)
    names = [n for n in listed if n.endswith(("_InRelease", "_Release"))]
    # each package list belongs to the release whose file-name prefix is its longest ("dists_x_" and
    # "dists_x_updates_" are two releases)
    prefixes = sorted({n.rpartition("_")[0] + "_" for n in names}, key=len, reverse=True)
    owner = {n: next((p for p in prefixes if n.startswith(p)), "") for n in listed
             if "_binary-" in n and _PACKAGES_LIST.search(n)}
    for name in names[:MAX_FILES]:
        if name.endswith("_Release") and f"{name[:-len('_Release')]}_InRelease" in names:
            continue  # apt prefers InRelease
        text = read_optional(reader, f"{where}/{name}", errors, limit=1 << 20)
        if text is None:
            continue
        f = _release_fields(text)
        site = name.partition("_")[0].rpartition("@")[2]
        prefix = name.rpartition("_")[0] + "_"
        lists_of = tuple(f"{where}/{n}" for n in listed if owner.get(n) == prefix)
        out.append(Release(path=f"{where}/{name}", site=site, package_lists=lists_of,
                           origin=f.get("origin", ""),
                           label=f.get("label", ""), suite=f.get("suite", ""),
                           codename=f.get("codename", ""), version=f.get("version", ""),
                           not_automatic=f.get("notautomatic", "").lower() == "yes",
                           but_automatic_upgrades=f.get("butautomaticupgrades", "").lower() == "yes"))
    return tuple(out)


Carried = dict[str, frozenset[tuple[str, str, str]]]  # release path: (name, arch, version) of its lists


def read_carried(reader: Reader, releases: Iterable[Release], packages: Iterable[InstalledPackage],
                 errors: Errors | None) -> Carried | str:
    """For each archive, which installed (name, architecture, version) its package lists carry — what
    decides the installed version's priority. Only stanzas of installed names are looked at. A list
    that cannot be read makes the answer unknown (the reason, as a string)."""
    wanted = {p.name.encode() for p in packages}
    out: Carried = {}
    for release in releases:
        if not release.package_lists:
            return f"no package list of {release.path} is there to read (plain, gzip, xz or lz4)"
        found: set[tuple[str, str, str]] = set()
        for path in release.package_lists:
            data = _list_bytes(reader, path, errors)
            if data is None:
                return f"{path} could not be read"
            found |= _stanzas_of(data, wanted)
        out[release.path] = frozenset(found)
    return out


def _list_bytes(reader: Reader, path: str, errors: Errors | None) -> bytes | None:
    try:
        raw = reader.read_bytes(path, MAX_LIST_BYTES)
    except ReadError as exc:
        unreadable(errors, exc)
        return None
    if not path.endswith((".gz", ".xz", ".lz4")):
        return raw
    # Imported here: only a guest whose pins need its lists pays for them.
    import lzma
    import zlib

    import lz4.frame

    # bounded: a list that decompresses past MAX_LIST_BYTES is not read (a compression bomb)
    engine: Any = (zlib.decompressobj(16 + zlib.MAX_WBITS) if path.endswith(".gz")
                   else lzma.LZMADecompressor() if path.endswith(".xz") else lz4.frame.LZ4FrameDecompressor())
    try:
        data: bytes = engine.decompress(raw, MAX_LIST_BYTES + 1)
    except (zlib.error, lzma.LZMAError, EOFError, RuntimeError) as exc:
        note(errors, path, f"not a valid compressed package list ({exc})")
        return None
    if len(data) > MAX_LIST_BYTES:
        note(errors, path, "decompresses past 256 MiB", ErrorKind.TOO_LARGE)
        return None
    return data


def _stanzas_of(data: bytes, wanted: set[bytes]) -> set[tuple[str, str, str]]:
    """(name, architecture, version) of the stanzas of a Packages list whose name is ``wanted``."""
    out: set[tuple[str, str, str]] = set()
    for m in _STANZA_NAME.finditer(data):
        if m.group(1) not in wanted:
            continue
        end = data.find(b"\n\n", m.end())
        stanza = data[m.end():end if end >= 0 else len(data)]
        version = re.search(rb"^Version: *([^\s]+)", stanza, re.MULTILINE)
        arch = re.search(rb"^Architecture: *([^\s]+)", stanza, re.MULTILINE)
        if version and arch:
            out.add((m.group(1).decode("ascii", "replace"), arch.group(1).decode("ascii", "replace"),
                     version.group(1).decode("utf-8", "replace")))
    return out


# --- matching (apt-pkg/versionmatch.cc) ------------------------------------------------------------

def _expression(pattern: str, value: str) -> bool | None:
    """apt's ExpressionMatches: ``/regex/`` (POSIX, not modelled: None) or fnmatch with case folding."""
    if pattern.startswith("/") and pattern.endswith("/"):
        # apt tests only the first and last character: "/" and "//" are the empty expression, which
        # matches everything; any other is POSIX, not modelled
        return True if pattern in ("/", "//") else None
    glob = glibc_glob(pattern.lower())
    return None if glob is None else fnmatch.fnmatchcase(value.lower(), glob)


def _prefix_or_expression(pattern: str, prefix: bool, value: str) -> bool | None:
    """apt's MatchVer (equal, or a prefix when the pin ends in ``*``; case-folded), else ExpressionMatches."""
    if value.lower() == pattern.lower() or (prefix and value.lower().startswith(pattern.lower())):
        return True
    return _expression(pattern, value)


def _all(*answers: bool | None) -> bool | None:
    """True when every answer is True, False when one is False, else None."""
    return False if False in answers else None if None in answers else True


def release_matches(data: str, release: Release | None) -> bool | None:
    """Whether a ``Pin: release DATA`` matches the archive (None: the dpkg status file), as apt's
    pkgVersionMatch does, or None when its answer cannot be told here (a regex; ``c=``/``b=`` on an
    archive, which depend on the package file). The status file has no Release file: only ``a=``,
    a bare name and ``c=`` are compared, with its archive ``now``, and a pin with none of the fields
    apt knows matches it (and no archive)."""
    if data == "*":
        return True
    spec: dict[str, str] = {}
    if data and "=" not in data:
        spec["v" if data[0].isdigit() else "release"] = data
    elif data:
        fragments = _tok_split(data[:299])  # apt copies the data into 300 bytes first
        if fragments is None:
            return False  # more than 19 fragments: apt drops the pin's type, and it matches nothing
        for frag in fragments:
            if len(frag) >= 3 and frag[1] == "=" and frag[0].lower() in "voanlcb":
                spec[frag[0].lower()] = frag[2:]
    version = spec.pop("v", None)
    prefix = version is not None and version.endswith("*")
    if prefix and version is not None:
        version = version[:-1] or None  # "v=*": apt strips the star and sees no version at all
    if release is None:
        if version is not None or any(k in spec for k in "onl"):
            return False
        return _all(*(_expression(spec[k], "now") for k in ("a", "release", "c") if k in spec),
                    *(False for k in "b" if k in spec))
    if version is None and not spec:
        return False
    return _all(
        *([_prefix_or_expression(version, prefix, release.version)] if version is not None else []),
        *([_expression(spec["o"], release.origin)] if "o" in spec else []),
        *([_expression(spec["a"], release.suite)] if "a" in spec else []),
        *([_expression(spec["n"], release.codename)] if "n" in spec else []),
        *([_any(_expression(spec["release"], release.suite), _expression(spec["release"], release.codename))]
          if "release" in spec else []),
        *([_expression(spec["l"], release.label)] if "l" in spec else []),
        *([_component_or_arch(spec.get("c"), spec.get("b"), release)] if "c" in spec or "b" in spec else []))


def _component_or_arch(component: str | None, arch: str | None, release: Release) -> bool | None:
    """``c=``/``b=`` are matched against each package list of the archive (its component and
    architecture, from the list's file name): True when every list matches, False when none does,
    None when some do (which one carries a package is not read) or no list is known."""
    answers = []
    for path in release.package_lists:
        middle = path.rpartition("/")[2][len(release.path.rpartition("/")[2].rpartition("_")[0]) + 1:]
        comp, _, rest = middle.partition("_binary-")
        comp, file_arch = comp.replace("_", "/"), rest.partition("_")[0]
        answers.append(_all(*([_expression(component, comp)] if component is not None else []),
                            *([_expression(arch, file_arch)] if arch is not None else [])))
    if not answers or None in answers:
        return None
    return True if all(answers) else False if not any(answers) else None


def _tok_split(text: str) -> list[str] | None:
    """apt's TokSplitString on ``,``: fragments with their blanks trimmed, empty ones skipped; None
    past 19 of them."""
    out: list[str] = []
    start = pos = len(text) - len(text.lstrip(_WS))
    while pos != len(text):
        while pos != len(text) and text[pos] != ",":
            pos += 1
        end = pos
        while end > start and (text[end - 1] == "," or text[end - 1] in _WS):
            end -= 1
        out.append(text[start:end])
        if len(out) >= 20:
            return None
        while pos != len(text) and (text[pos] == "," or text[pos] in _WS or text[pos] == "\0"):
            pos += 1
        start = pos
    return out


def _any(*answers: bool | None) -> bool | None:
    return True if True in answers else None if None in answers else False


def origin_matches(data: str, release: Release | None) -> bool | None:
    site = data[1:-1] if len(data) >= 2 and data[0] == data[-1] == '"' else data
    if release is None:
        return False  # the status file has no site
    return _expression(site, release.site) if site else False


def file_matches(pin: Pin, release: Release | None) -> bool | None:
    if pin.kind == "release":
        return release_matches(pin.data, release)
    if pin.kind == "origin":
        return origin_matches(pin.data, release)
    return False


def version_matches(data: str, version: str) -> bool | None:
    prefix = data.endswith("*")
    return _prefix_or_expression(data[:-1] if prefix else data, prefix, version)


def names_match(pin: Pin, package: InstalledPackage, native: str | None) -> bool | None:
    """Whether a pin's Package field names the installed package: an exact name, ``src:NAME``, a
    ``name:arch`` (no architecture, or an empty one: the native, which ``all`` packages count as;
    ``any`` and ``linux-any`` as apt's architecture patterns), a glob (``*[?``) or a ``/regex/``
    (None: not modelled)."""
    answers: list[bool | None] = []
    own_arch = native if package.arch in (None, "all") else package.arch
    for word in pin.packages:
        source = word.startswith("src:")
        name = word[4:] if source else word
        name, colon, arch = name.rpartition(":") if ":" in name else (name, "", "")
        wanted = arch if colon and arch else native
        if wanted is None or own_arch is None:
            plain = not arch and package.arch in (None, "all")  # the native architecture either way
            answers.append(_named(name, source, package) if plain else None)
            continue
        arch_ok = _arch_matches(wanted, own_arch)
        named = _named(name, source, package) if arch_ok is not False else False
        answers.append(named if arch_ok else (None if named is not False else False))
    return _any(*answers)


def _arch_matches(spec: str, arch: str) -> bool | None:
    """apt's PackageArchitectureMatchesSpecification (cachefilter.cc) of a pin's architecture: the
    same name, or its tuple pattern (``any`` → ``*-*-*-*``, ``linux-any`` → ``*-*-linux-*``) against
    the package architecture's tuple. None for an architecture whose tuple is not modelled here."""
    if spec == arch:
        return True
    if spec.startswith("-") or spec.endswith("-"):
        return False  # apt: an invalid tuple, matching nothing
    parts = spec.split("-")
    if "any" in parts or "*" in spec:
        pattern = "-".join("*" if p == "any" else p for p in ["any"] * (4 - len(parts)) + parts)
    elif spec in _BASE_GNU_LINUX:
        pattern = f"base-gnu-linux-{spec}"
    else:
        return None
    if arch not in _BASE_GNU_LINUX:
        return None
    return fnmatch.fnmatchcase(f"base-gnu-linux-{arch}", pattern)


def _named(name: str, source: bool, package: InstalledPackage) -> bool | None:
    subject = (package.source or package.name) if source else package.name
    if (name.startswith("/") and name.endswith("/")) or any(c in name for c in "*[?"):
        return _expression(name, subject) if name != subject else False
    return name == subject


def _update_matches_version_pin(data: str, installed: str) -> bool | None:
    """Whether a ``Pin: version DATA`` matches a newer version whose text is not known: ``*`` matches
    every version; an exact pin on the installed version cannot match another; anything else may."""
    if data == "*":
        return True
    if not data:
        return False  # an empty version matches no version
    exact = not data.endswith("*") and not any(c in data for c in "*?[") and not data.startswith("/")
    return False if exact and data.lower() == installed.lower() else None


# --- what the pins do ------------------------------------------------------------------------------

def file_priority(pins: Iterable[Pin], release: Release | None,
                  default_release: str | None) -> tuple[int | None, str]:
    """The priority apt gives an archive (None: the dpkg status file) and what set it: 500, 100 or 1
    by its flags, then the first ``Package: *`` pin that matches it (APT::Default-Release first, at
    990), a ``never`` pin always. None when a pin that may match cannot be told."""
    if release is None or release.but_automatic_upgrades:
        fixed, where = 100, "the status file" if release is None else f"{release.path} (ButAutomaticUpgrades)"
    elif release.not_automatic:
        fixed, where = 1, f"{release.path} (NotAutomatic)"
    else:
        fixed, where = 500, "apt's default"
    generic = [p for p in pins if not p.packages]
    if default_release:
        generic.insert(0, Pin(packages=(), kind="release", data=default_release, priority=990,
                              where="APT::Default-Release"))
    pinned = False
    for pin in generic:
        if pinned and pin.priority != NEVER:
            continue
        match = file_matches(pin, release)
        if match is None:
            return None, pin.where
        if match and fixed != NEVER:
            fixed, where, pinned = pin.priority, pin.where, True
    return fixed, where


def default_release_refused(default_release: str, releases: tuple[Release, ...]) -> bool | None:
    """Whether apt refuses APT::Default-Release: it names no archive apt has (by suite, codename or
    version, as a glob), is not a ``x=`` form and not ``now``. None when a regex decides."""
    if len(default_release) > 2 and default_release[1] == "=":
        return False
    answers = [_expression(default_release, v) for r in releases for v in (r.suite, r.codename, r.version)]
    found = _any(*answers, _expression(default_release, "now"))
    return None if found is None else not found


def security_pin_holds(prefs: Preferences, releases: tuple[Release, ...],
                       packages: tuple[InstalledPackage, ...] | None,
                       default_release: str | None,
                       carried: Callable[[list[Release]], Carried | str] | None = None) -> PinHold:
    """The installed dpkg packages whose security updates apt's pins keep from ever being the
    candidate (see the module docstring), and why; unknown where the answer depends on what is not
    read. Nothing when there is no pin. ``carried`` reads which installed versions the other
    archives' package lists carry (:func:`read_carried`); it is called only when that decides."""
    if not prefs.pins and not default_release:
        return PinHold()
    if default_release and releases and default_release_refused(default_release, releases):
        return PinHold(refused=f"APT::Default-Release {default_release!r} names no release among the "
                       "archives apt has downloaded")
    if packages is None:
        return PinHold(unknown=f"{_what(prefs, default_release)} set, and the installed packages are unknown")
    dpkg = [p for p in packages if p.manager == "dpkg"]
    names = apt_names(dpkg, each=True)
    security = [r for r in releases if r.security]
    others = [r for r in releases if not r.security]
    if not security:
        return PinHold(unknown=f"{_what(prefs, default_release)} set, and no Release file of the security "
                       "archive is in /var/lib/apt/lists to match against", undecided=tuple(sorted(names)))
    prios = [file_priority(prefs.pins, r, default_release)[0] for r in security]
    if None in prios:
        return PinHold(unknown="a pin on the security archive cannot be evaluated (a regular expression, "
                       "or a component or architecture)", undecided=tuple(sorted(names)))
    # an update is in every security archive apt has (Ubuntu's comes from two sites): its priority is
    # the highest of theirs, as apt takes the highest of a version's files
    sec_prio = max(p for p in prios if p is not None)
    status_prio = file_priority(prefs.pins, None, default_release)[0]
    ranked = [(file_priority(prefs.pins, r, default_release), r) for r in others]
    other_prios = [p for (p, _w), _r in ranked]
    top = max(((p, w, r) for (p, w), r in ranked if p is not None), key=lambda t: t[0], default=None)
    above = f"{top[2].suite or top[2].codename or top[2].path} ({top[0]}, from {top[1]})" if top else ""
    # the native architecture: dpkg's own, else the only one the packages have
    archs = {p.arch for p in dpkg if p.arch and p.arch != "all"}
    native = next((p.arch for p in dpkg if p.name == "dpkg"), archs.pop() if len(archs) == 1 else None)
    held: list[str] = []
    unknown: list[str] = []
    reasons: set[str] = set()
    # A pin of plain names applies only to the packages it names (a set lookup); a glob, regex or
    # src: pin is matched against every installed package, which is what MAX_WORK bounds.
    specific = [(p, _plain_names(p)) for p in prefs.pins if p.packages]
    matched = sum(1 for _p, plain in specific if plain is None)
    if len(dpkg) * matched > MAX_WORK:
        return PinHold(unknown=f"{matched} pins name packages by pattern: more than vmsec matches against "
                       f"{len(dpkg)} installed packages", undecided=tuple(sorted(names)))
    lists: list[Carried | str] = []  # read once, when a package first needs them

    def carriers(package: InstalledPackage) -> list[Release] | str:
        if carried is None:
            return "the archives' package lists are not read"
        if not lists:
            lists.append(carried(others))
        found = lists[0]
        if isinstance(found, str):
            return found
        key = (package.name, package.arch or "", package.version)
        return [r for r in others if key in found.get(r.path, ())]

    for package, name in zip(dpkg, names, strict=True):
        verdict, reason = _held(package, native, specific, security, others, sec_prio, status_prio,
                                 other_prios, above, {r.path: w for (_p, w), r in ranked}, carriers)
        if verdict is True:
            held.append(name)
            reasons.add(reason)
        elif verdict is None:
            unknown.append(name)
            reasons.add(reason)
    why = "; ".join(sorted(reasons)[:3]) + ("; …" if len(reasons) > 3 else "")
    if held:
        return PinHold(held=tuple(sorted(held)), why=f"apt's priorities keep their security updates from "
                       f"being candidates ({why})",
                       unknown=f"{len(unknown)} more may be held back" if unknown else "",
                       undecided=tuple(sorted(unknown)))
    if unknown:
        return PinHold(unknown=f"apt's priorities may keep {len(unknown)} installed packages "
                       f"({', '.join(sorted(unknown)[:5])}{', …' if len(unknown) > 5 else ''}) from their "
                       f"security updates: {why}", undecided=tuple(sorted(unknown)))
    return PinHold()


def _what(prefs: Preferences, default_release: str | None) -> str:
    """What sets apt's priorities here, for a message: "APT pins are", "APT::Default-Release is"."""
    if prefs.pins and default_release:
        return "APT pins and APT::Default-Release are"
    return "APT pins are" if prefs.pins else "APT::Default-Release is"


def _plain_names(pin: Pin) -> frozenset[str] | None:
    """The package names of a pin that names packages only by name (``name`` or ``name:arch``), or
    None when one of its words is a pattern or a source package."""
    out = set()
    for word in pin.packages:
        name = word.partition(":")[0]
        if word.startswith(("src:", "/")) or any(c in name for c in "*[?"):
            return None
        out.add(name)
    return frozenset(out)


def _held(package: InstalledPackage, native: str | None, specific: list[tuple[Pin, frozenset[str] | None]],
          security: list[Release],
          others: list[Release], sec_prio: int | None, status_prio: int | None,
          other_prios: list[int | None], above: str, set_by: dict[str, str],
          carriers: Callable[[InstalledPackage], list[Release] | str]) -> tuple[bool | None, str]:
    """Whether apt keeps the installed version over any newer version from the security archive.

    A pin whose reach cannot be told here (a regular expression, a version pin that may or may not
    match the update) leaves two possibilities: each is followed, and the answer is decided when they
    all agree."""
    candidates: list[tuple[Pin, bool | None]] = []  # the pins that may name the package
    for pin, plain in specific:
        if plain is not None and package.name not in plain:
            continue
        named = names_match(pin, package, native)
        if named is not False:
            candidates.append((pin, named))
    # the security version's priority: the first pin naming the package that matches it, else its archive's
    news: list[tuple[int | None, str]] = []
    for pin, named in candidates:
        on_update = _update_matches_version_pin(pin.data, package.version) if pin.kind == "version" \
            else _any(*(file_matches(pin, r) for r in security))
        match = _all(named, on_update)
        if match is not False:
            news.append((pin.priority, pin.where))
        if match:
            break
    else:
        news.append((sec_prio, "the security archive's priority"))
    if sec_prio == NEVER:  # a version whose every file is `never` ignores its pin
        news = [(NEVER, "the security archive's priority")]
    # the installed version's priority: the first pin naming the package that matches it, else the
    # highest of the files that list it — the status file, and any archive still carrying it
    olds: list[Pin | None] = []
    for pin, named in candidates:
        match = _all(named, _installed_matches(pin, package, others, other_prios, status_prio, carriers))
        if match is not False:
            olds.append(pin)
        if match:
            break
    else:
        olds.append(None)
    if len(news) * len(olds) > MAX_OUTCOMES:
        return None, f"more than {MAX_OUTCOMES} ways the pins naming {package.name} may apply"
    answers = [_verdict(p_new, where_new, old, package, status_prio, others, other_prios, above, set_by,
                        carriers) for p_new, where_new in news for old in olds]
    verdicts = {v for v, _r in answers}
    if len(verdicts) == 1 and None not in verdicts:
        return answers[0]
    undecided = next((r for v, r in answers if v is None), "")
    return None, undecided or ("pins whose reach cannot be told here decide it: "
                               + ", ".join(dict.fromkeys(p.where for p, n in candidates)))


def _installed_matches(pin: Pin, package: InstalledPackage, others: list[Release],
                       other_prios: list[int | None], status_prio: int | None,
                       carriers: Callable[[InstalledPackage], list[Release] | str]) -> bool | None:
    """Whether a pin matches the installed version: its version, or one of its files — the status
    file, and the archives whose lists still carry it. apt ignores a pin on a version whose every file
    is `never` (False then)."""
    if pin.kind == "version":
        match = version_matches(pin.data, package.version)
    else:
        match = file_matches(pin, None)
        if match is False and any(file_matches(pin, r) is not False for r in others):
            files = carriers(package)
            match = None if isinstance(files, str) else _any(*(file_matches(pin, r) for r in files))
    if match is not False and status_prio == NEVER:
        files = carriers(package)
        if isinstance(files, str):
            return None
        by_path = {r.path: p for p, r in zip(other_prios, others, strict=True)}
        if all(by_path.get(r.path) == NEVER for r in files):
            return False
    return match


def _verdict(p_new: int | None, where_new: str, old: Pin | None, package: InstalledPackage,
             status_prio: int | None, others: list[Release], other_prios: list[int | None], above: str,
             set_by: dict[str, str], carriers: Callable[[InstalledPackage], list[Release] | str]
             ) -> tuple[bool | None, str]:
    """Held back or not, given the update's priority and the pin on the installed version (None: its
    priority comes from its files)."""
    if p_new is None or status_prio is None:
        return None, "a pin on the archives cannot be evaluated"
    if p_new <= 0:
        return True, f"{where_new} is {_shown(p_new)}"
    if old is not None:
        return (True, f"{old.where} ranks the installed version ({old.priority}) above the security "
                f"update ({p_new})") if old.priority > p_new else (False, "")
    low, high = status_prio, max([status_prio, *(p for p in other_prios if p is not None)])
    if None in other_prios:
        return None, "a pin on the archives cannot be evaluated"
    if p_new < low:
        return True, f"the security archive's priority ({p_new}) is below the installed version's ({low})"
    if p_new >= high:
        return False, ""
    files = carriers(package)
    if isinstance(files, str):
        return None, (f"{above} ranks above the security archive ({p_new}): an installed version still "
                      f"in it is never upgraded from security ({files})")
    ranks = [(p, r) for p, r in zip(other_prios, others, strict=True)
             if r in files and p is not None and p > p_new]
    if not ranks:
        return False, ""
    p_top, r_top = max(ranks, key=lambda t: t[0])
    return True, (f"{r_top.suite or r_top.codename or r_top.path} still carries the installed version, "
                  f"and {set_by.get(r_top.path, 'a pin')} ranks it ({p_top}) above the security archive "
                  f"({p_new})")


def _shown(priority: int) -> str:
    return "never" if priority == NEVER else str(priority)
