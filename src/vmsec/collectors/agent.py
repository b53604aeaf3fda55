"""A running guest audited through its QEMU guest agent (qemu-ga), over libvirt — no network, no login.

The agent runs inside the guest, so every reply is hostile input: replies are bounded in size (a reply
over :data:`MAX_REPLY` is refused), in number (files, users, interfaces, mounts are capped) and in time
(each command has a timeout, the whole guest the scan's deadline); nothing it claims is trusted
beyond what it can know (a claimed OS is the guest's own word, and said so).

Read-only commands only, in this order: ``guest-info`` first, to learn which commands the guest's
agent allows (``--block-rpcs``/``--allow-rpcs``: RHEL, for one, disables guest-exec and the
guest-file commands); then ``guest-get-osinfo``, ``guest-get-users``, ``guest-network-get-interfaces``,
``guest-get-fsinfo`` and ``guest-ssh-get-authorized-keys``; and ``guest-file-open`` in mode ``r`` with
``guest-file-read``/``guest-file-close`` where allowed, through :class:`AgentReader`, so the same OS and
runtime collectors as every other root read the guest's files (/proc and /sys included). The agent
cannot list directories or read links: those facts stay UNKNOWN with that reason — unless the
operator opted in to ``guest-exec`` (``LibvirtSpec.allow_guest_exec``), and then only the read-only
commands of :data:`~vmsec.collectors.remote.SUDO_COMMANDS` run (find, stat, readlink; never a shell).
No command that writes (guest-file-write, guest-set-*, guest-shutdown, guest-exec of anything else)
is ever sent.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from vmsec.collectors.reader import ReaderBase
from vmsec.collectors.remote import SUDO_COMMANDS, FileCache, find_arguments, fresh, parse_stat_line
from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import (
    CollectionRecord,
    FileKind,
    FileStat,
    Guest,
    KernelState,
    OsRelease,
    RuntimeState,
    evolve,
)
from vmsec.reading import DEFAULT_LIST_LIMIT, DEFAULT_READ_LIMIT

AGENT_CHANNEL = "org.qemu.guest_agent.0"
COMMAND_TIMEOUT = 10  # seconds per agent command (libvirt's timeout argument)
MAX_REPLY = 16 * 1024 * 1024  # characters of one JSON reply
READ_CHUNK = 1024 * 1024  # bytes per guest-file-read
MAX_ITEMS = 1_000  # users, interfaces, mounts, keys kept from one reply
EXEC_POLL = 0.05
EXEC_TIMEOUT = 20.0
# The only commands vmsec sends. Anything that writes or changes the guest is absent by construction.
READ_ONLY_COMMANDS = frozenset({
    "guest-info", "guest-get-osinfo", "guest-get-users", "guest-network-get-interfaces", "guest-get-fsinfo",
    "guest-get-disks", "guest-ssh-get-authorized-keys", "guest-file-open", "guest-file-read",
    "guest-file-close", "guest-exec", "guest-exec-status",
})
FILE_COMMANDS = ("guest-file-open", "guest-file-read", "guest-file-close")
# Facts assembled from directory listings (drop-in directories, enablement links, Include globs): read
# through an agent that cannot list, they would be partial — so they are unknown instead, never
# half-read (a services list without its enablement links would pass "no telnet enabled").
LISTING_FACTS = ("pam", "sudoers", "sshd", "services", "repos", "auto_updates", "sysctl", "audit", "firewall",
                 "cloud_init", "guest_agent")
EXEC_COMMANDS = ("guest-exec", "guest-exec-status")
_WRITING_FIND_ACTIONS = frozenset({"-exec", "-execdir", "-delete", "-ok", "-okdir", "-fprint", "-fprintf",
                                   "-fls", "-fprint0"})


class AgentError(ReadError):
    """An agent command failed; ``kind`` says how (unreachable, timeout, unsupported, absent …)."""


def _kind_of_reply(desc: str) -> ErrorKind:
    text = desc.lower()
    if "no such file" in text:
        return ErrorKind.ABSENT
    if "not a directory" in text:
        return ErrorKind.NOT_A_DIRECTORY
    if "permission denied" in text:
        return ErrorKind.DENIED
    if "is a directory" in text:
        return ErrorKind.NOT_REGULAR
    if "disabled" in text or "not found" in text or "not supported" in text:
        return ErrorKind.UNSUPPORTED
    return ErrorKind.IO


class Agent:
    """One domain's guest agent through ``libvirt_qemu.qemuAgentCommand``, bounded and read-only."""

    def __init__(self, libvirt: Any, dom: Any, name: str, deadline: float | None = None) -> None:
        import libvirt_qemu

        self._libvirt = libvirt
        self._qemu = libvirt_qemu
        self._dom = dom
        self.name = name
        self.deadline = deadline
        self.enabled: frozenset[str] = frozenset()
        self.version: str | None = None
        self.commands_sent = 0
        self.last_errors = b""

    def _timeout(self) -> int:
        if self.deadline is None:
            return COMMAND_TIMEOUT
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AgentError(self.name, "out of time for this guest", ErrorKind.TIMEOUT)
        return max(1, min(COMMAND_TIMEOUT, int(left)))

    def command(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        if name not in READ_ONLY_COMMANDS:  # pragma: no cover - a programming error, never a guest's doing
            raise AssertionError(f"{name} is not a read-only agent command")
        payload = json.dumps({"execute": name, "arguments": arguments} if arguments else {"execute": name})
        self.commands_sent += 1
        libvirt = self._libvirt
        try:
            reply = self._qemu.qemuAgentCommand(self._dom, payload, self._timeout(), 0)
        except libvirt.libvirtError as exc:
            code = exc.get_error_code()
            message = (exc.get_error_message() or str(exc)).strip()
            if code in (libvirt.VIR_ERR_AGENT_UNRESPONSIVE, libvirt.VIR_ERR_AGENT_UNSYNCED):
                raise AgentError(self.name, f"the guest agent is not connected or not answering: {message}",
                                 ErrorKind.UNREACHABLE) from exc
            if code == libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED:
                raise AgentError(self.name, f"no guest agent is configured: {message}",
                                 ErrorKind.UNSUPPORTED) from exc
            if "timeout" in message.lower() or "timed out" in message.lower():
                raise AgentError(self.name, f"{name}: no answer within {self._timeout()} s",
                                 ErrorKind.TIMEOUT) from exc
            raise AgentError(self.name, f"{name}: {message}", _kind_of_reply(message)) from exc
        if not isinstance(reply, str) or len(reply) > MAX_REPLY:
            raise AgentError(self.name, f"{name}: the reply is over {MAX_REPLY} characters",
                             ErrorKind.TOO_LARGE)
        try:
            decoded = json.loads(reply)
        except ValueError as exc:
            raise AgentError(self.name, f"{name}: the reply is not JSON", ErrorKind.INVALID) from exc
        if not isinstance(decoded, dict):
            raise AgentError(self.name, f"{name}: the reply is not a JSON object", ErrorKind.INVALID)
        if "error" in decoded:
            error = decoded["error"] if isinstance(decoded["error"], dict) else {}
            desc = str(error.get("desc", "error"))[:300]
            raise AgentError(self.name, f"{name}: {desc}", _kind_of_reply(desc))
        return decoded.get("return")

    def hello(self) -> None:
        """``guest-info``: which commands this guest's agent allows (all others are not sent)."""
        info = self.command("guest-info")
        if not isinstance(info, dict):
            raise AgentError(self.name, "guest-info: unexpected reply", ErrorKind.INVALID)
        self.version = str(info.get("version", ""))[:40] or None
        enabled = []
        for item in (info.get("supported_commands") or [])[:1000]:
            if isinstance(item, dict) and item.get("enabled") is True and isinstance(item.get("name"), str):
                enabled.append(item["name"])
        self.enabled = frozenset(enabled)

    def allows(self, *names: str) -> bool:
        return all(n in self.enabled for n in names)

    # --- guest-exec of the read-only allow-list (operator opt-in) ------------------------------

    def run(self, what: str, path: str, limit: int) -> bytes:
        """One command of the read-only allow-list through guest-exec; its standard output."""
        return self.run_argv([part.replace("{path}", path) for part in SUDO_COMMANDS[what]], path, limit)

    def run_argv(self, argv: list[str], path: str, limit: int, *, check: bool = True) -> bytes:
        """guest-exec of a read-only command line (the allow-list's cat, stat, readlink, or a find that only
        prints); its standard output. With ``check`` a non-zero exit is an error."""
        if argv[0] not in ("/usr/bin/cat", "/usr/bin/find", "/usr/bin/stat", "/usr/bin/readlink") or any(
                a in _WRITING_FIND_ACTIONS for a in argv):  # pragma: no cover - a programming error
            raise AssertionError(f"{argv[0]} is not a read-only allow-listed command line")
        started = self.command("guest-exec", {"path": argv[0], "arg": argv[1:], "capture-output": True})
        pid = started.get("pid") if isinstance(started, dict) else None
        if not isinstance(pid, int):
            raise AgentError(path, "guest-exec: no pid in the reply", ErrorKind.INVALID)
        waited = time.monotonic()
        while True:
            status = self.command("guest-exec-status", {"pid": pid})
            if isinstance(status, dict) and status.get("exited"):
                break
            if time.monotonic() - waited > EXEC_TIMEOUT:
                raise AgentError(path, f"guest-exec {argv[0]} did not finish in {EXEC_TIMEOUT:g} s",
                                 ErrorKind.TIMEOUT)
            time.sleep(EXEC_POLL)
        try:
            out = base64.b64decode(str(status.get("out-data", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AgentError(path, "guest-exec: output is not base64", ErrorKind.INVALID) from exc
        if status.get("out-truncated") or len(out) > limit:
            raise AgentError(path, f"guest-exec output is over the {limit}-byte limit", ErrorKind.TOO_LARGE)
        if check and status.get("exitcode") != 0:
            err = base64.b64decode(str(status.get("err-data", "")) or b"", validate=False)[:300]
            reason = err.decode("utf-8", "replace").strip() or f"exit code {status.get('exitcode')}"
            raise AgentError(path, reason, _kind_of_reply(reason))
        self.last_errors = base64.b64decode(str(status.get("err-data", "")) or b"", validate=False)[:1 << 20]
        return out


class AgentReader(ReaderBase):
    """The Reader protocol over the guest agent's file commands (read mode only).

    Without guest-exec the agent can open and read files but not list directories, follow links or
    stat: ``listdir``/``readlink`` raise UNSUPPORTED, and ``stat`` knows only whether a file opens.
    """

    def __init__(self, agent: Agent, exec_allowed: bool) -> None:
        self._agent = agent
        self._exec = exec_allowed and agent.allows(*EXEC_COMMANDS)
        self._files = agent.allows(*FILE_COMMANDS)
        self._names: dict[str, dict[int, str]] = {}
        self._reads: dict[str, tuple[bytes | None, ReadError | None, int]] = {}
        self._stats: dict[tuple[str, bool], FileStat] = {}
        self.listing_refused = False  # a parser needed a directory listing or a link it could not have
        self.cache = FileCache()  # what one find listing said (with guest-exec)

    def prefetch(self) -> None:
        """With guest-exec: one ``find -printf`` over what the OS and runtime collectors look into, so
        stats, listings and links are answered from it instead of a command each."""
        if not self._exec:
            return
        from vmsec.collectors.ssh import PREFETCH_DIRS_LIST, PREFETCH_DIRS_READ, PREFETCH_FILES
        from vmsec.parsers.system.systemd_boot import UNIT_DIRS

        shallow = [*PREFETCH_DIRS_LIST, *PREFETCH_DIRS_READ, *(p for p in PREFETCH_FILES if not p.startswith(
            ("/proc/", "/sys/")))]
        for argv in find_arguments(shallow, UNIT_DIRS):
            try:
                out = self._agent.run_argv(argv, "find", 64 * 1024 * 1024, check=False)
            except ReadError:
                return  # answered one command at a time instead
            self.cache.parse_find(out, self._agent.last_errors.decode("utf-8", "replace"),
                                  set(argv[2:-4]), set(argv[2:-4]) if argv[-3] == "2" else set())

    @property
    def label(self) -> str:
        return f"guest agent of {self._agent.name}"

    def _unsupported(self, path: str, what: str) -> ReadError:
        if not self._files and what == "read":
            return ReadError(path, "the guest agent does not allow file reads (guest-file-* disabled)",
                             ErrorKind.UNSUPPORTED)
        return ReadError(path, f"the guest agent cannot {what} without guest-exec (not allowed)",
                         ErrorKind.UNSUPPORTED)

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        cached = self._reads.get(path)
        if cached is not None and (cached[0] is not None or cached[1] is None or
                                   cached[1].kind is not ErrorKind.TOO_LARGE or limit <= cached[2]):
            data, error, _ = cached
            if error is not None:
                raise fresh(error)
            assert data is not None
            if len(data) > limit:
                raise ReadError(path, f"file is over the {limit}-byte limit", ErrorKind.TOO_LARGE)
            return data
        try:
            data = self._read(path, limit)
        except ReadError as exc:
            self._reads[path] = (None, fresh(exc), limit)
            raise
        self._reads[path] = (data, None, limit)
        return data

    def _read(self, path: str, limit: int) -> bytes:
        if not self._files:
            raise self._unsupported(path, "read")
        if self._exec:
            info = self.stat(path)
            if info.exists and info.kind is not FileKind.FILE:
                raise ReadError(path, f"not a regular file ({info.kind}); not opened", ErrorKind.NOT_REGULAR)
            if info.size is not None and info.size > limit and not path.startswith(("/proc/", "/sys/")):
                raise ReadError(path, f"file is {info.size} bytes, over the {limit}-byte limit",
                                ErrorKind.TOO_LARGE)
        handle = self._agent.command("guest-file-open", {"path": path, "mode": "r"})
        if not isinstance(handle, int):
            raise ReadError(path, "guest-file-open: no handle in the reply", ErrorKind.INVALID)
        try:
            chunks: list[bytes] = []
            total = 0
            while total <= limit:
                reply = self._agent.command("guest-file-read", {"handle": handle,
                                                                "count": min(READ_CHUNK, limit + 1 - total)})
                if not isinstance(reply, dict):
                    raise ReadError(path, "guest-file-read: unexpected reply", ErrorKind.INVALID)
                try:
                    data = base64.b64decode(str(reply.get("buf-b64", "")), validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise ReadError(path, "guest-file-read: not base64", ErrorKind.INVALID) from exc
                chunks.append(data)
                total += len(data)
                if reply.get("eof") or not data:
                    break
            if total > limit:
                raise ReadError(path, f"file is over the {limit}-byte limit", ErrorKind.TOO_LARGE)
            return b"".join(chunks)
        finally:
            with contextlib.suppress(ReadError):
                self._agent.command("guest-file-close", {"handle": handle})

    def stat(self, path: str, follow: bool = True) -> FileStat:
        key = (path, follow)
        if key in self._stats:
            return self._stats[key]
        found = self._stat(path, follow)
        if found.exists and found.owner is None and found.uid is not None:
            # Owner names through the guest's own account files, as every reader gives them: "0:42"
            # is not "root:shadow", and the checks allow groups by name.
            found = evolve(found, owner=self._lookup("/etc/passwd", found.uid),
                           group=self._lookup("/etc/group", found.gid) if found.gid is not None else None)
        if not self._in_lookup:
            self._stats[key] = found
        return found

    def _stat(self, path: str, follow: bool) -> FileStat:
        cached = self.cache.stats.get((path, follow))
        if cached is not None:
            return cached
        if self.cache.known_absent(path):
            return FileStat(path=path, exists=False)
        if self._exec and follow:
            try:
                text = self._agent.run("stat", path, 4096).decode("utf-8", "replace")
            except ReadError as exc:
                return FileStat(path=path, exists=False) if exc.absent else \
                    FileStat(path=path, exists=None, error=exc.reason)
            return parse_stat_line(path, text)
        if not self._files:
            return FileStat(path=path, exists=None, error=self._unsupported(path, "read").reason)
        # Without a stat command: a file that opens exists (its kind and mode stay unknown).
        try:
            self.read_bytes(path, 64 * 1024 * 1024)
        except ReadError as exc:
            if exc.absent:
                return FileStat(path=path, exists=False)
            if exc.kind is ErrorKind.NOT_REGULAR:
                return FileStat(path=path, exists=True, kind=FileKind.DIRECTORY)
            if exc.kind is ErrorKind.TOO_LARGE:
                return FileStat(path=path, exists=True, kind=FileKind.FILE)
            return FileStat(path=path, exists=None, error=exc.reason)
        return FileStat(path=path, exists=True, kind=FileKind.FILE)

    def complete_acls(self, stats: dict[str, FileStat]) -> dict[str, FileStat]:
        """The agent reads no ACLs (its commands show none, and guest-exec runs only the stat, find and
        readlink of SUDO_COMMANDS): a file whose mode is known keeps an unknown ACL, and says so, so
        that a mode that is fine judges UNKNOWN rather than PASS."""
        return {path: evolve(s, acl_error="its ACL was not read: the guest agent shows no ACLs")
                if s.exists and s.mode is not None and s.acl is None and s.acl_error is None else s
                for path, s in stats.items()}

    def listdir(self, path: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]:
        if not self._exec:
            self.listing_refused = True
            raise self._unsupported(path, "list directories")
        cached = self.cache.lists.get(path)
        if cached is None and self.cache.known_absent(path):
            raise ReadError(path, "does not exist", ErrorKind.ABSENT)
        if isinstance(cached, ReadError):
            raise fresh(cached)
        if cached is not None:
            if len(cached) > limit:
                raise ReadError(path, f"directory has more than {limit} entries", ErrorKind.TOO_LARGE)
            return list(cached)
        out = self._agent.run("list", path, 16 * 1024 * 1024)
        names = sorted(n.decode("utf-8", "surrogateescape") for n in out.split(b"\0") if n)
        if len(names) > limit:
            raise ReadError(path, f"directory has more than {limit} entries", ErrorKind.TOO_LARGE)
        return names

    def readlink(self, path: str) -> str:
        if not self._exec:
            self.listing_refused = True
            raise self._unsupported(path, "read symbolic links")
        cached = self.cache.links.get(path)
        if cached is None and self.cache.known_absent(path):
            raise ReadError(path, "does not exist", ErrorKind.ABSENT)
        if isinstance(cached, ReadError):
            raise fresh(cached)
        if cached is not None:
            return cached
        return self._agent.run("readlink", path, 64 * 1024).decode("utf-8", "surrogateescape").rstrip("\n")


# --- the guest ------------------------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return value[:MAX_ITEMS] if isinstance(value, list) else []


def _text(value: Any, limit: int = 256) -> str | None:
    if not isinstance(value, str):
        return None
    return "".join(c if c.isprintable() else "?" for c in value[:limit]) or None


def _osinfo(agent: Agent, notes: list[str]) -> tuple[OsRelease | None, str | None, str | None]:
    """(os release, kernel release, kernel build) from guest-get-osinfo — the guest's own claim."""
    if not agent.allows("guest-get-osinfo"):
        return None, None, None
    try:
        info = agent.command("guest-get-osinfo")
    except ReadError as exc:
        notes.append(f"guest-get-osinfo: {exc.reason}")
        return None, None, None
    if not isinstance(info, dict):
        return None, None, None
    os = OsRelease(id=_text(info.get("id"), 64), version_id=_text(info.get("version-id"), 64),
                   name=_text(info.get("name")), pretty_name=_text(info.get("pretty-name")),
                   origin="guest-get-osinfo")
    build = _text(info.get("kernel-version"))
    return os, _text(info.get("kernel-release"), 128), build


def _users(reply: Any) -> str:
    names = [_text(u.get("user"), 32) for u in _list(reply) if isinstance(u, dict)]
    return f"{len(names)} users logged in ({', '.join(n for n in names if n) or 'none'})"


def _inventory_notes(agent: Agent, notes: list[str]) -> None:
    """Users, interfaces and file systems the agent reports: shown in the record (no check judges them)."""
    described: tuple[tuple[str, Callable[[Any], str]], ...] = (
        ("guest-get-users", _users),
        ("guest-network-get-interfaces", lambda r: f"{len(_list(r))} network interfaces"),
        ("guest-get-fsinfo", lambda r: f"{len(_list(r))} mounted file systems"))
    for command, describe in described:
        if not agent.allows(command):
            continue
        try:
            notes.append(describe(agent.command(command)))
        except ReadError as exc:
            notes.append(f"{command}: {exc.reason}")


def agent_guest(agent: Agent, *, name: str, domain: str, allow_exec: bool,
                step: Callable[[str], None] | None = None) -> tuple[Guest, list[CollectionRecord]]:
    """The guest's facts through its agent (:func:`Agent.hello` must have run)."""
    from vmsec.collectors.guest import collect_guest
    from vmsec.collectors.runtime import collect_runtime

    tell = step or (lambda _m: None)
    started = time.monotonic()
    notes = [f"qemu-ga {agent.version or '?'}: {len(agent.enabled)} commands enabled"]
    origin = f"guest agent of {domain}"
    os_claim, kernel, _build = _osinfo(agent, notes)
    _inventory_notes(agent, notes)
    reader = AgentReader(agent, allow_exec)
    reader.prefetch()
    records: list[CollectionRecord] = []
    if agent.allows(*FILE_COMMANDS):
        tell(f"guest agent of {domain}: files")
        guest, records = collect_guest(reader, name=name, origin=origin, domain=domain)
        tell(f"guest agent of {domain}: what runs")
        runtime, runtime_records = collect_runtime(
            reader, source=origin, packages=guest.packages, config_sysctl=guest.sysctl, local_time=False,
            processes="the process table is not read through the guest agent (a command for every file of "
                      "every process): scan the guest over SSH for it")
        records += runtime_records
        if guest.os is None and os_claim is not None:
            guest = evolve(guest, os=os_claim)
    else:
        why = "the guest agent does not allow file reads (guest-file-* disabled)"
        notes.append(f"{why}: only what guest-get-osinfo reports is known; the other OS facts are unknown")
        guest = Guest(name=name, origin=origin, domain=domain, os=os_claim)
        runtime = RuntimeState(source=origin, kernel=KernelState(running=kernel), reasons={
            name: why for name in ("sysctl", "mounts", "lsm", "processes", "services", "listeners", "qemu")})
    if reader.listing_refused:
        unknown: dict[str, Any] = dict.fromkeys(LISTING_FACTS)
        guest = evolve(guest, **unknown)
        notes.append("directories and links cannot be read without guest-exec (not allowed): the facts built "
                     f"from them are unknown ({', '.join(LISTING_FACTS)}, the process table)")
    if runtime.kernel is not None and runtime.kernel.running is None and kernel is not None:
        runtime = evolve(runtime, kernel=evolve(runtime.kernel, running=kernel))
    guest = evolve(guest, runtime=runtime,
                                running_kernel=runtime.kernel.running if runtime.kernel else kernel)
    # What the transport cannot do is a fact about it, not a failed read: the checks say UNKNOWN with
    # the reason, and the scan is not "incomplete" because the guest's agent is locked down.
    records = [evolve(r, ok=True) if r.kind is ErrorKind.UNSUPPORTED else r for r in records]
    records.append(CollectionRecord(source=origin, what="guest agent", ok=True,
                                    reason=f"{'; '.join(notes)}; {agent.commands_sent} commands",
                                    duration_s=round(time.monotonic() - started, 4)))
    return guest, records


__all__ = ["AGENT_CHANNEL", "READ_ONLY_COMMANDS", "Agent", "AgentError", "AgentReader", "agent_guest"]
