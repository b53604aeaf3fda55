"""LVM's text metadata (/etc/lvm/backup/<vg>, written by every LVM command that changes a volume
group): which physical volumes each logical volume's extents lie on, so that a root file system on
LVM can be traced to the device below it — a LUKS mapping crypttab opens, or a plain partition.

The syntax is LVM's configuration tree (libdevmapper's dm_config, the same as lvm.conf): sections
``name { … }``, settings ``key = value`` with strings, numbers or ``[ … ]`` arrays, ``#`` comments
to the end of the line. A physical volume's ``device`` is a hint (the name it had when the backup
was written): enough to tell a ``/dev/mapper/…_crypt`` mapping from a partition, which is all it is
used for. The guest wrote the file: its size, depth and token count are bounded, and anything that
is not the tree LVM writes is a :class:`~vmsec.errors.ParseError` naming the file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from vmsec.errors import ParseError, Problems, ReadError
from vmsec.facts.guest import LogicalVolume

if TYPE_CHECKING:
    from vmsec.reading import Reader

MAX_DEPTH = 16  # a VG file nests five deep (vg, logical_volumes, lv, segment, …)
MAX_TOKENS = 200_000
MAX_VOLUMES = 4096

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n\f\v]+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<punct>[{}\[\]=,])
  | (?P<word>[^\s{}\[\]=,"\#]+)
""", re.VERBOSE | re.DOTALL)


def _tokens(text: str, origin: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ParseError(origin, f"unexpected {text[pos]!r} at offset {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "space":
            continue
        out.append((kind, m.group()))
        if len(out) > MAX_TOKENS:
            raise ParseError(origin, f"more than {MAX_TOKENS} tokens: not LVM metadata")
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], origin: str) -> None:
        self.tokens, self.origin, self.i = tokens, origin, 0

    def fail(self, what: str) -> ParseError:
        return ParseError(self.origin, f"{what} (token {self.i})")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.fail("unexpected end of file")
        self.i += 1
        return token

    def section(self, depth: int, closing: bool) -> dict[str, Any]:
        """``key = value`` and ``name { … }`` until ``}`` (or the end, at the top)."""
        if depth > MAX_DEPTH:
            raise self.fail(f"sections nested deeper than {MAX_DEPTH}")
        node: dict[str, Any] = {}
        while True:
            token = self.peek()
            if token is None:
                if closing:
                    raise self.fail("a section is not closed")
                return node
            if token == ("punct", "}"):
                if not closing:
                    raise self.fail("'}' without a section")
                self.i += 1
                return node
            kind, name = self.take()
            if kind != "word":
                raise self.fail(f"a name was expected, not {name!r}")
            kind, sep = self.take()
            if sep == "{":
                node[name] = self.section(depth + 1, True)
            elif sep == "=":
                node[name] = self.value()
            else:
                raise self.fail(f"'=' or '{{' was expected after {name!r}")

    def scalar(self, kind: str, text: str) -> str | None:
        """A string (unquoted, its backslash escapes undone) or a number, as written; None for
        anything else."""
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.DOTALL)
        return text if kind == "word" else None

    def value(self) -> Any:
        kind, text = self.take()
        if (scalar := self.scalar(kind, text)) is not None:
            return scalar
        if text == "[":
            items: list[Any] = []
            while True:
                if self.peek() == ("punct", "]"):
                    self.i += 1
                    return items
                item = self.scalar(*self.take())
                if item is None:
                    raise self.fail("an array item was expected")
                items.append(item)
                if self.peek() == ("punct", ","):
                    self.i += 1
        raise self.fail(f"a value was expected, not {text!r}")


def parse_lvm_metadata(text: str, origin: str) -> tuple[LogicalVolume, ...]:
    """Every logical volume of the volume group(s) in one metadata file, with the device hints of the
    physical volumes its segments use (in segment order, each once)."""
    tree = _Parser(_tokens(text, origin), origin).section(0, False)
    volumes: list[LogicalVolume] = []
    for vg_name, vg in tree.items():
        if not isinstance(vg, dict) or "physical_volumes" not in vg:
            continue  # contents, version, description … and anything else that is no volume group
        pvs = vg.get("physical_volumes")
        lvs = vg.get("logical_volumes", {})
        if not isinstance(pvs, dict) or not isinstance(lvs, dict):
            raise ParseError(origin, f"volume group {vg_name}: its volume lists are not sections")
        hints = {name: pv.get("device") if isinstance(pv.get("device"), str) else None
                 for name, pv in pvs.items() if isinstance(pv, dict)}
        for lv_name, lv in lvs.items():
            if not isinstance(lv, dict):
                continue
            used: list[str | None] = []
            for segment in lv.values():
                if not isinstance(segment, dict) or "type" not in segment:
                    continue  # id, status … : settings of the volume, not segments
                stripes = segment.get("stripes")
                if not isinstance(stripes, list):
                    used.append(None)  # a segment type vmsec does not follow (raid, thin, cache …)
                    continue
                # ["pv0", 0, "pv1", 0]: physical volume names, each followed by its first extent
                for pv in stripes[::2]:
                    device = hints.get(pv) if isinstance(pv, str) else None
                    if device not in used:
                        used.append(device)
            if not used:
                used.append(None)
            volumes.append(LogicalVolume(vg=vg_name, name=lv_name, devices=tuple(used), origin=origin))
            if len(volumes) > MAX_VOLUMES:
                raise ParseError(origin, f"more than {MAX_VOLUMES} logical volumes")
    return tuple(volumes)


def dm_name(vg: str, lv: str) -> str:
    """The device-mapper name of a logical volume: hyphens in either name doubled, joined by one
    (debian-vg/root is /dev/mapper/debian--vg-root)."""
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


BACKUP_DIR = "/etc/lvm/backup"
MAX_FILES = 256
MAX_BYTES = 1024 * 1024  # one volume group's metadata; LVM's own limit for a copy is 1 MiB by default


def read_lvm_backups(reader: Reader, *, problems: Problems) -> tuple[LogicalVolume, ...]:
    """The logical volumes of every metadata backup in /etc/lvm/backup (none when the directory does
    not exist). A file that cannot be read or parsed is a problem named by its path, and its volume
    group stays unknown; the others are read."""
    try:
        names = reader.listdir(BACKUP_DIR, MAX_FILES)
    except ReadError as exc:
        if exc.absent:
            return ()
        raise
    volumes: list[LogicalVolume] = []
    for name in names:
        path = f"{BACKUP_DIR}/{name}"
        try:
            volumes += parse_lvm_metadata(reader.read_text(path, MAX_BYTES), path)
        except ReadError as exc:
            problems.append(exc)
    return tuple(volumes)
