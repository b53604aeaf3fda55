"""The TLS certificates and keys of libvirt's daemons and of QEMU's TLS endpoints: still valid,
strong enough, issued by the configured CA, and paired with their own key.

Facts are ``Host.tls_files``: every key, certificate and CA file the daemon configurations
(``key_file``, ``cert_file``, ``ca_file`` of libvirtd.conf / virtproxyd.conf) and qemu.conf
(``*_tls_x509_cert_dir``, default /etc/pki/qemu) point at, parsed with the ``cryptography`` library.
Files of one daemon or one QEMU service form a TLS set (``TlsFile.group``): its CA, its certificates
and their keys. A file that does not exist gets no result (the permission check VMS-DMN-004 covers
modes); one that could not be parsed is UNKNOWN with the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.clock import instant, scan_instant
from vmsec.facts import Host, PrivateKey, TlsFile, X509Certificate

TLSCERTS_DOC = "https://libvirt.org/kbase/tlscerts.html"
LIBVIRTD_CONF_DOC = "https://libvirt.org/remote.html"
QEMU_TLS_DOC = "https://www.qemu.org/docs/master/system/tls.html"
WEAK_HASHES = frozenset({"md5", "sha1", "md2", "md4"})
MIN_BITS = {"rsa": 2048, "dsa": 2048, "ec": 256}


def _present(host: Host) -> Iterator[TlsFile]:
    for tls in host.tls_files:
        if tls.stat.exists:
            yield tls


def _subject(tls: TlsFile) -> str:
    return f"{tls.role} {tls.stat.path}"


def _unreadable(tls: TlsFile) -> Result | None:
    if tls.problem is not None:
        return unknown(_subject(tls), f"{tls.stat.path} could not be read as a TLS file: {tls.problem}",
                       ev(tls.stat.path))
    return None


@check("VMS-DMN-020", title="TLS certificates of libvirt and QEMU are within their validity period",
       severity=Severity.MEDIUM, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "tls", "certificates"),
       references=(TLSCERTS_DOC, QEMU_TLS_DOC))
def certificate_validity(host: Host, env: Environment) -> Iterator[Result]:
    """A certificate past its end date (or a CA that expired) fails every verifying client: remote
    management and migrations stop, and the usual way out — turning verification off
    (`tls_no_verify_certificate`, `no_verify=1` in URIs) — removes the authentication TLS was there
    for. A certificate that expires within `tls_expiry_warning_days` (default 30) is reported before
    that happens (low).

    Remediation: Issue new certificates from the CA (`certtool --generate-certificate`, see the
    libvirt TLS guide), install them with the same paths and modes, and restart the daemons; renew
    before the end date, e.g. from a timer.
    """
    now = scan_instant(env)
    warn = int(env.param("tls_expiry_warning_days", 30))
    for tls in _present(host):
        if (problem := _unreadable(tls)) is not None:
            yield problem
            continue
        cert = tls.certificate
        if cert is None:
            continue
        not_after, not_before = instant(cert.not_after), instant(cert.not_before)
        end = not_after.date()
        where = ev(tls.stat.path, "notBefore / notAfter", f"{cert.not_before} / {cert.not_after}")
        # Instants, not days (RFC 5280: valid from notBefore through notAfter): a certificate that
        # ended at 08:00 is expired at a scan at noon the same day.
        if now > not_after:
            days = (now - not_after) // _DAY
            ago = f"{days} days ago" if days else "less than a day ago"
            yield fail(_subject(tls), f"{tls.stat.path} ({cert.subject}) expired on {end} ({ago})", where)
            continue
        left = (not_after - now) // _DAY
        if now < not_before:
            yield fail(_subject(tls), f"{tls.stat.path} ({cert.subject}) is not valid before {not_before}",
                       where)
        elif left <= warn:
            yield fail(_subject(tls), f"{tls.stat.path} ({cert.subject}) expires on {end}, in {left} days",
                       where, severity=Severity.LOW)
        else:
            yield ok(_subject(tls), f"{tls.stat.path} ({cert.subject}) is valid until {end}", where)


_DAY = dt.timedelta(days=1)


# The NIST curves GnuTLS 3.7 takes in X.509 keys (secp256k1 and the brainpool curves it does not:
# libvirtd then fails with "ASN1 parser: Element was not found"); the weak ones are judged by size.
GNUTLS_CURVES = frozenset({"secp192r1", "secp224r1", "secp256r1", "secp384r1", "secp521r1"})


@check("VMS-DMN-021", title="TLS keys and certificate signatures of libvirt and QEMU are strong",
       severity=Severity.MEDIUM, tags=(Tag.ENCRYPTION, "tls", "certificates"),
       references=(TLSCERTS_DOC, "https://www.keylength.com/en/4/"))
def key_strength(host: Host, env: Environment) -> Iterator[Result]:
    """An RSA or DSA key under 2048 bits (an elliptic-curve key under 256) can be broken by a
    well-funded attacker, who then impersonates the hypervisor's management API or reads migration
    streams; a certificate signed with SHA-1 or MD5 can be forged by collision. DSA is refused by
    current TLS libraries, and an EC key on a curve GnuTLS does not implement (secp256k1, brainpool)
    cannot be loaded at all. A root CA's signature on itself is not relied upon and is not judged; a
    key of a type vmsec does not know is UNKNOWN.

    Remediation: Issue new keys (RSA 3072 or ECDSA P-256 and up) and certificates signed with SHA-256
    or better, from a CA that uses a strong key itself.
    """
    for tls in _present(host):
        if (problem := _unreadable(tls)) is not None:
            yield problem
            continue
        key: X509Certificate | PrivateKey | None = tls.certificate
        if key is None and tls.private_key is not None and not tls.private_key.encrypted:
            key = tls.private_key
        if key is None:
            continue
        key_type, bits, curve = key.key_type, key.key_bits, key.key_curve
        if key_type == "other":  # X25519, SM2 …: neither judged strong nor known to load
            yield unknown(_subject(tls), f"{tls.stat.path} holds a key of a type vmsec does not know",
                          ev(tls.stat.path, "key", "other"))
            continue
        problems: list[str] = []
        minimum = MIN_BITS.get(key_type)
        if curve is not None and curve not in GNUTLS_CURVES:
            problems.append(f"an EC key on {curve}, a curve GnuTLS (libvirt, QEMU) cannot use: the TLS "
                            "listener fails")
        if key_type == "dsa":
            problems.append(f"a {bits}-bit DSA key (DSA is obsolete for TLS)")
        elif minimum is not None and bits is not None and bits < minimum:
            problems.append(f"a {bits}-bit {key_type.upper()} key (at least {minimum} bits)")
        cert = tls.certificate
        if cert is not None and (cert.signature_hash or "") in WEAK_HASHES and not cert.self_signed:
            problems.append(f"signed with {cert.signature_hash.upper() if cert.signature_hash else '?'}")
        where = ev(tls.stat.path, "key / signature",
                   f"{key_type} {bits} bits" + (f", {cert.signature_hash}" if cert is not None else ""))
        if problems:
            yield fail(_subject(tls), "; ".join(problems), where)  # the subject names the file
        else:
            signed = f", signed with {cert.signature_hash}" if cert and cert.signature_hash else ""
            yield ok(_subject(tls), f"{key_type.upper()} {bits} bits{signed}", where)


_PAIRS = {"cert": "key", "client-cert": "client-key"}


@check("VMS-DMN-022", title="TLS certificates are issued by the configured CA and match their private keys",
       severity=Severity.MEDIUM, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "tls", "certificates"),
       references=(TLSCERTS_DOC, LIBVIRTD_CONF_DOC, QEMU_TLS_DOC))
def certificate_chain(host: Host, env: Environment) -> Iterator[Result]:
    """Clients verify the server (and the server its clients) against the CA file configured beside
    the certificate. A self-signed server certificate, or one from another CA, can only be accepted
    by trusting that one certificate by hand or by turning verification off — and then any
    certificate would do. A CA file whose certificate is not a CA (basicConstraints CA:FALSE, or no
    basicConstraints at all) is refused by libvirt and QEMU, as is a server or client certificate
    that says CA:TRUE. A certificate whose private key is not the one configured beside it, or whose
    key is encrypted (libvirt and QEMU take no passphrase), cannot be used at all: the TLS listener
    fails. A signature `cryptography` cannot check (MD4, SM2, explicit curve parameters) is UNKNOWN.

    Remediation: Issue the server and client certificates from the site CA (`certtool
    --generate-certificate --load-ca-certificate cacert.pem`), install the CA certificate as
    `ca_file` / `ca-cert.pem`, and keep each certificate with its own key.
    """
    files = list(_present(host))
    for tls in files:
        if tls.purpose not in _PAIRS and tls.purpose != "ca":
            continue
        if (problem := _unreadable(tls)) is not None:
            yield problem
            continue
        cert = tls.certificate
        if cert is None:
            continue
        subject = _subject(tls)
        where = ev(tls.stat.path, "subject / issuer", f"{cert.subject} / {cert.issuer}")
        if tls.purpose == "ca":
            if cert.is_ca is False:
                yield fail(subject, f"{tls.stat.path} is configured as the CA but is not a CA certificate "
                           "(basicConstraints CA:FALSE)", where)
            elif cert.is_ca is None:  # virNetTLSContextCheckCertBasicConstraints: refused, as by QEMU
                yield fail(subject, f"{tls.stat.path} is configured as the CA but has no basicConstraints "
                           "extension: libvirt and QEMU refuse it as a CA", where)
            else:
                yield ok(subject, f"{tls.stat.path} is a CA certificate ({cert.subject})", where)
            continue
        problems: list[str] = []
        ca = next((f for f in files if f.group == tls.group and f.purpose == "ca"), None)
        if cert.self_signed:
            problems.append("it is self-signed")
        elif ca is None or ca.certificate is None:
            yield unknown(subject, f"no readable CA certificate is configured for {tls.group} to check "
                          f"{tls.stat.path} against", where)
            continue
        elif cert.verified_by is None and cert.verify_error is None:
            problems.append(f"it is not issued by the configured CA {ca.stat.path} (its issuer is "
                            f"{cert.issuer})")
        if cert.is_ca:  # libvirt refuses a CA certificate as its own or a client's certificate
            problems.append("its basicConstraints say CA:TRUE (libvirt refuses a CA certificate here)")
        key = next((f for f in files if f.group == tls.group and f.purpose == _PAIRS[tls.purpose]), None)
        key_where = []
        if key is not None and key.private_key is not None and key.private_key.encrypted:
            key_where.append(ev(key.stat.path, "private key", "encrypted"))
            problems.append(f"its private key {key.stat.path} is encrypted: libvirt and QEMU cannot load it "
                            "(they take no passphrase)")
        elif key is not None and key.private_key is not None and key.private_key.public_key_id is not None:
            key_where.append(ev(key.stat.path, "public key", key.private_key.public_key_id[:16]))
            if key.private_key.public_key_id != cert.public_key_id:
                problems.append(f"its public key does not match the private key {key.stat.path}")
        if problems:
            yield fail(subject, f"{tls.stat.path} ({cert.subject}): {'; '.join(problems)}", where, *key_where)
        elif cert.verify_error is not None and ca is not None:
            yield unknown(subject, f"whether {ca.stat.path} issued {tls.stat.path} is unknown: "
                          f"{cert.verify_error}", where, *key_where)
        else:
            issuer = ca.stat.path if ca is not None else "the CA"
            pair = f" and matches {key.stat.path}" if key_where and key is not None else ""
            yield ok(subject, f"{tls.stat.path} ({cert.subject}) is issued by {issuer}{pair}", where,
                     *key_where)
