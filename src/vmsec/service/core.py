"""The service's shared state: configuration, the store's engine, the key, the clock and the audit
log, and who is asking (:class:`Principal`)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from vmsec.errors import VmsecError
from vmsec.service.audit import AuditLog, SyslogForwarder
from vmsec.service.keys import ServiceKeys
from vmsec.service.roles import Permission, Role, allowed
from vmsec.store.store import Store, open_store
from vmsec.times import as_utc


class ServiceError(VmsecError):
    """A request the service refuses (bad input, conflict): the message is safe to show."""


# What a label or a note may not hold: lone surrogates (a byte that was not UTF-8 on a command line)
# and NUL, which the stores' drivers cannot keep, and every other character str.isprintable() refuses —
# controls, format characters (bidi overrides, zero-width), line and paragraph separators, unassigned
# code points — which would reach every later listing. Spaces (a no-break space) pass; a note keeps its
# tabs and line breaks.
_NOTE_SPACE = str.maketrans("", "", "\t\r\n")


NOT_TEXT = "holds a control character or a byte that is not UTF-8"


def is_text(value: str, *, multiline: bool = False) -> bool:
    """Whether ``value`` may be a label (or, ``multiline``, a note): see above."""
    text = value.translate(_NOTE_SPACE) if multiline else value
    return text.isprintable() or all(c.isprintable() or unicodedata.category(c) == "Zs" for c in text)


def text_input(value: str, what: str, limit: int, *, multiline: bool = False) -> str:
    """``value`` without surrounding white space, cut to ``limit`` characters; :class:`ServiceError`
    naming ``what`` when it is not :func:`is_text`."""
    if not is_text(value, multiline=multiline):
        raise ServiceError(f"{what} {NOT_TEXT}")
    return value.strip()[:limit]


class NotFound(ServiceError):
    """No such object — or one outside the caller's groups (the two look the same)."""


class Denied(ServiceError):
    """The caller's role or token scope does not allow this."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    idle_timeout: timedelta = timedelta(minutes=15)
    absolute_timeout: timedelta = timedelta(hours=8)
    mfa_timeout: timedelta = timedelta(minutes=5)  # to enter the second factor after the password
    reauth_window: timedelta = timedelta(minutes=5)  # a re-authentication allows MFA changes this long
    login_rate: int = 20  # sign-in attempts per minute per address and per account name (then 429)
    lockout_threshold: int = 5  # consecutive failures before the account locks
    lockout_duration: timedelta = timedelta(minutes=15)  # doubled for each further threshold reached
    # Seconds a verified API token is reused without asking the database (0: never). The process that
    # revokes a token, disables a user … empties its cache at once; other workers see it within this.
    auth_cache_ttl: float = 2.0
    token_default_days: int = 90
    token_max_days: int = 365
    scan_workers: int = 1  # scans run at once, off the request threads
    schedule_every: float = 60.0  # seconds between looks for scheduled scans that are due
    secure_cookies: bool = True
    tls: bool = False  # served over TLS (HSTS is sent)
    rp_id: str = "localhost"  # WebAuthn relying party (the host name users type)
    origin: str = "http://localhost"  # WebAuthn origin


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is asking: a signed-in user (session), a token's user, or the command line."""

    user_id: int | None
    name: str
    role: Role
    groups: frozenset[int]
    via: str  # session | token | cli
    scope: str | None = None  # a token's scope
    session_id: str | None = None
    token_id: int | None = None
    remote: str | None = None
    all_groups: bool = False  # the command line (an administrator on the host) sees every group
    extra: dict[str, object] = field(default_factory=dict)

    def can(self, permission: Permission) -> bool:
        return allowed(self.role, permission, self.scope)

    def sees(self, group_id: int | None) -> bool:
        return self.all_groups or (group_id is not None and group_id in self.groups)

    @property
    def actor(self) -> str:
        return f"{self.via}:{self.name}"


def cli_principal() -> Principal:
    import getpass

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Principal(user_id=None, name=who, role=Role.ADMIN, groups=frozenset(), via="cli", all_groups=True)


class Service:
    """One open service: store, key, audit log, clock and configuration (thread-safe to share)."""

    def __init__(
        self,
        store: Store,
        keys: ServiceKeys,
        *,
        config: ServiceConfig | None = None,
        clock: Callable[[], datetime] | None = None,
        syslog: str | None = None,
    ) -> None:
        self.store = store
        store.ensure_finding_list_indexes()  # the migrations leave them to the service
        self.engine: Engine = store.engine
        # Reads that need no transaction of their own (each statement sees committed data, as under
        # READ COMMITTED anyway): no BEGIN and ROLLBACK round trips around every request's queries.
        self.reader: Engine = store.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.keys = keys
        self.config = config or ServiceConfig()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.audit = AuditLog(
            self.engine, keys, clock=self.now, forwarder=SyslogForwarder(syslog) if syslog else None
        )
        from vmsec.service.accounts import Accounts
        from vmsec.service.operations import Operations
        from vmsec.service.queries import Queries

        self.accounts = Accounts(self)
        self.ops = Operations(self)
        self.queries = Queries(self)

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def close(self) -> None:
        self.ops.shutdown()
        self.store.close()

    @classmethod
    def open(
        cls, store_url: str | None = None, key_file: str | None = None, *, pool_size: int = 20, **kwargs: Any
    ) -> Service:
        keys = ServiceKeys.load(key_file)
        return cls(open_store(store_url, pool_size=pool_size, pre_ping=False), keys, **kwargs)


utc = as_utc  # the service's name for it


def new_id(result: Any) -> int:
    """The primary key of the row an INSERT added."""
    return int(result.inserted_primary_key[0])
