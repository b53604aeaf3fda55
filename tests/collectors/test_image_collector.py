"""The image collector on real Debian 12 disk images (debootstrap, built and cached by
tests/images/build_images.sh): qcow2, raw GPT, bare ext4, VMDK, xfs, backing chains, LUKS."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from components import require_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "images"))

from guest_images import PASSPHRASE, GuestImages, ImageBuildError, build_guest_images

from vmsec.collectors.image import collect_images, open_guest_image
from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import Guest, Inventory


@pytest.fixture(scope="session")
def guest_images() -> GuestImages:
    try:
        return build_guest_images()
    except ImageBuildError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def debian(guest_images: GuestImages) -> Inventory:
    return collect_images([str(guest_images["disk.qcow2"])])


@pytest.fixture()
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "key"
    path.write_text(PASSPHRASE)  # the passphrase exactly, as cryptsetup --key-file
    return str(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _only_guest(inv: Inventory) -> Guest:
    [guest] = inv.guests
    return guest


def test_debian_qcow2_yields_the_guest_os_facts(debian: Inventory, guest_images: GuestImages) -> None:
    guest = _only_guest(debian)
    assert guest.name == "disk.qcow2" and guest.origin == str(guest_images["disk.qcow2"])
    assert guest.os is not None and guest.os.id == "debian" and guest.os.version_id == "12"
    names = {p.name for p in guest.packages or ()}
    assert {"openssh-server", "sudo", "base-files"} <= names
    assert guest.sshd_installed is True and guest.sshd is not None
    assert guest.account("root") is not None and guest.account("root").uid == 0  # type: ignore[union-attr]
    assert guest.shadow is not None and any(s.name == "root" for s in guest.shadow)
    assert guest.disk is not None and guest.disk.scheme == "none" and not guest.disk.unlocked
    assert debian.source.startswith("image ")
    assert any(r.what == "disk image" and r.ok for r in debian.records)


@pytest.mark.parametrize("image", ["disk.raw", "fs.ext4"])
def test_raw_gpt_and_bare_filesystem_give_the_same_facts(guest_images: GuestImages, debian: Inventory,
                                                         image: str) -> None:
    guest = _only_guest(collect_images([str(guest_images[image])]))
    reference = _only_guest(debian)
    assert guest.os == reference.os
    assert guest.accounts == reference.accounts
    assert guest.packages == reference.packages
    assert guest.sshd == reference.sshd


def test_vmdk_image_is_read(guest_images: GuestImages, debian: Inventory, tmp_path: Path) -> None:
    vmdk = tmp_path / "disk.vmdk"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "vmdk", str(guest_images["disk.qcow2"]),
                    str(vmdk)], check=True)
    guest = _only_guest(collect_images([str(vmdk)]))
    assert guest.os == _only_guest(debian).os and guest.accounts == _only_guest(debian).accounts


def test_xfs_filesystem_is_read(guest_images: GuestImages) -> None:
    reader, disk, _records = open_guest_image(str(guest_images["fs.xfs"]))
    assert reader is not None and disk.scheme == "none"
    assert reader.read_text("/etc/hostname") == "vmsec-test-guest\n"
    assert "root:x:0:0:" in reader.read_text("/etc/passwd")
    shadow = reader.stat("/etc/shadow")
    assert shadow.mode == 0o640
    assert shadow.acl == () and shadow.acl_error is None  # no attributes: no ACL (see test_xfs_acl.py)


def test_images_are_never_written(guest_images: GuestImages, key_file: str) -> None:
    images = [guest_images[n] for n in ("disk.qcow2", "disk.raw", "disk-luks.qcow2", "fs.luks")]
    before = {p: (_sha256(p), p.stat().st_mtime_ns) for p in images}
    collect_images([str(p) for p in images])
    collect_images([str(guest_images["disk-luks.qcow2"])], key_file=key_file)
    assert {p: (_sha256(p), p.stat().st_mtime_ns) for p in images} == before


def test_backing_chain_inside_the_images_directory_is_followed(guest_images: GuestImages,
                                                               tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    os.link(guest_images["disk.qcow2"], base)  # same directory as the overlay, no copy
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
                    str(overlay)], check=True)
    guest = _only_guest(collect_images([str(overlay)]))
    assert guest.os is not None and guest.os.id == "debian"


def test_backing_file_outside_the_allowed_directories_is_refused(guest_images: GuestImages,
                                                                 tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.qcow2"
    base = str(guest_images["disk.qcow2"])
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", str(overlay)],
                   check=True)
    with pytest.raises(ReadError, match="outside the allowed directories"):
        open_guest_image(str(overlay))
    reader, _disk, _records = open_guest_image(str(overlay), allowed_dirs=[str(guest_images.dir)])
    assert reader is not None and reader.exists("/etc/os-release")


def test_luks_qcow2_without_a_key_is_reported_encrypted_not_audited(guest_images: GuestImages) -> None:
    inv = collect_images([str(guest_images["disk-luks.qcow2"])])
    guest = _only_guest(inv)
    assert guest.disk is not None and guest.disk.scheme == "qcow2-luks" and not guest.disk.unlocked
    assert "luks" in guest.disk.detail
    assert guest.os is None and guest.accounts is None and guest.packages is None  # unknown, not empty
    [note] = [r for r in inv.records if r.what == "guest contents"]
    # Not a clean scan: one failed record says it is encrypted and how to unlock it.
    assert not note.ok and "not audited" in (note.reason or "") and "encrypted" in (note.reason or "")
    assert "--key-file" in (note.reason or "")
    assert inv.errors == (note,)


def test_luks_qcow2_with_the_key_is_decrypted_into_a_private_temp_file(
        guest_images: GuestImages, key_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    reader, disk, _records = open_guest_image(str(guest_images["disk-luks.qcow2"]), key_file)
    assert disk.scheme == "qcow2-luks" and disk.unlocked
    assert reader is not None and reader.read_text("/etc/hostname") == "vmsec-test-guest\n"
    assert list(scratch.iterdir()) == []  # the decrypted copy is unlinked while still open
    guest = _only_guest(collect_images([str(guest_images["disk-luks.qcow2"])], key_file=key_file))
    assert guest.os is not None and guest.os.id == "debian"


def test_a_wrong_key_is_a_clear_record(guest_images: GuestImages, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-passphrase")
    image = str(guest_images["disk-luks.qcow2"])
    with pytest.raises(Exception, match="no usable disk image") as info:
        collect_images([image], key_file=str(wrong))
    assert image in str(info.value) and "could not decrypt" in str(info.value)


def test_raw_luks_volume_is_detected_and_unlocked_with_the_key(guest_images: GuestImages,
                                                               key_file: str) -> None:
    reader, disk, _records = open_guest_image(str(guest_images["fs.luks"]))
    assert reader is None and disk.scheme == "luks"
    reader, disk, _records = open_guest_image(str(guest_images["fs.luks"]), key_file)
    assert disk.scheme == "luks" and disk.unlocked
    assert reader is not None and reader.read_text("/etc/hostname") == "vmsec-test-guest\n"


def test_luks_partition_inside_the_guest_is_detected(guest_images: GuestImages) -> None:
    inv = collect_images([str(guest_images["disk-lukspart.raw"])])
    guest = _only_guest(inv)
    assert guest.disk is not None and guest.disk.scheme == "luks-in-guest" and not guest.disk.unlocked
    assert "offset 1048576" in guest.disk.detail
    assert guest.os is None
    assert any(r.what == "guest contents" and "not audited" in (r.reason or "") for r in inv.records)


def test_luks_partition_inside_the_guest_is_unlocked_with_the_key(guest_images: GuestImages,
                                                                  key_file: str) -> None:
    reader, disk, _records = open_guest_image(str(guest_images["disk-lukspart.raw"]), key_file)
    assert disk.scheme == "luks-in-guest" and disk.unlocked
    assert reader is not None and 'VERSION_CODENAME=bookworm' in reader.read_text("/etc/os-release")
    assert reader.read_text("/etc/passwd").startswith("root:x:0:0:")


def test_a_wrong_key_for_a_luks_volume_is_a_clear_error(guest_images: GuestImages, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("vmsec-test\n")  # the newline is part of the key, as with cryptsetup --key-file
    with pytest.raises(ReadError, match="could not unlock the LUKS volume") as err:
        open_guest_image(str(guest_images["fs.luks"]), str(wrong))
    assert "ends with a newline" in str(err.value)  # the likeliest mistake is named
    wrong.write_text("vmsec-wrong")
    with pytest.raises(ReadError, match="could not unlock the LUKS volume") as err:
        open_guest_image(str(guest_images["fs.luks"]), str(wrong))
    assert "newline" not in str(err.value)
    from dissect.target.helpers import keychain

    assert keychain.get_all_keys() == []  # the passphrase does not outlive the open


def test_plain_qcow2_header_says_no_encryption(guest_images: GuestImages) -> None:
    from vmsec.collectors.image import backing_chain

    [layer] = backing_chain(str(guest_images["disk.qcow2"]))
    assert layer.format == "qcow2" and layer.header is not None and layer.header.crypt_method == 0
    [luks] = backing_chain(str(guest_images["disk-luks.qcow2"]))
    assert luks.header is not None and luks.header.crypt_method == 2


# --- libvirt --guests -----------------------------------------------------------------------------

_DOMAIN = """
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>{name}</name>
    <memory unit='KiB'>65536</memory>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='cdrom'>
        <source file='{cdrom}'/><target dev='hdc' bus='ide'/><readonly/>
      </disk>
      {disks}
    </devices>
    {state}
  </domain>"""
_DISK = ("<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/><source file='{path}'/>"
         "<target dev='vd{letter}' bus='virtio'/></disk>")


def _node(tmp_path: Path, domains: list[tuple[str, list[Path], bool]], cdrom: Path) -> str:
    parts = []
    for name, disks, running in domains:
        disk_xml = "".join(_DISK.format(fmt="qcow2" if p.suffix == ".qcow2" else "raw", path=p,
                                        letter="abcdefgh"[i]) for i, p in enumerate(disks))
        state = "" if running else "<test:runstate>5</test:runstate>"
        parts.append(_DOMAIN.format(name=name, cdrom=cdrom, disks=disk_xml, state=state))
    node = tmp_path / "node.xml"
    node.write_text("<node>" + "".join(parts) + "</node>")
    return f"test://{node}"


def test_libvirt_guests_reads_each_domains_disk(guest_images: GuestImages, tmp_path: Path,
                                                key_file: str) -> None:
    require_module("libvirt", "libvirt-python (pip extra [libvirt], built against libvirt-dev)")
    from vmsec.collectors.libvirt import RUNNING_NOTE, collect_libvirt

    scratch = tmp_path / "scratch.raw"  # an empty data disk first: no OS, so the next disk wins
    scratch.write_bytes(b"\0" * (1 << 20))
    uri = _node(tmp_path, [
        ("web", [scratch, guest_images["disk.qcow2"]], True),
        ("vault", [guest_images["disk-luks.qcow2"]], False),
        ("broken", [guest_images["hostile-backing-shadow.qcow2"]], False),
    ], cdrom=guest_images["fs.ext4"])
    without = collect_libvirt(uri)
    assert without.guests == ()
    inv = collect_libvirt(uri, guests=True)
    by_name = {g.domain: g for g in inv.guests}
    assert sorted(by_name) == ["vault", "web"]
    web = by_name["web"]
    assert web.name == "web" and web.os is not None and web.os.id == "debian"
    assert web.origin == f"{uri}#web {guest_images['disk.qcow2']}"
    assert web.consistency_note == RUNNING_NOTE
    vault = by_name["vault"]
    assert vault.disk is not None and vault.disk.scheme == "qcow2-luks" and vault.os is None
    assert vault.consistency_note is None
    broken = str(guest_images["hostile-backing-shadow.qcow2"])
    [refused] = [r for r in inv.errors if r.source == broken]
    assert "outside the allowed directories" in (refused.reason or "")
    # The data disk without an OS is a record, not a failure of the scan; the CD-ROM is never read.
    assert any(r.source == str(scratch) for r in inv.errors)
    assert not any(r.source == str(guest_images["fs.ext4"]) for r in inv.records)
    # With the operator's key the encrypted domain is audited too.
    unlocked = {g.domain: g for g in collect_libvirt(uri, guests=True, key_file=key_file).guests}
    assert unlocked["vault"].os is not None and unlocked["vault"].disk.unlocked  # type: ignore[union-attr]


def test_mbr_partitioned_disk_is_read(guest_images: GuestImages, tmp_path: Path) -> None:
    fs = guest_images["fs.xfs"]
    disk = tmp_path / "mbr.raw"
    mib = fs.stat().st_size // (1 << 20)
    with open(disk, "wb") as fh:
        fh.truncate((mib + 2) << 20)
    subprocess.run(["sfdisk", "-q", str(disk)], input=f"label: dos\nstart=2048, size={mib * 2048}, type=83\n",
                   text=True, check=True)
    subprocess.run(["dd", f"if={fs}", f"of={disk}", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"],
                   check=True)
    reader, disk_at_rest, _records = open_guest_image(str(disk))
    assert reader is not None and disk_at_rest.scheme == "none"
    assert reader.read_text("/etc/hostname") == "vmsec-test-guest\n"


# --- what QEMU does with a chain, a header, a magic (a review against qemu-img, 2026-12-06) ----------

LUKS_SCRIPT = str(Path(__file__).resolve().parents[1] / "images" / "qemu_img_luks.sh")


def _luks_top(directory: Path, backing: str, backing_format: str) -> Path:
    """A qcow2 with built-in LUKS over ``backing`` (the test passphrase)."""
    top = directory / "top.qcow2"
    subprocess.run(["sh", LUKS_SCRIPT, "create", "-q", "-f", "qcow2", "-b", backing, "-F", backing_format,
                    "--object", f"secret,id=s,data={PASSPHRASE}",
                    "-o", "encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10", str(top)],
                   check=True)
    return top


def test_a_key_never_lets_qemu_img_follow_a_chain_vmsec_did_not_check(guest_images: GuestImages,
                                                                     tmp_path: Path, key_file: str) -> None:
    # A VMDK descriptor below an encrypted top names an extent outside the scanned directory: QEMU
    # would read it (and an nbd:// one would be a network connection) when vmsec decrypts the top.
    outside = tmp_path / "outside"
    outside.mkdir()
    os.link(guest_images["fs.ext4"], outside / "fs.ext4")
    images = tmp_path / "images"
    images.mkdir()
    (images / "base.vmdk").write_text(
        '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n'
        f'RW 1048576 FLAT "{outside / "fs.ext4"}" 0\n')
    top = _luks_top(images, "base.vmdk", "vmdk")
    with pytest.raises(ReadError, match="VMDK descriptor"):
        open_guest_image(str(top), key_file)


def test_a_backing_file_qemu_would_probe_as_another_format_is_refused(guest_images: GuestImages,
                                                                     tmp_path: Path) -> None:
    # Without a recorded backing format QEMU probes the file: a QED image is followed as QED (to its
    # own backing file, anywhere), not read as raw as vmsec did.
    base = tmp_path / "base.qed"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qed", str(base), "64M"], check=True)
    top = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qed", "-F", "qed", str(top)],
                   check=True)
    data = bytearray(top.read_bytes())
    at = data.find(b"\xe2\x79\x2a\xca")  # the backing-format header extension: now an unknown one
    data[at:at + 4] = b"jjjj"
    top.write_bytes(bytes(data))
    with pytest.raises(ReadError, match="qed"):
        open_guest_image(str(top))


def test_an_encrypted_top_over_a_plain_backing_file_is_not_encrypted_at_rest(
        guest_images: GuestImages, tmp_path: Path, key_file: str) -> None:
    os.link(guest_images["disk.qcow2"], tmp_path / "base.qcow2")
    top = _luks_top(tmp_path, "base.qcow2", "qcow2")
    _reader, disk, _records = open_guest_image(str(top))
    assert disk.scheme == "none" and "base.qcow2" in disk.detail
    # With the key, the chain vmsec checked is the one QEMU decrypts (the guest lives in the base).
    reader, disk, _records = open_guest_image(str(top), key_file)
    assert disk.scheme == "none"
    assert reader is not None and reader.read_text("/etc/hostname") == "vmsec-test-guest\n"


def test_six_bytes_of_luks_magic_are_not_a_luks_volume(guest_images: GuestImages, tmp_path: Path) -> None:
    # cryptsetup: "not a valid LUKS device"; e2fsck and the kernel read the ext4 behind the bytes.
    # Judged encrypted (and its contents skipped) before: a guest could hide itself behind six bytes.
    fake = tmp_path / "fake.raw"
    subprocess.run(["cp", "--sparse=always", str(guest_images["fs.ext4"]), str(fake)], check=True)
    with fake.open("r+b") as fh:
        fh.write(b"LUKS\xba\xbe")
    reader, disk, _records = open_guest_image(str(fake))
    assert disk.scheme == "none"
    assert reader is not None and reader.read_text("/etc/hostname") == "vmsec-test-guest\n"
    real = guest_images["fs.luks"]
    _reader, disk, _records = open_guest_image(str(real))
    assert disk.scheme == "luks"  # a real LUKS2 header still is one


def test_a_luks_partition_beside_a_plain_root_is_not_an_encrypted_disk(guest_images: GuestImages,
                                                                      tmp_path: Path) -> None:
    # Without a key the root file system was read: it is not the LUKS volume's.
    disk_path = tmp_path / "mixed.raw"
    fs = guest_images["fs.ext4"]
    size_mib = fs.stat().st_size // 2**20
    subprocess.run(["truncate", "-s", f"{size_mib + 64}M", str(disk_path)], check=True)
    script = f"label: gpt\nstart=2048, size={size_mib * 2048}\nsize=40960\n"
    subprocess.run(["sfdisk", "-q", str(disk_path)], input=script.encode(), check=True)
    subprocess.run(["dd", f"if={fs}", f"of={disk_path}", "bs=1M", "seek=1", "conv=notrunc,sparse",
                    "status=none"], check=True)
    subprocess.run(["dd", f"if={guest_images['fs.luks']}", f"of={disk_path}", "bs=1M", "count=16",
                    f"seek={1 + size_mib}", "conv=notrunc,sparse", "status=none"], check=True)
    reader, disk, records = open_guest_image(str(disk_path))
    assert disk.scheme == "none" and "not encrypted" in disk.detail
    assert reader is not None and reader.read_text("/etc/hostname") == "vmsec-test-guest\n"
    assert not any("not audited" in (r.reason or "") for r in records)


@pytest.mark.parametrize(("offset", "value", "why"), [
    (32, (2).to_bytes(4, "big"), "LUKS header"),  # "Missing CRYPTO header for crypt method 2"
    (72, (1 << 7).to_bytes(8, "big"), "incompatible feature"),  # "Unsupported qcow2 feature(s)"
])
def test_a_qcow2_header_qemu_refuses_is_refused(tmp_path: Path, offset: int, value: bytes, why: str) -> None:
    image = tmp_path / "bad.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    with image.open("r+b") as fh:
        fh.seek(offset)
        fh.write(value)
    assert subprocess.run(["qemu-img", "check", str(image)], capture_output=True).returncode != 0
    with pytest.raises(ReadError, match=why):
        open_guest_image(str(image))


def test_a_relative_backing_file_is_found_where_qemu_finds_it(guest_images: GuestImages,
                                                             tmp_path: Path) -> None:
    # QEMU joins a relative backing name to the directory of the image *as named*: a symlinked top
    # (scan/top.qcow2 -> store/real.qcow2) takes scan/base.img, not store/base.img.
    store, scan = tmp_path / "store", tmp_path / "scan"
    store.mkdir()
    scan.mkdir()
    (store / "base.img").write_bytes(bytes(4096))  # what vmsec read before: another file
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.img", "-F", "raw",
                    str(store / "real.qcow2"), "512M"], check=True)
    (scan / "top.qcow2").symlink_to(store / "real.qcow2")
    os.link(guest_images["fs.ext4"], scan / "base.img")
    from vmsec.collectors.image import backing_chain

    chain = backing_chain(str(scan / "top.qcow2"))  # the directory it was named in is allowed
    assert [os.path.basename(os.path.dirname(layer.path)) for layer in chain] == ["store", "scan"]


def test_a_chain_of_sparse_exabyte_images_is_refused_not_read(tmp_path: Path) -> None:
    # A few KiB on disk, a 16 MiB L1 table per layer: reading a 16-deep chain took 32 s and 2.5 GB.
    from hostile_guests import qcow2_sparse_exabyte_chain

    top = qcow2_sparse_exabyte_chain(tmp_path / "chain", depth=3)
    with pytest.raises(ReadError, match="L1 tables") as info:
        open_guest_image(str(top))
    assert info.value.kind is ErrorKind.TOO_LARGE
