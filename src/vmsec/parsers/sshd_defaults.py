"""The values OpenSSH's sshd uses when its configuration omits a keyword, by upstream version.

Values are written as ``sshd -T`` prints them (``permitrootlogin without-password`` is sshd's own
spelling of ``prohibit-password``; algorithm lists are split on commas). Verified against the
Debian 12 binary (``openssh-server 1:9.2p1-2+deb12u10``, ``sshd -T`` on an empty file); the
older values come from upstream's ``servconf.c`` ``fill_default_server_options`` and
``myproposal.h`` and from the release notes, and are marked where they change.

A keyword whose default is not known for a version is left out: the caller reports it as unknown,
never as a guess. Versions outside :data:`KNOWN_RANGE` have no defaults at all.

Distribution-shipped ``sshd_config`` files (Debian's ``UsePAM yes``, ``X11Forwarding yes``,
``KbdInteractiveAuthentication no`` …) are configuration, read from the guest like any other
file, and are not defaults here. Distribution *patches* that change compiled values are listed in
:data:`_DISTRO_OVERRIDES`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

Version = tuple[int, int]

KNOWN_RANGE: tuple[Version, Version] = ((7, 0), (10, 2))

# keyword -> ((first version, last version or None for "up to KNOWN_RANGE's end", value), ...)
_Span = tuple[Version, Version | None, tuple[str, ...]]

_CIPHERS_67 = ("chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
               "aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
_MACS_67 = ("umac-64-etm@openssh.com", "umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
            "hmac-sha2-512-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com",
            "umac-128@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1")
_KEX_ECDH = ("curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
             "ecdh-sha2-nistp384", "ecdh-sha2-nistp521")
_KEX_DH = ("diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512",
           "diffie-hellman-group18-sha512", "diffie-hellman-group14-sha256")
_SNTRUP = "sntrup761x25519-sha512@openssh.com"

_SPANS: dict[str, tuple[_Span, ...]] = {
    "port": (((7, 0), None, ("22",)),),
    "addressfamily": (((7, 0), None, ("any",)),),
    "listenaddress": (((7, 0), None, ("[::]:22", "0.0.0.0:22")),),  # derived from port at run time
    "usepam": (((7, 0), None, ("no",)),),
    "logingracetime": (((7, 0), None, ("120",)),),
    "maxauthtries": (((7, 0), None, ("6",)),),
    "maxsessions": (((7, 0), None, ("10",)),),
    "clientaliveinterval": (((7, 0), None, ("0",)),),
    "clientalivecountmax": (((7, 0), None, ("3",)),),
    "requiredrsasize": (((9, 1), None, ("1024",)),),  # keyword added in 9.1
    # 7.0: "PermitRootLogin" default changed from yes to prohibit-password
    "permitrootlogin": (((7, 0), None, ("without-password",)),),
    "ignorerhosts": (((7, 0), None, ("yes",)),),
    "hostbasedauthentication": (((7, 0), None, ("no",)),),
    "pubkeyauthentication": (((7, 0), None, ("yes",)),),
    "passwordauthentication": (((7, 0), None, ("yes",)),),
    # Before 8.7, ChallengeResponseAuthentication (default yes) switched keyboard-interactive on;
    # from 8.7 it is an alias of KbdInteractiveAuthentication (default yes). Effective value: yes.
    "kbdinteractiveauthentication": (((7, 0), None, ("yes",)),),
    "permitemptypasswords": (((7, 0), None, ("no",)),),
    "permituserenvironment": (((7, 0), None, ("no",)),),
    "x11forwarding": (((7, 0), None, ("no",)),),
    "allowtcpforwarding": (((7, 0), None, ("yes",)),),
    "allowagentforwarding": (((7, 0), None, ("yes",)),),
    "allowstreamlocalforwarding": (((7, 0), None, ("yes",)),),
    "disableforwarding": (((7, 4), None, ("no",)),),  # keyword added in 7.4
    "gatewayports": (((7, 0), None, ("no",)),),
    "permittunnel": (((7, 0), None, ("no",)),),
    "permittty": (((7, 0), None, ("yes",)),),
    "permituserrc": (((7, 0), None, ("yes",)),),
    "strictmodes": (((7, 0), None, ("yes",)),),
    "printmotd": (((7, 0), None, ("yes",)),),
    "printlastlog": (((7, 0), None, ("yes",)),),
    "tcpkeepalive": (((7, 0), None, ("yes",)),),
    "usedns": (((7, 0), None, ("no",)),),  # 6.8 changed the default to no
    "gssapiauthentication": (((7, 0), None, ("no",)),),
    "kerberosauthentication": (((7, 0), None, ("no",)),),
    "loglevel": (((7, 0), None, ("INFO",)),),
    "syslogfacility": (((7, 0), None, ("AUTH",)),),
    "banner": (((7, 0), None, ("none",)),),
    "forcecommand": (((7, 0), None, ("none",)),),
    "chrootdirectory": (((7, 0), None, ("none",)),),
    "authorizedkeysfile": (((7, 0), None, (".ssh/authorized_keys", ".ssh/authorized_keys2")),),
    "authenticationmethods": (((7, 0), None, ("any",)),),
    # 7.0-7.x printed 10:30:100 as well; MaxStartups begin:rate:full
    "maxstartups": (((7, 0), None, ("10:30:100",)),),
    "allowusers": (((7, 0), None, ()),),
    "denyusers": (((7, 0), None, ()),),
    "allowgroups": (((7, 0), None, ()),),
    "denygroups": (((7, 0), None, ()),),
    "acceptenv": (((7, 0), None, ()),),
    # 6.7 removed CBC and arcfour from the server proposal; 10.0 reordered (not recorded: unknown)
    "ciphers": (((7, 0), (9, 9), _CIPHERS_67),),
    "macs": (((7, 0), (9, 9), _MACS_67),),
    # 7.4 .. 8.1: group14-sha1 still offered; 8.2 removed it; 8.5 added sntrup761 after ECDH;
    # 9.0 made sntrup761 the first choice. 9.9 added ML-KEM (not recorded: unknown).
    "kexalgorithms": (
        ((7, 4), (8, 1), _KEX_ECDH + _KEX_DH + ("diffie-hellman-group14-sha1",)),
        ((8, 2), (8, 4), _KEX_ECDH + _KEX_DH),
        ((8, 5), (8, 9), (*_KEX_ECDH, _SNTRUP, *_KEX_DH)),
        ((9, 0), (9, 8), (_SNTRUP, *_KEX_ECDH, *_KEX_DH)),
    ),
}

# Signature algorithms (PubkeyAcceptedAlgorithms, HostKeyAlgorithms, HostbasedAcceptedAlgorithms):
# 8.8 dropped ssh-rsa (RSA/SHA-1) from the defaults. CASignatureAlgorithms has no certificates.
_SIG_PLAIN = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
              "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com", "rsa-sha2-512",
              "rsa-sha2-256")
_SIG_CERTS = tuple(f"{a.removesuffix('@openssh.com')}-cert-v01@openssh.com" for a in _SIG_PLAIN)
for _keyword in ("pubkeyacceptedalgorithms", "hostkeyalgorithms", "hostbasedacceptedalgorithms"):
    _SPANS[_keyword] = (((8, 8), (9, 9), _SIG_CERTS + _SIG_PLAIN),)
_SPANS["casignaturealgorithms"] = (((8, 8), (9, 9), _SIG_PLAIN),)

# Every algorithm the server accepts in Ciphers/MACs/KexAlgorithms (``ssh -Q cipher|mac|kex``);
# a name outside these is a fatal "Bad SSH2 … spec". Recorded where observed (9.2p1).
_SUPPORTED: dict[str, tuple[_Span, ...]] = {
    "ciphers": (((9, 0), (9, 8), ("3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "aes128-ctr",
                                  "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com",
                                  "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com")),),
    "macs": (((9, 0), (9, 8), ("hmac-sha1", "hmac-sha1-96", "hmac-sha2-256", "hmac-sha2-512", "hmac-md5",
                               "hmac-md5-96", "umac-64@openssh.com", "umac-128@openssh.com",
                               "hmac-sha1-etm@openssh.com", "hmac-sha1-96-etm@openssh.com",
                               "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
                               "hmac-md5-etm@openssh.com", "hmac-md5-96-etm@openssh.com",
                               "umac-64-etm@openssh.com", "umac-128-etm@openssh.com")),),
    "kexalgorithms": (((9, 0), (9, 8), ("diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1",
                                        "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512",
                                        "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha1",
                                        "diffie-hellman-group-exchange-sha256", "ecdh-sha2-nistp256",
                                        "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "curve25519-sha256",
                                        "curve25519-sha256@libssh.org", "sntrup761x25519-sha512",
                                        _SNTRUP)),),
}

# Distribution patches that change a compiled default: (distro id, first, last) -> values.
# Debian's 9.2p1 security updates (deb12u10) offer the newer name "sntrup761x25519-sha512" too
# (observed with sshd -T on Debian 12).
_DISTRO_OVERRIDES: dict[tuple[str, Version, Version], Mapping[str, tuple[str, ...]]] = {
    ("debian", (9, 2), (9, 2)): {
        "kexalgorithms": ("sntrup761x25519-sha512", _SNTRUP, *_KEX_ECDH, *_KEX_DH),
    },
}

_VERSION_RE = re.compile(r"(?:^|[:\s])(\d+)\.(\d+)(?:p\d+)?")


def parse_version(text: str | None) -> Version | None:
    """``"9.2p1"``, ``"1:9.2p1-2+deb12u10"`` or ``"OpenSSH_9.6p1"`` -> (9, 2)/(9, 6); None if unreadable."""
    if not text:
        return None
    match = _VERSION_RE.search(text.replace("OpenSSH_", " "))
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def compiled_defaults(version: str | None, distro: str | None = None) -> Mapping[str, tuple[str, ...]]:
    """The compiled-in defaults for an OpenSSH version string; empty when the version is unknown."""
    parsed = parse_version(version)
    if parsed is None or not KNOWN_RANGE[0] <= parsed <= KNOWN_RANGE[1]:
        return MappingProxyType({})
    out: dict[str, tuple[str, ...]] = {}
    for keyword, spans in _SPANS.items():
        for first, last, value in spans:
            if first <= parsed <= (last or KNOWN_RANGE[1]):
                out[keyword] = value
                break
    for (dist, first, last), values in _DISTRO_OVERRIDES.items():
        if distro == dist and first <= parsed <= last:
            out.update(values)
    return MappingProxyType(out)


def supported_algorithms(version: str | None) -> Mapping[str, frozenset[str]]:
    """Names sshd accepts in Ciphers/MACs/KexAlgorithms for a version; empty when not recorded."""
    parsed = parse_version(version)
    out: dict[str, frozenset[str]] = {}
    if parsed is None:
        return MappingProxyType(out)
    for keyword, spans in _SUPPORTED.items():
        for first, last, names in spans:
            if first <= parsed <= (last or KNOWN_RANGE[1]):
                out[keyword] = frozenset(names)
    return MappingProxyType(out)
