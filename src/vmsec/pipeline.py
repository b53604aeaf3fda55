"""The scan pipeline — the one orchestrator: collect → match advisories → check → waive → sinks.

:func:`scan` is what the CLI, the web service, the fleet workers and the monitor call::

    from vmsec.pipeline import ScanOptions, scan
    from vmsec.specs import XmlSpec

    result = scan([XmlSpec(paths=("/etc/libvirt/qemu",))], ScanOptions(store_url="sqlite:///h.db"))

Findings leave the engine one target at a time and go to every sink as they are produced (the store
writes one transaction per target; a streaming report writes as it goes). With
``keep_findings=False`` nothing else holds them, so a scan of 100,000 domains needs memory for the
collected facts, not for its millions of findings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from msgspec import Struct, field, structs

from vmsec.checkinfo import CheckIndex
from vmsec.collectors import CollectContext, collect, get_async_collector
from vmsec.errors import ConfigError, ErrorKind, ScanInterrupted, SourceUnavailable, StoreError
from vmsec.facts import CollectionRecord, Inventory
from vmsec.findings import Finding, Target
from vmsec.profiles import DEFAULT_PROFILE, Profile, load_profile
from vmsec.results import (
    OsInventory,
    ScanCounts,
    ScanResult,
    TargetBatch,
    describe_inventory,
    inventory_targets,
)
from vmsec.specs import TargetSpec

if TYPE_CHECKING:
    from vmsec.checks.catalog import Catalog
    from vmsec.store.writer import StoreSink
    from vmsec.waivers import Waiver

ProgressHook = Callable[[str], None]

__all__ = ["FindingSink", "ScanHeader", "ScanOptions", "ScanStage", "scan"]


class ScanStage:
    """Stage names reported to :attr:`ScanOptions.on_stage` (stable: the CLI shows them)."""

    COLLECT = "collect"
    MATCH = "match"
    CHECK = "check"
    STORE = "store"
    RENDER = "render"


class ScanHeader(Struct, frozen=True, kw_only=True):
    """What is known when a scan starts: handed to every sink first."""

    source: str
    profile: str
    started_at: datetime
    checks_run: int
    checks: CheckIndex
    targets_expected: int = 0  # targets the scan will report (an interrupted store says "n of N")


class FindingSink(Protocol):
    """Receives a scan as it is produced: ``begin`` once, ``add`` once per target, ``end`` once
    (``end`` is not called when the scan was interrupted)."""

    def begin(self, header: ScanHeader) -> None: ...

    def add(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None) -> None: ...

    def end(self, result: ScanResult) -> None: ...


class ScanOptions(Struct, frozen=True, kw_only=True):
    """How to scan. Every field has the CLI's default except ``store_url`` (None: not stored)."""

    profile: str | Profile = DEFAULT_PROFILE
    checks: Sequence[str] = ()  # ids or prefixes ("VMS-DOM-*"); empty: every check
    waivers: Sequence[Waiver] = ()
    advisory_db: str | None = None  # None: the default database in the user cache
    store_url: str | None = None  # a findings store to keep the scan in
    sinks: Sequence[FindingSink] = ()  # further receivers (a streaming report, a web socket …)
    keep_findings: bool = True  # False: findings only go to sinks (huge scans)
    timeout: float | None = None  # seconds per target spec (collection), None: no limit
    concurrency: int = 8  # target specs collected at once (SSH guests, fleet targets)
    group_limit: int = 4  # … of which at most this many share a ``spec.group`` (their hypervisor)
    progress: ProgressHook | None = None  # "n/N target: what" messages
    on_stage: Callable[[str, str], None] | None = None  # (stage, target spec description)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    catalog: Catalog | None = None  # None: the default catalogue


def _profile(value: str | Profile) -> Profile:
    return value if isinstance(value, Profile) else load_profile(value)


