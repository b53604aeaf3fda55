"""Where vmsec keeps a user's files: the XDG Base Directory specification, as vmsec runs on Linux.

``$XDG_CONFIG_HOME/vmsec`` (configuration, the service key), ``$XDG_DATA_HOME/vmsec`` (the findings
store), ``$XDG_CACHE_HOME/vmsec`` (the vulnerability database), ``$XDG_STATE_HOME/vmsec/log`` (probe
logs); a variable that is unset or not an absolute path means its default under the home directory.

platformdirs gives the same paths (tests/test_userdirs.py holds them equal, with platformdirs as the
oracle), but importing it costs every vmsec process ≈ 3.6 ms — it imports tempfile, shutil, bz2, lzma
and random for directories vmsec never asks for — and every scan asks for one of these paths: that was
a twentieth of a whole vulnerability scan. Nothing here touches the disk.
"""

from __future__ import annotations

import os

APP = "vmsec"

__all__ = ["user_cache_dir", "user_config_dir", "user_data_dir", "user_log_dir", "user_state_dir"]


def _home() -> str:
    """``$HOME`` when it is absolute, else the account's home directory (as platformdirs does)."""
    home = os.environ.get("HOME", "")
    if not os.path.isabs(home):
        import pwd

        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            home = ""
    if not os.path.isabs(home):
        from vmsec.errors import ConfigError

        raise ConfigError("cannot tell the home directory: set HOME (or the XDG_*_HOME variables) to an "
                          "absolute path")
    return home.rstrip("/") or "/"


def _base(variable: str, default: str) -> str:
    value = os.environ.get(variable, "")
    return value if os.path.isabs(value) else os.path.join(_home(), default)


def user_config_dir() -> str:
    return os.path.join(_base("XDG_CONFIG_HOME", ".config"), APP)


def user_data_dir() -> str:
    return os.path.join(_base("XDG_DATA_HOME", ".local/share"), APP)


def user_cache_dir() -> str:
    return os.path.join(_base("XDG_CACHE_HOME", ".cache"), APP)


def user_state_dir() -> str:
    return os.path.join(_base("XDG_STATE_HOME", ".local/state"), APP)


def user_log_dir() -> str:
    return os.path.join(user_state_dir(), "log")
