"""qemu.conf as a per-VM check sees it: the host's effective value when qemu.conf was read, else the
value libvirt documents as the default — recorded, so the result can say so.

The rule every listener and transport check follows (docs/verdicts.md, class 3): an exposure found
under the documented defaults is reported (FAIL) with the qemu.conf keys that could change it named;
a conclusion that would PASS only because an unread file is assumed to hold its defaults is UNKNOWN,
naming the same keys — unknown is never pass, and an exposure is never hidden behind UNKNOWN.
"""

from __future__ import annotations

from vmsec.checks.api import Environment, Result, ev
from vmsec.facts import Setting
from vmsec.findings import Evidence, Status
from vmsec.parsers.libvirt_defaults import QEMU_CONF_DEFAULTS

__all__ = ["UNREAD", "QemuConf"]

UNREAD = "qemu.conf (not read)"


class QemuConf:
    """The qemu.conf settings one result depends on (create one per subject)."""

    def __init__(self, env: Environment) -> None:
        conf = env.host.qemu_conf if env.host is not None else None
        self._conf = conf if conf is not None and conf.readable else None
        self._why = "qemu.conf could not be read" if conf is not None else "qemu.conf was not read"
        self.assumed: list[str] = []

    @property
    def read(self) -> bool:
        return self._conf is not None

    def get(self, key: str) -> Setting:
        """The effective setting; the documented default (recorded as assumed) when qemu.conf is unread."""
        if self._conf is not None:
            s = self._conf.setting(key)
            assert s is not None  # readable
            return s
        if key not in self.assumed:
            self.assumed.append(key)
        return Setting(key=key, value=QEMU_CONF_DEFAULTS.get(key), explicit=False, path=UNREAD)

    def flag(self, key: str, default: bool) -> bool | None:
        """A 0/1 flag: the default when unset; None when the value is not an integer."""
        s = self.get(key)
        if s.value is None:
            return default
        return s.as_bool()

    def evidence(self, key: str) -> Evidence:
        s = self.get(key)
        if s.path == UNREAD:
            return ev(UNREAD, key, f"{s.value if s.value is not None else '(unset)'} (documented default)")
        return ev(s.origin, s.key, s.value)

    def note(self) -> str:
        keys = ", ".join(f"{k} = {_show(QEMU_CONF_DEFAULTS.get(k))}" for k in self.assumed)
        return f"{self._why}: this holds under its documented defaults ({keys}), which qemu.conf can change"

    def mark(self) -> int:
        """A point to :meth:`settle` ``since``: keys assumed after it are the only ones that count."""
        return len(self.assumed)

    def settle(self, result: Result, *, only: int | None = None) -> Result:
        """Apply the rule: a FAIL under assumed defaults names them; a PASS under them is UNKNOWN.
        ``only``: count just the keys assumed before this :meth:`mark` (a conclusion that did not
        depend on the later ones)."""
        if only is not None:
            self.assumed = self.assumed[:only]
        if not self.assumed or result.status is Status.UNKNOWN:
            return result
        if result.status is Status.FAIL:
            return result._replace(message=f"{result.message} ({self.note()})")
        if result.status is Status.PASS:
            return result._replace(status=Status.UNKNOWN, message=f"{result.message}, but only if qemu.conf "
                                   f"keeps its defaults: {self.note()}")
        return result


def _show(value: object) -> str:
    if value is None:
        return "unset"
    return f'"{value}"' if isinstance(value, str) else str(value)