def _catalog(options: ScanOptions) -> Catalog:
    from vmsec.checks.catalog import default_catalog, selected_catalog

    if options.catalog is not None:
        catalog = options.catalog.select(ids=options.checks) if options.checks else options.catalog
    elif options.checks:
        catalog = selected_catalog(options.checks)  # imports only the modules holding those checks
    else:
        catalog = default_catalog()
    if options.checks and not catalog.checks:
        raise ConfigError(f"no check matches {', '.join(options.checks)}")
    return catalog


class _Memory:
    """The sink that keeps findings for the returned result."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def begin(self, header: ScanHeader) -> None:
        pass

    def add(self, batch: TargetBatch, details: Mapping[str, Any], os: OsInventory | None) -> None:
        self.findings += batch.findings

    def end(self, result: ScanResult) -> None:
        pass


def _matchable(inventory: Inventory) -> bool:
    """Whether the inventory holds anything advisories are matched against: OS roots, or running QEMU
    processes (the vulnerabilities fixed since each started)."""
    runtime = inventory.host.runtime if inventory.host is not None else None
    return inventory.host_os is not None or bool(inventory.guests) or bool(runtime and runtime.qemu)


def _match(inventory: Inventory, db_path: str | None) -> Inventory:
    """Attach vulnerability reports; without a database they say UNKNOWN (never "0 CVEs")."""
    from vmsec.vulns.db import open_db
    from vmsec.vulns.matcher import match_inventory

    db = open_db(db_path)
    try:
        return match_inventory(inventory, db)
    finally:
        if db is not None:
            db.close()


def scan(targets: Sequence[TargetSpec], options: ScanOptions | None = None) -> ScanResult:
    """Scan ``targets`` and return the result (see the module docstring).

    A target whose collection fails (unreachable, timed out, unusable) becomes a failed collection
    record and the others go on; when every target failed, :class:`SourceUnavailable` is raised
    before anything is stored. :class:`ConfigError` for bad options.
    """
    options = options or ScanOptions()
    if not targets:
        raise ConfigError("nothing to scan: no target given")
    profile = _profile(options.profile)
    catalog = _catalog(options)
    if options.advisory_db:  # a path the caller named must exist: checked before any collection
        from vmsec.vulns.db import require_db_file

        require_db_file(options.advisory_db)
    from vmsec.engine import Evaluation

    started = options.clock()
    evaluation = Evaluation(catalog, profile, now=started)
    stage = options.on_stage or (lambda _stage, _what: None)

    # 1. Collect every target first: a target that cannot be read at all is known before storing.
    try:
        inventories, records, failures = _collect_all(targets, options, stage)
    except KeyboardInterrupt as exc:
        if isinstance(exc, ScanInterrupted):
            raise
        raise ScanInterrupted(scan_id=None, targets_done=0, targets_expected=0, stage="collect") from exc
    if not inventories:
        raise failures[0]

    source = "; ".join(inv.source for inv in inventories) if len(inventories) > 1 else inventories[0].source
    header = ScanHeader(source=source, profile=profile.name, started_at=started,
                        checks_run=len(evaluation.checks), checks=catalog.index(),
                        targets_expected=sum(len(inventory_targets(inv)) for inv in inventories))
    memory = _Memory() if options.keep_findings else None
    sinks: list[FindingSink] = []
    opened = _open_store(options.store_url) if options.store_url is not None else None
    store: StoreSink | None = None
    store_error: str | None = None
    if isinstance(opened, _StoreFailed):
        store_error = opened.message
    else:
        store = opened
    if store is not None:
        sinks.append(store)
    sinks += options.sinks
    if memory is not None:
        sinks.append(memory)

    waivers = tuple(options.waivers)
    apply = None
    if waivers:
        from vmsec.waivers import apply_waivers

        apply = apply_waivers
    counts = ScanCounts()
    all_targets: list[Target] = []
    details: dict[Target, Mapping[str, Any]] = {}
    oses: dict[Target, OsInventory] = {}
    def to_store(call: Callable[[], None]) -> None:
        """A store that fails is dropped with a warning: the scan and its report matter more."""
        nonlocal store, store_error
        if store is None:
            return
        try:
            call()
        except StoreError as exc:
            store_error = str(exc)
            sinks.remove(store)
            store.close()
            store = None

    done = 0
    try:
        for sink in sinks:
            if sink is store:
                to_store(lambda: sink.begin(header))  # noqa: B023 - called at once
            else:
                sink.begin(header)
        for inventory in inventories:
            stage("check", inventory.source)
            inv_details, inv_oses = describe_inventory(inventory)
            for batch in evaluation.evaluate(inventory, options.progress):
                if apply is not None:
                    batch = TargetBatch(batch.target, list(apply(batch.findings, waivers, started.date())))
                counts.merge(batch.counts)
                all_targets.append(batch.target)
                target_details = inv_details.get(batch.target, {})
                os = inv_oses.get(batch.target)
                details[batch.target] = target_details
                if os is not None:
                    oses[batch.target] = os
                for sink in list(sinks):
                    if sink is store:
                        to_store(lambda: sink.add(batch, target_details, os))  # noqa: B023
                    else:
                        sink.add(batch, target_details, os)
                done += 1
        if store is not None:
            stage("store", source)
        result = ScanResult(
            source=source, profile=profile.name, started_at=started, finished_at=options.clock(),
            checks_run=len(evaluation.checks), findings=memory.findings if memory is not None else (),
            targets=tuple(all_targets), details=details, os_inventories=oses, records=tuple(records),
            counts=counts, retained=memory is not None,
            scan_id=store.scan_id if store is not None else None, store_error=store_error,
            inventory=inventories[0] if len(inventories) == 1 else _merged(inventories))
        for sink in list(sinks):
            if sink is store:
                to_store(lambda: sink.end(result))  # noqa: B023
            else:
                sink.end(result)
        if (store is None and result.scan_id is not None) or store_error != result.store_error:
            # The store failed while finishing: the scan was not (completely) stored.
            result = structs.replace(result, scan_id=None, store_error=store_error)
        return result
    except KeyboardInterrupt as exc:
        if isinstance(exc, ScanInterrupted):
            raise
        raise ScanInterrupted(scan_id=store.scan_id if store is not None else None, targets_done=done,
                              targets_expected=header.targets_expected, stage="check") from exc
    finally:
        if store is not None:
            store.close()


# Check modules whose checks judge nothing but each OS's release and installed packages.
_PACKAGE_CHECK_MODULES = frozenset({"vmsec.checks.vulns.packages"})


def _packages_only(options: ScanOptions) -> bool:
    """Whether every selected check needs only OS releases and packages (``--check 'VMS-VULN-*'``):
    the collectors then skip every other OS fact."""
    if not options.checks or options.catalog is not None:
        return False
    from vmsec.checkinfo import packaged_index

    chosen = packaged_index().select(ids=options.checks).checks
    return bool(chosen) and all(c.module in _PACKAGE_CHECK_MODULES for c in chosen)


def _collect_one(spec: TargetSpec, n: int, total: int, options: ScanOptions,
                 stage: Callable[[str, str], None]) -> Inventory | SourceUnavailable:
    """Collect one spec (and match its packages); a failure is returned, not raised."""
    what = spec.describe()
    stage("collect", what)
    context = CollectContext(
        progress=_prefixed(options.progress, f"{n}/{total} " if total > 1 else ""),
        deadline=time.monotonic() + options.timeout if options.timeout else None,
        packages_only=_packages_only(options))
    try:
        inventory = collect(spec, context)
    except SourceUnavailable as exc:
        return exc
    if _matchable(inventory):
        stage("match", what)
        inventory = _match(inventory, options.advisory_db)
    return inventory


async def _collect_one_async(spec: TargetSpec, n: int, total: int, options: ScanOptions,
                             stage: Callable[[str, str], None]) -> Inventory | SourceUnavailable:
    """Like :func:`_collect_one`, awaiting a collector's ``collect_async`` when it has one (SSH) and
    running synchronous collectors in a worker thread; the per-target timeout bounds both."""
    import asyncio

    collector = get_async_collector(spec.kind)
    if collector is None:
        return await asyncio.to_thread(_collect_one, spec, n, total, options, stage)
    what = spec.describe()
    stage("collect", what)
    context = CollectContext(
        progress=_prefixed(options.progress, f"{n}/{total} "),
        deadline=time.monotonic() + options.timeout if options.timeout else None)
    try:
        inventory = await asyncio.wait_for(collector(spec, context), options.timeout)
    except SourceUnavailable as exc:
        return exc
    except TimeoutError:
        return SourceUnavailable(f"timed out after {options.timeout:g} s", ErrorKind.TIMEOUT)
    if _matchable(inventory):
        stage("match", what)
        inventory = await asyncio.to_thread(_match, inventory, options.advisory_db)
    return inventory


def _collect_all(targets: Sequence[TargetSpec], options: ScanOptions, stage: Callable[[str, str], None]
                 ) -> tuple[list[Inventory], list[CollectionRecord], list[SourceUnavailable]]:
    """Every spec's inventory, in spec order. Several specs are collected concurrently (at most
    ``options.concurrency`` at once, and at most ``options.group_limit`` per ``spec.group``, so 50
    guests of one hypervisor do not overload it); one spec is collected in this thread."""
    total = len(targets)
    began = time.monotonic()
    if total == 1 or options.concurrency <= 1:
        outcomes = [_collect_one(spec, n, total, options, stage) for n, spec in enumerate(targets, start=1)]
    else:
        import asyncio  # here: importing asyncio costs a single-target scan 10 % of its start-up

        outcomes = asyncio.run(_gather(targets, options, stage))
    inventories: list[Inventory] = []
    records: list[CollectionRecord] = []
    failures: list[SourceUnavailable] = []
    for spec, outcome in zip(targets, outcomes, strict=True):
        if isinstance(outcome, SourceUnavailable):
            failures.append(outcome)
            records.append(CollectionRecord(source=spec.describe(), what=f"{spec.kind} target", ok=False,
                                            reason=str(outcome), kind=outcome.kind,
                                            duration_s=round(time.monotonic() - began, 6)))
        else:
            inventories.append(outcome)
            records += outcome.records
    return inventories, records, failures


async def _gather(targets: Sequence[TargetSpec], options: ScanOptions,
                  stage: Callable[[str, str], None]) -> list[Inventory | SourceUnavailable]:
    import asyncio

    everyone = asyncio.Semaphore(options.concurrency)
    groups: dict[str, asyncio.Semaphore] = {}

    async def one(n: int, spec: TargetSpec) -> Inventory | SourceUnavailable:
        group = groups.setdefault(spec.group, asyncio.Semaphore(options.group_limit)) if spec.group else None
        async with everyone:
            if group is None:
                return await _collect_one_async(spec, n, len(targets), options, stage)
            async with group:
                return await _collect_one_async(spec, n, len(targets), options, stage)

    return list(await asyncio.gather(*(one(n, spec) for n, spec in enumerate(targets, start=1))))


def _prefixed(progress: ProgressHook | None, prefix: str) -> ProgressHook | None:
    if progress is None or not prefix:
        return progress
    return lambda message: progress(prefix + message)


class _StoreFailed(Struct, frozen=True):
    message: str


def _open_store(url: str) -> StoreSink | _StoreFailed:
    from vmsec.store.writer import StoreSink

    try:
        return StoreSink.open(url)
    except StoreError as exc:
        return _StoreFailed(str(exc))


def _merged(inventories: Sequence[Inventory]) -> Inventory:
    """Several targets' facts as one inventory (for library callers; reporters never read it)."""
    return Inventory(
        host=inventories[0].host,
        domains=tuple(d for inv in inventories for d in inv.domains),
        networks=tuple(n for inv in inventories for n in inv.networks),
        guests=tuple(g for inv in inventories for g in inv.guests),
        endpoints=tuple(e for inv in inventories for e in inv.endpoints),
        records=tuple(r for inv in inventories for r in inv.records),
        source="; ".join(inv.source for inv in inventories))
