"""One path component matched as glibc's glob(3) matches it with flags 0 (fnmatch with FNM_PERIOD,
in the C locale sshd runs in): on bytes, ``*`` ``?`` and ``[...]`` sets with ``!``/``^`` negation,
ranges by byte value and ``[:class:]`` names, a backslash quoting the next character, and a ``[``
without its ``]`` taken literally. Python's fnmatch knows no classes and no escapes, and matches
characters, not bytes.

Matched without backtracking (the last ``*`` takes one more byte at a time), so a component pattern
from a guest costs at most the product of the two lengths.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["glob_sort_key", "has_magic", "match_component", "unescape"]

_CLASSES: dict[bytes, Callable[[int], bool]] = {
    b"alnum": lambda c: bytes([c]).isalnum(), b"alpha": lambda c: bytes([c]).isalpha(),
    b"blank": lambda c: c in (0x20, 0x09), b"cntrl": lambda c: c < 0x20 or c == 0x7F,
    b"digit": lambda c: 0x30 <= c <= 0x39, b"graph": lambda c: 0x21 <= c <= 0x7E,
    b"lower": lambda c: 0x61 <= c <= 0x7A, b"print": lambda c: 0x20 <= c <= 0x7E,
    b"punct": lambda c: 0x21 <= c <= 0x7E and not bytes([c]).isalnum(),
    b"space": lambda c: c in b" \t\n\v\f\r", b"upper": lambda c: 0x41 <= c <= 0x5A,
    b"xdigit": lambda c: bytes([c]) in b"0123456789abcdefABCDEF",
}
_STAR = "*"
_ANY = "?"
_NEVER = -1  # no byte equals it
# "*", "?", a byte, or a set: (negated, byte ranges, classes)
_Token = str | int | tuple[bool, tuple[tuple[int, int], ...], tuple[Callable[[int], bool], ...]]


class _NoMatch(Exception):
    """The pattern holds a construct glibc refuses: it matches nothing."""


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _set(pattern: bytes, start: int) -> tuple[_Token, int] | None:
    """The set that opens at ``pattern[start]`` ("[") and the index after it; None: no closing "]"."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in b"!^"
    i += negate
    ranges: list[tuple[int, int]] = []
    classes: list[Callable[[int], bool]] = []
    first = True
    while i < len(pattern):
        c = pattern[i]
        if c == 0x5D and not first:  # "]"
            return (negate, tuple(ranges), tuple(classes)), i + 1
        first = False
        if c == 0x5B and pattern[i + 1:i + 2] == b":":  # "[:class:]"
            end = pattern.find(b":]", i + 2)
            if end >= 0:
                if pattern[i + 2:end] not in _CLASSES:
                    raise _NoMatch  # glibc: an unknown class name fails the whole match
                classes.append(_CLASSES[pattern[i + 2:end]])
                i = end + 2
                continue
        if c == 0x5B and pattern[i + 1:i + 2] in (b".", b"="):  # "[.x.]", "[=x=]": one byte in C
            close = pattern[i + 1:i + 2] + b"]"
            end = pattern.find(close, i + 2)
            if end != i + 3:
                raise _NoMatch
            ranges.append((pattern[i + 2], pattern[i + 2]))
            i = end + 2
            continue
        if c == 0x5C and i + 1 < len(pattern):  # a backslash quotes the next byte
            i += 1
            c = pattern[i]
        low = c
        i += 1
        if pattern[i:i + 1] == b"-" and i + 1 < len(pattern) and pattern[i + 1] != 0x5D:
            high = pattern[i + 1]
            if high == 0x5C and i + 2 < len(pattern):
                high = pattern[i + 2]
                i += 1
            i += 2
            ranges.append((low, high))
        else:
            ranges.append((low, low))
    return None


def _tokens(pattern: bytes) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == 0x2A:
            if not out or out[-1] != _STAR:
                out.append(_STAR)
            i += 1
        elif c == 0x3F:
            out.append(_ANY)
            i += 1
        elif c == 0x5B and (parsed := _set(pattern, i)) is not None:
            out.append(parsed[0])
            i = parsed[1]
        elif c == 0x5C:  # a backslash quotes the next byte; a trailing one matches nothing
            out.append(pattern[i + 1] if i + 1 < len(pattern) else _NEVER)
            i += 2
        else:
            out.append(c)
            i += 1
    return out


def _one(token: _Token, byte: int) -> bool:
    if token == _ANY:
        return True
    if isinstance(token, int):
        return token == byte
    assert isinstance(token, tuple)
    negate, ranges, classes = token
    hit = any(low <= byte <= high for low, high in ranges) or any(test(byte) for test in classes)
    return hit != negate


def match_component(name: str, pattern: str) -> bool:
    """Does ``pattern`` match the whole file name ``name`` (both as the bytes of the file system)?
    A leading dot in the name is matched only by a leading dot in the pattern (FNM_PERIOD)."""
    text, pat = _encode(name), _encode(pattern)
    if text.startswith(b".") and not (pat.startswith(b".") or pat.startswith(b"\\.")):
        return False
    try:
        tokens = _tokens(pat)
    except _NoMatch:
        return False
    t = p = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(tokens) and tokens[p] == _STAR:
            star, resume = p, t
            p += 1
        elif p < len(tokens) and _one(tokens[p], text[t]):
            t += 1
            p += 1
        elif star >= 0:
            resume += 1
            t, p = resume, star + 1
        else:
            return False
    while p < len(tokens) and tokens[p] == _STAR:
        p += 1
    return p == len(tokens)


def has_magic(pattern: str) -> bool:
    """Whether glob(3) treats the component as a pattern (an unquoted ``*``, ``?`` or ``[``)."""
    i, opened = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c in "*?" or (c == "]" and opened):  # glibc __glob_pattern_type: "[" counts with a "]"
            return True
        opened = opened or c == "["
        i += 1
    return False


def unescape(component: str) -> str:
    """A component without wildcards as glob(3) looks it up: each backslash quotes the next character."""
    out: list[str] = []
    i = 0
    while i < len(component):
        if component[i] == "\\" and i + 1 < len(component):
            i += 1
        out.append(component[i])
        i += 1
    return "".join(out)


def glob_sort_key(path: str) -> bytes:
    """glob(3)'s order in the C locale: by the bytes of the path."""
    return _encode(path)
