"""``findings.scan_id`` loses its foreign key. A finding's scan is its target's scan, which the
target's own key already ties to ``scans`` (and deleting a scan still cascades: scan → targets →
findings). The redundant check was one trigger per finding written: on PostgreSQL, ``COPY`` of
100,000 findings ran at 55–67k findings/s with it and 86–91k/s without (docs/performance.md, issue 8).

SQLite names no inline constraint, so the table is rebuilt with a naming convention that finds it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_PG_NAME = "findings_scan_id_fkey"  # PostgreSQL's name for the constraint revision 0001 created
_SQLITE_NAME = "fk_findings_scan_id_scans"
_NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("findings", naming_convention=_NAMING, recreate="always") as batch:
            batch.drop_constraint(_SQLITE_NAME, type_="foreignkey")
    else:
        op.drop_constraint(_PG_NAME, "findings", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("findings", naming_convention=_NAMING, recreate="always") as batch:
            batch.create_foreign_key(_SQLITE_NAME, "scans", ["scan_id"], ["id"], ondelete="CASCADE")
    else:
        op.create_foreign_key(_PG_NAME, "findings", "scans", ["scan_id"], ["id"], ondelete="CASCADE")
