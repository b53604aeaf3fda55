"""vmsec: which of my VMs can be broken into or broken out of, and why."""

__version__ = "0.1.0"
