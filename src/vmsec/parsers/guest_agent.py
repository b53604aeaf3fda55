"""qemu-guest-agent → :class:`GuestAgentSetup`: is it installed, does it start, which RPCs are filtered.

qemu-ga takes its RPC filters from its configuration file (``[general]`` ``block-rpcs``, older
``blacklist``, and ``allow-rpcs`` on QEMU ≥ 8.1, each read as one GKeyFile string and split at commas
only — ``guest-exec;guest-file-open`` or ``guest-exec, guest-file-open`` name RPCs that do not exist)
and from its command line (``-b/--block-rpcs``, ``--blacklist``, ``-a/--allow-rpcs``, ``-c/--config``,
read by GNU getopt), command-line lists being appended to the file's. Which keys and options exist
depends on the release (see ``_RELEASES``): the installed package's version decides, and without one
an RPC counts as blocked only when every release would block it. A command line or configuration
file the release refuses makes qemu-ga exit at start: ``refused`` says why. The configuration file is
``-c``'s, else the service environment's ``QGA_CONF``, else /etc/qemu/qemu-ga.conf. The command line is
the effective ``ExecStart=`` of
``qemu-guest-agent.service`` (unit, then drop-ins; an empty ``ExecStart=`` resets) with ``$VAR`` /
``${VAR}`` expanded as systemd does from ``Environment=`` and its ``EnvironmentFile=``s (RHEL:
/etc/sysconfig/qemu-ga with ``FILTER_RPC_ARGS`` or ``BLACKLIST_RPC``); without a systemd unit, the
SysV defaults file (/etc/default/qemu-guest-agent ``DAEMON_ARGS``) or the OpenRC script's
``command_args`` with the variables of /etc/conf.d/qemu-guest-agent.

Enabled: a systemd ``wants`` link, a udev rule that asks systemd for the unit when the virtio port
appears (Debian and RHEL start it this way), or an OpenRC runlevel link; a unit masked to /dev/null
is disabled.

A file that exists but could not be read (permission denied, a FIFO, over the cap) is not taken for an
absent one: each input of the RPC filter that was not read — the unit, a drop-in directory or drop-in,
an ``EnvironmentFile=``, qemu-ga.conf, the SysV/OpenRC files — is recorded in ``errors`` as
:class:`~vmsec.parsers.system._common.Unreadable` (the collector keeps them in
``Guest.unread["guest_agent"]``), and the filter read without it is incomplete. Whether the agent is
enabled does not decide its RPC filter: a place that could enable it but was not read (a ``wants/``
listing, a udev rule, a runlevel) makes ``enabled`` None and is recorded as a plain problem.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from vmsec.errors import ErrorKind, ParseError, ReadError
from vmsec.facts import GuestAgentSetup, InstalledPackage
from vmsec.parsers.system._common import Errors, list_dir, read_optional, unreadable
from vmsec.parsers.systemd_unit import MAX_UNIT_LINES, parse_unit

if TYPE_CHECKING:
    from vmsec.reading import Reader

PACKAGE_NAMES = frozenset({"qemu-guest-agent", "qemu-ga"})
BINARIES = ("/usr/bin/qemu-ga", "/usr/sbin/qemu-ga", "/usr/local/bin/qemu-ga")
UNIT = "qemu-guest-agent.service"
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
UDEV_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d")
CONFIG = "/etc/qemu/qemu-ga.conf"
SYSV_DEFAULTS = "/etc/default/qemu-guest-agent"  # Debian's SysV script: DAEMON_ARGS
OPENRC_SCRIPT = "/etc/init.d/qemu-guest-agent"  # Alpine: command_args=, with /etc/conf.d variables
OPENRC_CONF = "/etc/conf.d/qemu-guest-agent"
MAX_BYTES = 256 * 1024
MAX_DIR = 2_000
MAX_DROPINS = 100
MAX_ENV_LINES = 2_000
MAX_CONFIG_LINES = 5_000
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def _read(reader: Reader, path: str, errors: Errors | None, max_lines: int) -> str | None:
    """The file's text; None when it is absent or was not read (recorded as unread). Lines past
    ``max_lines`` are not parsed: they are unread too, not absent."""
    text = read_optional(reader, path, errors, MAX_BYTES)
    if text is not None and len(text.splitlines()) > max_lines:
        unreadable(errors, ReadError(path, f"more than {max_lines} lines; the rest was not read",
                                     ErrorKind.TOO_LARGE))
    return text


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines of a shell-style environment file (quotes removed, nothing evaluated)."""
    env: dict[str, str] = {}
    for line in text.splitlines()[:MAX_ENV_LINES]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip()] = value
    return env


