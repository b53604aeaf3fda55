"""schemathesis over the OpenAPI document: generated requests (valid and invalid) for every
operation, authenticated as an administrator with a write token; no response may be a 5xx. On
SQLite and a real PostgreSQL.

The operations are driven through schemathesis' Python API with Hypothesis directly (its pytest
plugin does not run under this pytest).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from world import World

from components import require_module
from vmsec.service.core import cli_principal
from vmsec.web.app import create_app

schemathesis = require_module("schemathesis", "schemathesis (the dev extra)")

EXAMPLES = 15  # per operation and backend (valid and invalid requests): 35 operations × 15 × 2 backends


def test_no_server_errors(world: World) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(world.svc))
    checks = [schemathesis.checks.not_a_server_error]
    seen: list[str] = []
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.append(operation.label)

        @given(
            case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
            | operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)
        )
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            # a fresh token per case: a generated DELETE /tokens/{id} may revoke the one before
            token, _ = world.svc.accounts.create_token("admin-red", "write", 1, "fuzz", cli_principal())
            response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=checks)
            assert response.headers.get("content-type", [""])[0].split(";")[0] in (
                "application/json",
                "text/csv",
                "text/markdown",
                "application/xml",
                "text/html",
                "application/sarif+json",
                "",
            ), case.path  # the API answered, not the dashboard
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        run()
    assert len(seen) >= 30 and "GET /findings" in seen
    # the generated requests reached the handlers: successes, refusals of bad input, unknown objects
    assert statuses.get(200, 0) > 50 and statuses.get(422, 0) > 20 and statuses.get(404, 0) > 5, statuses
