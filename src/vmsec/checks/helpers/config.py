"""libvirt-syntax configuration settings as the checks use them (libvirtd.conf, virtqemud.conf,
qemu.conf …).

:func:`qemu_settings` is the preamble of every qemu.conf check in one call: without qemu.conf (the QEMU
driver is not installed or was not collected) the check does not apply; when qemu.conf cannot be read
the check says UNKNOWN naming the file and why — never PASS.
"""

from __future__ import annotations

import posixpath

from vmsec.checks.api import FactMissing, NotApplicable, Result, ev, unknown
from vmsec.facts import ConfigFile, ConfValue, Host, Setting
from vmsec.findings import Evidence

__all__ = ["conf_name", "daemon_of", "qemu_conf", "qemu_settings", "settings", "sev", "show", "unreadable",
           "unreadable_reason", "where"]


def conf_name(conf: ConfigFile) -> str:
    return posixpath.basename(conf.path)


def daemon_of(conf: ConfigFile) -> str:
    return conf_name(conf).removesuffix(".conf")


def unreadable_reason(conf: ConfigFile) -> str:
    if conf.error:
        why = conf.error
    elif conf.present is None:
        why = "whether it exists could not be told"
    else:
        why = "it could not be read"
    return f"{conf_name(conf)} could not be read: {why}"


def unreadable(conf: ConfigFile, subject: str) -> Result:
    return unknown(subject, unreadable_reason(conf), ev(conf.path))


def sev(s: Setting) -> Evidence:
    """Evidence for a setting: where it was set (or that the default applies), key, value."""
    return ev(s.origin, s.key, s.value)


def show(value: ConfValue | None) -> str:
    """A value as it would be written in the configuration file."""
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return str(value)


def where(s: Setting) -> str:
    """`(libvirtd.conf:22)` or `(libvirtd.conf default)` for messages."""
    name = posixpath.basename(s.path)
    return f"({name}:{s.line})" if s.explicit and s.line else (
        f"({name})" if s.explicit else f"({name} default)")


def settings(conf: ConfigFile, *keys: str) -> tuple[Setting, ...] | None:
    """The effective settings for ``keys``, or ``None`` when the file could not be read."""
    found = tuple(conf.setting(k) for k in keys)
    if any(s is None for s in found):
        return None
    return tuple(s for s in found if s is not None)


def qemu_conf(host: Host) -> ConfigFile:
    """The host's qemu.conf; the check does not apply (:class:`NotApplicable`) without one."""
    if host.qemu_conf is None:
        raise NotApplicable
    return host.qemu_conf


def qemu_settings(host: Host, *keys: str, subject: str) -> tuple[Setting, ...]:
    """The effective qemu.conf settings for ``keys``. Not applicable without qemu.conf; UNKNOWN for
    ``subject`` (naming the file and why) when it cannot be read."""
    conf = qemu_conf(host)
    got = settings(conf, *keys)
    if got is None:
        raise FactMissing(unreadable_reason(conf), subject, (ev(conf.path),))
    return got
