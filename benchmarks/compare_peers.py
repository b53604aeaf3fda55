"""vmsec, OpenSCAP (``oscap-chroot``) and Lynis side by side on the same planted Debian 12 root.

What it does, in one run:

1. takes the cached debootstrap'd Debian 12 root (``tests/images/build_images.sh --rootfs`` names the
   tarball under ``${VMSEC_TEST_CACHE:-/var/cache/vmsec-tests}``, running ``debootstrap`` first if it is
   not there yet, about 40 s) and unpacks a copy into a temporary directory;
2. plants a realistic set of misconfigurations into that copy (``PLANTED``);
3. asks OpenSSH itself for the truth: the root's own ``/usr/sbin/sshd -T`` under ``chroot``, once per
   connection context (``-C user=...``), which resolves Include, first-value-wins and Match blocks;
4. runs and times vmsec (``vmsec scan rootfs``), OpenSCAP (``oscap-chroot`` with ssg-debian11 content,
   once on the unmodified copy and once with ``/etc/debian_version`` set to 11.11), Lynis under
   ``chroot`` (copied into the root) and Lynis ``--rootdir``;
5. prints the verdict table (planted issue, OpenSSH / file truth, each tool's own words) and the
   timing ratios, and writes everything as JSON with ``--json``.

Needs root, and the Debian packages openscap-scanner openscap-utils ssg-debian lynis debootstrap.
Nothing is mounted and nothing outside the temporary directory is written except Lynis'
``--rootdir`` run, which writes its log and report into the temporary directory too.

Run: .venv/bin/python benchmarks/compare_peers.py [--json out.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from defusedxml import ElementTree as SafeET

REPO = Path(__file__).resolve().parents[1]
VMSEC = REPO / ".venv" / "bin" / "vmsec"
BUILD_IMAGES = REPO / "tests" / "images" / "build_images.sh"
SSG_DS = Path("/usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml")
XCCDF_NS = "{http://checklists.nist.gov/xccdf/1.2}"
SSG_RULE = "xccdf_org.ssgproject.content_rule_"
# md5crypt of "backup2026": a weak hash AUTH-9229 and vmsec both know.
MD5_HASH = "$1$vmsecslt$Q5iFAhN/Gw1xuS4.ZOfNj0"
# Connection contexts for ``sshd -T -C``: a root login, the Match'ed user, the empty-password user.
SSH_CONTEXTS = ("root", "backup", "deploy")
SSH_KEYWORDS = (
    "permitrootlogin",
    "passwordauthentication",
    "permitemptypasswords",
    "kbdinteractiveauthentication",
    "x11forwarding",
    "maxauthtries",
)


@dataclass(frozen=True, slots=True)
class Plant:
    """One planted misconfiguration: where it is and what it means."""

    key: str
    description: str


PLANTED: tuple[Plant, ...] = (
    Plant(
        "ssh-cloudinit-password",
        "sshd_config.d/50-cloud-init.conf: PasswordAuthentication yes, while the admin wrote "
        "PasswordAuthentication no in sshd_config below the Include (the drop-in wins)",
    ),
    Plant(
        "ssh-rootlogin-decoy",
        "sshd_config.d/10-hardening.conf: PermitRootLogin no; sshd_config: PermitRootLogin yes "
        "(global, but later: OpenSSH keeps the first value, so root login is refused)",
    ),
    Plant(
        "ssh-match-backup",
        "sshd_config ends with 'Match User backup' + PasswordAuthentication yes + PermitEmptyPasswords yes",
    ),
    Plant("empty-password", "account deploy (UID 1001, /bin/bash) has an empty password field"),
    Plant("weak-hash", "account backup gets /bin/bash and an md5crypt ($1$) password"),
    Plant("sudo-nopasswd", "sudoers.d/90-deploy: deploy ALL=(ALL:ALL) NOPASSWD: ALL"),
    Plant("apt-trusted", "sources.list.d/internal.list: deb [trusted=yes] http://apt.internal.example"),
    Plant("sysctl-redirects", "sysctl.d/60-net.conf: net.ipv4.conf.all.accept_redirects = 1"),
)


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _append_line(root: Path, rel: str, line: str) -> None:
    path = root / rel.lstrip("/")
    with path.open("a") as fh:
        fh.write(line + "\n")


def _replace_field(root: Path, rel: str, user: str, index: int, value: str) -> None:
    path = root / rel.lstrip("/")
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        parts = line.split(":")
        if parts[0] == user:
            parts[index] = value
            lines[i] = ":".join(parts)
    path.write_text("\n".join(lines) + "\n")


def plant(root: Path) -> None:
    """Write every misconfiguration of ``PLANTED`` into the root copy."""
    sshd = root / "etc/ssh/sshd_config"
    text = sshd.read_text()
    text = text.replace("#PermitRootLogin prohibit-password", "PermitRootLogin yes", 1)
    text = text.replace("#PasswordAuthentication yes", "PasswordAuthentication no", 1)
    text += "\nMatch User backup\n\tPasswordAuthentication yes\n\tPermitEmptyPasswords yes\n"
    sshd.write_text(text)
    _write(root, "etc/ssh/sshd_config.d/10-hardening.conf", "PermitRootLogin no\n")
    _write(root, "etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\n")
    # Accounts: deploy with an empty password, backup with a shell and an md5crypt hash.
    _append_line(root, "etc/passwd", "deploy:x:1001:1001:Deploy:/home/deploy:/bin/bash")
    _append_line(root, "etc/group", "deploy:x:1001:")
    _append_line(root, "etc/gshadow", "deploy:!::")
    _append_line(root, "etc/shadow", "deploy::20000:0:99999:7:::")
    (root / "home/deploy").mkdir(parents=True, exist_ok=True)
    _replace_field(root, "etc/passwd", "backup", 6, "/bin/bash")
    _replace_field(root, "etc/shadow", "backup", 1, MD5_HASH)
    _write(root, "etc/sudoers.d/90-deploy", "deploy ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
    _write(
        root,
        "etc/apt/sources.list.d/internal.list",
        "deb [trusted=yes] http://apt.internal.example/debian bookworm main\n",
    )
    _write(root, "etc/sysctl.d/60-net.conf", "net.ipv4.conf.all.accept_redirects = 1\n")


# --- running the tools ---------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """One timed command: its wall clock, exit code and (trimmed) output."""

    name: str
    argv: list[str]
    seconds: float = 0.0
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def timed_median(name: str, argv: Sequence[str], repeat: int = 3) -> Run:
    """Run ``argv`` ``repeat`` times; the last run, with the median wall clock (vmsec is cheap)."""
    runs = [timed(name, argv) for _ in range(repeat)]
    last = runs[-1]
    times = sorted(r.seconds for r in runs)
    last.seconds = times[len(times) // 2]
    last.extra["wall_s_each"] = [round(r.seconds, 3) for r in runs]
    return last


def timed(name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` and measure its wall clock."""
    run = Run(name=name, argv=list(argv))
    start = time.perf_counter()
    proc = subprocess.run(list(argv), capture_output=True, text=True, errors="replace", env=env, check=False)
    run.seconds = time.perf_counter() - start
    run.rc = proc.returncode
    run.stdout = proc.stdout
    run.stderr = proc.stderr
    return run


