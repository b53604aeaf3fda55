"""A running guest's files, read over SSH through the same :class:`~vmsec.reading.Reader` protocol every
OS parser uses — so every OS check runs unchanged.

Two halves:

- :class:`RemoteFS` (asyncio, on the scan's event loop) fetches what the OS and runtime collectors will
  read in a few *batches* and keeps every answer (errors too) in a cache:

  1. one ``find -printf`` lists the directories the parsers look into and stats the files they read
     (type, mode, owner, size, link target), the process table included;
  2. one ``tar -c`` streams the regular files that exist and fit their read limit, and one loop of
     ``base64`` the procfs/sysfs files (whose sizes the kernel reports as 0, so tar cannot read them);
  3. a last ``tar`` for what the first answers name (each account's authorized_keys).

  These commands read and write to their standard output only: nothing is written on the guest, not a
  temporary file. Where a guest allows no commands (``ForceCommand internal-sftp``) or lacks GNU find
  and tar (busybox), the same batches are made of SFTP requests, many in flight at once. Either way a
  batch is one round trip.
- :class:`SshReader` (the synchronous Reader the parsers call, in a worker thread) answers from that
  cache; a path no batch anticipated is fetched on its own over SFTP (and counted), and a path whose
  parent directory was listed without it is known not to exist without asking.

Read-only and bounded, because the guest may be hostile: files are read only when a stat says they are
regular (a FIFO would block), reads stop at the caller's limit, listings at theirs, every command's
output is capped, every call has a deadline. The whole remote filesystem is the target, so symlinks
resolve as the guest resolves them. Where a read is refused (EACCES: /etc/shadow as a non-root user)
and the operator allowed sudo, it is retried with one of the four read-only commands of
:data:`SUDO_COMMANDS` through ``sudo -n`` — never anything else.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import io
import re
import shlex
import stat as st
import tarfile
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

from msgspec import Struct

from vmsec.collectors.reader import ReaderBase
from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import AclEntry, FileKind, FileStat, evolve
from vmsec.parsers.posix_acl import GROUP, GROUP_OBJ, MASK, OTHER, USER, USER_OBJ, check_acl
from vmsec.reading import DEFAULT_LIST_LIMIT, DEFAULT_READ_LIMIT

CHUNK = 255 * 1024  # OpenSSH's sftp-server answers at most 256 KiB per read
IN_FLIGHT = 64  # SFTP requests outstanding at once on one session
SUDO_IN_FLIGHT = 4  # sudo commands at once (each is a channel; sshd allows 10 sessions)
PREFETCH_LIMIT = DEFAULT_READ_LIMIT
LARGE_FILES = {"/var/lib/dpkg/status": 64 * 1024 * 1024, "/lib/apk/db/installed": 64 * 1024 * 1024,
               "/usr/lib/apk/db/installed": 64 * 1024 * 1024}
MAX_LISTING_OUTPUT = 64 * 1024 * 1024  # one find batch
MAX_ARCHIVE = 512 * 1024 * 1024  # one tar batch
MAX_SUDO_OUTPUT = 64 * 1024 * 1024
PROC_FILE_LIMIT = 4 * 1024 * 1024
_VIRTUAL = ("/proc/", "/sys/")  # kernel files: sizes read as 0, so never archived, always read to EOF

# The sudo allow-list: the only commands vmsec ever runs through sudo, each read-only, each with its
# arguments fixed but for one path. Documented in docs/cli.md with the sudoers lines to grant them.
SUDO_COMMANDS: dict[str, tuple[str, ...]] = {
    "read": ("/usr/bin/cat", "--", "{path}"),
    "list": ("/usr/bin/find", "{path}", "-mindepth", "1", "-maxdepth", "1", "-printf", "%f\\0"),
    "stat": ("/usr/bin/stat", "-L", "-c", "%f %u %g %s %Y %d %i", "--", "{path}"),
    "readlink": ("/usr/bin/readlink", "--", "{path}"),
}

_KINDS = {st.S_IFREG: FileKind.FILE, st.S_IFDIR: FileKind.DIRECTORY, st.S_IFLNK: FileKind.SYMLINK,
          st.S_IFSOCK: FileKind.SOCKET, st.S_IFCHR: FileKind.CHAR_DEVICE, st.S_IFBLK: FileKind.BLOCK_DEVICE,
          st.S_IFIFO: FileKind.FIFO}
_FIND_TYPES = {"f": FileKind.FILE, "d": FileKind.DIRECTORY, "l": FileKind.SYMLINK, "s": FileKind.SOCKET,
               "c": FileKind.CHAR_DEVICE, "b": FileKind.BLOCK_DEVICE, "p": FileKind.FIFO}
_FIND_FORMAT = "%y %m %U %G %s %T@ %D %i %p\\0%l\\0"
_NOT_A_LINK = ReadError("(a listed entry)", "not a symbolic link", ErrorKind.NOT_REGULAR)
_FIND_ERROR = re.compile(r"^find: '(.*)': (.*)$")
_TAR_ERROR = re.compile(r"^tar: (/.*?): (Cannot \w+): (.*)$")


async def _read_all(stream: Any, limit: int) -> bytes:
    """A stream to its end, keeping at most ``limit`` bytes (the rest is read and dropped)."""
    kept = bytearray()
    while True:
        chunk = await stream.read(CHUNK)
        if not chunk:
            return bytes(kept)
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]


def _enc(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def _dec(name: bytes | str) -> str:
    return name if isinstance(name, str) else name.decode("utf-8", "surrogateescape")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _error_kind(reason: str) -> ErrorKind:
    text = reason.lower()
    if "no such file" in text or "not a directory" in text:
        return ErrorKind.ABSENT
    if "permission denied" in text or "operation not permitted" in text:
        return ErrorKind.DENIED
    if "too many levels" in text:
        return ErrorKind.LOOP
    return ErrorKind.IO


class _Read(Struct):
    data: bytes | None
    error: ReadError | None
    limit: int  # the limit the read was done with (a later larger limit may need a new read)


def fresh(error: ReadError) -> ReadError:
    """A new exception equal to a cached one: raising the cached instance itself would attach a
    traceback to it, and through the frames the whole reader and its cache would outlive the scan of
    that guest (a thousand guests' caches: a gigabyte)."""
    return ReadError(error.source, error.reason, error.kind)


def parse_stat_line(path: str, text: str) -> FileStat:
    """The output of the allow-list's ``stat -L -c '%f %u %g %s %Y %d %i'`` as a FileStat."""
    out = text.split()
    try:
        raw, uid, gid, size, mtime = int(out[0], 16), int(out[1]), int(out[2]), int(out[3]), float(out[4])
        file_id = (int(out[5]), int(out[6])) if len(out) >= 7 else None
    except (IndexError, ValueError):
        return FileStat(path=path, exists=None, error="stat: unexpected output")
    return FileStat(path=path, exists=True, kind=FileKind.from_mode(raw), mode=st.S_IMODE(raw), uid=uid,
                    gid=gid, size=size, mtime=mtime, file_id=file_id)


def stale(cached: _Read, limit: int) -> bool:
    """Whether a cached read cannot answer a read with ``limit``: only when it stopped at a smaller
    limit (read data is always the whole file)."""
    return limit > cached.limit and cached.error is not None and cached.error.kind is ErrorKind.TOO_LARGE


def answer(path: str, cached: _Read, limit: int) -> bytes:
    if cached.error is not None:
        raise fresh(cached.error)
    assert cached.data is not None
    if len(cached.data) > limit:
        raise ReadError(path, f"file is over the {limit}-byte limit", ErrorKind.TOO_LARGE)
    return cached.data


# --- access ACLs, read with getfacl(1), or ls(1) where there is none -----------------------------------

# SFTP shows no ACLs and find(1) prints none. Where the guest has getfacl (package acl), it prints each
# path's access ACL by number, and that decides: a block of the three base entries is no ACL.
# Without it (a minimal Debian), GNU ls marks a file that has an ACL with "+" after its mode (never for
# the mode bits alone: SELinux labels are "."): a marked file has an ACL vmsec cannot read (unknown),
# an unmarked one has none. Only GNU coreutils' mark is taken: other implementations have shown none
# for a file that has one (uutils, Ubuntu 25.10's ls), so with neither tool every ACL is unknown.
# Each run frames its output with a NUL, a letter and a NUL, which neither tool writes (a name in
# their output is escaped): N (no getfacl), G (ls is GNU's), A (getfacl's blocks), L (ls's lines).
MAX_ACL_PATHS = 50_000
# Paths quoted into another command's line: its bytes, within Linux's 128 KiB for one argument.
INLINE_ACL_BYTES = 96 * 1024
_WHICH_TOOL = ("g=; if command -v getfacl >/dev/null 2>&1; then g=1; else printf '\\0N\\0'; "
               "case \"$(ls --version 2>/dev/null)\" in *'GNU coreutils'*) printf '\\0G\\0';; esac; fi; ")
_ONE_RUN = ('if [ -n "$g" ]; then printf "\\0A\\0"; getfacl -aEnp -- "$@" 2>/dev/null; '
            'else printf "\\0L\\0"; ls -dLn --quoting-style=c -- "$@" 2>/dev/null; fi; ')
# The paths as a NUL-separated list on standard input, any number of them: xargs runs the tool again
# for each command line's worth.
_ACL_SCRIPT = f"LC_ALL=C; export LC_ALL; {_WHICH_TOOL}export g; xargs -0 -r sh -c '{_ONE_RUN}exit 0' sh"
_ACL_END = b"\0E\0"  # where the ACL answer ends when it precedes another command's output
_LS_NAME = re.compile(rb'[^"]*"((?:[^"\\]|\\.)*)"\Z')  # the fields before the name hold no quote
_ESCAPE = re.compile(rb"\\([0-7]{1,3}|.)", re.S)
_C_CHARS = {b"a": b"\a", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
NO_GETFACL = ("it has an ACL (ls -l shows +) that vmsec could not read: the guest has no getfacl "
              "(package acl)")
NO_ACL_TOOL = ("its ACL could not be read: the guest has no getfacl (package acl), and its ls is not "
               "GNU coreutils' (whose + mark would tell)")


def acl_output_limit(paths: int, name_bytes: int) -> int:
    """The most the ACL tools may print for ``paths`` names of ``name_bytes`` in all: getfacl's block
    (a 32-entry ACL, ext4's most, is ~500 bytes) or ls's line per path, each name escaped to at most
    four times its bytes. More is not their output, and is refused before it is parsed."""
    return 64 * 1024 + 1024 * paths + 4 * name_bytes


def acl_inline(paths: Sequence[str]) -> str | None:
    """The same tools on ``paths`` quoted into a command line, followed by :data:`_ACL_END`: a prefix
    for another batch's command, which then needs no session of its own. None when they cannot go on
    a command line: a name that is not UTF-8 (SSH sends a command as UTF-8 text), or too many bytes."""
    try:
        quoted = " ".join(shlex.quote(p) for p in paths).encode("utf-8")
    except UnicodeEncodeError:
        return None
    if len(quoted) > INLINE_ACL_BYTES:
        return None
    return (f"LC_ALL=C; export LC_ALL; {_WHICH_TOOL}set -- {quoted.decode()}; {_ONE_RUN}"
            "printf '\\0E\\0'; ")


def _unescape(raw: bytes) -> str:
    """A name as ls's C quoting or getfacl writes it (\\n, \\", \\\\, \\ooo octal bytes) back to the path."""
    def one(m: re.Match[bytes]) -> bytes:
        code = m.group(1)
        return bytes([int(code, 8) & 0xFF]) if code[:1] in b"01234567" else _C_CHARS.get(code, code)
    return _dec(_ESCAPE.sub(one, raw))


_GETFACL_TAGS = {("user", False): USER_OBJ, ("user", True): USER, ("group", False): GROUP_OBJ,
                 ("group", True): GROUP, ("mask", False): MASK, ("other", False): OTHER}


def _getfacl_entries(lines: list[str]) -> tuple[AclEntry, ...]:
    """``getfacl -n`` lines → the entries the mode bits do not show, checked as every reader checks an
    ACL (:func:`vmsec.parsers.posix_acl.check_acl`): none for the three base entries alone, which is
    no ACL."""
    raw: list[tuple[int, int | None, int]] = []
    for line in lines:
        tag, _, rest = line.partition(":")
        who, _, bits = rest.partition(":")
        code = _GETFACL_TAGS.get((tag, bool(who)))
        if code is None or len(bits) != 3 or bits.strip("rwx-") or (who and not who.isdigit()):
            raise ValueError(f"unexpected getfacl line {line[:80]!r}")
        raw.append((code, int(who) if who else None, sum(b for c, b in zip("rwx", (4, 2, 1), strict=True)
                                                          if c in bits)))
    entries = check_acl(raw, None)
    return () if len(raw) == 3 else entries


def parse_acl_output(out: bytes) -> dict[str, tuple[tuple[AclEntry, ...] | None, str | None]]:
    """What :data:`_ACL_SCRIPT` printed → (entries, None) or (None, why unknown) per path the tool
    examined. A path it could not examine is not in the answer."""
    parts = out.split(b"\0")
    if parts[0] or len(parts) % 2 == 0:
        raise ValueError("not the ACL script's output")
    marked: dict[str, bool] = {}
    read: dict[str, tuple[tuple[AclEntry, ...] | None, str | None]] = {}
    getfacl, gnu_ls = True, False
    for marker, body in zip(parts[1::2], parts[2::2], strict=True):
        if marker == b"N":
            getfacl = False
        elif marker == b"G":
            gnu_ls = True
        elif marker == b"L":
            for line in body.split(b"\n"):
                name = _LS_NAME.match(line)
                if name is not None and line[:1] in b"-dlcbps":
                    marked[_unescape(name.group(1))] = line.split(b" ", 1)[0].endswith(b"+")
        elif marker == b"A":
            for block in body.split(b"\n\n"):
                lines = block.decode("utf-8", "surrogateescape").split("\n")
                if not lines[0].startswith("# file: "):
                    continue
                path = _unescape(lines[0][8:].encode("utf-8", "surrogateescape"))
                entries = [x for x in lines[1:] if x and not x.startswith("#")]
                try:
                    read[path] = (_getfacl_entries(entries), None)
                except ValueError as exc:
                    read[path] = (None, f"its ACL is malformed ({exc})")
        else:
            raise ValueError("not the ACL script's output")
    if getfacl:
        return read
    return {path: ((), None) if not plus and gnu_ls else (None, NO_GETFACL if gnu_ls else NO_ACL_TOOL)
            for path, plus in marked.items()}


class FileCache:
    """What is known of a remote root's files: stats, reads, listings and links — errors included — and
    the complete directory listings that answer "does not exist" without asking again. Filled by batches
    (a ``find -printf`` listing, an archive); shared by the SSH and guest-agent transports."""

    def __init__(self) -> None:
        self.stats: dict[tuple[str, bool], FileStat] = {}
        self.reads: dict[str, _Read] = {}
        self.lists: dict[str, list[str] | ReadError] = {}
        self.links: dict[str, str | ReadError] = {}
        # Complete directory listings: a path whose parent (or any ancestor's parent) was listed without
        # it does not exist — answered without asking the guest again.
        self.complete: dict[str, frozenset[str]] = {}
        # Access ACLs by path: (entries, None), or (None, why they are unknown) — see read_acls.
        self.acls: dict[str, tuple[tuple[AclEntry, ...] | None, str | None]] = {}
        self.runs_commands: bool | None = None  # set by the prefetch: commands, or SFTP only

    def _sudo_may(self, path: str) -> bool:
        """Whether a refused read is left for a privileged retry (not cached as refused)."""
        return False

    def note_acls(self, paths: Sequence[str], out: bytes | None) -> None:
        """Cache what the ACL tools answered for ``paths`` (``None``: no answer at all)."""
        why = "its ACL could not be read: the guest's ls and getfacl gave no usable answer"
        answer: dict[str, tuple[tuple[AclEntry, ...] | None, str | None]] = {}
        if out is not None:
            try:
                answer = parse_acl_output(out)
                why = "its ACL could not be read (ls could not examine it)"
            except ValueError:
                pass
        for path in paths:  # only what was asked: an answer for another path is not taken
            self.acls.setdefault(path, answer.get(path, (None, why)))

    def known_absent(self, path: str, hops: int = 0) -> bool:
        """Whether a listing or stat of an ancestor already shows that ``path`` does not exist
        (through known symlinks of ancestors: /sbin → usr/sbin)."""
        parent = "/"
        parts = [p for p in path.split("/") if p]
        for i, part in enumerate(parts):
            names = self.complete.get(parent)
            if names is not None and part not in names:
                return True
            here = f"{parent.rstrip('/')}/{part}"
            info = self.stats.get((here, True))
            if info is not None and info.exists is False:
                return True
            if (info is not None and here != path and info.exists
                    and info.kind not in (FileKind.DIRECTORY, None)):
                return True  # a file where a directory would have to be
            listed = self.lists.get(here)
            if isinstance(listed, ReadError) and listed.absent:
                return True
            link = self.links.get(here)
            if isinstance(link, str) and i < len(parts) - 1 and hops < 8 and ".." not in link.split("/"):
                target = link if link.startswith("/") else f"{parent.rstrip('/')}/{link}"
                return self.known_absent("/".join([target.rstrip("/"), *parts[i + 1:]]), hops + 1)
            parent = here
        return False

    def _note_stat(self, path: str, found: FileStat, follow: bool | None) -> None:
        """Record a stat; ``follow`` None: an lstat of something that is no symlink (both views)."""
        if follow is None:
            self.stats.setdefault((path, False), found)
            if found.kind is not FileKind.SYMLINK:
                self.stats.setdefault((path, True), found)
        else:
            self.stats.setdefault((path, follow), found)

    def _note_listing(self, path: str, names: Iterable[str]) -> None:
        ordered = sorted(set(names))
        self.lists[path] = ordered
        self.complete[path] = frozenset(ordered)

    def parse_find(self, out: bytes, err: str, starts: set[str], deep: set[str],
                    complete: Callable[[str], bool] = lambda _p: False) -> None:
        # The hot loop of a fleet scan (hundreds of records per guest): kept flat on purpose.
        fields = out.decode("utf-8", "surrogateescape").split("\0")
        children: dict[str, list[str]] = {}
        seen: dict[str, FileKind | None] = {}
        stats, links, kinds, symlink = self.stats, self.links, _FIND_TYPES, FileKind.SYMLINK
        for i in range(0, len(fields) - 1, 2):
            head = fields[i].split(" ", 8)
            if len(head) < 9 or head[8][:1] != "/":
                continue
            kind = kinds.get(head[0], FileKind.OTHER)
            path = head[8].rstrip("/") or "/"
            try:
                found = FileStat(path=path, exists=True, kind=kind, mode=int(head[1], 8), uid=int(head[2]),
                                 gid=int(head[3]), size=int(head[4]), mtime=float(head[5]),
                                 file_id=(int(head[6]), int(head[7])))
            except ValueError:
                continue
            seen[path] = kind
            start = path in starts
            # find -H follows a starting point that is a symlink: what it prints for it is the target
            # (a link record is that path met as an entry of a listed directory, or a dangling start)
            if start and kind is not symlink:
                stats.setdefault((path, True), found)
            else:
                stats.setdefault((path, False), found)
                if kind is not symlink:
                    stats.setdefault((path, True), found)
            if kind is symlink:
                link = fields[i + 1]
                if link:
                    links.setdefault(path, link)
                elif not self._sudo_may(path):  # else the on-demand readlink retries it through sudo
                    links.setdefault(path, ReadError(path, "the link could not be read", ErrorKind.DENIED))
            elif not start:  # a start point was followed: what it is itself is unknown
                links.setdefault(path, _NOT_A_LINK)
            if path != "/":
                parent, _, name = path.rpartition("/")
                children.setdefault(parent or "/", []).append(name)
        failed: dict[str, ReadError] = {}
        for line in err.splitlines():
            match = _FIND_ERROR.match(line)
            if match:
                path, reason = match.group(1).rstrip("/") or "/", match.group(2)
                failed[path] = ReadError(path, reason, _error_kind(reason))
        for path, error in failed.items():
            if seen.get(path) is FileKind.DIRECTORY:
                if not (error.kind is ErrorKind.DENIED and self._sudo_may(path)):  # else: sudo on demand
                    self.lists.setdefault(path, error)  # examined, but its entries could not be read
            elif error.absent:
                self.stats.setdefault((path, True), FileStat(path=path, exists=False))
                self.lists.setdefault(path, error)
            else:  # a symlink loop, a denied component: what the path leads to cannot be examined
                self.stats.setdefault((path, True), FileStat(path=path, exists=None, error=error.reason))
        # A directory find descended into (a starting point, or one level below a deep one) is listed
        # completely, unless find said otherwise.
        for path, seen_kind in seen.items():
            if seen_kind is not FileKind.DIRECTORY or path in failed:
                continue
            if path in starts or _parent(path) in deep or complete(path):
                self._note_listing(path, children.get(path, ()))


def find_arguments(shallow: Sequence[str], deep: Sequence[str] = ()) -> list[list[str]]:
    """The ``find`` command lines (argv) that list ``shallow`` paths one level down and ``deep`` ones
    two: what :meth:`FileCache.parse_find` reads."""
    commands = []
    if shallow:
        commands.append(["/usr/bin/find", "-H", *shallow, "-maxdepth", "1", "-printf", _FIND_FORMAT])
    if deep:
        commands.append(["/usr/bin/find", "-H", *deep, "-maxdepth", "2", "-printf", _FIND_FORMAT])
    return commands


class RemoteFS(FileCache):
    """Cached, batched, read-only access to one guest's files over an asyncssh connection."""

    def __init__(self, conn: Any, *, label: str, sudo: bool = False,
                 deadline: Callable[[], float | None] = lambda: None) -> None:
        import asyncssh

        self._asyncssh = asyncssh
        self._conn = conn
        self.label = label
        self.sudo = sudo
        self._deadline = deadline
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._sudo_slots = asyncio.Semaphore(SUDO_IN_FLIGHT)
        self._sftp: Any = None
        self._sftp_error: ReadError | None = None
        self._sftp_lock = asyncio.Lock()
        FileCache.__init__(self)
        self.batches = 0  # round trips of prefetching
        self.singles = 0  # reads no batch anticipated (each one round trip)
        self.requests = 0  # SFTP requests
        self.commands = 0  # exec channels (find, tar, base64; sudo)
        self.sudo_commands: list[str] = []  # every command run through sudo, for the record

    # --- errors and deadlines ------------------------------------------------------------------

    def _timeout(self) -> float | None:
        deadline = self._deadline()
        return None if deadline is None else max(0.001, deadline - asyncio.get_running_loop().time())

    def _error(self, path: str, exc: BaseException) -> ReadError:
        a = self._asyncssh
        if isinstance(exc, ReadError):
            return exc
        if isinstance(exc, a.SFTPNoSuchFile | a.SFTPNoSuchPath | a.SFTPNotADirectory):
            return ReadError(path, "does not exist", ErrorKind.ABSENT)
        if isinstance(exc, a.SFTPPermissionDenied):
            return ReadError(path, "permission denied", ErrorKind.DENIED)
        if isinstance(exc, a.SFTPLinkLoop):
            return ReadError(path, "too many levels of symbolic links", ErrorKind.LOOP)
        if isinstance(exc, TimeoutError):
            return ReadError(path, "no answer in time", ErrorKind.TIMEOUT)
        if isinstance(exc, a.SFTPConnectionLost | a.SFTPNoConnection | a.ConnectionLost | ConnectionError):
            return ReadError(path, f"connection lost: {exc}", ErrorKind.UNREACHABLE)
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        return ReadError(path, f"SFTP: {reason}", ErrorKind.IO)

    # --- what is already known -----------------------------------------------------------------

    # --- SFTP ----------------------------------------------------------------------------------

    async def sftp(self) -> Any:
        """The SFTP session, started on first use (a guest read wholly in batches never needs it)."""
        async with self._sftp_lock:
            if self._sftp is None and self._sftp_error is None:
                try:
                    self._sftp = await asyncio.wait_for(self._conn.start_sftp_client(), self._timeout())
                except TimeoutError:
                    self._sftp_error = ReadError(self.label, "the SFTP subsystem did not answer in time",
                                                 ErrorKind.TIMEOUT)
                except (self._asyncssh.Error, OSError) as exc:
                    reason = getattr(exc, "reason", None) or exc
                    self._sftp_error = ReadError(self.label, f"no SFTP subsystem: {reason}",
                                                 ErrorKind.UNSUPPORTED)
        if self._sftp_error is not None:
            raise self._sftp_error
        return self._sftp

    async def _call(self, path: str, make: Callable[[Any], Awaitable[Any]]) -> Any:
        """One SFTP request within the deadline."""
        sftp = await self.sftp()
        async with self._slots:
            self.requests += 1
            try:
                return await asyncio.wait_for(make(sftp), self._timeout())
            except Exception as exc:
                raise self._error(path, exc) from exc

    def _filestat(self, path: str, attrs: Any) -> FileStat:
        mode = attrs.permissions
        kind = None if mode is None else _KINDS.get(st.S_IFMT(mode), FileKind.OTHER)
        return FileStat(path=path, exists=True, kind=kind,
                        mode=st.S_IMODE(mode) if mode is not None else None, uid=attrs.uid, gid=attrs.gid,
                        size=attrs.size,
                        mtime=float(attrs.mtime) if attrs.mtime is not None else None)

    # --- the four operations (cache first, then SFTP) ------------------------------------------

    async def stat(self, path: str, follow: bool = True) -> FileStat:
        key = (path, follow)
        cached = self.stats.get(key)
        if cached is not None:
            return cached
        if self.known_absent(path):
            cached = self.stats[key] = FileStat(path=path, exists=False)
            return cached
        try:
            found = self._filestat(path, await self._call(
                path, lambda s: s.stat(_enc(path)) if follow else s.lstat(_enc(path))))
        except ReadError as exc:
            if exc.absent:
                found = FileStat(path=path, exists=False)
            elif exc.kind is ErrorKind.DENIED and self._sudo_may(path):
                found = await self._sudo_stat(path)
            else:
                found = FileStat(path=path, exists=None, error=exc.reason)
        self.stats[key] = found
        return found

    async def read(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        cached = self.reads.get(path)
        if cached is None or stale(cached, limit):
            cached = await self._read(path, limit)
            self.reads[path] = cached
        return answer(path, cached, limit)

    async def _read(self, path: str, limit: int) -> _Read:
        info = await self.stat(path, True)
        if info.exists is False:
            return _Read(None, ReadError(path, "does not exist", ErrorKind.ABSENT), limit)
        if info.exists is None:
            return _Read(None, ReadError(path, info.error or "could not be examined",
                                         _error_kind(info.error or "")), limit)
        if info.kind is not None and info.kind is not FileKind.FILE:
            return _Read(None, ReadError(path, f"not a regular file ({info.kind}); not opened",
                                         ErrorKind.NOT_REGULAR), limit)
        if info.size is not None and info.size > limit:
            return _Read(None, ReadError(path, f"file is {info.size} bytes, over the {limit}-byte limit",
                                         ErrorKind.TOO_LARGE), limit)
        try:
            return _Read(await self._sftp_read(path, limit, info.size), None, limit)
        except ReadError as exc:
            if exc.kind is ErrorKind.DENIED and self._sudo_may(path):
                try:
                    return _Read(await self._sudo("read", path, limit), None, limit)
                except ReadError as sudo_exc:
                    return _Read(None, fresh(sudo_exc), limit)
            return _Read(None, fresh(exc), limit)

    async def _sftp_read(self, path: str, limit: int, size: int | None) -> bytes:
        handle = await self._call(path, lambda s: s.open(_enc(path), "rb", block_size=0))
        try:
            chunks: list[bytes] = []
            total = 0
            while total <= limit:
                want = min(CHUNK, limit + 1 - total)
                offset = total
                data = await self._call(path, lambda _s: handle.read(want, offset))  # noqa: B023
                if not data:
                    break
                chunks.append(data)
                total += len(data)
                if size and total >= size and len(data) < want:
                    break  # the whole file, as its size says (procfs files say 0 and are read to EOF)
            if total > limit:
                raise ReadError(path, f"file is over the {limit}-byte limit", ErrorKind.TOO_LARGE)
            return b"".join(chunks)
        finally:
            with contextlib.suppress(ReadError):
                await self._call(path, lambda _s: handle.close())

    async def listdir(self, path: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]:
        cached = self.lists.get(path)
        if cached is None:
            cached = await self._listdir(path, limit)
            self.lists[path] = cached
        if isinstance(cached, ReadError):
            raise fresh(cached)
        if len(cached) > limit:
            raise ReadError(path, f"directory has more than {limit} entries", ErrorKind.TOO_LARGE)
        return cached

    async def _listdir(self, path: str, limit: int) -> list[str] | ReadError:
        if self.known_absent(path):
            return ReadError(path, "does not exist", ErrorKind.ABSENT)
        names: list[str] = []
        cap = max(limit, DEFAULT_LIST_LIMIT)

        async def scan(sftp: Any) -> None:
            async for entry in sftp.scandir(_enc(path)):
                name = _dec(entry.filename)
                if name in (".", ".."):
                    continue
                names.append(name)
                child = f"{path.rstrip('/')}/{name}"
                self._note_stat(child, self._filestat(child, entry.attrs), None)
                if len(names) > cap:
                    break

        try:
            await self._call(path, scan)
        except ReadError as exc:
            if exc.kind is ErrorKind.DENIED and self._sudo_may(path):
                try:
                    out = await self._sudo("list", path, MAX_SUDO_OUTPUT)
                except ReadError as sudo_exc:
                    return fresh(sudo_exc)
                names = [_dec(n) for n in out.split(b"\0") if n]
            else:
                return fresh(exc)
        if len(names) <= cap:
            self._note_listing(path, names)
        return sorted(names)

    async def readlink(self, path: str) -> str:
        cached = self.links.get(path)
        if cached is None and self.known_absent(path):
            cached = self.links[path] = ReadError(path, "does not exist", ErrorKind.ABSENT)
        if cached is None:
            try:
                cached = _dec(await self._call(path, lambda s: s.readlink(_enc(path))))
            except ReadError as exc:
                cached = fresh(exc)
                if exc.kind is ErrorKind.DENIED and self._sudo_may(path):
                    try:
                        cached = _dec((await self._sudo("readlink", path, 64 * 1024)).rstrip(b"\n"))
                    except ReadError as sudo_exc:
                        cached = fresh(sudo_exc)
                elif exc.kind is ErrorKind.IO:
                    info = await self.stat(path, False)
                    if info.exists and info.kind is not FileKind.SYMLINK:
                        cached = ReadError(path, "not a symbolic link", ErrorKind.NOT_REGULAR)
            self.links[path] = cached
        if isinstance(cached, ReadError):
            raise fresh(cached)
        return cached

    # --- commands ------------------------------------------------------------------------------

    async def run(self, command: str, stdin: bytes = b"", limit: int = MAX_LISTING_OUTPUT
                  ) -> tuple[bytes, str, int | None]:
        """Run one read-only command; (standard output, standard error, exit status). The output is
        capped at ``limit`` (a ReadError beyond), the whole run by the deadline."""
        self.commands += 1

        async def go() -> tuple[bytes, str, int | None]:
            process = await self._conn.create_process(command, encoding=None)
            try:
                if stdin:
                    process.stdin.write(stdin)
                process.stdin.write_eof()
                out = bytearray()
                errors = asyncio.ensure_future(_read_all(process.stderr, 64 * 1024))
                while len(out) <= limit:
                    chunk = await process.stdout.read(CHUNK)
                    if not chunk:
                        break
                    out += chunk
                if len(out) > limit:
                    errors.cancel()
                    raise ReadError(self.label, f"command output is over the {limit}-byte limit",
                                    ErrorKind.TOO_LARGE)
                err = _dec(await errors)
                result = await process.wait()
                return bytes(out), err, result.exit_status
            finally:
                process.close()

        try:
            return await asyncio.wait_for(go(), self._timeout())
        except ReadError:
            raise
        except TimeoutError as exc:
            raise ReadError(self.label, "a command did not finish in time", ErrorKind.TIMEOUT) from exc
        except Exception as exc:
            raise ReadError(self.label, f"command failed: {getattr(exc, 'reason', None) or exc}",
                            ErrorKind.IO) from exc

    def _sudo_may(self, path: str) -> bool:
        """Whether a refused read of ``path`` is retried through sudo: when allowed, and not for the
        process table (/proc/PID/…: a command per process; other users' processes stay unknown unless
        the login is root)."""
        return self.sudo and not (path.startswith("/proc/") and path[6:7].isdigit())

    async def _sudo(self, what: str, path: str, limit: int) -> bytes:
        """Run one allow-listed read-only command through ``sudo -n`` and return its output (capped)."""
        if not self._sudo_may(path):
            raise ReadError(path, "permission denied (another user's process; sudo is not used for the "
                            "process table)", ErrorKind.DENIED)
        argv = [part.replace("{path}", path) for part in SUDO_COMMANDS[what]]
        command = "sudo -n -- " + " ".join(shlex.quote(a) for a in argv)
        self.sudo_commands.append(command)
        async with self._sudo_slots:
            try:
                out, err, status = await self.run(command, limit=limit)
            except ReadError as exc:
                raise ReadError(path, f"sudo: {exc.reason}", exc.kind) from exc
        if status != 0:
            lines = err.strip().splitlines()
            reason = lines[-1][:200] if lines else f"exit status {status}"
            kind = ErrorKind.ABSENT if "No such file" in reason else ErrorKind.DENIED
            raise ReadError(path, f"sudo: {reason}", kind)
        return out

    async def _sudo_stat(self, path: str) -> FileStat:
        try:
            out = _dec(await self._sudo("stat", path, 4096))
        except ReadError as exc:
            return FileStat(path=path, exists=False if exc.kind is ErrorKind.ABSENT else None,
                            error=None if exc.kind is ErrorKind.ABSENT else exc.reason)
        return parse_stat_line(path, out)

    # --- batches of commands -------------------------------------------------------------------

    async def find(self, shallow: Sequence[str], deep: Sequence[str] = (), processes: bool = False) -> None:
        """One command of ``find -printf``: ``shallow`` paths with their entries, ``deep`` ones two levels
        down, and (``processes``) the process table: each /proc/PID (owner), its exe link and its
        descriptors (socket inodes), as this user may see them."""
        parts = []
        if shallow:
            parts.append("find -H " + " ".join(shlex.quote(p) for p in shallow)
                         + f" -maxdepth 1 -printf '{_FIND_FORMAT}'")
        if deep:
            parts.append("find -H " + " ".join(shlex.quote(p) for p in deep)
                         + f" -maxdepth 2 -printf '{_FIND_FORMAT}'")
        if processes:
            parts += ["find /proc/[0-9]* -maxdepth 1 \\( -name '[0-9]*' -o -name exe \\) "
                      f"-printf '{_FIND_FORMAT}'",
                      f"find /proc/[0-9]*/fd -maxdepth 1 -printf '{_FIND_FORMAT}'"]
        if not parts:
            return
        out, err, _status = await self.run("LC_ALL=C; export LC_ALL; " + "; ".join(parts))
        self.parse_find(out, err, set(shallow) | set(deep), set(deep),
                        complete=lambda p: processes and p.startswith("/proc/") and p.endswith("/fd"))

    async def archive(self, paths: Sequence[str], limits: dict[str, int], acl_paths: Sequence[str] = ()
                      ) -> None:
        """One ``tar -c`` of regular files (following links), read into the cache. A file tar could
        not read keeps tar's reason (permission denied …). ``acl_paths``: their ACLs too
        (:meth:`read_acls`), asked in the same command when they fit on its command line."""
        wanted = [p for p in paths if "\n" not in p]
        acls = [p for p in dict.fromkeys(acl_paths) if p not in self.acls][:MAX_ACL_PATHS]
        prefix = acl_inline(acls) if acls and wanted else ""
        if prefix is None or (acls and not wanted):  # on standard input instead, with a session of its own
            await asyncio.gather(self.archive(wanted, limits) if wanted else asyncio.sleep(0),
                                 self.read_acls(acls))
            return
        expected = sum(min(self.stats[(p, True)].size or 0, limits.get(p, PREFETCH_LIMIT))
                       if (p, True) in self.stats else 0 for p in wanted)
        cap = min(MAX_ARCHIVE, expected + 1024 * (len(wanted) + 20) + 1024 * 1024)
        if prefix:  # generously: output over the cap fails the batch (the guest is then read over SFTP)
            cap += 1024 * 1024 + acl_output_limit(len(acls), len(prefix))
        command = prefix + "LC_ALL=C tar -c -f - --no-recursion --dereference --null -T -"
        out, err, _status = await self.run(command, stdin=b"\0".join(_enc(p) for p in wanted), limit=cap)
        if acls:
            answer, end, out = out.partition(_ACL_END)
            self.note_acls(acls, answer if end else None)
        got: set[str] = set()
        try:
            with tarfile.open(fileobj=io.BytesIO(out), mode="r|") as tar:
                for member in tar:
                    path = "/" + member.name.lstrip("/")
                    if not member.isfile():
                        continue
                    handle = tar.extractfile(member)
                    data = handle.read() if handle is not None else b""
                    limit = limits.get(path, PREFETCH_LIMIT)
                    got.add(path)
                    self.stats.setdefault((path, True), FileStat(
                        path=path, exists=True, kind=FileKind.FILE, mode=member.mode, uid=member.uid,
                        gid=member.gid, size=member.size, mtime=float(member.mtime)))
                    if len(data) > limit:
                        self.reads[path] = _Read(None, ReadError(
                            path, f"file is over the {limit}-byte limit", ErrorKind.TOO_LARGE), limit)
                    else:
                        self.reads[path] = _Read(data, None, limit)
        except (tarfile.TarError, EOFError, OSError):
            pass  # a cut-off or garbled stream: what was read stays, the rest is read on demand
        for line in err.splitlines():
            match = _TAR_ERROR.match(line)
            if match and match.group(1) not in got:
                path, reason = match.group(1), f"{match.group(2)}: {match.group(3)}"
                kind = _error_kind(reason)
                if kind is ErrorKind.DENIED and self._sudo_may(path):
                    continue  # left to the sudo read on demand
                if kind.absent:
                    self.stats.setdefault((path, True), FileStat(path=path, exists=False))
                self.reads.setdefault(path, _Read(None, ReadError(path, reason, kind),
                                                  limits.get(path, PREFETCH_LIMIT)))

    async def read_acls(self, paths: Sequence[str]) -> None:
        """The access ACLs of ``paths`` (following symlinks, as ``stat`` does) in one command: ls -l's
        mark, and getfacl where the guest has it (:data:`_ACL_SCRIPT`). A path neither could examine
        keeps an unknown ACL, with the reason; without commands (SFTP only) every ACL is unknown."""
        wanted = [p for p in dict.fromkeys(paths) if p not in self.acls][:MAX_ACL_PATHS]
        if not wanted:
            return
        if self.runs_commands is False:
            why = "ACLs are not visible over SFTP (the guest runs no commands)"
            for path in wanted:
                self.acls.setdefault(path, (None, why))
            return
        try:
            names = b"\0".join(_enc(p) for p in wanted)
            out, _err, _status = await self.run(_ACL_SCRIPT, stdin=names, limit=acl_output_limit(len(wanted),
                                                                                             len(names)))
        except ReadError as exc:
            if exc.kind is ErrorKind.TIMEOUT:
                raise
            for path in wanted:
                self.acls.setdefault(path, (None, f"its ACL could not be read: {exc.reason}"))
            return
        self.note_acls(wanted, out)

    async def cat_virtual(self, paths: Sequence[str]) -> None:
        """Kernel files (procfs, sysfs) in one shell loop, each base64-framed: their sizes read as 0,
        so tar cannot take them. Missing or unreadable ones are marked."""
        wanted = [p for p in paths if not any(c in p for c in "\t\n'")]
        if not wanted:
            return
        # head bounds each file; the "." it is followed by only when it succeeded tells an empty file
        # from one that could not be read (another user's /proc/PID/maps).
        script = ("LC_ALL=C; for f in " + " ".join(shlex.quote(p) for p in wanted) + "; do "
                  "if [ -f \"$f\" ]; then printf '%s\\t' \"$f\"; "
                  f"{{ head -c {PROC_FILE_LIMIT + 1} -- \"$f\" 2>/dev/null && printf .; }} | base64 -w0; "
                  "printf '\\n'; "
                  "elif [ -e \"$f\" ]; then printf '%s\\t!\\n' \"$f\"; "
                  "else printf '%s\\t-\\n' \"$f\"; fi; done")
        out, _err, _status = await self.run(script, limit=MAX_LISTING_OUTPUT)
        for line in out.split(b"\n"):
            path_bytes, tab, value = line.partition(b"\t")
            if not tab:
                continue
            path = _dec(path_bytes)
            if value == b"-":
                missing = ReadError(path, "does not exist", ErrorKind.ABSENT)
                self.reads[path] = _Read(None, missing, PROC_FILE_LIMIT)
            elif value == b"!":
                if not self._sudo_may(path):  # another user's process: say so now, no round trip later
                    self.reads[path] = _Read(None, ReadError(path, "permission denied", ErrorKind.DENIED),
                                             PROC_FILE_LIMIT)
            else:
                try:
                    data = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    continue
                if not data.endswith(b"."):
                    if not self._sudo_may(path):
                        self.reads[path] = _Read(None, ReadError(path, "permission denied", ErrorKind.DENIED),
                                                 PROC_FILE_LIMIT)
                    continue
                data = data[:-1]
                if len(data) > PROC_FILE_LIMIT:
                    self.reads[path] = _Read(None, ReadError(path, f"file is over the {PROC_FILE_LIMIT}-byte "
                                                             "limit", ErrorKind.TOO_LARGE), PROC_FILE_LIMIT)
                else:
                    self.reads[path] = _Read(data, None, PROC_FILE_LIMIT)

    async def batch(self, ops: Iterable[Awaitable[Any]]) -> None:
        """Run many operations at once: one round trip. Their outcomes (errors too) land in the cache."""
        pending = [asyncio.ensure_future(op) for op in ops]
        if not pending:
            return
        self.batches += 1
        results = await asyncio.gather(*pending, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ReadError):
                raise result


class SshReader(ReaderBase):
    """The Reader the parsers call (synchronously, in a worker thread): answers from the
    :class:`RemoteFS` cache, and fetches a path no batch anticipated through the event loop."""

    def __init__(self, remote: RemoteFS, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        self._remote = remote
        self._loop = loop
        self._timeout = timeout
        self._names: dict[str, dict[int, str]] = {}

    @property
    def label(self) -> str:
        return self._remote.label

    def _await(self, make: Callable[[], Coroutine[Any, Any, Any]], path: str) -> Any:
        if self._remote.known_absent(path):
            raise ReadError(path, "does not exist", ErrorKind.ABSENT)
        self._remote.singles += 1
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(make(), self._loop)
        try:
            return future.result(self._timeout)
        except TimeoutError as exc:
            future.cancel()
            raise ReadError(path, "no answer in time", ErrorKind.TIMEOUT) from exc

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        path = _norm(path)
        cached = self._remote.reads.get(path)
        if cached is not None and not stale(cached, limit):
            return answer(path, cached, limit)
        data: bytes = self._await(lambda: self._remote.read(path, limit), path)
        return data

    def stat(self, path: str, follow: bool = True) -> FileStat:
        path = _norm(path)
        found = self._remote.stats.get((path, follow))
        if found is None and self._remote.known_absent(path):
            found = FileStat(path=path, exists=False)
        if found is None:
            try:
                found = self._await(lambda: self._remote.stat(path, follow), path)
            except ReadError as exc:
                return FileStat(path=path, exists=False if exc.absent else None,
                                error=None if exc.absent else exc.reason)
        if found.exists and found.owner is None and found.uid is not None:
            found = evolve(found, owner=self._lookup("/etc/passwd", found.uid),
                           group=self._lookup("/etc/group", found.gid) if found.gid is not None else None)
        return found

    def complete_acls(self, stats: dict[str, FileStat]) -> dict[str, FileStat]:
        """``stats`` with each existing file's access ACL (see :func:`vmsec.reading.complete_acls`):
        from the prefetch's batch where it asked, else from one more command for all the others."""
        remote = self._remote
        wanted = {p: _norm(p) for p, s in stats.items() if s.exists and s.acl is None and s.acl_error is None}
        missing = [n for n in wanted.values() if n not in remote.acls]
        if missing:
            remote.batches += remote.runs_commands is not False  # SFTP: nothing to ask
            future = asyncio.run_coroutine_threadsafe(remote.read_acls(missing), self._loop)
            try:
                future.result(self._timeout)
            except (TimeoutError, ReadError) as exc:
                future.cancel()
                reason = exc.reason if isinstance(exc, ReadError) else "no answer in time"
                for name in missing:
                    remote.acls.setdefault(name, (None, f"its ACL could not be read: {reason}"))
        out = dict(stats)
        for path, name in wanted.items():
            acl, error = remote.acls.get(name, (None, "its ACL was not read"))
            out[path] = evolve(stats[path], acl=None if acl is None else self._named(acl), acl_error=error)
        return out

    def listdir(self, path: str, limit: int = DEFAULT_LIST_LIMIT) -> list[str]:
        path = _norm(path)
        cached = self._remote.lists.get(path)
        if cached is None:
            cached = self._await(lambda: self._remote.listdir(path, limit), path)
        if isinstance(cached, ReadError):
            raise fresh(cached)
        if len(cached) > limit:
            raise ReadError(path, f"directory has more than {limit} entries", ErrorKind.TOO_LARGE)
        return list(cached)

    def readlink(self, path: str) -> str:
        path = _norm(path)
        cached = self._remote.links.get(path)
        if cached is None:
            cached = self._await(lambda: self._remote.readlink(path), path)
        if isinstance(cached, ReadError):
            raise fresh(cached)
        return cached


def _norm(path: str) -> str:
    """Repeated and trailing slashes removed; ".." is left to the guest (it resolves symlinks first)."""
    path = re.sub("/+", "/", path)
    return path.rstrip("/") or "/"


__all__ = ["SUDO_COMMANDS", "RemoteFS", "SshReader"]
