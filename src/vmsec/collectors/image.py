"""The ``image`` collector: guest operating systems read offline from VM disk images.

Images are never mounted, attached or written. Every image file is opened ``O_RDONLY`` by this
module and handed to dissect.target as a file object; dissect parses the qcow2/VMDK container, the
partition table (MBR/GPT), LVM and the ext4/xfs filesystem in user space, and
:class:`~vmsec.collectors.dissect_reader.DissectReader` confines every guest path inside it.

A disk image is hostile input, and so are the file names it records:

- a qcow2 backing file is resolved as qemu does (relative to the image's directory, or as recorded
  when absolute), but only followed when it is a regular file inside an allowed directory (the
  top image's own directory, plus the caller's ``allowed_dirs``): a backing file naming the host's
  ``/etc/shadow`` or a device is refused with a clear error and never opened;
- backing chains are bounded (:data:`MAX_CHAIN`) and loops are detected by inode;
- external qcow2 data files and VMDK descriptors with separate extents are refused (they name more
  host files);
- header fields are range-checked before use, and before anything is allocated from them (vmsec's
  own header code and dissect's): the L1 table within QEMU's own 32 MiB limit and large enough for
  the virtual size, the refcount table within 8 MiB, at most 65,536 snapshots, tables inside the
  file. A corrupt image is an error naming it, never a multi-gigabyte allocation.

Encryption at rest is read from outside: the qcow2 header's ``crypt_method`` (big-endian u32 at
offset 32: 0 none, 1 AES, 2 LUKS), confirmed by ``qemu-img info``; a LUKS header at offset 0
(``LUKS\\xba\\xbe``, scheme ``luks``); a LUKS header at the start of a partition inside the guest
(``luks-in-guest``). Without a key the contents are not audited, which is recorded as a fact, not an
error. Keys are never guessed. With an operator-supplied key file (the passphrase exactly, as
``cryptsetup --key-file``):

- a LUKS qcow2 is decrypted by ``qemu-img convert`` into a private temporary file (mode 0600 in a
  0700 directory, unlinked as soon as it is opened) and read from there;
- LUKS1/LUKS2 volumes (the whole disk or a partition) are unlocked in memory by dissect.fve; the
  passphrase sits in dissect's keychain only while that disk is being opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat as st
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from msgspec import Struct

from vmsec.collectors.dissect_reader import DissectReader
from vmsec.collectors.reader import Reader
from vmsec.errors import ErrorKind, ReadError, SourceUnavailable
from vmsec.facts import CollectionRecord, DiskAtRest, Guest, Inventory, evolve

if TYPE_CHECKING:
    from vmsec.collectors import CollectContext
    from vmsec.specs import ImageSpec

QCOW2_MAGIC = b"QFI\xfb"
LUKS_MAGIC = b"LUKS\xba\xbe"
VMDK_SPARSE_MAGIC = b"KDMV"
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"
MAX_CHAIN = 16  # backing files per image; real chains are a handful deep
MAX_BACKING_NAME = 1023  # qemu's own limit on the backing file name
QEMU_IMG_TIMEOUT_S = 60
DECRYPT_TIMEOUT_S = 1800
QCOW2_CRYPT = {0: "none", 1: "aes", 2: "luks"}
_INCOMPAT_EXTERNAL_DATA = 1 << 2
_EXT_BACKING_FORMAT = 0xE2792ACA
_EXT_DATA_FILE = 0x44415441
_INCOMPAT_EXTENDED_L2 = 1 << 4
_INCOMPAT_KNOWN = 0x1F  # dirty, corrupt, external data file, compression type, extended L2 (QEMU 7.2)
_EXT_CRYPTO_HEADER = 0x0537BE77
# Extensions read from the header cluster (QEMU reads them all; a real image has a handful). Past this
# bound the image is refused, never judged on the ones read.
MAX_HEADER_EXTENSIONS = 4096
# QEMU's own bounds (block/qcow2.h): an image over them does not open in QEMU either.
QCOW_MAX_L1_BYTES = 32 * 1024 * 1024
# L1 entries over a whole chain: QEMU's bound for one image (32 MiB of table). A 10 TiB image has 10k;
# a chain of sparse exabyte images has millions per layer, each read (and kept) for nothing.
MAX_CHAIN_L1_ENTRIES = QCOW_MAX_L1_BYTES // 8
QCOW_MAX_REFTABLE_BYTES = 8 * 1024 * 1024
QCOW_MAX_SNAPSHOTS = 65536
MAX_KEY_FILE = 64 * 1024
NOT_AUDITED = ("contents not audited: the disk is encrypted and no key was given "
               "(pass --key-file FILE holding its passphrase to unlock it)")

ProgressHook = Callable[[str], None]


class Qcow2Header(Struct, frozen=True):
    version: int
    size: int
    cluster_bits: int
    crypt_method: int
    backing_file: str | None
    backing_format: str | None
    external_data_file: bool
    l1_size: int = 0  # entries of the active L1 table
    l1_table_offset: int = 0


class Layer(Struct, frozen=True):
    """One file of a backing chain, top first."""

    path: str
    format: str  # qcow2 | raw | vmdk
    header: Qcow2Header | None = None


# --- headers --------------------------------------------------------------------------------------


def _pread(fd: int, size: int, offset: int) -> bytes:
    return os.pread(fd, size, offset)


def parse_qcow2_header(fd: int, path: str) -> Qcow2Header:
    """Read and range-check a qcow2 header (and its extensions) from an open image."""
    file_size = os.fstat(fd).st_size
    head = _pread(fd, 104, 0)
    if len(head) < 72 or head[:4] != QCOW2_MAGIC:
        raise ReadError(path, "corrupt qcow2 image: header is truncated or lacks the magic",
                        ErrorKind.INVALID)
    version, backing_off, backing_len, cluster_bits, size, crypt = struct.unpack_from(">IQIIQI", head, 4)
    if version not in (2, 3):
        raise ReadError(path, f"corrupt qcow2 image: unsupported version {version}", ErrorKind.INVALID)
    if not 9 <= cluster_bits <= 21:
        raise ReadError(path, f"corrupt qcow2 image: cluster_bits {cluster_bits} out of range",
                        ErrorKind.INVALID)
    cluster = 1 << cluster_bits
    if crypt not in QCOW2_CRYPT:
        raise ReadError(path, f"corrupt qcow2 image: unknown crypt_method {crypt}", ErrorKind.INVALID)
    l1_size, l1_offset, refcount_offset, refcount_clusters, snapshots = struct.unpack_from(">IQQII", head, 36)
    if l1_size * 8 > QCOW_MAX_L1_BYTES:
        raise ReadError(path,
                        f"corrupt qcow2 image: an L1 table of {l1_size} entries ({l1_size * 8} bytes) is "
                        f"over QEMU's {QCOW_MAX_L1_BYTES}-byte limit", ErrorKind.INVALID)
    if l1_size and (l1_offset % cluster or l1_offset + l1_size * 8 > file_size):
        raise ReadError(path,
                        f"corrupt qcow2 image: the L1 table at offset {l1_offset} is not cluster-aligned "
                        "or runs past the end of the file", ErrorKind.INVALID)
    if refcount_clusters > QCOW_MAX_REFTABLE_BYTES >> cluster_bits or refcount_offset % cluster:
        raise ReadError(path, f"corrupt qcow2 image: refcount table of {refcount_clusters} clusters at "
                        f"offset {refcount_offset} is out of range", ErrorKind.INVALID)
    if snapshots > QCOW_MAX_SNAPSHOTS:
        raise ReadError(path, f"corrupt qcow2 image: {snapshots} snapshots, over QEMU's limit of "
                        f"{QCOW_MAX_SNAPSHOTS}", ErrorKind.INVALID)
    incompatible = 0
    header_len = 72
    if version == 3:
        if len(head) < 104:
            raise ReadError(path, "corrupt qcow2 image: version 3 header is truncated", ErrorKind.INVALID)
        (incompatible,) = struct.unpack_from(">Q", head, 72)
        (header_len,) = struct.unpack_from(">I", head, 100)
        if not 104 <= header_len <= cluster:
            raise ReadError(path, f"corrupt qcow2 image: header length {header_len} out of range",
                            ErrorKind.INVALID)
    l2_entries = cluster // (16 if incompatible & _INCOMPAT_EXTENDED_L2 else 8)
    if -(-size // (cluster * l2_entries)) > l1_size:
        raise ReadError(path, f"corrupt qcow2 image: an L1 table of {l1_size} entries is too small for the "
                        f"virtual size of {size} bytes", ErrorKind.INVALID)
    unknown_bits = incompatible & ~_INCOMPAT_KNOWN
    if unknown_bits:
        raise ReadError(path, f"unsupported qcow2 incompatible feature bits {unknown_bits:#x} (QEMU "
                        "refuses to open the image)", ErrorKind.INVALID)
    backing: str | None = None
    if backing_off:
        if backing_len == 0 or backing_len > MAX_BACKING_NAME:
            raise ReadError(path, f"corrupt qcow2 image: backing file name length {backing_len}",
                            ErrorKind.INVALID)
        if backing_off + backing_len > min(cluster, file_size):
            raise ReadError(path, "corrupt qcow2 image: backing file name lies outside the header cluster",
                            ErrorKind.INVALID)
        raw_name = _pread(fd, backing_len, backing_off)
        if len(raw_name) != backing_len or b"\x00" in raw_name:
            raise ReadError(path, "corrupt qcow2 image: unreadable backing file name", ErrorKind.INVALID)
        backing = raw_name.decode("utf-8", "replace")
    backing_format = None
    external_data = bool(incompatible & _INCOMPAT_EXTERNAL_DATA)
    # Header extensions: between the header and the end of the first cluster (or the backing name).
    end = min(cluster, file_size, backing_off or cluster)
    offset = header_len
    crypto_header = False
    for _ in range(MAX_HEADER_EXTENSIONS):
        if offset + 8 > end:
            break
        ext_type, ext_len = struct.unpack(">II", _pread(fd, 8, offset))
        if ext_type == 0:
            break
        if offset + 8 + ext_len > end:
            raise ReadError(path, "corrupt qcow2 image: header extension runs past the header",
                            ErrorKind.INVALID)
        if ext_type == _EXT_BACKING_FORMAT:
            backing_format = _pread(fd, ext_len, offset + 8).decode("ascii", "replace").strip("\x00")
        elif ext_type == _EXT_DATA_FILE:
            external_data = True
        elif ext_type == _EXT_CRYPTO_HEADER:
            crypto_header = True
        offset += 8 + ((ext_len + 7) & ~7)
    else:
        raise ReadError(path, f"more than {MAX_HEADER_EXTENSIONS} qcow2 header extensions; not read",
                        ErrorKind.TOO_LARGE)
    if crypt == 2 and not crypto_header:
        raise ReadError(path, "qcow2 image says LUKS encryption but has no LUKS header extension "
                        "(QEMU refuses to open it)", ErrorKind.INVALID)
    return Qcow2Header(version=version, size=size, cluster_bits=cluster_bits, crypt_method=crypt,
                       backing_file=backing, backing_format=backing_format,
                       external_data_file=external_data, l1_size=l1_size, l1_table_offset=l1_offset)


# Formats QEMU detects by their first bytes (block/*.c probe functions) that vmsec does not read: a
# backing file without a recorded format is probed by QEMU, and one of these is followed as itself
# (QED, for one, to its own backing file anywhere), never read as raw.
_OTHER_FORMATS = ((b"QED\x00", "qed"), (b"vhdxfile", "vhdx"), (b"conectix", "vpc"), (b"COWD", "vmdk3"),
                  (b"WithoutFreeSpace", "parallels"), (b"WithouFreSpacExt", "parallels"),
                  (b"Bochs Virtual HD Image", "bochs"), (b"#!/bin/sh\n#V2.0 Format\n", "cloop"))
_VDI_SIGNATURE = b"\x7f\x10\xda\xbe"  # at offset 0x40, little-endian 0xbeda107f


def _probe_format(fd: int) -> str:
    """The format QEMU's probe would give the file (the first 2,048 bytes, as bdrv_probe_all)."""
    head = _pread(fd, 2048, 0)
    if head.startswith(QCOW2_MAGIC):
        return "qcow2" if head[4:8] in (b"\x00\x00\x00\x02", b"\x00\x00\x00\x03") else "qcow"
    if head.startswith(VMDK_SPARSE_MAGIC):
        return "vmdk"
    if _vmdk_descriptor(head):
        return "vmdk-descriptor"
    if head[0x40:0x44] == _VDI_SIGNATURE:
        return "vdi"
    for magic, name in _OTHER_FORMATS:
        if head.startswith(magic):
            return name
    return "raw"


