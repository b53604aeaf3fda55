#!/usr/bin/env bash
# The test command: install every apt and pip dependency the tests use, then lint, type-check and test.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# Keep package installs from starting services (sshd, postgresql): tests start their own.
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  created_policy=1
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# python3-*/gcc/pkg-config/libvirt-dev: the venv and the libvirt-python build.
# libvirt-daemon(-driver-qemu), qemu-system-x86, qemu-utils: the real libvirt QEMU driver (embedded
# mode, TCG) that the end-to-end tests start, and qemu-img for images.
# openssh-server: `sshd -T` is the oracle for vmsec's sshd_config resolver, and the private servers on
# loopback that `vmsec scan ssh` is tested against; sudo: the allow-listed reads over SSH (--sudo).
# debootstrap, fdisk, e2fsprogs, xfsprogs: the real Debian 12 guest images the image tests build;
# cryptsetup-bin: their raw LUKS volumes, formatted with a fixed PBKDF2 count (qemu-img benchmarks).
# lvm2: pvcreate/vgcreate/lvcreate write the LVM guest image (tests/images/build_lvm_image.sh).
# postgresql: the store tests run against a real server they start themselves.
# chromium: the HTML report is tested in headless Chromium through Playwright.
# python3-rpm (system Python) and dpkg: the oracles for the rpm and dpkg version comparators.
# systemd, util-linux: `systemd-sysctl --cat-config` in a private mount namespace is the oracle for sysctl order;
# procps: its /etc/sysctl.conf is one of the files that test bind-mounts; its sysctl is the oracle for the
# live host's /proc/sys values. dbus: the real dbus-daemon a private systemd (PID 1 of a namespace)
# answers ListUnits on, for the live host's D-Bus path.
# redis-server: the broker of the fleet tests' Celery workers (each test run starts its own on a free port).
# nmap: its vnc-info script is the oracle for the VNC probe; nftables, iproute2: a private network
# namespace with a DROP rule gives the probe a filtered port; sasl2-bin: SASL for the VNC/libvirt listeners;
# libsasl2-modules-gssapi-mit: GSSAPI, the strong mechanism libvirt offers on a clear TCP listener.
# polkitd (polkitd and pkcheck), dbus-daemon: real polkitd is the oracle for the polkit rules evaluator,
# run in a private mount and PID namespace (unshare, setpriv: util-linux) with a private system bus.
# acl (getfacl): the SSH transport's ACL reader is compared with the kernel's xattrs through it.
# debsecan: Debian's own scanner as an oracle for the matcher; openscap-*/ssg-*: the peer comparison test.
# rpm (rpmbuild) and python3-dnf: RPMs built in the tests, and dnf 4 itself deciding which of them its
# excludes hide, the oracle for what dnf-automatic never upgrades (nothing is installed through dnf).
apt-get install -y -q --no-install-recommends \
  python3 python3-venv python3-dev gcc pkg-config libvirt-dev \
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils \
  openssh-server sudo debootstrap fdisk e2fsprogs xfsprogs cryptsetup-bin lvm2 postgresql chromium \
  ca-certificates tar coreutils python3-rpm dpkg systemd dbus util-linux procps debsecan \
  openscap-scanner openscap-utils ssg-debian ssg-debderived nmap nftables iproute2 sasl2-bin \
  libsasl2-modules libsasl2-modules-gssapi-mit openssl redis-server polkitd dbus-daemon acl rpm \
  python3-dnf >/dev/null
if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
# qemu-guest-agent: `qemu-ga -D` (the configuration it would run with) is the oracle for the guest agent's
# RPC filter. Unpacked into .cache, not installed: the package would add a unit to this machine.
if [ ! -x .cache/qemu-ga/root/usr/sbin/qemu-ga ]; then
  rm -rf .cache/qemu-ga && mkdir -p .cache/qemu-ga
  (cd .cache/qemu-ga && apt-get download -q qemu-guest-agent >/dev/null 2>&1 \
     && dpkg -x qemu-guest-agent_*.deb root && rm -f qemu-guest-agent_*.deb)
fi
# rsyslog (with its two libraries and the RELP output): `rsyslogd -N1 -d` dumps the rulesets and actions
# it would run, the oracle for vmsec's rsyslog reader. Unpacked into .cache, not installed: the package
# would start a logging daemon and take over /dev/log on this machine.
if [ ! -x .cache/rsyslog/root/usr/sbin/rsyslogd ] || [ ! -e .cache/rsyslog/root/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so ]; then
  rm -rf .cache/rsyslog && mkdir -p .cache/rsyslog
  (cd .cache/rsyslog && apt-get download -q rsyslog rsyslog-relp libestr0 libfastjson4 librelp0 >/dev/null 2>&1 \
     && for deb in ./*.deb; do dpkg -x "$deb" root; done && rm -f ./*.deb)
fi
# syslog-ng (core, its SCL, and the two libraries it and its socket module need): started in the foreground
# with a private persist file and control socket, its debug log says which destinations a
# configuration opens — the oracle for vmsec's syslog-ng reader. Unpacked into .cache, not installed.
if [ ! -x .cache/syslog-ng/root/usr/sbin/syslog-ng ] || [ ! -e .cache/syslog-ng/root/usr/share/syslog-ng/include/scl/graylog2/plugin.conf ]; then
  rm -rf .cache/syslog-ng && mkdir -p .cache/syslog-ng
  (cd .cache/syslog-ng && apt-get download -q syslog-ng-core syslog-ng-scl libivykis0 libnet1 >/dev/null 2>&1 \
     && for deb in ./*.deb; do dpkg -x "$deb" root; done && rm -f ./*.deb)
fi
# unattended-upgrades: its own origin matcher (match_whitelist_string, get_allowed_origins_legacy, in its
# packaged script) is the oracle for VMS-GST-076's. Unpacked into .cache, not installed: the package
# would enable automatic upgrades of this machine.
if [ ! -f .cache/unattended-upgrades/root/usr/bin/unattended-upgrade ]; then
  rm -rf .cache/unattended-upgrades && mkdir -p .cache/unattended-upgrades
  (cd .cache/unattended-upgrades && apt-get download -q unattended-upgrades >/dev/null 2>&1 \
     && dpkg -x unattended-upgrades_*.deb root && rm -f unattended-upgrades_*.deb)
fi
# dnf-plugins-core: its versionlock plugin, run on a dnf sack as the oracle for what dnf-automatic's version
# locks hold back. Unpacked into .cache, not installed.
if [ ! -f .cache/dnf-plugins-core/root/usr/lib/python3/dist-packages/dnf-plugins/versionlock.py ]; then
  rm -rf .cache/dnf-plugins-core && mkdir -p .cache/dnf-plugins-core
  (cd .cache/dnf-plugins-core && apt-get download -q dnf-plugins-core >/dev/null 2>&1 \
     && dpkg -x dnf-plugins-core_*.deb root && rm -f dnf-plugins-core_*.deb)
fi
# libvirt's embedded QEMU driver expects its default unprivileged user to exist.
getent passwd libvirt-qemu >/dev/null || useradd -r -U -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev,libvirt,postgresql,probe,service]'
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/mypy
exec .venv/bin/pytest "$@"
