"""The authorisation matrix, generated from the OpenAPI document: every API operation × every role
(through a write token, and through a read-only token), anonymous, expired, revoked, forged and
malformed tokens and a disabled user's token, and cross-group access — on SQLite and on a real
PostgreSQL. The expected table below is written by hand: an operation the document lists and the
table does not (a new route) fails the test, and so does a table entry for a route that is gone.

The dashboard's pages get the same treatment from the application's routes: every page × every
role, and anonymous.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from world import PASSWORD, ROLES, T0, World

from vmsec.service.core import cli_principal
from vmsec.web.app import create_app

ALL = frozenset(ROLES)
AUDITORS = frozenset({"auditor", "admin"})
OPERATORS = frozenset({"operator", "admin"})
ADMIN = frozenset({"admin"})

# (method, path) -> the roles allowed. Read-only tokens: GET operations only.
API: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/me"): ALL,
    ("GET", "/groups"): ALL,
    ("GET", "/scans"): ALL,
    ("POST", "/scans"): OPERATORS,
    ("GET", "/scans/{scan_id}"): ALL,
    ("GET", "/scans/{scan_id}/diff/{other_id}"): ALL,
    ("GET", "/scans/{scan_id}/report"): AUDITORS,
    ("GET", "/jobs"): ALL,
    ("GET", "/jobs/{job_id}"): ALL,
    ("GET", "/findings"): ALL,
    ("GET", "/findings/{finding_id}"): ALL,
    ("GET", "/hosts"): ALL,
    ("GET", "/hosts/{host_id}"): ALL,
    ("GET", "/vms"): ALL,
    ("GET", "/vms/{vm_id}"): ALL,
    ("GET", "/waivers"): ALL,
    ("POST", "/waivers"): OPERATORS,
    ("POST", "/waivers/{waiver_id}/approve"): ADMIN,
    ("POST", "/waivers/{waiver_id}/reject"): ADMIN,
    ("GET", "/targets"): ALL,
    ("POST", "/targets"): ADMIN,
    ("DELETE", "/targets/{target_id}"): ADMIN,
    ("GET", "/credentials"): ADMIN,
    ("POST", "/credentials"): ADMIN,
    ("DELETE", "/credentials/{credential_id}"): ADMIN,
    ("GET", "/users"): ADMIN,
    ("POST", "/users"): ADMIN,
    ("POST", "/users/{name}/disable"): ADMIN,
    ("POST", "/users/{name}/reset-mfa"): ADMIN,
    ("POST", "/users/{name}/revoke-sessions"): ADMIN,
    ("GET", "/tokens"): ADMIN,
    ("POST", "/tokens"): ADMIN,
    ("DELETE", "/tokens/{token_id}"): ADMIN,
    ("GET", "/audit"): AUDITORS,
}

# Pages (GET and POST) -> the roles allowed; anonymous users are sent to the login page.
PAGES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/"): ALL,
    ("GET", "/hosts/{host_id}"): ALL,
    ("GET", "/vms/{vm_id}"): ALL,
    ("GET", "/findings"): ALL,
    ("GET", "/findings/{finding_id}"): ALL,
    ("GET", "/scans"): ALL,
    ("POST", "/scans"): OPERATORS,
    ("GET", "/scans/{scan_id}"): ALL,
    ("GET", "/scans/{scan_id}/diff/{other_id}"): ALL,
    ("GET", "/waivers"): ALL,
    ("POST", "/waivers"): OPERATORS,
    ("POST", "/waivers/{waiver_id}/approve"): ADMIN,
    ("POST", "/waivers/{waiver_id}/reject"): ADMIN,
    ("GET", "/users"): ADMIN,
    ("POST", "/users"): ADMIN,
    ("POST", "/users/{name}/disable"): ADMIN,
    ("POST", "/users/{name}/reset-mfa"): ADMIN,
    ("POST", "/users/{name}/revoke-sessions"): ADMIN,
    ("GET", "/tokens"): ADMIN,
    ("POST", "/tokens"): ADMIN,
    ("POST", "/tokens/{token_id}/revoke"): ADMIN,
    ("GET", "/audit"): AUDITORS,
    ("GET", "/account"): ALL,
    ("POST", "/account/reauth"): ALL,
    ("POST", "/account/password"): ALL,
    ("POST", "/account/totp"): ALL,
    ("POST", "/account/recovery-codes"): ALL,
    ("POST", "/account/sessions/revoke"): ALL,
    ("POST", "/account/webauthn/options"): ALL,
    ("POST", "/account/webauthn"): ALL,
    ("POST", "/logout"): ALL,
}
PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/login/mfa"),
    ("POST", "/login/mfa"),
    ("GET", "/healthz"),
    ("POST", "/login/webauthn/options"),
    ("POST", "/login/webauthn"),
    ("GET", "/static/report.css"),  # the HTML report's stylesheet (public, like /static/*)
}


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.svc), base_url="https://testserver") as c:
        yield c


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    return doc


def operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )


# --- building a request for an operation ----------------------------------------------------------


def fresh(world: World, kind: str, color: str) -> Any:
    """A new object in group ``color`` for an operation that changes or removes it."""
    admin = world.principal(f"admin-{color}")
    svc = world.svc
    if kind == "target_id":
        return svc.ops.add_target(
            admin, group=color, name=world.unique("t"), spec={"kind": "xml", "paths": ["/nonexistent"]}
        )
    if kind == "credential_id":
        return svc.ops.add_credential(admin, group=color, name=world.unique("c"), kind="ssh-key", secret=b"k")
    if kind == "waiver_id":
        return svc.ops.propose_waiver(
            admin,
            group=color,
            check="VMS-DOM-020",
            vulnerability=None,
            target="domain:*",
            subject=None,
            reason="r",
            owner="o",
            expires=(T0 + timedelta(days=5)).date(),
        )
    if kind == "token_id":
        return svc.accounts.create_token(f"viewer-{color}", "read", 1, "victim", cli_principal())[1].id
    if kind == "name":
        name = world.unique(f"victim-{color}")
        svc.accounts.add_user(name, "viewer", PASSWORD, [color], cli_principal())
        return name
    raise AssertionError(kind)


def path_value(world: World, name: str, color: str, method: str) -> Any:
    if name in ("target_id", "credential_id", "waiver_id", "token_id", "name") and (method != "GET"):
        return fresh(world, name, color)
    stable = {
        "scan_id": "scan",
        "other_id": "scan0",
        "job_id": "job",
        "finding_id": "finding",
        "host_id": "host",
        "vm_id": "vm",
    }
    return world.ids[f"{stable[name]}-{color}"]


def body(world: World, method: str, path: str, color: str) -> dict[str, Any] | None:
    if method != "POST":
        return None
    expires = (T0 + timedelta(days=10)).date().isoformat()
    return {
        "/scans": {"target_id": world.ids[f"target-{color}"]},
        "/waivers": {
            "group": color,
            "check": "VMS-DOM-012",
            "target": "domain:vm-*",
            "reason": "lab",
            "owner": "ops",
            "expires": expires,
        },
        "/targets": {
            "group": color,
            "name": world.unique("target"),
            "spec": {"kind": "xml", "paths": ["/nonexistent"]},
        },
        "/credentials": {
            "group": color,
            "name": world.unique("cred"),
            "kind": "luks-passphrase",
            "secret": "passphrase",
        },
        "/users": {"name": world.unique("user"), "role": "viewer", "password": PASSWORD, "groups": [color]},
        "/tokens": {"user": f"viewer-{color}", "scope": "read", "expires_days": 3},
    }.get(path)


def call(
    client: TestClient,
    world: World,
    method: str,
    path: str,
    token: str | None,
    color: str = "red",
    prefix: str = "/api/v1",
) -> Any:
    url = re.sub(r"\{(\w+)\}", lambda m: str(path_value(world, m.group(1), color, method)), path)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.request(method, prefix + url, headers=headers, json=body(world, method, path, color))


# --- the API matrix -------------------------------------------------------------------------------


def test_every_operation_has_an_entry(openapi: dict[str, Any]) -> None:
    listed = set(operations(openapi))
    assert listed - set(API) == set(), "operations without an entry in the matrix (add them to API)"
    assert set(API) - listed == set(), "matrix entries for operations that no longer exist"
    for method, path in listed:
        op = openapi["paths"][path][method.lower()]
        assert op.get("x-vmsec-permission"), f"{method} {path} declares no permission"


def test_every_operation_for_every_role(client: TestClient, world: World, openapi: dict[str, Any]) -> None:
    failures = []
    for method, path in operations(openapi):
        for role in ROLES:
            r = call(client, world, method, path, world.tokens[role])
            allowed = role in API[(method, path)]
            ok = (r.status_code < 400) if allowed else (r.status_code == 403)
            if not ok:
                failures.append(f"{role} {method} {path}: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)


def test_read_only_tokens_only_read(client: TestClient, world: World, openapi: dict[str, Any]) -> None:
    failures = []
    for method, path in operations(openapi):
        for role in ROLES:
            r = call(client, world, method, path, world.tokens[f"{role}-read"])
            allowed = role in API[(method, path)] and method == "GET"
            ok = (r.status_code < 400) if allowed else (r.status_code == 403)
            if not ok:
                failures.append(f"{role} (read token) {method} {path}: {r.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("kind", ["anonymous", "expired", "revoked", "forged", "malformed", "disabled"])
def test_no_operation_without_a_valid_token(
    client: TestClient, world: World, openapi: dict[str, Any], kind: str
) -> None:
    token = None if kind == "anonymous" else world.tokens[kind]
    for method, path in operations(openapi):
        r = client.request(
            method,
            "/api/v1" + re.sub(r"\{\w+\}", "1", path),
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        assert r.status_code == 401, f"{kind} {method} {path}: {r.status_code}"
        assert "bearer" in r.headers.get("www-authenticate", "").lower()


def test_cross_group_objects_are_not_found(client: TestClient, world: World, openapi: dict[str, Any]) -> None:
    """An admin of red (every permission) reaches nothing of blue: by id, by body, by group name."""
    failures = []
    for method, path in operations(openapi):
        takes_object = "{" in path or (method == "POST" and body(world, method, path, "blue") is not None)
        if not takes_object or path in ("/users", "/scans/{scan_id}/diff/{other_id}"):
            continue
        r = call(client, world, method, path, world.tokens["admin"], color="blue")
        if r.status_code != 404:
            failures.append(f"{method} {path} on blue: {r.status_code} {r.text[:200]}")
    # a diff mixing a visible and an invisible scan
    r = client.get(
        f"/api/v1/scans/{world.ids['scan-red']}/diff/{world.ids['scan-blue']}",
        headers={"Authorization": f"Bearer {world.tokens['admin']}"},
    )
    if r.status_code != 404:
        failures.append(f"diff red/blue: {r.status_code}")
    # a new user can only be put into one's own groups
    r = client.post(
        "/api/v1/users",
        headers={"Authorization": f"Bearer {world.tokens['admin']}"},
        json={"name": world.unique("x"), "role": "viewer", "password": PASSWORD, "groups": ["blue"]},
    )
    if r.status_code != 403:
        failures.append(f"user into blue: {r.status_code}")
    assert not failures, "\n".join(failures)


LISTS = [
    "/scans",
    "/findings",
    "/hosts",
    "/vms",
    "/waivers",
    "/targets",
    "/jobs",
    "/groups",
    "/users",
    "/tokens",
    "/credentials",
    "/audit",
    "/findings?q=blue",
    "/findings?host=hv-blue",
    "/vms?host=hv-blue",
]


def test_lists_search_and_exports_stay_within_the_group(client: TestClient, world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    for url in LISTS:
        r = client.get("/api/v1" + url, headers=headers)
        assert r.status_code == 200, url
        text = r.text.replace("admin-blue", "").replace('"blue"', "")  # the red admin may see blue's name
        assert "blue" not in text, f"{url} shows blue's objects: {r.text[:300]}"
    viewer = {"Authorization": f"Bearer {world.tokens['viewer']}"}
    assert client.get("/api/v1/findings?q=vm-red", headers=viewer).json()["findings"]
    assert client.get("/api/v1/findings?q=vm-blue", headers=viewer).json()["findings"] == []
    auditor = {"Authorization": f"Bearer {world.tokens['auditor']}"}
    export = client.get(f"/api/v1/scans/{world.ids['scan-red']}/report?format=json", headers=auditor)
    assert export.status_code == 200 and "vm-red-1" in export.text and "blue" not in export.text
    assert (
        client.get(f"/api/v1/scans/{world.ids['scan-blue']}/report?format=csv", headers=auditor).status_code
        == 404
    )
    blue = {"Authorization": f"Bearer {world.tokens['viewer-blue']}"}
    assert "vm-red" not in client.get("/api/v1/findings?limit=500", headers=blue).text


def test_denials_are_audited(client: TestClient, world: World) -> None:
    client.get("/api/v1/users", headers={"Authorization": f"Bearer {world.tokens['viewer']}"})
    entries, _ = world.svc.queries.audit(cli_principal(), action="permission.denied", limit=5)
    assert entries[0]["actor"] == "token:viewer-red" and entries[0]["target"] == "GET /api/v1/users"
    client.get("/api/v1/me", headers={"Authorization": f"Bearer {world.tokens['forged']}"})
    entries, _ = world.svc.queries.audit(cli_principal(), action="token.auth", limit=1)
    assert entries[0]["outcome"] == "failure" and entries[0]["detail"]["reason"] == "unknown"


# --- the pages --------------------------------------------------------------------------------------


def _walk(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI keeps included routers as they are
            yield from _walk(route.original_router.routes)


def page_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every route of the dashboard application (the API is a mounted application of its own)."""
    return sorted((m, r.path) for r in _walk(client.app.routes) for m in r.methods)  # type: ignore[attr-defined]


