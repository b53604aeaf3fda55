#!/bin/sh
# Build the real guest disk images the image-collector tests read, cached between runs.
#
#   tests/images/build_images.sh            prints the directory that holds the images
#   tests/images/build_images.sh --rootfs   prints the Debian 12 root tarball (built if need be) and
#                                           stops there (benchmarks/compare_peers.py unpacks it)
#
# Cache, under ${VMSEC_TEST_CACHE:-/var/cache/vmsec-tests}: the recipe is the cache key, so a change
# to how anything is made builds it afresh, and no version number needs bumping by hand.
#   debian12-rootfs-<hash>.tar  the debootstrap'd root (about 40 s and the network), keyed by a hash of
#                               its recipe: DEBOOTSTRAP_ARGS and GUEST_HOSTNAME below
#   images-<hash>/              the images (about 5 s), keyed by a hash of this script,
#                               build_lvm_image.sh and qemu_img_luks.sh
# Old entries are not deleted here (another checkout may still use them).
#
# Needs (Debian packages): debootstrap e2fsprogs fdisk qemu-utils xfsprogs cryptsetup-bin coreutils tar
# util-linux; network access to deb.debian.org for the first build. Runs as root (debootstrap); no
# mounts, no loop devices, no device-mapper.
#
# Encrypted images are deterministic where the tools allow it: raw LUKS volumes are formatted by
# cryptsetup with a fixed PBKDF2 iteration count (no CPU benchmark) and filled through qemu-img's luks
# driver, which only derives the key (no benchmark either). Only disk-luks.qcow2, qcow2's built-in
# LUKS, needs qemu-img to write the header, and qemu-img always benchmarks: qemu_img_luks.sh retries
# its known false failure ("Unable to get accurate CPU usage") and says so.
#
# Images (all 512 MiB virtual unless said):
#   fs.ext4              bare ext4 filesystem of Debian 12 (minbase + openssh-server + sudo)
#   disk.raw             GPT disk, that ext4 at 1 MiB
#   disk.qcow2           disk.raw as qcow2
#   disk-luks.qcow2      qcow2 with built-in LUKS encryption (passphrase vmsec-test)
#   fs.luks              raw LUKS volume holding fs.ext4 (guest-side encryption, whole device)
#   disk-lukspart.raw    GPT disk whose partition is a LUKS volume (encryption inside the guest)
#   fs.xfs               small xfs filesystem with a handful of /etc files (mkfs.xfs -p protofile)
#   hostile-fs.ext4      64 MiB ext4: a 10 GiB sparse /etc/passwd, /etc/shadow -> /../../../etc/shadow,
#                        a symlink loop, a FIFO
#   hostile-*.qcow2      corrupt header, backing file /etc/shadow, backing loop, truncated image
#   disk-lvm.qcow2       GPT disk, LVM PV, LV "root" holding fs.ext4: built afterwards by
#                        build_lvm_image.sh (needs lvm2 and a loop device; see there)
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
DEBOOTSTRAP_ARGS="--variant=minbase --include=openssh-server,sudo bookworm"
GUEST_HOSTNAME="vmsec-test-guest"
ROOTFS_KEY="$(printf '%s\n' "$DEBOOTSTRAP_ARGS" "$GUEST_HOSTNAME" | sha256sum | cut -c1-16)"
IMAGES_KEY="$(cat "$HERE/build_images.sh" "$HERE/build_lvm_image.sh" "$HERE/qemu_img_luks.sh" \
              | sha256sum | cut -c1-16)"
MIRROR="${VMSEC_TEST_MIRROR:-http://deb.debian.org/debian}"
PASSPHRASE="vmsec-test"
CACHE="${VMSEC_TEST_CACHE:-/var/cache/vmsec-tests}"
TARBALL="$CACHE/debian12-rootfs-$ROOTFS_KEY.tar"
OUT="$CACHE/images-$IMAGES_KEY"

case "${1:-}" in
    "") ;;
    --rootfs) [ -f "$TARBALL" ] && { echo "$TARBALL"; exit 0; } ;;
    *) echo "usage: build_images.sh [--rootfs]" >&2; exit 2 ;;
esac

if [ -z "${1:-}" ] && [ -f "$OUT/.complete" ]; then
    echo "$OUT"
    exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ -z "${1:-}" ] && [ -f "$OUT/.complete" ]; then
    echo "$OUT"
    exit 0
fi

WORK="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT INT TERM

log() { echo "build_images: $*" >&2; }
fail() { echo "build_images: $*" >&2; exit 1; }

for tool in debootstrap mke2fs sfdisk qemu-img mkfs.xfs cryptsetup; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (Debian packages: debootstrap" \
        "e2fsprogs fdisk qemu-utils xfsprogs cryptsetup-bin)"
done

