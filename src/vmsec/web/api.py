"""The REST API, ``/api/v1`` (its OpenAPI document at ``/api/v1/openapi.json``).

Every route declares its permission with :func:`~vmsec.web.security.needs`; the application-level
dependency :func:`~vmsec.web.security.api_principal` authenticates the Bearer token and enforces the
permission before any handler runs. :func:`create_api` refuses to build an API with a route that
declares none.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError

from vmsec import __version__
from vmsec.findings import Finding
from vmsec.results import ScanCounts
from vmsec.service.core import Denied, NotFound, Principal, Service, ServiceError
from vmsec.service.queries import FindingFilter
from vmsec.service.roles import Permission as P
from vmsec.store.diff import Diff
from vmsec.web.security import PERMISSION, api_principal, needs

Me = Annotated[Principal, Depends(api_principal)]
Severity = Literal["critical", "high", "medium", "low", "info"]
StatusT = Literal["PASS", "FAIL", "UNKNOWN", "ERROR", "WAIVED"]
Kind = Literal["host", "domain", "guest", "network", "endpoint"]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
PathName = Annotated[str, Path(min_length=1, max_length=100)]
PathId = Annotated[int, Path(ge=1, le=2**31 - 1)]
# What the store's driver refuses (PostgreSQL's text type holds no NUL character; SQLite does, and then
# simply finds nothing) is the request's fault, not a server error: answered 400 with this.
UNSTORABLE = "the request holds a value the store cannot keep or look up (a NUL character, say)"


class ScanStart(BaseModel):
    target_id: Id


class WaiverIn(BaseModel):
    group: Name
    check: Annotated[str, Field(max_length=200)] | None = None
    vulnerability: Annotated[str, Field(max_length=200)] | None = None
    target: Annotated[str, Field(min_length=1, max_length=500)]
    subject: Annotated[str, Field(max_length=500)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=4000)]
    owner: Annotated[str, Field(min_length=1, max_length=200)]
    expires: date


class TargetIn(BaseModel):
    group: Name
    name: Annotated[str, Field(min_length=1, max_length=200)]
    spec: dict[str, Any]
    credential_id: Id | None = None
    every_hours: Annotated[int, Field(ge=1, le=8784)] | None = None  # a schedule; None: on demand


class CredentialIn(BaseModel):
    group: Name
    name: Name
    kind: Literal["ssh-key", "luks-passphrase"]
    secret: Annotated[str, Field(min_length=1, max_length=65536)]


class UserIn(BaseModel):
    name: Name
    role: Literal["viewer", "auditor", "operator", "admin"]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    groups: Annotated[list[Name], Field(max_length=50)] = ["default"]


class TokenIn(BaseModel):
    user: Name
    scope: Literal["read", "write"]
    expires_days: Annotated[int, Field(ge=1, le=365)] = 90
    name: Annotated[str, Field(max_length=100)] = "api"


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "check_id": f.check_id,
        "title": f.title,
        "status": f.status.value,
        "severity": f.severity.value,
        "target": {"kind": f.target.kind.value, "name": f.target.name, "host": f.target.host},
        "subject": f.subject,
        "message": f.message,
        "evidence": [e.as_dict() for e in f.evidence],
        "tags": list(f.tags),
        "fingerprint": f.fingerprint,
    }


def counts_dict(c: ScanCounts) -> dict[str, Any]:
    return {
        "findings": c.findings,
        "by_status": dict(c.by_status),
        "failed_by_severity": dict(c.failed_by_severity),
    }


def diff_dict(d: Diff) -> dict[str, Any]:
    from vmsec.cli.store_commands import diff_dict as cli_diff

    return cli_diff(d)


def _svc(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def create_api(service: Service) -> FastAPI:
    api = FastAPI(
        title="vmsec API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(api_principal)],
        servers=[{"url": "/api/v1"}],
        description="Every request needs `Authorization: Bearer <token>` (`vmsec token create`). "
        "Each operation names the permission it needs in `x-vmsec-permission`.",
    )
    api.state.service = service

    @api.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @api.exception_handler(Denied)
    async def denied(_request: Request, exc: Denied) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @api.exception_handler(ServiceError)
    async def bad(_request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @api.exception_handler(DataError)
    async def unstorable(_request: Request, _exc: DataError) -> JSONResponse:
        return JSONResponse({"detail": UNSTORABLE}, status_code=400)

    # --- who am I, groups ------------------------------------------------------------------------

    @api.get("/me", **needs(P.SELF))
    def me(principal: Me) -> dict[str, Any]:
        return {
            "name": principal.name,
            "role": principal.role.value,
            "scope": principal.scope,
            "groups": sorted(principal.groups),
            "permissions": sorted(p.value for p in P if principal.can(p)),
        }

    @api.get("/groups", **needs(P.READ))
    def groups(request: Request, principal: Me) -> list[dict[str, Any]]:
        return _svc(request).accounts.groups(principal)

    # --- scans -----------------------------------------------------------------------------------

    @api.get("/scans", **needs(P.READ))
    def list_scans(
        request: Request,
        principal: Me,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> dict[str, Any]:
        rows = _svc(request).queries.scans(principal, limit=limit, before=before)
        return {"scans": rows, "next": rows[-1]["id"] if len(rows) == limit else None}

    @api.post("/scans", status_code=202, **needs(P.SCAN))
    def start_scan(request: Request, principal: Me, body: ScanStart) -> dict[str, Any]:
        svc = _svc(request)
        job = svc.ops.start_scan(principal, body.target_id)
        return svc.ops.job(principal, job)

    @api.get("/scans/{scan_id}", **needs(P.READ))
    def show_scan(request: Request, principal: Me, scan_id: PathId) -> dict[str, Any]:
        return _svc(request).queries.scan(principal, scan_id)

    @api.get("/scans/{scan_id}/diff/{other_id}", **needs(P.READ))
    def scan_diff(request: Request, principal: Me, scan_id: PathId, other_id: PathId) -> dict[str, Any]:
        return diff_dict(_svc(request).queries.diff(principal, scan_id, other_id))

    @api.get("/scans/{scan_id}/report", **needs(P.EXPORT))
    def export_scan(
        request: Request,
        principal: Me,
        scan_id: PathId,
        format: Literal["json", "sarif", "csv", "markdown", "junit", "html", "cyclonedx"] = "json",
    ) -> Response:
        from vmsec.checkinfo import packaged_index
        from vmsec.report import ReportOptions, make_reporter

        svc = _svc(request)
        scan = svc.queries.load_scan(principal, scan_id)
        out = io.StringIO()
        make_reporter(format, ReportOptions()).render(scan, packaged_index(), out)
        svc.audit.append(
            "scan.export",
            "success",
            principal.actor,
            f"scan:{scan_id}",
            detail={"format": format},
            remote=principal.remote,
        )
        media = {
            "json": "application/json",
            "sarif": "application/sarif+json",
            "csv": "text/csv",
            "markdown": "text/markdown",
            "junit": "application/xml",
            "html": "text/html",
            "cyclonedx": "application/json",
        }[format]
        return Response(
            out.getvalue(),
            media_type=media + "; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="vmsec-scan-{scan_id}.{format}"'},
        )

    @api.get("/jobs", **needs(P.READ))
    def list_jobs(request: Request, principal: Me) -> list[dict[str, Any]]:
        return _svc(request).ops.list_jobs(principal)

    @api.get("/jobs/{job_id}", **needs(P.READ))
    def show_job(request: Request, principal: Me, job_id: PathId) -> dict[str, Any]:
        return _svc(request).ops.job(principal, job_id)

    # --- findings --------------------------------------------------------------------------------

    @api.get("/findings", **needs(P.READ))
    def list_findings(
        request: Request,
        principal: Me,
        severity: Annotated[list[Severity] | None, Query()] = None,
        status: Annotated[list[StatusT] | None, Query()] = None,
        check: Annotated[str | None, Query(max_length=200)] = None,
        target: Annotated[str | None, Query(max_length=300)] = None,
        kind: Kind | None = None,
        host: Annotated[str | None, Query(max_length=300)] = None,
        scan_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        q: Annotated[str | None, Query(max_length=300)] = None,
        cursor: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Response:
        flt = FindingFilter(
            severity=tuple(severity or ()),
            status=tuple(status or ()),
            check=check,
            target=target,
            kind=kind,
            host=host,
            scan_id=scan_id,
            since=since,
            until=until,
            q=q,
        )
        rows, nxt = _svc(request).queries.findings(principal, flt, cursor=cursor, limit=limit)
        # the hot path: serialised straight by orjson (FastAPI's generic encoder walks every value)
        return Response(orjson.dumps({"findings": rows, "next_cursor": nxt}), media_type="application/json")

    @api.get("/findings/{finding_id}", **needs(P.READ))
    def show_finding(request: Request, principal: Me, finding_id: PathId) -> dict[str, Any]:
        return _svc(request).queries.finding(principal, finding_id)

    # --- hosts and VMs ---------------------------------------------------------------------------

    @api.get("/hosts", **needs(P.READ))
    def list_hosts(
        request: Request, principal: Me, limit: Annotated[int, Query(ge=1, le=5000)] = 500
    ) -> list[dict[str, Any]]:
        return _svc(request).queries.hosts(principal, limit=limit)

    @api.get("/hosts/{host_id}", **needs(P.READ))
    def show_host(request: Request, principal: Me, host_id: PathId) -> dict[str, Any]:
        h = _svc(request).queries.host(principal, host_id)
        return {
            **h,
            "isolation": [finding_dict(f) for f in h["isolation"]],
            "management": [finding_dict(f) for f in h["management"]],
            "counts": counts_dict(h["counts"]),
        }

    @api.get("/vms", **needs(P.READ))
    def list_vms(
        request: Request,
        principal: Me,
        host: Annotated[str | None, Query(max_length=300)] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> list[dict[str, Any]]:
        return _svc(request).queries.vms(principal, limit=limit, host=host)

    @api.get("/vms/{vm_id}", **needs(P.READ))
    def show_vm(request: Request, principal: Me, vm_id: PathId) -> dict[str, Any]:
        v = _svc(request).queries.vm(principal, vm_id)
        view = v["exposure"]
        return {
            **v,
            "counts": counts_dict(v["counts"]),
            "exposure": None
            if view is None
            else {
                "worst": view.worst.value if view.worst else None,
                "headline": view.headline(),
                "items": [
                    {
                        "severity": i.severity.value,
                        "source": i.source.value,
                        "text": i.sentence,
                        "checks": list(i.check_ids),
                    }
                    for i in view.items
                ],
                "more": view.more,
                "unknown": view.unknown,
            },
            "sections": {k: [finding_dict(f) for f in fs] for k, fs in v["sections"].items()},
        }

    # --- waivers ---------------------------------------------------------------------------------

    @api.get("/waivers", **needs(P.READ))
    def list_waivers(
        request: Request, principal: Me, status: Literal["proposed", "approved", "rejected"] | None = None
    ) -> list[dict[str, Any]]:
        return _svc(request).ops.list_waivers(principal, status)

    @api.post("/waivers", status_code=201, **needs(P.WAIVER_PROPOSE))
    def propose_waiver(request: Request, principal: Me, body: WaiverIn) -> dict[str, Any]:
        wid = _svc(request).ops.propose_waiver(
            principal,
            group=body.group,
            check=body.check,
            vulnerability=body.vulnerability,
            target=body.target,
            subject=body.subject,
            reason=body.reason,
            owner=body.owner,
            expires=body.expires,
        )
        return {"id": wid, "status": "proposed"}

    @api.post("/waivers/{waiver_id}/approve", **needs(P.WAIVER_APPROVE))
    def approve_waiver(request: Request, principal: Me, waiver_id: PathId) -> dict[str, Any]:
        _svc(request).ops.decide_waiver(principal, waiver_id, True)
        return {"id": waiver_id, "status": "approved"}

    @api.post("/waivers/{waiver_id}/reject", **needs(P.WAIVER_APPROVE))
    def reject_waiver(request: Request, principal: Me, waiver_id: PathId) -> dict[str, Any]:
        _svc(request).ops.decide_waiver(principal, waiver_id, False)
        return {"id": waiver_id, "status": "rejected"}

    # --- scan targets and credentials ------------------------------------------------------------

    @api.get("/targets", **needs(P.READ))
    def list_targets(request: Request, principal: Me) -> list[dict[str, Any]]:
        return _svc(request).ops.list_targets(principal)

    @api.post("/targets", status_code=201, **needs(P.ADMIN))
    def add_target(request: Request, principal: Me, body: TargetIn) -> dict[str, Any]:
        tid = _svc(request).ops.add_target(
            principal, group=body.group, name=body.name, spec=body.spec, credential_id=body.credential_id
        )
        return {"id": tid}

    @api.delete("/targets/{target_id}", status_code=204, **needs(P.ADMIN))
    def delete_target(request: Request, principal: Me, target_id: PathId) -> Response:
        _svc(request).ops.delete_target(principal, target_id)
        return Response(status_code=204)

    @api.get("/credentials", **needs(P.ADMIN))
    def list_credentials(request: Request, principal: Me) -> list[dict[str, Any]]:
        return _svc(request).ops.list_credentials(principal)

    @api.post("/credentials", status_code=201, **needs(P.ADMIN))
    def add_credential(request: Request, principal: Me, body: CredentialIn) -> dict[str, Any]:
        cid = _svc(request).ops.add_credential(
            principal, group=body.group, name=body.name, kind=body.kind, secret=body.secret.encode()
        )
        return {"id": cid}

    @api.delete("/credentials/{credential_id}", status_code=204, **needs(P.ADMIN))
    def delete_credential(request: Request, principal: Me, credential_id: PathId) -> Response:
        _svc(request).ops.delete_credential(principal, credential_id)
        return Response(status_code=204)

    # --- users and tokens ------------------------------------------------------------------------

    @api.get("/users", **needs(P.ADMIN))
    def list_users(request: Request, principal: Me) -> list[dict[str, Any]]:
        return [u.as_dict() for u in _svc(request).accounts.list_users(principal)]

    @api.post("/users", status_code=201, **needs(P.ADMIN))
    def add_user(request: Request, principal: Me, body: UserIn) -> dict[str, Any]:
        e = _svc(request).accounts.add_user(body.name, body.role, body.password, list(body.groups), principal)
        return {"id": e.user_id, "otpauth_uri": e.otpauth_uri, "recovery_codes": list(e.recovery_codes)}

    @api.post("/users/{name}/disable", **needs(P.ADMIN))
    def disable_user(request: Request, principal: Me, name: PathName) -> dict[str, Any]:
        _svc(request).accounts.disable_user(name, principal)
        return {"name": name, "disabled": True}

    @api.post("/users/{name}/reset-mfa", **needs(P.ADMIN))
    def reset_mfa(request: Request, principal: Me, name: PathName) -> dict[str, Any]:
        e = _svc(request).accounts.reset_mfa(name, principal)
        return {"name": name, "otpauth_uri": e.otpauth_uri, "recovery_codes": list(e.recovery_codes)}

    @api.post("/users/{name}/revoke-sessions", **needs(P.ADMIN))
    def revoke_sessions(request: Request, principal: Me, name: PathName) -> dict[str, Any]:
        return {"name": name, "revoked": _svc(request).accounts.revoke_sessions(name, principal)}

    @api.get("/tokens", **needs(P.ADMIN))
    def list_tokens(request: Request, principal: Me) -> list[dict[str, Any]]:
        return [t.as_dict() for t in _svc(request).accounts.list_tokens(principal)]

    @api.post("/tokens", status_code=201, **needs(P.ADMIN))
    def create_token(request: Request, principal: Me, body: TokenIn) -> dict[str, Any]:
        token, info = _svc(request).accounts.create_token(
            body.user, body.scope, body.expires_days, body.name, principal
        )
        return {**info.as_dict(), "token": token}

    @api.delete("/tokens/{token_id}", status_code=204, **needs(P.ADMIN))
    def revoke_token(request: Request, principal: Me, token_id: PathId) -> Response:
        _svc(request).accounts.revoke_token(token_id, principal)
        return Response(status_code=204)

    # --- audit log -------------------------------------------------------------------------------

    @api.get("/audit", **needs(P.AUDIT))
    def audit_log(
        request: Request,
        principal: Me,
        cursor: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        action: Annotated[str | None, Query(max_length=50)] = None,
    ) -> dict[str, Any]:
        rows, nxt = _svc(request).queries.audit(principal, cursor=cursor, limit=limit, action=action)
        return {"entries": rows, "next_cursor": nxt}

    for route in api.routes:
        if isinstance(route, APIRoute) and PERMISSION not in (route.openapi_extra or {}):
            raise RuntimeError(f"API route {route.path} declares no permission (deny by default)")
    return api


__all__ = ["HTTPException", "create_api"]
