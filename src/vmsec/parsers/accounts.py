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
from vmsec.facts import Account, Group, GroupShadow, ShadowEntry
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


_C_SPACE = " \t\n\v\f\r"
_ULONG_MAX = 2**64 - 1
_U32_MAX = 0xFFFFFFFF


def _strtou32(text: str) -> tuple[int, str] | None:
    """glibc nss_files' ``strtou32`` (files-parse.c): ``strtoul`` — C white space, a sign, ASCII digits,
    a negative number wrapped in 64 bits, past ULONG_MAX saturated — then anything above 32 bits
    saturated to 0xffffffff, as on 32-bit systems. (value, rest of the text), or None without digits.
    Leading zeros are free: ``000000000000`` is 0, however many there are."""
    match = _NUMBER.match(text)
    if match is None:
        return None
    digits = match.group(2).lstrip("0") or "0"
    value = int(digits) if len(digits) <= 20 else _ULONG_MAX + 1
    if value > _ULONG_MAX:
        value = _ULONG_MAX  # ERANGE: the sign no longer matters
    elif match.group(1) == "-":
        value = (-value) % 2**64
    return min(value, _U32_MAX), text[match.end():]


def _int(text: str) -> int | None:
    """A whole numeric field as nss_files' INT_FIELD reads it (``+0``, `` 0``, ``00…0`` are 0; a
    negative number is 0xffffffff unless it is ``-0``); None when glibc refuses it (no digits, or
    anything after them)."""
    parsed = _strtou32(text)
    return parsed[0] if parsed is not None and not parsed[1] else None


def _shadow_int(text: str) -> int | None:
    """A shadow(5) number as files-spwd.c converts it (``(long)(int)`` of strtou32): empty or negative
    (``-1``, a wrapped value) is "not set", None."""
    value = _int(text)
    if value is None or value > 0x7FFFFFFF:
        return None
    return value


