"""Per-VM consoles: VNC, SPICE, RDP/D-Bus displays and character devices (serial, console, channel).

These are configuration checks of a device: each yields one result per graphics device or
character device it applies to, and nothing when the VM has no such device. The exception is
VMS-DOM-029 (guest agent channel), a presence check that also PASSes when the channel is absent.

Where the XML leaves a value to qemu.conf (no listen address, no password, TLS) the check reads
``env.host.qemu_conf``; without it the result is UNKNOWN with the key it would have needed. The
live XML of a running VM already holds the effective listen address.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from vmsec.checks.addresses import is_loopback
from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.domain.confinement import user_writable_dir
from vmsec.facts import Chardev, Domain, Graphics, PasswordState, Setting
from vmsec.findings import Evidence


def _setting(env: Environment, key: str) -> Setting | None:
    conf = env.host.qemu_conf if env.host is not None else None
    return conf.setting(key) if conf is not None else None


def _flag(s: Setting | None, default: bool) -> bool | None:
    """A qemu.conf 0/1 flag: None when unread (or not an integer), the default when unset."""
    if s is None:
        return None
    value = s.as_bool()
    if value is not None:
        return value
    return default if s.value is None else None


def _conf_ev(s: Setting | None, key: str) -> Evidence:
    if s is None:
        return ev("qemu.conf", key, None)
    return ev(s.origin, s.key, s.value)


def _not_read(key: str) -> str:
    return f"this depends on qemu.conf {key}, which was not read"


def _tls_verify(env: Environment, specific: str, default: bool) -> tuple[bool | None, Evidence]:
    """``<x>_tls_x509_verify``, falling back to ``default_tls_x509_verify``, then the documented
    per-service default."""
    s = _setting(env, specific)
    if s is None:
        return None, _conf_ev(s, specific)
    if s.explicit:
        return _flag(s, default), _conf_ev(s, specific)
    general = _setting(env, "default_tls_x509_verify")
    if general is not None and general.explicit:
        return _flag(general, default), _conf_ev(general, general.key)
    return default, _conf_ev(s, specific)


@dataclass(frozen=True, slots=True)
class _Endpoint:
    kind: str  # address | socket | none | unknown
    address: str | None
    evidence: Evidence
    reason: str = ""

    @property
    def remote(self) -> bool:
        return self.kind == "address" and not is_loopback(self.address or "")


_LISTEN_DEFAULT = "127.0.0.1"  # qemu.conf: vnc_listen/spice_listen default


def _from_conf(env: Environment, proto: str) -> _Endpoint:
    listen_key = f"{proto}_listen"
    if proto in ("vnc", "spice"):
        auto = _setting(env, f"{proto}_auto_unix_socket")
        if _flag(auto, False):
            return _Endpoint("socket", None, _conf_ev(auto, f"{proto}_auto_unix_socket"))
    s = _setting(env, listen_key)
    if s is None:
        return _Endpoint("unknown", None, _conf_ev(s, listen_key),
                         f"listen address comes from qemu.conf {listen_key}, which was not read")
    value = s.as_str() if s.value is not None else _LISTEN_DEFAULT
    if value is None:
        return _Endpoint("unknown", None, _conf_ev(s, listen_key), f"qemu.conf {listen_key} is not a string")
    return _Endpoint("address", value, ev(s.origin, s.key, value))


def _endpoints(dom: Domain, gfx: Graphics, env: Environment, proto: str) -> list[_Endpoint]:
    """Where this display listens: each <listen>, the legacy @listen, or qemu.conf's default."""
    out: list[_Endpoint] = []
    for i, listen in enumerate(gfx.listens, start=1):
        loc = f"{gfx.locator}/listen[{i}]"
        if listen.type == "socket":
            out.append(_Endpoint("socket", None, ev(dom.origin, loc + "/@socket", listen.socket)))
        elif listen.type == "none":
            out.append(_Endpoint("none", None, ev(dom.origin, loc + "/@type", "none")))
        elif listen.address:
            out.append(_Endpoint("address", listen.address,
                                 ev(dom.origin, loc + "/@address", listen.address)))
        elif listen.type == "network":
            out.append(_network_endpoint(dom, env, loc, listen.network))
        else:  # type='address' without an address: qemu.conf decides
            out.append(_from_conf(env, proto))
    if out:
        return out
    if gfx.listen_attr:
        where = ev(dom.origin, gfx.locator + "/@listen", gfx.listen_attr)
        return [_Endpoint("address", gfx.listen_attr, where)]
    return [_from_conf(env, proto)]


