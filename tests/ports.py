"""TCP ports for the servers the tests start (QEMU consoles, sshd, redis, the service).

Binding port 0 and closing the socket finds a port nothing listens on *now*; two such calls can
give the same port (the kernel hands a just-released port out again: on this machine 14 times in
200,000 consecutive calls, and in one group of four in 2,600). A test that starts two servers on two
"free" ports then fails at random. Every port is therefore handed out once per test process, and a
group is taken while all of its sockets are still open."""

from __future__ import annotations

import socket
import threading

_handed_out: set[int] = set()
_lock = threading.Lock()


def free_ports(count: int, low: int = 1024) -> list[int]:
    """``count`` distinct ports above ``low`` that nothing listens on and no test got before."""
    with _lock:
        held: list[socket.socket] = []
        ports: list[int] = []
        try:
            while len(ports) < count:
                if len(held) >= 200 + 20 * count:
                    raise RuntimeError(f"no {count} free ports above {low}")
                s = socket.socket()
                held.append(s)  # kept open until the group is complete: the kernel cannot repeat it
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
                if port > low and port not in _handed_out:
                    ports.append(port)
        finally:
            for s in held:
                s.close()
        _handed_out.update(ports)
        return ports


def free_port(low: int = 1024) -> int:
    """One port, as :func:`free_ports`."""
    return free_ports(1, low)[0]


def claim(*ports: int) -> None:
    """Ports a test chose another way (a listener it bound itself): never handed out here."""
    with _lock:
        _handed_out.update(ports)
