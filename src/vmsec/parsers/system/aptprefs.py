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
labelled; without them, a pin that may match it is unknown. Whether an installed version (or a newer
one) is still in another archive is read from that archive's package lists — only when it decides,
only the stanzas of installed names, decompressed within a budget; a list that cannot be read makes
the answer unknown, and says so. Anything not read (a preference or Release file, a list) is never
taken as absent: the answer is then unknown, never "nothing held".
"""

from __future__ import annotations

import bisect
import fnmatch
import re
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from msgspec import Struct

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileKind, InstalledPackage
from vmsec.parsers.system._common import Errors, list_dir, note, read_optional, unreadable
from vmsec.parsers.system.aptconf import AptConfig, apt_bool, apt_part_names, apt_path
from vmsec.parsers.system.dnf_excludes import glibc_glob
from vmsec.parsers.system.unattended_filters import apt_names
from vmsec.reading import Reader
from vmsec.vulns.versions import dpkg_compare

NEVER = -32768  # apt's NEVER_PIN: "Pin-Priority: never"
MAX_PINS = 2_000  # a file of more is judged unknown, never cut short to "no pin"
MAX_FILES = 256
MAX_OUTCOMES = 256  # the ways undecidable pins on one package may combine: past it, unknown
# installed packages × pattern pins (a glob each), and that × archives (cached lookups): past these,
# unknown — each about a second of matching
MAX_WORK = 400_000
_WS = " \t\n\r\v\f"
_STRTOL = re.compile(r"[ \t\n\r\v\f]*([+-]?[0-9]+)")
_PACKAGES_LIST = re.compile(r"_Packages(\.[A-Za-z0-9]+)?$")  # every list apt may have written
_READ_SUFFIXES = ("_Packages", ".gz", ".xz", ".lz4")  # bz2, lzma and zstd lists are not read: unknown
MAX_LIST_BYTES = 256 * 1024 * 1024  # a package list, decompressed (Debian's main is ≈ 50 MB)
_BASE_GNU_LINUX = ("amd64", "i386", "arm64", "ppc64el", "s390x", "riscv64")  # dpkg's tuples base-gnu-linux-*
_STANZA_NAME = re.compile(rb"^Package: *([^\s]+)", re.MULTILINE)
_STANZA_VERSION = re.compile(rb"^Version: *([^\s]+)", re.MULTILINE)
_STANZA_ARCH = re.compile(rb"^Architecture: *([^\s]+)", re.MULTILINE)
MAX_LISTS_TOTAL = 512 * 1024 * 1024  # all package lists of one guest, decompressed
MAX_RELEASE_BYTES = 16 * 1024 * 1024  # a Release file (Debian's InRelease is ≈ 150 KB)


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
    refused: str = ""  # why apt refuses its preferences or to start: nothing then installs


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
    short = text is not None and len(text.encode(errors="replace")) < 300  # apt's buffer: 300 bytes
    m = _STRTOL.match(text or "") if short else None
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
    if len(paths) > MAX_FILES:  # judged before anything is read
        return Preferences(unknown=f"more than {MAX_FILES} preference files")
    pins: list[Pin] = []
    read: list[str] = []
    for path in paths:
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
        if len(pins) > MAX_PINS:
            return Preferences(unknown=f"more than {MAX_PINS} pins", sources=tuple(read))
    return Preferences(pins=tuple(pins), sources=tuple(read))


def _release_fields(text: str) -> dict[str, str]:
    """The fields of a Release file (InRelease without its signature armour), read as apt reads every
    tag file (:func:`_records`)."""
    if text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        text = text.partition("\n\n")[2].partition("\n-----BEGIN PGP SIGNATURE-----")[0]
    records, _unparsed = _records(text)
    return records[0][1] if records else {}


def read_releases(reader: Reader, config: AptConfig,
                  errors: Errors | None) -> tuple[tuple[Release, ...], str]:
    """The archives apt has downloaded the Release file of (Dir::State::lists), labelled as apt sees
    them, and why some were not read ("" when all were). The site is the host of the list file's
    name (apt's URItoFileName: up to the first ``_``, without user, port or %-escapes)."""
    state = (config.tree_get("Dir::State") or ("var/lib/apt/", ""))[0]
    lists = (config.tree_get("Dir::State::lists") or ("lists/", ""))[0]
    root = (config.tree_get("Dir") or ("/", ""))[0]
    state = state if state.startswith("/") else f"/{root.strip('/')}/{state}"
    where = lists if lists.startswith("/") else f"{state.rstrip('/')}/{lists}"
    where = re.sub("/+", "/", where).rstrip("/")
    out: list[Release] = []
    listed = list_dir(reader, where, errors)
    names = [n for n in listed if n.endswith(("_InRelease", "_Release"))]
    if len(names) > MAX_FILES:
        return (), f"more than {MAX_FILES} Release files in {where}"
    # each package list belongs to the release whose file-name prefix is its longest ("dists_x_" and
    # "dists_x_updates_" are two releases)
    prefixes = sorted({n.rpartition("_")[0] + "_" for n in names}, key=len, reverse=True)
    owner = {n: next((p for p in prefixes if n.startswith(p)), "") for n in listed
             if "_binary-" in n and _PACKAGES_LIST.search(n)}
    for name in names:
        if name.endswith("_Release") and f"{name[:-len('_Release')]}_InRelease" in names:
            continue  # apt prefers InRelease
        text = read_optional(reader, f"{where}/{name}", errors, limit=MAX_RELEASE_BYTES)
        if text is None:
            return tuple(out), f"{where}/{name} could not be read"
        f = _release_fields(text)
        host = urllib.parse.unquote(name.partition("_")[0]).rpartition("@")[2]
        site = host.rpartition(":")[0] if re.search(r":[0-9]*$", host) and not host.endswith("]") else host
        prefix = name.rpartition("_")[0] + "_"
        lists_of = tuple(f"{where}/{n}" for n in listed if owner.get(n) == prefix)
        out.append(Release(path=f"{where}/{name}", site=site, package_lists=lists_of,
                           origin=f.get("origin", ""),
                           label=f.get("label", ""), suite=f.get("suite", ""),
                           codename=f.get("codename", ""), version=f.get("version", ""),
                           not_automatic=apt_bool(f.get("notautomatic", "")) is True,
                           but_automatic_upgrades=apt_bool(f.get("butautomaticupgrades", "")) is True))
    return tuple(out), ""


Carried = dict[str, dict[tuple[str, str], tuple[str, ...]]]  # release: (name, arch): versions its lists carry


def read_carried(reader: Reader, releases: Iterable[Release], packages: Iterable[InstalledPackage],
                 errors: Errors | None, budget: list[int] | None = None) -> Carried | str:
    """For each archive, the versions its package lists carry of the installed names — what decides
    the installed version's priority. Only stanzas of installed names are looked at, and all lists
    together decompress to at most MAX_LISTS_TOTAL. A list that cannot be read, or is compressed in
    a way not read here, makes the answer unknown (the reason, as a string)."""
    wanted = {p.name.encode() for p in packages}
    out: Carried = {}
    budget = [MAX_LISTS_TOTAL] if budget is None else budget  # shared by the calls for one guest
    for release in releases:
        if not release.package_lists:
            return f"no package list of {release.path} is there to read"
        found: dict[tuple[str, str], list[str]] = {}
        for path in release.package_lists:
            if not path.endswith(_READ_SUFFIXES):
                return f"{path} is compressed in a way vmsec does not read"
            data = _list_bytes(reader, path, errors, budget)
            if data is None:
                return f"{path} could not be read"
            for name, arch, version in _stanzas_of(data, wanted):
                found.setdefault((name, arch), []).append(version)
        out[release.path] = {k: tuple(v) for k, v in found.items()}
    return out


def _list_bytes(reader: Reader, path: str, errors: Errors | None, budget: list[int]) -> bytes | None:
    """A package list's bytes, decompressed: the whole stream (every gzip member), or None when it is
    truncated, corrupt or larger than what is left of ``budget``."""
    limit = min(MAX_LIST_BYTES, budget[0])
    try:
        raw = reader.read_bytes(path, limit)
    except ReadError as exc:
        unreadable(errors, exc)
        return None
    if not path.endswith((".gz", ".xz", ".lz4")):
        budget[0] -= len(raw)
        return raw
    # Imported here: only a guest whose pins need its lists pays for them.
    import lzma
    import zlib

    import lz4.frame

    chunks: list[bytes] = []
    size = 0
    rest = raw
    try:
        while True:  # bounded: past the limit the list is not read (a compression bomb)
            engine: Any = (zlib.decompressobj(16 + zlib.MAX_WBITS) if path.endswith(".gz")
                           else lzma.LZMADecompressor() if path.endswith(".xz")
                           else lz4.frame.LZ4FrameDecompressor())
            chunk: bytes = engine.decompress(rest, limit - size + 1)
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                note(errors, path, "decompresses past what vmsec reads of package lists", ErrorKind.TOO_LARGE)
                return None
            if not engine.eof:  # a stream cut short reads as a shorter list; apt refuses it
                note(errors, path, "a compressed package list cut short")
                return None
            rest = engine.unused_data
            if not rest or not path.endswith(".gz"):  # gzip lists may hold several members
                break
    except (zlib.error, lzma.LZMAError, EOFError, RuntimeError) as exc:
        note(errors, path, f"not a valid compressed package list ({exc})")
        return None
    budget[0] -= size
    return b"".join(chunks)


def _stanzas_of(data: bytes, wanted: set[bytes]) -> list[tuple[str, str, str]]:
    """(name, architecture, version) of the stanzas of a Packages list whose name is ``wanted``. A
    stanza ends at the next blank line or the next ``Package:`` line, whichever is first: one pass."""
    out: list[tuple[str, str, str]] = []
    starts = list(_STANZA_NAME.finditer(data))
    for i, m in enumerate(starts):
        if m.group(1) not in wanted:
            continue
        end = starts[i + 1].start() if i + 1 < len(starts) else len(data)
        blank = data.find(b"\n\n", m.end(), end)
        end = blank if blank >= 0 else end
        version = _STANZA_VERSION.search(data, m.end(), end)
        arch = _STANZA_ARCH.search(data, m.end(), end)
        if version and arch:
            out.append((m.group(1).decode("ascii", "replace"), arch.group(1).decode("ascii", "replace"),
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
    pkgVersionMatch does, or None when its answer cannot be told here (a regex; ``c=``/``b=`` that
    match some of the archive's package lists and not others). The status file has no Release
    file: only ``a=``, a bare name and ``c=`` are compared, with its archive ``now``, and a pin with
    none of the fields apt knows matches it (and no archive)."""
    if data == "*":
        return True
    spec: dict[str, str] = {}
    if data and "=" not in data:
        spec["v" if data[0].isdigit() else "release"] = data
    elif data:
        # apt copies the data into 300 bytes first
        fragments = _tok_split(data.encode(errors="replace")[:299].decode("utf-8", "ignore"))
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


def _what(prefs: Preferences, default_release: str | None) -> str:
    """What sets apt's priorities here, for a message: "APT pins are", "APT::Default-Release is"."""
    if prefs.pins and default_release:
        return "APT pins and APT::Default-Release are"
    return "APT pins are" if prefs.pins else "APT::Default-Release is" if default_release \
        else "APT preferences are"


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


def security_pin_holds(prefs: Preferences, releases: tuple[Release, ...],
                       packages: tuple[InstalledPackage, ...] | None,
                       default_release: str | None,
                       carried: Callable[[list[Release]], Carried | str] | None = None,
                       unread: str = "") -> PinHold:
    """The installed dpkg packages whose security updates apt's pins keep from ever being the
    candidate (see the module docstring), and why; unknown where the answer depends on what is not
    read. Nothing when there is no pin. ``carried`` reads which versions of the installed names an
    archive's package lists carry (:func:`read_carried`); it is called only for the archives that
    decide. ``unread``: why some preference or Release files were not read (then nothing is decided:
    a pin or an archive not read may change every answer)."""
    if prefs.refused:
        return PinHold(refused=f"apt refuses its preferences ({prefs.refused})")
    if not prefs.pins and not default_release and not prefs.unknown:
        return PinHold()
    if packages is None:
        return PinHold(unknown=f"{_what(prefs, default_release)} set, and the installed packages are unknown")
    dpkg = [p for p in packages if p.manager == "dpkg"]
    names = apt_names(dpkg, each=True)
    everything = tuple(sorted(names))
    if unread or prefs.unknown:
        return PinHold(unknown=f"{_what(prefs, default_release)} set, and {unread or prefs.unknown}",
                       undecided=everything)
    if default_release and releases and default_release_refused(default_release, releases):
        return PinHold(refused=f"apt refuses to start: APT::Default-Release {default_release!r} names no "
                       "release among the archives apt has downloaded")
    archives = _Archives(prefs, releases, default_release, carried)
    if not archives.security:
        return PinHold(unknown=f"{_what(prefs, default_release)} set, and no Release file of the security "
                       "archive is in /var/lib/apt/lists to match against", undecided=everything)
    if archives.sec_prio is None:
        return PinHold(unknown="a pin on the security archive cannot be evaluated (a regular expression, "
                       "or a component or architecture)", undecided=everything)
    # the native architecture: dpkg's own, else the only one the packages have
    archs = sorted({p.arch for p in dpkg if p.arch and p.arch != "all"})
    native = next((p.arch for p in dpkg if p.name == "dpkg"), archs[0] if len(archs) == 1 else None)
    # A pin of plain names applies only to the packages it names (a set lookup); a glob, regex or
    # src: pin is matched against every installed package. Both bounds keep the work ≈ 1 s.
    specific = [(p, _plain_names(p)) for p in prefs.pins if p.packages]
    patterns = sum(1 for _p, plain in specific if plain is None)
    if len(dpkg) * patterns > MAX_WORK or len(dpkg) * patterns * (1 + len(releases)) > 4 * MAX_WORK:
        return PinHold(unknown=f"{len(specific)} pins name packages ({patterns} by pattern) across "
                       f"{len(releases)} archives: more than vmsec matches against {len(dpkg)} installed "
                       "packages", undecided=everything)
    held: list[str] = []
    unknown: list[str] = []
    reasons: set[str] = set()
    for package, name in zip(dpkg, names, strict=True):
        verdict, reason = _held(package, native, specific, archives)
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


class _Archives:
    """The archives of one guest as apt ranks them: the security ones (an update is in each, and takes
    the highest of their priorities, as apt takes the highest of a version's files), the others with
    their priorities and what set them, the status file's; pin-to-archive matches computed once; and
    the package lists, read per archive when a package first needs them."""

    def __init__(self, prefs: Preferences, releases: tuple[Release, ...], default_release: str | None,
                 carried: Callable[[list[Release]], Carried | str] | None) -> None:
        self.security = [r for r in releases if r.security]
        self.others = [r for r in releases if not r.security]
        prios = [file_priority(prefs.pins, r, default_release)[0] for r in self.security]
        self.sec_prio = None if None in prios or not prios else max(p for p in prios if p is not None)
        self.status_prio = file_priority(prefs.pins, None, default_release)[0]
        ranked = [file_priority(prefs.pins, r, default_release) for r in self.others]
        self.prio = {r.path: p for (p, _w), r in zip(ranked, self.others, strict=True)}
        self.set_by = {r.path: w for (_p, w), r in zip(ranked, self.others, strict=True)}
        self._carried = carried
        self._lists: dict[str, dict[tuple[str, str], tuple[str, ...]] | str] = {}
        self._matches: dict[tuple[Pin, str], bool | None] = {}

    def matches(self, pin: Pin, release: Release) -> bool | None:
        key = (pin, release.path)
        if key not in self._matches:
            self._matches[key] = file_matches(pin, release)
        return self._matches[key]

    def carrying(self, package: InstalledPackage, among: Iterable[Release], *,
                 at_least: bool = False) -> list[Release] | str:
        """The archives of ``among`` whose lists carry the installed version (``at_least``: it or a
        newer one), or why that is unknown."""
        out = []
        for release in among:
            if release.path not in self._lists:
                got = self._carried([release]) if self._carried else "the package lists are not read"
                self._lists[release.path] = got if isinstance(got, str) else got.get(release.path, {})
            versions = self._lists[release.path]
            if isinstance(versions, str):
                return versions
            have = versions.get((package.name, package.arch or ""), ())
            newer = at_least and any(dpkg_compare(v, package.version) > 0 for v in have)
            if package.version in have or newer:
                out.append(release)
        return out


def _held(package: InstalledPackage, native: str | None, specific: list[tuple[Pin, frozenset[str] | None]],
          archives: _Archives) -> tuple[bool | None, str]:
    """Whether apt keeps any newer version from the security archive from being the candidate.

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
            else _any(*(archives.matches(pin, r) for r in archives.security))
        match = _all(named, on_update)
        if match is not False:
            news.append((pin.priority, pin.where))
        if match:
            break
    else:
        news.append((archives.sec_prio, "the security archive's priority"))
    if archives.sec_prio == NEVER:  # a version whose every file is `never` ignores its pin
        news = [(NEVER, "the security archive's priority")]
    # the installed version's priority: the first pin naming the package that matches it, else the
    # highest of the files that list it — the status file, and any archive still carrying it
    olds: list[Pin | None] = []
    for pin, named in candidates:
        match = _all(named, _installed_matches(pin, package, archives))
        if match is not False:
            olds.append(pin)
        if match:
            break
    else:
        olds.append(None)
    if len(news) * len(olds) > MAX_OUTCOMES:
        return None, f"more than {MAX_OUTCOMES} ways the pins naming {package.name} may apply"
    answers = [_verdict(p_new, where_new, old, package, archives)
               for p_new, where_new in news for old in olds]
    verdicts = {v for v, _r in answers}
    if len(verdicts) == 1 and None not in verdicts:
        return answers[0]
    undecided = next((r for v, r in answers if v is None), "")
    return None, undecided or ("pins whose reach cannot be told here decide it: "
                               + ", ".join(dict.fromkeys(p.where for p, n in candidates)))


def _installed_matches(pin: Pin, package: InstalledPackage, archives: _Archives) -> bool | None:
    """Whether a pin matches the installed version: its version, or one of its files — the status
    file, and the archives whose lists still carry it. apt ignores a pin on a version whose every file
    is `never` (False then)."""
    if pin.kind == "version":
        match = version_matches(pin.data, package.version)
    else:
        match = file_matches(pin, None)
        maybe = [r for r in archives.others if archives.matches(pin, r) is not False]
        if match is False and maybe:
            files = archives.carrying(package, maybe)
            match = None if isinstance(files, str) else _any(*(archives.matches(pin, r) for r in files))
    if match is not False and archives.status_prio == NEVER:
        files = archives.carrying(package, [r for r in archives.others if archives.prio[r.path] != NEVER])
        if isinstance(files, str):
            return None
        if not files:
            return False
    return match


def _verdict(p_new: int | None, where_new: str, old: Pin | None, package: InstalledPackage,
             archives: _Archives) -> tuple[bool | None, str]:
    """Held back or not, given the update's priority and the pin on the installed version (None: its
    priority comes from its files). An archive ranked above the update that carries the installed
    version, or a newer one, holds it back: its version is the candidate, not the security fix."""
    if p_new is None or archives.status_prio is None:
        return None, "a pin on the archives cannot be evaluated"
    if p_new <= 0:
        return True, f"{where_new} is {_shown(p_new)}"
    if old is not None:
        return (True, f"{old.where} ranks the installed version ({old.priority}) above the security "
                f"update ({p_new})") if old.priority > p_new else (False, "")
    if None in archives.prio.values():
        return None, "a pin on the archives cannot be evaluated"
    if p_new < archives.status_prio:
        return True, (f"the security archive's priority ({p_new}) is below the installed version's "
                      f"({archives.status_prio})")
    above = sorted((r for r in archives.others if (archives.prio[r.path] or 0) > p_new),
                   key=lambda r: -(archives.prio[r.path] or 0))
    if not above:
        return False, ""
    files = archives.carrying(package, above, at_least=True)
    if isinstance(files, str):
        top = above[0]
        return None, (f"{_label(top)} ({archives.prio[top.path]}, from {archives.set_by[top.path]}) ranks "
                      f"above the security archive ({p_new}): an installed version still in it, or a newer "
                      f"one, is never upgraded from security ({files})")
    if not files:
        return False, ""
    top = files[0]
    return True, (f"{_label(top)} carries the installed version or a newer one, and "
                  f"{archives.set_by[top.path]} ranks it ({archives.prio[top.path]}) above the security "
                  f"archive ({p_new})")


def _label(release: Release) -> str:
    return release.suite or release.codename or release.path


def _shown(priority: int) -> str:
    return "never" if priority == NEVER else str(priority)
