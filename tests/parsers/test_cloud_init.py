"""cloud-init: cloud.cfg + cloud.cfg.d merged in order, user data on top, plaintext passwords named by
place (never by value), and hostile YAML refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, ParseError, Problems, ReadError
from vmsec.parsers.cloud_init import (
    cloud_config_parts,
    load_cloud_config,
    merge,
    plaintext_password_places,
    read_cloud_init,
)

GUESTS = Path(__file__).resolve().parents[1] / "data" / "guests"


def ci_root(root: Path, files: dict[str, str]) -> RootReader:
    for name, text in files.items():
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return RootReader(str(root))


def test_checked_in_debian_root() -> None:
    setup = read_cloud_init(RootReader(str(GUESTS / "debian12")))
    assert setup.present is True
    assert setup.ssh_pwauth is True  # cloud.cfg says false; 50-lab.cfg (later) says true; README ignored
    assert setup.disable_root is True
    assert setup.origins[:2] == ("/etc/cloud/cloud.cfg", "/etc/cloud/cloud.cfg.d/50-lab.cfg")
    # the instance link and instances/<id> hold the same user data: read once
    assert len(setup.plaintext_passwords) == 1
    assert setup.plaintext_passwords[0].endswith("user-data.txt: chpasswd.users (alice)")
    assert "Winter2024" not in repr(setup)


def test_absent_cloud_init(tmp_path: Path) -> None:
    assert read_cloud_init(RootReader(str(tmp_path))).present is False


def test_merge_is_recursive_and_later_wins() -> None:
    merged = merge({"a": {"x": 1, "y": 2}, "l": [1]}, {"a": {"y": 3}, "l": [2]})
    assert merged == {"a": {"x": 1, "y": 3}, "l": [2]}


@pytest.mark.parametrize(("config", "places"), [
    ({"password": "passw0rd"}, ["f: password (default user)"]),
    ({"password": "$6$salt$hash"}, []),
    ({"chpasswd": {"list": "root:secret\nbob:RANDOM\ndan:$6$s$h\n"}}, ["f: chpasswd.list (root)"]),
    # cc_set_passwords hands only $1$, $2a$, $2y$, $5$ and $6$ to chpasswd -e: a yescrypt hash, or one
    # with a ":" in it, becomes the password itself, readable in the user data.
    ({"chpasswd": {"list": ["carl:$y$j9T$a$b", "ed:$6$s$h:x"]}},
     ["f: chpasswd.list (carl; a hash cloud-init does not recognise, set as the password itself)",
      "f: chpasswd.list (ed; a hash cloud-init does not recognise, set as the password itself)"]),
    ({"password": "$y$j9T$a$b"},
     ["f: password (default user; a hash cloud-init does not recognise, set as the password itself)"]),
    # YAML scalars of every type are passwords to cloud-init (get_cfg_option_str, "%s:%s").
    ({"password": 12345678}, ["f: password (default user)"]),
    ({"password": 1234.5}, ["f: password (default user)"]),
    ({"password": True}, ["f: password (default user)"]),
    ({"password": ""}, []),
    ({"password": None}, ["f: password (default user; empty: cloud-init sets the password 'None')"]),
    ({"password": ["a"]}, ["f: password (default user; not text: cloud-init sets its text form)"]),
    # Every form ug_util.normalize_users_groups takes: a mapping of names, the "user" override, the
    # distribution's default user, hyphenated keys; only a true plain_text_passwd is set.
    ({"users": {"alice": {"plain_text_passwd": "pw"}, "bob": True}},
     ["f: users[].plain_text_passwd (alice)"]),
    ({"user": {"name": "ops", "plain_text_passwd": 4321}}, ["f: users[].plain_text_passwd (ops)"]),
    ({"system_info": {"default_user": {"name": "debian", "plain_text_passwd": "pw"}}},
     ["f: users[].plain_text_passwd (debian)"]),
    ({"users": [{"name": "h", "plain-text-passwd": "pw"}]}, ["f: users[].plain_text_passwd (h)"]),
    # ...but the default user's settings are merged after that step: a hyphen there is never read.
    ({"system_info": {"default_user": {"name": "debian", "plain-text-passwd": "pw"}}}, []),
    ({"users": [{"name": "z", "plain_text_passwd": False}, {"name": "y", "plain_text_passwd": ""}]}, []),
    ({"chpasswd": {"list": ["eve:pw"]}}, ["f: chpasswd.list (eve)"]),
    ({"chpasswd": {"users": [{"name": "a", "password": "x", "type": "text"},
                             {"name": "b", "password": "$6$s$h"},
                             {"name": "c", "type": "RANDOM"}]}}, ["f: chpasswd.users (a)"]),
    ({"users": ["default", {"name": "u", "plain_text_passwd": "pw"}, {"name": "v", "passwd": "$6$s$h"},
                {"name": "w", "passwd": "notahash"}]},
     ["f: users[].plain_text_passwd (u)", "f: users[].passwd is not a crypt hash (w)"]),
])
def test_plaintext_password_places(config: dict[str, object], places: list[str]) -> None:
    assert plaintext_password_places(config, "f") == places


def test_user_data_overrides_files_and_mime_parts_are_read(tmp_path: Path) -> None:
    mime = ('Content-Type: multipart/mixed; boundary="XX"\nMIME-Version: 1.0\n\n--XX\n'
            'Content-Type: text/cloud-config; charset="us-ascii"\n\n#cloud-config\nssh_pwauth: false\n'
            "disable_root: false\npassword: hunter2\n--XX\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n"
            "echo hi\n--XX--\n")
    reader = ci_root(tmp_path, {"/etc/cloud/cloud.cfg": "ssh_pwauth: true\n",
                                "/var/lib/cloud/instances/i-1/user-data.txt": mime})
    setup = read_cloud_init(reader)
    assert (setup.ssh_pwauth, setup.disable_root) == (False, False)
    assert setup.plaintext_passwords == (
        "/var/lib/cloud/instances/i-1/user-data.txt: password (default user)",)


def test_unchanged_pwauth_is_unknown() -> None:
    assert load_cloud_config("ssh_pwauth: unchanged\n") == {"ssh_pwauth": "unchanged"}


def test_shell_user_data_has_no_cloud_config() -> None:
    assert cloud_config_parts("#!/bin/sh\necho hi\n") == []


def test_a_config_file_that_is_not_valid_yaml_is_skipped_as_cloud_init_skips_it(tmp_path: Path) -> None:
    # cloud-init's util.load_yaml logs "Failed loading yaml blob" and returns its default ({}): the
    # other files still apply. What the skipped file holds is unknown (a password?): listed apart.
    reader = ci_root(tmp_path, {"/etc/cloud/cloud.cfg": "ssh_pwauth: true\n",
                                "/etc/cloud/cloud.cfg.d/50-broken.cfg": "ssh_pwauth: [unclosed\n",
                                "/etc/cloud/cloud.cfg.d/60-list.cfg": "- a\n- b\n",
                                "/etc/cloud/cloud.cfg.d/90-root.cfg": "disable_root: false\n"})
    problems = Problems()
    setup = read_cloud_init(reader, problems=problems)
    assert (setup.ssh_pwauth, setup.disable_root) == (True, False)
    assert [u.split(": ", 1)[0] for u in setup.unparsed] == ["/etc/cloud/cloud.cfg.d/50-broken.cfg",
                                                             "/etc/cloud/cloud.cfg.d/60-list.cfg"]
    assert "not valid YAML" in setup.unparsed[0] and "not a mapping" in setup.unparsed[1]
    assert len(problems) == 2
    assert "/etc/cloud/cloud.cfg.d/50-broken.cfg" not in setup.origins


def test_an_unreadable_config_file_is_still_an_error(tmp_path: Path) -> None:
    reader = ci_root(tmp_path, {"/etc/cloud/cloud.cfg": "{}\n"})
    (tmp_path / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    os.mkfifo(tmp_path / "etc/cloud/cloud.cfg.d/fifo.cfg")
    with pytest.raises(ReadError, match=r"fifo\.cfg"):
        read_cloud_init(reader)


@pytest.mark.parametrize(("setting", "where", "applied"), [
    (None, None, True),  # cloud-init's built-in default: enabled
    ("vendor_data: {enabled: false}", "cfg", False),
    ("vendor_data: {enabled: false}", "user", False),
    ("vendor_data: {enabled: 'no'}", "cfg", False),
    ("vendor_data: {enabled: 'yes'}", "cfg", True),
    ("vendor_data: {enabled: 1}", "cfg", True),
    ("vendor_data: {prefix: []}", "cfg", True),  # merged over the built-in {enabled: true}
    ("vendor_data: false", "cfg", False),  # not a mapping: "invalid vendor_data setting", disabled
    ("vendor_data: {enabled: false}", "vendor", True),  # vendor data cannot switch itself off
])
def test_vendor_data_applies_only_when_the_rest_enables_it(tmp_path: Path, setting: str | None,
                                                            where: str | None, applied: bool) -> None:
    """stages.Init._consume_vendordata (cloud-init 22.4): the configuration merged without vendor
    data decides; util.is_true of vendor_data.enabled."""
    root = tmp_path / "guest"
    line = f"{setting}\n" if setting else ""
    instance = "/var/lib/cloud/instances/i-1"
    files = {"/etc/cloud/cloud.cfg": line if where == "cfg" else "{}\n",
             f"{instance}/user-data.txt": "#cloud-config\n" + (line if where == "user" else ""),
             f"{instance}/vendor-data.txt":
                 "#cloud-config\nssh_pwauth: true\npassword: hunter2\n" + (line if where == "vendor" else "")}
    reader = ci_root(root, files)
    (root / "var/lib/cloud/instance").symlink_to("instances/i-1")
    setup = read_cloud_init(reader)
    assert setup.ssh_pwauth is (True if applied else None)
    assert setup.vendor_data_disabled is (not applied)
    # stored on disk whether applied or not: still a plaintext password
    assert setup.plaintext_passwords == ("/var/lib/cloud/instance/vendor-data.txt: password (default user)",)


def test_python_tags_are_refused() -> None:
    with pytest.raises(ParseError) as info:
        load_cloud_config("x: !!python/object/apply:os.system ['true']\n", "/etc/cloud/cloud.cfg")
    assert (info.value.kind, info.value.path) == (ErrorKind.INVALID, "/etc/cloud/cloud.cfg")


def test_alias_bomb_is_bounded(tmp_path: Path) -> None:
    lines = ["a0: &a0 {k: v}"]
    for i in range(1, 30):
        lines.append(f"a{i}: &a{i} {{x: *a{i - 1}, y: *a{i - 1}}}")
    reader = ci_root(tmp_path, {"/etc/cloud/cloud.cfg": "ssh_pwauth: true\n",
                                "/etc/cloud/cloud.cfg.d/90-bomb.cfg": "\n".join(lines) + "\n",
                                "/etc/cloud/cloud.cfg.d/95-bomb.cfg": "\n".join(lines) + "\n"})
    with pytest.raises(ReadError, match="more than"):
        read_cloud_init(reader)


def test_unreadable_user_data_is_noted(tmp_path: Path) -> None:
    reader = ci_root(tmp_path, {"/etc/cloud/cloud.cfg": "disable_root: true\n"})
    (tmp_path / "var/lib/cloud/instance").mkdir(parents=True)
    import os
    os.mkfifo(tmp_path / "var/lib/cloud/instance/user-data.txt")
    notes = Problems()
    setup = read_cloud_init(reader, problems=notes)
    assert setup.disable_root is True
    assert [(n.source, n.kind) for n in notes] == [("/var/lib/cloud/instance/user-data.txt",
                                                   ErrorKind.NOT_REGULAR)]


@pytest.mark.parametrize("body", ["#cloud-config\nx: 2001-13-45\n", "#cloud-config\nx: " + "9" * 5000 + "\n"])
def test_user_data_python_cannot_hold_is_an_error_naming_the_user_data(tmp_path: Path, body: str) -> None:
    # A date that does not exist or an integer of thousands of digits raised ValueError: the whole
    # cloud-init fact became UNKNOWN, blamed on /etc/cloud/cloud.cfg.
    reader = ci_root(tmp_path, {"/etc/cloud/cloud.cfg": "ssh_pwauth: false\n",
                                "/var/lib/cloud/instance/user-data.txt": body})
    problems = Problems()
    setup = read_cloud_init(reader, problems=problems)
    assert setup.ssh_pwauth is False and setup.origins == ("/etc/cloud/cloud.cfg",)
    assert [p.source for p in problems] == ["/var/lib/cloud/instance/user-data.txt"]
    assert "not valid YAML" in problems[0].reason


def test_mime_nested_deeper_than_email_walks_is_an_error_naming_the_user_data(tmp_path: Path) -> None:
    nested = "".join(f'Content-Type: multipart/mixed; boundary="B{i}"\n\n--B{i}\n' for i in range(2000))
    reader = ci_root(tmp_path, {"/etc/cloud/cloud.cfg": "ssh_pwauth: false\n",
                                "/var/lib/cloud/instance/user-data.txt": "MIME-Version: 1.0\n" + nested})
    problems = Problems()
    setup = read_cloud_init(reader, problems=problems)
    assert setup.ssh_pwauth is False
    assert [(p.source, p.reason) for p in problems] == [
        ("/var/lib/cloud/instance/user-data.txt", "MIME multipart nested too deeply to read")]


# --- as cloud-init 22.4.2 (Debian 12) applies it: a review ran its own merging and modules ---------

@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("'on'", True), ("0", False), ("unchanged", None), ("null", None), ("y", None)])
def test_ssh_pwauth_is_read_as_cc_set_passwords_reads_it(tmp_path: Path, value: str,
                                                          expected: bool | None) -> None:
    setup = read_cloud_init(ci_root(tmp_path, {"/etc/cloud/cloud.cfg": f"ssh_pwauth: {value}\n"}))
    assert setup.ssh_pwauth is expected


@pytest.mark.parametrize(("value", "expected"), [
    ("", False), ("0", False), ("2", False), ("n", False), ("unchanged", False), ("'yes'", True),
    ("1", True), ("true", True)])
def test_disable_root_is_read_as_cc_ssh_reads_it(tmp_path: Path, value: str, expected: bool) -> None:
    # translate_bool: anything set that is not a true value turns root logins with the keys on
    setup = read_cloud_init(ci_root(tmp_path, {"/etc/cloud/cloud.cfg.d/90-x.cfg": f"disable_root: {value}\n",
                                               "/etc/cloud/cloud.cfg": "{}\n"}))
    assert setup.disable_root is expected


def test_the_current_instance_user_data_outranks_vendor_data_and_old_instances(tmp_path: Path) -> None:
    root = tmp_path / "guest"
    new = "/var/lib/cloud/instances/i-new"
    reader = ci_root(root, {
        "/etc/cloud/cloud.cfg": "ssh_pwauth: false\n",
        f"{new}/user-data.txt": "#cloud-config\nssh_pwauth: true\ndisable_root: false\n",
        f"{new}/vendor-data.txt": "#cloud-config\nssh_pwauth: false\ndisable_root: true\n",
        "/var/lib/cloud/instances/i-old/user-data.txt": "#cloud-config\nssh_pwauth: false\n"})
    (root / "var/lib/cloud/instance").symlink_to("/var/lib/cloud/instances/i-new")
    setup = read_cloud_init(reader)
    assert (setup.ssh_pwauth, setup.disable_root) == (True, False)


def test_the_applied_cloud_config_is_read(tmp_path: Path) -> None:
    # cloud-config.txt is what cloud-init made of the user data (a template, gzip, an archive) and
    # applies; the remediation "remove user-data.txt" leaves it behind
    root = tmp_path / "guest"
    reader = ci_root(root, {"/etc/cloud/cloud.cfg": "{}\n",
                            "/var/lib/cloud/instances/i-1/cloud-config.txt":
                                "#cloud-config\nssh_pwauth: true\npassword: hunter2\n"})
    (root / "var/lib/cloud/instance").symlink_to("instances/i-1")
    setup = read_cloud_init(reader)
    assert setup.ssh_pwauth is True
    assert setup.plaintext_passwords == ("/var/lib/cloud/instance/cloud-config.txt: password (default user)",)