# What each qemu-ga release reads (QEMU's docs/about/deprecated.rst and removed-features.rst, and
# qga/main.c): 7.2 added the ``block-rpcs`` key and ``--block-rpcs`` (a ``blacklist`` key, when present,
# still wins over ``block-rpcs`` until 9.1 removed it and ``--blacklist``); 8.1 added ``allow-rpcs`` and
# ``-a``; 9.1 added ``-c/--config``. Checked against Debian's qemu-ga 7.2 and 10.0 with ``-D``.
class _Release(NamedTuple):
    name: str
    since: tuple[int, int]
    short: str  # getopt's optstring
    long: dict[str, tuple[int, str]]  # --name: (0 no argument / 1 required / 2 optional, short letter)
    keys: tuple[str, ...]  # block-list keys of [general], the first one present wins


_LONG_COMMON = {"help": (0, "h"), "version": (0, "V"), "dump-conf": (0, "D"), "logfile": (1, "l"),
                "pidfile": (1, "f"), "fsfreeze-hook": (2, "F"), "verbose": (0, "v"), "method": (1, "m"),
                "path": (1, "p"), "daemonize": (0, "d"), "statedir": (1, "t"), "retry-path": (0, "r")}
_RELEASES = (
    _Release("before 7.2", (0, 0), "hVvdm:p:l:f:F::b:s:t:Dr", {**_LONG_COMMON, "blacklist": (1, "b")},
             ("blacklist",)),
    _Release("7.2 to 8.0", (7, 2), "hVvdm:p:l:f:F::b:s:t:Dr",
             {**_LONG_COMMON, "block-rpcs": (1, "b"), "blacklist": (1, "b")}, ("blacklist", "block-rpcs")),
    _Release("8.1 to 9.0", (8, 1), "hVvdm:p:l:f:F::b:a:s:t:Dr",
             {**_LONG_COMMON, "block-rpcs": (1, "b"), "blacklist": (1, "b"), "allow-rpcs": (1, "a")},
             ("blacklist", "block-rpcs")),
    _Release("9.1 and later", (9, 1), "hVvdc:m:p:l:f:F::b:a:s:t:Dr",
             {**_LONG_COMMON, "block-rpcs": (1, "b"), "allow-rpcs": (1, "a"), "config": (1, "c")},
             ("block-rpcs",)),
)
_VERSION = re.compile(r"(?:\d+:)?(\d+)\.(\d+)")


def _releases(version: str | None) -> tuple[_Release, ...]:
    """The releases ``version`` (a package version: ``1:7.2+dfsg-7``, ``8.2.0``) may be; all of them when
    it is unknown (the filter is then what every one of them would apply, see :func:`_merge`)."""
    m = _VERSION.match(version or "")
    if m is None:
        return _RELEASES
    number = (int(m.group(1)), int(m.group(2)))
    return (next(r for r in reversed(_RELEASES) if number >= r.since),)


def _split(value: str) -> tuple[str, ...]:
    """An RPC list as qemu-ga splits it: at commas only, nothing trimmed — ``guest-exec;guest-file-open``
    and `` guest-exec`` name no RPC, so they block nothing (g_strsplit, then exact comparison)."""
    return tuple(value.split(",")) if value else ()  # g_strsplit("") is no element at all


_ESCAPES = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


class KeyFile(NamedTuple):
    """The ``[general]`` group of qemu-ga.conf as GLib's GKeyFile reads it: each key's last raw value,
    or the error for which GKeyFile refuses the whole file (qemu-ga then exits at start)."""

    general: dict[str, str]
    error: str | None = None


