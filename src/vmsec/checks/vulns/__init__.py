"""Vulnerability checks: known advisories against installed packages."""
