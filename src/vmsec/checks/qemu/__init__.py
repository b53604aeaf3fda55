"""qemu checks."""
