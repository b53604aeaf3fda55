"""VMS-GST-135/136 on qemu-ga setups whose RPC filter is not what it looks like. Each expectation was
observed with the real agent: Debian's qemu-ga 7.2 (bookworm) and 10.0 (bookworm-backports), ``qemu-ga
-D`` printing the filter it would apply (tests/parsers/test_guest_agent_oracle.py runs 7.2 for real)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from vmsec.checks.api import Status
from vmsec.checks.guest import provisioning as pv
from vmsec.collectors.guest import collect_guest
from vmsec.collectors.reader import RootReader

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
EXEC_AND_FILE = ("guest-exec,guest-exec-status,guest-file-open,guest-file-read,guest-file-write,"
                 "guest-file-close")
UNIT = "lib/systemd/system/qemu-guest-agent.service"


def verdicts(base: Path, config: str | None, *, version: str | None = "1:7.2+dfsg-7",
             args: tuple[str, ...] = (), service: str = "") -> list[Status]:
    """VMS-GST-135's two results for a guest whose qemu-ga has this version, qemu-ga.conf and command line."""
    files = {UNIT: f"[Service]\n{service}ExecStart=/usr/sbin/qemu-ga {shlex.join(args)}\n"}
    if version is not None:
        files["var/lib/dpkg/status"] = ("Package: qemu-guest-agent\nStatus: install ok installed\n"
                                        f"Version: {version}\n")
    else:
        files["usr/sbin/qemu-ga"] = ""
    if config is not None:
        files["etc/qemu/qemu-ga.conf"] = config
    for name, text in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text)
    guest, _ = collect_guest(RootReader(str(base)), name="vm", origin=str(base))
    return [r.status for r in pv.guest_agent_exec(guest)]


@pytest.mark.parametrize(("name", "config", "expected"), [
    ("fail_semicolons_name_one_rpc_that_does_not_exist",
     f"[general]\nblock-rpcs={EXEC_AND_FILE.replace(',', ';')}\n", [F, F]),
    ("fail_blanks_around_names_are_part_of_them",
     f"[general]\nblock-rpcs = {EXEC_AND_FILE.replace(',', ' , ')}\n", [F, F]),
    ("fail_a_trailing_tab_is_part_of_the_last_name", "[general]\nblock-rpcs=guest-exec,guest-exec-status\t\n",
     [F, F]),
    ("fail_a_repeated_key_replaces_the_first",
     f"[general]\nblock-rpcs={EXEC_AND_FILE}\nblock-rpcs=guest-info\n", [F, F]),
    ("fail_blanks_inside_the_group_brackets_name_another_group", f"[ general ]\nblock-rpcs={EXEC_AND_FILE}\n",
     [F, F]),
    ("fail_key_names_are_case_sensitive", f"[general]\nBlock-RPCs={EXEC_AND_FILE}\n", [F, F]),
    ("pass_a_repeated_group_continues", f"[general]\n[other]\nx=1\n[general]\nblock-rpcs={EXEC_AND_FILE}\n",
     [P, P]),
    ("pass_crlf_line_ends_are_read",
     "[general]\r\nblock-rpcs=guest-exec,guest-exec-status,guest-file-open,guest-file-read,guest-file-write,"
     "guest-file-close\r\n", [P, P]),
    ("unknown_a_line_gkeyfile_refuses_stops_the_agent", f"[general]\nblock-rpcs={EXEC_AND_FILE}\nbogus\n",
     [U, U]),
    ("unknown_an_invalid_escape_stops_the_agent", "[general]\nblock-rpcs=guest-exec\\x\n", [U, U]),
])
def test_config_file_as_gkeyfile_and_qemu_ga_read_it(tmp_path: Path, name: str, config: str,
                                                      expected: list[Status]) -> None:
    assert verdicts(tmp_path, config) == expected


def test_blacklist_wins_over_block_rpcs_until_9_1_which_ignores_it(tmp_path: Path) -> None:
    both = f"[general]\nblacklist=guest-info\nblock-rpcs={EXEC_AND_FILE}\n"
    assert verdicts(tmp_path / "7.2", both) == [F, F]  # 7.2–9.0: blacklist present, block-rpcs unread
    assert verdicts(tmp_path / "10.0", both, version="1:10.0.2+ds-2") == [P, P]  # blacklist key removed
    old = f"[general]\nblacklist={EXEC_AND_FILE}\n"
    assert verdicts(tmp_path / "10.0-old", old, version="1:10.0.2+ds-2") == [F, F]
    assert verdicts(tmp_path / "7.1", f"[general]\nblock-rpcs={EXEC_AND_FILE}\n", version="1:7.1.0") == [F, F]


