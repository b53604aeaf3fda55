"""The monitor: libvirt domain events in, re-audits and alerts out.

One thread per connection URI does everything for it, in order:

1. connect (read-write, else read-only), register the domain event callbacks (lifecycle, device
   added/removed, metadata changed, guest agent, graphics) and a close callback; keep-alive probes
   notice a daemon that hangs;
2. audit every domain (:func:`vmsec.pipeline.scan` on a :class:`~vmsec.specs.LibvirtSpec`) and compare
   with the last audit kept in the store — the baseline;
3. then, for each burst of events: record them (the console-access trail, the lifecycle), wait a
   moment for the burst to end (``debounce``), re-audit the connection and compare every domain with
   its previous audit finding by finding (:mod:`vmsec.monitor.drift`): each FAIL that appeared or
   went away is an alert. The whole connection is re-audited, not only the domain that changed,
   because some checks look across domains (a writable disk shared by two VMs);
4. when the connection drops (libvirtd restarted), reconnect with backoff (at most ``reconnect_max``
   seconds apart), register the callbacks again and resynchronise: re-audit everything and count
   the domains that changed without an event reaching us — events possibly missed.

libvirt's callbacks run on libvirt's event loop thread (registered once per process); they only queue.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select

from vmsec.metrics import Metrics
from vmsec.monitor.alerts import Alert, Dispatcher, plain
from vmsec.monitor.drift import AuditedTarget, DriftChange, audited_targets, compare
from vmsec.store import Store, schema
from vmsec.store.writer import clean_text

log = logging.getLogger("vmsec.monitor")

__all__ = ["Monitor", "MonitorOptions", "RawEvent", "lifecycle_name"]

# virDomainEventType and the details of the kinds the monitor names.
_LIFECYCLE = {0: "defined", 1: "undefined", 2: "started", 3: "suspended", 4: "resumed", 5: "stopped",
              6: "shutdown", 7: "pmsuspended", 8: "crashed"}
_DETAILS = {
    0: {0: "added", 1: "updated", 2: "renamed", 3: "from-snapshot"},
    1: {0: "removed", 1: "renamed"},
    2: {0: "booted", 1: "migrated", 2: "restored", 3: "from-snapshot", 4: "wakeup"},
    5: {0: "shutdown", 1: "destroyed", 2: "crashed", 3: "migrated", 4: "saved", 5: "failed",
        6: "from-snapshot"},
}
_GRAPHICS_PHASE = {0: "graphics-connect", 1: "graphics-initialize", 2: "graphics-disconnect"}
_AGENT_STATE = {1: "agent-connected", 2: "agent-disconnected"}
_AUDITED = frozenset({"defined", "undefined", "started", "stopped", "suspended", "resumed", "shutdown",
                      "pmsuspended", "crashed", "device-added", "device-removed", "metadata-changed",
                      "agent-connected"})


def lifecycle_name(event: int, detail: int) -> tuple[str, str]:
    """(event, detail) names of a lifecycle event (unknown numbers stay visible: ``event-9``)."""
    return _LIFECYCLE.get(event, f"event-{event}"), _DETAILS.get(event, {}).get(detail, f"detail-{detail}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RawEvent:
    """An event as a callback received it (queued by libvirt's thread, handled by the URI's)."""

    received: float  # time.monotonic()
    at: datetime
    domain: str | None
    uuid: str | None
    event: str
    detail: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorOptions:
    store_url: str
    profile: str = "multi-tenant"
    include_host: bool | None = None
    debounce: float = 0.25  # seconds without a new event before a burst is re-audited
    debounce_max: float = 1.0  # … but never longer than this after its first event
    reconnect_max: float = 5.0  # backoff ceiling between reconnection tries
    keepalive: tuple[int, int] = (2, 3)  # seconds between probes, probes missed before giving up
    keep_scans: bool = False  # keep every audit in the findings store (history, diff)
    guest_audit: bool = False  # audit the guest through its agent when the agent connects
    advisory_db: str | None = None


_EVENT_LOOP_LOCK = threading.Lock()
_EVENT_LOOP_STARTED = False


def _event_loop(libvirt: Any) -> None:
    """libvirt's default event loop, registered once per process, run by a daemon thread."""
    global _EVENT_LOOP_STARTED
    with _EVENT_LOOP_LOCK:
        if _EVENT_LOOP_STARTED:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-event-loop", daemon=True).start()
        _EVENT_LOOP_STARTED = True


