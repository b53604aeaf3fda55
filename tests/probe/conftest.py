"""Fixtures of the probe tests (helpers live in probekit.py, imported by name)."""

from probekit import capture_probe_facts, certs, qemu

__all__ = ["capture_probe_facts", "certs", "qemu"]
