"""Options and helpers shared by the service commands (serve, user, token, audit)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from vmsec.cli import exitcodes
from vmsec.errors import ConfigError, StoreError


class ServiceText(click.ParamType):  # type: ignore[type-arg]
    """A name or label given to the service: no control character and no byte that is not UTF-8 (a
    store cannot keep either, nor look one up) — a usage error naming the option, not a crash."""

    name = "text"

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from vmsec.service.core import NOT_TEXT, is_text

        if isinstance(value, str):
            if len(value) > self.limit:
                self.fail(f"longer than {self.limit} characters", param, ctx)
            if not is_text(value):
                from vmsec.report.text import visible

                self.fail(f"'{visible(value)}' {NOT_TEXT}", param, ctx)
        return value


TEXT = ServiceText()


def _die(message: str, code: int) -> None:
    click.echo(f"vmsec: error: {message}", err=True)
    sys.exit(code)


def service_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--key-file",
        metavar="FILE",
        default=None,
        help="The service key, kept outside the database (default: $VMSEC_SERVICE_KEY, else "
        "service.key in the user's config directory; created on first use).",
    )(func)
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        default=None,
        help="Findings store URL (default: $VMSEC_STORE, else SQLite in the user data "
        "directory); e.g. postgresql+psycopg://user@host/vmsec.",
    )(func)


@contextmanager
def open_service(store_url: str | None, key_file: str | None, **kwargs: Any) -> Iterator[Any]:
    """The service core, with errors turned into messages and exit codes."""
    from vmsec.service.core import Service, ServiceError

    try:
        svc = Service.open(store_url, key_file, **kwargs)
    except ConfigError as exc:
        _die(str(exc), exitcodes.USAGE)
    except StoreError as exc:
        _die(str(exc), exitcodes.INCOMPLETE)
    try:
        yield svc
    except ServiceError as exc:
        _die(str(exc), exitcodes.USAGE)
    except ConfigError as exc:
        _die(str(exc), exitcodes.USAGE)
    except StoreError as exc:
        _die(str(exc), exitcodes.INCOMPLETE)
    finally:
        svc.close()
