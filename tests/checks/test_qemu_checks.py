"""qemu.conf checks (VMS-QEMU-001…025): confinement, consoles, TLS and migration.

The ConfigFile is built here with the defaults libvirt 9.0 documents in qemu.conf for the keys
these checks read (see QEMU_DEFAULTS). ``user``, ``group`` and ``security_driver`` have no fixed
default (they depend on the build and on the active LSM), so they are absent from the table.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from vmsec.checks.api import Environment, Result, results_of
from vmsec.checks.catalog import default_catalog
from vmsec.checks.qemu import confinement, consoles, transport
from vmsec.collectors.host import collect_host_inventory
from vmsec.engine import run_checks
from vmsec.facts import (
    Chardev,
    ConfigFile,
    ConfValue,
    Disk,
    Domain,
    FileKind,
    FileStat,
    Graphics,
    Host,
    InstalledPackage,
    Interface,
    Inventory,
    MemoryConfig,
    PasswordState,
    SecLabel,
    Tpm,
)
from vmsec.findings import Severity, Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN

QEMU_DEFAULTS: Mapping[str, ConfValue] = {
    "vnc_listen": "127.0.0.1", "vnc_auto_unix_socket": 0, "vnc_tls": 0, "vnc_sasl": 0,
    "spice_listen": "127.0.0.1", "spice_auto_unix_socket": 0, "spice_tls": 0, "spice_sasl": 0,
    "chardev_tls": 0, "nbd_tls": 0, "migrate_tls_force": 0, "migration_address": "0.0.0.0",
    "security_default_confined": 1, "security_require_confined": 0, "dynamic_ownership": 1,
    "remember_owner": 1, "seccomp_sandbox": 1, "namespaces": ("mount",), "relaxed_acs_check": 0,
    "sched_core": "none", "stdio_handler": "logd", "swtpm_user": "tss", "swtpm_group": "tss",
    "dump_guest_core": 0, "mac_filter": 0, "auto_dump_path": "/var/lib/libvirt/qemu/dump",
    "memory_backing_dir": "/var/lib/libvirt/qemu/ram",
    "cgroup_device_acl": ("/dev/null", "/dev/full", "/dev/zero", "/dev/random", "/dev/urandom",
                          "/dev/ptmx", "/dev/kvm"),
}


def qconf(readable: bool = True, **values: ConfValue) -> ConfigFile:
    return ConfigFile(path="/etc/libvirt/qemu.conf", present=True if readable else None,
                      values=values, lines={k: i + 20 for i, k in enumerate(values)},
                      defaults=QEMU_DEFAULTS, error=None if readable else "permission denied")


def mk(c: ConfigFile | None = None, **kw: Any) -> Host:
    return Host(name="h", root="/", live=True, qemu_conf=c, **kw)


def run(func: Callable[..., Iterator[Result]], h: Host, doms: tuple[Domain, ...] = ()) -> list[Result]:
    """The check's results as the engine records them (helpers may stop a check as n/a or UNKNOWN)."""
    if len(inspect.signature(func).parameters) == 2:
        return results_of(func, h, Environment(inventory=Inventory(host=h, domains=doms), host=h))
    return results_of(func, h)


def statuses(results: list[Result]) -> list[Status]:
    return [r.status for r in results]


ALL_CHECKS = [obj for module in (confinement, consoles, transport) for obj in vars(module).values()
              if callable(obj) and hasattr(obj, "__vmsec_check__")]


@pytest.mark.parametrize("func", ALL_CHECKS, ids=lambda f: f.__name__)
def test_no_qemu_conf_is_not_applicable(func: Callable[..., Iterator[Result]]) -> None:
    assert run(func, mk(None)) == []


@pytest.mark.parametrize("func", ALL_CHECKS, ids=lambda f: f.__name__)
def test_unreadable_qemu_conf_is_unknown_never_pass(func: Callable[..., Iterator[Result]]) -> None:
    dom = Domain(name="vm", origin="vm.xml",
                 chardevs=(Chardev(locator="devices/serial[1]", element="serial", type="tcp",
                                   source_host="0.0.0.0"),),
                 disks=(Disk(locator="devices/disk[1]", type="network", device="disk",
                             source_protocol="nbd", source_hosts=("nbd.example:10809",)),))
    results = run(func, mk(qconf(readable=False)), (dom,))
    assert results, "an unreadable qemu.conf must be reported"
    assert all(r.status is U for r in results)
    assert any("permission denied" in r.message for r in results)


