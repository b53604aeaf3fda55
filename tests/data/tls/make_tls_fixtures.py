"""Generate the TLS certificate and key fixtures under tests/data/checks/ (run once, output committed).

Every key and certificate here was made by this script with the ``cryptography`` library; none is
used anywhere else. Validity dates are fixed (valid ones run to 2100, expired ones ended in 2020), so
the verdicts do not change with the day the tests run.

Run: .venv/bin/python tests/data/tls/make_tls_fixtures.py
"""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CHECKS = Path(__file__).resolve().parents[1] / "checks"
VALID = (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
EXPIRED = (dt.datetime(2018, 1, 1, tzinfo=dt.UTC), dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
LIBVIRTD_CONF = "listen_tls = 1\n"


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vmsec test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def rsa_key(bits: int = 2048) -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def cert(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool, dates: tuple[dt.datetime,
         dt.datetime]
         = VALID, digest: Any = None) -> bytes:
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(dates[0]).not_valid_after(dates[1])
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return builder.sign(issuer_key, digest or hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def sha1_cert(key: Any, ca_pem: bytes, ca_key: Any) -> bytes:
    """A CA-signed certificate with a SHA-1 signature: ``cryptography`` refuses to make one, so the
    openssl command line signs it (OpenSSL 3 still signs SHA-1 on request)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "key.pem").write_bytes(key_pem(key))
        (t / "ca.pem").write_bytes(ca_pem)
        (t / "ca-key.pem").write_bytes(key_pem(ca_key))
        subprocess.run(["openssl", "req", "-new", "-key", t / "key.pem", "-subj",
                        "/O=vmsec test/CN=hv1.example.test", "-out", t / "req.csr"], check=True)
        subprocess.run(["openssl", "x509", "-req", "-in", t / "req.csr", "-CA", t / "ca.pem", "-CAkey",
                        t / "ca-key.pem", "-set_serial", "4242", "-sha1", "-days", "27000", "-out",
                        t / "cert.pem"], check=True, capture_output=True)
        return (t / "cert.pem").read_bytes()


def key_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_root(root: Path, ca_pem: bytes | None, cert_pem: bytes, key: Any | bytes) -> None:
    files = {"etc/libvirt/libvirtd.conf": LIBVIRTD_CONF.encode(),
             "etc/pki/libvirt/servercert.pem": cert_pem,
             "etc/pki/libvirt/private/serverkey.pem": key if isinstance(key, bytes) else key_pem(key)}
    if ca_pem is not None:
        files["etc/pki/CA/cacert.pem"] = ca_pem
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    modes = root.with_name(root.name + ".modes")
    modes.write_text("/etc/pki/libvirt/private/serverkey.pem 0600 0 0\n"
                     "/etc/pki/libvirt/servercert.pem 0644 0 0\n"
                     + ("/etc/pki/CA/cacert.pem 0644 0 0\n" if ca_pem is not None else ""))


def main() -> None:
    ca_key = rsa_key(3072)
    ca = cert("vmsec test CA", ca_key, "vmsec test CA", ca_key, ca=True)
    server_key = rsa_key()
    good = cert("hv1.example.test", server_key, "vmsec test CA", ca_key, ca=False)

    # VMS-DMN-004 (permissions): a real, well-formed pair so the files parse
    for verdict in ("PASS", "FAIL"):
        write_root(CHECKS / "VMS-DMN-004" / f"server-key.{verdict}", ca, good, server_key)
    (CHECKS / "VMS-DMN-004" / "server-key.FAIL.modes").write_text(
        "/etc/pki/libvirt/private/serverkey.pem 0644 0 0\n/etc/pki/libvirt/servercert.pem 0644 0 0\n")

    d20 = CHECKS / "VMS-DMN-020"  # certificates are current
    write_root(d20 / "valid-until-2100.PASS", ca, good, server_key)
    expired = cert("hv1.example.test", server_key, "vmsec test CA", ca_key, ca=False, dates=EXPIRED)
    write_root(d20 / "server-cert-expired-2020.FAIL", ca, expired, server_key)
    expired_ca = cert("vmsec test CA", ca_key, "vmsec test CA", ca_key, ca=True, dates=EXPIRED)
    write_root(d20 / "ca-expired-2020.FAIL", expired_ca, good, server_key)
    # decoy: an expired certificate left next to the configured ones, named by no configuration
    write_root(d20 / "decoy-stale-backup-not-configured.PASS", ca, good, server_key)
    (d20 / "decoy-stale-backup-not-configured.PASS/etc/pki/libvirt/servercert.pem.2019").write_bytes(expired)

    d21 = CHECKS / "VMS-DMN-021"  # keys and signatures are strong
    write_root(d21 / "rsa-2048-sha256.PASS", ca, good, server_key)
    weak_key = rsa_key(1024)
    write_root(d21 / "rsa-1024.FAIL", ca, cert("hv1.example.test", weak_key, "vmsec test CA", ca_key,
               ca=False),
               weak_key)
    write_root(d21 / "sha1-signature.FAIL", ca, sha1_cert(server_key, ca, ca_key), server_key)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    # decoy: a 256-bit key is strong when it is elliptic-curve
    write_root(d21 / "decoy-ec-p256.PASS", ca, cert("hv1.example.test", ec_key, "vmsec test CA", ca_key,
               ca=False),
               ec_key)

    d22 = CHECKS / "VMS-DMN-022"  # chain to the configured CA, key matches
    write_root(d22 / "ca-signed-matching-key.PASS", ca, good, server_key)
    write_root(d22 / "self-signed-server.FAIL", ca,
               cert("hv1.example.test", server_key, "hv1.example.test", server_key, ca=False), server_key)
    write_root(d22 / "key-does-not-match.FAIL", ca, good, rsa_key())
    other_ca_key = rsa_key()
    other_ca = cert("some other CA", other_ca_key, "some other CA", other_ca_key, ca=True)
    write_root(d22 / "issued-by-another-ca.FAIL", other_ca, good, server_key)
    write_root(d22 / "ca-file-is-not-a-ca.FAIL",
               cert("vmsec test CA", ca_key, "vmsec test CA", ca_key, ca=False), good, server_key)
    # decoy: the CA certificate itself is self-signed, as every root CA is
    write_root(d22 / "decoy-self-signed-root-ca.PASS", ca, good, server_key)


if __name__ == "__main__":
    main()
