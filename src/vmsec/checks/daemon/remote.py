"""Remote access to the libvirt daemons: the TCP and TLS listeners, their authentication, and the
TLS keys they use.

A check applies to each daemon configuration present on the host: libvirtd.conf for the monolithic
daemon, virtproxyd.conf (network listeners) and virtqemud.conf for the modular daemons. With systemd
socket activation the ``listen_*`` and ``unix_sock_*`` keys are not honoured; the socket units are
(``libvirtd-tcp.socket``, ``virtproxyd-tls.socket`` …). The socket-unit helpers here are shared with
the other daemon modules; configuration-setting helpers live in :mod:`vmsec.checks.helpers.config`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.config import conf_name, daemon_of, sev, show, unreadable, unreadable_reason, where
from vmsec.checks.helpers.file_access import READ, WRITE, acl_grants, group_bits, mode_and_owners
from vmsec.facts import ConfigFile, ConfValue, Host, SocketUnit
from vmsec.findings import Evidence

LIBVIRTD_CONF_DOC = "https://libvirt.org/remote.html"
AUTH_DOC = "https://libvirt.org/auth.html"
DAEMONS_DOC = "https://libvirt.org/daemons.html"

# Daemons that can accept network clients (virtqemud only has UNIX sockets).
NETWORK_DAEMONS = frozenset({"libvirtd", "virtproxyd"})


# --- helpers shared by the daemon checks ---------------------------------------------------------

def find_unit(host: Host, name: str) -> SocketUnit | None:
    for unit in host.socket_units or ():
        if unit.name == name:
            return unit
    return None


def socket_activated(host: Host, daemon: str) -> bool | None:
    """Whether ``daemon`` is started by systemd socket activation (its main .socket unit is
    enabled); ``None`` when the socket units could not be read."""
    if host.socket_units is None:
        return None
    unit = find_unit(host, f"{daemon}.socket")
    if unit is None:
        return False
    return unit.enabled


def parse_mode(value: ConfValue | None) -> int | None:
    """``"0770"`` (libvirt writes permissions as octal strings) or an integer."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value.strip()):
        return int(value.strip(), 8)
    return None


class SocketMode(NamedTuple):
    mode: int | None  # None when it cannot be told (then ``why`` says why)
    evidence: Evidence
    activated: bool | None  # whether socket activation is in use
    why: str = ""


def socket_mode(host: Host, conf: ConfigFile, suffix: str, key: str) -> SocketMode:
    """The effective permissions of one of the daemon's UNIX sockets: the unit's ``SocketMode=``
    under socket activation (systemd's default is 0666), else the configuration key (also used when
    that socket has no unit: the daemon then creates it itself)."""
    daemon = daemon_of(conf)
    activated = socket_activated(host, daemon)
    if activated is None:  # the unit's SocketMode= would override the key: cannot tell which
        return SocketMode(None, ev("systemd socket units", f"{daemon}{suffix}.socket", "(unreadable)"),
                          None, "the systemd socket units could not be read")
    unit = find_unit(host, f"{daemon}{suffix}.socket") if activated else None
    if unit is not None and unit.problem is not None:
        # An unread unit file or drop-in may set SocketMode=: the default is no answer.
        return SocketMode(None, ev(unit.path or unit.name, "SocketMode", "(unreadable)"), True, unit.problem)
    if unit is not None:
        unit_mode = unit.socket_mode if unit.socket_mode is not None else 0o666
        shown = f"{unit_mode:04o}" + ("" if unit.socket_mode is not None else " (systemd default)")
        return SocketMode(unit_mode, ev(unit.path or unit.name, "SocketMode", shown), True)
    s = conf.setting(key)
    if s is None:
        return SocketMode(None, ev(conf.path, key), activated, unreadable_reason(conf))
    mode = parse_mode(s.value)
    return SocketMode(mode, sev(s), activated,
                      "" if mode is not None else f"{key} = {show(s.value)} is not an octal mode")


