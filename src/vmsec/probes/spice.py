"""SPICE: the link handshake of the main channel (whether a plain channel is accepted, the auth
methods in the server's capabilities) and whether a ticket is required.

Whether a ticket (password) is required shows only when a ticket is sent: the probe sends the empty
ticket — what a client with no password sends — and closes as soon as the server answers, before any
channel message. It never sends a guessed password."""

from __future__ import annotations

import struct

from vmsec.facts import SpiceInfo
from vmsec.probes.net import Conn

MAGIC = b"REDQ"
MAJOR, MINOR = 2, 2
CHANNEL_MAIN = 1
PUBKEY_BYTES = 162
# Common capabilities (bits): 0 PROTOCOL_AUTH_SELECTION, 1 AUTH_SPICE, 2 AUTH_SASL, 3 MINI_HEADER.
CAP_AUTH_SELECTION, CAP_AUTH_SPICE, CAP_AUTH_SASL = 1 << 0, 1 << 1, 1 << 2
MAX_CAPS = 64


def link_message() -> bytes:
    """SpiceLinkHeader + SpiceLinkMess for the main channel, advertising auth selection and the
    SPICE ticket method."""
    caps = struct.pack("<I", CAP_AUTH_SELECTION | CAP_AUTH_SPICE)
    mess = struct.pack("<IBBIII", 0, CHANNEL_MAIN, 0, 1, 0, 18) + caps
    return MAGIC + struct.pack("<III", MAJOR, MINOR, len(mess)) + mess


def parse_reply(header: bytes, body: bytes) -> tuple[SpiceInfo, bytes | None]:
    """The link reply: (facts, the server's public key when the link was accepted)."""
    magic, major, minor, _size = header[:4], *struct.unpack("<III", header[4:16])
    if magic != MAGIC:
        return SpiceInfo(error=f"not a SPICE link reply: {header[:4]!r}"), None
    version = f"{major}.{minor}"
    if len(body) < 4:
        return SpiceInfo(version=version, error="short link reply"), None
    (error,) = struct.unpack("<I", body[:4])
    if error != 0 or len(body) < 4 + PUBKEY_BYTES + 12:
        return SpiceInfo(version=version, link_error=error), None
    pubkey = body[4:4 + PUBKEY_BYTES]
    n_common, _n_channel, offset = struct.unpack("<III", body[4 + PUBKEY_BYTES:4 + PUBKEY_BYTES + 12])
    methods: tuple[str, ...] | None = None
    if 0 < n_common <= MAX_CAPS and offset + 4 <= len(body):
        (common,) = struct.unpack("<I", body[offset:offset + 4])
        methods = tuple(name for bit, name in ((CAP_AUTH_SPICE, "spice"), (CAP_AUTH_SASL, "sasl"))
                        if common & bit)
        if not common & CAP_AUTH_SELECTION:
            methods = ("spice",)  # an old server: the ticket is the only method
    return SpiceInfo(version=version, link_error=0, auth_methods=methods), pubkey


def empty_ticket(pubkey: bytes) -> bytes | None:
    """The empty password, RSA-OAEP encrypted with the server's key, as a SPICE client sends it."""
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:
        return None
    try:
        key = serialization.load_der_public_key(pubkey)
    except ValueError:
        return None
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    return key.encrypt(b"\0", padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(),
                                           label=None))


async def handshake(conn: Conn) -> SpiceInfo:
    conn.write(link_message())
    await conn.drain()
    header = await conn.read_exact(16)
    if header[:4] != MAGIC:
        return SpiceInfo(error=f"not a SPICE server (answered {header[:4]!r})")
    (size,) = struct.unpack("<I", header[12:16])
    if size > 4096:
        return SpiceInfo(error=f"link reply of {size} bytes refused")
    body = await conn.read_exact(size)
    info, pubkey = parse_reply(header, body)
    if pubkey is None or info.auth_methods is None or "spice" not in info.auth_methods:
        return info
    ticket = empty_ticket(pubkey)
    if ticket is None:
        return SpiceInfo(version=info.version, link_error=0, auth_methods=info.auth_methods,
                         error="the ticket test needs the cryptography package")
    conn.write(struct.pack("<I", 1) + ticket)  # auth mechanism SPICE, then the empty ticket
    await conn.drain()
    (result,) = struct.unpack("<I", await conn.read_exact(4))
    return SpiceInfo(version=info.version, link_error=0, auth_methods=info.auth_methods,
                     ticket_required=result != 0)
