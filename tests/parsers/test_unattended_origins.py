"""unattended-upgrades' origin patterns, matched as unattended-upgrades matches them. The oracle is its own
code: the packaged script of unattended-upgrades 2.9 (Debian 12; scripts/test.sh unpacks it into .cache,
not installed), loaded in a child process with its apt bindings replaced by empty stand-ins — the two
functions asked, ``get_allowed_origins`` (with the legacy conversion) and ``match_whitelist_string``,
read only apt's configuration list, which the stand-in answers with the case's entries. Every case's
patterns, and every pattern against each archive, must come out the same — errors included: where
unattended-upgrades raises, vmsec must say it stops."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import pytest

from components import require
from unattended_script import LOAD, SCRIPT
from vmsec.facts import AutoUpdates, OsRelease, PackageRepo
from vmsec.parsers.system.unattended_origins import (
    PatternError,
    allowed_patterns,
    pattern_matches,
    security_archives,
    security_coverage,
)

ORACLE = LOAD + r"""

class Origin:
    def __init__(self, fields):
        self.__dict__.update(fields)

out = []
for case in json.load(sys.stdin):
    module.DISTRO_ID = case["variables"]["distro_id"]
    module.DISTRO_CODENAME = case["variables"]["distro_codename"]
    module.apt_pkg = types.SimpleNamespace(config=Config({
        "Unattended-Upgrade::Allowed-Origins": case["allowed"],
        "Unattended-Upgrade::Origins-Pattern": case["patterns"]}))
    try:
        patterns = module.get_allowed_origins()
    except Exception as exc:
        out.append({"patterns": None, "error": type(exc).__name__})
        continue
    matches = []
    for pattern in patterns:
        row = []
        for archive in case["archives"]:
            try:
                row.append(module.match_whitelist_string(pattern, Origin(archive)))
            except Exception as exc:
                row.append(type(exc).__name__)
        matches.append(row)
    out.append({"patterns": patterns, "matches": matches})
