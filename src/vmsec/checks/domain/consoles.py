"""Per-VM consoles: VNC, SPICE, RDP/D-Bus displays and character devices (serial, console, channel).

These are configuration checks of a device: each yields one result per graphics device or
character device it applies to, and nothing when the VM has no such device. The exception is
VMS-DOM-029 (guest agent channel), a presence check that also PASSes when the channel is absent.

Where the XML leaves a value to qemu.conf (no listen address, no password, TLS) the check reads
``env.host.qemu_conf``. Without it, every listener kind follows one rule
(:mod:`vmsec.checks.helpers.qemuconf`): an exposure found under qemu.conf's documented defaults is
a FAIL naming the keys that could change it; a PASS that would rest only on those defaults is
UNKNOWN, naming them. The same exposure gives the same conclusion for VNC, its WebSocket, SPICE
(plain and TLS ports), RDP, D-Bus and TCP/UDP character devices. The live XML of a running VM
already holds the effective listen address.
"""

from __future__ import annotations

from collections.abc import Iterator

from msgspec import Struct

from vmsec.checks.addresses import is_loopback
from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.domain.confinement import user_writable_dir
from vmsec.checks.helpers.network import network_or_reason
from vmsec.checks.helpers.qemuconf import QemuConf
from vmsec.facts import Chardev, Domain, Graphics, PasswordState
from vmsec.findings import Evidence


def _tls_verify(conf: QemuConf, specific: str, default: bool) -> tuple[bool | None, Evidence]:
    """``<x>_tls_x509_verify``, falling back to ``default_tls_x509_verify``, then the documented
    per-service default."""
    s = conf.get(specific)
    if s.explicit:
        return conf.flag(specific, default), conf.evidence(specific)
    general = conf.get("default_tls_x509_verify")
    if general.explicit:
        return conf.flag(general.key, default), conf.evidence(general.key)
    return default, conf.evidence(specific)


class _Endpoint(Struct, frozen=True):
    kind: str  # address | socket | none | unknown
    address: str | None
    evidence: Evidence
    reason: str = ""

    @property
    def remote(self) -> bool:
        return self.kind == "address" and not is_loopback(self.address or "")


_LISTEN_DEFAULT = "127.0.0.1"  # qemu.conf: vnc_listen/spice_listen default


def _from_conf(conf: QemuConf, proto: str) -> _Endpoint:
    listen_key = f"{proto}_listen"
    if proto in ("vnc", "spice"):
        auto_key = f"{proto}_auto_unix_socket"
        if conf.flag(auto_key, False):
            return _Endpoint("socket", None, conf.evidence(auto_key))
    s = conf.get(listen_key)
    value = s.as_str() if s.value is not None else _LISTEN_DEFAULT
    if value is None:
        return _Endpoint("unknown", None, conf.evidence(listen_key),
                         f"qemu.conf {listen_key} is not a string")
    return _Endpoint("address", value, conf.evidence(listen_key))


def _endpoints(dom: Domain, gfx: Graphics, env: Environment, conf: QemuConf, proto: str) -> list[_Endpoint]:
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
            out.append(_from_conf(conf, proto))
    if out:
        return out
    if gfx.listen_attr:
        where = ev(dom.origin, gfx.locator + "/@listen", gfx.listen_attr)
        return [_Endpoint("address", gfx.listen_attr, where)]
    return [_from_conf(conf, proto)]


def _network_endpoint(dom: Domain, env: Environment, loc: str, name: str | None) -> _Endpoint:
    where = ev(dom.origin, loc + "/@network", name)
    net, reason = network_or_reason(env, name)
    if net is None:
        return _Endpoint("unknown", None, where, f"the listen address comes from {reason}")
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
                                                          "no listener" if e.kind == "none" else
                                                          "an unknown address"))
    return ", ".join(dict.fromkeys(p or "?" for p in parts))


def _password(dom: Domain, gfx: Graphics, conf: QemuConf, proto: str) -> tuple[bool | None, Evidence, str]:
    """Whether a password protects the display: the XML's passwd, else qemu.conf <proto>_password.
    Returns (state, evidence, reason-when-unknown)."""
    where = ev(dom.origin, gfx.locator + "/@passwd", gfx.password.value)
    if gfx.password is PasswordState.SET:
        return True, where, ""
    if gfx.password is PasswordState.EMPTY:
        return False, where, ""
    key = f"{proto}_password"
    s = conf.get(key)
    if s.explicit and isinstance(s.value, str):  # qemu.conf: even an empty default password locks clients out
        return True, ev(s.origin, key, "(set)"), ""
    if gfx.password is PasswordState.HIDDEN:
        return None, where, "the XML was read without the secure flag, so a passwd would not show"
    return False, where, ""


