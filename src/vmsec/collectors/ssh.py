"""The ``ssh`` collector: a running guest (or any Linux host) audited over SSH — agentless, read-only.

One connection per target (asyncssh; hundreds of targets share the scan's event loop): the host key is
verified against known_hosts (a key that differs from the known one is refused; an unknown host is
refused too unless ``accept_new``, which then records its key, as OpenSSH's
``StrictHostKeyChecking=accept-new`` does), authentication is by key (a file or the SSH agent; never a
password). The guest's files are read over SFTP in a few batches (:mod:`vmsec.collectors.remote`) and
fed to the same collectors as every other root — :func:`~vmsec.collectors.guest.collect_guest` for the
OS facts and :func:`~vmsec.collectors.runtime.collect_runtime` for what runs (sysctl in the kernel,
mounts, processes, listening sockets, the running kernel, restarts needed) — so every OS check runs
unchanged. Nothing is written on the guest: no command runs unless ``sudo`` is allowed, and then only
the read-only commands of :data:`~vmsec.collectors.remote.SUDO_COMMANDS`.

Every failure of a target (unreachable, refused authentication, a changed host key, a session that
hangs) is a :class:`~vmsec.errors.SourceUnavailable` with its kind: one record, and the scan goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from vmsec.collectors.remote import LARGE_FILES, PREFETCH_LIMIT
from vmsec.collectors.runtime import SYSCTL_KEYS, sysctl_path
from vmsec.errors import ErrorKind, ReadError, SourceUnavailable
from vmsec.facts import CollectionRecord, FileKind, FileStat, Inventory, evolve
from vmsec.parsers.system.systemd_boot import MAX_DROPINS, PULLING_DIRS, PULLING_KEYS, UNIT_DIRS
from vmsec.parsers.systemd_unit import parse_unit

if TYPE_CHECKING:
    from vmsec.collectors import CollectContext
    from vmsec.collectors.remote import RemoteFS
    from vmsec.specs import SshSpec

INSTALL_HINT = "asyncssh is not installed: pip install 'vmsec[ssh]'"
DEFAULT_TIMEOUT = 120.0  # seconds per target when the scan sets none
CONNECT_TIMEOUT = 30.0
MAX_ACCOUNTS = 2_000  # homes whose authorized_keys are prefetched
MAX_PROCESSES = 20_000

# What the OS and runtime collectors read, fetched in the first batches. Anything else they ask for is
# fetched on its own (and counted): keep this in step with the parsers to keep round trips few.
PREFETCH_FILES = (
    "/etc/os-release", "/usr/lib/os-release", "/etc/hostname", "/var/lib/dpkg/status",
    "/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite", "/lib/apk/db/installed",
    "/usr/lib/apk/db/installed", "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow",
    "/etc/login.defs", "/etc/sudoers", "/etc/ssh/sshd_config", "/etc/fstab", "/etc/crypttab",
    "/etc/sysctl.conf", "/etc/inetd.conf", "/etc/xinetd.conf", "/etc/apt/apt.conf", "/etc/apt/sources.list",
    "/etc/dnf/dnf.conf", "/etc/yum.conf", "/etc/apk/repositories", "/etc/audit/audit.rules",
    "/etc/rsyslog.conf", "/etc/syslog-ng/syslog-ng.conf", "/etc/audit/plugins.d/au-remote.conf",
    "/etc/audisp/plugins.d/au-remote.conf", "/etc/conf.d/syslog", "/etc/systemd/journald.conf",
    "/etc/ufw/ufw.conf", "/etc/iptables/rules.v4", "/etc/sysconfig/iptables", "/etc/iptables/rules-save",
    "/etc/nftables.conf", "/etc/cloud/cloud.cfg", "/etc/qemu/qemu-ga.conf", "/etc/default/qemu-guest-agent",
    "/etc/sysconfig/qemu-ga", "/etc/localtime", "/etc/selinux/config", "/etc/security/pwquality.conf",
    "/etc/security/faillock.conf",
    # what runs
    "/proc/self/mountinfo", "/proc/stat", "/proc/version", "/proc/sys/kernel/osrelease", "/proc/net/tcp",
    "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6", "/proc/net/unix", "/proc/1/comm",
    "/sys/kernel/security/lsm", "/sys/module/apparmor/parameters/enabled",
    "/sys/module/apparmor/parameters/mode", "/sys/fs/selinux/enforce", "/var/log/dpkg.log",
    "/var/log/dpkg.log.1",
)
PREFETCH_DIRS_READ = (
    "/etc/pam.d", "/usr/lib/pam.d", "/etc/sudoers.d", "/etc/ssh/sshd_config.d", "/etc/sysctl.d",
    "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d", "/etc/apt/apt.conf.d",
    "/etc/apt/sources.list.d", "/etc/yum.repos.d", "/etc/zypp/repos.d", "/etc/audit/rules.d",
    "/etc/rsyslog.d", "/etc/syslog-ng/conf.d", "/etc/systemd/journald.conf.d", "/etc/cloud/cloud.cfg.d",
    "/etc/xinetd.d",
)
PREFETCH_DIRS_LIST = (
    "/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
    "/lib/systemd/system", "/etc/rc1.d", "/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d", "/etc/rcS.d",
    "/etc/runlevels", "/boot", "/proc", "/proc/sys", "/sys/module", "/sys/fs", "/etc/udev/rules.d",
    "/usr/lib/udev/rules.d", "/lib/udev/rules.d", "/var/lib/rpm", "/usr/lib/sysimage/rpm",
    # ancestors whose complete listings answer "does not exist" for whole subtrees without a request
    "/", "/etc", "/usr", "/usr/lib", "/usr/local", "/usr/local/lib", "/usr/sbin", "/usr/bin", "/var",
    "/var/lib",
    "/var/log", "/run", "/etc/ssh", "/etc/apt", "/etc/systemd", "/etc/default", "/etc/security", "/etc/audit",
    "/usr/lib/systemd", "/sys", "/sys/kernel/security", "/etc/cloud", "/etc/qemu", "/etc/sysconfig",
    "/usr/local/bin", "/usr/local/sbin",
)
AUTHORIZED_KEYS = (".ssh/authorized_keys", ".ssh/authorized_keys2")
ENCRYPTION_ALGS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
                   "aes128-ctr", "aes192-ctr", "aes256-ctr")


def _import() -> Any:
    try:
        import asyncssh
    except ImportError as exc:
        raise SourceUnavailable(INSTALL_HINT, ErrorKind.UNSUPPORTED) from exc
    return asyncssh


def target_label(spec: SshSpec) -> str:
    user = f"{spec.user}@" if spec.user else ""
    host = f"[{spec.host}]" if ":" in spec.host else spec.host
    return f"{user}{host}:{spec.port}" if spec.port != 22 else f"{user}{host}"


# --- host keys ------------------------------------------------------------------------------------

_known_cache: dict[tuple[str, float], Any] = {}


def _known_hosts(asyncssh: Any, path: Path) -> Any:
    """The parsed known_hosts file (once per file version), or an empty list when there is none."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return asyncssh.import_known_hosts("")
    key = (str(path), mtime)
    if key not in _known_cache:
        _known_cache.clear()
        try:
            _known_cache[key] = asyncssh.read_known_hosts(str(path))
        except (OSError, ValueError) as exc:
            raise SourceUnavailable(f"known_hosts file {path} could not be read: {exc}", ErrorKind.INVALID) \
                from exc
    return _known_cache[key]


