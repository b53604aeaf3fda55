"""qemu.conf: data that QEMU sends over the network — TLS for character devices, NBD disks, backups
and live migration, where migration listens, and MAC filtering on bridge ports."""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.addresses import is_loopback, is_wildcard
from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.config import qemu_conf, qemu_settings, sev, show, unreadable, where
from vmsec.checks.qemu.confinement import QEMU_CONF_DOC, QEMU_SECURITY
from vmsec.checks.qemu.consoles import effective_verify
from vmsec.facts import Host

_SECUREUSAGE = "https://libvirt.org/kbase/secureusage.html"
_MIGRATION_DOC = "https://libvirt.org/migration.html"


@check("VMS-QEMU-019", title="QEMU's TLS endpoints verify client certificates",
       severity=Severity.MEDIUM, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "qemu", "tls"),
       references=(QEMU_CONF_DOC, "https://www.qemu.org/docs/master/system/tls.html"))
def tls_x509_verify(host: Host) -> Iterator[Result]:
    """TLS without client-certificate verification encrypts but lets anyone connect, and qemu.conf
    notes plain TLS is open to man-in-the-middle attacks on the console. The VNC default is 0 unless
    `default_tls_x509_verify = 1`; chardev and backup servers default to 1. (Migration: VMS-QEMU-023.)

    Remediation: Set `default_tls_x509_verify = 1` and remove `*_tls_x509_verify = 0` overrides.
    """
    conf = qemu_conf(host)
    vnc_tls, chardev_tls = qemu_settings(host, "vnc_tls", "chardev_tls", subject="qemu.conf tls_x509_verify")
    for service, enabled, builtin in (("vnc", vnc_tls.as_bool(), False),
                                      ("chardev", chardev_tls.as_bool(), True),
                                      ("backup", True, True)):
        if not enabled:
            continue  # that TLS endpoint is off; VMS-QEMU-016/020 judge the cleartext case
        key = f"{service}_tls_x509_verify"
        subject = f"qemu.conf {key}"
        verify, verify_ev, text = effective_verify(conf, key, builtin)
        if verify is None:
            yield unknown(subject, f"{text}: the value is not 0 or 1", verify_ev)
        elif verify:
            yield ok(subject, text, verify_ev)
        else:
            yield fail(subject, f"{text}: the {service} TLS server accepts any client", verify_ev)


def _tcp_chardevs(env: Environment) -> Iterator[tuple[str, str, str, bool | None, str | None]]:
    for dom in env.inventory.domains:
        for ch in dom.chardevs:
            if ch.type == "tcp":
                # QEMU connects a socket without a host to localhost; a listening one binds every address.
                host = ch.source_host or ("localhost" if (ch.source_mode or "connect") == "connect" else None)
                yield dom.name, dom.origin, ch.locator, ch.tls, host


@check("VMS-QEMU-020", title="TCP character devices use TLS", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "qemu", "chardev", "console"), references=(QEMU_CONF_DOC,))
def chardev_tls(host: Host, env: Environment) -> Iterator[Result]:
    """A serial console or channel on a TCP socket carries the guest's console (logins, passwords)
    and accepts input from anyone who connects. `chardev_tls = 1` makes such chardevs use TLS unless
    the domain says `tls='no'`.

    Remediation: Set `chardev_tls = 1` (with `chardev_tls_x509_verify = 1`), or use UNIX-socket or pty
    chardevs.
    """
    conf = qemu_conf(host)
    s = conf.setting("chardev_tls")
    for name, origin, locator, tls, source_host in _tcp_chardevs(env):
        subject = f"domain {name} {locator}"
        where_ = ev(origin, f"{locator}/source/@tls", tls)
        if tls is True:
            yield ok(subject, f"{name} {locator} is a TCP chardev with tls='yes'", where_)
        elif source_host is not None and is_loopback(source_host):
            yield ok(subject, f"{name} {locator} is a TCP chardev on loopback ({source_host})", where_)
        elif tls is False:
            yield fail(subject, f"{name} {locator} is a TCP chardev on {source_host or 'all interfaces'}"
                       " with tls='no': the console crosses the network in cleartext", where_)
        elif s is None:
            yield unreadable(conf, subject)
        elif s.as_bool():
            yield ok(subject, f"{name} {locator} uses TLS (chardev_tls = 1 {where(s)})", where_, sev(s))
        else:
            yield fail(subject, f"{name} {locator} is a TCP chardev on {source_host or 'all interfaces'}"
                       f" and chardev_tls = {show(s.value)} {where(s)}: the console crosses the "
                       "network in cleartext", where_, sev(s))