def parse_config(text: str) -> KeyFile:
    """qemu-ga.conf as GKeyFile (GLib 2.74) parses it: a line is blank, a comment (``#``), a group
    (``[name]``, only blanks after the ``]``) or ``key=value`` (the key's trailing and the value's
    leading white space dropped, the value's trailing white space kept); a key before any group or any
    other line makes the file unloadable. A repeated group continues, a repeated key replaces."""
    general: dict[str, str] = {}
    group: str | None = None
    for number, raw in enumerate(text.split("\n")[:MAX_CONFIG_LINES], start=1):
        line = raw.removesuffix("\r").lstrip(" \t\n\v\f\r")
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            close = line.find("]")
            if close > 0 and not line[close + 1:].strip(" \t"):
                name = line[1:close]
                if not name or "[" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
                    return KeyFile(general, f"line {number}: invalid group name")
                group = name
                continue
        if "=" in line and not line.startswith("="):
            key, _, value = line.partition("=")
            key = key.rstrip(" \t\n\v\f\r")
            if group is None:
                return KeyFile(general, "the file does not start with a group")
            if not key or key.startswith(" ") or "]" in key.split("[", 1)[0]:
                return KeyFile(general, f"line {number}: invalid key name")
            if group == "general":
                general[key] = value.lstrip(" \t\n\v\f\r")
            continue
        return KeyFile(general, f"line {number} is not a key-value pair, group, or comment")
    return KeyFile(general)


def _string(keyfile: KeyFile, key: str) -> str | None:
    r"""``g_key_file_get_string``: the value with GKeyFile's escapes (``\s \n \t \r \\``) resolved; a
    ValueError for any other escape or for bytes that are not UTF-8 (qemu-ga then exits at start)."""
    raw = keyfile.general.get(key)
    if raw is None:
        return None
    if "\ufffd" in raw:
        raise ValueError(f"{key}: the value is not UTF-8")
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            nxt = raw[i + 1:i + 2]
            if nxt not in _ESCAPES:
                raise ValueError(f"{key}: the value has an invalid escape sequence")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


class _Options(NamedTuple):
    blocked: tuple[str, ...] | None
    allowed: tuple[str, ...] | None
    config: str | None  # -c/--config (9.1 and later)
    refused: str | None  # why qemu-ga exits instead of starting


def _getopt(args: list[str], release: _Release) -> _Options:
    """qemu-ga's command line through GNU getopt_long, as ``release`` defines its options: short options
    clustered (``-vbguest-exec``), long ones abbreviated to any unambiguous prefix (``--block=``), the
    words after ``--`` not options, other words passed over (getopt permutes them)."""
    blocked: list[str] | None = None
    allowed: list[str] | None = None
    config: str | None = None
    # optstring: a letter, then ":" for a required argument or "::" for an optional one
    takes = {m.group(1): len(m.group(2)) for m in re.finditer(r"([^:])(:{0,2})", release.short)}
    i = 0

    def option(letter: str, value: str | None) -> str | None:
        nonlocal blocked, allowed, config
        if letter in "hVD":
            return {"h": "-h prints help", "V": "-V prints the version", "D": "-D prints the configuration"
                    }[letter] + " and exits"
        if letter == "b" and value is not None:
            if value in ("help", "?"):
                return "-b help lists the RPCs and exits"
            blocked = (blocked or []) + list(_split(value))
        elif letter == "a" and value is not None:
            allowed = (allowed or []) + list(_split(value))
        elif letter == "c":
            config = value
        return None

    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            break
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if name in release.long:
                matches = [name]
            else:
                matches = [n for n in release.long if n.startswith(name)]
                if len({release.long[n] for n in matches}) > 1:
                    return _Options(None, None, None, f"qemu-ga {release.name} refuses the ambiguous option "
                                    f"--{name}")
            if not matches:
                return _Options(None, None, None, f"qemu-ga {release.name} has no option --{name}")
            has_arg, letter = release.long[matches[0]]
            if has_arg == 0 and eq:
                return _Options(None, None, None, f"qemu-ga {release.name}: --{matches[0]} takes no value")
            if has_arg == 1 and not eq:
                if i >= len(args):
                    return _Options(None, None, None, f"qemu-ga {release.name}: --{matches[0]} needs a value")
                value = args[i]
                i += 1
            stop = option(letter, value if has_arg else None)
            if stop:
                return _Options(None, None, None, stop)
            continue
        if not word.startswith("-") or word == "-":
            continue  # not an option: getopt moves it to the end, qemu-ga ignores it
        j = 1
        while j < len(word):
            letter = word[j]
            j += 1
            if letter not in takes:
                return _Options(None, None, None, f"qemu-ga {release.name} has no option -{letter}")
            arg: str | None = None
            if takes[letter] == 1:  # required: the rest of this word, else the next word
                if j < len(word):
                    arg = word[j:]
                elif i < len(args):
                    arg = args[i]
                    i += 1
                else:
                    return _Options(None, None, None, f"qemu-ga {release.name}: -{letter} needs a value")
                j = len(word)
            elif takes[letter] == 2:  # optional: only the rest of this word
                arg = word[j:] or None
                j = len(word)
            stop = option(letter, arg)
            if stop:
                return _Options(None, None, None, stop)
    return _Options(tuple(blocked) if blocked is not None else None,
                    tuple(allowed) if allowed is not None else None, config, None)


