"""daemon checks."""
