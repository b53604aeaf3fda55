"""Provisioning and management channels inside the OS: cloud-init settings that reopen password
logins or leave passwords behind, and the QEMU guest agent's commands that give the hypervisor side
a root shell in the guest."""

from __future__ import annotations

import re
from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.unread import guest_unread, not_read, ok_unless
from vmsec.facts import Guest
from vmsec.facts.guest import CloudInitSetup
from vmsec.findings import Evidence

_CLOUD_DOC = "https://cloudinit.readthedocs.io/en/latest/reference/modules.html"
_QGA_DOC = "https://www.qemu.org/docs/master/interop/qemu-ga.html"


def _cloud(guest: Guest, subject: str) -> CloudInitSetup | Result | None:
    """The cloud-init facts, an UNKNOWN result, or None when cloud-init is absent."""
    ci = guest.cloud_init
    if ci is None:
        return unknown(subject, "the cloud-init configuration could not be read")
    if not ci.present:
        return None
    return ci


def _where(ci: CloudInitSetup, key: str, value: object) -> tuple[Evidence, ...]:
    return tuple(ev(o, key, value) for o in ci.origins[:3]) or (ev("/etc/cloud/cloud.cfg", key, value),)


@check("VMS-GST-132", title="SSH password logins are not enabled by cloud-init",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "cloud-init", "ssh"),
       references=(_CLOUD_DOC, "https://github.com/canonical/cloud-init/issues/5934"))
def cloud_init_ssh_pwauth(guest: Guest) -> Iterator[Result]:
    """`ssh_pwauth: true` makes cloud-init write `PasswordAuthentication yes` into
    /etc/ssh/sshd_config.d/50-cloud-init.conf, which sshd reads before the main file: it overrides
    a hardened sshd_config and exposes every password to guessing.

    Remediation: Set `ssh_pwauth: false` in /etc/cloud/cloud.cfg.d/ and the user-data; use keys.
    """
    ci = _cloud(guest, "cloud-init ssh_pwauth")
    if not isinstance(ci, CloudInitSetup):
        if ci is not None:
            yield ci
        return
    if ci.ssh_pwauth is None:
        yield ok("cloud-init ssh_pwauth", "ssh_pwauth is not set: cloud-init leaves sshd's "
                 "PasswordAuthentication alone", *_where(ci, "ssh_pwauth", None))
    elif ci.ssh_pwauth:
        yield fail("cloud-init ssh_pwauth", "set to true: cloud-init turns SSH password "
                   "logins on", *_where(ci, "ssh_pwauth", "true"))
    else:
        yield ok("cloud-init ssh_pwauth", "set to false", *_where(ci, "ssh_pwauth", "false"))


def _place(place: str) -> tuple[str, str]:
    """"/etc/cloud/cloud.cfg.d/90-local.cfg: users[].plain_text_passwd (ops)" → (file, key)."""
    match = re.match(r"(\S+?):?\s+(.+)", place.strip())
    return (match.group(1), match.group(2)) if match else (place.strip(), "password")


@check("VMS-GST-133", title="No plaintext passwords in cloud-init data", severity=Severity.HIGH,
       tags=(Tag.ACCESS_CONTROL, "cloud-init", "secrets"),
       references=(_CLOUD_DOC,))
def cloud_init_plaintext_passwords(guest: Guest) -> Iterator[Result]:
    """`plain_text_passwd:`, `chpasswd` lists with `type: text`, or a plain `password:` leave the
    password in /etc/cloud and /var/lib/cloud/instances/*/user-data.txt for as long as the disk
    exists — readable by anyone who gets a copy of the image, and valid wherever it was reused.
    cloud-init's own reading decides: a number or `true` is a password too, an empty `password:`
    sets the password "None", and in `password:` or `chpasswd.list` only MD5, bcrypt and SHA-256/512
    crypt count as hashes — a yescrypt `$y$` string there becomes the password itself. Vendor data
    counts even when cloud-init does not apply it (it is stored all the same); a file that is not
    valid YAML, which cloud-init skips, leaves the verdict UNKNOWN unless another file FAILs.

    Remediation: Use `hashed_passwd` / `passwd` (yescrypt or SHA-512 crypt), `chpasswd.users` with
    `type: hash`, or SSH keys only; purge /var/lib/cloud/instances/*/user-data.txt before imaging
    and change the exposed passwords.
    """
    ci = _cloud(guest, "cloud-init passwords")
    if not isinstance(ci, CloudInitSetup):
        if ci is not None:
            yield ci
        return
    for place in ci.plaintext_passwords:
        path, key = _place(place)
        yield fail(f"cloud-init password {place}", "a plaintext password is stored in cloud-init data",
                   ev(path, key, "(redacted)"))
    if not ci.plaintext_passwords and ci.unparsed:  # cloud-init skips them; a password may be in them
        shown = "; ".join(ci.unparsed[:3]) + (" …" if len(ci.unparsed) > 3 else "")
        yield unknown("cloud-init passwords", f"no plaintext password in the cloud-init data read, but "
                      f"{len(ci.unparsed)} file(s) or part(s) are not valid cloud-config and may hold one: "
                      f"{shown}", *_where(ci, "password", None))
    elif not ci.plaintext_passwords:
        yield ok("cloud-init passwords", "no plaintext password in the cloud-init data read",
                 *_where(ci, "password", None))


@check("VMS-GST-134", title="Root logins stay disabled in cloud-init", severity=Severity.MEDIUM,
       tags=(Tag.ACCESS_CONTROL, "cloud-init", "root"), references=(_CLOUD_DOC,))
