"""The probe's connection discipline: every byte read is bounded, every wait has a deadline, every
address and port contacted is logged, new connections are paced, and no more than a fixed number of
sockets are open at once.

A hostile server costs at most one timeout: a reply is read in bounded pieces (``MAX_REPLY`` bytes per
connection in all), and a server that never answers, or trickles bytes, meets the connection's
deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator
from typing import TextIO

from msgspec import Struct

from vmsec.errors import ConfigError
from vmsec.facts import PortState

MAX_REPLY = 256 * 1024  # bytes read from one connection, in all
MAX_TARGET_ADDRESSES = 65_536  # addresses one CIDR may expand to
MAX_ATTEMPTS = 2_000_000  # address:port pairs one probe may try


class ReplyTooLarge(Exception):
    """The server sent more than the probe reads from one connection."""


class Deadline(Exception):
    """The connection's time is up."""


class Conn:
    """One TCP connection with a deadline and a byte budget. Reads take what the server sent
    earlier (a peeked banner) first."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: float,
                 budget: int = MAX_REPLY) -> None:
        self.reader = reader
        self.writer = writer
        self.deadline = deadline  # loop.time() value
        self.budget = budget
        self.sent = 0
        self.received = 0
        self.pending = bytearray()

    def remaining(self) -> float:
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    async def _fill(self, limit: int) -> bytes:
        limit = min(limit, self.budget - self.received)
        if limit <= 0:
            raise ReplyTooLarge(f"the server sent more than {self.budget} bytes")
        left = self.remaining()
        if left <= 0:
            raise Deadline()
        try:
            data = await asyncio.wait_for(self.reader.read(limit), left)
        except TimeoutError as exc:
            raise Deadline() from exc
        self.received += len(data)
        return data

    async def read_exact(self, n: int) -> bytes:
        """Exactly ``n`` bytes (EOF before: :class:`asyncio.IncompleteReadError`)."""
        if n < 0 or n > self.budget:
            raise ReplyTooLarge(f"the server announced {n} bytes; at most {self.budget} are read")
        while len(self.pending) < n:
            chunk = await self._fill(min(65536, n - len(self.pending)))
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(self.pending), n)
            self.pending += chunk
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    async def read_some(self, limit: int = 4096) -> bytes:
        """Whatever arrives next, at most ``limit`` bytes (b"" at EOF)."""
        if self.pending:
            out = bytes(self.pending[:limit])
            del self.pending[:limit]
            return out
        return await self._fill(limit)

    async def read_until(self, marker: bytes, limit: int) -> bytes:
        """Bytes up to and including ``marker``, failing past ``limit`` bytes."""
        while marker not in self.pending:
            if len(self.pending) >= limit:
                raise ReplyTooLarge(f"no {marker!r} within {limit} bytes")
            chunk = await self._fill(min(4096, limit - len(self.pending)))
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(self.pending), None)
            self.pending += chunk
        end = self.pending.index(marker) + len(marker)
        out = bytes(self.pending[:end])
        del self.pending[:end]
        return out

    async def peek_banner(self, wait: float) -> bytes:
        """What a server-speaks-first protocol sends on its own within ``wait`` seconds (b"" if
        nothing came); the bytes stay readable."""
        if self.pending:
            return bytes(self.pending)
        try:
            data = await asyncio.wait_for(self.reader.read(512), min(wait, self.remaining()))
        except TimeoutError:
            return b""
        self.received += len(data)
        self.pending += data
        return data

    def write(self, data: bytes) -> None:
        self.sent += len(data)
        self.writer.write(data)

    async def drain(self) -> None:
        try:
            await asyncio.wait_for(self.writer.drain(), max(self.remaining(), 0.001))
        except TimeoutError as exc:
            raise Deadline() from exc

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Upgrade to TLS (nothing may be pending)."""
        try:
            await asyncio.wait_for(self.writer.start_tls(context), max(self.remaining(), 0.001))
        except TimeoutError as exc:
            raise Deadline() from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


class ContactLog:
    """One line per connection attempt: when, where, outcome, bytes sent and received."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.lines = 0

    def write(self, address: str, port: int, outcome: str, protocol: str, seconds: float, sent: int,
              received: int) -> None:
        self.lines += 1
        if self.out is None:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        self.out.write(f"{stamp}Z\t{address}\t{port}\t{outcome}\t{protocol}\t{seconds:.3f}\t{sent}\t{received}\n")


class Pacer:
    """At most ``rate`` new connections per second (None: no limit), and at most ``concurrency``
    connections open at once."""

    def __init__(self, rate: float | None, concurrency: int) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next = 0.0
        self.lock = asyncio.Lock()
        self.slots = asyncio.Semaphore(max(1, concurrency))

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.slots:
            if self.interval:
                async with self.lock:
                    loop = asyncio.get_running_loop()
                    now = loop.time()
                    wait = self.next - now
                    self.next = max(now, self.next) + self.interval
                if wait > 0:
                    await asyncio.sleep(wait)
            yield


_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EACCES, errno.EPERM}


async def connect(address: str, port: int, timeout: float) -> tuple[PortState, Conn | None, str | None]:
    """Open a TCP connection: (state, connection when open, error text)."""
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, limit=64 * 1024), timeout)
    except TimeoutError:
        return PortState.FILTERED, None, f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        return PortState.CLOSED, None, None
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return PortState.CLOSED, None, None
        if exc.errno in _UNREACHABLE:
            return PortState.UNREACHABLE, None, exc.strerror or str(exc)
        return PortState.UNREACHABLE, None, exc.strerror or str(exc)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return PortState.OPEN, Conn(reader, writer, loop.time() + timeout), None


# --- targets and scope ---------------------------------------------------------------------------


def parse_networks(values: tuple[str, ...], what: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(f"{what} {value!r} is not an address or CIDR") from exc
    return out


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


class Address(Struct, frozen=True):
    address: str
    host: str | None  # the name the operator gave, when it was not an address


def resolve_targets(targets: tuple[str, ...], scope: tuple[str, ...]) -> list[Address]:
    """Targets (host names, addresses, CIDRs) as addresses, each checked against the scope:
    loopback is always allowed, anything else only within a ``--scope`` CIDR. An address outside
    the scope is a :class:`ConfigError` before anything is contacted."""
    nets = parse_networks(scope, "--scope")
    out: list[Address] = []
    seen: set[str] = set()

    def add(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str | None, given: str) -> None:
        text = str(ip)
        if not ip.is_loopback and not any(ip in n for n in nets if n.version == ip.version):
            raise ConfigError(f"{given} ({text}) is outside the probe's scope: only loopback addresses are "
                              "probed unless --scope names a network that contains them")
        if text not in seen:
            seen.add(text)
            out.append(Address(text, host))

    for raw in targets:
        target = raw.strip()
        if not target:
            continue
        try:
            net = ipaddress.ip_network(target.strip("[]"), strict=False)
        except ValueError:
            net = None
        if net is not None:
            if net.num_addresses > MAX_TARGET_ADDRESSES:
                raise ConfigError(f"{target} holds {net.num_addresses} addresses; at most "
                                  f"{MAX_TARGET_ADDRESSES} per target")
            hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
            for ip in hosts:
                add(ipaddress.ip_address(str(ip)), None, target)
            continue
        try:
            infos = socket.getaddrinfo(target, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ConfigError(f"cannot resolve {target}: {exc}") from exc
        for info in infos:
            add(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]), target, target)
    return out
