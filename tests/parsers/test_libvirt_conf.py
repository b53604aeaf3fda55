"""libvirt's virConf syntax, and the defaults libvirt 9.0 applies to qemu.conf and libvirtd.conf."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datapaths import LIBVIRT_CONF as CONF_DIR
from vmsec.errors import ReadError
from vmsec.facts import ConfValue
from vmsec.parsers.libvirt_conf import MAX_CONF_KEYS, ConfParseError, parse_conf
from vmsec.parsers.libvirt_defaults import (
    DAEMON_CONF_DEFAULTS,
    DAEMON_CONF_KEYS,
    DAEMON_CONF_NOT_DEFAULTED,
    QEMU_CONF_DEFAULTS,
    QEMU_CONF_KEYS,
    QEMU_CONF_NOT_DEFAULTED,
    effective_defaults,
    qemu_conf_defaults,
)


def test_values_of_every_type() -> None:
    text = (
        '# a comment\n'
        'vnc_listen = "0.0.0.0"\n'
        "user = 'qemu'   # trailing comment\n"
        "seccomp_sandbox = 0\n"
        "keepalive_interval = -1\n"
        "max_files = +42\n"
        'namespaces = []\n'
        'cgroup_device_acl = [\n'
        '    "/dev/null", "/dev/full",\n'
        '\n'
        '    "/dev/kvm",\n'
        ']\n'
        'a = 1; b = "two"\n'
        'triple = """line one\nline two"""\n'
        'after_triple = 3\n'
    )
    values, lines = parse_conf(text, "qemu.conf")
    assert values == {
        "vnc_listen": "0.0.0.0", "user": "qemu", "seccomp_sandbox": 0, "keepalive_interval": -1,
        "max_files": 42, "namespaces": (), "cgroup_device_acl": ("/dev/null", "/dev/full", "/dev/kvm"),
        "a": 1, "b": "two", "triple": "line one\nline two", "after_triple": 3,
    }
    assert lines["vnc_listen"] == 2
    assert lines["cgroup_device_acl"] == 8
    assert lines["a"] == lines["b"] == 13
    assert lines["after_triple"] == 16  # the triple-quoted string's newline is counted


def test_first_assignment_wins_as_in_virConfGetValue() -> None:
    values, lines = parse_conf('vnc_listen = "127.0.0.1"\n#x\nvnc_listen = "0.0.0.0"\n', "qemu.conf")
    assert values["vnc_listen"] == "127.0.0.1"
    assert lines["vnc_listen"] == 1


def test_keys_are_case_sensitive() -> None:
    values, _ = parse_conf("User = 'a'\nuser = 'b'\n", "qemu.conf")
    assert values == {"User": "a", "user": "b"}


def test_empty_file_and_comment_only_file() -> None:
    assert parse_conf("", "x.conf") == ({}, {})
    assert parse_conf("# only\n#comments\n", "x.conf") == ({}, {})


@pytest.mark.parametrize(("text", "line", "reason"), [
    ('vnc_listen = "0.0.0.0\n', 1, "unterminated string"),
    ("user = 'qemu\nx = 1\n", 1, "unterminated string"),
    ('x = """never closed\n\n\n', 4, "unterminated string"),
    ("\n\nvnc_listen 0.0.0.0\n", 3, "expecting an assignment"),
    ("vnc_listen = 0.0.0.0\n", 1, "expecting a separator"),
    ("vnc_listen = localhost\n", 1, "expecting a value"),
    ('a = "x" "y"\n', 1, "expecting a separator"),
    ("_private = 1\n", 1, "expecting a name"),
    ("1key = 1\n", 1, "expecting a name"),
    ("key-with-dash = 1\n", 1, "expecting an assignment"),
    ("x = -\n", 1, "unterminated number"),
    ('acl = [\n  "/dev/null",\n  # "/dev/kvm",\n]\n', 3, "expecting a value"),
    ('acl = [ "/dev/null" "/dev/kvm" ]\n', 1, "expecting a separator in list"),
    ('acl = [ "/dev/null"\n', 2, "list is not closed"),
    ('acl = [ "/dev/null",\n', 2, "expecting a value"),
    ('acl = [ ["nested"] ]\n', 1, "a list inside a list"),
    ('acl = [ "a", 1 ]\n', 1, "a number inside a list"),
    ("\n", 2, "expecting a name"),  # libvirt itself rejects a file holding only blank lines
    ("x =\n", 1, "expecting a value"),
])
def test_bad_syntax_names_file_and_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(ConfParseError) as info:
        parse_conf(text, "/etc/libvirt/qemu.conf")
    assert info.value.path == "/etc/libvirt/qemu.conf"
    assert info.value.line == line
    assert reason in info.value.reason
    assert isinstance(info.value, ReadError)
    assert str(info.value).startswith(f"/etc/libvirt/qemu.conf:{line}: ")


