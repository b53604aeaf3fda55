"""Hostile guest roots and images that once made a scan hang or exhaust memory (issue 9).

Each builder writes a few KB to a few hundred KB of guest content under ``root`` and returns the path
to scan. They are shared by the tests (tests/test_hostile_guests.py: bounded results, records with
their kind) and by ``benchmarks/bench_hostile.py`` (time and peak RSS of a whole scan process).

Sizes are parameters so a test can use a smaller instance of the same shape; the defaults are the
sizes the issue measured.
"""

from __future__ import annotations

import base64
import os
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

ED25519_BLOB_PREFIX = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"


def _base(root: Path) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Hostile"\n')
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/shadow").write_text("root:!:19000:0:99999:7:::\n")
    (root / "etc/group").write_text("root:x:0:\n")
    # an OpenSSH server, so the SSH checks apply as on a real guest
    (root / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: openssh-server\nStatus: install ok installed\nSource: openssh\n"
        "Version: 1:9.2p1-2+deb12u3\nArchitecture: amd64\n\n")
    (root / "etc/ssh").mkdir(exist_ok=True)
    (root / "etc/ssh/sshd_config").write_text("UsePAM yes\nPasswordAuthentication no\n")


def sudoers_repeated_includedir(root: Path, repeats: int = 20_000, files: int = 200) -> Path:
    """/etc/sudoers naming the same include directory ``repeats`` times (sudo reads it each time);
    the directory holds ``files`` small rule files."""
    _base(root)
    (root / "etc/sudoers").write_text("Defaults env_reset\nroot ALL=(ALL) ALL\n"
                                      + "@includedir /etc/sudoers.d\n" * repeats)
    directory = root / "etc/sudoers.d"
    directory.mkdir()
    for i in range(files):
        (directory / f"rule{i:04d}").write_text(f"user{i} ALL=(ALL) /usr/bin/true\n")
    return root


def sudoers_self_including_dir(root: Path, files: int = 1_000) -> Path:
    """/etc/sudoers.d with ``files`` files that each include their own directory again."""
    _base(root)
    (root / "etc/sudoers").write_text("root ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n")
    directory = root / "etc/sudoers.d"
    directory.mkdir()
    for i in range(files):
        (directory / f"loop{i:04d}").write_text("@includedir /etc/sudoers.d\n")
    return root


def _ed25519_line(i: int) -> str:
    blob = ED25519_BLOB_PREFIX + i.to_bytes(32, "big")
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} key{i}\n"


def shared_home_authorized_keys(root: Path, accounts: int = 1_000, keys: int = 1_000) -> Path:
    """``accounts`` accounts that share one home directory whose authorized_keys holds ``keys`` keys."""
    _base(root)
    lines = ["root:x:0:0:root:/root:/bin/bash\n"]
    lines += [f"u{i}:x:{1000 + i}:{1000 + i}::/home/shared:/bin/sh\n" for i in range(accounts)]
    (root / "etc/passwd").write_text("".join(lines))
    ssh = root / "home/shared/.ssh"
    ssh.mkdir(parents=True)
    (ssh / "authorized_keys").write_text("".join(_ed25519_line(i) for i in range(keys)))
    return root


