"""The web application: the dashboard at ``/``, the REST API mounted at ``/api/v1``, static files
(the stylesheet and the WebAuthn script, shipped in the package) at ``/static``."""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from vmsec import __version__
from vmsec.service.core import Denied, NotFound, Service, ServiceError
from vmsec.web.api import UNSTORABLE, create_api
from vmsec.web.fastpath import FindingListFastPath
from vmsec.web.pages import create_pages, render, see_other
from vmsec.web.security import BodyLimit, CsrfRejected, LoginRequired, SecurityHeaders

_log = logging.getLogger("vmsec.web")
THREADS = 64  # requests served at once (handlers are synchronous: they run in worker threads)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    import asyncio

    import anyio.to_thread

    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    service: Service = app.state.service

    async def scheduler() -> None:
        """Queue the scheduled scans that are due, every ``schedule_every`` seconds (off this loop)."""
        while True:
            await asyncio.sleep(service.config.schedule_every)
            try:
                await anyio.to_thread.run_sync(service.ops.run_due)
            except Exception:  # a failing store must not stop the schedule: it retries next time
                _log.exception("scheduled scans could not be queued")

    task = asyncio.create_task(scheduler())
    try:
        yield
    finally:
        task.cancel()
        if getattr(app.state, "owns_service", False):
            await anyio.to_thread.run_sync(service.close)


def create_app(service: Service, *, fast_paths: bool = True) -> FastAPI:
    """The application. ``fast_paths=False`` leaves out vmsec.web.fastpath (the tests compare the two)."""
    app = FastAPI(
        title="vmsec",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=_lifespan,
    )
    app.state.service = service
    public, pages = create_pages(service)
    app.include_router(public)
    app.include_router(pages)
    app.mount("/static", StaticFiles(packages=[("vmsec.web", "static")]), name="static")
    app.mount("/api/v1", create_api(service))

    def error(request: Request, status: int, message: str) -> Response:
        return render(request, "error.html", status, status=status, message=message)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if request.method in ("GET", "HEAD"):
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return see_other("/login?next=" + urllib.parse.quote(here))
        return error(request, 401, "Your session has ended: sign in again.")

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, _exc: CsrfRejected) -> Response:
        return error(request, 403, "The form's security token was missing or wrong (CSRF): reload the page.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return error(request, 404, str(exc))

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> Response:
        return error(request, 403, str(exc))

    @app.exception_handler(ServiceError)
    async def refused(request: Request, exc: ServiceError) -> Response:
        return error(request, 400, str(exc))

    @app.exception_handler(DataError)
    async def unstorable(request: Request, _exc: DataError) -> Response:
        return error(request, 400, UNSTORABLE[0].upper() + UNSTORABLE[1:] + ".")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(x) for x in e.get("loc", ())[1:]) for e in exc.errors()[:5])
        return error(request, 400, f"Invalid input: {fields or 'request'}")

    if fast_paths:
        app.add_middleware(FindingListFastPath, service=service)  # inside SecurityHeaders: its headers too
    app.add_middleware(BodyLimit)  # before anything reads a body (the fast path reads none)
    app.add_middleware(SecurityHeaders, tls=service.config.tls)
    return app


# --- worker processes --------------------------------------------------------------------------------

SETTINGS_ENV = "VMSEC_SERVE_SETTINGS"


def worker_settings(
    store_url: str, key_file: str, config: dict[str, Any], syslog: str | None, workers: int
) -> str:
    """What each worker process of ``vmsec serve`` needs to open the service, for :func:`worker_app`
    (handed over in the environment: uvicorn starts its workers by importing an application factory)."""
    return json.dumps(
        {"store": store_url, "key_file": key_file, "config": config, "syslog": syslog, "workers": workers}
    )


def worker_app() -> FastAPI:
    """The application of one worker process: its own service (engine and connection pool, token
    cache) on the shared store. Everything the workers must agree on — sessions, lockouts, sign-in
    throttling, WebAuthn challenges, the audit chain — is in the database (docs/security.md)."""
    from vmsec.service.core import ServiceConfig

    settings = json.loads(os.environ[SETTINGS_ENV])
    workers = max(1, int(settings["workers"]))
    service = Service.open(
        settings["store"],
        settings["key_file"],
        # each worker's pool is a share of the single process's 20 (+20 overflow): N workers do not
        # open N times the connections of one on a PostgreSQL server with 100 of them
        pool_size=max(4, 20 // workers),
        config=ServiceConfig(**settings["config"]),
        syslog=settings["syslog"],
    )
    app = create_app(service)
    app.state.owns_service = True
    return app
