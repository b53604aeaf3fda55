"""Self-referencing YAML aliases must not drive cloud-init's recursive merge into unbounded recursion."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, Problems, ReadError
from vmsec.parsers.cloud_init import (
    load_cloud_config,
    merge,
    plaintext_password_places,
    read_cloud_init,
)

CYCLE = "#cloud-config\na: &x {b: *x}\n"


def _root(root: Path, files: dict[str, str]) -> RootReader:
    for name, text in files.items():
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return RootReader(str(root))


def test_merge_of_cyclic_mappings_is_a_clear_error() -> None:
    with pytest.raises(ReadError) as info:
        merge(load_cloud_config(CYCLE), load_cloud_config(CYCLE))
    assert info.value.kind is ErrorKind.TOO_LARGE


def test_hostile_user_data_is_noted_and_skipped(tmp_path: Path) -> None:
    reader = _root(tmp_path, {
        "/etc/cloud/cloud.cfg": CYCLE + "ssh_pwauth: true\n",
        "/var/lib/cloud/instance/user-data.txt": CYCLE,
    })
    problems = Problems()
    setup = read_cloud_init(reader, problems=problems)
    assert setup.ssh_pwauth is True  # the configuration files are still reported
    assert [(p.source, p.kind) for p in problems] == [("/var/lib/cloud/instance/user-data.txt",
                                                       ErrorKind.TOO_LARGE)]


def test_hostile_config_file_is_named(tmp_path: Path) -> None:
    reader = _root(tmp_path, {"/etc/cloud/cloud.cfg": CYCLE, "/etc/cloud/cloud.cfg.d/90-evil.cfg": CYCLE})
    with pytest.raises(ReadError) as info:
        read_cloud_init(reader)
    assert info.value.source == "/etc/cloud/cloud.cfg.d/90-evil.cfg"


LAUGHS = "\n".join(
    ["#cloud-config", "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 12)]
)


@pytest.mark.parametrize("entry", [
    "users: [{name: *l11, plain_text_passwd: secret}]",
    "chpasswd: {users: [{name: *l11, password: secret, type: text}]}",
    "chpasswd: {users: [{name: root, password: secret, type: *l11}]}",
])
def test_alias_bomb_in_names_is_not_stringified(entry: str) -> None:
    """A YAML alias tree is cheap to load but has 9**12 leaves: turning it into text must never happen."""
    import signal

    def too_slow(*_: object) -> None:
        raise TimeoutError("stringified a YAML alias bomb")

    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(5)
    try:
        config = load_cloud_config(LAUGHS + "\n" + entry + "\n")
        places = plaintext_password_places(config, "/etc/cloud/cloud.cfg")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert all(len(p) < 200 for p in places)
    assert places or "type: *l11" in entry  # an unknown (non-text) type is no plaintext password
