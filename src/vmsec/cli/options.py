"""Options shared by every command that scans or renders a report, as reusable decorators.

A command that produces a report takes :func:`report_options` (``--format``, ``--output``,
``--fail-on``/``--exit-code``, ``--severity``, ``--ignore-unfixed``, ``--compliance``,
``--show-pass``, ``--no-color``, ``--store``, ``--config``) and turns its keyword arguments into a
:class:`ReportArgs` with :meth:`ReportArgs.pop`; a command that scans takes :func:`scan_options`
(the report options plus ``--profile``, ``--check``, ``--db``, ``--waivers``, ``--timeout``,
``--quiet``, ``--no-store``) and :meth:`ScanArgs.pop`. New commands (``scan ssh``, ``fleet`` …) reuse
them, so every option reads the same everywhere::

    @scan.command("ssh")
    @click.argument("host")
    @scan_options
    def scan_ssh(host: str, **opts: Any) -> None:
        run_scan([SshSpec(host=host)], ScanArgs.pop(opts))

Where values come from, strongest first: the command line; ``VMSEC_*`` environment variables
(``VMSEC_FORMAT``, ``VMSEC_FAIL_ON``, ``VMSEC_STORE`` …, and ``VMSEC_<COMMAND>_<OPTION>`` for every
other option); the configuration file (``--config FILE``, ``$VMSEC_CONFIG``, else ``vmsec.toml`` in
the XDG configuration directory); the built-in default. docs/cli.md documents the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from msgspec import Struct

from vmsec.cli import exitcodes

F = TypeVar("F", bound=Callable[..., Any])

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
FORMATS: tuple[str, ...] = ("terminal", "json", "sarif", "csv", "junit", "markdown", "html", "cyclonedx")
CONFIG_NAME = "vmsec.toml"
CONFIG_ENV = "VMSEC_CONFIG"
_CONFIG_META = "vmsec.config"  # ctx.meta key: the config file given to the root group
MAX_CONFIG_BYTES = 1 << 20


def warn(message: str) -> None:
    """``vmsec: warning: MESSAGE`` on standard error."""
    click.echo(f"vmsec: warning: {message}", err=True)


# --- the configuration file -------------------------------------------------------------------------


def default_config_path() -> Path:
    """``vmsec.toml`` in the user's configuration directory (``$XDG_CONFIG_HOME/vmsec``)."""
    from vmsec.userdirs import user_config_dir

    return Path(user_config_dir()) / CONFIG_NAME


def load_config(path: Path) -> dict[str, Any]:
    """The TOML configuration file at ``path``; a bad file is a usage error naming it."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise click.UsageError(f"cannot read the configuration file {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise click.UsageError(f"{path}: configuration file larger than {MAX_CONFIG_BYTES} bytes")
    import tomllib  # only when there is a configuration file

    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise click.UsageError(f"{path}: not valid TOML: {exc}") from exc


def _option_names(command: click.Command) -> dict[str, str]:
    """Every long option of ``command`` without its dashes (``fail-on``, ``no-store``) → param name."""
    names: dict[str, str] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name is None or not param.expose_value:
            continue
        for opt in (*param.opts, *param.secondary_opts):
            if opt.startswith("--"):
                names[opt[2:]] = param.name
                names[opt[2:].replace("-", "_")] = param.name
    return names


def _multiple(command: click.Command) -> set[str]:
    return {p.name for p in command.params if isinstance(p, click.Option) and p.multiple and p.name}


def config_defaults(data: Mapping[str, Any], path: list[str], command: click.Command,
                    origin: str) -> dict[str, Any]:
    """The defaults ``data`` (a parsed vmsec.toml) gives the command at ``path`` (``["scan", "xml"]``).

    Top-level keys apply to every command that has such an option; ``[scan]`` to every ``vmsec scan
    …`` command; ``[scan.xml]`` to ``vmsec scan xml`` only (the more specific wins). A key that is no
    option of the command it is written for is a warning naming it.
    """
    names = _option_names(command)
    defaults: dict[str, Any] = {}
    tables: list[tuple[str, Mapping[str, Any]]] = [("", data)]
    node: Any = data
    for i, part in enumerate(path):
        node = node.get(part) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            break
        tables.append((".".join(path[: i + 1]), node))
    for table_name, table in tables:
        for key, value in table.items():
            if isinstance(value, Mapping):
                continue  # a section for a (sub)command
            name = names.get(key)
            if name is None:
                if table_name and table_name == ".".join(path):
                    warn(f"{origin}: [{table_name}] {key!r} is not an option of 'vmsec {' '.join(path)}'")
                elif not table_name and key not in _KNOWN_SHARED:
                    warn(f"{origin}: {key!r} is not an option vmsec knows")
                continue
            if name in _multiple(command) and isinstance(value, str):
                value = [value]  # `severity = "high"` for a repeatable option
            defaults[name] = value
    return defaults


def _apply_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Eager callback of ``--config``: load the file and make its values this command's defaults."""
    root = ctx.find_root()
    explicit = value or root.meta.get(_CONFIG_META) or os.environ.get(CONFIG_ENV)
    if ctx is root:
        if value:
            root.meta[_CONFIG_META] = value
        return
    path = Path(explicit) if explicit else default_config_path()
    if not explicit and not path.is_file():
        return
    data = load_config(path)
    command_path: list[str] = []
    c: click.Context | None = ctx
    while c is not None and c.parent is not None:
        command_path.insert(0, c.info_name or "")
        c = c.parent
    assert ctx.command is not None
    defaults = config_defaults(data, command_path, ctx.command, str(path))
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


