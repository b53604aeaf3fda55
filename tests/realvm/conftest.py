"""Fixtures for tests that start real QEMU guests through libvirt's embedded QEMU driver.

``qemu:///embed?root=DIR`` runs the QEMU driver inside this process: no daemon, no systemd, and
its domains die with the process. It needs an event loop, a ``DIR/etc/qemu.conf`` that lets it run
as root without a security driver, and (because libvirt resolves its compiled-in default) the
``libvirt-qemu`` user to exist.
"""

from __future__ import annotations

import pwd
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

EMBED_QEMU_CONF = """\
# Written by the vmsec tests: run QEMU as root (no /dev/kvm permission games, no 60 s capability
# re-probe per start), no sVirt driver (this machine has no AppArmor/SELinux), and write guest
# stdio to a file because there is no virtlogd in embed mode.
user = "root"
group = "root"
security_driver = "none"
stdio_handler = "file"
"""

_event_loop_started = False
_event_loop_lock = threading.Lock()


def _start_event_loop(libvirt: Any) -> None:
    """Register libvirt's default event loop once per process and run it in a daemon thread."""
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-event-loop", daemon=True).start()
        _event_loop_started = True


@pytest.fixture(scope="session")
def libvirt_module() -> Any:
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    _start_event_loop(libvirt)
    return libvirt


@pytest.fixture(scope="session")
def embed_uri(libvirt_module: Any) -> Iterator[str]:
    """The ``qemu:///embed`` root of this test session: libvirt's embedded driver serves one root per
    process for the process's lifetime (opening another fails, even after closing), so every real-VM
    test shares it; each names its own domains and destroys them. It lives under /tmp with a short name
    because QEMU's monitor socket path inside it must fit in a 108-byte sun_path."""
    try:
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        pytest.fail("the user 'libvirt-qemu' does not exist; the embedded QEMU driver needs it. "
                    "Create it: useradd -r -U -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu")
    for binary in ("qemu-system-x86_64",):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is not installed (apt-get install qemu-system-x86)")
    root = Path(tempfile.mkdtemp(prefix="vmsec-embed-", dir="/tmp"))
    try:
        (root / "etc").mkdir()
        (root / "etc" / "qemu.conf").write_text(EMBED_QEMU_CONF)
        yield f"qemu:///embed?root={root}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
