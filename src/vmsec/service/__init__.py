"""The vmsec service's core, without the web framework: accounts (argon2id passwords, TOTP,
recovery codes, sessions, API tokens), roles and groups, the hash-chained audit log, waivers with
approval, scan targets with encrypted credentials, and the read side the dashboard and the REST API
share. The CLI (``vmsec user``, ``vmsec token``, ``vmsec audit``) and :mod:`vmsec.web` call it.

The third-party libraries it needs (argon2-cffi, pyotp, cryptography) come with the ``service``
extra; they are imported where used, and a missing one is a :class:`~vmsec.errors.ConfigError`
naming the extra.
"""
