"""A request holding a value the store cannot keep or look up — a NUL character, which PostgreSQL's text
type refuses — is the client's error (400, saying so), never a server error; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from world import PASSWORD, World

from vmsec.service.core import cli_principal
from vmsec.web.app import create_app


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    token, _ = world.svc.accounts.create_token("admin-red", "write", 1, "nul-test", cli_principal())
    with TestClient(create_app(world.svc), base_url="https://testserver",
                    headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.mark.parametrize(("method", "url", "body"), [
    ("POST", "/api/v1/targets", {"group": "\x00", "name": "n", "spec": {}}),
    ("POST", "/api/v1/targets", {"group": "red", "name": "a\x00b", "spec": {"kind": "xml"}}),
    ("GET", "/api/v1/findings?q=%00", None),
    ("GET", "/api/v1/findings?check=VMS%00", None),
    ("GET", "/api/v1/vms?host=%00", None),
    ("POST", "/api/v1/users/%00/disable", None),
    ("POST", "/api/v1/waivers", {"group": "red", "target": "x\x00", "reason": "r", "owner": "o"}),
])
def test_a_nul_in_a_request_is_a_client_error(api: TestClient, world: World, method: str, url: str,
                                              body: dict[str, object] | None) -> None:
    response = api.request(method, url, json=body)
    assert response.status_code < 500, response.text
    if response.status_code == 400 and "NUL" in response.text:
        assert response.json()["detail"].startswith("the request holds a value the store cannot keep")


def _csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m is not None
    return m.group(1)


def test_a_nul_at_the_sign_in_form_or_in_a_dashboard_filter_is_a_client_error(world: World) -> None:
    c = TestClient(create_app(world.svc), base_url="https://testserver")
    r = c.post("/login", data={"username": "admin\x00", "password": "x", "csrf": _csrf(c.get("/login").text)},
               follow_redirects=False)
    assert r.status_code < 500, r.text
    r = c.post("/login", data={"username": world.principal("admin-red").name, "password": PASSWORD,
                               "csrf": _csrf(c.get("/login").text)}, follow_redirects=False)
    if r.headers["location"].startswith("/login/mfa"):
        code, csrf = world.code("admin-red"), _csrf(c.get("/login/mfa").text)
        r = c.post("/login/mfa", data={"code": code, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    for url in ("/findings?q=%00", "/findings?target=%00", "/findings?check=%00", "/audit?action=%00"):
        page = c.get(url)
        assert page.status_code < 500, (url, page.text[:300])
        if page.status_code == 400:
            assert "cannot keep or look up" in page.text


def test_labels_and_notes_with_control_characters_are_refused_line_breaks_in_a_note_are_kept(
        api: TestClient, world: World) -> None:
    expires = (world.clock() + timedelta(days=30)).date().isoformat()
    waiver = {"group": "red", "check": "VMS-DOM-020", "target": "domain:*", "owner": "ops",
              "expires": expires}
    bad = api.post("/api/v1/waivers", json={**waiver, "reason": "accepted\x1b[2J until the upgrade"})
    assert bad.status_code == 400 and "the reason holds a control character" in bad.json()["detail"]
    bad = api.post("/api/v1/waivers", json={**waiver, "owner": "ops\u0085", "reason": "r"})
    assert bad.status_code == 400 and "the owner holds a control character" in bad.json()["detail"]
    good = api.post("/api/v1/waivers", json={**waiver, "reason": "accepted\r\nuntil the upgrade\tin May"})
    assert good.status_code == 201, good.text
    stored = [w for w in api.get("/api/v1/waivers").json() if w["id"] == good.json()["id"]]
    assert stored[0]["reason"] == "accepted\r\nuntil the upgrade\tin May"
    bad = api.post("/api/v1/tokens", json={"user": "viewer-red", "scope": "read", "name": "ci\x07"})
    assert bad.status_code == 400 and "the token's name holds a control character" in bad.json()["detail"]


def test_a_user_name_with_a_trailing_line_break_is_no_user_name(api: TestClient) -> None:
    # '^…$' with re.match took "mallory\n" ($ matches before a final newline): a forged second line in
    # every listing of users.
    r = api.post("/api/v1/users", json={"name": "mallory\n", "role": "viewer", "password": PASSWORD,
                                        "groups": ["red"]})
    assert r.status_code == 400 and "not a user name" in r.json()["detail"]


@pytest.mark.parametrize("name", ["evil\u202egnp.exe", "a\u200bb", "x\u2028y", "\ufeffbom", "\u2066iso"])
def test_bidi_zero_width_and_separators_are_refused_in_names(api: TestClient, name: str) -> None:
    r = api.post("/api/v1/tokens", json={"user": "viewer-red", "scope": "read", "name": name})
    assert r.status_code == 400 and "the token's name holds a control character" in r.json()["detail"]


def test_a_no_break_space_is_a_space(api: TestClient) -> None:
    r = api.post("/api/v1/tokens", json={"user": "viewer-red", "scope": "read", "name": "ci\u00a0runner"})
    assert r.status_code == 201, r.text
