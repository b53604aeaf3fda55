"""Accounts on a real store: passwords (argon2id, the breached list, no composition rules), TOTP
accepted once per time step, recovery codes, lockout, sessions (rotation, idle and absolute
timeouts, revocation), API tokens (hashed, scoped, expiring, revocable), encrypted secrets — and the
user/token commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from world import PASSWORD, World

from vmsec.errors import ConfigError
from vmsec.service import mfa
from vmsec.service.accounts import token_hash
from vmsec.service.core import ServiceError, cli_principal
from vmsec.service.keys import ServiceKeys
from vmsec.service.passwords import check_password, common_passwords
from vmsec.store import schema


@pytest.mark.parametrize(
    ("password", "refused"),
    [
        ("short pass", "at least 12"),
        ("password1234", "common or breached"),
        ("Qwerty123456", "common or breached"),  # case does not matter
        ("iloveyou2024!!", "common or breached"),  # a listed password with digits and punctuation added
        ("zzzzzzzzzzzzzzzz", "repetition"),
        ("abcabcabcabcabc", "repetition"),
        ("123456789012", "repetition or a sequence"),
        ("alice is my name", "account name"),
        ("x" * 257, "at most 256"),
    ],
)
def test_weak_passwords_are_refused(password: str, refused: str) -> None:
    problem = check_password(password, ("alice",))
    assert problem is not None and refused in problem


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "lowercase only words here",
        "Ünïcödé pässwörd ok",
        "            spaces count too",
    ],
)
def test_long_uncommon_passwords_need_no_composition(password: str) -> None:
    assert check_password(password, ("alice",)) is None


def test_the_shipped_list_is_the_documented_one() -> None:
    words = common_passwords()
    assert len(words) == 19_640 and "password" in words and "qwerty123456" in words
    here = Path(__file__).resolve().parents[2] / "src" / "vmsec" / "data"
    assert (here / "common-passwords.PROVENANCE.md").exists() and (here / "common-passwords.LICENSE").exists()


def test_passwords_are_argon2id_hashes(fresh_world: World) -> None:
    with fresh_world.svc.engine.connect() as conn:
        hashes = [r[0] for r in conn.execute(select(schema.users.c.password_hash))]
    assert hashes and all(h.startswith("$argon2id$v=19$m=19456,t=2,p=1$") for h in hashes)
    assert not any(PASSWORD in h for h in hashes)


def _login_mfa(w: World, user: str, code: str) -> bool:
    first = w.svc.accounts.login_password(user, PASSWORD, "192.0.2.1", "pytest")
    assert first.ok and first.stage == "mfa" and first.token
    return w.svc.accounts.second_factor(first.token, code, "192.0.2.1", "pytest").ok


def test_a_totp_code_works_once(fresh_world: World) -> None:
    w = fresh_world
    code = w.code("operator-red")
    assert _login_mfa(w, "operator-red", code)
    assert not _login_mfa(w, "operator-red", code)  # replayed within its time step: refused
    entries, _ = w.svc.queries.audit(cli_principal(), action="mfa.verify", limit=1)
    assert entries[0]["outcome"] == "failure" and entries[0]["detail"]["reason"] == "replayed code"
    # an older step (still inside the drift window) is refused too once a later one was used
    previous = mfa.current_code(
        w.secrets["operator-red"], w.clock() - __import__("datetime").timedelta(seconds=30)
    )
    assert not _login_mfa(w, "operator-red", previous)
    assert _login_mfa(w, "operator-red", w.code("operator-red"))


def test_totp_secrets_are_encrypted_with_the_key_outside_the_database(
    fresh_world: World, tmp_path: Path
) -> None:
    w = fresh_world
    with w.svc.engine.connect() as conn:
        row = conn.execute(select(schema.users).where(schema.users.c.name == "admin-red")).one()
    assert row.totp_secret.startswith("v1:") and w.secrets["admin-red"] not in row.totp_secret
    assert w.svc.keys.decrypt(row.totp_secret, f"totp:{row.id}").decode() == w.secrets["admin-red"]
    with pytest.raises(ConfigError, match="does not decrypt"):
        ServiceKeys.load(tmp_path / "other.key").decrypt(row.totp_secret, f"totp:{row.id}")
    with pytest.raises(ConfigError):  # bound to its row: copied to another user it does not decrypt
        w.svc.keys.decrypt(row.totp_secret, f"totp:{row.id + 1}")


def test_scan_credentials_are_encrypted_at_rest(fresh_world: World) -> None:
    with fresh_world.svc.engine.connect() as conn:
        row = conn.execute(select(schema.scan_credentials)).first()
    assert row is not None and b"s3cret" not in row.ciphertext.encode()
    assert fresh_world.svc.keys.decrypt(row.ciphertext, f"credential:{row.id}") == b"s3cret pass"


def test_key_file_is_created_private_and_refused_when_readable(tmp_path: Path) -> None:
    key = tmp_path / "k"
    ServiceKeys.load(key)
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        ServiceKeys.load(key)


def test_recovery_codes_are_hashed_and_single_use(fresh_world: World) -> None:
    w = fresh_world
    enrolment = w.svc.accounts.reset_mfa("operator-red", cli_principal())
    with w.svc.engine.connect() as conn:
        stored = [r[0] for r in conn.execute(select(schema.recovery_codes.c.code_hash))]
    assert not set(enrolment.recovery_codes) & set(stored)
    code = enrolment.recovery_codes[0]
    assert _login_mfa(w, "operator-red", code.upper())
    assert not _login_mfa(w, "operator-red", code)


def test_lockout_after_repeated_failures_even_with_the_right_password(fresh_world: World) -> None:
    w = fresh_world
    for _ in range(5):
        assert not w.svc.accounts.login_password("viewer-red", "wrong password!", "192.0.2.9", None).ok
    assert not w.svc.accounts.login_password("viewer-red", PASSWORD, "192.0.2.9", None).ok
    entries, _ = w.svc.queries.audit(cli_principal(), action="login.lockout", limit=1)
    assert entries and entries[0]["target"] == "user:viewer-red"
    w.clock.advance(minutes=16)
    assert w.svc.accounts.login_password("viewer-red", PASSWORD, "192.0.2.9", None).ok
    # wrong second factors count as failures too
    for _ in range(5):
        assert not _login_mfa(w, "admin-red", w.wrong_code("admin-red"))
    first = w.svc.accounts.login_password("admin-red", PASSWORD, None, None)
    assert not first.ok


def test_unknown_users_and_disabled_users_get_the_same_answer(fresh_world: World) -> None:
    a = fresh_world.svc.accounts
    assert (
        a.login_password("nobody", PASSWORD, None, None).message
        == a.login_password("gone-red", PASSWORD, None, None).message
        == a.login_password("viewer-red", "wrong password!", None, None).message
    )


def test_sessions_rotate_time_out_and_can_be_revoked(fresh_world: World) -> None:
    w = fresh_world
    a = w.svc.accounts
    first = a.login_password("admin-red", PASSWORD, None, None)
    assert first.token and a.session(first.token).stage == "mfa"  # type: ignore[union-attr]
    full = a.second_factor(first.token, w.code("admin-red"), None, None)
    assert full.token and full.token != first.token and a.session(first.token) is None  # rotated
    assert len(full.token) >= 43  # 256 bits, URL-safe base64
    with w.svc.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(schema.sessions.c.id))]
    assert full.token not in ids and token_hash(full.token) in ids  # only a hash is stored
    w.clock.advance(minutes=14)
    assert a.session(full.token) is not None
    w.clock.advance(minutes=16)
    assert a.session(full.token) is None  # idle for more than 15 minutes
    # absolute timeout: active every 10 minutes, still ends after 8 hours
    t = (
        a.second_factor(
            a.login_password("admin-red", PASSWORD, None, None).token or "", w.code("admin-red"), None, None
        ).token
        or ""
    )
    for _ in range(47):
        w.clock.advance(minutes=10)
        assert a.session(t) is not None
    w.clock.advance(minutes=10)
    assert a.session(t) is None
    # revocation by an administrator
    v = a.login_password("viewer-red", PASSWORD, None, None).token or ""
    assert a.session(v) is not None
    assert a.revoke_sessions("viewer-red", cli_principal()) == 1
    assert a.session(v) is None


def test_tokens_are_random_hashed_scoped_and_expire(fresh_world: World) -> None:
    w = fresh_world
    a = w.svc.accounts
    token, _info = a.create_token("viewer-red", "read", 2, "ci", cli_principal())
    assert token.startswith("vmsec_") and len(token) >= 6 + 43  # 32 random bytes
    with w.svc.engine.connect() as conn:
        stored = [
            tuple(r) for r in conn.execute(select(schema.api_tokens.c.token_hash, schema.api_tokens.c.prefix))
        ]
    assert all(token not in "".join(row) for row in stored) and (token_hash(token), token[:12]) in stored
    p = a.token_principal(token, None)
    assert p is not None and p.scope == "read" and p.name == "viewer-red"
    w.clock.advance(days=2, seconds=1)
    assert a.token_principal(token, None) is None
    with pytest.raises(ServiceError):
        a.create_token("viewer-red", "read", 366, "too long", cli_principal())
    with pytest.raises(ServiceError):
        a.create_token("viewer-red", "admin", 5, "bad scope", cli_principal())


def _cli(*args: str, stdin: str = "", env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vmsec.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def test_user_and_token_commands(tmp_path: Path) -> None:
    env = {"VMSEC_STORE": f"sqlite:///{tmp_path / 's.db'}", "VMSEC_SERVICE_KEY": str(tmp_path / "k")}
    r = _cli(
        "user",
        "add",
        "olga",
        "--role",
        "operator",
        "--password-stdin",
        "--group",
        "ops",
        stdin=PASSWORD + "\n",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert (
        r.stdout.startswith("Add this to an authenticator app")
        and "otpauth://totp/vmsec:olga?secret=" in r.stdout
    )
    assert len([line for line in r.stdout.splitlines() if line.startswith("  ")]) == 10  # recovery codes
    r = _cli("user", "add", "vic", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n", env=env)
    assert r.returncode == 0 and "otpauth" not in r.stdout  # viewers may enrol later, need not
    r = _cli("user", "add", "weak", "--role", "viewer", "--password-stdin", stdin="password1234\n", env=env)
    assert r.returncode == 2 and "common or breached" in r.stderr
    r = _cli("user", "add", "olga", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n", env=env)
    assert r.returncode == 2 and "exists" in r.stderr
    r = _cli("user", "list", "--format", "json", env=env)
    users = {u["name"]: u for u in __import__("json").loads(r.stdout)}
    assert (
        users["olga"]["role"] == "operator" and users["olga"]["totp"] and users["olga"]["groups"] == ["ops"]
    )
    r = _cli("token", "create", "--user", "vic", "--scope", "read", "--expires", "7", env=env)
    assert r.returncode == 0 and r.stdout.strip().startswith("vmsec_")
    token = r.stdout.strip()
    r = _cli("token", "list", env=env)
    assert token[:12] in r.stdout and token not in r.stdout and "active" in r.stdout
    r = _cli("token", "revoke", "1", env=env)
    assert r.returncode == 0
    assert "revoked" in _cli("token", "list", env=env).stdout
    r = _cli("user", "reset-mfa", "olga", env=env)
    assert r.returncode == 0 and "otpauth://" in r.stdout
    r = _cli("user", "disable", "vic", env=env)
    assert r.returncode == 0 and "disabled" in _cli("user", "list", env=env).stdout
    r = _cli("user", "disable", "nobody", env=env)
    assert r.returncode == 2 and "no user named" in r.stderr
    r = _cli("audit", "verify", env=env)
    assert r.returncode == 0 and "intact" in r.stdout


def test_sign_in_attempts_are_throttled_per_address(fresh_world: World) -> None:
    import dataclasses
    import re

    from fastapi.testclient import TestClient

    from vmsec.web.app import create_app

    w = fresh_world
    w.svc.config = dataclasses.replace(w.svc.config, login_rate=3)
    c = TestClient(create_app(w.svc), base_url="https://testserver")
    codes = []
    for _ in range(4):
        page = c.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        r = c.post(
            "/login", data={"username": "viewer-red", "password": "wrong password!", "csrf": csrf.group(1)}
        )
        codes.append(r.status_code)
    assert codes == [401, 401, 401, 429]
    entries, _ = w.svc.queries.audit(cli_principal(), action="login.throttled", limit=1)
    assert entries and entries[0]["outcome"] == "denied"


def test_reauthentication_rotates_the_session(fresh_world: World) -> None:
    w = fresh_world
    a = w.svc.accounts
    token = a.login_password("viewer-red", PASSWORD, None, None).token or ""
    info = a.session(token)
    assert info is not None
    w.clock.advance(minutes=10)
    assert a.reauthenticate(info, token, "wrong password!", None) is None
    new = a.reauthenticate(info, token, PASSWORD, None)
    assert new is not None and new != token
    assert a.session(token) is None  # the old id is dead
    fresh = a.session(new)
    assert fresh is not None and fresh.reauth_at == w.clock() and fresh.created_at == info.created_at
    # operators confirm with their second factor too
    op = (
        a.second_factor(
            a.login_password("operator-red", PASSWORD, None, None).token or "",
            w.code("operator-red"),
            None,
            None,
        ).token
        or ""
    )
    op_info = a.session(op)
    assert op_info is not None and a.reauthenticate(op_info, op, PASSWORD, None) is None
    assert a.reauthenticate(op_info, op, PASSWORD, w.code("operator-red")) is not None


def test_password_change_needs_the_current_password(fresh_world: World) -> None:
    w = fresh_world
    a = w.svc.accounts
    uid = a.user_id("viewer-red")
    me = w.principal("viewer-red")
    with pytest.raises(ServiceError, match="current password is wrong"):
        a.change_password(uid, "not my password", "a brand new long passphrase", me)
    with pytest.raises(ServiceError, match="common or breached"):
        a.change_password(uid, PASSWORD, "password123456", me)
    a.change_password(uid, PASSWORD, "a brand new long passphrase", me)
    assert not a.login_password("viewer-red", PASSWORD, None, None).ok
    assert a.login_password("viewer-red", "a brand new long passphrase", None, None).ok


def test_users_see_and_end_their_other_sessions(fresh_world: World) -> None:
    a = fresh_world.svc.accounts
    first = a.login_password("viewer-red", PASSWORD, "192.0.2.1", "laptop").token or ""
    second = a.login_password("viewer-red", PASSWORD, "192.0.2.2", "phone").token or ""
    uid = a.user_id("viewer-red")
    mine = a.own_sessions(uid, second)
    assert {s["remote"] for s in mine} == {"192.0.2.1", "192.0.2.2"}
    assert [s["current"] for s in mine if s["remote"] == "192.0.2.2"] == [True]
    assert a.revoke_other_sessions(uid, second, fresh_world.principal("viewer-red")) == 1
    assert a.session(first) is None and a.session(second) is not None


def test_an_admin_manages_only_users_all_of_whose_groups_it_administers(fresh_world: World) -> None:
    # A user in red and blue is not red's to manage: a token for it would carry blue, a reset of its
    # MFA would hand its second factor over, disabling it would lock blue's admin out.
    svc = fresh_world.svc
    cli = cli_principal()
    svc.accounts.add_user("both", "admin", PASSWORD, ["red", "blue"], cli)
    red = fresh_world.principal("admin-red")
    from vmsec.service.core import NotFound

    for attempt in (lambda: svc.accounts.create_token("both", "write", 1, "x", red),
                    lambda: svc.accounts.reset_mfa("both", red),
                    lambda: svc.accounts.disable_user("both", red),
                    lambda: svc.accounts.revoke_sessions("both", red)):
        with pytest.raises(NotFound):
            attempt()
    # red's own users stay red's to manage
    svc.accounts.add_user("red-only", "viewer", PASSWORD, ["red"], cli)
    token, _info = svc.accounts.create_token("red-only", "read", 1, "x", red)
    assert token
    svc.accounts.disable_user("red-only", red)


def test_password_guesses_through_a_session_are_counted_locked_and_audited(fresh_world: World) -> None:
    # A stolen session must not be a way to guess the password without limit: a wrong current
    # password counts towards the lockout and is audited, and a locked account is refused by the
    # password change and the re-authentication alike (as by the sign-in form).
    w = fresh_world
    a = w.svc.accounts
    uid = a.user_id("viewer-red")
    me = w.principal("viewer-red")
    token = a.login_password("viewer-red", PASSWORD, None, None).token or ""
    info = a.session(token)
    assert info is not None
    threshold = w.svc.config.lockout_threshold
    for _ in range(threshold):
        with pytest.raises(ServiceError, match="current password is wrong"):
            a.change_password(uid, "not my password", "a brand new long passphrase", me)
    with w.svc.engine.connect() as conn:
        row = conn.execute(select(schema.users).where(schema.users.c.id == uid)).one()
        log = schema.audit_log
        failures = conn.execute(select(log).where(log.c.action == "user.password")).all()
    assert row.failed_logins == threshold and row.locked_until is not None
    assert len(failures) == threshold
    with pytest.raises(ServiceError, match="current password is wrong"):  # locked: the right one too
        a.change_password(uid, PASSWORD, "a brand new long passphrase", me)
    assert a.reauthenticate(info, token, PASSWORD, None) is None


def test_a_password_change_ends_the_other_sessions(fresh_world: World) -> None:
    a = fresh_world.svc.accounts
    first = a.login_password("viewer-red", PASSWORD, None, None).token or ""
    second = a.login_password("viewer-red", PASSWORD, None, None).token or ""
    info = a.session(second)
    assert info is not None
    a.change_password(a.user_id("viewer-red"), PASSWORD, "a brand new long passphrase", info.principal)
    assert a.session(first) is None and a.session(second) is not None
