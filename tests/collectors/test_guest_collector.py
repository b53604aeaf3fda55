"""collect_guest on real roots: the checked-in Debian, Alma and Alpine roots, a hostile root, this
machine's own root, and the host inventory's host_os."""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import pytest

from vmsec.collectors.guest import collect_guest, upstream_version
from vmsec.collectors.host import collect_host_inventory
from vmsec.collectors.reader import RootReader
from vmsec.facts import Guest

GUESTS = Path(__file__).resolve().parents[1] / "data" / "guests"
# Fields no root-directory collector fills: the disk comes from the image collector, the rest later.
# runtime (what runs) exists only for a running system: tests/collectors/test_runtime_collector.py
NOT_FROM_A_ROOT = {"domain", "consistency_note", "disk", "vulnerabilities", "running_kernel", "runtime"}


def collect(root: Path) -> tuple[Guest, list[str]]:
    guest, records = collect_guest(RootReader(str(root)), name=root.name, origin=str(root))
    return guest, [f"{r.source}: {r.what}: {r.reason}" for r in records if not r.ok]


@pytest.mark.parametrize("name", ["debian12", "alma9", "alpine320"])
def test_checked_in_roots_fill_every_field_without_errors(name: str) -> None:
    guest, failures = collect(GUESTS / name)
    assert failures == []
    unknown = [name for name in guest.__struct_fields__
               if getattr(guest, name) is None and name not in NOT_FROM_A_ROOT]
    assert unknown == []


def test_debian_root_facts() -> None:
    guest, _ = collect(GUESTS / "debian12")
    assert guest.os is not None and guest.os.id == "debian"
    assert guest.sshd_installed is True
    assert guest.sshd is not None and guest.sshd.version == "9.2p1"
    assert guest.sshd.value("passwordauthentication") == "yes"  # from the cloud-init drop-in
    assert guest.cloud_init is not None and guest.cloud_init.ssh_pwauth is True
    assert guest.guest_agent is not None and guest.guest_agent.guest_exec_allowed is True
    shadow = {s.name: s for s in guest.shadow or ()}
    assert shadow["alice"].hash_algorithm == "yescrypt"
    assert shadow["legacy"].hash_algorithm == "md5" and shadow["legacy"].origin == "/etc/passwd:10"
    assert {k.user for k in guest.authorized_keys or ()} == {"root", "debian", "alice"}
    assert guest.login_defs is not None and guest.login_defs["ENCRYPT_METHOD"] == "SHA512"
    sshd_pam = next(s for s in guest.pam or () if s.service == "sshd")
    assert any(line.module == "pam_unix.so" and "nullok" in line.args for line in sshd_pam.lines)


def test_alma_and_alpine_roots_facts() -> None:
    alma, _ = collect(GUESTS / "alma9")
    assert alma.sshd is not None and alma.sshd.version == "8.7p1"
    assert [a.name for a in alma.accounts or () if a.uid == 0] == ["root", "toor"]
    assert alma.guest_agent is not None and alma.guest_agent.guest_exec_allowed is False
    # sshd_config names only .ssh/authorized_keys: the authorized_keys2 next to it is not a login key
    assert [k.path for k in alma.authorized_keys or ()] == ["/home/almalinux/.ssh/authorized_keys"]
    alpine, _ = collect(GUESTS / "alpine320")
    assert alpine.sshd is not None and alpine.sshd.version == "9.7p1"
    assert alpine.pam == () and alpine.login_defs == {}
    root = next(s for s in alpine.shadow or () if s.name == "root")
    assert root.empty is True  # CVE-2019-5021 shape


