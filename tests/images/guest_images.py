"""The real guest disk images the image tests read, built once and cached (see build_images.sh).

Imported by the image tests through ``sys.path`` (the tests folders are not packages).
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parent / "build_images.sh"
LVM_SCRIPT = Path(__file__).resolve().parent / "build_lvm_image.sh"
LUKS_SCRIPT = Path(__file__).resolve().parent / "qemu_img_luks.sh"
PASSPHRASE = "vmsec-test"


@dataclass(frozen=True)
class GuestImages:
    dir: Path

    def __getitem__(self, name: str) -> Path:
        path = self.dir / name
        assert path.is_file(), f"{path} was not built"
        return path


class ImageBuildError(RuntimeError):
    pass


@functools.cache
def build_guest_images() -> GuestImages:
    """Build (or reuse) the cached images. Raises ImageBuildError with the script's own message
    when it fails (e.g. the Debian mirror is unreachable): the fixtures turn that into a failure."""
    try:
        done = subprocess.run(["sh", str(BUILD_SCRIPT)], capture_output=True, text=True,
                              timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageBuildError(f"{BUILD_SCRIPT} could not run: {exc}") from exc
    if done.returncode != 0:
        raise ImageBuildError(f"{BUILD_SCRIPT} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return GuestImages(Path(done.stdout.strip().splitlines()[-1]))


@functools.cache
def build_lvm_image() -> Path:
    """``disk-lvm.qcow2`` (GPT, LVM PV, VG with LV ``root`` holding fs.ext4), built once next to the
    other images by build_lvm_image.sh. Raises ImageBuildError with its message when it cannot be
    built here (no root, no loop devices, lvm2 missing): the fixture turns that into a failure."""
    images = build_guest_images()
    try:
        done = subprocess.run(["sh", str(LVM_SCRIPT), str(images.dir)], capture_output=True,
                              text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageBuildError(f"{LVM_SCRIPT} could not run: {exc}") from exc
    if done.returncode != 0:
        raise ImageBuildError(f"{LVM_SCRIPT} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return images["disk-lvm.qcow2"]


def make_ext4(root: Path, out: Path, size: str = "32M") -> Path:
    """A real ext4 image holding the directory tree ``root`` (``mke2fs -d``; no mount)."""
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(root), str(out), size],
                   check=True, capture_output=True)
    return out
