"""VNC (RFB, RFC 6143): the server's version and the security types it offers, and for VeNCrypt its
sub-types and the TLS inside. Never selects the None type, never answers an authentication
challenge, never sends ClientInit or any input: the connection is closed after the handshake."""

from __future__ import annotations

import asyncio
import re
import struct

from vmsec.facts import TlsInfo, VncInfo, evolve
from vmsec.probes.codes import ANON_TLS_SUBTYPES, subtype_name
from vmsec.probes.net import Conn, Deadline, ReplyTooLarge
from vmsec.probes.tls import client_context, describe_session

_VERSION = re.compile(rb"^RFB (\d{3})\.(\d{3})\n$")
MAX_REASON = 4096


def parse_version(data: bytes) -> tuple[int, int] | None:
    m = _VERSION.match(data)
    return (int(m.group(1)), int(m.group(2))) if m else None


async def _reason(conn: Conn) -> str:
    (length,) = struct.unpack(">I", await conn.read_exact(4))
    text = await conn.read_exact(min(length, MAX_REASON))
    return text.decode("latin-1")


async def handshake(conn: Conn) -> VncInfo:
    """The RFB handshake up to the security types (and VeNCrypt's sub-types and TLS)."""
    raw = await conn.read_exact(12)
    version = parse_version(raw)
    if version is None:
        return VncInfo(error=f"not an RFB version string: {raw!r}")
    text = raw.decode("ascii").strip()
    major, minor = version
    if major != 3:
        return VncInfo(version=text, error="unsupported RFB major version")
    # Answer with the highest version both speak (3.3, 3.7 or 3.8): that is the handshake.
    reply = 8 if minor >= 8 else 7 if minor >= 7 else 3
    conn.write(b"RFB 003.%03d\n" % reply)
    await conn.drain()
    if reply == 3:
        (chosen,) = struct.unpack(">I", await conn.read_exact(4))
        if chosen == 0:
            return VncInfo(version=text, security_types=(), failure_reason=await _reason(conn))
        return VncInfo(version=text, security_types=(chosen,))
    (count,) = await conn.read_exact(1)
    if count == 0:
        return VncInfo(version=text, security_types=(), failure_reason=await _reason(conn))
    types = tuple(await conn.read_exact(count))
    if 19 not in types:
        return VncInfo(version=text, security_types=types)
    return await _vencrypt(conn, text, types)


async def _vencrypt(conn: Conn, text: str, types: tuple[int, ...]) -> VncInfo:
    """Select VeNCrypt (not an authentication: it lists sub-types), then, when a TLS sub-type is
    offered, select it and complete the TLS handshake — and close before any authentication."""
    conn.write(bytes([19]))
    await conn.drain()
    major, minor = await conn.read_exact(2)
    vversion = f"{major}.{minor}"
    if (major, minor) < (0, 2):
        return VncInfo(version=text, security_types=types, vencrypt_version=vversion,
                       error="VeNCrypt 0.1 is not examined")
    conn.write(b"\x00\x02")
    await conn.drain()
    (ack,) = await conn.read_exact(1)
    if ack != 0:
        return VncInfo(version=text, security_types=types, vencrypt_version=vversion,
                       error="the server refused VeNCrypt 0.2")
    (count,) = await conn.read_exact(1)
    subtypes = struct.unpack(f">{count}I", await conn.read_exact(4 * count)) if count else ()
    base = VncInfo(version=text, security_types=types, vencrypt_version=vversion, vencrypt_subtypes=subtypes)
    # Prefer a sub-type that asks for more authentication after TLS (we stop before it), then X509.
    order = (261, 262, 264, 260, 258, 259, 263, 257)
    chosen = next((s for s in order if s in subtypes), None)
    if chosen is None:
        return base
    conn.write(struct.pack(">I", chosen))
    await conn.drain()
    (ok,) = await conn.read_exact(1)
    if ok != 1:
        return evolve(base, error=f"the server refused {subtype_name(chosen)}")
    anonymous = chosen in ANON_TLS_SUBTYPES
    try:
        await conn.start_tls(client_context(anonymous=anonymous))
    except (OSError, Deadline, asyncio.IncompleteReadError) as exc:
        return evolve(base, tls=TlsInfo(handshake_error=str(exc) or type(exc).__name__))
    info = describe_session(conn)
    if chosen == 260:
        # X509None: no authentication follows TLS; a server that verifies client certificates
        # closes now, one that does not sends its SecurityResult. Read, never answer.
        try:
            data = await conn.read_some(4)
            required = not data
        except (OSError, Deadline, ReplyTooLarge):
            required = None
        except asyncio.IncompleteReadError:
            required = True
        info = evolve(info, client_cert_requested=required)
    return evolve(base, tls=info)
