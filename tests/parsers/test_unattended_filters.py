"""The packages unattended-upgrades leaves alone and the days it runs, as unattended-upgrades decides. The
oracle is its own code (tests/unattended_script.py): ``kept_package_excuse`` (why it keeps a package
back: blacklisted, not on the whitelist), ``pinning_from_regex_list`` (the pins it sets when it opens
its cache, where a bad entry raises first) and ``is_update_day`` on each day of a week."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from components import require
from unattended_script import LOAD, SCRIPT
from vmsec.facts import InstalledPackage
from vmsec.parsers.system import unattended_filters
from vmsec.parsers.system.unattended_filters import apt_names, held_back, update_weekdays

ORACLE = LOAD + r"""
import datetime, re


better = types.SimpleNamespace(origins=[types.SimpleNamespace(trusted=True)])
out = []
for case in json.load(sys.stdin):
    if "days" in case:
        config = Config({"Unattended-Upgrade::Update-Days": case["days"]})
        module.apt_pkg = types.SimpleNamespace(config=config)
        runs = []
        for weekday in range(7):  # 2026-12-06 is a Sunday
            day = datetime.date(2026, 12, 6 + weekday)
            module.date = type("FixedDate", (datetime.date,), {"today": classmethod(lambda cls, d=day: d)})
            if module.is_update_day():
                runs.append(weekday)
        out.append(runs)
        continue
    module.apt_pkg = types.SimpleNamespace(SELSTATE_HOLD=1, config=Config({}))
    packages = [types.SimpleNamespace(name=n, selected_state=0) for n in case["names"]]
    cache = types.SimpleNamespace(_cache=types.SimpleNamespace(packages=packages))
    try:
        for regexps in (case["black"], case["white"]):
            module.UnattendedUpgradesCache.pinning_from_regex_list(cache, regexps, -32768)
        excuses = [module.UnattendedUpgradesCache.kept_package_excuse(cache, p, case["black"], case["white"],
                                                                      case["strict"], better)
                   for p in packages]
    except re.error:
        out.append("error")
        continue
    out.append([p.name for p, e in zip(packages, excuses) if "blacklisted" in e or "whitelist" in e])
json.dump(out, sys.stdout)
"""

NAMES = ["apt", "base-files", "libc6", "libc6-dev", "libstdc++6", "linux-image-6.1.0-27-amd64",
         "linux-image-amd64", "openssh-server", "vim", "vim-tiny", "libc6:i386", "aaaa"]
# (blacklist, whitelist, strict whitelist)
FILTERS: list[tuple[list[str], list[str], bool]] = [
    (["linux-"], [], False),
    (["libc6$", "libc6-dev$", "libstdc\\+\\+6$"], [], False),  # Debian's commented-out examples
    (["vim"], [], False),  # a prefix: vim-tiny too
    ([".*"], [], False),
    ([""], [], False),  # the empty pattern matches every name
    (["linux-image-[0-9].*-amd64$", "open.*server"], [], False),
    (["(?i)APT"], [], False),
    (["libc6:.*"], [], False),  # another architecture's name
    (["libstdc++6"], [], False),  # a possessive "+" in Python 3.11: not a literal
    (["x", "(unclosed"], [], False),
    (["+x"], [], False),  # looks like a POSIX pattern, is not a Python one
    (["a{2,1}"], [], False),
    ([], ["apt$"], False),  # not strict: holds nothing back
    ([], ["apt$", "openssh"], True),
    (["vim"], ["apt$"], True),
    (["vim"], ["vim"], False),  # the blacklist first
    ([], ["["], False),
    ([], ["+apt", "apt++++"], False),  # not strict: only apt pins, whose regcomp failure is a warning
    ([], ["+apt"], True),  # strict: is_pkgname_in_whitelist raises
]
DAYS: list[list[str]] = [
    [], ["Mon"], ["Monday", "Fri"], ["0"], ["6", "Sat"], ["7"], ["mon"], ["never"], ["00"], [" Mon"],
    ["Sun", "Sunday", "0"], ["Montag"], ["1", "2", "3", "4", "5"],
]


def _oracle(cases: list[dict[str, object]]) -> list[object]:
    require(SCRIPT.exists(), "unattended-upgrades (unpacked)", f"{SCRIPT} (scripts/test.sh unpacks it)")
    done = subprocess.run([sys.executable, "-c", ORACLE, str(SCRIPT)], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: list[object] = json.loads(done.stdout)
    return result


def _installed(names: list[str]) -> tuple[InstalledPackage, ...]:
    packages = [InstalledPackage(name="dpkg", version="1.21.22", arch="amd64")]
    for name in names:
        base, _, arch = name.partition(":")
        packages.append(InstalledPackage(name=base, version="1", arch=arch or "amd64"))
    return tuple(packages)


def test_packages_held_back_as_unattended_upgrades_holds_them() -> None:
    expected = _oracle([{"black": b, "white": w, "strict": s, "names": [*NAMES, "dpkg"]}
                        for b, w, s in FILTERS])
    for (black, white, strict), want in zip(FILTERS, expected, strict=True):
        got = held_back(black, white, strict, _installed(NAMES))
        if want == "error":
            assert got.error and not got.held, (black, white, got)
        else:
            assert not got.error and not got.unknown
            assert list(got.held) == sorted(want) and got.held_count == len(want), (black, white, got, want)


def test_update_days_as_unattended_upgrades_reads_them() -> None:
    expected = _oracle([{"days": days} for days in DAYS])
    assert [sorted(update_weekdays(days)) for days in DAYS] == expected


def test_python_apt_names_a_foreign_architecture_with_it() -> None:
    assert apt_names(_installed(["libc6", "libc6:i386", "tzdata:all"])) == ["dpkg", "libc6", "libc6:i386",
                                                                              "tzdata"]


def test_a_pattern_that_backtracks_without_end_is_unknown_in_bounded_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``(a*)*b`` against a long run of ``a``: Python's re would take longer than the universe's age;
    the child interpreter is stopped at the deadline and the answer is unknown, never "none held"."""
    monkeypatch.setattr(unattended_filters, "DEADLINE_S", 1.0)
    started = time.monotonic()
    got = held_back(["(a*)*b"], [], False, _installed(["a" * 64]))
    assert time.monotonic() - started < 10
    assert got.unknown and "backtracks" in got.unknown and not got.held and not got.error


