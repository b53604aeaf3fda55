"""The findings store's tables (SQLAlchemy Core). Changed only together with a migration in
``migrations/versions`` — a test compares this metadata with the migrated database."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
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
    false,
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
    # The group (tenant / host group) the scan belongs to (0003); 1 is "default".
    Column("group_id", Integer, ForeignKey("groups.id", name="fk_scans_group_id_groups"), nullable=False,
           server_default="1"),
    Index("ix_scans_group", "group_id", "id"),
    Index("ix_scans_started", "started_at"),
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
    # The finding list's target, kind and host filters (0005).
    Index("ix_targets_name", "name"),
    Index("ix_targets_host", "host"),
    Index("ix_targets_kind_name", "kind", "name"),
)

findings = Table(
    "findings", metadata,
    Column("id", Integer, primary_key=True),
    # The target's scan (queries filter findings by scan without a join). No foreign key of its own: the
    # target's already ties it to the scan, and deleting a scan cascades through its targets; the
    # redundant check cost every finding written a trigger on PostgreSQL (migration 0007).
    Column("scan_id", Integer, nullable=False),
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
    Index("ix_findings_target_id", "target_id", "id"),  # replaces ix_findings_target (target_id)
)

# The finding list's indexes (the service, issue 13: its filters page by keyset on id, newest first).
# Not part of the migrated schema: a store gets them when it is first served (Store.
# ensure_finding_list_indexes, called by vmsec.service). Every index costs each finding written, and
# a CLI user's history or a fleet store that is never served never runs those queries (with them,
# writing 100k findings to SQLite took twice as long; migration 0006).
FINDING_LIST_INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ix_findings_status_severity_id", ("status", "severity", "id")),
    ("ix_findings_severity_id", ("severity", "id")),
    ("ix_findings_check_id", ("check_id", "id")),
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

# --- the service (0003): groups, users, sessions, tokens, audit log, waivers, targets ------------
# Every scan belongs to a group (tenant / host group); scans written before 0003 and scans the CLI
# writes belong to group 1, "default", which the migration creates.

groups = Table(
    "groups", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),  # viewer | auditor | operator | admin
    Column("password_hash", Text, nullable=False),  # argon2id (PHC string)
    Column("disabled", Boolean, nullable=False, server_default=false()),
    # TOTP secret, AES-GCM encrypted with a key kept outside the database; None: no TOTP enrolled
    Column("totp_secret", Text, nullable=True),
    Column("totp_last_step", Integer, nullable=True),  # the last accepted time step (no replay)
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_changed_at", DateTime(timezone=True), nullable=False),
    Column("last_login_at", DateTime(timezone=True), nullable=True),
)

memberships = Table(
    "memberships", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)

recovery_codes = Table(
    "recovery_codes", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", String(64), nullable=False),  # keyed SHA-256 of a random code
    Column("used_at", DateTime(timezone=True), nullable=True),
    Index("ix_recovery_codes_user", "user_id"),
)

webauthn_credentials = Table(
    "webauthn_credentials", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("credential_id", String(1400), nullable=False, unique=True),  # base64url
    Column("public_key", Text, nullable=False),  # base64url COSE key
    Column("sign_count", Integer, nullable=False, server_default="0"),
    Column("name", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Index("ix_webauthn_credentials_user", "user_id"),
)

sessions = Table(
    "sessions", metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the cookie value, never the value
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),  # the absolute timeout
    Column("stage", String(10), nullable=False),  # mfa: password accepted, second factor due | full
    Column("csrf_token", String(64), nullable=False),
    Column("reauth_at", DateTime(timezone=True), nullable=True),  # last re-authentication
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("remote", String(100), nullable=True),
    Column("user_agent", String(300), nullable=True),
    Index("ix_sessions_user", "user_id"),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the token
    Column("prefix", String(16), nullable=False),  # the first characters, to recognise a token
    Column("scope", String(10), nullable=False),  # read | write
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Index("ix_api_tokens_user", "user_id"),
)

# The audit log is a hash chain: each entry's HMAC covers the previous entry's hash and its own
# sequence number, so altering, deleting or reordering entries breaks the chain (vmsec audit verify).
audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # 1, 2, 3 … without gaps
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("outcome", String(20), nullable=False),  # success | failure | denied
    Column("target", Text, nullable=False),
    Column("group_id", Integer, nullable=True),  # the group the entry concerns (None: global)
    Column("remote", String(100), nullable=True),
    Column("detail", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_group", "group_id", "id"),
)

# One row: the chain's head. Appending locks it, so concurrent writers form one chain.
audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("hash", String(64), nullable=False),  # the chain hash at entry_id
    Column("mac", String(64), nullable=False),  # HMAC over (entry_id, hash): a checkpoint cannot be forged
)

waivers = Table(
    "waivers", metadata,
    Column("id", Integer, primary_key=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("check_id", String(200), nullable=True),
    Column("vulnerability", String(200), nullable=True),
    Column("target", String(500), nullable=False),  # fnmatch on kind:name, as in waiver files
    Column("subject", String(500), nullable=True),
    Column("reason", Text, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("expires", Date, nullable=False),
    Column("status", String(20), nullable=False),  # proposed | approved | rejected
    Column("proposed_by", String(100), nullable=False),
    Column("proposed_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(100), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Index("ix_waivers_group_status", "group_id", "status"),
)

scan_credentials = Table(
    "scan_credentials", metadata,
    Column("id", Integer, primary_key=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("kind", String(30), nullable=False),  # ssh-key | luks-passphrase
    Column("ciphertext", Text, nullable=False),  # AES-GCM with a key kept outside the database
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("group_id", "name", name="uq_scan_credentials_group_name"),
)

scan_targets = Table(
    "scan_targets", metadata,
    Column("id", Integer, primary_key=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("spec", _JSON, nullable=False),  # a target spec mapping (vmsec.specs.spec_from_mapping)
    Column("credential_id", Integer, ForeignKey("scan_credentials.id", ondelete="SET NULL"), nullable=True),
    Column("every_hours", Integer, nullable=True),  # scheduled: scanned every so many hours
    Column("next_run_at", DateTime(timezone=True), nullable=True),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("group_id", "name", name="uq_scan_targets_group_name"),
)

scan_jobs = Table(
    "scan_jobs", metadata,
    Column("id", Integer, primary_key=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("target_id", Integer, ForeignKey("scan_targets.id", ondelete="SET NULL"), nullable=True),
    Column("requested_by", String(100), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("status", String(20), nullable=False),  # queued | running | done | failed
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="SET NULL"), nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_scan_jobs_group", "group_id", "id"),
)

# Per-target counts of a finished scan, computed once (the fleet overview ranks by them).
target_stats = Table(
    "target_stats", metadata,
    Column("target_id", Integer, ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True),
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="CASCADE"), nullable=False),
    Column("fail_critical", Integer, nullable=False),
    Column("fail_high", Integer, nullable=False),
    Column("fail_medium", Integer, nullable=False),
    Column("fail_low", Integer, nullable=False),
    Column("fail_info", Integer, nullable=False),
    Column("unknown", Integer, nullable=False),
    Column("error", Integer, nullable=False),
    Column("waived", Integer, nullable=False),
    Column("passed", Integer, nullable=False),
    Index("ix_target_stats_scan", "scan_id"),
)

scan_stats = Table(
    "scan_stats", metadata,
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    # The scan's finding ids lie in [min, max] (0005; None: the scan has no findings): the finding list
    # bounds its keyset walk by the ranges of the scans it may show.
    Column("min_finding_id", Integer, nullable=True),
    Column("max_finding_id", Integer, nullable=True),
)

# --- the service's shared state, for several worker processes (0005) ---------------------------------

# Sign-in throttling: per key, the times of the attempts allowed within the window (at most the limit
# of them), so every worker process counts the same attempts; a key's row goes once its window passed.
login_throttle = Table(
    "login_throttle", metadata,
    Column("key", String(200), primary_key=True),  # "ip:ADDRESS" or "user:NAME"
    Column("hits", Text, nullable=False),  # attempt times, microseconds since the epoch, space-separated
    Column("last_at", DateTime(timezone=True), nullable=False),
    Index("ix_login_throttle_last_at", "last_at"),
)

# A WebAuthn challenge waiting for its answer, keyed by the (hashed) session that asked; used once.
webauthn_challenges = Table(
    "webauthn_challenges", metadata,
    Column("key", String(100), primary_key=True),
    Column("challenge", String(200), nullable=False),  # base64url
    Column("expires_at", DateTime(timezone=True), nullable=False),
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
