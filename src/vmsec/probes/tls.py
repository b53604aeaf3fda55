"""TLS: one ordinary handshake (negotiated version, cipher, the server's certificate) on any
connection, and a full scan of direct-TLS endpoints with sslyze (versions, cipher suites, groups,
known weaknesses) for the Mozilla-profile check. sslyze is optional (the ``probe`` extra); without it
the enumeration fields stay unknown and say why."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import ssl
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vmsec.facts import Certificate, TlsInfo

if TYPE_CHECKING:
    from vmsec.probes.net import Conn


def client_context(anonymous: bool = False) -> ssl.SSLContext:
    """A client context that completes a handshake with anything (the probe observes, never
    trusts): no verification, every protocol version and cipher this OpenSSL still has."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ValueError, ssl.SSLError), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated to offer, not to observe
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    with contextlib.suppress(ssl.SSLError):
        # Anonymous Diffie-Hellman for VeNCrypt's TLS* sub-types (no certificate at all).
        ctx.set_ciphers("ALL:aNULL:@SECLEVEL=0" if anonymous else "ALL:@SECLEVEL=0")
    return ctx


def describe_session(conn: Conn) -> TlsInfo:
    obj = conn.writer.get_extra_info("ssl_object")
    if obj is None:
        return TlsInfo(handshake_error="no TLS session")
    cipher = obj.cipher()
    der = obj.getpeercert(binary_form=True)
    return TlsInfo(version=obj.version(), cipher=cipher[0] if cipher else None,
                   certificate=parse_certificate(der) if der else None)


def _name(name: Any) -> str:
    try:
        return str(name.rfc4514_string())
    except Exception:  # an undecodable name from a hostile server
        return "(unreadable)"