class _HostKeyVerdict(Struct):
    known: bool = False  # known_hosts names this host (with some key)
    refused: str | None = None  # why the presented key was refused
    accepted_new: str | None = None  # the key recorded under --accept-new


def _client_factory(asyncssh: Any, spec: SshSpec, path: Path, verdict: _HostKeyVerdict) -> Any:
    class Client(asyncssh.SSHClient):  # type: ignore[misc]
        def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
            """Called only for a key known_hosts does not trust."""
            fingerprint = key.get_fingerprint()
            if verdict.known:
                verdict.refused = (f"host key {fingerprint} does not match the key {path} holds for this "
                                   "host: refused (it may have been reinstalled — or someone is in between)")
                return False
            if not spec.accept_new:
                verdict.refused = (f"host key {fingerprint} is not in {path}: refused (add it, or pass "
                                   "--accept-new to trust a host seen for the first time)")
                return False
            pattern = f"[{host}]:{port}" if port and port != 22 else host
            line = f"{pattern} {key.export_public_key('openssh').decode().strip()}\n"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as fh:
                    fh.write(line)
            except OSError as exc:
                verdict.refused = f"host key {fingerprint} could not be recorded in {path}: {exc}"
                return False
            verdict.accepted_new = fingerprint
            return True

    return Client


# --- connecting -----------------------------------------------------------------------------------