def config_option(func: F) -> F:
    return click.option(
        "--config", metavar="FILE", type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
        callback=_apply_config, envvar=CONFIG_ENV,
        help=f"Options from this TOML file (default: {CONFIG_NAME} in the user configuration "
             "directory, e.g. ~/.config/vmsec/vmsec.toml).")(func)


# --- severity filter and gate -------------------------------------------------------------------------


def parse_severities(values: Iterable[str]) -> frozenset[str] | None:
    """``--severity`` values → the severities to keep (None: all).

    One value is a minimum (``high``: critical and high); several (comma-separated or repeated) are
    exactly those. Case-insensitive.
    """
    items = [v.strip().lower() for value in values for v in value.split(",") if v.strip()]
    if not items:
        return None
    bad = [v for v in items if v not in SEVERITIES]
    if bad:
        raise click.BadParameter(f"{', '.join(map(repr, bad))}: not a severity "
                                 f"(one of {', '.join(SEVERITIES)})", param_hint="'--severity'")
    if len(items) == 1:
        return frozenset(SEVERITIES[: SEVERITIES.index(items[0]) + 1])
    return frozenset(items)


def _severity_callback(_ctx: click.Context, _param: click.Parameter, value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = (value,)
    return parse_severities(value)


class Selection(Struct, frozen=True, kw_only=True):
    """Which findings a report shows and the gate counts: ``--severity`` and ``--ignore-unfixed``."""

    severities: frozenset[str] | None = None
    ignore_unfixed: bool = False

    @property
    def active(self) -> bool:
        return self.severities is not None or self.ignore_unfixed

    def wants(self, finding: Any) -> bool:
        if self.severities is not None and finding.severity.value not in self.severities:
            return False
        if self.ignore_unfixed and finding.vulnerability is not None:
            return bool(finding.vulnerability.get("fixed_version"))
        return True


    def apply(self, result: Any) -> Any:
        """A finished :class:`~vmsec.results.ScanResult` with only the selected findings (and their
        counts); the same result when nothing is filtered."""
        if not self.active:
            return result
        from msgspec.structs import replace

        from vmsec.results import ScanCounts

        findings = tuple(f for f in result.findings if self.wants(f))
        return replace(result, findings=findings, counts=ScanCounts.of(findings))


class Gate(Struct, frozen=True, kw_only=True):
    """``--fail-on SEVERITY`` and ``--exit-code N``: the exit code when a FAIL reaches the threshold."""

    fail_on: str | None = None
    exit_code: int | None = None

    @property
    def threshold(self) -> str | None:
        if self.fail_on is not None:
            return self.fail_on
        return "info" if self.exit_code is not None else None

    def exit_code_for(self, failed_by_severity: Mapping[str, int], complete: bool) -> int:
        """The process exit code: the gate's code when it failed, else 0 (complete) or 3."""
        threshold = self.threshold
        if threshold is not None:
            worse_or_equal = SEVERITIES[: SEVERITIES.index(threshold) + 1]
            if any(failed_by_severity.get(sev, 0) for sev in worse_or_equal):
                return exitcodes.FINDINGS if self.exit_code is None else self.exit_code
        return exitcodes.OK if complete else exitcodes.INCOMPLETE


# --- option groups ------------------------------------------------------------------------------------


def _compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def store_option(func: F) -> F:
    return click.option(
        "--store", "store_url", metavar="URL|FILE", default=None, envvar="VMSEC_STORE",
        help="Findings store: a database URL (sqlite:///…, postgresql+psycopg://user@host/db) or a SQLite "
             "file path (default: $VMSEC_STORE, else history.sqlite in the user data directory).")(func)


def format_option(choices: Iterable[str] = FORMATS, default: str = "terminal") -> Callable[[F], F]:
    return click.option("--format", "fmt", type=click.Choice(list(choices), case_sensitive=False),
                        default=default, show_default=True, envvar="VMSEC_FORMAT", help="Report format.")


def output_option(func: F) -> F:
    return click.option("--output", "-o", metavar="FILE", type=click.Path(dir_okay=False),
                        help="Write the report to FILE instead of standard output (opened before the "
                             "scan starts: an unwritable path fails at once).")(func)


def gate_options(func: F) -> F:
    return _compose(
        click.option("--fail-on", type=click.Choice(list(SEVERITIES), case_sensitive=False), default=None,
                     envvar="VMSEC_FAIL_ON",
                     help="Exit 1 (or --exit-code) when a FAIL finding has this severity or worse."),
        click.option("--exit-code", type=click.IntRange(0, 255), default=None, envvar="VMSEC_EXIT_CODE",
                     help="The exit code when the --fail-on gate fails (default 1); alone, it gates on "
                          "any FAIL."),
    )(func)


def filter_options(func: F) -> F:
    return _compose(
        click.option("--severity", "severities", metavar="SEV[,SEV…]", multiple=True,
                     callback=_severity_callback, envvar="VMSEC_SEVERITY",
                     help="Only findings of this severity or worse; several (comma-separated or "
                          "repeated): exactly those. Case-insensitive. Applies to --fail-on too."),
        click.option("--ignore-unfixed", is_flag=True, envvar="VMSEC_IGNORE_UNFIXED",
                     help="Leave out vulnerabilities that have no fixed version yet."),
    )(func)


def _frameworks() -> list[str]:
    from vmsec.compliance import available

    return list(available())


class LazyChoice(click.Choice):  # type: ignore[type-arg]
    """A choice list computed when first needed (the compliance frameworks: a directory listing that
    `vmsec --version` should not pay for)."""

    def __init__(self, load: Callable[[], list[str]]) -> None:
        self._load = load
        super().__init__([])

    def _loaded(self) -> None:
        if not self.choices:
            self.choices = tuple(self._load())

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        self._loaded()
        return super().convert(value, param, ctx)

    def get_metavar(self, param: click.Parameter, *args: Any, **kwargs: Any) -> str | None:
        self._loaded()  # click ≥ 8.2 passes ctx= by keyword
        metavar: str | None = super().get_metavar(param, *args, **kwargs)
        return metavar

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        self._loaded()
        completions: list[Any] = super().shell_complete(ctx, param, incomplete)
        return completions


class Seconds(click.FloatRange):
    """A number of seconds within a range — and a number: click's FloatRange lets NaN through (every
    comparison with it is false), and a NaN timeout waits for ever or overflows the clock."""

    def __init__(self, min: float, max: float | None = None, *, min_open: bool = False) -> None:
        super().__init__(min=min, max=max, min_open=min_open)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number: float = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


def compliance_option(func: F) -> F:
    return click.option("--compliance", type=LazyChoice(_frameworks), default=None, envvar="VMSEC_COMPLIANCE",
                        help="Show the result per requirement of this compliance framework "
                             "(formats terminal, json, markdown, html).")(func)


def report_options(func: F) -> F:
    """The options of every command that renders a report (see :class:`ReportArgs`)."""
    return _compose(
        format_option(), output_option, gate_options, filter_options, compliance_option,
        click.option("--show-pass", is_flag=True, help="List passed checks in the terminal report too."),
        click.option("--no-color", "no_color", is_flag=True, default=None,
                     help="No colour in the terminal report (also: NO_COLOR=1)."),
        store_option, config_option,
    )(func)


def scan_options(func: F) -> F:
    """The options of every ``vmsec scan …`` command: :func:`report_options` and how to scan."""
    return scan_options_except()(func)


def scan_options_except(*names: str) -> Callable[[F], F]:
    """:func:`scan_options` without the options named (a command with its own ``--timeout``, say)."""
    from vmsec.profiles import DEFAULT_PROFILE

    options = [
        click.option("--profile", default=DEFAULT_PROFILE, show_default=True, envvar="VMSEC_PROFILE",
                     help="Built-in profile (multi-tenant, single-tenant) or a TOML file."),
        click.option("--check", "check_ids", multiple=True, metavar="ID",
                     help="Run only these checks (repeatable; 'VMS-DOM-*' selects a prefix)."),
        click.option("--db", "db_path", type=click.Path(dir_okay=False), envvar="VMSEC_DB",
                     help="Vulnerability database for package matching (default: the user cache)."),
        click.option("--waivers", "waivers_path", type=click.Path(dir_okay=False), envvar="VMSEC_WAIVERS",
                     help="Accepted risks (TOML or YAML): matching FAILs become WAIVED until they expire."),
        click.option("--timeout", type=Seconds(0, 7 * 86400, min_open=True), default=None,
                     envvar="VMSEC_TIMEOUT", metavar="SECONDS",
                     help="Give up on a target (one spec: a host, an image, a connection) after this long; "
                          "the scan goes on with the others."),
        click.option("--no-store", is_flag=True, envvar="VMSEC_NO_STORE",
                     help="Do not keep this scan in the findings store."),
        click.option("--quiet", "-q", is_flag=True, envvar="VMSEC_QUIET",
                     help="No progress display on standard error."),
    ]
    wanted = [o for o, name in zip(options, _SCAN_OPTION_NAMES, strict=True) if name not in names]
    return _compose(report_options, *wanted)


_SCAN_OPTION_NAMES = ("profile", "check", "db", "waivers", "timeout", "no-store", "quiet")


_KNOWN_SHARED = frozenset({
    "format", "output", "fail-on", "fail_on", "exit-code", "exit_code", "severity", "ignore-unfixed",
    "ignore_unfixed", "compliance", "show-pass", "show_pass", "no-color", "no_color", "store", "profile",
    "check", "db", "waivers", "timeout", "no-store", "no_store", "quiet", "debug",
})


# --- parsed values --------------------------------------------------------------------------------------


def color_wanted(no_color: bool | None) -> bool | None:
    """False with --no-color or NO_COLOR set; None: decide by whether the output is a terminal."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().meta.get("vmsec.no_color"):
        return False
    return None


class ReportArgs(Struct, frozen=True, kw_only=True):
    """What :func:`report_options` parsed."""

    fmt: str = "terminal"
    output: str | None = None
    gate: Gate = Gate()
    selection: Selection = Selection()
    compliance: str | None = None
    show_pass: bool = False
    color: bool | None = None
    store_url: str | None = None  # as given (None: $VMSEC_STORE or the default)

    @classmethod
    def pop(cls, kwargs: dict[str, Any]) -> ReportArgs:
        """Take this group's values out of a command's keyword arguments."""
        return cls(fmt=kwargs.pop("fmt").lower(), output=kwargs.pop("output"),
                   gate=Gate(fail_on=_lower(kwargs.pop("fail_on")), exit_code=kwargs.pop("exit_code")),
                   selection=Selection(severities=kwargs.pop("severities"),
                                       ignore_unfixed=bool(kwargs.pop("ignore_unfixed"))),
                   compliance=kwargs.pop("compliance"), show_pass=bool(kwargs.pop("show_pass")),
                   color=color_wanted(kwargs.pop("no_color")), store_url=kwargs.pop("store_url"))


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


class ScanArgs(Struct, frozen=True, kw_only=True):
    """What :func:`scan_options` parsed."""

    report: ReportArgs
    profile: str
    check_ids: tuple[str, ...] = ()
    db_path: str | None = None
    waivers_path: str | None = None
    timeout: float | None = None
    no_store: bool = False
    quiet: bool = False

    @classmethod
    def pop(cls, kwargs: dict[str, Any]) -> ScanArgs:
        report = ReportArgs.pop(kwargs)
        return cls(report=report, profile=kwargs.pop("profile"), check_ids=tuple(kwargs.pop("check_ids", ())),
                   db_path=kwargs.pop("db_path", None), waivers_path=kwargs.pop("waivers_path", None),
                   timeout=kwargs.pop("timeout", None), no_store=bool(kwargs.pop("no_store", False)),
                   quiet=bool(kwargs.pop("quiet", False)))
