"""apt.conf and sources as apt 2.6 reads them. Each case was checked with the real apt in a review
(2026-12-06): `apt-config dump` and `apt-get update` with APT_CONFIG pointing at a planted root, an
unsigned local repository telling "accepted" (W: not signed) from "refused" (E:)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from components import require
from vmsec.collectors.reader import RootReader
from vmsec.errors import ReadError
from vmsec.parsers.system.aptconf import MAX_LINES, AptConfig, apt_part_names, parse_apt_conf, read_apt_config
from vmsec.parsers.system.repos import read_repos

SWITCH = "acquire::allowinsecurerepositories"


def conf(text: str) -> AptConfig:
    config = AptConfig()
    parse_apt_conf(text, "/etc/apt/apt.conf.d/99x", config, [])
    return config


@pytest.mark.parametrize("text", [
    'Acquire::AllowInsecureRepositories "true";',
    '"Acquire::AllowInsecureRepositories" "true";',  # a quoted tag
    '"Acquire" { AllowInsecureRepositories "true"; };',
    'Acquire::AllowInsecureRepositories # note\n"true";',  # '#' comments to the end of the line
    'Acquire::http::User-Agent "/*"; Acquire::AllowInsecureRepositories "true"; // */',  # /* in quotes
    'Acquire { AllowInsecureRepositories "true" };',  # '}' ends the statement
    'Acquire::AllowInsecure%52epositories "true";',  # %XX decoded in the tag
    'Binary::apt-get::Acquire::AllowInsecureRepositories "true";',  # apt-get applies it
    "a {" * 33 + "b c;" + "};" * 33 + '\nAcquire::AllowInsecureRepositories "true";',  # no depth limit
])
def test_settings_apt_reads(text: str) -> None:
    assert conf(text).get(SWITCH) is not None and conf(text).get(SWITCH)[0] == "true"  # type: ignore[index]


def test_clear_empties_the_whole_tree_and_lists_accumulate() -> None:
    config = conf('APT::Periodic::Enable "1"; APT::Periodic::X "2";\n#clear APT::Periodic;\n'
                  'L { "a"; "b"; };')
    assert config.get("APT::Periodic::Enable") is None and config.get("APT::Periodic::X") is None
    assert [v for v, _o in config.items("L")] == ["a", "b"]


def test_a_syntax_error_keeps_what_came_before_and_says_the_rest_was_not_read() -> None:
    errors: list[ReadError] = []
    config = AptConfig()
    parse_apt_conf('A "1";\nB "2" junk;\nC "3";\n', "/etc/apt/apt.conf.d/99x", config, errors)
    assert config.get("A") == ("1", "/etc/apt/apt.conf.d/99x:1") and config.get("C") is None
    assert [e.source for e in errors] == ["/etc/apt/apt.conf.d/99x:2"]


def test_include_is_followed_inside_the_guest(tmp_path: Path) -> None:
    (tmp_path / "etc/apt/apt.conf.d").mkdir(parents=True)
    (tmp_path / "etc/apt/apt.conf.d/99x").write_text('#include "/etc/apt/inc.txt";\n')
    (tmp_path / "etc/apt/inc.txt").write_text('Acquire::AllowInsecureRepositories "true";\n')
    assert read_apt_config(RootReader(str(tmp_path)), []).get(SWITCH) is not None


def test_part_names_apt_reads() -> None:
    names = ["20auto-upgrades", "99x:y", "50x.conf", ".hidden.conf", "x.conf.dpkg-old", "a b", "x~", "y."]
    assert apt_part_names(names, "conf") == ["20auto-upgrades", "50x.conf", "99x:y"]
    assert apt_part_names(["debian security.list", "a+b.list", "ok.list", "x.sources"], "list") == ["ok.list"]


def root(tmp_path: Path, files: dict[str, str]) -> RootReader:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return RootReader(str(tmp_path))


@pytest.mark.parametrize("files", [
    {"etc/apt/sources.list": "deb [trusted=0x1] file:/srv/repo bookworm main\n"},  # strtol base 0
    # a line of blanks does not end a deb822 stanza
    {"etc/apt/sources.list.d/t.sources": "Types: deb\nURIs: file:/srv/repo\nSuites: bookworm\n"
                                         "Components: main\n \nTrusted: yes\n"},
    {"etc/apt/apt.conf.d/99x": 'Dir::Etc::SourceParts "other.d";\n',
     "etc/apt/other.d/t.list": "deb [trusted=yes] http://evil.example/debian bookworm main\n"},
])
def test_trusted_sources_apt_reads(tmp_path: Path, files: dict[str, str]) -> None:
    assert any(r.trusted for r in read_repos(root(tmp_path, files)))


def test_uris_times_suites_is_bounded_before_it_is_built(tmp_path: Path) -> None:
    uris = " ".join(f"http://m{n}.example/debian" for n in range(3000))
    suites = " ".join(f"s{n}" for n in range(3000))
    text = f"Types: deb\nURIs: {uris}\nSuites: {suites}\nComponents: main\n"
    reader = root(tmp_path, {"etc/apt/sources.list.d/x.sources": text})
    errors: list[ReadError] = []
    started = time.process_time()
    read_repos(reader, errors=errors)
    assert time.process_time() - started < 5  # 9 million sources were built before: 7.8 s and 1.4 GB
    assert any("URIs × Suites" in e.reason for e in errors)


LIST_CASES = [
    'Unattended-Upgrade::Origins-Pattern "scalar";',  # the key's own value: no item
    'Binary::apt::Unattended-Upgrade::Origins-Pattern { "bin"; };',  # not in python-apt's tree
    'Unattended-Upgrade::Origins-Pattern { sec "a"; "b"; sec "c"; };\n'
    'Unattended-Upgrade::Origins-Pattern::other "d";',  # named children are items, in first-set order
    'Unattended-Upgrade::Origins-Pattern { "a"; };\n#clear Unattended-Upgrade::Origins-Pattern;\n'
    'Unattended-Upgrade::Origins-Pattern { "b"; };',
    'Unattended-Upgrade::Origins-Pattern::x::y "v"; Unattended-Upgrade::Origins-Pattern { "z"; };',
    'unattended-upgrade::origins-pattern { "lower"; };\n'
    'Unattended-Upgrade { Origins-Pattern { "nested"; }; };',
]


@pytest.mark.parametrize("text", LIST_CASES)
def test_list_items_are_the_children_apt_config_dumps(tmp_path: Path, text: str) -> None:
    """A list as python-apt's ``value_list`` reads it (unattended-upgrades' origins): the values of the
    key's direct children in tree order. `apt-config dump` of the same text (APT_CONFIG pointing at
    it, no other file) is the oracle."""
    require(shutil.which("apt-config"), "apt-config", "apt (every Debian has it)")
    (tmp_path / "parts").mkdir()
    config_file = tmp_path / "apt.conf"
    config_file.write_text(f'Dir::Etc::parts "{tmp_path}/parts";\nDir::Etc::main "/dev/null";\n{text}\n')
    dump = subprocess.run(["apt-config", "dump"], env={**os.environ, "APT_CONFIG": str(config_file)},
                          capture_output=True, text=True, check=True, timeout=30).stdout
    prefix = "unattended-upgrade::origins-pattern::"
    expected = [line.split(" ", 1)[1][1:-2] for line in dump.splitlines()
                if line.lower().startswith(prefix) and "::" not in line.split(" ", 1)[0][len(prefix):]]
    assert [v for v, _o in conf(text).items("Unattended-Upgrade::Origins-Pattern")] == expected


def _chain(n: int) -> dict[str, str]:
    """``00`` includes f1, each fK includes fK+1, up to fN, and fN+1 holds a setting."""
    files = {"parts/00": '#include "{d}/f1";'}
    files |= {f"f{k}": f'#include "{{d}}/f{k + 1}";' for k in range(1, n + 1)}
    return files | {f"f{n + 1}": 'Z "1";'}


REFUSAL_CASES = {
    "plain settings": {"parts/10a": 'A "1";\nB { C "2"; };'},
    "a statement that lost its semicolon": {"parts/10a": 'A "1"\nB "2";'},
    "extra junk at the end of the file": {"parts/10a": 'A "1";\nB "2"'},
    "a block with no name": {"parts/10a": '{ A "1"; };'},
    "a directive inside a block": {"parts/10a": 'A { #clear B; };'},
    "an include of a file that does not exist": {"parts/10a": '#include "{d}/none";'},
    "an include of a directory that does not exist": {"parts/10a": '#include "{d}/nodir/";'},
    "an include of a directory": {"parts/10a": '#include "{d}/inc/";', "inc/x.conf": 'X "1";'},
    "a syntax error in an included file": {"parts/10a": '#include "{d}/bad";', "bad": 'A "1" x;'},
    "includes ten deep": _chain(10),
    "includes eleven deep": _chain(11),
    "a file that includes itself": {"parts/10a": '#include "{d}/self";', "self": '#include "{d}/self";'},
    "an error in a later file": {"parts/10a": 'A "1";', "parts/20b": 'B "2" junk;'},
    # from a review (2026-12-06), each once a disagreement
    "a NUL byte ends its line": {"parts/10a": 'A "1";\0junk junk\nB "2";'},
    "a zero-filled file": {"parts/10a": "\0" * 4096},
    "a NUL inside a quoted value": {"parts/10a": 'A "1\0x";'},
    "adjacent quoted strings of over 1,024 characters": {"parts/10a": 'A "' + "a" * 1020 + '" "b";'},
    "a dangling link in an included directory": {"parts/10a": '#include "{d}/inc/";',
                                                 "inc/x.conf": "-> nowhere", "inc/y.conf": 'Y "1";'},
    "a directory in an included directory": {"parts/10a": '#include "{d}/inc/";', "inc/sub.conf/z": 'Z "1";'},
    "a decoded quote before #include": {"parts/10a": '%22#include "/missing";'},
    "#clear without a tree": {"parts/10a": "#clear;"},
    "a quoted #clear without a tree": {"parts/10a": '"#clear";'},
    "an unknown directive": {"parts/10a": '#includes "x";'},
    "a quoted unknown directive": {"parts/10a": '"#foo" "x";'},
    "an include of a file with a slash": {"parts/10a": '#include "{d}/afile/";', "afile": 'A "1";'},
    "an include of nothing": {"parts/10a": '#include "";'},
    "an include of a link loop": {"parts/10a": '#include "{d}/loop";', "loop": "-> loop"},
}


@pytest.mark.parametrize("files", REFUSAL_CASES.values(), ids=REFUSAL_CASES.keys())
def test_apt_refuses_its_configuration_where_apt_config_does(tmp_path: Path, files: dict[str, str]) -> None:
    """Where apt refuses its configuration, no apt program runs (apt.systemd.daily then runs nothing:
    VMS-GST-076 fails). `apt-config dump` exiting with an error is the oracle; the include paths are the
    real ones, read through a reader of the machine's own root."""
    require(shutil.which("apt-config"), "apt-config", "apt (every Debian has it)")
    (tmp_path / "parts").mkdir()
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if text.startswith("-> "):
            (tmp_path / name).symlink_to(text[3:])
        else:
            (tmp_path / name).write_text(text.replace("{d}", str(tmp_path)) + "\n")
    config_file = tmp_path / "apt.conf"
    config_file.write_text(f'Dir::Etc::parts "{tmp_path}/parts";\nDir::Etc::main "/dev/null";\n')
    apt = subprocess.run(["apt-config", "dump"], env={**os.environ, "APT_CONFIG": str(config_file)},
                         capture_output=True, text=True, check=False, timeout=30)
    config, errors = AptConfig(), []
    budget = [256]
    for name in apt_part_names(os.listdir(tmp_path / "parts"), "conf"):
        path = f"{tmp_path}/parts/{name}"
        text = (tmp_path / "parts" / name).read_text()
        parse_apt_conf(text, path, config, errors, RootReader("/"), 0, budget)
        if config.refused:
            break
    assert bool(config.refused) == (apt.returncode != 0), (config.refused, apt.stderr)
    if config.refused:  # the same place as apt's first error ("Syntax error FILE:LINE: …")
        where = config.refused.split(": ", 1)[0]
        assert errors[0].source == where and f"Syntax error {where}: " in apt.stderr


