"""Targets keep their OS inventory (SBOM) and collection records their error kind, so a stored scan
re-renders exactly as it rendered live. The fingerprint index goes: nothing queries it, and inserting
into an index of random 128-bit keys made storing a scan 2.5 times slower.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_findings_fingerprint", table_name="findings")
    with op.batch_alter_table("targets") as batch:
        batch.add_column(sa.Column("os", sa.JSON, nullable=True))
    with op.batch_alter_table("collection_records") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collection_records") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("targets") as batch:
        batch.drop_column("os")
    op.create_index("ix_findings_fingerprint", "findings", ["fingerprint"])