# --- confinement --------------------------------------------------------------------------------

def pkg(manager: str) -> InstalledPackage:
    return InstalledPackage(name="libvirt-daemon", version="9.0.0", manager=manager)


@pytest.mark.parametrize(("c", "packages", "expected"), [
    (qconf(user="root", group="root"), None, [F, F]),
    (qconf(user="+0"), None, [F, U]),
    # virGetUserID/virGetGroupID: a name no account has is read as a number (strtoul, base 10), and
    # a leading "+" forces one: "0", "00", "+0000" are root to libvirt (checked with qemu:///embed).
    (qconf(user="0", group="0"), None, [F, F]),
    (qconf(user="00", group="+0000"), None, [F, F]),
    (qconf(user="1000", group="+1000"), None, [P, P]),
    (qconf(user="libvirt-qemu", group="kvm"), None, [P, P]),
    (qconf(), (pkg("dpkg"),), [P, P]),
    (qconf(), (pkg("rpm"),), [P, P]),
    (qconf(), None, [U, U]),
])
def test_qemu_not_root(c: ConfigFile, packages: tuple[InstalledPackage, ...] | None,
                       expected: list[Status]) -> None:
    results = run(confinement.qemu_not_root, mk(c, packages=packages))
    assert statuses(results) == expected
    if expected[0] is F:
        assert results[0].severity is Severity.CRITICAL


def running(*labels: SecLabel) -> Domain:
    return Domain(name="vm", origin="qemu:///system#vm", state="running", seclabels=labels)


APPARMOR = SecLabel(locator="seclabel[1]", type="dynamic", model="apparmor")
DAC = SecLabel(locator="seclabel[1]", type="dynamic", model="dac")


@pytest.mark.parametrize(("c", "doms", "expected"), [
    (qconf(security_driver="none"), (), F),
    (qconf(security_driver=()), (), F),
    (qconf(security_driver="selinux"), (), P),
    (qconf(security_driver=("apparmor", "dac")), (), P),
    (qconf(), (running(APPARMOR, DAC),), P),
    (qconf(), (running(DAC),), F),
    (qconf(), (), U),
])
def test_security_driver(c: ConfigFile, doms: tuple[Domain, ...], expected: Status) -> None:
    [result] = run(confinement.security_driver, mk(c), doms)
    assert result.status is expected


@pytest.mark.parametrize(("c", "expected"), [
    (qconf(), [P, F]),
    (qconf(security_require_confined=1), [P, P]),
    (qconf(security_default_confined=0, security_require_confined=1), [F, P]),
])
def test_confined_by_default(c: ConfigFile, expected: list[Status]) -> None:
    results = run(confinement.confined_by_default, mk(c))
    assert statuses(results) == expected
    sev = {r.subject: r.severity for r in results if r.status is F}
    assert sev.get("qemu.conf security_require_confined", Severity.LOW) is Severity.LOW


@pytest.mark.parametrize(("func", "c", "expected"), [
    (confinement.seccomp_sandbox, qconf(), [P]),
    (confinement.seccomp_sandbox, qconf(seccomp_sandbox=0), [F]),
    (confinement.mount_namespace, qconf(), [P]),
    (confinement.mount_namespace, qconf(namespaces=()), [F]),
    (confinement.relaxed_acs, qconf(), [P]),
    (confinement.relaxed_acs, qconf(relaxed_acs_check=1), [F]),
    (confinement.stdio_handler, qconf(), [P]),
    (confinement.stdio_handler, qconf(stdio_handler="file"), [F]),
    (confinement.swtpm_user, qconf(), [P, P]),
    (confinement.swtpm_user, qconf(swtpm_user="root"), [F, P]),
    (confinement.swtpm_user, ConfigFile(path="/etc/libvirt/qemu.conf", present=False,
                                        defaults={"swtpm_user": "root", "swtpm_group": "root"}),
     [P, P]),  # no tss account, and no domain uses swtpm
    (confinement.dynamic_ownership, qconf(), [P, P]),
    (confinement.dynamic_ownership, qconf(dynamic_ownership=0, remember_owner=0), [F, F]),
    (confinement.legacy_unsafe_keys, qconf(), [P, P]),
    (confinement.legacy_unsafe_keys, qconf(allow_disk_format_probing=1,
                                           clear_emulator_capabilities=0), [F, F]),
    (confinement.legacy_unsafe_keys, qconf(clear_emulator_capabilities=1), [P, P]),
    (confinement.developer_overrides, qconf(), [P, P]),
    (confinement.developer_overrides, qconf(capability_filters=("blockdev",),
                                            deprecation_behavior="crash"), [F, F]),
    (transport.migrate_tls_force, qconf(), [F]),
    (transport.migrate_tls_force, qconf(migrate_tls_force=1), [P]),
    (transport.migration_address, qconf(), [F]),
    (transport.migration_address, qconf(migration_address="::"), [F]),
    (transport.migration_address, qconf(migration_address="10.0.9.4"), [P]),
    (transport.migration_address, qconf(migration_address=("0.0.0.0",)), [U]),
])
def test_single_key_checks(func: Callable[..., Iterator[Result]], c: ConfigFile,
                           expected: list[Status]) -> None:
    assert statuses(run(func, mk(c))) == expected


