"""rpm (SQLite rpmdb built by the real rpm tools, see tests/data/guests/make-alma-rpmdb.sh) and apk
package databases; unsupported and corrupt databases are errors, never an empty package list."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, ParseError, ReadError
from vmsec.parsers.apk_db import parse_apk_installed, read_apk_db
from vmsec.parsers.rpm_db import parse_header, read_rpm_db

GUESTS = Path(__file__).resolve().parents[1] / "data" / "guests"
RPMDB = GUESTS / "alma9/var/lib/rpm/rpmdb.sqlite"


def test_real_rpmdb_sqlite() -> None:
    before = hashlib.sha256(RPMDB.read_bytes()).hexdigest()
    packages = read_rpm_db(RootReader(str(GUESTS / "alma9")))
    assert packages is not None
    by_name = {p.name: p for p in packages}
    assert set(by_name) == {"openssh-server", "qemu-guest-agent", "bash", "sudo"}
    assert by_name["openssh-server"].version == "8.7p1-38.el9_4.4"
    assert by_name["openssh-server"].source == "openssh"
    assert by_name["qemu-guest-agent"].version == "17:8.2.0-11.el9_4.6"  # epoch kept
    assert by_name["qemu-guest-agent"].source == "qemu-kvm"
    assert all(p.manager == "rpm" for p in packages)
    assert hashlib.sha256(RPMDB.read_bytes()).hexdigest() == before  # the guest's file is untouched
    assert not Path(f"{RPMDB}-wal").exists() and not Path(f"{RPMDB}-shm").exists()


def test_usr_lib_sysimage_location(tmp_path: Path) -> None:
    target = tmp_path / "usr/lib/sysimage/rpm"
    target.mkdir(parents=True)
    shutil.copy(RPMDB, target / "rpmdb.sqlite")
    packages = read_rpm_db(RootReader(str(tmp_path)))
    assert packages is not None and len(packages) == 4


def test_no_rpm_database(tmp_path: Path) -> None:
    assert read_rpm_db(RootReader(str(tmp_path))) is None


def test_berkeley_db_is_unsupported_not_empty(tmp_path: Path) -> None:
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    (tmp_path / "var/lib/rpm/Packages").write_bytes(b"\x00\x06\x15\x61" + b"\x00" * 4092)
    with pytest.raises(ReadError, match="BerkeleyDB"):
        read_rpm_db(RootReader(str(tmp_path)))


def test_garbage_sqlite_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    (tmp_path / "var/lib/rpm/rpmdb.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(ReadError, match=r"rpmdb\.sqlite"):
        read_rpm_db(RootReader(str(tmp_path)))


def test_sqlite_with_bad_headers_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    db = sqlite3.connect(tmp_path / "var/lib/rpm/rpmdb.sqlite")
    db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    db.execute("INSERT INTO Packages (blob) VALUES (?)", (b"\xff\xff\xff\xff" * 4,))
    db.commit()
    db.close()
    with pytest.raises(ReadError, match="could be decoded"):
        read_rpm_db(RootReader(str(tmp_path)))


def test_a_view_named_packages_is_refused_before_sqlite_computes_it(tmp_path: Path) -> None:
    # A 4 KiB database whose Packages is a recursive view of 1 MB blobs: sorted for ORDER BY hnum it had
    # written 33 GB of temporary files in 30 s. rpm writes a table; anything else is no rpm database.
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    db = sqlite3.connect(tmp_path / "var/lib/rpm/rpmdb.sqlite")
    db.execute("CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
               "SELECT x AS hnum, zeroblob(1000000) AS blob FROM c")
    db.commit()
    db.close()
    with pytest.raises(ReadError, match=r"rpmdb\.sqlite.*no Packages table \(Packages is a view\)"):
        read_rpm_db(RootReader(str(tmp_path)))


def test_packages_come_in_header_number_order_whatever_the_table_order(tmp_path: Path) -> None:
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    source = sqlite3.connect(RPMDB)
    blobs = source.execute("SELECT hnum, blob FROM Packages").fetchall()
    source.close()
    db = sqlite3.connect(tmp_path / "var/lib/rpm/rpmdb.sqlite")
    db.execute("CREATE TABLE Packages (hnum INTEGER NOT NULL, blob BLOB NOT NULL)")  # hnum not the rowid
    db.executemany("INSERT INTO Packages VALUES (?, ?)", sorted(blobs, reverse=True))
    db.commit()
    db.close()
    packages = read_rpm_db(RootReader(str(tmp_path)))
    assert packages == read_rpm_db(RootReader(str(GUESTS / "alma9")))


@pytest.mark.parametrize("blob", [b"", b"\x00\x00\x00\x01\x00\x00\x00\x10", b"\x00\x01\x00\x00" * 4])
def test_malformed_headers(blob: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_header(blob, "/var/lib/rpm/rpmdb.sqlite")
    assert info.value.kind is ErrorKind.INVALID


def test_apk_installed() -> None:
    packages = read_apk_db(RootReader(str(GUESTS / "alpine320")))
    assert packages is not None
    assert [(p.name, p.version, p.source, p.manager) for p in packages] == [
        ("musl", "1.2.5-r0", "musl", "apk"), ("openssh-server", "9.7_p1-r4", "openssh", "apk"),
        ("qemu-guest-agent", "9.0.2-r1", "qemu", "apk")]


def test_apk_stanza_without_version_is_skipped() -> None:
    assert parse_apk_installed("P:x\n\nP:y\nV:1-r0\n", "f")[0].name == "y"


def test_no_apk_database(tmp_path: Path) -> None:
    assert read_apk_db(RootReader(str(tmp_path))) is None