def _network_endpoint(dom: Domain, env: Environment, loc: str, name: str | None) -> _Endpoint:
    where = ev(dom.origin, loc + "/@network", name)
    net = env.inventory.network(name) if name else None
    if net is None:
        return _Endpoint("unknown", None, where, f"listen network {name!r} is not in the scanned inventory")
    addresses = [ip for ip in net.ips if ip.address]
    preferred = [ip for ip in addresses if ip.family in (None, "ipv4")] or addresses
    if not preferred:
        return _Endpoint("unknown", None, where, f"network {name!r} has no IP address to listen on")
    address = preferred[0].address
    return _Endpoint("address", address, ev(net.origin, "ip/@address", address))


def _exposure(endpoints: list[_Endpoint]) -> tuple[str, list[_Endpoint]]:
    """The worst of the endpoints: remote > unknown > local > socket (UNIX socket or no listener)."""
    remote = [e for e in endpoints if e.remote]
    if remote:
        return "remote", remote
    unread = [e for e in endpoints if e.kind == "unknown"]
    if unread:
        return "unknown", unread
    local = [e for e in endpoints if e.kind == "address"]
    if local:
        return "local", local
    return "socket", endpoints


def _describe(endpoints: list[_Endpoint]) -> str:
    parts = []
    for e in endpoints:
        parts.append(e.address if e.kind == "address" else ("a UNIX socket" if e.kind == "socket" else
                                                          "no listener" if e.kind == "none" else "?"))
    return ", ".join(dict.fromkeys(p or "?" for p in parts))


def _password(dom: Domain, gfx: Graphics, env: Environment, proto: str) -> tuple[bool | None, Evidence, str]:
    """Whether a password protects the display: the XML's passwd, else qemu.conf <proto>_password.
    Returns (state, evidence, reason-when-unknown)."""
    where = ev(dom.origin, gfx.locator + "/@passwd", gfx.password.value)
    if gfx.password is PasswordState.SET:
        return True, where, ""
    if gfx.password is PasswordState.EMPTY:
        return False, where, ""
    key = f"{proto}_password"
    s = _setting(env, key)
    conf_has = s is not None and s.explicit and isinstance(s.value, str)
    if conf_has:  # qemu.conf documents that even an empty default password locks clients out
        return True, ev(s.origin if s else "qemu.conf", key, "(set)"), ""
    if gfx.password is PasswordState.HIDDEN:
        return None, where, "the XML was read without the secure flag, so a passwd would not show"
    if s is None:
        return None, _conf_ev(s, key), _not_read(key)
    return False, where, ""


@dataclass(frozen=True, slots=True)
class _VncAuth:
    strong: bool | None  # SASL, or TLS with client-certificate verification
    password: bool | None
    evidence: tuple[Evidence, ...]
    reason: str


def _vnc_auth(dom: Domain, gfx: Graphics, env: Environment) -> _VncAuth:
    sasl_s = _setting(env, "vnc_sasl")
    tls_s = _setting(env, "vnc_tls")
    sasl = _flag(sasl_s, False)
    tls = _flag(tls_s, False)
    verify, verify_ev = _tls_verify(env, "vnc_tls_x509_verify", False)
    if sasl or gfx.auth == "sasl" or (tls and verify):
        strong: bool | None = True
    elif sasl is None or tls is None or (tls and verify is None):
        strong = None
    else:
        strong = False
    password, pw_ev, pw_reason = _password(dom, gfx, env, "vnc")
    evidence = (pw_ev, _conf_ev(sasl_s, "vnc_sasl"), _conf_ev(tls_s, "vnc_tls"), verify_ev)
    reason = pw_reason or ("" if strong is not None else _not_read("vnc_sasl/vnc_tls"))
    return _VncAuth(strong, password, evidence, reason)


def _graphics(dom: Domain, kind: str) -> Iterator[Graphics]:
    return (g for g in dom.graphics if g.type == kind)


@check("VMS-DOM-020", title="VNC listens only on loopback or a UNIX socket",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "console"),
       references=("https://www.qemu.org/docs/master/system/vnc-security.html",
                   "https://libvirt.org/formatdomain.html#graphical-framebuffers"))
