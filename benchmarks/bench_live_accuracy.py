"""Issue 11's accuracy figures, on this machine:

1. live host sysctl / mount / LSM verdicts against the running kernel (goal: 100 %). vmsec's verdicts
   (``scan host`` on /) are compared with verdicts derived independently from the kernel: sysctl values
   from procps ``sysctl -n``, mounts from util-linux ``findmnt``, the LSM stack from securityfs mounted in
   a private mount namespace (``unshare -m``; this machine does not mount it).
2. OS verdicts over SSH against a local audit of the same machine (goal: >= 99 %): a private sshd on
   loopback in front of this machine, ``scan ssh root@127.0.0.1`` against ``scan host /``, every
   guest-scope check compared (subject by subject).

    .venv/bin/python benchmarks/bench_live_accuracy.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # sshd.py: a private OpenSSH server

import sshd
from vmsec.checks.api import Scope
from vmsec.checks.catalog import default_catalog
from vmsec.collectors.host import collect_host_inventory
from vmsec.engine import run_checks
from vmsec.pipeline import ScanOptions, scan
from vmsec.specs import HostSpec

# key -> (check id, the value that passes), as the kernel documentation states the good state
SYSCTL: dict[str, tuple[str, Callable[[int], bool]]] = {
    "net.ipv4.conf.all.rp_filter": ("VMS-GST-095", lambda v: v in (1, 2)),
    "net.ipv4.conf.default.rp_filter": ("VMS-GST-095", lambda v: v in (1, 2)),
    "net.ipv4.conf.all.accept_redirects": ("VMS-GST-096", lambda v: v == 0),
    "net.ipv4.conf.default.accept_redirects": ("VMS-GST-096", lambda v: v == 0),
    "net.ipv6.conf.all.accept_redirects": ("VMS-GST-096", lambda v: v == 0),
    "net.ipv6.conf.default.accept_redirects": ("VMS-GST-096", lambda v: v == 0),
    "net.ipv4.conf.all.send_redirects": ("VMS-GST-097", lambda v: v == 0),
    "net.ipv4.conf.default.send_redirects": ("VMS-GST-097", lambda v: v == 0),
    "net.ipv4.conf.all.accept_source_route": ("VMS-GST-098", lambda v: v == 0),
    "net.ipv4.conf.default.accept_source_route": ("VMS-GST-098", lambda v: v == 0),
    "net.ipv4.tcp_syncookies": ("VMS-GST-100", lambda v: v >= 1),
    "kernel.randomize_va_space": ("VMS-GST-101", lambda v: v == 2),
    "kernel.kptr_restrict": ("VMS-GST-102", lambda v: v >= 1),
    "kernel.dmesg_restrict": ("VMS-GST-103", lambda v: v == 1),
    "kernel.yama.ptrace_scope": ("VMS-GST-104", lambda v: v >= 1),
    "fs.protected_symlinks": ("VMS-GST-105", lambda v: v == 1),
    "fs.protected_hardlinks": ("VMS-GST-105", lambda v: v == 1),
    "fs.suid_dumpable": ("VMS-GST-106", lambda v: v == 0),
    "kernel.unprivileged_bpf_disabled": ("VMS-GST-107", lambda v: v in (1, 2)),
    "net.core.bpf_jit_harden": ("VMS-GST-108", lambda v: v >= 1),
}
HARDENED = ("nodev", "nosuid", "noexec")


def sysctl_oracle() -> dict[tuple[str, str], str]:
    expected = {}
    for key, (check_id, good) in SYSCTL.items():
        done = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            expected[(check_id, key)] = "UNKNOWN"  # not in this kernel
        else:
            expected[(check_id, key)] = "PASS" if good(int(done.stdout.split()[0])) else "FAIL"
    return expected


def mount_oracle() -> dict[tuple[str, str], str]:
    done = subprocess.run(["findmnt", "-J", "-l", "-o", "TARGET,VFS-OPTIONS"], capture_output=True, text=True,
                          check=True)
    mounts = {m["target"]: m["vfs-options"].split(",") for m in json.loads(done.stdout)["filesystems"]}

    def holder(path: str) -> list[str]:
        best = max((t for t in mounts if path == t or path.startswith(t.rstrip("/") + "/")), key=len)
        return mounts[best]

    tmp_ok = "/tmp" in mounts and all(o in mounts["/tmp"] for o in HARDENED)
    expected = {("VMS-GST-127", "/tmp"): "PASS" if tmp_ok else "FAIL"}
    shm_ok = all(o in holder("/dev/shm") for o in HARDENED)
    expected[("VMS-GST-128", "/dev/shm")] = "PASS" if shm_ok else "FAIL"
    expected[("VMS-GST-129", "/var/log")] = "PASS" if "/var/log" in mounts or "/var" in mounts else "FAIL"
    return expected


def lsm_oracle() -> dict[tuple[str, str], str]:
    script = ("mount -t securityfs none /sys/kernel/security 2>/dev/null; cat /sys/kernel/security/lsm; "
              "echo; cat /sys/fs/selinux/enforce 2>/dev/null || echo -; "
              "cat /sys/module/apparmor/parameters/mode 2>/dev/null || echo -; "
              "grep -c '(enforce)' /sys/kernel/security/apparmor/profiles 2>/dev/null || echo 0")
    out = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, check=True)
    stack, enforce, mode, profiles = [*out.stdout.splitlines(), "", "-", "-", "0"][:4]
    names = stack.split(",")
    ok = ("selinux" in names and enforce.strip() == "1") or (
        "apparmor" in names and mode.strip() == "enforce" and int(profiles or 0) > 0)
    subject = "SELinux" if "selinux" in names else "AppArmor" if "apparmor" in names else "LSM"
    return {("VMS-LIVE-001", subject): "PASS" if ok else "FAIL"}


def live_host_agreement() -> dict[str, object]:
    inventory = collect_host_inventory("/")
    ids = sorted({c for c, _ in SYSCTL.values()}
                 | {"VMS-GST-127", "VMS-GST-128", "VMS-GST-129", "VMS-LIVE-001"})
    ours = {(f.check_id, f.subject): f.status.value
            for f in run_checks(inventory, default_catalog().select(ids=ids)).findings}
    expected = {**sysctl_oracle(), **mount_oracle(), **lsm_oracle()}
    disagree = {f"{c} {s}": (ours.get((c, s)), v) for (c, s), v in expected.items() if ours.get((c, s)) != v}
    return {"verdicts": len(expected), "identical": len(expected) - len(disagree),
            "percent": round(100 * (len(expected) - len(disagree)) / len(expected), 2),
            "disagreements (vmsec, kernel)": disagree}


def ssh_agreement() -> dict[str, object]:
    why = sshd.available()
    if why:
        return {"skipped": why}
    work = Path(tempfile.mkdtemp(prefix="vmsec-ssh-accuracy-"))
    server = sshd.start_sshd(work / "sshd")
    try:
        started = time.monotonic()
        remote = scan([server.spec(name="this-machine")], ScanOptions())
        over_ssh = time.monotonic() - started
        started = time.monotonic()
        local = scan([HostSpec(root="/")], ScanOptions())
        locally = time.monotonic() - started
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    guest_ids = {c.id for c in default_catalog().checks if c.scope is Scope.GUEST}
    ours = {(f.check_id, f.subject): f.status.value for f in remote.findings if f.check_id in guest_ids}
    theirs = {(f.check_id, f.subject): f.status.value for f in local.findings if f.check_id in guest_ids}
    keys = set(ours) | set(theirs)
    disagree = {f"{c} {s}": (ours.get((c, s)), theirs.get((c, s))) for c, s in keys
                if ours.get((c, s)) != theirs.get((c, s))}
    return {"verdicts": len(keys), "identical": len(keys) - len(disagree),
            "percent": round(100 * (len(keys) - len(disagree)) / len(keys), 2),
            "disagreements (ssh, local)": disagree, "ssh_scan_s": round(over_ssh, 2),
            "local_scan_s": round(locally, 2)}


def main() -> None:
    print(json.dumps({"live host vs running kernel": live_host_agreement(),
                      "over SSH vs local audit": ssh_agreement()}, indent=2, default=str))


if __name__ == "__main__":
    main()
