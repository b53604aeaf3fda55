"""PEM files of a TLS setup → :class:`X509Certificate` / :class:`PrivateKey` facts, with ``cryptography``.

A file may hold a certificate (``BEGIN CERTIFICATE``), a private key (PKCS#8, PKCS#1 RSA, SEC1 EC,
encrypted PKCS#8), DH parameters or a CRL. Only the first certificate or key is read; a private key
is loaded to learn its type, size and public key — never kept, never written, and an encrypted one
is not decrypted (no passphrase is tried). Everything that is not a well-formed PEM of a known kind
raises :class:`~vmsec.errors.ParseError` naming the file.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC
from typing import Any

from vmsec.errors import ErrorKind, ParseError, ReadError
from vmsec.facts.host import PrivateKey, X509Certificate

MAX_PEM_BYTES = 1024 * 1024
KEY_MARKERS = (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----",
                b"-----BEGIN EC PRIVATE KEY-----", b"-----BEGIN ENCRYPTED PRIVATE KEY-----",
                b"-----BEGIN DSA PRIVATE KEY-----")


def pem_kind(data: bytes) -> str:
    """certificate | key | dh | crl | other, from the first PEM marker in ``data``."""
    markers = {b"-----BEGIN CERTIFICATE-----": "certificate", b"-----BEGIN DH PARAMETERS-----": "dh",
               b"-----BEGIN X509 CRL-----": "crl", **dict.fromkeys(KEY_MARKERS, "key")}
    found = [(data.find(m), kind) for m, kind in markers.items() if m in data]
    return min(found)[1] if found else "other"


def _curve(key: Any) -> str | None:
    from cryptography.hazmat.primitives.asymmetric import ec

    return key.curve.name if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) else None


_CERT_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL)


def certificate_blocks(data: bytes) -> list[bytes]:
    """Each PEM certificate of a file (a CA file may hold several), in file order."""
    return [m.group() for m in _CERT_BLOCK.finditer(data)]


def _key_facts(key: Any) -> tuple[str, int | None]:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "rsa", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "ec", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "ed448", 456
    if isinstance(key, dsa.DSAPublicKey | dsa.DSAPrivateKey):
        return "dsa", key.key_size
    return "other", None


def public_key_id(public_key: Any) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo: equal for a certificate and its private key."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _load_certificate(data: bytes, origin: str) -> Any:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise ParseError(origin, f"not a readable PEM certificate: {exc}") from exc


def signed_by(cert_pem: bytes, issuer_pem: bytes, origin: str = "certificate") -> bool:
    """Whether the certificate's signature verifies with the issuer certificate's public key (and the
    issuer name matches). A signature or key ``cryptography`` cannot check (MD4, SM2, explicit curve
    parameters …) raises :class:`ReadError` (UNSUPPORTED) naming ``origin``: neither yes nor no."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    cert = _load_certificate(cert_pem, origin)
    issuer = _load_certificate(issuer_pem, origin)
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
        raise ReadError(origin, f"its signature cannot be checked: {type(exc).__name__}: {exc}",
                        ErrorKind.UNSUPPORTED) from exc
    return True


def parse_certificate(data: bytes, origin: str) -> X509Certificate:
    """The first certificate of a PEM file. Whatever ``cryptography`` cannot read in it (an unknown
    signature algorithm or curve, a name that is not valid UTF-8) raises :class:`ReadError` naming
    ``origin`` — one certificate never ends the scan."""
    try:
        return _parse_certificate(data, origin)
    except ReadError:
        raise
    except Exception as exc:  # cryptography: UnsupportedAlgorithm, ValueError from a lazily parsed field
        raise ReadError(origin, f"unsupported certificate: {type(exc).__name__}: {exc}",
                        ErrorKind.UNSUPPORTED) from exc


def _parse_certificate(data: bytes, origin: str) -> X509Certificate:
    from cryptography import x509

    cert = _load_certificate(data, origin)
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca: bool | None = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = None
    except ValueError as exc:  # a malformed extension
        raise ParseError(origin, f"unreadable certificate extensions: {exc}") from exc
    public = cert.public_key()
    key_type, bits = _key_facts(public)
    digest = cert.signature_hash_algorithm
    try:
        self_signed = cert.issuer == cert.subject and signed_by(data, data, origin)
    except ReadError:  # a self-signature that cannot be checked: it names itself as issuer all the same
        self_signed = True
    return X509Certificate(
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc.astimezone(UTC).isoformat(timespec="seconds"),
        not_after=cert.not_valid_after_utc.astimezone(UTC).isoformat(timespec="seconds"),
        key_type=key_type, key_bits=bits, key_curve=_curve(public),
        signature_hash=digest.name if digest is not None else None,
        is_ca=is_ca, self_signed=self_signed, public_key_id=public_key_id(public))


def parse_private_key(data: bytes, origin: str) -> PrivateKey:
    """A private key's type, size and public key id (an encrypted key: type unknown, not decrypted)."""
    from cryptography.hazmat.primitives import serialization

    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data or b"Proc-Type: 4,ENCRYPTED" in data:
        return PrivateKey(key_type="other", key_bits=None, public_key_id=None, encrypted=True)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ParseError(origin, f"not a readable PEM private key: {exc}") from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for exotic keys
        raise ReadError(origin, f"unsupported private key: {type(exc).__name__}",
                        ErrorKind.UNSUPPORTED) from exc
    key_type, bits = _key_facts(key)
    return PrivateKey(key_type=key_type, key_bits=bits, key_curve=_curve(key),
                      public_key_id=public_key_id(key.public_key()))


__all__ = ["KEY_MARKERS", "MAX_PEM_BYTES", "certificate_blocks", "parse_certificate", "parse_private_key",
           "pem_kind", "public_key_id", "signed_by"]
