"""Facts built with some of their inputs unread (``Guest.unread``, ``Sudoers.unread``,
``SshdConfig.unread``): a file that exists but could not be read (permission denied, too large …).

Such a file may hold exactly what a check looks for. What the files that were read show is kept
when it is a finding (a rule that is there is there); a PASS — which says the thing is nowhere, or
that a setting holds — becomes UNKNOWN naming the files that were not read. Unknown is not pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from vmsec.checks.api import Result, ok, unknown
from vmsec.facts import Guest
from vmsec.findings import Evidence, Status

SHOWN = 3  # unread inputs named in one message


def unread_text(unread: Sequence[str]) -> str:
    """The unread inputs for a message: the first few ("path: reason"), then how many more."""
    more = len(unread) - SHOWN
    return "; ".join(unread[:SHOWN]) + (f" (and {more} more)" if more > 0 else "")


def guest_unread(guest: Guest, *fields: str) -> tuple[str, ...]:
    """The unread inputs of the named Guest facts ("services", "repos" …), in that order."""
    return tuple(u for name in fields for u in guest.unread.get(name, ()))


def not_read(unread: Sequence[str], subject: str, claim: str, *evidence: Evidence) -> Result:
    """UNKNOWN for a ``claim`` the files read support and the unread ones could contradict."""
    return unknown(subject, f"{claim} in the files that could be read, but {unread_text(unread)}: "
                   "not read, so this is unknown", *evidence)


def ok_unless(unread: Sequence[str], subject: str, message: str, *evidence: Evidence) -> Result:
    """``ok(subject, message, …)``, or UNKNOWN naming the unread inputs when there are any."""
    if unread:
        return not_read(unread, subject, message, *evidence)
    return ok(subject, message, *evidence)


def unless_unread(results: Iterable[Result], unread: Sequence[str]) -> Iterator[Result]:
    """``results``, each PASS made UNKNOWN (naming the unread inputs) when there are any."""
    for r in results:
        if unread and r.status is Status.PASS:
            yield not_read(unread, r.subject, r.message, *r.evidence)
        else:
            yield r
