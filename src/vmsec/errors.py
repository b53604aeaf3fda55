"""One error tree for vmsec. Foreign exceptions are translated at the boundary that meets them;
only the CLI turns these into messages and exit codes."""

from __future__ import annotations


class VmsecError(Exception):
    """Base of every error vmsec raises on purpose."""


class ConfigError(VmsecError):
    """A user-supplied option, profile or configuration file is invalid."""


class CollectorError(VmsecError):
    """A collector could not gather facts."""


class SourceUnavailable(CollectorError):
    """A whole source cannot be used (libvirt-python missing, URI unreachable, root not a directory)."""


class ReadError(CollectorError):
    """One input could not be read or parsed; the scan goes on without it."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class CheckDefinitionError(VmsecError):
    """A check is declared wrongly (duplicate id, bad signature, missing docstring)."""


class AdvisorySourceError(VmsecError):
    """A vulnerability feed could not be fetched or imported."""


class StoreError(VmsecError):
    """The findings store failed."""
