"""qemu-guest-agent: installed, enabled, and the RPC filter as the daemon would actually apply it."""

from __future__ import annotations

from pathlib import Path

from vmsec.collectors.reader import RootReader
from vmsec.facts import InstalledPackage
from vmsec.parsers.guest_agent import parse_arguments, parse_config, read_guest_agent

GUESTS = Path(__file__).resolve().parents[1] / "data" / "guests"
AGENT = (InstalledPackage(name="qemu-guest-agent", version="1:7.2", manager="dpkg"),)


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
    reader = root(tmp_path, {"/etc/qemu/qemu-ga.conf": "[general]\nallow-rpcs=guest-ping;guest-info;\n"})
    setup = read_guest_agent(reader, AGENT)
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
    assert parse_arguments(["--blacklist=guest-exec", "-m", "virtio-serial"]) == (("guest-exec",), None, None)


def test_config_other_sections_ignored() -> None:
    assert parse_config("[other]\nblock-rpcs=x\n[general]\nblacklist=y,z\n") == (("y", "z"), None)
