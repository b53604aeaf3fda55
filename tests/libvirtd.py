"""A private libvirtd for tests and benchmarks that need a daemon emitting real domain events.

It is the per-user ("session") daemon, run as an unprivileged user (``libvirt-qemu`` when the tests
run as root) with every directory of its own — configuration, state, sockets, logs — under a
temporary directory: nothing of the host's libvirt is read or changed, and several can run at once.
Clients reach it through its socket: ``qemu+unix:///session?socket=…`` (the QEMU driver: real QEMU
processes under TCG) and ``test+unix:///default?socket=…`` (the test driver inside the daemon).

Imported by name (``tests`` is on pytest's ``pythonpath``; benchmarks put it on ``sys.path``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

QEMU_CONF = """\
# Written by the vmsec tests: no virtlogd (guest output goes to a file).
stdio_handler = "file"
"""


class PrivateLibvirtd:
    def __init__(self, base: Path | None = None) -> None:
        # Short paths: QEMU's monitor socket under the runtime directory must fit in sun_path.
        self.base = base or Path(tempfile.mkdtemp(prefix="vmsec-lvd-", dir="/tmp"))
        self.user = "libvirt-qemu" if os.geteuid() == 0 else None
        self.proc: subprocess.Popen[bytes] | None = None
        for sub in ("run", "config/libvirt", "cache", "home", "data"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "config" / "libvirt" / "qemu.conf").write_text(QEMU_CONF)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chmod(self.base, 0o755)
            for path in [self.base, *self.base.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    @property
    def socket(self) -> Path:
        return self.base / "run" / "libvirt" / "libvirt-sock"

    @property
    def qemu_uri(self) -> str:
        return f"qemu+unix:///session?socket={self.socket}"

    @property
    def test_uri(self) -> str:
        return f"test+unix:///default?socket={self.socket}"

    @property
    def config_dir(self) -> Path:
        """Where the QEMU driver keeps persistent domain XML (``NAME.xml``)."""
        return self.base / "config" / "libvirt" / "qemu"

    def start(self, timeout: float = 60) -> None:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.base / "home"),
               "XDG_RUNTIME_DIR": str(self.base / "run"), "XDG_CONFIG_HOME": str(self.base / "config"),
               "XDG_CACHE_HOME": str(self.base / "cache"), "XDG_DATA_HOME": str(self.base / "data"),
               "LIBVIRT_LOG_OUTPUTS": "3:file:" + str(self.base / "libvirtd.log")}
        cmd = ["libvirtd", "--timeout", "0"]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *cmd]
        log = (self.base / "daemon.out").open("ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        import libvirt

        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"libvirtd exited: {self.log_tail()}")
            if self.socket.exists():
                try:
                    libvirt.open(self.test_uri).close()
                    return
                except libvirt.libvirtError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"libvirtd did not start: {self.log_tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the daemon (its QEMU processes go on running, as after a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # runuser and the daemon: its own session
            self.proc.wait(10)
        self.proc = None
        self.socket.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def log_tail(self) -> str:
        text = ""
        for name in ("daemon.out", "libvirtd.log"):
            path = self.base / name
            if path.exists():
                text += path.read_text(errors="replace")[-1500:]
        return text

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
