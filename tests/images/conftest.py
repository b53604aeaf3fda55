"""Fixtures for tests that read real guest disk images."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guest_images import GuestImages, ImageBuildError, build_guest_images


@pytest.fixture(scope="session")
def guest_images() -> GuestImages:
    try:
        return build_guest_images()
    except ImageBuildError as exc:
        pytest.fail(str(exc), pytrace=False)