def find_or_build_root(work: Path) -> tuple[Path, str]:
    """Unpack the Debian 12 root the image tests use (``build_images.sh --rootfs``: cached, or
    debootstrap'd first) into ``work/root``."""
    root = work / "root"
    root.mkdir()
    built = subprocess.run(["sh", str(BUILD_IMAGES), "--rootfs"], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise RuntimeError(f"{BUILD_IMAGES} --rootfs failed (exit {built.returncode}):\n"
                           f"{built.stderr[-4000:]}")
    tarball = Path(built.stdout.strip().splitlines()[-1])
    subprocess.run(["tar", "--numeric-owner", "-xpf", str(tarball), "-C", str(root)], check=True)
    return root, f"cached tarball {tarball}"


def sshd_truth(root: Path) -> dict[str, dict[str, str]]:
    """Effective sshd settings per user, from the root's own ``sshd -T`` run under chroot."""
    (root / "run/sshd").mkdir(parents=True, exist_ok=True)
    truth: dict[str, dict[str, str]] = {}
    for user in SSH_CONTEXTS:
        proc = subprocess.run(
            [
                "chroot",
                str(root),
                "/usr/sbin/sshd",
                "-T",
                "-C",
                f"user={user},host=client.example,addr=192.0.2.10,laddr=192.0.2.1,lport=22",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"sshd -T for user {user} failed: {proc.stderr.strip()}")
        values: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            key, _, value = line.partition(" ")
            if key in SSH_KEYWORDS:
                values[key] = value
        truth[user] = values
    return truth


def run_vmsec(root: Path) -> tuple[Run, list[dict[str, object]]]:
    """``vmsec scan rootfs ROOT --format json``; the run and its findings."""
    run = timed_median("vmsec", [str(VMSEC), "scan", "rootfs", str(root), "--format", "json", "-q"])
    findings: list[dict[str, object]] = []
    if run.stdout.strip():
        report = json.loads(run.stdout)
        findings = list(report["findings"])
        run.extra["checks_run"] = report["scan"]["checks_run"]
        run.extra["by_status"] = report["summary"]["by_status"]
    run.stdout = ""
    return run, findings


def run_vmsec_image(root: Path, work: Path) -> tuple[Run, list[dict[str, object]]]:
    """The planted root as an ext4 filesystem in a qcow2 image, audited by ``vmsec scan image``."""
    fs = work / "fs.ext4"
    image = work / "planted.qcow2"
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-d", str(root), str(fs), "512M"], check=True, capture_output=True
    )
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(fs), str(image)], check=True)
    fs.unlink()
    run = timed_median(
        "vmsec (qcow2 image)", [str(VMSEC), "scan", "image", str(image), "--format", "json", "-q"]
    )
    findings: list[dict[str, object]] = []
    if run.stdout.strip():
        report = json.loads(run.stdout)
        findings = list(report["findings"])
        run.extra["checks_run"] = report["scan"]["checks_run"]
        run.extra["by_status"] = report["summary"]["by_status"]
    run.stdout = ""
    return run, findings


