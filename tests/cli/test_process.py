"""Process behaviour: Ctrl-C exits 130 and names the partial scan kept; progress on standard error
(n of N targets, elapsed time, the stage) is never silent for a second on a terminal; colour only on a
terminal and never with --no-color."""

from __future__ import annotations

import io
import itertools
import json
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetdata import write_xml_hypervisor

ROOT = Path(__file__).resolve().parents[2]
VMSEC = str(Path(sys.executable).with_name("vmsec"))
CORPUS = ROOT / "tests" / "data" / "libvirt-9.0.0" / "tests" / "qemuxml2argvdata"  # 1,070 files
VNC_FAIL = ROOT / "tests" / "data" / "checks" / "VMS-DOM-020" / "vnc-any.FAIL.xml"


def _targets_stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2) as conn:
            return int(conn.execute("SELECT count(*) FROM targets").fetchone()[0])
    except sqlite3.Error:
        return 0


# Interrupted scans read a directory big enough to take seconds however fast the machine: the
# corpus's 1,070 domains take half a second now, too short for a signal to land mid-scan reliably.
LONG_SCAN = 6_000


@pytest.fixture(scope="module")
def many_domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_xml_hypervisor(tmp_path_factory.mktemp("many") / "hv", LONG_SCAN)


def test_ctrl_c_exits_130_and_names_the_partial_scan(tmp_path: Path, many_domains: Path) -> None:
    db = tmp_path / "history.sqlite"
    proc = subprocess.Popen([VMSEC, "scan", "xml", str(many_domains), "--store", str(db), "-q", "--format",
                             "json", "-o", str(tmp_path / "report.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _targets_stored(db) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # wait until the scan is being stored, then interrupt it
    assert proc.poll() is None, "the scan ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    m = re.search(rf"interrupted; the partial scan #(\d+) was stored \((\d+) of {LONG_SCAN} targets\)", err)
    assert m is not None, err
    history = subprocess.run([VMSEC, "history", "--store", str(db), "--format", "json"], capture_output=True,
                             text=True, timeout=60, check=True)
    [scan] = __import__("json").loads(history.stdout)["scans"]
    assert scan["id"] == int(m.group(1)) and scan["state"] == "interrupted"
    assert scan["targets"]["stored"] == int(m.group(2)) < LONG_SCAN
    assert subprocess.run([VMSEC, "report", m.group(1), "--store", str(db), "--format", "json"],
                          capture_output=True, timeout=60, check=False).returncode == 3  # incomplete


def test_ctrl_c_before_anything_is_stored(many_domains: Path) -> None:
    proc = subprocess.Popen([VMSEC, "scan", "xml", str(many_domains), "--no-store", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.6)  # start-up, or reading the files: either way, long before the scan's end
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err


def _run_on_pty(args: list[str], *, stderr_pty: bool, stdout_pty: bool,
                env: dict[str, str] | None = None) -> tuple[int, bytes, bytes, list[float]]:
    """Run vmsec with stdout and/or stderr on a pseudo-terminal (the other stream to a file); return
    the exit code, what the terminal and the other stream carried, and when the terminal received
    output (seconds since start)."""
    import tempfile

    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as other:
        proc = subprocess.Popen([VMSEC, *args], stdin=subprocess.DEVNULL,
                                stdout=slave if stdout_pty else other,
                                stderr=slave if stderr_pty else other,
                                env={**os.environ, "COLUMNS": "100", **(env or {})})
        os.close(slave)
        started = time.monotonic()
        tty, times = b"", []
        while True:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    chunk = b""
                if not chunk:
                    break
                tty += chunk
                times.append(time.monotonic() - started)
            elif proc.poll() is not None:
                break
        os.close(master)
        code = proc.wait(timeout=60)
        other.seek(0)
        rest = other.read()
    return code, tty, rest, times


def test_progress_on_a_terminal_is_never_silent_for_a_second(tmp_path: Path) -> None:
    code, tty, report, times = _run_on_pty(["scan", "xml", str(CORPUS), "--no-store", "--format", "json"],
                                           stderr_pty=True, stdout_pty=False)
    assert code == 0 and report.startswith(b"{")
    text = tty.decode("utf-8", "replace")
    assert re.search(r"vmsec: \d+:\d\d · [\d,]+/1,070 targets · check · ", text), text[-500:]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times and max(gaps) < 1.0, gaps  # repainted four times a second, from the first paint on
    assert text.endswith("\x1b[2K")  # the line is erased before the report: nothing left behind


def test_progress_off_a_terminal_writes_plain_lines_only_for_long_work() -> None:
    from vmsec.cli.progress import PLAIN_EVERY, Progress

    now = [0.0]
    out = io.StringIO()
    progress = Progress(out, live=False, clock=lambda: now[0])
    progress.message("xml a.xml")
    assert out.getvalue() == ""  # short scans stay silent
    now[0] = PLAIN_EVERY + 0.5
    progress.stage("check", "xml /x")
    progress.begin(type("H", (), {"targets_expected": 10})())
    progress.message("domain web01")
    assert out.getvalue().count("\n") == 1 and "0:02 · check · " in out.getvalue()
    now[0] += PLAIN_EVERY + 0.1
    progress.message("domain \x1b]0;owned\x07web02")
    line = out.getvalue().splitlines()[-1]
    assert "0/10 targets · check · domain \\x1b]0;owned\\x07web02" in line and "\x1b" not in line


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    code, tty, _err, _ = _run_on_pty(["scan", "xml", str(VNC_FAIL), "--no-store", "-q"],
                                     stderr_pty=False, stdout_pty=True)
    assert code == 0 and b"\x1b[" in tty  # severities in colour on a terminal
    for args, env in ((["--no-color"], None), ([], {"NO_COLOR": "1"})):
        code, tty, _err, _ = _run_on_pty(["scan", "xml", str(VNC_FAIL), "--no-store", "-q", *args],
                                         stderr_pty=False, stdout_pty=True, env=env)
        assert code == 0 and b"\x1b[" not in tty and b"Fix first" in tty
    piped = subprocess.run([VMSEC, "scan", "xml", str(VNC_FAIL), "--no-store", "-q"], capture_output=True,
                           timeout=60, check=False)
    assert b"\x1b" not in piped.stdout


# What an offline scan never needs: the network stack (asyncio and ssl come with the probes), the
# store's ORM and migrations (the writer talks to the driver), logging (only --debug),
# importlib.resources (data files are paths), hashlib, which loads OpenSSL (fingerprints are
# BLAKE2, built into the interpreter), and tomllib (built-in profiles ship pre-parsed; only a
# configuration file or a custom profile needs it), and platformdirs (vmsec.userdirs gives the same
# directories). Each is milliseconds of every scan's start-up.
_NOT_OFFLINE = ("asyncio", "ssl", "sqlalchemy", "alembic", "logging", "importlib.resources", "hashlib",
                "_hashlib", "tomllib", "platformdirs")


def test_an_offline_scan_does_not_import_what_it_does_not_use(tmp_path: Path) -> None:
    script = (
        "import sys, atexit\n"
        "listing = sys.argv[1]\n"
        "atexit.register(lambda: print(' '.join(sorted(sys.modules)), file=open(listing, 'w')))\n"
        "from vmsec.cli.main import main\n"
        "sys.argv = ['vmsec', 'scan', 'xml', sys.argv[2], '--format', 'json', '-o', sys.argv[3], '-q',\n"
        "            '--store', sys.argv[4]]\n"
        "main()\n")
    listing = tmp_path / "modules.txt"
    db = tmp_path / "history.sqlite"
    for _ in range(2):  # the first run creates and migrates the store (SQLAlchemy, alembic): a one-off
        proc = subprocess.run([sys.executable, "-c", script, str(listing), str(VNC_FAIL),
                               str(tmp_path / "report.json"), str(db)], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path,
                              # no vmsec.toml of the machine's user: a configuration file is TOML
                              env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")})
        assert proc.returncode == 0, proc.stderr
    loaded = set(listing.read_text().split())
    assert "vmsec.checks.probe.consoles" in loaded  # the console checks ran, without their probes
    assert sorted(m for m in _NOT_OFFLINE if m in loaded) == []
    assert _targets_stored(db) == 2


def test_a_vulnerability_scan_does_not_import_what_it_does_not_use(tmp_path: Path) -> None:
    # The whole-process vulnerability scan is timed against debsecan (benchmarks/): what it imports
    # and never uses is start-up a user pays on every scan.
    from vmsec.vulns.db import import_feeds

    data = ROOT / "tests" / "data" / "vuln"
    root = tmp_path / "guest"
    (root / "etc").mkdir(parents=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc/os-release").write_text('NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n')
    (root / "var/lib/dpkg/status").write_bytes((data / "installed/debian12-dpkg-status.trimmed").read_bytes())
    db = tmp_path / "advisories.sqlite"
    feed = data / "osv" / "Debian-subset-all.zip"
    import_feeds([(feed.name, feed.read_bytes())], db)
    script = (
        "import sys, atexit\n"
        "listing = sys.argv[1]\n"
        "atexit.register(lambda: print(' '.join(sorted(sys.modules)), file=open(listing, 'w')))\n"
        "from vmsec.cli.main import main\n"
        "sys.argv = ['vmsec', 'scan', 'rootfs', sys.argv[2], '--check', 'VMS-VULN-001',\n"
        "            '--check', 'VMS-VULN-002', '--db', sys.argv[3], '--no-store', '--format', 'json']\n"
        "main()\n")
    listing = tmp_path / "modules.txt"
    proc = subprocess.run([sys.executable, "-c", script, str(listing), str(root), str(db)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")})
    assert proc.returncode == 0, proc.stderr
    failed = [f for f in json.loads(proc.stdout)["findings"] if f["status"] == "FAIL"]
    assert len(failed) > 100  # the advisories were matched: this is the scan that is timed
    loaded = set(listing.read_text().split())
    # typing_extensions: msgspec would import it (and inspect's dependencies) for nothing vmsec uses
    assert sorted(m for m in (*_NOT_OFFLINE, "tempfile", "shutil", "bz2", "lzma", "typing_extensions")
                  if m in loaded) == []


def test_msgspec_is_loaded_without_typing_extensions_which_stays_importable() -> None:
    script = (
        "import sys\n"
        "import vmsec, msgspec\n"
        "assert 'typing_extensions' not in sys.modules\n"
        "import typing_extensions\n"  # whoever needs it later (the service's packages) still gets it
        "from typing import NotRequired, TypedDict\n"
        "class Row(TypedDict):\n"
        "    a: int\n"
        "    b: NotRequired[str]\n"
        "assert msgspec.json.decode(b'{\"a\": 1}', type=Row) == {'a': 1}\n"
        "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr
    # Already loaded (a process that imported typing_extensions first): left as it is.
    script = "import typing_extensions, vmsec, msgspec._utils as u\nprint(u._get_type_hints.__module__)\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "typing_extensions\n", proc.stderr


def _with_reader_gone(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``args`` with standard output a pipe whose reader has already gone (``| head`` after it
    exited): every write to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(args, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
                              check=False, env=env)
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("args", [
    ["--version"],
    ["checks", "list"],
    ["scan", "xml", str(VNC_FAIL), "--no-store", "--format", "json"],  # streamed as the scan runs
    ["scan", "xml", str(VNC_FAIL), "--no-store", "--format", "terminal"],
    ["scan", "xml", str(VNC_FAIL), "--no-store", "--format", "sarif"],  # written after the scan
    # A report smaller than the output buffer: the write fails only when vmsec flushes it on exit.
    ["scan", "xml", str(VNC_FAIL), "--no-store", "--format", "json", "--check", "VMS-DOM-020"],
], ids=["version", "checks-list", "scan-json", "scan-terminal", "scan-sarif", "scan-small-report"])
def test_a_reader_that_went_away_ends_vmsec_quietly_with_141(args: list[str]) -> None:
    # docs/cli.md: 141, never 1 — a CI gate reads 1 as "FAIL findings at or above --fail-on".
    code, err = _with_reader_gone([VMSEC, *args])
    assert (code, err) == (141, "")


def test_a_broken_pipe_that_is_not_standard_output_is_an_error_not_141(tmp_path: Path) -> None:
    # A connection that breaks (a guest's SSH session, a database socket) is a failure to report,
    # not a reader that went away: standard output here is a file that takes every write.
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys\n"
        "import vmsec.cli.check_commands as commands\n"
        "def broken(*args, **kwargs):\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "commands.checks.commands['list'].callback = broken\n"
        "from vmsec.cli.main import main\n"
        "main(['checks', 'list'])\n")
    with (tmp_path / "out.txt").open("w") as out:
        proc = subprocess.run([sys.executable, str(driver)], stdout=out, stderr=subprocess.PIPE, text=True,
                              timeout=60, check=False)
    assert proc.returncode == 3
    assert proc.stderr.startswith("vmsec: error: Broken pipe"), proc.stderr


def test_a_command_that_exits_with_a_message_prints_it_and_exits_1(tmp_path: Path) -> None:
    # main() ends every command itself (one last flush of standard output, one exit path): a
    # sys.exit("message") keeps Python's meaning — the message on standard error, status 1.
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import vmsec.cli.check_commands as commands\n"
        "def leave(*args, **kwargs):\n"
        "    raise SystemExit('the reason, in words')\n"
        "commands.checks.commands['list'].callback = leave\n"
        "from vmsec.cli.main import main\n"
        "main(['checks', 'list'])\n")
    proc = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert (proc.returncode, proc.stderr) == (1, "the reason, in words\n")


@pytest.mark.parametrize("fmt", ["html", "sarif", "json"])
def test_a_reader_that_leaves_in_the_middle_of_a_large_report_gives_141(fmt: str) -> None:
    # `vmsec … | head -c 100`: the reader takes a little, then goes. The pipe took 64 KiB of a 10 MB
    # HTML page in one short write, which CPython's buffered writer counted as done: exit 0, a cut page.
    proc = subprocess.Popen([VMSEC, "scan", "xml", str(CORPUS), "--no-store",
                             "-q", "--format", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(100)) == 100
    proc.stdout.close()
    err = proc.stderr.read()
    assert (proc.wait(timeout=120), err) == (141, b"")