def listener(host: Host, conf: ConfigFile, kind: str) -> tuple[bool | None, str, tuple[Evidence, ...]]:
    """Whether the daemon of ``conf`` listens on ``kind`` ("tcp" or "tls"), a phrase saying why,
    and evidence. ``None`` when it cannot be told."""
    daemon = daemon_of(conf)
    unit_name = f"{daemon}-{kind}.socket"
    activated = socket_activated(host, daemon)
    unit = find_unit(host, unit_name)
    if unit is not None and unit.enabled:
        return True, f"{unit_name} is enabled", (ev(unit.path or unit_name, "enabled", True),)
    if activated:
        if unit is None or unit.enabled is False:
            return (False, f"{daemon} is socket-activated and {unit_name} is not enabled",
                    (ev(unit_name, "enabled", False),))
        return None, f"whether {unit_name} is enabled could not be told", (ev(unit_name, "enabled"),)
    s = conf.setting(f"listen_{kind}")
    if s is None:
        return None, f"{conf_name(conf)} could not be read", ()
    on = s.as_bool()
    if on and daemon == "libvirtd" and not s.explicit:
        # libvirtd opens network listeners only when started with --listen (not examined); an
        # explicit listen_* key shows the administrator meant it to listen.
        return (None, f"listen_{kind} = {show(s.value)} {where(s)} takes effect only if libvirtd "
                "runs with --listen", (sev(s),))
    if on:
        return True, f"listen_{kind} = {show(s.value)} {where(s)}", (sev(s),)
    if activated is None:
        return (None, f"listen_{kind} = {show(s.value)} {where(s)}, but whether {unit_name} is enabled "
                "could not be read", (sev(s),))
    if on is None:
        return None, f"listen_{kind} = {show(s.value)} is not 0 or 1", (sev(s),)
    return False, f"listen_{kind} = {show(s.value)} {where(s)}", (sev(s),)


def network_confs(host: Host) -> tuple[ConfigFile, ...]:
    return tuple(c for c in host.daemon_confs if daemon_of(c) in NETWORK_DAEMONS)


# --- checks --------------------------------------------------------------------------------------

@check("VMS-DMN-001", title="The libvirt TCP listener requires authentication",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "libvirtd", "remote"),
       references=(LIBVIRTD_CONF_DOC, AUTH_DOC))
def tcp_requires_auth(host: Host) -> Iterator[Result]:
    """The libvirt API is root-equivalent on the host: a client can define a VM that attaches the
    host's disks. A TCP listener with `auth_tcp = "none"` hands that to anyone who can reach port
    16509, in cleartext.

    Remediation: Disable the TCP listener (`listen_tcp = 0`, disable `libvirtd-tcp.socket` /
    `virtproxyd-tcp.socket`) and use TLS on 16514 or `qemu+ssh://`; if TCP must stay, set
    `auth_tcp = "sasl"` with GSSAPI.
    """
    for conf in network_confs(host):
        subject = f"{conf_name(conf)} auth_tcp"
        auth = conf.setting("auth_tcp")
        if auth is None:
            yield unreadable(conf, subject)
            continue
        on, why, evidence = listener(host, conf, "tcp")
        if auth.value != "none":
            yield ok(subject, f"auth_tcp = {show(auth.value)} {where(auth)}: TCP clients must "
                     "authenticate", sev(auth), *evidence)
        elif on:
            yield fail(subject, f"{why} and auth_tcp = \"none\" {where(auth)}: any client on the "
                       "network can manage every VM as root, in cleartext", sev(auth), *evidence)
        elif on is None:
            yield unknown(subject, f"auth_tcp = \"none\" {where(auth)} and {why}", sev(auth), *evidence)
        else:
            yield ok(subject, f"auth_tcp = \"none\", but no TCP listener is active ({why})",
                     sev(auth), *evidence)