async def _connect(asyncssh: Any, spec: SshSpec, timeout: float) -> tuple[Any, _HostKeyVerdict]:
    path = Path(os.path.expanduser(spec.known_hosts or "~/.ssh/known_hosts"))
    known = _known_hosts(asyncssh, path)
    verdict = _HostKeyVerdict()

    def trusted(host: str, addr: str, port: int | None) -> Any:
        matched = known.match(host, addr, port)
        verdict.known = bool(matched[0] or matched[1])
        return matched

    options: dict[str, Any] = {
        "port": spec.port, "known_hosts": trusted,
        "client_factory": _client_factory(asyncssh, spec, path, verdict),
        "password_auth": False, "kbdint_auth": False, "gss_auth": False,  # keys only, never a password
        "connect_timeout": min(timeout, CONNECT_TIMEOUT), "login_timeout": min(timeout, CONNECT_TIMEOUT),
        "keepalive_interval": 15,
        # AES-GCM first: one OpenSSL call per packet, where asyncssh's ChaCha20-Poly1305 takes four
        # (a third of the client's CPU in a fleet scan); both are what OpenSSH prefers, all AEAD.
        "encryption_algs": ENCRYPTION_ALGS,
    }
    if spec.user:
        options["username"] = spec.user
    if spec.identity:
        options["client_keys"] = [os.path.expanduser(spec.identity)]
    where = target_label(spec)
    try:
        conn = await asyncssh.connect(spec.host, **options)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise SourceUnavailable(f"{where}: {verdict.refused or exc.reason}", ErrorKind.DENIED) from exc
    except asyncssh.PermissionDenied as exc:
        key = f" {spec.identity}" if spec.identity else ""
        user = f" as {spec.user}" if spec.user else ""
        raise SourceUnavailable(f"{where}: authentication refused (public key{key}{user})",
                                ErrorKind.DENIED) from exc
    except asyncssh.KeyImportError as exc:
        raise SourceUnavailable(f"{where}: identity {spec.identity} could not be loaded ({exc}); an "
                                "encrypted key must be loaded into ssh-agent", ErrorKind.INVALID) from exc
    except TimeoutError as exc:
        raise SourceUnavailable(f"{where}: no SSH answer within {min(timeout, CONNECT_TIMEOUT):g} s",
                                ErrorKind.TIMEOUT) from exc
    except OSError as exc:
        raise SourceUnavailable(f"{where}: cannot connect: {exc.strerror or exc}",
                                ErrorKind.UNREACHABLE) from exc
    except asyncssh.Error as exc:
        if verdict.refused:
            raise SourceUnavailable(f"{where}: {verdict.refused}", ErrorKind.DENIED) from exc
        raise SourceUnavailable(f"{where}: SSH: {exc.reason or exc}", ErrorKind.IO) from exc
    return conn, verdict


# --- prefetching what the collectors will read ----------------------------------------------------


def _virtual(path: str) -> bool:
    return path.startswith(("/proc/", "/sys/"))


def _homes(remote: RemoteFS) -> list[str]:
    passwd = remote.reads.get("/etc/passwd")
    homes: dict[str, None] = {}
    if passwd is not None and passwd.data:
        for line in passwd.data.decode("utf-8", "replace").splitlines()[:MAX_ACCOUNTS]:
            fields = line.split(":")
            if len(fields) >= 6 and fields[5].startswith("/"):
                homes[fields[5].rstrip("/") or "/"] = None
    return list(homes)


def _configured_sysctl_keys(remote: RemoteFS) -> list[str]:
    """Keys the sysctl configuration sets (their runtime values are compared with it)."""
    from vmsec.parsers.system.sysctl import SYSCTL_CONF, SYSCTL_DIRS, normalize_key

    keys: dict[str, None] = {}
    paths = [SYSCTL_CONF]
    for directory in SYSCTL_DIRS:
        names = remote.lists.get(directory)
        paths += [f"{directory}/{n}" for n in names if n.endswith(".conf")] if isinstance(names, list) else []
    for path in paths:
        cached = remote.reads.get(path)
        for line in (cached.data or b"").decode("utf-8", "replace").splitlines()[:5000] if cached else ():
            key, sep, _value = line.strip().partition("=")
            key = key.strip().lstrip("-").strip()
            if sep and key and not key.startswith(("#", ";")) and "*" not in key:
                keys[normalize_key(key)] = None
    return [k for k in keys if k not in SYSCTL_KEYS]


