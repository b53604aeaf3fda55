"""Lines and white space as the programs that read configuration files see them.

Python's ``str.splitlines()`` also ends a line at ``\\v``, ``\\f``, ``\\x1c``–``\\x1e``, ``\\x85``,
U+2028 and U+2029, and ``str.strip()`` removes any Unicode white space. The programs whose files vmsec
reads (glibc's getpwent and getmntent, login, Linux-PAM, libpwquality, systemd, sysctl) end a line
at ``\\n`` and trim only C's ``isspace`` set. A guest that is hostile can use the difference to hide a
setting: ``# note\\fnet.ipv4.ip_forward = 0`` is one comment line to systemd-sysctl, but a comment and
a setting to ``splitlines()``; ``\\x85ENCRYPT_METHOD YESCRYPT`` is an unknown key to login, but a
known one once ``strip()`` took the ``\\x85``. Parsers of such files split and trim with these.
"""

from __future__ import annotations

import re

C_SPACE = " \t\n\v\f\r"  # C's isspace() in the "C" locale
_C_SPACES = re.compile("[ \t\n\v\f\r]+")


def split_lines(text: str) -> list[str]:
    """The lines of ``text``, split at ``\\n`` only (a final newline ends the last line; it does not
    start an empty one). A ``\\r`` stays in its line: :func:`strip_c` removes it at either end."""
    split = text.split("\n")
    if split[-1] == "":
        split.pop()
    return split


def strip_c(text: str) -> str:
    """``text`` without C white space at either end (``str.strip()`` also takes U+0085, U+00A0,
    U+2028 … and ``\\x1c``–``\\x1f``, which C programs keep as part of a word)."""
    return text.strip(C_SPACE)


def split_c(text: str, maxsplit: int = 0) -> list[str]:
    """``text`` split at runs of C white space (``str.split()`` also splits at U+0085, U+2028 …)."""
    stripped = strip_c(text)
    return _C_SPACES.split(stripped, maxsplit) if stripped else []