def test_allow_rpcs_exists_from_8_1_and_both_lists_apply(tmp_path: Path) -> None:
    allow = "[general]\nallow-rpcs=guest-ping,guest-info\n"
    assert verdicts(tmp_path / "7.2", allow) == [F, F]  # not read before 8.1: every RPC answers
    assert verdicts(tmp_path / "10.0", allow, version="1:10.0.2+ds-2") == [P, P]
    both = "[general]\nallow-rpcs=guest-ping,guest-exec\nblock-rpcs=guest-exec,guest-exec-status\n"
    assert verdicts(tmp_path / "both", both, version="1:10.0.2+ds-2") == [P, P]  # allowed, but also blocked


def test_without_a_version_an_rpc_is_blocked_only_if_every_release_blocks_it(tmp_path: Path) -> None:
    assert verdicts(tmp_path / "a", f"[general]\nblock-rpcs={EXEC_AND_FILE}\n", version=None) == [F, F]
    assert verdicts(tmp_path / "b", f"[general]\nblacklist={EXEC_AND_FILE}\nblock-rpcs={EXEC_AND_FILE}\n",
                    version=None) == [P, P]
    assert verdicts(tmp_path / "c", "[general]\n", version=None, args=("-b", EXEC_AND_FILE)) == [P, P]


@pytest.mark.parametrize(("name", "args", "version", "expected"), [
    ("unknown_allow_option_before_8_1_stops_the_agent", ("-a", "guest-ping"), "1:7.2+dfsg-7", [U, U]),
    ("unknown_blacklist_option_from_9_1_stops_the_agent", (f"--blacklist={EXEC_AND_FILE}",), "1:10.0",
     [U, U]),
    ("unknown_config_option_before_9_1_stops_the_agent", ("-c", "/etc/qemu/other.conf"), "1:7.2", [U, U]),
    ("pass_long_options_abbreviate", (f"--block={EXEC_AND_FILE}",), "1:7.2", [P, P]),
    ("pass_short_options_cluster", (f"-vb{EXEC_AND_FILE}",), "1:7.2", [P, P]),
    ("fail_words_after_a_double_dash_are_no_options", ("--", "-b", EXEC_AND_FILE), "1:7.2", [F, F]),
    ("fail_an_option_takes_the_next_word_as_its_value", ("-l", "-b", EXEC_AND_FILE), "1:7.2", [F, F]),
    ("pass_words_that_are_no_options_are_passed_over", ("x", "-b", EXEC_AND_FILE), "1:7.2", [P, P]),
])
def test_command_line_as_getopt_reads_it(tmp_path: Path, name: str, args: tuple[str, ...], version: str,
                                         expected: list[Status]) -> None:
    assert verdicts(tmp_path, "[general]\n", version=version, args=args) == expected


def test_qga_conf_in_the_service_environment_names_the_configuration_file(tmp_path: Path) -> None:
    hardened = f"[general]\nblock-rpcs={EXEC_AND_FILE}\n"
    (tmp_path / "etc/qemu").mkdir(parents=True)
    (tmp_path / "etc/qemu/open.conf").write_text("[general]\n")
    assert verdicts(tmp_path, hardened, service='Environment="QGA_CONF=/etc/qemu/open.conf"\n') == [F, F]


def test_systemd_keeps_a_braced_variable_one_argument_and_splits_a_bare_one(tmp_path: Path) -> None:
    spaced = "BLOCK=" + EXEC_AND_FILE.replace(",", " ")
    # "-b ${BLOCK}": one argument with blanks, naming no RPC; "-b $BLOCK": systemd splits it, and the
    # words after the first are no options
    assert verdicts(tmp_path / "a", None, args=("-b${BLOCK}",), service=f"Environment={spaced}\n") == [F, F]
    assert verdicts(tmp_path / "b", None, args=("$ARGS",),
                    service=f"Environment=\"ARGS=-b {EXEC_AND_FILE} -v\"\n") == [P, P]
