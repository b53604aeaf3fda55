"""Passwords (NIST SP 800-63B §3.1.1): at least 12 characters, up to 256, any characters, no
composition rules; refused when found in a list of common and breached passwords (shipped in
``vmsec/data/common-passwords.txt.gz``, see its PROVENANCE.md), when made of one short repeated
unit or a plain sequence, or when they contain the account name. Stored as argon2id hashes.
"""

from __future__ import annotations

import gzip
import unicodedata
from functools import cache
from typing import Any

from vmsec import DATA_DIR
from vmsec.service.deps import need

MIN_LENGTH = 12
MAX_LENGTH = 256
_SEQUENCES = (
    "0123456789012345678901234567890",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiop",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lower-cased."""
    data = (DATA_DIR / "common-passwords.txt.gz").read_bytes()
    return frozenset(
        line.strip().lower() for line in gzip.decompress(data).decode("utf-8").splitlines() if line.strip()
    )


def normalise(password: str) -> str:
    """NFKC, as 800-63B asks for Unicode passwords (the hash and the checks see the same string)."""
    return unicodedata.normalize("NFKC", password)


def _repeated_unit(pw: str) -> bool:
    for size in range(1, 5):
        unit = pw[:size]
        if unit * (len(pw) // size) + unit[: len(pw) % size] == pw:
            return True
    return False


def _stem(pw: str) -> str:
    """The password without trailing digits and punctuation ("password2024!" → "password")."""
    end = len(pw)
    while end > 0 and not pw[end - 1].isalpha():
        end -= 1
    return pw[:end]


def check_password(password: str, context: tuple[str, ...] = ()) -> str | None:
    """Why ``password`` is refused, or None when it is acceptable. ``context``: words a password must
    not contain (the account name, the service's name)."""
    pw = normalise(password)
    if len(pw) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(pw) > MAX_LENGTH:
        return f"a password may have at most {MAX_LENGTH} characters"
    low = pw.lower()
    common = common_passwords()
    if low in common or (len(_stem(low)) >= 4 and _stem(low) in common and _stem(low) != low):
        return "this password is in a list of common or breached passwords"
    if _repeated_unit(low) or any(low in seq for seq in _SEQUENCES):
        return "this password is a repetition or a sequence"
    for word in (*context, "vmsec"):
        if len(word) >= 3 and word.lower() in low:
            return "a password must not contain the account name or the service's name"
    return None


@cache
def _hasher() -> Any:
    argon2 = need("argon2")
    # OWASP's argon2id minimum (m=19 MiB, t=2, p=1): about 25 ms per hash on this class of machine.
    return argon2.PasswordHasher(
        time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=argon2.Type.ID
    )


def hash_password(password: str) -> str:
    return str(_hasher().hash(normalise(password)))


@cache
def _dummy_hash() -> str:
    return hash_password("vmsec dummy password for unknown accounts")


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; with ``stored`` None, a dummy hash is verified so an
    unknown account takes as long as a known one."""
    exceptions = need("argon2.exceptions")
    try:
        return bool(_hasher().verify(stored or _dummy_hash(), normalise(password))) and stored is not None
    except (exceptions.VerificationError, exceptions.InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return bool(_hasher().check_needs_rehash(stored))
