"""Where the findings store is: its URL from an option, ``$VMSEC_STORE`` or the default SQLite file,
and the URL as shown in messages (password hidden). Light on purpose: no SQLAlchemy import."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs

ENV_VAR = "VMSEC_STORE"

__all__ = ["ENV_VAR", "default_store_url", "redact", "resolve_url"]


def default_store_url() -> str:
    """SQLite in the user's data directory (``…/vmsec/history.sqlite``)."""
    path = Path(platformdirs.user_data_dir("vmsec", appauthor=False)) / "history.sqlite"
    return f"sqlite:///{path}"


def resolve_url(url: str | None) -> str:
    """An explicit URL, else ``$VMSEC_STORE``, else the default SQLite file."""
    return url or os.environ.get(ENV_VAR) or default_store_url()


def redact(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        parts = urlsplit(url)
        if not parts.scheme:
            return "<invalid store URL>"
        if parts.password is not None:
            user = parts.username or ""
            host = parts.hostname or ""
            if ":" in host:
                host = f"[{host}]"
            netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
        return url
    except ValueError:
        return "<invalid store URL>"