def cloud_init_dropins(root: Path, files: int = 200, size: int = 512 * 1024) -> Path:
    """``files`` cloud.cfg.d drop-ins of ``size`` bytes of valid YAML each (a long list of mappings)."""
    _base(root)
    cloud = root / "etc/cloud"
    (cloud / "cloud.cfg.d").mkdir(parents=True)
    (cloud / "cloud.cfg").write_text("disable_root: true\nssh_pwauth: false\n")
    item = "- {name: someone, groups: [adm, sudo], shell: /bin/bash, lock_passwd: true}\n"
    body = f"write_files_{'x'}:\n" + item * (size // len(item))
    for i in range(files):
        (cloud / "cloud.cfg.d" / f"{i:03d}-big.cfg").write_text(body.replace("write_files_x", f"key{i}"))
    return root


# QEMU refuses an active L1 table over 32 MiB (block/qcow2.h QCOW_MAX_L1_SIZE).
QEMU_MAX_L1_BYTES = 32 * 1024 * 1024


def qcow2_inflated_l1(root: Path, l1_entries: int = 180_000_000) -> Path:
    """A small qcow2 (made by qemu-img) whose header claims an L1 table of ``l1_entries`` entries,
    made a sparse file large enough that the table "fits": a few hundred KB on disk."""
    root.mkdir(parents=True, exist_ok=True)
    image = root / "inflated-l1.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    with open(image, "r+b") as fh:
        head = fh.read(48)
        (l1_offset,) = struct.unpack_from(">Q", head, 40)
        fh.seek(36)
        fh.write(struct.pack(">I", l1_entries))
    os.truncate(image, l1_offset + l1_entries * 8 + 65536)  # sparse: no blocks allocated
    return image


def sshd_include_maze(root: Path, links: int = 4_000, lines: int = 10) -> Path:
    """A directory of ``links`` symbolic links to itself and ``lines`` sshd ``Include`` wildcards
    three levels deep through it (220 bytes of sshd_config: every level multiplies the names)."""
    _base(root)
    maze = root / "d"
    maze.mkdir()
    for i in range(links):
        (maze / f"x{i}").symlink_to(".")
    (root / "etc/ssh/sshd_config").write_text(
        "".join(f"Include /d/*/*/*.c{i}\n" for i in range(lines)) + "UsePAM yes\n")
    return root


def authorized_keys_file_product(root: Path, accounts: int = 10_000, entries: int = 3_000) -> Path:
    """``accounts`` accounts and an ``AuthorizedKeysFile`` of ``entries`` names (20 KB): every name is
    a path for every account."""
    _base(root)
    lines = ["root:x:0:0:root:/root:/bin/bash\n"]
    lines += [f"u{i}:x:{1000 + i}:{1000 + i}::/home/u{i}:/bin/sh\n" for i in range(accounts)]
    (root / "etc/passwd").write_text("".join(lines))
    names = " ".join(f".k{i}" for i in range(entries))
    (root / "etc/ssh/sshd_config").write_text(f"AuthorizedKeysFile {names}\nUsePAM yes\n")
    return root


def sudoers_alias_chain(root: Path, levels: int = 10, fanout: int = 10) -> Path:
    """``User_Alias A0 = A1 ×fanout``, A1 = A2 ×fanout … and an empty last alias: 558 bytes whose
    naive expansion takes fanout**levels steps (a cap on the names found never triggers: there are
    none)."""
    _base(root)
    aliases = [f"User_Alias A{i} = " + ",".join([f"A{i + 1}"] * fanout) for i in range(levels - 1)]
    aliases.append(f"User_Alias A{levels - 1} =")
    (root / "etc/sudoers").write_text("\n".join(aliases) + "\nA0 ALL=(ALL) NOPASSWD: ALL\n")
    return root


def apt_unclosed_comments(root: Path, comments: int = 40_000) -> Path:
    """An apt.conf.d file of ``comments`` unclosed ``/*`` (120 KB): a lazy ``/\\*.*?\\*/`` scanned to
    the end from each of them."""
    _base(root)
    (root / "etc/apt/apt.conf.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/apt.conf.d/50hostile").write_text("/* " * comments)
    return root


def nft_repeated_input_hooks(root: Path, hooks: int = 4_000) -> Path:
    """/etc/nftables.conf: one unclosed table with ``hooks`` input hook lines (92 KB); every hook was
    walked character by character to the end of its block."""
    _base(root)
    (root / "etc/nftables.conf").write_text("table inet f {\n" + "type filter hook input\n" * hooks)
    return root


def rsyslog_many_actions(root: Path, actions: int = 32_000) -> Path:
    """A 1 MiB /etc/rsyslog.conf of forwarding actions (rsyslog installed); each match's line was once
    counted from the start."""
    _base(root)
    (root / "usr/sbin").mkdir(parents=True, exist_ok=True)
    (root / "usr/sbin/rsyslogd").write_bytes(b"\x7fELF")
    (root / "lib/systemd/system").mkdir(parents=True, exist_ok=True)
    (root / "lib/systemd/system/rsyslog.service").write_text("[Service]\nExecStart=/usr/sbin/rsyslogd -n\n"
                                                             "[Install]\nWantedBy=multi-user.target\n")
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True, exist_ok=True)
    os.symlink("/lib/systemd/system/rsyslog.service",
               root / "etc/systemd/system/multi-user.target.wants/rsyslog.service")
    (root / "etc/rsyslog.conf").write_text('action(type="omfwd" target="h")\n' * actions)
    return root


def qcow2_sparse_exabyte_chain(root: Path, depth: int = 16) -> Path:
    """A chain of ``depth`` sparse qcow2 images of 1 EiB each with 2 MiB clusters: a few KiB on disk,
    a 16 MiB L1 table per layer (each layer within QEMU's own limits)."""
    root.mkdir(parents=True, exist_ok=True)
    previous: Path | None = None
    for n in range(depth):
        image = root / f"c{n}.qcow2"
        backing = ["-b", previous.name, "-F", "qcow2"] if previous is not None else []
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", *backing,
                        str(image), "1E"], check=True)
        previous = image
    assert previous is not None
    return previous