def vnc_listen_local(dom: Domain, env: Environment) -> Iterator[Result]:
    """A VNC server is an untrusted, network-facing interface that gives keyboard, screen and
    power control of the guest. Listening on a routable address exposes it to everyone who can
    reach the host; without authentication (VMS-DOM-021) that is full takeover of the VM.

    Remediation: Use `<listen type='socket'/>` (or `vnc_auto_unix_socket = 1`), or keep
    `127.0.0.1` and reach the console through libvirt or an authenticated proxy.
    """
    for gfx in _graphics(dom, "vnc"):
        subject = f"vnc {gfx.locator}"
        exposure, chosen = _exposure(_endpoints(dom, gfx, env, "vnc"))
        evidence = [e.evidence for e in chosen]
        if exposure == "remote":
            auth = _vnc_auth(dom, gfx, env)
            if auth.strong is False and auth.password is False:
                yield fail(subject, f"VNC listens on {_describe(chosen)} and accepts clients without "
                                    "authentication", *evidence, *auth.evidence, severity=Severity.CRITICAL)
            else:
                yield fail(subject, f"VNC listens on {_describe(chosen)}", *evidence)
        elif exposure == "unknown":
            yield unknown(subject, chosen[0].reason, *evidence)
        else:
            yield ok(subject, f"VNC listens on {_describe(chosen)}", *evidence)


@check("VMS-DOM-021", title="VNC console requires strong authentication",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "console"),
       references=("https://www.qemu.org/docs/master/system/vnc-security.html",
                   "https://libvirt.org/kbase/secureusage.html"))
def vnc_requires_auth(dom: Domain, env: Environment) -> Iterator[Result]:
    """A VNC console without authentication on a routable address is remote control of the
    guest for anyone (critical); on loopback it is for any local user or process. A VNC password
    alone is weak: the protocol uses at most 8 characters and DES, which QEMU says "can be fairly
    easily brute-forced". SASL or TLS with client-certificate verification is strong.

    Remediation: In qemu.conf set `vnc_tls = 1` and `vnc_tls_x509_verify = 1` (optionally
    `vnc_sasl = 1` with GSSAPI); for loopback-only consoles at least a `passwd=`.
    """
    for gfx in _graphics(dom, "vnc"):
        subject = f"vnc {gfx.locator}"
        exposure, chosen = _exposure(_endpoints(dom, gfx, env, "vnc"))
        listen_ev = [e.evidence for e in chosen]
        if exposure == "socket":
            yield ok(subject, f"VNC is only reachable through {_describe(chosen)}", *listen_ev)
            continue
        auth = _vnc_auth(dom, gfx, env)
        if auth.strong:
            yield ok(subject, "VNC requires SASL or a verified TLS client certificate", *auth.evidence)
        elif exposure == "unknown":
            yield unknown(subject, chosen[0].reason, *listen_ev)
        elif exposure == "local":
            if auth.password:
                yield ok(subject, f"VNC on {_describe(chosen)} requires a password", *listen_ev,
                         auth.evidence[0])
            elif auth.password is False and auth.strong is False:
                yield fail(subject, f"VNC on {_describe(chosen)} accepts any local client without a "
                                    "password", *listen_ev, *auth.evidence, severity=Severity.MEDIUM)
            else:
                yield unknown(subject, auth.reason, *listen_ev, *auth.evidence)
        elif auth.strong is None:
            yield unknown(subject, auth.reason, *listen_ev, *auth.evidence)
        elif auth.password:
            yield fail(subject, f"VNC on {_describe(chosen)} is protected only by a VNC password "
                                "(8 characters, DES)", *listen_ev, *auth.evidence)
        elif auth.password is False:
            yield fail(subject, f"VNC on {_describe(chosen)} accepts clients without authentication",
                       *listen_ev, *auth.evidence, severity=Severity.CRITICAL)
        else:
            yield unknown(subject, auth.reason, *listen_ev, *auth.evidence)


@check("VMS-DOM-022", title="VNC WebSocket is not exposed without TLS",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "console"),
       references=("https://libvirt.org/formatdomain.html#graphical-framebuffers",))
