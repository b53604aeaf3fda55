"""The read side the dashboard and the REST API share. Every query is limited to the caller's groups
(an object outside them is :class:`NotFound`, as if it did not exist) — pages, API, exports and
search alike.

Built for a store of millions of findings: the finding list pages by keyset (``id < cursor``, newest
first) over indexes that match its filters; the fleet overview ranks targets by per-target counts
computed once per finished scan (``target_stats``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, bindparam, case, false, func, insert, or_, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement

from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.results import ScanCounts, ScanResult
from vmsec.service.core import NotFound, Principal, ServiceError, utc
from vmsec.store import schema
from vmsec.store.diff import Diff
from vmsec.store.store import _evidence

if TYPE_CHECKING:
    from vmsec.service.core import Service

SEVERITIES = tuple(s.value for s in Severity)
STATUSES = tuple(s.value for s in Status)
MAX_PAGE = 500
_STAT_COLUMNS = (
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


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingFilter:
    severity: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    check: str | None = None  # an id, or a prefix ending in * ("VMS-DOM-*")
    target: str | None = None  # a target name
    kind: str | None = None  # host | domain | guest | network | endpoint
    host: str | None = None
    scan_id: int | None = None
    since: datetime | None = None  # scans started at or after (a naive time is UTC)
    until: datetime | None = None  # … and before
    q: str | None = None  # words in the subject or message

    def validate(self) -> None:
        for value in self.severity:
            if value not in SEVERITIES:
                raise ServiceError(f"unknown severity {value!r}")
        for value in self.status:
            if value not in STATUSES:
                raise ServiceError(f"unknown status {value!r}")
        if self.kind is not None and self.kind not in {k.value for k in TargetKind}:
            raise ServiceError(f"unknown target kind {self.kind!r}")
        for text in (self.check, self.target, self.host, self.q):
            if text is not None and len(text) > 300:
                raise ServiceError("a filter value is longer than 300 characters")


def _finding_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "scan_id": r.scan_id,
        "scan_started_at": utc(r.started_at),
        "group_id": r.group_id,
        "target": {"id": r.target_id, "kind": r.kind, "name": r.name, "host": r.host},
        "check_id": r.check_id,
        "title": r.title,
        "status": r.status,
        "severity": r.severity,
        "subject": r.subject,
        "message": r.message,
        "fingerprint": r.fingerprint,
    }


_PAGE_COLUMNS = (
    schema.findings.c.id,
    schema.findings.c.scan_id,
    schema.findings.c.target_id,
    schema.targets.c.kind,
    schema.targets.c.name,
    schema.targets.c.host,
    schema.findings.c.check_id,
    schema.findings.c.title,
    schema.findings.c.status,
    schema.findings.c.severity,
    schema.findings.c.subject,
    schema.findings.c.message,
    schema.findings.c.fingerprint,
)


def _finding_dicts(
    rows: Sequence[Any], scans: dict[int, tuple[datetime | None, int]]
) -> list[dict[str, Any]]:
    """The finding list's rows (:data:`_PAGE_COLUMNS`) as :func:`_finding_dict` gives them — by tuple
    position, each scan's time and group from ``scans`` (they were read with the visible scans): this
    runs for every row of every page."""
    out = []
    for (
        id_,
        scan_id,
        target_id,
        kind,
        name,
        host,
        check_id,
        title,
        status,
        severity,
        subject,
        message,
        fingerprint,
    ) in rows:
        started, group_id = scans[scan_id]
        out.append(
            {
                "id": id_,
                "scan_id": scan_id,
                "scan_started_at": started,
                "group_id": group_id,
                "target": {"id": target_id, "kind": kind, "name": name, "host": host},
                "check_id": check_id,
                "title": title,
                "status": status,
                "severity": severity,
                "subject": subject,
                "message": message,
                "fingerprint": fingerprint,
            }
        )
    return out


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _FindingStatements:
    """The finding list's statements, built once per shape (which filters are given) with bound
    parameters, and reused: SQLAlchemy spends longer building a statement than running it."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, tuple[Any, ...]], Any] = {}

    def _get(self, kind: str, shape: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        stmt = self._cache.get((kind, shape))
        if stmt is None:
            stmt = self._cache[(kind, shape)] = build()
        return stmt

    def candidates(self, shape: tuple[Any, ...]) -> Any:
        def build() -> Any:
            s, st = schema.scans, schema.scan_stats
            all_groups, since, until, scan_id = shape[:4]
            q = select(
                s.c.id,
                s.c.status,
                s.c.group_id,
                s.c.started_at,
                st.c.scan_id,
                st.c.min_finding_id,
                st.c.max_finding_id,
            ).outerjoin(st, st.c.scan_id == s.c.id)
            if not all_groups:
                q = q.where(s.c.group_id.in_(bindparam("groups", expanding=True)))
            if since:
                q = q.where(s.c.started_at >= bindparam("since", type_=s.c.started_at.type))
            if until:
                q = q.where(s.c.started_at < bindparam("until", type_=s.c.started_at.type))
            if scan_id:
                q = q.where(s.c.id == bindparam("scan_id"))
            return q

        return self._get("candidates", shape[:4], build)

    @staticmethod
    def _targets(shape: tuple[Any, ...], column: Any) -> Any:
        t = schema.targets
        scan_id, target, kind, host = shape[3:7]
        q = select(column)
        if target:
            q = q.where(t.c.name == bindparam("target_name"))
        if kind:
            q = q.where(t.c.kind == bindparam("kind"))
        if host:
            host_name = and_(t.c.kind == "host", t.c.name == bindparam("host"))
            q = q.where(or_(t.c.host == bindparam("host"), host_name))
        if scan_id:
            q = q.where(t.c.scan_id == bindparam("scan_id"))
        return q

    def target_scans(self, shape: tuple[Any, ...]) -> Any:
        def build() -> Any:
            return self._targets(shape, schema.targets.c.scan_id).distinct()

        return self._get("targets", shape[3:7], build)

    def page(self, shape: tuple[Any, ...]) -> Any:
        def build() -> Any:
            f, t = schema.findings, schema.targets
            scan_id, target, kind, host = shape[3:7]
            bounds, cursor, severity, status, check, q = shape[7:]
            walk = select(f.c.id).where(f.c.scan_id.in_(bindparam("scans", expanding=True)))
            if bounds:
                walk = walk.where(f.c.id >= bindparam("low"), f.c.id <= bindparam("high"))
            if cursor:
                walk = walk.where(f.c.id < bindparam("cursor"))
            if severity:
                walk = walk.where(f.c.severity.in_(bindparam("severity", expanding=True)))
            if status:
                walk = walk.where(f.c.status.in_(bindparam("status", expanding=True)))
            if check == "like":
                walk = walk.where(f.c.check_id.like(bindparam("check"), escape="\\"))
            elif check == "eq":
                walk = walk.where(f.c.check_id == bindparam("check"))
            if target or kind or host:
                walk = walk.where(f.c.target_id.in_(self._targets(shape, t.c.id)))
            if scan_id:
                walk = walk.where(f.c.scan_id == bindparam("scan_id"))
            if q:
                pattern: Any = bindparam("pattern")
                walk = walk.where(
                    or_(
                        f.c.subject.ilike(pattern, escape="\\"),
                        f.c.message.ilike(pattern, escape="\\"),
                        f.c.check_id.ilike(pattern, escape="\\"),
                    )
                )
            page = walk.order_by(f.c.id.desc()).limit(bindparam("limit")).scalar_subquery()
            return (
                select(*_PAGE_COLUMNS)
                .join(t, t.c.id == f.c.target_id)
                .where(f.c.id.in_(page))
                .order_by(f.c.id.desc())
            )

        return self._get("page", shape, build)


class Queries:
    def __init__(self, service: Service) -> None:
        self.svc = service
        self._fleet: dict[tuple[Any, ...], tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._statements = _FindingStatements()
        self._lock = threading.Lock()

    # --- visibility -----------------------------------------------------------------------------

    @staticmethod
    def in_groups(principal: Principal, column: Any) -> ColumnElement[bool]:
        if principal.all_groups:
            return true()
        if not principal.groups:
            return false()
        return column.in_(sorted(principal.groups))  # type: ignore[no-any-return]

    def _scan_row(self, conn: Connection, principal: Principal, scan_id: int) -> Any:
        s = schema.scans
        row = conn.execute(select(s).where(s.c.id == scan_id)).first()
        if row is None or not principal.sees(row.group_id):
            raise NotFound(f"no scan {scan_id}")
        return row

    # --- per-target statistics ------------------------------------------------------------------

    def ensure_stats(self, scan_ids: Iterable[int]) -> None:
        """Compute per-target counts for finished scans that have none yet (once per scan)."""
        ids = sorted(set(scan_ids))
        if not ids:
            return
        s, st, f, t = schema.scans, schema.scan_stats, schema.findings, schema.targets
        with self.svc.engine.connect() as conn:
            done = {r[0] for r in conn.execute(select(st.c.scan_id).where(st.c.scan_id.in_(ids)))}
            todo = [
                r[0]
                for r in conn.execute(
                    select(s.c.id).where(
                        s.c.id.in_([i for i in ids if i not in done]), s.c.status != "running"
                    )
                )
            ]
        for scan_id in todo:
            fail = f.c.status == Status.FAIL.value
            sums = [func.sum(case((and_(fail, f.c.severity == sev), 1), else_=0)) for sev in SEVERITIES]
            sums += [
                func.sum(case((f.c.status == status, 1), else_=0))
                for status in ("UNKNOWN", "ERROR", "WAIVED", "PASS")
            ]
            try:
                with self.svc.engine.begin() as conn:
                    counts = {
                        r[0]: r[1:]
                        for r in conn.execute(
                            select(f.c.target_id, *sums).where(f.c.scan_id == scan_id).group_by(f.c.target_id)
                        )
                    }
                    targets = [r[0] for r in conn.execute(select(t.c.id).where(t.c.scan_id == scan_id))]
                    rows = [
                        {
                            "target_id": tid,
                            "scan_id": scan_id,
                            **dict(
                                zip(
                                    _STAT_COLUMNS,
                                    (int(v or 0) for v in counts.get(tid, (0,) * 9)),
                                    strict=True,
                                )
                            ),
                        }
                        for tid in targets
                    ]
                    if rows:
                        conn.execute(insert(schema.target_stats), rows)
                    low, high = conn.execute(
                        select(func.min(f.c.id), func.max(f.c.id)).where(f.c.scan_id == scan_id)
                    ).one()
                    conn.execute(
                        insert(st).values(
                            scan_id=scan_id,
                            computed_at=self.svc.now(),
                            min_finding_id=low,
                            max_finding_id=high,
                        )
                    )
            except IntegrityError:
                pass  # another request computed them at the same time

    # --- scans ------------------------------------------------------------------------------------

    def scans(
        self, principal: Principal, *, limit: int = 50, before: int | None = None
    ) -> list[dict[str, Any]]:
        s, g, ts = schema.scans, schema.groups, schema.target_stats
        limit = max(1, min(limit, MAX_PAGE))
        query = (
            select(s, g.c.name.label("group"))
            .join(g, g.c.id == s.c.group_id)
            .where(self.in_groups(principal, s.c.group_id))
            .order_by(s.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(s.c.id < before)
        with self.svc.engine.connect() as conn:
            rows = conn.execute(query).all()
        self.ensure_stats(r.id for r in rows)
        ids = [r.id for r in rows]
        with self.svc.engine.connect() as conn:
            totals = (
                {
                    r[0]: r[1:]
                    for r in conn.execute(
                        select(
                            ts.c.scan_id, func.count(), *(func.sum(getattr(ts.c, c)) for c in _STAT_COLUMNS)
                        )
                        .where(ts.c.scan_id.in_(ids))
                        .group_by(ts.c.scan_id)
                    )
                }
                if ids
                else {}
            )
        return [self._scan_dict(r, totals.get(r.id)) for r in rows]

    @staticmethod
    def _scan_dict(r: Any, totals: Sequence[Any] | None) -> dict[str, Any]:
        counts = (
            dict(zip(("targets", *_STAT_COLUMNS), (int(v or 0) for v in totals), strict=True))
            if totals
            else None
        )
        return {
            "id": r.id,
            "group": r.group,
            "group_id": r.group_id,
            "source": r.source,
            "profile": r.profile,
            "started_at": utc(r.started_at),
            "finished_at": utc(r.finished_at),
            "state": "interrupted" if r.status == "running" else r.status,
            "checks_run": r.checks_run,
            "tool_version": r.tool_version,
            "counts": counts,
        }

    def scan(self, principal: Principal, scan_id: int) -> dict[str, Any]:
        g, t, ts, rec = schema.groups, schema.targets, schema.target_stats, schema.collection_records
        with self.svc.engine.connect() as conn:
            row = self._scan_row(conn, principal, scan_id)
            group = conn.execute(select(g.c.name).where(g.c.id == row.group_id)).scalar()
        self.ensure_stats([scan_id])
        with self.svc.engine.connect() as conn:
            targets = conn.execute(
                select(t.c.id, t.c.kind, t.c.name, t.c.host, *(getattr(ts.c, c) for c in _STAT_COLUMNS))
                .outerjoin(ts, ts.c.target_id == t.c.id)
                .where(t.c.scan_id == scan_id)
                .order_by(t.c.position)
                .limit(5000)
            ).all()
            records = conn.execute(
                select(rec.c.source, rec.c.what, rec.c.ok, rec.c.reason, rec.c.kind)
                .where(rec.c.scan_id == scan_id, rec.c.ok == false())
                .order_by(rec.c.id)
                .limit(1000)
            ).all()
            previous = conn.execute(
                select(func.max(schema.scans.c.id)).where(
                    schema.scans.c.id < scan_id,
                    schema.scans.c.group_id == row.group_id,
                    schema.scans.c.source == row.source,
                )
            ).scalar()
        totals = [len(targets)] + [sum(int(getattr(x, c) or 0) for x in targets) for c in _STAT_COLUMNS]
        out = self._scan_dict(_WithGroup(row, group), totals)
        out["targets"] = [
            {
                "id": x.id,
                "kind": x.kind,
                "name": x.name,
                "host": x.host,
                "counts": {c: int(getattr(x, c) or 0) for c in _STAT_COLUMNS},
            }
            for x in targets
        ]
        out["errors"] = [
            {"source": r.source, "what": r.what, "reason": r.reason, "kind": r.kind} for r in records
        ]
        out["previous"] = previous
        return out

    def diff(self, principal: Principal, a: int, b: int) -> Diff:
        with self.svc.engine.connect() as conn:
            self._scan_row(conn, principal, a)
            self._scan_row(conn, principal, b)
        return self.svc.store.diff(a, b)

    def load_scan(self, principal: Principal, scan_id: int) -> ScanResult:
        """A whole stored scan, for exports (the reporters render it)."""
        with self.svc.engine.connect() as conn:
            self._scan_row(conn, principal, scan_id)
        return self.svc.store.load(scan_id)

    # --- findings ---------------------------------------------------------------------------------

    def findings(
        self, principal: Principal, flt: FindingFilter, *, cursor: int | None = None, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of findings, newest first, and the cursor of the next page (None: last page).

        Two statements (three with a target filter), each built once per shape of filter and then
        only bound (:class:`_FindingStatements`: building a statement cost more than running it)."""
        flt.validate()
        limit = max(1, min(limit, MAX_PAGE))
        if not principal.all_groups and not principal.groups:
            return [], None
        sql = self._statements
        params: dict[str, Any] = {}
        if not principal.all_groups:
            params["groups"] = sorted(principal.groups)
        # Times are compared in UTC, as they are stored: SQLite would compare a +02:00 time's wall
        # clock with UTC's, PostgreSQL would read a naive one in its session's zone.
        if flt.since is not None:
            params["since"] = utc(flt.since)
        if flt.until is not None:
            params["until"] = utc(flt.until)
        if flt.scan_id is not None:
            params["scan_id"] = flt.scan_id
        target = bool(flt.target or flt.kind or flt.host)
        if flt.target:
            params["target_name"] = flt.target
        if flt.kind:
            params["kind"] = flt.kind
        if flt.host:
            params["host"] = flt.host
        shape = (
            principal.all_groups,
            flt.since is not None,
            flt.until is not None,
            flt.scan_id is not None,
            bool(flt.target),
            bool(flt.kind),
            bool(flt.host),
        )
        with self.svc.reader.connect() as conn:
            # 1. The scans the caller may see (in the time window, of the scan asked for), each with the
            #    range its finding ids occupy: the page query then reads the findings table alone,
            #    walking an index in id order only over the part of it those scans fill.
            candidates = conn.execute(sql.candidates(shape), params).all()
            if target and len(candidates) > 1:
                # Target ids are resolved inside the page query (the (target_id, id) index serves it);
                # the scans those targets belong to narrow the id ranges first.
                of_targets = {r[0] for r in conn.execute(sql.target_scans(shape), params)}
                candidates = [c for c in candidates if c.id in of_targets]
            if not candidates:
                return [], None
            bounds = self._id_bounds(candidates)
            if bounds == ():
                return [], None  # every candidate scan is known to hold no findings
            # 2. The page (and one finding more: is there a next page?) with what it shows about each
            #    finding, in one statement: the keyset walk is a subquery of its own, then joined.
            #    (Restricted to the candidate scans also for a principal who sees every group: a scan
            #    stored since step 1 stays out.)
            params["scans"] = [c.id for c in candidates]
            if bounds:
                params["low"], params["high"] = bounds
            if cursor is not None:
                params["cursor"] = cursor
            if flt.severity:
                params["severity"] = list(flt.severity)
            if flt.status:
                params["status"] = list(flt.status)
            check = "" if not flt.check else "like" if flt.check.endswith("*") else "eq"
            if check == "like":
                params["check"] = _like_escape(flt.check[:-1]) + "%"  # type: ignore[index]
            elif check == "eq":
                params["check"] = flt.check
            if flt.q:
                params["pattern"] = "%" + _like_escape(flt.q.strip()) + "%"
            params["limit"] = limit + 1
            page_shape = (
                *shape,
                bool(bounds),
                cursor is not None,
                bool(flt.severity),
                bool(flt.status),
                check,
                bool(flt.q),
            )
            rows = conn.execute(sql.page(page_shape), params).all()
        more = len(rows) > limit
        rows = rows[:limit]
        scans = {c.id: (utc(c.started_at), c.group_id) for c in candidates}
        return _finding_dicts(rows, scans), (rows[-1][0] if more else None)

    def _id_bounds(self, candidates: Sequence[Any]) -> tuple[int, int] | tuple[()] | None:
        """The range of finding ids the candidate scans occupy: (low, high); () when they hold no
        findings; None when a scan's range is not known (still running, or its statistics not computed
        yet — they are computed here for a few finished scans)."""
        missing = [c.id for c in candidates if c.scan_id is None and c.status != "running"]
        if any(c.scan_id is None and c.status == "running" for c in candidates) or len(missing) > 20:
            return None
        ranges = [(c.min_finding_id, c.max_finding_id) for c in candidates if c.scan_id is not None]
        if missing:
            self.ensure_stats(missing)
            st = schema.scan_stats
            with self.svc.reader.connect() as conn:
                got = conn.execute(
                    select(st.c.scan_id, st.c.min_finding_id, st.c.max_finding_id).where(
                        st.c.scan_id.in_(missing)
                    )
                ).all()
            if len(got) != len(missing):
                return None
            ranges += [(r.min_finding_id, r.max_finding_id) for r in got]
        known = [r for r in ranges if r[0] is not None and r[1] is not None]
        if not known:
            return ()
        return min(r[0] for r in known), max(r[1] for r in known)

    def finding(self, principal: Principal, finding_id: int) -> dict[str, Any]:
        f, t, s, chk = schema.findings, schema.targets, schema.scans, schema.scan_checks
        with self.svc.engine.connect() as conn:
            r = conn.execute(
                select(f, t.c.kind, t.c.name, t.c.host, s.c.started_at, s.c.group_id)
                .join(t, t.c.id == f.c.target_id)
                .join(s, s.c.id == f.c.scan_id)
                .where(f.c.id == finding_id)
            ).first()
            if r is None or not principal.sees(r.group_id):
                raise NotFound(f"no finding {finding_id}")
            remediation = conn.execute(
                select(chk.c.remediation).where(chk.c.scan_id == r.scan_id, chk.c.check_id == r.check_id)
            ).scalar()
        out = _finding_dict(r)
        out.update(
            evidence=[e.as_dict() for e in _evidence(r.evidence)],
            tags=list(r.tags),
            vulnerability=r.vulnerability,
            detail=r.detail,
            remediation=remediation or "",
        )
        return out

    # --- fleet, hosts, VMs ------------------------------------------------------------------------

    def _latest(self, principal: Principal, kinds: Sequence[str]) -> Any:
        """Subquery: the newest stored row of every target (kind, name, host) in the caller's groups."""
        t, s = schema.targets, schema.scans
        return (
            select(func.max(t.c.id).label("id"))
            .join(s, s.c.id == t.c.scan_id)
            .where(self.in_groups(principal, s.c.group_id), s.c.status != "running", t.c.kind.in_(kinds))
            .group_by(t.c.kind, t.c.name, t.c.host)
            .subquery()
        )

    def _pending_scans(self, principal: Principal) -> None:
        s, st = schema.scans, schema.scan_stats
        with self.svc.engine.connect() as conn:
            missing = [
                r[0]
                for r in conn.execute(
                    select(s.c.id)
                    .outerjoin(st, st.c.scan_id == s.c.id)
                    .where(
                        st.c.scan_id.is_(None),
                        s.c.status != "running",
                        self.in_groups(principal, s.c.group_id),
                    )
                )
            ]
        self.ensure_stats(missing)

    def _ranked(
        self, principal: Principal, kinds: Sequence[str], *, host: str | None = None, limit: int = 100
    ) -> tuple[list[dict[str, Any]], int]:
        t, s, ts = schema.targets, schema.scans, schema.target_stats
        latest = self._latest(principal, kinds)
        base = (
            select(
                t.c.id,
                t.c.kind,
                t.c.name,
                t.c.host,
                t.c.scan_id,
                s.c.started_at,
                s.c.group_id,
                *(getattr(ts.c, c) for c in _STAT_COLUMNS),
            )
            .join(latest, latest.c.id == t.c.id)
            .join(s, s.c.id == t.c.scan_id)
            .join(ts, ts.c.target_id == t.c.id)
        )
        if host is not None:
            base = base.where(t.c.host == host)
        order = [getattr(ts.c, c).desc() for c in ("fail_critical", "fail_high", "fail_medium", "fail_low")]
        with self.svc.engine.connect() as conn:
            rows = conn.execute(base.order_by(*order, ts.c.unknown.desc(), t.c.name).limit(limit)).all()
            total = conn.execute(select(func.count()).select_from(latest)).scalar_one()
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "name": r.name,
                "host": r.host,
                "scan_id": r.scan_id,
                "scanned_at": utc(r.started_at),
                "group_id": r.group_id,
                "counts": {c: int(getattr(r, c)) for c in _STAT_COLUMNS},
            }
            for r in rows
        ], int(total)

    def fleet(self, principal: Principal, limit: int = 100) -> dict[str, Any]:
        """Hosts and VMs, most exposed first (FAIL counts by severity, then UNKNOWN).

        It changes only when a scan finishes: kept per group set and limit until the set of scans with
        statistics (their count and newest id) changes."""
        self._pending_scans(principal)
        st = schema.scan_stats
        with self.svc.engine.connect() as conn:
            version = tuple(conn.execute(select(func.count(), func.max(st.c.scan_id))).one())
        key = (principal.all_groups, principal.groups, limit)
        with self._lock:
            hit = self._fleet.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        hosts, n_hosts = self._ranked(principal, ("host",), limit=limit)
        vms, n_vms = self._ranked(principal, ("domain",), limit=limit)
        result = {"hosts": hosts, "vms": vms, "host_count": n_hosts, "vm_count": n_vms}
        with self._lock:
            if len(self._fleet) > 256:
                self._fleet.clear()
            self._fleet[key] = (version, result)
        return result

    def hosts(self, principal: Principal, limit: int = 500) -> list[dict[str, Any]]:
        self._pending_scans(principal)
        return self._ranked(principal, ("host",), limit=limit)[0]

    def vms(self, principal: Principal, limit: int = 500, host: str | None = None) -> list[dict[str, Any]]:
        self._pending_scans(principal)
        return self._ranked(principal, ("domain",), limit=limit, host=host)[0]

    def _target_row(self, conn: Connection, principal: Principal, target_id: int, kind: str) -> Any:
        t, s = schema.targets, schema.scans
        row = conn.execute(
            select(t, s.c.group_id, s.c.started_at)
            .join(s, s.c.id == t.c.scan_id)
            .where(t.c.id == target_id, t.c.kind == kind)
        ).first()
        if row is None or not principal.sees(row.group_id):
            raise NotFound(f"no {'VM' if kind == 'domain' else kind} {target_id}")
        return row

    def _findings_of(
        self, conn: Connection, target_ids: Sequence[int], by_id: dict[int, Target]
    ) -> list[Finding]:
        f = schema.findings
        if not target_ids:
            return []
        rows = conn.execute(
            select(f).where(f.c.target_id.in_(target_ids)).order_by(f.c.seq).limit(20_000)
        ).all()
        return [
            Finding(
                check_id=r.check_id,
                title=r.title,
                status=Status(r.status),
                severity=Severity(r.severity),
                target=by_id[r.target_id],
                subject=r.subject,
                message=r.message,
                evidence=_evidence(r.evidence),
                tags=tuple(r.tags),
                vulnerability=r.vulnerability,
                detail=r.detail,
            )
            for r in rows
        ]

    def host(self, principal: Principal, target_id: int) -> dict[str, Any]:
        """A host target: its own findings (isolation, management plane) and its VMs ranked."""
        with self.svc.engine.connect() as conn:
            row = self._target_row(conn, principal, target_id, "host")
            target = Target(TargetKind.HOST, row.name, row.host)
            findings = self._findings_of(conn, [row.id], {row.id: target})
        vms = self.vms(principal, host=row.name)
        return {
            "id": row.id,
            "name": row.name,
            "scan_id": row.scan_id,
            "scanned_at": utc(row.started_at),
            "details": row.details or {},
            "group_id": row.group_id,
            "isolation": [f for f in findings if "isolation" in f.tags],
            "management": [f for f in findings if "isolation" not in f.tags],
            "counts": ScanCounts.of(findings),
            "vms": vms,
        }

    def vm(self, principal: Principal, target_id: int) -> dict[str, Any]:
        """A VM as one page: its exposure (vmsec.report.exposure), joining its host's isolation and
        management plane, its domain XML configuration, its guest OS and probe findings."""
        from vmsec.report.exposure import exposure

        t = schema.targets
        with self.svc.engine.connect() as conn:
            row = self._target_row(conn, principal, target_id, "domain")
            related = list(
                conn.execute(
                    select(t).where(
                        t.c.scan_id == row.scan_id,
                        or_(
                            and_(t.c.kind == "host", t.c.name == row.host),
                            and_(t.c.kind == "guest", t.c.host == row.host, t.c.name == row.name),
                            and_(t.c.kind == "endpoint", t.c.host == row.name),
                        ),
                    )
                ).all()
            )
            if not any(r.kind == "guest" for r in related):
                # a guest read from the domain's disks names its domain in its details
                for r in conn.execute(
                    select(t).where(t.c.scan_id == row.scan_id, t.c.kind == "guest").limit(10_000)
                ):
                    if (r.details or {}).get("domain") == row.name:
                        related.append(r)
                        break
            by_id = {r.id: Target(TargetKind(r.kind), r.name, r.host) for r in [row, *related]}
            findings = self._findings_of(conn, list(by_id), by_id)
        details = {by_id[r.id]: r.details or {} for r in [row, *related]}
        dom = by_id[row.id]
        started = utc(row.started_at) or self.svc.now()
        scan = ScanResult(
            source="",
            profile="",
            started_at=started,
            finished_at=started,
            checks_run=0,
            findings=findings,
            targets=tuple(by_id.values()),
            details=details,
            counts=ScanCounts.of(findings),
        )
        view = next((v for v in exposure(scan) if v.domain == dom.name), None)
        sections: dict[str, list[Finding]] = {
            "host isolation": [],
            "management plane": [],
            "VM configuration (domain XML)": [],
            "guest OS": [],
            "probe": [],
        }
        for f in findings:
            if f.target == dom:
                sections["VM configuration (domain XML)"].append(f)
            elif f.target.kind is TargetKind.HOST:
                sections["host isolation" if "isolation" in f.tags else "management plane"].append(f)
            elif f.target.kind is TargetKind.GUEST:
                sections["guest OS"].append(f)
            else:
                sections["probe"].append(f)
        host_id = next((r.id for r in related if r.kind == "host"), None)
        return {
            "id": row.id,
            "name": row.name,
            "host": row.host,
            "host_id": host_id,
            "scan_id": row.scan_id,
            "scanned_at": started,
            "details": row.details or {},
            "group_id": row.group_id,
            "exposure": view,
            "sections": sections,
            "counts": ScanCounts.of(findings),
        }

    # --- audit log --------------------------------------------------------------------------------

    def audit(
        self, principal: Principal, *, cursor: int | None = None, limit: int = 100, action: str | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        a = schema.audit_log
        limit = max(1, min(limit, MAX_PAGE))
        query = select(a).order_by(a.c.id.desc()).limit(limit + 1)
        query = query.where(self.in_groups(principal, a.c.group_id))
        if cursor is not None:
            query = query.where(a.c.id < cursor)
        if action:
            query = query.where(a.c.action == action[:50])
        with self.svc.engine.connect() as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return [
            {
                "id": r.id,
                "ts": utc(r.ts),
                "actor": r.actor,
                "action": r.action,
                "outcome": r.outcome,
                "target": r.target,
                "group_id": r.group_id,
                "remote": r.remote,
                "detail": orjson.loads(r.detail),
                "hash": r.hash,
            }
            for r in rows
        ], (rows[-1].id if more else None)


class _WithGroup:
    """A scans row with its group's name attached (for _scan_dict)."""

    def __init__(self, row: Any, group: str | None) -> None:
        self._row, self.group = row, group

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)