def deb822_uris_times_suites(root: Path, uris: int = 3_000, suites: int = 3_000) -> Path:
    """One 80 KB deb822 stanza of ``uris`` URIs and ``suites`` suites: every pair was built as a
    source before the cap (9 million: 7.8 s and 1.4 GB)."""
    _base(root)
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list.d/x.sources").write_text(
        "Types: deb\nURIs: " + " ".join(f"http://m{n}.example/d" for n in range(uris))
        + "\nSuites: " + " ".join(f"s{n}" for n in range(suites)) + "\nComponents: main\n")
    return root


def sysctl_many_glob_keys(root: Path, files: int = 3, keys: int = 20_000) -> Path:
    """``files`` sysctl.d files of ``keys`` distinct glob keys (≈ 700 KB each): every lookup ran
    fnmatch over every glob with its cache thrashed (76 s a scan)."""
    _base(root)
    (root / "etc/sysctl.d").mkdir(parents=True, exist_ok=True)
    for f in range(files):
        (root / f"etc/sysctl.d/{60 + f}-g.conf").write_text(
            "".join(f"net.ipv4.conf.g{f}x{n}*.send_redirects = 0\n" for n in range(keys)))
    return root


def apt_pins_times_packages(root: Path, packages: int = 3_000, pins: int = 2_000) -> Path:
    """An unattended-upgrades guest of ``packages`` installed packages with ``pins`` glob pins naming
    packages (``Package: a*b*c*…``, 120 KB) and the archives' Release files: each pin would be
    matched against each package."""
    _base(root)
    apt = root / "etc/apt"
    (apt / "apt.conf.d").mkdir(parents=True, exist_ok=True)
    (apt / "apt.conf.d/20auto-upgrades").write_text('APT::Periodic::Update-Package-Lists "1";\n'
                                                    'APT::Periodic::Unattended-Upgrade "1";\n')
    (root / "etc/cron.daily").mkdir()
    (root / "etc/cron.daily/apt-compat").write_text("#!/bin/sh\n")  # what starts it without systemd
    (apt / "preferences.d").mkdir()
    (apt / "preferences.d/hostile").write_text("".join(
        f"Package: {'*'.join('abcdefgh')}{n}*\nPin: origin security.debian.org\nPin-Priority: -1\n\n"
        for n in range(pins)))
    (root / "var/lib/dpkg/status").write_text("".join(
        f"Package: {name}\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n\n"
        for name in ["dpkg", "unattended-upgrades", *(f"pkg{n:05d}" for n in range(packages))]))
    lists = root / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "security.debian.org_debian-security_dists_bookworm-security_Release").write_text(
        "Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\n")
    return root


def apt_list_without_blank_lines(root: Path, stanzas: int = 60_000) -> Path:
    """A Debian guest whose APT::Default-Release makes vmsec read the main archive's package list, and
    that list an xz of ``stanzas`` `dpkg` stanzas with no blank line between them (2.7 MB
    decompressed from ≈ 600 bytes): each stanza was searched to the end of the list for its end."""
    import lzma

    apt_pins_times_packages(root, packages=10, pins=0)
    (root / "etc/apt/preferences.d/hostile").unlink()
    (root / "etc/apt/apt.conf.d/01release").write_text('APT::Default-Release "bookworm";\n')
    lists = root / "var/lib/apt/lists"
    (lists / "deb.debian.org_debian_dists_bookworm_Release").write_text(
        "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: bookworm\n")
    body = b"".join(b"Package: dpkg\nVersion: 1.%d\nArchitecture: amd64\n" % n for n in range(stanzas))
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.xz").write_bytes(
        lzma.compress(body))
    return root


CASES: dict[str, Callable[[Path], Path]] = {
    "sudoers-repeated-includedir": sudoers_repeated_includedir,
    "sudoers-self-including-dir": sudoers_self_including_dir,
    "shared-home-authorized-keys": shared_home_authorized_keys,
    "cloud-init-200-dropins": cloud_init_dropins,
    "qcow2-inflated-l1": qcow2_inflated_l1,
    "sshd-include-maze": sshd_include_maze,
    "authorized-keys-file-product": authorized_keys_file_product,
    "sudoers-alias-chain": sudoers_alias_chain,
    "apt-unclosed-comments": apt_unclosed_comments,
    "nft-repeated-input-hooks": nft_repeated_input_hooks,
    "rsyslog-many-actions": rsyslog_many_actions,
    "qcow2-sparse-exabyte-chain": qcow2_sparse_exabyte_chain,
    "deb822-uris-times-suites": deb822_uris_times_suites,
    "sysctl-many-glob-keys": sysctl_many_glob_keys,
    "apt-pins-times-packages": apt_pins_times_packages,
    "apt-list-without-blank-lines": apt_list_without_blank_lines,
}