def verdict_diff(a: list[dict[str, object]], b: list[dict[str, object]]) -> list[str]:
    """(check, subject, status) triples found in only one of two vmsec reports."""

    def key(findings: list[dict[str, object]]) -> set[tuple[str, str, str]]:
        return {(str(f["check_id"]), str(f["subject"]), str(f["status"])) for f in findings}

    only_a = sorted(key(a) - key(b))
    only_b = sorted(key(b) - key(a))
    return [f"rootfs only: {' '.join(t)}" for t in only_a] + [f"image only: {' '.join(t)}" for t in only_b]


def parse_xccdf(path: Path) -> dict[str, str]:
    """Rule id (without the SSG prefix) -> result, from an XCCDF 1.2 results file."""
    tree = SafeET.parse(path)
    results: dict[str, str] = {}
    for rr in tree.iter(f"{XCCDF_NS}rule-result"):
        rule = rr.get("idref", "").removeprefix(SSG_RULE)
        result = rr.find(f"{XCCDF_NS}result")
        results[rule] = result.text if result is not None and result.text else "?"
    return results


def run_oscap(root: Path, work: Path, label: str, profile: str = "standard") -> tuple[Run, dict[str, str]]:
    """``oscap-chroot ROOT xccdf eval --profile PROFILE`` with the ssg-debian11 datastream."""
    results = work / f"oscap-{profile}-{label.replace(' ', '_')}.xml"
    run = timed(
        f"oscap {profile} ({label})",
        [
            "oscap-chroot",
            str(root),
            "xccdf",
            "eval",
            "--profile",
            profile,
            "--results",
            str(results),
            str(SSG_DS),
        ],
    )
    verdicts = parse_xccdf(results) if results.is_file() else {}
    counts: dict[str, int] = {}
    for value in verdicts.values():
        counts[value] = counts.get(value, 0) + 1
    run.extra["counts"] = counts
    run.stdout = run.stdout[-4000:]
    return run, verdicts


