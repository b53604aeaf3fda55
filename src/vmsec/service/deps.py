"""Optional dependencies of the service, imported when used: a missing one is a clear ConfigError."""

from __future__ import annotations

import importlib
from types import ModuleType

from vmsec.errors import ConfigError


def need(module: str) -> ModuleType:
    """``import module``, or a ConfigError saying to install the ``service`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"the vmsec service needs {module.split('.')[0]}: "
            "install vmsec with the 'service' extra (pip install 'vmsec[service]')"
        ) from exc
