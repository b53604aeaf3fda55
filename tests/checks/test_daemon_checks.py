"""libvirt daemon checks (VMS-DMN-001…013): listeners, sockets, ACL, files, audit and logs.

ConfigFiles are built here with the defaults libvirt documents in libvirtd.conf (9.0) for the keys
these checks read: listen_tcp 0, listen_tls 1 (honoured only with --listen), auth_tcp "sasl",
auth_tls "none", auth_unix_rw/auth_unix_ro "polkit" (polkit builds), unix_sock_rw_perms "0770",
unix_sock_ro_perms "0777", unix_sock_admin_perms "0700", tls_no_*_certificate 0, tcp_min_ssf 112,
audit_level 1, log_level 3; unix_sock_group, access_drivers, tls_allowed_dn_list and log_outputs
have no default value.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from components import require
from vmsec.checks.api import Environment, Result
from vmsec.checks.catalog import default_catalog
from vmsec.checks.daemon import audit, local_access, remote
from vmsec.collectors.host import collect_host_inventory
from vmsec.engine import run_checks
from vmsec.facts import (
    ConfigFile,
    ConfValue,
    FileKind,
    FileStat,
    Host,
    Inventory,
    PolkitRule,
    SocketUnit,
    TlsFile,
)
from vmsec.findings import Severity, Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN

DAEMON_DEFAULTS: Mapping[str, ConfValue] = {
    "listen_tcp": 0, "listen_tls": 1, "auth_tcp": "sasl", "auth_tls": "none",
    "auth_unix_rw": "polkit", "auth_unix_ro": "polkit", "unix_sock_rw_perms": "0770",
    "unix_sock_ro_perms": "0777", "unix_sock_admin_perms": "0700", "tls_no_verify_certificate": 0,
    "tls_no_sanity_certificate": 0, "tcp_min_ssf": 112, "audit_level": 1, "log_level": 3,
}


def conf(name: str = "libvirtd.conf", readable: bool = True, **values: ConfValue) -> ConfigFile:
    return ConfigFile(path=f"/etc/libvirt/{name}", present=True if readable else None,
                      values=values, lines={k: i + 10 for i, k in enumerate(values)},
                      defaults=DAEMON_DEFAULTS, error=None if readable else "permission denied")


def unit(name: str, enabled: bool | None = True, mode: int | None = None,
         group: str | None = None, problem: str | None = None) -> SocketUnit:
    return SocketUnit(name=name, path=f"/usr/lib/systemd/system/{name}", enabled=enabled,
                      socket_mode=mode, socket_group=group, problem=problem)


# A drop-in that could not be read (it may set SocketMode=0666 or SocketGroup=)
UNREAD = "/etc/systemd/system/x.socket.d/50-mode.conf could not be read"


def mk(*confs: ConfigFile, **kw: Any) -> Host:
    by_name = {c.path.rsplit("/", 1)[-1]: c for c in confs}
    kw.setdefault("socket_units", ())
    return Host(name="h", root="/", live=True, libvirtd_conf=by_name.get("libvirtd.conf"),
                virtqemud_conf=by_name.get("virtqemud.conf"),
                virtproxyd_conf=by_name.get("virtproxyd.conf"), **kw)


def run(func: Callable[..., Iterator[Result]], h: Host, **params: Any) -> list[Result]:
    if len(inspect.signature(func).parameters) == 2:
        return list(func(h, Environment(inventory=Inventory(host=h), host=h, params=params)))
    return list(func(h))


def statuses(results: list[Result]) -> list[Status]:
    return [r.status for r in results]


ACTIVATED = (unit("libvirtd.socket"),)

# --- VMS-DMN-001 ------------------------------------------------------------------------------


@pytest.mark.parametrize(("c", "units", "expected"), [
    (conf(), (), P),                                            # defaults: no TCP, SASL anyway
    (conf(listen_tcp=1, auth_tcp="none"), (), F),
    (conf(listen_tcp=0, auth_tcp="none"), (), P),
    (conf(listen_tcp=0, auth_tcp="none"), None, U),             # units unreadable
    (conf(auth_tcp="none"), (*ACTIVATED, unit("libvirtd-tcp.socket")), F),
    (conf(listen_tcp=1, auth_tcp="none"), (*ACTIVATED, unit("libvirtd-tcp.socket", False)), P),
    (conf(listen_tcp=1, auth_tcp="sasl"), (), P),
    (conf(readable=False), (), U),
])
def test_tcp_requires_auth(c: ConfigFile, units: tuple[SocketUnit, ...] | None,
                           expected: Status) -> None:
    [result] = run(remote.tcp_requires_auth, mk(c, socket_units=units))
    assert result.status is expected
    assert result.subject == "libvirtd.conf auth_tcp"


def test_tcp_without_auth_message_cites_values() -> None:
    [result] = run(remote.tcp_requires_auth, mk(conf(listen_tcp=1, auth_tcp="none")))
    assert 'listen_tcp = 1 (libvirtd.conf:10) and auth_tcp = "none" (libvirtd.conf:11)' in result.message
    assert result.evidence[0].source == "/etc/libvirt/libvirtd.conf:11"


def test_modular_daemons_each_checked_and_virtqemud_has_no_tcp() -> None:
    h = mk(conf("virtproxyd.conf", listen_tcp=1, auth_tcp="none"), conf("virtqemud.conf"))
    assert [(r.subject, r.status) for r in run(remote.tcp_requires_auth, h)] == [
        ("virtproxyd.conf auth_tcp", F)]


def test_no_daemon_conf_is_not_applicable() -> None:
    assert run(remote.tcp_requires_auth, mk()) == []


# --- VMS-DMN-002 ------------------------------------------------------------------------------

@pytest.mark.parametrize(("c", "mech", "expected"), [
    (conf(listen_tcp=1), "gssapi", [P]),
    (conf(listen_tcp=1), "digest-md5 gssapi", [F]),
    (conf(listen_tcp=1), "scram-sha-256", [P]),               # tcp_min_ssf 112 refuses it
    (conf(listen_tcp=1, tcp_min_ssf=0), "scram-sha-256", [F]),
    (conf(listen_tcp=1), None, [U]),
    (conf(listen_tcp=0), "digest-md5", []),                   # no TCP listener
    (conf(listen_tcp=1, auth_tcp="none"), "digest-md5", []),  # not SASL (VMS-DMN-001)
])
def test_sasl_mechanisms(c: ConfigFile, mech: str | None, expected: list[Status]) -> None:
    sasl = {"libvirt": {"mech_list": mech}} if mech else {}
    assert statuses(run(remote.sasl_mechanisms, mk(c, sasl_configs=sasl))) == expected


# --- VMS-DMN-003 ------------------------------------------------------------------------------

def test_tls_explicit_listener_without_dn_list() -> None:
    results = run(remote.tls_client_verification, mk(conf(listen_tls=1)))
    assert [(r.subject, r.status) for r in results] == [
        ("libvirtd.conf tls_no_verify_certificate", P),
        ("libvirtd.conf tls_no_sanity_certificate", P),
        ("libvirtd.conf tls_allowed_dn_list", F),
    ]
    assert results[2].severity is Severity.MEDIUM


@pytest.mark.parametrize(("c", "expected"), [
    (conf(tls_no_verify_certificate=1, tls_allowed_dn_list=("CN=admin",)), [F, P, P]),
    (conf(listen_tls=1, tls_no_sanity_certificate=1, auth_tls="sasl"), [P, F, P]),
    (conf(listen_tls=0), []),
    # listen_tls = 1 only by default: libvirtd listens only with --listen, so an absent DN list is
    # not reported, while explicit bad settings still are.
    (conf(), [P, P]),
    (conf(tls_no_verify_certificate=1), [F, P]),
    (conf("virtproxyd.conf"), [P, P, F]),  # virtproxyd needs no --listen
])
def test_tls_client_verification(c: ConfigFile, expected: list[Status]) -> None:
    assert statuses(run(remote.tls_client_verification, mk(c))) == expected


def test_tls_listener_from_socket_unit() -> None:
    h = mk(conf(listen_tls=0, tls_no_verify_certificate=1),
           socket_units=(*ACTIVATED, unit("libvirtd-tls.socket")))
    assert statuses(run(remote.tls_client_verification, h))[0] is F


# --- VMS-DMN-004 ------------------------------------------------------------------------------

def tls(role: str, mode: int, uid: int = 0, group: str = "root", gid: int = 0) -> TlsFile:
    return TlsFile(role=role, stat=FileStat(path=f"/etc/pki/{role.replace(' ', '-')}.pem", exists=True,
                                            kind=FileKind.FILE, mode=mode, uid=uid, gid=gid,
                                            owner="root" if uid == 0 else "bob", group=group))


@pytest.mark.parametrize(("files", "expected"), [
    ((tls("libvirtd server key", 0o600),), [P]),
    ((tls("libvirtd server key", 0o644),), [F]),
    ((tls("qemu server key", 0o640, group="qemu", gid=107),), [P]),
    ((tls("libvirtd server key", 0o640, group="users", gid=100),), [F]),
    ((tls("libvirtd server key", 0o600, uid=1000),), [F]),
    ((tls("libvirtd server cert", 0o644),), [P]),
    ((tls("libvirtd server cert", 0o666),), [F]),
    ((TlsFile(role="libvirtd server key", stat=FileStat(path="/k", exists=None, error="EIO")),), [U]),
    ((TlsFile(role="libvirtd server key", stat=FileStat(path="/k", exists=False)),), []),
])
def test_tls_key_permissions(files: tuple[TlsFile, ...], expected: list[Status]) -> None:
    assert statuses(run(remote.tls_key_permissions, mk(conf(), tls_files=files))) == expected


# --- VMS-DMN-005 ------------------------------------------------------------------------------

@pytest.mark.parametrize(("c", "units", "expected"), [
    (conf(), (), P),                                                       # polkit
    (conf(auth_unix_rw="none"), (), P),                                    # 0770
    (conf(auth_unix_rw="none", unix_sock_rw_perms="0777"), (), F),
    (conf(auth_unix_rw="none"), (unit("libvirtd.socket", mode=0o666),), F),
    (conf(auth_unix_rw="none"), (unit("libvirtd.socket"),), F),            # systemd default 0666
    (conf(auth_unix_rw="none"), (unit("libvirtd.socket", mode=0o600),), P),
    (conf(auth_unix_rw="none", unix_sock_rw_perms="rwx"), (), U),
    (conf(auth_unix_rw="none"), None, U),                                  # units unreadable
    (conf(auth_unix_rw="none"), (unit("libvirtd.socket", mode=0o600, problem=UNREAD),), U),
    (conf(readable=False), (), U),
])
def test_rw_socket_access(c: ConfigFile, units: tuple[SocketUnit, ...] | None,
                          expected: Status) -> None:
    [result] = run(local_access.rw_socket_access, mk(c, socket_units=units))
    assert result.status is expected


def test_rw_socket_world_open_message() -> None:
    [result] = run(local_access.rw_socket_access,
                   mk(conf(auth_unix_rw="none", unix_sock_rw_perms="0777")))
    assert "mode 0777" in result.message and "become root" in result.message


# --- VMS-DMN-006 ------------------------------------------------------------------------------

@pytest.mark.parametrize(("c", "groups", "admins", "expected"), [
    (conf(auth_unix_rw="none", unix_sock_group="libvirt"), {"libvirt": ("alice", "bob")}, (), [F]),
    (conf(auth_unix_rw="none", unix_sock_group="libvirt"), {"libvirt": ("alice",)}, ("alice",), [P]),
    (conf(auth_unix_rw="none", unix_sock_group="libvirt"), None, (), [U]),
    (conf(auth_unix_rw="none"), {"libvirt": ("alice",)}, (), [P]),         # group root
    (conf(auth_unix_rw="none", unix_sock_group="libvirt", unix_sock_rw_perms="0700"),
     {"libvirt": ("bob",)}, (), [P]),                                      # group has no access
    (conf(unix_sock_group="libvirt"), {"libvirt": ("bob",)}, (), []),      # polkit decides
])
def test_socket_group_members(c: ConfigFile, groups: dict[str, tuple[str, ...]] | None,
                              admins: tuple[str, ...], expected: list[Status]) -> None:
    results = run(local_access.socket_group_members, mk(c, groups=groups), libvirt_admins=admins)
    assert statuses(results) == expected
    if expected == [F]:
        assert "bob" in results[0].message


@pytest.mark.parametrize("group", ["1000", "+1000", "+01000"])
def test_a_numeric_socket_group_is_the_group_with_that_id(group: str) -> None:
    # virGetGroupID: a name no group has is a gid (strtoul), "+" forces one: a real libvirtd 9.0 gave
    # "24", "+24" and "cdrom" the same socket group.
    h = mk(conf(auth_unix_rw="none", unix_sock_group=group), groups={"libvirt": ("alice", "bob")},
           group_ids={"libvirt": 1000, "root": 0})
    [result] = run(local_access.socket_group_members, h)
    assert result.status is F and "bob" in result.message and "libvirt" in result.message


def test_a_numeric_socket_group_without_a_group_entry_is_unknown() -> None:
    h = mk(conf(auth_unix_rw="none", unix_sock_group="4242"), groups={"libvirt": ("bob",)},
           group_ids={"libvirt": 1000})
    [result] = run(local_access.socket_group_members, h)
    assert result.status is U


def test_socket_group_root_by_number_is_root() -> None:
    h = mk(conf(auth_unix_rw="none", unix_sock_group="0"), groups={"root": ()}, group_ids={"root": 0})
    [result] = run(local_access.socket_group_members, h)
    assert result.status is P


def test_socket_group_from_unread_socket_unit_is_unknown() -> None:
    h = mk(conf(auth_unix_rw="none"), socket_units=(unit("libvirtd.socket", mode=0o600, problem=UNREAD),),
           groups={"virt": ("mallory",)})
    [result] = run(local_access.socket_group_members, h)
    assert result.status is U and UNREAD in result.message


def test_socket_group_from_socket_unit() -> None:
    h = mk(conf(auth_unix_rw="none"), socket_units=(unit("libvirtd.socket", mode=0o660, group="virt"),),
           groups={"virt": ("mallory",)})
    [result] = run(local_access.socket_group_members, h)
    assert result.status is F and "mallory" in result.message


# --- VMS-DMN-007 / 008 ------------------------------------------------------------------------

@pytest.mark.parametrize(("c", "units", "expected"), [
    (conf(), (), P),
    (conf(unix_sock_admin_perms="0770"), (), F),
    (conf(), (unit("libvirtd.socket"), unit("libvirtd-admin.socket", mode=0o600)), P),
    (conf(), (unit("libvirtd.socket"), unit("libvirtd-admin.socket", mode=0o666)), F),
    (conf(), (unit("libvirtd.socket"),), P),          # no admin unit: the daemon uses the key
    (conf(unix_sock_admin_perms="0777"), (unit("libvirtd.socket"),), F),
    (conf(readable=False), (), U),
    (conf(), (unit("libvirtd.socket"), unit("libvirtd-admin.socket", mode=0o600, problem=UNREAD)), U),
])
def test_admin_socket(c: ConfigFile, units: tuple[SocketUnit, ...], expected: Status) -> None:
    [result] = run(local_access.admin_socket_access, mk(c, socket_units=units))
    assert result.status is expected


@pytest.mark.parametrize(("c", "expected"), [
    (conf(), F),                                   # 0777 + polkit (monitor allowed to anyone)
    (conf(auth_unix_ro="none"), F),
    (conf(unix_sock_ro_perms="0770"), P),
    (conf(auth_unix_ro="sasl"), P),
    (conf(readable=False), U),
])
def test_ro_socket(c: ConfigFile, expected: Status) -> None:
    [result] = run(local_access.ro_socket_access, mk(c))
    assert result.status is expected


def test_ro_socket_from_unread_socket_unit_is_unknown() -> None:
    units = (unit("libvirtd.socket"), unit("libvirtd-ro.socket", mode=0o660, problem=UNREAD))
    [result] = run(local_access.ro_socket_access, mk(conf(), socket_units=units))
    assert result.status is U and UNREAD in result.message


# --- VMS-DMN-009 ------------------------------------------------------------------------------

def rule(path: str, grants: bool, libvirt: bool = True) -> PolkitRule:
    return PolkitRule(path=path, mentions_libvirt=libvirt, grants_without_auth=grants)


@pytest.mark.parametrize(("c", "rules", "expected"), [
    (conf(access_drivers=("polkit",)), (), [P]),
    (conf(), (), [F]),
    (conf(access_drivers=("polkit",)), (rule("/etc/polkit-1/rules.d/50-libvirt.rules", True),), [P, F]),
    (conf(access_drivers=("polkit",)), (rule("/etc/polkit-1/rules.d/50-x.rules", True, False),), [P]),
    (conf(access_drivers=("polkit",)), (rule("/usr/share/polkit-1/rules.d/60-libvirt.rules", False),),
     [P, P]),
    (conf(access_drivers=("polkit",)), None, [P, U]),
])
def test_access_control(c: ConfigFile, rules: tuple[PolkitRule, ...] | None,
                        expected: list[Status]) -> None:
    assert statuses(run(local_access.access_control, mk(c, polkit_rules=rules))) == expected


def test_access_control_skips_virtproxyd() -> None:
    h = mk(conf("virtproxyd.conf"), conf("virtqemud.conf", access_drivers=("polkit",)), polkit_rules=())
    assert [(r.subject, r.status) for r in run(local_access.access_control, h)] == [
        ("virtqemud.conf access_drivers", P)]


# --- VMS-DMN-010 / 011 ------------------------------------------------------------------------

def st(path: str, mode: int | None, uid: int = 0, gid: int = 0, kind: FileKind = FileKind.FILE,
       exists: bool | None = True) -> FileStat:
    return FileStat(path=path, exists=exists, kind=kind, mode=mode, uid=uid, gid=gid,
                    owner="root" if uid == 0 else "bob", group="root" if gid == 0 else "staff")


@pytest.mark.parametrize(("paths", "expected"), [
    ((st("/etc/libvirt/qemu/vm.xml", 0o600), st("/etc/libvirt/libvirtd.conf", 0o644)), [P, P]),
    ((st("/etc/libvirt/qemu/vm.xml", 0o644),), [F]),                    # passwords readable
    ((st("/etc/libvirt/secrets/abc.base64", 0o604),), [F]),
    ((st("/etc/libvirt/secrets", 0o755, kind=FileKind.DIRECTORY),), [P]),
    ((st("/etc/libvirt/libvirtd.conf", 0o664, gid=50),), [F]),          # group staff may write
    ((st("/etc/libvirt/libvirtd.conf", 0o644, uid=1000),), [F]),
    ((st("/etc/libvirt/qemu", 0o757, kind=FileKind.DIRECTORY),), [F]),
    ((st("/etc/libvirt/hooks/qemu", 0o777),), []),                     # VMS-DMN-011's
    ((st("/var/lib/libvirt/images/a.qcow2", 0o644),), []),              # not config
    ((st("/etc/libvirt/qemu/x.xml", None, exists=None),), [U]),
    ((st("/etc/libvirt/qemu/x.xml", None, exists=False),), []),
])
def test_config_file_permissions(paths: tuple[FileStat, ...], expected: list[Status]) -> None:
    assert statuses(run(local_access.config_file_permissions, mk(conf(), sensitive_paths=paths))) == expected


def test_qemu_conf_with_console_password_must_not_be_world_readable() -> None:
    qemu = ConfigFile(path="/etc/libvirt/qemu.conf", present=True, values={"vnc_password": "x"})
    h = Host(name="h", root="/", live=True, qemu_conf=qemu,
             sensitive_paths=(st("/etc/libvirt/qemu.conf", 0o644),))
    assert statuses(run(local_access.config_file_permissions, h)) == [F]
    plain = Host(name="h", root="/", live=True, qemu_conf=ConfigFile(path="/etc/libvirt/qemu.conf",
                                                                     present=True),
                 sensitive_paths=(st("/etc/libvirt/qemu.conf", 0o644),))
    assert statuses(run(local_access.config_file_permissions, plain)) == [P]


@pytest.mark.parametrize(("paths", "expected"), [
    ((st("/etc/libvirt/hooks", 0o755, kind=FileKind.DIRECTORY), st("/etc/libvirt/hooks/qemu", 0o700)),
     [P, P]),
    ((st("/etc/libvirt/hooks/qemu", 0o775),), [F]),
    ((st("/etc/libvirt/hooks/qemu.d/x", 0o700, uid=1000),), [F]),
    ((st("/etc/libvirt/hooks/daemon", None, exists=None),), [U]),
    ((st("/etc/libvirt/qemu.conf", 0o666),), []),
])
def test_hook_permissions(paths: tuple[FileStat, ...], expected: list[Status]) -> None:
    results = run(local_access.hook_permissions, mk(sensitive_paths=paths))
    assert statuses(results) == expected


# --- VMS-DMN-012 / 013 ------------------------------------------------------------------------

@pytest.mark.parametrize(("c", "auditd", "expected"), [
    (conf(audit_level=0), True, F),
    (conf(), False, F),
    (conf(), True, P),
    (conf(), None, U),
    (conf(audit_level=2), None, P),
    (conf(readable=False), True, U),
])
def test_audit_level(c: ConfigFile, auditd: bool | None, expected: Status) -> None:
    [result] = run(audit.audit_level, mk(c, auditd_running=auditd))
    assert result.status is expected


def test_audit_skips_proxy() -> None:
    assert run(audit.audit_level, mk(conf("virtproxyd.conf", audit_level=0))) == []


@pytest.mark.parametrize(("c", "expected"), [
    (conf(), [P, P]),
    (conf(log_outputs="3:journald"), [P, P]),
    (conf(log_outputs="1:file:/var/log/libvirt/libvirtd.log 3:syslog:libvirtd"), [P, P]),
    (conf(log_outputs="3:stderr"), [F, P]),
    (conf(log_level=1), [P, F]),
    (conf(readable=False), [U]),
])
def test_log_outputs(c: ConfigFile, expected: list[Status]) -> None:
    assert statuses(run(audit.log_outputs, mk(c))) == expected


# --- verdicts on host roots built here ----------------------------------------------------------
# git keeps only 0644/0755 and the checkout user's ownership, so the permission checks' host roots
# are built in tmp_path with explicit modes instead of being checked in under tests/data/checks.

def _verdicts(root: Any, check_id: str) -> list[Status]:

    inventory = collect_host_inventory(str(root))
    assert not inventory.errors, [e.reason for e in inventory.errors]
    return [f.status for f in run_checks(inventory, default_catalog().select(ids=[check_id])).findings]


def _write(root: Any, rel: str, text: str, mode: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    for parent in path.relative_to(root).parents:
        if str(parent) != ".":
            os.chmod(root / parent, 0o755)


def _needs_root(expected: Status) -> None:
    if expected is P:
        require(os.geteuid() == 0, "root", "a PASS needs root-owned files, and only root can create them")


@pytest.mark.parametrize(("mode", "expected"), [(0o600, P), (0o644, F)])
def test_dmn004_tls_key_root(tmp_path: Any, mode: int, expected: Status) -> None:
    _needs_root(expected)
    _write(tmp_path, "etc/libvirt/libvirtd.conf", "listen_tls = 1\n", 0o644)
    pki = Path(__file__).resolve().parents[1] / "data/checks/VMS-DMN-022/ca-signed-matching-key.PASS/etc/pki"
    _write(tmp_path, "etc/pki/libvirt/private/serverkey.pem",
           (pki / "libvirt/private/serverkey.pem").read_text(), mode)
    _write(tmp_path, "etc/pki/libvirt/servercert.pem", (pki / "libvirt/servercert.pem").read_text(), 0o644)
    got = _verdicts(tmp_path, "VMS-DMN-004")
    assert expected in got and (expected is F or F not in got)


@pytest.mark.parametrize(("mode", "expected"), [(0o600, P), (0o644, F)])
def test_dmn010_domain_xml_root(tmp_path: Any, mode: int, expected: Status) -> None:
    _needs_root(expected)
    _write(tmp_path, "etc/libvirt/libvirtd.conf", "", 0o644)
    _write(tmp_path, "etc/libvirt/qemu/vm.xml",
           "<domain type='kvm'><name>vm</name><devices><graphics type='vnc' passwd='pw'/></devices>"
           "</domain>", mode)
    got = _verdicts(tmp_path, "VMS-DMN-010")
    assert expected in got and (expected is F or F not in got)


@pytest.mark.parametrize(("mode", "expected"), [(0o700, P), (0o777, F)])
def test_dmn011_hook_root(tmp_path: Any, mode: int, expected: Status) -> None:
    _needs_root(expected)
    _write(tmp_path, "etc/libvirt/libvirtd.conf", "", 0o644)
    _write(tmp_path, "etc/libvirt/hooks/qemu", "#!/bin/sh\nexit 0\n", mode)
    got = _verdicts(tmp_path, "VMS-DMN-011")
    assert expected in got and (expected is F or F not in got)


@pytest.mark.parametrize(("dropin", "expected"), [(None, U), ("[Socket]\nSocketMode=0600\n", P)])
def test_dmn007_unread_admin_drop_in_is_unknown(tmp_path: Any, dropin: str | None, expected: Status) -> None:
    """libvirtd is socket-activated and its admin unit has a drop-in: read (0600, a decoy) or not
    (a FIFO stands in: the reader opens regular files only, and root reads any mode)."""
    _write(tmp_path, "etc/libvirt/libvirtd.conf", "", 0o644)
    _write(tmp_path, "usr/lib/systemd/system/libvirtd.socket", "[Socket]\nSocketMode=0666\n", 0o644)
    _write(tmp_path, "usr/lib/systemd/system/libvirtd-admin.socket", "[Socket]\nSocketMode=0600\n", 0o644)
    wants = tmp_path / "etc/systemd/system/sockets.target.wants"
    wants.mkdir(parents=True)
    (wants / "libvirtd.socket").symlink_to("/usr/lib/systemd/system/libvirtd.socket")
    dropin_path = "/etc/systemd/system/libvirtd-admin.socket.d/50-mode.conf"
    (tmp_path / dropin_path.lstrip("/")).parent.mkdir(parents=True)
    if dropin is None:
        os.mkfifo(tmp_path / dropin_path.lstrip("/"))
    else:
        (tmp_path / dropin_path.lstrip("/")).write_text(dropin)
    inventory = collect_host_inventory(str(tmp_path))
    assert [e.source for e in inventory.errors] == ([] if dropin else [dropin_path])
    [finding] = run_checks(inventory, default_catalog().select(ids=["VMS-DMN-007"])).findings
    assert finding.status is expected
    if expected is U:
        assert f"{dropin_path} could not be read" in finding.message


def test_socket_group_members_unknown_without_the_account_database() -> None:
    # /etc/passwd unreadable: the accounts whose primary group it is are unknown, so "no members beyond
    # the administrators" is not known either.
    h = mk(conf(auth_unix_rw="none", unix_sock_group="libvirt"), groups={"libvirt": ()},
           group_ids={"libvirt": 120}, group_members_partial=True)
    [result] = run(local_access.socket_group_members, h)
    assert result.status is U and "/etc/passwd" in result.message
    h = mk(conf(auth_unix_rw="none", unix_sock_group="libvirt"), groups={"libvirt": ("bob",)},
           group_ids={"libvirt": 120}, group_members_partial=True)
    [result] = run(local_access.socket_group_members, h)
    assert result.status is F  # a member known is enough to fail