def test_swtpm_default_root_matters_when_a_domain_uses_swtpm() -> None:
    c = ConfigFile(path="/etc/libvirt/qemu.conf", present=False,
                   defaults={"swtpm_user": "root", "swtpm_group": "tss"})
    dom = Domain(name="vm", origin="vm.xml",
                 tpms=(Tpm(locator="devices/tpm[1]", model="tpm-crb", backend_type="emulator"),))
    assert statuses(run(confinement.swtpm_user, mk(c), (dom,))) == [F, P]


@pytest.mark.parametrize(("tpm", "expected"), [(True, [U, P]), (False, [P, P])])
def test_swtpm_default_unknown_when_accounts_unreadable(tpm: bool, expected: list[Status]) -> None:
    """/etc/passwd unreadable: swtpm_user has no default (tss or root); /etc/group read: tss."""
    c = ConfigFile(path="/etc/libvirt/qemu.conf", present=False, defaults={"swtpm_group": "tss"})
    tpms = (Tpm(locator="devices/tpm[1]", model="tpm-crb", backend_type="emulator"),) if tpm else ()
    results = run(confinement.swtpm_user, mk(c), (Domain(name="vm", origin="vm.xml", tpms=tpms),))
    assert statuses(results) == expected
    assert "/etc/passwd could not be read" in results[0].message


def test_legacy_probing_is_critical() -> None:
    results = run(confinement.legacy_unsafe_keys, mk(qconf(allow_disk_format_probing=1)))
    assert results[0].severity is Severity.CRITICAL


@pytest.mark.parametrize(("c", "expected", "severity"), [
    (qconf(), [P, P], None),
    (qconf(cgroup_device_acl=("/dev/null", "/dev/full", "/dev/zero", "/dev/random", "/dev/urandom",
                              "/dev/ptmx", "/dev/kvm", "/dev/userfaultfd")), [P, P], None),
    (qconf(cgroup_device_acl=("/dev/null", "/dev/kvm", "/dev/infiniband/rdma_cm")), [F, P],
     None),
    (qconf(cgroup_device_acl=("/dev/null", "/dev/kvm", "/dev/sda")), [F, P], Severity.HIGH),
    (qconf(cgroup_device_acl=("/dev/null", "/dev/mem")), [F, P], Severity.HIGH),
    (qconf(cgroup_controllers=("cpu", "memory")), [P, F], Severity.HIGH),
])
def test_cgroup_device_acl(c: ConfigFile, expected: list[Status], severity: Severity | None) -> None:
    results = run(confinement.cgroup_device_acl, mk(c))
    assert statuses(results) == expected
    assert [r.severity for r in results if r.status is F] == ([severity] if F in expected else [])


@pytest.mark.parametrize(("c", "smt", "expected"), [
    (qconf(), "on", F),
    (qconf(), "off", P),
    (qconf(), None, U),
    (qconf(sched_core="vcpus"), "on", P),
])
def test_sched_core(c: ConfigFile, smt: str | None, expected: Status) -> None:
    [result] = run(confinement.sched_core, mk(c, smt_control=smt))
    assert result.status is expected


