"""The image build script fails loudly (never silently skips) when the Debian mirror is unreachable."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from guest_images import BUILD_SCRIPT, LUKS_SCRIPT


def test_unreachable_mirror_is_a_clear_failure(tmp_path: Path) -> None:
    env = {**os.environ, "VMSEC_TEST_CACHE": str(tmp_path / "cache"),
           "VMSEC_TEST_MIRROR": "http://127.0.0.1:9/debian"}  # discard port: connection refused
    done = subprocess.run(["sh", str(BUILD_SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode != 0
    assert "debootstrap failed" in done.stderr and "127.0.0.1:9" in done.stderr
    assert not list((tmp_path / "cache").glob("images-*"))  # nothing half-built is left as complete


def test_cached_images_are_reused(guest_images: object) -> None:
    done = subprocess.run(["sh", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=60,
                          check=True)
    assert Path(done.stdout.strip()).joinpath(".complete").is_file()


# --- the cache key is the recipe ------------------------------------------------------------------

RECIPE = ("build_images.sh", "build_lvm_image.sh", "qemu_img_luks.sh")


def _copy_recipe(dest: Path) -> Path:
    dest.mkdir()
    for name in RECIPE:
        shutil.copy(BUILD_SCRIPT.parent / name, dest / name)
    return dest / "build_images.sh"


def _images_key(scripts: Path) -> str:
    digest = hashlib.sha256(b"".join((scripts / name).read_bytes() for name in RECIPE)).hexdigest()
    return f"images-{digest[:16]}"


def test_a_changed_recipe_does_not_reuse_the_cached_images(tmp_path: Path) -> None:
    script = _copy_recipe(tmp_path / "scripts")
    cache = tmp_path / "cache"
    complete = cache / _images_key(script.parent) / ".complete"
    complete.parent.mkdir(parents=True)
    complete.write_text("built by an earlier run\n")
    env = {**os.environ, "VMSEC_TEST_CACHE": str(cache), "VMSEC_TEST_MIRROR": "http://127.0.0.1:9/debian"}

    def build() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=300,
                              check=False)

    same = build()
    assert same.returncode == 0 and same.stdout.strip() == str(complete.parent)
    for name in RECIPE:  # any edit to any of the three scripts is a new recipe
        with open(script.parent / name, "a") as fh:
            fh.write("# a change to the recipe\n")
        changed = build()
        assert changed.returncode != 0 and "debootstrap failed" in changed.stderr  # it started a build
        assert not (cache / _images_key(script.parent)).exists()


# --- LUKS headers written by qemu-img: its PBKDF benchmark's false failure is retried --------------

def _qemu_img_failing(tmp_path: Path, times: int, message: str) -> tuple[dict[str, str], Path]:
    """A ``qemu-img`` first on PATH that fails ``times`` times with ``message`` (as QEMU 7.2's benchmark
    does at random), then runs the real qemu-img; returns the environment and the call counter."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    real = shutil.which("qemu-img")
    assert real is not None, "qemu-utils is part of the test command's packages"
    (bindir / "qemu-img").write_text(
        "#!/bin/sh\n"
        f'echo call >>"{calls}"\n'
        f'if [ "$(wc -l <"{calls}")" -le {times} ]; then\n'
        f'    echo "qemu-img: out.img: {message}" >&2; exit 1\n'
        "fi\n"
        f'exec {real} "$@"\n')
    (bindir / "qemu-img").chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}, calls


LUKS_CREATE = ["create", "-q", "-f", "luks", "--object", "secret,id=s,data=vmsec-test",
               "-o", "key-secret=s,iter-time=10", "out.img", "1M"]


def test_the_pbkdf_benchmark_failure_is_retried_and_said(tmp_path: Path) -> None:
    env, calls = _qemu_img_failing(tmp_path, 2, "Unable to get accurate CPU usage")
    done = subprocess.run(["sh", str(LUKS_SCRIPT), *LUKS_CREATE], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "retrying (1/20 failed)" in done.stderr and "retrying (2/20 failed)" in done.stderr
    # one call per retry said, and one that worked (the real qemu-img after the two false failures
    # can fail the same way at random: then a third retry, said like the others)
    retries = done.stderr.count("retrying (")
    assert retries >= 2 and len(calls.read_text().splitlines()) == retries + 1
    assert (tmp_path / "out.img").read_bytes()[:6] == b"LUKS\xba\xbe"  # a real LUKS header, written


def test_the_retries_give_up_with_a_clear_message(tmp_path: Path) -> None:
    env, calls = _qemu_img_failing(tmp_path, 99, "Unable to get accurate CPU usage")
    env["VMSEC_LUKS_ATTEMPTS"] = "3"
    done = subprocess.run(["sh", str(LUKS_SCRIPT), *LUKS_CREATE], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "failed 3 times in a row" in done.stderr and "giving up" in done.stderr
    assert len(calls.read_text().splitlines()) == 3


def test_other_qemu_img_errors_fail_at_once(tmp_path: Path) -> None:
    env, calls = _qemu_img_failing(tmp_path, 0, "unused")
    no_secret = ["create", "-q", "-f", "luks", "out.img", "1M"]  # the real qemu-img refuses this
    done = subprocess.run(["sh", str(LUKS_SCRIPT), *no_secret], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "key-secret" in done.stderr and "not retried" in done.stderr and "retrying" not in done.stderr
    assert len(calls.read_text().splitlines()) == 1
