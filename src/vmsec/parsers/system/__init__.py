"""Parsers for a Linux root's system configuration: services, package sources and updates, mounts and
encryption, sysctl, audit/logging and firewall. The public names are re-exported from
:mod:`vmsec.parsers.system_config`."""
