"""``vmsec serve`` as a user runs it: plain HTTP on loopback, TLS (with HSTS) otherwise, refusals
for plain HTTP on other addresses — a real process, on SQLite and by URL on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from world import PASSWORD

from components import require_module
from pgcluster import PgCluster
from ports import free_port

require_module("uvicorn", "uvicorn (the 'service' extra)")



def self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vmsec test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def vmsec(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vmsec.cli.main", *args],
        input=stdin,
        text=True,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


class Serving:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vmsec.cli.main", "serve", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self, url: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"vmsec serve exited: {self.proc.communicate()[1]}")
            try:
                httpx.get(url + "/healthz", verify=False, timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("vmsec serve did not answer")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'service.sqlite'}"
    else:
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        url = cluster.new_database()
    yield {**os.environ, "VMSEC_STORE": url, "VMSEC_SERVICE_KEY": str(tmp_path / "service.key")}


def test_serve_plain_http_on_loopback_and_the_api(env: dict[str, str]) -> None:
    assert (
        vmsec(
            "user", "add", "vic", "--role", "viewer", "--password-stdin", env=env, stdin=PASSWORD + "\n"
        ).returncode
        == 0
    )
    token = vmsec("token", "create", "--user", "vic", "--scope", "read", env=env).stdout.strip()
    port = free_port()
    server = Serving(["--listen", f"127.0.0.1:{port}"], env)
    try:
        url = f"http://127.0.0.1:{port}"
        server.wait(url)
        r = httpx.get(url + "/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
        assert "strict-transport-security" not in r.headers
        assert httpx.get(url + "/api/v1/scans").status_code == 401
        me = httpx.get(url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["role"] == "viewer" and me.json()["scope"] == "read"
        doc = httpx.get(url + "/api/v1/openapi.json").json()
        assert "/findings" in doc["paths"]
    finally:
        server.stop()


def test_serve_with_tls_sends_hsts(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VMSEC_STORE": f"sqlite:///{tmp_path / 's.sqlite'}",
        "VMSEC_SERVICE_KEY": str(tmp_path / "k"),
    }
    cert, key = self_signed(tmp_path)
    port = free_port()
    server = Serving(["--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key)], env)
    try:
        url = f"https://127.0.0.1:{port}"
        server.wait(url)
        r = httpx.get(url + "/login", verify=ssl.create_default_context(cafile=str(cert)))
        assert r.status_code == 200
        assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        assert "__Host-vmsec-login=" in r.headers["set-cookie"] and "Secure" in r.headers["set-cookie"]
    finally:
        server.stop()


def test_plain_http_elsewhere_than_loopback_is_refused(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VMSEC_STORE": f"sqlite:///{tmp_path / 's.sqlite'}",
        "VMSEC_SERVICE_KEY": str(tmp_path / "k"),
    }
    for listen in ("0.0.0.0:8443", "[::]:8443", "192.0.2.10:80", "vmsec.example:8080"):
        r = vmsec("serve", "--listen", listen, env=env)
        assert r.returncode == 2 and "refusing plain HTTP" in r.stderr, (listen, r.stderr)
    cert, _key = self_signed(tmp_path)
    r = vmsec("serve", "--listen", "0.0.0.0:8443", "--tls-cert", str(cert), env=env)
    assert r.returncode == 2 and "both --tls-cert and --tls-key" in r.stderr
