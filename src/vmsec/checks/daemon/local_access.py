"""Local access to the libvirt daemons: the UNIX sockets, who may connect to them, the access-control
driver and polkit rules, and the files that configure libvirt or run as root on its events."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.daemon.remote import AUTH_DOC, DAEMONS_DOC, LIBVIRTD_CONF_DOC, find_unit, socket_mode
from vmsec.checks.helpers.config import conf_name, daemon_of, sev, show, unreadable, where
from vmsec.checks.helpers.file_access import READ, WRITE, acl_grants, group_bits, mode_and_owners
from vmsec.facts import FileKind, FileStat, Host

ACL_DOC = "https://libvirt.org/acl.html"
HOOKS_DOC = "https://libvirt.org/hooks.html"


@check("VMS-DMN-005", title="The read-write libvirt socket is not open to every local user",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, "libvirtd", "socket"),
       references=(LIBVIRTD_CONF_DOC, AUTH_DOC, DAEMONS_DOC))
def rw_socket_access(host: Host) -> Iterator[Result]:
    """The read-write socket gives full management: a client can start a VM that attaches /dev/sda
    and so become root. With `auth_unix_rw = "none"`, only the socket's permissions stand in the
    way; a world-writable socket (0666/0777, systemd's default SocketMode) lets any local user in.

    Remediation: Use `auth_unix_rw = "polkit"` (the default); if polkit is disabled, set
    `SocketMode=0600` (or 0660 with a trusted `SocketGroup=`) in the .socket unit, or
    `unix_sock_rw_perms = "0770"` without socket activation.
    """
    for conf in host.daemon_confs:
        subject = f"{conf_name(conf)} auth_unix_rw"
        auth = conf.setting("auth_unix_rw")
        if auth is None:
            yield unreadable(conf, subject)
            continue
        if auth.value != "none":
            yield ok(subject, f"auth_unix_rw = {show(auth.value)} {where(auth)}: clients of the "
                     "read-write socket must authenticate", sev(auth))
            continue
        mode, mode_ev, _, why = socket_mode(host, conf, "", "unix_sock_rw_perms")
        if mode is None:
            yield unknown(subject, f"auth_unix_rw = \"none\" {where(auth)} and the read-write "
                          f"socket's permissions could not be told: {why}", sev(auth), mode_ev)
        elif mode & 0o002:
            yield fail(subject, f"auth_unix_rw = \"none\" {where(auth)} and the read-write socket is "
                       f"mode {mode:04o}: any local user can manage every VM and become root",
                       sev(auth), mode_ev)
        else:
            yield ok(subject, f"auth_unix_rw = \"none\", but the read-write socket is mode "
                     f"{mode:04o}", sev(auth), mode_ev)


@check("VMS-DMN-006", title="Only trusted users are in the libvirt socket group",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "libvirtd", "socket", "group"),
       references=(LIBVIRTD_CONF_DOC, AUTH_DOC))
def socket_group_members(host: Host, env: Environment) -> Iterator[Result]:
    """When the read-write socket is opened to a group (`unix_sock_group`, or the unit's
    `SocketGroup=`) with `auth_unix_rw = "none"`, every member of that group can manage all VMs,
    which is root on the host. Members are listed for review; accounts named in the profile parameter
    `libvirt_admins` are accepted.

    Remediation: Remove non-administrators from the group, or use polkit with fine-grained
    `access_drivers = ["polkit"]` rules.
    """
    accepted: tuple[str, ...] = tuple(env.param("libvirt_admins", ()))
    admins = set(accepted)
    for conf in host.daemon_confs:
        subject = f"{conf_name(conf)} socket group"
        auth = conf.setting("auth_unix_rw")
        if auth is None:
            yield unreadable(conf, subject)
            continue
        if auth.value != "none":
            continue  # polkit (or SASL) decides, not group membership; see VMS-DMN-007
        mode, mode_ev, activated, why = socket_mode(host, conf, "", "unix_sock_rw_perms")
        if activated:
            unit = find_unit(host, f"{daemon_of(conf)}.socket")
            if unit is not None and unit.problem is not None:
                # an unread drop-in may set SocketGroup=: no group is no answer
                yield unknown(subject, f"auth_unix_rw = \"none\" {where(auth)} and the read-write "
                              f"socket's group could not be told: {why}", sev(auth), mode_ev)
                continue
            group = unit.socket_group if unit else None
            group_ev = ev((unit.path or unit.name) if unit else f"{daemon_of(conf)}.socket",
                          "SocketGroup", group)
        else:
            s = conf.setting("unix_sock_group")
            group = s.as_str() if s else None
            group_ev = ev(s.origin if s else conf.path, "unix_sock_group", group)
        group = _group_name(host, group)
        if not group or group == "root" or (mode is not None and not mode & 0o060):
            yield ok(subject, f"the read-write socket is not opened to a non-root group "
                     f"(group {group or 'root'}, mode {'unknown' if mode is None else f'{mode:04o}'})",
                     group_ev, mode_ev)
            continue
        if host.groups is None:
            yield unknown(subject, f"the read-write socket is opened to group {group}, and "
                          "/etc/group could not be read", group_ev, mode_ev)
            continue
        if group not in host.groups:
            yield unknown(subject, f"the read-write socket is opened to group {group}, which /etc/group "
                          "does not name: who is in it is unknown", group_ev, mode_ev)
            continue
        members = host.groups.get(group, ())
        others = sorted(m for m in members if m not in admins)
        group_members = ev("/etc/group", group, members or "(no members)")
        if not others and host.group_members_partial:
            yield unknown(subject, f"the read-write socket is opened to group {group}; /etc/passwd could not "
                          "be read, so the accounts whose primary group it is are unknown", group_ev, mode_ev,
                          group_members)
            continue
        if others:
            yield fail(subject, f"group {group} can manage every VM (auth_unix_rw = \"none\"); its "
                       f"members {', '.join(others)} are root-equivalent on this host",
                       group_ev, mode_ev, group_members)
        else:
            yield ok(subject, f"group {group} has no members beyond the accepted administrators",
                     group_ev, group_members)


def _group_name(host: Host, group: str | None) -> str | None:
    """The group libvirt gives the socket (virGetGroupID): a group of that name, else — and always
    after a "+" — the group whose id is the number strtoul() reads ("1000", "+1000"). A number no
    group has stays as written (unknown members)."""
    if group is None or (not group.startswith("+") and host.groups is not None and group in host.groups):
        return group
    match = re.fullmatch(r"[ \t\n\v\f\r]*\+?([0-9]+)", group[1:] if group.startswith("+") else group)
    if match is None or host.group_ids is None:
        return group
    digits = match.group(1).lstrip("0") or "0"
    if len(digits) > 10 or int(digits) >= 2**32:
        return group  # no gid_t: libvirt refuses it
    gid = int(digits)
    if gid == 0:
        return "root"
    return next((name for name, number in host.group_ids.items() if number == gid), group)


@check("VMS-DMN-007", title="The daemon admin socket is accessible to root only",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "libvirtd", "socket", "admin"),
       references=(LIBVIRTD_CONF_DOC, "https://libvirt.org/manpages/virt-admin.html"))
def admin_socket_access(host: Host) -> Iterator[Result]:
    """The admin socket controls the daemon itself: logging (where secrets may end up), client
    connections and limits. libvirt ships it 0700 and says not to change that.

    Remediation: Restore `unix_sock_admin_perms = "0700"` and `SocketMode=0600` in the
    `*-admin.socket` unit.
    """
    for conf in host.daemon_confs:
        subject = f"{conf_name(conf)} admin socket"
        mode, mode_ev, _, why = socket_mode(host, conf, "-admin", "unix_sock_admin_perms")
        if not conf.readable:
            yield unreadable(conf, subject)
        elif mode is None:
            yield unknown(subject, f"the admin socket's permissions could not be told: {why}", mode_ev)
        elif mode & 0o077:
            yield fail(subject, f"the admin socket is mode {mode:04o}: users other than root can "
                       "reach the daemon's admin API", mode_ev)
        else:
            yield ok(subject, f"the admin socket is mode {mode:04o}", mode_ev)


@check("VMS-DMN-008", title="The read-only libvirt socket is restricted",
       severity=Severity.LOW, tags=(Tag.ACCESS_CONTROL, "libvirtd", "socket"),
       references=(LIBVIRTD_CONF_DOC, AUTH_DOC))
def ro_socket_access(host: Host) -> Iterator[Result]:
    """The read-only socket lets a client list VMs and read their (non-secure) XML: names, disks,
    networks, console ports. By default (0777, and polkit's `org.libvirt.unix.monitor` allows any
    user) every local user can do so, which matters on a host with unprivileged users.

    Remediation: `unix_sock_ro_perms = "0770"` with `unix_sock_group` (or `SocketMode=0660` in the
    `*-ro.socket` unit), or `auth_unix_ro = "sasl"`.
    """
    for conf in host.daemon_confs:
        subject = f"{conf_name(conf)} read-only socket"
        auth = conf.setting("auth_unix_ro")
        if auth is None:
            yield unreadable(conf, subject)
            continue
        mode, mode_ev, _, why = socket_mode(host, conf, "-ro", "unix_sock_ro_perms")
        if auth.value not in ("none", "polkit"):
            yield ok(subject, f"auth_unix_ro = {show(auth.value)} {where(auth)}", sev(auth))
        elif mode is None:
            yield unknown(subject, f"the read-only socket's permissions could not be told: {why}",
                          sev(auth), mode_ev)
        elif mode & 0o002:
            yield fail(subject, f"the read-only socket is mode {mode:04o} with auth_unix_ro = "
                       f"{show(auth.value)}: every local user can list VMs and read their XML",
                       sev(auth), mode_ev)
        else:
            yield ok(subject, f"the read-only socket is mode {mode:04o}", sev(auth), mode_ev)


@check("VMS-DMN-009", title="Fine-grained access control is enabled and polkit rules require "
       "authentication", severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "libvirtd", "polkit"),
       references=(ACL_DOC, AUTH_DOC))
def access_control(host: Host) -> Iterator[Result]:
    """Without an access-control driver (`access_drivers` unset means the "nop" driver), every client
    that may connect may do everything to every VM: there is no separation between administrators
    of different tenants. A polkit rule that returns `polkit.Result.YES` for libvirt actions grants
    that access without any authentication. The rules are JavaScript and are run, sandboxed, as
    polkitd runs them (real polkitd is the test oracle), for libvirt's actions and probe subjects (any
    user, each group, each user the rules name): a rule that grants YES for every action grants
    libvirt's too (high when any user gets it); a comment naming `polkit.Result.YES` grants nothing;
    an empty file in /etc does not mask a packaged rule of the same name (polkitd runs both); a YES
    for an action that libvirt's defaults already allow everyone (`org.libvirt.unix.monitor`,
    `*.getattr`) grants nothing new; a file that cannot be evaluated is UNKNOWN.

    Remediation: Set `access_drivers = [ "polkit" ]` and write per-domain `org.libvirt.api.*`
    rules; make broad `org.libvirt.unix.manage` rules return `AUTH_ADMIN` rather than `YES`.
    """
    confs = [c for c in host.daemon_confs if daemon_of(c) != "virtproxyd"]  # the proxy has no ACL
    for conf in confs:
        subject = f"{conf_name(conf)} access_drivers"
        s = conf.setting("access_drivers")
        if s is None:
            yield unreadable(conf, subject)
            continue
        drivers = s.as_list() or ()
        if "polkit" in drivers:
            yield ok(subject, f"access_drivers = {show(s.value)} {where(s)}", sev(s))
        else:
            yield fail(subject, f"access_drivers = {show(s.value)} {where(s)}: no per-API access "
                       "control, so any client allowed to connect can do everything", sev(s))
    if not host.daemon_confs:
        return
    if host.polkit_rules is None:
        yield unknown("polkit rules", host.polkit_error or "the polkit rules could not be read")
        return
    for rule in host.polkit_rules:
        subject = f"polkit rule {rule.path}"
        if rule.error is not None:
            yield unknown(subject, f"{rule.path} could not be evaluated: {rule.error}", ev(rule.path))
            continue
        if not rule.mentions_libvirt:
            continue
        where_ = ev(rule.path, "libvirt actions", rule.excerpt or None)
        if rule.grants_without_auth:
            shown = "; ".join(rule.grants[:4]) + (" …" if len(rule.grants) > 4 else "")
            everyone = any(g.endswith(" to any user") for g in rule.grants)
            yield fail(subject, f"{rule.path} grants libvirt actions without authentication "
                       f"(polkit.Result.YES): {shown}", where_,
                       severity=Severity.HIGH if everyone else None)
        else:
            yield ok(subject, f"{rule.path} answers libvirt actions without granting them outright "
                     f"({rule.excerpt})", where_)


_SECRET_BEARING_DIRS = ("/etc/libvirt/secrets",)


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _holds_secrets(st: FileStat, host: Host) -> bool:
    """Domain XML keeps VNC/SPICE passwords in clear; the secrets store keeps secret values;
    qemu.conf does when it sets a default console password."""
    if any(_under(st.path, d) for d in _SECRET_BEARING_DIRS):
        return True
    if posixpath.dirname(st.path) == "/etc/libvirt/qemu" and st.path.endswith(".xml"):
        return True
    qemu_conf = host.qemu_conf
    if qemu_conf is not None and st.path == qemu_conf.path:
        return qemu_conf.is_set("vnc_password") or qemu_conf.is_set("spice_password")
    return False


def _owner(st: FileStat) -> str:
    return f"{st.owner or st.uid}:{st.group or st.gid}"


def _write_problems(st: FileStat) -> list[str]:
    mode = st.mode or 0
    problems = []
    if st.uid not in (0, None):
        problems.append(f"owned by {st.owner or st.uid}, not root")
    if mode & 0o002:
        problems.append("writable by every local user")
    elif group_bits(st) & WRITE and st.gid not in (0, None):
        problems.append(f"writable by group {st.group or st.gid}")
    return problems + acl_grants(st, WRITE, (), "write")


@check("VMS-DMN-010", title="The libvirt configuration and secrets are private to root",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "file-permissions", "libvirtd"),
       references=("https://libvirt.org/formatdomain.html#graphical-framebuffers",
                   "https://libvirt.org/formatsecret.html"))
def config_file_permissions(host: Host) -> Iterator[Result]:
    """/etc/libvirt holds the daemon and QEMU configuration, every domain's XML (with console
    passwords in clear) and the secrets store. Readable domain XML or secrets leak credentials;
    anything there that a non-root user can write lets them reconfigure VMs or the daemon, which is
    root. Users and groups a POSIX ACL lets in count as well.

    Remediation: `chown -R root:root /etc/libvirt`; domain XML and secrets 0600, directories 0700
    (secrets) or 0755; no group- or world-writable entries.
    """
    for st in host.sensitive_paths:
        if not _under(st.path, "/etc/libvirt") or _under(st.path, "/etc/libvirt/hooks"):
            continue
        if st.exists is False:
            continue
        subject = f"file {st.path}"
        if st.exists is None or st.mode is None:
            yield unknown(subject, f"{st.path} could not be examined: {st.error or 'no mode'}")
            continue
        shown = mode_and_owners(st)
        where_ = ev(st.path, "mode", shown)
        problems = _write_problems(st)
        if _holds_secrets(st, host) and st.kind is not FileKind.DIRECTORY:
            if st.mode & 0o004:
                problems.append("readable by every local user, and it holds passwords or secrets")
            problems += [f"{p}, and it holds passwords or secrets" for p in acl_grants(st, READ, (), "read")]
        if problems:
            yield fail(subject, f"{st.path} is mode {shown}: {'; '.join(problems)}", where_)
        elif st.acl_error:
            yield unknown(subject, f"{st.path} is mode {shown}, but {st.acl_error}: who else may use it "
                          "is unknown", where_)
        else:
            yield ok(subject, f"{st.path} is mode {shown}", where_)


@check("VMS-DMN-011", title="The libvirt hook scripts are root-owned and not writable by others",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, "file-permissions", "hooks"),
       references=(HOOKS_DOC,))
def hook_permissions(host: Host) -> Iterator[Result]:
    """Hook scripts (/etc/libvirt/hooks/qemu, daemon, network … and their .d directories) run as
    root on every VM, network or daemon event. If anyone but root can change them, they can run code
    as root.

    Remediation: `chown -R root:root /etc/libvirt/hooks`; `chmod 0700` the scripts and `0755` (or
    0700) the directories; no group or world write.
    """
    for st in host.sensitive_paths:
        if not _under(st.path, "/etc/libvirt/hooks") or st.exists is False:
            continue
        subject = f"hook {st.path}"
        if st.exists is None or st.mode is None:
            yield unknown(subject, f"{st.path} could not be examined: {st.error or 'no mode'}")
            continue
        shown = mode_and_owners(st)
        where_ = ev(st.path, "mode", shown)
        problems = []
        if st.uid not in (0, None):
            problems.append(f"owned by {st.owner or st.uid}, not root")
        if st.mode & 0o002:
            problems.append("writable by every local user")
        elif group_bits(st) & WRITE:
            problems.append(f"writable by group {st.group or st.gid}")
        problems += acl_grants(st, WRITE, (), "write")
        if problems:
            yield fail(subject, f"{st.path} is mode {shown}: {'; '.join(problems)}, and it runs as root",
                       where_)
        elif st.acl_error:
            yield unknown(subject, f"{st.path} is mode {shown}, but {st.acl_error}: who else may change it "
                          "is unknown", where_)
        else:
            yield ok(subject, f"{st.path} is mode {shown}", where_)