def _unit_path(remote: RemoteFS, names: Iterable[str]) -> list[str]:
    """Where systemd finds each unit name first (an instance's template when it has no file)."""
    found = []
    for name in names:
        prefix, at, rest = name.partition("@")
        template = f"{prefix}@{rest[rest.rfind('.'):]}"
        candidates = [name, template] if at and not rest.startswith(".") else [name]
        for candidate in candidates:
            where = next((d for d in UNIT_DIRS if candidate in remote.complete.get(d, ())), None)
            if where is not None:
                found.append(f"{where}/{candidate}")
                break
    return found


def _boot_units(remote: RemoteFS) -> list[str]:
    """The unit files the walk of the boot reads (parsers/system/systemd_boot.py), as far as the listings
    name them: every target, every unit a dependency directory links or an alias names, every drop-in.
    What those pull in by ``Wants=`` and the like is :func:`_units_they_pull` (one batch later)."""
    names: dict[str, None] = {}
    dropins: list[str] = []
    for unit_dir in UNIT_DIRS:
        for entry in remote.complete.get(unit_dir, ()):
            path = f"{unit_dir}/{entry}"
            if entry.endswith(PULLING_DIRS):
                names.update(dict.fromkeys(remote.complete.get(path, ())))
            elif entry.endswith(".d"):
                dropins += [f"{path}/{c}" for c in sorted(remote.complete.get(path, ()))[:MAX_DROPINS]
                            if c.endswith(".conf")]
            elif entry.endswith(".target"):
                names[entry] = None
            link = remote.links.get(path)
            if isinstance(link, str) and not link.endswith("/dev/null"):  # an alias: the unit it names
                names[link.rstrip("/").rpartition("/")[2]] = None
    return [*_unit_path(remote, names), *dropins]


def _units_they_pull(remote: RemoteFS, read: Iterable[str]) -> list[str]:
    """The unit files that the already read ones name in ``Wants=``, ``Requires=`` … and that were not
    read yet (deeper chains are read on demand, one round trip each)."""
    names: dict[str, None] = {}
    for path in read:
        cached = remote.reads.get(path)
        for section, key, value in parse_unit(cached.data or b"") if cached else ():
            if section == "Unit" and key in PULLING_KEYS:
                names.update(dict.fromkeys(n for n in value.split() if "%" not in n))
    return [p for p in _unit_path(remote, names) if p not in remote.reads]


async def _prefetch_commands(remote: RemoteFS, tick: Callable[[str], None]) -> None:
    """Three round trips of read-only commands (find, tar, base64); ReadError when the guest runs none."""
    tick("listing (batch 1)")
    regular = [p for p in PREFETCH_FILES if not _virtual(p)]
    remote.batches += 1
    await remote.find([*PREFETCH_DIRS_LIST, *PREFETCH_DIRS_READ, *regular], UNIT_DIRS, processes=True)
    if "/" not in remote.complete:
        raise ReadError(remote.label, "the guest runs no find -printf (no shell, or not GNU findutils)",
                        ErrorKind.UNSUPPORTED)
    files: dict[str, None] = {}
    for path in regular:
        info = remote.stats.get((path, True))
        if info is not None and info.kind is FileKind.FILE:
            files[path] = None
    for directory in PREFETCH_DIRS_READ:
        for name in sorted(remote.complete.get(directory, ()))[:500]:
            child = f"{directory}/{name}"
            kind = remote.stats.get((child, False))
            if kind is not None and kind.kind in (FileKind.FILE, FileKind.SYMLINK):
                files[child] = None
    units = _boot_units(remote)
    files.update(dict.fromkeys(units))
    pids = [p for p in remote.complete.get("/proc", ()) if p.isdigit()][:MAX_PROCESSES]
    virtual = [p for p in PREFETCH_FILES if _virtual(p) and not remote.known_absent(p)]
    virtual += [sysctl_path(k) for k in SYSCTL_KEYS if not remote.known_absent(sysctl_path(k))]
    for pid in pids:
        virtual += [f"/proc/{pid}/stat", f"/proc/{pid}/cmdline", f"/proc/{pid}/maps"]
    tick("files (batch 2)")
    remote.batches += 1
    await asyncio.gather(remote.archive(list(files), LARGE_FILES), remote.cat_virtual(virtual))
    # Batch 3: what those name — every account's authorized_keys, the extra sysctl keys configured, the
    # unit files the boot's units pull in.
    keys = [f"{home.rstrip('/')}/{name}" for home in _homes(remote) for name in AUTHORIZED_KEYS]
    keys = [k for k in keys if not remote.known_absent(k)]
    extra = [sysctl_path(k) for k in _configured_sysctl_keys(remote)]
    extra = [p for p in extra if not remote.known_absent(p)]
    keys += _units_they_pull(remote, units)
    tick("keys (batch 3)")
    remote.batches += 1
    # the credential files' ACLs are asked by the same command as the archive (no session of their own)
    await asyncio.gather(remote.archive(keys, {}, acl_paths=_credential_paths(remote)),
                         remote.cat_virtual(extra))


