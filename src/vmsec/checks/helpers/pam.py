"""How PAM modules read their own arguments, for every check that looks at a PAM line."""

from __future__ import annotations

from vmsec.facts import PamLine


def unix_nullok(line: PamLine) -> bool:
    """pam_unix takes an option by its prefix (support.c: strncmp for the option's length): nullok,
    nullok_secure, nullok=0 all let an empty password in."""
    return any(arg.startswith("nullok") for arg in line.args)
