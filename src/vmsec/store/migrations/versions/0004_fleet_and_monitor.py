"""Fleet runs (targets, attempts, schedules) and the monitor (events, alerts, each domain's last
audit).

Revision ID: 0004
Revises: 0003

Written beside revision 0003 (the web service's tables) on another branch, and re-chained after it
when the two met. The two touch different tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token", sa.String(36), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("schedule", sa.String(200), nullable=True),
        sa.Column("group_name", sa.String(200), nullable=True),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("targets_total", sa.Integer, nullable=False),
    )
    op.create_table(
        "fleet_run_targets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("fleet_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target_key", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("hypervisor", sa.Text, nullable=True),
        sa.Column("hypervisor_limit", sa.Integer, nullable=True),
        sa.Column("groups", sa.JSON, nullable=False),
        sa.Column("timeout_s", sa.Float, nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("scans.id", ondelete="SET NULL"), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("worker", sa.Text, nullable=True),
        sa.Column("counts", sa.JSON, nullable=True),
        sa.UniqueConstraint("run_id", "target_key", name="uq_fleet_run_targets_run_key"),
    )
    op.create_table(
        "fleet_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_target_id", sa.Integer,
                  sa.ForeignKey("fleet_run_targets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("worker", sa.Text, nullable=True),
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("scans.id", ondelete="SET NULL"), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.UniqueConstraint("run_target_id", "attempt", name="uq_fleet_attempts_target_attempt"),
    )
    op.create_table(
        "fleet_schedules",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("inventory", sa.JSON, nullable=False),
        sa.Column("group_name", sa.String(200), nullable=True),
        sa.Column("interval_s", sa.Integer, nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_id", sa.Integer, sa.ForeignKey("fleet_runs.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "monitor_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("domain", sa.Text, nullable=True),
        sa.Column("uuid", sa.String(36), nullable=True),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("data", sa.JSON, nullable=True),
    )
    op.create_index("ix_monitor_events_at", "monitor_events", ["at"])
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("domain", sa.Text, nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("change", sa.String(20), nullable=True),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("check_id", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(32), nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=True),
        sa.Column("event_id", sa.Integer, sa.ForeignKey("monitor_events.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("lag_s", sa.Float, nullable=True),
    )
    op.create_index("ix_monitor_alerts_at", "monitor_alerts", ["at"])
    op.create_table(
        "monitor_domains",
        sa.Column("uri", sa.String(2000), primary_key=True),
        sa.Column("domain", sa.String(1000), primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("audited_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("monitor_domains", "monitor_alerts", "monitor_events", "fleet_schedules",
                  "fleet_attempts", "fleet_run_targets", "fleet_runs"):
        op.drop_table(table)