def install_lynis(root: Path) -> None:
    """Copy the host's Lynis (a shell script) into the root so it can run under chroot."""
    shutil.copy2("/usr/sbin/lynis", root / "usr/sbin/lynis")
    for rel in ("usr/share/lynis", "etc/lynis"):
        dest = root / rel
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(Path("/") / rel, dest, symlinks=True)


def parse_lynis_report(path: Path) -> dict[str, list[str]]:
    """Key -> values of a Lynis report file (``key=value`` and ``key[]=value`` lines)."""
    report: dict[str, list[str]] = {}
    if not path.is_file():
        return report
    for line in path.read_text(errors="replace").splitlines():
        if "=" not in line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        report.setdefault(key.removesuffix("[]"), []).append(value)
    return report


def run_lynis_chroot(root: Path, work: Path) -> tuple[Run, dict[str, list[str]], str]:
    """Lynis copied into the root, ``chroot ROOT lynis audit system``."""
    install_lynis(root)
    run = timed(
        "lynis (chroot)",
        [
            "chroot",
            str(root),
            "/usr/sbin/lynis",
            "audit",
            "system",
            "--quick",
            "--no-colors",
            "--report-file",
            "/tmp/lynis-report.dat",
            "--logfile",
            "/tmp/lynis.log",
        ],
    )
    report = parse_lynis_report(root / "tmp/lynis-report.dat")
    log = (root / "tmp/lynis.log").read_text(errors="replace") if (root / "tmp/lynis.log").is_file() else ""
    shutil.copy2(root / "tmp/lynis-report.dat", work / "lynis-chroot.dat")
    (work / "lynis-chroot.log").write_text(log)
    run.stdout = ""
    return run, report, log


def run_lynis_rootdir(root: Path, work: Path) -> tuple[Run, dict[str, list[str]], str]:
    """``lynis audit system --rootdir ROOT/`` from the scanning host."""
    report_file = work / "lynis-rootdir.dat"
    log_file = work / "lynis-rootdir.log"
    run = timed(
        "lynis (--rootdir)",
        [
            "lynis",
            "audit",
            "system",
            "--rootdir",
            f"{root}/",
            "--quick",
            "--no-colors",
            "--report-file",
            str(report_file),
            "--logfile",
            str(log_file),
        ],
    )
    log = log_file.read_text(errors="replace") if log_file.is_file() else ""
    run.stdout = ""
    return run, parse_lynis_report(report_file), log


def oscap_as_debian11(root: Path, work: Path, label: str) -> tuple[tuple[Run, dict[str, str]], ...]:
    """Both profiles with ``/etc/debian_version`` set to 11.11 (ssg 0.1.65 has no Debian 12 content)."""
    version_file = root / "etc/debian_version"
    original_version = version_file.read_text()
    version_file.write_text("11.11\n")
    try:
        return (
            run_oscap(root, work, label),
            run_oscap(root, work, label, "anssi_np_nt28_high"),
        )
    finally:
        version_file.write_text(original_version)


def _selected(results: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in results.items() if v != "notselected"}


