"""authorized_keys files → :class:`AuthorizedKey` facts, with the key size read from the key itself.

Line format (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"): ``[options] keytype base64-blob [comment]``.
Options are comma-separated, and double-quoted values may hold commas and spaces. The blob is the
SSH wire encoding (RFC 4253 §6.6): a string with the key type, then for RSA the exponent and the
modulus, for DSA p, q, g, y (mpints), for ECDSA the curve name and the point. The bit length comes
from the modulus / p / curve, so no cryptographic library is needed. A line that cannot be decoded
is kept with ``key_type=None`` so a check can report it.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING

from vmsec.errors import ErrorKind, Problems, ReadError
from vmsec.facts import Account, AuthorizedKey, evolve

if TYPE_CHECKING:
    from vmsec.reading import Reader

DEFAULT_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")
MAX_FILE_BYTES = 1024 * 1024
MAX_KEYS_PER_FILE = 10_000
MAX_ACCOUNTS = 10_000
MAX_KEYS_TOTAL = 100_000
KEY_PREFIXES = ("ssh-", "ecdsa-", "sk-", "rsa-sha2-")
_CURVE_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}
_FIXED_BITS = {"ssh-ed25519": 256, "sk-ssh-ed25519@openssh.com": 256, "ssh-ed448": 456}


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated length")
    (length,) = struct.unpack_from(">I", blob, offset)
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated field")
    return blob[offset + 4:end], end


def key_bits(blob: bytes) -> tuple[str, int | None]:
    """(key type from inside the blob, bits) of a public key blob; raises ValueError when malformed."""
    name_bytes, offset = _read_string(blob, 0)
    name = name_bytes.decode("ascii")
    if name == "ssh-rsa" or name.startswith("ssh-rsa-cert"):
        if name.startswith("ssh-rsa-cert"):
            _nonce, offset = _read_string(blob, offset)
        _e, offset = _read_string(blob, offset)
        n, _ = _read_string(blob, offset)
        return name, int.from_bytes(n, "big").bit_length()
    if name == "ssh-dss" or name.startswith("ssh-dss-cert"):
        if name.startswith("ssh-dss-cert"):
            _nonce, offset = _read_string(blob, offset)
        p, _ = _read_string(blob, offset)
        return name, int.from_bytes(p, "big").bit_length()
    if name.startswith(("ecdsa-sha2-", "sk-ecdsa-sha2-")):
        if "-cert-" in name:
            _nonce, offset = _read_string(blob, offset)
        curve, _ = _read_string(blob, offset)
        return name, _CURVE_BITS.get(curve.decode("ascii", "replace"))
    base = name.split("-cert-", 1)[0]
    return name, _FIXED_BITS.get(base) or _FIXED_BITS.get(name)


def _split_options(line: str) -> tuple[str, str]:
    """(options text, the rest) of a line that starts with options."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif ch in " \t" and not quoted:
            return line[:i], line[i:].strip()
    return line, ""


def _options(text: str) -> tuple[str, ...]:
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        if ch == "," and not quoted:
            out.append("".join(current))
            current = []
            continue
        current.append(ch)
    out.append("".join(current))
    return tuple(o for o in out if o)


def parse_authorized_keys(text: str, user: str, path: str) -> tuple[AuthorizedKey, ...]:
    """Keys in one authorized_keys text. Comments and blank lines are skipped; undecodable key lines
    are kept with ``key_type=None``. At most 10,000 keys."""
    keys: list[AuthorizedKey] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(keys) >= MAX_KEYS_PER_FILE:
            break
        options: tuple[str, ...] = ()
        if not line.startswith(KEY_PREFIXES):
            option_text, line = _split_options(line)
            options = _options(option_text)
        parts = line.split(None, 2)
        declared = parts[0] if parts else None
        comment = parts[2] if len(parts) > 2 else None
        key_type: str | None = None
        bits: int | None = None
        if len(parts) >= 2 and declared and declared.startswith(KEY_PREFIXES):
            try:
                blob = base64.b64decode(parts[1], validate=True)
                inner, bits = key_bits(blob)
                key_type = inner if inner == declared else None
                if key_type is None:
                    bits = None
            except (binascii.Error, ValueError, UnicodeDecodeError):
                key_type, bits = None, None
        keys.append(AuthorizedKey(user=user, path=path, key_type=key_type, bits=bits, comment=comment,
                                  options=options, line=number))
    return tuple(keys)


