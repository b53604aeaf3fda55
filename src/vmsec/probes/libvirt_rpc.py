"""libvirt's RPC protocol: ask the daemon which authentication schemes it offers (REMOTE_PROC_AUTH_LIST,
the call every client makes before logging in) and, for SASL, which mechanisms (AUTH_SASL_INIT).
Nothing else is called: no connection is opened to a hypervisor driver, no credential is sent."""

from __future__ import annotations

import struct

from vmsec.facts import LibvirtInfo
from vmsec.probes.net import Conn

REMOTE_PROGRAM = 0x20008086
REMOTE_VERSION = 1
PROC_AUTH_LIST = 66
PROC_AUTH_SASL_INIT = 67
CALL, REPLY = 0, 1
STATUS_OK, STATUS_ERROR = 0, 1
AUTH_TYPES = {0: "none", 1: "sasl", 2: "polkit"}
MAX_PACKET = 64 * 1024


def call(proc: int, serial: int) -> bytes:
    body = struct.pack(">IIiiII", REMOTE_PROGRAM, REMOTE_VERSION, proc, CALL, serial, STATUS_OK)
    return struct.pack(">I", 4 + len(body)) + body


def _xdr_string(data: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack(">I", data[offset:offset + 4])
    if length > len(data) - offset - 4:
        raise ValueError("string runs past the packet")
    text = data[offset + 4:offset + 4 + length].decode("utf-8", "replace")
    return text, offset + 4 + ((length + 3) & ~3)


def parse_reply(packet: bytes, proc: int) -> tuple[bool, bytes | str]:
    """(ok, body) for a reply to ``proc``; (False, message) for an error reply."""
    if len(packet) < 24:
        raise ValueError("short RPC header")
    prog, _vers, rproc, rtype, _serial, status = struct.unpack(">IIiiII", packet[:24])
    if prog != REMOTE_PROGRAM or rproc != proc or rtype != REPLY:
        raise ValueError(f"not a libvirt reply (program {prog:#x}, procedure {rproc}, type {rtype})")
    body = packet[24:]
    if status == STATUS_OK:
        return True, body
    message = "error"
    try:  # remote_error: code, domain, then a nullable string (pointer flag, string)
        if len(body) >= 12 and struct.unpack(">I", body[8:12])[0]:
            message, _ = _xdr_string(body, 12)
    except (ValueError, struct.error):
        pass
    return False, message


def parse_auth_list(body: bytes) -> tuple[str, ...]:
    (count,) = struct.unpack(">I", body[:4])
    if count > 16 or len(body) < 4 + 4 * count:
        raise ValueError(f"auth list of {count} entries")
    codes = struct.unpack(f">{count}i", body[4:4 + 4 * count])
    return tuple(AUTH_TYPES.get(c, f"type {c}") for c in codes)


async def _exchange(conn: Conn, proc: int, serial: int) -> tuple[bool, bytes | str]:
    conn.write(call(proc, serial))
    await conn.drain()
    (length,) = struct.unpack(">I", await conn.read_exact(4))
    if not 28 <= length <= MAX_PACKET:
        raise ValueError(f"RPC packet of {length} bytes")
    return parse_reply(await conn.read_exact(length - 4), proc)


async def handshake(conn: Conn, tls: bool = False) -> LibvirtInfo:
    if tls:
        # After the TLS handshake libvirt checks the client's certificate, then sends one byte (1)
        # to say the client may go on — or closes the connection.
        status = await conn.read_exact(1)
        if status != b"\x01":
            return LibvirtInfo(error=f"the daemon refused the TLS client (status byte {status!r})")
    ok, body = await _exchange(conn, PROC_AUTH_LIST, 1)
    if not ok:
        return LibvirtInfo(error=f"the daemon refused to list authentication schemes: {body!s}")
    assert isinstance(body, bytes)
    types = parse_auth_list(body)
    mechanisms: tuple[str, ...] | None = None
    if "sasl" in types:
        ok, body = await _exchange(conn, PROC_AUTH_SASL_INIT, 2)
        if ok and isinstance(body, bytes):
            text, _ = _xdr_string(body, 0)
            mechanisms = tuple(m for m in text.replace(",", " ").split() if m)[:64]
    return LibvirtInfo(auth_types=types, sasl_mechanisms=mechanisms)
