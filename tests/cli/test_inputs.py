"""Inputs that must not pass as clean: empty or mistyped roots, a host root without libvirt, an
encrypted image without its key, and waiver or profile files that name nothing real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VMSEC = str(Path(sys.executable).with_name("vmsec"))
CHECKS = ROOT / "tests" / "data" / "checks"
VNC_FAIL = CHECKS / "VMS-DOM-020" / "vnc-any.FAIL.xml"
VNC_HOST = CHECKS / "VMS-DOM-021" / "vnc-open.FAIL"  # a host root whose VM vm1 has an open VNC console


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VMSEC, *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize(("args", "expected"), [
    (["scan", "rootfs"], "not an OS root: none of /etc/os-release, /usr/lib/os-release, /etc/passwd"),
    (["scan", "xml"], "no libvirt XML found (expected *.xml domain, network, nwfilter, storage pool or "
                      "secret definitions)"),
    (["scan", "host", "--root"], "not a host root: none of etc, proc, sys, dev, usr, var is there"),
])
def test_an_empty_directory_is_an_error_naming_what_was_expected(args: list[str], expected: str,
                                                                 tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run(*args, str(empty), "--no-store")
    assert proc.returncode == 3, proc.stdout
    assert str(empty) in proc.stderr and expected in proc.stderr
    assert proc.stdout == ""  # no report that could read as clean


def test_host_root_without_libvirt_warns(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    proc = run("scan", "xml", str(VNC_FAIL), "--host-root", str(tmp_path), "--no-store", "--format", "json")
    assert proc.returncode == 0
    assert f"--host-root {tmp_path} has no etc/libvirt" in proc.stderr


def _waivers(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "waivers.toml"
    path.write_text(body)
    return path


def test_a_waiver_naming_an_unknown_check_is_an_error(tmp_path: Path) -> None:
    waivers = _waivers(tmp_path, '[[waiver]]\ncheck = "VMS-DOM-9999"\ntarget = "domain:*"\nreason = "r"\n'
                                 'who = "me"\nexpires = 2099-01-01\n')
    proc = run("scan", "xml", str(VNC_FAIL), "--waivers", str(waivers), "--no-store")
    assert proc.returncode == 2 and "unknown check id 'VMS-DOM-9999'" in proc.stderr


def test_a_waiver_that_matches_nothing_is_a_warning(tmp_path: Path) -> None:
    waivers = _waivers(tmp_path, '[[waiver]]\ncheck = "VMS-DOM-020"\ntarget = "domain:web-*"\nreason = "r"\n'
                                 'who = "me"\nexpires = 2099-01-01\n'
                                 '[[waiver]]\ncheck = "VMS-DOM-020"\ntarget = "domain:vm1"\nreason = "r"\n'
                                 'who = "me"\nexpires = 2099-01-01\n')
    proc = run("scan", "xml", str(VNC_FAIL), "--waivers", str(waivers), "--no-store", "--format", "json")
    assert proc.returncode == 0
    assert re.search(r"waiver 1: matched no failed finding of this scan "
                     r"\(check VMS-DOM-020 on domain:web-\*\)", proc.stderr)
    assert "waiver 2" not in proc.stderr  # it matched vm1's finding
    statuses = {f["status"] for f in json.loads(proc.stdout)["findings"] if f["check_id"] == "VMS-DOM-020"}
    assert statuses == {"WAIVED"}


def test_the_documented_waiver_example_matches_a_real_finding(tmp_path: Path) -> None:
    """docs/store.md's TOML example, with its target pattern pointed at this fixture's VM, waives the
    open VNC console of a real scan (its subject pattern matches real subjects)."""
    docs = (ROOT / "docs" / "store.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", docs, re.DOTALL)
    assert example is not None
    data = tomllib.loads(example.group(1))
    first = data["waiver"][0]
    assert first["check"] == "VMS-DOM-020" and "subject" in first
    text = example.group(1).replace(f'target = "{first["target"]}"', 'target = "domain:vm*"', 1)
    text = text.replace("expires = 2026-06-30", "expires = 2099-06-30")
    waivers = _waivers(tmp_path, text)
    proc = run("scan", "xml", str(VNC_FAIL), "--waivers", str(waivers), "--no-store", "--format", "json")
    vnc = [f for f in json.loads(proc.stdout)["findings"] if f["check_id"] == "VMS-DOM-020"]
    assert vnc and all(f["status"] == "WAIVED" for f in vnc), [f["subject"] for f in vnc]


@pytest.mark.parametrize(("body", "message"), [
    ('name = "x"\ndisable = ["VMS-DOM-020"]\n', "unknown key(s) disable"),
    ('name = "x"\ndisabled = ["VMS-DOM-9999"]\n', "unknown check id(s) VMS-DOM-9999"),
    ('name = "x"\n[severity]\nVMS-NOPE-001 = "low"\n', "unknown check id(s) VMS-NOPE-001"),
])
def test_a_profile_naming_nothing_real_is_an_error(body: str, message: str, tmp_path: Path) -> None:
    profile = tmp_path / "strict.toml"
    profile.write_text(body)
    proc = run("scan", "xml", str(VNC_FAIL), "--profile", str(profile), "--no-store")
    assert proc.returncode == 2 and message in proc.stderr and str(profile) in proc.stderr


def test_the_built_in_profiles_name_only_real_checks() -> None:
    from vmsec.profiles import builtin_profiles, load_profile

    for name in builtin_profiles():
        assert load_profile(name).name == name


def test_an_encrypted_image_without_its_key_is_said_once(tmp_path: Path) -> None:
    """107 UNKNOWN lines and exit 0 told nothing: the report says once that the disk is encrypted and
    how to unlock it, and the scan is incomplete (exit 3), not clean."""
    sys.path.insert(0, str(ROOT / "tests" / "images"))
    from guest_images import ImageBuildError, build_guest_images

    try:
        images = build_guest_images()
    except ImageBuildError as exc:
        pytest.fail(str(exc), pytrace=False)
    image = str(images["disk-luks.qcow2"])
    proc = run("scan", "image", image, "--no-store", "-q")
    assert proc.returncode == 3
    assert proc.stderr.count("--key-file") == 1 and "encrypted" in proc.stderr
    text = proc.stdout
    assert text.count("NOT AUDITED") == 1 and "--key-file FILE" in text
    assert "of them on targets whose contents were not audited" in text
    assert len(text.splitlines()) < 60  # not a hundred UNKNOWN lines