def test_a_directory_included_as_a_file_is_refused(tmp_path: Path) -> None:
    """``#include "DIR";`` without the slash: apt-config never returns (a review killed it after 20 s),
    so nothing of apt runs — not an oracle case, since it would hang the test."""
    (tmp_path / "etc/apt/apt.conf.d").mkdir(parents=True)
    (tmp_path / "etc/apt/apt.conf.d/10a").write_text('#include "/etc/apt/apt.conf.d";\n')
    config = read_apt_config(RootReader(str(tmp_path)), [])
    assert config.refused.startswith("/etc/apt/apt.conf.d/10a:1: ")


def test_the_parts_may_move_the_main_file(tmp_path: Path) -> None:
    """apt finds /etc/apt/apt.conf after reading apt.conf.d: ``Dir::Etc::main "/dev/null"`` there means a
    broken apt.conf is never read."""
    (tmp_path / "etc/apt/apt.conf.d").mkdir(parents=True)
    (tmp_path / "etc/apt/apt.conf").write_text('A "1" junk;\n')
    assert read_apt_config(RootReader(str(tmp_path)), []).refused.startswith("/etc/apt/apt.conf:1")
    (tmp_path / "etc/apt/apt.conf.d/00main").write_text('Dir::Etc::main "/dev/null";\n')
    assert read_apt_config(RootReader(str(tmp_path)), []).refused == ""
    (tmp_path / "etc/apt/apt.conf.d/00main").write_text('Dir::Etc::main "other.conf";\n')
    (tmp_path / "etc/apt/other.conf").write_text('B "2";\n')
    config = read_apt_config(RootReader(str(tmp_path)), [])
    assert config.refused == "" and config.get("B") == ("2", "/etc/apt/other.conf:1")


def test_a_statement_the_line_cap_cuts_is_unread_not_refused() -> None:
    errors: list[ReadError] = []
    config = AptConfig()
    parse_apt_conf("\n" * (MAX_LINES - 1) + 'A\n"1";\n', "/etc/apt/apt.conf.d/99x", config, errors)
    assert config.refused == "" and errors and "lines" in errors[0].reason