def collect(work: Path, skip_rootdir: bool = False) -> dict[str, object]:
    """Build, plant, run every tool; the raw results."""
    root, origin = find_or_build_root(work)
    # Baseline: the unplanted root, so a planted-root "fail" can be told apart from a rule that
    # fails on every stock Debian root.
    base_truth = sshd_truth(root)
    base_oscap = oscap_as_debian11(root, work, "unplanted")
    base_oscap_runs = [run for run, _ in base_oscap]
    plant(root)
    truth = sshd_truth(root)
    vmsec_run, findings = run_vmsec(root)
    image_run, image_findings = run_vmsec_image(root, work)
    oscap12_run, oscap12 = run_oscap(root, work, "debian_version 12")
    (oscap11_run, oscap11), (anssi_run, anssi) = oscap_as_debian11(root, work, "debian_version 11.11")
    lynis_run, lynis, lynis_log = run_lynis_chroot(root, work)
    raw: dict[str, object] = {
        "root": origin,
        "truth": truth,
        "base_truth": base_truth,
        "base_oscap": {**base_oscap[1][1], **_selected(base_oscap[0][1])},
        "vmsec": findings,
        "vmsec_rootfs_vs_image": verdict_diff(findings, image_findings),
        "oscap12": oscap12,
        "oscap11": oscap11,
        "anssi": anssi,
        "dpkg_installed": count_installed(root),
        "lynis": lynis,
        "lynis_log": lynis_log,
        "runs": [
            asdict(r)
            for r in (vmsec_run, image_run, oscap12_run, oscap11_run, anssi_run, lynis_run, *base_oscap_runs)
        ],
    }
    if not skip_rootdir:
        rootdir_run, lynis_rd, lynis_rd_log = run_lynis_rootdir(root, work)
        raw["lynis_rootdir"] = lynis_rd
        raw["lynis_rootdir_log"] = lynis_rd_log
        raw["runs"].append(asdict(rootdir_run))  # type: ignore[attr-defined]
    return raw


def count_installed(root: Path) -> int:
    """Packages marked ``install ok installed`` in the root's own dpkg status file."""
    status = (root / "var/lib/dpkg/status").read_text(errors="replace")
    return status.count("Status: install ok installed")


# --- verdicts ------------------------------------------------------------------------------------


def vmsec_say(findings: list[dict[str, object]], check_id: str, subject: str = "") -> str:
    """The first vmsec finding of ``check_id`` whose subject contains ``subject``."""
    for f in findings:
        if f["check_id"] == check_id and subject in str(f["subject"]):
            return f"{f['status']} {check_id}: {f['message']}"
    return f"no {check_id} finding"


def oscap_say(results: dict[str, str], rule: str, base: dict[str, str] | None = None) -> str:
    """One rule's XCCDF result (and on the unplanted root), or that no profile covers the area."""
    result = results.get(rule)
    if result is None or result == "notselected":
        return f"{rule}: not in the profile"
    said = f"{result} {rule}"
    if base is not None:
        said += f" (unplanted root: {base.get(rule, '?')})"
    return said


def lynis_say(log: str, test_id: str, needle: str = "") -> str:
    """What a Lynis test logged: its Warning/Suggestion/Result lines, or that it was skipped."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.endswith(f"Skipped test {test_id}") or f"Skipped test {test_id} " in line:
            return f"{test_id} skipped"
        if f"Performing test ID {test_id} " not in line:
            continue
        said: list[str] = []
        for body in lines[i + 1 : i + 400]:
            text = body[20:] if len(body) > 20 else body
            if text.startswith(("Performing test ID", "Skipped test")):
                break
            if text.startswith(("Warning:", "Suggestion:", "Result:", "Account without")) and (
                not needle or needle in text
            ):
                said.append(re.sub(r" \[test:.*$", "", text))
        return f"{test_id}: " + (" / ".join(said[:2]) if said else "no result line")
    return f"{test_id} not run"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the verdict table."""

    area: str
    truth: str
    vmsec: str
    oscap: str
    lynis_chroot: str
    lynis_rootdir: str


