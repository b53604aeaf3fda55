"""qemu.conf: the host-wide defaults for VM consoles (VNC, SPICE): where they listen, TLS, and
passwords. Domain XML can override these per VM; the domain console checks judge each display."""

from __future__ import annotations

import re
from collections.abc import Iterator

from vmsec.checks.addresses import is_loopback
from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.config import qemu_conf, qemu_settings, sev, show, where
from vmsec.checks.qemu.confinement import QEMU_CONF_DOC
from vmsec.facts import ConfigFile, Host, PasswordState, Setting
from vmsec.findings import Evidence

VNC_SECURITY = "https://www.qemu.org/docs/master/system/vnc-security.html"
_LOOPBACK_DEFAULT = "127.0.0.1"


def effective_verify(conf: ConfigFile, key: str, builtin: bool) -> tuple[bool | None, Evidence, str]:
    """A ``*_tls_x509_verify`` value as libvirt resolves it: the key itself, else
    ``default_tls_x509_verify`` when that is set, else the key's built-in default (0 for VNC, 1 for
    chardev, migration and backup). Returns the value, evidence and a phrase for messages."""
    specific = conf.setting(key)
    default = conf.setting("default_tls_x509_verify")
    if specific is None or default is None:
        return None, ev(conf.path, key), "qemu.conf could not be read"
    if specific.explicit:
        return specific.as_bool(), sev(specific), f"{key} = {show(specific.value)} {where(specific)}"
    if default.explicit:
        return (default.as_bool(), sev(default),
                f"default_tls_x509_verify = {show(default.value)} {where(default)}, inherited by {key}")
    return (builtin, ev(f"{conf.path} (default)", key, int(builtin)),
            f"{key} is unset and defaults to {int(builtin)}")


def listen_address(s: Setting) -> str | None:
    """The effective listen address: the value, 127.0.0.1 when unset; None when not a string."""
    if s.value is None:
        return _LOOPBACK_DEFAULT
    return s.as_str()


def _not_an_address(subject: str, s: Setting) -> Result:
    return unknown(subject, f"{s.key} = {show(s.value)} {where(s)} is not an address", sev(s))


def _mechanisms(host: Host, service: str) -> tuple[str, ...] | None:
    if host.sasl_configs is None or service not in host.sasl_configs:
        return None
    text = host.sasl_configs[service].get("mech_list")
    return None if text is None else tuple(m.lower() for m in re.split(r"[\s,]+", text.strip()) if m)


@check("VMS-QEMU-016", title="VNC listens on loopback, or requires TLS with client certificates",
       severity=Severity.HIGH, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "qemu", "console", "vnc"),
       references=(VNC_SECURITY, QEMU_CONF_DOC))
def vnc_listen_tls(host: Host) -> Iterator[Result]:
    """`vnc_listen` is where every VNC display without its own address listens. On a public address
    the guest's screen and keyboard cross the network; qemu.conf strongly recommends TLS with x509
    client verification (VeNCrypt) then. VNC's own password scheme is 8 characters and no encryption.

    Remediation: Keep `vnc_listen = "127.0.0.1"` (the default) or `vnc_auto_unix_socket = 1` and
    reach consoles through SSH or a proxy; if it must listen publicly, set `vnc_tls = 1` and
    `vnc_tls_x509_verify = 1`.
    """
    subject = "qemu.conf vnc_listen"
    conf = qemu_conf(host)
    listen, auto, tls = qemu_settings(host, "vnc_listen", "vnc_auto_unix_socket", "vnc_tls", subject=subject)
    address = listen_address(listen)
    if address is None:
        yield _not_an_address(subject, listen)
        return
    if auto.as_bool():
        yield ok(subject, f"vnc_auto_unix_socket = 1 {where(auto)}: VNC uses UNIX sockets", sev(auto))
        return
    if is_loopback(address):
        yield ok(subject, f"vnc_listen = \"{address}\" {where(listen)}: loopback only", sev(listen))
        return
    verify, verify_ev, verify_text = effective_verify(conf, "vnc_tls_x509_verify", False)
    if tls.as_bool() and verify:
        yield ok(subject, f"vnc_listen = \"{address}\" with vnc_tls = 1 and client certificate "
                 f"verification ({verify_text})", sev(listen), sev(tls), verify_ev)
        return
    missing = "no TLS (vnc_tls = 0)" if not tls.as_bool() else f"no client verification ({verify_text})"
    yield fail(subject, f"vnc_listen = \"{address}\" {where(listen)} is reachable from the network "
               f"with {missing}: consoles can be intercepted or taken over", sev(listen), sev(tls),
               verify_ev)


def _domains_without_vnc_password(env: Environment) -> list[str]:
    names = []
    for dom in env.inventory.domains:
        if any(g.type == "vnc" and g.password in (PasswordState.ABSENT, PasswordState.EMPTY)
               for g in dom.graphics):
            names.append(dom.name)
    return sorted(names)


@check("VMS-QEMU-017", title="Network-reachable VNC displays require a password or SASL",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, "qemu", "console", "vnc"),
       references=(VNC_SECURITY, QEMU_CONF_DOC))
