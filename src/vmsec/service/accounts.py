"""Accounts: users and groups, passwords and second factors, sign-in with throttling and lockout,
server-side sessions, API tokens. Every change and every sign-in attempt is audited."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from vmsec.service import mfa
from vmsec.service.core import Denied, NotFound, Principal, ServiceError, new_id, text_input, utc
from vmsec.service.passwords import check_password, hash_password, needs_rehash, verify_password
from vmsec.service.roles import MFA_REQUIRED, Role
from vmsec.store import schema

if TYPE_CHECKING:
    from vmsec.service.core import Service

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
TOKEN_PREFIX = "vmsec_"
SCOPES = ("read", "write")
_TOUCH_EVERY = timedelta(seconds=30)  # last_seen/last_used are written at most this often


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What a new account (or an MFA reset) shows once: the TOTP URI and the recovery codes."""

    user_id: int
    otpauth_uri: str | None
    recovery_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    name: str
    role: Role
    disabled: bool
    totp: bool
    webauthn: int
    groups: tuple[str, ...]
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "disabled": self.disabled,
            "totp": self.totp,
            "webauthn_credentials": self.webauthn,
            "groups": list(self.groups),
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    user: str
    name: str
    prefix: str
    scope: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "prefix": self.prefix,
            "scope": self.scope,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
        }


@dataclass(frozen=True, slots=True)
class LoginResult:
    """``ok``: the step succeeded; ``token``: the new session cookie value (rotated at every step);
    ``stage``: "mfa" (a second factor is due) or "full"."""

    ok: bool
    token: str | None = None
    stage: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    principal: Principal
    stage: str
    csrf: str
    created_at: datetime
    reauth_at: datetime | None
    user_id: int


F = TypeVar("F", bound=Callable[..., Any])