# --- the Debian 12 root, cached as a tarball -----------------------------------------------------
if [ ! -f "$TARBALL" ]; then
    log "debootstrap bookworm from $MIRROR (about 40 s)"
    # shellcheck disable=SC2086  # DEBOOTSTRAP_ARGS is a list of words
    if ! debootstrap $DEBOOTSTRAP_ARGS "$WORK/root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
        tail -n 20 "$WORK/debootstrap.log" >&2
        fail "debootstrap failed (is $MIRROR reachable?); see the log above"
    fi
    rm -f "$WORK"/root/var/cache/apt/archives/*.deb
    echo "$GUEST_HOSTNAME" >"$WORK/root/etc/hostname"
    tar --numeric-owner --xattrs -C "$WORK/root" -cpf "$WORK/rootfs.tar" .
    mv "$WORK/rootfs.tar" "$TARBALL"
    rm -rf "$WORK/root"
fi
if [ "${1:-}" = --rootfs ]; then
    echo "$TARBALL"
    exit 0
fi

mkdir -p "$WORK/root" "$WORK/out"
tar --numeric-owner --xattrs -C "$WORK/root" -xpf "$TARBALL"
cd "$WORK/out"

# --- Debian 12: ext4, GPT, qcow2, LUKS ----------------------------------------------------------
log "ext4, GPT raw, qcow2, LUKS images"
mke2fs -q -t ext4 -L vmsec-root -d "$WORK/root" fs.ext4 512M

gpt_disk() {  # gpt_disk FILESYSTEM_IMAGE DISK: one Linux partition at 1 MiB holding the image
    fs_bytes=$(stat -c %s "$1")
    fs_mib=$(( (fs_bytes + 1048575) / 1048576 ))
    truncate -s $(( (fs_mib + 2) * 1048576 )) "$2"
    printf 'label: gpt\nstart=2048, size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' \
        $(( fs_mib * 2048 )) | sfdisk -q "$2"
    dd if="$1" of="$2" bs=1M seek=1 conv=notrunc,sparse status=none
}

gpt_disk fs.ext4 disk.raw
qemu-img convert -f raw -O qcow2 disk.raw disk.qcow2
# qcow2 with built-in LUKS: only qemu-img writes it, and it benchmarks PBKDF2 (see qemu_img_luks.sh).
sh "$HERE/qemu_img_luks.sh" convert --object "secret,id=s,data=$PASSPHRASE" -f raw -O qcow2 \
    -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 disk.raw disk-luks.qcow2
# Raw LUKS1 volume (the format QEMU's luks driver reads): cryptsetup writes the header with a fixed
# PBKDF2 count and the payload at 2 MiB, then qemu-img encrypts fs.ext4 into it through that driver.
truncate -s $(( $(stat -c %s fs.ext4) + 2097152 )) fs.luks
printf '%s' "$PASSPHRASE" | cryptsetup luksFormat --batch-mode --type luks1 --cipher aes-xts-plain64 \
    --key-size 512 --hash sha256 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --offset 4096 \
    --use-urandom --key-file - fs.luks
qemu-img convert -n --object "secret,id=s,data=$PASSPHRASE" -f raw fs.ext4 \
    --target-image-opts "driver=luks,key-secret=s,file.filename=fs.luks"
gpt_disk fs.luks disk-lukspart.raw

# --- a small xfs filesystem (mkfs.xfs -p protofile) ------------------------------------------------
log "xfs image"
cat >xfs.proto <<EOF
/dev/null
0 0
d--755 0 0
etc d--755 0 0
os-release ---644 0 0 $WORK/root/usr/lib/os-release
passwd ---644 0 0 $WORK/root/etc/passwd
group ---644 0 0 $WORK/root/etc/group
shadow ---640 0 42 $WORK/root/etc/shadow
hostname ---644 0 0 $WORK/root/etc/hostname
\$
\$
EOF
truncate -s 300M fs.xfs
mkfs.xfs -q -p xfs.proto fs.xfs
rm xfs.proto

# --- hostile: a guest filesystem that tries to make the reader leave the guest or read forever -----
log "hostile images"
H="$WORK/hostile"
mkdir -p "$H/etc" "$H/usr/lib"
cp "$WORK/root/usr/lib/os-release" "$H/usr/lib/os-release"
ln -s ../usr/lib/os-release "$H/etc/os-release"
truncate -s 10G "$H/etc/passwd"                          # 10 GiB, sparse
ln -s /../../../etc/shadow "$H/etc/shadow"               # points "above" the guest root
ln -s loop-b "$H/etc/loop-a"
ln -s loop-a "$H/etc/loop-b"
mkfifo "$H/etc/group"
echo "guest-hostname" >"$H/etc/hostname"
mke2fs -q -t ext4 -d "$H" hostile-fs.ext4 64M

head -c 1048576 disk.qcow2 >hostile-corrupt.qcow2
printf 'QFI\373\000\000\000\003\377\377\377\377\377\377\377\377' \
    | dd of=hostile-corrupt.qcow2 bs=1 conv=notrunc status=none   # backing offset far past the end
qemu-img create -q -f qcow2 -u -b /etc/shadow -F raw hostile-backing-shadow.qcow2 64M
qemu-img create -q -f qcow2 -u -b hostile-loop-b.qcow2 -F qcow2 hostile-loop-a.qcow2 64M
qemu-img create -q -f qcow2 -u -b hostile-loop-a.qcow2 -F qcow2 hostile-loop-b.qcow2 64M
head -c 200000 disk.qcow2 >hostile-truncated.qcow2

echo "images-$IMAGES_KEY" >.complete
rm -rf "$OUT"
mv "$WORK/out" "$OUT"
echo "$OUT"