def _vmdk_descriptor(head: bytes) -> bool:
    """block/vmdk.c vmdk_probe() on text: comment and blank lines, then "version=1|2|3"."""
    if head.startswith(VMDK_DESCRIPTOR):
        return True
    i = 0
    while i < len(head):
        if head[i:i + 1] == b"#":
            end = head.find(b"\n", i)
            i = len(head) if end < 0 else end + 1
            continue
        if head[i:i + 1] == b" ":
            while i < len(head) and head[i:i + 1] == b" ":
                i += 1
            if head[i:i + 1] == b"\r":
                i += 1
            if head[i:i + 1] != b"\n":
                return False
            i += 1
            continue
        return any(head.startswith(f"version={v}{eol}".encode(), i) for v in "123" for eol in ("\n", "\r\n"))
    return False


_LUKS2_SIZES = frozenset(1 << n for n in range(14, 23))  # 16 KiB … 4 MiB (cryptsetup's hdr_size values)


def luks_header(read: Callable[[int], bytes]) -> bool:
    """Whether the bytes ``read(n)`` returns from the volume's start are a LUKS header cryptsetup would
    open, not just its six-byte magic: LUKS1 with sane cipher, hash and key size; LUKS2 with a
    header size it allows and a SHA-256 checksum that matches."""
    head = read(4096)
    if len(head) < 592 or head[:6] != LUKS_MAGIC:
        return False
    version = int.from_bytes(head[6:8], "big")
    if version == 1:
        names = (head[8:40], head[40:72], head[72:104])  # cipher name, cipher mode, hash spec
        key_bytes, iterations = int.from_bytes(head[108:112], "big"), int.from_bytes(head[164:168], "big")
        return (all(_c_name(n) for n in names) and key_bytes in (16, 24, 32, 48, 64) and iterations > 0)
    if version != 2:
        return False
    import hashlib  # here: it loads OpenSSL, which only LUKS2 volumes need

    size = int.from_bytes(head[8:16], "big")
    if size not in _LUKS2_SIZES or head[72:104].split(b"\0", 1)[0] != b"sha256":
        return False
    area = bytearray(head + read(size - len(head)))
    if len(area) != size:
        return False
    stored = bytes(area[448:448 + 32])
    area[448:512] = bytes(64)
    return hashlib.sha256(area).digest() == stored


