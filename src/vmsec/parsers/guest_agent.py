"""qemu-guest-agent → :class:`GuestAgentSetup`: is it installed, does it start, which RPCs are filtered.

qemu-ga takes its RPC filters from its configuration file (``[general]`` ``block-rpcs``, older
``blacklist``, and ``allow-rpcs`` on QEMU ≥ 8.1; GKeyFile lists, ``;``-separated — commas are
accepted too) and from its command line (``-b/--block-rpcs``, ``--blacklist``, ``-a/--allow-rpcs``,
``-c/--config``), command-line lists being appended to the file's. The command line is the
effective ``ExecStart=`` of
``qemu-guest-agent.service`` (unit, then drop-ins; an empty ``ExecStart=`` resets) with ``$VAR`` /
``${VAR}`` expanded from its ``EnvironmentFile=``s (RHEL: /etc/sysconfig/qemu-ga with
``FILTER_RPC_ARGS`` or ``BLACKLIST_RPC``); without a systemd unit, the SysV defaults file
(/etc/default/qemu-guest-agent ``DAEMON_ARGS``) or the OpenRC script's ``command_args`` with the
variables of /etc/conf.d/qemu-guest-agent.

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
from collections.abc import Iterable
from typing import TYPE_CHECKING

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
_VALUE_OPTIONS = ("-b", "-a", "-c", "--block-rpcs", "--blacklist", "--allow-rpcs", "--config")
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


def _list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in re.split(r"[;,]", value) if v.strip())


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


def parse_config(text: str) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """(blocked, allowed) RPC lists from the ``[general]`` group of qemu-ga.conf; None where unset."""
    blocked: tuple[str, ...] | None = None
    allowed: tuple[str, ...] | None = None
    section = ""
    for line in text.splitlines()[:MAX_CONFIG_LINES]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        if not sep or section != "general":
            continue
        key = key.strip()
        if key in ("block-rpcs", "blacklist"):
            blocked = (blocked or ()) + _list(value)
        elif key == "allow-rpcs":
            allowed = (allowed or ()) + _list(value)
    return blocked, allowed


def parse_arguments(args: Iterable[str]) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None, str | None]:
    """(blocked, allowed, config path) from qemu-ga's command-line arguments."""
    blocked: tuple[str, ...] | None = None
    allowed: tuple[str, ...] | None = None
    config: str | None = None
    words = list(args)
    i = 0
    while i < len(words):
        word = words[i]
        value: str | None = None
        name = word
        if word.startswith("--") and "=" in word:
            name, value = word.split("=", 1)
        elif word in _VALUE_OPTIONS and i + 1 < len(words):
            value = words[i + 1]
            i += 1
        elif word.startswith(("-b", "-a", "-c")) and len(word) > 2 and not word.startswith("--"):
            name, value = word[:2], word[2:]
        i += 1
        if value is None:
            continue
        if name in ("-b", "--block-rpcs", "--blacklist"):
            blocked = (blocked or ()) + _list(value)
        elif name in ("-a", "--allow-rpcs"):
            allowed = (allowed or ()) + _list(value)
        elif name in ("-c", "--config"):
            config = value
    return blocked, allowed, config


def _unit_command(reader: Reader, origins: list[str], errors: Errors | None
                  ) -> tuple[str | None, bool | None]:
    """(effective ExecStart with variables expanded, masked?) of the unit; (None, None) without a unit."""
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
            elif key == "EnvironmentFile" and value:
                env_files.append(value)
    env: dict[str, str] = {}
    for name in env_files:
        path = name.lstrip("-")  # "-": a missing file is no error; an unreadable one is still unread
        text = _read(reader, path, errors, MAX_ENV_LINES)
        if text is not None:
            origins.append(path)
            env.update(parse_env_file(text))
    if exec_start is None:
        return None, False
    command = exec_start.lstrip("-@:+!")
    return expand(command, env), False


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
    args: list[str] = []
    if command is not None:
        try:
            args = shlex.split(command)[1:]
        except ValueError as exc:
            raise ParseError(origins[0] if origins else UNIT, f"ExecStart cannot be split: {exc}") from exc
    elif masked is None:
        args = _init_script_args(reader, origins, errors)
    cli_blocked, cli_allowed, config_path = parse_arguments(args)
    config_path = config_path or CONFIG
    blocked: tuple[str, ...] = ()
    allowed: tuple[str, ...] | None = None
    text = _read(reader, config_path, errors, MAX_CONFIG_LINES)
    if text is not None:
        origins.append(config_path)
        conf_blocked, allowed = parse_config(text)
        blocked = conf_blocked or ()
    # qemu-ga appends command-line lists to those of the configuration file.
    blocked = tuple(dict.fromkeys(blocked + (cli_blocked or ())))
    if cli_allowed is not None:
        allowed = tuple(dict.fromkeys((allowed or ()) + cli_allowed))
    enabled = _enabled(reader, masked, command is not None or bool(masked), errors)
    return GuestAgentSetup(installed=True, enabled=enabled, blocked_rpcs=blocked, allowed_rpcs=allowed,
                           origin=", ".join(dict.fromkeys(origins)))
