"""PEM files → certificate and key facts (real files from tests/data/checks; generated keys here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vmsec.errors import ErrorKind, ParseError
from vmsec.parsers.x509 import parse_certificate, parse_private_key, pem_kind, signed_by

FIXTURE = Path(__file__).resolve().parents[1] / "data/checks/VMS-DMN-022/ca-signed-matching-key.PASS/etc/pki"


def test_certificate_key_and_ca_facts() -> None:
    ca_pem = (FIXTURE / "CA/cacert.pem").read_bytes()
    cert_pem = (FIXTURE / "libvirt/servercert.pem").read_bytes()
    key_pem = (FIXTURE / "libvirt/private/serverkey.pem").read_bytes()
    assert (pem_kind(ca_pem), pem_kind(key_pem)) == ("certificate", "key")
    ca, cert = parse_certificate(ca_pem, "ca"), parse_certificate(cert_pem, "cert")
    key = parse_private_key(key_pem, "key")
    assert (ca.is_ca, ca.self_signed, cert.is_ca, cert.self_signed) == (True, True, False, False)
    assert (cert.key_type, cert.key_bits, cert.signature_hash) == ("rsa", 2048, "sha256")
    assert cert.not_after.startswith("2100-01-01") and cert.issuer == ca.subject
    assert key.public_key_id == cert.public_key_id and key_pem not in repr(key).encode()
    assert signed_by(cert_pem, ca_pem) and not signed_by(ca_pem, cert_pem)


def test_encrypted_key_is_not_decrypted() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"secret"))
    facts = parse_private_key(pem, "k")
    assert facts.encrypted and facts.public_key_id is None


@pytest.mark.parametrize("data", [b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
                                  b"-----BEGIN CERTIFICATE-----"])
def test_garbage_certificate_is_a_parse_error_naming_the_file(data: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_certificate(data, "/etc/pki/libvirt/servercert.pem")
    assert info.value.path == "/etc/pki/libvirt/servercert.pem" and info.value.kind is ErrorKind.INVALID