class _VncAuth(Struct, frozen=True):
    strong: bool | None  # SASL, or TLS with client-certificate verification
    password: bool | None
    evidence: tuple[Evidence, ...]
    reason: str


def _vnc_auth(dom: Domain, gfx: Graphics, conf: QemuConf) -> _VncAuth:
    sasl = conf.flag("vnc_sasl", False)
    tls = conf.flag("vnc_tls", False)
    verify, verify_ev = _tls_verify(conf, "vnc_tls_x509_verify", False)
    if sasl or gfx.auth == "sasl" or (tls and verify):
        strong: bool | None = True
    elif sasl is None or tls is None or (tls and verify is None):
        strong = None
    else:
        strong = False
    password, pw_ev, pw_reason = _password(dom, gfx, conf, "vnc")
    evidence = (pw_ev, conf.evidence("vnc_sasl"), conf.evidence("vnc_tls"), verify_ev)
    reason = pw_reason or ("" if strong is not None else "qemu.conf vnc_sasl/vnc_tls is not 0 or 1")
    return _VncAuth(strong, password, evidence, reason)


_EXPOSURE_SEVERITY = {"remote": Severity.CRITICAL, "local": Severity.MEDIUM, "unknown": None}


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
        conf = QemuConf(env)
        subject = f"vnc {gfx.locator}"
        exposure, chosen = _exposure(_endpoints(dom, gfx, env, conf, "vnc"))
        evidence = [e.evidence for e in chosen]
        if exposure == "remote":
            auth = _vnc_auth(dom, gfx, conf)
            if auth.strong is False and auth.password is False:
                r = fail(subject, f"VNC listens on {_describe(chosen)} and accepts clients without "
                                  "authentication", *evidence, *auth.evidence, severity=Severity.CRITICAL)
            else:
                r = fail(subject, f"VNC listens on {_describe(chosen)}", *evidence)
        elif exposure == "unknown":
            r = unknown(subject, chosen[0].reason, *evidence)
        else:
            r = ok(subject, f"VNC listens on {_describe(chosen)}", *evidence)
        yield conf.settle(r)


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
        conf = QemuConf(env)
        subject = f"vnc {gfx.locator}"
        exposure, chosen = _exposure(_endpoints(dom, gfx, env, conf, "vnc"))
        listen_ev = [e.evidence for e in chosen]
        where = _describe(chosen)
        if exposure == "socket":
            yield conf.settle(ok(subject, f"VNC is only reachable through {where}", *listen_ev))
            continue
        listen_keys = conf.mark()
        auth = _vnc_auth(dom, gfx, conf)
        if auth.strong:
            r = ok(subject, "VNC requires SASL or a verified TLS client certificate", *auth.evidence)
        elif auth.strong is None or auth.password is None:
            r = unknown(subject, auth.reason, *listen_ev, *auth.evidence)
        elif not auth.password:
            # Unauthenticated whatever the address is: only the severity depends on it.
            reach = {"remote": "from the network", "local": "from any local user or process",
                     "unknown": f"on {chosen[0].reason}"}[exposure]
            r = fail(subject, f"VNC on {where} accepts clients without authentication ({reach})",
                     *listen_ev, *auth.evidence, severity=_EXPOSURE_SEVERITY[exposure])
        elif exposure == "local":
            r = conf.settle(ok(subject, f"VNC on {where} requires a password", *listen_ev, auth.evidence[0]),
                            only=listen_keys)
        elif exposure == "unknown":
            r = unknown(subject, f"VNC requires only a VNC password, enough on loopback but weak on the "
                        f"network, and {chosen[0].reason}", *listen_ev, *auth.evidence)
        else:
            r = fail(subject, f"VNC on {where} is protected only by a VNC password (8 characters, DES)",
                     *listen_ev, *auth.evidence)
        yield conf.settle(r)


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
        conf = QemuConf(env)
        subject = f"vnc {gfx.locator} websocket"
        ws_ev = ev(dom.origin, gfx.locator + "/@websocket", gfx.websocket)
        exposure, chosen = _exposure(_endpoints(dom, gfx, env, conf, "vnc"))
        listen_ev = [e.evidence for e in chosen]
        port = "auto" if gfx.websocket == -1 else str(gfx.websocket)
        tls = None if exposure in ("local", "socket") else conf.flag("vnc_tls", False)
        if exposure in ("local", "socket"):
            r = ok(subject, f"WebSocket port {port} follows VNC onto {_describe(chosen)}", ws_ev, *listen_ev)
        elif tls:
            r = ok(subject, "the WebSocket port requires TLS (vnc_tls=1)", ws_ev, conf.evidence("vnc_tls"))
        elif tls is None:
            r = unknown(subject, "qemu.conf vnc_tls is not 0 or 1", ws_ev, conf.evidence("vnc_tls"))
        elif exposure == "unknown":
            r = unknown(subject, f"the WebSocket port {port} has no TLS and {chosen[0].reason}", ws_ev,
                        *listen_ev, conf.evidence("vnc_tls"))
        else:
            r = fail(subject, f"WebSocket port {port} on {_describe(chosen)} without TLS",
                     ws_ev, *listen_ev, conf.evidence("vnc_tls"))
        yield conf.settle(r)


