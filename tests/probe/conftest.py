"""Fixtures of the probe tests (helpers live in probekit.py, imported by name)."""

from probekit import certs, qemu

__all__ = ["certs", "qemu"]