def test_a_string_ends_at_a_nul_as_g_strndup_cuts_it() -> None:
    # virConfParseString copies the value with g_strndup(): the NUL ends it. A real libvirtd 9.0 read
    # 'auth_unix_rw = "none\0x"' as none (and refused "nonex"), 'user = "root\0x"' as root.
    values, _ = parse_conf('auth_unix_rw = "none\0x"\nuser = \'root\0\'\nt = """a\0b"""\n', "libvirtd.conf")
    assert values == {"auth_unix_rw": "none", "user": "root", "t": "a"}


def test_long_numbers_wrap_as_virConfParseLong_computes_them() -> None:
    # l = l * 10 + digit in a long long, never checked: libvirt loads 2^64 as 0 and 2^64 + 1 as 1
    # (dynamic_ownership = 18446744073709551617 is "1" to a real libvirtd 9.0), so must vmsec.
    values, _ = parse_conf("a = 18446744073709551616\nb = 18446744073709551617\nc = -18446744073709551617\n"
                           "d = 12345678901234567890123\n" f"e = {'9' * 5000}\n", "qemu.conf")
    assert values["a"] == 0 and values["b"] == 1 and values["c"] == -1
    assert values["d"] == 12345678901234567890123 % 2**64
    assert values["e"] == (pow(10, 5000, 2**64) - 1) % 2**64


def test_size_and_key_bounds() -> None:
    with pytest.raises(ConfParseError, match="limit"):
        parse_conf("#" * (1024 * 1024 + 1), "big.conf")
    many = "".join(f"k{i} = {i}\n" for i in range(MAX_CONF_KEYS + 1))
    with pytest.raises(ConfParseError, match="more than 10000 settings"):
        parse_conf(many, "many.conf")
    values, _ = parse_conf("".join(f"k{i} = {i}\n" for i in range(MAX_CONF_KEYS)), "ok.conf")
    assert len(values) == MAX_CONF_KEYS


_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)
# (a NUL ends a string to libvirt: such a value cannot round-trip)
_strings = st.text(st.characters(blacklist_characters="\"\n\r\0", blacklist_categories=["Cs"]), max_size=20)
_values: st.SearchStrategy[ConfValue] = st.one_of(
    st.integers(min_value=-(10**18), max_value=10**18), _strings, st.lists(_strings, max_size=4).map(tuple))


def _render(value: ConfValue) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return f'"{value}"'
    return "[\n  " + ",\n  ".join(f'"{v}"' for v in value) + ",\n]" if value else "[]"


@given(st.dictionaries(_names, _values, max_size=12))
def test_rendered_settings_parse_back(settings: dict[str, ConfValue]) -> None:
    text = "".join(f"# about {k}\n{k} = {_render(v)}   # note\n\n" for k, v in settings.items())
    values, _ = parse_conf(text, "gen.conf")
    assert values == settings


# --- libvirt 9.0's own configuration files (tests/data/libvirt-9.0.0/conf) ------------------------


def _template(name: str) -> str:
    # libvirtd.conf is meson's template: @CUT_ENABLE_IP@/@END@ lines are removed at build time.
    text = (CONF_DIR / name).read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if line not in ("@CUT_ENABLE_IP@", "@END@")) + "\n"


def _commented_examples(text: str) -> dict[str, ConfValue]:
    """Every ``#key = value`` example, uncommented and parsed (lists may span commented lines)."""
    examples: dict[str, ConfValue] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"#([a-z][a-z0-9_]*)\s*=", line)
        if not match:
            continue
        block = [line[1:]]
        if "[" in line and "]" not in line:
            for follow in lines[i + 1:]:
                block.append(follow[1:])
                if "]" in follow:
                    break
        values, _ = parse_conf("\n".join(block) + "\n", f"example of {match.group(1)}")
        examples.setdefault(match.group(1), values[match.group(1)])
    return examples


@pytest.mark.parametrize(("name", "keys", "not_defaulted"), [
    ("qemu.conf", QEMU_CONF_KEYS, QEMU_CONF_NOT_DEFAULTED),
    ("libvirtd.conf", DAEMON_CONF_KEYS, DAEMON_CONF_NOT_DEFAULTED),
])
def test_every_documented_key_is_defaulted_or_deliberately_not(
        name: str, keys: dict[str, ConfValue | None], not_defaulted: frozenset[str]) -> None:
    text = _template(name)
    assert parse_conf(text, name) == ({}, {})  # the shipped file sets nothing
    examples = _commented_examples(text)
    assert len(examples) > 40
    missing = sorted(set(examples) - set(keys) - not_defaulted)
    assert not missing, f"{name}: keys with neither a default nor a reason: {missing}"
    assert not set(keys) & not_defaulted


