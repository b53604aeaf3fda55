"""Guest mount-option checks (VMS-GST-127…129)."""

from __future__ import annotations

from typing import Any

import pytest

from vmsec.checks.guest import mounts as mc
from vmsec.facts import Guest
from vmsec.facts.guest import MountEntry, Service
from vmsec.findings import Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
ROOT = MountEntry(device="/dev/vda1", mountpoint="/", fstype="ext4", options=("errors=remount-ro",))


def m(mp: str, *opts: str, fstype: str = "tmpfs") -> MountEntry:
    return MountEntry(device="tmpfs", mountpoint=mp, fstype=fstype, options=opts)


CASES: list[tuple[Any, Any, Any, list[Status]]] = [
    (mc.tmp_options, None, (), [U]),
    (mc.tmp_options, (ROOT,), (), [F]),
    (mc.tmp_options, (ROOT, m("/tmp", "nodev", "nosuid")), (), [F]),
    (mc.tmp_options, (ROOT, m("/tmp/", "nodev", "nosuid", "noexec", "mode=1777")), (), [P]),
    (mc.tmp_options, (ROOT,), (Service(name="tmp.mount", manager="systemd", enabled=True),), [U]),
    (mc.shm_options, (ROOT,), (), [F]),
    (mc.shm_options, (ROOT, m("/dev/shm", "nodev", "nosuid", "noexec")), (), [P]),
    (mc.separate_var_log, (ROOT,), (), [F]),
    (mc.separate_var_log, (ROOT, m("/var/log", "nodev", fstype="ext4")), (), [P]),
    (mc.separate_var_log, (ROOT, m("/var", fstype="xfs")), (), [P]),
    (mc.separate_var_log, None, (), [U]),
]


@pytest.mark.parametrize(("func", "fstab", "services", "expected"), CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_mounts(func: Any, fstab: Any, services: Any, expected: list[Status]) -> None:
    guest = Guest(name="vm", origin="/img", fstab=fstab, services=services)
    assert [r.status for r in func(guest)] == expected


def test_missing_options_are_named() -> None:
    [r] = mc.tmp_options(Guest(name="vm", origin="/img", fstab=(m("/tmp", "nosuid"),)))
    assert "nodev" in r.message and "noexec" in r.message and "nosuid," not in r.message
