"""No stutter: a finding is read as "subject: message", and neither the messages nor the reports
repeat the subject ("tsa: tsa: Vulnerable", "common-auth: common-auth: …",
"net.ipv4.conf.all.rp_filter: net.ipv4.conf.all.rp_filter not set").

Every verdict fixture (tests/data/checks) is scanned with the whole catalogue, so every message a
check writes on real inputs is looked at:

* a message never starts with its subject (or the subject's last words) followed by a colon — that
  is a label the reader already has;
* every human-facing report joins subject and message with ``says()``: the joined phrase never
  holds the subject twice in a row;
* a VM's "why" never tells the same subject twice (two checks failing on one VNC device).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_verdict_fixtures import FIXTURES, _feeds_db, _with_modes
from vmsec.checks.catalog import default_catalog
from vmsec.collectors.host import collect_host_inventory
from vmsec.collectors.xml import collect_xml
from vmsec.engine import run_checks
from vmsec.findings import Finding
from vmsec.report.digest import digest_of, says
from vmsec.vulns.matcher import match_inventory


def _tails(subject: str) -> list[str]:
    """The subject and each of its word suffixes ("cpu vulnerability tsa", "vulnerability tsa", "tsa")."""
    words = subject.split(" ")
    return [" ".join(words[i:]) for i in range(len(words)) if len(" ".join(words[i:])) >= 3]


def relabels(f: Finding) -> bool:
    message = f.message.strip().lower()
    return any(message.startswith(tail.lower() + ":") for tail in _tails(f.subject.strip()))


def joined_stutters(f: Finding) -> bool:
    text = says(f.subject, f.message)
    return any(re.search(rf"(^|\s){re.escape(tail)}:?\s+{re.escape(tail)}(\W|$)", text, re.IGNORECASE)
               for tail in _tails(f.subject))


@pytest.fixture(scope="module")
def fixture_findings(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    catalog = default_catalog()
    found: list[Finding] = []
    seen: set[Path] = set()
    for _check_id, fixture, _verdict in FIXTURES:
        if fixture in seen:
            continue
        seen.add(fixture)
        tmp = tmp_path_factory.mktemp("fixture")
        if fixture.is_dir():
            inventory = match_inventory(collect_host_inventory(str(_with_modes(fixture, tmp))),
                                        _feeds_db(fixture, tmp))
        else:
            inventory = collect_xml([str(fixture)])
        found += run_checks(inventory, catalog).findings
    return found


def test_the_fixtures_exercise_most_checks(fixture_findings: list[Finding]) -> None:
    assert len({f.check_id for f in fixture_findings}) >= 0.9 * len(default_catalog().checks)


def test_no_message_relabels_itself_with_its_subject(fixture_findings: list[Finding]) -> None:
    bad = sorted({(f.check_id, f.subject, f.message[:80]) for f in fixture_findings if relabels(f)})
    assert not bad, f"messages that start with their own subject and a colon: {bad[:20]}"


def test_no_report_line_repeats_its_subject(fixture_findings: list[Finding]) -> None:
    bad = sorted({(f.check_id, says(f.subject, f.message)[:100]) for f in fixture_findings
                  if joined_stutters(f)})
    assert not bad, f"subject repeated when subject and message are joined: {bad[:20]}"


@pytest.mark.parametrize(("subject", "message", "joined"), [
    ("cpu vulnerability tsa", 'the kernel reports "Vulnerable"',
     'cpu vulnerability tsa: the kernel reports "Vulnerable"'),
    ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.all.rp_filter not set",
     "net.ipv4.conf.all.rp_filter not set"),
    ("qemu.conf vnc_listen", 'vnc_listen = "0.0.0.0"', 'qemu.conf vnc_listen = "0.0.0.0"'),
    ("file /etc/libvirt/qemu/vm.xml", "/etc/libvirt/qemu/vm.xml is mode 0644",
     "file /etc/libvirt/qemu/vm.xml is mode 0644"),
    ("vnc devices/graphics[1]", "VNC listens on 0.0.0.0", "vnc devices/graphics[1]: VNC listens on 0.0.0.0"),
    ("account toor", "account toorish is odd", "account toor: account toorish is odd"),  # a word boundary
])
def test_says_joins_without_repeating(subject: str, message: str, joined: str) -> None:
    assert says(subject, message) == joined


def test_a_vm_s_why_tells_each_subject_once() -> None:
    """VNC on 0.0.0.0 without authentication fails VMS-DOM-020 and VMS-DOM-021 on the same device."""
    root = Path(__file__).parent / "data" / "checks" / "VMS-DOM-021" / "vnc-open.FAIL"
    inventory = collect_host_inventory(str(root))
    scan = run_checks(inventory, default_catalog())
    both = {f.check_id for f in scan.findings if f.status.value == "FAIL" and "vnc" in f.subject}
    assert {"VMS-DOM-020", "VMS-DOM-021"} <= both
    [vm] = [u for u in digest_of(scan).units if u.kind.value == "domain"]
    assert sum("VNC" in sentence for sentence in vm.why) == 1, vm.why