def _credential_paths(remote: RemoteFS) -> list[str]:
    """The files whose owners, modes and ACLs the credential checks judge, as far as the listings name
    them (collectors/guest.py's ``credential_file_stats``); the others' ACLs are read when it asks."""
    from vmsec.collectors.guest import CREDENTIAL_FILES, authorized_key_ancestors

    paths = [*CREDENTIAL_FILES, "/etc/ssh", "/etc/sudoers", "/etc/sudoers.d", "/etc/crypttab"]
    for directory in ("/etc/ssh", "/etc/ssh/sshd_config.d", "/etc/sudoers.d"):
        paths += [f"{directory}/{name}" for name in sorted(remote.complete.get(directory, ()))[:500]]
    for home in _homes(remote):
        for name in AUTHORIZED_KEYS:
            path = f"{home.rstrip('/')}/{name}"
            if not remote.known_absent(path):
                paths += [path, *authorized_key_ancestors(path, home)]
    return [p for p in dict.fromkeys(paths) if not remote.known_absent(p)]


async def _prefetch_sftp(remote: RemoteFS, tick: Callable[[str], None]) -> None:
    """The same batches as SFTP requests, many in flight: for guests that run no commands."""
    tick("files (SFTP batch 1)")
    limits = {p: LARGE_FILES.get(p, PREFETCH_LIMIT) for p in PREFETCH_FILES}
    await remote.batch([*(remote.read(p, limits[p]) for p in PREFETCH_FILES),
                        *(remote.listdir(d) for d in (*PREFETCH_DIRS_READ, *PREFETCH_DIRS_LIST, *UNIT_DIRS))])
    ops: list[Awaitable[object]] = []
    for directory in PREFETCH_DIRS_READ:
        for name in sorted(remote.complete.get(directory, ()))[:500]:
            child = f"{directory}/{name}"
            ops.append(remote.read(child))
            kind = remote.stats.get((child, False))
            if kind is not None and kind.kind is FileKind.SYMLINK:
                ops.append(remote.readlink(child))
    for unit_dir in UNIT_DIRS:
        for entry in remote.complete.get(unit_dir, ()):
            if entry.endswith((*PULLING_DIRS, ".d")):
                ops.append(remote.listdir(f"{unit_dir}/{entry}"))
            elif (kind := remote.stats.get((f"{unit_dir}/{entry}", False))) and kind.kind is FileKind.SYMLINK:
                ops.append(remote.readlink(f"{unit_dir}/{entry}"))  # an alias or a mask
    ops += [remote.read(sysctl_path(key), 4096) for key in SYSCTL_KEYS]
    pids = [p for p in remote.complete.get("/proc", ()) if p.isdigit()][:MAX_PROCESSES]
    for pid in pids:
        base = f"/proc/{pid}"
        ops += [remote.read(f"{base}/stat", 4096), remote.read(f"{base}/cmdline", 64 * 1024),
                remote.readlink(f"{base}/exe"), remote.read(f"{base}/maps", 4 * 1024 * 1024),
                remote.stat(base), remote.listdir(f"{base}/fd", 4096)]
    tick("files (SFTP batch 2)")
    await remote.batch(ops)
    ops = [remote.stat(f"{home.rstrip('/')}/{name}") for home in _homes(remote) for name in AUTHORIZED_KEYS]
    for unit_dir in UNIT_DIRS:
        for entry in remote.complete.get(unit_dir, ()):
            if entry.endswith(PULLING_DIRS):
                for name in remote.complete.get(f"{unit_dir}/{entry}", ()):
                    ops.append(remote.readlink(f"{unit_dir}/{entry}/{name}"))
    ops += [remote.read(path) for path in _boot_units(remote)]
    for pid in pids:
        for fd in remote.complete.get(f"/proc/{pid}/fd", ()):
            ops.append(remote.readlink(f"/proc/{pid}/fd/{fd}"))
    tick("files (SFTP batch 3)")
    await remote.batch(ops)
    await remote.batch([remote.read(f"{home.rstrip('/')}/{name}") for home in _homes(remote)
                        for name in AUTHORIZED_KEYS
                        if remote.stats.get((f"{home.rstrip('/')}/{name}", True), _NOTHING).exists])


