"""WebAuthn as a second factor (py_webauthn): registering a security key or platform authenticator
from the account page (after a re-authentication), and using it instead of a TOTP code at sign-in.

Challenges are kept in the database for five minutes (:class:`vmsec.service.shared.Challenges`), keyed
by the session that asked for them, so the browser's answer may reach any worker process. The browser
side is ``static/webauthn.js``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vmsec.service.accounts import SessionInfo, token_hash
from vmsec.service.core import Service
from vmsec.service.deps import need
from vmsec.service.roles import Permission as P
from vmsec.service.shared import Challenges
from vmsec.web.security import CSRF_HEADER, SESSION_COOKIE, csrf_equal, needs, remote, same_origin

MAX_BODY = 64 * 1024


async def _json(request: Request) -> dict[str, Any] | None:
    body = await request.body()
    if len(body) > MAX_BODY:
        return None
    import orjson

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def add_webauthn_routes(
    svc: Service, public: APIRouter, pages: APIRouter, render: Callable[..., Response]
) -> None:
    challenges = Challenges(svc)  # in the database: the answer may reach another worker process
    cfg = svc.config

    @pages.post("/account/webauthn/options", **needs(P.SELF))
    def register_options(request: Request) -> Response:
        wa = need("webauthn")
        structs = need("webauthn.helpers.structs")
        info: SessionInfo = request.state.session
        if info.reauth_at is None or svc.now() - info.reauth_at > cfg.reauth_window:
            return JSONResponse({"detail": "re-authenticate first"}, status_code=403)
        existing = svc.accounts.webauthn_credentials(info.user_id)
        options = wa.generate_registration_options(
            rp_id=cfg.rp_id,
            rp_name="vmsec",
            user_name=info.principal.name,
            user_id=str(info.user_id).encode(),
            exclude_credentials=[
                structs.PublicKeyCredentialDescriptor(
                    id=need("webauthn.helpers").base64url_to_bytes(c.credential_id)
                )
                for c in existing
            ],
            authenticator_selection=structs.AuthenticatorSelectionCriteria(
                user_verification=structs.UserVerificationRequirement.PREFERRED
            ),
        )
        challenges.put("reg:" + (info.principal.session_id or ""), options.challenge)
        return Response(wa.options_to_json(options), media_type="application/json")

    @pages.post("/account/webauthn", **needs(P.SELF))
    async def register(request: Request) -> Response:
        wa = need("webauthn")
        helpers = need("webauthn.helpers")
        info: SessionInfo = request.state.session
        data = await _json(request)
        challenge = challenges.take("reg:" + (info.principal.session_id or ""))
        if data is None or challenge is None:
            return JSONResponse({"detail": "no registration in progress"}, status_code=400)
        try:
            verified = wa.verify_registration_response(
                credential=data.get("credential"),
                expected_challenge=challenge,
                expected_rp_id=cfg.rp_id,
                expected_origin=cfg.origin,
            )
        except Exception as exc:  # py_webauthn raises several types for a bad attestation
            svc.audit.append(
                "mfa.enrol",
                "failure",
                info.principal.actor,
                f"user:{info.principal.name}",
                detail={"factor": "webauthn", "reason": str(exc)[:200]},
                remote=info.principal.remote,
            )
            return JSONResponse({"detail": "the authenticator's response was not accepted"}, status_code=400)
        svc.accounts.add_webauthn(
            info.user_id,
            helpers.bytes_to_base64url(verified.credential_id),
            helpers.bytes_to_base64url(verified.credential_public_key),
            verified.sign_count,
            str(data.get("name") or "security key"),
            info.principal,
        )
        return JSONResponse({"ok": True})

    def pending(request: Request) -> SessionInfo | None:
        info = svc.accounts.session(request.cookies.get(SESSION_COOKIE), remote(request))
        if info is None or info.stage != "mfa":
            return None
        if not csrf_equal(request.headers.get(CSRF_HEADER), info.csrf) or not same_origin(request):
            return None
        return info

    @public.post("/login/webauthn/options")
    def login_options(request: Request) -> Response:
        wa = need("webauthn")
        helpers = need("webauthn.helpers")
        structs = need("webauthn.helpers.structs")
        info = pending(request)
        if info is None:
            return JSONResponse({"detail": "no sign-in in progress"}, status_code=403)
        creds = svc.accounts.webauthn_credentials(info.user_id)
        options = wa.generate_authentication_options(
            rp_id=cfg.rp_id,
            challenge=secrets.token_bytes(32),
            allow_credentials=[
                structs.PublicKeyCredentialDescriptor(id=helpers.base64url_to_bytes(c.credential_id))
                for c in creds
            ],
            user_verification=structs.UserVerificationRequirement.PREFERRED,
        )
        challenges.put("auth:" + token_hash(request.cookies.get(SESSION_COOKIE) or ""), options.challenge)
        return Response(wa.options_to_json(options), media_type="application/json")

    @public.post("/login/webauthn")
    async def login(request: Request) -> Response:
        wa = need("webauthn")
        helpers = need("webauthn.helpers")
        info = pending(request)
        data = await _json(request)
        token = request.cookies.get(SESSION_COOKIE) or ""
        challenge = challenges.take("auth:" + token_hash(token))
        if info is None or data is None or challenge is None:
            return JSONResponse({"detail": "no sign-in in progress"}, status_code=403)
        credential = data.get("credential")
        cred_id = credential.get("id") if isinstance(credential, dict) else None
        row = next(
            (c for c in svc.accounts.webauthn_credentials(info.user_id) if c.credential_id == cred_id), None
        )
        try:
            if row is None:
                raise ValueError("unknown credential")
            verified = wa.verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=cfg.rp_id,
                expected_origin=cfg.origin,
                credential_public_key=helpers.base64url_to_bytes(row.public_key),
                credential_current_sign_count=row.sign_count,
            )
        except Exception as exc:  # a bad signature, a cloned authenticator (sign count), a wrong origin …
            svc.audit.append(
                "mfa.verify",
                "failure",
                info.principal.actor,
                f"user:{info.principal.name}",
                detail={"factor": "webauthn", "reason": str(exc)[:200]},
                remote=info.principal.remote,
            )
            return JSONResponse({"detail": "the authenticator's response was not accepted"}, status_code=401)
        svc.accounts.webauthn_used(row.id, verified.new_sign_count)
        result = svc.accounts.webauthn_passed(token, remote(request), request.headers.get("user-agent"))
        if not result.ok or result.token is None:
            return JSONResponse({"detail": result.message}, status_code=401)
        response = JSONResponse({"ok": True})
        response.set_cookie(
            SESSION_COOKIE,
            result.token,
            httponly=True,
            secure=cfg.secure_cookies,
            samesite="strict",
            path="/",
        )
        return response

    _ = render
