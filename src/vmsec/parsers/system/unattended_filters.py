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
- A package on hold (``apt-mark hold``: dpkg's selection ``hold``) is never upgraded
  (``is_pkg_change_allowed``: ``SELSTATE_HOLD``).
- An entry that is not a valid regular expression raises ``re.error``, which the program does not
  catch: it stops before it upgrades anything (on opening its cache for an entry outside
  ``[-a-zA-Z0-9^$+.:]``, otherwise on the first package it could upgrade). A non-strict
  whitelist's entries inside that set only become apt pins, where a bad one is a warning.
- ``Package-Whitelist-Strict`` with no whitelist entry pins every allowed archive to -1 and no
  package up: nothing is upgraded.
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

import re
import sys
from collections.abc import Iterable

from msgspec import Struct

from vmsec.facts import InstalledPackage

DEADLINE_S = 10.0
MAX_ENTRIES = 1_000  # blacklist and whitelist entries judged; more are UNKNOWN
MAX_ENTRY_CHARS = 4_096
MAX_NAMED = 50  # held-back packages named in the fact; the rest are counted
CHILD_MEMORY = 512 * 1024 * 1024  # the matcher's address space
# A name dpkg would accept (Debian policy §5.6.1), with python-apt's ":arch": no other can be upgraded,
# and a hostile status file's megabyte "name" never reaches a guest's pattern.
_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]{1,254}(:[a-z0-9-]{1,64})?")

# Day names as Python prints them in the C locale (%a, %A), then the numbers (%w), Sunday first.
_DAYS = (("Sun", "Sunday"), ("Mon", "Monday"), ("Tue", "Tuesday"), ("Wed", "Wednesday"),
         ("Thu", "Thursday"), ("Fri", "Friday"), ("Sat", "Saturday"))
DAY_NAMES = tuple(full for _abbr, full in _DAYS)

# Runs in the child, under an address-space limit (a guest's pattern may also allocate without end):
# reads {"black": [...], "white": [...], "strict": bool, "names": [...], "memory": bytes} on stdin,
# writes the first entry the program would raise on (or null) and the indices of the names each list
# matches. An
# entry reaches ``re`` where the program sends it there: every blacklist entry (is_pkg_change_allowed);
# whitelist entries when strict, otherwise only those pinning_from_regex_list matches against every
# package (python_regex_is_posix false) — the rest go to apt as a /^…/ pin, whose regcomp failure only
# prints a warning.
_MATCHER = """
import json, re, resource, sys
job = json.load(sys.stdin)
resource.setrlimit(resource.RLIMIT_AS, (job["memory"], job["memory"]))
out = {"error": None, "black": [], "white": []}
posix = re.compile("^[-a-zA-Z0-9\\\\^\\\\$\\\\+\\\\.:]*$")
compiled = {"black": [], "white": []}
for which in ("black", "white"):
    for entry in job[which]:
        if which == "white" and not job["strict"] and posix.match(entry):
            continue
        try:
            compiled[which].append(re.compile(entry))
        except (re.error, RecursionError, OverflowError) as exc:
            out["error"] = [which, entry, str(exc)]
            json.dump(out, sys.stdout)
            sys.exit(0)
for which in ("black", "white"):
    rxs = compiled[which]
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
    why: str = ""  # what holds them back, for a message: "its Package-Blacklist matches them; …"
    error: str = ""  # an entry that stops the program
    unknown: str = ""  # why the filters could not be judged


def apt_names(packages: Iterable[InstalledPackage], *, each: bool = False) -> list[str]:
    """The installed dpkg packages as python-apt names them: ``name:arch`` for another architecture
    than dpkg's own (the native one), ``name`` otherwise — sorted and unique, or with ``each`` one per
    package in the given order."""
    packages = list(packages)
    native = next((p.arch for p in packages if p.name == "dpkg" and p.arch), None)
    names = [p.name if native is None or not p.arch or p.arch in ("all", native) else f"{p.name}:{p.arch}"
             for p in packages]
    return names if each else sorted(set(names))


def held_back(blacklist: list[str], whitelist: list[str], strict: bool,
              packages: tuple[InstalledPackage, ...] | None,
              pinned: tuple[tuple[str, ...], str] = ((), "")) -> HeldBack:
    """The installed packages Package-Blacklist and a strict Package-Whitelist keep unattended-upgrades
    from upgrading, and those on hold in dpkg (see the module docstring); a bad entry of either list
    stops the program. Packages on hold are held back whatever the lists leave unknown, and so are
    ``pinned``: the packages apt's pins keep from their security updates (names as :func:`apt_names`
    spells them) and why (:func:`vmsec.parsers.system.aptprefs.security_pin_holds`)."""
    holds, on_hold = _holds(packages)
    if pinned[0]:
        holds = sorted(set(holds) | set(pinned[0]))
        on_hold = "; ".join(w for w in (on_hold, pinned[1]) if w)
    found = _held_back(blacklist, whitelist, strict, packages, holds, on_hold)
    if found.unknown and holds:
        return HeldBack(held=tuple(holds[:MAX_NAMED]), held_count=len(holds), why=on_hold)
    return found


def _holds(packages: tuple[InstalledPackage, ...] | None) -> tuple[list[str], str]:
    """The dpkg packages on hold, as python-apt names them (the native architecture taken from every
    package), and a phrase saying so."""
    dpkg = [p for p in packages or () if p.manager == "dpkg"]
    holds = sorted(n for p, n in zip(dpkg, apt_names(dpkg, each=True), strict=True) if p.held)
    return holds, f"{them(len(holds))} {'is' if len(holds) == 1 else 'are'} on hold in dpkg (apt-mark hold)" \
        if holds else ""


def _held_back(blacklist: list[str], whitelist: list[str], strict: bool,
               packages: tuple[InstalledPackage, ...] | None, holds: list[str], on_hold: str) -> HeldBack:
    if strict and not whitelist and packages is not None:
        # pinning_from_config pins every allowed archive to -1 under a strict whitelist and raises only
        # whitelisted packages to 900: with none, no package has a candidate
        everything = apt_names(p for p in packages if p.manager == "dpkg")
        return HeldBack(held=tuple(everything[:MAX_NAMED]), held_count=len(everything),
                        why="Package-Whitelist-Strict is on and Package-Whitelist names no package, so every "
                        "archive is pinned below 0")
    if not blacklist and not whitelist:
        return HeldBack(held=tuple(holds[:MAX_NAMED]), held_count=len(holds), why=on_hold)
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

    names = [n for n in apt_names(p for p in packages if p.manager == "dpkg") if _PACKAGE_NAME.fullmatch(n)]
    job = json.dumps({"black": blacklist, "white": whitelist, "strict": strict, "names": names,
                      "memory": CHILD_MEMORY})
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
        return HeldBack(error=f"the {key} entry {entry!r} is not a regular expression ({message!r})")
    black = set(answer["black"])
    left_out = set(range(len(names))) - set(answer["white"]) if whitelist and strict else set()
    ordered = sorted({names[i] for i in black | left_out} | set(holds))
    why = [f"its Package-Blacklist matches {them(len(black))}" if black else "",
           f"its strict Package-Whitelist leaves {them(len(left_out))} out" if left_out else "", on_hold]
    return HeldBack(held=tuple(ordered[:MAX_NAMED]), held_count=len(ordered),
                    why="; ".join(w for w in why if w))


def them(count: int) -> str:
    """"it" or "N of them", for a message about some of the packages it names."""
    return "it" if count == 1 else f"{count} of them"
