"""The audit rules auditd loads at boot, as augenrules and auditctl (audit 3.0.9, Debian 12) load them:
each case was run through the real augenrules and auditctl in a review (2026-12-06)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmsec.collectors.reader import RootReader
from vmsec.parsers.system.audit import read_audit

AUGENRULES_UNIT = "[Service]\nExecStart=/sbin/auditd\nExecStartPost=-/sbin/augenrules --load\n"
AUDITCTL_UNIT = "[Service]\nExecStart=/sbin/auditd\nExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules\n"


def rules(tmp_path: Path, files: dict[str, str], unit: str = AUGENRULES_UNIT
          ) -> tuple[tuple[str, ...], str | None]:
    for name, text in {**files, "lib/systemd/system/auditd.service": unit, "sbin/auditd": ""}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    audit = read_audit(RootReader(str(tmp_path)), ())
    return audit.rules, audit.load_error


def test_augenrules_overwrites_a_hand_written_audit_rules(tmp_path: Path) -> None:
    loaded, _ = rules(tmp_path, {"etc/audit/rules.d/audit.rules": "-D\n-b 8192\n",
                                 "etc/audit/audit.rules": "-w /etc/passwd -p wa\n-e 2\n"})
    assert loaded == ("-D", "-b 8192")
    # … unless the unit loads audit.rules itself
    assert rules(tmp_path, {}, AUDITCTL_UNIT)[0] == ("-w /etc/passwd -p wa", "-e 2")


def test_files_in_version_order_dotfiles_skipped_last_e_moved_to_the_end(tmp_path: Path) -> None:
    loaded, _ = rules(tmp_path, {"etc/audit/rules.d/99-finalize.rules": "-e 2\n",
                                 "etc/audit/rules.d/100-local.rules": "-e 1\n-w /etc/sudoers -p wa\n",
                                 "etc/audit/rules.d/10-base.rules": "-w /etc/passwd -p wa\n-D\n",
                                 "etc/audit/rules.d/.99-hidden.rules": "-e 2\n"})
    assert loaded == ("-D", "-w /etc/passwd -p wa", "-w /etc/sudoers -p wa", "-e 1")  # ls -v: 99 before 100


@pytest.mark.parametrize("bad", ["-a always,exit -F arch=b64 -S execve -k exec   # every exec",
                                 "-w /etc/group -p wa\r"])
def test_auditctl_stops_at_a_line_it_refuses(tmp_path: Path, bad: str) -> None:
    loaded, error = rules(tmp_path, {"etc/audit/rules.d/10-a.rules": f"-w /etc/passwd -p wa\n{bad}\n"
                                                                      "-w /etc/shadow -p wa\n",
                                     "etc/audit/rules.d/99-e.rules": "-e 2\n"})
    assert loaded == ("-w /etc/passwd -p wa",) and error is not None and "10-a.rules" in error


def test_a_crlf_file_leaves_the_rules_unlocked(tmp_path: Path) -> None:
    loaded, error = rules(tmp_path, {"etc/audit/rules.d/99-e.rules": "-w /etc/passwd -p wa\r\n-e 2\r\n"})
    assert loaded == () and error is not None


def test_a_later_capital_w_removes_the_watch(tmp_path: Path) -> None:
    loaded, _ = rules(tmp_path, {"etc/audit/rules.d/10.rules": "-w /etc/passwd -p wa\n",
                                 "etc/audit/rules.d/20.rules": "-W /etc/passwd\n"})
    assert loaded == ()
