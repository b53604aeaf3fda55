"""The account databases: /etc/passwd, /etc/shadow, /etc/group and /etc/login.defs.

Password hashes are classified by their crypt prefix and then dropped: no hash ever reaches the facts.
A password field in /etc/passwd other than ``x`` (an unshadowed hash, an empty field, a lock marker)
is reported as a :class:`ShadowEntry` whose ``origin`` is ``/etc/passwd:<line>``, so the checks can
see unshadowed and empty passwords without a second fact type.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import Account, Group, ShadowEntry
from vmsec.parsers.lines import C_SPACE, split_lines

if TYPE_CHECKING:
    from vmsec.reading import Reader

MAX_BYTES = 8 * 1024 * 1024  # a passwd file with ~100k accounts; larger is refused unread
MAX_LINES = 200_000
LOGIN_DEFS_BYTES = 256 * 1024

_DES = re.compile(r"^[./0-9A-Za-z]{13}$")
_BIGCRYPT = re.compile(r"^[./0-9A-Za-z]{24,}$")
_PREFIXES = (
    ("$y$", "yescrypt"),
    ("$gy$", "gost-yescrypt"),
    ("$7$", "scrypt"),
    ("$6$", "sha512"),
    ("$5$", "sha256"),
    ("$2a$", "bcrypt"),
    ("$2b$", "bcrypt"),
    ("$2y$", "bcrypt"),
    ("$2x$", "bcrypt"),
    ("$1$", "md5"),
    ("$md5", "sunmd5"),
    ("$sha1$", "sha1crypt"),
    ("$3$", "nt"),
    ("_", "bsdi"),
)
_NO_PASSWORD = frozenset({"*", "!", "!!", "!*", "*LK*", "*NP*", "!!*", "x"})


def classify_hash(field: str) -> tuple[str | None, bool, bool]:
    """(algorithm, empty, locked) of a crypt(5) password field.

    Algorithms: yescrypt, gost-yescrypt, scrypt, sha512, sha256, bcrypt, md5, sunmd5, sha1crypt, nt,
    bsdi, des, bigcrypt, unknown. ``!``/``!!``/``*`` and friends are locked with no hash;
    ``!<hash>`` is locked but the hash is still there (crackable offline), so its algorithm is kept.
    """
    if field == "":
        return None, True, False
    if field in _NO_PASSWORD:
        return None, False, True
    locked = False
    rest = field
    while rest.startswith("!"):
        locked = True
        rest = rest[1:]
    if rest.startswith("*"):
        return None, False, True
    if rest == "":
        return None, False, True
    for prefix, name in _PREFIXES:
        if rest.startswith(prefix):
            return name, False, locked
    if _DES.match(rest):
        return "des", False, locked
    if _BIGCRYPT.match(rest):
        return "bigcrypt", False, locked
    return "unknown", False, locked


def lock_mark(field: str) -> str | None:
    """"!" for a field sshd's LOCKED_PASSWD_PREFIX check refuses (Linux: a leading "!"), "*" for
    other disabled fields ("*", "*LK*", "x"), None for a usable or empty field."""
    if field.startswith("!"):
        return "!"
    if field in _NO_PASSWORD or field.startswith("*"):
        return "*"
    return None


def _int(text: str) -> int | None:
    """A numeric field as glibc's strtoul reads it: C white space, an optional sign, ASCII digits — so
    ``+0`` and ``-0`` are UID 0 to the system (and a negative number wraps, as it does for uid_t)."""
    match = _NUMBER.fullmatch(text)
    if match is None or len(match.group(2)) > 11:
        return None
    value = int(match.group(2))
    return (-value) % 2**32 if match.group(1) == "-" else value


_NUMBER = re.compile("[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def _lines(text: str, origin: str) -> list[str]:
    lines = split_lines(text)
    if len(lines) > MAX_LINES:
        raise ReadError(origin, f"more than {MAX_LINES} lines", ErrorKind.TOO_LARGE)
    return lines


def parse_passwd(text: str, origin: str = "/etc/passwd"
                 ) -> tuple[tuple[Account, ...], tuple[ShadowEntry, ...]]:
    """Accounts in passwd(5) text, and a :class:`ShadowEntry` for each password field that is not ``x``.

    NIS compat lines (``+``/``-``) and lines with fewer than 7 fields are skipped.
    """
    accounts: list[Account] = []
    inline: list[ShadowEntry] = []
    for number, line in enumerate(_lines(text, origin), 1):
        if not line.strip() or line.startswith(("#", "+", "-")):
            continue
        fields = line.split(":")
        if len(fields) < 7 or not fields[0]:
            continue
        name = fields[0]
        where = f"{origin}:{number}"
        accounts.append(Account(name=name, uid=_int(fields[2]), gid=_int(fields[3]), gecos=fields[4] or None,
                                home=fields[5] or None, shell=fields[6].strip() or None, origin=where))
        if fields[1] != "x":
            algorithm, empty, locked = classify_hash(fields[1])
            inline.append(ShadowEntry(name=name, hash_algorithm=algorithm, empty=empty, locked=locked,
                                      lock_mark=lock_mark(fields[1]) if locked else None, origin=where))
    return tuple(accounts), tuple(inline)


def parse_shadow(text: str, origin: str = "/etc/shadow") -> tuple[ShadowEntry, ...]:
    """Entries of shadow(5) text: the hash's algorithm and state, never the hash."""
    entries: list[ShadowEntry] = []
    for number, line in enumerate(_lines(text, origin), 1):
        if not line.strip() or line.startswith(("#", "+", "-")):
            continue
        fields = line.split(":")
        if len(fields) < 2 or not fields[0]:
            continue
        fields += [""] * (9 - len(fields))
        algorithm, empty, locked = classify_hash(fields[1])
        entries.append(ShadowEntry(name=fields[0], hash_algorithm=algorithm, empty=empty, locked=locked,
                                   lock_mark=lock_mark(fields[1]) if locked else None,
                                   last_change=_int(fields[2]), max_days=_int(fields[4]),
                                   origin=f"{origin}:{number}"))
    return tuple(entries)


