"""sshd_config resolution without a running sshd: hostile input, bounds, versions, origins, Match
evaluation. (Agreement with the real sshd is in test_sshd_vs_openssh.py.)"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from denied_reader import DeniedReader
from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, Problems, ReadError
from vmsec.facts.guest import SshdConfig
from vmsec.parsers.sshd_config import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_FILES,
    read_sshd_config,
    resolve_algorithms,
    split_args,
)
from vmsec.parsers.sshd_defaults import compiled_defaults, parse_version


def make_root(tmp_path: Path, files: Mapping[str, str | bytes]) -> RootReader:
    for rel, content in files.items():
        target = tmp_path / rel.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return RootReader(str(tmp_path))


@dataclass
class Parsed:
    """A configuration with the problems the parser reported beside it."""

    config: SshdConfig
    problems: Problems

    def __getattr__(self, name: str) -> Any:
        return getattr(self.config, name)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(f"{p.source}: {p.reason}" for p in self.problems)

    def kinds(self) -> set[ErrorKind]:
        return {p.kind for p in self.problems}


def read(tmp_path: Path, files: Mapping[str, str | bytes], version: str | None = "9.2p1",
         distro: str | None = "debian") -> Parsed:
    problems = Problems()
    config = read_sshd_config(make_root(tmp_path, files), version=version, distro=distro, problems=problems)
    return Parsed(config, problems)


MAIN = "etc/ssh/sshd_config"


# --- tokenising -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "args"), [
    ('"a b" c', ("a b", "c")),
    ("a # comment", ("a",)),
    ("a#b c", ("a#b", "c")),
    ("'x'\"y\"z", ("xyz",)),
    ("a\\ b", ("a b",)),
    ("\tA\t\tB ", ("A", "B")),
])
def test_split_args_like_openssh(text: str, args: tuple[str, ...]) -> None:
    assert split_args(text) == args


# --- origins, defaults, versions ------------------------------------------------------------------

def test_origins_name_file_and_line_or_version_default(tmp_path: Path) -> None:
    config = read(tmp_path, {MAIN: "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n",
                             "etc/ssh/sshd_config.d/50-cloud-init.conf": "\n\nPasswordAuthentication yes\n"})
    assert config.value("PasswordAuthentication") == "yes"
    assert config.origins["passwordauthentication"] == "/etc/ssh/sshd_config.d/50-cloud-init.conf:3"
    assert config.origins["permitrootlogin"] == "default (OpenSSH 9.2p1)"
    assert config.files == ("/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/50-cloud-init.conf")


@pytest.mark.parametrize(("version", "permitrootlogin", "kex_has_sha1", "kex_first"), [
    ("7.4p1", "without-password", True, "curve25519-sha256"),
    ("8.2p1", "without-password", False, "curve25519-sha256"),
    ("8.4p1", "without-password", False, "curve25519-sha256"),
    ("8.9p1", "without-password", False, "curve25519-sha256"),
    ("9.6p1", "without-password", False, "sntrup761x25519-sha512@openssh.com"),
])
def test_defaults_follow_the_version(version: str, permitrootlogin: str, kex_has_sha1: bool,
                                     kex_first: str) -> None:
    defaults = compiled_defaults(version, "ubuntu")
    assert defaults["permitrootlogin"] == (permitrootlogin,)
    assert ("diffie-hellman-group14-sha1" in defaults["kexalgorithms"]) is kex_has_sha1
    assert defaults["kexalgorithms"][0] == kex_first
    assert "3des-cbc" not in defaults["ciphers"]


@pytest.mark.parametrize("version", [None, "", "garbage", "6.6p1", "42.0p1"])
def test_unknown_version_leaves_defaults_unknown(tmp_path: Path, version: str | None) -> None:
    config = read(tmp_path, {MAIN: "PasswordAuthentication no\nCiphers +3des-cbc\nMACs hmac-sha2-256\n"},
                  version=version)
    assert "permitrootlogin" not in config.settings  # not guessed
    assert "ciphers" not in config.settings  # "+" needs the unknown default list
    assert config.settings["macs"] == ("hmac-sha2-256",)  # an explicit list needs no default
    assert config.value("passwordauthentication") == "no"


def test_parse_version_accepts_package_versions() -> None:
    assert parse_version("1:9.2p1-2+deb12u10") == (9, 2)
    assert parse_version("OpenSSH_8.7p1") == (8, 7)
    assert parse_version("10.0p2-1") == (10, 0)
    assert parse_version("n/a") is None


def test_include_is_a_bad_option_before_8_2(tmp_path: Path) -> None:
    config = read(tmp_path, {MAIN: "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n",
                             "etc/ssh/sshd_config.d/01-permitrootlogin.conf": "PermitRootLogin yes\n"},
                  version="8.0p1", distro="rhel")
    assert config.value("permitrootlogin") == "no"
    assert any("Include" in e and ":1:" in e for e in config.errors)


def test_distro_patch_keywords(tmp_path: Path) -> None:
    debian = read(tmp_path / "d", {MAIN: "DebianBanner no\n"}, distro="debian")
    rhel = read(tmp_path / "r", {MAIN: "DebianBanner no\n"}, distro="rhel")
    assert debian.errors == () and debian.value("debianbanner") == "no"
    assert rhel.errors and "Bad configuration option" in rhel.errors[0]


def test_algorithm_modifiers() -> None:
    default = ("a", "b-ctr", "c-ctr", "d")
    assert resolve_algorithms("+x,a", default) == ("a", "b-ctr", "c-ctr", "d", "x")
    assert resolve_algorithms("^x", default) == ("x", "a", "b-ctr", "c-ctr", "d")
    assert resolve_algorithms("-*-ctr", default) == ("a", "d")
    assert resolve_algorithms("z,z,y", None) == ("z", "y")
    assert resolve_algorithms("-a", None) is None


# --- Match evaluation -----------------------------------------------------------------------------

DECOY = """PasswordAuthentication no
PermitRootLogin no
Match User backup,deploy Address 10.0.0.0/8
    PasswordAuthentication yes
