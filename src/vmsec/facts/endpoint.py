"""Facts about network listeners as a probe saw them, and the listeners the configuration predicts.

An :class:`Endpoint` is one ``address:port`` contacted by ``vmsec probe``: whether it answered, which
protocol spoke, and what its handshake offered (security types, authentication schemes, TLS
parameters, algorithms). Only handshakes are recorded: the probe never logs in and never sends input
to a console. An :class:`ExpectedListener` is a listener the configuration says should exist (a
domain's VNC port, libvirtd's TLS listener, qemu.conf's migration range), with the XML element or
configuration key responsible, so checks can tie what the network shows to its cause.

Unknown is ``None``: a handshake that did not get as far as a field leaves it ``None``, and the
``error`` says why.

Like every fact, these are frozen msgspec Structs (copy one with changes with
:func:`vmsec.facts.evolve`). They also refuse unknown fields when decoded
(``msgspec.json.decode(data, type=Endpoint)``): the probe verdict fixtures
(``tests/data/checks/VMS-PRB-*/NAME.PASS.json``) are decoded into these types, so a fixture cannot hold
a field the facts do not have.
"""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct


class PortState(StrEnum):
    OPEN = "open"  # a TCP connection was accepted
    CLOSED = "closed"  # refused (RST)
    FILTERED = "filtered"  # no answer within the timeout (dropped)
    UNREACHABLE = "unreachable"  # no route, network unreachable, or another connect error


class Proto(StrEnum):
    """The protocol a listener spoke (or, for migration ports, the role the configuration gives it)."""

    VNC = "vnc"
    VNC_WEBSOCKET = "vnc-websocket"
    SPICE = "spice"
    SPICE_TLS = "spice-tls"
    LIBVIRT = "libvirt"  # libvirt RPC in clear (16509)
    LIBVIRT_TLS = "libvirt-tls"  # libvirt RPC over TLS (16514)
    NBD = "nbd"
    SSH = "ssh"
    HTTP = "http"
    HTTPS = "https"
    TLS = "tls"  # a TLS server whose application protocol was not identified
    MIGRATION = "migration"  # a port of qemu.conf's migration range (connect-only)
    UNKNOWN = "unknown"