def _spice_auth(dom: Domain, gfx: Graphics, conf: QemuConf) -> tuple[bool | None, list[Evidence], str]:
    password, pw_ev, reason = _password(dom, gfx, conf, "spice")
    if password or gfx.auth == "sasl":
        return True, [pw_ev], ""
    sasl = conf.flag("spice_sasl", False)
    evidence = [pw_ev, conf.evidence("spice_sasl")]
    if sasl:
        return True, evidence, ""
    if sasl is None:
        return None, evidence, "qemu.conf spice_sasl is not 0 or 1"
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
        conf = QemuConf(env)
        subject = f"spice {gfx.locator}"
        exposure, chosen = _exposure(_endpoints(dom, gfx, env, conf, "spice"))
        listen_ev = [e.evidence for e in chosen]
        if exposure == "socket":
            yield conf.settle(ok(subject, f"SPICE is only reachable through {_describe(chosen)}", *listen_ev))
            continue
        auth, auth_ev, reason = _spice_auth(dom, gfx, conf)
        if auth:
            r = ok(subject, "SPICE requires a password or SASL", *auth_ev)
        elif auth is None:
            r = unknown(subject, reason, *listen_ev, *auth_ev)
        else:
            reach = {"remote": "from the network", "local": "from any local user or process",
                     "unknown": f"on {chosen[0].reason}"}[exposure]
            r = fail(subject, f"SPICE on {_describe(chosen)} accepts clients without authentication "
                     f"({reach})", *listen_ev, *auth_ev,
                     severity={"local": Severity.MEDIUM, "unknown": Severity.HIGH}.get(exposure))
        yield conf.settle(r)


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
        conf = QemuConf(env)
        subject = f"spice {gfx.locator}"
        exposure, chosen = _exposure(_endpoints(dom, gfx, env, conf, "spice"))
        listen_ev = [e.evidence for e in chosen]
        mode_ev = ev(dom.origin, gfx.locator + "/@defaultMode", gfx.default_mode)
        insecure = sorted(name for name, mode in gfx.channel_modes if mode == "insecure")
        all_secure = gfx.default_mode == "secure" and not insecure
        if exposure in ("socket", "local"):
            r = ok(subject, f"SPICE is only reachable through {_describe(chosen)}", *listen_ev)
        elif all_secure:  # libvirt refuses to start secure-only SPICE without TLS
            r = ok(subject, "every SPICE channel requires TLS (defaultMode='secure')", mode_ev)
        else:
            if gfx.tls_port is not None:
                tls: bool | None = True
            else:
                flag = conf.flag("spice_tls", False)
                tls = flag and (gfx.autoport is not False or gfx.port is None) if flag is not None else None
            # The plain port and the TLS port listen on the same address: one exposure.
            where = _describe(chosen) if exposure == "remote" else chosen[0].reason
            if tls is None:
                r = unknown(subject, "qemu.conf spice_tls is not 0 or 1", *listen_ev, mode_ev)
            elif exposure == "unknown" and not tls:
                r = unknown(subject, f"SPICE has no TLS port (all channels clear text) and {where}",
                            *listen_ev, conf.evidence("spice_tls"))
            elif exposure == "unknown":
                r = unknown(subject, f"SPICE clients may use the clear-text port and {where}",
                            *listen_ev, mode_ev)
            elif not tls:
                r = fail(subject, f"SPICE on {where} has no TLS port: all channels are clear text",
                         *listen_ev, conf.evidence("spice_tls"))
            elif insecure:
                r = fail(subject, f"SPICE channels {', '.join(insecure)} are mode='insecure' (clear text)",
                         *listen_ev, ev(dom.origin, gfx.locator + "/channel/@mode", insecure))
            else:
                r = fail(subject, f"SPICE defaultMode={gfx.default_mode or 'any'}: clients may use the "
                                  "clear-text port", *listen_ev, mode_ev)
        yield conf.settle(r)


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