def vnc_websocket_protected(dom: Domain, env: Environment) -> Iterator[Result]:
    """`websocket=` opens a second port to the same VNC console, for browser clients, on the same
    address as VNC. On a routable address without `vnc_tls` it carries the console (and any VNC
    password exchange) in clear text.

    Remediation: Remove `websocket=`, keep VNC on loopback behind a TLS-terminating proxy, or
    enable `vnc_tls = 1` so the WebSocket port requires TLS (wss).
    """
    for gfx in _graphics(dom, "vnc"):
        if gfx.websocket is None:
            continue
        subject = f"vnc {gfx.locator} websocket"
        ws_ev = ev(dom.origin, gfx.locator + "/@websocket", gfx.websocket)
        exposure, chosen = _exposure(_endpoints(dom, gfx, env, "vnc"))
        listen_ev = [e.evidence for e in chosen]
        if exposure in ("local", "socket"):
            yield ok(subject, f"WebSocket port {gfx.websocket} follows VNC onto {_describe(chosen)}",
                     ws_ev, *listen_ev)
            continue
        if exposure == "unknown":
            yield unknown(subject, chosen[0].reason, ws_ev, *listen_ev)
            continue
        tls_s = _setting(env, "vnc_tls")
        tls = _flag(tls_s, False)
        if tls:
            yield ok(subject, "the WebSocket port requires TLS (vnc_tls=1)", ws_ev,
                     _conf_ev(tls_s, "vnc_tls"))
        elif tls is None:
            yield unknown(subject, _not_read("vnc_tls"), ws_ev, *listen_ev)
        else:
            port = "auto" if gfx.websocket == -1 else str(gfx.websocket)
            yield fail(subject, f"WebSocket port {port} on {_describe(chosen)} without TLS",
                       ws_ev, *listen_ev, _conf_ev(tls_s, "vnc_tls"))


def _spice_auth(dom: Domain, gfx: Graphics, env: Environment) -> tuple[bool | None, list[Evidence], str]:
    sasl_s = _setting(env, "spice_sasl")
    sasl = True if gfx.auth == "sasl" else _flag(sasl_s, False)
    password, pw_ev, reason = _password(dom, gfx, env, "spice")
    evidence = [pw_ev, _conf_ev(sasl_s, "spice_sasl")]
    if sasl or password:
        return True, evidence, ""
    if sasl is None:
        return None, evidence, reason or _not_read("spice_sasl")
    if password is None:
        return None, evidence, reason
    return False, evidence, ""


@check("VMS-DOM-023", title="SPICE console requires authentication",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, "console"),
       references=("https://libvirt.org/formatdomain.html#graphical-framebuffers",
                   "https://libvirt.org/kbase/secureusage.html"))
def spice_requires_auth(dom: Domain, env: Environment) -> Iterator[Result]:
    """Like VNC, a SPICE server gives keyboard, screen, USB redirection and file transfer into the
    guest. On a routable address without a password (ticket) or SASL anyone who reaches the
    port controls the VM; on loopback any local user does.

    Remediation: Keep SPICE on loopback or a UNIX socket (`spice_auto_unix_socket = 1`), and set
    `passwd=` (or qemu.conf `spice_password`) or `spice_sasl = 1`.
    """
    for gfx in _graphics(dom, "spice"):
        subject = f"spice {gfx.locator}"
        exposure, chosen = _exposure(_endpoints(dom, gfx, env, "spice"))
        listen_ev = [e.evidence for e in chosen]
        if exposure == "socket":
            yield ok(subject, f"SPICE is only reachable through {_describe(chosen)}", *listen_ev)
            continue
        auth, auth_ev, reason = _spice_auth(dom, gfx, env)
        if auth:
            yield ok(subject, "SPICE requires a password or SASL", *auth_ev)
        elif exposure == "unknown":
            yield unknown(subject, chosen[0].reason, *listen_ev)
        elif auth is None:
            yield unknown(subject, reason, *listen_ev, *auth_ev)
        elif exposure == "remote":
            yield fail(subject, f"SPICE on {_describe(chosen)} accepts clients without authentication",
                       *listen_ev, *auth_ev)
        else:
            yield fail(subject, f"SPICE on {_describe(chosen)} accepts any local client without a "
                                "password", *listen_ev, *auth_ev, severity=Severity.MEDIUM)


@check("VMS-DOM-024", title="Network-facing SPICE encrypts every channel (TLS, defaultMode='secure')",
       severity=Severity.HIGH, tags=(Tag.ENCRYPTION, "console"),
       references=("https://libvirt.org/formatdomain.html#graphical-framebuffers",
                   "https://libvirt.org/kbase/secureusage.html"))