json.dump(out, sys.stdout)
"""

DEBIAN = {"distro_id": "Debian", "distro_codename": "bookworm"}
UBUNTU = {"distro_id": "Ubuntu", "distro_codename": "jammy"}
ARCHIVES = [
    {"origin": "Debian", "label": "Debian-Security", "archive": "oldstable-security",
     "codename": "bookworm-security", "component": "main", "site": "deb.debian.org"},
    {"origin": "Debian", "label": "Debian", "archive": "oldstable", "codename": "bookworm",
     "component": "main", "site": "deb.debian.org"},
    {"origin": "Ubuntu", "label": "Ubuntu", "archive": "jammy-security", "codename": "jammy",
     "component": "universe", "site": "security.ubuntu.com"},
    {"origin": "Debian, Inc", "label": "x", "archive": "a:b", "codename": "c", "component": "d", "site": "e"},
]
DEBIAN_DEFAULT = ["origin=Debian,codename=${distro_codename},label=Debian",
                  "origin=Debian,codename=${distro_codename},label=Debian-Security",
                  "origin=Debian,codename=${distro_codename}-security,label=Debian-Security"]
UBUNTU_DEFAULT = ["${distro_id}:${distro_codename}", "${distro_id}:${distro_codename}-security",
                  "${distro_id}ESMApps:${distro_codename}-apps-security",
                  "${distro_id}ESM:${distro_codename}-infra-security"]
# (legacy Allowed-Origins, Origins-Pattern, variables)
CASES: list[tuple[list[str], list[str], dict[str, str]]] = [
    ([], DEBIAN_DEFAULT, DEBIAN),
    ([], DEBIAN_DEFAULT[:1], DEBIAN),  # the security lines removed
    (UBUNTU_DEFAULT, [], UBUNTU),
    (["Ubuntu jammy-security", "Debian:bookworm-security"], [], UBUNTU),
    (["a:b:c"], [], DEBIAN),  # three parts
    (["onlyone"], [], DEBIAN),
    (["De\\:bian:x", "Debian, Inc:a\\:b"], [], DEBIAN),
    ([], ["origin=Debian", "o=*", "a=*-security", "l=Debian-Security,n=${distro_codename}-security"], DEBIAN),
    ([], ["", "   ", "o=Debian,,l=x"], DEBIAN),  # empty patterns; an empty token
    ([], ["o=Debian,foo=bar"], DEBIAN),  # an unknown key
    ([], ["o=Debian\\, Inc"], DEBIAN),  # an escaped comma
    ([], ["o=Debian=x"], DEBIAN),  # two '='
    ([], ["origin=debian"], DEBIAN),  # case matters
    ([], ["n=$distro_codename-security"], DEBIAN),
    ([], ["o=$$Debian"], DEBIAN),  # "$$" is "$" once, then an invalid placeholder the second time
    ([], ["o=${nope}"], DEBIAN),
    ([], ["o=Debian,a=oldstable-security", "site=deb.debian.org,l=Debian-Security", "c=main"], DEBIAN),
    ([], [" o = Debian , l = Debian-Security "], DEBIAN),
    ([], ["o=[DU]*,l=*Security"], DEBIAN),
]


def _random_cases(seed: int, count: int) -> list[tuple[list[str], list[str], dict[str, str]]]:
    rng = random.Random(seed)
    keys = ["o", "origin", "l", "label", "a", "archive", "suite", "c", "component", "site", "n", "codename",
            "x", "", " o "]
    values = ["Debian", "Debian-Security", "${distro_codename}", "${distro_codename}-security", "*",
              "*-security", "oldstable-security", "main", "deb.debian.org", "Ubuntu", "jammy-security", "",
              "D?bian", "[!U]*", "$distro_id", "${distro_id}", "a\\,b", "x=y", "$"]
    out = []
    for _ in range(count):
        patterns = []
        for _p in range(rng.randint(0, 3)):
            tokens = [f"{rng.choice(keys)}={rng.choice(values)}" if rng.random() > 0.05
                      else rng.choice(values) for _t in range(rng.randint(1, 3))]
            patterns.append(",".join(tokens))
        separators = [":", " ", "\\:"]
        legacy = [rng.choice(values) + rng.choice(separators) + rng.choice(values)
                  for _l in range(rng.randint(0, 2))]
        out.append((legacy, patterns, rng.choice([DEBIAN, UBUNTU])))
    return out


def _oracle(cases: list[tuple[list[str], list[str], dict[str, str]]]) -> list[dict[str, object]]:
    require(SCRIPT.exists(), "unattended-upgrades (unpacked)", f"{SCRIPT} (scripts/test.sh unpacks it)")
    stdin = json.dumps([{"allowed": a, "patterns": p, "variables": v, "archives": ARCHIVES}
                        for a, p, v in cases])
    done = subprocess.run([sys.executable, "-c", ORACLE, str(SCRIPT)], input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: list[dict[str, object]] = json.loads(done.stdout)
    return result


def _ours(legacy: list[str], patterns: list[str], variables: dict[str, str]) -> dict[str, object]:
    try:
        allowed = allowed_patterns(legacy, patterns, variables)
    except PatternError:
        return {"patterns": None}
    rows = []
    for pattern in allowed:
        row: list[object] = []
        for archive in ARCHIVES:
            try:
                row.append(pattern_matches(pattern, archive, variables))
            except PatternError:
                row.append("error")
        rows.append(row)
    return {"patterns": allowed, "matches": rows}


@pytest.mark.parametrize("cases", [CASES, _random_cases(1, 400)], ids=["written", "random"])
def test_patterns_match_as_unattended_upgrades_matches_them(
        cases: list[tuple[list[str], list[str], dict[str, str]]]) -> None:
    theirs = _oracle(cases)
    for case, expected in zip(cases, theirs, strict=True):
        ours = _ours(*case)
        if expected["patterns"] is None:  # it stops while reading them
            assert ours["patterns"] is None, (case, expected)
            continue
        assert ours["patterns"] == expected["patterns"], case
        assert ours["matches"] == [[m if isinstance(m, bool) else "error" for m in row]
                                   for row in expected["matches"]], case  # type: ignore[union-attr]


BOOKWORM = OsRelease(id="debian", version_id="12", version_codename="bookworm", name="Debian GNU/Linux")
SECURITY_SOURCE = PackageRepo(manager="apt", uri="http://deb.debian.org/debian-security", origin="x",
                              suite="bookworm-security", components=("main",))


@pytest.mark.parametrize(("patterns", "legacy", "covered"), [
    (DEBIAN_DEFAULT, [], True),
    (DEBIAN_DEFAULT[:1], [], False),
    ([], [], False),  # nothing allowed: it installs nothing
    (["o=Debian,foo=bar"], [], False),  # it stops
    (["origin=Debian"], [], True),
    (["a=stable-security"], [], None),  # bookworm's suite moves from stable to oldstable with time
    (["site=deb.debian.org,l=Debian-Security"], [], True),  # the configured source's host
    (["site=security.debian.org,l=Debian-Security"], [], False),
    ([], ["Debian:bookworm-security"], False),  # the archive is oldstable-security, not the codename
    ([], ["Debian:*-security"], True),
])
def test_coverage_of_the_security_archive(patterns: list[str], legacy: list[str],
                                          covered: bool | None) -> None:
    auto = AutoUpdates(mechanism="unattended-upgrades", enabled=True, allowed_origins=tuple(legacy),
                       origins_pattern=tuple(patterns))
    result, why = security_coverage(auto, BOOKWORM, (SECURITY_SOURCE,))
    assert result is covered, why


def test_a_site_pattern_without_known_sources_is_undecided() -> None:
    auto = AutoUpdates(mechanism="unattended-upgrades", enabled=True,
                       origins_pattern=("site=deb.debian.org,l=Debian-Security",))
    assert security_coverage(auto, BOOKWORM, None)[0] is None
    assert security_archives("rhel", "9.4", "plow", None) is None
    assert security_coverage(auto, OsRelease(id="debian", version_id="12"), None)[0] is None  # no codename


def test_more_entries_than_are_judged_is_undecided_not_a_pass() -> None:
    """A security entry, then more than the cap of others: the one past the cap could stop
    unattended-upgrades (an unknown key), so the answer is unknown — never the first entry's PASS."""
    patterns = (DEBIAN_DEFAULT[2], *(f"origin=filler{n}" for n in range(1000)), "bogus=1")
    auto = AutoUpdates(mechanism="unattended-upgrades", enabled=True, origins_pattern=patterns)
    covered, why = security_coverage(auto, BOOKWORM, (SECURITY_SOURCE,))
    assert covered is None and "not all judged" in why
    assert security_coverage(AutoUpdates(mechanism="unattended-upgrades", enabled=True,
                                         origins_pattern=(DEBIAN_DEFAULT[2], "bogus=1")),
                             BOOKWORM, (SECURITY_SOURCE,))[0] is False  # under the cap: it stops


def test_a_megabyte_pattern_is_bounded_work() -> None:
    """One apt.conf.d file's worth of tokens in one pattern: each was matched against every reading of
    the archive (48), 2.5 s a megabyte; past the token cap the answer is unknown after one parse."""
    auto = AutoUpdates(mechanism="unattended-upgrades", enabled=True,
                       origins_pattern=(",".join(["a=*"] * 262_000),))
    sources = tuple(PackageRepo(manager="apt", uri=f"http://h{n}.example/debian-security", origin="x",
                                suite="bookworm-security") for n in range(16))
    started = time.monotonic()
    covered, why = security_coverage(auto, BOOKWORM, sources)
    assert covered is None and "not all judged" in why
    assert time.monotonic() - started < 5  # a hang guard (measured: 0.2 s), not a benchmark