def _address(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    raw = value.get("family")
    family = {0: "ipv4", 1: "ipv6", 2: "unix"}.get(raw, str(raw)) if isinstance(raw, int) else str(raw)
    return {"family": family, "node": plain(str(value.get("node", "")), 200),
            "service": plain(str(value.get("service", "")), 50)}


class _Watch:
    """Everything about one URI (see the module docstring)."""

    def __init__(self, monitor: Monitor, uri: str) -> None:
        self.monitor = monitor
        self.uri = uri
        self.events: queue.Queue[RawEvent | str] = queue.Queue()
        self.baseline: dict[tuple[str, str], AuditedTarget] = {}
        self.connected = threading.Event()
        self.ready = threading.Event()  # the first audit is done
        self.thread = threading.Thread(target=self.run, name=f"vmsec-monitor {uri}", daemon=True)
        self._conn: Any = None
        self._callbacks: list[int] = []
        self._ever_connected = False

    # --- callbacks (libvirt's event loop thread: only queue) -------------------------------------

    def _queue(self, dom: Any, event: str, detail: str | None = None, **data: Any) -> None:
        try:
            name, uuid = str(dom.name()), str(dom.UUIDString())
        except Exception:  # a domain gone already: the event still counts
            name, uuid = None, None
        self.events.put(RawEvent(received=time.monotonic(), at=datetime.now(UTC), domain=name, uuid=uuid,
                                 event=event, detail=detail, data=data))

    def _on_lifecycle(self, _conn: Any, dom: Any, event: int, detail: int, _opaque: Any) -> None:
        name, detail_name = lifecycle_name(event, detail)
        self._queue(dom, name, detail_name)

    def _on_device_added(self, _conn: Any, dom: Any, alias: str, _opaque: Any) -> None:
        self._queue(dom, "device-added", plain(str(alias), 200))

    def _on_device_removed(self, _conn: Any, dom: Any, alias: str, _opaque: Any) -> None:
        self._queue(dom, "device-removed", plain(str(alias), 200))

    def _on_metadata(self, _conn: Any, dom: Any, mtype: int, nsuri: str | None, _opaque: Any) -> None:
        kind = {0: "description", 1: "title", 2: "element"}.get(mtype, str(mtype))
        self._queue(dom, "metadata-changed", kind, namespace=plain(nsuri or "", 500) or None)

    def _on_agent(self, _conn: Any, dom: Any, state: int, reason: int, _opaque: Any) -> None:
        why = {0: "unknown", 1: "domain-started", 2: "channel"}.get(reason, str(reason))
        self._queue(dom, _AGENT_STATE.get(state, f"agent-{state}"), why)

    def _on_graphics(self, _conn: Any, dom: Any, phase: int, local: Any, remote: Any, auth: str,
                     subject: Any, _opaque: Any) -> None:
        identity = [{"type": plain(str(t), 50), "name": plain(str(n), 500)} for t, n in (subject or ())][:16]
        self._queue(dom, _GRAPHICS_PHASE.get(phase, f"graphics-{phase}"), plain(str(auth or ""), 50),
                    local=_address(local), remote=_address(remote), auth=plain(str(auth or ""), 50),
                    identity=identity)

    def _on_close(self, _conn: Any, reason: int, _opaque: Any) -> None:
        why = {0: "error", 1: "end of file", 2: "keep-alive timeout", 3: "client"}.get(reason, str(reason))
        self.events.put(f"closed: {why}")

    # --- connection ------------------------------------------------------------------------------

    def _connect(self, libvirt: Any) -> None:
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError:
            conn = libvirt.openReadOnly(self.uri)
        ids = []
        try:
            for event_id, callback in (
                    (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle),
                    (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, self._on_device_added),
                    (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, self._on_device_removed),
                    (libvirt.VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, self._on_metadata),
                    (libvirt.VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, self._on_agent),
                    (libvirt.VIR_DOMAIN_EVENT_ID_GRAPHICS, self._on_graphics)):
                ids.append(conn.domainEventRegisterAny(None, event_id, callback, None))
            conn.registerCloseCallback(self._on_close, None)
            with contextlib.suppress(libvirt.libvirtError):  # local drivers have no keep-alive
                conn.setKeepAlive(*self.monitor.options.keepalive)
        except Exception:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        self._conn, self._callbacks = conn, ids

    def _disconnect(self, libvirt: Any) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        for callback_id in self._callbacks:
            with contextlib.suppress(libvirt.libvirtError):
                conn.domainEventDeregisterAny(callback_id)
        with contextlib.suppress(libvirt.libvirtError):
            conn.unregisterCloseCallback()
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()
        self._callbacks = []

    def _alive(self) -> bool:
        try:
            return bool(self._conn is not None and self._conn.isAlive())
        except Exception:
            return False

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        import libvirt

        monitor, stop = self.monitor, self.monitor.stopping
        delay = 0.25
        while not stop.is_set():
            try:
                self._connect(libvirt)
            except Exception as exc:
                if not self._ever_connected and not self.ready.is_set():
                    monitor.note_failure(self.uri, f"cannot connect: {_text(exc)}")
                stop.wait(delay)
                delay = min(monitor.options.reconnect_max, delay * 2)
                continue
            delay = 0.25
            self.connected.set()
            monitor.gauge_connected(self.uri, True)
            again = self._ever_connected
            self._ever_connected = True
            if again:
                monitor.metric_reconnect(self.uri)
                monitor.alert(Alert(at=datetime.now(UTC), uri=self.uri, kind="connection", severity="info",
                                    message=f"{self.uri}: connection restored; resynchronising every domain"))
            try:
                self._audit(reason="resync" if again else "start", pending={})
            except Exception as exc:
                log.warning("%s: audit failed: %s", self.uri, _text(exc))
            self.ready.set()
            reason = self._serve(libvirt)
            self.connected.clear()
            monitor.gauge_connected(self.uri, False)
            self._disconnect(libvirt)
            if reason is not None and not stop.is_set():
                monitor.alert(Alert(at=datetime.now(UTC), uri=self.uri, kind="connection", severity="medium",
                                    message=f"{self.uri}: connection lost ({reason}); reconnecting"))
        self._disconnect(libvirt)

    def _serve(self, libvirt: Any) -> str | None:
        """Handle events until the connection closes (its reason) or the monitor stops (None)."""
        monitor, options = self.monitor, self.monitor.options
        pending: dict[str, RawEvent] = {}  # domain → its first unaudited event
        first = last = 0.0
        guests = False
        last_check = time.monotonic()
        while not monitor.stopping.is_set():
            timeout = 0.5
            if pending:
                due = min(last + options.debounce, first + options.debounce_max)
                timeout = max(0.0, due - time.monotonic())
            try:
                item = self.events.get(timeout=timeout)
            except queue.Empty:
                item = None
            if isinstance(item, str):
                return item[len("closed: "):]
            if item is not None:
                batch = [item]
                while True:  # drain the burst: one transaction for many events
                    try:
                        more = self.events.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(more, str):
                        self.events.put(more)
                        break
                    batch.append(more)
                ids = monitor.record_events(self.uri, batch)
                for event, event_id in zip(batch, ids, strict=True):
                    monitor.on_event(self.uri, event, event_id)
                    if event.event in _AUDITED:
                        if not pending:
                            first = event.received
                        pending.setdefault(event.domain or "", event)
                        last = event.received
                        guests = guests or (event.event == "agent-connected" and options.guest_audit)
            now = time.monotonic()
            if pending and (now >= last + options.debounce or now >= first + options.debounce_max):
                try:
                    self._audit(reason="event", pending=pending, guests=guests)
                except Exception as exc:
                    log.warning("%s: re-audit failed: %s", self.uri, _text(exc))
                pending, guests = {}, False
            if now - last_check > 2.0:  # a connection that died without telling us
                last_check = now
                if not self._alive():
                    return "the connection is no longer alive"
        return None

    # --- audits ----------------------------------------------------------------------------------

    def _audit(self, *, reason: str, pending: Mapping[str, RawEvent], guests: bool = False) -> None:
        from vmsec.pipeline import ScanOptions, scan
        from vmsec.specs import LibvirtSpec

        monitor, options = self.monitor, self.monitor.options
        began = time.monotonic()
        spec = LibvirtSpec(uri=self.uri, include_host=options.include_host,
                           guests="agent" if guests else None)
        result = scan([spec], ScanOptions(
            profile=options.profile, advisory_db=options.advisory_db,
            store_url=options.store_url if options.keep_scans else None))
        monitor.observe_audit(self.uri, time.monotonic() - began, result.complete)
        current = audited_targets(result.findings, result.details)
        if reason == "start":
            previous = monitor.load_baseline(self.uri)
            compared = bool(previous)
        else:
            previous, compared = self.baseline, True
        kinds = {"domain", "guest"} if guests or reason != "event" else {"domain"}
        changes: list[DriftChange] = []
        missed = 0
        if compared:
            for key in sorted(set(previous) | set(current)):
                if key[0] not in kinds and key in previous:
                    continue  # guests are compared only when this audit read them
                before, after = previous.get(key), current.get(key)
                if reason != "event" and key[0] == "domain" and (
                        before is None or after is None or before.digest != after.digest):
                    missed += 1  # changed, defined or undefined while no event could reach us
                changes += compare(before, after)
        # Guests not read by this audit keep their last audit.
        merged = dict(current)
        for key, audited in self.baseline.items():
            if key[0] not in kinds and key not in merged and (("domain", key[1]) in current):
                merged[key] = audited
        now = time.monotonic()
        earliest = min((e.received for e in pending.values()), default=None)
        for change in changes:
            event = pending.get(change.name)
            origin = event.received if event is not None else earliest
            lag = round(now - origin, 6) if origin is not None else None
            data: dict[str, Any] = {"subject": change.subject, "title": change.title, "target": change.kind}
            if reason != "event":
                data["found_on"] = "resynchronisation" if reason == "resync" else "start (since the last run)"
            monitor.alert(Alert(
                at=datetime.now(UTC), uri=self.uri, kind="drift", change=change.change,
                severity=change.severity if change.change == "new" else "info", domain=change.name,
                check_id=change.check_id, fingerprint=change.fingerprint, message=change.describe(),
                data=data, lag_s=lag), event_id=monitor.event_ids.get(id(event)) if event else None)
        if missed and compared:
            monitor.metric_missed(self.uri, missed)
            monitor.alert(Alert(
                at=datetime.now(UTC), uri=self.uri, kind="connection", severity="medium",
                message=(f"{self.uri}: {missed} domain{'s' if missed != 1 else ''} changed while no events "
                         "were received (events possibly missed)"),
                data={"missed": missed, "reason": reason}))
        monitor.save_baseline(self.uri, self.baseline, merged)
        monitor.set_findings(self.uri, merged)
        self.baseline = merged


def _text(exc: BaseException) -> str:
    get = getattr(exc, "get_error_message", None)
    message = get() if callable(get) else None
    return plain(str(message or exc) or type(exc).__name__, 500)


class Monitor:
    """Watches ``uris`` until :meth:`stop` (see the module docstring)."""

    def __init__(self, uris: Sequence[str], options: MonitorOptions, store: Store, dispatcher: Dispatcher,
                 metrics: Metrics | None = None, on_ready: Callable[[str, int], None] | None = None) -> None:
        self.options = options
        self.store = store
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.on_ready = on_ready
        self.stopping = threading.Event()
        self.watches = [_Watch(self, uri) for uri in uris]
        self.event_ids: dict[int, int] = {}
        self._failures: dict[str, str] = {}

    def start(self) -> None:
        import libvirt

        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        _event_loop(libvirt)
        for watch in self.watches:
            watch.thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for watch in self.watches:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not watch.ready.wait(left):
                return False
            if self.on_ready is not None:
                self.on_ready(watch.uri, sum(1 for k in watch.baseline if k[0] == "domain"))
        return True

    def stop(self) -> None:
        self.stopping.set()
        for watch in self.watches:
            watch.thread.join(10)

    def note_failure(self, uri: str, message: str) -> None:
        if self._failures.get(uri) != message:
            self._failures[uri] = message
            log.warning("%s: %s", uri, message)

    # --- events and alerts -----------------------------------------------------------------------

    def record_events(self, uri: str, events: Sequence[RawEvent]) -> list[int]:
        me = schema.monitor_events
        rows = [{"at": e.at, "uri": clean_text(uri), "domain": clean_text(e.domain) if e.domain else None,
                 "uuid": e.uuid, "event": e.event, "detail": clean_text(e.detail) if e.detail else None,
                 "data": dict(e.data) or None} for e in events]
        ids: list[int] = []
        with self.store.transaction("recording monitor events") as conn:
            for row in rows:
                ids.append(int(conn.execute(insert(me).values(**row)).inserted_primary_key[0]))
        if self.metrics is not None:
            for e in events:
                self.metrics.events.labels(uri[:200], e.event).inc()
        return ids

    def on_event(self, uri: str, event: RawEvent, event_id: int) -> None:
        """Alerts that need no audit: console access, domains defined and undefined."""
        self.event_ids[id(event)] = event_id
        if len(self.event_ids) > 100_000:
            self.event_ids.clear()
        name = plain(event.domain or "?", 200)
        lag = round(time.monotonic() - event.received, 6)
        if event.event.startswith("graphics-"):
            remote = event.data.get("remote") or {}
            who = ", ".join(f"{i['type']}={i['name']}" for i in event.data.get("identity") or ()) or "none"
            verb = {"graphics-connect": "connected to", "graphics-initialize": "authenticated on",
                    "graphics-disconnect": "disconnected from"}.get(event.event, event.event)
            client = f"{remote.get('node', '?')}:{remote.get('service', '?')}"
            self.alert(Alert(at=datetime.now(UTC), uri=uri, kind="console", severity="info",
                             domain=event.domain, change=event.event.removeprefix("graphics-"),
                             message=(f"console client {client} {verb} {name} "
                                      f"(auth {event.data.get('auth') or 'none'}, identity {who})"),
                             data=dict(event.data), lag_s=lag), event_id=event_id)
        elif event.event in ("defined", "undefined") and event.detail in ("added", "removed", "renamed"):
            self.alert(Alert(at=datetime.now(UTC), uri=uri, kind="lifecycle", severity="info",
                             domain=event.domain, change=event.event,
                             message=f"domain {name} {event.event} ({event.detail})", lag_s=lag),
                       event_id=event_id)

    def alert(self, alert: Alert, event_id: int | None = None) -> None:
        ma = schema.monitor_alerts
        try:
            with self.store.transaction("recording an alert") as conn:
                conn.execute(insert(ma).values(
                    at=alert.at, uri=clean_text(alert.uri),
                    domain=clean_text(alert.domain) if alert.domain else None, kind=alert.kind,
                    change=alert.change, severity=alert.severity, check_id=alert.check_id,
                    fingerprint=alert.fingerprint, message=clean_text(alert.message),
                    data=dict(alert.data) or None,
                    event_id=event_id, lag_s=alert.lag_s))
        except Exception as exc:  # the alert still goes out
            log.warning("alert not stored: %s", exc)
        if self.metrics is not None:
            self.metrics.alerts.labels(alert.kind, alert.severity).inc()
            if alert.lag_s is not None and alert.kind == "drift":
                self.metrics.lag.observe(alert.lag_s)
        self.dispatcher.put(alert)

    # --- baselines -------------------------------------------------------------------------------

    def load_baseline(self, uri: str) -> dict[tuple[str, str], AuditedTarget]:
        md = schema.monitor_domains
        out: dict[tuple[str, str], AuditedTarget] = {}
        with self.store.transaction("reading the monitor's baseline") as conn:
            for r in conn.execute(select(md).where(md.c.uri == uri)).mappings():
                data = r["findings"] or {}
                for kind in ("domain", "guest"):
                    if kind in data:
                        out[(kind, r["domain"])] = AuditedTarget.from_json(
                            kind, r["domain"], r["uuid"], r["digest"] if kind == "domain" else "",
                            data[kind])
        return out

    def save_baseline(self, uri: str, before: Mapping[tuple[str, str], AuditedTarget],
                      after: Mapping[tuple[str, str], AuditedTarget]) -> None:
        names = {name for _kind, name in after}
        changed = {name for name in names
                   if any(before.get((k, name)) != after.get((k, name)) for k in ("domain", "guest"))}
        gone = {name for _kind, name in before} - names
        md = schema.monitor_domains
        now = datetime.now(UTC)
        with self.store.transaction("saving the monitor's baseline") as conn:
            if not before:  # first audit of this process: replace whatever an earlier run kept
                conn.execute(delete(md).where(md.c.uri == uri))
                changed = names
            for name in sorted(gone | changed):
                conn.execute(delete(md).where(md.c.uri == uri, md.c.domain == name))
            rows = []
            for name in sorted(changed):
                domain = after.get(("domain", name))
                guest = after.get(("guest", name))
                data = {k: a.to_json() for k, a in (("domain", domain), ("guest", guest)) if a is not None}
                rows.append({"uri": uri, "domain": name, "uuid": domain.uuid if domain else None,
                             "digest": domain.digest if domain else "", "findings": data, "audited_at": now})
            if rows:
                conn.execute(insert(md), rows)

    # --- metrics ---------------------------------------------------------------------------------

    def observe_audit(self, uri: str, seconds: float, complete: bool) -> None:
        if self.metrics is None:
            return
        self.metrics.scan_duration.labels("monitor-audit").observe(seconds)
        self.metrics.scans.labels("monitor-audit", "complete" if complete else "incomplete").inc()
        if complete:
            self.metrics.last_success.labels(uri[:200]).set(time.time())

    def set_findings(self, uri: str, audited: Mapping[tuple[str, str], AuditedTarget]) -> None:
        if self.metrics is None:
            return
        host = urllib.parse.urlsplit(uri).hostname or uri
        for (kind, name), target in audited.items():
            if kind != "domain":
                continue
            counts = {s: 0 for s in ("critical", "high", "medium", "low", "info")}
            for _check, status, severity, *_rest in target.findings.values():
                if status == "FAIL":
                    counts[severity] = counts.get(severity, 0) + 1
            self.metrics.set_findings(host, name, counts)

    def gauge_connected(self, uri: str, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.connected.labels(uri[:200]).set(1 if up else 0)

    def metric_reconnect(self, uri: str) -> None:
        if self.metrics is not None:
            self.metrics.reconnects.labels(uri[:200]).inc()

    def metric_missed(self, uri: str, n: int) -> None:
        if self.metrics is not None:
            self.metrics.missed.labels(uri[:200]).inc(n)
