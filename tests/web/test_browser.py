"""The dashboard end to end in Debian's chromium (Playwright, no browser download), against a real
uvicorn server on loopback: sign-in with TOTP, a replayed code refused, lockout, CSRF rejection
(a tampered token and a cross-site form), role-limited pages, session expiry, a WebAuthn security
key (Chromium's virtual authenticator), and pages that run no inline script (CSP)."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from world import PASSWORD, XML_TARGET, World, build_world

from components import require, require_module

require_module("uvicorn", "uvicorn (the 'service' extra)")
sync_api = require_module("playwright.sync_api", "Playwright (the dev extra)")

import uvicorn  # noqa: E402
from playwright.sync_api import Browser, BrowserContext, Page, expect  # noqa: E402

from vmsec.service.core import cli_principal  # noqa: E402
from vmsec.web.app import create_app  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


class Server:
    def __init__(self, world: World) -> None:
        self.world = world
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        # WebAuthn needs a host name, and Chromium treats http://localhost as a secure context.
        self.url = f"http://localhost:{self.port}"
        cfg = world.svc.config
        object.__setattr__(cfg, "rp_id", "localhost")
        object.__setattr__(cfg, "origin", self.url)
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(world.svc), log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser")
    world = build_world(f"sqlite:///{tmp / 'service.sqlite'}", tmp / "service.key", XML_TARGET)
    with Server(world) as s:
        yield s
    world.svc.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require(CHROMIUM.exists(), "chromium", "Debian's chromium package (/usr/bin/chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    yield ctx
    ctx.close()


def _errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def password_step(page: Page, server: Server, user: str, password: str = PASSWORD) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#submit")


def sign_in(page: Page, server: Server, user: str) -> None:
    password_step(page, server, user)
    if user in server.world.secrets:
        expect(page.locator("h1")).to_have_text("Second factor")
        page.fill("#code", server.world.code(user))
        page.click("#submit")
    expect(page.locator("h1")).to_have_text("Fleet overview")


def test_sign_in_with_totp_and_a_replayed_code_is_refused(context: BrowserContext, server: Server) -> None:
    page = context.new_page()
    errors = _errors(page)
    password_step(page, server, "admin-red")
    expect(page.locator("h1")).to_have_text("Second factor")
    code = server.world.code("admin-red")
    page.fill("#code", code)
    page.click("#submit")
    expect(page.locator("h1")).to_have_text("Fleet overview")
    expect(page.locator("#vms")).to_contain_text("vm-red-1")
    expect(page.locator("#vms")).not_to_contain_text("vm-blue")
    cookie = next(c for c in context.cookies() if c["name"] == "__Host-vmsec-session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert not errors, errors
    # the same code again, in another browser: refused
    other = context.browser.new_context()  # type: ignore[union-attr]
    page2 = other.new_page()
    password_step(page2, server, "admin-red")
    page2.fill("#code", code)
    page2.click("#submit")
    expect(page2.locator("#message")).to_contain_text("not accepted")
    expect(page2.locator("h1")).to_have_text("Second factor")
    other.close()


def test_lockout_after_failed_sign_ins(context: BrowserContext, server: Server) -> None:
    page = context.new_page()
    for _ in range(5):
        password_step(page, server, "auditor-red", "not the password at all")
        expect(page.locator("#message")).to_contain_text("Wrong user name or password")
    password_step(page, server, "auditor-red")  # the right password, but locked
    expect(page.locator("#message")).to_contain_text("locked")
    expect(page.locator("h1")).to_have_text("Sign in")
    entries, _ = server.world.svc.queries.audit(cli_principal(), action="login.lockout", limit=1)
    assert entries and entries[0]["target"] == "user:auditor-red"
    server.world.clock.advance(minutes=16)  # the lock ends
    sign_in(page, server, "auditor-red")


def test_csrf_tampered_token_and_cross_site_form_are_refused(
    context: BrowserContext, server: Server, tmp_path: Path
) -> None:
    page = context.new_page()
    sign_in(page, server, "admin-red")
    page.goto(server.url + "/tokens")
    before = len(server.world.svc.accounts.list_tokens(cli_principal()))
    page.eval_on_selector("#create-token input[name=csrf]", "e => e.value = 'forged-token'")
    page.click("#create-token button[type=submit]")
    expect(page.locator("#message")).to_contain_text("CSRF")
    assert len(server.world.svc.accounts.list_tokens(cli_principal())) == before
    # a form on another site posting to the dashboard: the SameSite=Strict cookie is not sent
    evil = tmp_path / "evil.html"
    evil.write_text(
        f'<form id="f" method="post" action="{server.url}/tokens">'
        '<input name="user" value="admin-red"><input name="scope" value="write">'
        '<input name="csrf" value="x"></form>',
        encoding="utf-8",
    )
    page.goto(evil.as_uri())
    page.eval_on_selector("#f", "f => f.submit()")
    page.wait_for_load_state()
    expect(page.locator("#message")).to_contain_text("sign in again")
    assert len(server.world.svc.accounts.list_tokens(cli_principal())) == before


def test_pages_follow_the_role(context: BrowserContext, server: Server) -> None:
    page = context.new_page()
    sign_in(page, server, "viewer-red")
    expect(page.locator("#nav-users")).to_have_count(0)
    expect(page.locator("#nav-audit")).to_have_count(0)
    page.goto(server.url + "/users")
    expect(page.locator("#error-status")).to_have_text("403")
    page.goto(server.url + "/waivers")
    expect(page.locator("#propose")).to_have_count(0)  # viewers cannot propose
    page.goto(server.url + f"/vms/{server.world.ids['vm-blue']}")
    expect(page.locator("#error-status")).to_have_text("404")  # another group's VM does not exist
    page.goto(server.url + f"/vms/{server.world.ids['vm-red']}")
    expect(page.locator("#exposure")).to_contain_text("management plane")
    page.goto(server.url + "/findings?severity=critical")
    expect(page.locator("#findings .finding").first).to_contain_text("libvirtd")
    # an operator proposes a waiver, an admin approves it
    op = context.browser.new_context().new_page()  # type: ignore[union-attr]
    sign_in(op, server, "operator-red")
    op.goto(server.url + "/waivers")
    op.select_option("#w-group", "red")
    op.fill("#w-check", "VMS-DOM-020")
    op.fill("#w-target", "domain:vm-red-2")
    op.fill("#w-reason", "listen address set by the orchestrator")
    op.fill("#w-owner", "platform team")
    op.fill("#w-expires", "2026-07-01")
    op.click("#propose button[type=submit]")
    expect(op.locator("#waivers")).to_contain_text("listen address set by the orchestrator")
    expect(op.locator(".approve")).to_have_count(0)
    admin = context.browser.new_context().new_page()  # type: ignore[union-attr]
    sign_in(admin, server, "admin-red")
    admin.goto(server.url + "/waivers")
    row = admin.locator("#waivers tr", has_text="orchestrator")
    row.locator(".approve").click()
    expect(admin.locator("#waivers tr", has_text="orchestrator")).to_contain_text("approved by admin-red")


def test_session_expires_when_idle(context: BrowserContext, server: Server) -> None:
    page = context.new_page()
    sign_in(page, server, "viewer-red")
    server.world.clock.advance(minutes=10)
    page.goto(server.url + "/findings")
    expect(page.locator("h1")).to_have_text("Findings")
    server.world.clock.advance(minutes=16)
    page.goto(server.url + "/findings")
    expect(page.locator("h1")).to_have_text("Sign in")
    expect(page).to_have_url(re.compile(r"/login\?next=/findings$"))


def test_security_headers_and_no_inline_script(context: BrowserContext, server: Server) -> None:
    page = context.new_page()
    errors = _errors(page)
    response = page.goto(server.url + "/login")
    assert response is not None
    headers = response.headers
    assert headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in headers  # plain HTTP on loopback: no HSTS
    html = page.content()
    assert "<script>" not in html and "onclick" not in html
    assert not errors, errors


def test_webauthn_security_key_as_second_factor(browser: Browser, server: Server) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    errors = _errors(page)
    cdp = ctx.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": False,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    sign_in(page, server, "operator-red")
    page.goto(server.url + "/account")
    page.fill("#webauthn-name", "test key")
    page.click("#webauthn-register")
    expect(page.locator("body")).to_contain_text("test key (added")
    # sign out, and sign in with the key instead of a code
    page.click("#logout")
    password_step(page, server, "operator-red")
    expect(page.locator("h1")).to_have_text("Second factor")
    page.click("#webauthn-login")
    expect(page.locator("h1")).to_have_text("Fleet overview")
    assert not errors, errors
    entries, _ = server.world.svc.queries.audit(cli_principal(), action="mfa.verify", limit=1)
    assert entries[0]["detail"] == {"factor": "webauthn"} and entries[0]["outcome"] == "success"
    ctx.close()
