"""The service (issue 13): groups and memberships, users, sessions, API tokens, recovery codes and
WebAuthn credentials, the hash-chained audit log with its head and checkpoints, waivers with
approval, scan targets (scheduled or on demand), encrypted scan credentials and scan jobs,
per-target statistics; every scan gets a group (1, "default", for scans stored before); indexes for
the finding list at 1M rows.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    groups = op.create_table(
        "groups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        _ts("created_at"),
    )
    op.bulk_insert(
        groups,
        [
            {
                "id": 1,
                "name": "default",
                "description": "scans stored by the CLI",
                "created_at": datetime.now(UTC),
            }
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('groups', 'id'), 1)")
    with op.batch_alter_table("scans") as batch:
        batch.add_column(sa.Column("group_id", sa.Integer, nullable=False, server_default="1"))
        batch.create_foreign_key("fk_scans_group_id_groups", "groups", ["group_id"], ["id"])
        batch.create_index("ix_scans_group", ["group_id", "id"])
        batch.create_index("ix_scans_started", ["started_at"])
    op.drop_index("ix_findings_target", "findings")
    op.create_index("ix_findings_target_id", "findings", ["target_id", "id"])
    op.create_index("ix_findings_status_severity_id", "findings", ["status", "severity", "id"])
    op.create_index("ix_findings_severity_id", "findings", ["severity", "id"])
    op.create_index("ix_findings_check_id", "findings", ["check_id", "id"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("totp_secret", sa.Text, nullable=True),
        sa.Column("totp_last_step", sa.Integer, nullable=True),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        _ts("locked_until", True),
        _ts("created_at"),
        _ts("password_changed_at"),
        _ts("last_login_at", True),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        _ts("used_at", True),
    )
    op.create_index("ix_recovery_codes_user", "recovery_codes", ["user_id"])
    op.create_table(
        "webauthn_credentials",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("credential_id", sa.String(1400), nullable=False, unique=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("sign_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("name", sa.String(100), nullable=False),
        _ts("created_at"),
        _ts("last_used_at", True),
    )
    op.create_index("ix_webauthn_credentials_user", "webauthn_credentials", ["user_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        _ts("created_at"),
        _ts("last_seen_at"),
        _ts("expires_at"),
        sa.Column("stage", sa.String(10), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        _ts("reauth_at", True),
        _ts("revoked_at", True),
        sa.Column("remote", sa.String(100), nullable=True),
        sa.Column("user_agent", sa.String(300), nullable=True),
    )
    op.create_index("ix_sessions_user", "sessions", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("revoked_at", True),
        _ts("last_used_at", True),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        _ts("ts"),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("group_id", sa.Integer, nullable=True),
        sa.Column("remote", sa.String(100), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_group", "audit_log", ["group_id", "id"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])
    op.create_table(
        "audit_checkpoints",
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=False),
        _ts("ts"),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )
    op.create_table(
        "waivers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("check_id", sa.String(200), nullable=True),
        sa.Column("vulnerability", sa.String(200), nullable=True),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(500), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expires", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("proposed_by", sa.String(100), nullable=False),
        _ts("proposed_at"),
        sa.Column("decided_by", sa.String(100), nullable=True),
        _ts("decided_at", True),
    )
    op.create_index("ix_waivers_group_status", "waivers", ["group_id", "status"])
    op.create_table(
        "scan_credentials",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("group_id", "name", name="uq_scan_credentials_group_name"),
    )
    op.create_table(
        "scan_targets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column(
            "credential_id",
            sa.Integer,
            sa.ForeignKey("scan_credentials.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("every_hours", sa.Integer, nullable=True),
        _ts("next_run_at", True),
        sa.Column("created_by", sa.String(100), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("group_id", "name", name="uq_scan_targets_group_name"),
    )
    op.create_table(
        "scan_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "target_id", sa.Integer, sa.ForeignKey("scan_targets.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("requested_by", sa.String(100), nullable=False),
        _ts("requested_at"),
        _ts("started_at", True),
        _ts("finished_at", True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("scans.id", ondelete="SET NULL"), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_scan_jobs_group", "scan_jobs", ["group_id", "id"])
    op.create_table(
        "target_stats",
        sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("scans.id", ondelete="CASCADE"), nullable=False),
        *(
            sa.Column(name, sa.Integer, nullable=False)
            for name in (
                "fail_critical",
                "fail_high",
                "fail_medium",
                "fail_low",
                "fail_info",
                "unknown",
                "error",
                "waived",
                "passed",
            )
        ),
    )
    op.create_index("ix_target_stats_scan", "target_stats", ["scan_id"])
    op.create_table(
        "scan_stats",
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True),
        _ts("computed_at"),
    )


def downgrade() -> None:
    for table in (
        "scan_stats",
        "target_stats",
        "scan_jobs",
        "scan_targets",
        "scan_credentials",
        "waivers",
        "audit_checkpoints",
        "audit_head",
        "audit_log",
        "api_tokens",
        "sessions",
        "webauthn_credentials",
        "recovery_codes",
        "memberships",
        "users",
    ):
        op.drop_table(table)
    for index in (
        "ix_findings_check_id",
        "ix_findings_severity_id",
        "ix_findings_status_severity_id",
        "ix_findings_target_id",
    ):
        op.drop_index(index, "findings")
    op.create_index("ix_findings_target", "findings", ["target_id"])
    with op.batch_alter_table("scans") as batch:
        batch.drop_index("ix_scans_started")
        batch.drop_index("ix_scans_group")
        batch.drop_constraint("fk_scans_group_id_groups", type_="foreignkey")
        batch.drop_column("group_id")
    op.drop_table("groups")