def test_every_page_has_an_entry(client: TestClient) -> None:
    listed = set(page_routes(client))
    assert listed - set(PAGES) - PUBLIC == set(), "pages without an entry in the matrix (add them to PAGES)"
    assert set(PAGES) | PUBLIC == listed


def sign_in(world: World, name: str) -> TestClient:
    c = TestClient(create_app(world.svc), base_url="https://testserver")
    page = c.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    r = c.post(
        "/login", data={"username": name, "password": PASSWORD, "csrf": csrf.group(1)}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    if r.headers["location"].startswith("/login/mfa"):
        page = c.get("/login/mfa")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        r = c.post(
            "/login/mfa", data={"code": world.code(name), "csrf": csrf.group(1)}, follow_redirects=False
        )
        assert r.status_code == 303, f"{name}: {r.status_code}"
    return c


def _page_csrf(c: TestClient) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', c.get("/account").text)
    assert m is not None
    return m.group(1)


def test_every_page_for_every_role(client: TestClient, world: World) -> None:
    failures = []
    anonymous = TestClient(create_app(world.svc), base_url="https://testserver")
    for role in ROLES:
        c = sign_in(world, f"{role}-red")
        csrf = _page_csrf(c)
        for method, path in page_routes(client):
            if (method, path) in PUBLIC or path == "/logout":
                continue
            url = re.sub(
                r"\{(\w+)\}", lambda m, method=method: str(path_value(world, m.group(1), "red", method)), path
            )
            allowed = role in PAGES[(method, path)]
            if method == "GET":
                r = c.get(url, follow_redirects=False)
                ok = r.status_code == 200 if allowed else r.status_code == 403
            else:
                r = c.post(url, data={"csrf": csrf}, headers={"x-csrf-token": csrf}, follow_redirects=False)
                # allowed: past the authorisation (the empty form may then be refused as invalid input)
                ok = r.status_code not in (401, 403) if allowed else r.status_code == 403
                uri = re.search(r'id="otpauth">([^<]+)<', r.text)
                if uri:  # the account page enrolled a new authenticator: keep its secret
                    world.secrets[f"{role}-red"] = re.sub(r".*secret=([A-Z2-7]+).*", r"\1", uri.group(1))
            if not ok:
                failures.append(f"{role} {method} {path}: {r.status_code}")
            if role == "viewer":
                a = anonymous.request(method, url, follow_redirects=False)
                expect = 303 if method == "GET" else 401
                if a.status_code != expect or (
                    method == "GET" and not a.headers["location"].startswith("/login")
                ):
                    failures.append(f"anonymous {method} {path}: {a.status_code}")
    assert not failures, "\n".join(failures)


def test_pages_refuse_a_missing_or_wrong_csrf_token(world: World) -> None:
    c = sign_in(world, "admin-red")
    before = world.svc.accounts.list_tokens(cli_principal())
    for data in ({}, {"csrf": "wrong"}):
        r = c.post("/tokens", data={**data, "user": "viewer-red", "scope": "read"}, follow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.text
    assert len(world.svc.accounts.list_tokens(cli_principal())) == len(before)
    csrf = _page_csrf(c)
    # the right token from another origin is refused as well
    r = c.post(
        "/tokens",
        data={"csrf": csrf, "user": "viewer-red", "scope": "read"},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403


Check = Callable[[str], None]


@pytest.mark.parametrize("path", ["/login/webauthn", "/api/v1/users", "/login"])
def test_a_large_request_body_is_refused_before_anything_reads_it(world: World, path: str) -> None:
    # Without a session or a token: the body (2 MiB, over the service's 1 MiB limit) is refused with
    # 413 by its declared length, or cut off where it passes the limit — never held whole in memory.
    anonymous = TestClient(create_app(world.svc), base_url="https://testserver")
    big = b"x" * (2 * 1024 * 1024)
    kind = {"content-type": "application/x-www-form-urlencoded" if path == "/login" else "application/json"}
    response = anonymous.post(path, content=big, headers=kind)
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(32):
            yield b"x" * 65536

    response = anonymous.post(path, content=chunks(), headers=kind)
    assert response.status_code == 413
