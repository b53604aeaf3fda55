"""The guest agent's RPC filter against the real qemu-ga (Debian 12's 7.2, unpacked by scripts/test.sh
into .cache/qemu-ga): ``QGA_CONF=FILE qemu-ga -D ARGS`` prints the configuration the agent would run
with — the blocked RPCs exactly as it will compare them — or fails when it would not start. vmsec must
read every case the same way."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from components import missing
from vmsec.collectors.reader import RootReader
from vmsec.facts import InstalledPackage
from vmsec.parsers.guest_agent import read_guest_agent

QEMU_GA = Path(__file__).resolve().parents[2] / ".cache" / "qemu-ga" / "root" / "usr" / "sbin" / "qemu-ga"
AGENT = (InstalledPackage(name="qemu-guest-agent", version="1:7.2+dfsg-7+deb12u18", manager="dpkg"),)
G = b"[general]\n"

CASES: list[tuple[bytes, list[str]]] = [
    (G + b"block-rpcs=guest-exec;guest-file-open\n", []),
    (G + b"block-rpcs = guest-exec , guest-file-open\n", []),
    (G + b"block-rpcs=guest-exec, guest-file-open \n", []),
    (G + b"block-rpcs=guest-exec\nblock-rpcs=guest-info\n", []),
    (G + b"blacklist=guest-exec\nblock-rpcs=guest-info\n", []),
    (G + b"block-rpcs=a\nblacklist=b\n", ["-b", "c"]),
    (b"[ general ]\nblock-rpcs=guest-exec\n", []),
    (G + b"block-rpcs=guest-exec\n[other]\nx=1\n[general]\nblock-rpcs=guest-info\n", []),
    (G + b"Block-RPCs=guest-exec\n", []),
    (G + b"bogus\n", []),
    (G + b"block-rpcs=guest-exec\\x\n", []),
    (G + b"block-rpcs=guest-exec\\\n", []),
    (G + b"block-rpcs=guest-exec\\sx,guest-info\\\\\n", []),
    (G + b"block-rpcs\t=\tguest-exec\t\n", []),
    (b"[general]\r\nblock-rpcs=guest-exec\r\n", []),
    (b"block-rpcs=guest-exec\n[general]\n", []),
    (G + b"allow-rpcs=guest-ping\n", []),
    (G + b"block-rpcs=\n", []),
    (G + b"block-rpcs=,guest-exec,\n", []),
    (b"[]\nblock-rpcs=x\n", []),
    (G + b"=x\n", []),
    (G + b" block rpcs=x\n", []),
    (b"# c\n\n   [general]   \n#block-rpcs=guest-exec\n  block-rpcs=guest-info\n", []),
    (G + b"block-rpcs=guest-exec,\xff\n", []),
    (G + b"# \xff\nblock-rpcs=guest-exec\n", []),
    (b"[gen\xffx]\nblock-rpcs=guest-exec\n[general]\nblock-rpcs=guest-info\n", []),
    (G + b"block-rpcs[de]=guest-exec\n", []),
    (G, ["-a", "guest-ping"]),
    (G, ["--block=guest-exec"]),
    (G, ["--bl=guest-exec"]),
    (G, ["--blacklist=guest-exec"]),
    (G, ["-vbguest-exec"]),
    (G, ["--", "-b", "guest-exec"]),
    (G, ["foo", "-b", "guest-exec"]),
    (G + b"block-rpcs=guest-exec\n", ["-b", "guest-info,guest-exec"]),
    (G, ["-c", "x.conf"]),
    (G, ["-b"]),
    (G, ["--verbose=1"]),
    (G, ["--method"]),
    (G, ["-l", "-b", "guest-exec"]),
    (G, ["-F", "-b", "guest-exec"]),
    (G, ["-Fhook", "-bguest-exec"]),
    (G, ["--fsfreeze-hook", "-b", "guest-exec"]),
    (G, ["--fsfreeze-hook=/x", "--block-rpcs", "guest-exec"]),
    (G, ["-h"]),
    (G, ["-b", "help"]),
    (G, ["-x"]),
    (G, ["--no-such-option"]),
    (G, ["-s", "x", "-b", "guest-exec"]),
]


def _oracle(tmp: Path, config: bytes, args: list[str]) -> list[str] | None:
    """The RPCs qemu-ga blocks (sorted), or None when it would not start."""
    conf = tmp / "qemu-ga.conf"
    conf.write_bytes(config)
    proc = subprocess.run([str(QEMU_GA), "-D", *args], env={**os.environ, "QGA_CONF": str(conf)}, cwd=tmp,
                          capture_output=True, timeout=30, check=False)
    dump = proc.stdout.decode()
    if proc.returncode != 0 or "[general]" not in dump:
        return None
    value = next(line.split("=", 1)[1] for line in dump.splitlines() if line.startswith("block-rpcs="))
    names = []
    for raw in value.split(",") if value else ():  # g_key_file_set_string's escapes, undone
        names.append(raw.replace("\\s", " ").replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r")
                     .replace("\\\\", "\\"))
    return sorted(names)


@pytest.mark.parametrize(("config", "args"), CASES, ids=[f"case{n}" for n in range(len(CASES))])
def test_rpc_filter_as_qemu_ga_72_applies_it(tmp_path: Path, config: bytes, args: list[str]) -> None:
    if not os.access(QEMU_GA, os.X_OK):
        missing("qemu-ga", f"{QEMU_GA} (scripts/test.sh unpacks Debian's qemu-guest-agent there)")
    expected = _oracle(tmp_path, config, args)
    root = tmp_path / "root"
    (root / "etc/qemu").mkdir(parents=True)
    (root / "etc/qemu/qemu-ga.conf").write_bytes(config)
    (root / "lib/systemd/system").mkdir(parents=True)
    (root / "lib/systemd/system/qemu-guest-agent.service").write_text(
        f"[Service]\nExecStart=/usr/sbin/qemu-ga {shlex.join(args)}\n")
    setup = read_guest_agent(RootReader(str(root)), AGENT)
    if expected is None:
        assert setup.refused is not None, f"qemu-ga does not start, vmsec read {setup.blocked_rpcs}"
    else:
        assert setup.refused is None, setup.refused
        assert sorted(set(setup.blocked_rpcs)) == sorted(set(expected))
        assert setup.allowed_rpcs is None  # 7.2 has no allow-list
