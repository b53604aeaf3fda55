"""`scan ssh` against real OpenSSH servers: the facts a guest yields over SSH are the facts its root
yields when read directly, in a few round trips, whether the guest runs commands or only SFTP; and
this machine audited over SSH gets the verdicts its local audit gets."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

import sshd
from vmsec.checks.api import Scope
from vmsec.checks.catalog import default_catalog
from vmsec.collectors.guest import collect_guest
from vmsec.collectors.reader import RootReader
from vmsec.facts import Guest, evolve
from vmsec.findings import Finding
from vmsec.pipeline import ScanOptions, scan
from vmsec.specs import HostSpec

pytestmark = pytest.mark.ssh

IDENTITY_FIELDS = {"name", "origin", "runtime", "running_kernel", "vulnerabilities"}


def _differences(a: Guest, b: Guest, *, file_ids: bool = True) -> dict[str, tuple[object, object]]:
    """Facts that differ. ``file_ids=False``: a transport that knows neither (device, inode) nor
    sub-second times — SFTP version 3 — is compared without them (file ids only tell two paths to one
    file apart from two files; no check reads fractions of a second), nor ACLs, which SFTP does not
    show (unknown there, with the reason: asserted by the SFTP test)."""
    if not file_ids:
        def coarse(g: Guest) -> Guest:
            stats = g.file_stats or {}
            return evolve(g, file_stats={
                p: evolve(s, file_id=None, mtime=None if s.mtime is None else int(s.mtime), acl=None,
                          acl_error=None)
                for p, s in stats.items()})
        a, b = coarse(a), coarse(b)
    return {f.name: (getattr(a, f.name), getattr(b, f.name)) for f in msgspec.structs.fields(Guest)
            if f.name not in IDENTITY_FIELDS and getattr(a, f.name) != getattr(b, f.name)}


def _session(result: object) -> str:
    records = [r for r in result.records if r.what == "ssh session"]  # type: ignore[attr-defined]
    assert len(records) == 1, records
    return records[0].reason or ""


def test_a_guest_over_ssh_has_the_facts_of_its_root(debian_guest: sshd.SshServer, debian_root: Path) -> None:
    result = scan([debian_guest.spec(name="debian12")], ScanOptions())
    [guest] = result.inventory.guests  # type: ignore[union-attr]
    local, _records = collect_guest(RootReader(str(debian_root)), name="x", origin="x")
    assert guest.name == "debian12" and guest.origin == f"ssh://root@127.0.0.1:{debian_guest.port}"
    assert guest.os is not None and guest.os.version_id == "12"
    assert guest.packages and len(guest.packages) == len(local.packages or ())
    # ACLs included: the guest's ls shows that none of its credential files has one (its getfacl is
    # missing, and not needed then), as the local reader finds none in their xattrs
    assert _differences(guest, local) == {}
    assert {s.acl for s in (guest.file_stats or {}).values() if s.exists} == {()}
    # the guest's whole filesystem is the target: read in three batches of commands, hardly anything else
    # (the credential files' ACLs are asked in the third)
    session = _session(result)
    match = re.search(r"read in (\d+) batches of commands \((\d+) commands, (\d+) SFTP requests\) "
                      r"and (\d+) single", session)
    assert match, session
    batches, commands, _requests, singles = map(int, match.groups())
    assert batches == 3 and commands <= 6 and singles <= 3, session
    # nothing runs in a chroot without /proc: what runs is unknown, and said so
    assert guest.runtime is not None and guest.runtime.processes is None
    assert "procfs" in guest.runtime.reason("processes")


def test_an_sftp_only_guest_gives_the_same_facts(ssh_ready: None, debian_root: Path, tmp_path: Path) -> None:
    """ForceCommand internal-sftp: no command runs; the same batches are made of SFTP requests."""
    server = sshd.start_sshd(tmp_path / "sshd", root=debian_root, extra="ForceCommand internal-sftp\n")
    try:
        result = scan([server.spec()], ScanOptions())
    finally:
        server.stop()
    [guest] = result.inventory.guests  # type: ignore[union-attr]
    local, _records = collect_guest(RootReader(str(debian_root)), name="x", origin="x")
    assert _differences(guest, local, file_ids=False) == {}
    assert "batches of SFTP" in _session(result)
    # SFTP shows no ACLs: unknown, with the reason (a mode that is fine then judges UNKNOWN, not PASS)
    present = [s for s in (guest.file_stats or {}).values() if s.exists]
    assert present and all(s.acl is None and "not visible over SFTP" in (s.acl_error or "") for s in present)


def _guest_verdicts(findings: list[Finding] | tuple[Finding, ...]) -> dict[tuple[str, str], str]:
    guest_ids = {c.id for c in default_catalog().checks if c.scope is Scope.GUEST}
    return {(f.check_id, f.subject): f.status.value for f in findings if f.check_id in guest_ids}


def test_this_machine_over_ssh_is_judged_as_its_local_audit(this_machine: sshd.SshServer) -> None:
    """The same OS checks over SSH and locally, on the same running machine (the figure's oracle)."""
    remote = scan([this_machine.spec()], ScanOptions())
    local = scan([HostSpec(root="/")], ScanOptions())
    [guest] = remote.inventory.guests  # type: ignore[union-attr]
    assert guest.runtime is not None and guest.runtime.sysctl == local.inventory.host_os.runtime.sysctl  # type: ignore[union-attr]
    ours, theirs = _guest_verdicts(remote.findings), _guest_verdicts(local.findings)
    assert ours.keys() == theirs.keys()
    same = sum(ours[k] == theirs[k] for k in theirs)
    assert same / len(theirs) >= 0.99, {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}


def test_guests_of_one_hypervisor_are_capped(debian_guest: sshd.SshServer) -> None:
    """--per-hypervisor: at most group_limit guests of one hypervisor are collected at once, while the
    scan as a whole runs them concurrently."""
    events: list[tuple[str, str]] = []
    specs = [debian_guest.spec(name=f"g{n}", group="hv1") for n in range(6)]
    specs += [debian_guest.spec(name=f"h{n}", group="hv2") for n in range(2)]
    scan(specs, ScanOptions(concurrency=64, group_limit=2,
                            on_stage=lambda stage, what: events.append((stage, what))))
    running: set[str] = set()
    most = {"hv1": 0, "hv2": 0, "all": 0}
    for stage, what in events:
        if stage == "collect":
            running.add(what)
        elif stage == "match":
            running.discard(what)
        most["hv1"] = max(most["hv1"], sum("(g" in w for w in running))
        most["hv2"] = max(most["hv2"], sum("(h" in w for w in running))
        most["all"] = max(most["all"], len(running))
    assert most["hv1"] == 2 and most["hv2"] <= 2 and most["all"] >= 3, most
