"""Authentication and authorisation attached at the router, so a new route is protected before
anyone thinks about it:

- every API route is behind :func:`api_principal` (a Bearer token) and every page behind
  :func:`page_principal` (a session cookie, plus the CSRF token on anything but GET/HEAD);
- both read the permission the matched route declares (``openapi_extra={PERMISSION: …}``, see
  :func:`needs`); a route that declares none is refused with 403, and so is a role (or a token
  scope) without that permission — each denial is audited;
- security headers (CSP, frame denial, HSTS under TLS, no-store) on every response.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread
from fastapi import HTTPException, Request

from vmsec.service.core import Principal, Service
from vmsec.service.roles import Permission

PERMISSION = "x-vmsec-permission"
SESSION_COOKIE = "__Host-vmsec-session"
LOGIN_COOKIE = "__Host-vmsec-login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def needs(permission: Permission) -> dict[str, Any]:
    """Route keyword arguments declaring the permission a route needs: ``@api.get(…, **needs(P.READ))``."""
    return {"openapi_extra": {PERMISSION: permission.value}}


def route_permission(request: Request) -> Permission | None:
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    value = extra.get(PERMISSION)
    try:
        return Permission(value) if value else None
    except ValueError:
        return None


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def remote(request: Request) -> str | None:
    return request.client.host if request.client else None


def _deny(svc: Service, request: Request, principal: Principal, permission: Permission | None) -> None:
    svc.audit.append(
        "permission.denied",
        "denied",
        principal.actor,
        f"{request.method} {request.url.path}",
        detail={
            "needs": permission.value if permission else "undeclared",
            "role": principal.role.value,
            "scope": principal.scope,
        },
        group_id=min(principal.groups) if principal.groups else None,
        remote=principal.remote,
    )


def authorize(svc: Service, request: Request, principal: Principal) -> Principal:
    permission = route_permission(request)
    read_only = principal.scope == "read" and request.method not in SAFE_METHODS
    if permission is None or read_only or not principal.can(permission):
        _deny(svc, request, principal, permission)
        raise HTTPException(403, "your role or token does not allow this")
    request.state.principal = principal
    return principal


async def api_principal(request: Request) -> Principal:
    """The API's one dependency (attached to the API application): a valid Bearer token whose user's
    role and token scope allow the route's permission. A token verified moments ago is checked without
    leaving the event loop (:meth:`~vmsec.service.accounts.Accounts.cached_principal`); the database
    and the audit log are reached from a worker thread."""
    svc = service(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "a Bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    token, where = token.strip(), remote(request)
    principal = svc.accounts.cached_principal(token, where)
    if principal is None:
        principal = await anyio.to_thread.run_sync(svc.accounts.token_principal, token, where)
    if principal is None:
        raise HTTPException(
            401,
            "the token is not valid (unknown, expired or revoked)",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    permission = route_permission(request)
    read_only = principal.scope == "read" and request.method not in SAFE_METHODS
    if permission is None or read_only or not principal.can(permission):
        await anyio.to_thread.run_sync(authorize, svc, request, principal)  # audits the denial, raises
    request.state.principal = principal
    return principal


class LoginRequired(Exception):
    """Raised by page dependencies: the handler redirects to the login page."""


class CsrfRejected(Exception):
    pass


def csrf_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


async def page_principal(request: Request) -> Principal:
    """The pages' one dependency: a full (second factor done) session within its idle and absolute
    timeouts, the CSRF token on state-changing requests, and the route's permission."""
    svc = service(request)
    info = svc.accounts.session(request.cookies.get(SESSION_COOKIE), remote(request))
    if info is None or info.stage != "full":
        raise LoginRequired()
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not csrf_equal(sent, info.csrf) or not same_origin(request):
            svc.audit.append(
                "csrf.rejected",
                "denied",
                info.principal.actor,
                f"{request.method} {request.url.path}",
                remote=info.principal.remote,
            )
            raise CsrfRejected()
    request.state.session = info
    return authorize(svc, request, info.principal)


def same_origin(request: Request) -> bool:
    """A browser's Origin (or Referer) must name this server when it sends one."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1].split("/", 1)[0] == host


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


MAX_REQUEST_BODY = 1024 * 1024  # no request of the dashboard or the API is near it


class BodyLimit:
    """Refuses a request body over :data:`MAX_REQUEST_BODY` before any handler reads it (a plain ASGI
    middleware): by its declared length with 413 at once, and — without a length, or past it — by
    counting as it arrives and answering 413 there. Sign-in forms and the API parse bodies before
    they know who asks; without this a 1 GiB body cost a worker 2 GB of memory, unauthenticated."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_REQUEST_BODY):
            await _too_large(send)
            return
        received = 0
        started = exceeded = False

        async def counted() -> MutableMapping[str, Any]:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_REQUEST_BODY:
                    exceeded = True
                    raise _TooLarge
            return message

        async def tracked(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if exceeded:  # the application answers its failed read (a 400): the answer is ours
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _too_large(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _too_large(send)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send) -> None:
    body = b"request body too large\n"
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds the security headers to every HTTP response (a plain ASGI middleware: no per-request
    task or body buffering)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, tls: bool) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", CSP.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),  # "no-referrer" would make browsers send "Origin: null"
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if tls:
            self.headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def wrapped(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in self.headers if h[0] not in names]
                if not static and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)