def _host_part(endpoint: str) -> str:
    """"[::1]:10809" -> "::1"; "nbd.example:10809" -> "nbd.example"."""
    if endpoint.startswith("["):
        return endpoint[1:endpoint.find("]")] if "]" in endpoint else endpoint
    return endpoint.rsplit(":", 1)[0]


@check("VMS-QEMU-021", title="NBD network disks use TLS", severity=Severity.MEDIUM,
       tags=(Tag.ENCRYPTION, "qemu", "nbd", "storage"), references=(QEMU_CONF_DOC, QEMU_SECURITY))
def nbd_tls(host: Host, env: Environment) -> Iterator[Result]:
    """A disk on a remote NBD server sends every block the guest reads or writes over the network.
    Without TLS, anyone on the path reads or alters the disk. `nbd_tls = 1` enables TLS for every NBD
    disk that does not say `tls='no'`.

    Remediation: Set `nbd_tls = 1` and configure the NBD server with TLS; or reach it over a UNIX
    socket.
    """
    conf = qemu_conf(host)
    s = conf.setting("nbd_tls")
    for dom in env.inventory.domains:
        for disk in dom.disks:
            if disk.type != "network" or disk.source_protocol != "nbd":
                continue
            hosts = [h for h in disk.source_hosts if not h.startswith("/")]
            if not hosts:
                continue  # UNIX-socket NBD stays on this host
            subject = f"domain {dom.name} {disk.locator}"
            where_ = ev(dom.origin, f"{disk.locator}/source/@tls", disk.source_tls)
            target = ", ".join(hosts)
            if disk.source_tls is True:
                yield ok(subject, f"NBD disk on {target} uses tls='yes'", where_)
            elif all(is_loopback(_host_part(h)) for h in hosts):
                yield ok(subject, f"NBD disk on loopback ({target})", where_)
            elif disk.source_tls is False:
                yield fail(subject, f"NBD disk on {target} sets tls='no': its data crosses the network "
                           "in cleartext", where_)
            elif s is None:
                yield unreadable(conf, subject)
            elif s.as_bool():
                yield ok(subject, f"NBD disk on {target} uses TLS (nbd_tls = 1 {where(s)})", where_,
                         sev(s))
            else:
                yield fail(subject, f"NBD disk on {target} and nbd_tls = {show(s.value)} {where(s)}: its "
                           "data crosses the network in cleartext", where_, sev(s))


@check("VMS-QEMU-022", title="Live migration is forced to use TLS", severity=Severity.HIGH,
       tags=(Tag.ENCRYPTION, "qemu", "migration"),
       references=(QEMU_CONF_DOC, _MIGRATION_DOC, QEMU_SECURITY))
def migrate_tls_force(host: Host) -> Iterator[Result]:
    """Native live migration sends the guest's whole RAM (and with storage migration, its disks) over
    the network. Unless the client asks for `--tls`, it goes in cleartext, and QEMU treats the
    incoming stream as untrusted input. `migrate_tls_force = 1` refuses migrations without TLS.

    Remediation: Set up migration certificates and `migrate_tls_force = 1`; or tunnel migrations
    (`--tunnelled` over TLS/SSH).
    """
    conf = qemu_conf(host)
    subject = "qemu.conf migrate_tls_force"
    s = conf.setting("migrate_tls_force")
    if s is None:
        yield unreadable(conf, subject)
    elif s.as_bool():
        yield ok(subject, f"migrate_tls_force = 1 {where(s)}", sev(s))
    else:
        yield fail(subject, f"migrate_tls_force = {show(s.value)} {where(s)}: migrations without "
                   "--tls send guest memory in cleartext", sev(s))


