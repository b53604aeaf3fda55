"""A small world for the service tests: two groups (red and blue), a user of every role in red, an
admin and a viewer in blue, tokens (valid, read-only, expired, revoked, of a disabled user), scans
with findings in both groups, targets, credentials, waivers — on a real store (SQLite or PostgreSQL)
with a clock the tests move."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from vmsec.facts import Inventory
from vmsec.findings import Evidence, Finding, Severity, Status, Target, TargetKind
from vmsec.results import ScanResult
from vmsec.service import mfa
from vmsec.service.core import Principal, Service, ServiceConfig, cli_principal
from vmsec.service.keys import ServiceKeys
from vmsec.store import open_store, schema
from vmsec.store.writer import save

PASSWORD = "correct horse battery staple"
# A real domain XML for the scans the service starts (the pipeline runs on it).
XML_TARGET = (
    Path(__file__).resolve().parents[1] / "data" / "checks" / "VMS-DOM-020" / "vnc-no-address.UNKNOWN.xml"
)
ROLES = ("viewer", "auditor", "operator", "admin")
T0 = datetime(2026, 6, 1, 9, 0, 0, tzinfo=UTC)


class Clock:
    """The service's clock: tests move it (session timeouts, TOTP steps, token expiry)."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def finding(
    check: str,
    target: Target,
    subject: str,
    status: Status,
    severity: Severity,
    message: str,
    tags: tuple[str, ...] = (),
) -> Finding:
    return Finding(
        check_id=check,
        title=f"{check} holds",
        status=status,
        severity=severity,
        target=target,
        subject=subject,
        message=message,
        evidence=(Evidence(f"/etc/libvirt/qemu/{target.name}.xml", "devices/graphics[1]", "0.0.0.0"),),
        tags=tags,
        remediation=f"Fix {check}.",
    )


def fleet_scan(color: str, started: datetime, n_vms: int = 2) -> ScanResult:
    host = Target(TargetKind.HOST, f"hv-{color}")
    vms = [Target(TargetKind.DOMAIN, f"vm-{color}-{i}", host.name) for i in range(1, n_vms + 1)]
    fs = [
        finding(
            "VMS-HOST-001",
            host,
            "cpu",
            Status.FAIL,
            Severity.HIGH,
            f"hv-{color} has no IOMMU",
            ("isolation",),
        ),
        finding(
            "VMS-DMN-001",
            host,
            "libvirtd",
            Status.FAIL,
            Severity.CRITICAL,
            f"libvirtd on hv-{color} listens on TCP without authentication",
        ),
    ]
    for i, vm in enumerate(vms):
        fs.append(
            finding(
                "VMS-DOM-012",
                vm,
                "graphics[1]",
                Status.FAIL if i == 0 else Status.PASS,
                Severity.HIGH,
                f"VNC of {vm.name} on 0.0.0.0:5901 accepts unauthenticated clients",
            )
        )
        fs.append(
            finding(
                "VMS-DOM-020",
                vm,
                "graphics[1]",
                Status.UNKNOWN,
                Severity.MEDIUM,
                f"listen address of {vm.name} unknown",
            )
        )
    return ScanResult.from_inventory(
        Inventory(source=f"xml /srv/{color}"),
        tuple(fs),
        profile="multi-tenant",
        started_at=started,
        finished_at=started + timedelta(seconds=3),
        checks_run=3,
        targets=(host, *vms),
    )


