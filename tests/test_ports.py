"""tests/ports.py: the ports handed to the tests' servers never repeat within a test process."""

from __future__ import annotations

import socket

from ports import claim, free_port, free_ports


def test_ports_are_never_handed_out_twice() -> None:
    seen = [*free_ports(50), *(free_port() for _ in range(500))]
    assert len(set(seen)) == len(seen)
    assert all(1024 < p < 65536 for p in seen)


def test_a_group_is_distinct_and_above_the_floor() -> None:
    group = free_ports(8, low=6000)
    assert len(set(group)) == 8 and min(group) > 6000


def test_claimed_and_listening_ports_are_not_handed_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        busy = listening.getsockname()[1]
        spare = free_port()
        claim(spare + 1)
        for _ in range(200):
            port = free_port()
            assert port not in (busy, spare, spare + 1)