_NUMBER = re.compile("[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def _lines(text: str, origin: str) -> list[str]:
    lines = split_lines(text)
    if len(lines) > MAX_LINES:
        raise ReadError(origin, f"more than {MAX_LINES} lines", ErrorKind.TOO_LARGE)
    return lines


def _records(text: str, origin: str) -> list[tuple[int, str]]:
    """(line number, line) of the entries nss_files reads: white space before an entry skipped (`` root``
    is root), blank lines and lines starting with ``#`` after it ignored."""
    out = []
    for number, line in enumerate(_lines(text, origin), 1):
        line = line.lstrip(_C_SPACE)
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def parse_passwd(text: str, origin: str = "/etc/passwd"
                 ) -> tuple[tuple[Account, ...], tuple[ShadowEntry, ...]]:
    """Accounts in passwd(5) text as glibc's files-pwd.c parses them, and a :class:`ShadowEntry` for
    each password field that is not ``x``.

    Four fields make an entry (name, password, UID, GID; a UID or GID glibc's INT_FIELD refuses drops
    the line); a missing GECOS or home is empty and the shell is the rest of the line — empty means
    /bin/sh to login and su. NIS compat lines (``+``/``-``) are never matched by name or UID, so skipped.
    """
    accounts: list[Account] = []
    inline: list[ShadowEntry] = []
    for number, line in _records(text, origin):
        if line.startswith(("+", "-")):
            continue
        fields = line.split(":", 6)
        if len(fields) < 4 or not fields[0]:
            continue
        uid, gid = _int(fields[2]), _int(fields[3])
        if uid is None or gid is None:
            continue
        fields += [""] * (7 - len(fields))
        name = fields[0]
        where = f"{origin}:{number}"
        accounts.append(Account(name=name, uid=uid, gid=gid, gecos=fields[4] or None, home=fields[5] or None,
                                shell=fields[6] or "/bin/sh", origin=where))
        if fields[1] != "x":
            algorithm, empty, locked = classify_hash(fields[1])
            inline.append(ShadowEntry(name=name, hash_algorithm=algorithm, empty=empty, locked=locked,
                                      lock_mark=lock_mark(fields[1]) if locked else None, origin=where))
    return tuple(accounts), tuple(inline)


def parse_shadow(text: str, origin: str = "/etc/shadow") -> tuple[ShadowEntry, ...]:
    """Entries of shadow(5) text: the hash's algorithm and state, never the hash."""
    entries: list[ShadowEntry] = []
    for number, line in _records(text, origin):
        if line.startswith(("+", "-")):
            continue
        fields = line.split(":")
        if len(fields) < 2 or not fields[0]:
            continue
        fields += [""] * (9 - len(fields))
        algorithm, empty, locked = classify_hash(fields[1])
        entries.append(ShadowEntry(name=fields[0], hash_algorithm=algorithm, empty=empty, locked=locked,
                                   lock_mark=lock_mark(fields[1]) if locked else None,
                                   last_change=_shadow_int(fields[2]), max_days=_shadow_int(fields[4]),
                                   origin=f"{origin}:{number}"))
    return tuple(entries)


def parse_group(text: str, origin: str = "/etc/group") -> tuple[Group, ...]:
    """Groups in group(5) text as glibc's files-grp.c parses them, with their listed members
    (primary-group members are not listed there): a member is what lies between commas with the white
    space before it skipped — not after it (``dave ,x`` does not make dave a member). NIS compat lines
    (``+name``) are kept: no lookup by name finds them, but the members they list get their GID."""
    groups: list[Group] = []
    for number, line in _records(text, origin):
        fields = line.split(":", 3)
        if len(fields) < 3 or not fields[0]:
            continue
        gid = _int(fields[2])
        if gid is None and not fields[0].startswith(("+", "-")):
            continue
        members = fields[3] if len(fields) > 3 else ""
        groups.append(Group(name=fields[0], gid=gid,
                            members=tuple(m for m in (e.lstrip(_C_SPACE) for e in members.split(",")) if m),
                            origin=f"{origin}:{number}"))
    return tuple(groups)


def parse_gshadow(text: str, origin: str = "/etc/gshadow") -> tuple[GroupShadow, ...]:
    """gshadow(5) lines, ``name:password:administrators:members``, as shadow-utils splits them (the
    lists at commas). Only what gives a way into the group is kept: administrators and a password."""
    entries: list[GroupShadow] = []
    for number, line in _records(text, origin):
        fields = line.split(":")
        if len(fields) < 4 or not fields[0]:
            continue
        admins = tuple(a for a in fields[2].split(",") if a)
        # A password newgrp can match is a crypt hash that is not locked: "!", "*", "x" or an empty
        # field match nothing (and an empty one lets no non-member in).
        algorithm, _empty, locked = classify_hash(fields[1])
        password = algorithm not in (None, "unknown") and not locked
        if admins or password:
            entries.append(GroupShadow(name=fields[0], admins=admins, password=password,
                                       origin=f"{origin}:{number}"))
    return tuple(entries)


_FGETS_CHUNK = 1023  # getdef.c reads with fgets(buf, 1024, fp): a longer line comes in pieces


def _getdef_lines(lines: list[str]) -> list[str]:
    """The lines as getdef.c's fgets loop sees them: a line longer than 1,023 bytes (its newline
    counted) is read as several, each parsed on its own — a 1,100-byte comment can end in a setting."""
    out: list[str] = []
    for line in lines:
        raw = (line + "\n").encode("utf-8", "surrogateescape")
        if len(raw) <= _FGETS_CHUNK:
            out.append(line)
            continue
        for start in range(0, len(raw), _FGETS_CHUNK):
            out.append(raw[start:start + _FGETS_CHUNK].decode("utf-8", "replace").removesuffix("\n"))
    return out


def parse_login_defs(text: str, origin: str = "/etc/login.defs") -> dict[str, str]:
    """``KEY value`` settings of login.defs(5) as shadow-utils' getdef.c reads them: trailing white space
    trimmed, the name after leading blanks (space, tab) up to the next blank, the value after blanks and
    double quotes up to the next double quote; a line with one field is ignored; a later setting of the
    same key wins. (Not Python's split(): it also splits at \\v, U+0085, U+2028 …, which login keeps.)"""
    settings: dict[str, str] = {}
    for line in _getdef_lines(_lines(text, origin)):
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


MAX_SHELL_LOOKUPS = 1_000
_HOPS = 8


def resolve_shells(reader: Reader, accounts: tuple[Account, ...]) -> tuple[Account, ...]:
    """Accounts whose no-login shell is a link, inside the guest, to a real shell get that shell
    (``/usr/sbin/nologin -> /bin/bash``): login execs what the link points at. At most
    MAX_SHELL_LOOKUPS accounts are looked at; a link that cannot be followed is left as written."""
    import posixpath

    from msgspec import structs

    out: list[Account] = []
    looked = 0
    for account in accounts:
        if account.can_login is not False or looked >= MAX_SHELL_LOOKUPS or not account.shell:
            out.append(account)
            continue
        looked += 1
        path = account.shell
        for _ in range(_HOPS):
            try:
                target = reader.readlink(path)
            except ReadError:
                break  # not a link (or unreadable): this is the file login would run
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if path != account.shell and Account(name="", uid=None, gid=None, shell=path).can_login:
            account = structs.replace(account, shell=f"{account.shell} -> {path}")
        out.append(account)
    return tuple(out)


def read_shadow(reader: Reader) -> tuple[ShadowEntry, ...]:
    """Entries of /etc/shadow. Raises :class:`ReadError`: no shadow file is unknown, not "no hashes"."""
    return parse_shadow(_read(reader, "/etc/shadow"), "/etc/shadow")


def read_group(reader: Reader) -> tuple[Group, ...]:
    """Groups of /etc/group. Raises :class:`ReadError`."""
    return parse_group(_read(reader, "/etc/group"), "/etc/group")


def read_gshadow(reader: Reader) -> tuple[GroupShadow, ...]:
    """Group administrators and passwords of /etc/gshadow; none when it does not exist (systems without
    shadow groups). Raises :class:`ReadError` when it exists but cannot be read."""
    try:
        return parse_gshadow(_read(reader, "/etc/gshadow"), "/etc/gshadow")
    except ReadError as exc:
        if exc.absent:
            return ()
        raise


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
