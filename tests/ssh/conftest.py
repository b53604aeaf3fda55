"""Fixtures for the SSH tests: private sshd servers on loopback (tests/sshd.py) in front of this very
machine, or in front of a real Debian 12 root (the cached debootstrap of tests/images) as a guest."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import sshd
from components import require

BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "images" / "build_images.sh"


@pytest.fixture(scope="session")
def ssh_ready() -> None:
    why = sshd.available()
    require(why is None, "a private OpenSSH server", why or "")


@pytest.fixture(scope="session")
def debian_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Debian 12 root (minbase + openssh-server + sudo), extracted once per session."""
    done = subprocess.run(["sh", str(BUILD_SCRIPT), "--rootfs"], capture_output=True, text=True, timeout=900,
                          check=False)
    if done.returncode != 0:
        pytest.fail(f"{BUILD_SCRIPT} --rootfs failed:\n{done.stderr[-3000:]}", pytrace=False)
    tarball = done.stdout.strip().splitlines()[-1]
    root = tmp_path_factory.mktemp("debian12") / "root"
    root.mkdir()
    subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-xpf", tarball], check=True)
    root.chmod(0o755)
    return root


@pytest.fixture(scope="session")
def this_machine(ssh_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd.SshServer]:
    """sshd in front of this machine itself: root login with a test key, on loopback only."""
    server = sshd.start_sshd(tmp_path_factory.mktemp("sshd-local"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def debian_guest(ssh_ready: None, debian_root: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd.SshServer]:
    """sshd whose sessions are chrooted into the Debian root: a guest with a real root filesystem
    (commands run with the root's own find, tar and sh)."""
    server = sshd.start_sshd(tmp_path_factory.mktemp("sshd-debian"), root=debian_root)
    yield server
    server.stop()