def parse_arguments(args: Iterable[str], version: str | None = None
                    ) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None, str | None]:
    """(blocked, allowed, config path) from qemu-ga's command-line arguments, read as the newest release
    (or the one ``version`` names) reads them; ValueError when that release refuses them."""
    options = _getopt(list(args), _releases(version)[-1])
    if options.refused:
        raise ValueError(options.refused)
    return options.blocked, options.allowed, options.config


class _Command(NamedTuple):
    """The unit's effective command line: qemu-ga's arguments (variables expanded) and the service's
    environment (``QGA_CONF`` names another configuration file)."""

    args: list[str]
    env: dict[str, str]


def _unit_command(reader: Reader, origins: list[str], errors: Errors | None
                  ) -> tuple[_Command | None, bool | None]:
    """(effective ExecStart, masked?) of the unit; (None, None) without a unit, (None, False) without
    an ExecStart."""
    files: list[str] = []
    masked = False
    for directory in UNIT_DIRS:
        path = f"{directory}/{UNIT}"
        info = reader.stat(path, follow=False)
        if info.exists is None:  # may be there and replace (or mask) the unit files below it
            unreadable(errors, ReadError(path, info.error or "could not be examined"))
            continue
        if not info.exists:
            continue
        if info.kind == "symlink":
            try:
                if reader.readlink(path) == "/dev/null":
                    masked = True
                    break
            except ReadError as exc:  # a mask or an alias: which one is unknown
                unreadable(errors, exc)
        files.append(path)
        break
    if masked:
        return None, True
    if not files:
        return None, None
    dropins: dict[str, str] = {}
    for directory in UNIT_DIRS:
        dropdir = f"{directory}/{UNIT}.d"
        for name in list_dir(reader, dropdir, errors, MAX_DROPINS):  # unlisted: its drop-ins are unread
            if name.endswith(".conf"):
                dropins.setdefault(name, f"{dropdir}/{name}")
    files += [dropins[n] for n in sorted(dropins)]
    exec_start: str | None = None
    env_files: list[str] = []
    env: dict[str, str] = {}
    for path in files:
        text = _read(reader, path, errors, MAX_UNIT_LINES)
        if text is None:
            continue
        origins.append(path)
        for section, key, value in parse_unit(text):
            if section != "Service":
                continue
            if key == "ExecStart":
                exec_start = value or None
            elif key == "EnvironmentFile":
                if value:
                    env_files.append(value)
                else:
                    env_files.clear()  # an empty assignment resets the list
            elif key == "Environment":
                if not value:
                    env.clear()
                for word in _unquoted(value):
                    name, sep, setting = word.partition("=")
                    if sep and name.isidentifier():
                        env[name] = setting
    # EnvironmentFile= is read after Environment=, whatever their order: its settings win.
    for name in env_files:
        path = name.lstrip("-")  # "-": a missing file is no error; an unreadable one is still unread
        text = _read(reader, path, errors, MAX_ENV_LINES)
        if text is not None:
            origins.append(path)
            env.update(parse_env_file(text))
    if exec_start is None:
        return None, False
    prefix = exec_start[:len(exec_start) - len(exec_start.lstrip("-@:+!"))]
    try:
        words = shlex.split(exec_start[len(prefix):])
    except ValueError as exc:
        raise ParseError(origins[0], f"ExecStart cannot be split: {exc}") from exc
    # "@": the second word is argv[0], not an argument (systemd.service(5)).
    args = words[2:] if "@" in prefix else words[1:]
    return _Command(_systemd_expand(args, env), env), False