_NOTHING = FileStat(path="", exists=False)


async def _prefetch(remote: RemoteFS, tick: Callable[[str], None]) -> str:
    """Fill the cache in a few round trips; returns how ("commands" or "SFTP")."""
    try:
        await _prefetch_commands(remote, tick)
        remote.runs_commands = True
        return "commands"
    except ReadError as exc:
        if exc.kind is ErrorKind.TIMEOUT:
            raise
    remote.runs_commands = False
    await _prefetch_sftp(remote, tick)
    return "SFTP"


# --- the collector --------------------------------------------------------------------------------


def _collect_sync(reader: Any, spec: SshSpec, name: str, origin: str, label: str) -> tuple[Any, list[Any]]:
    """The OS and runtime collectors over the SSH reader (in a worker thread)."""
    from vmsec.collectors.guest import collect_guest
    from vmsec.collectors.runtime import collect_runtime

    guest, records = collect_guest(reader, name=name, origin=origin)
    runtime, runtime_records = collect_runtime(
        reader, source=f"ssh {label}", packages=guest.packages, config_sysctl=guest.sysctl,
        system_bus=None, local_time=False)
    guest = evolve(guest, runtime=runtime,
                                running_kernel=runtime.kernel.running if runtime.kernel else None)
    return guest, [*records, *runtime_records]


async def collect_async(spec: SshSpec, context: CollectContext) -> Inventory:
    """The collector interface for many targets on one event loop (``vmsec.collectors``). Any failure
    of the target is a :class:`SourceUnavailable` naming it: the other targets go on."""
    try:
        return await _collect(spec, context)
    except (SourceUnavailable, asyncio.CancelledError):
        raise
    except Exception as exc:  # a guest must not end the scan, whatever it answers
        raise SourceUnavailable(f"{target_label(spec)}: {type(exc).__name__}: {exc}", ErrorKind.IO) from exc


async def _collect(spec: SshSpec, context: CollectContext) -> Inventory:
    from vmsec.collectors.remote import RemoteFS, SshReader

    asyncssh = _import()
    started = time.monotonic()
    remaining = context.remaining()
    timeout = remaining if remaining is not None else DEFAULT_TIMEOUT
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    label = target_label(spec)
    name = spec.name or (f"{spec.host}:{spec.port}" if spec.port != 22 else spec.host)
    tick = context.progress or (lambda _m: None)

    def step(message: str) -> None:
        tick(f"ssh {label}: {message}")

    step("connecting")
    conn, verdict = await _connect(asyncssh, spec, timeout)
    try:
        remote = RemoteFS(conn, label=f"ssh://{label}", sudo=spec.sudo, deadline=lambda: deadline)
        try:
            how = await _prefetch(remote, step)
        except ReadError as exc:
            raise SourceUnavailable(f"{label}: {exc.reason}", exc.kind) from exc
        step("OS and runtime facts")
        reader = SshReader(remote, loop, max(1.0, deadline - loop.time()))
        guest, records = await asyncio.to_thread(_collect_sync, reader, spec, name, f"ssh://{label}", label)
    finally:
        conn.close()
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(conn.wait_closed(), 5)
    notes = [f"read in {remote.batches} batches of {how} ({remote.commands} commands, {remote.requests} SFTP "
             f"requests) and {remote.singles} single reads"]
    if verdict.accepted_new:
        notes.append(f"new host key {verdict.accepted_new} accepted and recorded (--accept-new)")
    if remote.sudo_commands:
        notes.append(f"{len(remote.sudo_commands)} read-only commands through sudo")
    records.append(CollectionRecord(source=f"ssh://{label}", what="ssh session", ok=True,
                                    reason="; ".join(notes), duration_s=round(time.monotonic() - started, 4)))
    return Inventory(guests=(guest,), records=tuple(records), source=f"ssh {label}")


def collect(spec: SshSpec, context: CollectContext) -> Inventory:
    """The synchronous collector interface: one target on its own event loop."""
    result: Inventory = asyncio.run(collect_async(spec, context))
    return result


__all__ = ["PREFETCH_DIRS_LIST", "PREFETCH_DIRS_READ", "PREFETCH_FILES", "collect", "collect_async",
           "target_label"]
