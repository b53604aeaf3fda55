"""domain checks."""
