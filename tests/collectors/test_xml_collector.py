"""The xml collector over real directories built in the test, with real corpus files in them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from datapaths import LIBVIRT_CORPUS as CORPUS
from vmsec.collectors.xml import MAX_FILES, MAX_WALK_DEPTH, collect_xml, walk_xml_files
from vmsec.facts import CollectionRecord
from vmsec.facts.common import ErrorKind


def _copy(rel: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CORPUS / rel, dest)
    return dest


def test_files_and_directories_of_every_kind(tmp_path: Path) -> None:
    _copy("qemuxml2argvdata/graphics-vnc-tls.xml", tmp_path / "qemu" / "vnc.xml")
    _copy("qemuxml2argvdata/seclabel-none.xml", tmp_path / "qemu" / "nested" / "unconfined.xml")
    _copy("networkxml2xmlin/nat-network.xml", tmp_path / "networks" / "default.xml")
    _copy("nwfilterxml2xmlin/ref-test.xml", tmp_path / "nwfilter" / "ref.xml")
    _copy("storagepoolxml2xmlin/pool-dir.xml", tmp_path / "storage" / "images.xml")
    _copy("secretxml2xmlin/usage-vtpm.xml", tmp_path / "secrets" / "vtpm.xml")
    (tmp_path / "qemu" / "notes.txt").write_text("not xml, not read")
    single = _copy("qemuxml2argvdata/hostdev-vfio.xml", tmp_path / "single.xml")
    seen: list[str] = []

    inv = collect_xml([str(tmp_path / "qemu"), str(tmp_path / "networks"), str(tmp_path / "nwfilter"),
                       str(tmp_path / "storage"), str(tmp_path / "secrets"), str(single)],
                      progress=seen.append)

    assert not inv.errors
    assert sorted(d.origin for d in inv.domains) == sorted([
        str(tmp_path / "qemu" / "vnc.xml"), str(tmp_path / "qemu" / "nested" / "unconfined.xml"),
        str(single)])
    assert [n.name for n in inv.networks] == ["default"]
    assert inv.nwfilters is not None and [f.name for f in inv.nwfilters] == ["testcase"]
    assert [p.name for p in inv.pools] == ["virtimages"]
    assert inv.secrets is not None and inv.secrets[0].usage_type == "vtpm"
    assert len(inv.records) == 7 and all(r.ok and r.what == "libvirt XML" for r in inv.records)
    assert len(seen) == 7 and all(s.startswith("xml ") for s in seen)
    assert inv.host is None
    assert inv.source.startswith("xml ") and str(single) in inv.source


def test_filters_and_secrets_unknown_when_none_given(tmp_path: Path) -> None:
    vm = _copy("qemuxml2argvdata/minimal.xml", tmp_path / "vm.xml")
    inv = collect_xml([str(vm)])
    assert inv.nwfilters is None
    assert inv.secrets is None
    assert [d.name for d in inv.domains] == ["QEMUGuest1"]


def test_same_domain_name_in_two_files_keeps_both(tmp_path: Path) -> None:
    a = _copy("qemuxml2argvdata/minimal.xml", tmp_path / "a.xml")
    b = _copy("qemuxml2argvdata/minimal.xml", tmp_path / "b.xml")
    inv = collect_xml([str(a), str(b), str(a)])  # the repeated path is read once
    assert [(d.name, d.origin) for d in inv.domains] == [("QEMUGuest1", str(a)), ("QEMUGuest1", str(b))]


def test_secure_flag_reaches_the_parser(tmp_path: Path) -> None:
    vm = _copy("qemuxml2argvdata/graphics-vnc.xml", tmp_path / "vm.xml")
    assert collect_xml([str(vm)], secure=False).domains[0].secure_xml is False
    assert collect_xml([str(vm)]).domains[0].secure_xml is True


def test_bad_inputs_are_records_and_the_scan_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a-broken.xml").write_text("<domain><name>x</name>")
    (tmp_path / "b-volume.xml").write_bytes((CORPUS / "storagevolxml2xmlin/vol-file.xml").read_bytes())
    (tmp_path / "c-noname.xml").write_text("<domain type='kvm'/>")
    os.mkfifo(tmp_path / "d-fifo.xml")  # opening it would block: it must never be opened
    (tmp_path / "f-dangling.xml").symlink_to(tmp_path / "nowhere")
    _copy("qemuxml2argvdata/minimal.xml", tmp_path / "z-good.xml")
    missing = tmp_path / "missing.xml"
    dev = tmp_path / "dev.xml"
    dev.symlink_to("/dev/zero")  # named explicitly: followed, but never opened

    inv = collect_xml([str(tmp_path), str(missing), str(dev)])

    assert [d.name for d in inv.domains] == ["QEMUGuest1"]
    reasons = {Path(r.source).name: r.reason for r in inv.errors}
    assert reasons == {
        "a-broken.xml": "not well-formed XML: line 1, column 23: no element found",
        "b-volume.xml": ("not a libvirt domain, network, filter, pool or secret document "
                         "(root element <volume>)"),
        "c-noname.xml": "domain has no <name>",
        "d-fifo.xml": "not a regular file (special file); not opened",
        "dev.xml": "not a regular file (special file); not opened",
        "f-dangling.xml": "No such file or directory",
        "missing.xml": "No such file or directory",
    }
    assert all(r.what == "libvirt XML" for r in inv.errors)


def test_symlinks_inside_a_walked_tree(tmp_path: Path) -> None:
    root = tmp_path / "copied-host" / "etc" / "libvirt" / "qemu"
    vm = _copy("qemuxml2argvdata/minimal.xml", root / "vm.xml")
    (root / "autostart").mkdir()
    (root / "autostart" / "vm.xml").symlink_to("../vm.xml")  # as libvirt lays out autostart
    outside = _copy("qemuxml2argvdata/hostdev-vfio.xml", tmp_path / "scanner-own" / "secret-vm.xml")
    (root / "planted.xml").symlink_to(outside)
    inv = collect_xml([str(tmp_path / "copied-host")])
    assert [d.origin for d in inv.domains] == [str(vm)]  # the autostart link is the same file
    assert [(Path(r.source).name, r.reason) for r in inv.errors] == [
        ("planted.xml", f"symbolic link to {outside}, outside {tmp_path / 'copied-host'}; not followed")]


def test_oversized_file_is_not_read(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    with big.open("wb") as fh:
        fh.truncate(9 * 1024 * 1024)  # sparse: the size alone must refuse it
    inv = collect_xml([str(big)])
    assert inv.errors[0].reason == f"file is {9 * 1024 * 1024} bytes, over the 8 MiB limit"


def test_directory_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _copy("qemuxml2argvdata/minimal.xml", outside / "vm.xml")
    scan = tmp_path / "scan"
    scan.mkdir()
    (scan / "link").symlink_to(outside, target_is_directory=True)
    (scan / "loop").symlink_to(scan, target_is_directory=True)
    inv = collect_xml([str(scan)])
    assert inv.domains == () and inv.records == ()


def test_walk_depth_is_bounded(tmp_path: Path) -> None:
    deep = tmp_path
    for level in range(8):
        deep = deep / f"d{level}"
        _copy("qemuxml2argvdata/minimal.xml", deep / "vm.xml")
    inv = collect_xml([str(tmp_path)])
    # tmp_path is depth 0; d0 … d5 are depths 1 … 6 and are read; d6 is not entered.
    assert len(inv.domains) == 6
    assert [r.reason for r in inv.errors] == ["1 directories deeper than 6 levels were not scanned"]
    assert inv.errors[0].what == "XML directory walk"


def test_file_count_is_bounded(tmp_path: Path) -> None:
    for i in range(5):
        _copy("qemuxml2argvdata/minimal.xml", tmp_path / f"vm{i}.xml")
    records: list[CollectionRecord] = []
    files = list(walk_xml_files([str(tmp_path)], records, max_files=3))
    assert [Path(f).name for f in files] == ["vm0.xml", "vm1.xml", "vm2.xml"]
    assert [r.reason for r in records] == ["more than 3 XML files; the rest were not read"]
    assert MAX_FILES == 200_000 and MAX_WALK_DEPTH == 6  # the defaults collect_xml uses


def test_host_root_gives_host_context(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc" / "libvirt").mkdir(parents=True)
    (root / "etc" / "libvirt" / "qemu.conf").write_text('user = "root"\nvnc_listen = "0.0.0.0"\n')
    vm = _copy("qemuxml2argvdata/graphics-vnc.xml", tmp_path / "vm.xml")
    inv = collect_xml([str(vm)], host_root=str(root))
    assert inv.host is not None
    assert inv.host.qemu_conf is not None
    setting = inv.host.qemu_conf.setting("vnc_listen")
    assert setting is not None and setting.value == "0.0.0.0"


def test_host_root_that_is_not_a_directory_is_a_record(tmp_path: Path) -> None:
    vm = _copy("qemuxml2argvdata/minimal.xml", tmp_path / "vm.xml")
    inv = collect_xml([str(vm)], host_root=str(tmp_path / "no-such-root"))
    assert inv.host is None
    assert [(r.what, r.reason) for r in inv.errors] == [("host root", "not a directory")]


def test_a_symlink_swapped_in_after_the_walk_is_not_followed_out_of_the_directory(tmp_path: Path) -> None:
    """The walk refuses a symbolic link that leads out of the directory; one put in place of a walked
    file between the walk and the read (a race an attacker with write access to the copied tree can
    win) is refused by where the opened file lies."""
    outside = tmp_path / "outside.xml"
    outside.write_text("<domain type='kvm'><name>CANARY-outside</name></domain>")
    tree = tmp_path / "copied"
    tree.mkdir()
    victim = tree / "vm.xml"
    victim.write_text("<domain type='kvm'><name>inside</name></domain>")
    (tree / "zz.xml").write_text("<domain type='kvm'><name>after</name></domain>")

    def swap(what: str) -> None:  # runs after the walk yielded the file, before it is read
        if what == f"xml {victim}":
            victim.unlink()
            victim.symlink_to(outside)

    inv = collect_xml([str(tree)], progress=swap)
    assert [d.name for d in inv.domains] == ["after"]  # the rest of the scan goes on
    [refused] = [r for r in inv.errors if r.source == str(victim)]
    assert f"opened {outside}, outside {tree}" in refused.reason and refused.kind is ErrorKind.CHANGED


def test_a_file_named_by_the_user_may_be_a_symlink_anywhere(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "vm.xml"
    target.parent.mkdir()
    target.write_text("<domain type='kvm'><name>named</name></domain>")
    link = tmp_path / "link.xml"
    link.symlink_to(target)
    assert [d.name for d in collect_xml([str(link)]).domains] == ["named"]