def _unquoted(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


_BRACED = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _systemd_expand(words: list[str], env: dict[str, str]) -> list[str]:
    """Variables in ExecStart= as systemd substitutes them (systemd.service(5), "Command lines"): a
    word that is ``$NAME`` becomes the value split at white space — zero or more arguments; ``${NAME}``
    anywhere in a word becomes the value as it is, white space and all, inside that one argument; a
    ``$NAME`` inside a longer word stays as written; ``$$`` is ``$``."""
    out: list[str] = []
    for word in words:
        if word.startswith("$") and word[1:2] not in ("{", "$"):
            out += _unquoted(env.get(word[1:], ""))
            continue
        out.append(_BRACED.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), ""), word))
    return out


def expand(text: str, env: dict[str, str]) -> str:
    """Expand ``$VAR``, ``${VAR}`` and ``${VAR:-default}`` from ``env`` (nothing is executed)."""
    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        return env.get(name) or (m.group(2) or "")
    return _VAR.sub(value, text)


def _listing(reader: Reader, path: str, limit: int, errors: Errors | None) -> list[str] | None:
    """Names in a directory; [] when it is absent, None when it exists but could not be listed.

    Recorded as a problem, not as an unread input of the RPC filter: enablement never decides it."""
    try:
        return reader.listdir(path, limit)
    except ReadError as exc:
        if exc.absent:
            return []
        if errors is not None:
            errors.append(exc)
        return None


def _enabled(reader: Reader, masked: bool | None, has_unit: bool, errors: Errors | None) -> bool | None:
    """True when something starts the agent at boot, False when nothing does, None when unknown —
    including when a place that could start it was not read (then False would rest on what is
    missing from the scan, not from the guest)."""
    if masked:
        return False
    unread = False

    def found(path: str) -> bool:
        nonlocal unread
        info = reader.stat(path, follow=False)
        if info.exists is None:
            unread = True
            if errors is not None:
                errors.append(ReadError(path, info.error or "could not be examined"))
        return bool(info.exists)

    for directory in ("/etc/systemd/system",):
        entries = _listing(reader, directory, MAX_DIR, errors)
        unread |= entries is None
        for entry in entries or ():
            if entry.endswith(".wants") and found(f"{directory}/{entry}/{UNIT}"):
                return True
    for directory in UDEV_DIRS:
        names = _listing(reader, directory, MAX_DIR, errors)
        unread |= names is None
        for name in names or ():
            if not name.endswith(".rules"):
                continue
            try:
                text = reader.read_text(f"{directory}/{name}", MAX_BYTES)
            except ReadError as exc:
                if not exc.absent:
                    unread = True
                    if errors is not None:
                        errors.append(exc)
                continue
            if "SYSTEMD_WANTS" in text and "qemu-guest-agent" in text:
                return True
    runlevels = _listing(reader, "/etc/runlevels", 20, errors)
    unread |= runlevels is None
    for level in runlevels or ():
        if found(f"/etc/runlevels/{level}/qemu-guest-agent"):
            return True
    if unread:
        return None
    if has_unit or runlevels:
        return False
    return None


def _init_script_args(reader: Reader, origins: list[str], errors: Errors | None) -> list[str]:
    """Arguments given by a SysV (Debian ``DAEMON_ARGS``) or OpenRC (``command_args``) setup."""
    words: list[str] = []
    text = _read(reader, SYSV_DEFAULTS, errors, MAX_ENV_LINES)
    if text is not None:
        origins.append(SYSV_DEFAULTS)
        words.append(parse_env_file(text).get("DAEMON_ARGS", ""))
    script = _read(reader, OPENRC_SCRIPT, errors, MAX_ENV_LINES)
    if script is not None and script.startswith("#!/sbin/openrc-run"):
        conf = _read(reader, OPENRC_CONF, errors, MAX_ENV_LINES)
        env = parse_env_file(conf) if conf is not None else {}
        if conf is not None:
            origins.append(OPENRC_CONF)
        origins.append(OPENRC_SCRIPT)
        env.update({k: expand(v, env) for k, v in parse_env_file(script).items() if k == "command_args"})
        words.append(env.get("command_args", ""))
    args: list[str] = []
    for word in words:
        try:
            args += shlex.split(word)
        except ValueError as exc:
            raise ParseError(origins[-1], f"arguments cannot be split: {exc}") from exc
    return args