def test_unknown_packages_or_too_many_entries_are_unknown() -> None:
    assert held_back(["vim"], [], False, None).unknown == "the installed packages are unknown"
    assert held_back(["x"] * 1001, [], False, _installed(["x"])).unknown
    assert held_back([], [], False, None) == unattended_filters.HeldBack()  # no filter: nothing to know


def test_packages_on_hold_are_held_back_with_or_without_lists() -> None:
    """unattended-upgrades never changes a package whose dpkg selection is hold (its own
    ``kept_package_excuse``: "marked to be held back")."""
    packages = (InstalledPackage(name="dpkg", version="1", arch="amd64"),
                InstalledPackage(name="linux-image-amd64", version="1", arch="amd64", held=True),
                InstalledPackage(name="vim", version="1", arch="amd64"))
    alone = held_back([], [], False, packages)
    assert alone.held == ("linux-image-amd64",) and "on hold" in alone.why
    both = held_back(["vim"], [], False, packages)
    assert both.held == ("linux-image-amd64", "vim") and both.held_count == 2
    assert "Package-Blacklist" in both.why and "on hold" in both.why


def test_a_strict_whitelist_without_entries_upgrades_nothing() -> None:
    """``pinning_from_config`` pins every allowed archive to -1 under Package-Whitelist-Strict and
    raises only whitelisted packages to 900 (read in the script: its pins are not run by the stubbed
    oracle): with no entry, no package has a candidate."""
    packages = _installed(["apt", "vim"])
    got = held_back([], [], True, packages)
    assert got.held == ("apt", "dpkg", "vim") and "pinned below 0" in got.why


def test_a_hostile_package_name_never_reaches_a_pattern() -> None:
    """A status file's name that dpkg would refuse (here a megabyte) is not matched: with it, one
    backtracking pattern made the child allocate gigabytes before its deadline."""
    packages = (*_installed(["vim"]), InstalledPackage(name="a" * 1_000_000, version="1", arch="amd64"))
    started = time.monotonic()
    got = held_back(["((a)|b)*c"], [], False, packages)
    assert time.monotonic() - started < 5 and not got.unknown and not got.held


def test_holds_survive_what_is_unknown_and_keep_their_architecture() -> None:
    packages = (InstalledPackage(name="dpkg", version="1", arch="amd64"),
                InstalledPackage(name="libc6", version="1", arch="i386", held=True))
    assert held_back([], [], False, packages).held == ("libc6:i386",)
    assert held_back(["x"] * 1001, [], False, packages).held == ("libc6:i386",)  # the lists: too many