@check("VMS-QEMU-023", title="Migration TLS verifies the peer's certificate",
       severity=Severity.MEDIUM, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "qemu", "migration"),
       references=(QEMU_CONF_DOC, QEMU_SECURITY))
def migrate_tls_verify(host: Host) -> Iterator[Result]:
    """Without certificate verification on the destination, anyone who can reach the migration port
    can feed QEMU a crafted migration stream (untrusted input that becomes guest state) or receive
    a guest.

    Remediation: Remove `migrate_tls_x509_verify = 0` and `default_tls_x509_verify = 0`.
    """
    conf = qemu_conf(host)
    subject = "qemu.conf migrate_tls_x509_verify"
    verify, verify_ev, text = effective_verify(conf, "migrate_tls_x509_verify", True)
    if not conf.readable:
        yield unreadable(conf, subject)
    elif verify is None:
        yield unknown(subject, f"{text}: the value is not 0 or 1", verify_ev)
    elif verify:
        yield ok(subject, text, verify_ev)
    else:
        yield fail(subject, f"{text}: migration TLS accepts any peer", verify_ev)


@check("VMS-QEMU-024", title="Incoming migrations listen on a chosen address, not all interfaces",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "qemu", "migration", "network"),
       references=(QEMU_CONF_DOC, _SECUREUSAGE))
def migration_address(host: Host) -> Iterator[Result]:
    """During an incoming migration QEMU listens on ports 49152-49215. On all interfaces (the default
    `migration_address = "0.0.0.0"`), guests' or clients' networks can reach it to snoop or inject a
    stream. libvirt advises a migration network "accessible only to the virtualization hosts".

    Remediation: Set `migration_address` to this host's address on a dedicated migration network (and
    `migration_host` to match); firewall the port range.
    """
    subject = "qemu.conf migration_address"
    (s,) = qemu_settings(host, "migration_address", subject=subject)
    address = "0.0.0.0" if s.value is None else s.as_str()
    if address is None:
        yield unknown(subject, f"migration_address = {show(s.value)} {where(s)} is not an address",
                      sev(s))
        return
    if is_wildcard(address):
        yield fail(subject, f"migration_address = \"{address}\" {where(s)}: incoming migrations "
                   "listen on every interface", sev(s))
    else:
        yield ok(subject, f"migration_address = \"{address}\" {where(s)}", sev(s))


@check("VMS-QEMU-025", title="Guests cannot spoof MAC addresses on bridge ports",
       severity=Severity.LOW, tags=(Tag.ISOLATION, "qemu", "network", "spoofing"),
       references=(QEMU_CONF_DOC, "https://libvirt.org/formatnwfilter.html"))
def mac_filter(host: Host, env: Environment) -> Iterator[Result]:
    """On a shared bridge a guest can send frames with another VM's MAC address. `mac_filter = 1`
    (ebtables) or an nwfilter such as clean-traffic on each interface drops them.

    Remediation: Attach `<filterref filter='clean-traffic'/>` to guest interfaces (preferred), or set
    `mac_filter = 1` in qemu.conf.
    """
    subject = "qemu.conf mac_filter"
    (s,) = qemu_settings(host, "mac_filter", subject=subject)
    if s.as_bool():
        yield ok(subject, f"mac_filter = 1 {where(s)}", sev(s))
        return
    unfiltered = sorted({d.name for d in env.inventory.domains for i in d.interfaces
                         if i.type in ("bridge", "network") and not i.filterref})
    bridged = any(i.type in ("bridge", "network") for d in env.inventory.domains for i in d.interfaces)
    if bridged and not unfiltered:
        yield ok(subject, f"mac_filter = {show(s.value)}, but every bridged interface has an "
                 "nwfilter", sev(s))
    elif unfiltered:
        shown = ", ".join(unfiltered[:8]) + (" …" if len(unfiltered) > 8 else "")
        yield fail(subject, f"mac_filter = {show(s.value)} {where(s)} and domains {shown} have "
                   "bridged interfaces without an nwfilter: they can spoof MAC addresses", sev(s))
    else:
        yield fail(subject, f"mac_filter = {show(s.value)} {where(s)}: bridged guests without an "
                   "nwfilter can spoof MAC addresses", sev(s))
