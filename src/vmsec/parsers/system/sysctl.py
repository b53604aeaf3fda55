"""The kernel parameters a root's configuration sets at boot, resolved as systemd-sysctl (252) does.

sysctl.d(5): files ``*.conf`` from /etc/sysctl.d, /run/sysctl.d, /usr/local/lib/sysctl.d,
/usr/lib/sysctl.d and /lib/sysctl.d are merged by file name — a name in an earlier directory hides
the same name in later ones, and a symlink to /dev/null masks it — then read in lexical order of
the names. /etc/sysctl.conf is read last only where procps' ``sysctl --system`` runs at boot (no
systemd-sysctl); Debian and RHEL link it in as /etc/sysctl.d/99-sysctl.conf, where systemd reads it.
Lines end at ``\\n``, ``\\r`` or NUL (systemd's read_line) and are stripped of space, tab, CR and LF
only. A key is normalised as sysctl_normalize does it — when its first separator is ``.``, dots and
slashes swap; the path is simplified (``net.ipv4..ip_forward`` is ``net.ipv4.ip_forward``) and one
leading ``/`` dropped — and kept in vmsec's dotted form (a dot inside a name, as in ``eth0.100``, is
written ``/``). One leading ``-`` on an assignment ignores failures; ``-key`` alone is a negative
match that globs skip. A key assigned again moves to the end (globs apply in that order); glob keys
(``*``, ``?``, ``[``) are kept as written.
"""

from __future__ import annotations

import posixpath
import re

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import SysctlValue
from vmsec.parsers.system._common import (
    MAX_LINES,
    Errors,
    link_target,
    list_dir,
    note,
    read_optional,
    unreadable,
)
from vmsec.reading import Reader

SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d",
               "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"
MAX_FILES = 1_000
MAX_KEYS = 50_000


def normalize_key(key: str) -> str:
    """systemd's sysctl_normalize and path_simplify, in vmsec's dotted form (see the module docstring)."""
    key = key.strip(_SYSTEMD_WHITESPACE)
    first = next((c for c in key if c in "./"), None)
    path = key.translate(_SWAP) if first == "." else key  # the slash form systemd writes under /proc/sys
    parts = [c for c in path.split("/") if c and c != "."]
    if path.startswith("/") and not parts:
        return "/"
    return ".".join(c.replace(".", "/") for c in parts)


_SWAP = str.maketrans("./", "/.")
_SYSTEMD_WHITESPACE = " \t\n\r"
_LINE_END = re.compile(r"\r\n|[\n\r\0]")
MAX_GLOBS = 4_096


def sysctl_files(reader: Reader, errors: Errors | None = None) -> list[str]:
    """The files applied, in order (the last one wins), as systemd-sysctl then ``sysctl --system``."""
    chosen: dict[str, str] = {}
    for directory in SYSCTL_DIRS:
        for name in list_dir(reader, directory, errors):
            if name.endswith(".conf") and name not in chosen:
                chosen[name] = f"{directory}/{name}"
    if len(chosen) > MAX_FILES:
        unreadable(errors, ReadError("sysctl.d", f"{len(chosen)} files; only the first {MAX_FILES} by name "
                                     "are read", ErrorKind.TOO_LARGE))
    files: list[str] = []
    # procps' `sysctl --system` reads /etc/sysctl.conf after sysctl.d; with systemd-sysctl (Debian 12
    # even links procps.service to it) only the 99-sysctl.conf link brings it in
    linked_conf = any(reader.exists(f"{d}/systemd/systemd-sysctl") for d in ("/lib", "/usr/lib"))
    for name in sorted(chosen)[:MAX_FILES]:
        path = chosen[name]
        target = link_target(reader, path)
        if target == "/dev/null":
            continue  # masked
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target)) if target else None
        if resolved == SYSCTL_CONF:
            linked_conf = True  # read here, once
        files.append(path)
    if not linked_conf:
        files.append(SYSCTL_CONF)
    return files


def parse_sysctl(text: str, path: str, into: dict[str, SysctlValue], errors: Errors | None,
                 glob_count: list[int] | None = None) -> None:
    """Apply one file's assignments to ``into``, as systemd-sysctl's parse_file does. ``glob_count``
    carries the number of glob keys in ``into`` from file to file (counted here when not given)."""
    raw_lines = _LINE_END.split(text)
    if len(raw_lines) > MAX_LINES:
        unreadable(errors, ReadError(path, f"more than {MAX_LINES} lines; the rest was not read",
                                     ErrorKind.TOO_LARGE))
    counter = glob_count if glob_count is not None else [sum(1 for k in into if _is_glob(k))]
    for number, raw in enumerate(raw_lines[:MAX_LINES], start=1):
        line = raw.strip(_SYSTEMD_WHITESPACE)
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        excluded = False
        if sep:
            key = key.removeprefix("-")  # ignore failures of this write
        elif key.startswith("-"):
            key, excluded = key[1:], True  # a negative match: globs leave this key alone
        else:
            note(errors, f"{path}:{number}", "not a sysctl assignment")
            continue
        key = normalize_key(key)
        if not key or any(not c.isprintable() for c in key):
            note(errors, f"{path}:{number}", "not a sysctl assignment")
            continue
        if len(into) >= MAX_KEYS or (_is_glob(key) and counter[0] >= MAX_GLOBS):
            limit = (f"more than {MAX_KEYS} keys" if len(into) >= MAX_KEYS
                     else f"more than {MAX_GLOBS} glob keys")
            unreadable(errors, ReadError(path, f"{limit}; the rest was not read", ErrorKind.TOO_LARGE))
            return
        setting = SysctlValue(value="" if excluded else value.strip(_SYSTEMD_WHITESPACE),
                              origin=f"{path}:{number}", excluded=excluded)
        existing = into.get(key)
        if existing is not None and existing.value == setting.value and existing.excluded == excluded:
            continue  # the same assignment again keeps its place
        previous = into.pop(key, None)  # assigned again: it moves to the end, where globs apply later
        into[key] = setting
        if previous is None and _is_glob(key):
            counter[0] += 1


def _is_glob(key: str) -> bool:
    return any(c in key for c in "*?[")


def read_sysctl(reader: Reader, *, errors: Errors | None = None) -> dict[str, SysctlValue]:
    """Key → the value the boot configuration sets and the ``path:line`` that sets it.

    A directory over the listing cap or an unreadable file is appended to ``errors`` and skipped.
    """
    values: dict[str, SysctlValue] = {}
    glob_count = [0]
    for path in sysctl_files(reader, errors):
        text = read_optional(reader, path, errors)
        if text is not None:
            parse_sysctl(text, path, values, errors, glob_count)
    return values
