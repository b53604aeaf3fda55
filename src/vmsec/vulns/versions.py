"""Version ordering exactly as the package managers define it: dpkg, rpm and apk.

Matching an installed package against a distribution's "fixed in" version is only as good as the
comparison, and every ecosystem has its own rules (dpkg's ``~``, rpm's ``~`` and ``^``, apk's suffixes
and ``-rN``). Each comparator here follows its package manager's own algorithm and is proven against
the upstream test vectors and oracle pairs (tests/vulns/test_versions.py). Versions the package
manager itself rejects raise :class:`InvalidVersion` with the reason — never a guessed order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from msgspec import Struct

from vmsec.errors import VmsecError


class InvalidVersion(VmsecError, ValueError):
    """A version string the package manager would refuse."""

    def __init__(self, version: str, ecosystem: str, reason: str) -> None:
        super().__init__(f"invalid {ecosystem} version {version!r}: {reason}")
        self.version = version
        self.reason = reason


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


# --- dpkg -------------------------------------------------------------------------------------

_STRTOL = re.compile(r"[+-]?[0-9]+")
_DPKG_UPSTREAM_OK = re.compile(r"[A-Za-z0-9.+~:-]*")
_DPKG_REVISION_OK = re.compile(r"[A-Za-z0-9.+~]*")


class DebianVersion(Struct, frozen=True):
    epoch: int
    upstream: str
    revision: str
    warning: str | None = None  # dpkg accepts these with a warning (e.g. a non-digit first char)

    @classmethod
    def parse(cls, text: str) -> DebianVersion:
        """Parse as dpkg's parseversion(): errors raise, warnings are kept on the result."""
        s = text.strip(" \t")
        if not s:
            raise InvalidVersion(text, "dpkg", "version string is empty")
        if any(c in " \t" for c in s):
            raise InvalidVersion(text, "dpkg", "version string has embedded spaces")
        epoch = 0
        if ":" in s:
            epoch_text, _, rest = s.partition(":")
            # As strtol(): an optional sign, then digits, and nothing else before the colon.
            m = _STRTOL.match(epoch_text)
            if m is None or not m.group(0):
                raise InvalidVersion(text, "dpkg", "epoch in version is empty")
            if m.end() != len(epoch_text):
                raise InvalidVersion(text, "dpkg", "epoch in version is not number")
            epoch = int(epoch_text)
            if epoch < 0:
                raise InvalidVersion(text, "dpkg", "epoch in version is negative")
            if epoch > 2**31 - 1:
                raise InvalidVersion(text, "dpkg", "epoch in version is too big")
            if not rest:
                raise InvalidVersion(text, "dpkg", "nothing after colon in version number")
            s = rest
        upstream, hyphen, revision = s.rpartition("-")
        if not hyphen:
            upstream, revision = s, ""
        elif not revision:
            raise InvalidVersion(text, "dpkg", "revision number is empty")
        if not upstream:
            raise InvalidVersion(text, "dpkg", "upstream version is empty")
        warning = None
        if not (upstream[0].isascii() and upstream[0].isdigit()):
            warning = "version number does not start with digit"
        elif not _DPKG_UPSTREAM_OK.fullmatch(upstream):
            warning = "invalid character in version number"
        elif not _DPKG_REVISION_OK.fullmatch(revision):
            warning = "invalid character in revision number"
        return cls(epoch, upstream, revision, warning)


def _dpkg_order(c: str) -> int:
    # lib/dpkg/version.c order(): ASCII tests only (C's isdigit/isalpha) — "²" or "é" are neither.
    if "0" <= c <= "9":
        return 0
    if "a" <= c <= "z" or "A" <= c <= "Z":
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256 if c else 0


def _as_bytes(s: str) -> str:
    """dpkg compares a version's bytes: outside ASCII, one character per UTF-8 byte (as its code)."""
    return s if s.isascii() else s.encode("utf-8", "surrogatepass").decode("latin-1")


def _dpkg_verrevcmp(a: str, b: str) -> int:
    a, b = _as_bytes(a), _as_bytes(b)
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not "0" <= a[i] <= "9") or (j < lb and not "0" <= b[j] <= "9"):
            ac = _dpkg_order(a[i]) if i < la else 0
            bc = _dpkg_order(b[j]) if j < lb else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and j < lb and "0" <= a[i] <= "9" and "0" <= b[j] <= "9":
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and "0" <= a[i] <= "9":
            return 1
        if j < lb and "0" <= b[j] <= "9":
            return -1
        if first_diff:
            return first_diff
    return 0


@lru_cache(maxsize=65536)
def _parse_deb(text: str) -> DebianVersion:
    # A scan compares the same installed and fixed versions many times.
    return DebianVersion.parse(text)


