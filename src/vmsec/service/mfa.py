"""Second factors: TOTP (RFC 6238 with pyotp; a code is accepted once — its time step must be later
than the last accepted one) and single-use recovery codes, kept only as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from vmsec.service.deps import need

ISSUER = "vmsec"
STEP = 30  # seconds
WINDOW = 1  # earlier steps accepted (clock drift, RFC 6238 §6); later ones never
RECOVERY_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)


def new_totp_secret() -> str:
    """160 random bits, base32 (RFC 4226's recommended length)."""
    return str(need("pyotp").random_base32(32))


def provisioning_uri(secret: str, account: str) -> str:
    """The ``otpauth://totp/…`` URI an authenticator app imports."""
    return str(need("pyotp").TOTP(secret, interval=STEP).provisioning_uri(name=account, issuer_name=ISSUER))


def current_code(secret: str, when: datetime) -> str:
    return str(need("pyotp").TOTP(secret, interval=STEP).at(int(when.timestamp())))


def matching_step(secret: str, code: str, when: datetime, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to (within the window around ``when``), if it is later than
    ``last_step``; None otherwise (wrong, expired, or a replay)."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = need("pyotp").TOTP(secret, interval=STEP)
    now_step = int(when.timestamp()) // STEP
    for step in range(now_step, now_step - WINDOW - 1, -1):
        if hmac.compare_digest(str(totp.generate_otp(step)), code):
            return step if last_step is None or step > last_step else None
    return None


def new_recovery_codes(n: int = RECOVERY_CODES) -> list[str]:
    """``n`` codes of 24 characters from 31 (about 119 bits each: ASVS 6.5.2 allows a plain keyed hash
    from 112 bits on), shown once as ``xxxxxx-xxxxxx-xxxxxx-xxxxxx``."""
    out = []
    for _ in range(n):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(24))
        out.append("-".join(raw[i : i + 6] for i in range(0, 24, 6)))
    return out


def recovery_hash(key: bytes, code: str) -> str:
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    return hmac.new(key, normal.encode(), hashlib.sha256).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    return len(code.strip().replace("-", "").replace(" ", "")) == 24
