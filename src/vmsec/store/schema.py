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
    UniqueConstraint,
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

# --- fleet runs, their targets and attempts, schedules (0004) -------------------------------------
# A fleet run scans many targets (one scan each, on Celery workers or in-process). Each run target
# is keyed by (run, target key): a retried or redelivered task finds its row and replaces its scan
# atomically, so a run ends with every target exactly once.

fleet_runs = Table(
    "fleet_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # Sent with every task: a worker whose store has no run with this token refuses the task (it was
    # started with another store), instead of scanning another run's target of the same id.
    Column("token", String(36), nullable=False),
    Column("source", Text, nullable=False),  # the inventory file, or "schedule NAME"
    Column("mode", String(20), nullable=False),  # local | celery
    Column("status", String(20), nullable=False),  # running | complete | failed (a target failed)
    Column("schedule", String(200), nullable=True),
    Column("group_name", String(200), nullable=True),  # only this inventory group was scanned
    Column("options", _JSON, nullable=False),  # profile, checks, timeout, attempts …
    Column("targets_total", Integer, nullable=False),
)

fleet_run_targets = Table(
    "fleet_run_targets", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("fleet_runs.id", ondelete="CASCADE"), nullable=False),
    Column("target_key", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("spec", _JSON, nullable=False),  # the inventory entry, read by vmsec.specs.spec_from_mapping
    Column("hypervisor", Text, nullable=True),
    Column("hypervisor_limit", Integer, nullable=True),  # targets of this hypervisor scanned at once
    Column("groups", _JSON, nullable=False),
    Column("timeout_s", Float, nullable=True),  # collection timeout of this target
    # queued | running | retrying | done | failed
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("reason", Text, nullable=True),  # why the last attempt failed
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="SET NULL"), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("worker", Text, nullable=True),
    Column("counts", _JSON, nullable=True),  # findings by status and FAILs by severity
    UniqueConstraint("run_id", "target_key", name="uq_fleet_run_targets_run_key"),
)

fleet_attempts = Table(
    "fleet_attempts", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_target_id", Integer, ForeignKey("fleet_run_targets.id", ondelete="CASCADE"),
           nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker", Text, nullable=True),
    # The scan this attempt is writing: a killed attempt's partial scan is deleted when another
    # attempt of the same target finishes.
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="SET NULL"), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # running | done | failed | lost (a later attempt started: the worker died) | superseded
    Column("outcome", String(20), nullable=False),
    Column("reason", Text, nullable=True),
    UniqueConstraint("run_target_id", "attempt", name="uq_fleet_attempts_target_attempt"),
)

fleet_schedules = Table(
    "fleet_schedules", metadata,
    Column("name", String(200), primary_key=True),
    Column("source", Text, nullable=False),  # the inventory file it was read from
    Column("inventory", _JSON, nullable=False),  # the inventory document (workers need no file)
    Column("group_name", String(200), nullable=True),
    Column("interval_s", Integer, nullable=False),
    Column("next_run_at", DateTime(timezone=True), nullable=False),
    Column("last_run_id", Integer, ForeignKey("fleet_runs.id", ondelete="SET NULL"), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("options", _JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# --- the monitor: libvirt events, alerts, each domain's last audit (0004) ---------------------------

monitor_events = Table(
    "monitor_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("uri", Text, nullable=False),
    Column("domain", Text, nullable=True),
    Column("uuid", String(36), nullable=True),
    Column("event", String(40), nullable=False),  # defined, started, device-added, graphics-connect …
    Column("detail", Text, nullable=True),
    Column("data", _JSON, nullable=True),  # graphics client address and identity, device alias …
    Index("ix_monitor_events_at", "at"),
)

monitor_alerts = Table(
    "monitor_alerts", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("uri", Text, nullable=False),
    Column("domain", Text, nullable=True),
    Column("kind", String(20), nullable=False),  # drift | console | lifecycle | connection
    Column("change", String(20), nullable=True),  # drift: new | resolved | changed
    Column("severity", String(10), nullable=False),
    Column("check_id", String(200), nullable=True),
    Column("fingerprint", String(32), nullable=True),
    Column("message", Text, nullable=False),
    Column("data", _JSON, nullable=True),
    Column("event_id", Integer, ForeignKey("monitor_events.id", ondelete="SET NULL"), nullable=True),
    Column("lag_s", Float, nullable=True),  # from the libvirt event to the alert
    Index("ix_monitor_alerts_at", "at"),
)

monitor_domains = Table(
    "monitor_domains", metadata,
    Column("uri", String(2000), primary_key=True),
    Column("domain", String(1000), primary_key=True),
    Column("uuid", String(36), nullable=True),
    Column("digest", String(64), nullable=False),  # of the domain's facts: a change while disconnected
    # The findings that were not PASS at the last audit: {fingerprint: [check, status, severity,
    # subject, message]} — what the next audit is compared with.
    Column("findings", _JSON, nullable=False),
    Column("audited_at", DateTime(timezone=True), nullable=False),
)
