"""`scan ssh --sudo`: a non-root account reads what only root may read through the four allow-listed
read-only commands — and nothing else runs through sudo. A real sudo, in a mount namespace where the
test account, its sudoers rule and sudo's log exist (this machine's /etc is left alone)."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

import sshd
from components import require
from vmsec.errors import ErrorKind
from vmsec.pipeline import ScanOptions, scan

pytestmark = pytest.mark.ssh

USER = "vmsec-audit"
UID = 64123
# The sudoers lines docs/cli.md documents, verbatim.
SUDOERS = ("Cmnd_Alias VMSEC_READ = /usr/bin/cat -- *, /usr/bin/find * -mindepth 1 -maxdepth 1 -printf *, "
           "/usr/bin/stat -L -c * -- *, /usr/bin/readlink -- *\n"
           f"{USER} ALL=(root) NOPASSWD: VMSEC_READ\n")


def _setup(work: Path, keys: Path, big: int | None = None) -> str:
    """Shell lines for the namespace: the test account (its home on a private tmpfs over /home: the
    test's own directories are root's alone), its sudoers rule, sudo logging to ``work``."""
    etc = work / "etc"
    etc.mkdir(parents=True)
    (etc / "sudoers.d").mkdir()
    (etc / "sudoers.d" / "vmsec").write_text(f"Defaults:{USER} logfile={work}/sudo.log\n" + SUDOERS)
    (etc / "sudoers.d" / "vmsec").chmod(0o440)
    w = shlex.quote(str(work))
    lines = [
        f"cp /etc/passwd /etc/group /etc/shadow {w}/etc/",
        f"echo '{USER}:x:{UID}:{UID}:vmsec test:/home/{USER}:/bin/sh' >> {w}/etc/passwd",
        f"echo '{USER}:x:{UID}:' >> {w}/etc/group",
        f"echo '{USER}:*:19000:0:99999:7:::' >> {w}/etc/shadow",
        "mount -t tmpfs -o mode=755 vmsec-home /home",
        f"mkdir -p /home/{USER}/.ssh && cp {shlex.quote(str(keys))} /home/{USER}/.ssh/authorized_keys",
        f"chown -R {UID}:{UID} /home/{USER} && chmod 700 /home/{USER}/.ssh",
    ]
    for name in ("passwd", "group", "shadow", "sudoers.d"):
        lines.append(f"mount --bind {w}/etc/{name} /etc/{name}")
    if big is not None:  # root's authorized_keys, only root may read it, and a gigabyte of it
        lines += [f"mkdir -p {w}/root/.ssh && truncate -s {big} {w}/root/.ssh/authorized_keys",
                  f"chmod 700 {w}/root {w}/root/.ssh && chmod 600 {w}/root/.ssh/authorized_keys",
                  f"mount --bind {w}/root /root"]
    return "\n".join(lines)


def _server(tmp_path: Path, big: int | None = None) -> sshd.SshServer:
    require(Path("/usr/bin/sudo").exists(), "sudo", "the allow-listed reads run through a real sudo")
    client = tmp_path / "client_ed25519"
    (tmp_path / "keys").write_text(sshd.keygen(client) + "\n")
    return sshd.start_sshd(tmp_path / "sshd", setup=_setup(tmp_path / "ns", tmp_path / "keys", big),
                           client_key=client,
                           extra=f"AllowUsers {USER}\nMatch User {USER}\n"
                                 "  AuthorizedKeysFile .ssh/authorized_keys\n")


@pytest.fixture
def sudo_host(ssh_ready: None, tmp_path: Path) -> Iterator[sshd.SshServer]:
    server = _server(tmp_path)
    yield server
    server.stop()


def _allowed(command: str) -> bool:
    for prefix in ("/usr/bin/cat -- ", "/usr/bin/stat -L -c ", "/usr/bin/readlink -- "):
        if command.startswith(prefix):
            return True
    return command.startswith("/usr/bin/find ") and " -mindepth 1 -maxdepth 1 -printf " in command


def test_without_sudo_root_only_files_are_unknown(sudo_host: sshd.SshServer) -> None:
    result = scan([sudo_host.spec(user=USER)], ScanOptions())
    [guest] = result.inventory.guests  # type: ignore[union-attr]
    assert guest.accounts and any(a.name == USER for a in guest.accounts)
    assert guest.shadow is None  # unknown, never "no password hashes"
    denied = [r for r in result.records if r.source == "/etc/shadow" and not r.ok]
    assert denied and "denied" in (denied[0].reason or "").lower()
    assert not (sudo_host.work.parent / "ns" / "sudo.log").exists()  # sudo was never run


def test_with_sudo_the_allow_list_reads_them(sudo_host: sshd.SshServer) -> None:
    result = scan([sudo_host.spec(user=USER, sudo=True)], ScanOptions())
    [guest] = result.inventory.guests  # type: ignore[union-attr]
    assert guest.shadow is not None and any(s.name == USER for s in guest.shadow)
    assert guest.sudoers is not None and any(USER in r.users for r in guest.sudoers.rules)
    log = (sudo_host.work.parent / "ns" / "sudo.log").read_text()
    commands = [line.split("COMMAND=", 1)[1].strip() for line in log.replace("\n    ", " ").splitlines()
                if "COMMAND=" in line]
    assert commands and all(_allowed(c) for c in commands), commands


def test_a_gigabyte_only_root_may_read_is_refused_by_size(ssh_ready: None, tmp_path: Path) -> None:
    server = _server(tmp_path, big=1024 ** 3)
    try:
        result = scan([server.spec(user=USER, sudo=True)], ScanOptions(timeout=60))
    finally:
        server.stop()
    [guest] = result.inventory.guests  # type: ignore[union-attr]
    assert guest.shadow is not None  # the rest was read
    [record] = [r for r in result.records if r.source == "/root/.ssh/authorized_keys" and not r.ok]
    assert "limit" in (record.reason or "")


def test_gigabyte_command_output_is_cut_off(sudo_host: sshd.SshServer) -> None:
    """A command that answers with a gigabyte is read up to its cap, then dropped."""
    import asyncio

    from vmsec.collectors.remote import RemoteFS
    from vmsec.collectors.ssh import _connect, _import
    from vmsec.errors import ReadError

    async def run() -> ReadError | None:
        conn, _ = await _connect(_import(), sudo_host.spec(user=USER), 60)
        try:
            remote = RemoteFS(conn, label="test")
            try:
                await remote.run("head -c 1073741824 /dev/zero", limit=8 * 1024 * 1024)
            except ReadError as exc:
                return exc
            return None
        finally:
            conn.close()

    error = asyncio.run(run())
    assert error is not None and error.kind is ErrorKind.TOO_LARGE
