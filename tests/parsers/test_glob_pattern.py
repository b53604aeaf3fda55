"""Include patterns matched as glibc's glob(3) matches them: every short pattern and name over an
alphabet of the special characters, compared with glibc's own fnmatch(FNM_PERIOD) in the C locale."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

from vmsec.parsers.glob_pattern import glob_sort_key, has_magic, match_component, unescape

ORACLE = r"""
import ctypes, itertools, json, sys
libc = ctypes.CDLL("libc.so.6")
libc.fnmatch.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
pairs = json.load(sys.stdin)
enc = lambda t: t.encode("utf-8", "surrogateescape")
print(json.dumps([libc.fnmatch(enc(p), enc(n), 4) == 0 for p, n in pairs]))  # 4: FNM_PERIOD
"""


def _glibc(pairs: list[tuple[str, str]]) -> list[bool]:
    proc = subprocess.run([sys.executable, "-c", ORACLE], input=json.dumps(pairs), capture_output=True,
                          text=True, check=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_patterns_match_as_glibc_fnmatch_does() -> None:
    patterns = ["".join(p) for n in range(1, 4) for p in itertools.product("a*?[]!^-\\:.=", repeat=n)]
    patterns += ["".join(p) for p in itertools.product("a*[]!-\\", repeat=4)]
    patterns += ["[[:digit:]]*.conf", "[[:alpha:]]", "[![:digit:]]x", "[a-c]", "[]a]", "[^a]", "\\*.conf",
                 "5\\0-*.conf", "[\\]]", "[a\\-z]", "[z-a]", "*.c[", "[[:bogus:]]", ".*", "\\.x"]
    names = ["".join(n) for k in range(0, 4) for n in itertools.product("a]-.\\:5", repeat=k)]
    names += ["50-cloud-init.conf", "x.conf", "*.conf", "9", "\udcff.conf", "\ue000.conf", "é", "["]
    pairs = [(p, n) for p in patterns for n in names]
    expected = _glibc(pairs)
    wrong = [(p, n, e) for (p, n), e in zip(pairs, expected, strict=True) if match_component(n, p) != e]
    assert len(wrong) == 0, wrong[:20]


def test_magic_unescape_and_order() -> None:
    assert has_magic("*.conf") and has_magic("a[bc]") and not has_magic("a[b") and not has_magic("\\*x")
    assert unescape("\\*.conf") == "*.conf" and unescape("a\\\\b") == "a\\b"
    # The C locale's order is the bytes': U+E000 (EE 80 80) before an undecodable FF.
    assert sorted(["\udcff.conf", "\ue000.conf", "a.conf"], key=glob_sort_key) == [
        "a.conf", "\ue000.conf", "\udcff.conf"]
