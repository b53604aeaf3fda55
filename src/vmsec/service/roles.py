"""Roles and what they may do. Every API route and dashboard page names one :class:`Permission`;
a route that names none is refused (deny by default, see :mod:`vmsec.web.security`)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # read
    AUDITOR = "auditor"  # read, export, the audit log
    OPERATOR = "operator"  # read, start scans, propose waivers
    ADMIN = "admin"  # everything: users, tokens, targets, credentials, approving waivers


class Permission(StrEnum):
    SELF = "self"  # one's own account (any signed-in user)
    READ = "read"  # scans, findings, hosts, VMs, waivers, targets of one's groups
    EXPORT = "export"  # reports of whole scans
    AUDIT = "audit"  # the audit log
    SCAN = "scan"  # start scans
    WAIVER_PROPOSE = "waiver.propose"
    WAIVER_APPROVE = "waiver.approve"
    ADMIN = "admin"  # users, tokens, groups, scan targets and credentials


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.SELF, Permission.READ}),
    Role.AUDITOR: frozenset({Permission.SELF, Permission.READ, Permission.EXPORT, Permission.AUDIT}),
    Role.OPERATOR: frozenset({Permission.SELF, Permission.READ, Permission.SCAN, Permission.WAIVER_PROPOSE}),
    Role.ADMIN: frozenset(Permission),
}

# Roles that must sign in with a second factor (TOTP, or a WebAuthn authenticator).
MFA_REQUIRED = frozenset({Role.OPERATOR, Role.ADMIN})

# What a token of scope "read" may never be used for (and the API lets it make GET requests only);
# a "write" token may do whatever its user's role allows.
WRITE_ONLY = frozenset({Permission.SCAN, Permission.WAIVER_PROPOSE, Permission.WAIVER_APPROVE})


def allowed(role: Role, permission: Permission, scope: str | None = None) -> bool:
    """Whether ``role`` (through a token of ``scope``, if any) has ``permission``."""
    if permission not in ROLE_PERMISSIONS[role]:
        return False
    return scope != "read" or permission not in WRITE_ONLY
