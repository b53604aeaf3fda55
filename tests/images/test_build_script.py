"""The image build script fails loudly (never silently skips) when the Debian mirror is unreachable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from guest_images import BUILD_SCRIPT


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
