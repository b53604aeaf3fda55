"""The kernel command line as the kernel parses it (Documentation/admin-guide/kernel-parameters.rst,
kernel-parameters.txt and the handlers in the kernel source).

- Words are cut as lib/cmdline.c ``next_arg()`` cuts them, on the raw bytes: at the kernel's blanks
  (lib/ctype.c: tab, newline, \\v, \\f, \\r, space and byte 0xA0 — not 0x1C, not U+2003) outside
  double quotes. A quote toggles quoting wherever it stands, and an unclosed one runs to the end of
  the line; a NUL ends it. ``name="quoted value"`` and ``"name=value"`` lose their quotes.
- Parameters end at ``--`` (quoted or not, once its quotes are gone: kernel/params.c ``parse_args()``):
  what follows is handed to init, not to the kernel.
- In parameter names, ``-`` and ``_`` are the same (``kvm-intel.nested`` is ``kvm_intel.nested``).
- A parameter given twice is handled twice, in order; what each handler keeps differs, so the checks
  ask for every occurrence where it matters (``iommu=off`` is never undone, a value a handler refuses
  leaves the earlier one in place).
- ``mitigations=``: ``off``, ``auto``, ``auto,nosmt``, and since Linux 6.17 attack-vector controls
  (``auto,no_user_kernel,no_user_user,no_guest_host,no_guest_guest,no_cross_thread``,
  Documentation/admin-guide/hw-vuln/attack_vector_controls.rst). An older kernel rejects a value it
  does not know ("Unsupported mitigations=…") and keeps what it had (an earlier occurrence's value,
  or its default, ``auto``). Since 6.17 an attack vector one occurrence turns off is not turned on by
  a later one, and the options before one the kernel rejects have already applied.
"""

from __future__ import annotations

import re

from msgspec import Struct

__all__ = ["ATTACK_VECTORS", "Cmdline", "Mitigations", "kernel_version", "kstrtobool", "parse_cmdline",
           "split_cmdline"]

ATTACK_VECTORS = ("user_kernel", "user_user", "guest_host", "guest_guest", "cross_thread")
_VECTORS_SINCE = (6, 17)


def _norm(name: str) -> str:
    return name.replace("-", "_")


class Param(Struct, frozen=True):
    name: str  # normalised: "-" → "_"
    value: str | None  # None for a bare flag ("nosmt")
    text: str  # as written


class Mitigations(Struct, frozen=True):
    """The effective ``mitigations=`` setting."""

    mode: str  # "auto" (the default) | "off"
    nosmt: bool
    disabled_vectors: tuple[str, ...]  # attack vectors turned off ("guest_host" …)
    written: str | None  # the occurrence that decided, as written; None: not given
    ignored: str | None = None  # why the written value has no effect on this kernel


class Cmdline(Struct, frozen=True):
    params: tuple[Param, ...]
    init_args: tuple[str, ...]  # after "--"

    def last(self, name: str) -> Param | None:
        """The occurrence that wins (the last), by normalised name."""
        key = _norm(name)
        for p in reversed(self.params):
            if p.name == key:
                return p
        return None

    def value(self, name: str) -> str | None:
        p = self.last(name)
        return None if p is None else p.value

    def has(self, name: str) -> bool:
        return self.last(name) is not None

    def every(self, name: str) -> list[Param]:
        """Every occurrence, in order, by normalised name."""
        key = _norm(name)
        return [p for p in self.params if p.name == key]

    def mitigations(self, kernel: tuple[int, int] | None) -> Mitigations:
        """``mitigations=`` as this kernel reads it; ``kernel`` is (major, minor) or None when unknown
        (then the weaker of the two readings below: a kernel that may ignore a setting is not assumed to)."""
        given = [p for p in self.every("mitigations") if p.value is not None]
        if not given:
            return Mitigations("auto", False, (), None)
        if kernel is not None and kernel < _VECTORS_SINCE:
            return _mitigations_before_vectors(given, kernel)
        return _mitigations_with_vectors(given)


def _mitigations_before_vectors(given: list[Param], kernel: tuple[int, int]) -> Mitigations:
    """Before 6.17 (kernel/cpu.c mitigations_parse_cmdline): exactly ``off``, ``auto`` or ``auto,nosmt``;
    anything else is "Unsupported" and leaves the setting as it was."""
    state = Mitigations("auto", False, (), None)
    refused: list[str] = []
    for p in given:
        if p.value == "off":
            state = Mitigations("off", False, ATTACK_VECTORS, p.text)
        elif p.value == "auto":
            state = Mitigations("auto", False, (), p.text)
        elif p.value == "auto,nosmt":
            state = Mitigations("auto", True, (), p.text)
        else:
            refused.append(p.text)
    if not refused:
        return state
    why = (f"Linux {kernel[0]}.{kernel[1]} rejects {' '.join(refused)} (\"Unsupported mitigations=\"; "
           "attack-vector controls came in 6.17) and keeps " + (state.written or "its default, auto"))
    return Mitigations(state.mode, state.nosmt, state.disabled_vectors, state.written or refused[-1], why)


