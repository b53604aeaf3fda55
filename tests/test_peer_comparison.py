"""The verdicts docs/comparison.md states, re-checked on a real planted Debian 12 root.

Uses benchmarks/compare_peers.py: the cached debootstrap'd root (tests/images/build_images.sh), the
planted misconfigurations, OpenSSH's own ``sshd -T`` under chroot as the arbiter, vmsec's CLI and
OpenSCAP's ``oscap-chroot``. Lynis is left to the benchmark (about a minute per run). Needs root
(chroot) and the Debian packages openscap-scanner openscap-utils ssg-debian; about 20 s.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "images"))

from guest_images import ImageBuildError, build_guest_images  # noqa: E402

import compare_peers as cp  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _peers_installed() -> None:
    # The test command installs them; a missing one is a broken set-up, not a reason to skip.
    assert os.geteuid() == 0, "the peer comparison runs chroot/oscap-chroot and needs root"
    assert shutil.which("oscap-chroot") and cp.SSG_DS.is_file(), (
        "OpenSCAP is missing: apt-get install openscap-scanner openscap-utils ssg-debian")


@dataclass(frozen=True)
class Outcome:
    truth: dict[str, dict[str, str]]
    base_truth: dict[str, dict[str, str]]
    findings: list[dict[str, object]]
    oscap: dict[str, str]
    oscap_base: dict[str, str]
    root: Path
    work: Path


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    try:
        build_guest_images()  # makes sure the cached Debian 12 tarball exists
    except ImageBuildError as exc:
        pytest.fail(str(exc), pytrace=False)
    work = tmp_path_factory.mktemp("peers")
    root, _ = cp.find_or_build_root(work)
    base_truth = cp.sshd_truth(root)
    (_, oscap_base), _ = cp.oscap_as_debian11(root, work, "unplanted")
    cp.plant(root)
    truth = cp.sshd_truth(root)
    run, findings = cp.run_vmsec(root)
    assert run.rc == 0, run.stderr
    (_, oscap), _ = cp.oscap_as_debian11(root, work, "planted")
    yield Outcome(truth, base_truth, findings, oscap, oscap_base, root, work)
    shutil.rmtree(work, ignore_errors=True)


def status(findings: list[dict[str, object]], check_id: str, subject: str) -> str:
    matches = [f for f in findings if f["check_id"] == check_id and subject in str(f["subject"])]
    assert matches, f"no {check_id} finding about {subject!r}"
    return str(matches[0]["status"])


def test_openssh_is_the_arbiter_of_the_planted_ssh_config(outcome: Outcome) -> None:
    assert outcome.truth["root"]["passwordauthentication"] == "yes"  # the cloud-init drop-in wins
    assert outcome.truth["root"]["permitrootlogin"] == "no"  # first value wins: the decoy is inert
    assert outcome.truth["backup"]["permitemptypasswords"] == "yes"  # Match User backup
    assert outcome.truth["deploy"]["permitemptypasswords"] == "no"
    assert outcome.base_truth["root"]["permitrootlogin"] == "without-password"


def test_vmsec_agrees_with_sshd_and_finds_every_plant(outcome: Outcome) -> None:
    f = outcome.findings
    assert status(f, "VMS-GST-002", "sshd PasswordAuthentication") == "FAIL"
    assert status(f, "VMS-GST-001", "sshd PermitRootLogin") == "PASS"
    assert status(f, "VMS-GST-003", "Match User backup") == "FAIL"
    assert status(f, "VMS-GST-041", "deploy") == "FAIL"
    assert status(f, "VMS-GST-042", "backup") == "FAIL"
    assert status(f, "VMS-GST-065", "90-deploy") == "FAIL"
    assert status(f, "VMS-GST-070", "apt.internal.example") == "FAIL"
    assert status(f, "VMS-GST-096", "net.ipv4.conf.all.accept_redirects") == "FAIL"
    assert not any(f_["check_id"] == "VMS-GST-001" and f_["status"] == "FAIL" for f_ in f), (
        "the PermitRootLogin yes decoy must not be reported"
    )


def test_openscap_divergences_stated_in_the_comparison(outcome: Outcome) -> None:
    # sshd rules read sshd_config only and fail when the keyword is absent: same verdict before and
    # after planting, and "fail" on root login although sshd -T says "no".
    assert outcome.oscap["sshd_disable_root_login"] == "fail"
    assert outcome.oscap_base["sshd_disable_root_login"] == "fail"
    assert outcome.oscap["sshd_disable_empty_passwords"] == "fail"
    assert outcome.oscap_base["sshd_disable_empty_passwords"] == "fail"


def test_openscap_without_spoofing_checks_nothing_on_debian_12(outcome: Outcome) -> None:
    assert (outcome.root / "etc/debian_version").read_text().startswith("12.")
    run, results = cp.run_oscap(outcome.root, outcome.work, "debian_version 12")
    assert run.rc == 0
    selected = {rule: result for rule, result in results.items() if result != "notselected"}
    assert selected and set(selected.values()) == {"notapplicable"}