# Keys whose example has another type than the effective default, on purpose.
_TYPE_EXCEPTIONS = {
    "max_core",  # default 0 (bytes); the example is the string "unlimited"
    "hugetlbfs_mount",
}


@pytest.mark.parametrize(("name", "defaults"), [("qemu.conf", QEMU_CONF_DEFAULTS),
                                                ("libvirtd.conf", DAEMON_CONF_DEFAULTS)])
def test_default_types_match_the_documented_examples(name: str, defaults: dict[str, ConfValue]) -> None:
    for key, example in _commented_examples(_template(name)).items():
        if key in defaults and key not in _TYPE_EXCEPTIONS:
            assert type(defaults[key]) is type(example), (key, defaults[key], example)


@pytest.mark.parametrize(("key", "value"), [
    ("vnc_listen", "127.0.0.1"), ("spice_listen", "127.0.0.1"), ("vnc_tls", 0), ("vnc_tls_x509_verify", 0),
    ("chardev_tls_x509_verify", 1), ("migrate_tls_x509_verify", 1), ("backup_tls_x509_verify", 1),
    ("security_default_confined", 1), ("security_require_confined", 0), ("seccomp_sandbox", 1),
    ("dynamic_ownership", 1), ("remember_owner", 1), ("namespaces", ("mount",)), ("stdio_handler", "logd"),
    ("migrate_tls_force", 0), ("dump_guest_core", 0), ("max_core", 0), ("relaxed_acs_check", 0),
    ("sched_core", "none"), ("auto_dump_path", "/var/lib/libvirt/qemu/dump"),
    ("memory_backing_dir", "/var/lib/libvirt/qemu/ram"), ("clear_emulator_capabilities", 1),
    ("allow_disk_format_probing", 0), ("deprecation_behavior", "none"), ("migration_address", "0.0.0.0"),
])
def test_qemu_defaults(key: str, value: ConfValue) -> None:
    assert QEMU_CONF_DEFAULTS[key] == value


@pytest.mark.parametrize("key", ["vnc_password", "spice_password", "security_driver", "migration_host",
                                 "capability_filters", "lock_manager", "default_tls_x509_verify"])
def test_qemu_keys_without_a_value(key: str) -> None:
    assert key in QEMU_CONF_KEYS and QEMU_CONF_KEYS[key] is None
    assert key not in QEMU_CONF_DEFAULTS


@pytest.mark.parametrize(("key", "value"), [
    ("listen_tls", 1), ("listen_tcp", 0), ("tcp_port", "16509"), ("tls_port", "16514"), ("auth_tcp", "sasl"),
    ("auth_tls", "none"), ("auth_unix_rw", "polkit"), ("auth_unix_ro", "polkit"), ("unix_sock_group", "root"),
    ("unix_sock_ro_perms", "0777"), ("unix_sock_rw_perms", "0777"), ("unix_sock_admin_perms", "0700"),
    ("unix_sock_dir", "/run/libvirt"), ("tls_no_verify_certificate", 0), ("tls_no_sanity_certificate", 0),
    ("access_drivers", ("none",)), ("key_file", "/etc/pki/libvirt/private/serverkey.pem"),
    ("cert_file", "/etc/pki/libvirt/servercert.pem"), ("ca_file", "/etc/pki/CA/cacert.pem"),
    ("audit_level", 1), ("audit_logging", 0), ("log_level", 3), ("max_clients", 5000),
    ("tls_priority", "NORMAL"),
])
def test_daemon_defaults(key: str, value: ConfValue) -> None:
    assert DAEMON_CONF_DEFAULTS[key] == value


@pytest.mark.parametrize("key", ["listen_addr", "crl_file", "tls_allowed_dn_list",
                                 "sasl_allowed_username_list", "log_outputs", "log_filters"])
def test_daemon_keys_without_a_value(key: str) -> None:
    assert key in DAEMON_CONF_KEYS and DAEMON_CONF_KEYS[key] is None


def test_tls_verify_inherits_default_tls_x509_verify() -> None:
    table = effective_defaults(QEMU_CONF_DEFAULTS, {"default_tls_x509_verify": 1})
    assert table["vnc_tls_x509_verify"] == 1
    table = effective_defaults(QEMU_CONF_DEFAULTS, {"default_tls_x509_verify": 0})
    assert table["chardev_tls_x509_verify"] == table["migrate_tls_x509_verify"] == 0
    assert effective_defaults(QEMU_CONF_DEFAULTS, {})["vnc_tls_x509_verify"] == 0


