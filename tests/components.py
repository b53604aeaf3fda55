"""Real components that some tests need (libvirt-python, sshd, root, mount namespaces, ...).

Where one is missing, a developer's run skips the test and says what is missing; a CI run (``CI=true``,
exported by .ci/run) fails it instead: the test command, scripts/test.sh, installs every component, so
on CI a missing one is a broken set-up — never a quietly smaller test run.

Tests import this module by name (``tests`` is on pytest's ``pythonpath``).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """CI runs set ``CI=true`` (.ci/run does, as GitHub Actions and GitLab CI do)."""
    return os.environ.get("CI") == "true"


def missing(component: str, reason: str) -> NoReturn:
    """The calling test cannot run here because ``component`` is missing: skip it, or fail it in CI.

    Works in a test, a fixture, or at module level (the whole module is skipped, or fails to collect).
    """
    message = f"{component} is missing: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing component is a failure; scripts/test.sh installs it)",
                    pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require(available: object, component: str, reason: str) -> None:
    """``missing(component, reason)`` unless ``available`` is true."""
    if not available:
        missing(component, reason)


def require_module(name: str, component: str) -> ModuleType:
    """Import ``name``, or ``missing(component, …)`` — the CI-aware ``pytest.importorskip``."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        error = str(exc)
    missing(component, f"import {name} failed: {error}")  # outside the handler: no chained traceback