def spice_channels_encrypted(dom: Domain, env: Environment) -> Iterator[Result]:
    """SPICE can carry each channel (display, inputs, clipboard, USB redirection) in TLS or clear
    text. Unless `defaultMode='secure'`, a client may choose the plain port, and any channel with
    `mode='insecure'` always is: keystrokes and screen contents cross the network readable and
    modifiable. Only network-facing SPICE is judged; loopback and UNIX sockets pass.

    Remediation: `spice_tls = 1` in qemu.conf, a `tlsPort`, and `defaultMode='secure'` with no
    `<channel mode='insecure'>`.
    """
    for gfx in _graphics(dom, "spice"):
        subject = f"spice {gfx.locator}"
        exposure, chosen = _exposure(_endpoints(dom, gfx, env, "spice"))
        listen_ev = [e.evidence for e in chosen]
        if exposure in ("socket", "local"):
            yield ok(subject, f"SPICE is only reachable through {_describe(chosen)}", *listen_ev)
            continue
        if exposure == "unknown":
            yield unknown(subject, chosen[0].reason, *listen_ev)
            continue
        mode_ev = ev(dom.origin, gfx.locator + "/@defaultMode", gfx.default_mode)
        insecure = sorted(name for name, mode in gfx.channel_modes if mode == "insecure")
        all_secure = gfx.default_mode == "secure" and not insecure
        tls_s = _setting(env, "spice_tls")
        if gfx.tls_port is not None:
            tls: bool | None = True
        else:
            flag = _flag(tls_s, False)
            tls = flag and (gfx.autoport is not False or gfx.port is None) if flag is not None else None
        if all_secure:  # libvirt refuses to start secure-only SPICE without TLS
            yield ok(subject, "every SPICE channel requires TLS (defaultMode='secure')", mode_ev)
        elif tls is False:
            yield fail(subject, f"SPICE on {_describe(chosen)} has no TLS port: all channels are clear text",
                       *listen_ev, _conf_ev(tls_s, "spice_tls"))
        elif tls is None:
            yield unknown(subject, _not_read("spice_tls"), *listen_ev, mode_ev)
        elif insecure:
            yield fail(subject, f"SPICE channels {', '.join(insecure)} are mode='insecure' (clear text)",
                       *listen_ev, ev(dom.origin, gfx.locator + "/channel/@mode", insecure))
        else:
            yield fail(subject, f"SPICE defaultMode={gfx.default_mode or 'any'}: clients may use the "
                                "clear-text port", *listen_ev, mode_ev)


def _spice_agent(dom: Domain) -> Chardev | None:
    for ch in dom.chardevs:
        if ch.type == "spicevmc" and ch.element == "channel":
            return ch
    return None


@check("VMS-DOM-025", title="SPICE file transfer and clipboard sharing are off",
       severity=Severity.LOW, tags=(Tag.ISOLATION, "console"),
       references=("https://libvirt.org/formatdomain.html#graphical-framebuffers",))
def spice_data_sharing_off(dom: Domain) -> Iterator[Result]:
    """With the SPICE agent channel, a SPICE client can drop files into the guest and read or
    write its clipboard; both are on by default. On servers this is a data injection and
    exfiltration path between whoever holds the console and the guest.

    Remediation: Add `<filetransfer enable='no'/>` and `<clipboard copypaste='no'/>` to the SPICE
    graphics element, or remove the `spicevmc` agent channel.
    """
    agent = _spice_agent(dom)
    for gfx in _graphics(dom, "spice"):
        subject = f"spice {gfx.locator}"
        if agent is None:
            yield ok(subject, "no SPICE agent channel: file transfer and clipboard cannot work",
                     ev(dom.origin, "devices/channel[@type='spicevmc']", None))
            continue
        enabled = []
        if gfx.filetransfer is not False:
            enabled.append("file transfer")
        if gfx.copypaste is not False:
            enabled.append("clipboard sharing")
        evidence = (ev(dom.origin, gfx.locator + "/filetransfer/@enable", gfx.filetransfer),
                    ev(dom.origin, gfx.locator + "/clipboard/@copypaste", gfx.copypaste),
                    ev(dom.origin, agent.locator + "/@type", agent.type))
        if enabled:
            yield fail(subject, f"SPICE {' and '.join(enabled)} enabled through the agent channel", *evidence)
        else:
            yield ok(subject, "SPICE file transfer and clipboard sharing are disabled", *evidence)


