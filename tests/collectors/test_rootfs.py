"""The rootfs collector: one Guest per root directory; bad paths recorded, none usable → unavailable."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmsec.collectors import get_collector
from vmsec.collectors.rootfs import collect_rootfs
from vmsec.errors import SourceUnavailable

GUESTS = Path(__file__).resolve().parents[1] / "data" / "guests"


def test_three_roots_three_guests() -> None:
    messages: list[str] = []
    paths = [str(GUESTS / n) for n in ("debian12", "alma9", "alpine320")]
    inventory = collect_rootfs(paths, progress=messages.append)
    assert [g.name for g in inventory.guests] == ["debian12", "alma9", "alpine320"]
    assert [g.os.id if g.os else None for g in inventory.guests] == ["debian", "almalinux", "alpine"]
    assert inventory.source.startswith("rootfs ") and str(GUESTS / "alma9") in inventory.source
    assert inventory.errors == ()
    assert len(messages) == 3
    assert inventory.host is None and inventory.domains == ()


def test_bad_path_is_recorded_and_skipped(tmp_path: Path) -> None:
    inventory = collect_rootfs([str(tmp_path / "missing"), str(GUESTS / "alpine320")])
    assert [g.name for g in inventory.guests] == ["alpine320"]
    assert [(r.source, r.ok) for r in inventory.errors][:1] == [(str(tmp_path / "missing"), False)]


def test_no_usable_root(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(SourceUnavailable, match="not a directory"):
        collect_rootfs([str(file)])


def test_registered_as_a_collector(tmp_path: Path) -> None:
    """The registry maps the spec kind to the module's collector interface, which reads the spec."""
    from vmsec.collectors import CollectContext
    from vmsec.collectors.rootfs import collect
    from vmsec.specs import RootfsSpec

    assert get_collector("rootfs") is collect
    root = tmp_path / "guest"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
    messages: list[str] = []
    inventory = collect(RootfsSpec(paths=(str(root),)), CollectContext(progress=messages.append))
    assert [g.name for g in inventory.guests] == ["guest"]
    assert messages, "the collector reports progress through its context"


def test_a_vulnerability_only_scan_reads_only_os_and_packages(tmp_path: Path) -> None:
    """`--check 'VMS-VULN-*'` needs each OS's release and packages only: nothing else is read (every
    other fact stays unknown), and the vulnerability verdicts are those of a full collection."""
    from vmsec.pipeline import ScanOptions, scan
    from vmsec.specs import RootfsSpec

    root = tmp_path / "guest"
    (root / "etc").mkdir(parents=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\nVERSION_ID=12\n")
    (root / "var/lib/dpkg/status").write_text(
        "Package: openssh-server\nStatus: install ok installed\nVersion: 1:9.2p1-2\nArchitecture: amd64\n\n")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    only = scan([RootfsSpec(paths=(str(root),))], ScanOptions(checks=("VMS-VULN-*",)))
    full = scan([RootfsSpec(paths=(str(root),))], ScanOptions())
    assert only.inventory is not None and full.inventory is not None
    lean, whole = only.inventory.guests[0], full.inventory.guests[0]
    assert lean.packages == whole.packages and lean.os == whole.os
    assert lean.accounts is None and whole.accounts is not None  # not read, so unknown — not empty
    vuln = {(f.check_id, f.status) for f in full.findings if f.check_id.startswith("VMS-VULN-")}
    assert {(f.check_id, f.status) for f in only.findings} == vuln
