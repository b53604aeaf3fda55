"""NBD: the newstyle negotiation up to NBD_OPT_LIST — which exports a client is shown before any TLS —
then NBD_OPT_ABORT. No export is ever opened."""

from __future__ import annotations

import struct

from vmsec.facts import NbdInfo
from vmsec.probes.net import Conn

NBDMAGIC = b"NBDMAGIC"
IHAVEOPT = b"IHAVEOPT"
OLDSTYLE = 0x00420281861253
REPLY_MAGIC = 0x3E889045565A9
OPT_ABORT, OPT_LIST = 2, 3
REP_ACK, REP_SERVER = 1, 2
REP_ERR_TLS_REQD = (1 << 31) + 5
FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES = 1, 2
MAX_EXPORTS = 1000
MAX_NAME = 4096


def option(code: int) -> bytes:
    return IHAVEOPT + struct.pack(">II", code, 0)


async def handshake(conn: Conn) -> NbdInfo:
    magic = await conn.read_exact(8)
    if magic != NBDMAGIC:
        return NbdInfo(error=f"not an NBD server: {magic!r}")
    second = await conn.read_exact(8)
    if struct.unpack(">Q", second)[0] == OLDSTYLE:
        return NbdInfo(fixed_newstyle=False, exports=("(oldstyle: one unnamed export, no negotiation)",),
                       tls_required=False)
    if second != IHAVEOPT:
        return NbdInfo(error="unknown NBD handshake")
    (flags,) = struct.unpack(">H", await conn.read_exact(2))
    fixed = bool(flags & FLAG_FIXED_NEWSTYLE)
    client = (FLAG_FIXED_NEWSTYLE if fixed else 0) | (FLAG_NO_ZEROES if flags & FLAG_NO_ZEROES else 0)
    conn.write(struct.pack(">I", client) + option(OPT_LIST))
    await conn.drain()
    exports: list[str] = []
    tls_required: bool | None = False
    error = None
    while True:
        magic_q, _opt, rtype, length = struct.unpack(">QIII", await conn.read_exact(20))
        if magic_q != REPLY_MAGIC:
            error = "malformed option reply"
            tls_required = None
            break
        if length > MAX_NAME + 4:
            error = f"option reply of {length} bytes refused"
            tls_required = None
            break
        data = await conn.read_exact(length)
        if rtype == REP_ACK:
            break
        if rtype == REP_SERVER and len(data) >= 4:
            (n,) = struct.unpack(">I", data[:4])
            exports.append(data[4:4 + min(n, MAX_NAME)].decode("utf-8", "replace"))
            if len(exports) >= MAX_EXPORTS:
                break
            continue
        if rtype == REP_ERR_TLS_REQD:
            tls_required = True
            conn.write(option(OPT_ABORT))
            return NbdInfo(fixed_newstyle=fixed, exports=None, tls_required=True)
        if rtype & (1 << 31):
            error = f"the server refused to list exports (error {rtype & 0x7FFFFFFF})"
            tls_required = None
            break
    conn.write(option(OPT_ABORT))
    return NbdInfo(fixed_newstyle=fixed, exports=tuple(exports) if error is None else None,
                   tls_required=tls_required, error=error)