def _dbus_address_host(address: str) -> str | None:
    """The host= of a D-Bus TCP address (``tcp:host=0.0.0.0,port=1234``), else None."""
    for part in address.split(":", 1)[-1].split(","):
        key, _, value = part.partition("=")
        if key.strip() == "host":
            return value.strip()
    return None


@check("VMS-DOM-026", title="RDP and D-Bus displays are not exposed without credentials",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "console"),
       references=("https://libvirt.org/formatdomain.html#graphical-framebuffers",))
def rdp_dbus_protected(dom: Domain, env: Environment) -> Iterator[Result]:
    """An RDP display (qemu-rdp) is, like VNC, remote control of the guest; on a routable address
    it needs credentials. A D-Bus display is reached through libvirt (`p2p`) or a private bus,
    unless a TCP bus address opens it to the network.

    Remediation: Keep RDP on loopback with `passwd=` (or qemu.conf `rdp_password`); use D-Bus
    displays with `p2p='yes'` or the default private bus, never a TCP address.
    """
    for gfx in dom.graphics:
        subject = f"{gfx.type} {gfx.locator}"
        if gfx.type == "dbus":
            address = gfx.listen_attr or ""
            host = _dbus_address_host(address) if address.startswith("tcp:") else None
            where = ev(dom.origin, gfx.locator + "/@address", gfx.listen_attr)
            if address.startswith("tcp:") and (host is None or not is_loopback(host)):
                yield fail(subject, f"D-Bus display on a TCP bus address {address}", where)
            else:
                how = "peer-to-peer through libvirt" if gfx.p2p else "on a local D-Bus bus"
                yield ok(subject, f"D-Bus display is reachable only {how}", where)
        elif gfx.type == "rdp":
            exposure, chosen = _exposure(_endpoints(dom, gfx, env, "rdp"))
            listen_ev = [e.evidence for e in chosen]
            if exposure == "socket":
                yield ok(subject, f"RDP is only reachable through {_describe(chosen)}", *listen_ev)
                continue
            password, pw_ev, reason = _password(dom, gfx, env, "rdp")
            if password:
                yield ok(subject, "RDP requires a password", pw_ev)
            elif exposure == "unknown":
                yield unknown(subject, chosen[0].reason, *listen_ev)
            elif password is None:
                yield unknown(subject, reason, *listen_ev, pw_ev)
            elif exposure == "remote":
                yield fail(subject, f"RDP on {_describe(chosen)} without credentials", *listen_ev, pw_ev)
            else:
                yield fail(subject, f"RDP on {_describe(chosen)} accepts any local client", *listen_ev, pw_ev,
                           severity=Severity.MEDIUM)


@check("VMS-DOM-027", title="Network character devices are loopback-only or TLS-protected",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "console"),
       references=("https://www.qemu.org/docs/master/system/security.html",
                   "https://libvirt.org/formatdomain.html#tcp"))
