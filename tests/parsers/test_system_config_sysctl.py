"""read_sysctl: systemd's sysctl.d order, same-name overrides, masks, last assignment wins — checked
against the documented order in a table, and against systemd-sysctl itself where it can run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components import require
from vmsec.collectors.reader import RootReader
from vmsec.errors import ReadError
from vmsec.facts import SysctlValue
from vmsec.parsers.system.sysctl import parse_sysctl
from vmsec.parsers.system_config import normalize_key, read_sysctl, sysctl_files

DATA = Path(__file__).resolve().parents[1] / "data" / "system" / "debian12"


def write(root: Path, files: dict[str, str]) -> RootReader:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if text.startswith("->"):
            os.symlink(text[2:], path)
        else:
            path.write_text(text)
    return RootReader(str(root))


# (files, key, expected value, expected origin): each row one rule of sysctl.d(5)
ORDER_TABLE = [
    pytest.param(
        {"usr/lib/sysctl.d/10-a.conf": "k.x = 1\n", "etc/sysctl.d/20-b.conf": "k.x = 2\n"},
        "k.x",
        "2",
        "/etc/sysctl.d/20-b.conf:1",
        id="later-name-wins-across-dirs",
    ),
    pytest.param(
        {"etc/sysctl.d/10-a.conf": "k.x = 1\n", "usr/lib/sysctl.d/20-b.conf": "k.x = 2\n"},
        "k.x",
        "2",
        "/usr/lib/sysctl.d/20-b.conf:1",
        id="name-order-not-dir-order",
    ),
    pytest.param(
        {"usr/lib/sysctl.d/50-x.conf": "k.x = vendor\n", "etc/sysctl.d/50-x.conf": "k.y = 1\n"},
        "k.x",
        None,
        None,
        id="same-name-in-etc-hides-vendor-file",
    ),
    pytest.param(
        {"usr/lib/sysctl.d/50-x.conf": "k.x = vendor\n", "run/sysctl.d/50-x.conf": "k.x = run\n"},
        "k.x",
        "run",
        "/run/sysctl.d/50-x.conf:1",
        id="run-overrides-usr-lib",
    ),
    pytest.param(
        {"lib/sysctl.d/50-x.conf": "k.x = lib\n", "usr/local/lib/sysctl.d/50-x.conf": "k.x = local\n"},
        "k.x",
        "local",
        "/usr/local/lib/sysctl.d/50-x.conf:1",
        id="usr-local-overrides-lib",
    ),
    pytest.param(
        {"usr/lib/sysctl.d/50-x.conf": "k.x = vendor\n", "etc/sysctl.d/50-x.conf": "->/dev/null"},
        "k.x",
        None,
        None,
        id="dev-null-link-masks",
    ),
    pytest.param(
        {"etc/sysctl.d/10-a.conf": "k.x = 1\nk.x = 3\n"},
        "k.x",
        "3",
        "/etc/sysctl.d/10-a.conf:2",
        id="last-assignment-in-file-wins",
    ),
    pytest.param(
        {"etc/sysctl.d/99-z.conf": "k.x = 1\n", "etc/sysctl.conf": "k.x = 9\n"},
        "k.x",
        "9",
        "/etc/sysctl.conf:1",
        id="sysctl-conf-read-last",
    ),
    pytest.param(
        {
            "etc/sysctl.d/99-sysctl.conf": "->../sysctl.conf",
            "etc/sysctl.d/99-zz.conf": "k.x = 2\n",
            "etc/sysctl.conf": "k.x = 1\n",
        },
        "k.x",
        "2",
        "/etc/sysctl.d/99-zz.conf:1",
        id="sysctl-conf-linked-is-read-once-in-place",
    ),
    pytest.param(
        {"etc/sysctl.d/10-a.conf": "k.x = 1\n", "etc/sysctl.d/20-b.txt": "k.x = 2\n"},
        "k.x",
        "1",
        "/etc/sysctl.d/10-a.conf:1",
        id="only-conf-files",
    ),
    pytest.param(
        {"etc/sysctl.d/10-a.conf": "-net/ipv4/conf/eth0.100/rp_filter=  1 \n"},
        "net.ipv4.conf.eth0/100.rp_filter",
        "1",
        "/etc/sysctl.d/10-a.conf:1",
        id="slash-key-and-dash",
    ),
    pytest.param(
        {"usr/lib/sysctl.d/50-default.conf": "net.ipv4.conf.*.rp_filter = 2\n; c\n# c\n"},
        "net.ipv4.conf.*.rp_filter",
        "2",
        "/usr/lib/sysctl.d/50-default.conf:1",
        id="glob-key-kept",
    ),
]


@pytest.mark.parametrize(("files", "key", "value", "origin"), ORDER_TABLE)
def test_documented_order(
    tmp_path: Path, files: dict[str, str], key: str, value: str | None, origin: str | None
) -> None:
    result = read_sysctl(write(tmp_path, files))
    if value is None:
        assert key not in result
    else:
        assert result[key] == SysctlValue(value=value, origin=origin or "")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("net.ipv4.ip_forward", "net.ipv4.ip_forward"),
        ("net/ipv4/ip_forward", "net.ipv4.ip_forward"),
        ("net/ipv4/conf/enp3s0.200/forwarding", "net.ipv4.conf.enp3s0/200.forwarding"),
        ("net.ipv4.conf.enp3s0/200.forwarding", "net.ipv4.conf.enp3s0/200.forwarding"),
        ("kernel", "kernel"),
    ],
)
def test_normalize_key(raw: str, normal: str) -> None:
    assert normalize_key(raw) == normal


def test_bad_lines_are_recorded() -> None:
    errors: list[ReadError] = []
    values: dict[str, SysctlValue] = {}
    parse_sysctl(
        "kernel.x = 1\njust words\n= 3\nbad key = 1\n\x00\x01 = 2\n", "/etc/sysctl.d/a.conf", values, errors
    )
    # "bad key" is a key to systemd (it writes /proc/sys/bad key and fails); a NUL ends a line
    assert list(values) == ["kernel.x", "bad key"]
    assert [e.source for e in errors] == [f"/etc/sysctl.d/a.conf:{n}" for n in (2, 3, 6)]


def debian12_root(root: Path) -> RootReader:
    """A Debian 12 root with its real sysctl files, plus administrator overrides."""
    files = {
        "usr/lib/sysctl.d/50-pid-max.conf": (DATA / "50-pid-max.conf").read_text(),
        "usr/lib/sysctl.d/99-protect-links.conf": (DATA / "99-protect-links.conf").read_text(),
        "usr/lib/sysctl.d/30-vendor.conf": "net.ipv4.ip_forward = 1\nkernel.kptr_restrict = 0\n",
        "etc/sysctl.conf": (DATA / "sysctl.conf").read_text() + "net.ipv4.conf.all.accept_redirects = 0\n",
        "etc/sysctl.d/99-sysctl.conf": "->../sysctl.conf",
        "etc/sysctl.d/30-vendor.conf": "kernel.kptr_restrict = 2\n",
        "etc/sysctl.d/60-hardening.conf": "fs.protected_regular = 1\n"
            "net.ipv4.ip_forward=0\n-kernel.yama.ptrace_scope = 1\n",
        "etc/sysctl.d/README.sysctl": "not a conf file\n",
        "run/sysctl.d/40-runtime.conf": "kernel.dmesg_restrict = 1\n",
        "usr/local/lib/sysctl.d/40-runtime.conf": "kernel.dmesg_restrict = 0\n",
        "usr/local/lib/sysctl.d/70-local.conf": "net/ipv4/tcp_syncookies = 1\n",
        "usr/lib/sysctl.d/80-masked.conf": "kernel.sysrq = 1\n",
        "etc/sysctl.d/80-masked.conf": "->/dev/null",
    }
    return write(root, files)


EXPECTED_FILES = [
    "/etc/sysctl.d/30-vendor.conf",
    "/run/sysctl.d/40-runtime.conf",
    "/usr/lib/sysctl.d/50-pid-max.conf",
    "/etc/sysctl.d/60-hardening.conf",
    "/usr/local/lib/sysctl.d/70-local.conf",
    "/usr/lib/sysctl.d/99-protect-links.conf",
    "/etc/sysctl.d/99-sysctl.conf",
]


def test_realistic_debian12_root(tmp_path: Path) -> None:
    reader = debian12_root(tmp_path)
    assert sysctl_files(reader) == EXPECTED_FILES
    values = {k: (v.value, v.origin) for k, v in read_sysctl(reader).items()}
    assert values == {
        "kernel.kptr_restrict": ("2", "/etc/sysctl.d/30-vendor.conf:1"),
        "kernel.dmesg_restrict": ("1", "/run/sysctl.d/40-runtime.conf:1"),
        "kernel.pid_max": ("4194304", "/usr/lib/sysctl.d/50-pid-max.conf:16"),
        "fs.protected_regular": ("2", "/usr/lib/sysctl.d/99-protect-links.conf:9"),  # 99 sorts after 60
        "net.ipv4.ip_forward": ("0", "/etc/sysctl.d/60-hardening.conf:2"),
        "kernel.yama.ptrace_scope": ("1", "/etc/sysctl.d/60-hardening.conf:3"),
        "net.ipv4.tcp_syncookies": ("1", "/usr/local/lib/sysctl.d/70-local.conf:1"),
        "fs.protected_fifos": ("1", "/usr/lib/sysctl.d/99-protect-links.conf:7"),
        "fs.protected_hardlinks": ("1", "/usr/lib/sysctl.d/99-protect-links.conf:8"),
        "fs.protected_symlinks": ("1", "/usr/lib/sysctl.d/99-protect-links.conf:10"),
        "net.ipv4.conf.all.accept_redirects": ("0", "/etc/sysctl.d/99-sysctl.conf:69"),
    }


def _systemd_sysctl() -> str | None:
    for path in ("/lib/systemd/systemd-sysctl", "/usr/lib/systemd/systemd-sysctl"):
        if os.access(path, os.X_OK):
            return path
    return None


def test_matches_systemd_sysctl_cat_config(tmp_path: Path) -> None:
    """Mount the realistic root's sysctl directories over this machine's in a private mount namespace
    and ask the real systemd-sysctl which files it applies, in which order."""
    binary = _systemd_sysctl()
    unshare = shutil.which("unshare")
    require(binary, "systemd-sysctl (systemd)", "it is the oracle for the order of sysctl files")
    require(unshare, "unshare (util-linux)", "it creates the private mount namespace")
    require(os.geteuid() == 0, "root", "the sysctl directories are bind-mounted in a mount namespace")
    require(Path("/etc/sysctl.conf").exists(), "/etc/sysctl.conf (procps)", "it is a bind-mount target")
    root = tmp_path / "root"
    reader = debian12_root(root)
    script = f"""set -e
