"""Where the findings store is: its URL from an option, ``$VMSEC_STORE`` or the default SQLite file,
and the URL as shown in messages (password hidden). Light on purpose: no SQLAlchemy import."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from vmsec.userdirs import user_data_dir

ENV_VAR = "VMSEC_STORE"

__all__ = ["ENV_VAR", "default_store_url", "redact", "resolve_url"]


def default_store_url() -> str:
    """SQLite in the user's data directory (``…/vmsec/history.sqlite``)."""
    path = Path(user_data_dir()) / "history.sqlite"
    return f"sqlite:///{path}"


def resolve_url(url: str | None) -> str:
    """An explicit URL or SQLite file path, else ``$VMSEC_STORE``, else the default SQLite file.

    A value without ``://`` and not starting with ``sqlite:`` is a file path: ``history.sqlite``
    becomes ``sqlite:////abs/path/history.sqlite``.
    """
    value = url or os.environ.get(ENV_VAR) or default_store_url()
    if "://" not in value and not value.startswith("sqlite:"):
        return f"sqlite:///{Path(value).expanduser().absolute()}"
    return value


_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]*@")


def redact(url: str) -> str:
    """The URL with its password hidden, for messages — also a URL that does not parse, so the
    message can still show it."""
    try:
        parts = urlsplit(url)
        if not parts.scheme:
            return _PASSWORD.sub(r"\1***@", url)
        if parts.password is not None:
            user = parts.username or ""
            host = parts.hostname or ""
            if ":" in host:
                host = f"[{host}]"
            netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
        return url
    except ValueError:
        return _PASSWORD.sub(r"\1***@", url)