@pytest.mark.parametrize(("c", "doms", "expected"), [
    (qconf(), (), [P]),
    (qconf(dump_guest_core=1), (), [P]),                       # max_core 0: no core at all
    (qconf(dump_guest_core=1, max_core="unlimited"), (), [F]),
    (qconf(max_core="unlimited"), (Domain(name="vm", origin="vm.xml",
                                          memory=MemoryConfig(dump_core=True)),), [P, F]),
])
def test_guest_core_dumps(c: ConfigFile, doms: tuple[Domain, ...], expected: list[Status]) -> None:
    assert statuses(run(confinement.guest_core_dumps, mk(c), doms)) == expected


def dstat(path: str, mode: int | None, exists: bool | None = True) -> FileStat:
    return FileStat(path=path, exists=exists, kind=FileKind.DIRECTORY, mode=mode, uid=0, gid=0)


@pytest.mark.parametrize(("c", "paths", "expected"), [
    (qconf(), (dstat("/var/lib/libvirt/qemu/save", 0o700), dstat("/var/lib/libvirt/qemu/dump", 0o755)),
     [P, F]),
    (qconf(), (dstat("/var/lib/libvirt/qemu/ram/vm/ram-node0", 0o604),), [F]),
    (qconf(auto_dump_path="/srv/dumps"), (dstat("/srv/dumps", 0o777),), [F]),
    (qconf(), (dstat("/srv/dumps", 0o777),), []),
    (qconf(), (dstat("/var/lib/libvirt/qemu/save", None, exists=None),), [U]),
    (qconf(), (dstat("/var/lib/libvirt/images", 0o755),), []),
])
def test_memory_dirs(c: ConfigFile, paths: tuple[FileStat, ...], expected: list[Status]) -> None:
    assert statuses(run(confinement.memory_dirs_private, mk(c, sensitive_paths=paths))) == expected


# --- consoles -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("c", "expected"), [
    (qconf(), P),
    (qconf(vnc_listen="::1"), P),
    (qconf(vnc_listen="localhost"), P),
    (qconf(vnc_listen="127.0.0.2"), P),
    (qconf(vnc_listen="0.0.0.0"), F),
    (qconf(vnc_listen="0.0.0.0", vnc_tls=1), F),                       # VNC verify defaults to 0
    (qconf(vnc_listen="0.0.0.0", vnc_tls=1, vnc_tls_x509_verify=1), P),
    (qconf(vnc_listen="0.0.0.0", vnc_tls=1, default_tls_x509_verify=1), P),
    (qconf(vnc_listen="0.0.0.0", vnc_tls=1, default_tls_x509_verify=1, vnc_tls_x509_verify=0), F),
    (qconf(vnc_listen="0.0.0.0", vnc_auto_unix_socket=1), P),
    (qconf(vnc_listen="mgmt.example.org"), F),
    (qconf(vnc_listen=5900), U),  # not a string: libvirt would refuse it; never read as loopback
])
def test_vnc_listen(c: ConfigFile, expected: Status) -> None:
    [result] = run(consoles.vnc_listen_tls, mk(c))
    assert result.status is expected


def vnc_dom(name: str, password: PasswordState) -> Domain:
    return Domain(name=name, origin=f"{name}.xml",
                  graphics=(Graphics(locator="devices/graphics[1]", type="vnc", password=password),))


@pytest.mark.parametrize(("c", "doms", "sasl", "expected", "severity"), [
    (qconf(), (vnc_dom("a", PasswordState.ABSENT),), None, P, None),
    (qconf(vnc_listen="0.0.0.0"), (vnc_dom("a", PasswordState.ABSENT),), None, F, None),
    (qconf(vnc_listen="0.0.0.0"), (vnc_dom("a", PasswordState.SET),), None, F, Severity.HIGH),
    (qconf(vnc_listen="0.0.0.0", vnc_password="secret"), (vnc_dom("a", PasswordState.ABSENT),), None,
     P, None),
    (qconf(vnc_listen="0.0.0.0", vnc_sasl=1), (), "digest-md5", F, Severity.HIGH),
    (qconf(vnc_listen="0.0.0.0", vnc_sasl=1), (), "gssapi", P, None),
    (qconf(vnc_listen="0.0.0.0", vnc_sasl=1, vnc_tls=1), (), "scram-sha-256", P, None),
])
def test_vnc_default_auth(c: ConfigFile, doms: tuple[Domain, ...], sasl: str | None,
                          expected: Status, severity: Severity | None) -> None:
    configs = {"qemu": {"mech_list": sasl}} if sasl else {}
    [result] = run(consoles.vnc_default_auth, mk(c, sasl_configs=configs), doms)
    assert (result.status, result.severity) == (expected, severity)
    if expected is F and severity is None:
        assert "a" in result.message.split("domains ")[1]