def parse_certificate(der: bytes) -> Certificate | None:
    """The leaf certificate's facts (None when cryptography is missing or the DER is unreadable)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    except ImportError:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    key: Any = None
    with contextlib.suppress(Exception):
        key = cert.public_key()
    key_type = key_bits = curve = None
    if isinstance(key, rsa.RSAPublicKey):
        key_type, key_bits = "rsa", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, key_bits, curve = "ecdsa", key.key_size, key.curve.name
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type, key_bits = "ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        key_type, key_bits = "ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, key_bits = "dsa", key.key_size
    signature = None
    with contextlib.suppress(Exception):
        signature = cert.signature_algorithm_oid._name
    before = cert.not_valid_before_utc
    after = cert.not_valid_after_utc
    subject, issuer = _name(cert.subject), _name(cert.issuer)
    return Certificate(subject=subject, issuer=issuer, not_before=before.isoformat(),
                       not_after=after.isoformat(), lifespan_days=(after - before).days,
                       self_signed=cert.subject == cert.issuer, key_type=key_type, key_bits=key_bits,
                       curve=curve, signature=signature,
                       sha256=cert.fingerprint(hashes.SHA256()).hex())


# --- the full scan (sslyze) ----------------------------------------------------------------------

_VERSIONS = (("ssl_2_0_cipher_suites", "SSLv2"), ("ssl_3_0_cipher_suites", "SSLv3"),
             ("tls_1_0_cipher_suites", "TLSv1"), ("tls_1_1_cipher_suites", "TLSv1.1"),
             ("tls_1_2_cipher_suites", "TLSv1.2"), ("tls_1_3_cipher_suites", "TLSv1.3"))


def deep_scan(endpoints: Sequence[tuple[str, int]], timeout: float) -> dict[tuple[str, int], TlsInfo]:
    """sslyze's scan of each (address, port): accepted versions and cipher suites, key-exchange
    groups, DH/ECDH sizes and weaknesses. Endpoints it could not scan get ``scan_error``."""
    try:
        sslyze: Any = importlib.import_module("sslyze")
        keys: Any = importlib.import_module("nassl.ephemeral_key_info")
    except ImportError as exc:
        return {e: TlsInfo(scan_error=f"sslyze is not installed ({exc}): pip install 'vmsec[probe]'")
                for e in endpoints}
    commands = {
        sslyze.ScanCommand.SSL_2_0_CIPHER_SUITES, sslyze.ScanCommand.SSL_3_0_CIPHER_SUITES,
        sslyze.ScanCommand.TLS_1_0_CIPHER_SUITES, sslyze.ScanCommand.TLS_1_1_CIPHER_SUITES,
        sslyze.ScanCommand.TLS_1_2_CIPHER_SUITES, sslyze.ScanCommand.TLS_1_3_CIPHER_SUITES,
        sslyze.ScanCommand.ELLIPTIC_CURVES, sslyze.ScanCommand.HEARTBLEED,
        sslyze.ScanCommand.OPENSSL_CCS_INJECTION, sslyze.ScanCommand.TLS_FALLBACK_SCSV,
        sslyze.ScanCommand.TLS_COMPRESSION, sslyze.ScanCommand.SESSION_RENEGOTIATION,
        sslyze.ScanCommand.TLS_EXTENDED_MASTER_SECRET, sslyze.ScanCommand.ROBOT,
    }
    out: dict[tuple[str, int], TlsInfo] = {}
    requests = []
    for address, port in endpoints:
        location = sslyze.ServerNetworkLocation(hostname=address, port=port, ip_address=address)
        requests.append(sslyze.ServerScanRequest(
            server_location=location, scan_commands=commands,
            network_configuration=sslyze.ServerNetworkConfiguration(
                tls_server_name_indication=address, network_timeout=int(max(1, timeout)),
                network_max_retries=0)))
    if not requests:
        return out
    scanner = sslyze.Scanner(per_server_concurrent_connections_limit=4, concurrent_server_scans_limit=8)
    scanner.queue_scans(requests)
    for result in scanner.get_results():
        key = (str(result.server_location.ip_address), int(result.server_location.port))
        if result.scan_status != sslyze.ServerScanStatusEnum.COMPLETED or result.scan_result is None:
            error = result.connectivity_error_trace
            out[key] = TlsInfo(scan_error=f"sslyze could not connect: {result.connectivity_status}"
                               + (f" ({str(error)[:200]})" if error else ""))
            continue
        out[key] = _from_sslyze(result.scan_result, sslyze, keys.EcDhEphemeralKeyInfo,
                                keys.DhEphemeralKeyInfo)
    return out


def _from_sslyze(scan: Any, sslyze: Any, ecdh_type: Any, dh_type: Any) -> TlsInfo:
    versions: list[str] = []
    ciphers: set[str] = set()
    suites13: set[str] = set()
    min_ecdh: int | None = None
    min_dh: int | None = None
    errors: list[str] = []
    complete = sslyze.ScanCommandAttemptStatusEnum.COMPLETED
    for field, name in _VERSIONS:
        attempt = getattr(scan, field)
        if attempt.status != complete or attempt.result is None:
            errors.append(f"{name}: {attempt.error_reason}")
            continue
        if not attempt.result.is_tls_version_supported:
            continue
        versions.append(name)
        for accepted in attempt.result.accepted_cipher_suites:
            (suites13 if name == "TLSv1.3" else ciphers).add(accepted.cipher_suite.name)
            key: Any = accepted.ephemeral_key
            if isinstance(key, ecdh_type):
                size = key.size + 3 if key.size in (253, 445) else key.size  # X25519/X448 report 253/445
                min_ecdh = size if min_ecdh is None else min(min_ecdh, size)
            elif isinstance(key, dh_type):
                min_dh = key.size if min_dh is None else min(min_dh, key.size)
    curves: tuple[str, ...] | None = None
    attempt = scan.elliptic_curves
    if attempt.status == complete and attempt.result is not None:
        curves = tuple(sorted(c.name for c in attempt.result.supported_curves or ()))
    weaknesses: list[str] = []
    known = True
    checks = (
        ("heartbleed", lambda r: r.is_vulnerable_to_heartbleed, "heartbleed"),
        ("openssl_ccs_injection", lambda r: r.is_vulnerable_to_ccs_injection, "ccs-injection"),
        ("tls_compression", lambda r: r.supports_compression, "compression"),
        ("tls_fallback_scsv", lambda r: not r.supports_fallback_scsv, "no-fallback-scsv"),
        ("session_renegotiation", lambda r: not r.supports_secure_renegotiation, "insecure-renegotiation"),
        ("tls_extended_master_secret", lambda r: not r.supports_ems_extension, "no-extended-master-secret"),
        ("robot", lambda r: r.robot_result == sslyze.RobotScanResultEnum.VULNERABLE_STRONG_ORACLE, "robot"),
    )
    for field, test, label in checks:
        attempt = getattr(scan, field)
        if attempt.status != complete or attempt.result is None:
            known = False
            errors.append(f"{field}: {attempt.error_reason}")
            continue
        if test(attempt.result):
            weaknesses.append(label)
    return TlsInfo(versions=tuple(versions), ciphers=tuple(sorted(ciphers)),
                   ciphersuites=tuple(sorted(suites13)), curves=curves, min_ecdh_bits=min_ecdh,
                   min_dh_bits=min_dh,
                   weaknesses=tuple(weaknesses) if known else None,
                   scan_error="; ".join(errors)[:500] if errors else None)


def merge(quick: TlsInfo | None, deep: TlsInfo | None) -> TlsInfo | None:
    """The handshake's facts with the full scan's enumerations."""
    if quick is None or deep is None:
        return quick or deep
    return TlsInfo(version=quick.version, cipher=quick.cipher, certificate=quick.certificate,
                   client_cert_requested=quick.client_cert_requested, handshake_error=quick.handshake_error,
                   versions=deep.versions, ciphers=deep.ciphers, ciphersuites=deep.ciphersuites,
                   curves=deep.curves, min_ecdh_bits=deep.min_ecdh_bits, min_dh_bits=deep.min_dh_bits,
                   weaknesses=deep.weaknesses, scan_error=deep.scan_error)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
