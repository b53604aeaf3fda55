"""/etc/os-release (fallback /usr/lib/os-release) → :class:`OsRelease`.

The file is a list of shell-style ``KEY=value`` assignments; values may be double- or single-quoted,
and inside double quotes ``\\"``, ``\\\\``, ``\\$`` and ``\\``` are escapes (os-release(5)). Nothing
is ever evaluated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import OsRelease

if TYPE_CHECKING:
    from vmsec.reading import Reader

PATHS = ("/etc/os-release", "/usr/lib/os-release")
MAX_BYTES = 64 * 1024


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        out: list[str] = []
        body = value[1:-1]
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body) and body[i + 1] in '"\\$`':
                out.append(body[i + 1])
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)
    return value


def parse_os_release(text: str, origin: str) -> OsRelease:
    """Parse os-release text. Lines that are not ``KEY=value`` assignments are ignored."""
    values: dict[str, str] = {}
    for line in text.splitlines()[:1000]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and key.isidentifier():
            values[key] = _unquote(value)
    return OsRelease(
        id=values.get("ID", "").lower() or None,
        id_like=tuple(values.get("ID_LIKE", "").lower().split()),
        version_id=values.get("VERSION_ID") or None,
        version_codename=values.get("VERSION_CODENAME") or None,
        name=values.get("NAME") or None,
        pretty_name=values.get("PRETTY_NAME") or None,
        origin=origin,
    )


def read_os_release(reader: Reader) -> OsRelease:
    """The OS identification of ``reader``'s root.

    Raises :class:`ReadError` when neither file exists or the one that exists cannot be read.
    """
    for path in PATHS:
        try:
            text = reader.read_text(path, MAX_BYTES)
        except ReadError as exc:
            if exc.absent:
                continue
            raise
        return parse_os_release(text, path)
    raise ReadError(PATHS[0], f"neither {' nor '.join(PATHS)} exists", ErrorKind.ABSENT)
