"""The host collector on real directory trees: checked-in host roots, roots built per test, hostile
roots, and this machine's own root."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from datapaths import LIBVIRT_CORPUS as CORPUS
from vmsec.collectors.host import collect_host, collect_host_inventory, load_config_file
from vmsec.collectors.reader import RootReader
from vmsec.errors import SourceUnavailable
from vmsec.facts import CollectionRecord, ConfigFile, FileKind, Host, Inventory
from vmsec.facts.host import BlockLayer
from vmsec.parsers.libvirt_defaults import DAEMON_CONF_DEFAULTS, QEMU_CONF_DEFAULTS
from vmsec.parsers.systemd_unit import parse_unit, read_unit, socket_settings

HOSTS = Path(__file__).resolve().parents[1] / "data" / "hosts"


def libvirt_errors(inv: Inventory) -> tuple[CollectionRecord, ...]:
    """The inventory's failed records other than the host OS facts' (tested in test_guest_collector)."""
    return tuple(e for e in inv.errors if not e.what.startswith("host OS: "))


def write(root: Path, rel: str, text: str = "", mode: int | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mode is not None:
        path.chmod(mode)
    return path


def symlink(root: Path, rel: str, target: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def libvirt_root(tmp_path: Path, qemu_conf: str | None = None, distro: str = "debian") -> Path:
    """A copied root with the monolithic daemon installed and, optionally, a qemu.conf."""
    root = tmp_path / "root"
    write(root, "etc/os-release", f"ID={distro}\n")
    write(root, "usr/sbin/libvirtd")
    (root / "etc/libvirt").mkdir(parents=True, exist_ok=True)
    if qemu_conf is not None:
        write(root, "etc/libvirt/qemu.conf", qemu_conf)
    return root


def host_of(root: Path, live: bool = False) -> tuple[Host, list[str]]:
    host, records = collect_host(RootReader(str(root)), live=live)
    return host, [f"{r.source}: {r.reason}" for r in records if not r.ok]


def conf(value: ConfigFile | None) -> ConfigFile:
    assert value is not None
    return value


# --- checked-in roots -----------------------------------------------------------------------------


def test_debian_root_with_defaults_and_a_proc_sys_snapshot() -> None:
    inv = collect_host_inventory(str(HOSTS / "debian12-defaults"))
    host = inv.host
    assert host is not None and not libvirt_errors(inv)
    assert (host.name, host.live) == ("hv1", False)
    assert inv.source == f"host {HOSTS / 'debian12-defaults'}"
    assert host.kernel_release == "6.1.0-18-amd64"
    assert host.kernel_cmdline is not None and "intel_iommu=on" in host.kernel_cmdline
    assert host.cpu is not None and host.cpu.logical_cpus == 2 and host.cpu.hardware_virtualization
    assert host.virtualization.is_virtual is False
    assert host.module_params == {"kvm": {"nx_huge_pages": "Y"},
                                  "kvm_intel": {"nested": "Y", "vmentry_l1d_flush": "cond"}}
    assert host.iommu is not None
    assert (host.iommu.dmar_table, host.iommu.ivrs_table, host.iommu.group_count) == (True, False, 2)
    assert host.cpu_vulnerabilities is not None and set(host.cpu_vulnerabilities) == {"meltdown", "l1tf",
                                                                                      "spectre_v2"}
    assert (host.smt_control, host.ksm_run, host.lockdown) == ("on", "1", "integrity")
    assert host.secure_boot is False  # sys/firmware was captured and has no efi/
    assert host.tpm_present is False
    assert host.swaps == ("/dev/dm-1", "/swap file")
    assert host.auditd_running is None  # not a live system
    assert host.daemon_mode == "monolithic"
    assert host.virtqemud_conf is None and host.virtproxyd_conf is None
    qemu = conf(host.qemu_conf)
    assert qemu.present is False and qemu.error is None
    user = qemu.setting("user")
    assert user is not None and (user.value, user.explicit) == ("libvirt-qemu", False)
    assert qemu.setting("vnc_listen") is not None and qemu.setting("vnc_listen").value == "127.0.0.1"  # type: ignore[union-attr]
    swtpm = qemu.setting("swtpm_user")
    assert swtpm is not None and swtpm.value == "root"  # no "tss" account in this root
    assert conf(host.libvirtd_conf).setting("auth_tcp").value == "sasl"  # type: ignore[union-attr]
    assert host.groups is not None and host.groups["libvirt"] == ("alice", "bob")
    assert host.packages is not None
    assert {p.name for p in host.packages} == {"libvirt-daemon", "libvirt0", "qemu-system-x86",
                                               "linux-image-6.1.0-18-amd64"}
    assert (host.qemu_version, host.libvirt_version) == ("1:7.2+dfsg-7+deb12u3", "9.0.0-4")
    assert inv.nwfilters == () and inv.secrets == ()  # libvirt is installed: listed, none


def test_modular_root_with_explicit_settings_and_objects() -> None:
    inv = collect_host_inventory(str(HOSTS / "modular-hardened"))
    host = inv.host
    assert host is not None
    assert host.name == "hv2.example.com"
    assert host.daemon_mode == "modular"
    assert host.libvirtd_conf is None
    # No /proc or /sys captured: every kernel fact is unknown, never "absent".
    assert (host.cpu, host.kernel_cmdline, host.module_params, host.iommu, host.cpu_vulnerabilities) == (
        None, None, None, None, None)
    assert (host.secure_boot, host.tpm_present, host.swaps, host.lockdown) == (None, None, None, None)
    assert host.virtualization.is_virtual is None
    qemu = conf(host.qemu_conf)
    assert qemu.setting("security_driver").as_list() == ("selinux",)  # type: ignore[union-attr]
    listen = qemu.setting("vnc_listen")
    assert listen is not None and (listen.value, listen.explicit, listen.origin) == (
        "0.0.0.0", True, "/etc/libvirt/qemu.conf:6")
    # default_tls_x509_verify = 1 becomes the VNC verify default
    verify = qemu.setting("vnc_tls_x509_verify")
    assert verify is not None and (verify.value, verify.explicit) == (1, False)
    assert qemu.setting("user").value == "qemu"  # type: ignore[union-attr]
    assert qemu.setting("swtpm_user").value == "tss"  # type: ignore[union-attr]
    assert conf(host.virtqemud_conf).setting("audit_level").value == 2  # type: ignore[union-attr]
    proxy = conf(host.virtproxyd_conf)
    assert proxy.setting("tls_allowed_dn_list").as_list() == ("C=GB,O=Example,CN=admin*",)  # type: ignore[union-attr]
    units = {u.name: u for u in host.socket_units or ()}
    assert set(units) == {"virtqemud.socket", "virtproxyd-tls.socket"}
    qemud = units["virtqemud.socket"]
    assert (qemud.socket_mode, qemud.socket_group, qemud.enabled) == (0o660, "libvirt", False)
    assert units["virtproxyd-tls.socket"].socket_mode == 0o666  # systemd's default
    assert host.sasl_configs == {"libvirt": {"mech_list": "gssapi", "keytab": "/etc/libvirt/krb5.tab"}}
    assert host.polkit_rules is not None and len(host.polkit_rules) == 1
    rule = host.polkit_rules[0]
    assert rule.mentions_libvirt and rule.grants_without_auth and "org.libvirt.unix.manage" in rule.excerpt
    paths = {s.path for s in host.sensitive_paths if s.exists}
    assert {"/etc/libvirt/hooks/qemu", "/etc/libvirt/hooks/qemu.d/10-log",
            "/etc/libvirt/secrets/usage-vtpm.xml", "/etc/libvirt/qemu/graphics-vnc-sasl.xml"} <= paths
    assert host.path_stat("/srv/guest-ram/libvirt/qemu") is not None  # explicit memory_backing_dir
    tls = {t.stat.path: t for t in host.tls_files}
    assert tls["/etc/pki/libvirt/private/proxykey.pem"].role == "virtproxyd server key"
    assert tls["/etc/pki/qemu/server-key.pem"].stat.exists is True
    assert tls["/etc/pki/libvirt-vnc/server-cert.pem"].role == "qemu vnc server-cert.pem"
    # libvirt objects on disk; the broken domain XML is recorded and the rest still read
    assert [d.name for d in inv.domains] == ["QEMUGuest1"]
    assert inv.domains[0].persistent is True and inv.domains[0].autostart is False
    assert [n.name for n in inv.networks] == ["default"]
    assert inv.nwfilters is not None and len(inv.nwfilters) == 1
    assert len(inv.pools) == 1 and inv.secrets is not None and len(inv.secrets) == 1
    assert [e.source for e in libvirt_errors(inv)] == ["/etc/libvirt/qemu/broken.xml"]
    assert "not well-formed" in (libvirt_errors(inv)[0].reason or "")


def test_unparsable_qemu_conf_makes_every_setting_unknown() -> None:
    inv = collect_host_inventory(str(HOSTS / "broken-qemu-conf"))
    host = inv.host
    assert host is not None
    qemu = conf(host.qemu_conf)
    assert qemu.present is True and qemu.error == "line 3: expecting a value"
    assert qemu.setting("user") is None and qemu.setting("vnc_listen") is None
    assert [(e.source, e.what) for e in libvirt_errors(inv)] == [("/etc/libvirt/qemu.conf", "qemu.conf")]
    daemon = conf(host.libvirtd_conf)
    assert daemon.setting("auth_tcp").value == "none"  # type: ignore[union-attr]


# --- roots built per test -------------------------------------------------------------------------


def test_empty_root_is_not_a_libvirt_host(tmp_path: Path) -> None:
    inv = collect_host_inventory(str(tmp_path))
    host = inv.host
    assert host is not None and not libvirt_errors(inv)
    assert (host.libvirtd_conf, host.virtqemud_conf, host.virtproxyd_conf, host.qemu_conf) == (
        None, None, None, None)
    assert host.daemon_mode is None and host.packages is None and host.tls_files == ()
    assert inv.nwfilters is None and inv.secrets is None
    assert host.name == str(tmp_path)
    assert host.kvm_device is not None and host.kvm_device.exists is False


def test_explicit_values_defaults_and_first_duplicate(tmp_path: Path) -> None:
    root = libvirt_root(tmp_path, 'user = "+0"\nseccomp_sandbox = 0\nuser = "qemu"\n')
    host, failures = host_of(root)
    assert not failures
    qemu = conf(host.qemu_conf)
    assert qemu.setting("user").value == "+0"  # type: ignore[union-attr]
    sandbox = qemu.setting("seccomp_sandbox")
    assert sandbox is not None and sandbox.as_bool() is False and sandbox.line == 2
    namespaces = qemu.setting("namespaces")
    assert namespaces is not None and (namespaces.value, namespaces.explicit) == (("mount",), False)
    assert qemu.setting("vnc_password") is not None and qemu.setting("vnc_password").value is None  # type: ignore[union-attr]


def test_unknown_distribution_leaves_the_qemu_user_unknown(tmp_path: Path) -> None:
    host, _ = host_of(libvirt_root(tmp_path, distro="plan9"))
    user = conf(host.qemu_conf).setting("user")
    assert user is not None and user.value is None and not user.explicit


def test_directory_named_qemu_conf_is_an_error_not_defaults(tmp_path: Path) -> None:
    root = libvirt_root(tmp_path)
    (root / "etc/libvirt/qemu.conf").mkdir()
    host, failures = host_of(root)
    qemu = conf(host.qemu_conf)
    assert qemu.present is True and qemu.error is not None and "not a regular file" in qemu.error
    assert qemu.setting("user") is None
    assert any("/etc/libvirt/qemu.conf" in f for f in failures)


def test_garbage_libvirtd_conf(tmp_path: Path) -> None:
    root = libvirt_root(tmp_path)
    write(root, "etc/libvirt/libvirtd.conf", "\x00\x01binary garbage\n")
    host, failures = host_of(root)
    daemon = conf(host.libvirtd_conf)
    assert daemon.error == "line 1: expecting a name" and daemon.setting("listen_tcp") is None
    assert failures == ["/etc/libvirt/libvirtd.conf: line 1: expecting a name"]


def test_load_config_file_directly(tmp_path: Path) -> None:
    write(tmp_path, "etc/libvirt/libvirtd.conf", 'auth_unix_rw = "none"\n')
    reader = RootReader(str(tmp_path))
    daemon = load_config_file(reader, "/etc/libvirt/libvirtd.conf", DAEMON_CONF_DEFAULTS)
    assert daemon.setting("unix_sock_rw_perms").value == "0777"  # type: ignore[union-attr]  # not narrowed
    missing = load_config_file(reader, "/etc/libvirt/qemu.conf", QEMU_CONF_DEFAULTS)
    assert missing.present is False and missing.setting("vnc_tls").value == 0  # type: ignore[union-attr]
    write(tmp_path, "etc/libvirt/big.conf", "#" * (1024 * 1024 + 10))
    big = load_config_file(reader, "/etc/libvirt/big.conf", QEMU_CONF_DEFAULTS)
    assert big.present is True and big.error is not None and "limit" in big.error


def test_unreadable_accounts_leave_the_swtpm_default_unknown(tmp_path: Path) -> None:
    """libvirt runs swtpm as tss when that account exists, else as root: with /etc/passwd unreadable
    (a FIFO stands in) the default is unknown, never a value."""
    root = libvirt_root(tmp_path)
    os.mkfifo(root / "etc/passwd")
    write(root, "etc/group", "root:x:0:\ntss:x:59:\n")
    host, failures = host_of(root)
    qemu = conf(host.qemu_conf)
    user, group = qemu.setting("swtpm_user"), qemu.setting("swtpm_group")
    assert user is not None and (user.value, user.explicit) == (None, False)
    assert group is not None and group.value == "tss"
    assert any(f.startswith("/etc/passwd:") for f in failures)


def test_unreadable_module_parameter_is_unknown_not_absent(tmp_path: Path) -> None:
    """A loaded module's parameter that cannot be read (a FIFO stands in) is None; a module that is
    not loaded, or a parameter it does not have, stays absent."""
    root = tmp_path / "root"
    write(root, "sys/module/kvm/parameters/nx_huge_pages", "Y\n")
    (root / "sys/module/vfio/parameters").mkdir(parents=True)
    os.mkfifo(root / "sys/module/vfio/parameters/enable_unsafe_noiommu_mode")
    (root / "sys/module/kvm_intel").mkdir()
    host, failures = host_of(root)
    assert host.module_params == {"kvm": {"nx_huge_pages": "Y"},
                                  "vfio": {"enable_unsafe_noiommu_mode": None}, "kvm_intel": {}}
    [failure] = failures
    assert failure.startswith("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode: ")
    assert host.module_param_unread("vfio", "enable_unsafe_noiommu_mode")
    assert not host.module_param_unread("kvm_amd", "nested")  # not loaded
    assert not host.module_param_unread("kvm_intel", "nested")  # loaded, no such parameter
    assert not host.module_param_unread("kvm", "nx_huge_pages")
    assert host.module_param("vfio", "enable_unsafe_noiommu_mode") is None


def test_swap_layers_follow_slaves_and_partitions(tmp_path: Path) -> None:
    """/dev/mapper names resolve through dm/name; LVM's slaves lead to a partition, the partition to
    its disk; nothing is read below dm-crypt; an unreadable dm/uuid (a FIFO) makes the entry unknown."""
    root = tmp_path / "root"
    swaps = ("/dev/mapper/vg-swap", "/dev/dm-2", "/dev/dm-3", "/dev/sdc1")
    write(root, "proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n"
          + "".join(f"{dev}\tpartition\t1\t0\t-2\n" for dev in swaps))
    devices = "sys/devices/virtual/block"
    for name, uuid in (("dm-1", "LVM-abc"), ("dm-2", "CRYPT-PLAIN-swap"), ("dm-3", None)):
        write(root, f"{devices}/{name}/dm/name", name.replace("dm-1", "vg-swap") + "\n")
        if uuid:
            write(root, f"{devices}/{name}/dm/uuid", uuid + "\n")
        symlink(root, f"sys/class/block/{name}", f"../../{devices.removeprefix('sys/')}/{name}")
    os.mkfifo(root / devices / "dm-3/dm/uuid")
    symlink(root, f"{devices}/dm-1/slaves/sda3", "../../sda/sda3")
    symlink(root, f"{devices}/dm-2/slaves/sdb", "../../sdb")  # not followed: below dm-crypt
    write(root, f"{devices}/sda/sda3/partition", "3\n")
    (root / devices / "sda/slaves").mkdir()
    symlink(root, "sys/class/block/sda", f"../../{devices.removeprefix('sys/')}/sda")
    symlink(root, "sys/class/block/sda3", f"../../{devices.removeprefix('sys/')}/sda/sda3")
    host, failures = host_of(root)
    assert host.swap_layers == {
        "/dev/mapper/vg-swap": (BlockLayer(name="dm-1", dm_uuid="LVM-abc", below=("sda3",)),
                                BlockLayer(name="sda3", below=("sda",)), BlockLayer(name="sda")),
        "/dev/dm-2": (BlockLayer(name="dm-2", dm_uuid="CRYPT-PLAIN-swap"),),
        "/dev/dm-3": None,
    }  # /dev/sdc1 is not device-mapper: judged by its name
    assert [f.split(":", 1)[0] for f in failures] == ["/sys/class/block/dm-3/dm/uuid"]


def test_swap_layers_without_captured_sys_are_unknown(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/dm-1\tpartition\t1\t0\t-2\n")
    host, failures = host_of(root)
    assert (host.swap_layers, failures) == ({"/dev/dm-1": None}, [])


# --- hostile roots --------------------------------------------------------------------------------


def test_symlinks_never_leave_the_root(tmp_path: Path) -> None:
    outside = write(tmp_path, "outside/qemu.conf", 'user = "leaked"\n')
    root = libvirt_root(tmp_path)
    symlink(root, "etc/libvirt/qemu.conf", "/etc/shadow")  # the scanner's own /etc/shadow
    symlink(root, "etc/libvirt/libvirtd.conf", "../../../outside/qemu.conf")
    symlink(root, "etc/libvirt/virtqemud.conf", str(outside))
    write(root, "usr/sbin/virtqemud")
    host, _ = host_of(root)
    for cfg in (host.qemu_conf, host.libvirtd_conf, host.virtqemud_conf):
        loaded = conf(cfg)
        assert loaded.values == {} and loaded.present is False  # dangling inside the root
    assert conf(host.libvirtd_conf).setting("user") is not None
    assert conf(host.libvirtd_conf).setting("user").value != "leaked"  # type: ignore[union-attr]


def test_symlink_inside_the_root_is_followed_there(tmp_path: Path) -> None:
    root = libvirt_root(tmp_path)
    write(root, "srv/conf/qemu.conf", 'user = "inside"\n')
    symlink(root, "etc/libvirt/qemu.conf", "/srv/conf/qemu.conf")
    host, _ = host_of(root)
    assert conf(host.qemu_conf).setting("user").value == "inside"  # type: ignore[union-attr]


def test_fifo_and_device_files_do_not_hang_the_scan(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    os.mkfifo(root / "proc/cpuinfo")
    os.mkfifo(root / "proc/cmdline")
    write(root, "usr/sbin/libvirtd")
    (root / "etc/libvirt").mkdir(parents=True)
    os.mkfifo(root / "etc/libvirt/qemu.conf")
    symlink(root, "etc/hostname", "/dev/zero")  # resolves inside the root: absent
    result: list[tuple[Host, list[str]]] = []
    worker = threading.Thread(target=lambda: result.append(host_of(root)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "collect_host blocked on a FIFO"
    host, failures = result[0]
    assert host.cpu is None and host.kernel_cmdline is None
    assert conf(host.qemu_conf).error is not None and conf(host.qemu_conf).setting("user") is None
    assert any(f.startswith("/proc/cpuinfo:") and "fifo" in f for f in failures)


def test_hostile_xml_is_recorded_and_the_scan_goes_on(tmp_path: Path) -> None:
    root = libvirt_root(tmp_path)
    write(root, "etc/libvirt/qemu/bomb.xml",
          '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
          "<domain type='kvm'><name>&b;</name></domain>")
    write(root, "etc/libvirt/qemu/net-in-wrong-dir.xml", "<network><name>n</name></network>")
    shutil.copy(CORPUS / "qemuxml2argvdata/graphics-vnc-sasl.xml", root / "etc/libvirt/qemu/vm.xml")
    os.mkfifo(root / "etc/libvirt/qemu/fifo.xml")
    symlink(root, "etc/libvirt/qemu/autostart/QEMUGuest1.xml", "/etc/libvirt/qemu/vm.xml")
    inv = collect_host_inventory(str(root))
    assert [(d.name, d.autostart) for d in inv.domains] == [("QEMUGuest1", True)]
    assert [n.name for n in inv.networks] == ["n"]
    failed = sorted(e.source for e in libvirt_errors(inv))
    assert failed == ["/etc/libvirt/qemu/bomb.xml", "/etc/libvirt/qemu/fifo.xml"]


def test_root_that_is_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable):
        collect_host_inventory(str(write(tmp_path, "file")))


# --- systemd, polkit, sockets, packages -----------------------------------------------------------


def test_socket_units_drop_ins_enablement_and_masking(tmp_path: Path) -> None:
    root = libvirt_root(tmp_path)
    write(root, "lib/systemd/system/libvirtd.socket",
          "[Socket]\nListenStream=/run/libvirt/libvirt-sock\nSocketMode=0666\n")
    write(root, "lib/systemd/system/libvirtd-tcp.socket", "[Socket]\nListenStream=16509\n")
    write(root, "lib/systemd/system/libvirtd-admin.socket", "[Socket]\nListenStream=/run/x\n")
    write(root, "etc/systemd/system/libvirtd.socket.d/10-first.conf", "[Socket]\nSocketMode=0600\n")
    write(root, "etc/systemd/system/libvirtd.socket.d/20-second.conf",
          "[Socket]\nListenStream=\nListenStream=/run/libvirt/other-sock\nSocketMode=bogus\n")
    write(root, "lib/systemd/system/libvirtd.socket.d/10-first.conf", "[Socket]\nSocketMode=0777\n")
    symlink(root, "etc/systemd/system/sockets.target.wants/libvirtd-tcp.socket",
            "/lib/systemd/system/libvirtd-tcp.socket")
    symlink(root, "etc/systemd/system/libvirtd-admin.socket", "/dev/null")
    host, failures = host_of(root)
    assert not failures
    units = {u.name: u for u in host.socket_units or ()}
    main = units["libvirtd.socket"]
    # /etc's 10-first.conf masks /lib's; the empty ListenStream= resets; an invalid mode is ignored
    assert (main.listen_streams, main.socket_mode) == (("/run/libvirt/other-sock",), 0o600)
    assert main.enabled is False
    assert units["libvirtd-tcp.socket"].enabled is True
    masked = units["libvirtd-admin.socket"]
    assert masked.enabled is False and masked.listen_streams == ()


def test_unreadable_unit_files_make_the_socket_unit_unknown(tmp_path: Path) -> None:
    """An unread drop-in may set SocketMode=0666: the unit says so instead of showing the defaults.
    FIFOs stand in for unreadable files (the reader opens regular files only; root reads any mode)."""
    root = libvirt_root(tmp_path)
    write(root, "lib/systemd/system/libvirtd.socket", "[Socket]\nListenStream=/run/libvirt/libvirt-sock\n")
    write(root, "lib/systemd/system/libvirtd-admin.socket", "[Socket]\nSocketMode=0600\n")
    write(root, "etc/systemd/system/libvirtd-admin.socket.d/10-ok.conf", "[Socket]\nSocketGroup=adm\n")
    os.mkfifo(root / "etc/systemd/system/libvirtd-admin.socket.d/50-mode.conf")
    (root / "etc/systemd/system").mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "etc/systemd/system/libvirtd-ro.socket")
    write(root, "lib/systemd/system/libvirtd-tcp.socket", "[Socket]\nListenStream=16509\n")
    write(root, "run/systemd/system/libvirtd-tcp.socket.d", "not a directory")
    write(root, "lib/systemd/system/libvirtd-tls.socket", "[Socket]\nListenStream=16514\n")  # decoy
    host, failures = host_of(root)
    units = {u.name: u for u in host.socket_units or ()}
    admin = units["libvirtd-admin.socket"]
    assert admin.problem == "/etc/systemd/system/libvirtd-admin.socket.d/50-mode.conf could not be read"
    assert (admin.socket_mode, admin.socket_group) == (0o600, "adm")  # what was read, still there
    assert units["libvirtd-ro.socket"].problem == "/etc/systemd/system/libvirtd-ro.socket could not be read"
    tcp = units["libvirtd-tcp.socket"]
    assert tcp.problem == "/run/systemd/system/libvirtd-tcp.socket.d could not be listed"
    assert units["libvirtd.socket"].problem is None and units["libvirtd-tls.socket"].problem is None
    assert len(failures) == 3


def test_unit_parser_continuations_and_comments() -> None:
    files = [parse_unit("[Socket]\n# ListenStream=/nope\n; also a comment\nListenStream=/a \\\n  /b\n"
                        "[Install]\nListenStream=/not-socket\n")]
    # systemd replaces the backslash with a space and appends the next line as it is
    assert socket_settings(files).listen_streams == ("/a    /b",)


def test_polkit_blanket_grant(tmp_path: Path) -> None:
    root = libvirt_root(tmp_path)
    write(root, "usr/share/polkit-1/rules.d/10-wheel.rules",
          'polkit.addRule(function(action, subject) {\n  if (subject.isInGroup("wheel")) {\n'
          "    return polkit.Result.YES;\n  }\n});\n")
    write(root, "etc/polkit-1/rules.d/20-other.rules",
          'polkit.addRule(function(action, subject) {\n  if (action.id == "org.example.x") '
          "{ return polkit.Result.YES; }\n});\n")
    host, _ = host_of(root)
    assert host.polkit_rules is not None
    # Run, not pattern-matched: YES for every action to wheel grants libvirt's actions to wheel (class 7);
    # 20-other answers only org.example.x, so it decides nothing for libvirt.
    assert [(r.path, r.mentions_libvirt, r.grants_without_auth) for r in host.polkit_rules] == [
        ("/usr/share/polkit-1/rules.d/10-wheel.rules", True, True)]
    assert "org.libvirt.unix.manage to members of group wheel" in host.polkit_rules[0].grants


def test_daemon_sockets_are_stat_ed_without_following(tmp_path: Path) -> None:
    root = libvirt_root(tmp_path)
    write(root, "etc/libvirt/libvirtd.conf", 'unix_sock_dir = "/var/run/lv"\n')
    write(root, "var/run/lv/libvirt-sock", mode=0o666)
    symlink(root, "var/run/lv/libvirt-sock-ro", "/etc/passwd")
    write(root, "var/run/lv/unrelated")
    host, _ = host_of(root)
    found = {s.path: s for s in host.sockets}
    assert set(found) == {"/var/run/lv/libvirt-sock", "/var/run/lv/libvirt-sock-ro"}
    assert found["/var/run/lv/libvirt-sock"].mode == 0o666
    assert found["/var/run/lv/libvirt-sock-ro"].kind is FileKind.SYMLINK


def test_efi_secure_boot_variable(tmp_path: Path) -> None:
    root = tmp_path / "root"
    var = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
    (root / var).parent.mkdir(parents=True)
    (root / var).write_bytes(b"\x06\x00\x00\x00\x01")
    assert host_of(root)[0].secure_boot is True
    (root / var).write_bytes(b"\x06\x00\x00\x00\x00")
    assert host_of(root)[0].secure_boot is False
    (root / var).unlink()
    assert host_of(root)[0].secure_boot is False  # efivars readable, no SecureBoot variable
    shutil.rmtree(root / "sys/firmware/efi")
    assert host_of(root)[0].secure_boot is False  # firmware captured, no EFI at all
    shutil.rmtree(root / "sys/firmware")
    assert host_of(root)[0].secure_boot is None  # not captured


def test_kernel_release_from_the_newest_installed_image(tmp_path: Path) -> None:
    root = tmp_path / "root"
    stanzas = "".join(f"Package: {name}\nStatus: install ok installed\nVersion: 1\n\n" for name in (
        "linux-image-6.1.0-9-amd64", "linux-image-6.1.0-18-amd64", "linux-image-amd64",
        "linux-image-5.10.0-28-amd64"))
    write(root, "var/lib/dpkg/status", stanzas)
    host, _ = host_of(root)
    assert host.kernel_release == "6.1.0-18-amd64"


# --- this machine ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live() -> Inventory:
    return collect_host_inventory("/")


def test_live_host_matches_what_this_machine_has(live: Inventory) -> None:
    host = live.host
    assert host is not None and host.live and host.root == "/"
    assert not live.errors, [(e.source, e.reason) for e in live.errors]
    assert host.kernel_release == os.uname().release
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    first = cpuinfo.split("\n\n")[0]
    flags = next(line.split(":", 1)[1].split() for line in first.splitlines() if line.startswith("flags"))
    assert host.cpu is not None and host.cpu.flags == frozenset(flags)
    assert host.cpu.logical_cpus == sum(1 for line in cpuinfo.splitlines() if line.startswith("processor"))
    assert host.cpu.logical_cpus == os.cpu_count()
    vulns = "/sys/devices/system/cpu/vulnerabilities"
    assert host.cpu_vulnerabilities is not None and len(host.cpu_vulnerabilities) == len(os.listdir(vulns))
    assert host.cpu_vulnerabilities["meltdown"] == Path(vulns, "meltdown").read_text().strip()
    assert host.kernel_cmdline == tuple(Path("/proc/cmdline").read_text().split())
    if "hypervisor" in flags:
        assert host.virtualization.is_virtual is True
    assert host.kvm_device is not None and host.kvm_device.exists == os.path.exists("/dev/kvm")
    for module in ("kvm", "kvm_intel", "kvm_amd", "kvm_pvm"):
        assert (module in (host.module_params or {})) == os.path.isdir(f"/sys/module/{module}")
    assert host.swaps == tuple(line.split()[0] for line in Path("/proc/swaps").read_text().splitlines()[1:])
    assert host.auditd_running is False or host.auditd_running is True
    assert host.name == (Path("/etc/hostname").read_text().strip() or os.uname().nodename)


def test_live_host_libvirt_stack(live: Inventory) -> None:
    host = live.host
    assert host is not None
    assert host.daemon_mode == ("modular" if os.path.exists("/usr/sbin/virtqemud") else "monolithic")
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libvirt-daemon"],
                             capture_output=True, text=True, check=True).stdout
    assert host.libvirt_version == version
    qemu_version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "qemu-system-x86"],
                                  capture_output=True, text=True, check=True).stdout
    assert host.qemu_version == qemu_version
    qemu = conf(host.qemu_conf)
    assert qemu.present == os.path.exists("/etc/libvirt/qemu.conf")
    if not qemu.present:  # Debian's build default, since this machine has no qemu.conf
        assert qemu.setting("user").value == "libvirt-qemu"  # type: ignore[union-attr]
    assert host.path_stat("/etc/libvirt") is not None and host.path_stat("/etc/libvirt").exists  # type: ignore[union-attr]


def test_group_members_include_the_accounts_whose_primary_group_it_is(tmp_path: Path) -> None:
    # /etc/group lists supplementary members only: alice's primary group (passwd's gid) is libvirt,
    # so she opens a socket of group libvirt as well as bob does — and carol, whose gid glibc's
    # strtoul() reads as 120 too.
    root = libvirt_root(tmp_path)
    write(root, "etc/passwd", "root:x:0:0::/root:/bin/bash\nalice:x:1000:120::/home/alice:/bin/bash\n"
                              "carol:x:1001:+120::/home/carol:/bin/bash\n")
    write(root, "etc/group", "root:x:0:\nlibvirt:x:120:bob\n")
    host, _ = host_of(root)
    assert host.groups is not None and set(host.groups["libvirt"]) == {"alice", "bob", "carol"}
    assert host.group_ids == {"root": 0, "libvirt": 120}


@pytest.mark.parametrize(("name", "text", "refused"), [
    # virConfGetValue*: a key libvirt reads with the wrong type, or a value its loader rejects, stops
    # the daemon (or the QEMU driver) from loading the file; a real libvirtd 9.0 refused each of these
    # while vmsec judged them (QEMU-004, QEMU-007, QEMU-006, QEMU-011, DMN-001, DMN-005 PASSed).
    ("qemu.conf", 'seccomp_sandbox = "0"\n', "seccomp_sandbox"),
    ("qemu.conf", "dynamic_ownership = 2\n", "dynamic_ownership"),
    ("qemu.conf", "security_default_confined = 2\nsecurity_require_confined = 5\n",
     "security_default_confined"),
    ("qemu.conf", 'cgroup_controllers = "cpu"\n', "cgroup_controllers"),
    ("qemu.conf", 'cgroup_device_acl = "/dev/mem"\n', "cgroup_device_acl"),
    ("qemu.conf", 'namespaces = [ "mount", "x" ]\n', "namespaces"),
    ("qemu.conf", 'stdio_handler = "File"\n', "stdio_handler"),
    ("qemu.conf", 'sched_core = "VCPUS"\n', "sched_core"),
    ("qemu.conf", 'max_core = "0"\ndump_guest_core = 1\n', "max_core"),
    ("qemu.conf", "max_files = -1\n", "max_files"),
    ("qemu.conf", 'security_driver = [ "selinux", "selinux" ]\n', "security_driver"),
    ("libvirtd.conf", 'listen_tcp = 1\nauth_tcp = "None"\n', "auth_tcp"),
    ("libvirtd.conf", "auth_tcp = 0\n", "auth_tcp"),
    ("libvirtd.conf", 'auth_unix_rw = "none"\nunix_sock_rw_perms = 777\n', "unix_sock_rw_perms"),
    ("virtqemud.conf", 'access_drivers = "polkit"\n', "access_drivers"),
    ("libvirtd.conf", "listen_tls = 2\n", "listen_tls"),
])
def test_a_file_libvirt_refuses_is_an_error_naming_the_key(tmp_path: Path, name: str, text: str,
                                                        refused: str) -> None:
    write(tmp_path, f"etc/libvirt/{name}", text)
    defaults = QEMU_CONF_DEFAULTS if name == "qemu.conf" else DAEMON_CONF_DEFAULTS
    conf = load_config_file(RootReader(str(tmp_path)), f"/etc/libvirt/{name}", defaults)
    assert conf.error is not None and refused in conf.error and "libvirt" in conf.error


@pytest.mark.parametrize(("name", "text"), [
    ("qemu.conf", 'security_driver = "none"\nmax_core = "unlimited"\nhugetlbfs_mount = "/dev/hugepages"\n'
                  'user = "+0"\nseccomp_sandbox = -1\nkeepalive_interval = -1\nvnc_tls = 1\n'),
    ("qemu.conf", 'max_core = 0\nnamespaces = []\ncgroup_device_acl = [ "/dev/null" ]\n'
                  'unknown_key = [ "x" ]\n'),
    ("qemu.conf", "clear_emulator_capabilities = 0\n"),  # libvirt 9.0 does not read it
    ("qemu.conf", 'zz = [ 1, [ "a" ] ]\nuser = "root"\n'),  # a key libvirt never reads: no error
    ("libvirtd.conf", 'listen_tcp = 0\nauth_tcp = "sasl"\nunix_sock_rw_perms = "0770"\nmax_workers = 20\n'),
])
def test_a_file_libvirt_loads_is_not_an_error(tmp_path: Path, name: str, text: str) -> None:
    write(tmp_path, f"etc/libvirt/{name}", text)
    defaults = QEMU_CONF_DEFAULTS if name == "qemu.conf" else DAEMON_CONF_DEFAULTS
    conf = load_config_file(RootReader(str(tmp_path)), f"/etc/libvirt/{name}", defaults)
    assert conf.error is None


def test_vfio_noiommu_groups_are_not_iommu_groups(tmp_path: Path) -> None:
    # VFIO's no-IOMMU mode makes groups of its own (drivers/vfio/group.c names them "vfio-noiommu"):
    # they prove no IOMMU, and a host with only those does not use one.
    root = libvirt_root(tmp_path)
    write(root, "sys/kernel/iommu_groups/0/name", "vfio-noiommu\n")
    write(root, "sys/kernel/iommu_groups/1/name", "vfio-noiommu\n")
    host, _ = host_of(root)
    assert host.iommu is not None and host.iommu.group_count == 0
    write(root, "sys/kernel/iommu_groups/2/type", "DMA\n")  # a real group has no name
    host, _ = host_of(root)
    assert host.iommu is not None and host.iommu.group_count == 1


# --- systemd as systemd 252 reads units (checked with `systemd --test --system`) ---------------------

@pytest.mark.parametrize(("dropin", "mode"), [
    ("[Socket]\nSocketMode=0666\n[ Socket ]\nSocketMode=0600\n", 0o666),  # " Socket " is no section
    ("[Socket]\nSocketMode=0666\n\fSocketMode=0600\n", 0o666),  # only " \t\n\r" are blanks
    ("[Socket]\nSocketMode=0666\nSocketMode=0600\v\n", 0o666),
    ("[Socket]\n# harden \\\nSocketMode=0666\n", 0o666),  # a comment line is never a continuation
    ("[Unit]\nDescription=admin \\\\\n[Socket]\nSocketMode=0666\n", 0o666),  # an escaped backslash
    ("\ufeff[Socket]\nSocketMode=0666\n", 0o666),  # the BOM is skipped
    ("[Socket]\nListenStream=/a \\\n# a comment inside\n /b\nSocketMode=0666\n", 0o666),
])
def test_unit_lines_as_systemd_reads_them(dropin: str, mode: int) -> None:
    assignments, error = read_unit(dropin.encode())
    assert error is None
    assert socket_settings([read_unit(b"[Socket]\nSocketMode=0600\n")[0], assignments]).socket_mode == mode


def test_a_unit_line_that_is_not_utf8_stops_the_file() -> None:
    # config_parse(): parse_line() fails on it — the file is read up to there (a unit that fails so
    # does not load at all).
    assignments, error = read_unit(b"[Socket]\nSocketMode=0666\nDescription=caf\xe9\nSocketMode=0600\n")
    assert error is not None and "UTF-8" in error
    assert socket_settings([assignments]).socket_mode == 0o666


@pytest.mark.parametrize(("files", "links", "expected"), [
    # enabled from /run, /usr/lib or /usr/local/lib wants directories, or a Wants= in a drop-in
    ({"usr/lib/systemd/system/libvirtd-tcp.socket": "[Socket]\nListenStream=16509\n"},
     {"run/systemd/system/sockets.target.wants/libvirtd-tcp.socket":
      "/usr/lib/systemd/system/libvirtd-tcp.socket"},
     True),
    ({"usr/lib/systemd/system/libvirtd-tcp.socket": "[Socket]\nListenStream=16509\n"},
     {"usr/lib/systemd/system/sockets.target.wants/libvirtd-tcp.socket": "../libvirtd-tcp.socket"}, True),
    ({"usr/local/lib/systemd/system/libvirtd-tcp.socket": "[Socket]\nListenStream=16509\n"},
     {"etc/systemd/system/sockets.target.wants/libvirtd-tcp.socket":
      "/usr/local/lib/systemd/system/libvirtd-tcp.socket"}, True),
    ({"usr/lib/systemd/system/libvirtd-tcp.socket": "[Socket]\nListenStream=16509\n",
      "etc/systemd/system/sockets.target.d/x.conf": "[Unit]\nWants=libvirtd-tcp.socket\n"}, {}, True),
    ({"usr/lib/systemd/system/libvirtd-tcp.socket": "[Socket]\nListenStream=16509\n"}, {}, False),
])
def test_socket_units_enabled_as_systemd_starts_them(tmp_path: Path, files: dict[str, str],
                                                     links: dict[str, str], expected: bool) -> None:
    root = libvirt_root(tmp_path)
    for rel, text in files.items():
        write(root, rel, text)
    for rel, target in links.items():
        symlink(root, rel, target)
    host, _ = host_of(root)
    units = {u.name: u for u in host.socket_units or ()}
    assert units["libvirtd-tcp.socket"].enabled is expected


@pytest.mark.parametrize("mask", ["empty", "relative"])
def test_masked_socket_units(tmp_path: Path, mask: str) -> None:
    root = libvirt_root(tmp_path)
    write(root, "usr/lib/systemd/system/libvirtd.socket", "[Socket]\nSocketMode=0600\n")
    if mask == "empty":
        write(root, "etc/systemd/system/libvirtd.socket", "")
    else:
        symlink(root, "etc/systemd/system/libvirtd.socket", "../../../dev/null")
    host, _ = host_of(root)
    units = {u.name: u for u in host.socket_units or ()}
    assert units["libvirtd.socket"].enabled is False and units["libvirtd.socket"].listen_streams == ()


@pytest.mark.parametrize(("dropin", "mode"), [
    ("etc/systemd/system/libvirtd-.socket.d/50-x.conf", 0o666),  # a prefix drop-in
    ("etc/systemd/system/socket.d/50-x.conf", 0o666),  # every socket unit's
    ("etc/systemd/system.control/libvirtd-admin.socket.d/50-x.conf", 0o666),
    ("etc/systemd/system/libvirtd-admin.socket.d/.50-x.conf", 0o600),  # hidden: not read
])
def test_socket_drop_ins_where_systemd_finds_them(tmp_path: Path, dropin: str, mode: int) -> None:
    root = libvirt_root(tmp_path)
    write(root, "usr/lib/systemd/system/libvirtd-admin.socket", "[Socket]\nSocketMode=0600\n")
    write(root, dropin, "[Socket]\nSocketMode=0666\n")
    host, _ = host_of(root)
    units = {u.name: u for u in host.socket_units or ()}
    assert units["libvirtd-admin.socket"].socket_mode == mode


def test_group_members_are_partial_without_the_account_database(tmp_path: Path) -> None:
    root = libvirt_root(tmp_path)
    write(root, "etc/group", "root:x:0:\nlibvirt:x:120:bob\n")
    (root / "etc/passwd").unlink(missing_ok=True)
    os.mkfifo(root / "etc/passwd")  # exists, cannot be read
    host, _ = host_of(root)
    assert host.groups is not None and host.groups["libvirt"] == ("bob",)
    assert host.group_members_partial is True


def test_an_unlistable_target_drop_in_directory_leaves_enablement_unknown(tmp_path: Path) -> None:
    # sockets.target.d could hold Wants=libvirtd-tcp.socket: not listed, enablement is not known.
    root = libvirt_root(tmp_path)
    write(root, "usr/lib/systemd/system/libvirtd-tcp.socket", "[Socket]\nListenStream=16509\n")
    write(root, "etc/systemd/system/sockets.target.d", "not a directory")
    host, _ = host_of(root)
    units = {u.name: u for u in host.socket_units or ()}
    assert units["libvirtd-tcp.socket"].enabled is None