def cloud_init_disable_root(guest: Guest) -> Iterator[Result]:
    """By default (`disable_root: true`) cloud-init puts the provided SSH keys on root behind a
    command that refuses the login and names the default user. `disable_root: false` makes those
    keys direct root logins, without the accountability of a named user and sudo.

    Remediation: Remove `disable_root: false`; log in as the default user and use sudo.
    """
    ci = _cloud(guest, "cloud-init disable_root")
    if not isinstance(ci, CloudInitSetup):
        if ci is not None:
            yield ci
        return
    if ci.disable_root is False:
        yield fail("cloud-init disable_root", "set to false: the SSH keys cloud-init installs "
                   "log in directly as root", *_where(ci, "disable_root", "false"))
    else:
        value = "default (true)" if ci.disable_root is None else "true"
        yield ok("cloud-init disable_root", f"set to {value}", *_where(ci, "disable_root", value))


_EXEC = ("guest-exec", "guest-exec-status")
_FILE = ("guest-file-open", "guest-file-read", "guest-file-write", "guest-file-close")
_CREDS = ("guest-set-user-password", "guest-ssh-add-authorized-keys")


def _agent_results(guest: Guest, groups: tuple[tuple[str, tuple[str, ...], str], ...]
                   ) -> Iterator[Result]:
    agent = guest.guest_agent
    if agent is None:
        yield unknown("qemu-guest-agent", "whether the QEMU guest agent is installed could not be "
                      "determined")
        return
    if not agent.installed:
        yield ok("qemu-guest-agent", "the QEMU guest agent is not installed")
        return
    state = {True: "enabled at boot", False: "not enabled at boot, but udev starts it when the "
             "virtio channel appears", None: "installed"}[agent.enabled]
    origin = agent.origin or "qemu-guest-agent"
    if agent.refused is not None:
        # It does not start as configured, so nothing is reachable now — but vmsec's reading of which
        # options and files qemu-ga refuses is not the agent itself: not a PASS.
        for label, _rpcs, _harm in groups:
            yield unknown(f"qemu-guest-agent {label}", f"{agent.refused}: the agent would not start with "
                          "this setup, so its RPC filter is not judged", ev(origin, "refused", agent.refused))
        return
    # A unit, drop-in, EnvironmentFile or qemu-ga.conf that was not read may block or reopen any RPC.
    unread = guest_unread(guest, "guest_agent")
    for label, rpcs, harm in groups:
        open_ = [r for r in rpcs if agent.accepts(r)]
        subject = f"qemu-guest-agent {label}"
        if open_:
            where = ev(origin, "allow-rpcs" if agent.allowed_rpcs is not None else "block-rpcs",
                       agent.allowed_rpcs if agent.allowed_rpcs is not None else
                       (agent.blocked_rpcs or "(none)"))
            if unread and agent.allowed_rpcs is None:
                # open only because nothing read blocks them (qemu-ga's default): not a finding
                yield not_read(unread, subject, f"nothing blocks {', '.join(open_)}", where)
            else:  # named in an allow-list that was read: a finding whatever else there is
                yield fail(subject, f"the guest agent accepts {', '.join(open_)}: {harm} ({state})", where)
        else:
            yield ok_unless(unread, subject, f"{', '.join(rpcs)} are blocked in the guest agent",
                            ev(origin, "blocked", ", ".join(rpcs)))


@check("VMS-GST-135", title="The QEMU guest agent refuses command execution and file access",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "qemu-guest-agent", "management-plane"),
       references=(_QGA_DOC, "https://wiki.qemu.org/Features/GuestAgent"))
def guest_agent_exec(guest: Guest) -> Iterator[Result]:
    """The guest agent runs as root and obeys whoever holds the host side of its virtio channel:
    `guest-exec` runs any command and `guest-file-*` reads and writes any file. A compromise of the
    hypervisor host or of the management plane is then root in every such guest, without a
    password or a trace in the guest's login records.

    Remediation: Block them in the `[general]` section of /etc/qemu/qemu-ga.conf:
    `block-rpcs=guest-exec,guest-exec-status,guest-file-open,guest-file-read,guest-file-write,guest-file-close`
    (RHEL: `BLOCK_RPCS` / `FILTER_RPC_ARGS` in /etc/sysconfig/qemu-ga), or remove the agent if
    nothing uses it.
    """
    yield from _agent_results(guest, (
        ("guest-exec", _EXEC, "the host side can run any command as root"),
        ("guest-file", _FILE, "the host side can read and write any file"),
    ))


@check("VMS-GST-136", title="The QEMU guest agent cannot change passwords or SSH keys",
       severity=Severity.MEDIUM, tags=(Tag.ISOLATION, "qemu-guest-agent", "management-plane"),
       references=(_QGA_DOC,))
def guest_agent_credentials(guest: Guest) -> Iterator[Result]:
    """`guest-set-user-password` and `guest-ssh-add-authorized-keys` let the host side set any
    user's password or add an SSH key — including root's — giving it a way in over the network
    too.

    Remediation: Add `guest-set-user-password,guest-ssh-add-authorized-keys` to `block-rpcs` in
    /etc/qemu/qemu-ga.conf unless password reset through the hypervisor is a wanted feature.
    """
    yield from _agent_results(guest, (
        ("credentials", _CREDS, "the host side can set passwords and install SSH keys"),
    ))
