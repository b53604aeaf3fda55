"""host checks."""
