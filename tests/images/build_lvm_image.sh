#!/bin/sh
# Build disk-lvm.qcow2 next to the other cached guest images: a GPT disk whose one partition (type
# Linux LVM) is an LVM physical volume holding a volume group with one logical volume, "root", that
# holds the Debian 12 ext4 root filesystem (fs.ext4).
#
#   tests/images/build_lvm_image.sh IMAGES_DIR     IMAGES_DIR: the directory build_images.sh printed
#
# The layout is written by the real LVM tools (pvcreate, vgcreate, lvcreate on a loop device), so it
# needs root and /dev/loop-control; Debian packages lvm2, util-linux, fdisk, qemu-utils. Any failure
# is an error with a message (the test fixture turns it into a test failure, never a skip).
#
# No device-mapper: many VMs and containers have none (this kernel has no dm driver), so the LV is
# created inactive (global/activation = 0, lvcreate -an -Z n) and fs.ext4 is written straight into
# the partition at the LV's place, read back from LVM's own report (pe_start + first PE * extent
# size of its single linear segment). The partition is attached as its own loop device (losetup
# --offset/--sizelimit) rather than with --partscan, which needs udev or a devtmpfs to create the
# partition's device node.
#
# The host's LVM is left alone: every LVM command runs with a private LVM_SYSTEM_DIR whose lvm.conf
# accepts only loop devices, keeps no hints, metadata backups or archives, takes its locks in the
# work directory and never waits for udev. The trap always deactivates the VG and detaches the loop
# device, also on failure.
#
# Cached: built once per images directory (about 1 s); delete disk-lvm.qcow2 to rebuild.
set -eu

OUT="${1:?usage: build_lvm_image.sh IMAGES_DIR}"
NAME="disk-lvm.qcow2"
VG="vmsectest$$"
[ -f "$OUT/fs.ext4" ] || { echo "build_lvm_image: $OUT/fs.ext4 is missing (run build_images.sh)" >&2; exit 1; }
[ -f "$OUT/$NAME" ] && exit 0

exec 8>"$OUT/.lvm.lock"
flock 8
[ -f "$OUT/$NAME" ] && exit 0

fail() { echo "build_lvm_image: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (losetup)"
for tool in pvcreate vgcreate lvcreate vgchange losetup sfdisk qemu-img; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (Debian packages: lvm2 util-linux fdisk qemu-utils)"
done
[ -e /dev/loop-control ] || fail "no /dev/loop-control: this machine cannot attach loop devices"

WORK="$(mktemp -d "$OUT/lvm-build.XXXXXX")"
LOOP=""
cleanup() {
    status=$?
    if [ -n "$LOOP" ]; then
        vgchange -an "$VG" >/dev/null 2>&1 || dmsetup remove "$VG-root" >/dev/null 2>&1 || true
        losetup -d "$LOOP" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export LVM_SYSTEM_DIR="$WORK/lvm"
mkdir -p "$LVM_SYSTEM_DIR"
cat >"$LVM_SYSTEM_DIR/lvm.conf" <<EOF
devices {
    filter = [ "a|^/dev/loop[0-9]+\$|", "r|.*|" ]
    global_filter = [ "a|^/dev/loop[0-9]+\$|", "r|.*|" ]
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    scan_lvs = 0
    use_devicesfile = 0
    hints = "none"
}
activation {
    udev_sync = 0
    udev_rules = 0
    verify_udev_operations = 1
    monitoring = 0
}
global {
    activation = 0                  # no device-mapper here, and none needed (see below)
    locking_dir = "$WORK/lock"
    event_activation = 0
}
backup {
    backup = 0
    archive = 0
}
EOF
export LVM_SUPPRESS_FD_WARNINGS=1
export DM_DISABLE_UDEV=1

fs_bytes=$(stat -L -c %s "$OUT/fs.ext4")
fs_mib=$(( (fs_bytes + 1048575) / 1048576 ))
part_mib=$(( fs_mib + 8 ))          # room for the PV label and LVM metadata (1 MiB data alignment)
raw="$WORK/disk-lvm.raw"
truncate -s $(( (part_mib + 2) * 1048576 )) "$raw"
printf 'label: gpt\nstart=2048, size=%d, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=lvm\n' \
    $(( part_mib * 2048 )) | sfdisk -q "$raw"

LOOP="$(losetup --find --show --offset 1048576 --sizelimit $(( part_mib * 1048576 )) "$raw")" \
    || fail "losetup could not attach $raw"
lvm_run() {  # quiet unless it fails (LVM warns that activation is off and nothing is backed up)
    "$@" >"$WORK/lvm.log" 2>&1 || { cat "$WORK/lvm.log" >&2; fail "$1 failed"; }
}
lvm_run pvcreate -y "$LOOP"
lvm_run vgcreate "$VG" "$LOOP"
lvm_run lvcreate -y -an -Z n -W n -n root -l 100%FREE "$VG"
# Where LVM put the logical volume: one linear segment on our PV, at pe_start + first PE * extent.
report() { "$@" --noheadings --nosuffix --units b --separator : 2>/dev/null | tr -d ' '; }
pe_start=$(report pvs -o pe_start "$LOOP")
extent=$(report vgs -o vg_extent_size "$VG")
segments=$(report lvs -o seg_pe_ranges,segtype,lv_size "$VG/root")
[ "$(printf '%s\n' "$segments" | wc -l)" = 1 ] \
    || fail "logical volume $VG/root has more than one segment: $segments"
range=${segments%%:linear:*}          # /dev/loopN:FIRST-LAST
lv_bytes=${segments##*:linear:}
first=${range##*:}; first=${first%-*}
[ "$range" != "$segments" ] && [ -n "$pe_start" ] && [ -n "$extent" ] \
    || fail "unexpected LVM report: pe_start=$pe_start extent=$extent segments=$segments"
[ "$lv_bytes" -ge "$fs_bytes" ] || fail "logical volume ($lv_bytes bytes) is smaller than fs.ext4 ($fs_bytes)"
losetup -d "$LOOP"
LOOP=""
# No device-mapper needed to fill it: the LV's bytes are a plain range of the partition.
dd if="$OUT/fs.ext4" of="$raw" bs=1M seek=$(( 1048576 + pe_start + first * extent )) \
    oflag=seek_bytes conv=notrunc,sparse status=none

qemu-img convert -f raw -O qcow2 "$raw" "$WORK/$NAME"
mv "$WORK/$NAME" "$OUT/$NAME"
