"""What users do besides reading: waivers (operators propose, admins approve), scan targets and the
credentials they need (encrypted at rest), and scans started from the service — run off the request
threads by :func:`vmsec.pipeline.scan`, stored in the target's group."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from vmsec.errors import VmsecError
from vmsec.service.core import Denied, NotFound, Principal, ServiceError, new_id, text_input, utc
from vmsec.service.roles import Permission
from vmsec.store import schema

if TYPE_CHECKING:
    from vmsec.service.core import Service
    from vmsec.waivers import Waiver

CREDENTIAL_KINDS = ("ssh-key", "luks-passphrase")
MAX_WAIVER_DAYS = 366
MAX_SECRET_BYTES = 64 * 1024


def _require(principal: Principal, permission: Permission) -> None:
    if not principal.can(permission):
        raise Denied(f"{principal.role.value} may not {permission.value}")


class Operations:
    def __init__(self, service: Service) -> None:
        self.svc = service
        self._pool = ThreadPoolExecutor(
            max_workers=service.config.scan_workers, thread_name_prefix="vmsec-scan"
        )
        self._futures: dict[int, Future[None]] = {}
        self._lock = threading.Lock()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _group(self, principal: Principal, group: int | str) -> int:
        g = schema.groups
        with self.svc.engine.connect() as conn:
            col = g.c.id if isinstance(group, int) or str(group).isdigit() else g.c.name
            row = conn.execute(select(g.c.id).where(col == (int(group) if col is g.c.id else group))).first()
        if row is None or not principal.sees(int(row[0])):
            raise NotFound(f"no group {group!r}")
        return int(row[0])

    # --- waivers ------------------------------------------------------------------------------

    def list_waivers(self, principal: Principal, status: str | None = None) -> list[dict[str, Any]]:
        _require(principal, Permission.READ)
        w, g = schema.waivers, schema.groups
        query = select(w, g.c.name.label("group")).join(g, g.c.id == w.c.group_id).order_by(w.c.id.desc())
        if status:
            query = query.where(w.c.status == status)
        if not principal.all_groups:
            query = query.where(w.c.group_id.in_(sorted(principal.groups)))
        with self.svc.engine.connect() as conn:
            rows = conn.execute(query.limit(1000)).all()
        today = self.svc.now().date()
        return [
            {
                "id": r.id,
                "group": r.group,
                "group_id": r.group_id,
                "check": r.check_id,
                "vulnerability": r.vulnerability,
                "target": r.target,
                "subject": r.subject,
                "reason": r.reason,
                "owner": r.owner,
                "expires": r.expires.isoformat(),
                "expired": r.expires < today,
                "status": r.status,
                "proposed_by": r.proposed_by,
                "proposed_at": utc(r.proposed_at),
                "decided_by": r.decided_by,
                "decided_at": utc(r.decided_at),
            }
            for r in rows
        ]

    def propose_waiver(
        self,
        principal: Principal,
        *,
        group: int | str,
        check: str | None,
        vulnerability: str | None,
        target: str,
        subject: str | None,
        reason: str,
        owner: str,
        expires: date,
    ) -> int:
        _require(principal, Permission.WAIVER_PROPOSE)
        gid = self._group(principal, group)
        if bool(check) == bool(vulnerability):
            raise ServiceError("give exactly one of a check id or a vulnerability id")
        if not reason.strip() or not owner.strip() or not target.strip():
            raise ServiceError("a waiver needs a target pattern, a reason and an owner")
        today = self.svc.now().date()
        if not today <= expires <= today + timedelta(days=MAX_WAIVER_DAYS):
            raise ServiceError(f"a waiver expires between today and {MAX_WAIVER_DAYS} days from now")
        with self.svc.engine.begin() as conn:
            wid = new_id(
                conn.execute(
                    insert(schema.waivers).values(
                        group_id=gid,
                        check_id=text_input(check or "", "the check id", 200) or None,
                        vulnerability=text_input(vulnerability or "", "the vulnerability id", 200) or None,
                        target=text_input(target, "the target pattern", 500),
                        subject=text_input(subject or "", "the subject pattern", 500) or None,
                        reason=text_input(reason, "the reason", 4000, multiline=True),
                        owner=text_input(owner, "the owner", 200),
                        expires=expires,
                        status="proposed",
                        proposed_by=principal.name,
                        proposed_at=self.svc.now(),
                    )
                )
            )
            self.svc.audit.append(
                "waiver.propose",
                "success",
                principal.actor,
                f"waiver:{wid}",
                group_id=gid,
                detail={
                    "check": check,
                    "vulnerability": vulnerability,
                    "target": target,
                    "expires": expires.isoformat(),
                    "owner": owner,
                },
                remote=principal.remote,
                conn=conn,
            )
        return wid

    def decide_waiver(self, principal: Principal, waiver_id: int, approve: bool) -> None:
        _require(principal, Permission.WAIVER_APPROVE)
        w = schema.waivers
        with self.svc.engine.begin() as conn:
            row = conn.execute(select(w).where(w.c.id == waiver_id)).first()
            if row is None or not principal.sees(row.group_id):
                raise NotFound(f"no waiver {waiver_id}")
            if row.status != "proposed":
                raise ServiceError(f"waiver {waiver_id} is already {row.status}")
            status = "approved" if approve else "rejected"
            conn.execute(
                update(w)
                .where(w.c.id == waiver_id)
                .values(status=status, decided_by=principal.name, decided_at=self.svc.now())
            )
            self.svc.audit.append(
                f"waiver.{'approve' if approve else 'reject'}",
                "success",
                principal.actor,
                f"waiver:{waiver_id}",
                group_id=row.group_id,
                remote=principal.remote,
                conn=conn,
            )

    def active_waivers(self, group_id: int) -> tuple[Waiver, ...]:
        """The group's approved waivers, as vmsec.waivers applies them (expired ones too: a finding then
        says its waiver expired)."""
        from vmsec.waivers import Waiver

        w = schema.waivers
        with self.svc.engine.connect() as conn:
            rows = conn.execute(select(w).where(w.c.group_id == group_id, w.c.status == "approved")).all()
        return tuple(
            Waiver(
                check=r.check_id,
                vulnerability=r.vulnerability,
                target=r.target,
                subject=r.subject,
                reason=r.reason,
                who=r.owner,
                expires=r.expires,
                origin=f"service waiver {r.id}",
            )
            for r in rows
        )

    # --- credentials ----------------------------------------------------------------------------

    def list_credentials(self, principal: Principal) -> list[dict[str, Any]]:
        _require(principal, Permission.ADMIN)
        c, g = schema.scan_credentials, schema.groups
        with self.svc.engine.connect() as conn:
            rows = conn.execute(
                select(
                    c.c.id,
                    c.c.name,
                    c.c.kind,
                    c.c.group_id,
                    c.c.created_by,
                    c.c.created_at,
                    g.c.name.label("group"),
                )
                .join(g, g.c.id == c.c.group_id)
                .order_by(c.c.id)
            ).all()
        return [
            {
                "id": r.id,
                "name": r.name,
                "kind": r.kind,
                "group": r.group,
                "created_by": r.created_by,
                "created_at": utc(r.created_at),
            }
            for r in rows
            if principal.sees(r.group_id)
        ]

    def add_credential(
        self, principal: Principal, *, group: int | str, name: str, kind: str, secret: bytes
    ) -> int:
        _require(principal, Permission.ADMIN)
        gid = self._group(principal, group)
        if kind not in CREDENTIAL_KINDS:
            raise ServiceError(f"unknown credential kind {kind!r} (one of {', '.join(CREDENTIAL_KINDS)})")
        if not secret or len(secret) > MAX_SECRET_BYTES:
            raise ServiceError(f"a credential is 1 to {MAX_SECRET_BYTES} bytes")
        name = text_input(name, "the credential's name", 100)
        if not name:
            raise ServiceError("a credential needs a name")
        c = schema.scan_credentials
        try:
            with self.svc.engine.begin() as conn:
                cid = new_id(
                    conn.execute(
                        insert(c).values(
                            group_id=gid,
                            name=name,
                            kind=kind,
                            ciphertext="",
                            created_by=principal.name,
                            created_at=self.svc.now(),
                        )
                    )
                )
                conn.execute(
                    update(c)
                    .where(c.c.id == cid)
                    .values(ciphertext=self.svc.keys.encrypt(secret, f"credential:{cid}"))
                )
                self.svc.audit.append(
                    "credential.create",
                    "success",
                    principal.actor,
                    f"credential:{cid}",
                    group_id=gid,
                    detail={"name": name, "kind": kind},
                    remote=principal.remote,
                    conn=conn,
                )
        except IntegrityError as exc:
            raise ServiceError(f"the group already has a credential named {name!r}") from exc
        return cid

    def delete_credential(self, principal: Principal, credential_id: int) -> None:
        self._delete_group_row(principal, schema.scan_credentials, credential_id, "credential")

    def _delete_group_row(self, principal: Principal, table: Any, row_id: int, what: str) -> None:
        """Delete row ``row_id`` of a per-group ``table`` (an admin of its group only) and audit it as
        ``what.delete``; a row the caller cannot see is not found."""
        _require(principal, Permission.ADMIN)
        with self.svc.engine.begin() as conn:
            row = conn.execute(select(table.c.group_id).where(table.c.id == row_id)).first()
            if row is None or not principal.sees(row.group_id):
                raise NotFound(f"no {what} {row_id}")
            conn.execute(delete(table).where(table.c.id == row_id))
            self.svc.audit.append(
                f"{what}.delete",
                "success",
                principal.actor,
                f"{what}:{row_id}",
                group_id=row.group_id,
                remote=principal.remote,
                conn=conn,
            )

    # --- scan targets ---------------------------------------------------------------------------

    def list_targets(self, principal: Principal) -> list[dict[str, Any]]:
        _require(principal, Permission.READ)
        t, g = schema.scan_targets, schema.groups
        with self.svc.engine.connect() as conn:
            rows = conn.execute(
                select(t, g.c.name.label("group")).join(g, g.c.id == t.c.group_id).order_by(t.c.name)
            ).all()
        return [
            {
                "id": r.id,
                "name": r.name,
                "every_hours": r.every_hours,
                "next_run_at": utc(r.next_run_at),
                "group": r.group,
                "group_id": r.group_id,
                "spec": r.spec,
                "credential_id": r.credential_id,
                "created_by": r.created_by,
                "created_at": utc(r.created_at),
            }
            for r in rows
            if principal.sees(r.group_id)
        ]

    def add_target(
        self,
        principal: Principal,
        *,
        group: int | str,
        name: str,
        spec: dict[str, Any],
        credential_id: int | None = None,
        every_hours: int | None = None,
    ) -> int:
        """A scan target of a group: a target spec, an optional stored credential, and an optional
        schedule (scanned every ``every_hours`` hours by :meth:`run_due`; None: on demand only)."""
        _require(principal, Permission.ADMIN)
        from vmsec.specs import spec_from_mapping

        if every_hours is not None and not 1 <= every_hours <= 24 * 366:
            raise ServiceError("a schedule runs every 1 to 8784 hours")
        gid = self._group(principal, group)
        name = text_input(name, "the target's name", 200)
        if not name:
            raise ServiceError("a target needs a name")
        try:
            spec_from_mapping(spec, f"target {name}")
        except VmsecError as exc:
            raise ServiceError(str(exc)) from exc
        t = schema.scan_targets
        try:
            with self.svc.engine.begin() as conn:
                if credential_id is not None:
                    c = schema.scan_credentials
                    cred = conn.execute(select(c.c.group_id).where(c.c.id == credential_id)).first()
                    if cred is None or cred.group_id != gid:
                        raise NotFound(f"no credential {credential_id} in this group")
                tid = new_id(
                    conn.execute(
                        insert(t).values(
                            group_id=gid,
                            name=name,
                            spec=dict(spec),
                            credential_id=credential_id,
                            every_hours=every_hours,
                            next_run_at=self.svc.now() if every_hours else None,
                            created_by=principal.name,
                            created_at=self.svc.now(),
                        )
                    )
                )
                self.svc.audit.append(
                    "target.create",
                    "success",
                    principal.actor,
                    f"target:{tid}",
                    group_id=gid,
                    detail={"name": name, "spec": spec, "every_hours": every_hours},
                    remote=principal.remote,
                    conn=conn,
                )
        except IntegrityError as exc:
            raise ServiceError(f"the group already has a target named {name!r}") from exc
        return tid

    def delete_target(self, principal: Principal, target_id: int) -> None:
        self._delete_group_row(principal, schema.scan_targets, target_id, "target")

    # --- scans ----------------------------------------------------------------------------------

    def start_scan(self, principal: Principal, target_id: int) -> int:
        """Queue a scan of a defined target; it runs on the scan worker thread. Returns the job id."""
        _require(principal, Permission.SCAN)
        t, j = schema.scan_targets, schema.scan_jobs
        with self.svc.engine.begin() as conn:
            row = conn.execute(select(t).where(t.c.id == target_id)).first()
            if row is None or not principal.sees(row.group_id):
                raise NotFound(f"no target {target_id}")
            job_id = new_id(
                conn.execute(
                    insert(j).values(
                        group_id=row.group_id,
                        target_id=target_id,
                        requested_by=principal.name,
                        requested_at=self.svc.now(),
                        status="queued",
                    )
                )
            )
            self.svc.audit.append(
                "scan.start",
                "success",
                principal.actor,
                f"job:{job_id}",
                group_id=row.group_id,
                detail={"target": row.name, "spec": row.spec},
                remote=principal.remote,
                conn=conn,
            )
        with self._lock:
            self._futures[job_id] = self._pool.submit(self._run, job_id)
        return job_id

    def run_due(self) -> list[int]:
        """Queue a scan of every scheduled target whose time has come (the service calls this every
        minute). The next run time moves forward in the same statement that claims the target, so two
        service processes never queue the same run twice."""
        from vmsec.service.roles import Role

        t = schema.scan_targets
        now = self.svc.now()
        with self.svc.engine.connect() as conn:
            due = conn.execute(
                select(t.c.id, t.c.every_hours, t.c.next_run_at).where(
                    t.c.every_hours.is_not(None), t.c.next_run_at <= now
                )
            ).all()
        scheduler = Principal(
            user_id=None,
            name="scheduler",
            role=Role.OPERATOR,
            groups=frozenset(),
            via="scheduler",
            all_groups=True,
        )
        jobs = []
        for target_id, every, planned in due:
            with self.svc.engine.begin() as conn:
                claimed = conn.execute(
                    update(t)
                    .where(t.c.id == target_id, t.c.next_run_at == planned)
                    .values(next_run_at=now + timedelta(hours=every))
                ).rowcount
            if claimed == 1:
                jobs.append(self.start_scan(scheduler, target_id))
        return jobs

    def wait(self, job_id: int, timeout: float | None = None) -> None:
        """Wait for a job started by this process (tests, the CLI)."""
        with self._lock:
            future = self._futures.get(job_id)
        if future is not None:
            future.result(timeout)

    def _run(self, job_id: int) -> None:
        from vmsec.pipeline import ScanOptions, scan
        from vmsec.specs import spec_from_mapping
        from vmsec.store.writer import StoreSink

        j, t, c = schema.scan_jobs, schema.scan_targets, schema.scan_credentials
        with self.svc.engine.begin() as conn:
            job = conn.execute(select(j).where(j.c.id == job_id)).one()
            target = conn.execute(select(t).where(t.c.id == job.target_id)).first()
            cred = (
                conn.execute(select(c).where(c.c.id == target.credential_id)).first()
                if target is not None and target.credential_id is not None
                else None
            )
            conn.execute(
                update(j).where(j.c.id == job_id).values(status="running", started_at=self.svc.now())
            )
        workdir = tempfile.mkdtemp(prefix="vmsec-scan-")
        sink: StoreSink | None = None
        try:
            if target is None:
                raise ServiceError("the target was deleted")
            spec = spec_from_mapping(target.spec, f"target {target.name}")
            if cred is not None:
                path = os.path.join(workdir, "credential")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(self.svc.keys.decrypt(cred.ciphertext, f"credential:{cred.id}"))
                field = "identity" if cred.kind == "ssh-key" else "key_file"
                if not hasattr(spec, field):
                    raise ServiceError(f"a {cred.kind} credential does not fit a {spec.kind} target")
                spec = replace(spec, **{field: path})
            sink = StoreSink.into(self.svc.store, group_id=job.group_id)
            scan(
                [spec],
                ScanOptions(
                    sinks=[sink],
                    keep_findings=False,
                    waivers=self.active_waivers(job.group_id),
                    clock=self.svc.now,
                ),
            )
            status, error = "done", None
        except (VmsecError, OSError, ValueError) as exc:
            status, error = "failed", f"{exc.__class__.__name__}: {exc}"[:2000]
        except Exception as exc:  # a crash in a worker must still be recorded, never lost
            status, error = "failed", f"internal error: {exc.__class__.__name__}: {exc}"[:2000]
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            if sink is not None:
                sink.close()
        scan_id = sink.scan_id if sink is not None else None
        with self.svc.engine.begin() as conn:
            conn.execute(
                update(j)
                .where(j.c.id == job_id)
                .values(status=status, error=error, scan_id=scan_id, finished_at=self.svc.now())
            )
            self.svc.audit.append(
                "scan.finish",
                "success" if status == "done" else "failure",
                f"job:{job_id}",
                f"scan:{scan_id}" if scan_id else f"job:{job_id}",
                group_id=job.group_id,
                detail={"error": error} if error else {},
                conn=conn,
            )
        if scan_id is not None:
            self.svc.queries.ensure_stats([scan_id])

    def list_jobs(self, principal: Principal, limit: int = 100) -> list[dict[str, Any]]:
        _require(principal, Permission.READ)
        j, t = schema.scan_jobs, schema.scan_targets
        query = (
            select(j, t.c.name.label("target"))
            .outerjoin(t, t.c.id == j.c.target_id)
            .order_by(j.c.id.desc())
            .limit(limit)
        )
        if not principal.all_groups:
            query = query.where(j.c.group_id.in_(sorted(principal.groups)))
        with self.svc.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._job(r) for r in rows]

    def job(self, principal: Principal, job_id: int) -> dict[str, Any]:
        _require(principal, Permission.READ)
        j, t = schema.scan_jobs, schema.scan_targets
        with self.svc.engine.connect() as conn:
            row = conn.execute(
                select(j, t.c.name.label("target"))
                .outerjoin(t, t.c.id == j.c.target_id)
                .where(j.c.id == job_id)
            ).first()
        if row is None or not principal.sees(row.group_id):
            raise NotFound(f"no job {job_id}")
        return self._job(row)

    @staticmethod
    def _job(r: Any) -> dict[str, Any]:
        return {
            "id": r.id,
            "group_id": r.group_id,
            "target_id": r.target_id,
            "target": r.target,
            "requested_by": r.requested_by,
            "requested_at": utc(r.requested_at),
            "started_at": utc(r.started_at),
            "finished_at": utc(r.finished_at),
            "status": r.status,
            "scan_id": r.scan_id,
            "error": r.error,
        }
