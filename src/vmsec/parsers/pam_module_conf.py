"""PAM modules' own configuration files → :class:`ModuleConfig`.

- ``/etc/security/pwquality.conf`` (libpwquality ``pwquality_read_config``): the ``*.conf`` files of
  ``/etc/security/pwquality.conf.d`` are read *first*, in ``strcmp`` order, then the main file, so
  the main file wins over a drop-in. Lines are ``name = value`` or a bare ``name`` (a flag); ``#``
  starts a comment anywhere on a line.
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


def parse_module_conf(text: str, path: str, values: dict[str, str], origins: dict[str, str],
                      problems: Problems) -> None:
    """Add the settings of one file to ``values``/``origins`` (later ones win). Accepts ``name = value``,
    ``name=value``, ``name value`` and a bare ``name``."""
    for number, raw in enumerate(split_lines(text)[:20_000], start=1):
        line = strip_c(raw.split("#", 1)[0])
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            problems.append(ParseError(path, f"not a 'name = value' line: {line[:80]!r}", number))
            continue
        values[match.group(1)] = match.group(2).strip()
        origins[match.group(1)] = f"{path}:{number}"


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
            parse_module_conf(text, drop_in, values, origins, problems)
    text = _read(reader, path)
    if text is not None:
        files.append(path)
        parse_module_conf(text, path, values, origins, problems)
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