def read_guest_agent(reader: Reader, packages: Iterable[InstalledPackage] | None,
                     errors: Errors | None = None) -> GuestAgentSetup:
    """The qemu-guest-agent setup of ``reader``'s root. A file that decides the RPC filter and exists
    but cannot be read is recorded in ``errors`` as unread (the filter built without it is
    incomplete); a ParseError is raised when the command line cannot be split."""
    names = {p.name for p in packages} if packages is not None else set()
    if not names & PACKAGE_NAMES:
        stats = [reader.stat(b) for b in BINARIES]
        if not any(st.exists for st in stats):
            # "not installed" must not rest on a binary that could not be looked at
            hidden = next((st for st in stats if st.exists is None), None)
            if hidden is not None:
                raise ReadError(hidden.path, hidden.error or "could not be examined")
            return GuestAgentSetup(installed=False)
    origins: list[str] = []
    command, masked = _unit_command(reader, origins, errors)
    env: dict[str, str] = {}
    args: list[str] = []
    if command is not None:
        args, env = command.args, command.env
    elif masked is None:
        args = _init_script_args(reader, origins, errors)
    version = next((p.version for p in packages or () if p.name in PACKAGE_NAMES), None)
    configs: dict[str, KeyFile | str | None] = {}

    def config(path: str) -> KeyFile | str | None:
        """The file parsed; ``"absent"`` when there is none; None when it exists but was not read."""
        if path not in configs:
            text = _read(reader, path, errors, MAX_CONFIG_LINES)
            if text is not None:
                origins.append(path)
                configs[path] = parse_config(text)
            else:
                configs[path] = "absent" if reader.stat(path).exists is False else None
        return configs[path]

    filters = [_filter(release, args, env, config) for release in _releases(version)]
    enabled = _enabled(reader, masked, command is not None or bool(masked), errors)
    blocked, allowed, refused = _merge(filters)
    return GuestAgentSetup(installed=True, enabled=enabled, blocked_rpcs=blocked, allowed_rpcs=allowed,
                           refused=refused, origin=", ".join(dict.fromkeys(origins)))


class _Filter(NamedTuple):
    blocked: tuple[str, ...]
    allowed: tuple[str, ...] | None
    refused: str | None = None


def _filter(release: _Release, args: list[str], env: dict[str, str],
            config: Callable[[str], KeyFile | str | None]) -> _Filter:
    """The RPC filter ``release`` of qemu-ga applies: the configuration file's lists, then the command
    line's appended to them."""
    options = _getopt(args, release)
    if options.refused:
        return _Filter((), None, options.refused)
    path = options.config or env.get("QGA_CONF") or CONFIG
    keyfile = config(path)
    blocked: tuple[str, ...] = ()
    allowed: tuple[str, ...] | None = None
    if keyfile == "absent" and options.config is not None:  # named on the command line: required
        return _Filter((), None, f"qemu-ga {release.name} exits: the configuration file {path} named by -c "
                       "does not exist")
    if isinstance(keyfile, KeyFile):
        if keyfile.error:
            return _Filter((), None, f"qemu-ga refuses {path}: {keyfile.error}")
        try:
            key = next((k for k in release.keys if k in keyfile.general), None)
            value = _string(keyfile, key) if key is not None else None
            if value is not None:
                blocked = _split(value)
            if "allow-rpcs" in release.long:
                value = _string(keyfile, "allow-rpcs")
                if value is not None:
                    allowed = _split(value)
        except ValueError as exc:
            return _Filter((), None, f"qemu-ga refuses {path}: {exc}")
    blocked = tuple(dict.fromkeys(blocked + (options.blocked or ())))
    if options.allowed is not None:
        allowed = tuple(dict.fromkeys((allowed or ()) + options.allowed))
    return _Filter(blocked, allowed)


def _merge(filters: list[_Filter]) -> tuple[tuple[str, ...], tuple[str, ...] | None, str | None]:
    """One filter for the releases the installed qemu-ga may be: an RPC is blocked only when every
    release that starts blocks it, and allowed when any allows it; refused only when none starts."""
    running = [f for f in filters if f.refused is None]
    if not running:
        return (), None, "; ".join(dict.fromkeys(f.refused or "" for f in filters))
    blocked = tuple(r for r in running[0].blocked if all(r in f.blocked for f in running[1:]))
    allowed: tuple[str, ...] | None = None
    if all(f.allowed is not None for f in running):
        allowed = tuple(dict.fromkeys(r for f in running for r in f.allowed or ()))
    return blocked, allowed, None