def _dbus_tcp_host(address: str) -> str:
    """The host a D-Bus ``tcp:`` address names (``tcp:host=0.0.0.0,port=1234``). The D-Bus
    specification makes an omitted ``host`` (and ``bind``) localhost."""
    found = {}
    for part in address.split(":", 1)[-1].split(","):
        key, _, value = part.partition("=")
        found[key.strip()] = value.strip()
    return found.get("bind") or found.get("host") or "localhost"


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
        conf = QemuConf(env)
        if gfx.type == "dbus":
            address = gfx.listen_attr or ""
            where = ev(dom.origin, gfx.locator + "/@address", gfx.listen_attr)
            host = _dbus_tcp_host(address) if address.startswith(("tcp:", "nonce-tcp:")) else None
            if host is not None and not is_loopback(host):
                r = fail(subject, f"D-Bus display on the TCP bus address {address} (host {host})", where)
            elif host is not None:
                r = ok(subject, f"D-Bus display on a loopback TCP bus address {address}", where)
            else:
                how = "peer-to-peer through libvirt" if gfx.p2p else "on a local D-Bus bus"
                r = ok(subject, f"D-Bus display is reachable only {how}", where)
        elif gfx.type == "rdp":
            exposure, chosen = _exposure(_endpoints(dom, gfx, env, conf, "rdp"))
            listen_ev = [e.evidence for e in chosen]
            if exposure == "socket":
                yield conf.settle(ok(subject, f"RDP is only reachable through {_describe(chosen)}",
                                     *listen_ev))
                continue
            password, pw_ev, reason = _password(dom, gfx, conf, "rdp")
            if password:
                r = ok(subject, "RDP requires a password", pw_ev)
            elif password is None:
                r = unknown(subject, reason, *listen_ev, pw_ev)
            else:
                reach = {"remote": "from the network", "local": "from any local user or process",
                         "unknown": f"on {chosen[0].reason}"}[exposure]
                r = fail(subject, f"RDP on {_describe(chosen)} accepts clients without credentials ({reach})",
                         *listen_ev, pw_ev, severity={"local": Severity.MEDIUM}.get(exposure))
        else:
            continue
        yield conf.settle(r)


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
        conf = QemuConf(env)
        subject = f"{ch.element} {ch.locator}"
        mode = ch.source_mode or "connect"
        # QEMU: a listening socket without a host binds every address; a connecting one without a
        # host connects to localhost (getaddrinfo without AI_PASSIVE).
        host = ch.source_host or ("localhost" if mode == "connect" else None)
        endpoint = f"{host or '*'}:{ch.source_service or '?'}"
        where = ev(dom.origin, ch.locator + "/source/@host", ch.source_host)
        mode_ev = ev(dom.origin, ch.locator + "/source/@mode", ch.source_mode)
        remote = host is None or not is_loopback(host)
        verb = "listens on" if mode == "bind" else "connects to"
        if not remote:
            kind = "UDP" if ch.type == "udp" else f"TCP ({mode})"
            yield ok(subject, f"{kind} {ch.element} stays on loopback ({endpoint})", where, mode_ev)
            continue
        if ch.type == "udp":
            yield fail(subject, f"UDP {ch.element} {verb} {endpoint}: no authentication or encryption "
                                "is possible", where, mode_ev)
            continue
        if ch.tls is not None:
            tls: bool | None = ch.tls
            tls_ev = ev(dom.origin, ch.locator + "/source/@tls", "yes" if ch.tls else "no")
        else:
            tls, tls_ev = conf.flag("chardev_tls", False), conf.evidence("chardev_tls")
        proto = f" ({ch.protocol})" if ch.protocol else ""
        if tls is None:
            r = unknown(subject, "qemu.conf chardev_tls is not 0 or 1", where, tls_ev)
        elif mode == "bind" and tls:
            verify, verify_ev = _tls_verify(conf, "chardev_tls_x509_verify", True)
            if verify:
                r = ok(subject, f"TCP {ch.element} on {endpoint} requires TLS client certificates",
                       where, tls_ev, verify_ev)
            elif verify is None:
                r = unknown(subject, "TLS is on; qemu.conf chardev_tls_x509_verify is not 0 or 1", where,
                            tls_ev)
            else:
                r = fail(subject, f"TCP {ch.element} listens on {endpoint} with TLS but accepts any "
                                  "client (no certificate verification)", where, tls_ev, verify_ev)
        elif mode == "bind":
            r = fail(subject, f"TCP {ch.element}{proto} listens on {endpoint} without TLS or "
                              "authentication", where, mode_ev, tls_ev)
        elif tls:
            r = ok(subject, f"TCP {ch.element} connects to {endpoint} over TLS", where, tls_ev)
        else:
            r = fail(subject, f"TCP {ch.element}{proto} connects to {endpoint} in clear text", where,
                     mode_ev, tls_ev, severity=Severity.MEDIUM)
        yield conf.settle(r)


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
