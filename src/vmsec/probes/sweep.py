"""The sweep: contact every (address, port), identify what answers, and run that protocol's handshake.

Server-speaks-first protocols (RFB, SSH, NBD) are recognised from their greeting. A silent port is
spoken to only when a hint says what it should be — the configuration predicts it, or the port is a
well-known one (SPICE on 59xx, libvirt on 16509/16514, a web console on 9090 …); otherwise nothing is
sent. Ports of qemu.conf's migration range are only connected to and closed: a QEMU waiting for an
incoming migration would take any byte as the migration stream.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable, Iterable, Mapping

from msgspec import Struct

from vmsec.facts import Endpoint, PortState, Proto, TlsInfo, evolve
from vmsec.probes import http, libvirt_rpc, nbd, rfb, spice, ssh
from vmsec.probes.net import Address, ContactLog, Deadline, Pacer, ReplyTooLarge, connect
from vmsec.probes.tls import client_context, describe_session

WELL_KNOWN: Mapping[int, Proto] = {22: Proto.SSH, 16509: Proto.LIBVIRT, 16514: Proto.LIBVIRT_TLS,
                                   10809: Proto.NBD, 9090: Proto.HTTPS, 6080: Proto.HTTP, 80: Proto.HTTP,
                                   8080: Proto.HTTP, 443: Proto.HTTPS, 8443: Proto.HTTPS}


def well_known(port: int) -> Proto | None:
    if port in WELL_KNOWN:
        return WELL_KNOWN[port]
    if 5900 <= port <= 5999:
        return Proto.VNC  # VNC, or SPICE when the port stays silent
    if 5700 <= port <= 5799:
        return Proto.VNC_WEBSOCKET
    return None


class Attempt(Struct, frozen=True):
    address: Address
    port: int
    hint: Proto | None = None  # from the configuration or the well-known ports
    expected: bool = False  # the configuration predicts this listener
    tls: bool | None = None  # the configuration says the listener requires TLS


class Tally(Struct):
    open: int = 0
    closed: int = 0
    filtered: int = 0
    unreachable: int = 0
    attempts: int = 0


def printable(data: bytes, limit: int = 80) -> str:
    return "".join(chr(b) if 32 <= b < 127 else "." for b in data[:limit])


class Sweep:
    """Runs attempts with bounded concurrency, pacing and a per-connection timeout."""

    def __init__(self, *, timeout: float, concurrency: int, rate: float | None, log: ContactLog,
                 banner_wait: float | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.timeout = timeout
        self.pacer = Pacer(rate, concurrency)
        self.concurrency = concurrency
        self.log = log
        self.banner_wait = banner_wait if banner_wait is not None else min(1.0, timeout / 2)
        self.tally = Tally()
        self.progress = progress

    async def run(self, attempts: Iterable[Attempt]) -> list[Endpoint]:
        """Every attempt; returns the endpoints worth reporting (open, or predicted by configuration).
        Attempts are fed through a bounded queue, so memory does not grow with their number."""
        kept: list[Endpoint] = []
        queue: asyncio.Queue[Attempt | None] = asyncio.Queue(maxsize=self.concurrency * 2)

        async def worker() -> None:
            while True:
                item = await queue.get()
                if item is None:
                    return
                endpoint = await self.one(item)
                if endpoint.state is PortState.OPEN or item.expected:
                    kept.append(endpoint)

        workers = [asyncio.create_task(worker()) for _ in range(max(1, self.concurrency))]
        try:
            for n, attempt in enumerate(attempts, start=1):
                await queue.put(attempt)
                if self.progress is not None and n % 500 == 0:
                    self.progress(f"probe: {n} contacted, {self.tally.open} open")
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
        return kept

    def _log(self, attempt: Attempt, outcome: str, protocol: str, began: float, sent: int = 0,
             received: int = 0) -> None:
        self.log.write(attempt.address.address, attempt.port, outcome, protocol, time.monotonic() - began,
                       sent, received)

    async def one(self, attempt: Attempt) -> Endpoint:
        self.tally.attempts += 1
        async with self.pacer.slot():
            began = time.monotonic()
            state, conn, error = await connect(attempt.address.address, attempt.port, self.timeout)
            base = Endpoint(address=attempt.address.address, port=attempt.port, host=attempt.address.host,
                            state=state, protocol=attempt.hint or Proto.UNKNOWN, error=error)
            if conn is None:
                setattr(self.tally, state.value, getattr(self.tally, state.value) + 1)
                self._log(attempt, state.value, "-", began)
                shown = attempt.hint if attempt.expected and attempt.hint else Proto.UNKNOWN
                return evolve(base, protocol=shown, duration_s=round(time.monotonic() - began, 4))
            self.tally.open += 1
            endpoint = base
            try:
                endpoint = await self._identify(attempt, conn, base)
            finally:
                conn.close()
                self._log(attempt, "open", endpoint.protocol.value, began, conn.sent, conn.received)
        if endpoint.protocol is Proto.SSH and endpoint.ssh is not None and endpoint.ssh.error is None:
            endpoint = await self._ssh_extra(attempt, endpoint)
        if endpoint.protocol in (Proto.HTTPS, Proto.VNC_WEBSOCKET) and endpoint.http is None:
            endpoint = await self._retry_plain(attempt, endpoint)
        return evolve(endpoint, duration_s=round(time.monotonic() - began, 4))

    async def _identify(self, attempt: Attempt, conn: object, base: Endpoint) -> Endpoint:
        from vmsec.probes.net import Conn

        assert isinstance(conn, Conn)
        hint = attempt.hint
        if hint is Proto.MIGRATION:
            return evolve(base, protocol=Proto.MIGRATION)  # connect only: nothing is sent or read
        try:
            greeting = await conn.peek_banner(self.banner_wait)
            if greeting.startswith(b"RFB "):
                return evolve(base, protocol=Proto.VNC, vnc=await rfb.handshake(conn))
            if greeting.startswith(b"SSH-"):
                return evolve(base, protocol=Proto.SSH, ssh=await ssh.banner_and_kexinit(conn))
            if greeting.startswith(b"NBDMAGIC"):
                return evolve(base, protocol=Proto.NBD, nbd=await nbd.handshake(conn))
            if greeting:
                return evolve(base, protocol=Proto.UNKNOWN, banner=printable(greeting))
            return await self._silent(attempt, conn, base)
        except Deadline:
            return evolve(base, error=f"no complete answer within {self.timeout:g} s")
        except ReplyTooLarge as exc:
            return evolve(base, error=f"reply too large: {exc}")
        except asyncio.IncompleteReadError:
            return evolve(base, error="the server closed the connection during the handshake")
        except (ValueError, struct.error, UnicodeError) as exc:
            return evolve(base, error=f"malformed reply: {exc}")
        except (OSError, ConnectionError) as exc:
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return evolve(base, error=f"connection error: {text}")

    async def _silent(self, attempt: Attempt, conn: object, base: Endpoint) -> Endpoint:
        from vmsec.probes.net import Conn

        assert isinstance(conn, Conn)
        hint = attempt.hint
        host = attempt.address.host or attempt.address.address
        if hint in (Proto.VNC, Proto.SPICE):
            found = await spice.handshake(conn)
            if found.error and found.version is None:
                return evolve(base, protocol=Proto.UNKNOWN, error=f"silent; not SPICE: {found.error}")
            return evolve(base, protocol=Proto.SPICE, spice=found)
        if hint is Proto.LIBVIRT:
            return evolve(base, protocol=Proto.LIBVIRT, libvirt=await libvirt_rpc.handshake(conn))
        if hint is Proto.HTTP:
            return evolve(base, protocol=Proto.HTTP, http=await http.get(conn, host, tls=False))
        if hint is Proto.VNC_WEBSOCKET and attempt.tls is not True:
            info = await http.websocket_vnc(conn, host, False)
            return evolve(base, protocol=Proto.VNC_WEBSOCKET, http=info)
        if hint in (Proto.SPICE_TLS, Proto.LIBVIRT_TLS, Proto.HTTPS, Proto.TLS, Proto.VNC_WEBSOCKET):
            try:
                await conn.start_tls(client_context())
            except Deadline:
                raise
            except (OSError, ConnectionError) as exc:
                failed = TlsInfo(handshake_error=str(exc) or type(exc).__name__)
                return evolve(base, protocol=hint, tls=failed)
            tls = describe_session(conn)
            endpoint = evolve(base, protocol=hint, tls=tls)
            if hint is Proto.LIBVIRT_TLS:
                return await self._inside(endpoint, conn, lambda: libvirt_rpc.handshake(conn, tls=True),
                                          "libvirt")
            if hint is Proto.SPICE_TLS:
                return await self._inside(endpoint, conn, lambda: spice.handshake(conn), "spice")
            if hint is Proto.VNC_WEBSOCKET:
                return await self._inside(endpoint, conn, lambda: http.websocket_vnc(conn, host, True),
                                          "http")
            if hint is Proto.HTTPS:
                return await self._inside(endpoint, conn, lambda: http.get(conn, host, True), "http")
            return endpoint
        return evolve(base, protocol=Proto.UNKNOWN,
                       error="open and silent; nothing was sent (protocol unknown)")

    async def _inside(self, endpoint: Endpoint, conn: object, run: Callable[[], object],
                      field: str) -> Endpoint:
        """The application handshake inside TLS; a server that closes now wanted a client certificate."""
        try:
            info = await run()  # type: ignore[misc]
        except asyncio.IncompleteReadError:
            tls = evolve(endpoint.tls, client_cert_requested=True) if endpoint.tls else None
            return evolve(endpoint, tls=tls, error="the server closed the connection after the TLS "
                                                    "handshake (a client certificate is required)")
        except (OSError, ConnectionError) as exc:
            tls = evolve(endpoint.tls, client_cert_requested=True) if endpoint.tls else None
            return evolve(endpoint, tls=tls, error=f"the server ended the TLS session: {exc}")
        except Deadline:
            return evolve(endpoint, error=f"no complete answer inside TLS within {self.timeout:g} s")
        except (ReplyTooLarge, ValueError, struct.error, UnicodeError) as exc:
            return evolve(endpoint, error=f"malformed reply inside TLS: {exc}")
        tls = evolve(endpoint.tls, client_cert_requested=False) if endpoint.tls else None
        return evolve(endpoint, tls=tls, **{field: info})

    async def _retry_plain(self, attempt: Attempt, endpoint: Endpoint) -> Endpoint:
        """A web port that did not speak TLS: ask again in clear (a second, logged connection)."""
        if endpoint.tls is None or endpoint.tls.handshake_error is None:
            return endpoint
        async with self.pacer.slot():
            began = time.monotonic()
            state, conn, _error = await connect(attempt.address.address, attempt.port, self.timeout)
            if conn is None:
                self._log(attempt, state.value, "http", began)
                return endpoint
            host = attempt.address.host or attempt.address.address
            try:
                if endpoint.protocol is Proto.VNC_WEBSOCKET:
                    info = await http.websocket_vnc(conn, host, False)
                else:
                    info = await http.get(conn, host, False)
            except (Deadline, ReplyTooLarge, asyncio.IncompleteReadError, ValueError, OSError):
                return endpoint
            finally:
                conn.close()
                self._log(attempt, "open", "http", began, conn.sent, conn.received)
        proto = Proto.VNC_WEBSOCKET if endpoint.protocol is Proto.VNC_WEBSOCKET else Proto.HTTP
        return evolve(endpoint, protocol=proto, tls=None, http=info, error=None)

    async def _ssh_extra(self, attempt: Attempt, endpoint: Endpoint) -> Endpoint:
        async with self.pacer.slot():
            began = time.monotonic()
            assert endpoint.ssh is not None
            info = await ssh.key_and_methods(attempt.address.address, attempt.port, self.timeout,
                                             endpoint.ssh)
            self._log(attempt, "open", "ssh-hostkey", began)
            self._log(attempt, "open", "ssh-auth-methods", began)
        return evolve(endpoint, ssh=info)
