"""Private OpenSSH servers on loopback for the SSH tests and the P4 benchmark (imported by name).

Each server is a real ``/usr/sbin/sshd`` with its own configuration, host key, authorized key and PID
file in a work directory, on 127.0.0.1 and a port picked at run time. Where a guest root is given, the
server runs in a private mount namespace in which that root is mounted at /mnt/vmsec-guest (OpenSSH's
``ChrootDirectory`` wants every component root-owned and not writable by others, which a directory
under /tmp is not), optionally under an overlay so that a test can plant hostile files without
touching the shared root; ``setup`` adds shell lines run in that namespace before sshd starts (bind
mounts over /etc files, a sudoers rule …). Nothing outside the namespace changes.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ports import free_ports

SSHD = "/usr/sbin/sshd"
GUEST_MOUNT = "/mnt/vmsec-guest"

BASE_CONFIG = """\
ListenAddress 127.0.0.1
HostKey {work}/host_ed25519
PidFile {work}/sshd.pid
AuthorizedKeysFile {work}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 200:30:400
MaxSessions 20
LogLevel VERBOSE
Subsystem sftp internal-sftp
"""


def available() -> str | None:
    """None when a private sshd can run here, else why not."""
    if not os.path.exists(SSHD):
        return f"{SSHD} is not installed (openssh-server)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is not installed (openssh-client)"
    if os.geteuid() != 0:
        return "sshd needs root to run with its own host key and privilege separation"
    return None



def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path``; returns the public key line."""
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                       check=True, capture_output=True)
    return Path(f"{path}.pub").read_text().strip()


@dataclass
class SshServer:
    """One running private sshd and what a client needs to reach it."""

    work: Path
    ports: list[int]
    client_key: Path
    known_hosts: Path
    host_key: str  # "ssh-ed25519 AAAA…"
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)

    @property
    def port(self) -> int:
        return self.ports[0]

    def spec(self, port: int | None = None, **options: Any) -> Any:
        from vmsec.specs import SshSpec

        values: dict[str, Any] = {"host": "127.0.0.1", "port": port or self.port, "user": "root",
                                  "identity": str(self.client_key), "known_hosts": str(self.known_hosts)}
        values.update(options)
        return SshSpec(**values)

    def stop(self) -> None:
        pid_file = self.work / "sshd.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_sshd(work: Path, *, root: Path | None = None, overlay: Path | None = None, setup: str = "",
               extra: str = "", ports: int = 1, client_key: Path | None = None,
               authorized: Iterable[str] = ()) -> SshServer:
    """Start a private sshd in ``work`` (see the module docstring); waits until it accepts."""
    work.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # OpenSSH's privilege-separation directory
    host_pub = keygen(work / "host_ed25519")
    client_key = client_key or work / "client_ed25519"
    client_pub = keygen(client_key)
    (work / "authorized_keys").write_text("\n".join([client_pub, *authorized]) + "\n")
    (work / "authorized_keys").chmod(0o600)
    listen = free_ports(ports)
    config = BASE_CONFIG.format(work=work) + "".join(f"Port {p}\n" for p in listen) + extra
    if root is not None:
        config += f"ChrootDirectory {GUEST_MOUNT}\n"
    (work / "sshd_config").write_text(config)
    known = work / "known_hosts"
    known.write_text("".join(f"[127.0.0.1]:{p} {host_pub}\n" for p in listen))
    log = work / "sshd.log"
    command = [SSHD, "-D", "-f", str(work / "sshd_config"), "-E", str(log)]
    if root is None and not setup:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    else:
        lines = ["set -e", "mount --make-rprivate /"]
        if root is not None:
            # a private tmpfs over /mnt: the mount point exists only in this namespace
            lines += [f"mount -t tmpfs -o mode=755 vmsec-guests {Path(GUEST_MOUNT).parent}",
                      f"mkdir {GUEST_MOUNT}"]
            if overlay is not None:
                upper, lower_work = overlay / "upper", overlay / "work"
                upper.mkdir(parents=True, exist_ok=True)
                lower_work.mkdir(parents=True, exist_ok=True)
                lines.append(f"mount -t overlay vmsec-guest -o lowerdir={root},upperdir={upper},"
                             f"workdir={lower_work} {GUEST_MOUNT}")
            else:
                lines.append(f"mount --bind {shlex.quote(str(root))} {GUEST_MOUNT}")
        if setup:
            lines.append(setup)
        lines.append("exec " + " ".join(shlex.quote(c) for c in command))
        process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                    "\n".join(lines)], stdin=subprocess.DEVNULL)
    server = SshServer(work=work, ports=listen, client_key=client_key, known_hosts=known, host_key=host_pub,
                       process=process, log=log)
    deadline = time.monotonic() + 20
    pending = set(listen)
    while pending and time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text()[-2000:] if log.exists() else ''}")
        for port in list(pending):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    pending.discard(port)
        time.sleep(0.05)
    if pending:
        server.stop()
        raise RuntimeError(f"sshd did not listen on {sorted(pending)} within 20 s")
    return server