def parse_group(text: str, origin: str = "/etc/group") -> tuple[Group, ...]:
    """Groups in group(5) text with their listed members (primary-group members are not listed there)."""
    groups: list[Group] = []
    for number, line in enumerate(_lines(text, origin), 1):
        if not line.strip() or line.startswith(("#", "+", "-")):
            continue
        fields = line.split(":")
        if len(fields) < 3 or not fields[0]:
            continue
        members = fields[3] if len(fields) > 3 else ""
        groups.append(Group(name=fields[0], gid=_int(fields[2]),
                            members=tuple(m.strip() for m in members.split(",") if m.strip()),
                            origin=f"{origin}:{number}"))
    return tuple(groups)


def parse_login_defs(text: str, origin: str = "/etc/login.defs") -> dict[str, str]:
    """``KEY value`` settings of login.defs(5) as shadow-utils' getdef.c reads them: trailing white space
    trimmed, the name after leading blanks (space, tab) up to the next blank, the value after blanks and
    double quotes up to the next double quote; a line with one field is ignored; a later setting of the
    same key wins. (Not Python's split(): it also splits at \\v, U+0085, U+2028 …, which login keeps.)"""
    settings: dict[str, str] = {}
    for line in _lines(text, origin):
        line = line.rstrip(C_SPACE).lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        name, blank, _ = line.replace("\t", " ").partition(" ")
        if not blank:
            continue
        value = line[len(name) + 1:].lstrip(' "\t').split('"', 1)[0]
        settings[name] = value
    return settings


def _read(reader: Reader, path: str, limit: int = MAX_BYTES) -> str:
    return reader.read_text(path, limit)


def read_passwd(reader: Reader) -> tuple[tuple[Account, ...], tuple[ShadowEntry, ...]]:
    """Accounts of /etc/passwd and its non-``x`` password fields. Raises :class:`ReadError`."""
    return parse_passwd(_read(reader, "/etc/passwd"), "/etc/passwd")


def read_shadow(reader: Reader) -> tuple[ShadowEntry, ...]:
    """Entries of /etc/shadow. Raises :class:`ReadError`: no shadow file is unknown, not "no hashes"."""
    return parse_shadow(_read(reader, "/etc/shadow"), "/etc/shadow")


def read_group(reader: Reader) -> tuple[Group, ...]:
    """Groups of /etc/group. Raises :class:`ReadError`."""
    return parse_group(_read(reader, "/etc/group"), "/etc/group")


def read_login_defs(reader: Reader) -> dict[str, str]:
    """Settings of /etc/login.defs; an empty mapping when the file does not exist (Alpine without
    shadow-utils, where the compiled-in defaults apply). Raises :class:`ReadError` when it exists but
    cannot be read."""
    try:
        text = _read(reader, "/etc/login.defs", LOGIN_DEFS_BYTES)
    except ReadError as exc:
        if exc.absent:
            return {}
        raise
    return parse_login_defs(text)
