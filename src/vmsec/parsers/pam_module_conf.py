"""PAM modules' own configuration files → :class:`ModuleConfig`.

- ``/etc/security/pwquality.conf`` (libpwquality ``pwquality_read_config``): the ``*.conf`` files of
  ``/etc/security/pwquality.conf.d`` are read *first*, in ``strcmp`` order, then the main file, so
  the main file wins over a drop-in. Lines are ``name = value`` or a bare ``name`` (a flag); ``#``
  starts a comment anywhere on a line. The library stops at the first line it refuses — a name it
  does not know, or an integer setting whose value strtol does not read whole — and reads neither the
  rest of that file nor the files after it (pam_pwquality only logs this): what was set before stays.
- ``/etc/security/faillock.conf`` (Linux-PAM ``pam_faillock``; another file with ``conf=``): the same
  ``name = value`` / ``flag`` syntax, one file.

The module's arguments on its PAM line override these files; the compiled-in defaults apply to keys
no file sets (libpwquality: minlen 8, credits 0, enforcing 1; pam_faillock: deny 3, unlock_time 600,
fail_interval 900). Resolving that is the checks' business; this module only reads the files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vmsec.errors import ParseError, Problems, ReadError
from vmsec.facts import ModuleConfig, PamStack
from vmsec.parsers.lines import split_lines, strip_c
from vmsec.reading import Reader

PWQUALITY = "/etc/security/pwquality.conf"
FAILLOCK = "/etc/security/faillock.conf"
MAX_FILE_BYTES = 256 * 1024
MAX_DROPINS = 256
_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\s*=\s*|\s+|$)(.*)$")
# libpwquality 1.4's settings (settings.c s_map): integers, strings, and flags that take no value.
PWQUALITY_INTEGERS = frozenset({"difok", "minlen", "dcredit", "ucredit", "lcredit", "ocredit", "minclass",
                                "maxrepeat", "maxclassrepeat", "maxsequence", "gecoscheck", "dictcheck",
                                "usercheck", "usersubstr", "enforcing", "retry"})
PWQUALITY_SETTINGS = PWQUALITY_INTEGERS | {"badwords", "dictpath", "enforce_for_root", "local_users_only"}
_STRTOL = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


def parse_module_conf(text: str, path: str, values: dict[str, str], origins: dict[str, str],
                      problems: Problems, *, pwquality: bool = False) -> bool:
    """Add the settings of one file to ``values``/``origins`` (later ones win). Accepts ``name = value``,
    ``name=value``, ``name value`` and a bare ``name``. With ``pwquality``, as libpwquality: stop at
    the first line it refuses and return False (the files after this one are not read either)."""
    for number, raw in enumerate(split_lines(text)[:20_000], start=1):
        line = strip_c(raw.split("#", 1)[0])
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            if pwquality:
                problems.append(ParseError(path, f"libpwquality stops reading at {line[:80]!r}: not a "
                                           "setting; nothing after it is read", number))
                return False
            problems.append(ParseError(path, f"not a 'name = value' line: {line[:80]!r}", number))
            continue
        name, value = match.group(1), strip_c(match.group(2))
        if pwquality:
            name = name.lower()  # strcasecmp
            if name not in PWQUALITY_SETTINGS or (name in PWQUALITY_INTEGERS and not (
                    _STRTOL.fullmatch(value) and -2**31 < int(value) < 2**31 - 1)):
                what = ("an unknown setting" if name not in PWQUALITY_SETTINGS
                        else f"{value[:40]!r} is no integer")
                problems.append(ParseError(path, f"libpwquality stops reading at {name}: {what}; nothing "
                                           "after it is read", number))
                return False
        values[name] = value
        origins[name] = f"{path}:{number}"
    return True


def _read(reader: Reader, path: str) -> str | None:
    try:
        return reader.read_text(path, MAX_FILE_BYTES)
    except ReadError as exc:
        if exc.absent:
            return None
        raise


def read_pwquality_conf(reader: Reader, *, problems: Problems | None = None,
                        path: str = PWQUALITY) -> ModuleConfig:
    """libpwquality's configuration as the library reads it: drop-ins first, the main file last.
    Raises :class:`ReadError` when a file that exists cannot be read (the settings would be unknown)."""
    problems = Problems() if problems is None else problems
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    files: list[str] = []
    try:
        names = reader.listdir(f"{path}.d", MAX_DROPINS)
    except ReadError as exc:
        if not exc.absent:
            raise
        names = []
    for name in sorted(n for n in names if n.endswith(".conf") and not n.startswith(".")):
        drop_in = f"{path}.d/{name}"
        text = _read(reader, drop_in)
        if text is not None:
            files.append(drop_in)
            if not parse_module_conf(text, drop_in, values, origins, problems, pwquality=True):
                return ModuleConfig(path=path, present=True, values=values, origins=origins,
                                    files=tuple(files))
    text = _read(reader, path)
    if text is not None:
        files.append(path)
        parse_module_conf(text, path, values, origins, problems, pwquality=True)
    return ModuleConfig(path=path, present=bool(files), values=values, origins=origins, files=tuple(files))


def read_single_conf(reader: Reader, path: str, *, problems: Problems | None = None) -> ModuleConfig:
    """One ``name = value`` file (faillock.conf). Raises :class:`ReadError` when it exists but cannot
    be read."""
    problems = Problems() if problems is None else problems
    text = _read(reader, path)
    if text is None:
        return ModuleConfig(path=path, present=False)
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    parse_module_conf(text, path, values, origins, problems)
    return ModuleConfig(path=path, present=True, values=values, origins=origins, files=(path,))




MAX_EXTRA_CONFS = 8


def read_pam_module_configs(reader: Reader, stacks: Iterable[PamStack] | None, *,
                            problems: Problems | None = None) -> dict[str, ModuleConfig]:
    """pwquality.conf (with its drop-ins), faillock.conf, and the files faillock lines name with
    ``conf=`` (at most :data:`MAX_EXTRA_CONFS`), by main path."""
    problems = Problems() if problems is None else problems
    configs = {PWQUALITY: read_pwquality_conf(reader, problems=problems),
               FAILLOCK: read_single_conf(reader, FAILLOCK, problems=problems)}
    named = dict.fromkeys(arg.split("=", 1)[1] for stack in stacks or () for line in stack.lines
                          if line.module.rsplit("/", 1)[-1] == "pam_faillock.so"
                          for arg in line.args if arg.startswith("conf=") and arg[5:].startswith("/"))
    for path in list(named)[:MAX_EXTRA_CONFS]:
        if path not in configs:
            configs[path] = read_single_conf(reader, path, problems=problems)
    return configs


__all__ = ["FAILLOCK", "PWQUALITY", "parse_module_conf", "read_pam_module_configs", "read_pwquality_conf",
           "read_single_conf"]