def _c_name(field: bytes) -> bool:
    name = field.split(b"\0", 1)[0]
    return bool(name) and name.isascii() and name.decode().isprintable()


# --- opening files and backing chains ---------------------------------------------------------------


def _open_regular(path: str, shown: str) -> int:
    """Open ``path`` read-only; refuse anything but a regular file (never a FIFO or device)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ReadError.from_os(shown, exc) from exc
    if not st.S_ISREG(info.st_mode):
        raise ReadError(shown, "not a regular file; refused")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ReadError.from_os(shown, exc) from exc
    now = os.fstat(fd)
    if not st.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
        os.close(fd)
        raise ReadError(shown, "file changed while it was being opened")
    return fd


def _inside(path: str, directories: Sequence[str]) -> bool:
    return any(os.path.commonpath([path, d]) == d for d in directories)


def resolve_backing(image: str, name: str, allowed_dirs: Sequence[str], named: str | None = None) -> str:
    """The backing file ``name`` recorded in ``image``, resolved as qemu does and checked.

    ``named``: the image's file name as QEMU has it (the path it was given, not the one symlinks lead
    to): a relative ``name`` is joined to its directory. Raises ReadError (naming the image) when the
    backing file leaves the allowed directories or is no regular file.
    """
    if "://" in name or name.startswith(("json:", "nbd:", "rbd:", "iscsi:", "gluster:")):
        raise ReadError(image, f"backing file {name!r} is not a local file; refused")
    candidate = name if name.startswith("/") else os.path.join(os.path.dirname(named or image), name)
    real = os.path.realpath(candidate)
    if not _inside(real, allowed_dirs):
        raise ReadError(image, f"backing file {name!r} resolves to {real}, outside the allowed "
                               f"directories ({', '.join(allowed_dirs)}); refused, not read")
    try:
        info = os.stat(real)
    except OSError as exc:
        raise ReadError.from_os(image, exc, f"backing file {name!r}: {exc.strerror or exc}") from exc
    if not st.S_ISREG(info.st_mode):
        raise ReadError(image, f"backing file {name!r} is not a regular file; refused")
    return real


def backing_chain(path: str, allowed_dirs: Sequence[str] = ()) -> list[Layer]:
    """The image and its backing files, top first, each checked (see :func:`resolve_backing`)."""
    top = os.path.realpath(path)
    allowed = sorted({os.path.dirname(top), os.path.realpath(os.path.dirname(os.path.abspath(path))),
                      *(os.path.realpath(d) for d in allowed_dirs)})
    layers: list[Layer] = []
    seen: set[tuple[int, int]] = set()
    current = top
    named = os.path.abspath(path)  # the name QEMU joins a relative backing name to
    forced_format: str | None = None
    while True:
        if len(layers) >= MAX_CHAIN:
            raise ReadError(path, f"backing chain is longer than {MAX_CHAIN} files")
        fd = _open_regular(current, path if current == top else current)
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) in seen:
                raise ReadError(path, f"backing chain loops back to {current}")
            seen.add((info.st_dev, info.st_ino))
            probed = _probe_format(fd)
            fmt = forced_format or probed
            if forced_format == "vmdk" and probed == "vmdk-descriptor":
                fmt = probed  # a text descriptor names extent files of its own: refused below
            elif forced_format in ("qcow2", "vmdk") and probed != forced_format:
                raise ReadError(current, f"recorded as a {forced_format} backing file, but it is not one "
                                "(QEMU refuses it)", ErrorKind.INVALID)
            header = parse_qcow2_header(fd, current) if fmt == "qcow2" else None
        finally:
            os.close(fd)
        if fmt == "vmdk-descriptor":
            raise ReadError(current, "VMDK descriptor files with separate extents are not supported "
                            "(QEMU would open the extent files it names, anywhere)")
        if fmt not in ("qcow2", "raw", "vmdk"):
            raise ReadError(current, f"{fmt} images are not supported: QEMU reads it as {fmt}, with any "
                            "backing file it names; not followed")
        if header is not None and header.external_data_file:
            # Checked before anything else opens the image: qemu-img (and qemu) would open the data
            # file the header names — any host path — even for an image without a backing file.
            raise ReadError(current, "qcow2 images with an external data file are not supported")
        layers.append(Layer(path=current, format=fmt, header=header))
        if sum(layer.header.l1_size for layer in layers if layer.header) > MAX_CHAIN_L1_ENTRIES:
            raise ReadError(path, f"the backing chain's L1 tables hold more than {MAX_CHAIN_L1_ENTRIES} "
                            "entries (what QEMU allows one image): larger than vmsec reads",
                            ErrorKind.TOO_LARGE)
        if header is None or header.backing_file is None:
            return layers
        forced_format = header.backing_format or None
        backing = header.backing_file
        next_named = backing if backing.startswith("/") else os.path.join(os.path.dirname(named), backing)
        current = resolve_backing(current, backing, allowed, named)
        named = next_named


def _file_object(path: str) -> BinaryIO:
    fd = _open_regular(path, path)
    fh = os.fdopen(fd, "rb", buffering=0)
    # No name: dissect resolves files named inside an image (VMDK parents) relative to a handle's
    # name. Without one it cannot open anything this module has not checked.
    fh.name = None
    return fh


def _open_vmdk(fh: BinaryIO, path: str) -> Any:
    from dissect.hypervisor.disk.vmdk import VMDK, SparseDisk

    try:
        sparse = SparseDisk(fh)
    except Exception as exc:
        raise ReadError(path, f"corrupt VMDK image: {type(exc).__name__}: {exc}", ErrorKind.INVALID) from exc
    descriptor = getattr(sparse, "descriptor", None)
    parent = descriptor.attr.get("parentCID", "ffffffff") if descriptor is not None else "ffffffff"
    if parent != "ffffffff":
        raise ReadError(path, "VMDK images with a parent (delta disks) are not supported")
    fh.seek(0)
    return VMDK(fh)


def _open_stream(layers: Sequence[Layer]) -> Any:
    """A read-only stream of the guest disk, built bottom-up from already checked layers."""
    from dissect.hypervisor.disk.qcow2 import QCow2

    lower: Any = None
    for layer in reversed(layers):
        fh = _file_object(layer.path)
        if layer.format == "raw":
            lower = fh
        elif layer.format == "vmdk":
            lower = _open_vmdk(fh, layer.path)
        else:
            image = QCow2(fh, allow_no_backing_file=True)
            if lower is not None:
                # Set here rather than passed in, so dissect never sniffs or opens a backing file.
                image.backing_file = lower
            lower = image.open()
    return lower


# --- qemu-img ------------------------------------------------------------------------------------


def qemu_img_info(path: str) -> dict[str, Any] | None:
    """``qemu-img info`` of the top image only (never its backing chain), or None when unavailable.

    ``-U`` (force share) lets it read the image of a running VM without taking its lock.
    """
    exe = shutil.which("qemu-img")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "info", "-U", "--output=json", path], capture_output=True,
                              timeout=QEMU_IMG_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        data = json.loads(done.stdout[:1_000_000])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _chain_spec(layers: Sequence[Layer]) -> str:
    """The whole backing chain as QEMU must open it, spelled out (``json:``): every file vmsec checked,
    with the format it found, and no backing below the last. QEMU then probes nothing and follows no
    name of its own — not a VMDK extent, not an nbd:// server, not a host file. No file locks either:
    the image of a running VM stays usable while it is read (as ``qemu-img info -U``)."""
    node: dict[str, Any] | None = None
    for layer in reversed(layers):
        spec: dict[str, Any] = {"driver": layer.format,
                                "file": {"driver": "file", "filename": layer.path, "locking": "off"}}
        if layer.format in ("qcow2", "vmdk"):
            spec["backing"] = node
        if layer.header is not None and layer.header.crypt_method == 2:
            spec["encrypt"] = {"format": "luks", "key-secret": "vmseckey"}
        node = spec
    return "json:" + json.dumps(node)


def _decrypt_to_temp(source: str, key_file: str, shown: str) -> BinaryIO:
    """``qemu-img convert`` the decrypted image into a private temp file; return it open, unlinked.
    ``source``: the chain as :func:`_chain_spec` spells it."""
    exe = shutil.which("qemu-img")
    if exe is None:
        raise ReadError(shown, "qemu-img is needed to decrypt the image and is not installed")
    key = os.path.realpath(key_file)
    if not os.path.isfile(key):
        raise ReadError(key_file, "key file is not a regular file")
    workdir = tempfile.mkdtemp(prefix="vmsec-decrypt-")  # mode 0700
    out = os.path.join(workdir, "disk.raw")
    try:
        done = subprocess.run(
            [exe, "convert", "-U", "--object", f"secret,id=vmseckey,file={_opt_path(key)},format=raw",
             source, "-O", "raw", out],
            capture_output=True, timeout=DECRYPT_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise ReadError(shown, "could not decrypt with the given key: "
                                   + (message[-1] if message else f"qemu-img exit {done.returncode}")
                                   + _key_hint(key_file))
        os.chmod(out, 0o600)
        return _file_object(out)
    except subprocess.TimeoutExpired as exc:
        raise ReadError(shown, "decryption took too long") from exc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # the open file lives on until it is closed


def _opt_path(path: str) -> str:
    return path.replace(",", ",,")  # qemu option syntax escapes commas by doubling


# --- one image --------------------------------------------------------------------------------------


def _luks_volumes(target: Any) -> tuple[list[int], bool]:
    """Offsets of the LUKS volumes among the volumes dissect found, and whether one was unlocked."""
    offsets: list[int] = []
    unlocked = False
    for volume in list(target.volumes)[:256]:
        if getattr(getattr(volume, "vs", None), "__type__", None) == "luks":
            unlocked = True  # the decrypted view dissect added for an unlocked LUKS volume
            continue
        try:
            volume.seek(0)
            if luks_header(volume.read):
                offsets.append(int(getattr(volume, "offset", 0) or 0))
        except Exception:  # an unreadable partition is simply not a LUKS volume we can see
            continue
    return offsets, unlocked


def _has_os(reader: Reader) -> bool:
    return any(reader.exists(p) for p in ("/etc/os-release", "/usr/lib/os-release", "/etc/passwd"))


def _read_passphrase(key_file: str) -> str:
    """The key file's content exactly (as ``cryptsetup --key-file``: a trailing newline is part of it)."""
    try:
        fd = _open_regular(key_file, key_file)
    except ReadError as exc:
        raise ReadError(key_file, f"key file: {exc.reason}") from exc
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_KEY_FILE + 1)
    if len(data) > MAX_KEY_FILE:
        raise ReadError(key_file, f"key file is over {MAX_KEY_FILE} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadError(key_file, "key file is not UTF-8 text") from exc


class _WithoutFakeMagic:
    """The disk as the kernel and QEMU see it, except that six bytes of LUKS magic heading no LUKS
    header cryptsetup would open read as zeros: dissect takes the magic alone for a LUKS volume and
    reads nothing behind it, so a guest could hide its file system behind six bytes."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        start = self._stream.tell()
        data: bytes = self._stream.read(size)
        if start < len(LUKS_MAGIC) and data:
            cut = min(len(LUKS_MAGIC) - start, len(data))
            data = bytes(cut) + data[cut:]
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._stream.seek(offset, whence))

    def tell(self) -> int:
        return int(self._stream.tell())

    def __getattr__(self, name: str) -> Any:
        if name in ("readinto", "read1", "readinto1"):  # only read() masks: refuse the others
            raise AttributeError(name)
        return getattr(self._stream, name)


def _target_from_stream(stream: Any, shown: str, passphrase: str | None) -> Any:
    """dissect's view of the disk; LUKS volumes are unlocked with ``passphrase`` when given."""
    import logging

    from dissect.target import Target
    from dissect.target.containers.raw import RawContainer
    from dissect.target.helpers import keychain

    # dissect logs every unrecognised partition and failed unlock; what matters becomes a record.
    logging.getLogger("dissect").setLevel(logging.CRITICAL)
    key = None
    if passphrase is not None:
        # dissect's keychain is process-global: the key is there only while this disk is opened.
        key = keychain.Key(keychain.KeyType.PASSPHRASE, passphrase, "luks", None, False)
        keychain.KEYCHAIN.append(key)
    try:
        try:
            # Linux first: naming the OS plugin skips dissect's discovery of every OS plugin (about
            # 1.5 s of imports); a disk it does not fit gets the generic detection below.
            from dissect.target.plugins.os.unix.linux._os import LinuxPlugin

            stream.seek(0)
            target = Target(shown)
            target.disks.add(RawContainer(stream))
            target._os_plugin = LinuxPlugin
            target.apply()
            if not _has_os(DissectReader(target.fs, shown)):
                raise LookupError("no Linux root at /")
        except Exception:
            stream.seek(0)
            target = Target(shown)
            target.disks.add(RawContainer(stream))
            target.apply()
    except Exception as exc:
        raise ReadError(shown, f"cannot read the disk: {type(exc).__name__}: {exc}") from exc
    finally:
        if key is not None:
            with contextlib.suppress(ValueError):
                keychain.KEYCHAIN.remove(key)
    return target


def _not_audited(path: str, records: list[CollectionRecord], reason: str = NOT_AUDITED) -> None:
    """The guest's contents could not be audited: a failed record (the scan is incomplete, never
    clean), said once instead of a hundred UNKNOWN results."""
    records.append(CollectionRecord(source=path, what="guest contents", ok=False, reason=reason,
                                    kind=ErrorKind.DENIED))


def _key_hint(key_file: str) -> str:
    """What to say when a key did not work: a trailing newline in the key file is part of the key."""
    try:
        with open(key_file, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return " (the key file is empty)"
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return (" (the key file ends with a newline, which is part of the passphrase, as with "
                        "cryptsetup --key-file: write it without one, e.g. printf '%s' PASSPHRASE > FILE)")
    except OSError:
        pass
    return ""


def open_guest_image(path: str, key_file: str | None = None, *, allowed_dirs: Sequence[str] = (),
                     ) -> tuple[Reader | None, DiskAtRest, list[CollectionRecord]]:
    """Open one disk image read-only: a reader over its guest root (None when the contents cannot
    be read, e.g. encrypted without a key), how the disk is protected at rest, and records.

    Raises :class:`ReadError` naming the image when it is missing, corrupt, refers to files it may
    not (backing files outside ``allowed_dirs`` and the image's own directory), or cannot be
    decrypted with the given key.
    """
    records: list[CollectionRecord] = []
    layers = backing_chain(path, allowed_dirs)
    top = layers[0]
    crypt = top.header.crypt_method if top.header else 0
    info = qemu_img_info(top.path) if top.format == "qcow2" else None
    detail = ""
    if info is not None and info.get("encrypted"):
        encrypt = (info.get("format-specific") or {}).get("data", {}).get("encrypt") or {}
        fmt = encrypt.get("format") if isinstance(encrypt, dict) else None
        detail = f"qemu-img: encrypted ({fmt or 'unknown format'})"
        if crypt == 0:
            crypt = 2 if fmt == "luks" else 1
    passphrase = _read_passphrase(key_file) if key_file is not None else None
    plain = [layer.path for layer in layers[1:] if not (layer.header and layer.header.crypt_method)]
    if crypt:
        scheme = f"qcow2-{QCOW2_CRYPT[crypt]}"
        detail = detail or f"qcow2 header crypt_method {crypt} ({QCOW2_CRYPT[crypt]})"
        if plain:  # the clusters the top never wrote are read from there, in the clear
            scheme = "none"
            detail = (f"the top image is encrypted ({detail}), but its backing file "
                      f"{os.path.basename(plain[0])} is not: the data it holds is readable by whoever "
                      "copies it")
        if key_file is None or crypt != 2:
            if key_file is not None:
                records.append(CollectionRecord(source=path, what="disk decryption", ok=False,
                                                reason="legacy qcow2 AES encryption cannot be decrypted"))
            _not_audited(path, records)
            return None, DiskAtRest(scheme=scheme, detail=detail), records
        stream: Any = _decrypt_to_temp(_chain_spec(layers), key_file, path)
        disk = DiskAtRest(scheme=scheme, unlocked=True, detail=detail)
    else:
        try:
            stream = _open_stream(layers)
            stream.seek(0)
            is_luks = luks_header(stream.read)
        except ReadError:
            raise
        except Exception as exc:  # dissect on a corrupt or truncated container
            raise ReadError(path, f"corrupt or truncated {top.format} image: "
                                  f"{type(exc).__name__}: {exc}") from exc
        if not is_luks:
            stream.seek(0)
            if stream.read(6) == LUKS_MAGIC:  # the magic without a header cryptsetup would open
                stream = _WithoutFakeMagic(stream)
        if is_luks:
            disk = DiskAtRest(scheme="luks", detail="LUKS header at the start of the disk")
            if passphrase is None:
                _not_audited(path, records)
                return None, disk, records
        else:
            disk = DiskAtRest(scheme="none", detail=f"{top.format} image, no encryption found")
    stream.seek(0)
    target = _target_from_stream(stream, path, passphrase)
    reader = DissectReader(target.fs, path)
    luks, unlocked = _luks_volumes(target)
    if disk.scheme == "luks":
        if not unlocked:
            raise ReadError(path, "could not unlock the LUKS volume with the given key"
                                  + _key_hint(key_file or ""))
        disk = evolve(disk, unlocked=True)
    elif luks and passphrase is None and _has_os(reader):
        # The root file system was read without a key: it is not on the LUKS volume(s).
        where = ", ".join(f"offset {o}" for o in luks)
        disk = DiskAtRest(scheme="none", detail=f"the root file system is not encrypted (LUKS volume(s) "
                          f"elsewhere on the disk, at {where})")
    elif luks:
        where = ", ".join(f"offset {o}" for o in luks)
        disk = DiskAtRest(scheme="luks-in-guest", unlocked=unlocked,
                          detail=f"LUKS volume(s) inside the guest disk at {where}")
        if passphrase is None:
            _not_audited(path, records)
        elif not unlocked:
            records.append(CollectionRecord(source=path, what="disk decryption", ok=False,
                                            reason="could not unlock the LUKS volume(s) inside the "
                                                   "guest with the given key" + _key_hint(key_file or "")))
    if not _has_os(reader):
        if disk.scheme == "luks-in-guest" and not unlocked:
            return None, disk, records
        kinds = ", ".join(type(f).__name__ for f in target.filesystems) or "none"
        raise ReadError(path, f"no Linux root filesystem found on the disk (filesystems: {kinds})")
    return reader, disk, records


# --- the collector ---------------------------------------------------------------------------------


def guest_from_image(path: str, *, name: str, key_file: str | None = None, domain: str | None = None,
                     allowed_dirs: Sequence[str] = (), packages_only: bool = False
                     ) -> tuple[Guest, list[CollectionRecord]]:
    """One :class:`Guest` from one image; raises ReadError when the image cannot be used at all."""
    from vmsec.collectors.guest import collect_guest

    reader, disk, records = open_guest_image(path, key_file, allowed_dirs=allowed_dirs)
    if reader is None:
        return Guest(name=name, origin=path, domain=domain, disk=disk), records
    guest, guest_records = collect_guest(reader, name=name, origin=path, domain=domain,
                                         packages_only=packages_only)
    # Guest paths alone would not say which image they came from.
    named = [evolve(r, source=f"{path}:{r.source}") if r.source.startswith("/") else r
             for r in guest_records]
    return evolve(guest, disk=disk), records + named


def collect_images(paths: Sequence[str], *, key_file: str | None = None,
                   progress: ProgressHook | None = None, packages_only: bool = False) -> Inventory:
    """One :class:`Guest` per disk image in ``paths`` (qcow2, raw, VMDK), read offline.

    An image that cannot be used (missing, corrupt, refused backing file) becomes a failed record
    naming it and the scan goes on; when no image is usable the source is unavailable.
    """
    tell = progress or (lambda _msg: None)
    guests: list[Guest] = []
    records: list[CollectionRecord] = []
    for path in paths:
        started = time.monotonic()
        tell(f"disk image {path}")
        name = os.path.basename(path.rstrip("/")) or path
        try:
            guest, guest_records = guest_from_image(path, name=name, key_file=key_file,
                                                    packages_only=packages_only)
        except ReadError as exc:
            records.append(CollectionRecord(source=path, what="disk image", ok=False,
                                            reason=str(exc) if exc.source != path else exc.reason,
                                            duration_s=round(time.monotonic() - started, 6)))
            continue
        except Exception as exc:  # a dissect failure on hostile bytes must not end the scan
            records.append(CollectionRecord(source=path, what="disk image", ok=False,
                                            reason=f"unreadable image: {type(exc).__name__}: {exc}",
                                            duration_s=round(time.monotonic() - started, 6)))
            continue
        guests.append(guest)
        records.extend(guest_records)
        records.append(CollectionRecord(source=path, what="disk image", ok=True,
                                        reason=f"disk at rest: {guest.disk.scheme if guest.disk else '?'}",
                                        duration_s=round(time.monotonic() - started, 6)))
    if not guests:
        reasons = "; ".join(f"{r.source}: {r.reason}" for r in records) or "no images given"
        raise SourceUnavailable(f"no usable disk image ({reasons})")
    return Inventory(guests=tuple(guests), records=tuple(records),
                     source="image " + " ".join(paths))


def collect(spec: ImageSpec, context: CollectContext) -> Inventory:
    """The collector interface (``vmsec.collectors``): disk images, offline."""
    return collect_images(list(spec.paths), key_file=spec.key_file, progress=context.step,
                          packages_only=context.packages_only)


__all__ = ["backing_chain", "collect_images", "guest_from_image", "open_guest_image",
           "parse_qcow2_header", "qemu_img_info", "resolve_backing"]
