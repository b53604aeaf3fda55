"""Web consoles: what ``GET /`` answers without credentials (Cockpit, noVNC, websockify), and for a
VNC WebSocket (QEMU's ``websocket=`` port, websockify) the RFB handshake through the WebSocket — the
same security types a VNC client would see, with no input sent."""

from __future__ import annotations

import base64
import os
import re
import struct

from vmsec.facts import HttpInfo, VncInfo
from vmsec.probes.net import Conn
from vmsec.probes.rfb import parse_version

MAX_HEAD = 16 * 1024
MAX_BODY = 32 * 1024
MAX_FRAME = 64 * 1024


def _request(host: str, path: str, extra: str = "") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vmsec-probe\r\nAccept: */*\r\n{extra}"
            "Connection: close\r\n\r\n").encode("ascii")


def parse_head(head: bytes) -> tuple[int | None, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/\d(?:\.\d)? (\d{3})", lines[0])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() not in headers:
            headers[name.strip().lower()] = value.strip()[:500]
    return (int(m.group(1)) if m else None), headers


def recognise(headers: dict[str, str], body: bytes) -> str | None:
    text = body.lower()
    server = headers.get("server", "").lower()
    if b"cockpit" in text or "cockpit" in server:
        return "cockpit"
    if b"novnc" in text:
        return "novnc"
    if "websockify" in server or b"websockify" in text:
        return "websockify"
    return None


async def get(conn: Conn, host: str, tls: bool) -> HttpInfo:
    conn.write(_request(host, "/"))
    await conn.drain()
    head = await conn.read_until(b"\r\n\r\n", MAX_HEAD)
    status, headers = parse_head(head)
    if status is None:
        return HttpInfo(tls=tls, error="not an HTTP response")
    body = bytearray()
    while len(body) < MAX_BODY:
        chunk = await conn.read_some(MAX_BODY - len(body))
        if not chunk:
            break
        body += chunk
    return HttpInfo(tls=tls, status=status, server=headers.get("server"),
                    www_authenticate=headers.get("www-authenticate"), location=headers.get("location"),
                    product=recognise(headers, bytes(body)))


def _frame(payload: bytes) -> bytes:
    """A masked binary frame (clients must mask)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if len(payload) < 126:
        header = struct.pack(">BB", 0x82, 0x80 | len(payload))
    else:
        header = struct.pack(">BBH", 0x82, 0x80 | 126, len(payload))
    return header + mask + masked


async def _read_frame(conn: Conn) -> tuple[int, bytes]:
    b0, b1 = await conn.read_exact(2)
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack(">H", await conn.read_exact(2))
    elif length == 127:
        (length,) = struct.unpack(">Q", await conn.read_exact(8))
    if length > MAX_FRAME:
        raise ValueError(f"WebSocket frame of {length} bytes refused")
    mask = await conn.read_exact(4) if b1 & 0x80 else None
    data = await conn.read_exact(length)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return b0 & 0x0F, data


class _WsBuffer:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.buf = bytearray()

    async def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            opcode, data = await _read_frame(self.conn)
            if opcode == 8:
                raise ConnectionError("the WebSocket was closed")
            if opcode in (0, 1, 2):
                self.buf += data
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


async def websocket_vnc(conn: Conn, host: str, tls: bool) -> HttpInfo:
    """Upgrade to a binary WebSocket and read the RFB version and security types through it."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    extra = (f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n")
    conn.write(_request(host, "/", extra).replace(b"Connection: close\r\n", b""))
    await conn.drain()
    head = await conn.read_until(b"\r\n\r\n", MAX_HEAD)
    status, headers = parse_head(head)
    if status != 101:
        return HttpInfo(tls=tls, status=status, server=headers.get("server"), websocket=False,
                        www_authenticate=headers.get("www-authenticate"))
    ws = _WsBuffer(conn)
    raw = await ws.read(12)
    version = parse_version(raw)
    if version is None:
        return HttpInfo(tls=tls, status=101, websocket=True, error="no RFB greeting through the WebSocket")
    text = raw.decode("ascii").strip()
    reply = 8 if version[1] >= 8 else 7 if version[1] >= 7 else 3
    conn.write(_frame(b"RFB 003.%03d\n" % reply))
    await conn.drain()
    if reply == 3:
        (chosen,) = struct.unpack(">I", await ws.read(4))
        types: tuple[int, ...] = (chosen,) if chosen else ()
    else:
        (count,) = await ws.read(1)
        types = tuple(await ws.read(count)) if count else ()
    return HttpInfo(tls=tls, status=101, websocket=True, product="vnc-websocket",
                    vnc=VncInfo(version=text, security_types=types))