_NO_SECURITY_LAYER = ("plain", "login", "anonymous", "cram-md5", "external")


def _mechanisms(text: str) -> tuple[str, ...]:
    return tuple(m.lower() for m in re.split(r"[\s,]+", text.strip()) if m)


@check("VMS-DMN-002", title="SASL on the TCP listener uses a strong mechanism",
       severity=Severity.HIGH, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "libvirtd", "sasl"),
       references=(AUTH_DOC, "https://www.rfc-editor.org/rfc/rfc6331"))
def sasl_mechanisms(host: Host) -> Iterator[Result]:
    """On the plain TCP listener, SASL supplies both authentication and the only encryption. DIGEST-MD5
    is obsolete and broken (RFC 6331); mechanisms without a security layer (PLAIN, SCRAM …) leave the
    whole session, including VM definitions, in cleartext once `tcp_min_ssf` is lowered.

    Remediation: In /etc/sasl2/libvirt.conf set `mech_list: gssapi` (Kerberos), or move clients to
    the TLS listener.
    """
    for conf in network_confs(host):
        subject = f"{conf_name(conf)} sasl mech_list"
        auth = conf.setting("auth_tcp")
        if auth is None:
            yield unreadable(conf, subject)
            continue
        if auth.value != "sasl":
            continue
        on, _, _ = listener(host, conf, "tcp")
        if on is False:
            continue
        if host.sasl_configs is None:
            yield unknown(subject, "/etc/sasl2/libvirt.conf could not be read", sev(auth))
            continue
        mech_text = host.sasl_configs.get("libvirt", {}).get("mech_list")
        if mech_text is None:
            yield unknown(subject, "/etc/sasl2/libvirt.conf sets no mech_list: the SASL library "
                          "offers every installed mechanism", sev(auth))
            continue
        mechs = _mechanisms(mech_text)
        where_ = ev("/etc/sasl2/libvirt.conf", "mech_list", mech_text.strip())
        min_ssf = conf.setting("tcp_min_ssf")
        ssf = min_ssf.value if min_ssf is not None and isinstance(min_ssf.value, int) else 112
        cleartext = [m for m in mechs if m in _NO_SECURITY_LAYER or m.startswith("scram-")]
        if "digest-md5" in mechs:
            yield fail(subject, "SASL mech_list offers DIGEST-MD5 on the TCP listener: it is "
                       "obsolete and broken (RFC 6331)", where_, sev(auth))
        elif cleartext and ssf < 56:
            yield fail(subject, f"SASL mech_list offers {', '.join(cleartext)} (no security layer) "
                       f"and tcp_min_ssf = {ssf}: sessions run in cleartext", where_, sev(auth))
        else:
            yield ok(subject, f"SASL mech_list is {' '.join(mechs) or '(empty)'}", where_, sev(auth))


@check("VMS-DMN-003", title="The libvirt TLS listener verifies client certificates",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "libvirtd", "tls"),
       references=(LIBVIRTD_CONF_DOC, "https://libvirt.org/kbase/tlscerts.html"))
