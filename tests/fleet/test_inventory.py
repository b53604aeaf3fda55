"""Fleet inventories: every target kind through spec_from_mapping, the fleet's own keys, and errors that
name the entry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmsec.errors import ConfigError
from vmsec.fleet.inventory import load_inventory, parse_duration, parse_inventory
from vmsec.specs import HostSpec, LibvirtSpec, ProbeSpec, RootfsSpec, SshSpec, XmlSpec


def test_every_kind_and_the_fleet_keys(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text("""
defaults: {hypervisor_limit: 3, timeout: 2m, attempts: 5}
hypervisors:
  hv7: {limit: 1}
groups:
  production: {every: 6h}
targets:
  - {kind: libvirt, uri: "qemu+ssh://hv7/system", guests: auto, hypervisor: hv7, groups: [production]}
  - {kind: ssh, host: 10.0.0.5, user: root, hypervisor: hv7, timeout: 30}
  - {kind: xml, path: exports/hv9, name: hv9-configs, groups: production}
  - {kind: host, root: /srv/hv1-root}
  - {kind: rootfs, paths: [guests/a, /abs/b]}
  - {kind: probe, targets: [127.0.0.1], ports: [5900]}
""")
    inv = load_inventory(tmp_path / "inv.yaml")
    libvirt, ssh, xml, host, rootfs, probe = inv.targets
    assert isinstance(libvirt.spec, LibvirtSpec) and libvirt.spec.guests == "auto"
    assert libvirt.spec.group == "hv7" and libvirt.hypervisor == "hv7" and libvirt.hypervisor_limit == 1
    assert libvirt.key == "libvirt qemu+ssh://hv7/system" and libvirt.groups == ("production",)
    assert isinstance(ssh.spec, SshSpec) and ssh.spec.user == "root" and ssh.timeout == 30
    assert isinstance(xml.spec, XmlSpec) and xml.key == "hv9-configs"
    assert xml.spec.paths == (str(tmp_path / "exports/hv9"),)  # relative to the inventory
    assert xml.timeout == 120 and xml.hypervisor is None and xml.hypervisor_limit is None
    assert isinstance(host.spec, HostSpec) and host.spec.root == "/srv/hv1-root"
    assert isinstance(rootfs.spec, RootfsSpec)
    assert rootfs.spec.paths == (str(tmp_path / "guests/a"), "/abs/b")
    assert isinstance(probe.spec, ProbeSpec)
    assert inv.attempts == 5 and inv.hypervisor_limit == 3 and inv.groups["production"].every_s == 6 * 3600
    assert [t.key for t in inv.select("production").targets] == [libvirt.key, "hv9-configs"]
    # The stored document keeps resolved paths: a schedule's workers need no inventory file.
    again = parse_inventory(inv.document, "again")
    assert [t.spec for t in again.targets] == [t.spec for t in inv.targets]


@pytest.mark.parametrize(("text", "message"), [
    ("targets: []", "'targets' must be a non-empty list"),
    ("targets: [{kind: floppy}]", r"targets\[1\]: unknown kind 'floppy'"),
    ("targets: [{kind: xml, path: a}, {kind: xml, pth: b}]",
     r"targets\[2\]: xml targets have no option 'pth'"),
    ("targets: [{kind: xml, path: a}, {kind: xml, path: a}]", r"targets\[2\]: target .* is listed twice"),
    ("targets: [{kind: xml, path: a, hypervisor: 'a\\nb'}]", "not a usable name"),
    ('targets: [{kind: xml, path: a, name: "plain\\n"}]', "not a usable name"),  # $ before a final \\n
    ("defaults: {attempts: 0}\ntargets: [{kind: xml, path: a}]", "positive whole number"),
    ("targets: [{kind: xml, path: a, timeout: soon}]", "not a duration"),
    ("spam: 1\ntargets: [{kind: xml, path: a}]", "unknown top-level keys spam"),
    ("targets: [{kind: xml, path: !!binary aGVsbG8=}]", "bytes values are not supported"),
    ("[1, 2", "not valid YAML"),
])
def test_errors_name_the_entry(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_inventory(path)


def test_unknown_group_and_durations() -> None:
    inv = parse_inventory({"targets": [{"kind": "xml", "path": "/a", "groups": ["web"]}]})
    with pytest.raises(ConfigError, match=r"no target is in group 'db' \(groups: web"):
        inv.select("db")
    assert [parse_duration(v, "x") for v in (90, "90s", "15m", "6h", "1d")] == [90, 90, 900, 21600, 86400]
    with pytest.raises(ConfigError):
        parse_duration("0s", "x")


def test_a_path_that_is_not_utf8_is_refused_by_name_not_left_to_crash_the_run(tmp_path: Path) -> None:
    # A run keeps its targets as JSON text in the store; creating one crashed on the lone surrogate
    # that stands for an undecodable byte (here the directory holding the inventory).
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/odd-\xff"))
    odd.mkdir()
    (odd / "inv.yaml").write_text("targets:\n  - {kind: xml, path: exports/hv9}\n"
                                  "  - {kind: host, root: /srv/r}\n")
    with pytest.raises(ConfigError, match=r"targets\[1\]\.path: '.*odd-\\\\udcff/exports/hv9' holds a byte "
                                          r"that is not UTF-8, which a fleet run cannot keep"):
        load_inventory(odd / "inv.yaml")
    (odd / "inv.yaml").write_text("targets:\n  - {kind: host, root: /srv/r}\n"
                                  "  - {kind: rootfs, paths: [/g/a]}\n")
    assert [t.key for t in load_inventory(odd / "inv.yaml").targets] == ["host /srv/r", "rootfs /g/a"]
    (tmp_path / "esc.yaml").write_text('targets:\n  - {kind: rootfs, paths: ["/g/a", "/g/\\udcff"]}\n')
    with pytest.raises(ConfigError, match=r"targets\[1\]\.paths: .* holds a byte that is not UTF-8"):
        load_inventory(tmp_path / "esc.yaml")