def network_chardevs_protected(dom: Domain, env: Environment) -> Iterator[Result]:
    """A serial port, console or channel on TCP in `mode='bind'` is a listening socket straight into
    the guest's console or agent, with no authentication (telnet and raw alike). On a routable
    address anyone can log in at the guest's console; only TLS with client-certificate
    verification (`chardev_tls`, `chardev_tls_x509_verify`) authenticates. An outgoing
    (`connect`) chardev to another host sends the console in clear text. UDP chardevs can be
    neither encrypted nor authenticated.

    Remediation: Use `pty` or `unix` chardevs (reached through `virsh console`); for TCP, bind to
    127.0.0.1 or set `chardev_tls = 1` with `chardev_tls_x509_verify = 1`.
    """
    for ch in dom.chardevs:
        if ch.type not in ("tcp", "udp"):
            continue
        subject = f"{ch.element} {ch.locator}"
        host = ch.source_host
        endpoint = f"{host or '*'}:{ch.source_service or '?'}"
        where = ev(dom.origin, ch.locator + "/source/@host", host)
        remote = host is None or not is_loopback(host)
        if ch.type == "udp":
            if remote:
                yield fail(subject, f"UDP {ch.element} with {endpoint}: no authentication or encryption "
                                    "is possible", where)
            else:
                yield ok(subject, f"UDP {ch.element} stays on loopback ({endpoint})", where)
            continue
        mode = ch.source_mode or "connect"
        mode_ev = ev(dom.origin, ch.locator + "/source/@mode", ch.source_mode)
        if not remote:
            yield ok(subject, f"TCP {ch.element} ({mode}) stays on loopback ({endpoint})", where, mode_ev)
            continue
        tls_s = _setting(env, "chardev_tls")
        if ch.tls is not None:
            tls: bool | None = ch.tls
            tls_ev = ev(dom.origin, ch.locator + "/source/@tls", "yes" if ch.tls else "no")
        else:
            tls, tls_ev = _flag(tls_s, False), _conf_ev(tls_s, "chardev_tls")
        proto = f" ({ch.protocol})" if ch.protocol else ""
        if tls is None:
            yield unknown(subject, _not_read("chardev_tls"), where, mode_ev)
        elif mode == "bind" and tls:
            verify, verify_ev = _tls_verify(env, "chardev_tls_x509_verify", True)
            if verify:
                yield ok(subject, f"TCP {ch.element} on {endpoint} requires TLS client certificates",
                         where, tls_ev, verify_ev)
            elif verify is None:
                yield unknown(subject, "TLS is on; " + _not_read("chardev_tls_x509_verify"), where, tls_ev)
            else:
                yield fail(subject, f"TCP {ch.element} listens on {endpoint} with TLS but accepts any "
                                    "client (no certificate verification)", where, tls_ev, verify_ev)
        elif mode == "bind":
            yield fail(subject, f"TCP {ch.element}{proto} listens on {endpoint} without TLS or "
                                "authentication", where, mode_ev, tls_ev)
        elif tls:
            yield ok(subject, f"TCP {ch.element} connects to {endpoint} over TLS", where, tls_ev)
        else:
            yield fail(subject, f"TCP {ch.element}{proto} connects to {endpoint} in clear text", where,
                       mode_ev, tls_ev, severity=Severity.MEDIUM)


@check("VMS-DOM-028", title="Socket, file and pipe chardev paths are not in user-writable directories",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "console"),
       references=("https://libvirt.org/formatdomain.html#relationship-between-serial-ports-and-consoles",))
def chardev_paths_protected(dom: Domain) -> Iterator[Result]:
    """A UNIX socket, log file or pipe for a serial port or channel placed in `/tmp` or another
    user-writable directory can be pre-created, replaced or symlinked by a local user, who can
    then read the guest's console or agent traffic, or inject into it.

    Remediation: Omit the path so libvirt creates it under `/var/lib/libvirt/qemu/channel` (or
    `/run/libvirt/qemu`), or use another root-owned directory.
    """
    for ch in dom.chardevs:
        if ch.type not in ("unix", "file", "pipe") or not ch.source_path:
            continue
        subject = f"{ch.element} {ch.locator}"
        where = ev(dom.origin, ch.locator + "/source/@path", ch.source_path)
        top = user_writable_dir(ch.source_path)
        if top is None:
            yield ok(subject, f"{ch.type} path {ch.source_path} is outside user-writable directories", where)
        else:
            place = "a relative path" if top == "." else f"under {top}"
            yield fail(subject, f"{ch.type} path {ch.source_path} is {place}", where)


_GUEST_AGENT = "org.qemu.guest_agent.0"


@check("VMS-DOM-029", title="No QEMU guest agent channel (host-to-guest command path)",
       severity=Severity.INFO, tags=(Tag.AUDIT, "console"),
       references=("https://libvirt.org/kbase/qemu-passthrough-security.html",
                   "https://www.qemu.org/docs/master/interop/qemu-ga.html"))
def guest_agent_inventory(dom: Domain) -> Iterator[Result]:
    """The guest agent channel lets the host (whoever holds libvirt) run commands and read files in
    the guest through `guest-exec` and `guest-file-*`, and its replies come from a guest that may
    be hostile. This is an inventory item: tenants should know the path exists and restrict it.

    Remediation: Keep the agent only where it is used; in the guest restrict commands with
    `qemu-ga --block-rpcs=guest-exec,guest-file-open,…`; treat agent replies as untrusted.
    """
    agents = [ch for ch in dom.chardevs if ch.target_name == _GUEST_AGENT]
    for ch in agents:
        yield fail(f"channel {ch.locator}", f"guest agent channel {_GUEST_AGENT} ({ch.type})",
                   ev(dom.origin, ch.locator + "/target/@name", ch.target_name))
    if not agents:
        yield ok("guest agent", "no guest agent channel",
                 ev(dom.origin, "devices/channel/target/@name", None))