def tls_client_verification(host: Host) -> Iterator[Result]:
    """On the TLS listener the client certificate is the primary authentication.
    `tls_no_verify_certificate = 1` accepts any client (high); `tls_no_sanity_certificate = 1` skips
    the server's own certificate checks (medium); with `auth_tls = "none"` and no
    `tls_allowed_dn_list`, every certificate the CA ever issued gets full control (medium).

    Remediation: Keep `tls_no_verify_certificate = 0` and `tls_no_sanity_certificate = 0`; set
    `tls_allowed_dn_list` to the management clients' DNs, or use `auth_tls = "sasl"`.
    """
    for conf in network_confs(host):
        name = conf_name(conf)
        on, why, evidence = listener(host, conf, "tls")
        if on is False:
            continue
        nv, ns, dn, auth = (conf.setting(k) for k in ("tls_no_verify_certificate",
                                                      "tls_no_sanity_certificate",
                                                      "tls_allowed_dn_list", "auth_tls"))
        if nv is None or ns is None or dn is None or auth is None:
            yield unreadable(conf, f"{name} tls")
            continue
        for s, harm, severity in (
                (nv, "the TLS listener accepts clients without a valid certificate", Severity.HIGH),
                (ns, "the daemon does not sanity-check its own certificate", Severity.MEDIUM)):
            subject = f"{name} {s.key}"
            if s.as_bool():
                yield fail(subject, f"{s.key} = {show(s.value)} {where(s)}: {harm} (TLS listener: "
                           f"{why})", sev(s),
                           *evidence, severity=severity)
            else:
                yield ok(subject, f"{s.key} = {show(s.value)} {where(s)}", sev(s))
        subject = f"{name} tls_allowed_dn_list"
        dns = dn.as_list()
        if on is None and not dns:
            continue  # a missing allow-list only matters once the listener is known to be on
        if dns:
            yield ok(subject, f"tls_allowed_dn_list restricts clients to {len(dns)} DN pattern(s)",
                     sev(dn))
        elif auth.value == "none":
            yield fail(subject, f"tls_allowed_dn_list is not set and auth_tls = \"none\" "
                       f"{where(auth)}: any certificate signed by the CA gets full control ({why})",
                       sev(dn), sev(auth), *evidence, severity=Severity.MEDIUM)
        else:
            yield ok(subject, f"no DN allow-list, but auth_tls = {show(auth.value)} adds "
                     "authentication", sev(dn), sev(auth))


_QEMU_GROUPS = frozenset({"root", "qemu", "libvirt-qemu", "kvm", "libvirt"})


@check("VMS-DMN-004", title="TLS private keys are readable only by root (and QEMU)",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "tls", "file-permissions"),
       references=("https://libvirt.org/kbase/tlscerts.html",
                   "https://www.qemu.org/docs/master/system/vnc-security.html"))
def tls_key_permissions(host: Host) -> Iterator[Result]:
    """Whoever reads a TLS server key can impersonate the daemon or decrypt recorded sessions (for
    non-forward-secret ciphers). Keys should be 0600 root (QEMU's may be 0640 root:qemu); a
    certificate or key that others can write can be replaced. A user or group a POSIX ACL names
    counts like the mode's group would.

    Remediation: `chown root:root` and `chmod 0600` the libvirt keys (0640 root:qemu for QEMU's
    server-key.pem); make certificates 0644 root.
    """
    for tls in host.tls_files:
        st = tls.stat
        if st.exists is False:
            continue
        subject = f"{tls.role} {st.path}"
        if st.exists is None or st.mode is None:
            yield unknown(subject, f"{st.path} could not be examined: {st.error or 'no mode'}")
            continue
        shown = mode_and_owners(st)
        where_ = ev(st.path, "mode", shown)
        is_key = "key" in tls.role.lower()
        problems = []
        if st.uid not in (0, None):
            problems.append(f"it is owned by {st.owner or st.uid}, not root")
        if st.mode & 0o002 or (group_bits(st) & WRITE and st.gid not in (0, None)):
            problems.append("non-root users can write it")
        problems += acl_grants(st, WRITE, (), "write")
        if is_key and st.mode & 0o004:
            problems.append("every local user can read it")
        elif is_key and group_bits(st) & READ and st.gid != 0 and (st.group or "") not in _QEMU_GROUPS:
            problems.append(f"group {st.group or st.gid} can read it")
        if is_key:
            problems += acl_grants(st, READ, _QEMU_GROUPS, "read")
        if problems:
            yield fail(subject, f"{st.path} is mode {shown}: {'; '.join(problems)}", where_)
        elif st.acl_error:
            yield unknown(subject, f"{st.path} is mode {shown}, but {st.acl_error}: who else may use it "
                          "is unknown", where_)
        else:
            yield ok(subject, f"{st.path} is mode {shown}", where_)
