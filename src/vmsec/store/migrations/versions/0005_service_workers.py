"""The service on several worker processes (issue 13, follow-up): the state every worker must see moves
into the database — sign-in throttling (``login_throttle``) and pending WebAuthn challenges
(``webauthn_challenges``). For the finding list at a million findings: each finished scan's range of
finding ids (``scan_stats``), so a page walks only the part of the table its visible scans fill, and
indexes on target names, kinds and hosts (its target=, kind= and host= filters).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The finding list's target=, kind= and host= filters resolve target ids by these.
    op.create_index("ix_targets_name", "targets", ["name"])
    op.create_index("ix_targets_host", "targets", ["host"])
    op.create_index("ix_targets_kind_name", "targets", ["kind", "name"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("hits", sa.Text, nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_throttle_last_at", "login_throttle", ["last_at"])
    op.create_table(
        "webauthn_challenges",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("challenge", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("scan_stats") as batch:
        batch.add_column(sa.Column("min_finding_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("max_finding_id", sa.Integer, nullable=True))
    # Scans whose statistics exist already: their ranges, read once along ix_findings_scan_status.
    op.execute(
        "UPDATE scan_stats SET "
        "min_finding_id = (SELECT min(id) FROM findings WHERE findings.scan_id = scan_stats.scan_id), "
        "max_finding_id = (SELECT max(id) FROM findings WHERE findings.scan_id = scan_stats.scan_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("scan_stats") as batch:
        batch.drop_column("max_finding_id")
        batch.drop_column("min_finding_id")
    op.drop_table("webauthn_challenges")
    op.drop_index("ix_login_throttle_last_at", "login_throttle")
    op.drop_table("login_throttle")
    op.drop_index("ix_targets_kind_name", "targets")
    op.drop_index("ix_targets_host", "targets")
    op.drop_index("ix_targets_name", "targets")
