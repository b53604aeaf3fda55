"""Transports seen from the network: TLS endpoints against Mozilla's intermediate profile, NBD
exports listed without TLS, reachable migration ports, and — for every endpoint — whether what the
network shows matches the configuration that should explain it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from vmsec import DATA_DIR
from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.probe.correlate import (
    CONFIRMED,
    CONTRADICTED,
    NO_CONFIGURATION,
    NOT_REACHABLE,
    UNEXPLAINED,
    attribute,
    context,
    exposure,
    observed,
)
from vmsec.facts import Endpoint, PortState, Proto, TlsInfo

MOZILLA_DOC = "https://wiki.mozilla.org/Security/Server_Side_TLS"
_SECG = {"prime256v1": "secp256r1", "prime192v1": "secp192r1"}


@cache
def mozilla_intermediate() -> dict[str, Any]:
    """Mozilla's intermediate configuration (data: vmsec/data/mozilla-tls-intermediate.json)."""
    text = (DATA_DIR / "mozilla-tls-intermediate.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _curve(name: str) -> str:
    return _SECG.get(name, name).lower()


def tls_issues(tls: TlsInfo) -> tuple[list[str], list[str]]:
    """(issues against the intermediate profile, what could not be judged)."""
    p = mozilla_intermediate()
    issues: list[str] = []
    missing: list[str] = []
    allowed_versions = set(p["tls_versions"])
    if tls.versions is not None:
        extra = [v for v in tls.versions if v not in allowed_versions]
        if extra:
            issues.append(f"accepts {', '.join(extra)}")
    elif tls.version is not None and tls.version not in allowed_versions:
        issues.append(f"negotiated {tls.version}")
    else:
        missing.append("protocol versions")
    if tls.ciphers is not None:
        extra = [c for c in tls.ciphers if c not in set(p["ciphers_iana"])]
        if extra:
            issues.append(f"accepts cipher suites outside the profile: {', '.join(extra[:6])}"
                          + (f" (+{len(extra) - 6})" if len(extra) > 6 else ""))
    else:
        missing.append("cipher suites")
    if tls.ciphersuites is not None:
        extra = [c for c in tls.ciphersuites if c not in set(p["ciphersuites"])]
        if extra:
            issues.append(f"accepts TLS 1.3 suites outside the profile: {', '.join(extra)}")
    if tls.curves is not None:
        allowed = {_curve(c) for c in p["tls_curves"]}
        extra = [c for c in tls.curves if _curve(c) not in allowed]
        if extra:
            issues.append(f"accepts key-exchange groups {', '.join(extra)}")
    if tls.min_dh_bits is not None and tls.min_dh_bits < p["dh_param_size"]:
        issues.append(f"DH parameters of {tls.min_dh_bits} bits (< {p['dh_param_size']})")
    if tls.min_ecdh_bits is not None and tls.min_ecdh_bits < p["ecdh_param_size"]:
        issues.append(f"ECDH parameters of {tls.min_ecdh_bits} bits (< {p['ecdh_param_size']})")
    if tls.weaknesses:
        issues.append(f"weaknesses: {', '.join(tls.weaknesses)}")
    elif tls.weaknesses is None:
        missing.append("known weaknesses")
    cert = tls.certificate
    if cert is None:
        missing.append("the certificate")
    else:
        if cert.key_type not in p["certificate_types"]:
            issues.append(f"a {cert.key_type or 'unknown'} certificate key")
        if cert.key_type == "rsa" and cert.key_bits is not None and cert.key_bits < p["rsa_key_size"]:
            issues.append(f"an RSA key of {cert.key_bits} bits (< {p['rsa_key_size']})")
        if cert.key_type == "ecdsa" and cert.curve is not None and \
                _curve(cert.curve) not in {_curve(c) for c in p["certificate_curves"]}:
            issues.append(f"a certificate on curve {cert.curve}")
        if cert.signature is not None and cert.signature not in p["certificate_signatures"]:
            issues.append(f"a certificate signed with {cert.signature}")
        if cert.lifespan_days is not None and cert.lifespan_days > p["maximum_certificate_lifespan"]:
            issues.append(f"a certificate valid for {cert.lifespan_days} days "
                          f"(> {p['maximum_certificate_lifespan']})")
    return issues, missing


@check("VMS-PRB-007", title="TLS endpoints meet Mozilla's intermediate TLS profile",
       severity=Severity.MEDIUM, tags=(Tag.ENCRYPTION, "tls", "probe"),
       references=(MOZILLA_DOC, "https://ssl-config.mozilla.org/guidelines/5.7.json",
                   "https://github.com/nabla-c0d3/sslyze"))
def tls_mozilla_intermediate(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """The TLS that protects libvirt's 16514, SPICE's TLS port, web consoles and the TLS inside
    VeNCrypt should meet Mozilla's intermediate profile: TLS 1.2 or 1.3 only, AEAD cipher suites with
    forward secrecy, X25519/P-256/P-384, RSA ≥ 2048 or ECDSA P-256/P-384 certificates signed with
    SHA-2, no known weaknesses (Heartbleed, ROBOT, CCS injection, compression, insecure
    renegotiation). Versions and suites are enumerated with sslyze; certificate path validation is
    not judged (management endpoints use a private CA).

    Remediation: For libvirt set `tls_priority` (libvirtd.conf) or `tls_priority` in qemu.conf to a
    modern GnuTLS priority string (e.g. "@LIBVIRT,-VERS-ALL,+VERS-TLS1.3,+VERS-TLS1.2"), reissue
    certificates with 2048-bit RSA or P-256 keys and SHA-256 signatures; for web consoles use
    Mozilla's generated configuration.
    """
    if endpoint.state is not PortState.OPEN:
        return
    tls = endpoint.tls
    if tls is None and endpoint.vnc is not None:
        tls = endpoint.vnc.tls
    if tls is None:
        return
    subject = "tls configuration"
    phrase, evidence = context(endpoint, env)
    if tls.version is None:
        yield unknown(subject, f"the TLS handshake did not complete ({tls.handshake_error}); {phrase}",
                      *evidence)
        return
    seen = [observed(endpoint, "negotiated", f"{tls.version} {tls.cipher}")]
    if tls.versions is not None:
        seen.append(observed(endpoint, "accepted versions", " ".join(tls.versions)))
    if tls.certificate is not None:
        c = tls.certificate
        seen.append(observed(endpoint, "certificate",
                             f"{c.subject}; {c.key_type} {c.key_bits}; {c.signature}; until {c.not_after}"))
    issues, missing = tls_issues(tls)
    if issues:
        yield fail(subject, f"TLS on {endpoint.label} falls short of Mozilla's intermediate profile: "
                            f"{'; '.join(issues)}; {phrase}", *seen, *evidence)
    elif missing:
        why = f" ({tls.scan_error})" if tls.scan_error else ""
        yield unknown(subject, f"TLS {tls.version} on {endpoint.label}: {', '.join(missing)} could not be "
                               f"enumerated{why}; {phrase}", *seen, *evidence)
    else:
        yield ok(subject, f"TLS on {endpoint.label} meets Mozilla's intermediate profile; {phrase}", *seen,
                 *evidence)


@check("VMS-PRB-008", title="NBD servers do not list exports without TLS",
       severity=Severity.HIGH, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "storage", "probe"),
       references=("https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md",
                   "https://www.qemu.org/docs/master/system/tls.html"))
def nbd_requires_tls(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """An NBD server that negotiates without TLS hands a guest's disk — read and often write — to
    anyone who reaches the port; listing its exports is the first step. QEMU's NBD server (storage
    migration, qemu-nbd, backups) should require TLS (`tls-creds`, `migrate_tls_force`).

    Remediation: Start NBD servers with x509 TLS credentials (`--tls-creds` / `nbd_tls = 1` in
    qemu.conf) and keep them bound to a storage network.
    """
    if endpoint.state is not PortState.OPEN or endpoint.protocol is not Proto.NBD:
        return
    subject = "nbd negotiation"
    phrase, evidence = context(endpoint, env)
    info = endpoint.nbd
    if info is None or (info.tls_required is None and info.exports is None):
        reason = (info.error if info else None) or endpoint.error or "no NBD handshake"
        yield unknown(subject, f"the NBD negotiation could not be examined ({reason}); {phrase}", *evidence)
        return
    if info.tls_required:
        yield ok(subject, f"the NBD server requires TLS before listing exports; {phrase}",
                 observed(endpoint, "NBD_OPT_LIST", "TLS required"), *evidence)
    else:
        names = ", ".join(info.exports or ()) or "(none listed)"
        yield fail(subject, f"the NBD server on {endpoint.label} negotiates without TLS and lists: {names}; "
                            f"{phrase}", observed(endpoint, "NBD_OPT_LIST", names), *evidence,
                   severity=exposure(endpoint, Severity.HIGH))


@check("VMS-PRB-009", title="Migration ports are not reachable from the probe's vantage point",
       severity=Severity.HIGH, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "migration", "probe"),
       references=("https://libvirt.org/migration.html#data-transports",
                   "https://www.qemu.org/docs/master/devel/migration/main.html"))
def migration_not_reachable(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """QEMU's incoming migration stream is the guest's whole memory and device state; without TLS
    whoever connects first can feed the destination a forged guest or read the stream. A migration
    port (qemu.conf `migration_port_min`..`migration_port_max`) reachable from here should be on a
    dedicated migration network. The probe only connects and closes: it never sends a byte.

    Remediation: Set `migration_address` to the migration network's address, `migrate_tls_force = 1`,
    and filter the range from every other network.
    """
    if endpoint.protocol is not Proto.MIGRATION:
        return
    subject = "migration port"
    phrase, evidence = context(endpoint, env)
    if endpoint.state is PortState.OPEN:
        yield fail(subject, f"migration port {endpoint.label} accepts connections (a migration is incoming); "
                            f"{phrase}", observed(endpoint, "TCP", "open"), *evidence,
                   severity=exposure(endpoint, Severity.HIGH))
    else:
        yield ok(subject, f"migration port {endpoint.label} is {endpoint.state.value}; {phrase}",
                 observed(endpoint, "TCP", endpoint.state.value), *evidence)


@check("VMS-PRB-013", title="What the network shows matches the configuration",
       severity=Severity.CRITICAL, tags=(Tag.CONFIGURATION, Tag.ACCESS_CONTROL, "probe", "correlation"),
       references=("https://libvirt.org/formatdomain.html#graphical-framebuffers",
                   "https://libvirt.org/remote.html"))
def configuration_matches(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """Configuration says where a console or the management plane listens and what it requires;
    the network shows what is really there. When they disagree — the configuration says loopback or
    TLS and the port answers from the network in clear, or another protocol answers — something the
    configuration does not show is at work: a NAT rule, a proxy, a stale process, a second daemon
    (critical). A listener nothing in the configuration explains is a finding too.

    Remediation: Find what publishes the port (`ss -ltnp`, the firewall's NAT table, proxies),
    remove it or bring the configuration in line; re-run the probe with `--from-libvirt`.
    """
    a = attribute(endpoint, env)
    if a.state == NO_CONFIGURATION:
        return
    subject = "configuration"
    seen = observed(endpoint, "seen", f"{endpoint.state.value} {endpoint.protocol.value}")
    evidence = (seen, *a.evidence())
    if a.state == CONTRADICTED:
        yield fail(subject, f"{endpoint.label} {a.phrase()}", *evidence, severity=Severity.CRITICAL)
    elif a.state == UNEXPLAINED:
        yield fail(subject, f"{endpoint.label} answers ({endpoint.protocol.value}), {a.phrase()}", *evidence,
                   severity=exposure(endpoint, Severity.HIGH))
    elif a.state == NOT_REACHABLE:
        yield ok(subject, f"{endpoint.label} is {endpoint.state.value}: {a.phrase()}", *evidence)
    elif a.state == CONFIRMED:
        yield ok(subject, f"{endpoint.label} ({endpoint.protocol.value}) is {a.phrase()}", *evidence)
    else:  # pragma: no cover - every state is handled above
        yield unknown(subject, a.phrase(), ev("correlation", a.state))