def verdicts(raw: dict[str, object]) -> list[Row]:
    """The verdict table: planted issues first, then the other audited areas."""
    truth: dict[str, dict[str, str]] = raw["truth"]  # type: ignore[assignment]
    vm: list[dict[str, object]] = raw["vmsec"]  # type: ignore[assignment]
    std: dict[str, str] = raw["oscap11"]  # type: ignore[assignment]
    high: dict[str, str] = raw["anssi"]  # type: ignore[assignment]
    lc = str(raw["lynis_log"])
    lr = str(raw.get("lynis_rootdir_log", ""))
    both = {**high, **_selected(std)}
    base: dict[str, str] = raw["base_oscap"]  # type: ignore[assignment]
    base_truth: dict[str, dict[str, str]] = raw["base_truth"]  # type: ignore[assignment]
    rows = [
        Row(
            "50-cloud-init.conf PasswordAuthentication yes (sshd_config says no)",
            f"sshd -T (root ctx): passwordauthentication {truth['root']['passwordauthentication']}",
            vmsec_say(vm, "VMS-GST-002", "sshd PasswordAuthentication"),
            "no PasswordAuthentication rule in standard or anssi_np_nt28_high",
            lynis_say(lc, "SSH-7408"),
            lynis_say(lr, "SSH-7408"),
        ),
        Row(
            "PermitRootLogin: no in 10-hardening.conf, yes later in sshd_config (decoy)",
            f"sshd -T (user root): permitrootlogin {truth['root']['permitrootlogin']} "
            f"(unplanted: {base_truth['root']['permitrootlogin']})",
            vmsec_say(vm, "VMS-GST-001", "sshd PermitRootLogin"),
            oscap_say(both, "sshd_disable_root_login", base),
            lynis_say(lc, "SSH-7408"),
            lynis_say(lr, "SSH-7408"),
        ),
        Row(
            "Match User backup: PermitEmptyPasswords yes, PasswordAuthentication yes",
            "sshd -T -C user=backup: permitemptypasswords "
            f"{truth['backup']['permitemptypasswords']} (user=deploy: "
            f"{truth['deploy']['permitemptypasswords']}; unplanted: "
            f"{base_truth['backup']['permitemptypasswords']})",
            vmsec_say(vm, "VMS-GST-003", "Match User backup"),
            oscap_say(both, "sshd_disable_empty_passwords", base),
            lynis_say(lc, "SSH-7408"),
            lynis_say(lr, "SSH-7408"),
        ),
        Row(
            "account deploy with an empty password",
            "/etc/shadow: deploy::20000:...",
            vmsec_say(vm, "VMS-GST-041", "deploy"),
            "no_empty_passwords(_etc_shadow): not in either profile",
            lynis_say(lc, "AUTH-9283"),
            lynis_say(lr, "AUTH-9283"),
        ),
        Row(
            "account backup with an md5crypt hash",
            "/etc/shadow: backup:$1$...",
            vmsec_say(vm, "VMS-GST-042", "backup"),
            "no hash-algorithm rule in the debian11 profiles",
            lynis_say(lc, "AUTH-9229"),
            lynis_say(lr, "AUTH-9229"),
        ),
        Row(
            "sudoers.d/90-deploy NOPASSWD: ALL",
            "sudoers.d is included by /etc/sudoers (@includedir)",
            vmsec_say(vm, "VMS-GST-065", "90-deploy"),
            oscap_say(both, "sudo_remove_nopasswd", base),
            lynis_say(lc, "AUTH-9252", "90-deploy"),
            lynis_say(lr, "AUTH-9252", "90-deploy"),
        ),
        Row(
            "deb [trusted=yes] http://apt.internal.example",
            "apt skips signature checks for that source",
            vmsec_say(vm, "VMS-GST-070", "apt.internal.example"),
            oscap_say(both, "apt_conf_disallow_unauthenticated", base)
            + "; "
            + oscap_say(both, "apt_sources_list_official"),
            "no Lynis test reads trusted=yes",
            "no Lynis test reads trusted=yes",
        ),
        Row(
            "sysctl.d/60-net.conf net.ipv4.conf.all.accept_redirects = 1",
            "value applied at boot: 1",
            vmsec_say(vm, "VMS-GST-096", "net.ipv4.conf.all.accept_redirects"),
            "no accept_redirects rule in the debian11 profiles",
            lynis_say(lc, "KRNL-6000", "net.ipv4.conf.all.accept_redirects"),
            lynis_say(lr, "KRNL-6000", "net.ipv4.conf.all.accept_redirects"),
        ),
        Row(
            "(not planted) no bookworm-security source",
            "sources.list: only 'bookworm main'",
            vmsec_say(vm, "VMS-GST-075"),
            oscap_say(both, "apt_sources_list_official"),
            lynis_say(lc, "PKGS-7388", "Warning"),
            lynis_say(lr, "PKGS-7388", "Warning"),
        ),
        Row(
            "(not planted) no automatic updates",
            "unattended-upgrades not installed",
            vmsec_say(vm, "VMS-GST-076"),
            "no rule in the debian11 profiles",
            lynis_say(lc, "PKGS-7420", "Result"),
            lynis_say(lr, "PKGS-7420", "Result"),
        ),
        Row(
            "(not planted) pam_unix nullok in common-auth",
            "/etc/pam.d/common-auth: pam_unix.so nullok",
            vmsec_say(vm, "VMS-GST-055"),
            "no_empty_passwords: not in either profile",
            "no Lynis test reads nullok",
            "no Lynis test reads nullok",
        ),
        Row(
            "(inventory) installed packages",
            f"root's dpkg status: {raw['dpkg_installed']} installed",
            "not a finding (the root's dpkg status feeds VMS-VULN-*)",
            "not reported",
            lynis_say(lc, "PKGS-7345", "Result") + f"; report: {_first(raw, 'lynis')}",
            lynis_say(lr, "PKGS-7345", "Result") + f"; report: {_first(raw, 'lynis_rootdir')}",
        ),
    ]
    return rows


