"""vmsec's user directories are the ones platformdirs gives (the oracle), without importing it."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys

import platformdirs
import pytest

from vmsec import userdirs
from vmsec.errors import ConfigError

ORACLE = {
    "user_config_dir": lambda: platformdirs.user_config_dir("vmsec", appauthor=False),
    "user_data_dir": lambda: platformdirs.user_data_dir("vmsec", appauthor=False),
    "user_cache_dir": lambda: platformdirs.user_cache_dir("vmsec"),
    "user_state_dir": lambda: platformdirs.user_state_dir("vmsec"),
    "user_log_dir": lambda: platformdirs.user_log_dir("vmsec"),
}
XDG = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


@pytest.mark.parametrize("home", ["/home/alice", "/home/alice/", "/", "relative/home", "", None])
@pytest.mark.parametrize("xdg", ["/srv/xdg", "/srv/xdg/", "relative/xdg", "", None])
@pytest.mark.parametrize("name", sorted(ORACLE))
def test_every_directory_is_the_one_platformdirs_gives(monkeypatch: pytest.MonkeyPatch, name: str,
                                                      home: str | None, xdg: str | None) -> None:
    for variable, value in [("HOME", home), *((v, xdg) for v in XDG)]:
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    ours = getattr(userdirs, name)()
    assert ours == ORACLE[name]()
    assert os.path.isabs(ours)


def test_a_home_that_cannot_be_told_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "relative")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", lambda _uid: (_ for _ in ()).throw(KeyError(_uid)))
    with pytest.raises(ConfigError, match="home directory"):
        userdirs.user_config_dir()


def test_a_scan_does_not_import_platformdirs(tmp_path: os.PathLike[str]) -> None:
    # Every scan resolves the configuration file, and a stored scan the store: both without platformdirs.
    code = ("import sys\n"
            "from vmsec.cli.options import default_config_path\n"
            "from vmsec.store.location import default_store_url\n"
            "from vmsec.vulns.db import default_db_path\n"
            "default_config_path(); default_store_url(); default_db_path()\n"
            "print('platformdirs' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
