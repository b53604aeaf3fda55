"""The service key: kept in a file outside the database (``--key-file``, ``$VMSEC_SERVICE_KEY``, or
``service.key`` in the user's config directory), created on first use with mode 0600.

Sub-keys derived from it (HMAC-SHA256 of a label) key the audit chain, the recovery-code hashes and
the AES-GCM encryption of TOTP secrets and stored scan credentials. Someone who holds a copy of the
database without this file can neither read those secrets nor rewrite the audit log unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from vmsec.errors import ConfigError
from vmsec.service.deps import need
from vmsec.userdirs import user_config_dir

ENV_VAR = "VMSEC_SERVICE_KEY"


def default_key_path() -> Path:
    return Path(user_config_dir()) / "service.key"


def resolve_key_path(path: str | None) -> Path:
    return Path(path or os.environ.get(ENV_VAR) or default_key_path())


class ServiceKeys:
    """The master key and what is derived from it."""

    def __init__(self, master: bytes) -> None:
        if len(master) < 32:
            raise ConfigError("the service key must be at least 32 bytes")
        self._master = master
        self.audit = self.derive("vmsec audit chain v1")
        self.recovery = self.derive("vmsec recovery codes v1")
        self._encryption = self.derive("vmsec encryption v1")

    def derive(self, label: str) -> bytes:
        return hmac.new(self._master, label.encode(), hashlib.sha256).digest()

    @classmethod
    def load(cls, path: str | Path | None = None, *, create: bool = True) -> ServiceKeys:
        """Read the key file (creating it, 0600, when absent and ``create``); a file readable by
        others is refused."""
        p = resolve_key_path(str(path) if path is not None else None)
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            if not create:
                raise ConfigError(
                    f"no service key at {p} (start 'vmsec serve' once, or give --key-file)"
                ) from None
            return cls._create(p)
        except OSError as exc:
            raise ConfigError(f"cannot read the service key {p}: {exc.strerror or exc}") from exc
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(f"the service key {p} is not a regular file")
            if st.st_mode & 0o077:
                raise ConfigError(
                    f"the service key {p} is readable by others (mode "
                    f"{stat.S_IMODE(st.st_mode):o}): chmod 600 it"
                )
            text = fh.read(1024).decode("ascii", "replace").strip()
        try:
            master = bytes.fromhex(text)
        except ValueError as exc:
            raise ConfigError(f"the service key {p} is not hexadecimal") from exc
        return cls(master)

    @classmethod
    def _create(cls, p: Path) -> ServiceKeys:
        master = secrets.token_bytes(32)
        try:
            p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return cls.load(p, create=False)  # another process created it first
        except OSError as exc:
            raise ConfigError(f"cannot create the service key {p}: {exc.strerror or exc}") from exc
        with os.fdopen(fd, "w") as fh:
            fh.write(master.hex() + "\n")
        return cls(master)

    # --- encryption at rest ------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, context: str) -> str:
        """AES-256-GCM with a random nonce; ``context`` (e.g. "totp:alice") is bound as associated data,
        so a ciphertext copied to another row does not decrypt there."""
        aead = need("cryptography.hazmat.primitives.ciphers.aead")
        nonce = secrets.token_bytes(12)
        sealed = aead.AESGCM(self._encryption).encrypt(nonce, plaintext, context.encode())
        return "v1:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, text: str, context: str) -> bytes:
        aead = need("cryptography.hazmat.primitives.ciphers.aead")
        exceptions = need("cryptography.exceptions")
        if not text.startswith("v1:"):
            raise ConfigError("an encrypted value has an unknown format")
        raw = base64.urlsafe_b64decode(text[3:].encode("ascii"))
        try:
            result: bytes = aead.AESGCM(self._encryption).decrypt(raw[:12], raw[12:], context.encode())
        except exceptions.InvalidTag as exc:
            raise ConfigError(
                "an encrypted value does not decrypt with this service key "
                "(wrong key file, or the value was altered)"
            ) from exc
        return result
