"""The values libvirt 9.0 uses when a key is absent from qemu.conf or from a daemon's config file.

Derived from libvirt 9.0's ``qemu.conf.in`` and ``libvirtd.conf.in`` (in the repository, with their
provenance: tests/data/libvirt-9.0.0/conf), reading the prose, not the commented lines: many
``#key = value`` lines are examples
(``#vnc_listen = "0.0.0.0"``; the default is 127.0.0.1) or the opposite of the default
(``#listen_tls = 0``; TLS listening is on by default). Where the prose is vague, the value is the one
``virQEMUDriverConfigNew`` / ``daemonConfigNew`` set for the privileged (system) daemon.

``None`` means "absent, with no value": no password, no CRL, no DN allow-list, or a value libvirt
detects at run time (the security driver, the log outputs). Keys libvirt no longer reads, or that
only tune performance, are listed in the ``*_NOT_DEFAULTED`` sets instead.

Some defaults depend on the host, not on libvirt:

- ``user``/``group``: upstream's default is root, but every distribution builds libvirt with its
  own QEMU account. :func:`qemu_conf_defaults` takes the distribution from /etc/os-release and uses
  the account that distribution's build configures (verified for Debian 12: its augeas lens test
  shows ``user = "libvirt-qemu"``, ``group = "libvirt-qemu"``). For a distribution not in the table
  the value is ``None`` (unknown) rather than guessing root, which would be a false critical finding.
- ``swtpm_user``/``swtpm_group``: "tss" when that account exists on the host, else root.
- the ``*_tls_x509_verify`` keys of VNC, chardev, migration and backup inherit
  ``default_tls_x509_verify`` when that is set; ``unix_sock_rw_perms`` is 0777 when
  ``auth_unix_rw`` is polkit, and otherwise the build's default — which a polkit build sets to 0777
  from its compiled-in auth before reading the file: ``auth_unix_rw = "none"`` does not narrow it.
  :func:`effective_defaults` applies both rules to a parsed file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from vmsec.facts import ConfValue

_QEMU: dict[str, ConfValue | None] = {
    # --- TLS shared by every QEMU TLS user ---
    "default_tls_x509_cert_dir": "/etc/pki/qemu",
    "default_tls_x509_verify": None,  # unset: each service applies its own default (below)
    "default_tls_x509_secret_uuid": None,  # the example all-zero UUID "will not work"
    # --- VNC ---
    "vnc_listen": "127.0.0.1",  # "#vnc_listen = 0.0.0.0" is the example for public access
    "vnc_auto_unix_socket": 0,
    "vnc_tls": 0,
    "vnc_tls_x509_cert_dir": None,  # /etc/pki/libvirt-vnc if it exists, else the default dir
    "vnc_tls_x509_secret_uuid": None,
    "vnc_tls_x509_verify": 0,  # "the default is 0" (or default_tls_x509_verify when set)
    "vnc_password": None,  # "To allow access without passwords, leave this commented out"
    "vnc_sasl": 0,
    "vnc_sasl_dir": "/etc/sasl2",
    "vnc_allow_host_audio": 0,
    # --- SPICE ---
    "spice_listen": "127.0.0.1",
    "spice_tls": 0,
    "spice_tls_x509_cert_dir": None,
    "spice_auto_unix_socket": 0,
    "spice_password": None,
    "spice_sasl": 0,
    "spice_sasl_dir": "/etc/sasl2",
    # --- per-service TLS ---
    "chardev_tls": 0,
    "chardev_tls_x509_cert_dir": None,
    "chardev_tls_x509_verify": 1,  # "the default is 1"
    "chardev_tls_x509_secret_uuid": None,
    "vxhs_tls": 0,
    "vxhs_tls_x509_cert_dir": None,
    "vxhs_tls_x509_secret_uuid": None,
    "nbd_tls": 0,
    "nbd_tls_x509_cert_dir": None,
    "nbd_tls_x509_secret_uuid": None,
    "migrate_tls_x509_cert_dir": None,
    "migrate_tls_x509_verify": 1,
    "migrate_tls_x509_secret_uuid": None,
    "migrate_tls_force": 0,
    "backup_tls_x509_cert_dir": None,
    "backup_tls_x509_verify": 1,
    "backup_tls_x509_secret_uuid": None,
    "nographics_allow_host_audio": 0,
    # --- ports ---
    "remote_display_port_min": 5900,
    "remote_display_port_max": 65535,
    "remote_websocket_port_min": 5700,
    "remote_websocket_port_max": 65535,
    "migration_port_min": 49152,
    "migration_port_max": 49215,
    "migration_address": "0.0.0.0",  # "Defaults to 0.0.0.0, or :: if host and qemu have IPv6"
    "migration_host": None,  # "By default, the host's configured hostname is used"
    # --- confinement ---
    "security_driver": None,  # absent: libvirt probes the host (selinux, else apparmor, else DAC only)
    "security_default_confined": 1,
    "security_require_confined": 0,
    "user": "root",  # upstream; replaced per distribution by qemu_conf_defaults()
    "group": "root",
    "dynamic_ownership": 1,
    "remember_owner": 1,  # on Linux the privileged daemon has the trusted xattr namespace
    # absent: libvirt uses every controller it finds mounted; this is the documented set
    "cgroup_controllers": ("cpu", "devices", "memory", "blkio", "cpuset", "cpuacct"),
    "cgroup_device_acl": ("/dev/null", "/dev/full", "/dev/zero", "/dev/random", "/dev/urandom",
                          "/dev/ptmx", "/dev/kvm"),
    "seccomp_sandbox": 1,  # stored as -1 ("on when QEMU supports it"); documented as enabled
    "namespaces": ("mount",),  # "This namespace is turned on by default"
    # Obsolete in 9.0: its augeas lens lists it as an obsolete entry and qemu_conf.c no longer
    # reads it; 1 was its default and is the behaviour kept (capabilities are cleared).
    "clear_emulator_capabilities": 1,
    # No longer supported: 1 makes the daemon refuse to start; 0 is the only working value.
    "allow_disk_format_probing": 0,
    # --- save, dump and memory files ---
    "save_image_format": "raw",
    "dump_image_format": "raw",
    "snapshot_image_format": "raw",
    "auto_dump_path": "/var/lib/libvirt/qemu/dump",
    "auto_dump_bypass_cache": 0,
    "auto_start_bypass_cache": 0,
    "dump_guest_core": 0,  # guest RAM is excluded from core dumps unless this is 1
    "max_core": 0,  # "By default the core dump size is set to 0 disabling all dumps"
    # An explicit value D means D/libvirt/qemu is used; the default is the directory itself.
    "memory_backing_dir": "/var/lib/libvirt/qemu/ram",
    # --- process and devices ---
    "set_process_name": 0,
    "max_processes": 0,
    "max_files": 0,
    "max_threads_per_process": 0,
    "mac_filter": 0,
    "relaxed_acs_check": 0,
    "lock_manager": None,  # no lock manager unless set ("lockd" and "sanlock" are the choices)
    "max_queued": 0,
    "keepalive_interval": 5,
    "keepalive_count": 5,
    "log_timestamp": 1,
    "stdio_handler": "logd",
    "sched_core": "none",
    "swtpm_user": "tss",  # replaced by qemu_conf_defaults(): root when no "tss" account exists
    "swtpm_group": "tss",
    "capability_filters": None,  # "DO _NOT_ use in production"; empty by default
    "deprecation_behavior": "none",
    "gluster_debug_level": 4,
    "virtiofsd_debug": 0,
}

# qemu.conf keys deliberately given no default: paths of helper binaries found at run time, the
# obsolete nvram list (superseded by firmware descriptors), the hugetlbfs mounts libvirt detects.
QEMU_CONF_NOT_DEFAULTED: frozenset[str] = frozenset({
    "bridge_helper", "pr_helper", "slirp_helper", "dbus_daemon", "hugetlbfs_mount", "nvram",
})

_DAEMON: dict[str, ConfValue | None] = {
    # --- network listeners (need --listen for libvirtd; ignored under socket activation) ---
    "listen_tls": 1,  # "This is enabled by default, uncomment this to disable it"
    "listen_tcp": 0,
    "tls_port": "16514",
    "tcp_port": "16509",
    "listen_addr": None,  # no address: the daemon binds every interface (wildcard)
    # --- UNIX sockets ---
    "unix_sock_group": "root",  # "This is restricted to 'root' by default"
    "unix_sock_ro_perms": "0777",
    "unix_sock_rw_perms": "0777",  # 0777 with polkit auth (the build default); else 0700
    "unix_sock_admin_perms": "0700",
    "unix_sock_dir": "/run/libvirt",
    # --- authentication (distribution builds enable polkit, so @default_auth@ is polkit) ---
    "auth_unix_ro": "polkit",
    "auth_unix_rw": "polkit",
    "auth_tcp": "sasl",
    "auth_tls": "none",
    "tcp_min_ssf": 56,
    "access_drivers": ("none",),  # the no-op access driver: no per-API checks
    # --- TLS ---
    "key_file": "/etc/pki/libvirt/private/serverkey.pem",
    "cert_file": "/etc/pki/libvirt/servercert.pem",
    "ca_file": "/etc/pki/CA/cacert.pem",
    "crl_file": None,  # "Defaults to not using a CRL"
    "tls_no_sanity_certificate": 0,
    "tls_no_verify_certificate": 0,
    "tls_allowed_dn_list": None,  # "By default, no DN's are checked"
    "tls_priority": "NORMAL",  # "usually NORMAL unless overridden at build time"
    "sasl_allowed_username_list": None,
    # --- limits ---
    "max_clients": 5000,
    "max_queued_clients": 1000,
    "max_anonymous_clients": 20,
    "min_workers": 5,
    "max_workers": 20,
    "prio_workers": 5,
    "max_client_requests": 5,
    "admin_min_workers": 1,
    "admin_max_workers": 5,
    "admin_max_clients": 5,
    "admin_max_queued_clients": 5,
    "admin_max_client_requests": 5,
    # --- logging and auditing ---
    "log_level": 3,
    "log_filters": None,
    "log_outputs": None,  # chosen at start-up: journald, syslog or a log file
    "audit_level": 1,  # "enable auditing, only if enabled on host (default)"
    "audit_logging": 0,
    # --- misc ---
    "host_uuid": None,
    "host_uuid_source": "smbios",
    "keepalive_interval": 5,
    "keepalive_count": 5,
    "admin_keepalive_interval": 5,
    "admin_keepalive_count": 5,
    "ovs_timeout": 5,
}

# Daemon keys deliberately given no default: "These configuration options are no longer used".
DAEMON_CONF_NOT_DEFAULTED: frozenset[str] = frozenset({"keepalive_required", "admin_keepalive_required"})


def _without_none(table: Mapping[str, ConfValue | None]) -> Mapping[str, ConfValue]:
    return MappingProxyType({k: v for k, v in table.items() if v is not None})


# Effective defaults (keys whose default is "no value" are left out, so ``setting()`` gives None).
QEMU_CONF_DEFAULTS: Mapping[str, ConfValue] = _without_none(_QEMU)
DAEMON_CONF_DEFAULTS: Mapping[str, ConfValue] = _without_none(_DAEMON)
# Every key this module knows, with ``None`` for "absent, no value".
QEMU_CONF_KEYS: Mapping[str, ConfValue | None] = MappingProxyType(_QEMU)
DAEMON_CONF_KEYS: Mapping[str, ConfValue | None] = MappingProxyType(_DAEMON)

# The QEMU account each distribution's libvirt build configures (meson -Dqemu_user/-Dqemu_group).
DISTRO_QEMU_ACCOUNTS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "debian": ("libvirt-qemu", "libvirt-qemu"),
    "ubuntu": ("libvirt-qemu", "kvm"),
    "fedora": ("qemu", "qemu"),
    "rhel": ("qemu", "qemu"),
    "centos": ("qemu", "qemu"),
    "rocky": ("qemu", "qemu"),
    "almalinux": ("qemu", "qemu"),
    "ol": ("qemu", "qemu"),
    "opensuse": ("qemu", "qemu"),
    "opensuse-leap": ("qemu", "qemu"),
    "opensuse-tumbleweed": ("qemu", "qemu"),
    "sles": ("qemu", "qemu"),
    "suse": ("qemu", "qemu"),
})

# Keys whose default follows another key of the same file when that one is set.
_INHERITS_VERIFY = ("vnc_tls_x509_verify", "chardev_tls_x509_verify", "migrate_tls_x509_verify",
                    "backup_tls_x509_verify")


def qemu_conf_defaults(distro_ids: Iterable[str] = (), *, accounts: Iterable[str] | None = None,
                       groups: Iterable[str] | None = None) -> Mapping[str, ConfValue]:
    """qemu.conf defaults for one host.

    ``distro_ids``: /etc/os-release ``ID`` then the ``ID_LIKE`` entries, most specific first. The
    first one in :data:`DISTRO_QEMU_ACCOUNTS` gives ``user``/``group``; with none, both are left out
    (unknown). ``accounts``/``groups``: the host's user and group names, for the swtpm account
    ("tss" when it exists, else root); ``None`` when they could not be read (then left out, so the
    setting's value is ``None``: unknown, which VMS-QEMU-012 reports as such).
    """
    table = dict(QEMU_CONF_DEFAULTS)
    for distro in distro_ids:
        if distro in DISTRO_QEMU_ACCOUNTS:
            table["user"], table["group"] = DISTRO_QEMU_ACCOUNTS[distro]
            break
    else:
        del table["user"], table["group"]
    if accounts is None:
        del table["swtpm_user"]
    else:
        table["swtpm_user"] = "tss" if "tss" in set(accounts) else "root"
    if groups is None:
        del table["swtpm_group"]
    else:
        table["swtpm_group"] = "tss" if "tss" in set(groups) else "root"
    return MappingProxyType(table)


def effective_defaults(defaults: Mapping[str, ConfValue],
                       values: Mapping[str, ConfValue]) -> Mapping[str, ConfValue]:
    """Adjust ``defaults`` for keys whose default depends on another key the file sets."""
    table = dict(defaults)
    verify = values.get("default_tls_x509_verify")
    if isinstance(verify, int) and "vnc_tls_x509_verify" in defaults:
        for key in _INHERITS_VERIFY:
            table[key] = verify
    rw_auth = values.get("auth_unix_rw")
    if rw_auth == "polkit" and "unix_sock_rw_perms" in defaults:
        # daemonConfigLoadOptions widens the mode for polkit and never narrows it: the default comes
        # from the compiled-in auth (daemonConfigNew, before the file is read), so a polkit build keeps
        # 0777 with auth_unix_rw = "none" too.
        table["unix_sock_rw_perms"] = "0777"
    return MappingProxyType(table)
