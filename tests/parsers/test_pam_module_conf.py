"""pwquality.conf (+ .d, read first: the main file wins) and faillock.conf, read as the modules read them."""

from __future__ import annotations

from pathlib import Path

from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, Problems
from vmsec.facts import PamLine, PamStack
from vmsec.parsers.pam_module_conf import FAILLOCK, PWQUALITY, read_pam_module_configs, read_pwquality_conf


def root(tmp_path: Path, files: dict[str, str]) -> RootReader:
    for rel, text in files.items():
        path = tmp_path / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return RootReader(str(tmp_path))


def test_dropins_are_read_first_so_the_main_file_wins(tmp_path: Path) -> None:
    reader = root(tmp_path, {
        "/etc/security/pwquality.conf": "# libpwquality\nminlen = 8\n",
        "/etc/security/pwquality.conf.d/90-cis.conf": "minlen = 14\ndcredit = -1\n",
        "/etc/security/pwquality.conf.d/10-site.conf": "dcredit=1\nenforce_for_root\n",
        "/etc/security/pwquality.conf.d/README": "minlen = 99\n",  # not *.conf: libpwquality skips it
    })
    conf = read_pwquality_conf(reader)
    assert conf.files == ("/etc/security/pwquality.conf.d/10-site.conf",
                          "/etc/security/pwquality.conf.d/90-cis.conf", "/etc/security/pwquality.conf")
    assert conf.values == {"dcredit": "-1", "enforce_for_root": "", "minlen": "8"}
    assert conf.origins["minlen"] == "/etc/security/pwquality.conf:2"


def test_absent_files_are_present_false_and_bad_lines_are_problems(tmp_path: Path) -> None:
    reader = root(tmp_path, {"/etc/security/faillock.conf": "deny = 4\n= 5\n"})
    problems = Problems()
    faillock = PamLine(type="auth", control="required", module="pam_faillock.so",
                       args=("conf=/etc/site/fl.conf",))
    stacks = (PamStack(service="sshd", path="/etc/pam.d/sshd", lines=(faillock,)),)
    configs = read_pam_module_configs(reader, stacks, problems=problems)
    assert configs[PWQUALITY].present is False
    assert configs[FAILLOCK].values == {"deny": "4"}
    assert configs["/etc/site/fl.conf"].present is False  # named by conf=, read (absent)
    assert [(p.source, p.kind) for p in problems] == [("/etc/security/faillock.conf:2", ErrorKind.INVALID)]
