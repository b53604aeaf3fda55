"""sshd Include wildcards are bounded per configuration, not per pattern: a directory of symlinks to
itself makes every ``*`` level of ``/d/*/*/*.conf`` list it again, and each Include line started over.
One budget covers every Include line; what it cuts off is named in ``SshdConfig.unread`` with a
problem naming the Include line, and the rest of the configuration is still read."""

from __future__ import annotations

import os
from pathlib import Path

from vmsec.collectors.reader import DEFAULT_LIST_LIMIT, RootReader
from vmsec.errors import ErrorKind, Problems
from vmsec.facts import FileStat
from vmsec.parsers.sshd_config import MAX_FILES, MAX_GLOB_WORK, read_sshd_config

MAIN = "/etc/ssh/sshd_config"


class CountingReader(RootReader):
    """Counts directory entries listed and paths examined, and stops a run-away expansion."""

    def __init__(self, root: Path, bound: int) -> None:
        super().__init__(str(root))
        self.work = 0
        self.bound = bound
        self.listed: dict[str, int] = {}

    def _spend(self, amount: int) -> None:
        self.work += amount
        if self.work > self.bound:
            raise AssertionError(f"more than {self.bound} entries listed and paths examined")

    def listdir(self, path: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]:
        self.listed[path] = self.listed.get(path, 0) + 1
        names = super().listdir(path, limit)
        self._spend(1 + len(names))
        return names

    def stat(self, path: str, follow: bool = True) -> FileStat:
        self._spend(1)
        return super().stat(path, follow)


def symlink_maze(root: Path, entries: int, includes: int) -> None:
    """/d holds ``entries`` symlinks to itself; sshd_config has ``includes`` lines ``/d/*/*/*.cN``."""
    (root / "d").mkdir(parents=True)
    for i in range(entries):
        os.symlink(".", root / "d" / f"x{i}")
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/ssh/sshd_config").write_text(
        "PermitRootLogin no\n" + "".join(f"Include /d/*/*/*.c{i}\n" for i in range(includes)))


def test_include_wildcards_share_one_budget_and_the_cut_is_unread(tmp_path: Path) -> None:
    symlink_maze(tmp_path, entries=MAX_FILES + 44, includes=10)
    reader = CountingReader(tmp_path, bound=2 * MAX_GLOB_WORK)  # before: ~230,000 per line
    problems = Problems()
    config = read_sshd_config(reader, version="9.2p1", distro="debian", problems=problems)
    assert reader.work <= MAX_GLOB_WORK + MAX_FILES + 10
    lines = [f"{MAIN}:{n}" for n in range(2, 12)]
    assert [u.split(": ", 1)[0] for u in config.unread] == lines  # each Include line, named
    assert all("was not expanded in full" in u for u in config.unread)
    assert [(p.source, p.kind) for p in problems] == [(line, ErrorKind.TOO_LARGE) for line in lines]
    assert config.value("permitrootlogin") == "no"  # the rest of the configuration was read


def test_a_level_over_the_file_cap_stops_and_is_unread(tmp_path: Path) -> None:
    symlink_maze(tmp_path, entries=MAX_FILES + 44, includes=1)
    (tmp_path / "etc/ssh/sshd_config").write_text("Include /d/*/x0/nothing\n")
    reader = CountingReader(tmp_path, bound=2 * MAX_GLOB_WORK)
    config = read_sshd_config(reader, version="9.2p1")
    # one listing of /d, and one stat per directory kept (not per entry of the level)
    assert reader.work <= (1 + MAX_FILES + 44) + 2 * (MAX_FILES + 1) + 10
    assert config.unread == (f"{MAIN}:1: Include /d/*/x0/nothing matches more than {MAX_FILES} paths; "
                             "the files beyond were not read",)


def test_a_pattern_repeated_is_expanded_once(tmp_path: Path) -> None:
    (tmp_path / "etc/ssh/sshd_config.d").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config.d/a.conf").write_text("X11Forwarding yes\n")
    (tmp_path / "etc/ssh/sshd_config").write_text("Include sshd_config.d/*.conf\n" * 50)
    reader = CountingReader(tmp_path, bound=MAX_GLOB_WORK)
    config = read_sshd_config(reader, version="9.2p1")
    assert reader.listed == {"/etc/ssh/sshd_config.d": 1}
    assert config.value("x11forwarding") == "yes" and config.unread == ()


def test_normal_includes_are_unchanged(tmp_path: Path) -> None:
    (tmp_path / "etc/ssh/sshd_config.d").mkdir(parents=True)
    for name, text in {"10-a.conf": "PermitRootLogin no\n", "20-b.conf": "PermitRootLogin yes\n",
                       ".hidden.conf": "MaxAuthTries 1\n", "30-c.txt": "MaxSessions 1\n"}.items():
        (tmp_path / "etc/ssh/sshd_config.d" / name).write_text(text)
    (tmp_path / "etc/ssh/sshd_config").write_text("Include /etc/ssh/sshd_config.d/*.conf\n")
    config = read_sshd_config(RootReader(str(tmp_path)), version="9.2p1")
    assert config.files == (MAIN, "/etc/ssh/sshd_config.d/10-a.conf", "/etc/ssh/sshd_config.d/20-b.conf")
    assert config.value("permitrootlogin") == "no" and config.unread == ()