def _mitigations_with_vectors(given: list[Param]) -> Mitigations:
    """Since 6.17: each occurrence's options apply left to right until one the kernel does not know; an
    attack vector turned off (by ``off`` or ``no_…``) stays off, whatever follows."""
    off = False
    nosmt = False
    vectors: dict[str, None] = {}
    refused: list[str] = []
    decided: str | None = None
    for p in given:
        options = (p.value or "").split(",")
        head = options[0]
        if head.startswith("off"):  # matched as a prefix: "off;" has turned everything off when refused
            off = True
            vectors.update(dict.fromkeys(ATTACK_VECTORS))
        if head not in ("off", "auto"):
            refused.append(p.text)
            continue
        decided = p.text
        nosmt = False
        for option in options[1:]:
            if option == "nosmt":
                nosmt = True
            elif option.startswith("no_") and option[3:] in ATTACK_VECTORS:
                vectors[option[3:]] = None
            else:
                refused.append(p.text)
                break
    why = None
    if refused:
        why = (f"the kernel rejects {' '.join(dict.fromkeys(refused))} (\"Unsupported mitigations=\") where "
               "it does not know an option; the options before it apply")
    # Every occurrence took part: the setting is all of them, as written.
    written = " ".join(dict.fromkeys(p.text for p in given)) if len(given) > 1 else (decided or refused[-1])
    return Mitigations("off" if off else "auto", nosmt and not off,
                       tuple(v for v in ATTACK_VECTORS if v in vectors), written, why)


def kstrtobool(text: str | None) -> bool | None:
    """lib/kstrtox.c ``kstrtobool()`` as ``param_set_bool()`` calls it (a bare flag is "1"): None when
    the kernel refuses the value (the parameter then keeps what it had)."""
    value = "1" if text is None else text
    first = value[:1]
    if first in ("y", "Y", "t", "T", "1"):
        return True
    if first in ("n", "N", "f", "F", "0"):
        return False
    if first in ("o", "O"):
        second = value[1:2]
        if second in ("n", "N"):
            return True
        if second in ("f", "F"):
            return False
    return None


# lib/ctype.c: the kernel's isspace() — \t \n \v \f \r, space, and 0xA0 (Latin-1's no-break space).
_KERNEL_BLANKS = frozenset(b"\t\n\v\f\r \xa0")
_QUOTE = 0x22


def split_cmdline(data: bytes) -> tuple[str, ...]:
    """The words of a kernel command line (/proc/cmdline's bytes) as ``next_arg()`` cuts them, quotes
    kept (``parse_cmdline`` takes them off as the kernel does). Undecodable bytes become U+FFFD."""
    data = data.split(b"\0", 1)[0]  # a C string: the kernel reads to the first NUL
    data = data.removesuffix(b"\n")  # fs/proc/cmdline.c adds it; inside an open quote it is no value
    words: list[str] = []
    i, n = 0, len(data)
    while i < n:
        while i < n and data[i] in _KERNEL_BLANKS:
            i += 1
        if i >= n:
            break
        start, quoted = i, False
        while i < n and (quoted or data[i] not in _KERNEL_BLANKS):
            if data[i] == _QUOTE:
                quoted = not quoted
            i += 1
        words.append(data[start:i].decode("utf-8", "replace"))
    return tuple(words)


def _next_arg(word: str) -> tuple[str, str | None]:
    """(name, value) of one word, as ``next_arg()`` takes its quotes off (kernel/params.c)."""
    quoted = word.startswith('"')
    args = word[1:] if quoted else word
    end = len(args)
    equals = args.find("=", 1)  # C: an "=" at index 0 leaves "no equals sign found yet"
    cut = end
    value_start = -1
    if equals >= 0:
        value_start = equals + 1
        if value_start < end and args[value_start] == '"':
            value_start += 1
            if args[end - 1] == '"':
                cut = end - 1
    if quoted and end > 0 and args[end - 1] == '"':
        cut = end - 1
    if equals < 0:
        return args[:cut], None
    return args[:equals], args[value_start:cut] if value_start <= cut else ""


def parse_cmdline(tokens: tuple[str, ...]) -> Cmdline:
    """``tokens``: the words :func:`split_cmdline` cut, quotes kept."""
    params: list[Param] = []
    init: tuple[str, ...] = ()
    for i, token in enumerate(tokens):
        name, value = _next_arg(token)
        if value is None and name == "--":
            init = tuple(tokens[i + 1:])
            break
        params.append(Param(_norm(name), value, token))
    return Cmdline(tuple(params), init)


def kernel_version(release: str | None) -> tuple[int, int] | None:
    """(major, minor) of a kernel release string ("6.1.0-18-amd64" → (6, 1))."""
    m = re.match(r"(\d+)\.(\d+)", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else None