@dataclass
class World:
    svc: Service
    clock: Clock
    groups: dict[str, int]
    secrets: dict[str, str]  # user -> TOTP secret
    tokens: dict[str, str] = field(default_factory=dict)  # label -> token
    ids: dict[str, Any] = field(default_factory=dict)  # object ids by name, per group
    counter: int = 0

    def principal(self, name: str) -> Principal:
        from vmsec.service.roles import Role

        uid = self.svc.accounts.user_id(name)
        users = {u.name: u for u in self.svc.accounts.list_users(cli_principal())}
        with self.svc.engine.connect() as conn:
            groups = self.svc.accounts._group_ids(conn, uid)
        return Principal(user_id=uid, name=name, role=Role(users[name].role), groups=groups, via="test")

    def code(self, user: str) -> str:
        """A fresh TOTP code (the clock moves a step first, so a code is never a replay)."""
        self.clock.advance(seconds=30)
        return mfa.current_code(self.secrets[user], self.clock())

    def wrong_code(self, user: str) -> str:
        """A six-digit code that is none of the codes accepted now (a fixed "000000" is right by chance
        once in 500,000 random secrets)."""
        secret, now = self.secrets[user], self.clock()
        near = {mfa.current_code(secret, now + timedelta(seconds=mfa.STEP * k)) for k in range(-3, 4)}
        return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in near)

    def unique(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"


def build_world(store_url: str, key_path: Path, xml_target: Path) -> World:
    clock = Clock()
    store = open_store(store_url)
    svc = Service(
        store,
        ServiceKeys.load(key_path),
        clock=clock,
        config=ServiceConfig(secure_cookies=True, login_rate=1000),
    )
    cli = cli_principal()
    groups: dict[str, int] = {}
    with svc.engine.begin() as conn:
        for color in ("red", "blue"):
            groups[color] = svc.accounts.ensure_group(color, conn)
    secrets: dict[str, str] = {}

    def add(name: str, role: str, group: str) -> None:
        e = svc.accounts.add_user(name, role, PASSWORD, [group], cli)
        if e.otpauth_uri:
            secrets[name] = urllib.parse.parse_qs(urllib.parse.urlparse(e.otpauth_uri).query)["secret"][0]

    for role in ROLES:
        add(f"{role}-red", role, "red")
    add("admin-blue", "admin", "blue")
    add("viewer-blue", "viewer", "blue")
    add("victim-red", "viewer", "red")
    add("gone-red", "viewer", "red")
    world = World(svc, clock, groups, secrets)
    for role in ROLES:
        world.tokens[role] = svc.accounts.create_token(f"{role}-red", "write", 30, "matrix", cli)[0]
        world.tokens[f"{role}-read"] = svc.accounts.create_token(f"{role}-red", "read", 30, "matrix", cli)[0]
    world.tokens["admin-blue"] = svc.accounts.create_token("admin-blue", "write", 30, "matrix", cli)[0]
    world.tokens["viewer-blue"] = svc.accounts.create_token("viewer-blue", "read", 30, "matrix", cli)[0]
    expired, info = svc.accounts.create_token("admin-red", "write", 1, "expired", cli)
    with svc.engine.begin() as conn:
        conn.execute(
            update(schema.api_tokens)
            .where(schema.api_tokens.c.id == info.id)
            .values(expires_at=T0 - timedelta(days=1))
        )
    world.tokens["expired"] = expired
    revoked, info = svc.accounts.create_token("admin-red", "write", 30, "revoked", cli)
    svc.accounts.revoke_token(info.id, cli)
    world.tokens["revoked"] = revoked
    world.tokens["disabled"] = svc.accounts.create_token("gone-red", "write", 30, "disabled", cli)[0]
    svc.accounts.disable_user("gone-red", cli)
    world.tokens["forged"] = "vmsec_" + "A" * 43
    world.tokens["malformed"] = "not-a-vmsec-token"
    # scans: two in red (so there is a diff), one in blue
    for color, offsets in (("red", (0, 1)), ("blue", (0,))):
        scans = []
        for days in offsets:
            scans.append(
                save(store, fleet_scan(color, T0 - timedelta(days=2 - days)), group_id=groups[color])
            )
        world.ids[f"scan-{color}"] = scans[-1]
        world.ids[f"scan0-{color}"] = scans[0]
    svc.queries.ensure_stats([world.ids["scan-red"], world.ids["scan0-red"], world.ids["scan-blue"]])
    for color in ("red", "blue"):
        admin = world.principal(f"admin-{color}")
        cred = svc.ops.add_credential(
            admin, group=color, name="luks", kind="luks-passphrase", secret=b"s3cret pass"
        )
        world.ids[f"credential-{color}"] = cred
        world.ids[f"target-{color}"] = svc.ops.add_target(
            admin, group=color, name=f"xml-{color}", spec={"kind": "xml", "paths": [str(xml_target)]}
        )
        world.ids[f"waiver-{color}"] = svc.ops.propose_waiver(
            admin,
            group=color,
            check="VMS-DOM-012",
            vulnerability=None,
            target=f"domain:vm-{color}-*",
            subject=None,
            reason="lab network",
            owner="ops",
            expires=(T0 + timedelta(days=30)).date(),
        )
        f, _ = svc.queries.findings(admin, _filter(scan_id=world.ids[f"scan-{color}"]), limit=1)
        world.ids[f"finding-{color}"] = f[0]["id"]
        fleet = svc.queries.fleet(admin)
        world.ids[f"host-{color}"] = fleet["hosts"][0]["id"]
        world.ids[f"vm-{color}"] = fleet["vms"][0]["id"]
        with svc.engine.begin() as conn:
            from sqlalchemy import insert

            world.ids[f"job-{color}"] = int(
                conn.execute(
                    insert(schema.scan_jobs).values(
                        group_id=groups[color],
                        target_id=world.ids[f"target-{color}"],
                        requested_by="seed",
                        requested_at=T0,
                        status="done",
                        scan_id=world.ids[f"scan-{color}"],
                    )
                ).inserted_primary_key[0]
            )
    return world


def _filter(**kw: Any) -> Any:
    from vmsec.service.queries import FindingFilter

    return FindingFilter(**kw)