def expand_tokens(name: str, user: str, home: str) -> str:
    """An AuthorizedKeysFile entry for one user: ``%h`` home, ``%u`` user, ``%%`` a percent sign; a
    relative path is relative to the home directory (sshd_config(5) TOKENS)."""
    out: list[str] = []
    i = 0
    while i < len(name):
        if name[i] == "%" and i + 1 < len(name):
            token = name[i + 1]
            out.append({"h": home, "u": user, "%": "%"}.get(token, "%" + token))
            i += 2
            continue
        out.append(name[i])
        i += 1
    path = "".join(out)
    if path.startswith("/"):
        return path
    return f"{home}/{path}" if home != "/" else f"/{path}"


def key_file_paths(accounts: Iterable[Account], files: Iterable[str] = DEFAULT_FILES
                   ) -> list[tuple[str, str, str]]:
    """(user, home, path) of every authorized_keys file sshd would look at: each account with an
    absolute home (and root's /root) × each AuthorizedKeysFile entry (``none`` names no file), tokens
    expanded; at most :data:`MAX_ACCOUNTS` accounts."""
    homes: dict[tuple[str, str], None] = {}
    for account in accounts:
        if account.home and account.home.startswith("/") and len(homes) < MAX_ACCOUNTS:
            homes.setdefault((account.name, account.home.rstrip("/") or "/"))
    if not any(user == "root" for user, _ in homes):
        homes.setdefault(("root", "/root"))
    names = tuple(f for f in files if f.lower() != "none")
    return [(user, home, expand_tokens(name, user, home)) for user, home in homes for name in names]


def read_authorized_keys(reader: Reader, accounts: Iterable[Account],
                         files: Iterable[str] = DEFAULT_FILES, *,
                         problems: Problems | None = None) -> tuple[AuthorizedKey, ...]:
    """Keys of every account with a home directory (and root's /root), from ``files``: sshd's
    AuthorizedKeysFile entries (default ``.ssh/authorized_keys .ssh/authorized_keys2``) with ``%h``
    and ``%u`` expanded and relative entries taken from the home directory; ``none`` names no file.

    Each file is read and parsed once, however many accounts it serves (accounts sharing a home,
    or paths leading to the same file): its keys are listed once, with every account they log in as
    (``AuthorizedKey.users``), so the work and the facts grow with the file, not with the accounts.
    A path that is not a regular file is skipped and added to ``problems`` (NOT_REGULAR), as sshd
    refuses it too; a regular file that cannot be read, or more than :data:`MAX_KEYS_TOTAL` keys in
    all, raises :class:`ReadError` (the keys are then unknown, not "none")."""
    problems = Problems() if problems is None else problems
    # file identity -> (first path, accounts it serves, in order)
    served: dict[object, tuple[str, dict[str, None]]] = {}
    for user, _home, path in key_file_paths(accounts, files):
        info = reader.stat(path)
        if info.exists is False:
            continue
        if info.exists is None:
            raise ReadError(path, info.error or "could not be examined")
        if info.kind != "file":
            problems.note(path, f"{info.kind}, not a regular file; sshd ignores it", ErrorKind.NOT_REGULAR)
            continue
        identity = info.file_id if info.file_id is not None else path
        served.setdefault(identity, (path, {}))[1].setdefault(user)
    found: list[AuthorizedKey] = []
    for path, users in served.values():
        text = reader.read_text(path, MAX_FILE_BYTES)
        first, *others = users
        keys = parse_authorized_keys(text, first, path)
        if others:
            also = tuple(others)
            keys = tuple(evolve(k, also_for=also) for k in keys)
        found.extend(keys)
        if len(found) > MAX_KEYS_TOTAL:
            raise ReadError(path, f"more than {MAX_KEYS_TOTAL} authorized keys in all", ErrorKind.TOO_LARGE)
    return tuple(found)
