"""The finding list's indexes leave the migrated schema: a store gets them when it is first served
(``Store.ensure_finding_list_indexes``, called by the service). Each index costs every finding
written; a CLI user's history or a fleet store that is never served paid for three it never used
(writing 100,000 findings to SQLite took about twice as long with them).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_findings_status_severity_id", "status, severity, id"),
    ("ix_findings_severity_id", "severity, id"),
    ("ix_findings_check_id", "check_id, id"),
)


def upgrade() -> None:
    # A store that is served gets them back when the service starts.
    for name, _columns in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")


def downgrade() -> None:
    for name, columns in _INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON findings ({columns})")