def _first(raw: dict[str, object], key: str) -> str:
    report: dict[str, list[str]] = raw.get(key, {})  # type: ignore[assignment]
    return f"installed_packages={report.get('installed_packages', ['?'])[0]}"


def print_report(raw: dict[str, object]) -> None:
    """The verdict table and the timing ratios, as Markdown on standard output."""
    print(f"root: {raw['root']}\n")
    print("| area | truth | vmsec | OpenSCAP | Lynis chroot | Lynis --rootdir |")
    print("|---|---|---|---|---|---|")
    for row in verdicts(raw):
        cells = [c.replace("|", "\\|") for c in asdict(row).values()]
        print("| " + " | ".join(cells) + " |")
    runs: list[dict[str, object]] = raw["runs"]  # type: ignore[assignment]
    base = next(float(r["seconds"]) for r in runs if r["name"] == "vmsec")  # type: ignore[arg-type]
    diff: list[str] = raw.get("vmsec_rootfs_vs_image", [])  # type: ignore[assignment]
    print("\nvmsec rootfs vs qcow2 image of the same root: " + ("; ".join(diff) or "identical"))
    print("\nvmsec: median of 3 runs; every other tool: one run.")
    print("\n| tool | wall s | rc | × vmsec | detail |")
    print("|---|---:|---:|---:|---|")
    for r in runs:
        secs = float(r["seconds"])  # type: ignore[arg-type]
        print(f"| {r['name']} | {secs:.2f} | {r['rc']} | {secs / base:.1f} | {r['extra']} |")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: build, plant, run, compare, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--skip-rootdir", action="store_true", help="skip Lynis --rootdir (~60 s)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("compare_peers: needs root (chroot, oscap-chroot, debootstrap)", file=sys.stderr)
        return 2
    for tool in ("oscap-chroot", "lynis", "chroot"):
        if shutil.which(tool) is None:
            print(f"compare_peers: {tool} not found (apt: openscap-utils lynis)", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="vmsec-peers-"))
    try:
        raw = collect(work, skip_rootdir=args.skip_rootdir)
        raw["machine"] = {
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }
        print_report(raw)
        if args.json:
            args.json.write_text(json.dumps(raw, indent=1, default=str))
    finally:
        if args.keep:
            print(f"\nwork directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
