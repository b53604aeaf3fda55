"""System-configuration parsers over real directory trees: services, package sources, automatic
updates, mounts, audit/logging and firewall (sysctl and hostile inputs have their own files)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components import require
from vmsec.collectors.reader import RootReader
from vmsec.errors import ReadError
from vmsec.facts import InstalledPackage, Service
from vmsec.parsers.system_config import (
    read_audit,
    read_auto_updates,
    read_crypttab,
    read_firewall,
    read_fstab,
    read_repos,
    read_services,
    read_swap_units,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "system"


class Link(str):
    """A symlink target in a tree spec."""


def tree(root: Path, spec: dict[str, str | bytes | Link]) -> RootReader:
    for rel, content in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            os.symlink(str(content), path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return RootReader(str(root))


def sample(*parts: str) -> str:
    return DATA.joinpath(*parts).read_text()


def pkgs(*names: str) -> tuple[InstalledPackage, ...]:
    return tuple(InstalledPackage(name=n, version="1") for n in names)


# --- services -----------------------------------------------------------------------------------

SSH_UNIT = (
    "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd -D $SSHD_OPTS\n"
)


def test_systemd_wants_links_masks_and_exec_start(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "lib/systemd/system/ssh.service": SSH_UNIT,
            "lib/systemd/system/telnet.socket": "[Socket]\nListenStream=23\n",
            "lib/systemd/system/cups.service": "[Service]\nExecStart=/usr/sbin/cupsd -l\n",
            "lib/systemd/system/getty@.service": "[Service]\nExecStart=-/sbin/agetty -o '-p -- \\\\u' %I\n",
            "etc/systemd/system/multi-user.target.wants/ssh.service": Link("/lib/systemd/system/ssh.service"),
            "etc/systemd/system/sockets.target.wants/telnet.socket": Link(
                "/lib/systemd/system/telnet.socket"
            ),
            "etc/systemd/system/multi-user.target.wants/cups.service": Link(
                "/lib/systemd/system/cups.service"
            ),
            "etc/systemd/system/cups.service": Link("/dev/null"),  # masked: wins over the wants link
            "etc/systemd/system/getty.target.wants/getty@tty1.service": Link(
                "/lib/systemd/system/getty@.service"
            ),
            # a drop-in resets and replaces ExecStart
            "etc/systemd/system/ssh.service.d/override.conf": "[Service]\nExecStart=\n"
                "ExecStart=/usr/sbin/sshd -D -p 2222\n",
            # static wants shipped by a package in the vendor directory
            "usr/lib/systemd/system/sockets.target.wants/systemd-journald.socket": Link(
                "../systemd-journald.socket"
            ),
            "usr/lib/systemd/system/systemd-journald.socket": ""
                "[Socket]\nListenDatagram=/run/systemd/journal/socket\n",
            # a unit masked without being enabled
            "etc/systemd/system/rpcbind.socket": Link("/dev/null"),
            # broken: the unit file was removed but the link stayed
            "etc/systemd/system/multi-user.target.wants/gone.service": Link(
                "/lib/systemd/system/gone.service"
            ),
        },
    )
    services = {s.name: s for s in read_services(reader)}
    assert services["ssh.service"].enabled is True
    assert services["ssh.service"].exec_start == "/usr/sbin/sshd -D -p 2222"
    assert services["ssh.service"].origin == "/etc/systemd/system/multi-user.target.wants/ssh.service"
    assert services["telnet.socket"].enabled is True
    assert services["cups.service"].enabled is False
    assert services["rpcbind.socket"].enabled is False
    assert services["getty@tty1.service"].exec_start == "-/sbin/agetty -o '-p -- \\\\u' %I"
    assert services["systemd-journald.socket"].enabled is True
    assert services["gone.service"].enabled is None
    assert "unit file not found" in services["gone.service"].origin
    assert all(s.manager == "systemd" for s in services.values())


def test_an_empty_unit_file_masks_the_unit(tmp_path: Path) -> None:
    """systemd.unit(5): an empty unit file is masked like a link to /dev/null — `systemctl --root DIR
    is-enabled nftables.service` says "masked" for this tree — so the wants link starts nothing."""
    reader = tree(tmp_path, {
        "lib/systemd/system/nftables.service": "[Service]\nExecStart=/usr/sbin/nft -f /etc/nftables.conf\n",
        "etc/systemd/system/sysinit.target.wants/nftables.service": Link(
            "/lib/systemd/system/nftables.service"),
        "etc/systemd/system/nftables.service": "",
        "lib/systemd/system/ssh.service": SSH_UNIT,
        "etc/systemd/system/multi-user.target.wants/ssh.service": Link("/lib/systemd/system/ssh.service"),
    })
    services = {s.name: s for s in read_services(reader)}
    assert services["nftables.service"].enabled is False
    assert services["nftables.service"].origin == "/etc/systemd/system/nftables.service is empty (masked)"
    assert services["ssh.service"].enabled is True


FOO = "[Service]\nExecStart=/usr/bin/foo\n"
WANTED = {"lib/systemd/system/foo.service": FOO,
          "etc/systemd/system/multi-user.target.wants/foo.service": Link("/lib/systemd/system/foo.service")}


# Each tree was put to systemd 252 in a review (2026-12-06): `systemctl --root DIR is-enabled` and
# `systemd-analyze verify --root DIR default.target`, whose transaction says whether boot starts foo.
@pytest.mark.parametrize(("spec", "enabled"), [
    (WANTED, True),
    ({**WANTED, "etc/systemd/system/foo.service": Link("../../../dev/null")}, False),  # a relative mask
    # the first entry in search order decides: a mask in /usr/local hides the vendor file
    ({**WANTED, "usr/local/lib/systemd/system/foo.service": Link("/dev/null")}, False),
    # a mask in /run is gone at the next boot
    ({**WANTED, "run/systemd/system/foo.service": Link("/dev/null")}, True),
    ({**WANTED, "run/systemd/system/foo.service": ""}, True),
    # a masked template masks its instances
    ({"lib/systemd/system/foo@.service": FOO, "etc/systemd/system/foo@.service": Link("/dev/null"),
      "etc/systemd/system/multi-user.target.wants/foo@a.service": Link("/lib/systemd/system/foo@.service")},
     False),
    # /etc's /dev/null link in sysinit.target.wants cancels the vendor link there, and only there
    ({"lib/systemd/system/foo.service": FOO,
      "lib/systemd/system/sysinit.target.wants/foo.service": Link("../foo.service"),
      "etc/systemd/system/sysinit.target.wants/foo.service": Link("/dev/null")}, None),
    ({"lib/systemd/system/foo.service": FOO,
      "lib/systemd/system/sysinit.target.wants/foo.service": Link("../foo.service"),
      "etc/systemd/system/basic.target.wants/foo.service": Link("/dev/null")}, True),
    # systemd looks the link's name up in the unit path; where it points does not matter
    ({"opt/foo.service": FOO,
      "etc/systemd/system/multi-user.target.wants/foo.service": Link("/opt/foo.service")}, None),
    # an entry that is no symlink is ignored ("is not a symlink, ignoring"); a bare template gets the
    # owner's prefix as its instance (resolve_template: foo@multi-user.service)
    ({"lib/systemd/system/foo.service": FOO, "etc/systemd/system/multi-user.target.wants/foo.service": FOO},
     None),
    ({"lib/systemd/system/foo@.service": FOO,
      "etc/systemd/system/multi-user.target.wants/foo@.service": Link("/lib/systemd/system/foo@.service")},
     True),
], ids=["enabled", "relative-mask", "usr-local-mask", "run-mask", "run-empty", "template-mask",
        "wants-entry-cancelled", "other-target-cancelled", "outside-unit-path", "not-a-symlink",
        "bare-template"])
def test_systemd_enablement_as_systemd_decides(tmp_path: Path, spec: dict[str, str | Link],
                                               enabled: bool | None) -> None:
    """``None``: foo is not listed, or listed with an unknown state (nothing starts it either way)."""
    services = {s.name: s for s in read_services(tree(tmp_path, spec))}
    foo = (services.get("foo.service") or services.get("foo@a.service") or services.get("foo@.service")
           or services.get("foo@multi-user.service"))
    state = None if foo is None else foo.enabled
    assert state is enabled


def test_inetd_xinetd_sysv_openrc(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/inetd.conf": (
                "# /etc/inetd.conf\n"
                "#<off># ftp stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.ftpd\n"
                "telnet stream tcp nowait telnetd /usr/sbin/tcpd /usr/sbin/in.telnetd\n"
                "broken line\n"
            ),
            "etc/xinetd.conf": "defaults\n{\n  disabled = rlogin\n}\nincludedir /etc/xinetd.d\n",
            "etc/xinetd.d/tftp": (
                "service tftp\n{\n  socket_type = dgram\n  server = /usr/sbin/in.tftpd\n"
                "  server_args = -s /var/lib/tftpboot\n  disable = no\n}\n"
            ),
            "etc/xinetd.d/rsh": "service shell\n{\n  disable = yes\n  server = /usr/sbin/in.rshd\n}\n",
            "etc/xinetd.d/rlogin": "service login\n{\n  server = /usr/sbin/in.rlogind\n"
                "}\nservice rlogin\n{\n}\n",
            "etc/xinetd.d/tftp.rpmsave": "service old\n{\n disable = no\n}\n",  # names with a dot are skipped
            "etc/rc2.d/S01rsync": Link("../init.d/rsync"),
            "etc/rc2.d/K01nfs": Link("../init.d/nfs"),
            "etc/rc3.d/S01rsync": Link("../init.d/rsync"),
            "etc/runlevels/default/sshd": Link("/etc/init.d/sshd"),
            "etc/runlevels/boot/hostname": Link("/etc/init.d/hostname"),
            "etc/runlevels/shutdown/killprocs": Link("/etc/init.d/killprocs"),
        },
    )
    errors: list[ReadError] = []
    services = {(s.manager, s.name): s for s in read_services(reader, errors=errors)}
    telnet = services[("inetd", "telnet")]
    assert telnet.enabled is True and telnet.origin == "/etc/inetd.conf:3"
    assert telnet.exec_start == "/usr/sbin/tcpd /usr/sbin/in.telnetd"
    assert ("inetd", "ftp") not in services
    assert [str(e) for e in errors] == ["/etc/inetd.conf:4: not an inetd service line"]
    assert services[("xinetd", "tftp")].enabled is True
    assert services[("xinetd", "tftp")].exec_start == "/usr/sbin/in.tftpd -s /var/lib/tftpboot"
    assert services[("xinetd", "shell")].enabled is False
    assert services[("xinetd", "login")].enabled is True  # disable defaults to no
    assert services[("xinetd", "rlogin")].enabled is False  # listed in defaults' disabled
    assert ("xinetd", "old") not in services
    assert services[("sysv", "rsync")].origin == "/etc/rc2.d/S01rsync"
    assert ("sysv", "nfs") not in services
    assert services[("openrc", "sshd")].enabled is True
    assert ("openrc", "hostname") in services and ("openrc", "killprocs") not in services


# --- package sources ----------------------------------------------------------------------------


def test_debian12_real_sources(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/apt/sources.list": sample("debian12", "sources.list"),
            "etc/apt/sources.list.d/debian.sources": sample("debian12", "debian.sources"),
            "etc/apt/apt.conf.d/01autoremove": sample("debian12", "01autoremove"),
            "etc/apt/apt.conf.d/docker-clean": sample("debian12", "docker-clean"),
        },
    )
    errors: list[ReadError] = []
    repos = read_repos(reader, errors=errors)
    assert errors == []
    assert [(r.uri, r.suite) for r in repos] == [
        ("http://deb.debian.org/debian/", "bookworm"),
        ("http://security.debian.org/debian-security", "bookworm-security"),
        ("http://deb.debian.org/debian/", "bookworm-updates"),
        ("http://deb.debian.org/debian", "bookworm"),
        ("http://deb.debian.org/debian", "bookworm-updates"),
        ("http://deb.debian.org/debian-security", "bookworm-security"),
    ]
    one_line, deb822 = repos[0], repos[3]
    assert (
        one_line.components == ("main", "non-free-firmware") and one_line.origin == "/etc/apt/sources.list:3"
    )
    assert one_line.signed is None and one_line.trusted is False  # global keyring, no pinned key
    assert deb822.signed is True and deb822.origin == "/etc/apt/sources.list.d/debian.sources:1"
    assert not any(r.transport_encrypted for r in repos)


def test_apt_trusted_options_deb822_flags_and_global_switches(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/apt/sources.list.d/vendor.list": (
                "deb [ arch=amd64,arm64 trusted=yes ] http://repo.example/apt stable main\n"
                "deb [signed-by=/etc/apt/keyrings/x.gpg arch+=i386] https://x.example/apt jammy main # note\n"
                "deb [allow-insecure=yes] https://y.example/apt jammy main\n"
                "deb-src [trusted=yes] http://repo.example/apt stable main\n"
                "deb\n"
            ),
            "etc/apt/sources.list.d/extra.sources": (
                "Types: deb deb-src\nURIs: https://a.example/debian http://b.example/debian\n"
                "Suites: bookworm\nComponents: main contrib\nTrusted: yes\n\n"
                "# disabled\nEnabled: no\nTypes: deb\nURIs: https://c.example/\nSuites: stable\n"
                "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
                    " .\n mQINBGP...\n -----END PGP PUBLIC KEY BLOCK-----\n"
            ),
            "etc/apt/sources.list.d/ignored.list.save": "deb [trusted=yes] http://evil/ x main\n",
        },
    )
    errors: list[ReadError] = []
    repos = {(r.uri, r.suite): r for r in read_repos(reader, errors=errors)}
    assert [str(e) for e in errors] == ["/etc/apt/sources.list.d/vendor.list:5: not an APT source line"]
    trusted = repos[("http://repo.example/apt", "stable")]
    assert trusted.trusted is True and trusted.signed is False and not trusted.transport_encrypted
    pinned = repos[("https://x.example/apt", "jammy")]
    assert pinned.signed is True and pinned.trusted is False and pinned.transport_encrypted
    assert repos[("https://y.example/apt", "jammy")].signed is False
    assert repos[("https://a.example/debian", "bookworm")].trusted is True
    assert repos[("http://b.example/debian", "bookworm")].components == ("main", "contrib")
    disabled = repos[("https://c.example/", "stable")]
    assert disabled.enabled is False and disabled.signed is True
    assert len(repos) == 6  # deb-src and *.save are not sources of installed packages


@pytest.mark.parametrize(
    ("conf", "trusted"),
    [
        ('APT::Get::AllowUnauthenticated "true";\n', True),
        ('Acquire { AllowInsecureRepositories "1"; };\n', False),
    ],
)
def test_apt_global_insecure_switch_marks_every_source(tmp_path: Path, conf: str, trusted: bool) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/apt/sources.list": "deb [signed-by=/k.gpg] https://deb.debian.org/debian bookworm main\n",
            "etc/apt/apt.conf.d/99insecure": conf,
        },
    )
    (repo,) = read_repos(reader)
    assert repo.signed is False and repo.trusted is trusted
    assert "/etc/apt/apt.conf.d/99insecure:1" in repo.origin


def test_apt_conf_later_file_and_clear_win(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/apt/sources.list": "deb https://d.example/ s main\n",
            "etc/apt/apt.conf.d/10bad": 'APT::Get::AllowUnauthenticated "true";\n',
            "etc/apt/apt.conf.d/20fix": 'APT::Get::AllowUnauthenticated "false";\n',
        },
    )
    assert read_repos(reader)[0].signed is None


def test_alma9_repos_and_gpgcheck_defaults(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/dnf/dnf.conf": sample("alma9", "dnf.conf"),
            "etc/yum.repos.d/almalinux-baseos.repo": sample("alma9", "almalinux-baseos.repo"),
            "etc/yum.repos.d/third.repo": (
                "[plain]\nbaseurl=http://mirror.example/el9/$basearch/\ngpgcheck=0\n\n"
                "[mixed]\nbaseurl=https://a.example/el9/ http://b.example/el9/\nrepo_gpgcheck=1\nenabled=0\n\n"
                "[weird]\nbaseurl=https://w.example/\ngpgcheck=maybe\n\n[nourl]\nname=x\n"
            ),
        },
    )
    errors: list[ReadError] = []
    repos = {r.origin.rsplit("[", 1)[1].rstrip("]"): r for r in read_repos(reader, errors=errors)}
    assert [str(e) for e in errors] == [
        "/etc/yum.repos.d/third.repo [weird]: gpgcheck='maybe' is not a boolean",
        "/etc/yum.repos.d/third.repo [nourl]: repository without baseurl, mirrorlist or metalink",
    ]
    baseos = repos["baseos"]
    assert (baseos.manager, baseos.enabled, baseos.gpgcheck, baseos.signed) == ("dnf", True, True, True)
    assert baseos.uri == "https://mirrors.almalinux.org/mirrorlist/$releasever/baseos"
    assert repos["baseos-debuginfo"].enabled is False
    assert repos["plain"].gpgcheck is False and not repos["plain"].transport_encrypted
    mixed = repos["mixed"]
    assert mixed.gpgcheck is True  # from [main]
    assert mixed.repo_gpgcheck is True and mixed.enabled is False
    assert mixed.uri == "http://b.example/el9/"  # the weakest transport is reported
    assert repos["weird"].gpgcheck is None


def test_dnf_without_main_gpgcheck_defaults_to_off(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/dnf/dnf.conf": "[main]\nbest=True\n",
            "etc/yum.repos.d/a.repo": "[a]\nbaseurl=https://a.example/\n",
        },
    )
    (repo,) = read_repos(reader)
    assert repo.gpgcheck is False  # dnf.conf(5): gpgcheck defaults to False


def test_zypper_and_apk(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/zypp/repos.d/oss.repo": "[repo-oss]\nname=Main\nenabled=1\nautorefresh=1\n"
            "baseurl=http://download.opensuse.org/distribution/leap/15.6/repo/oss/\n",
            "etc/zypp/repos.d/nosig.repo": "[nosig]\nbaseurl=https://n.example/\ngpgcheck=0\n",
            "etc/apk/repositories": "#/media/cdrom/apks\nhttps://dl-cdn.alpinelinux.org/alpine/v3.20/main\n"
            "@testing http://dl-cdn.alpinelinux.org/alpine/edge/testing\n",
            "etc/apk/keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub": "-----BEGIN PUBLIC "
                "KEY-----\n",
        },
    )
    repos = read_repos(reader)
    zypper = {r.uri: r for r in repos if r.manager == "zypper"}
    assert zypper["http://download.opensuse.org/distribution/leap/15.6/repo/oss/"].gpgcheck is True
    assert zypper["https://n.example/"].gpgcheck is False
    apk = [r for r in repos if r.manager == "apk"]
    assert [(r.uri, r.suite, r.signed) for r in apk] == [
        ("https://dl-cdn.alpinelinux.org/alpine/v3.20/main", None, True),
        ("http://dl-cdn.alpinelinux.org/alpine/edge/testing", "@testing", True),
    ]
    assert apk[0].origin == "/etc/apk/repositories:2"


def test_apk_without_keys_is_unsigned(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/apk/repositories": "http://mirror.example/alpine/v3.20/main\n",
            "etc/apk/keys/README": "no keys\n",
        },
    )
    assert read_repos(reader)[0].signed is False


# --- automatic updates --------------------------------------------------------------------------


# What starts apt.systemd.daily on Debian: the apt package's timer, enabled by a wants link.
TIMER = {"lib/systemd/system/apt-daily-upgrade.timer": "[Timer]\nOnCalendar=*-*-* 6:00\n",
         "etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer":
             "[Timer]\nOnCalendar=*-*-* 6:00\n"}


def test_unattended_upgrades_debian_defaults(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/apt/apt.conf.d/20auto-upgrades": sample("debian12", "20auto-upgrades"),
            "etc/apt/apt.conf.d/50unattended-upgrades": sample("debian12", "50unattended-upgrades"),
            **TIMER,
        },
    )
    auto = read_auto_updates(reader, pkgs("apt", "unattended-upgrades"))
    assert (auto.mechanism, auto.enabled) == ("unattended-upgrades", True)
    assert auto.security_only is False  # the Debian default also takes label=Debian (point releases)
    assert auto.origin == "/etc/apt/apt.conf.d/20auto-upgrades:2"


def test_unattended_upgrades_security_only_and_off_switches(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/apt/apt.conf.d/20auto-upgrades": sample("debian12", "20auto-upgrades"),
            "etc/apt/apt.conf.d/50unattended-upgrades": 'Unattended-Upgrade::Origins-Pattern { '
                '"origin=Debian,label=Debian-Security"; };\n',
            **TIMER,
        },
    )
    auto = read_auto_updates(reader, pkgs("unattended-upgrades"))
    assert auto.enabled is True and auto.security_only is True
    (tmp_path / "etc/apt/apt.conf.d/99off").write_text('APT::Periodic::Unattended-Upgrade "0";\n')
    assert read_auto_updates(reader, pkgs("unattended-upgrades")).enabled is False
    (tmp_path / "etc/apt/apt.conf.d/99off").unlink()
    os.symlink("/dev/null", tmp_path / "etc/systemd/system/apt-daily-upgrade.timer")
    masked = read_auto_updates(reader, pkgs("unattended-upgrades"))
    assert masked.enabled is False and "is not enabled (or is masked)" in masked.origin


# Debian 12's apt.systemd.daily with stubbed apt-get/unattended-upgrade, and systemctl --root (a
# review, 2026-12-06): does unattended-upgrade run?
@pytest.mark.parametrize(("extra", "runs"), [
    ({}, True),
    ({"etc/apt/apt.conf.d/99x": 'APT::Periodic::Enable "0";\n'}, False),
    ({"etc/apt/apt.conf.d/99x": '"APT::Periodic::Enable" "0";\n'}, False),  # a quoted tag
    ({"etc/apt/apt.conf.d/99x": "#clear APT::Periodic;\n"}, False),  # the whole tree
    ({"etc/apt/apt.conf.d/99x": 'APT::Periodic::Unattended-Upgrade # off\n"0";\n'}, False),
    ({"etc/apt/apt.conf.d/99lo:cal": 'APT::Periodic::Enable "0";\n'}, False),  # ':' is a name apt reads
    ({"etc/apt/apt.conf.d/99x": 'APT::Periodic::Unattended-Upgrade "00";\n'}, True),
    ({"etc/apt/apt.conf.d/99x": 'APT::Periodic::Unattended-Upgrade "true";\n'}, True),
    ({"etc/systemd/system/apt-daily-upgrade.timer": ""}, False),  # an empty unit masks it
])
def test_unattended_upgrades_as_apt_systemd_daily_runs_it(tmp_path: Path, extra: dict[str, str],
                                                         runs: bool) -> None:
    reader = tree(tmp_path, {"etc/apt/apt.conf.d/20auto-upgrades": sample("debian12", "20auto-upgrades"),
                             **TIMER, **extra})
    assert read_auto_updates(reader, pkgs("unattended-upgrades")).enabled is runs


def test_settings_only_in_a_dotfile_are_not_read(tmp_path: Path) -> None:
    conf = sample("debian12", "20auto-upgrades")
    named = tree(tmp_path / "a", {"etc/apt/apt.conf.d/20auto-upgrades.conf": conf, **TIMER})
    assert read_auto_updates(named, pkgs("unattended-upgrades")).enabled is True
    hidden = tree(tmp_path / "h", {"etc/apt/apt.conf.d/.20auto-upgrades.conf": conf, **TIMER})
    assert read_auto_updates(hidden, pkgs("unattended-upgrades")).enabled is False


def test_auto_updates_unknown_versus_absent(tmp_path: Path) -> None:
    reader = tree(tmp_path, {"etc/apt/apt.conf.d/20auto-upgrades": sample("debian12", "20auto-upgrades")})
    assert read_auto_updates(reader, None).enabled is None
    absent = read_auto_updates(reader, pkgs("apt", "openssh-server"))
    assert (absent.mechanism, absent.enabled) == (None, False)


def test_dnf_automatic(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/dnf/automatic.conf": sample("alma9", "automatic.conf"),
            "usr/lib/systemd/system/dnf-automatic.timer": "[Timer]\nOnCalendar=*-*-* 6:00\n",
            "etc/systemd/system/timers.target.wants/dnf-automatic.timer": Link(
                "/usr/lib/systemd/system/dnf-automatic.timer"
            ),
        },
    )
    auto = read_auto_updates(reader, pkgs("dnf-automatic"))
    assert auto.mechanism == "dnf-automatic" and auto.enabled is False  # the timer only downloads
    conf = tmp_path / "etc/dnf/automatic.conf"
    conf.write_text(
        conf.read_text()
        .replace("apply_updates = no", "apply_updates = yes")
        .replace("upgrade_type = default", "upgrade_type = security")
    )
    auto = read_auto_updates(reader, pkgs("dnf-automatic"))
    assert auto.enabled is True and auto.security_only is True
    assert auto.origin == "/etc/systemd/system/timers.target.wants/dnf-automatic.timer"


def test_yum_cron_and_apk_cron(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/yum/yum-cron.conf": "[commands]\nupdate_cmd = security\napply_updates = yes\n",
            "etc/systemd/system/multi-user.target.wants/yum-cron.service": Link("/dev/null"),
        },
    )
    auto = read_auto_updates(reader, pkgs("yum-cron"))
    assert auto.mechanism == "yum-cron" and auto.enabled is False  # the link is a mask
    alpine = tree(
        tmp_path / "alpine",
        {
            "etc/apk/repositories": "https://dl-cdn.alpinelinux.org/alpine/v3.20/main\n",
            "etc/periodic/daily/apk-upgrade": "#!/bin/sh\napk update && apk upgrade -q\n",
        },
    )
    auto = read_auto_updates(alpine, pkgs("apk-tools", "busybox"))
    assert (auto.mechanism, auto.enabled, auto.origin) == (
        "apk-cron",
        True,
        "/etc/periodic/daily/apk-upgrade:2",
    )


# --- mounts and encryption ----------------------------------------------------------------------


def test_fstab_and_crypttab(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/fstab": (
                "# /etc/fstab: static file system information.\n"
                "UUID=0a1b / ext4 errors=remount-ro 0 1\n"
                "/dev/mapper/data /srv/My\\040Data xfs defaults,nodev 0 2\n"
                "tmpfs /tmp tmpfs\n"
                "/swapfile none swap sw 0 0\n"
                "garbage\n"
            ),
            "etc/crypttab": (
                "# <target name> <source device> <key file> <options>\n"
                "data UUID=77aa /etc/keys/data.key luks,discard\n"
                "root_crypt /dev/vda3 none luks\n"
                "swap /dev/vda2 /dev/urandom swap,cipher=aes-xts-plain64,size=512\n"
                "home /dev/vda4\n"
            ),
        },
    )
    errors: list[ReadError] = []
    fstab = read_fstab(reader, errors=errors)
    assert [(m.device, m.mountpoint, m.fstype, m.options) for m in fstab] == [
        ("UUID=0a1b", "/", "ext4", ("errors=remount-ro",)),
        ("/dev/mapper/data", "/srv/My Data", "xfs", ("defaults", "nodev")),
        ("tmpfs", "/tmp", "tmpfs", ("defaults",)),
        ("/swapfile", "none", "swap", ("sw",)),
    ]
    assert fstab[2].origin == "/etc/fstab:4"
    assert [str(e) for e in errors] == ["/etc/fstab:6: malformed line (1 fields)"]
    crypt = read_crypttab(reader)
    assert [(c.name, c.keyfile, c.options) for c in crypt] == [
        ("data", "/etc/keys/data.key", ("luks", "discard")),
        ("root_crypt", None, ("luks",)),
        ("swap", "/dev/urandom", ("swap", "cipher=aes-xts-plain64", "size=512")),
        ("home", None, ()),
    ]


def test_crypttab_lines_as_systemd_cryptsetup_generator_reads_them(tmp_path: Path) -> None:
    # systemd 252's generator on the same file: units for root_crypt, data (after a lone CR), cswap
    # (after a comment ended by CR) and vol (after a NUL); the second "data" line is refused (the
    # unit exists already)
    reader = tree(tmp_path, {"etc/crypttab": "root_crypt /dev/vda2 none luks\rdata /dev/vdb1 /boot/data.key "
                                             "luks\n# x\rcswap /dev/vda3 /dev/urandom swap\n"
                                             "data /dev/vdc1 none luks\nvol /dev/vdd1\x00junk\n"})
    crypt = read_crypttab(reader)
    assert [(c.name, c.device, c.keyfile) for c in crypt] == [
        ("root_crypt", "/dev/vda2", None), ("data", "/dev/vdb1", "/boot/data.key"),
        ("cswap", "/dev/vda3", "/dev/urandom"), ("vol", "/dev/vdd1", None)]
    assert [c.key_path for c in crypt] == [None, "/boot/data.key", None, None]


def test_fstab_absent_is_empty_but_unreadable_raises(tmp_path: Path) -> None:
    assert read_fstab(tree(tmp_path, {"etc/hostname": "x\n"})) == ()
    os.mkfifo(tmp_path / "etc/fstab")
    with pytest.raises(ReadError, match="/etc/fstab: not a regular file"):
        read_fstab(RootReader(str(tmp_path)))


# --- audit and logging --------------------------------------------------------------------------


def enabled(*names: str) -> tuple[Service, ...]:
    return tuple(Service(name=n, manager="systemd", enabled=True) for n in names)


def test_audit_rules_remote_logging_and_journald(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "sbin/auditd": "#!binary\n",
            "etc/audit/rules.d/10-base.rules": "## First rule - delete all\n-D\n-b 8192\n",
            "etc/audit/rules.d/50-identity.rules": "-w /etc/passwd -p wa -k identity\n-e 2\n",
            "etc/audit/audit.rules": "## generated by augenrules\n"
                "-D\n-b 8192\n-w /etc/passwd -p wa -k identity\n-e 2\n",
            "etc/audit/plugins.d/au-remote.conf": "active = yes\ndirection = out\n"
                "path = /sbin/audisp-remote\n",
            "usr/sbin/rsyslogd": "binary\n",
            "usr/sbin/syslog-ng": "binary\n",
            "etc/rsyslog.conf": "*.* @@logs.example:514\n#*.* @old.example\nauth.* /var/log/auth.log\n"
                "$IncludeConfig /etc/rsyslog.d/*.conf\n",
            "etc/rsyslog.d/60-fwd.conf": (
                '# forward\naction(\n  type="omfwd"\n  target="10.0.0.5" port="6514"\n'
                '  protocol="tcp" StreamDriver="gtls")\n'
            ),
            "etc/syslog-ng/syslog-ng.conf": '@version: 3.38\nsource s { internal(); };\n'
            'destination d_net { network("10.0.0.9" transport("tcp")); };\n'
            '# destination d_old { udp("1.2.3.4"); };\nlog { source(s); destination(d_net); };\n',
            "etc/systemd/journal-upload.conf": "[Upload]\nURL=https://logs.example:19532\n",
            "usr/lib/systemd/systemd-journald": "binary\n",
            "etc/systemd/journald.conf": "[Journal]\n#Storage=auto\nStorage=persistent\n",
            "usr/lib/systemd/journald.conf.d/10-vendor.conf": "[Journal]\nStorage=volatile\n",
            "etc/systemd/journald.conf.d/10-vendor.conf": "[Journal]\nStorage=none\n",  # same name: /etc wins
        },
    )
    audit = read_audit(reader, enabled("auditd.service", "systemd-journal-upload.service", "rsyslog.service",
                                       "syslog-ng.service"))
    assert audit.auditd_installed is True and audit.auditd_enabled is True
    assert audit.rules == ("-D", "-b 8192", "-w /etc/passwd -p wa -k identity", "-e 2")
    assert audit.remote_logging == (
        "rsyslog /etc/rsyslog.conf:1: *.* @@logs.example:514",
        'rsyslog /etc/rsyslog.d/60-fwd.conf:2: action(type="omfwd" target="10.0.0.5")',
        "syslog-ng /etc/syslog-ng/syslog-ng.conf:3: network() destination d_net to 10.0.0.9",
        "audisp-remote /etc/audit/plugins.d/au-remote.conf:1: active = yes",
        "systemd-journal-upload.service enabled (URL=https://logs.example:19532)",
    )
    assert audit.journald_storage == "none"


@pytest.mark.parametrize(("value", "journal_dir", "expected"), [
    ("Persistent", False, "volatile"),  # journald: "Failed to parse storage setting, ignoring"
    ("persistent # keep logs", False, "volatile"),
    ('"persistent"', False, "volatile"),
    ("Volatile", True, "persistent"),
    ("persistent", False, "persistent"),
])
def test_journald_storage_names_are_exact(tmp_path: Path, value: str, journal_dir: bool,
                                          expected: str) -> None:
    # systemd-journald 252 in a namespace: a value it cannot parse is ignored, and auto decides
    reader = tree(tmp_path, {"lib/systemd/systemd-journald": "binary\n",
                             "etc/systemd/journald.conf": f"[Journal]\nStorage={value}\n"})
    if journal_dir:
        (tmp_path / "var/log/journal").mkdir(parents=True)
    assert read_audit(reader, ()).journald_storage == expected


def test_journal_upload_without_a_url_forwards_nothing(tmp_path: Path) -> None:
    # systemd-journal-upload: "Required --url/-u option missing.", exit 1
    reader = tree(tmp_path, {"etc/systemd/journal-upload.conf": "[Upload]\n# URL=\n"})
    assert read_audit(reader, enabled("systemd-journal-upload.service")).remote_logging == ()


def test_audit_absent_and_journald_auto(tmp_path: Path) -> None:
    reader = tree(
        tmp_path, {"lib/systemd/systemd-journald": "binary\n", "etc/rsyslog.conf": "*.* /var/log/all\n"}
    )
    audit = read_audit(reader, ())
    assert (audit.auditd_installed, audit.auditd_enabled, audit.rules, audit.remote_logging) == (
        False,
        False,
        (),
        (),
    )
    assert audit.journald_storage == "volatile"  # auto without /var/log/journal
    (tmp_path / "var/log/journal").mkdir(parents=True)
    assert read_audit(reader, None).journald_storage == "persistent"
    masked = (Service(name="auditd.service", manager="systemd", enabled=False),)
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / "usr/sbin/auditd").write_text("binary\n")
    assert read_audit(reader, masked).auditd_enabled is False
    assert read_audit(reader, None).auditd_enabled is None


# --- firewall -----------------------------------------------------------------------------------


def test_nftables_debian_default_accepts_and_hardened_drops(tmp_path: Path) -> None:
    reader = tree(tmp_path, {"etc/nftables.conf": sample("debian12", "nftables.conf")})
    fw = read_firewall(reader, enabled("nftables.service"))
    assert fw.mechanisms == {"nftables": True}
    assert fw.default_input_policy == "accept" and fw.origin == "nftables: /etc/nftables.conf"
    hardened = tree(tmp_path / "h", {"etc/nftables.conf": sample("debian12", "nftables-hardened.conf")})
    fw = read_firewall(hardened, ())
    assert fw.mechanisms == {"nftables": False} and fw.default_input_policy == "drop"
    assert read_firewall(hardened, None).mechanisms == {"nftables": None}


def test_nftables_includes_are_followed_inside_the_root(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/sysconfig/nftables.conf": '#include "/etc/nftables/old.nft"\n'
                'include "/etc/nftables/main*.nft"\n',
            "etc/nftables/main.nft": "table inet fw {\n chain in {\n  type filter hook input priority 0\n"
            "  policy drop\n  tcp dport 22 accept\n }\n}\n",
            "etc/nftables/old.nft": "table ip t { chain c { type filter hook input priority 0; "
                "policy accept; } }\n",
        },
    )
    assert read_firewall(reader, ()).default_input_policy == "drop"


def test_iptables_ufw_firewalld(tmp_path: Path) -> None:
    reader = tree(
        tmp_path,
        {
            "etc/iptables/rules.v4": (
                "*nat\n:INPUT ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n"
                ":FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"
            ),
            "etc/ufw/ufw.conf": "# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n",
            "etc/default/ufw": 'IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n',
        },
    )
    fw = read_firewall(reader, enabled("ufw.service", "netfilter-persistent.service"))
    assert fw.mechanisms == {"ufw": True, "iptables": True}
    assert fw.default_input_policy == "drop" and fw.origin == "ufw: /etc/default/ufw"
    (tmp_path / "etc/ufw/ufw.conf").write_text("ENABLED=no\n")
    fw = read_firewall(reader, enabled("ufw.service", "netfilter-persistent.service"))
    # rules.v4 drops, but there is no rules.v6: IPv6 comes in unfiltered
    assert fw.mechanisms["ufw"] is False and fw.origin == "iptables: /etc/iptables/rules.v6"
    assert fw.default_input_policy == "accept" and "IPv6 is not filtered" in fw.policy_note

    firewalld = tree(
        tmp_path / "fd",
        {
            "usr/lib/firewalld/zones/public.xml": '<?xml version="1.0" encoding="utf-8"?>\n'
                '<zone>\n<short>Public</short>\n</zone>\n',
            "usr/lib/firewalld/zones/trusted.xml": '<?xml version="1.0"?><zone '
                'target="ACCEPT"><short>Trusted</short></zone>',
            "etc/firewalld/firewalld.conf": "# firewalld config file\nDefaultZone=public\n",
        },
    )
    fw = read_firewall(firewalld, enabled("firewalld.service"))
    assert fw.mechanisms == {"firewalld": True} and fw.default_input_policy == "reject"
    (tmp_path / "fd/etc/firewalld/firewalld.conf").write_text("DefaultZone=trusted\n")
    assert read_firewall(firewalld, enabled("firewalld.service")).default_input_policy == "accept"
    os.makedirs(tmp_path / "fd/etc/firewalld/zones")
    (tmp_path / "fd/etc/firewalld/zones/trusted.xml").write_text('<zone target="DROP"/>')
    assert read_firewall(firewalld, enabled("firewalld.service")).default_input_policy == "drop"


def test_no_firewall(tmp_path: Path) -> None:
    fw = read_firewall(tree(tmp_path, {"etc/hostname": "vm\n"}), ())
    assert fw.mechanisms == {} and fw.default_input_policy is None


@pytest.mark.parametrize("line", [
    "deb [trusted=yes]http://deb.example/debian bookworm main",  # apt needs no blank after ']'
    "deb [arch=amd64#x trusted=yes] http://deb.example/debian bookworm main",  # '#' inside [] is no comment
    "deb [trusted=enable] http://deb.example/debian bookworm main",  # apt's StringToBool true-words
    "deb [trusted=with] http://deb.example/debian bookworm main",
    "deb [trusted=0x1] http://deb.example/debian bookworm main",  # strtol, base 0
    "deb [ trusted=YES ] http://deb.example/debian bookworm main # a comment",
])
def test_apt_trusts_what_apt_trusts(tmp_path: Path, line: str) -> None:
    # Each of these is a trusted source to apt (sourcelist.cc, StringToBool); vmsec PASSed them.
    reader = tree(tmp_path, {"etc/apt/sources.list": line + "\n",
                             "etc/apt/sources.list.d/b.sources": "Types: deb\nURIs: http://b.example/\n"
                                                                 "Suites: stable\nTrusted: with\n"})
    repos = {r.uri: r for r in read_repos(reader, errors=[])}
    main = repos["http://deb.example/debian"]
    assert main.trusted is True and main.suite == "bookworm"
    assert repos["http://b.example/"].trusted is True


@pytest.mark.parametrize("value", ["2", "-1", "10", "maybe"])
def test_apt_does_not_trust_what_string_to_bool_refuses(tmp_path: Path, value: str) -> None:
    """StringToBool takes a number only when it is 0 or 1: `apt-get update` of an unsigned file:
    repository said "is not signed" for [trusted=2] and [trusted=-1] (checked 2026-12-06), where vmsec
    had read them as trusted."""
    line = f"deb [trusted={value}] http://deb.example/debian x main\n"
    reader = tree(tmp_path, {"etc/apt/sources.list": line})
    assert [r.trusted for r in read_repos(reader, errors=[])] == [False]


BOOL_VALUES = ["yes", "TRUE", "with", "On", "enable", "1", "+1", "01", "0x1", " 1", "-0", "no", "False",
               "without", "OFF", "disable", "0", "00", "0x0", "", "maybe", "y", "²", "1.0", "-1", "+3", "2",
               "10", "0x2", "1 ", "yes ", " yes", "truex"]


def test_apt_bool_is_find_b(tmp_path: Path) -> None:
    """apt's own answer is the oracle: `apt-config shell X KEY/b` prints FindB's value (default false)
    for each value written in a configuration of its own."""
    require(shutil.which("apt-config"), "apt-config", "apt (every Debian has it)")
    from vmsec.parsers.system.aptconf import apt_bool

    (tmp_path / "parts").mkdir()
    lines = "".join(f'Test::V{i} "{v}";\n' for i, v in enumerate(BOOL_VALUES))
    (tmp_path / "apt.conf").write_text(f'Dir::Etc::parts "{tmp_path}/parts";\nDir::Etc::main "/dev/null";\n'
                                       f"{lines}")
    args = [a for i in range(len(BOOL_VALUES)) for a in (f"V{i}", f"Test::V{i}/b")]
    env = {**os.environ, "APT_CONFIG": str(tmp_path / "apt.conf")}
    out = subprocess.run(["apt-config", "shell", *args], env=env, capture_output=True, text=True, check=True,
                         timeout=30).stdout
    apt = {line.split("=", 1)[0]: line.split("=", 1)[1].strip("'") == "true" for line in out.splitlines()}
    assert {f"V{i}": apt_bool(v) is True for i, v in enumerate(BOOL_VALUES)} == apt


def test_swap_from_systemd_swap_units(tmp_path: Path) -> None:
    """Enabled .swap units with their What= and Options= (drop-ins override, an empty Options=
    resets); a disabled unit and one systemd refuses (no What=) are not swap."""
    reader = tree(tmp_path, {
        "etc/systemd/system/swapfile.swap": "[Swap]\nWhat=/swapfile\nOptions=discard,pri=5\n"
                                            "[Install]\nWantedBy=swap.target\n",
        "etc/systemd/system/swapfile.swap.d/10-opts.conf": "[Swap]\nOptions=\nOptions=nofail\n",
        "lib/systemd/system/dev-vdb2.swap": "[Swap]\nWhat=/dev/vdb2\n",
        "etc/systemd/system/spare.swap": "[Swap]\nWhat=/dev/vdc1\n",
        "etc/systemd/system/broken.swap": "[Swap]\nOptions=sw\n",
    })
    wants = tmp_path / "etc/systemd/system/swap.target.wants"
    wants.mkdir(parents=True)
    for unit in ("swapfile.swap", "dev-vdb2.swap", "broken.swap"):
        (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
    services = read_services(reader)
    errors: list[ReadError] = []
    swaps = read_swap_units(reader, services, errors=errors)
    assert sorted((m.device, m.options, m.origin) for m in swaps) == [
        ("/dev/vdb2", (), "/lib/systemd/system/dev-vdb2.swap"),
        ("/swapfile", ("nofail",), "/etc/systemd/system/swapfile.swap")]
    assert all(m.fstype == "swap" for m in swaps)
    assert [e.source for e in errors] == ["/etc/systemd/system/broken.swap"]
    assert read_swap_units(reader, None) == ()
