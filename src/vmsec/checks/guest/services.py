"""Network services that should not run: cleartext logins (telnet, r-services, FTP), unauthenticated
file transfer (TFTP), legacy super-servers and RPC directories (inetd, NIS, talk), SNMP, and a
graphical login on a server.

A service counts as running when it starts at boot (a systemd unit the start transaction of
default.target reaches — through wants/ links, ``Wants=``/``Requires=`` and aliases such as
``display-manager.service`` —, an inetd line, an xinetd entry with ``disable = no``, a SysV or OpenRC
runlevel link). One that is installed but not enabled, or linked only into a target the boot does
not reach, passes, with a note. On a running system (the live host, a guest over SSH) a
service that runs now — an active systemd unit, or a process of that name — fails too, enabled or
not. When a service manager's configuration could not be read (``Guest.unread["services"]``: an
inetd.conf or a wants/ directory denied, too large …), a service found enabled is still a finding,
but "none is enabled" is UNKNOWN, naming what was not read: the service may be in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.unread import guest_unread, not_read, ok_unless
from vmsec.facts import Guest
from vmsec.facts.guest import Service
from vmsec.facts.runtime import RunningService


def _base(name: str) -> str:
    """`telnet.socket` → `telnet`; `getty@tty1.service` → `getty`; `in.tftpd` → `tftpd`."""
    base = name.strip().lower()
    for suffix in (".service", ".socket"):
        base = base.removesuffix(suffix)
    base = base.split("@", 1)[0]
    return base.removeprefix("in.")


def _running(guest: Guest, names: frozenset[str], only: Callable[[str], bool]) -> list[RunningService]:
    runtime = guest.runtime
    if runtime is None or runtime.services is None:
        return []
    return [s for s in runtime.services if _base(s.name) in names and only(s.name)]


def _judge(guest: Guest, label: str, names: frozenset[str], bad: str,
           severity: Severity | None = None,
           only: Callable[[Service], bool] = lambda s: True,
           only_running: Callable[[str], bool] = lambda name: True) -> Iterator[Result]:
    """One result per matching service (enabled at boot, or running now), or one PASS when none is."""
    running = _running(guest, names, only_running)
    for proc in running:
        how = (f"pid {proc.pid}, in the process table" if proc.source == "process"
               else f"systemd unit {proc.state}")
        yield fail(f"running {proc.name}", f"{proc.name} runs now ({how}): {bad}",
                   ev(guest.runtime.source if guest.runtime else "runtime", proc.name, proc.state),
                   severity=severity)
    if guest.services is None:
        if not running:
            yield unknown(label, "the enabled services could not be read")
        return
    unread = guest_unread(guest, "services")
    found: list[Service] = [s for s in guest.services if _base(s.name) in names and only(s)]
    for svc in found:
        subject = f"{svc.manager} {svc.name}"
        where = ev(svc.origin or svc.manager, svc.name, svc.exec_start or
                   ("enabled" if svc.enabled else "not enabled" if svc.enabled is False else None))
        if svc.enabled is None:
            yield unknown(subject, f"{svc.name} is present; whether it is enabled could not be "
                          "determined", where)
        elif svc.enabled:
            yield fail(subject, f"{svc.name} ({svc.manager}) is enabled: {bad}", where,
                       severity=severity)
        else:  # an unread wants/ directory could enable it
            yield ok_unless(unread, subject, f"{svc.name} is installed but not enabled", where)
    if not found and not running:
        now = ""
        if guest.runtime is not None and guest.runtime.services is not None:
            now = (f" and none among the {len(guest.runtime.services)} running "
                   f"({guest.runtime.services_source})")
            if guest.runtime.services_unread:  # one not listed may run all the same
                unread = (*unread, f"running processes ({guest.runtime.services_unread})")
        yield ok_unless(unread, label, f"no {label} service among {len(guest.services)} services{now}")


_TELNET = frozenset({"telnet", "telnetd", "utelnetd", "telnetd-ssl"})


@check("VMS-GST-085", title="No telnet server is enabled", severity=Severity.HIGH,
       tags=(Tag.ACCESS_CONTROL, "telnet", "cleartext", "network-service"),
       references=("https://www.rfc-editor.org/rfc/rfc854",))
def telnet_server(guest: Guest) -> Iterator[Result]:
    """Telnet sends the login name, the password and the whole session in clear text; anyone on
    the path (another tenant on a shared bridge, a compromised router) reads and can hijack them.

    Remediation: Disable and remove the telnet server (`systemctl disable --now telnet.socket`,
    remove the inetd/xinetd entry, `apt purge telnetd` / `dnf remove telnet-server`); use SSH.
    """
    yield from _judge(guest, "telnet", _TELNET, "logins and passwords cross the network in clear text")


# inetd service names for the r-services are shell (rsh), login (rlogin) and exec (rexec).
_R_SERVICES = frozenset({"rsh", "rlogin", "rexec", "rshd", "rlogind", "rexecd", "shell", "login",
                         "exec"})


@check("VMS-GST-086", title="No r-services (rsh, rlogin, rexec) are enabled",
       severity=Severity.CRITICAL, tags=(Tag.ACCESS_CONTROL, "rsh", "cleartext", "network-service"),
       references=("https://www.rfc-editor.org/rfc/rfc1282",))
def r_services(guest: Guest) -> Iterator[Result]:
    """rsh and rlogin authenticate by the client's source address and `~/.rhosts` / `hosts.equiv`
    trust files, and rexec sends passwords in clear text. Source addresses are trivially spoofed
    on a shared network: these services amount to login without a password.

    Remediation: Disable `rsh.socket`, `rlogin.socket`, `rexec.socket` and the inetd/xinetd
    entries `shell`, `login`, `exec`; remove rsh-server / rsh-redone-server; delete .rhosts and
    hosts.equiv files.
    """
    # "login"/"exec"/"shell" are r-services only as inetd entries; as units they are other things.
    def is_r(s: Service) -> bool:
        return s.manager in ("inetd", "xinetd") or _base(s.name) not in {"login", "exec", "shell"}

    # A running /bin/login is the console login, not rlogin.
    yield from _judge(guest, "r-services", _R_SERVICES,
                      "host-based trust or cleartext passwords give remote login", only=is_r,
                      only_running=lambda name: _base(name) not in {"login", "exec", "shell"})


_TFTP = frozenset({"tftp", "tftpd", "tftpd-hpa", "atftpd", "atftp"})


@check("VMS-GST-087", title="No TFTP server is enabled", severity=Severity.HIGH,
       tags=(Tag.ACCESS_CONTROL, "tftp", "network-service"),
       references=("https://www.rfc-editor.org/rfc/rfc1350",))
def tftp_server(guest: Guest) -> Iterator[Result]:
    """TFTP has no authentication at all: whoever reaches UDP port 69 reads (and, with `--create`,
    writes) the served files — often boot images and device configurations with secrets.

    Remediation: Disable tftpd-hpa / tftp.socket / the xinetd entry unless this machine is a PXE
    server; if it is, run it with `--secure`, without `--create`, and firewall it to the
    provisioning network.
    """
    yield from _judge(guest, "tftp", _TFTP, "files are served without authentication")


_FTP = frozenset({"ftp", "ftpd", "vsftpd", "proftpd", "pure-ftpd", "pure-ftpd-mysql", "wu-ftpd",
                  "pureftpd"})


@check("VMS-GST-088", title="No FTP server is enabled", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "ftp", "cleartext", "network-service"),
       references=("https://www.rfc-editor.org/rfc/rfc959",
                   "https://security.appspot.com/vsftpd/vsftpd_conf.html"))
def ftp_server(guest: Guest) -> Iterator[Result]:
    """FTP logins send passwords in clear text unless TLS is forced, and anonymous FTP serves (or
    accepts) files from anyone. vmsec does not yet read the FTP servers' own configuration, so any
    enabled FTP server is reported for review.

    Remediation: Replace FTP with SFTP; if FTP must stay, disable anonymous access
    (`anonymous_enable=NO`) and force TLS (`ssl_enable=YES`, `force_local_logins_ssl=YES`).
    """
    yield from _judge(guest, "ftp", _FTP, "FTP logins are cleartext unless TLS is forced")


_INETD = frozenset({"inetd", "xinetd", "openbsd-inetd", "inetutils-inetd", "rlinetd"})


@check("VMS-GST-089", title="No inetd/xinetd super-server is enabled", severity=Severity.MEDIUM,
       tags=(Tag.CONFIGURATION, "inetd", "network-service"),
       references=("https://manpages.debian.org/bookworm/openbsd-inetd/inetd.8.en.html",))
def super_server(guest: Guest) -> Iterator[Result]:
    """inetd and xinetd exist to start legacy services (telnet, rsh, tftp, echo/chargen) on demand;
    modern daemons do not need them. An enabled super-server is a place where such services hide.

    Remediation: Disable and remove inetd/xinetd once the services it starts are migrated or gone.
    """
    yield from _judge(guest, "inetd", _INETD, "a super-server starts legacy network services")


_NIS = frozenset({"ypserv", "ypbind", "yppasswdd", "ypxfrd", "nis", "rpc.yppasswdd"})


@check("VMS-GST-090", title="NIS is not in use", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "nis", "cleartext", "network-service"),
       references=("https://www.cve.org/CVERecord?id=CVE-1999-0208",))
def nis_services(guest: Guest) -> Iterator[Result]:
    """NIS (YP) serves password hashes to any client that knows the domain name, over
    unauthenticated RPC; a client trusts whatever server answers first.

    Remediation: Replace NIS with LDAP over TLS or Kerberos (sssd); disable ypserv/ypbind.
    """
    yield from _judge(guest, "nis", _NIS, "NIS hands out account data over unauthenticated RPC")


_TALK = frozenset({"talk", "ntalk", "talkd", "ntalkd"})


@check("VMS-GST-091", title="No talk server is enabled", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "talk", "network-service"),
       references=("https://manpages.debian.org/bookworm/talkd/talkd.8.en.html",))
def talk_server(guest: Guest) -> Iterator[Result]:
    """talkd is an unauthenticated, cleartext chat service from the 1980s: nothing uses it, and it
    is network attack surface.

    Remediation: Remove talkd and its inetd entries (`talk`, `ntalk`).
    """
    yield from _judge(guest, "talk", _TALK, "an unauthenticated legacy chat service listens")


_SNMP = frozenset({"snmpd", "snmptrapd"})


@check("VMS-GST-092", title="No SNMP agent is enabled without review", severity=Severity.LOW,
       tags=(Tag.ACCESS_CONTROL, "snmp", "network-service"),
       references=("https://www.rfc-editor.org/rfc/rfc3414",))
def snmp_agent(guest: Guest) -> Iterator[Result]:
    """SNMP v1/v2c authenticate with a community string sent in clear text, and default
    communities (`public`, `private`) are the first thing scanners try; a read-write community is
    remote configuration access. vmsec does not yet read snmpd.conf, so an enabled agent is
    reported for review.

    Remediation: Disable snmpd where nothing polls it; otherwise use SNMPv3 with authPriv, remove
    `rocommunity`/`rwcommunity`/`com2sec` lines and restrict the agent address.
    """
    yield from _judge(guest, "snmp", _SNMP, "check its communities: v1/v2c strings travel in clear text")


_DISPLAY_MANAGERS = frozenset({"gdm", "gdm3", "lightdm", "sddm", "xdm", "kdm", "lxdm", "slim",
                               "display-manager", "greetd", "wdm", "nodm"})


@check("VMS-GST-093", title="No graphical display manager runs on a server", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "x11", "desktop"),
       references=("https://www.cisecurity.org/benchmark/debian_linux",))
def display_manager(guest: Guest) -> Iterator[Result]:
    """A display manager pulls in the X/Wayland stack, a graphical login (XDMCP when enabled) and
    many packages a server never needs: more code as root, more updates to miss.

    Remediation: `systemctl set-default multi-user.target` and disable the display manager, or
    remove the desktop packages.
    """
    yield from _judge(guest, "display manager", _DISPLAY_MANAGERS,
                      "a graphical login stack runs on this system")


@check("VMS-GST-094", title="The rpcbind service is enabled only for NFS or NIS", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "rpcbind", "network-service"),
       references=("https://www.cve.org/CVERecord?id=CVE-2017-8779",))
def rpcbind_without_nfs(guest: Guest) -> Iterator[Result]:
    """rpcbind maps RPC programs to ports for any client and has been used for UDP amplification
    and memory-exhaustion attacks (CVE-2017-8779). It is needed for NFSv3 and NIS; otherwise it is
    surface for nothing.

    Remediation: `systemctl disable --now rpcbind.service rpcbind.socket` when no NFSv3/NIS is used.
    """
    if guest.services is None:
        yield unknown("rpcbind", "the enabled services could not be read")
        return
    nfs = [s for s in guest.services if s.enabled and _base(s.name) in
           {"nfs-server", "nfs-kernel-server", "nfs-client.target", "nfs-mountd", "rpc-statd",
            "ypbind", "ypserv", "nfs"}]
    rpc = [s for s in guest.services if _base(s.name) in {"rpcbind", "portmap"}]
    unread = guest_unread(guest, "services")
    if not rpc:
        yield ok_unless(unread, "rpcbind", "rpcbind is not present")
        return
    for svc in rpc:
        where = ev(svc.origin or svc.manager, svc.name, svc.enabled)
        if svc.enabled is None:
            yield unknown(f"{svc.manager} {svc.name}", "whether rpcbind is enabled could not be "
                          "determined", where)
        elif not svc.enabled:
            yield ok_unless(unread, f"{svc.manager} {svc.name}", f"{svc.name} is installed but not enabled",
                            where)
        elif nfs:
            yield ok(f"{svc.manager} {svc.name}", f"{svc.name} is enabled for "
                     f"{', '.join(s.name for s in nfs)}", where)
        elif unread:  # an NFS or NIS service may be among what was not read
            yield not_read(unread, f"{svc.manager} {svc.name}", f"{svc.name} is enabled and no NFS or NIS "
                           "service uses it", where)
        else:
            yield fail(f"{svc.manager} {svc.name}", f"{svc.name} is enabled and no NFS or NIS service "
                       "uses it", where)
