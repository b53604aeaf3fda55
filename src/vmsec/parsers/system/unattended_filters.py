"""Which installed packages unattended-upgrades leaves alone, and on which days it runs at all.

As unattended-upgrades 2.9 (Debian 12) decides, besides its origins (unattended_origins.py):

- ``Unattended-Upgrade::Package-Blacklist``: a package whose name one entry matches —
  ``re.match(entry, name)``, a Python regular expression anchored at the start only — is never
  upgraded (``is_pkg_change_allowed``; it is also pinned to -32768).
- ``Unattended-Upgrade::Package-Whitelist`` with ``Package-Whitelist-Strict`` true (apt's
  ``FindB``): only the packages its entries match are upgraded. Not strict, it holds nothing back:
  it raises the pin of what it names to 900, and the program's candidate test
  (``calculate_upgradable_pkgs``: ``is_upgradable or changed and whitelisted``) still takes every
  upgradable package.
- An entry that is not a valid regular expression raises ``re.error``, which the program does not
  catch: it stops before it upgrades anything (on opening its cache for an entry outside
  ``[-a-zA-Z0-9^$+.:]``, otherwise on the first package it could upgrade).
- ``Unattended-Upgrade::Update-Days``: when it has entries, the program runs only on a day one of
  them names exactly, as ``date.strftime`` prints it: ``%a`` (``Mon``), ``%A`` (``Monday``) or
  ``%w`` (``1``; Sunday is ``0``). Python's ``LC_TIME`` stays the C locale — neither the script nor
  python-apt calls ``setlocale`` — so the names are the English ones. A list naming no day stops
  every run.

python-apt names a package of another architecture than the system's ``name:arch``.

The entries come from the guest and are regular expressions: one can backtrack for longer than any
scan may take (``(a*)*b``), and Python's ``re`` has no time limit. They are therefore matched in a
child interpreter (``python -I -S``, the same ``re``) that is killed after :data:`DEADLINE_S`; past
it the answer is unknown, never "nothing is held back".

tests/parsers/test_unattended_origins.py compares these answers with unattended-upgrades' own
functions from its packaged script.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from msgspec import Struct

from vmsec.facts import InstalledPackage

DEADLINE_S = 10.0
MAX_ENTRIES = 1_000  # blacklist and whitelist entries judged; more are UNKNOWN
MAX_ENTRY_CHARS = 4_096
MAX_NAMED = 50  # held-back packages named in the fact; the rest are counted

# Day names as Python prints them in the C locale (%a, %A), then the numbers (%w), Sunday first.
_DAYS = (("Sun", "Sunday"), ("Mon", "Monday"), ("Tue", "Tuesday"), ("Wed", "Wednesday"),
         ("Thu", "Thursday"), ("Fri", "Friday"), ("Sat", "Saturday"))
DAY_NAMES = tuple(full for _abbr, full in _DAYS)

# Runs in the child: reads {"black": [...], "white": [...], "names": [...]} on stdin, writes the
# first invalid entry (or null) and the indices of the names each list matches.
_MATCHER = """
import json, re, sys
job = json.load(sys.stdin)
out = {"error": None, "black": [], "white": []}
compiled = {}
for which in ("black", "white"):
    for entry in job[which]:
        try:
            compiled.setdefault(which, []).append(re.compile(entry))
        except (re.error, RecursionError, OverflowError) as exc:
            out["error"] = [which, entry, str(exc)]
            json.dump(out, sys.stdout)
            sys.exit(0)
for which in ("black", "white"):
    rxs = compiled.get(which, [])
    out[which] = [i for i, name in enumerate(job["names"]) if any(rx.match(name) for rx in rxs)]
json.dump(out, sys.stdout)
"""


def update_weekdays(days: Iterable[str]) -> frozenset[int]:
    """The weekdays (0 = Sunday … 6 = Saturday) that an ``Update-Days`` list lets unattended-upgrade
    run on; an empty list means every day."""
    values = set(days)
    if not values:
        return frozenset(range(7))
    return frozenset(n for n, (abbr, full) in enumerate(_DAYS) if abbr in values or full in values
                     or str(n) in values)


class HeldBack(Struct, frozen=True, kw_only=True):
    """What the package filters do to the installed packages."""

    held: tuple[str, ...] = ()  # installed packages never upgraded (at most MAX_NAMED)
    held_count: int = 0
    error: str = ""  # an entry that stops the program
    unknown: str = ""  # why the filters could not be judged


def apt_names(packages: Iterable[InstalledPackage]) -> list[str]:
    """The installed dpkg packages as python-apt names them: ``name:arch`` for another architecture
    than dpkg's own (the native one), ``name`` otherwise."""
    packages = list(packages)
    native = next((p.arch for p in packages if p.name == "dpkg" and p.arch), None)
    return sorted({p.name if native is None or not p.arch or p.arch in ("all", native)
                   else f"{p.name}:{p.arch}" for p in packages})


def held_back(blacklist: list[str], whitelist: list[str], strict: bool,
              packages: tuple[InstalledPackage, ...] | None) -> HeldBack:
    """The installed packages Package-Blacklist and a strict Package-Whitelist keep unattended-upgrades
    from upgrading (see the module docstring); a bad entry of either stops the program."""
    if not blacklist and not whitelist:
        return HeldBack()
    if len(blacklist) + len(whitelist) > MAX_ENTRIES:
        return HeldBack(unknown=f"more than {MAX_ENTRIES} Package-Blacklist/-Whitelist entries")
    if any(len(e) > MAX_ENTRY_CHARS for e in (*blacklist, *whitelist)):
        return HeldBack(unknown=f"a Package-Blacklist/-Whitelist entry of more than {MAX_ENTRY_CHARS} "
                        "characters")
    if packages is None:
        return HeldBack(unknown="the installed packages are unknown")
    # Imported here: only a guest with these lists pays for them (subprocess alone is milliseconds).
    import json
    import subprocess

    names = apt_names(p for p in packages if p.manager == "dpkg")
    job = json.dumps({"black": blacklist, "white": whitelist, "names": names})
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _MATCHER], input=job, capture_output=True,
                              text=True, timeout=DEADLINE_S, check=False)
        answer = json.loads(done.stdout) if done.returncode == 0 else None
    except subprocess.TimeoutExpired:
        return HeldBack(unknown=f"matching the Package-Blacklist/-Whitelist entries took more than "
                        f"{DEADLINE_S:.0f} s (a pattern that backtracks without end)")
    except (OSError, ValueError) as exc:
        return HeldBack(unknown=f"the Package-Blacklist/-Whitelist entries could not be matched ({exc})")
    if answer is None:
        return HeldBack(unknown=f"the Package-Blacklist/-Whitelist matcher failed (exit {done.returncode})")
    if answer["error"]:
        which, entry, message = answer["error"]
        key = "Package-Blacklist" if which == "black" else "Package-Whitelist"
        return HeldBack(error=f"the {key} entry {entry!r} is not a regular expression ({message})")
    held = set(answer["black"])
    if whitelist and strict:
        held |= set(range(len(names))) - set(answer["white"])
    ordered = [names[i] for i in sorted(held)]
    return HeldBack(held=tuple(ordered[:MAX_NAMED]), held_count=len(ordered))
