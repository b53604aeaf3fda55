"""The dashboard: server-rendered pages (Jinja2, autoescaped; no front-end build, no inline script).

Two routers: ``public`` (sign-in, static files) and ``pages`` — every route of ``pages`` sits behind
:func:`~vmsec.web.security.page_principal` (session, CSRF, permission) and declares its permission;
:func:`create_pages` refuses a page route that declares none.
"""

from __future__ import annotations

import urllib.parse
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from vmsec import __version__
from vmsec.service.accounts import SessionInfo
from vmsec.service.core import Principal, Service, ServiceError
from vmsec.service.queries import SEVERITIES, STATUSES, FindingFilter
from vmsec.service.roles import Permission as P
from vmsec.service.shared import LoginThrottle
from vmsec.web.security import (
    LOGIN_COOKIE,
    PERMISSION,
    SESSION_COOKIE,
    csrf_equal,
    needs,
    page_principal,
    remote,
    same_origin,
    service,
)

Me = Annotated[Principal, Depends(page_principal)]
SEV_COLOR = {
    "critical": "#8b0000",
    "high": "#d9480f",
    "medium": "#e0a100",
    "low": "#1c7ed6",
    "info": "#868e96",
}


def _env() -> Environment:
    # The dashboard's templates, and the HTML report's (vmsec/report/templates) for the pieces both
    # show: severity and status badges, severity counts.
    env = Environment(
        loader=ChoiceLoader(
            [PackageLoader("vmsec.web", "templates"), PackageLoader("vmsec.report", "templates")]
        ),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(version=__version__, severities=SEVERITIES, statuses=STATUSES, P=P)
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if isinstance(d, datetime) else (d or "—")
    env.filters["plain"] = _plain
    env.filters["num"] = lambda n: f"{n:,}"  # as the report's templates use it
    return env


def _plain(value: object, limit: int = 400) -> str:
    """Text that came from scanned machines: control characters shown, long values cut."""
    text = "" if value is None else str(value)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


templates = Jinja2Templates(env=_env())


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    info: SessionInfo | None = getattr(request.state, "session", None)
    principal = info.principal if info else None
    return templates.TemplateResponse(
        request,
        name,
        {
            "me": principal,
            "csrf": info.csrf if info else "",
            "can": (lambda p: principal is not None and principal.can(p)),
            **context,
        },
        status_code=status_code,
    )


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _session_cookie(response: Response, svc: Service, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, secure=svc.config.secure_cookies, samesite="strict", path="/"
    )


def _safe_next(value: str | None) -> str:
    """Only a local path: never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def create_pages(svc: Service) -> tuple[APIRouter, APIRouter]:
    public = APIRouter(include_in_schema=False)
    pages = APIRouter(include_in_schema=False, dependencies=[Depends(page_principal)])
    throttle = LoginThrottle(svc)  # in the database: every worker process counts the same attempts

    # --- signing in (public) ----------------------------------------------------------------------

    def login_form(request: Request, message: str = "", status_code: int = 200) -> HTMLResponse:
        import secrets

        token = secrets.token_urlsafe(32)
        response = render(
            request,
            "login.html",
            status_code,
            login_csrf=token,
            message=message,
            next=_safe_next(request.query_params.get("next")),
        )
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            httponly=True,
            secure=svc.config.secure_cookies,
            samesite="strict",
            path="/",
            max_age=900,
        )
        return response

    @public.get("/login")
    def login_page(request: Request) -> HTMLResponse:
        return login_form(request)

    @public.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=200)],
        password: Annotated[str, Form(max_length=1024)],
        csrf: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=500)] = "/",
    ) -> Response:
        where = remote(request)
        if not csrf_equal(csrf, request.cookies.get(LOGIN_COOKIE)) or not same_origin(request):
            svc.audit.append(
                "csrf.rejected", "denied", f"anonymous:{username[:100]}", "POST /login", remote=where
            )
            return login_form(request, "The form expired or did not come from this site: try again.", 403)
        if not throttle.allow(f"ip:{where}") or not throttle.allow(f"user:{username.lower()[:100]}"):
            svc.audit.append(
                "login.throttled",
                "denied",
                f"anonymous:{username[:100]}",
                f"user:{username[:100]}",
                remote=where,
            )
            return login_form(request, "Too many attempts: wait a minute.", 429)
        result = svc.accounts.login_password(username, password, where, request.headers.get("user-agent"))
        if not result.ok or result.token is None:
            return login_form(request, result.message, 401)
        target = (
            "/login/mfa?next=" + urllib.parse.quote(_safe_next(next))
            if result.stage == "mfa"
            else _safe_next(next)
        )
        response = see_other(target)
        _session_cookie(response, svc, result.token)
        response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    @public.get("/login/mfa")
    def mfa_page(request: Request) -> Response:
        info = svc.accounts.session(request.cookies.get(SESSION_COOKIE), remote(request))
        if info is None or info.stage != "mfa":
            return see_other("/login")
        has_keys = bool(svc.accounts.webauthn_credentials(info.user_id))
        return render(
            request,
            "mfa.html",
            pending_csrf=info.csrf,
            webauthn=has_keys,
            next=_safe_next(request.query_params.get("next")),
        )

    @public.post("/login/mfa")
    def mfa(
        request: Request,
        code: Annotated[str, Form(max_length=40)],
        csrf: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=500)] = "/",
    ) -> Response:
        token = request.cookies.get(SESSION_COOKIE) or ""
        info = svc.accounts.session(token, remote(request))
        if info is None or info.stage != "mfa":
            return see_other("/login")
        if not csrf_equal(csrf, info.csrf) or not same_origin(request):
            svc.audit.append(
                "csrf.rejected", "denied", info.principal.actor, "POST /login/mfa", remote=remote(request)
            )
            return render(
                request,
                "mfa.html",
                403,
                pending_csrf=info.csrf,
                webauthn=False,
                next=_safe_next(next),
                message="The form expired or did not come from this site: try again.",
            )
        if not throttle.allow(f"ip:{remote(request)}"):
            return render(
                request,
                "mfa.html",
                429,
                pending_csrf=info.csrf,
                webauthn=False,
                next=_safe_next(next),
                message="Too many attempts: wait a minute.",
            )
        result = svc.accounts.second_factor(token, code, remote(request), request.headers.get("user-agent"))
        if not result.ok or result.token is None:
            fresh = svc.accounts.session(token, remote(request))
            if fresh is None:
                return see_other("/login")
            return render(
                request,
                "mfa.html",
                401,
                pending_csrf=fresh.csrf,
                webauthn=False,
                next=_safe_next(next),
                message=result.message,
            )
        response = see_other(_safe_next(next))
        _session_cookie(response, svc, result.token)
        return response

    @public.get("/static/report.css")
    def report_css() -> Response:
        """The HTML report's stylesheet (its badges and counts), served beside the dashboard's own."""
        from vmsec.report.html import page_assets

        return Response(
            str(page_assets()[0]), media_type="text/css", headers={"cache-control": "public, max-age=3600"}
        )

    @public.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from vmsec.web.webauthn import add_webauthn_routes

    add_webauthn_routes(svc, public, pages, render)

    # --- the dashboard --------------------------------------------------------------------------

    @pages.post("/logout", **needs(P.SELF))
    def logout(request: Request, principal: Me) -> Response:
        svc.accounts.logout(request.cookies.get(SESSION_COOKIE) or "", principal.remote)
        response = see_other("/login")
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    @pages.get("/", **needs(P.READ))
    def overview(request: Request, principal: Me) -> HTMLResponse:
        fleet = svc.queries.fleet(principal, limit=50)
        scans = svc.queries.scans(principal, limit=10)
        return render(request, "overview.html", fleet=fleet, scans=scans, colors=SEV_COLOR)

    @pages.get("/hosts/{host_id}", **needs(P.READ))
    def host_page(request: Request, principal: Me, host_id: int) -> HTMLResponse:
        return render(request, "host.html", host=svc.queries.host(principal, host_id), colors=SEV_COLOR)

    @pages.get("/vms/{vm_id}", **needs(P.READ))
    def vm_page(request: Request, principal: Me, vm_id: int) -> HTMLResponse:
        return render(request, "vm.html", vm=svc.queries.vm(principal, vm_id), colors=SEV_COLOR)

    @pages.get("/findings", **needs(P.READ))
    def findings_page(
        request: Request,
        principal: Me,
        severity: Annotated[str, Query(max_length=20)] = "",
        status: Annotated[str, Query(max_length=20)] = "",
        check: Annotated[str, Query(max_length=200)] = "",
        target: Annotated[str, Query(max_length=300)] = "",
        host: Annotated[str, Query(max_length=300)] = "",
        q: Annotated[str, Query(max_length=300)] = "",
        scan_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        since: Annotated[str, Query(max_length=30)] = "",
        cursor: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> HTMLResponse:
        try:
            since_dt = datetime.fromisoformat(since) if since else None
        except ValueError as exc:
            raise ServiceError(f"not a date: {since!r}") from exc
        flt = FindingFilter(
            severity=(severity,) if severity else (),
            status=(status,) if status else (),
            check=check or None,
            target=target or None,
            host=host or None,
            q=q or None,
            scan_id=scan_id,
            since=since_dt,
        )
        rows, nxt = svc.queries.findings(principal, flt, cursor=cursor, limit=50)
        params = {
            k: v
            for k, v in {
                "severity": severity,
                "status": status,
                "check": check,
                "target": target,
                "host": host,
                "q": q,
                "scan_id": scan_id or "",
                "since": since,
            }.items()
            if v
        }
        next_url = "/findings?" + urllib.parse.urlencode({**params, "cursor": nxt}) if nxt else None
        return render(
            request, "findings.html", rows=rows, filters=params, next_url=next_url, colors=SEV_COLOR
        )

    @pages.get("/findings/{finding_id}", **needs(P.READ))
    def finding_page(request: Request, principal: Me, finding_id: int) -> HTMLResponse:
        return render(request, "finding.html", f=svc.queries.finding(principal, finding_id), colors=SEV_COLOR)

    @pages.get("/scans", **needs(P.READ))
    def scans_page(
        request: Request, principal: Me, before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
    ) -> HTMLResponse:
        scans = svc.queries.scans(principal, limit=50, before=before)
        return render(
            request,
            "scans.html",
            scans=scans,
            jobs=svc.ops.list_jobs(principal, 20),
            targets=svc.ops.list_targets(principal),
            next_url=f"/scans?before={scans[-1]['id']}" if len(scans) == 50 else None,
        )

    @pages.post("/scans", **needs(P.SCAN))
    def start_scan(
        request: Request, principal: Me, target_id: Annotated[int, Form(ge=1, le=2**31 - 1)]
    ) -> Response:
        svc.ops.start_scan(principal, target_id)
        return see_other("/scans")

    @pages.get("/scans/{scan_id}", **needs(P.READ))
    def scan_page(request: Request, principal: Me, scan_id: int) -> HTMLResponse:
        return render(request, "scan.html", scan=svc.queries.scan(principal, scan_id))

    @pages.get("/scans/{scan_id}/diff/{other_id}", **needs(P.READ))
    def diff_page(request: Request, principal: Me, scan_id: int, other_id: int) -> HTMLResponse:
        return render(request, "diff.html", diff=svc.queries.diff(principal, scan_id, other_id))

    @pages.get("/waivers", **needs(P.READ))
    def waivers_page(request: Request, principal: Me) -> HTMLResponse:
        return render(
            request,
            "waivers.html",
            waivers=svc.ops.list_waivers(principal),
            groups=svc.accounts.groups(principal),
            today=svc.now().date().isoformat(),
        )

    @pages.post("/waivers", **needs(P.WAIVER_PROPOSE))
    def propose(
        request: Request,
        principal: Me,
        group: Annotated[str, Form(max_length=100)],
        check: Annotated[str, Form(max_length=200)],
        target: Annotated[str, Form(max_length=500)],
        reason: Annotated[str, Form(max_length=4000)],
        owner: Annotated[str, Form(max_length=200)],
        expires: Annotated[date, Form()],
        subject: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        is_vuln = not check.upper().startswith("VMS-")
        svc.ops.propose_waiver(
            principal,
            group=group,
            check=None if is_vuln else check,
            vulnerability=check if is_vuln else None,
            target=target,
            subject=subject or None,
            reason=reason,
            owner=owner,
            expires=expires,
        )
        return see_other("/waivers")

    @pages.post("/waivers/{waiver_id}/approve", **needs(P.WAIVER_APPROVE))
    def approve(request: Request, principal: Me, waiver_id: int) -> Response:
        svc.ops.decide_waiver(principal, waiver_id, True)
        return see_other("/waivers")

    @pages.post("/waivers/{waiver_id}/reject", **needs(P.WAIVER_APPROVE))
    def reject(request: Request, principal: Me, waiver_id: int) -> Response:
        svc.ops.decide_waiver(principal, waiver_id, False)
        return see_other("/waivers")

    @pages.get("/users", **needs(P.ADMIN))
    def users_page(request: Request, principal: Me) -> HTMLResponse:
        return render(
            request,
            "users.html",
            users=svc.accounts.list_users(principal),
            sessions=svc.accounts.list_sessions(principal),
            groups=svc.accounts.groups(principal),
        )

    @pages.post("/users", **needs(P.ADMIN))
    def add_user(
        request: Request,
        principal: Me,
        name: Annotated[str, Form(max_length=100)],
        role: Annotated[str, Form(max_length=20)],
        password: Annotated[str, Form(max_length=1024)],
        group: Annotated[str, Form(max_length=100)] = "default",
    ) -> HTMLResponse:
        e = svc.accounts.add_user(name, role, password, [group], principal)
        return render(
            request,
            "secret.html",
            title=f"User {name} created",
            uri=e.otpauth_uri,
            codes=e.recovery_codes,
            back="/users",
        )

    @pages.post("/users/{name}/disable", **needs(P.ADMIN))
    def disable(request: Request, principal: Me, name: str) -> Response:
        svc.accounts.disable_user(name, principal)
        return see_other("/users")

    @pages.post("/users/{name}/reset-mfa", **needs(P.ADMIN))
    def reset_mfa(request: Request, principal: Me, name: str) -> HTMLResponse:
        e = svc.accounts.reset_mfa(name, principal)
        return render(
            request,
            "secret.html",
            title=f"MFA of {name} reset",
            uri=e.otpauth_uri,
            codes=e.recovery_codes,
            back="/users",
        )

    @pages.post("/users/{name}/revoke-sessions", **needs(P.ADMIN))
    def revoke_sessions(request: Request, principal: Me, name: str) -> Response:
        svc.accounts.revoke_sessions(name, principal)
        return see_other("/users")

    @pages.get("/tokens", **needs(P.ADMIN))
    def tokens_page(request: Request, principal: Me) -> HTMLResponse:
        return render(
            request,
            "tokens.html",
            tokens=svc.accounts.list_tokens(principal),
            users=svc.accounts.list_users(principal),
        )

    @pages.post("/tokens", **needs(P.ADMIN))
    def create_token(
        request: Request,
        principal: Me,
        user: Annotated[str, Form(max_length=100)],
        scope: Annotated[str, Form(max_length=10)],
        days: Annotated[int, Form(ge=1, le=365)] = 90,
        name: Annotated[str, Form(max_length=100)] = "token",
    ) -> HTMLResponse:
        token, _info = svc.accounts.create_token(user, scope, days, name, principal)
        return render(request, "secret.html", title=f"Token for {user}", token=token, back="/tokens")

    @pages.post("/tokens/{token_id}/revoke", **needs(P.ADMIN))
    def revoke_token(request: Request, principal: Me, token_id: int) -> Response:
        svc.accounts.revoke_token(token_id, principal)
        return see_other("/tokens")

    @pages.get("/audit", **needs(P.AUDIT))
    def audit_page(
        request: Request,
        principal: Me,
        cursor: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        action: Annotated[str, Query(max_length=50)] = "",
    ) -> HTMLResponse:
        rows, nxt = svc.queries.audit(principal, cursor=cursor, limit=100, action=action or None)
        next_url = (
            "/audit?" + urllib.parse.urlencode({"cursor": nxt, **({"action": action} if action else {})})
            if nxt
            else None
        )
        return render(request, "audit.html", rows=rows, next_url=next_url, action=action)

    # --- one's own account ----------------------------------------------------------------------

    def recent_reauth(request: Request) -> bool:
        info: SessionInfo = request.state.session
        return info.reauth_at is not None and svc.now() - info.reauth_at <= svc.config.reauth_window

    def account(request: Request, message: str = "", status_code: int = 200, **extra: Any) -> HTMLResponse:
        info: SessionInfo = request.state.session
        me = next((u for u in svc.accounts.list_users(info.principal) if u.id == info.user_id), None)
        return render(
            request,
            "account.html",
            status_code,
            sessions=svc.accounts.own_sessions(info.user_id, request.cookies.get(SESSION_COOKIE) or ""),
            user=me,
            reauth=recent_reauth(request),
            keys=svc.accounts.webauthn_credentials(info.user_id),
            message=message,
            **extra,
        )

    @pages.get("/account", **needs(P.SELF))
    def account_page(request: Request, principal: Me) -> HTMLResponse:
        return account(request)

    @pages.post("/account/reauth", **needs(P.SELF))
    def reauth(
        request: Request,
        principal: Me,
        password: Annotated[str, Form(max_length=1024)],
        code: Annotated[str, Form(max_length=40)] = "",
    ) -> Response:
        info: SessionInfo = request.state.session
        token = svc.accounts.reauthenticate(info, request.cookies.get(SESSION_COOKIE) or "", password, code)
        if token is None:
            return account(request, "Re-authentication failed.", 401)
        response = see_other("/account")
        _session_cookie(response, svc, token)  # a new session id at every authentication
        return response

    def need_reauth(request: Request) -> HTMLResponse | None:
        if recent_reauth(request):
            return None
        return account(
            request,
            "Confirm your password (and code) first: this change needs a recent re-authentication.",
            403,
        )

    @pages.post("/account/password", **needs(P.SELF))
    def change_password(
        request: Request,
        principal: Me,
        current_password: Annotated[str, Form(max_length=1024)],
        new_password: Annotated[str, Form(max_length=1024)],
    ) -> Response:
        svc.accounts.change_password(request.state.session.user_id, current_password, new_password, principal)
        return account(request, "Password changed.")

    @pages.post("/account/totp", **needs(P.SELF))
    def enrol_totp(request: Request, principal: Me) -> Response:
        refused = need_reauth(request)
        if refused is not None:
            return refused
        e = svc.accounts.enrol_totp(request.state.session.user_id, principal)
        return render(
            request,
            "secret.html",
            title="New authenticator",
            uri=e.otpauth_uri,
            codes=e.recovery_codes,
            back="/account",
        )

    @pages.post("/account/sessions/revoke", **needs(P.SELF))
    def revoke_own_sessions(request: Request, principal: Me) -> Response:
        refused = need_reauth(request)
        if refused is not None:
            return refused
        n = svc.accounts.revoke_other_sessions(
            request.state.session.user_id, request.cookies.get(SESSION_COOKIE) or "", principal
        )
        return account(request, f"Signed out {n} other session(s).")

    @pages.post("/account/recovery-codes", **needs(P.SELF))
    def recovery_codes(request: Request, principal: Me) -> Response:
        refused = need_reauth(request)
        if refused is not None:
            return refused
        codes = svc.accounts.new_recovery_codes(request.state.session.user_id, principal)
        return render(request, "secret.html", title="New recovery codes", codes=codes, back="/account")

    for router in (pages,):
        for route in router.routes:
            if isinstance(route, APIRoute) and PERMISSION not in (route.openapi_extra or {}):
                raise RuntimeError(f"page {route.path} declares no permission (deny by default)")
    _ = service  # re-exported for the WebAuthn routes
    return public, pages
