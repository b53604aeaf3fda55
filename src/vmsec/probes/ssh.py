"""SSH: the server's banner and algorithm offer (its KEXINIT, sent in clear after the identification
strings), its host key, and the authentication methods it offers — asked the way every client asks,
with the ``none`` method for a user that does not exist; no password or key is ever sent. The host
key and the methods come through asyncssh (the ``probe`` extra)."""

from __future__ import annotations

import asyncio
import struct

from vmsec.facts import SshInfo, evolve
from vmsec.probes.net import Conn

CLIENT_ID = b"SSH-2.0-vmsec_probe\r\n"
PROBE_USER = "vmsec-probe-nobody"
MAX_PACKET = 35_000
MAX_PRE_BANNER_LINES = 20
MSG_KEXINIT = 20


def _name_list(payload: bytes, offset: int) -> tuple[tuple[str, ...], int]:
    (length,) = struct.unpack(">I", payload[offset:offset + 4])
    if length > len(payload) - offset - 4:
        raise ValueError("name-list runs past the packet")
    text = payload[offset + 4:offset + 4 + length].decode("ascii", "replace")
    return tuple(n for n in text.split(",") if n), offset + 4 + length


def parse_kexinit(payload: bytes) -> dict[str, tuple[str, ...]]:
    if not payload or payload[0] != MSG_KEXINIT:
        raise ValueError("the first packet is not KEXINIT")
    offset = 17  # message byte + 16-byte cookie
    names = ("kex", "host_key_algorithms", "ciphers_c2s", "ciphers", "macs_c2s", "macs", "compression_c2s",
             "compression")
    out: dict[str, tuple[str, ...]] = {}
    for name in names:
        out[name], offset = _name_list(payload, offset)
    return out


async def banner_and_kexinit(conn: Conn) -> SshInfo:
    banner = None
    for _ in range(MAX_PRE_BANNER_LINES):
        line = await conn.read_until(b"\n", 255)
        if line.startswith(b"SSH-"):
            banner = line.rstrip(b"\r\n").decode("ascii", "replace")
            break
    if banner is None:
        return SshInfo(error="no SSH identification string")
    conn.write(CLIENT_ID)
    await conn.drain()
    length, padding = struct.unpack(">IB", await conn.read_exact(5))
    if not 5 < length <= MAX_PACKET or padding >= length:
        return SshInfo(banner=banner, error=f"first packet of {length} bytes refused")
    payload = (await conn.read_exact(length - 1))[: length - 1 - padding]
    try:
        algs = parse_kexinit(payload)
    except (ValueError, struct.error) as exc:
        return SshInfo(banner=banner, error=str(exc))
    return SshInfo(banner=banner, kex=algs["kex"], host_key_algorithms=algs["host_key_algorithms"],
                   ciphers=algs["ciphers"], macs=algs["macs"], compression=algs["compression"])


async def key_and_methods(address: str, port: int, timeout: float, info: SshInfo) -> SshInfo:
    """``info`` with the host key (type, SHA256 fingerprint) and offered auth methods, through
    asyncssh; a failure leaves them unknown and says why in ``error``."""
    try:
        import asyncssh
    except ImportError:
        return evolve(info, error="asyncssh is not installed: pip install 'vmsec[probe]'")
    key_type = fingerprint = None
    methods: tuple[str, ...] | None = None
    errors = []
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(address, port, client_version="vmsec_probe", config=None), timeout)
        if key is not None:
            key_type, fingerprint = key.get_algorithm(), key.get_fingerprint("sha256")
    except (OSError, asyncssh.Error, TimeoutError, ValueError) as exc:
        errors.append(f"host key: {exc or type(exc).__name__}")
    try:
        found = await asyncio.wait_for(asyncssh.get_server_auth_methods(
            address, port, username=PROBE_USER, client_version="vmsec_probe", config=None), timeout)
        methods = tuple(found)[:16]
    except (OSError, asyncssh.Error, TimeoutError, ValueError) as exc:
        errors.append(f"auth methods: {exc or type(exc).__name__}")
    return evolve(info, host_key_type=key_type, host_key_fingerprint=fingerprint,
                               auth_methods=methods, error="; ".join(errors) or None)
