"""The kernel parameters a root's configuration sets at boot, resolved as systemd-sysctl does.

sysctl.d(5): files ``*.conf`` from /etc/sysctl.d, /run/sysctl.d, /usr/local/lib/sysctl.d,
/usr/lib/sysctl.d and /lib/sysctl.d are merged by file name — a name in an earlier directory hides
the same name in later ones, and a symlink to /dev/null masks it — then read in lexical order of
the names. /etc/sysctl.conf is read last (procps ``sysctl --system``; Debian and RHEL also link it
in as /etc/sysctl.d/99-sysctl.conf, in which case it is read once, there, as systemd does). The last
assignment of a key wins. Keys are normalised: when the first separator is ``/``, slashes and dots
swap (``net/ipv4/conf/eth0.100/rp_filter`` → ``net.ipv4.conf.eth0/100.rp_filter``). A leading
``-`` (ignore failures) is dropped; glob keys (``net.ipv4.conf.*.rp_filter``) are kept as written.
"""

from __future__ import annotations

import posixpath

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import SysctlValue
from vmsec.parsers.system._common import Errors, lines, link_target, list_dir, note, read_optional, unreadable
from vmsec.reading import Reader

SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d",
               "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"
MAX_FILES = 1_000
MAX_KEYS = 50_000


def normalize_key(key: str) -> str:
    """systemd's sysctl_normalize: a key whose first separator is '/' has its '/' and '.' swapped."""
    key = key.strip()
    for char in key:
        if char == ".":
            return key
        if char == "/":
            return key.strip("/").translate(str.maketrans("./", "/."))
    return key


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
    linked_conf = False
    for name in sorted(chosen)[:MAX_FILES]:
        path = chosen[name]
        target = link_target(reader, path)
        if target == "/dev/null":
            continue  # masked
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target)) if target else None
        if resolved == SYSCTL_CONF:
            linked_conf = True
        files.append(path)
    if not linked_conf:
        files.append(SYSCTL_CONF)
    return files


def parse_sysctl(text: str, path: str, into: dict[str, SysctlValue], errors: Errors | None) -> None:
    """Apply one file's assignments to ``into``."""
    for number, line in lines(text, errors, path):
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("-").strip()
        if not sep or not key or any(c.isspace() or not c.isprintable() for c in key):
            note(errors, f"{path}:{number}", "not a sysctl assignment")
            continue
        if len(into) >= MAX_KEYS:
            unreadable(errors, ReadError(path, f"more than {MAX_KEYS} keys; the rest is ignored",
                                         ErrorKind.TOO_LARGE))
            return
        into[normalize_key(key)] = SysctlValue(value=value.strip(), origin=f"{path}:{number}")


def read_sysctl(reader: Reader, *, errors: Errors | None = None) -> dict[str, SysctlValue]:
    """Key → the value the boot configuration sets and the ``path:line`` that sets it.

    A directory over the listing cap or an unreadable file is appended to ``errors`` and skipped.
    """
    values: dict[str, SysctlValue] = {}
    for path in sysctl_files(reader, errors):
        text = read_optional(reader, path, errors)
        if text is not None:
            parse_sysctl(text, path, values, errors)
    return values