def vnc_default_auth(host: Host, env: Environment) -> Iterator[Result]:
    """With a public `vnc_listen`, a VNC display whose domain sets no `passwd` falls back to
    qemu.conf's `vnc_password`; if that is unset too and SASL is off, anyone who reaches the port
    gets the guest's console (critical when such a domain exists). SASL without TLS must use GSSAPI,
    the only mechanism that encrypts.

    Remediation: Keep VNC on loopback; otherwise set `vnc_tls = 1` with x509 verification, and
    `vnc_sasl = 1` (GSSAPI) or at least `vnc_password`.
    """
    subject = "qemu.conf vnc authentication"
    listen, auto, password, sasl, tls = qemu_settings(host, "vnc_listen", "vnc_auto_unix_socket",
                                                      "vnc_password", "vnc_sasl", "vnc_tls", subject=subject)
    address = listen_address(listen)
    if address is None:
        yield _not_an_address(subject, listen)
        return
    if auto.as_bool() or is_loopback(address):
        yield ok(subject, f"VNC is not reachable from the network (vnc_listen = \"{address}\", "
                 f"vnc_auto_unix_socket = {show(auto.value)})", sev(listen), sev(auto))
        return
    if sasl.as_bool():
        mechs = _mechanisms(host, "qemu")
        # Cite the SASL file only when it was read (a finding never cites a file not read).
        sasl_ev = (ev("/etc/sasl2/qemu.conf", "mech_list", mechs) if mechs is not None
                   else ev("/etc/sasl2/qemu.conf (not read or no mech_list)", "mech_list"))
        if tls.as_bool() or (mechs is not None and set(mechs) <= {"gssapi"} and mechs):
            yield ok(subject, f"vnc_sasl = 1 {where(sasl)} with "
                     f"{'TLS' if tls.as_bool() else 'GSSAPI'}", sev(sasl), sev(tls), sasl_ev)
        else:
            yield fail(subject, f"vnc_sasl = 1 {where(sasl)} without TLS and with mechanisms "
                       f"{', '.join(mechs) if mechs else '(not configured)'}: credentials or the "
                       "session cross the network unprotected", sev(sasl), sev(tls), sasl_ev,
                       severity=Severity.HIGH)
        return
    if password.explicit:
        yield ok(subject, f"vnc_password is set {where(password)}: displays without their own "
                 "passwd use it", ev(password.origin, "vnc_password", "(set)"))
        return
    exposed = _domains_without_vnc_password(env)
    if exposed:
        shown = ", ".join(exposed[:8]) + (" …" if len(exposed) > 8 else "")
        yield fail(subject, f"vnc_listen = \"{address}\" {where(listen)}, no vnc_password, vnc_sasl "
                   f"= 0, and domains {shown} set no VNC passwd: their consoles are open to the "
                   "network", sev(listen), sev(sasl))
    else:
        yield fail(subject, f"vnc_listen = \"{address}\" {where(listen)} with no vnc_password and "
                   "vnc_sasl = 0: any VNC display defined without its own passwd is open to the "
                   "network", sev(listen), sev(sasl), severity=Severity.HIGH)


@check("VMS-QEMU-018", title="SPICE listens on loopback, or requires TLS and authentication",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "qemu", "console",
                                         "spice"),
       references=(QEMU_CONF_DOC, "https://www.spice-space.org/spice-user-manual.html"))
def spice_listen(host: Host) -> Iterator[Result]:
    """`spice_listen` is where SPICE displays without their own address listen. On a public address,
    SPICE without `spice_tls` sends the console in clear (high); without `spice_password` or
    `spice_sasl` anyone who reaches it controls the guest (critical).

    Remediation: Keep `spice_listen = "127.0.0.1"` (the default) or `spice_auto_unix_socket = 1`;
    otherwise set `spice_tls = 1` and `spice_sasl = 1` or `spice_password`.
    """
    subject = "qemu.conf spice_listen"
    listen, auto, tls, password, sasl = qemu_settings(host, "spice_listen", "spice_auto_unix_socket",
                                                      "spice_tls", "spice_password", "spice_sasl",
                                                      subject=subject)
    address = listen_address(listen)
    if address is None:
        yield _not_an_address(subject, listen)
        return
    if auto.as_bool() or is_loopback(address):
        yield ok(subject, f"SPICE is not reachable from the network (spice_listen = \"{address}\", "
                 f"spice_auto_unix_socket = {show(auto.value)})", sev(listen), sev(auto))
        return
    authenticated = password.explicit or bool(sasl.as_bool())
    problems = []
    if not tls.as_bool():
        problems.append("no TLS (spice_tls = 0)")
    if not authenticated:
        problems.append("no spice_password and spice_sasl = 0")
    evidence = (sev(listen), sev(tls), sev(sasl), ev(password.origin, "spice_password",
                                                       "(set)" if password.explicit else None))
    if problems:
        yield fail(subject, f"spice_listen = \"{address}\" {where(listen)} is reachable from the "
                   f"network with {' and '.join(problems)}", *evidence,
                   severity=Severity.HIGH if authenticated else Severity.CRITICAL)
    else:
        yield ok(subject, f"spice_listen = \"{address}\" with TLS and authentication", *evidence)
