"""qemu-guest-agent: installed, enabled, and the RPC filter as the daemon would actually apply it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import denied_reader
from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FileStat, InstalledPackage
from vmsec.parsers.guest_agent import parse_arguments, parse_config, read_guest_agent
from vmsec.parsers.system._common import Inputs

GUESTS = Path(__file__).resolve().parents[1] / "data" / "guests"
AGENT = (InstalledPackage(name="qemu-guest-agent", version="1:7.2", manager="dpkg"),)
# 10.0: -c and allow-rpcs exist
AGENT10 = (InstalledPackage(name="qemu-guest-agent", version="1:10.0.2+ds-2", manager="dpkg"),)


def root(base: Path, files: dict[str, str], links: dict[str, str] | None = None) -> RootReader:
    for name, text in files.items():
        path = base / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name, target in (links or {}).items():
        path = base / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return RootReader(str(base))


def test_debian_default_blocks_nothing_and_ignores_sysv_defaults_under_systemd() -> None:
    setup = read_guest_agent(RootReader(str(GUESTS / "debian12")), AGENT)
    assert (setup.installed, setup.enabled, setup.blocked_rpcs, setup.allowed_rpcs) == (True, True, (), None)
    assert setup.guest_exec_allowed is True  # /etc/default's --block-rpcs is not read by the unit


def test_rhel_environment_file_blacklist() -> None:
    setup = read_guest_agent(RootReader(str(GUESTS / "alma9")),
                             (InstalledPackage(name="qemu-guest-agent", version="17:8.2.0", manager="rpm"),))
    assert setup.enabled is True
    assert "guest-exec" in setup.blocked_rpcs and "guest-file-write" in setup.blocked_rpcs
    assert setup.guest_exec_allowed is False
    assert "/etc/sysconfig/qemu-ga" in setup.origin


def test_alpine_openrc_runlevel() -> None:
    setup = read_guest_agent(RootReader(str(GUESTS / "alpine320")),
                             (InstalledPackage(name="qemu-guest-agent", version="9.0.2-r1", manager="apk"),))
    assert (setup.enabled, setup.blocked_rpcs, setup.guest_exec_allowed) == (True, (), True)


def test_not_installed(tmp_path: Path) -> None:
    assert read_guest_agent(RootReader(str(tmp_path)), ()).installed is False


def test_binary_without_package_database(tmp_path: Path) -> None:
    reader = root(tmp_path, {"/usr/bin/qemu-ga": ""})
    setup = read_guest_agent(reader, None)
    assert setup.installed is True and setup.enabled is None


def test_config_file_lists_and_allow_list(tmp_path: Path) -> None:
    reader = root(tmp_path, {"/etc/qemu/qemu-ga.conf": "[general]\nallow-rpcs=guest-ping,guest-info\n"})
    setup = read_guest_agent(reader, AGENT10)
    assert setup.allowed_rpcs == ("guest-ping", "guest-info")
    assert setup.guest_exec_allowed is False


def test_dropin_exec_start_adds_to_the_config_file(tmp_path: Path) -> None:
    unit = "[Service]\nExecStart=-/usr/sbin/qemu-ga\n"
    dropin = "[Service]\nExecStart=\nExecStart=/usr/sbin/qemu-ga -b guest-exec,guest-exec-status\n"
    reader = root(tmp_path, {"/lib/systemd/system/qemu-guest-agent.service": unit,
                             "/etc/systemd/system/qemu-guest-agent.service.d/harden.conf": dropin,
                             "/etc/qemu/qemu-ga.conf": "[general]\nblock-rpcs=guest-file-open\n"})
    setup = read_guest_agent(reader, AGENT)
    assert setup.blocked_rpcs == ("guest-file-open", "guest-exec", "guest-exec-status")
    assert setup.enabled is False  # a unit, but no wants link, udev rule or runlevel


def test_masked_unit_is_disabled(tmp_path: Path) -> None:
    reader = root(tmp_path, {"/lib/systemd/system/qemu-guest-agent.service": "[Service]\nExecStart=/x\n"},
                  {"/etc/systemd/system/qemu-guest-agent.service": "/dev/null"})
    assert read_guest_agent(reader, AGENT).enabled is False


def test_argument_forms() -> None:
    assert parse_arguments(["--block-rpcs=a,b", "-b", "c", "-ad", "--allow-rpcs", "e", "-c", "/x.conf"]) == (
        ("a", "b", "c"), ("d", "e"), "/x.conf")
    assert parse_arguments(["--blacklist=guest-exec", "-m", "virtio-serial"], "1:7.2") == (
        ("guest-exec",), None, None)
    with pytest.raises(ValueError, match="no option --blacklist"):  # removed in 9.1
        parse_arguments(["--blacklist=guest-exec"])


def test_config_other_sections_ignored() -> None:
    assert parse_config("[other]\nblock-rpcs=x\n[general]\nblacklist=y,z\n").general == {"blacklist": "y,z"}


class DeniedReader(denied_reader.DeniedReader):
    """… and the ``denied`` paths cannot be examined either."""

    def stat(self, path: str, follow: bool = True) -> FileStat:
        if path in self.denied:
            return FileStat(path=path, exists=None, error="Permission denied")
        return super().stat(path, follow)


DROPDIR = "/etc/systemd/system/qemu-guest-agent.service.d"
# qemu-ga.conf blocks everything; a root-only drop-in points qemu-ga at a configuration that blocks nothing
UNIT = {"/lib/systemd/system/qemu-guest-agent.service": "[Service]\nExecStart=/usr/sbin/qemu-ga\n"}
OPEN = "[Service]\nExecStart=\nExecStart=/usr/sbin/qemu-ga -c /etc/qemu/open.conf\n"
HARDENED = {**UNIT,
            "/etc/qemu/qemu-ga.conf": "[general]\nblock-rpcs=guest-exec,guest-file-open\n",
            "/etc/qemu/open.conf": "[general]\n",
            f"{DROPDIR}/50-open.conf": OPEN}


def test_a_dropin_directory_that_cannot_be_listed_is_unread_not_absent(tmp_path: Path) -> None:
    root(tmp_path, HARDENED)
    assert read_guest_agent(RootReader(str(tmp_path)), AGENT10).guest_exec_allowed is True  # read in full
    inputs = Inputs()
    setup = read_guest_agent(DeniedReader(tmp_path, DROPDIR), AGENT10, errors=inputs)
    assert setup.guest_exec_allowed is False  # what could be read: the hardened qemu-ga.conf
    assert inputs.unread == (f"{DROPDIR}: Permission denied",)


def test_an_unreadable_dropin_is_unread_and_the_rest_is_kept(tmp_path: Path) -> None:
    root(tmp_path, HARDENED)
    inputs = Inputs()
    setup = read_guest_agent(DeniedReader(tmp_path, f"{DROPDIR}/50-open.conf"), AGENT10, errors=inputs)
    assert setup.blocked_rpcs == ("guest-exec", "guest-file-open")
    assert inputs.unread == (f"{DROPDIR}/50-open.conf: Permission denied",)
    assert [(p.source, p.kind) for p in inputs] == [(f"{DROPDIR}/50-open.conf", ErrorKind.DENIED)]


def test_a_fifo_dropin_is_unread_not_opened(tmp_path: Path) -> None:
    root(tmp_path, {k: v for k, v in HARDENED.items() if not k.startswith(DROPDIR)})
    (tmp_path / DROPDIR.lstrip("/")).mkdir(parents=True)
    os.mkfifo(tmp_path / DROPDIR.lstrip("/") / "50-open.conf")
    inputs = Inputs()
    setup = read_guest_agent(RootReader(str(tmp_path)), AGENT, errors=inputs)
    assert setup.blocked_rpcs == ("guest-exec", "guest-file-open")
    assert [u.split(":")[0] for u in inputs.unread] == [f"{DROPDIR}/50-open.conf"]


def test_an_unreadable_config_file_is_unread_and_the_command_line_kept(tmp_path: Path) -> None:
    root(tmp_path, {"/lib/systemd/system/qemu-guest-agent.service":
                    "[Service]\nExecStart=/usr/sbin/qemu-ga -b guest-exec\n",
                    "/etc/qemu/qemu-ga.conf": "[general]\nallow-rpcs=guest-ping\n"})
    inputs = Inputs()
    setup = read_guest_agent(DeniedReader(tmp_path, "/etc/qemu/qemu-ga.conf"), AGENT, errors=inputs)
    assert (setup.blocked_rpcs, setup.allowed_rpcs) == (("guest-exec",), None)
    assert inputs.unread == ("/etc/qemu/qemu-ga.conf: Permission denied",)


def test_an_unexaminable_unit_file_above_the_vendor_one_is_unread(tmp_path: Path) -> None:
    unit = "/etc/systemd/system/qemu-guest-agent.service"
    root(tmp_path, {**HARDENED, unit: "[Service]\nExecStart=/usr/sbin/qemu-ga\n"})
    inputs = Inputs()
    read_guest_agent(DeniedReader(tmp_path, unit), AGENT, errors=inputs)
    assert inputs.unread[0] == f"{unit}: Permission denied"


def test_config_lines_past_the_cap_are_unread_not_absent(tmp_path: Path) -> None:
    root(tmp_path, {"/etc/qemu/qemu-ga.conf": "#\n" * 5000 + "[general]\nblock-rpcs=guest-exec\n"})
    inputs = Inputs()
    setup = read_guest_agent(RootReader(str(tmp_path)), AGENT, errors=inputs)
    assert setup.blocked_rpcs == ()
    assert inputs.unread == ("/etc/qemu/qemu-ga.conf: more than 5000 lines; the rest was not read",)


def test_a_wants_directory_that_cannot_be_listed_leaves_enabled_unknown(tmp_path: Path) -> None:
    root(tmp_path, {**UNIT, "/etc/systemd/system/multi-user.target.wants/.keep": ""})
    assert read_guest_agent(RootReader(str(tmp_path)), AGENT).enabled is False
    inputs = Inputs()
    setup = read_guest_agent(DeniedReader(tmp_path, "/etc/systemd/system"), AGENT, errors=inputs)
    assert setup.enabled is None  # a wants link may be there
    # recorded, but not an input of the RPC filter: whether it starts at boot does not decide 135/136
    assert inputs.unread == ()
    assert [(p.source, p.kind) for p in inputs] == [("/etc/systemd/system", ErrorKind.DENIED)]


def test_a_wants_link_that_cannot_be_examined_leaves_enabled_unknown(tmp_path: Path) -> None:
    link = "/etc/systemd/system/multi-user.target.wants/qemu-guest-agent.service"
    root(tmp_path, UNIT, {link: "/lib/systemd/system/qemu-guest-agent.service"})
    assert read_guest_agent(DeniedReader(tmp_path, link), AGENT).enabled is None


def test_an_agent_binary_that_cannot_be_examined_is_not_a_missing_one(tmp_path: Path) -> None:
    # no package database and /usr/bin/qemu-ga out of sight: "not installed" would rest on what was not seen
    with pytest.raises(ReadError):
        read_guest_agent(DeniedReader(tmp_path, "/usr/bin/qemu-ga"), None)
    assert read_guest_agent(RootReader(str(tmp_path)), None).installed is False
