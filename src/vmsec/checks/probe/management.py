"""The management plane seen from the network: libvirt's RPC listeners and SSH.

What each daemon offers before any login — the libvirt authentication schemes, SSH's algorithms and
authentication methods — judged from the probe's handshake, with the daemon setting responsible.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache

from vmsec import DATA_DIR
from vmsec.checks.api import Environment, Result, Severity, Tag, check, fail, ok, unknown
from vmsec.checks.probe.correlate import context, exposure, observed
from vmsec.facts import Endpoint, PortState, Proto

AUTH_DOC = "https://libvirt.org/auth.html"
REMOTE_DOC = "https://libvirt.org/remote.html"
SSH_AUDIT = "https://github.com/jtesta/ssh-audit"
# SASL mechanisms that protect neither the password nor the session on a clear TCP listener.
WEAK_SASL = frozenset({"PLAIN", "LOGIN", "ANONYMOUS", "DIGEST-MD5", "CRAM-MD5"})



@cache
def ssh_fail_lists() -> dict[str, frozenset[str]]:
    """The algorithms ssh-audit fails, by KEXINIT list (data: vmsec/data/ssh-algorithms-fail.json)."""
    text = (DATA_DIR / "ssh-algorithms-fail.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return {key: frozenset(data[key]) for key in ("kex", "host_key_algorithms", "ciphers", "macs")}


_SSH_LABEL = {"kex": "key exchange", "host_key_algorithms": "host key", "ciphers": "cipher", "macs": "MAC"}


@check("VMS-PRB-005", title="The libvirt TCP listener seen from the network requires authentication",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, "libvirtd", "remote", "probe"),
       references=(AUTH_DOC, REMOTE_DOC))
def libvirt_tcp_auth(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """libvirt's RPC with the authentication scheme none is full control of every VM on the host —
    define a domain with the host's disks, read memory, attach devices — for whoever reaches the port.
    On a clear TCP listener only a SASL mechanism that protects the session (GSSAPI, SCRAM) is safe.
    The probe calls only REMOTE_PROC_AUTH_LIST (and AUTH_SASL_INIT for the mechanism list).

    Remediation: Set `auth_tcp = "sasl"` with a strong mechanism (`mech_list: gssapi` or
    `scram-sha-256` in /etc/sasl2/libvirt.conf), or better disable `listen_tcp` and use the TLS
    listener with client certificates.
    """
    if endpoint.state is not PortState.OPEN or endpoint.protocol is not Proto.LIBVIRT:
        return
    subject = "libvirt authentication"
    phrase, evidence = context(endpoint, env)
    info = endpoint.libvirt
    if info is None or info.auth_types is None:
        reason = (info.error if info else None) or endpoint.error or "no RPC reply"
        yield unknown(subject, f"the offered authentication schemes could not be read ({reason}); {phrase}",
                      *evidence)
        return
    seen = [observed(endpoint, "REMOTE_PROC_AUTH_LIST", ", ".join(info.auth_types))]
    if info.sasl_mechanisms is not None:
        seen.append(observed(endpoint, "SASL mechanisms", " ".join(info.sasl_mechanisms)))
    if "none" in info.auth_types:
        yield fail(subject, f"libvirt on {endpoint.label} accepts clients without authentication: full "
                            f"control of every VM; {phrase}", *seen, *evidence,
                   severity=exposure(endpoint, Severity.CRITICAL))
        return
    mechs = {m.upper() for m in info.sasl_mechanisms or ()}
    if "sasl" in info.auth_types and mechs and mechs <= WEAK_SASL:
        yield fail(subject, f"libvirt's SASL on a clear TCP listener offers only "
                            f"{', '.join(sorted(mechs))}; {phrase}", *seen, *evidence,
                   severity=exposure(endpoint, Severity.HIGH))
    else:
        yield ok(subject, f"libvirt requires {', '.join(info.auth_types)}; {phrase}", *seen, *evidence)


@check("VMS-PRB-006", title="The libvirt TLS listener requires a client certificate",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "libvirtd", "remote", "probe"),
       references=(REMOTE_DOC, "https://libvirt.org/kbase/tlscerts.html"))
def libvirt_tls_client_cert(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """On port 16514 libvirt's default is to require a client certificate signed by its CA; with
    `tls_no_verify_certificate = 1` any TLS client gets through, and with `auth_tls = "none"` that
    is full control of every VM. The probe completes the TLS handshake without a client certificate
    and asks for the authentication schemes: a daemon that verifies certificates closes first.

    Remediation: Keep `tls_no_verify_certificate = 0`, restrict `tls_allowed_dn_list`, and set
    `auth_tls = "sasl"` where certificates alone are not enough.
    """
    if endpoint.state is not PortState.OPEN or endpoint.protocol is not Proto.LIBVIRT_TLS:
        return
    subject = "libvirt tls client certificate"
    phrase, evidence = context(endpoint, env)
    tls = endpoint.tls
    if tls is None or tls.version is None:
        reason = (tls.handshake_error if tls else None) or endpoint.error or "no TLS handshake"
        yield unknown(subject, f"the TLS handshake did not complete ({reason}); {phrase}", *evidence)
        return
    if tls.client_cert_requested:
        yield ok(subject, f"the daemon closed the session of a client without a certificate; {phrase}",
                 observed(endpoint, "after TLS handshake", "closed"), *evidence)
        return
    info = endpoint.libvirt
    if info is None or info.auth_types is None:
        yield unknown(subject, f"after the TLS handshake the daemon's answer could not be read "
                               f"({endpoint.error}); {phrase}", *evidence)
        return
    seen = observed(endpoint, "REMOTE_PROC_AUTH_LIST over TLS", ", ".join(info.auth_types))
    if "none" in info.auth_types:
        yield fail(subject, f"libvirt on {endpoint.label} accepts any TLS client without a certificate and "
                            f"without authentication; {phrase}", seen, *evidence,
                   severity=exposure(endpoint, Severity.CRITICAL))
    else:
        yield fail(subject, f"libvirt on {endpoint.label} accepts TLS clients without a certificate (then "
                            f"asks for {', '.join(info.auth_types)}); {phrase}", seen, *evidence,
                   severity=exposure(endpoint, Severity.MEDIUM))


@check("VMS-PRB-010", title="SSH on the hypervisor does not offer password authentication",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "ssh", "probe"),
       references=("https://man.openbsd.org/sshd_config#PasswordAuthentication", SSH_AUDIT))
def ssh_no_password(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """A hypervisor's SSH is the management plane of every VM on it; a password (or keyboard-
    interactive) login can be guessed from anywhere the port is reachable. The probe asks with the
    `none` method for a user that does not exist, as every client does first; no credential is sent.

    Remediation: `PasswordAuthentication no` and `KbdInteractiveAuthentication no` in sshd_config;
    log in with keys or certificates.
    """
    if endpoint.state is not PortState.OPEN or endpoint.protocol is not Proto.SSH:
        return
    subject = "ssh authentication methods"
    phrase, evidence = context(endpoint, env)
    info = endpoint.ssh
    if info is None or info.auth_methods is None:
        reason = (info.error if info else None) or endpoint.error or "no SSH handshake"
        yield unknown(subject, f"the offered authentication methods could not be read ({reason}); {phrase}",
                      *evidence)
        return
    seen = observed(endpoint, "authentication methods", ", ".join(info.auth_methods) or "(none)")
    guessable = [m for m in info.auth_methods if m in ("password", "keyboard-interactive")]
    if guessable:
        yield fail(subject, f"SSH on {endpoint.label} offers {', '.join(guessable)}; {phrase}", seen,
                   *evidence)
    else:
        yield ok(subject, f"SSH offers {', '.join(info.auth_methods) or 'no method'}; {phrase}", seen,
                 *evidence)


@check("VMS-PRB-011", title="SSH offers only strong key exchange, host key, cipher and MAC algorithms",
       severity=Severity.MEDIUM, tags=(Tag.ENCRYPTION, "ssh", "probe"),
       references=(SSH_AUDIT, "https://www.ssh-audit.com/hardening_guides.html"))
def ssh_strong_algorithms(endpoint: Endpoint, env: Environment) -> Iterator[Result]:
    """SHA-1 key exchange, small Diffie-Hellman groups, NIST curves of doubtful provenance, CBC and
    RC4 ciphers and MD5/SHA-1/64-bit MACs are the algorithms ssh-audit fails; a server that offers
    them lets a client (or an attacker in the path) negotiate them.

    Remediation: Set `KexAlgorithms`, `HostKeyAlgorithms`, `Ciphers` and `MACs` in sshd_config to the
    ssh-audit hardening guide's lists (curve25519/sntrup, ssh-ed25519/rsa-sha2, chacha20-poly1305/
    AES-GCM/AES-CTR, *-etm MACs with SHA-2).
    """
    if endpoint.state is not PortState.OPEN or endpoint.protocol is not Proto.SSH:
        return
    info = endpoint.ssh
    phrase, evidence = context(endpoint, env)
    if info is None or info.kex is None:
        reason = (info.error if info else None) or endpoint.error or "no KEXINIT"
        yield unknown("ssh algorithms", f"the algorithm offer could not be read ({reason}); {phrase}",
                      *evidence)
        return
    for field, label in _SSH_LABEL.items():
        offered: tuple[str, ...] = getattr(info, field) or ()
        bad = [a for a in offered if a in ssh_fail_lists()[field]]
        subject = f"ssh {label} algorithms"
        seen = observed(endpoint, f"KEXINIT {field}", ",".join(offered))
        if bad:
            yield fail(subject, f"SSH on {endpoint.label} offers weak {label} algorithms: {', '.join(bad)}; "
                                f"{phrase}", seen, *evidence)
        else:
            yield ok(subject, f"no weak {label} algorithm offered; {phrase}", seen, *evidence)
