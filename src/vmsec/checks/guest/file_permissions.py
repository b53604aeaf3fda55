"""Who can read or change the files that hold or guard credentials: the account databases and their
backups, sshd's configuration and host keys, the sudoers policy, and every authorized_keys file with
the directories above it.

Facts are ``Guest.file_stats`` (owner, group and mode as the target's own root sees them, and the
POSIX access ACL where the reader can read it: a local or copied root, an ext2/3/4 filesystem in a
disk image). A named user or group an ACL lets in counts like the mode bits' group would, under the
ACL's mask; with an ACL the owning group's permissions are its own entry, not the mode's group bits
(which are the mask). An ACL that could not be read leaves a file whose mode bits are fine UNKNOWN;
over SSH and the guest agent ACLs are not read and the mode bits decide. A file that does not exist
gets no result; one that could not be examined is UNKNOWN. Owner names come from the guest's own
/etc/passwd and /etc/group. The rules follow what the programs themselves
enforce where they do (sudo's and sshd's own permission checks), and the CIS benchmarks elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Environment, Result, Severity, Tag, check, ev, fail, need, ok, unknown
from vmsec.checks.helpers.file_access import READ, WRITE, acl_grants, group_bits
from vmsec.checks.helpers.file_access import mode_and_owners as _who
from vmsec.checks.helpers.sshd import is_yes, sshd_of
from vmsec.checks.helpers.unread import guest_unread, unread_text
from vmsec.facts import FileStat, Guest
from vmsec.findings import Evidence
from vmsec.parsers.authorized_keys import DEFAULT_FILES, key_file_paths
from vmsec.parsers.sshd_effective import global_value
from vmsec.parsers.sudoers import sudo_refusal

CIS_DEBIAN = "https://www.cisecurity.org/benchmark/debian_linux"
SSHD_DOC = "https://man.openbsd.org/sshd_config"
SUDOERS_DOC = "https://www.sudo.ws/docs/man/sudoers.man/"

SHADOW_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-")
ACCOUNT_FILES = ("/etc/passwd", "/etc/passwd-", "/etc/group", "/etc/group-")
# Groups that may read a private key or the shadow file by design.
SHADOW_GROUPS = frozenset({"root", "shadow"})
HOST_KEY_GROUPS = frozenset({"root", "ssh_keys"})  # RHEL: 0640 root:ssh_keys


def _stats(guest: Guest) -> dict[str, FileStat]:
    return dict(need(guest.file_stats, "the credential files could not be examined"))


def _where(st: FileStat) -> tuple[Evidence, ...]:
    return (ev(st.path, "mode owner:group", _who(st)),)


def _present(stats: dict[str, FileStat], paths: tuple[str, ...] | list[str]) -> Iterator[FileStat]:
    for path in paths:
        st = stats.get(path)
        if st is not None and st.exists is not False:
            yield st


def _non_root_writers(st: FileStat, writer_groups: frozenset[str] = frozenset({"root"})) -> list[str]:
    assert st.mode is not None
    problems = []
    if st.uid not in (0, None):
        problems.append(f"it is owned by {st.owner or st.uid}, not root")
    if st.mode & 0o002:
        problems.append("every local user can write it")
    if group_bits(st) & WRITE and st.gid != 0 and (st.group or "") not in writer_groups:
        problems.append(f"group {st.group or st.gid} can write it")
    return problems + acl_grants(st, WRITE, writer_groups, "write")


def _secret_exposure(st: FileStat, reader_groups: frozenset[str] | tuple[str, ...],
                     others: str = "every local user can read it") -> list[str]:
    """What is wrong with a secret file: non-root writers, and readers beyond root and
    ``reader_groups``."""
    assert st.mode is not None
    problems = _non_root_writers(st)
    if st.mode & 0o004:
        problems.append(others)
    elif group_bits(st) & READ and st.gid != 0 and (st.group or "") not in reader_groups:
        problems.append(f"group {st.group or st.gid} can read it")
    return problems + acl_grants(st, READ, reader_groups, "read")


def _verdict(st: FileStat, problems: list[str]) -> Result:
    if problems:
        return fail(st.path, f"{st.path} is {_who(st)}: {'; '.join(problems)}", *_where(st))
    if st.acl_error:  # the mode bits are fine, but an ACL may let others in
        return unknown(st.path, f"{st.path} is {_who(st)}, but {st.acl_error}: who else may use it is "
                       "unknown", *_where(st))
    return ok(st.path, f"{st.path} is {_who(st)}", *_where(st))


def _unexamined(st: FileStat) -> Result | None:
    if st.exists is None or st.mode is None:
        return unknown(st.path, f"{st.path} could not be examined: {st.error or 'no mode'}")
    return None


@check("VMS-GST-140", title="Password hashes (shadow, gshadow and their backups) are readable only by root",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "accounts", "file-permissions"),
       references=(CIS_DEBIAN, "https://man7.org/linux/man-pages/man5/shadow.5.html"))
def shadow_permissions(guest: Guest, env: Environment) -> Iterator[Result]:
    """/etc/shadow and /etc/gshadow hold the password hashes; the `-` files are their previous
    versions, left by every account change and just as sensitive. A local user who can read them
    cracks the hashes offline at leisure; one who can write them sets any password, root's included.
    Only root may write them; reading is for root and, on Debian, the `shadow` group (0640
    root:shadow; RHEL uses 0000).

    Remediation: `chown root:shadow /etc/shadow* /etc/gshadow*` (RHEL: `root:root`) and
    `chmod 0640` (RHEL: `0000`) — the backups too.
    """
    stats = _stats(guest)
    for st in _present(stats, SHADOW_FILES):
        if (missing := _unexamined(st)) is not None:
            yield missing
            continue
        yield _verdict(st, _secret_exposure(st, SHADOW_GROUPS))


@check("VMS-GST-141", title="Account databases (passwd, group and their backups) are writable only by root",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "accounts", "file-permissions"),
       references=(CIS_DEBIAN, "https://man7.org/linux/man-pages/man5/passwd.5.html"))
def account_file_permissions(guest: Guest, env: Environment) -> Iterator[Result]:
    """/etc/passwd and /etc/group are meant to be world-readable, but whoever can write them can give
    an account UID 0 or put themselves in the `sudo` or `libvirt` group: root. The `-` files are the
    backups `vipw`/`useradd` restore from. Expected: 0644 root:root.

    Remediation: `chown root:root /etc/passwd* /etc/group*` and `chmod 0644` them.
    """
    stats = _stats(guest)
    for st in _present(stats, ACCOUNT_FILES):
        if (missing := _unexamined(st)) is not None:
            yield missing
            continue
        yield _verdict(st, _non_root_writers(st))


def _host_keys(guest: Guest, stats: dict[str, FileStat]) -> list[FileStat]:
    keys = [p for p in stats if p.startswith("/etc/ssh/ssh_host_") and p.endswith("_key")]
    if guest.sshd is not None:
        keys += [k for k in guest.sshd.settings.get("hostkey", ()) if k in stats]
    return list(_present(stats, list(dict.fromkeys(keys))))


@check("VMS-GST-142", title="SSH host private keys are readable only by root",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, Tag.ENCRYPTION, "ssh", "keys", "file-permissions"),
       references=(CIS_DEBIAN, "https://man.openbsd.org/sshd#FILES"))
def host_key_permissions(guest: Guest, env: Environment) -> Iterator[Result]:
    """A host private key is the server's identity: whoever reads it can impersonate the server and
    intercept logins to it. sshd itself refuses to load a key whose mode lets others read it, so such
    a key is also a host key that silently stopped working. Expected: 0600 root:root (RHEL: 0640
    root:ssh_keys).

    Remediation: `chown root:root /etc/ssh/ssh_host_*_key` and `chmod 0600` them (RHEL: 0640
    root:ssh_keys); regenerate a key that others could read (`ssh-keygen -A` after removing it).
    """
    if sshd_of(guest) is None:
        return
    stats = _stats(guest)
    for st in _host_keys(guest, stats):
        if (missing := _unexamined(st)) is not None:
            yield missing
            continue
        yield _verdict(st, _secret_exposure(st, HOST_KEY_GROUPS,
                                            "every local user can read it (sshd refuses to load it)"))


@check("VMS-GST-143", title="The sshd configuration files are owned by root and not writable by others",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "ssh", "file-permissions"),
       references=(CIS_DEBIAN, SSHD_DOC))
def sshd_config_permissions(guest: Guest, env: Environment) -> Iterator[Result]:
    """sshd runs as root and believes its configuration: whoever can change sshd_config or a file it
    includes can allow root logins, add an AuthorizedKeysCommand that runs their code as root, or
    turn authentication off at the next restart. Every file sshd reads, /etc/ssh itself, the
    directories holding those files (a file there can be replaced) and those an Include wildcard
    lists (`sshd_config.d`: a file added there is read, even while it is empty) must be root's alone.

    Remediation: `chown -R root:root /etc/ssh` and `chmod go-w` the directory, sshd_config.d,
    sshd_config and every file in sshd_config.d (0600 for the files, as CIS asks).
    """
    cfg = sshd_of(guest)
    if cfg is None:
        return
    stats = _stats(guest)
    for st in _present(stats, list(dict.fromkeys(["/etc/ssh", *cfg.config_paths()]))):
        if (missing := _unexamined(st)) is not None:
            yield missing
            continue
        yield _verdict(st, _non_root_writers(st))


@check("VMS-GST-144",
       title="The sudoers files and include directories are owned by root and writable only by root",
       severity=Severity.MEDIUM, tags=(Tag.ACCESS_CONTROL, "sudo", "file-permissions"),
       references=(SUDOERS_DOC, CIS_DEBIAN))
def sudoers_permissions(guest: Guest, env: Environment) -> Iterator[Result]:
    """The sudoers policy decides who becomes root. sudo protects itself: it refuses a sudoers file
    or include directory that is not owned by root, is world-writable, or is group-writable by a
    group other than root — the rules in it are then not applied and sudo may stop working for
    everyone. A file others can write is therefore a broken policy (and, for any sudo that would
    accept it, root for whoever writes it); a world-readable one shows everyone who may run what.
    sudo looks at the mode bits only, so an ACL that lets a named user or group write a file it
    accepts hands them root (high).
    Expected: files 0440 root:root, directories 0750 or 0755 root:root.

    Remediation: `chown -R root:root /etc/sudoers /etc/sudoers.d`, `chmod 0440` the files and
    `chmod 0750` the directory; check with `visudo -c`.
    """
    stats = _stats(guest)
    sudoers = need(guest.sudoers, "the sudoers policy could not be read")
    if not sudoers.files:
        return  # sudo is not configured
    for st in _present(stats, [*sudoers.files, *sudoers.dirs]):
        if (missing := _unexamined(st)) is not None:
            yield missing
            continue
        assert st.mode is not None
        refused = sudo_refusal(st)
        is_file = st.kind == "file"
        # sudo looks at the mode bits only: an ACL that lets a named user or group write passes its
        # test whenever the mask shows root's group writing — and whoever it names edits the policy.
        acl_writers = acl_grants(st, WRITE, frozenset({"root"}), "write")
        if refused is not None:
            yield fail(st.path, f"{st.path} is {_who(st)}: {refused}; sudo refuses it, so its rules are not "
                       "in force", *_where(st))
        elif acl_writers:
            yield fail(st.path, f"{st.path} is {_who(st)}: {'; '.join(acl_writers)}; sudo does not read "
                       "ACLs and accepts it, so they can grant themselves root", *_where(st),
                       severity=Severity.HIGH)
        elif is_file and st.mode & 0o004:
            yield fail(st.path, f"{st.path} is {_who(st)}: every local user can read who may run what as "
                       "root", *_where(st), severity=Severity.LOW)
        else:
            yield _verdict(st, [])


def _sshd_refuses(st: FileStat, users: tuple[str, ...]) -> str | None:
    """sshd's StrictModes test (auth_secure_path): owned by root or the user, and no group or other
    write permission."""
    assert st.mode is not None
    if st.uid != 0 and (st.owner or str(st.uid)) not in users:
        return f"it is owned by {st.owner or st.uid}, not root or {users[0]}"
    if st.mode & 0o022:
        return "group or other users can write it"
    return None


@check("VMS-GST-145",
       title="The authorized_keys files and the directories above them are writable only by their owner",
       severity=Severity.HIGH, tags=(Tag.ACCESS_CONTROL, "ssh", "keys", "file-permissions"),
       references=("https://man.openbsd.org/sshd_config#StrictModes", "https://man.openbsd.org/sshd#FILES"))
def authorized_keys_permissions(guest: Guest, env: Environment) -> Iterator[Result]:
    """Whoever can write an account's authorized_keys — or replace ~/.ssh or the home directory
    above it — adds their own key and logs in as that account. sshd guards against this with
    `StrictModes yes` (the default): it ignores a key file when the file or a directory up to the
    home directory is writable by group or others or owned by someone else. With `StrictModes no` the
    file is honoured (high); with StrictModes on, the keys in it silently do not work (info).

    Remediation: `chmod go-w ~ ~/.ssh ~/.ssh/authorized_keys` and `chown` them to the user; keep
    `StrictModes yes`.
    """
    cfg = sshd_of(guest)
    if cfg is None:
        return
    stats = _stats(guest)
    strict = global_value(cfg, "strictmodes")
    strict_on = strict is None or is_yes(strict.value)  # sshd's compiled default is yes
    accounts = need(guest.accounts, "/etc/passwd could not be read, so the key files are unknown")
    users_of: dict[str, list[str]] = {}
    key_files = cfg.settings.get("authorizedkeysfile") or DEFAULT_FILES
    # The same bounded list the collector examined (what it left out is in guest.unread).
    for user, _home, path in key_file_paths(accounts, key_files):
        users_of.setdefault(path, []).append(user)
    keys_in: dict[str, int] = {}
    for key in guest.authorized_keys or ():
        keys_in[key.path] = keys_in.get(key.path, 0) + 1
    for path, user_list in users_of.items():
        st = stats.get(path)
        if st is None or st.exists is False:
            continue
        users = tuple(user_list)
        if (missing := _unexamined(st)) is not None:
            yield missing
            continue
        chain = [st] + [stats[d] for d in _parents(path, stats) if stats[d].exists]
        bad = [(s, why) for s in chain if s.mode is not None and (why := _sshd_refuses(s, users)) is not None]
        where = [ev(s.path, "mode owner:group", _who(s)) for s in chain]
        if not bad:
            owners = "root" if users[0] == "root" else f"{users[0]} or root"
            yield ok(path, f"{path} and the directories above it are writable only by {owners} ({_who(st)})",
                     *where)
            continue
        described = "; ".join(f"{s.path} is {_who(s)}: {why}" for s, why in bad)
        if strict_on:
            yield fail(path, f"{described} — sshd (StrictModes yes) ignores this key file, so its "
                       f"{keys_in.get(path, 0)} key(s) do not work", *where, severity=Severity.INFO)
        else:
            origin = strict.where if strict is not None else ""
            yield fail(path, f"{described} — and StrictModes no {origin}: sshd accepts keys others can "
                       f"add, to log in as {users[0]}", *where, *((strict.evidence("strictmodes"),)
                                                                     if strict is not None else ()))
    if unread := guest_unread(guest, "authorized_keys"):  # a key file others can write may be there
        yield unknown("authorized_keys files", f"not every authorized_keys file was examined "
                      f"({unread_text(unread)}): whether others can write those is unknown")


def _parents(path: str, stats: dict[str, FileStat]) -> list[str]:
    """The directories above ``path`` that were examined (the collector stops at the home directory)."""
    out = []
    current = path
    while "/" in current.rstrip("/"):
        current = current.rstrip("/").rsplit("/", 1)[0] or "/"
        if current not in stats:
            break
        out.append(current)
        if current == "/":
            break
    return out


@check("VMS-GST-149", title="Disk encryption key files (and crypttab) are readable only by root",
       severity=Severity.HIGH, tags=(Tag.ENCRYPTION, Tag.ACCESS_CONTROL, "disk-encryption",
                                     "file-permissions"),
       references=("https://man7.org/linux/man-pages/man5/crypttab.5.html",
                   "https://gitlab.com/cryptsetup/cryptsetup/-/wikis/FrequentlyAskedQuestions"))
def crypt_key_permissions(guest: Guest, env: Environment) -> Iterator[Result]:
    """A key file named in /etc/crypttab unlocks the encrypted volume: whoever can read it can decrypt
    the disk (from a copy, at leisure); whoever can write /etc/crypttab redirects what is unlocked at
    boot. Key files should be 0400 or 0600 root; crypttab root-owned and not writable by others
    (CIS/SSG also ask others not to read it: low).

    Remediation: `chown root:root` and `chmod 0400` every key file; `chmod 0600 /etc/crypttab`.
    """
    stats = _stats(guest)
    entries = need(guest.crypttab, "/etc/crypttab could not be read")
    keys = [e.key_path for e in entries if e.key_path]
    for st in _present(stats, ["/etc/crypttab", *dict.fromkeys(keys)]):
        if (missing := _unexamined(st)) is not None:
            yield missing
            continue
        assert st.mode is not None
        problems = _non_root_writers(st)
        severity = None
        if st.path == "/etc/crypttab":
            if not problems and st.mode & 0o004:
                problems.append("every local user can read it")
                severity = Severity.LOW
        elif st.mode & 0o044:
            problems.append("users other than root can read this key")
        if problems:
            yield fail(st.path, f"{st.path} is {_who(st)}: {'; '.join(problems)}", *_where(st),
                       severity=severity)
        else:
            yield ok(st.path, f"{st.path} is {_who(st)}", *_where(st))