def test_rw_socket_perms_widen_for_polkit_and_never_narrow() -> None:
    def rw_perms(auth: str) -> ConfValue:
        return effective_defaults(DAEMON_CONF_DEFAULTS, {"auth_unix_rw": auth})["unix_sock_rw_perms"]

    # daemonConfigNew() sets the mode from the compiled-in auth (polkit: 0777) before the file is read;
    # the file's auth_unix_rw only ever widens it. A real libvirtd 9.0 with just auth_unix_rw = "none"
    # made its read-write socket srwxrwxrwx, and any local user managed every VM.
    assert rw_perms("none") == "0777"
    assert rw_perms("sasl") == "0777"
    assert rw_perms("polkit") == "0777"
    assert effective_defaults({**DAEMON_CONF_DEFAULTS, "unix_sock_rw_perms": "0700"},
                              {"auth_unix_rw": "polkit"})["unix_sock_rw_perms"] == "0777"
    # qemu.conf has no such key, so nothing is added to its table
    assert "unix_sock_rw_perms" not in effective_defaults(QEMU_CONF_DEFAULTS, {"auth_unix_rw": "none"})


@pytest.mark.parametrize(("ids", "user", "group"), [
    (("debian",), "libvirt-qemu", "libvirt-qemu"),
    (("ubuntu", "debian"), "libvirt-qemu", "kvm"),
    (("linuxmint", "ubuntu", "debian"), "libvirt-qemu", "kvm"),
    (("rocky", "rhel", "centos", "fedora"), "qemu", "qemu"),
    (("opensuse-leap", "suse", "opensuse"), "qemu", "qemu"),
])
def test_qemu_account_follows_the_distribution(ids: tuple[str, ...], user: str, group: str) -> None:
    table = qemu_conf_defaults(ids, accounts={"root"}, groups={"root"})
    assert (table["user"], table["group"]) == (user, group)


def test_unknown_distribution_leaves_the_qemu_account_unknown() -> None:
    table = qemu_conf_defaults(("plan9",), accounts={"root"}, groups={"root"})
    assert "user" not in table and "group" not in table
    assert "user" not in qemu_conf_defaults((), accounts=None, groups=None)


def test_swtpm_account_depends_on_tss() -> None:
    assert qemu_conf_defaults(("debian",), accounts={"root", "tss"}, groups={"tss"})["swtpm_user"] == "tss"
    without = qemu_conf_defaults(("debian",), accounts={"root"}, groups={"root"})
    assert (without["swtpm_user"], without["swtpm_group"]) == ("root", "root")
    assert "swtpm_user" not in qemu_conf_defaults(("debian",), accounts=None, groups=None)


@pytest.mark.parametrize("name", ["qemu.conf", "libvirtd.conf"])
def test_every_documented_example_is_a_value_libvirt_loads(name: str) -> None:
    """The loaders' type table (parsers/libvirt_loaders.py) against libvirt's own examples: each
    ``#key = value`` of the shipped file, uncommented, is a value libvirt accepts."""
    from vmsec.parsers.libvirt_loaders import DAEMON_CONF_TYPES, QEMU_CONF_TYPES, refusal

    # (meson fills @default_auth@ with the build's auth: polkit on Debian)
    examples = _commented_examples(_template(name).replace("@default_auth@", "polkit"))
    refused = {key: why for key, value in examples.items()
               if (why := refusal({key: value}, {key: 1}, name)) is not None}
    assert refused == {}
    types = QEMU_CONF_TYPES if name == "qemu.conf" else DAEMON_CONF_TYPES
    assert len(set(examples) & set(types)) > 40  # the table covers what the file documents


def test_a_list_of_anything_under_a_key_libvirt_never_reads_is_no_error() -> None:
    # virconf.c parses nested lists and numbers in lists; only virConfGetValueStringList refuses them,
    # for the keys libvirt reads. A real libvirtd 9.0 loaded 'zz = [ 1 ]' and 'zz = [ [ "a" ] ]'.
    text = 'zz = [ 1, [ "a", [ 2 ] ] ]\nuser = "root"\n'
    values, lines = parse_conf(text, "qemu.conf", reads=frozenset({"user", "namespaces"}))
    assert values == {"user": "root"} and lines == {"user": 2}
    with pytest.raises(ConfParseError, match="list of strings"):
        parse_conf('namespaces = [ 1 ]\n', "qemu.conf", reads=frozenset({"namespaces"}))
    with pytest.raises(ConfParseError, match="nested"):
        parse_conf("zz = " + "[" * 100 + "]" * 100 + "\n", "qemu.conf", reads=frozenset())
