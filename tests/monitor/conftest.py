"""A private libvirtd for the monitor tests (tests/libvirtd.py): the QEMU driver runs real QEMU
processes under TCG, as an unprivileged user, with its own directories and socket."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from components import missing, require, require_module


@pytest.fixture(scope="module")
def libvirtd() -> Iterator[Any]:
    require_module("libvirt", "libvirt-python")
    require(shutil.which("libvirtd"), "libvirtd", "apt-get install libvirt-daemon libvirt-daemon-driver-qemu")
    require(shutil.which("qemu-system-x86_64"), "qemu-system-x86_64", "apt-get install qemu-system-x86")
    import pwd

    try:
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        missing("the libvirt-qemu user", "scripts/test.sh creates it (useradd -r libvirt-qemu)")
    from libvirtd import PrivateLibvirtd

    daemon = PrivateLibvirtd()
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.cleanup()
