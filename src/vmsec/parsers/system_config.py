"""A Linux root's system configuration → guest facts: services, package sources, automatic
updates, mounts and encryption, sysctl, audit/logging and firewall.

Every function reads through a :class:`~vmsec.reading.Reader` (confined to the root,
size-capped, bounded listings) and takes a keyword-only ``errors`` list: each input that could not
be read or parsed is appended to it as a :class:`~vmsec.errors.ReadError` naming the input, and the
rest is still read. A fact built with errors may be incomplete; the collector records them.
``read_fstab`` and ``read_crypttab`` read one file each and raise :class:`ReadError` when it exists
but cannot be read (the fact is then unknown). The implementations live in
:mod:`vmsec.parsers.system`.
"""

from vmsec.parsers.system.audit import read_audit
from vmsec.parsers.system.firewall import read_firewall
from vmsec.parsers.system.mounts import read_crypttab, read_fstab, read_swap_units
from vmsec.parsers.system.repos import read_repos
from vmsec.parsers.system.services import read_services
from vmsec.parsers.system.sysctl import normalize_key, read_sysctl, sysctl_files
from vmsec.parsers.system.updates import read_auto_updates

__all__ = ["normalize_key", "read_audit", "read_auto_updates", "read_crypttab", "read_firewall", "read_fstab",
           "read_repos", "read_services", "read_swap_units", "read_sysctl", "sysctl_files"]
