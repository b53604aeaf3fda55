"""Protocol codes and their names (VNC security types and VeNCrypt sub-types, SPICE link errors): what
the console checks need of the protocols, apart from the probes themselves — those import asyncio and
ssl, which cost an offline scan that never probes a tenth of its start-up."""

from __future__ import annotations

SECURITY_TYPES = {
    0: "Invalid", 1: "None", 2: "VNC Authentication", 5: "RA2", 6: "RA2ne", 16: "Tight", 17: "Ultra",
    18: "TLS", 19: "VeNCrypt", 20: "SASL", 21: "MD5", 22: "xvp", 30: "Apple Remote Desktop",
}
VENCRYPT_SUBTYPES = {
    256: "Plain", 257: "TLSNone", 258: "TLSVnc", 259: "TLSPlain", 260: "X509None", 261: "X509Vnc",
    262: "X509Plain", 263: "TLSSASL", 264: "X509SASL",
}
# Sub-types whose TLS carries a server certificate (X509*) or is anonymous (TLS*).
X509_SUBTYPES = frozenset({260, 261, 262, 264})
ANON_TLS_SUBTYPES = frozenset({257, 258, 259, 263})
# SPICE link replies (SpiceLinkErr).
LINK_ERRORS = {
    0: "ok", 1: "error", 2: "invalid magic", 3: "invalid data", 4: "version mismatch",
    5: "TLS required (need secured)", 6: "plain required (need unsecured)", 7: "permission denied",
    8: "bad connection id", 9: "channel not available",
}


def type_name(code: int) -> str:
    return SECURITY_TYPES.get(code, f"type {code}")


def subtype_name(code: int) -> str:
    return VENCRYPT_SUBTYPES.get(code, f"sub-type {code}")


__all__ = ["ANON_TLS_SUBTYPES", "LINK_ERRORS", "SECURITY_TYPES", "VENCRYPT_SUBTYPES", "X509_SUBTYPES",
           "subtype_name", "type_name"]