def test_vnc_password_value_is_not_shown() -> None:
    [result] = run(consoles.vnc_default_auth, mk(qconf(vnc_listen="0.0.0.0", vnc_password="hunter2")))
    assert all("hunter2" not in (e.value or "") for e in result.evidence)
    assert "hunter2" not in result.message


@pytest.mark.parametrize(("c", "expected", "severity"), [
    (qconf(), P, None),
    (qconf(spice_listen="0.0.0.0"), F, Severity.CRITICAL),
    (qconf(spice_listen="0.0.0.0", spice_password="x"), F, Severity.HIGH),
    (qconf(spice_listen="0.0.0.0", spice_tls=1, spice_sasl=1), P, None),
    (qconf(spice_listen="0.0.0.0", spice_auto_unix_socket=1), P, None),
])
def test_spice_listen(c: ConfigFile, expected: Status, severity: Severity | None) -> None:
    [result] = run(consoles.spice_listen, mk(c))
    assert (result.status, result.severity) == (expected, severity)


# --- transport ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("c", "expected"), [
    (qconf(), {"qemu.conf backup_tls_x509_verify": P}),
    (qconf(vnc_tls=1), {"qemu.conf vnc_tls_x509_verify": F, "qemu.conf backup_tls_x509_verify": P}),
    (qconf(vnc_tls=1, chardev_tls=1, default_tls_x509_verify=1),
     {"qemu.conf vnc_tls_x509_verify": P, "qemu.conf chardev_tls_x509_verify": P,
      "qemu.conf backup_tls_x509_verify": P}),
    (qconf(chardev_tls=1, default_tls_x509_verify=0),
     {"qemu.conf chardev_tls_x509_verify": F, "qemu.conf backup_tls_x509_verify": F}),
    (qconf(backup_tls_x509_verify=0), {"qemu.conf backup_tls_x509_verify": F}),
])
def test_tls_x509_verify(c: ConfigFile, expected: dict[str, Status]) -> None:
    assert {r.subject: r.status for r in run(transport.tls_x509_verify, mk(c))} == expected


def chardev_dom(tls: bool | None, host: str | None = "0.0.0.0") -> Domain:
    return Domain(name="vm", origin="vm.xml",
                  chardevs=(Chardev(locator="devices/serial[1]", element="serial", type="tcp",
                                    source_mode="bind", source_host=host, source_service="4555",
                                    tls=tls),
                            Chardev(locator="devices/console[1]", element="console", type="pty")))


@pytest.mark.parametrize(("c", "dom", "expected"), [
    (qconf(), chardev_dom(None), [F]),
    (qconf(chardev_tls=1), chardev_dom(None), [P]),
    (qconf(chardev_tls=1), chardev_dom(False), [F]),
    (qconf(), chardev_dom(True), [P]),
    (qconf(), chardev_dom(None, host="127.0.0.1"), [P]),
    (qconf(), Domain(name="vm", origin="vm.xml"), []),
])
def test_chardev_tls(c: ConfigFile, dom: Domain, expected: list[Status]) -> None:
    assert statuses(run(transport.chardev_tls, mk(c), (dom,))) == expected


def nbd_dom(tls: bool | None, *hosts: str) -> Domain:
    return Domain(name="vm", origin="vm.xml",
                  disks=(Disk(locator="devices/disk[1]", type="network", device="disk",
                              source_protocol="nbd", source_hosts=hosts, source_tls=tls),
                         Disk(locator="devices/disk[2]", type="file", device="disk",
                              source_file="/var/lib/libvirt/images/a.qcow2")))