def test_no_sshd_package_and_no_binary_means_not_installed(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(
        "Package: bash\nStatus: install ok installed\nVersion: 5.2-1\n")
    guest, _ = collect(tmp_path)
    assert (guest.sshd_installed, guest.sshd) == (False, None)


@pytest.mark.parametrize(("version", "manager", "upstream"), [
    ("1:9.2p1-2+deb12u3", "dpkg", "9.2p1"), ("1:8.9p1-3ubuntu0.10", "dpkg", "8.9p1"),
    ("8.7p1-38.el9_4.4", "rpm", "8.7p1"), ("9.7_p1-r4", "apk", "9.7p1"), ("9.6p1", "dpkg", "9.6p1"),
])
def test_upstream_version(version: str, manager: str, upstream: str) -> None:
    assert upstream_version(version, manager) == upstream


@pytest.fixture()
def hostile_root(tmp_path: Path) -> Path:
    root = tmp_path / "hostile"
    shutil.copytree(GUESTS / "debian12", root, symlinks=True)
    secret = tmp_path / "scanner-shadow"
    secret.write_text("sentinel:$6$SCANNERSECRET$x:19000::::::\n")
    (root / "etc/shadow").unlink()
    (root / "etc/shadow").symlink_to(secret)  # absolute, out of the root
    (root / "etc/gshadow").symlink_to("/etc/shadow")  # the scanner's own path name
    with open(root / "etc/passwd", "r+b") as f:
        f.truncate(10 * 1024**3)  # sparse 10 GB
    (root / "etc/sudoers").write_bytes(b"\x7fELF\x00\x01" + random.Random(7).randbytes(8192))
    (root / "etc/pam.d/sshd").unlink()
    os.mkfifo(root / "etc/pam.d/sshd")
    (root / "etc/pam.d/common-auth").write_text("@include other\nauth required pam_unix.so\n")
    (root / "etc/os-release").unlink()
    (root / "etc/os-release").symlink_to("../../../../../../../../etc/os-release")  # clamps to the root
    (root / "usr/lib/os-release").unlink()
    return root


@pytest.mark.timeout(20)
def test_hostile_root_is_bounded_and_every_failure_recorded(hostile_root: Path) -> None:
    started = time.monotonic()
    guest, records = collect_guest(RootReader(str(hostile_root)), name="hostile", origin=str(hostile_root))
    assert time.monotonic() - started < 5
    failed = {(r.source, r.what): r.reason or "" for r in records if not r.ok}
    # the symlink to the scanner's /etc/shadow resolves inside the root, where nothing is: absent
    assert guest.shadow is None
    assert any(r.source == "/etc/shadow" and (r.reason or "").startswith("absent") for r in records)
    assert "SCANNERSECRET" not in repr(guest) and "sentinel" not in repr(guest)
    assert guest.accounts is None and "limit" in failed[("/etc/passwd", "user accounts")]
    assert guest.authorized_keys is None
    assert guest.pam is None and "fifo" in failed[("/etc/pam.d/sshd", "PAM configuration")]
    # sudo 1.9 reads a binary sudoers line by line; every line vmsec cannot parse is unread (the
    # sudo checks then say UNKNOWN), and no garbage line grants anything without a password
    assert guest.sudoers is not None and guest.sudoers.unread
    assert not any(rule.nopasswd for rule in guest.sudoers.rules)
    assert any(source.startswith("/etc/sudoers") and what == "sudoers" for source, what in failed)
    assert guest.os is None and ("/etc/os-release", "os-release") in failed
    # the rest of the facts are still collected
    assert guest.packages is not None and guest.sshd is not None and guest.cloud_init is not None


def test_pam_loop_is_recorded_but_stack_kept(tmp_path: Path) -> None:
    root = tmp_path / "r"
    shutil.copytree(GUESTS / "debian12", root, symlinks=True)
    (root / "etc/pam.d/common-auth").write_text("@include sshd\nauth required pam_unix.so\n")
    guest, failures = collect(root)
    assert guest.pam is not None
    assert any("include loop" in f for f in failures)


def test_this_machines_root() -> None:
    started = time.monotonic()
    guest, _ = collect_guest(RootReader("/"), name="self", origin="/")
    assert time.monotonic() - started < 10
    assert guest.os is not None and guest.accounts is not None
    assert any(a.name == "root" and a.uid == 0 for a in guest.accounts)


def test_host_inventory_carries_the_host_os(tmp_path: Path) -> None:
    root = tmp_path / "host"
    shutil.copytree(GUESTS / "debian12", root, symlinks=True)
    inventory = collect_host_inventory(str(root))
    assert inventory.host_os is not None
    assert inventory.host is not None and inventory.host_os.name == inventory.host.name
    assert inventory.host_os.os is not None and inventory.host_os.os.id == "debian"
    assert any(r.what == "host OS: guest OS facts" for r in inventory.records)
    # the copied root has no /etc/shadow: the host OS's hashes are unknown, and the record says so
    (root / "etc/shadow").unlink()
    inventory = collect_host_inventory(str(root))
    assert inventory.host_os is not None and inventory.host_os.shadow is None
    # a missing file is a fact (unknown hashes), not an unreadable input: the scan stays complete
    assert not inventory.errors
    assert [(r.source, r.what, r.ok) for r in inventory.records if r.source == "/etc/shadow"] == [
        ("/etc/shadow", "host OS: password hashes", True)]


def test_live_host_os_knows_its_running_kernel() -> None:
    inventory = collect_host_inventory("/")
    assert inventory.host_os is not None
    assert inventory.host_os.running_kernel == os.uname().release


def test_root_without_os_release_has_no_host_os(tmp_path: Path) -> None:
    (tmp_path / "etc/libvirt").mkdir(parents=True)
    inventory = collect_host_inventory(str(tmp_path))
    assert inventory.host_os is None
    host_os_records = [(r.what, r.ok) for r in inventory.records if r.what.startswith("host OS")]
    assert host_os_records == [("host OS facts", True)]
