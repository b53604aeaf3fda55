#!/bin/sh
# Rebuild tests/data/guests/alma9/var/lib/rpm/rpmdb.sqlite with the real rpm tools: a few empty
# packages named and versioned as on AlmaLinux 9, installed with --justdb into a fresh SQLite rpmdb.
# Needs rpm and rpmbuild (Debian: apt-get install rpm). Run from anywhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkpkg() { # name epoch version release source: the binary package is a subpackage of "source"
  if [ "$1" = "$5" ]; then src="$5-src"; else src="$5"; fi  # rpm forbids a subpackage named as its source
  cat > "$work/$1.spec" <<SPEC
Name: $src
${2:+Epoch: $2}
Version: $3
Release: $4
Summary: vmsec test package
License: MIT
BuildArch: noarch
%description
Empty source package for vmsec's rpm database tests.
%package -n $1
Summary: vmsec test package
%description -n $1
Empty package for vmsec's rpm database tests.
%files -n $1
SPEC
  rpmbuild --quiet --define "_topdir $work/top" -bb "$work/$1.spec" >/dev/null
}
mkpkg openssh-server "" 8.7p1 38.el9_4.4 openssh
mkpkg qemu-guest-agent 17 8.2.0 11.el9_4.6 qemu-kvm
mkpkg bash "" 5.1.8 9.el9 bash-build
mkpkg sudo "" 1.9.5p2 10.el9_3 sudo-build
db="$here/alma9/var/lib/rpm"
rm -rf "$db"; mkdir -p "$db"
rpm --dbpath "$db" --initdb
rpm --dbpath "$db" -i --justdb --nodeps --noscripts --ignorearch --ignoreos "$work"/top/RPMS/noarch/*.rpm
sqlite3 "$db/rpmdb.sqlite" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null 2>&1 || true
rm -f "$db/rpmdb.sqlite-wal" "$db/rpmdb.sqlite-shm" "$db/.rpm.lock"
