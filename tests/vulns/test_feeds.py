"""Feeds are parsed from the real records in tests/data/vuln, keeping every distro state."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from datapaths import VULN as DATA
from vmsec.errors import AdvisorySourceError
from vmsec.vulns.feeds.alpine_secdb import parse_secdb
from vmsec.vulns.feeds.debian_tracker import parse_tracker
from vmsec.vulns.feeds.epss import parse_epss
from vmsec.vulns.feeds.kev import parse_kev
from vmsec.vulns.feeds.osv import parse_json, parse_zip
from vmsec.vulns.model import FixState


def _by_id(items: Any) -> dict[str, Any]:
    return {(a.package, a.vuln_id): a for a in items}


def test_tracker_states_from_real_bookworm_records() -> None:
    recs = _by_id(
        parse_tracker((DATA / "debian-tracker" / "bookworm_tracker_excerpt_RECONSTRUCTED.json").read_bytes())
    )
    assert recs[("openssh", "CVE-2024-6387")].state is FixState.FIXED
    assert recs[("openssh", "CVE-2024-6387")].fixed == "1:9.2p1-2+deb12u3"
    assert recs[("openssh", "CVE-2024-6387")].ecosystem == "Debian:12"
    xz = recs[("xz-utils", "CVE-2024-3094")]
    assert xz.state is FixState.NOT_AFFECTED and xz.fixed is None  # fixed_version "0"
    sudo = recs[("sudo", "CVE-2023-42465")]
    assert sudo.state is FixState.UNFIXED and sudo.minor and sudo.note == "Minor issue"
    assert recs[("apt", "CVE-2011-3374")].severity == "unimportant"
    assert recs[("linux", "CVE-2025-21682")].state is FixState.UNFIXED


def _native_from_vuls(path: Path) -> dict[str, Any]:
    """vuls' per-CVE split back into the tracker's native {source: {id: {releases}}} shape."""
    doc = json.loads(path.read_text())
    release = path.name.split("__")[0]
    out: dict[str, Any] = {}
    for pkg in doc["packages"]:
        entry = {
            k: pkg[k] for k in ("status", "nodsa", "nodsa_reason", "urgency", "fixed_version") if k in pkg
        }
        out.setdefault(pkg["name"], {})[doc["id"]] = {
            "description": doc["description"],
            "releases": {release: entry},
        }
    return out


def test_tracker_ignored_is_will_not_fix() -> None:
    data = _native_from_vuls(
        DATA / "debian-tracker" / "vuls-api-percve" / "bullseye__2016__CVE-2016-5416.json"
    )
    (rec,) = parse_tracker(data)
    assert rec.state is FixState.WILL_NOT_FIX and rec.ecosystem == "Debian:11"


def test_tracker_postponed_undetermined_and_eol() -> None:
    data = {
        "pkg": {
            "CVE-1": {
                "releases": {
                    "bookworm": {"status": "open", "nodsa": "x", "nodsa_reason": "postponed"},
                    "trixie": {"status": "undetermined"},
                    "bullseye": {"status": "open", "urgency": "end-of-life"},
                }
            }
        }
    }
    states = {r.ecosystem: r.state for r in parse_tracker(data)}
    assert states == {
        "Debian:12": FixState.FIX_DEFERRED,
        "Debian:13": FixState.UNDER_INVESTIGATION,
        "Debian:11": FixState.END_OF_LIFE,
    }


def test_tracker_accepts_releases_as_an_empty_list_and_the_osv_mock() -> None:
    vunnel = list(
        parse_tracker((DATA / "debian-tracker" / "vunnel_debian_tracker_fixture.json").read_bytes())
    )
    assert vunnel  # other records still parsed
    mock = list(
        parse_tracker((DATA / "debian-tracker" / "osvdev_debian_security_tracker_mock.json").read_bytes())
    )
    assert any(r.state is FixState.NOT_AFFECTED for r in mock) and any(
        r.state is FixState.UNFIXED for r in mock
    )


def test_tracker_rejects_garbage() -> None:
    with pytest.raises(AdvisorySourceError, match="not JSON"):
        list(parse_tracker(b"\x00\xff garbage"))


def test_osv_debian_dsa_record_with_related_cve() -> None:
    (rec,) = parse_json((DATA / "osv" / "verbatim" / "Debian_DSA-5724-1.json").read_bytes(), "dsa")
    assert rec.vuln_id == "DSA-5724-1" and rec.cves == ("CVE-2024-6387",)
    assert rec.ecosystem == "Debian:12" and rec.package == "openssh" and rec.fixed == "1:9.2p1-2+deb12u3"


def test_osv_alma_uses_binary_names() -> None:
    recs = list(
        parse_json((DATA / "osv" / "verbatim" / "AlmaLinux_ALSA-2024_4312.json").read_bytes(), "alsa")
    )
    names = {r.package for r in recs}
    assert {"openssh", "openssh-server", "openssh-clients"} <= names
    assert all(r.ecosystem == "AlmaLinux:9" and r.state is FixState.FIXED for r in recs)
    fixed = {r.package: r.fixed for r in recs}
    assert fixed["openssh-server"] == "8.7p1-38.el9_4.1"
    assert fixed["pam_ssh_agent_auth"] == "0.10.4-5.38.el9_4.1"  # its own version line


def test_osv_withdrawn_and_intervals() -> None:
    withdrawn = {
        "id": "X-1",
        "withdrawn": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "p"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    assert list(parse_json(json.dumps(withdrawn), "w")) == []
    two = {
        "id": "X-2",
        "affected": [
            {
                "package": {"ecosystem": "Alpine:v3.20", "name": "p"},
                "ranges": [
                    {"type": "GIT", "events": [{"introduced": "abc"}]},
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "1.0-r0"}, {"fixed": "1.2-r0"}, {"introduced": "2.0-r0"}],
                    },
                ],
            }
        ],
    }
    got = [(r.introduced, r.fixed, r.state) for r in parse_json(json.dumps(two), "two")]
    assert got == [("1.0-r0", "1.2-r0", FixState.FIXED), ("2.0-r0", None, FixState.UNFIXED)]


@pytest.mark.parametrize(
    "name",
    [
        "Debian-subset-all.zip",
        "Alpine-subset-all.zip",
        "AlmaLinux-subset-all.zip",
        "Rocky-Linux-subset-all.zip",
    ],
)
def test_osv_dumps_parse_whole(name: str) -> None:
    recs = list(parse_zip((DATA / "osv" / name).read_bytes(), name))
    assert len(recs) > 100
    assert len({r.vuln_id for r in recs}) > 100


def test_osv_zip_garbage_is_refused() -> None:
    with pytest.raises(AdvisorySourceError, match="not a zip"):
        list(parse_zip(b"PK not really", "bad.zip"))


def test_alpine_secdb_fixed_zero_and_multi_ids() -> None:
    recs = list(parse_secdb((DATA / "alpine-secdb" / "v3.21-main.json").read_bytes(), "v3.21"))
    assert all(r.ecosystem == "Alpine:v3.21" for r in recs)
    assert any(r.state is FixState.NOT_AFFECTED for r in recs)
    assert any(r.aliases for r in recs)  # "CVE-… XSA-…" split
    assert all(" " not in r.vuln_id for r in recs)


def test_kev_and_epss() -> None:
    kev = list(
        parse_kev(gzip.decompress((DATA / "kev" / "known_exploited_vulnerabilities.json.gz").read_bytes()))
    )
    assert len(kev) == 1404 and any(k.cve == "CVE-2021-3156" for k in kev)
    epss = list(parse_epss((DATA / "epss" / "epss_format_example.csv").read_bytes()))
    assert epss and epss[0].model_version == "v2023.03.01" and 0 <= epss[0].score <= 1


def test_tracker_fix_not_yet_in_the_suite_is_unfixed() -> None:
    data = {"pkg": {"CVE-9": {"releases": {"bookworm": {
        "status": "resolved", "fixed_version": "1.2-1+deb12u1", "repositories": {"bookworm": "1.2-1"}}}}}}
    (rec,) = parse_tracker(data)
    assert rec.state is FixState.UNFIXED and rec.note and "not yet released" in rec.note
    data["pkg"]["CVE-9"]["releases"]["bookworm"]["repositories"]["bookworm-security"] = "1.2-1+deb12u1"
    (rec,) = parse_tracker(data)
    assert rec.state is FixState.FIXED and rec.fixed == "1.2-1+deb12u1"
