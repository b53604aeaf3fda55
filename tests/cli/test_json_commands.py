"""Every command's ``--format json`` is JSON a strict parser reads, also when a path or a name holds a
byte that is not UTF-8 (Python carries it as a lone surrogate; an escape of it, ``\\udcff``, is not valid
Unicode and orjson, serde_json or I-JSON reject the whole document): it is shown as visible text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from datapaths import VULN

ROOT = Path(__file__).resolve().parents[2]
VNC_FAIL = ROOT / "tests" / "data" / "checks" / "VMS-DOM-020" / "vnc-any.FAIL.xml"
PASSWORD = "correct horse battery staple"


def run(*args: str | bytes, env: dict[str, str | bytes] | None = None,
        stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with arguments as bytes (as a shell passes them)."""
    return subprocess.run([sys.executable, "-m", "vmsec.cli.main", *args], input=stdin, capture_output=True,
                          env={**os.environb, **{k.encode(): v if isinstance(v, bytes) else v.encode()
                                                 for k, v in (env or {}).items()}},
                          timeout=120, check=False)


def vmsec(*args: str | bytes, env: dict[str, str | bytes] | None = None, stdin: bytes = b"") -> bytes:
    """The standard output of a command that must succeed (0, or 1 for findings)."""
    proc = run(*args, env=env, stdin=stdin)
    assert proc.returncode in (0, 1), proc.stderr.decode(errors="replace")
    return proc.stdout


def strict(out: bytes) -> object:
    document = orjson.loads(out)  # raises on a lone-surrogate escape
    assert b"\\udcff" not in out.replace(b"\\\\udcff", b"")
    return document


def test_json_of_every_listing_command_reads_with_a_strict_parser(tmp_path: Path) -> None:
    odd = os.fsencode(tmp_path) + b"/odd-\xff"
    os.mkdir(odd)
    store, db = odd + b"/history.sqlite", odd + b"/vulndb.sqlite"
    vmsec("scan", "xml", str(VNC_FAIL), "--store", store, "-q")
    vmsec("db", "import", "--db", db, str(VULN / "alpine-secdb" / "v3.20-main.json"))
    env = {"VMSEC_STORE": b"sqlite:///" + odd + b"/service.sqlite", "VMSEC_SERVICE_KEY": odd + b"/key",
           "VMSEC_DB": db}

    history = strict(vmsec("history", "--store", store, "--format", "json"))
    assert isinstance(history, dict) and history["store"].endswith("odd-\\udcff/history.sqlite")
    assert len(history["scans"]) == 1
    empty = strict(vmsec("history", "--store", odd + b"/none.sqlite", "--format", "json"))
    assert isinstance(empty, dict) and empty["scans"] == [] and "odd-\\udcff" in empty["store"]
    info = strict(vmsec("db", "status", "--db", db, "--format", "json"))
    assert isinstance(info, dict) and info["database"].endswith("odd-\\udcff/vulndb.sqlite")
    version = strict(vmsec("version", "--format", "json", env=env))
    assert isinstance(version, dict) and version["advisory_database"]["path"].endswith("/vulndb.sqlite")
    assert isinstance(strict(vmsec("checks", "list", "--format", "json")), list)

    vmsec("user", "add", "eve", "--role", "viewer", "--password-stdin", env=env,
          stdin=PASSWORD.encode() + b"\n")
    users = strict(vmsec("user", "list", "--format", "json", env=env))
    assert isinstance(users, list) and [u["name"] for u in users] == ["eve"]
    vmsec("token", "create", "--user", "eve", "--scope", "read", "--name", "t1", env=env)
    tokens = strict(vmsec("token", "list", "--format", "json", env=env))
    assert isinstance(tokens, list) and [t["name"] for t in tokens] == ["t1"]
    audit = strict(vmsec("audit", "list", "--format", "json", env=env))
    assert isinstance(audit, list) and audit


def test_service_commands_refuse_names_a_store_cannot_keep_with_a_usage_error(tmp_path: Path) -> None:
    # A lone surrogate crashed the store's driver (UnicodeEncodeError: "please report this if it is a
    # bug"); a control character would reach every later listing.
    env: dict[str, str | bytes] = {"VMSEC_STORE": f"sqlite:///{tmp_path / 's.sqlite'}",
                                   "VMSEC_SERVICE_KEY": str(tmp_path / "key")}
    vmsec("user", "add", "eve", "--role", "viewer", "--password-stdin", env=env,
          stdin=PASSWORD.encode() + b"\n")
    for args, where in [
        (("user", "disable", b"\xff"), b"'NAME'"),
        (("user", "reset-mfa", b"e\x1bve"), b"'NAME'"),
        (("token", "list", "--user", b"\xff"), b"'--user'"),
        (("token", "create", "--user", "eve", "--scope", "read", "--name", b"t\xff"), b"'--name'"),
        (("audit", "list", "--action", b"\xff"), b"'--action'"),
    ]:
        proc = run(*args, env=env)
        assert proc.returncode == 2, proc.stderr
        assert b"Error: Invalid value for " + where in proc.stderr
        assert b"holds a control character or a byte that is not UTF-8" in proc.stderr
        assert b"\x1b" not in proc.stderr and b"\xff" not in proc.stderr
    assert [t["name"] for t in orjson.loads(vmsec("token", "list", "--format", "json", env=env))] == []


def test_feed_file_names_reach_no_listing_raw_and_an_undecodable_one_imports(tmp_path: Path) -> None:
    # The source's name and origin come from the file name: a terminal escape in it reached `db import`,
    # `db status` and `version` raw (OSC, screen clear); a byte that is not UTF-8 crashed the import.
    feed = (VULN / "alpine-secdb" / "v3.20-main.json").read_bytes()
    db = os.fsencode(tmp_path) + b"/v.sqlite"
    for stem in (b"feeds-\x1b]0;pwned\x07\x1b[2J", b"epss\xff\xe2\x80\xae"):
        path = os.fsencode(tmp_path) + b"/" + stem + b".json"
        with open(path, "wb") as fh:
            fh.write(feed)
        out = vmsec("db", "import", "--db", db, path)
        assert b"\x1b" not in out and b"\x07" not in out and b"\xff" not in out and b"\xe2\x80\xae" not in out
    for args in (("db", "status", "--db", db), ("version", "--db", db)):
        out = vmsec(*args)
        assert b"\x1b" not in out and b"\x07" not in out and b"\xe2\x80\xae" not in out, out
        assert b"\\x1b]0;pwned\\x07" in out  # shown, escaped
    status = strict(vmsec("db", "status", "--db", db, "--format", "json"))
    assert isinstance(status, dict) and len(status["sources"]) >= 1


def test_a_service_name_longer_than_its_limit_is_a_usage_error(tmp_path: Path) -> None:
    env: dict[str, str | bytes] = {"VMSEC_STORE": f"sqlite:///{tmp_path / 's.sqlite'}",
                                   "VMSEC_SERVICE_KEY": str(tmp_path / "key")}
    proc = run("token", "list", "--user", "x" * 100_000, env=env)
    assert proc.returncode == 2 and b"longer than 200 characters" in proc.stderr