def _changes_accounts(method: F) -> F:
    """The method changes accounts, tokens or sessions: once it has committed (or failed), verified
    tokens are no longer reused from the cache (a lookup still running then is not kept either)."""

    @functools.wraps(method)
    def wrapper(self: Accounts, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self._changed()

    return cast(F, wrapper)


class TokenCache:
    """Verified API tokens, kept for a few seconds so a client's burst of requests costs one lookup.

    Bounded (least recently used entries leave first) and short-lived: an entry is used for at most
    ``ttl`` seconds after the database said the token was valid (``ServiceConfig.auth_cache_ttl``,
    2 s). This process empties it whenever it changes any account, token or session (revocation,
    disabling, MFA reset …), so a revocation holds at once in the process that made it; another worker
    process of the same service sees it within ``ttl`` (docs/security.md). A token's own expiry is
    checked at every use."""

    def __init__(self, ttl: float, size: int = 4096) -> None:
        self.ttl, self.size = ttl, size
        self._items: OrderedDict[str, tuple[float, Principal, datetime]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0

    def get(self, digest: str) -> tuple[Principal, datetime] | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            item = self._items.get(digest)
            if item is None:
                return None
            if time.monotonic() - item[0] > self.ttl:
                del self._items[digest]
                return None
            self._items.move_to_end(digest)
        return item[1], item[2]

    @property
    def generation(self) -> int:
        return self._generation

    def put(
        self, digest: str, principal: Principal, expires: datetime, stamp: float, generation: int
    ) -> None:
        """Keep a lookup made at monotonic time ``stamp`` — unless the cache was emptied since
        (``generation`` moved): the lookup may predate a revocation."""
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            self._items[digest] = (stamp, principal, expires)
            self._items.move_to_end(digest)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._items.clear()


class Accounts:
    def __init__(self, service: Service) -> None:
        self.svc = service
        self.tokens = TokenCache(service.config.auth_cache_ttl)

    def _changed(self) -> None:
        """An account, token or session changed: no verified token is reused from the cache."""
        self.tokens.clear()

    # --- groups -------------------------------------------------------------------------------

    def ensure_group(self, name: str, conn: Connection, actor: str = "system") -> int:
        if not NAME_RE.fullmatch(name):
            raise ServiceError(f"not a group name: {name!r} (letters, digits, . _ @ -; up to 64)")
        g = schema.groups
        row = conn.execute(select(g.c.id).where(g.c.name == name)).first()
        if row is not None:
            return int(row[0])
        gid = new_id(conn.execute(insert(g).values(name=name, description="", created_at=self.svc.now())))
        self.svc.audit.append("group.create", "success", actor, f"group:{name}", group_id=gid, conn=conn)
        return gid

    def groups(self, principal: Principal) -> list[dict[str, Any]]:
        g = schema.groups
        with self.svc.engine.connect() as conn:
            rows = conn.execute(select(g.c.id, g.c.name, g.c.description).order_by(g.c.name)).all()
        return [
            {"id": r.id, "name": r.name, "description": r.description} for r in rows if principal.sees(r.id)
        ]

    def _group_ids(self, conn: Connection, user_id: int) -> frozenset[int]:
        m = schema.memberships
        return frozenset(r[0] for r in conn.execute(select(m.c.group_id).where(m.c.user_id == user_id)))

    # --- users --------------------------------------------------------------------------------

    @_changes_accounts
    def add_user(self, name: str, role: str, password: str, groups: list[str], actor: Principal) -> Enrolment:
        if not NAME_RE.fullmatch(name):
            raise ServiceError(f"not a user name: {name!r} (letters, digits, . _ @ -; up to 64)")
        try:
            role_ = Role(role)
        except ValueError as exc:
            raise ServiceError(f"unknown role {role!r} (one of {', '.join(r.value for r in Role)})") from exc
        problem = check_password(password, (name,))
        if problem:
            raise ServiceError(problem)
        pw_hash = hash_password(password)
        now = self.svc.now()
        u = schema.users
        with self.svc.engine.begin() as conn:
            if conn.execute(select(u.c.id).where(u.c.name == name)).first() is not None:
                raise ServiceError(f"a user named {name!r} exists")
            group_ids = [self.ensure_group(gname, conn, actor.actor) for gname in (groups or ["default"])]
            for gid in group_ids:
                if not actor.sees(gid):
                    raise Denied("you can only add users to your own groups")
            uid = new_id(
                conn.execute(
                    insert(u).values(
                        name=name,
                        role=role_.value,
                        password_hash=pw_hash,
                        disabled=False,
                        failed_logins=0,
                        created_at=now,
                        password_changed_at=now,
                    )
                )
            )
            conn.execute(insert(schema.memberships), [{"user_id": uid, "group_id": g} for g in group_ids])
            enrolment = self._enrol(conn, uid, name, totp=role_ in MFA_REQUIRED)
            self.svc.audit.append(
                "user.create",
                "success",
                actor.actor,
                f"user:{name}",
                detail={
                    "role": role_.value,
                    "groups": sorted(groups or ["default"]),
                    "totp": enrolment.otpauth_uri is not None,
                },
                remote=actor.remote,
                conn=conn,
            )
        return enrolment

    def _enrol(self, conn: Connection, uid: int, name: str, *, totp: bool) -> Enrolment:
        """New recovery codes (replacing old ones) and, with ``totp``, a new TOTP secret."""
        uri = None
        if totp:
            secret = mfa.new_totp_secret()
            conn.execute(
                update(schema.users)
                .where(schema.users.c.id == uid)
                .values(
                    totp_secret=self.svc.keys.encrypt(secret.encode(), f"totp:{uid}"), totp_last_step=None
                )
            )
            uri = mfa.provisioning_uri(secret, name)
        codes = mfa.new_recovery_codes()
        rc = schema.recovery_codes
        conn.execute(delete(rc).where(rc.c.user_id == uid))
        conn.execute(
            insert(rc),
            [{"user_id": uid, "code_hash": mfa.recovery_hash(self.svc.keys.recovery, c)} for c in codes],
        )
        return Enrolment(uid, uri, tuple(codes))

    def _user(self, conn: Connection, name: str) -> Row[Any]:
        u = schema.users
        row = conn.execute(select(u).where(u.c.name == name)).first()
        if row is None:
            raise NotFound(f"no user named {name!r}")
        return row

    def user_id(self, name: str) -> int:
        with self.svc.engine.connect() as conn:
            return int(self._user(conn, name).id)

    def list_users(self, actor: Principal) -> list[UserInfo]:
        u, m, g, w = schema.users, schema.memberships, schema.groups, schema.webauthn_credentials
        with self.svc.engine.connect() as conn:
            members: dict[int, list[tuple[int, str]]] = {}
            for uid, gid, gname in conn.execute(
                select(m.c.user_id, g.c.id, g.c.name).join(g, g.c.id == m.c.group_id)
            ):
                members.setdefault(uid, []).append((gid, gname))
            keys: dict[int, int] = dict(
                conn.execute(select(w.c.user_id, func.count()).group_by(w.c.user_id)).all()
            )
            rows = conn.execute(select(u).order_by(u.c.name)).all()
        out = []
        for r in rows:
            mine = members.get(r.id, [])
            if not actor.all_groups and not any(actor.sees(gid) for gid, _ in mine):
                continue
            out.append(
                UserInfo(
                    r.id,
                    r.name,
                    Role(r.role),
                    r.disabled,
                    r.totp_secret is not None,
                    int(keys.get(r.id, 0)),
                    tuple(sorted(n for _, n in mine)),
                    utc(r.locked_until),
                    utc(r.last_login_at),
                    utc(r.created_at) or self.svc.now(),
                )
            )
        return out

    def _visible_user(self, conn: Connection, name: str, actor: Principal) -> Row[Any]:
        row = self._user(conn, name)
        if not actor.all_groups and not any(actor.sees(g) for g in self._group_ids(conn, row.id)):
            raise NotFound(f"no user named {name!r}")
        return row

    def _managed_user(self, conn: Connection, name: str, actor: Principal) -> Row[Any]:
        """A user ``actor`` may act on: one all of whose groups it sees (or itself). Sharing one
        group is not enough — a token for the user carries all its groups, a reset of its MFA hands
        its second factor over —, and a user outside them is not named (NotFound, as unseen ones)."""
        row = self._visible_user(conn, name, actor)
        if actor.all_groups or row.id == actor.user_id:
            return row
        if not all(actor.sees(g) for g in self._group_ids(conn, row.id)):
            raise NotFound(f"no user named {name!r}")
        return row

    @_changes_accounts
    def disable_user(self, name: str, actor: Principal) -> None:
        with self.svc.engine.begin() as conn:
            row = self._managed_user(conn, name, actor)
            conn.execute(update(schema.users).where(schema.users.c.id == row.id).values(disabled=True))
            self._revoke_all(conn, row.id)
            self.svc.audit.append(
                "user.disable", "success", actor.actor, f"user:{name}", remote=actor.remote, conn=conn
            )

    @_changes_accounts
    def reset_mfa(self, name: str, actor: Principal) -> Enrolment:
        """New TOTP secret (for roles that need one, or a user who had one) and recovery codes; WebAuthn
        credentials removed, sessions revoked. The URI and codes are shown once."""
        with self.svc.engine.begin() as conn:
            row = self._managed_user(conn, name, actor)
            totp = Role(row.role) in MFA_REQUIRED or row.totp_secret is not None
            conn.execute(
                update(schema.users)
                .where(schema.users.c.id == row.id)
                .values(totp_secret=None, totp_last_step=None, failed_logins=0, locked_until=None)
            )
            wc = schema.webauthn_credentials
            conn.execute(delete(wc).where(wc.c.user_id == row.id))
            enrolment = self._enrol(conn, row.id, name, totp=totp)
            self._revoke_all(conn, row.id)
            self.svc.audit.append(
                "mfa.reset", "success", actor.actor, f"user:{name}", remote=actor.remote, conn=conn
            )
        return enrolment

    @_changes_accounts
    def change_password(self, user_id: int, current: str, new: str, actor: Principal) -> None:
        """Change one's password: the current one is required, the new one must pass the policy."""
        refused: str | None = None
        with self.svc.engine.begin() as conn:
            row = conn.execute(
                select(schema.users).where(schema.users.c.id == user_id).with_for_update()
            ).one()
            locked = utc(row.locked_until)
            if locked is not None and locked > self.svc.now():
                verify_password(None, current)  # the same time and answer as a wrong password
                refused = "account locked"
            elif not verify_password(row.password_hash, current):
                self._fail(conn, row, "password change", actor.remote)  # a guess counts, as at sign-in
                refused = "wrong current password"
            if refused is not None:
                self.svc.audit.append(
                    "user.password",
                    "failure",
                    actor.actor,
                    f"user:{row.name}",
                    detail={"reason": refused},
                    remote=actor.remote,
                    conn=conn,
                )
        if refused is not None:  # raised after the commit: the count and the audit entry stay
            raise ServiceError("the current password is wrong")
        with self.svc.engine.begin() as conn:
            problem = check_password(new, (row.name,))
            if problem:
                raise ServiceError(problem)
            conn.execute(
                update(schema.users)
                .where(schema.users.c.id == user_id)
                .values(password_hash=hash_password(new), password_changed_at=self.svc.now())
            )
            # Whoever else holds a session of this account (the reason to change a password) is out.
            s = schema.sessions
            ended = int(
                conn.execute(
                    update(s)
                    .where(s.c.user_id == user_id, s.c.revoked_at.is_(None),
                           s.c.id != (actor.session_id or ""))
                    .values(revoked_at=self.svc.now())
                ).rowcount
            )
            self.svc.audit.append(
                "user.password", "success", actor.actor, f"user:{row.name}",
                detail={"other_sessions_ended": ended}, remote=actor.remote, conn=conn,
            )

    def enrol_totp(self, user_id: int, actor: Principal) -> Enrolment:
        """(Re-)enrol TOTP for oneself — only within the re-authentication window (the web layer checks)."""
        with self.svc.engine.begin() as conn:
            row = conn.execute(select(schema.users).where(schema.users.c.id == user_id)).one()
            enrolment = self._enrol(conn, user_id, row.name, totp=True)
            self.svc.audit.append(
                "mfa.enrol",
                "success",
                actor.actor,
                f"user:{row.name}",
                detail={"factor": "totp"},
                remote=actor.remote,
                conn=conn,
            )
        return enrolment

    def new_recovery_codes(self, user_id: int, actor: Principal) -> tuple[str, ...]:
        with self.svc.engine.begin() as conn:
            row = conn.execute(select(schema.users).where(schema.users.c.id == user_id)).one()
            enrolment = self._enrol(conn, user_id, row.name, totp=False)
            self.svc.audit.append(
                "mfa.recovery_codes",
                "success",
                actor.actor,
                f"user:{row.name}",
                remote=actor.remote,
                conn=conn,
            )
        return enrolment.recovery_codes

    # --- signing in ---------------------------------------------------------------------------

    def _fail(self, conn: Connection, row: Row[Any], what: str, remote: str | None) -> None:
        """Count a failed attempt; at every ``lockout_threshold`` failures lock the account, for twice
        as long each time (capped at a day)."""
        cfg = self.svc.config
        u = schema.users
        # Counted in the database (every worker process adds to the same count, none is lost).
        n = int(
            conn.execute(
                update(u)
                .where(u.c.id == row.id)
                .values(failed_logins=u.c.failed_logins + 1)
                .returning(u.c.failed_logins)
            ).scalar_one()
        )
        if n % cfg.lockout_threshold == 0:
            factor = 2 ** min(n // cfg.lockout_threshold - 1, 7)  # 15 min … 32 h, capped at a day
            until = self.svc.now() + min(cfg.lockout_duration * factor, timedelta(days=1))
            conn.execute(update(u).where(u.c.id == row.id).values(locked_until=until))
            self.svc.audit.append(
                "login.lockout",
                "failure",
                f"user:{row.name}",
                f"user:{row.name}",
                detail={"failures": n, "until": until.isoformat()},
                remote=remote,
                conn=conn,
            )

    def _password_login_failed(
        self, conn: Connection, actor: str, name: str, reason: str, remote: str | None
    ) -> None:
        self.svc.audit.append(
            "login.password", "failure", actor, f"user:{name}", detail={"reason": reason}, remote=remote,
            conn=conn,
        )

    def login_password(
        self, name: str, password: str, remote: str | None, user_agent: str | None
    ) -> LoginResult:
        generic = LoginResult(False, message="Wrong user name or password, or the account is locked.")
        name = name.strip()[:100]
        now = self.svc.now()
        u = schema.users
        with self.svc.engine.begin() as conn:
            # the account's row locked first (before the audit log's head): concurrent attempts on one
            # account take their turns, and always take the two locks in the same order
            row = (
                conn.execute(select(u).where(u.c.name == name).with_for_update()).first()
                if NAME_RE.fullmatch(name)
                else None
            )
            if row is None:
                verify_password(None, password)  # the same time as a known account
                self._password_login_failed(conn, f"anonymous:{name}", name, "unknown user", remote)
                return generic
            locked = utc(row.locked_until)
            if row.disabled or (locked is not None and locked > now):
                verify_password(None, password)
                reason = "disabled" if row.disabled else "locked"
                self._password_login_failed(conn, f"user:{name}", name, reason, remote)
                return generic
            if not verify_password(row.password_hash, password):
                self._fail(conn, row, "password", remote)
                self._password_login_failed(conn, f"user:{name}", name, "wrong password", remote)
                return generic
            if needs_rehash(row.password_hash):
                conn.execute(update(u).where(u.c.id == row.id).values(password_hash=hash_password(password)))
            has_webauthn = (
                conn.execute(
                    select(func.count())
                    .select_from(schema.webauthn_credentials)
                    .where(schema.webauthn_credentials.c.user_id == row.id)
                ).scalar_one()
                > 0
            )
            second = row.totp_secret is not None or has_webauthn
            if Role(row.role) in MFA_REQUIRED and not second:
                self._password_login_failed(conn, f"user:{name}", name, "MFA required but not enrolled",
                                            remote)
                return LoginResult(
                    False,
                    message="This account must use a second factor and has none: "
                    "ask an administrator to reset its MFA.",
                )
            stage = "mfa" if second else "full"
            token = self._new_session(conn, row.id, stage, remote, user_agent)
            self.svc.audit.append(
                "login.password",
                "success",
                f"user:{name}",
                f"user:{name}",
                detail={"next": stage},
                remote=remote,
                conn=conn,
            )
            if stage == "full":
                self._signed_in(conn, row.id)
        return LoginResult(True, token, stage)

    def _signed_in(self, conn: Connection, user_id: int) -> None:
        conn.execute(
            update(schema.users)
            .where(schema.users.c.id == user_id)
            .values(failed_logins=0, locked_until=None, last_login_at=self.svc.now())
        )

    def _new_session(
        self,
        conn: Connection,
        user_id: int,
        stage: str,
        remote: str | None,
        user_agent: str | None,
        created: datetime | None = None,
    ) -> str:
        cfg, now = self.svc.config, self.svc.now()
        token = secrets.token_urlsafe(32)  # 256 bits
        start = created or now
        expires = start + cfg.absolute_timeout if stage == "full" else now + cfg.mfa_timeout
        conn.execute(
            insert(schema.sessions).values(
                id=token_hash(token),
                user_id=user_id,
                created_at=start,
                last_seen_at=now,
                expires_at=expires,
                stage=stage,
                csrf_token=secrets.token_urlsafe(32),
                reauth_at=now if stage == "full" else None,
                remote=(remote or "")[:100] or None,
                user_agent=(user_agent or "")[:300] or None,
            )
        )
        return token

    def second_factor(self, token: str, code: str, remote: str | None, user_agent: str | None) -> LoginResult:
        """Check a TOTP or recovery code for a session waiting for its second factor; on success the
        session is replaced by a new, full one (rotation)."""
        s, u = schema.sessions, schema.users
        now = self.svc.now()
        with self.svc.engine.begin() as conn:
            sess = conn.execute(select(s).where(s.c.id == token_hash(token))).first()
            if (
                sess is None
                or sess.stage != "mfa"
                or sess.revoked_at is not None
                or utc(sess.expires_at) <= now
            ):
                return LoginResult(False, message="The sign-in has expired: start again.")
            row = conn.execute(select(u).where(u.c.id == sess.user_id).with_for_update()).one()
            locked = utc(row.locked_until)
            if row.disabled or (locked is not None and locked > now):
                conn.execute(delete(s).where(s.c.id == sess.id))
                return LoginResult(False, message="Wrong user name or password, or the account is locked.")
            factor = self._check_code(conn, row, code, now)
            if factor is None:
                self._fail(conn, row, "mfa", remote)
                replay = self._is_replay(row, code, now)
                self.svc.audit.append(
                    "mfa.verify",
                    "failure",
                    f"user:{row.name}",
                    f"user:{row.name}",
                    detail={"reason": "replayed code" if replay else "wrong code"},
                    remote=remote,
                    conn=conn,
                )
                return LoginResult(False, message="That code was not accepted (each code works once).")
            conn.execute(delete(s).where(s.c.id == sess.id))
            new = self._new_session(conn, row.id, "full", remote, user_agent)
            self._signed_in(conn, row.id)
            self.svc.audit.append(
                "mfa.verify",
                "success",
                f"user:{row.name}",
                f"user:{row.name}",
                detail={"factor": factor},
                remote=remote,
                conn=conn,
            )
        return LoginResult(True, new, "full")

    def webauthn_passed(self, token: str, remote: str | None, user_agent: str | None) -> LoginResult:
        """The pending session's user proved a WebAuthn credential (vmsec.web.webauthn checked it)."""
        s = schema.sessions
        with self.svc.engine.begin() as conn:
            sess = conn.execute(select(s).where(s.c.id == token_hash(token))).first()
            if sess is None or sess.stage != "mfa" or utc(sess.expires_at) <= self.svc.now():
                return LoginResult(False, message="The sign-in has expired: start again.")
            conn.execute(delete(s).where(s.c.id == sess.id))
            new = self._new_session(conn, sess.user_id, "full", remote, user_agent)
            self._signed_in(conn, sess.user_id)
            name = conn.execute(select(schema.users.c.name).where(schema.users.c.id == sess.user_id)).scalar()
            self.svc.audit.append(
                "mfa.verify",
                "success",
                f"user:{name}",
                f"user:{name}",
                detail={"factor": "webauthn"},
                remote=remote,
                conn=conn,
            )
        return LoginResult(True, new, "full")

    def _check_code(self, conn: Connection, row: Row[Any], code: str, now: datetime) -> str | None:
        u = schema.users
        if row.totp_secret is not None:
            secret = self.svc.keys.decrypt(row.totp_secret, f"totp:{row.id}").decode()
            step = mfa.matching_step(secret, code, now, row.totp_last_step)
            if step is not None:
                # Conditional: two requests with the same code cannot both win.
                won = conn.execute(
                    update(u)
                    .where(u.c.id == row.id, or_(u.c.totp_last_step.is_(None), u.c.totp_last_step < step))
                    .values(totp_last_step=step)
                )
                return "totp" if won.rowcount == 1 else None
        if mfa.looks_like_recovery_code(code):
            rc = schema.recovery_codes
            digest = mfa.recovery_hash(self.svc.keys.recovery, code)
            used = conn.execute(
                update(rc)
                .where(rc.c.user_id == row.id, rc.c.code_hash == digest, rc.c.used_at.is_(None))
                .values(used_at=now)
            )
            if used.rowcount == 1:
                return "recovery-code"
        return None

    def _is_replay(self, row: Row[Any], code: str, now: datetime) -> bool:
        if row.totp_secret is None:
            return False
        secret = self.svc.keys.decrypt(row.totp_secret, f"totp:{row.id}").decode()
        return mfa.matching_step(secret, code, now, None) is not None

    def reauthenticate(self, info: SessionInfo, token: str, password: str, code: str | None) -> str | None:
        """Confirm the user's password (and second factor, when they have one) again. On success the
        session is replaced by a new one (same absolute timeout) whose re-authentication time allows MFA
        changes for a few minutes; its cookie value is returned. None: refused."""
        u, s = schema.users, schema.sessions
        now = self.svc.now()
        with self.svc.engine.begin() as conn:
            row = conn.execute(select(u).where(u.c.id == info.user_id).with_for_update()).one()
            locked = utc(row.locked_until)
            if locked is not None and locked > now:  # refused while locked, as at sign-in
                verify_password(None, password)
                self.svc.audit.append(
                    "login.reauth", "failure", info.principal.actor, f"user:{row.name}",
                    detail={"reason": "locked"}, remote=info.principal.remote, conn=conn,
                )
                return None
            ok = verify_password(row.password_hash, password)
            if ok and row.totp_secret is not None:
                ok = self._check_code(conn, row, code or "", now) is not None
            if not ok:
                self._fail(conn, row, "reauth", info.principal.remote)
                self.svc.audit.append(
                    "login.reauth",
                    "failure",
                    info.principal.actor,
                    f"user:{row.name}",
                    remote=info.principal.remote,
                    conn=conn,
                )
                return None
            old = conn.execute(select(s).where(s.c.id == token_hash(token))).one()
            conn.execute(delete(s).where(s.c.id == old.id))
            new = self._new_session(
                conn, row.id, "full", old.remote, old.user_agent, created=utc(old.created_at)
            )
            self.svc.audit.append(
                "login.reauth",
                "success",
                info.principal.actor,
                f"user:{row.name}",
                remote=info.principal.remote,
                conn=conn,
            )
        return new

    # --- sessions -----------------------------------------------------------------------------

    def session(self, token: str | None, remote: str | None = None) -> SessionInfo | None:
        """The live session for a cookie value, or None (unknown, revoked, idle or past its absolute
        timeout, or its user disabled). Touches ``last_seen_at``."""
        if not token or len(token) > 200:
            return None
        s, u = schema.sessions, schema.users
        now, cfg = self.svc.now(), self.svc.config
        with self.svc.engine.connect() as conn:
            row = conn.execute(
                select(s, u.c.name, u.c.role, u.c.disabled)
                .join(u, u.c.id == s.c.user_id)
                .where(s.c.id == token_hash(token))
            ).first()
            if row is None or row.revoked_at is not None or row.disabled:
                return None
            seen = utc(row.last_seen_at) or now
            if utc(row.expires_at) <= now or (row.stage == "full" and now - seen > cfg.idle_timeout):
                return None
            groups = self._group_ids(conn, row.user_id)
            if now - seen > _TOUCH_EVERY:
                conn.execute(update(s).where(s.c.id == row.id).values(last_seen_at=now))
                conn.commit()
        principal = Principal(
            user_id=row.user_id,
            name=row.name,
            role=Role(row.role),
            groups=groups,
            via="session",
            session_id=row.id,
            remote=remote,
        )
        return SessionInfo(
            principal, row.stage, row.csrf_token, utc(row.created_at) or now, utc(row.reauth_at), row.user_id
        )

    @_changes_accounts
    def logout(self, token: str, remote: str | None) -> None:
        s = schema.sessions
        with self.svc.engine.begin() as conn:
            row = conn.execute(select(s.c.id, s.c.user_id).where(s.c.id == token_hash(token))).first()
            if row is None:
                return
            conn.execute(update(s).where(s.c.id == row.id).values(revoked_at=self.svc.now()))
            name = conn.execute(select(schema.users.c.name).where(schema.users.c.id == row.user_id)).scalar()
            self.svc.audit.append(
                "logout", "success", f"user:{name}", f"user:{name}", remote=remote, conn=conn
            )

    def _revoke_all(self, conn: Connection, user_id: int) -> int:
        s = schema.sessions
        return int(
            conn.execute(
                update(s)
                .where(s.c.user_id == user_id, s.c.revoked_at.is_(None))
                .values(revoked_at=self.svc.now())
            ).rowcount
        )

    @_changes_accounts
    def revoke_sessions(self, name: str, actor: Principal) -> int:
        with self.svc.engine.begin() as conn:
            row = self._managed_user(conn, name, actor)
            n = self._revoke_all(conn, row.id)
            self.svc.audit.append(
                "session.revoke",
                "success",
                actor.actor,
                f"user:{name}",
                detail={"sessions": n},
                remote=actor.remote,
                conn=conn,
            )
        return n

    def own_sessions(self, user_id: int, current: str) -> list[dict[str, Any]]:
        """One's live sessions, the current one marked."""
        s = schema.sessions
        now = self.svc.now()
        with self.svc.engine.connect() as conn:
            rows = conn.execute(
                select(s)
                .where(s.c.user_id == user_id, s.c.revoked_at.is_(None), s.c.expires_at > now)
                .order_by(s.c.created_at.desc())
            ).all()
        return [
            {
                "created_at": utc(r.created_at),
                "last_seen_at": utc(r.last_seen_at),
                "remote": r.remote,
                "user_agent": r.user_agent,
                "current": r.id == token_hash(current),
            }
            for r in rows
        ]

    @_changes_accounts
    def revoke_other_sessions(self, user_id: int, current: str, actor: Principal) -> int:
        s = schema.sessions
        with self.svc.engine.begin() as conn:
            n = int(
                conn.execute(
                    update(s)
                    .where(s.c.user_id == user_id, s.c.revoked_at.is_(None), s.c.id != token_hash(current))
                    .values(revoked_at=self.svc.now())
                ).rowcount
            )
            self.svc.audit.append(
                "session.revoke",
                "success",
                actor.actor,
                f"user:{actor.name}",
                detail={"sessions": n, "own": True},
                remote=actor.remote,
                conn=conn,
            )
        return n

    def list_sessions(self, actor: Principal) -> list[dict[str, Any]]:
        s, u = schema.sessions, schema.users
        now = self.svc.now()
        visible = {i.name for i in self.list_users(actor)}
        with self.svc.engine.connect() as conn:
            rows = conn.execute(
                select(s.c.created_at, s.c.last_seen_at, s.c.expires_at, s.c.stage, s.c.remote, u.c.name)
                .join(u, u.c.id == s.c.user_id)
                .where(s.c.revoked_at.is_(None), s.c.expires_at > now)
                .order_by(s.c.created_at.desc())
                .limit(500)
            ).all()
        return [
            {
                "user": r.name,
                "created_at": utc(r.created_at),
                "last_seen_at": utc(r.last_seen_at),
                "expires_at": utc(r.expires_at),
                "stage": r.stage,
                "remote": r.remote,
            }
            for r in rows
            if r.name in visible
        ]

    # --- API tokens ---------------------------------------------------------------------------

    def create_token(
        self, user: str, scope: str, days: int | None, name: str, actor: Principal
    ) -> tuple[str, TokenInfo]:
        """A new token for ``user``: 32 random bytes, returned once; only its SHA-256 is kept."""
        cfg = self.svc.config
        if scope not in SCOPES:
            raise ServiceError(f"unknown scope {scope!r} (read or write)")
        days = cfg.token_default_days if days is None else days
        if not 1 <= days <= cfg.token_max_days:
            raise ServiceError(f"a token expires after 1 to {cfg.token_max_days} days")
        name = text_input(name, "the token's name", 100) or "token"
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.svc.now()
        t = schema.api_tokens
        with self.svc.engine.begin() as conn:
            row = self._managed_user(conn, user, actor)
            if row.disabled:
                raise ServiceError(f"user {user!r} is disabled")
            tid = new_id(
                conn.execute(
                    insert(t).values(
                        user_id=row.id,
                        name=name,
                        token_hash=token_hash(token),
                        prefix=token[:12],
                        scope=scope,
                        created_at=now,
                        expires_at=now + timedelta(days=days),
                    )
                )
            )
            self.svc.audit.append(
                "token.create",
                "success",
                actor.actor,
                f"token:{tid}",
                detail={"user": user, "scope": scope, "days": days, "name": name},
                remote=actor.remote,
                conn=conn,
            )
        return token, TokenInfo(
            tid, user, name, token[:12], scope, now, now + timedelta(days=days), None, None
        )

    def list_tokens(self, actor: Principal, user: str | None = None) -> list[TokenInfo]:
        t, u = schema.api_tokens, schema.users
        visible = {i.name for i in self.list_users(actor)}
        query = select(t, u.c.name.label("user")).join(u, u.c.id == t.c.user_id).order_by(t.c.id)
        if user is not None:
            query = query.where(u.c.name == user)
        with self.svc.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            TokenInfo(
                r.id,
                r.user,
                r.name,
                r.prefix,
                r.scope,
                utc(r.created_at) or self.svc.now(),
                utc(r.expires_at) or self.svc.now(),
                utc(r.revoked_at),
                utc(r.last_used_at),
            )
            for r in rows
            if r.user in visible
        ]

    @_changes_accounts
    def revoke_token(self, token_id: int, actor: Principal) -> None:
        t, u = schema.api_tokens, schema.users
        with self.svc.engine.begin() as conn:
            row = conn.execute(
                select(t.c.id, u.c.name).join(u, u.c.id == t.c.user_id).where(t.c.id == token_id)
            ).first()
            if row is None:
                raise NotFound(f"no token {token_id}")
            self._visible_user(conn, row.name, actor)
            conn.execute(
                update(t)
                .where(t.c.id == token_id, t.c.revoked_at.is_(None))
                .values(revoked_at=self.svc.now())
            )
            self.svc.audit.append(
                "token.revoke",
                "success",
                actor.actor,
                f"token:{token_id}",
                detail={"user": row.name},
                remote=actor.remote,
                conn=conn,
            )

    def cached_principal(self, token: str, remote: str | None) -> Principal | None:
        """The principal of a token verified within the last ``auth_cache_ttl`` seconds and not expired
        since, else None (then :meth:`token_principal` asks the database). No I/O."""
        if len(token) > 200:
            return None
        hit = self.tokens.get(token_hash(token))
        if hit is None or hit[1] <= self.svc.now():
            return None
        principal = hit[0]
        return principal if principal.remote == remote else replace(principal, remote=remote)

    def token_principal(self, token: str, remote: str | None, *, audit: bool = True) -> Principal | None:
        """The principal of a valid token (known, not revoked, not expired, user enabled), else None —
        the failure is audited (unless ``audit`` is false: the caller then hands the request to a path
        that asks again and audits)."""
        cached = self.cached_principal(token, remote)
        if cached is not None:
            return cached
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            if audit:
                self._token_rejected(token, "malformed", remote)
            return None
        t, u, m = schema.api_tokens, schema.users, schema.memberships
        now = self.svc.now()
        digest = token_hash(token)
        stamp, generation = time.monotonic(), self.tokens.generation
        with self.svc.reader.connect() as conn:
            # one round trip: the token, its user and the user's groups (a row per group)
            rows = conn.execute(
                select(
                    m.c.group_id,
                    t.c.id,
                    t.c.user_id,
                    t.c.scope,
                    t.c.expires_at,
                    t.c.revoked_at,
                    t.c.last_used_at,
                    t.c.token_hash,
                    u.c.name,
                    u.c.role,
                    u.c.disabled,
                )
                .join(u, u.c.id == t.c.user_id)
                .outerjoin(m, m.c.user_id == u.c.id)
                .where(t.c.token_hash == digest)
            ).all()
            row = rows[0] if rows else None
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                if audit:
                    self._token_rejected(token, "unknown", remote)
                return None
            expires = utc(row.expires_at) or now
            if row.revoked_at is not None:
                reason = "revoked"
            elif expires <= now:
                reason = "expired"
            elif row.disabled:
                reason = "user disabled"
            else:
                reason = ""
            if reason:
                if audit:
                    self._token_rejected(token, reason, remote, getattr(row, "id", None))
                return None
            groups = frozenset(r.group_id for r in rows if r.group_id is not None)
            used = utc(row.last_used_at)
            if used is None or now - used > _TOUCH_EVERY:
                conn.execute(update(t).where(t.c.id == row.id).values(last_used_at=now))
        principal = Principal(
            user_id=row.user_id,
            name=row.name,
            role=Role(row.role),
            groups=groups,
            via="token",
            scope=row.scope,
            token_id=row.id,
            remote=remote,
        )
        self.tokens.put(digest, principal, expires, stamp, generation)
        return principal

    def _token_rejected(
        self, token: str, reason: str, remote: str | None, token_id: int | None = None
    ) -> None:
        self.svc.audit.append(
            "token.auth",
            "failure",
            "anonymous",
            f"token:{token_id}" if token_id else f"token:{token[:12]}…",
            detail={"reason": reason},
            remote=remote,
        )

    # --- WebAuthn credentials --------------------------------------------------------------------

    def webauthn_credentials(self, user_id: int) -> list[Row[Any]]:
        w = schema.webauthn_credentials
        with self.svc.engine.connect() as conn:
            return list(conn.execute(select(w).where(w.c.user_id == user_id).order_by(w.c.id)).all())

    def add_webauthn(
        self, user_id: int, credential_id: str, public_key: str, sign_count: int, name: str, actor: Principal
    ) -> None:
        with self.svc.engine.begin() as conn:
            conn.execute(
                insert(schema.webauthn_credentials).values(
                    user_id=user_id,
                    credential_id=credential_id,
                    public_key=public_key,
                    sign_count=sign_count,
                    name=name[:100] or "security key",
                    created_at=self.svc.now(),
                )
            )
            self.svc.audit.append(
                "mfa.enrol",
                "success",
                actor.actor,
                f"user:{actor.name}",
                detail={"factor": "webauthn", "name": name[:100]},
                remote=actor.remote,
                conn=conn,
            )

    def webauthn_used(self, credential_row_id: int, sign_count: int) -> None:
        w = schema.webauthn_credentials
        with self.svc.engine.begin() as conn:
            conn.execute(
                update(w)
                .where(w.c.id == credential_row_id)
                .values(sign_count=sign_count, last_used_at=self.svc.now())
            )

    def pending_user(self, token: str) -> int | None:
        s = schema.sessions
        with self.svc.engine.connect() as conn:
            row = conn.execute(
                select(s.c.user_id, s.c.stage, s.c.expires_at).where(
                    and_(s.c.id == token_hash(token), s.c.revoked_at.is_(None))
                )
            ).first()
        if row is None or row.stage != "mfa" or (utc(row.expires_at) or self.svc.now()) <= self.svc.now():
            return None
        return int(row.user_id)
