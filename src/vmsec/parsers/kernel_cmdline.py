"""The kernel command line as the kernel parses it (Documentation/admin-guide/kernel-parameters.rst,
kernel-parameters.txt and the handlers in the kernel source).

- Parameters end at ``--``: what follows is handed to init, not to the kernel.
- In parameter names, ``-`` and ``_`` are the same (``kvm-intel.nested`` is ``kvm_intel.nested``).
- ``name="quoted value"`` loses its quotes.
- A parameter given twice is handled twice, in order, so the last occurrence wins for the settings
  judged here (``mitigations=off mitigations=auto`` leaves mitigations on).
- ``mitigations=``: ``off``, ``auto``, ``auto,nosmt``, and since Linux 6.17 attack-vector controls
  (``auto,no_user_kernel,no_user_user,no_guest_host,no_guest_guest,no_cross_thread``,
  Documentation/admin-guide/hw-vuln/attack_vector_controls.rst). An older kernel rejects a value it
  does not know ("Unsupported mitigations=…") and keeps its default, ``auto``.
"""

from __future__ import annotations

import re

from msgspec import Struct

__all__ = ["ATTACK_VECTORS", "Cmdline", "Mitigations", "kernel_version", "parse_cmdline"]

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

    def mitigations(self, kernel: tuple[int, int] | None) -> Mitigations:
        """``mitigations=`` as this kernel reads it; ``kernel`` is (major, minor) or None when unknown
        (then attack-vector controls are read as written, and ``ignored`` stays None)."""
        p = self.last("mitigations")
        if p is None or p.value is None:
            return Mitigations("auto", False, (), None)
        parts = [x.strip() for x in p.value.split(",") if x.strip()]
        head, rest = (parts[0] if parts else ""), parts[1:]
        if head == "off" and not rest:
            return Mitigations("off", False, ATTACK_VECTORS, p.text)
        if head == "auto" and rest == ["nosmt"]:
            return Mitigations("auto", True, (), p.text)
        if head == "auto" and not rest:
            return Mitigations("auto", False, (), p.text)
        vectors = [r.removeprefix("no_") for r in rest if r.startswith("no_")]
        known = all(r == "nosmt" or (r.startswith("no_") and r[3:] in ATTACK_VECTORS) for r in rest)
        if head in ("auto", "off") and known:
            if kernel is not None and kernel < _VECTORS_SINCE:
                return Mitigations("auto", False, (), p.text,
                                   ignored=f"Linux {kernel[0]}.{kernel[1]} predates attack-vector controls "
                                   "(6.17): it rejects the value and keeps mitigations=auto")
            return Mitigations(head, "nosmt" in rest or "cross_thread" in vectors, tuple(vectors), p.text)
        return Mitigations("auto", False, (), p.text,
                           ignored="the kernel rejects this value (\"Unsupported mitigations=\") and keeps "
                           "mitigations=auto")


_QUOTED = re.compile(r'^([^=]+)="(.*)"$', re.S)


def parse_cmdline(tokens: tuple[str, ...]) -> Cmdline:
    """``tokens`` as /proc/cmdline splits on blanks (quotes kept together)."""
    params: list[Param] = []
    init: tuple[str, ...] = ()
    for i, token in enumerate(tokens):
        if token == "--":
            init = tuple(tokens[i + 1:])
            break
        text = token
        m = _QUOTED.match(token)
        if m:
            token = f"{m.group(1)}={m.group(2)}"
        elif token.startswith('"') and token.endswith('"') and len(token) > 1:
            token = token[1:-1]
        name, sep, value = token.partition("=")
        params.append(Param(_norm(name), value if sep else None, text))
    return Cmdline(tuple(params), init)


def kernel_version(release: str | None) -> tuple[int, int] | None:
    """(major, minor) of a kernel release string ("6.1.0-18-amd64" → (6, 1))."""
    m = re.match(r"(\d+)\.(\d+)", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else None
