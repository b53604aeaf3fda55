"""Targets that fail, and guests that fight back: each is one clear per-target record (with its kind)
while the rest of the scan goes on. Real OpenSSH servers throughout; the hostile guest is the real
Debian root under an overlay with a gigabyte file, a FIFO and a symlink loop planted in it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import sshd
from ports import free_port
from vmsec.errors import ErrorKind, SourceUnavailable
from vmsec.pipeline import ScanOptions, scan

pytestmark = pytest.mark.ssh


def _failures(result: object) -> dict[str, tuple[ErrorKind | None, str]]:
    return {r.source: (r.kind, r.reason or "") for r in result.records  # type: ignore[attr-defined]
            if not r.ok and r.what == "ssh target"}


def test_each_bad_target_is_one_record_and_the_scan_goes_on(
        debian_guest: sshd.SshServer, ssh_ready: None, tmp_path: Path) -> None:
    hanging = sshd.start_sshd(tmp_path / "hanging", extra="ForceCommand /bin/sleep 600\n")
    stranger = tmp_path / "stranger_ed25519"
    sshd.keygen(stranger)
    other_host = tmp_path / "other_known_hosts"
    other_host.write_text(f"[127.0.0.1]:{debian_guest.port} "
                          f"{sshd.keygen(tmp_path / 'impostor_ed25519')}\n")
    empty_known = tmp_path / "empty_known_hosts"
    empty_known.write_text("")
    closed = free_port()
    try:
        targets = {
            "good": debian_guest.spec(name="good"),
            "unreachable": debian_guest.spec(port=closed, name="unreachable"),
            "refused": debian_guest.spec(identity=str(stranger), name="refused"),
            "changed-key": debian_guest.spec(known_hosts=str(other_host), accept_new=True,
                                             name="changed-key"),
            "unknown-key": debian_guest.spec(known_hosts=str(empty_known), name="unknown-key"),
            "hanging": hanging.spec(name="hanging"),
        }
        started = time.monotonic()
        result = scan(list(targets.values()), ScanOptions(timeout=8, concurrency=8))
        elapsed = time.monotonic() - started
    finally:
        hanging.stop()
    assert [g.name for g in result.inventory.guests] == ["good"]  # type: ignore[union-attr]
    failed = _failures(result)
    by_name = {name: failed[spec.describe()] for name, spec in targets.items() if name != "good"}
    kind, reason = by_name["unreachable"]
    assert kind is ErrorKind.UNREACHABLE and "cannot connect" in reason
    assert by_name["refused"][0] is ErrorKind.DENIED and "authentication refused" in by_name["refused"][1]
    kind, reason = by_name["changed-key"]
    assert kind is ErrorKind.DENIED and "does not match" in reason  # --accept-new never overrides a mismatch
    kind, reason = by_name["unknown-key"]
    assert kind is ErrorKind.DENIED and "--accept-new" in reason
    assert by_name["hanging"][0] is ErrorKind.TIMEOUT
    assert empty_known.read_text() == ""  # nothing was trusted on first use
    assert elapsed < 60  # the hanging target cost its timeout, not the scan


def test_accept_new_records_an_unknown_host_key(debian_guest: sshd.SshServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    result = scan([debian_guest.spec(known_hosts=str(known), accept_new=True)], ScanOptions())
    assert result.inventory.guests  # type: ignore[union-attr]
    key = debian_guest.host_key.rsplit(" ", 1)[0]  # without its comment
    assert known.read_text().strip() == f"[127.0.0.1]:{debian_guest.port} {key}"
    assert any("accepted and recorded" in (r.reason or "") for r in result.records)
    # the next scan trusts it without --accept-new
    assert scan([debian_guest.spec(known_hosts=str(known))], ScanOptions()).inventory.guests  # type: ignore[union-attr]


def test_when_every_target_fails_the_scan_says_why(ssh_ready: None, tmp_path: Path) -> None:
    from vmsec.specs import SshSpec

    with pytest.raises(SourceUnavailable, match="cannot connect"):
        scan([SshSpec(host="127.0.0.1", port=free_port(), known_hosts=str(tmp_path / "kh"))],
             ScanOptions())


@pytest.fixture
def hostile_guest(ssh_ready: None, debian_root: Path, tmp_path: Path) -> sshd.SshServer:
    overlay = tmp_path / "overlay"
    etc = overlay / "upper" / "etc"
    etc.mkdir(parents=True)
    with open(etc / "passwd", "wb") as fh:  # a gigabyte (sparse) account database
        fh.truncate(1024 ** 3)
    os.mkfifo(etc / "login.defs")  # opening it would block whoever reads it
    os.symlink("shadow-b", etc / "shadow")
    os.symlink("shadow", etc / "shadow-b")
    (etc / "sudoers.d").mkdir()
    for n in range(3000):  # a directory far larger than any real configuration directory
        (etc / "sudoers.d" / f"rule{n:05d}").write_text("")
    return sshd.start_sshd(tmp_path / "sshd", root=debian_root, overlay=overlay)


def test_a_hostile_guest_is_read_within_bounds(hostile_guest: sshd.SshServer) -> None:
    started = time.monotonic()
    try:
        result = scan([hostile_guest.spec(name="hostile")], ScanOptions(timeout=60))
    finally:
        hostile_guest.stop()
    elapsed = time.monotonic() - started
    [guest] = result.inventory.guests  # type: ignore[union-attr]
    assert guest.os is not None and guest.packages  # what is sane is still read
    # unknown, never empty
    assert guest.accounts is None and guest.login_defs is None and guest.shadow is None
    failed = {r.source: r for r in result.records if not r.ok}
    assert "over the" in (failed["/etc/passwd"].reason or "")  # refused by size, never streamed
    assert "not a regular file" in (failed["/etc/login.defs"].reason or "")
    assert "/etc/shadow" in failed
    assert elapsed < 60
