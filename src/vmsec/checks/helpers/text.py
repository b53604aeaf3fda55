"""Wording shared by checks."""

from __future__ import annotations

from collections.abc import Sequence


def other_names(ordered: Sequence[str], count: int, *, but: str | None = None, limit: int = 8) -> str:
    """A bounded list of names for a message: the first ``limit`` of ``ordered`` other than ``but``,
    then "and N more" of ``count`` such names in all. Built in constant time, so a check can word
    one message per VM of a group thousands strong (a distribution ISO, a copied seclabel) without
    costing the group's size squared, and no message grows with the inventory."""
    shown = [n for n in ordered[:limit + 1] if n != but][:limit]
    more = f" and {count - limit} more" if count > limit else ""
    return ", ".join(shown) + more
