"""Checks of what runs: the live host and running guests (runtime facts)."""
