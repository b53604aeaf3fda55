"""Small helpers shared by check modules of different topics (imported by checks, never by the engine).

- :mod:`.config` — libvirt-syntax configuration settings (libvirtd.conf, qemu.conf …): evidence,
  how a value is shown in messages, and the "no file → not applicable; unreadable → UNKNOWN"
  preamble as one call.
- :mod:`.sshd` — the OpenSSH server configuration as the checks judge it.
"""
