"""Checks: the check-author API, the catalogue and check modules by topic."""
