"""The finding list's fast path (vmsec.web.fastpath) answers exactly as the FastAPI route does: the same
bytes for every request it takes, and every request it does not take (a bad token, a denied role, an
unusual or invalid parameter) reaches the route, which validates, audits and answers — on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient  # conftest.py requires FastAPI (a FAIL under CI)
from world import World

from vmsec.service.core import cli_principal
from vmsec.web.app import create_app
from vmsec.web.fastpath import PATH, FindingListFastPath, _Unusual, parse_query

# Requests the fast path answers: every parameter, lists, cursors, times with and without a zone.
ANSWERED = [
    "",
    "limit=1",
    "limit=500",
    "status=FAIL",
    "status=FAIL&status=UNKNOWN&severity=high&severity=critical",
    "check=VMS-DOM-012",
    "check=VMS-*",
    "check=VMS-DOM-0%2A",
    "target=vm-red-1",
    "kind=domain&limit=2",
    "host=hv-red",
    "q=unauthenticated",
    "q=50%25_%5C",
    "since=2026-05-30T00:00:00Z",
    "since=2026-05-30T09:00:00%2B02:00&until=2026-06-01T00:00:00.5%2B00:00",
    "until=2026-05-31T00:00",
    "until=2026-05-31T00:00:00",
]


@pytest.fixture(scope="module")
def clients(world: World) -> Iterator[tuple[TestClient, TestClient]]:
    fast = TestClient(create_app(world.svc), base_url="https://testserver")
    slow = TestClient(create_app(world.svc, fast_paths=False), base_url="https://testserver")
    yield fast, slow


def _get(client: TestClient, token: str, query: str) -> tuple[int, bytes, dict[str, str]]:
    r = client.get(PATH + ("?" + query if query else ""), headers={"Authorization": f"Bearer {token}"})
    return r.status_code, r.content, dict(r.headers)


def test_answered_requests_are_byte_for_byte_the_routes(
    world: World, clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = clients
    answered: list[str] = []
    page = FindingListFastPath._page

    def counting(self: FindingListFastPath, *args: Any) -> bytes | None:
        body = page(self, *args)
        answered.append("yes" if body is not None else "no")
        return body

    monkeypatch.setattr(FindingListFastPath, "_page", counting)
    for user in ("viewer-read", "admin", "viewer-blue"):
        token = world.tokens[user]
        for query in ANSWERED:
            parse_query(query.encode())  # the fast path takes it (else it would not be compared)
            a, b = _get(fast, token, query), _get(slow, token, query)
            assert a[0] == b[0] == 200, (user, query, a[1][:200])
            assert a[1] == b[1], (user, query)
            assert a[2] == b[2], (user, query)
        # the next page, by the cursor of the first
        first = fast.get(PATH + "?limit=2", headers={"Authorization": f"Bearer {token}"}).json()
        assert first["next_cursor"] is not None
        query = f"limit=2&cursor={first['next_cursor']}"
        assert _get(fast, token, query) == _get(slow, token, query)
    # every request to the fast-path application was answered there (the other has none)
    assert answered == ["yes"] * (3 * (len(ANSWERED) + 2))


def test_groups_limit_the_fast_path_too(world: World, clients: tuple[TestClient, TestClient]) -> None:
    fast, _ = clients
    red = fast.get(PATH + "?limit=500", headers={"Authorization": f"Bearer {world.tokens['viewer']}"}).json()
    blue = fast.get(PATH, headers={"Authorization": f"Bearer {world.tokens['viewer-blue']}"}).json()
    assert red["findings"] and blue["findings"]
    assert {f["group_id"] for f in red["findings"]} == {world.groups["red"]}
    assert {f["group_id"] for f in blue["findings"]} == {world.groups["blue"]}
    assert not {f["id"] for f in red["findings"]} & {f["id"] for f in blue["findings"]}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=05",
        "cursor=-1",
        "scan_id=2147483648",
        "status=PASSED",
        "severity=",
        "kind=vm",
        "since=yesterday",
        "since=2026-02-30T00:00:00",
        "check=" + "x" * 201,
        "q=" + "x" * 301,
        "limit=5&limit=6",
        "unknown=1",
    ],
)
def test_unusual_requests_go_to_the_route(
    query: str, world: World, clients: tuple[TestClient, TestClient]
) -> None:
    fast, slow = clients
    with pytest.raises(_Unusual):
        parse_query(query.encode())
    a, b = _get(fast, world.tokens["viewer"], query), _get(slow, world.tokens["viewer"], query)
    assert a[0] == b[0] and a[1] == b[1], (query, a[:2], b[:2])


@pytest.mark.parametrize("token", ["revoked", "expired", "disabled", "forged", "malformed"])
def test_refused_tokens_are_refused_and_audited_by_the_route(
    token: str, world: World, clients: tuple[TestClient, TestClient]
) -> None:
    fast, _ = clients
    before, _ = world.svc.queries.audit(cli_principal(), action="token.auth", limit=1)
    r = fast.get(PATH, headers={"Authorization": f"Bearer {world.tokens[token]}"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    after, _ = world.svc.queries.audit(cli_principal(), action="token.auth", limit=1)
    assert after and (not before or after[0]["id"] > before[0]["id"])  # one new entry, from the route
    assert fast.get(PATH).status_code == 401  # no token at all


def test_the_fast_path_sends_the_security_headers(
    world: World, clients: tuple[TestClient, TestClient]
) -> None:
    fast, _ = clients
    r = fast.get(PATH, headers={"Authorization": f"Bearer {world.tokens['viewer']}"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in r.headers["content-security-policy"]
