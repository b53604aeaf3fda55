"""What libvirt's loaders accept in a configuration file they read (libvirt 9.0: qemu_conf.c
``virQEMUDriverConfigLoadFile``, remote_daemon_config.c ``daemonConfigLoadOptions``).

A key read with the wrong type, or a value the loader rejects, makes libvirt refuse the whole file:
the daemon or the QEMU driver does not start with it. Its settings then decide nothing, so the file
is reported as an error naming the key (its checks are UNKNOWN), never judged as if it applied.
Types follow the ``virConfGetValue*`` getters: a bool is an unsigned 0 or 1, an unsigned integer is
not negative and fits 32 bits, a string is a string, a string list is a list of strings (or, where
the loader says ``compatString``, one string). Keys libvirt does not read are not looked at.
Values whose validity depends on the host (a security driver that is not compiled in, a namespace
the kernel lacks, a TLS directory) are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from vmsec.facts import ConfValue

__all__ = ["keys_read", "refusal"]

_BOOL, _UINT, _INT, _STR, _LIST, _STR_OR_LIST, _STR_OR_ULLONG = (
    "a boolean (0 or 1)", "an unsigned integer", "an integer", "a string", "a list of strings",
    "a string or a list of strings", "\"unlimited\" or a number")
_INT32 = 2**31
_UINT32 = 2**32

_TLS = ("default", "vnc", "spice", "chardev", "migrate", "backup", "vxhs", "nbd")
QEMU_CONF_TYPES: Mapping[str, str] = {
    **{k: _BOOL for k in (
        "default_tls_x509_verify", "vnc_auto_unix_socket", "vnc_tls", "vnc_tls_x509_verify", "vnc_sasl",
        "vnc_allow_host_audio", "nographics_allow_host_audio", "spice_tls", "spice_sasl",
        "spice_auto_unix_socket", "vxhs_tls", "nbd_tls", "chardev_tls", "migrate_tls_force",
        "chardev_tls_x509_verify", "migrate_tls_x509_verify", "backup_tls_x509_verify",
        "auto_dump_bypass_cache", "auto_start_bypass_cache", "set_process_name", "dump_guest_core",
        "mac_filter", "relaxed_acs_check", "allow_disk_format_probing", "log_timestamp",
        "virtiofsd_debug", "security_default_confined", "security_require_confined",
        "dynamic_ownership", "remember_owner")},
    **{k: _UINT for k in (
        "remote_websocket_port_min", "remote_websocket_port_max", "remote_display_port_min",
        "remote_display_port_max", "max_processes", "max_files", "max_threads_per_process", "max_queued",
        "keepalive_count", "migration_port_min", "migration_port_max", "gluster_debug_level")},
    "keepalive_interval": _INT, "seccomp_sandbox": _INT, "max_core": _STR_OR_ULLONG,
    **{f"{t}_tls_x509_{s}": _STR for t in _TLS for s in ("cert_dir", "secret_uuid")},
    **{k: _STR for k in (
        "vnc_listen", "vnc_password", "vnc_sasl_dir", "spice_sasl_dir", "spice_listen", "spice_password",
        "save_image_format", "dump_image_format", "snapshot_image_format", "auto_dump_path",
        "bridge_helper", "pr_helper", "slirp_helper", "dbus_daemon", "stdio_handler", "sched_core",
        "lock_manager", "migration_host", "migration_address", "deprecation_behavior", "user", "group",
        "memory_backing_dir", "swtpm_user", "swtpm_group")},
    **{k: _LIST for k in ("nvram", "cgroup_controllers", "cgroup_device_acl", "namespaces",
                          "capability_filters")},
    "security_driver": _STR_OR_LIST, "hugetlbfs_mount": _STR_OR_LIST,
}
DAEMON_CONF_TYPES: Mapping[str, str] = {
    **{k: _BOOL for k in ("listen_tcp", "listen_tls", "tls_no_sanity_certificate",
                          "tls_no_verify_certificate", "audit_logging")},
    **{k: _STR for k in (
        "tls_port", "tcp_port", "listen_addr", "auth_unix_rw", "auth_unix_ro", "auth_tcp", "auth_tls",
        "unix_sock_group", "unix_sock_admin_perms", "unix_sock_ro_perms", "unix_sock_rw_perms",
        "unix_sock_dir", "key_file", "cert_file", "ca_file", "crl_file", "tls_priority", "host_uuid",
        "host_uuid_source", "log_filters", "log_outputs")},
    **{k: _LIST for k in ("access_drivers", "tls_allowed_dn_list", "sasl_allowed_username_list")},
    **{k: _UINT for k in (
        "tcp_min_ssf", "min_workers", "max_workers", "max_clients", "max_queued_clients",
        "max_anonymous_clients", "prio_workers", "max_client_requests", "admin_min_workers",
        "admin_max_workers", "admin_max_clients", "admin_max_queued_clients", "admin_max_client_requests",
        "audit_level", "log_level", "keepalive_count", "admin_keepalive_count", "ovs_timeout")},
    "keepalive_interval": _INT, "admin_keepalive_interval": _INT,
}
# Values the loaders check themselves, the same on every host.
_CHOICES: Mapping[str, tuple[str, ...]] = {
    "stdio_handler": ("logd", "file"), "sched_core": ("none", "vcpus", "emulator", "full"),
    **{k: ("none", "sasl", "polkit") for k in ("auth_unix_rw", "auth_unix_ro", "auth_tcp", "auth_tls")},
}
_LIST_CHOICES: Mapping[str, tuple[str, ...]] = {
    "namespaces": ("mount",),
    "cgroup_controllers": ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "net_cls",
                           "perf_event", "name=systemd"),
}
_PERMS = ("unix_sock_admin_perms", "unix_sock_ro_perms", "unix_sock_rw_perms")


def _wrong(kind: str, key: str, value: ConfValue) -> bool:
    if kind == _BOOL:
        return not isinstance(value, int) or value not in (0, 1)
    if kind == _UINT:
        return not isinstance(value, int) or not 0 <= value < _UINT32
    if kind == _INT:
        return not isinstance(value, int) or not -_INT32 <= value < _INT32
    if kind == _STR:
        return not isinstance(value, str)
    if kind == _LIST:
        return not isinstance(value, tuple)
    if kind == _STR_OR_LIST:
        return isinstance(value, int)
    return isinstance(value, str) and value != "unlimited"  # max_core


def keys_read(file_name: str) -> frozenset[str]:
    """The keys libvirt's loader reads from this file (qemu.conf, or a daemon's)."""
    return frozenset(QEMU_CONF_TYPES if file_name == "qemu.conf" else DAEMON_CONF_TYPES)


def refusal(values: Mapping[str, ConfValue], lines: Mapping[str, int], file_name: str) -> str | None:
    """Why libvirt refuses the file (``line N: …``, the first such key in the file), or None.
    ``file_name``: qemu.conf, or a daemon's (libvirtd.conf, virtqemud.conf, virtproxyd.conf)."""
    types = QEMU_CONF_TYPES if file_name == "qemu.conf" else DAEMON_CONF_TYPES
    for key in sorted(values, key=lambda k: lines.get(k, 0)):
        kind = types.get(key)
        if kind is None:
            continue
        value = values[key]
        why = None
        if _wrong(kind, key, value):
            why = f"libvirt expects {kind}"
        elif key in _CHOICES and value not in _CHOICES[key]:
            why = f"libvirt accepts only {', '.join(_CHOICES[key])}"
        elif key in _LIST_CHOICES and isinstance(value, tuple) and any(
                v not in _LIST_CHOICES[key] for v in value):
            why = f"libvirt accepts only {', '.join(_LIST_CHOICES[key])} in it"
        elif key == "security_driver" and isinstance(value, tuple) and len(set(value)) != len(value):
            why = "libvirt refuses a security driver named twice"
        elif key in _PERMS and isinstance(value, str) and not _octal(value):
            why = "libvirt expects an octal mode"
        if why is not None:
            return f"line {lines.get(key, 0)}: {key} = {_show(value)}: {why}, so it refuses the file"
    return None


def _octal(text: str) -> bool:
    """virStrToLong_i(…, 8): C blanks, a sign, octal digits, and nothing after."""
    body = text.lstrip(" \t\n\v\f\r")
    body = body[1:] if body[:1] in "+-" else body
    return bool(body) and all(c in "01234567" for c in body)


def _show(value: ConfValue) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return f'"{value}"' if isinstance(value, str) else str(value)
