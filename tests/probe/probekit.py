"""Real listeners for the probe tests (imported by name as ``probekit``): QEMU displays (VNC, SPICE),
a private libvirtd, sshd, qemu-nbd, ``openssl s_server``, plus hostile servers written here. Ports
are chosen free at run time; every process is started by the test and stopped by its pid.

With ``VMSEC_PROBE_CAPTURE=DIR`` in the environment, every probe a test runs (through :func:`probe` or
the CLI) also writes what it recorded — endpoints, expected listeners, the probe run — to
``DIR/<test>-<n>.json`` in the format of the probe verdict fixtures (tests/probefixtures.py): that is
where the fixtures under tests/data/checks/VMS-PRB-*/ come from."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import ports
import probefixtures
from components import require
from vmsec.collectors import CollectContext
from vmsec.facts import Inventory
from vmsec.findings import Finding, Status
from vmsec.pipeline import ScanOptions, scan
from vmsec.results import ScanResult
from vmsec.specs import ProbeSpec, TargetSpec

QEMU = "qemu-system-x86_64"
CAPTURE = "VMSEC_PROBE_CAPTURE"


@pytest.fixture(autouse=True)
def capture_probe_facts(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``VMSEC_PROBE_CAPTURE=DIR``: write what each probe of the test recorded to DIR (a capture
    tool for the verdict fixtures, not part of any assertion). Without it, nothing is replaced."""
    folder = os.environ.get(CAPTURE)
    if not folder:
        return
    import vmsec.collectors.probe as collector

    original = collector.collect_async
    numbers = itertools.count(1)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    async def capturing(spec: TargetSpec, context: CollectContext) -> Inventory:
        inventory = await original(spec, context)
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}-{next(numbers)}.json").write_text(probefixtures.dump(inventory))
        return inventory

    monkeypatch.setattr(collector, "collect_async", capturing)


def free_port(low: int = 6000) -> int:
    """A TCP port nothing listens on (above ``low``: VNC displays are numbered from 5900)."""
    return ports.free_port(low)


def free_ports(count: int, low: int = 6000) -> list[int]:
    """``count`` distinct such ports (tests/ports.py: two single calls can repeat a port)."""
    return ports.free_ports(count, low)


def wait_listening(port: int, address: str = "127.0.0.1", timeout: float = 15.0,
                   proc: subprocess.Popen[bytes] | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            log = getattr(proc, "log", None)
            if log is not None:
                log.seek(0)
            out = log.read().decode(errors="replace") if log is not None else ""
            raise RuntimeError(f"process exited ({proc.returncode}) before listening on {port}: "
                               f"{out[-2000:]}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((address, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port} after {timeout} s")


@contextlib.contextmanager
def running(cmd: Sequence[str], ports: Sequence[int], env: dict[str, str] | None = None,
            address: str = "127.0.0.1", preexec: object = None) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd``, wait until it listens on every port, stop it (by its pid) afterwards."""
    # Output goes to a file, never a pipe: a chatty server (SPICE logs every connection) would
    # block once a pipe's buffer is full.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, start_new_session=True,
                            preexec_fn=preexec)  # type: ignore[arg-type]
    proc.log = log  # type: ignore[attr-defined]
    try:
        for port in ports:
            wait_listening(port, address, proc=proc)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def need(binary: str, why: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    require(path, binary, why)
    assert path is not None
    return path


@pytest.fixture(scope="session")
def qemu() -> str:
    return need(QEMU, "the probe tests start QEMU displays (apt qemu-system-x86)")


def qemu_display(qemu_bin: str, *args: str) -> list[str]:
    """A QEMU with no machine and no CPU running: only its display servers."""
    return [qemu_bin, "-machine", "none", "-nodefaults", "-display", "none", "-S", *args]


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for 127.0.0.1, in the file names QEMU and libvirt expect, and a
    client certificate."""
    openssl = need("openssl", "test certificates are generated with openssl")
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca-cert.pem",
        "-days", "30", "-subj", "/CN=vmsec probe test CA")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
            "-subj", f"/CN=127.0.0.1/O=vmsec-{name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-out", f"{name}-cert.pem", "-days", "30", "-extfile", "ext.cnf")
    for path in d.iterdir():
        path.chmod(0o644)
    d.chmod(0o755)
    return d


def probe(ports: Sequence[int | str], targets: Sequence[str] = ("127.0.0.1",), *, tls_scan: bool = False,
          timeout: float = 3.0, **spec: object) -> ScanResult:
    """Run the probe through the pipeline (every VMS-PRB check). ``ports`` may carry hints: "7000/libvirt"."""
    numbers: list[int] = []
    hints: list[tuple[int, str]] = []
    for p in ports:
        number, _, proto = str(p).partition("/")
        numbers.append(int(number))
        if proto:
            hints.append((int(number), proto))
    probe_spec = ProbeSpec(targets=tuple(targets), ports=tuple(numbers) or None, hints=tuple(hints),
                           tls_scan=tls_scan, timeout=timeout, **spec)  # type: ignore[arg-type]
    return scan([probe_spec], ScanOptions(checks=("VMS-PRB-*",)))


def of(result: ScanResult, check_id: str, port: int, address: str = "127.0.0.1") -> list[Finding]:
    name = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return [f for f in result.findings if f.check_id == check_id and f.target.name == name]


def statuses(result: ScanResult, check_id: str, port: int, address: str = "127.0.0.1") -> list[Status]:
    return [f.status for f in of(result, check_id, port, address)]


def endpoint(result: ScanResult, port: int, address: str = "127.0.0.1") -> object:
    assert result.inventory is not None
    for e in result.inventory.endpoints:
        if e.port == port and e.address == address:
            return e
    raise AssertionError(f"no endpoint {address}:{port} in {[x.label for x in result.inventory.endpoints]}")


class Forwarder:
    """A TCP proxy (address:port → 127.0.0.1:target): what a NAT rule or a stray proxy does."""

    def __init__(self, address: str, port: int, target: int) -> None:
        self.server = socket.create_server((address, port))
        self.target = target
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop:
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def close(self) -> None:
        self.stop = True
        self.server.close()
        self.thread.join(2)