mount --make-rprivate /
mount --bind {root}/etc/sysctl.d /etc/sysctl.d
mount --bind {root}/etc/sysctl.conf /etc/sysctl.conf
mount --bind {root}/usr/lib/sysctl.d /usr/lib/sysctl.d
mount -t tmpfs vmsec-test /run
mkdir /run/sysctl.d
mount --bind {root}/run/sysctl.d /run/sysctl.d
mount -t tmpfs vmsec-test /usr/local/lib
mkdir /usr/local/lib/sysctl.d
mount --bind {root}/usr/local/lib/sysctl.d /usr/local/lib/sysctl.d
exec {binary} --cat-config --no-pager
"""
    done = subprocess.run(
        [unshare, "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    require(done.returncode == 0 or "mount" not in done.stderr, "mount namespaces",
            f"unshare -m and mount failed here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    sections: list[tuple[str, list[str]]] = []
    for line in done.stdout.splitlines():
        if line.startswith("# /") and (line.endswith(".conf")):
            sections.append((line[2:], []))
        elif sections:
            sections[-1][1].append(line)
    # systemd lists a masked file (a link to /dev/null) with an empty body; it sets nothing
    masked = [
        path
        for path, body in sections
        if os.path.islink(root / path.lstrip("/")) and os.readlink(root / path.lstrip("/")) == "/dev/null"
    ]
    assert masked == ["/etc/sysctl.d/80-masked.conf"]
    assert [path for path, _ in sections if path not in masked] == sysctl_files(reader)
    systemd_values: dict[str, SysctlValue] = {}
    for path, body in sections:
        parse_sysctl("\n".join(body), path, systemd_values, None)
    assert {k: v.value for k, v in systemd_values.items()} == {
        k: v.value for k, v in read_sysctl(reader).items()
    }


# Debian 12's systemd-sysctl 252 run on each planted root in a private user and network namespace
# (a review, 2026-12-06): the value the kernel ends up with.
@pytest.mark.parametrize(("lines", "key", "value"), [
    (["net.ipv4.conf.*.send_redirects = 0", "-net.ipv4.conf.all.send_redirects"],
     "net.ipv4.conf.all.send_redirects", None),  # a negative match: globs leave it alone
    (["net.*.rp_filter = 1"], "net.ipv4.conf.all.rp_filter", None),  # '*' never crosses a dot
    (["net.ipv4.ip_forwar? = 1"], "net.ipv4.ip_forward", "1"),  # '?' is a glob too
    (["net.ipv4.conf.[a]ll.forwarding = 1"], "net.ipv4.ip_forward", "1"),  # the same knob
    (["net.ipv4..ip_forward = 1"], "net.ipv4.ip_forward", "1"),  # path_simplify
    (["/net.ipv4.conf.all.rp_filter = 1"], "net.ipv4.conf.all.rp_filter", None),  # a path with dots
    (["--net.ipv4.tcp_syncookies = 0"], "net.ipv4.tcp_syncookies", None),  # one '-' is the flag
    (["*.send_redirects = 0", "al*.send_redirects = 0", "*.send_redirects = 1"],
     "net.ipv4.conf.all.send_redirects", None),  # needs three components: matches nothing here
    (["net.ipv4.conf.*.send_redirects = 0", "net.ipv4.conf.a*.send_redirects = 0",
      "net.ipv4.conf.*.send_redirects = 1"], "net.ipv4.conf.all.send_redirects", "1"),  # moved last
    (["# note\rnet.ipv4.ip_forward = 1"], "net.ipv4.ip_forward", "1"),  # '\r' ends a line
])
def test_values_as_systemd_sysctl_applies_them(lines: list[str], key: str, value: str | None) -> None:
    from vmsec.checks.guest.kernel_params import _lookup

    values: dict[str, SysctlValue] = {}
    parse_sysctl("\n".join(lines) + "\n", "/etc/sysctl.d/60-t.conf", values, [])
    found = _lookup(values, key)
    assert (found.value if found is not None else None) == value


def test_many_glob_keys_cost_a_bounded_time(tmp_path: Path) -> None:
    import time

    (tmp_path / "etc/sysctl.d").mkdir(parents=True)
    (tmp_path / "etc/sysctl.d/60-g.conf").write_text(
        "".join(f"net.ipv4.conf.x{n}*.send_redirects = 0\n" for n in range(6_000)))
    errors: list[ReadError] = []
    values = read_sysctl(RootReader(str(tmp_path)), errors=errors)
    from vmsec.checks.guest.kernel_params import _lookup

    started = time.process_time()
    for key in ("net.ipv4.conf.all.send_redirects", "net.ipv4.conf.default.send_redirects"):
        _lookup(values, key)
    assert time.process_time() - started < 5  # 76 s per scan before (fnmatch's cache thrashed)
    assert any("glob keys" in e.reason for e in errors)
