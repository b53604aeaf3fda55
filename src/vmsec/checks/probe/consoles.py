"""Consoles seen from the network: VNC (directly and through a WebSocket), SPICE, web consoles.

Endpoint checks over what ``vmsec probe`` observed in each handshake — never over configuration.
Each finding carries the correlation with the configuration (:mod:`vmsec.checks.probe.correlate`):
the domain and XML element or qemu.conf key responsible, and whether the network confirms or
contradicts it. A loopback endpoint is reachable by local users only and is one severity step lower.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, fail, ok, unknown
from vmsec.checks.probe.correlate import context, exposure, observed
from vmsec.facts import Endpoint, PortState, Proto, VncInfo
from vmsec.probes.codes import ANON_TLS_SUBTYPES, LINK_ERRORS, X509_SUBTYPES, subtype_name, type_name

VNC_DOC = "https://www.rfc-editor.org/rfc/rfc6143#section-7.2"
QEMU_VNC_DOC = "https://www.qemu.org/docs/master/system/vnc-security.html"
SPICE_DOC = "https://www.spice-space.org/spice-user-manual.html"
COCKPIT_DOC = "https://cockpit-project.org/guide/latest/https.html"
STRONG_VNC_TYPES = frozenset({19, 20})  # VeNCrypt, SASL


def _vnc(endpoint: Endpoint) -> VncInfo | None:
    if endpoint.vnc is not None:
        return endpoint.vnc
    if endpoint.http is not None:
        return endpoint.http.vnc
    return None


def _types(vnc: VncInfo) -> str:
    return ", ".join(f"{type_name(t)}({t})" for t in vnc.security_types or ()) or "none"


def _vnc_or_unknown(endpoint: Endpoint, env: Environment, subject: str
                    ) -> tuple[VncInfo | None, Result | None]:
    """The VNC handshake when it reached the security types; else an UNKNOWN when the port is (or
    should be) VNC, or nothing when the check does not apply."""
    if endpoint.state is not PortState.OPEN:
        return None, None
    vnc = _vnc(endpoint)
    if vnc is not None and vnc.security_types is not None:
        return vnc, None
    if endpoint.protocol in (Proto.VNC, Proto.VNC_WEBSOCKET):
        phrase, evidence = context(endpoint, env)
        reason = (vnc.error if vnc else None) or endpoint.error or "no RFB handshake"
        return None, unknown(subject, f"the VNC security types could not be read ({reason}); {phrase}",
                             observed(endpoint, "handshake", reason), *evidence)
    return None, None


@check("VMS-PRB-001", title="No VNC console seen from the network accepts clients without authentication",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, "console", "probe"),
       references=(VNC_DOC, QEMU_VNC_DOC, "https://nmap.org/nsedoc/scripts/vnc-info.html"))
def vnc_no_none_auth(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """A VNC server that offers the security type None gives whoever reaches the port the guest's
    keyboard, screen and power button. The probe reads the offered types exactly as nmap's vnc-info
    does and never selects None.

    Remediation: Give the display a password and, better, `vnc_tls = 1` with
    `vnc_tls_x509_verify = 1` (or `vnc_sasl = 1`) in qemu.conf; keep `listen` on 127.0.0.1 or a UNIX
    socket and remove any NAT rule or proxy that publishes it.
    """
    subject = "vnc security types"
    vnc, missing = _vnc_or_unknown(endpoint, env, subject)
    if missing is not None:
        yield missing
    if vnc is None:
        return
    phrase, evidence = context(endpoint, env)
    seen = observed(endpoint, "RFB security types", _types(vnc))
    if not vnc.security_types:
        yield ok(subject, f"the VNC server refuses every client ({vnc.failure_reason or 'no reason given'}); "
                          f"{phrase}", seen, *evidence)
    elif 1 in vnc.security_types:
        yield fail(subject, f"VNC {vnc.version} on {endpoint.label} offers None: anyone who reaches it "
                            f"controls the console; {phrase}", seen, *evidence,
                   severity=exposure(endpoint, Severity.CRITICAL))
    else:
        yield ok(subject, f"VNC on {endpoint.label} requires authentication ({_types(vnc)}); {phrase}",
                 seen, *evidence)


@check("VMS-PRB-002", title="VNC consoles seen from the network require more than the VNC password",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "console", "probe"),
       references=(QEMU_VNC_DOC,))
def vnc_strong_auth(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """The classic VNC Authentication (type 2) is a DES challenge with at most 8 password characters,
    sent over an unencrypted session; QEMU calls it easily brute-forced. A console reachable from the
    network should require VeNCrypt (TLS) or SASL.

    Remediation: Set `vnc_tls = 1` and `vnc_tls_x509_verify = 1` (and optionally `vnc_sasl = 1`) in
    qemu.conf and restart the domains, or keep the display on loopback behind an authenticated proxy.
    """
    subject = "vnc authentication strength"
    vnc, missing = _vnc_or_unknown(endpoint, env, subject)
    if missing is not None:
        yield missing
    if vnc is None or not vnc.security_types or 1 in vnc.security_types:
        return  # refused, or None (VMS-PRB-001)
    phrase, evidence = context(endpoint, env)
    seen = observed(endpoint, "RFB security types", _types(vnc))
    offered = set(vnc.security_types)
    if offered & STRONG_VNC_TYPES:
        yield ok(subject, f"VNC offers {_types(vnc)}; {phrase}", seen, *evidence)
    elif 2 in offered:
        yield fail(subject, f"VNC on {endpoint.label} is protected only by the VNC password (DES, 8 "
                            f"characters) in an unencrypted session; {phrase}", seen, *evidence,
                   severity=exposure(endpoint, Severity.HIGH))
    else:
        yield unknown(subject, f"VNC offers only security types vmsec does not judge ({_types(vnc)}); "
                               f"{phrase}", seen, *evidence)


@check("VMS-PRB-003", title="VeNCrypt consoles use certificate-based TLS",
       severity=Severity.HIGH, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "console", "probe"),
       references=("https://github.com/rfbproto/rfbproto/blob/master/rfbproto.rst#vencrypt", QEMU_VNC_DOC))
def vencrypt_x509(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """VeNCrypt's Plain sub-type sends the password in clear; the TLS* sub-types use anonymous TLS
    with no server certificate, so anyone in the path can impersonate the console. Only the X509*
    sub-types authenticate the server; the TLS inside must itself be TLS 1.2 or later.

    Remediation: Configure x509 credentials (`vnc_tls = 1`, `vnc_tls_x509_cert_dir`) so QEMU offers
    only X509 sub-types, with `vnc_tls_x509_verify = 1` to require client certificates.
    """
    vnc = endpoint.vnc if endpoint.state is PortState.OPEN else None
    if vnc is None or 19 not in (vnc.security_types or ()):
        return
    subject = "vnc vencrypt"
    phrase, evidence = context(endpoint, env)
    if vnc.vencrypt_subtypes is None:
        yield unknown(subject, f"the VeNCrypt sub-types could not be read ({vnc.error}); {phrase}", *evidence)
        return
    names = ", ".join(f"{subtype_name(s)}({s})" for s in vnc.vencrypt_subtypes) or "none"
    seen = [observed(endpoint, "VeNCrypt sub-types", names)]
    weak = [s for s in vnc.vencrypt_subtypes if s == 256 or s in ANON_TLS_SUBTYPES]
    if vnc.tls is not None:
        seen.append(observed(endpoint, "TLS inside VeNCrypt", vnc.tls.version or vnc.tls.handshake_error))
    if weak:
        yield fail(subject, f"VeNCrypt offers {', '.join(subtype_name(s) for s in weak)} (clear text or "
                            f"anonymous TLS); {phrase}", *seen, *evidence,
                   severity=exposure(endpoint, Severity.HIGH))
    elif not set(vnc.vencrypt_subtypes) & X509_SUBTYPES:
        yield unknown(subject, f"VeNCrypt offers only sub-types vmsec does not judge ({names}); {phrase}",
                      *seen, *evidence)
    elif vnc.tls is not None and vnc.tls.version in ("SSLv3", "TLSv1", "TLSv1.1"):
        yield fail(subject, f"the TLS inside VeNCrypt negotiated {vnc.tls.version}; {phrase}", *seen,
                   *evidence, severity=Severity.MEDIUM)
    elif vnc.tls is None or vnc.tls.version is None:
        reason = vnc.tls.handshake_error if vnc.tls is not None else "the TLS handshake was not reached"
        yield unknown(subject, f"VeNCrypt offers {names}; the TLS inside could not be examined ({reason}); "
                               f"{phrase}", *seen, *evidence)
    else:
        yield ok(subject, f"VeNCrypt offers only certificate-based TLS ({names}, {vnc.tls.version}); "
                          f"{phrase}", *seen, *evidence)


@check("VMS-PRB-004", title="SPICE consoles seen from the network require a ticket and TLS",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "console", "probe"),
       references=(SPICE_DOC, "https://libvirt.org/formatdomain.html#graphical-framebuffers"))
def spice_ticket_and_tls(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """A SPICE server with ticketing off lets any client that reaches the port take the console
    (critical). A plain (non-TLS) port that links the main channel carries the whole session —
    screen, keyboard, clipboard, USB redirection — in clear, even when a ticket is required.

    The probe sends the empty ticket, as a client without a password does, and closes as soon as
    the server answers.

    Remediation: Set a password (`passwd=` on `<graphics type='spice'>` or `spice_password` in
    qemu.conf), enable `spice_tls = 1` and set `defaultMode='secure'` so the plain port refuses
    channels, and keep `listen` on loopback where possible.
    """
    info = endpoint.spice if endpoint.state is PortState.OPEN else None
    if info is None:
        if endpoint.state is PortState.OPEN and endpoint.protocol in (Proto.SPICE, Proto.SPICE_TLS):
            phrase, evidence = context(endpoint, env)
            yield unknown("spice link", f"the SPICE link could not be examined ({endpoint.error}); {phrase}",
                          *evidence)
        return
    subject = "spice link"
    phrase, evidence = context(endpoint, env)
    tls = endpoint.protocol is Proto.SPICE_TLS
    if info.link_error not in (None, 0):
        text = LINK_ERRORS.get(info.link_error, f"error {info.link_error}")
        yield ok(subject, f"the SPICE server refused the {'TLS' if tls else 'plain'} main channel ({text}); "
                          f"{phrase}", observed(endpoint, "link reply", text), *evidence)
        return
    if info.link_error is None:
        yield unknown(subject, f"the SPICE link reply could not be read ({info.error}); {phrase}", *evidence)
        return
    seen = observed(endpoint, "ticket", {True: "required", False: "not required", None: "unknown"}
                    [info.ticket_required])
    if info.ticket_required is False:
        yield fail(subject, f"SPICE on {endpoint.label} linked the main channel with an empty ticket: no "
                            f"password protects the console; {phrase}", seen, *evidence,
                   severity=exposure(endpoint, Severity.CRITICAL))
    elif info.ticket_required is None:
        yield unknown(subject, f"whether SPICE requires a ticket could not be told ({info.error}); {phrase}",
                      seen, *evidence)
    elif not tls:
        yield fail(subject, f"SPICE on {endpoint.label} accepts the main channel without TLS (a ticket is "
                            f"required, the session is in clear); {phrase}", seen, *evidence,
                   severity=exposure(endpoint, Severity.MEDIUM))
    else:
        yield ok(subject, f"SPICE requires TLS and a ticket on {endpoint.label}; {phrase}", seen, *evidence)


@check("VMS-PRB-012", title="Web consoles use TLS and require authentication",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "console", "probe", "web"),
       references=(COCKPIT_DOC, "https://github.com/novnc/websockify"))
def web_console_protected(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """Web consoles (Cockpit, noVNC through websockify, QEMU's VNC WebSocket) put the console in a
    browser. Without TLS, logins and the console stream cross the network in clear; a console page
    or WebSocket that answers without asking for credentials is the console itself, for anyone.

    Remediation: Serve the console over HTTPS only (Cockpit: a certificate in /etc/cockpit/ws-certs.d
    and no `AllowUnencrypted`; websockify `--cert` and `--ssl-only`; QEMU `vnc_tls = 1` for its
    WebSocket), and put an authenticating proxy in front of noVNC.
    """
    http = endpoint.http if endpoint.state is PortState.OPEN else None
    if http is None:
        return
    subject = "web console"
    phrase, evidence = context(endpoint, env)
    scheme = "https" if http.tls else "http"
    what = http.product or ("WebSocket" if http.websocket else "web server")
    seen = [observed(endpoint, "GET /", f"{scheme} {http.status}"), observed(endpoint, "product", what)]
    console = http.product in ("cockpit", "novnc", "websockify", "vnc-websocket") or http.websocket
    if http.status is None:
        yield unknown(subject, f"the web listener did not answer GET / ({http.error}); {phrase}", *seen,
                      *evidence)
        return
    if not console:
        yield ok(subject, f"{scheme}://{endpoint.label} answers {http.status} and is not a known console; "
                          f"{phrase}", *seen, *evidence)
        return
    open_access = (http.vnc is not None and 1 in (http.vnc.security_types or ())) or (
        http.product in ("novnc", "websockify") and 200 <= http.status < 300 and not http.www_authenticate)
    if open_access:
        yield fail(subject, f"the {what} console at {scheme}://{endpoint.label} answers without "
                            f"authentication; {phrase}", *seen, *evidence,
                   severity=exposure(endpoint, Severity.CRITICAL))
    elif not http.tls:
        yield fail(subject, f"the {what} console at {endpoint.label} is served without TLS; {phrase}",
                   *seen, *evidence, severity=exposure(endpoint, Severity.HIGH))
    elif http.websocket and (http.vnc is None or http.vnc.security_types is None):
        # The upgrade worked but no RFB greeting came through: what the console asks for is not seen.
        reason = (http.vnc.error if http.vnc else None) or http.error or "no RFB greeting"
        yield unknown(subject, f"the {what} console at {scheme}://{endpoint.label} accepted the WebSocket, "
                               f"but whether it asks for credentials could not be read ({reason}); {phrase}",
                      *seen, *evidence)
    else:
        yield ok(subject, f"the {what} console uses TLS and asks for credentials; {phrase}", *seen, *evidence)
