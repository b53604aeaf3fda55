#!/bin/sh
# Build the Debian 12 guest the guest-agent tests boot under TCG through qemu:///embed, cached.
#
#   tests/realvm/build_agent_guest.sh      prints the directory holding vmlinuz, initrd.img, root.qcow2
#
# Cache, under ${VMSEC_TEST_CACHE:-/var/cache/vmsec-tests}: agent-guest-<hash>/, keyed by a hash of this
# script (the recipe: packages, init script, image layout), so a change to it builds afresh.
#
# The guest: debootstrap bookworm minbase with qemu-guest-agent, openssh-server, sudo and Debian's cloud
# kernel (whose initramfs-tools image mounts /dev/vda as root). It boots with init=/usr/local/sbin/vmsec-init:
# no systemd, no udev — the script mounts /proc, /sys, /dev and /run, makes the /dev/virtio-ports links
# udev would make, and starts qemu-ga on the agent channel, blocking the RPCs named by the kernel
# argument vmsec.qga_block=a,b (qemu-ga 7.2's --block-rpcs: the agent allow-list variants of the tests).
# It then prints VMSEC-READY on the serial console. The root filesystem also carries a few planted
# facts the tests check: an authorized key for root, and a sysctl.d file whose value the init script
# overrides at runtime (what runs differs from what is configured).
#
# Needs (Debian packages): debootstrap e2fsprogs qemu-utils; network access to deb.debian.org for the
# first build (about 2 minutes); root.
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
MIRROR="${VMSEC_TEST_MIRROR:-http://deb.debian.org/debian}"
CACHE="${VMSEC_TEST_CACHE:-/var/cache/vmsec-tests}"
KEY="$(sha256sum <"$HERE/build_agent_guest.sh" | cut -c1-16)"
OUT="$CACHE/agent-guest-$KEY"

if [ -f "$OUT/.complete" ]; then
    echo "$OUT"
    exit 0
fi
mkdir -p "$CACHE"
exec 9>"$CACHE/.agent-guest.lock"
flock 9
if [ -f "$OUT/.complete" ]; then
    echo "$OUT"
    exit 0
fi
log() { echo "build_agent_guest: $*" >&2; }
fail() { echo "build_agent_guest: $*" >&2; exit 1; }
for tool in debootstrap mke2fs qemu-img; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (Debian packages: debootstrap e2fsprogs qemu-utils)"
done

WORK="$(mktemp -d "$CACHE/agent-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT INT TERM
ROOT="$WORK/root"

log "debootstrap bookworm with qemu-guest-agent and a kernel (about 2 minutes)"
if ! debootstrap --variant=minbase --include=qemu-guest-agent,openssh-server,sudo,kmod,linux-image-cloud-amd64 \
        bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
    tail -n 30 "$WORK/debootstrap.log" >&2
    fail "debootstrap failed (is $MIRROR reachable?)"
fi
rm -f "$ROOT"/var/cache/apt/archives/*.deb
echo vmsec-agent-guest >"$ROOT/etc/hostname"

cat >"$ROOT/usr/local/sbin/vmsec-init" <<'EOF'
#!/bin/sh
# PID 1 of the vmsec test guest (see tests/realvm/build_agent_guest.sh).
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777,nodev,nosuid tmpfs /tmp
modprobe virtio_console 2>/dev/null
mkdir -p /dev/virtio-ports
for d in /sys/class/virtio-ports/*; do
    [ -r "$d/name" ] && ln -sf "../$(basename "$d")" "/dev/virtio-ports/$(cat "$d/name")"
done
# what runs differs from what is configured: 99-vmsec.conf says 1
echo 0 >/proc/sys/kernel/kptr_restrict
BLOCK="$(sed -n 's/.*vmsec\.qga_block=\([^ ]*\).*/\1/p' /proc/cmdline)"
if [ -n "$BLOCK" ]; then
    qemu-ga --daemonize -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -b "$BLOCK"
else
    qemu-ga --daemonize -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0
fi
echo "VMSEC-READY qga-block=${BLOCK:-none}" >/dev/console
while :; do sleep 3600; done
EOF
chmod 755 "$ROOT/usr/local/sbin/vmsec-init"
printf 'kernel.kptr_restrict = 1\n' >"$ROOT/etc/sysctl.d/99-vmsec.conf"
mkdir -p "$ROOT/root/.ssh"
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDVxMfH8Wz8pvA0WUdqXbSC3ZtjpGF3NlwDnZEPQZ6+t vmsec-agent-test" \
    >"$ROOT/root/.ssh/authorized_keys"
chmod 700 "$ROOT/root/.ssh"
chmod 600 "$ROOT/root/.ssh/authorized_keys"

mkdir -p "$WORK/out"
cp "$ROOT"/boot/vmlinuz-* "$WORK/out/vmlinuz"
cp "$ROOT"/boot/initrd.img-* "$WORK/out/initrd.img"
log "root filesystem image"
mke2fs -q -t ext4 -L vmsec-agent -d "$ROOT" "$WORK/root.ext4" 1G
qemu-img convert -f raw -O qcow2 "$WORK/root.ext4" "$WORK/out/root.qcow2"
echo "agent-guest-$KEY" >"$WORK/out/.complete"
rm -rf "$OUT"
mv "$WORK/out" "$OUT"
echo "$OUT"
