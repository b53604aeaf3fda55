"""The findings store's tables (SQLAlchemy Core). Changed only together with a migration in
``migrations/versions`` — a test compares this metadata with the migrated database."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# JSON that stores Python None as SQL NULL (not the JSON literal 'null').
_JSON = JSON(none_as_null=True)

scans = Table(
    "scans", metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("stored_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False),
    Column("profile", String(200), nullable=False),
    Column("checks_run", Integer, nullable=False),
    # running: being written (or the writer died) | complete | incomplete (the scan itself was)
    Column("status", String(20), nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("tool_version", String(50), nullable=False),
    Column("targets_expected", Integer, nullable=False),
    Column("findings_expected", Integer, nullable=False),
)

targets = Table(
    "targets", metadata,
    Column("id", Integer, primary_key=True),
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("name", Text, nullable=False),
    Column("host", Text, nullable=True),
    Column("listed", Boolean, nullable=False),  # in ScanResult.targets (not only referenced by findings)
    Column("details", _JSON, nullable=True),
    # The OS root's identity and installed packages (SBOM), for guests and the host's own OS (0002).
    Column("os", _JSON, nullable=True),
    Index("ix_targets_scan", "scan_id"),
)

findings = Table(
    "findings", metadata,
    Column("id", Integer, primary_key=True),
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="CASCADE"), nullable=False),
    Column("target_id", Integer, ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),  # position in the scan's findings (rows go in per target)
    # Not indexed: no query looks findings up by fingerprint across scans, and an index on random
    # 128-bit keys made storing a scan 2.5 times slower (migration 0002 dropped it).
    Column("fingerprint", String(32), nullable=False),
    Column("check_id", String(200), nullable=False),
    Column("title", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("subject", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("evidence", _JSON, nullable=False),
    Column("tags", _JSON, nullable=False),
    Column("vulnerability", _JSON, nullable=True),
    Column("detail", Text, nullable=True),
    Index("ix_findings_scan_status", "scan_id", "status", "severity"),
    Index("ix_findings_target", "target_id"),
)

# Check prose (remediation) is the same for every finding of a check in one scan: kept once per
# scan and check instead of once per finding.
scan_checks = Table(
    "scan_checks", metadata,
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True),
    Column("check_id", String(200), primary_key=True),
    Column("remediation", Text, nullable=False),
)

collection_records = Table(
    "collection_records", metadata,
    Column("id", Integer, primary_key=True),
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="CASCADE"), nullable=False),
    Column("source", Text, nullable=False),
    Column("what", Text, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("reason", Text, nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("kind", String(20), nullable=True),  # why it failed: an ErrorKind value (0002)
    Index("ix_collection_records_scan", "scan_id"),
)