@pytest.mark.parametrize(("c", "dom", "expected"), [
    (qconf(), nbd_dom(None, "nbd.example:10809"), [F]),
    (qconf(nbd_tls=1), nbd_dom(None, "nbd.example:10809"), [P]),
    (qconf(nbd_tls=1), nbd_dom(False, "nbd.example:10809"), [F]),
    (qconf(), nbd_dom(True, "nbd.example:10809"), [P]),
    (qconf(), nbd_dom(None, "127.0.0.1:10809"), [P]),
    (qconf(), nbd_dom(None, "[::1]:10809"), [P]),
    (qconf(), nbd_dom(None, "[2001:db8::5]:10809"), [F]),
    (qconf(), nbd_dom(None, "/run/nbd.sock"), []),
])
def test_nbd_tls(c: ConfigFile, dom: Domain, expected: list[Status]) -> None:
    assert statuses(run(transport.nbd_tls, mk(c), (dom,))) == expected


@pytest.mark.parametrize(("c", "expected"), [
    (qconf(), P),                                   # built-in default 1
    (qconf(migrate_tls_x509_verify=0), F),
    (qconf(default_tls_x509_verify=0), F),          # inherited
    (qconf(default_tls_x509_verify=0, migrate_tls_x509_verify=1), P),
])
def test_migrate_tls_verify(c: ConfigFile, expected: Status) -> None:
    [result] = run(transport.migrate_tls_verify, mk(c))
    assert result.status is expected


def bridged(name: str, filterref: str | None) -> Domain:
    return Domain(name=name, origin=f"{name}.xml",
                  interfaces=(Interface(locator="devices/interface[1]", type="bridge",
                                        source_bridge="br0", filterref=filterref),))


@pytest.mark.parametrize(("c", "doms", "expected"), [
    (qconf(mac_filter=1), (bridged("a", None),), P),
    (qconf(), (bridged("a", "clean-traffic"),), P),
    (qconf(), (bridged("a", "clean-traffic"), bridged("b", None)), F),
    (qconf(), (), F),
])
def test_mac_filter(c: ConfigFile, doms: tuple[Domain, ...], expected: Status) -> None:
    [result] = run(transport.mac_filter, mk(c), doms)
    assert result.status is expected


# --- verdicts on host roots built here (git cannot carry the directory modes) -------------------

@pytest.mark.parametrize(("mode", "expected"), [(0o700, P), (0o755, F)])
def test_qemu014_save_dir_root(tmp_path: Any, mode: int, expected: Status) -> None:

    (tmp_path / "etc/libvirt").mkdir(parents=True)
    (tmp_path / "etc/libvirt/qemu.conf").write_text("# defaults\n")
    save = tmp_path / "var/lib/libvirt/qemu/save"
    save.mkdir(parents=True)
    os.chmod(save, mode)
    inventory = collect_host_inventory(str(tmp_path))
    assert not inventory.errors
    findings = run_checks(inventory, default_catalog().select(ids=["VMS-QEMU-014"])).findings
    got = {f.subject: f.status for f in findings}
    assert got["memory path /var/lib/libvirt/qemu/save"] is expected


def test_qemu012_unreadable_passwd_is_unknown(tmp_path: Any) -> None:
    """A host root whose /etc/passwd cannot be read (a FIFO stands in: the reader opens regular files
    only, and root reads any mode) and whose domain uses swtpm: swtpm_user is tss or root, unknown."""
    (tmp_path / "etc/libvirt/qemu").mkdir(parents=True)
    (tmp_path / "etc/libvirt/qemu.conf").write_text("# defaults\n")
    (tmp_path / "etc/group").write_text("root:x:0:\ntss:x:59:\n")
    os.mkfifo(tmp_path / "etc/passwd")
    (tmp_path / "etc/libvirt/qemu/vm.xml").write_text(
        "<domain type='kvm'><name>vm</name><devices><tpm model='tpm-crb'><backend type='emulator' "
        "version='2.0'/></tpm></devices></domain>")
    inventory = collect_host_inventory(str(tmp_path))
    assert [e.source for e in inventory.errors] == ["/etc/passwd"]
    findings = run_checks(inventory, default_catalog().select(ids=["VMS-QEMU-012"])).findings
    assert [(f.subject, f.status) for f in findings] == [("qemu.conf swtpm_user", U),
                                                         ("qemu.conf swtpm_group", P)]
    assert "libvirt's default is tss, or root when no tss account exists" in findings[0].message