def dpkg_compare(a: str | DebianVersion, b: str | DebianVersion) -> int:
    """-1, 0 or 1 as ``dpkg --compare-versions a lt|eq|gt b``."""
    if isinstance(a, str) and isinstance(b, str):
        return _dpkg_compare_cached(a, b)
    return _dpkg_compare(a, b)


@lru_cache(maxsize=262144)
def _dpkg_compare_cached(a: str, b: str) -> int:
    # Scans of many similar guests compare the same (installed, fixed) pairs over and over.
    return _dpkg_compare(a, b)


def _dpkg_compare(a: str | DebianVersion, b: str | DebianVersion) -> int:
    va = a if isinstance(a, DebianVersion) else _parse_deb(a)
    vb = b if isinstance(b, DebianVersion) else _parse_deb(b)
    if va.epoch != vb.epoch:
        return _sign(va.epoch - vb.epoch)
    return (_sign(_dpkg_verrevcmp(va.upstream, vb.upstream))
            or _sign(_dpkg_verrevcmp(va.revision, vb.revision)))


# --- rpm --------------------------------------------------------------------------------------


def _ascii_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def rpmvercmp(a: str, b: str) -> int:
    """rpm's segment comparison (rpmvercmp), with ``~`` (sorts before anything) and ``^`` (sorts after
    the base version but before any further segment)."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        while i < la and not _ascii_alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < lb and not _ascii_alnum(b[j]) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        si, sj = i, j
        if ca.isdigit():
            while i < la and a[i].isascii() and a[i].isdigit():
                i += 1
            while j < lb and b[j].isascii() and b[j].isdigit():
                j += 1
            isnum = True
        else:
            while i < la and a[i].isascii() and a[i].isalpha():
                i += 1
            while j < lb and b[j].isascii() and b[j].isalpha():
                j += 1
            isnum = False
        seg_a, seg_b = a[si:i], b[sj:j]
        if not seg_b:
            return 1 if isnum else -1
        if isnum:
            seg_a = seg_a.lstrip("0")
            seg_b = seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def rpm_label_compare(a: tuple[str | None, str | None, str | None],
                      b: tuple[str | None, str | None, str | None]) -> int:
    """rpm.labelCompare((epoch, version, release), …): a missing epoch is "0"; a missing field sorts
    below a present one; every field is compared with :func:`rpmvercmp`."""

    def values(x: str | None, y: str | None) -> int:
        if x is None and y is None:
            return 0
        if y is None:
            return 1
        if x is None:
            return -1
        return rpmvercmp(x, y)

    return (values(a[0] if a[0] is not None else "0", b[0] if b[0] is not None else "0")
            or values(a[1], b[1]) or values(a[2], b[2]))


def parse_evr(text: str) -> tuple[str | None, str, str | None]:
    """Split ``[epoch:]version[-release]`` as rpm does (release after the last '-')."""
    epoch: str | None = None
    if ":" in text:
        head, _, rest = text.partition(":")
        if head.isdigit():
            epoch, text = head, rest
    version, dash, release = text.rpartition("-")
    if not dash:
        return epoch, text, None
    return epoch, version, release


def rpm_compare(a: str, b: str) -> int:
    """Compare two ``[epoch:]version-release`` strings as rpm does."""
    return rpm_label_compare(parse_evr(a), parse_evr(b))


# --- apk --------------------------------------------------------------------------------------

# Token kinds, in the order that gives them meaning (a later kind ends a shorter version).
_INITIAL_DIGIT, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _COMMIT_HASH, _REVISION_NO, _END, _INVALID = range(9)
_SUFFIX_NONE = 5
_SUFFIXES = {"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10}
_HEX = frozenset("0123456789abcdefABCDEF")

APK_EQUAL, APK_LESS, APK_GREATER, APK_FUZZY = 1, 2, 4, 8


class _ApkTokens:
    """A cursor over an apk version, one token at a time (Gentoo-style grammar:
    digit{.digit}…{letter}{_suffix{#}}…{~hash}{-r#})."""

    __slots__ = ("kind", "number", "pos", "s", "suffix", "value")

    def __init__(self, s: str) -> None:
        self.s = s
        self.pos = 0
        self.kind = _INITIAL_DIGIT
        self.suffix = 0
        self.number = 0
        self.value = ""
        self._digits()

    def _digits(self) -> None:
        start = self.pos
        while self.pos < len(self.s) and self.s[self.pos].isascii() and self.s[self.pos].isdigit():
            self.pos += 1
        self.value = self.s[start:self.pos]
        self.number = int(self.value) if self.value else 0
        if not self.value:
            self.kind = _INVALID

    def advance(self) -> None:
        s, kind = self.s, self.kind
        if self.pos >= len(s):
            self.kind = _END
            return
        c = s[self.pos]
        if "a" <= c <= "z":
            if kind > _DIGIT:
                self.kind = _INVALID
                return
            self.value = c
            self.kind = _LETTER
            self.pos += 1
        elif c == "." or (c.isascii() and c.isdigit()):
            if c == ".":
                if kind > _DIGIT:
                    self.kind = _INVALID
                    return
                self.pos += 1
            if kind in (_INITIAL_DIGIT, _DIGIT):
                self.kind = _DIGIT
            elif kind == _SUFFIX:
                self.kind = _SUFFIX_NO
            else:
                self.kind = _INVALID
                return
            self._digits()
        elif c == "_":
            if kind > _SUFFIX_NO:
                self.kind = _INVALID
                return
            self.pos += 1
            start = self.pos
            while self.pos < len(s) and "a" <= s[self.pos] <= "z":
                self.pos += 1
            self.value = s[start:self.pos]
            self.suffix = _SUFFIXES.get(self.value, 0)
            self.kind = _SUFFIX if self.suffix else _INVALID
        elif c == "~":
            if kind >= _COMMIT_HASH:
                self.kind = _INVALID
                return
            self.pos += 1
            start = self.pos
            while self.pos < len(s) and s[self.pos] in _HEX:
                self.pos += 1
            self.value = s[start:self.pos]
            self.kind = _COMMIT_HASH if self.value else _INVALID
        elif c == "-":
            if kind >= _REVISION_NO or not s.startswith("-r", self.pos):
                self.kind = _INVALID
                return
            self.pos += 2
            self.kind = _REVISION_NO
            self._digits()
        else:
            self.kind = _INVALID


def _apk_token_cmp(a: _ApkTokens, b: _ApkTokens) -> int:
    kind = a.kind
    if kind == _DIGIT and (a.value.startswith("0") or b.value.startswith("0")):
        # A fraction-like component with a leading zero compares as text (Gentoo rule).
        return APK_LESS if a.value < b.value else APK_GREATER if a.value > b.value else APK_EQUAL
    if kind in (_DIGIT, _INITIAL_DIGIT, _SUFFIX_NO, _REVISION_NO):
        x, y = a.number, b.number
    elif kind == _LETTER:
        x, y = ord(a.value[0]), ord(b.value[0])
    elif kind == _SUFFIX:
        x, y = a.suffix, b.suffix
    else:
        return APK_LESS if a.value < b.value else APK_GREATER if a.value > b.value else APK_EQUAL
    return APK_LESS if x < y else APK_GREATER if x > y else APK_EQUAL


def apk_validate(version: str) -> bool:
    t = _ApkTokens(version)
    while t.kind < _END:
        t.advance()
    return t.kind == _END


def _apk_compare_mask(a: str, b: str, fuzzy: bool = False) -> int:
    ta, tb = _ApkTokens(a), _ApkTokens(b)
    while ta.kind == tb.kind and ta.kind < _END:
        r = _apk_token_cmp(ta, tb)
        if r != APK_EQUAL:
            return r
        ta.advance()
        tb.advance()
    if ta.kind == tb.kind:
        return APK_EQUAL
    if tb.kind == _END and fuzzy:
        return APK_EQUAL
    if ta.kind == _SUFFIX and ta.suffix < _SUFFIX_NONE:
        return APK_LESS
    if tb.kind == _SUFFIX and tb.suffix < _SUFFIX_NONE:
        return APK_GREATER
    if ta.kind > tb.kind:
        return APK_LESS
    if tb.kind > ta.kind:
        return APK_GREATER
    return APK_EQUAL


def apk_match(a: str, op: str, b: str) -> bool:
    """``apk version -t``-style test: does ``a op b`` hold? op is one of < <= = >= > ~ <~ >~."""
    mask = 0
    for c in op:
        mask |= {"<": APK_LESS, ">": APK_GREATER, "=": APK_EQUAL, "~": APK_FUZZY | APK_EQUAL}.get(c, 0)
    return bool(_apk_compare_mask(a, b, bool(mask & APK_FUZZY)) & mask)


def apk_compare(a: str, b: str) -> int:
    """-1, 0 or 1. Invalid versions raise :class:`InvalidVersion` (apk itself would refuse them)."""
    for v in (a, b):
        if not apk_validate(v):
            raise InvalidVersion(v, "apk", "not a valid apk version")
    r = _apk_compare_mask(a, b)
    return -1 if r == APK_LESS else 1 if r == APK_GREATER else 0


COMPARATORS: dict[str, Callable[[str, str], int]] = {
    "dpkg": dpkg_compare,
    "rpm": rpm_compare,
    "apk": apk_compare,
}
