"""Every guest-agent reply is hostile input: oversized, malformed or ill-typed replies are refused with a
clear error, and nothing but read-only commands is ever sent.

A hostile qemu-ga cannot be built into the test guest cheaply, so these tests answer for the agent with a
stand-in for ``libvirt_qemu.qemuAgentCommand`` (a mock, and only here: the real agent is exercised by
tests/realvm/test_agent_guests.py).
"""

from __future__ import annotations

import base64
import json
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vmsec.collectors.agent import MAX_REPLY, READ_ONLY_COMMANDS, Agent, AgentReader
from vmsec.errors import ErrorKind, ReadError


class _LibvirtError(Exception):
    def get_error_code(self) -> int:
        return 1

    def get_error_message(self) -> str:
        return str(self)


FAKE_LIBVIRT = types.SimpleNamespace(libvirtError=_LibvirtError, VIR_ERR_AGENT_UNRESPONSIVE=86,
                                     VIR_ERR_AGENT_UNSYNCED=97, VIR_ERR_ARGUMENT_UNSUPPORTED=74)


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[dict[str, Any]], str]], Agent]]:
    sent: list[str] = []

    def make(answer: Callable[[dict[str, Any]], str]) -> Agent:
        def command(_dom: object, payload: str, _timeout: int, _flags: int) -> str:
            request = json.loads(payload)
            sent.append(request["execute"])
            return answer(request)

        monkeypatch.setitem(sys.modules, "libvirt_qemu", types.SimpleNamespace(qemuAgentCommand=command))
        return Agent(FAKE_LIBVIRT, object(), "hostile")

    yield make
    assert set(sent) <= READ_ONLY_COMMANDS


def _info(*enabled: str) -> str:
    return json.dumps({"return": {"version": "7.2.0", "supported_commands": [
        {"name": n, "enabled": True} for n in enabled]}})


@pytest.mark.parametrize(("reply", "kind"), [
    ("x" * (MAX_REPLY + 1), ErrorKind.TOO_LARGE),
    ("{not json", ErrorKind.INVALID),
    ("[1, 2, 3]", ErrorKind.INVALID),
    (json.dumps({"error": {"class": "GenericError", "desc": "Command guest-info has been disabled"}}),
     ErrorKind.UNSUPPORTED),
])
def test_bad_replies_are_refused(agent: Callable[..., Agent], reply: str, kind: ErrorKind) -> None:
    with pytest.raises(ReadError) as caught:
        agent(lambda _r: reply).hello()
    assert caught.value.kind is kind


def test_a_file_that_never_ends_is_cut_at_the_limit(agent: Callable[..., Agent]) -> None:
    def answer(request: dict[str, Any]) -> str:
        name = request["execute"]
        if name == "guest-info":
            return _info("guest-file-open", "guest-file-read", "guest-file-close")
        if name == "guest-file-open":
            return json.dumps({"return": 7})
        if name == "guest-file-read":  # always more, never eof
            count = request["arguments"]["count"]
            data = base64.b64encode(b"A" * count).decode()
            return json.dumps({"return": {"count": count, "buf-b64": data, "eof": False}})
        return json.dumps({"return": {}})

    hostile = agent(answer)
    hostile.hello()
    with pytest.raises(ReadError) as caught:
        AgentReader(hostile, exec_allowed=False).read_bytes("/etc/passwd", 1024 * 1024)
    assert caught.value.kind is ErrorKind.TOO_LARGE


def test_claims_are_bounded_and_control_characters_dropped(agent: Callable[..., Agent]) -> None:
    from vmsec.collectors.agent import agent_guest

    def answer(request: dict[str, Any]) -> str:
        name = request["execute"]
        if name == "guest-info":
            return _info("guest-get-osinfo", "guest-get-users")
        if name == "guest-get-osinfo":
            return json.dumps({"return": {"id": "debian\x1b[31m", "pretty-name": "x" * 100_000,
                                          "kernel-release": ["not", "a", "string"]}})
        return json.dumps({"return": [{"user": f"u{n}"} for n in range(50_000)]})

    hostile = agent(answer)
    hostile.hello()
    guest, records = agent_guest(hostile, name="hostile", domain="hostile", allow_exec=False)
    assert guest.os is not None and guest.os.id == "debian?[31m"
    assert guest.os.pretty_name is not None and len(guest.os.pretty_name) <= 256
    assert guest.running_kernel is None
    assert any("1000 users" in (r.reason or "") for r in records)  # capped