class Certificate(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """The leaf certificate a TLS server presented."""

    subject: str
    issuer: str
    not_before: str | None = None  # ISO 8601
    not_after: str | None = None
    lifespan_days: int | None = None
    self_signed: bool | None = None
    key_type: str | None = None  # rsa | ecdsa | ed25519 | dsa | …
    key_bits: int | None = None
    curve: str | None = None  # for ECDSA keys (SECG name)
    signature: str | None = None  # signature algorithm (e.g. sha256WithRSAEncryption)
    sha256: str | None = None  # fingerprint of the DER encoding
    chain_length: int | None = None


class TlsInfo(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """A TLS server's parameters. ``version``/``cipher`` come from one ordinary handshake; the
    enumerations (``versions``, ``ciphers`` …) from a full scan (sslyze) and are ``None`` when it
    did not run or failed (``scan_error`` says why)."""

    version: str | None = None  # negotiated: TLSv1.3, TLSv1.2 …
    cipher: str | None = None  # negotiated cipher suite (OpenSSL name)
    certificate: Certificate | None = None
    client_cert_requested: bool | None = None
    handshake_error: str | None = None
    versions: tuple[str, ...] | None = None  # accepted: SSLv2 SSLv3 TLSv1 TLSv1.1 TLSv1.2 TLSv1.3
    ciphers: tuple[str, ...] | None = None  # accepted TLS ≤ 1.2 suites (IANA names)
    ciphersuites: tuple[str, ...] | None = None  # accepted TLS 1.3 suites (IANA names)
    curves: tuple[str, ...] | None = None  # key-exchange groups accepted
    min_ecdh_bits: int | None = None
    min_dh_bits: int | None = None
    weaknesses: tuple[str, ...] | None = None  # heartbleed, ccs-injection, robot, compression, …
    scan_error: str | None = None


class VncInfo(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """An RFB (VNC) server's handshake: version and the security types offered (RFC 6143)."""

    version: str | None = None  # "RFB 003.008"
    security_types: tuple[int, ...] | None = None  # 1 None, 2 VNC auth, 16 Tight, 18 TLS, 19 VeNCrypt …
    failure_reason: str | None = None  # the server refused the connection (zero types) and said why
    vencrypt_version: str | None = None  # "0.2"
    vencrypt_subtypes: tuple[int, ...] | None = None  # 256 Plain, 257 TLSNone … 260 X509None …
    tls: TlsInfo | None = None  # the TLS inside VeNCrypt (when a TLS subtype was offered)
    error: str | None = None


class SpiceInfo(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """A SPICE server's link reply for the main channel."""

    link_error: int | None = None  # 0 OK, 5 NEED_SECURED (TLS required), 7 PERMISSION_DENIED …
    version: str | None = None  # "2.2"
    auth_methods: tuple[str, ...] | None = None  # spice (ticket) | sasl, from the common capabilities
    # Whether the empty ticket was refused: True = a ticket (password) is required; False = the
    # server accepted a client with no password. None: not tried or no answer.
    ticket_required: bool | None = None
    error: str | None = None


class LibvirtInfo(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """libvirt's RPC: the authentication schemes the daemon offers before any login."""

    auth_types: tuple[str, ...] | None = None  # none | sasl | polkit
    sasl_mechanisms: tuple[str, ...] | None = None
    error: str | None = None


class NbdInfo(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """An NBD server's newstyle negotiation."""

    fixed_newstyle: bool | None = None
    exports: tuple[str, ...] | None = None  # names listed without TLS (None: refused or not asked)
    tls_required: bool | None = None  # the server refused to list before STARTTLS
    error: str | None = None


class SshInfo(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """An SSH server's banner and algorithm offer (its KEXINIT), and the authentication methods it
    offers to a client that asks with the ``none`` method (no credential is sent)."""

    banner: str | None = None
    kex: tuple[str, ...] | None = None
    host_key_algorithms: tuple[str, ...] | None = None
    ciphers: tuple[str, ...] | None = None  # server to client
    macs: tuple[str, ...] | None = None
    compression: tuple[str, ...] | None = None
    host_key_type: str | None = None
    host_key_fingerprint: str | None = None  # SHA256:…
    auth_methods: tuple[str, ...] | None = None
    error: str | None = None


class HttpInfo(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """A web listener's answer to ``GET /`` (and, for a WebSocket console, the upgrade)."""

    tls: bool = False
    status: int | None = None
    server: str | None = None
    www_authenticate: str | None = None
    location: str | None = None
    product: str | None = None  # cockpit | novnc | websockify | qemu-websocket, when recognised
    websocket: bool | None = None  # the binary WebSocket upgrade was accepted
    vnc: VncInfo | None = None  # the RFB handshake through the WebSocket
    error: str | None = None


class Endpoint(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """One ``address:port`` contacted by a probe."""

    address: str
    port: int
    host: str | None = None  # the host name the operator gave, when not an address
    transport: str = "tcp"
    state: PortState
    protocol: Proto = Proto.UNKNOWN
    banner: str | None = None  # first bytes the server sent, printable and bounded
    tls: TlsInfo | None = None  # direct TLS (SPICE tls-port, libvirt 16514, HTTPS …)
    vnc: VncInfo | None = None
    spice: SpiceInfo | None = None
    libvirt: LibvirtInfo | None = None
    nbd: NbdInfo | None = None
    ssh: SshInfo | None = None
    http: HttpInfo | None = None
    error: str | None = None
    duration_s: float | None = None

    @property
    def label(self) -> str:
        """``address:port`` (IPv6 in brackets)."""
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


class ConfigRef(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """Where a listener comes from: a file or URI, the element or key, the value set there."""

    source: str
    locator: str
    value: str | None = None


class ExpectedListener(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """A listener the configuration predicts.

    ``owner_kind`` is ``domain`` (a VM's display, websocket or TLS port) or ``daemon`` (libvirtd's
    TCP/TLS listeners, QEMU's migration range from qemu.conf). ``address`` is the configured listen
    address (``0.0.0.0``/``::`` for every interface; None when the configuration leaves it unknown);
    ``tls`` and ``auth`` what the configuration says the listener requires (None: unknown).
    """

    protocol: Proto
    port: int | None  # None: the configuration does not fix it (autoport on a stopped domain)
    port_max: int | None = None  # a range (migration) ends here; None: a single port
    address: str | None = None
    owner_kind: str  # domain | daemon
    owner: str  # domain name, or "libvirtd" / "qemu"
    uuid: str | None = None
    tls: bool | None = None
    auth: str | None = None  # none | password | sasl | x509 | polkit | ticket | publickey
    condition: str | None = None  # when the listener exists only sometimes ("while a migration is incoming")
    refs: tuple[ConfigRef, ...] = ()  # the XML element / configuration keys responsible

    def covers(self, port: int) -> bool:
        if self.port is None:
            return False
        return self.port <= port <= (self.port_max if self.port_max is not None else self.port)


class ProbeRun(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """How a probe was run: what it was allowed to contact and where its configuration came from."""

    targets: tuple[str, ...]
    scope: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    addresses: int = 0  # addresses contacted
    attempts: int = 0  # connections attempted (the contact log has one line each)
    configuration: str | None = None  # "libvirt qemu:///system", "scan 12", None: no configuration
    contact_log: str | None = None  # the file every contacted address:port was written to