Match Group admins
    PermitRootLogin yes
    AllowUsers root
Match Host *.lab.example
    X11Forwarding yes
"""


def test_match_only_insecure_setting_is_not_global(tmp_path: Path) -> None:
    config = read(tmp_path, {MAIN: DECOY})
    assert config.value("passwordauthentication") == "no"
    assert config.value("permitrootlogin") == "no"
    assert [m.criteria for m in config.matches] == [
        (("user", "backup,deploy"), ("address", "10.0.0.0/8")),
        (("group", "admins"),),
        (("host", "*.lab.example"),),
    ]
    assert config.matches[0].settings == {"passwordauthentication": ("yes",)}
    assert config.matches[0].origin == "/etc/ssh/sshd_config:3"


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"user": "backup", "address": "10.1.1.1"}, {"passwordauthentication": "yes"}),
    ({"user": "backup", "address": "192.0.2.1"}, {"passwordauthentication": "no"}),
    ({"user": "BACKUP", "address": "10.1.1.1"}, {"passwordauthentication": "no"}),  # user is case-sensitive
    ({"user": "bob", "groups": ("admins",)}, {"permitrootlogin": "yes", "allowusers": "root"}),
    ({"user": "bob", "groups": None}, {"permitrootlogin": "no", "allowusers": None}),  # groups unknown
    ({"user": "bob", "host": "PC1.LAB.example"}, {"x11forwarding": "yes"}),  # host is not
    ({"user": "bob"}, {"x11forwarding": "no"}),
])
def test_for_connection(tmp_path: Path, kwargs: dict[str, object],
                        expected: Mapping[str, str | None]) -> None:
    config = read(tmp_path, {MAIN: DECOY})
    effective = config.for_connection(**kwargs)  # type: ignore[arg-type]
    for keyword, value in expected.items():
        got = effective.get(keyword)
        assert (" ".join(got) if got else None) == value, keyword


def test_included_match_block_ends_with_its_file(tmp_path: Path) -> None:
    config = read(tmp_path, {MAIN: "Include conf.d/*.conf\nX11Forwarding no\n",
                             "etc/ssh/conf.d/a.conf": "Match User bob\nX11Forwarding yes\n"})
    assert config.value("x11forwarding") == "no"
    assert config.origins["x11forwarding"] == "/etc/ssh/sshd_config:2"
    assert config.for_connection("bob")["x11forwarding"] == ("yes",)


# --- hostile input --------------------------------------------------------------------------------

def test_binary_garbage_is_recorded_not_fatal(tmp_path: Path) -> None:
    garbage = bytes(range(1, 256)) * 40 + b"\nPermitRootLogin yes\n\xff\xfe\x00\x01junk\n"
    config = read(tmp_path, {MAIN: garbage})
    assert config.errors  # bad lines are reported (a NUL is no error: sshd joins the next line on)
    assert config.value("permitrootlogin") == "yes"  # the valid line still counts
    assert config.value("passwordauthentication") == "yes"  # defaults still apply
    assert len(config.errors) <= 100


@pytest.mark.parametrize("files", [
    {MAIN: "Include /etc/ssh/sshd_config\nPermitRootLogin no\n"},
    {MAIN: "Include a.conf\n", "etc/ssh/a.conf": "Include b.conf\n", "etc/ssh/b.conf": "Include a.conf\n"},
])
def test_include_loops_are_detected(tmp_path: Path, files: Mapping[str, str]) -> None:
    config = read(tmp_path, files)
    assert any("Include loop" in e for e in config.errors)
    assert ErrorKind.LOOP in config.kinds()


def test_include_depth_is_bounded(tmp_path: Path) -> None:
    files = {f"etc/ssh/d{i}.conf": f"Include d{i + 1}.conf\nMaxSessions {i + 1}\n" for i in range(40)}
    files[MAIN] = "Include d0.conf\n"
    config = read(tmp_path, files)
    assert any("too many recursive" in e for e in config.errors)
    assert len(config.files) == MAX_DEPTH


def test_file_count_is_bounded(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {f"etc/ssh/d/{i:04}.conf": "PermitTTY yes\n"
                                     for i in range(MAX_FILES + 20)}
    files[MAIN] = "Include d/*.conf\n"
    config = read(tmp_path, files)
    assert len(config.files) == MAX_FILES
    assert any(f"more than {MAX_FILES}" in e for e in config.errors)


def test_oversized_file_is_recorded(tmp_path: Path) -> None:
    config = read(tmp_path, {MAIN: "Include big.conf\nPermitRootLogin no\n",
                             "etc/ssh/big.conf": "#" * (MAX_FILE_BYTES + 1)})
    assert any(e.startswith("/etc/ssh/big.conf:") and "limit" in e for e in config.errors)
    assert config.kinds() == {ErrorKind.TOO_LARGE}
    assert config.value("permitrootlogin") == "no"


def test_absolute_include_and_symlinks_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_root(root, {MAIN: "Include /etc/shadow\nInclude ../../../../../etc/hostname\n"
                           "Include /etc/ssh/link.conf\n",
                     "etc/shadow": "PermitRootLogin yes\n", "etc/hostname": "MaxAuthTries 2\n",
                     "etc/real.conf": "X11Forwarding yes\n"})
    os.symlink("/../../../../etc/real.conf", root / "etc/ssh/link.conf")
    config = read_sshd_config(RootReader(str(root)), version="9.2p1")
    assert config.value("permitrootlogin") == "yes"  # the guest's /etc/shadow, not the scanner's
    assert config.value("maxauthtries") == "2"
    assert config.value("x11forwarding") == "yes"
    assert config.files == ("/etc/ssh/sshd_config", "/etc/shadow",
                            "/etc/ssh/../../../../../etc/hostname", "/etc/ssh/link.conf")


@pytest.mark.parametrize("make", ["missing", "directory", "fifo"])
def test_unreadable_main_file_raises_so_the_config_is_unknown(tmp_path: Path, make: str) -> None:
    (tmp_path / "etc/ssh").mkdir(parents=True)
    if make == "directory":
        (tmp_path / MAIN).mkdir()
    elif make == "fifo":
        os.mkfifo(tmp_path / MAIN)
    with pytest.raises(ReadError) as caught:
        read_sshd_config(RootReader(str(tmp_path)), version="9.2p1")
    assert caught.value.source == "/etc/ssh/sshd_config"


def test_fifo_include_is_not_opened(tmp_path: Path) -> None:
    make_root(tmp_path, {MAIN: "Include /etc/ssh/fifo\nPermitRootLogin no\n"})
    os.mkfifo(tmp_path / "etc/ssh/fifo")
    problems = Problems()
    config = read_sshd_config(RootReader(str(tmp_path)), version="9.2p1", problems=problems)
    assert [(p.source, p.kind) for p in problems] == [("/etc/ssh/fifo", ErrorKind.NOT_REGULAR)]
    assert config.value("permitrootlogin") == "no"


@pytest.mark.parametrize(("line", "fragment"), [
    ("Ciphers aes128-ctr", "not allowed within a Match block"),
    ("Protocol 2", "not allowed within a Match block"),
    ("UsePrivilegeSeparation sandbox", "not allowed within a Match block"),
])
def test_global_keywords_inside_match_are_errors(tmp_path: Path, line: str, fragment: str) -> None:
    config = read(tmp_path, {MAIN: f"Match User bob\n{line}\n"})
    assert any(fragment in e for e in config.errors)
    assert [(p.source, p.kind) for p in config.problems] == [("/etc/ssh/sshd_config:2", ErrorKind.INVALID)]


def test_large_config_is_fast(tmp_path: Path) -> None:
    body = "".join(f"AllowUsers user{i}\nMatch User u{i}\n  X11Forwarding yes\nMatch all\n"
                   for i in range(5000))
    start = time.perf_counter()
    config = read(tmp_path, {MAIN: body})
    elapsed = time.perf_counter() - start
    # every AllowUsers after the first "Match all" is a Match value, and Match values replace the
    # global list: sshd drops user0 (checked with sshd -T in test_sshd_vs_openssh.py)
    assert config.settings["allowusers"][0] == "user1"
    assert len(config.settings["allowusers"]) == 4999
    assert elapsed < 5.0


def test_algorithm_patterns_sshd_would_expand_are_unknown(tmp_path: Path) -> None:
    config = read(tmp_path, {MAIN: "PubkeyAcceptedAlgorithms +ssh-rsa*\nCiphers -*-ctr\n"})
    assert "pubkeyacceptedalgorithms" not in config.settings  # expansion list not recorded: unknown
    assert config.settings["ciphers"] == ("chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com",
                                          "aes256-gcm@openssh.com")
    assert config.errors == ()


def test_unknown_cipher_is_an_error_only_where_the_list_is_known(tmp_path: Path) -> None:
    known = read(tmp_path / "k", {MAIN: "Ciphers +arcfour\n"}, version="9.2p1")
    unknown = read(tmp_path / "u", {MAIN: "Ciphers arcfour\n"}, version="7.4p1")
    assert known.errors and "Bad Ciphers spec" in known.errors[0]
    assert unknown.errors == () and unknown.settings["ciphers"] == ("arcfour",)


def test_include_of_a_huge_directory_is_recorded(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {f"etc/ssh/d/{i}.conf": "" for i in range(4100)}
    files[MAIN] = "Include d/*.conf\nPermitRootLogin no\n"
    config = read(tmp_path, files)
    assert any("more than 4096 entries" in e for e in config.errors)
    assert config.value("permitrootlogin") == "no"



CLOUD = {MAIN: "Include /etc/ssh/sshd_config.d/*.conf\nX11Forwarding yes\n",
         "etc/ssh/sshd_config.d/50-cloud-init.conf": "PermitRootLogin yes\nPasswordAuthentication yes\n"}


def test_an_unreadable_include_is_named_in_the_fact(tmp_path: Path) -> None:
    # cloud-init's 0600 drop-in read by a user who is not root: the compiled-in default fills in, and the
    # fact says that a file sshd reads first was not read
    make_root(tmp_path, CLOUD)
    problems = Problems()
    config = read_sshd_config(DeniedReader(tmp_path, "/etc/ssh/sshd_config.d/50-cloud-init.conf"),
                              version="9.2p1", distro="debian", problems=problems)
    assert config.value("permitrootlogin") == "without-password"
    assert config.unread == ("/etc/ssh/sshd_config.d/50-cloud-init.conf: Permission denied",)
    assert [(p.source, p.kind) for p in problems] == [
        ("/etc/ssh/sshd_config.d/50-cloud-init.conf", ErrorKind.DENIED)]


def test_an_include_directory_that_cannot_be_listed_is_named_in_the_fact(tmp_path: Path) -> None:
    make_root(tmp_path, CLOUD)
    config = read_sshd_config(DeniedReader(tmp_path, "/etc/ssh/sshd_config.d"), version="9.2p1")
    assert config.unread == (
        "/etc/ssh/sshd_config.d: Permission denied (Include /etc/ssh/sshd_config.d/*.conf)",)


def test_a_fifo_include_is_unread_and_a_missing_one_is_not(tmp_path: Path) -> None:
    make_root(tmp_path, {MAIN: "Include /etc/ssh/fifo /etc/ssh/missing.conf /etc/ssh/none.d/*.conf\n"})
    os.mkfifo(tmp_path / "etc/ssh/fifo")
    config = read_sshd_config(RootReader(str(tmp_path)), version="9.2p1")
    assert config.unread == ("/etc/ssh/fifo: not a regular file (fifo); not opened",)


def test_a_complete_configuration_has_nothing_unread(tmp_path: Path) -> None:
    make_root(tmp_path, CLOUD)
    config = read_sshd_config(RootReader(str(tmp_path)), version="9.2p1")
    assert config.value("permitrootlogin") == "yes" and config.unread == ()


@pytest.mark.parametrize("value", ["9" * 5000, "٣", "²", "1" * 13])
def test_a_number_sshd_refuses_is_an_error_on_its_line_not_a_crash(tmp_path: Path, value: str) -> None:
    # int() of 5,000 digits raised ValueError and the whole configuration became UNKNOWN without a
    # line; '٣' was 3 to \d and int(), no number to sshd.
    parsed = read(tmp_path, {MAIN: f"PermitRootLogin no\nMaxAuthTries {value}\nLoginGraceTime {value}\n"
                                   f"Port {value}\n"})
    assert parsed.config is not None and parsed.config.value("permitrootlogin") == "no"
    lines = sorted(e.split(": ", 1)[0] for e in parsed.errors)
    assert lines == [f"/{MAIN}:2", f"/{MAIN}:3", f"/{MAIN}:4"], parsed.errors


def test_include_dirs_are_the_directories_wildcards_list_even_when_nothing_matches(tmp_path: Path) -> None:
    (tmp_path / "etc/ssh/sshd_config.d").mkdir(parents=True)
    (tmp_path / "srv/ssh/a").mkdir(parents=True)
    cfg = read(tmp_path, {MAIN: "Include /etc/ssh/sshd_config.d/*.conf\nInclude /srv/ssh/*/x.conf\n"
                                "Include extra.conf\n",
                          "etc/ssh/extra.conf": "UsePAM yes\n"})
    assert cfg.include_dirs == ("/etc/ssh/sshd_config.d", "/srv/ssh")
    assert cfg.config_paths() == ("/etc/ssh/sshd_config", "/etc/ssh/extra.conf", "/etc/ssh",
                                  "/etc/ssh/sshd_config.d", "/srv/ssh")


def test_sshd_config_permissions_judge_each_path_once(tmp_path: Path) -> None:
    from vmsec.checks.api import Environment
    from vmsec.checks.guest.file_permissions import sshd_config_permissions
    from vmsec.collectors.guest import collect_guest
    from vmsec.facts import Inventory

    (tmp_path / "etc/ssh/sshd_config.d").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text("Include /etc/ssh/sshd_config.d/*.conf\n")
    (tmp_path / "etc/ssh/sshd_config.d/a.conf").write_text("UsePAM yes\n")
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text("Package: openssh-server\nStatus: install ok installed\n"
                                                  "Version: 1:9.2p1-2+deb12u3\n")
    guest, _ = collect_guest(RootReader(str(tmp_path)), name="vm", origin=str(tmp_path))
    subjects = [r.subject for r in sshd_config_permissions(guest, Environment(inventory=Inventory(),
                                                                               host=None))]
    assert subjects == ["/etc/ssh", "/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/a.conf",
                        "/etc/ssh/sshd_config.d"]
