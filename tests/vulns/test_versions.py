"""Version comparators agree with their package managers on every upstream vector and oracle pair."""

from __future__ import annotations

import gzip
import subprocess

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from datapaths import VULN_VECTORS as VECTORS
from vmsec.vulns.versions import (
    DebianVersion,
    InvalidVersion,
    apk_compare,
    apk_match,
    apk_validate,
    dpkg_compare,
    rpm_label_compare,
    rpmvercmp,
)


def _rows(name: str) -> list[list[str]]:
    path = VECTORS / name
    text = gzip.decompress(path.read_bytes()).decode() if name.endswith(".gz") else path.read_text()
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def test_dpkg_upstream_vectors() -> None:
    rows = _rows("dpkg_vercmp.tsv")
    assert len(rows) >= 40
    bad = [(a, b, e) for a, b, e, *_ in rows if dpkg_compare(a, b) != int(e)]
    assert bad == []


def test_dpkg_oracle_pairs_all_agree() -> None:
    rows = _rows("dpkg_generated_oracle.tsv.gz")
    assert len(rows) > 8000
    disagree = []
    for a, b, expected, *_ in rows:
        try:
            got: int | str = dpkg_compare(a, b)
        except InvalidVersion:
            got = "ERR"
        if str(got) != expected:
            disagree.append((a, b, expected, got))
    assert disagree == [], disagree[:10]


def test_rpm_upstream_vectors_including_the_oddities() -> None:
    rows = _rows("rpm_vercmp.tsv")
    assert len(rows) >= 100
    bad = [(a, b, e) for a, b, e, *_ in rows if rpmvercmp(a, b) != int(e)]
    assert bad == []


def test_rpm_oracle_pairs_all_agree() -> None:
    rows = _rows("rpm_generated_oracle.tsv.gz")
    assert len(rows) == 5000
    bad = [r for r in rows
           if rpm_label_compare((r[0], r[1], r[2]), (r[3], r[4], r[5])) != int(r[6])]
    assert bad == [], bad[:10]


def test_apk_upstream_vectors() -> None:
    rows = _rows("apk_version.tsv")
    assert len(rows) == 785
    bad = []
    for kind, v1, op, v2, invert, *_ in rows:
        if kind == "cmp":
            ok = apk_match(v1, op, v2) != (invert.strip() == "1")
        else:
            ok = apk_validate(v1) != (invert.strip() == "1")
        if not ok:
            bad.append((kind, v1, op, v2, invert))
    assert bad == [], bad[:10]


@pytest.mark.parametrize(("version", "reason"), [
    ("", "empty"), ("1.0-", "revision number is empty"), ("a:1.0", "epoch in version is empty"),
    ("1a:1.0", "not number"), ("-1:1.0", "negative"), ("1:", "nothing after colon"), ("1 .0", "spaces"),
])
def test_dpkg_rejects_invalid_versions_clearly(version: str, reason: str) -> None:
    with pytest.raises(InvalidVersion, match=reason):
        DebianVersion.parse(version)


def test_apk_rejects_invalid_versions() -> None:
    with pytest.raises(InvalidVersion, match="not a valid apk version"):
        apk_compare("1.0-1", "1.0")


_DEB_CHARS = st.sampled_from(list("0123456789.+~-:abzAZ²é"))


@settings(max_examples=150, deadline=None)
@given(st.text(_DEB_CHARS, min_size=1, max_size=10), st.text(_DEB_CHARS, min_size=1, max_size=10))
def test_dpkg_agrees_with_dpkg_itself(a: str, b: str) -> None:
    assume(not a.startswith("-") and not b.startswith("-"))  # dpkg's CLI would take them as options
    proc = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], capture_output=True, text=True,
                          check=False)
    try:
        ours = dpkg_compare(a, b)
    except InvalidVersion:
        assert proc.returncode == 2 or "error" in proc.stderr
        return
    assert (proc.returncode == 0) == (ours < 0), (a, b, proc.stderr)


# Where a key's ends and zeros meet (the tail mark, "0" as no number, "~" after an ended part), versions
# split at the last hyphen, and bytes that are not ASCII — which dpkg orders as bytes (a "²" is not a
# digit to dpkg; Python's str.isdigit() says it is).
@pytest.mark.parametrize(("a", "b"), [
    ("0~", "0"), ("1.0", "1.00"), ("1.0~", "1.0"), ("1a", "1a~"), ("1a", "1a0"), ("1:0", "0:1"),
    ("1.2-3-4", "1.2-3"), ("1.2-3-4", "1.2-3-3"), ("0", "00"), ("1-0", "1"), ("1-0~", "1"),
    ("1.", "1"), ("0a", "1"), ("00~", "0"), ("1²", "12"), ("1²", "1a"), ("1é", "1z"), ("1~~", "1~~a"),
    ("2147483647:1", "1:9"), ("1.0+dfsg-1", "1.0-1"), ("1.0~rc1-1", "1.0-1"), ("9", "10"), ("1.10", "1.9"),
])
def test_dpkg_orders_like_dpkg_at_the_edges(a: str, b: str) -> None:
    for x, y in ((a, b), (b, a)):
        lt = subprocess.run(["dpkg", "--compare-versions", x, "lt", y], capture_output=True, check=False)
        eq = subprocess.run(["dpkg", "--compare-versions", x, "eq", y], capture_output=True, check=False)
        expected = -1 if lt.returncode == 0 else 0 if eq.returncode == 0 else 1
        assert dpkg_compare(x, y) == expected, (x, y)


_RPM_CHARS = st.sampled_from(list("0123456789.~^_+abzAZ"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(_RPM_CHARS, min_size=1, max_size=8),
                          st.text(_RPM_CHARS, min_size=1, max_size=8)), min_size=20, max_size=20))
def test_rpm_agrees_with_python3_rpm_label_compare(pairs: list[tuple[str, str]]) -> None:
    # The oracle is rpm's own Python binding from Debian's python3-rpm (system Python).
    script = ("import rpm, sys\n"
              "for line in sys.stdin:\n"
              "    a, b = line.rstrip('\\n').split('\\t')\n"
              "    print(rpm.labelCompare(('0', a, '1'), ('0', b, '1')))\n")
    stdin = "".join(f"{a}\t{b}\n" for a, b in pairs)
    proc = subprocess.run(["/usr/bin/python3", "-c", script], input=stdin, capture_output=True,
                          text=True, check=True)
    expected = [int(x) for x in proc.stdout.split()]
    assert [rpm_label_compare(("0", a, "1"), ("0", b, "1")) for a, b in pairs] == expected
