#!/bin/sh
# Rebuild the dnf-automatic fixtures' rpm databases (*/var/lib/rpm/rpmdb.sqlite) with the real rpm tools:
# empty x86_64 packages named and versioned as on AlmaLinux 9, installed with --justdb into a fresh
# SQLite rpmdb. Needs rpm and rpmbuild (Debian: apt-get install rpm). Run from anywhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkpkg() { # name version release
  cat > "$work/$1.spec" <<SPEC
Name: $1
Version: $2
Release: $3
Summary: vmsec test package
License: MIT
BuildArch: x86_64
%description
Empty package for vmsec's automatic-update fixtures.
%files
SPEC
  rpmbuild --quiet --define "_topdir $work/top" --define "_build_id_links none" -bb "$work/$1.spec" >/dev/null
}
mkpkg dnf-automatic 4.14.0 9.el9
mkpkg kernel-core 5.14.0 427.13.1.el9_4
mkpkg openssh-server 8.7p1 38.el9_4.4
mkdir -p "$work/plugin/RPMS/x86_64"
mv "$work/top/RPMS/x86_64"/*.rpm "$work/plugin/RPMS/x86_64/" 2>/dev/null || true
base="$work/plugin/RPMS/x86_64"
mkpkg python3-dnf-plugin-versionlock 4.3.0 13.el9
lock="$work/top/RPMS/x86_64/python3-dnf-plugin-versionlock-4.3.0-13.el9.x86_64.rpm"
install_db() { # fixture rpm...
  db="$here/$1/var/lib/rpm"; shift
  rm -rf "$db"; mkdir -p "$db"
  rpm --dbpath "$db" --initdb
  rpm --dbpath "$db" -i --justdb --nodeps --noscripts --ignorearch --ignoreos "$@"
  sqlite3 "$db/rpmdb.sqlite" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null 2>&1 || true
  rm -f "$db/rpmdb.sqlite-wal" "$db/rpmdb.sqlite-shm" "$db/.rpm.lock"
}
for fixture in dnf-automatic-installs-updates.PASS dnf-excludes-the-kernel.FAIL dnf-exclude-names-a-version.UNKNOWN \
    dnf-exclude-of-the-installed-version.FAIL dnf-conf-libdnf-refuses.FAIL; do
  install_db "$fixture" "$base"/*.rpm
done
for fixture in dnf-versionlock-holds-the-kernel.FAIL dnf-versionlock-without-its-list.FAIL; do
  install_db "$fixture" "$base"/*.rpm "$lock"
done
