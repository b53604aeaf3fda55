"""The finding list (``GET /api/v1/findings``) served without the framework's per-request machinery.

It is the API's busiest route (P5: 50 clients paging through a million findings). Through FastAPI one
request cost ≈ 4 ms of CPU, of which the route's own work (a cached token check, two or three small
queries, 50 rows to JSON) is about a quarter: the rest is two middleware stacks (the application and
the mounted API), dependency solving, query-parameter validation by pydantic and two hops to worker
threads. :class:`FindingListFastPath` is a plain ASGI middleware in front of all that: it answers the
requests it fully understands and passes every other one, untouched, to the application.

It answers only when everything about the request is ordinary — ``GET`` of exactly that path, a
Bearer token that is valid (:meth:`~vmsec.service.accounts.Accounts.token_principal`) and whose role
and scope allow reading, query parameters that are all known, each given once (the lists: any number
of times), non-empty and within the bounds the route declares (a strict subset of what FastAPI
accepts). Anything else — a missing or bad token, a denial, a malformed or unusual parameter — goes to
the FastAPI route, which validates it, audits it and answers (401, 403, 422 …) as documented in the
OpenAPI document; the answers of the two paths to the same valid request are the same bytes
(tests/web/test_fastpath.py). The route in vmsec.web.api stays the reference: its parameters, their
bounds and its OpenAPI entry.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

import anyio.to_thread
import orjson

from vmsec.findings import TargetKind
from vmsec.service.core import Principal, Service, ServiceError
from vmsec.service.queries import SEVERITIES, STATUSES, FindingFilter
from vmsec.service.roles import Permission

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/api/v1/findings"
_INT = re.compile(r"[1-9][0-9]{0,9}")
# An ISO 8601 time both datetime.fromisoformat and pydantic read the same way; others go to FastAPI.
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")
_KINDS = frozenset(k.value for k in TargetKind)
_SEVERITIES, _STATUSES = frozenset(SEVERITIES), frozenset(STATUSES)
_TEXT = {"check": 200, "target": 300, "host": 300, "q": 300}  # the route's max_length per parameter
_HEADERS = [(b"content-type", b"application/json")]


class _Unusual(Exception):
    """The request is not one the fast path answers: the application does."""


def parse_query(query: bytes) -> tuple[FindingFilter, int | None, int]:
    """The filter, cursor and limit of a finding list query string, or :class:`_Unusual`."""
    severity: list[str] = []
    status: list[str] = []
    single: dict[str, str] = {}
    try:
        pairs = urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    except ValueError as exc:
        raise _Unusual() from exc
    for name, value in pairs:
        if not value:
            raise _Unusual()
        if name == "severity":
            if value not in _SEVERITIES:
                raise _Unusual()
            severity.append(value)
        elif name == "status":
            if value not in _STATUSES:
                raise _Unusual()
            status.append(value)
        elif name in single:
            raise _Unusual()  # a scalar given twice
        else:
            single[name] = value
    for name, value in single.items():
        if name in _TEXT:
            if len(value) > _TEXT[name] or "\x00" in value:
                raise _Unusual()  # the application answers: too long, or what the store cannot look up
        elif name in ("scan_id", "cursor", "limit"):
            if not _INT.fullmatch(value) or int(value) > 2**31 - 1:
                raise _Unusual()
        elif name in ("since", "until"):
            if not _TIME.fullmatch(value):
                raise _Unusual()
        elif name == "kind":
            if value not in _KINDS:
                raise _Unusual()
        else:
            raise _Unusual()  # FastAPI ignores unknown parameters; we let it
    limit = int(single.get("limit", "50"))
    if limit > 500:
        raise _Unusual()
    return (
        FindingFilter(
            severity=tuple(severity),
            status=tuple(status),
            check=single.get("check"),
            target=single.get("target"),
            kind=single.get("kind"),
            host=single.get("host"),
            scan_id=int(single["scan_id"]) if "scan_id" in single else None,
            since=_time(single.get("since")),
            until=_time(single.get("until")),
            q=single.get("q"),
        ),
        int(single["cursor"]) if "cursor" in single else None,
        limit,
    )


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:  # 2026-02-30 …
        raise _Unusual() from exc


class FindingListFastPath:
    """See the module docstring. ``enabled`` is for the tests that compare the two paths."""

    def __init__(self, app: App, *, service: Service, enabled: bool = True) -> None:
        self.app, self.svc, self.enabled = app, service, enabled

    def _bearer(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                token = token.strip()
                return token if scheme.lower() == "bearer" and token else None
        return None

    def _answer(self, token: str, remote: str | None, query: bytes) -> bytes | None:
        """The response body, or None: the application answers instead. Runs on a worker thread."""
        try:
            flt, cursor, limit = parse_query(query)
        except _Unusual:
            return None
        principal = self.svc.accounts.token_principal(token, remote, audit=False)
        if principal is None or not principal.can(Permission.READ):
            return None
        return self._page(principal, flt, cursor, limit)

    def _page(self, principal: Principal, flt: FindingFilter, cursor: int | None, limit: int) -> bytes | None:
        try:
            rows, nxt = self.svc.queries.findings(principal, flt, cursor=cursor, limit=limit)
        except ServiceError:
            return None
        return orjson.dumps({"findings": rows, "next_cursor": nxt})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.enabled
            or scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "GET"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        token = self._bearer(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        remote = client[0] if client else None
        query: bytes = scope.get("query_string", b"")
        principal = self.svc.accounts.cached_principal(token, remote)
        if principal is not None:
            # the token is known good: only the page itself goes to a worker thread
            if not principal.can(Permission.READ):
                body = None
            else:
                try:
                    flt, cursor, limit = parse_query(query)
                except _Unusual:
                    body = None
                else:
                    body = await anyio.to_thread.run_sync(self._page, principal, flt, cursor, limit)
        else:
            body = await anyio.to_thread.run_sync(self._answer, token, remote, query)
        if body is None:
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), *_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})
