"""The check-author API: the ``@check`` decorator, result constructors and the environment.

A check is a plain function. Its first parameter's type says its scope (``Host``, ``Domain``,
``Network``, ``Guest``, ``Endpoint`` or ``Inventory``); the second, optional, is the
:class:`Environment`. It yields
results — :func:`ok`, :func:`fail`, :func:`unknown` — each naming the subject it is about and stating
what was observed. Yielding nothing means "not applicable". The docstring holds the rationale,
then a ``Remediation:`` section.

The decorator only records metadata on the function; :mod:`vmsec.checks.catalog` collects checks
from an explicit list of modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from msgspec import Struct, field

from vmsec.checkinfo import CheckInfo
from vmsec.facts import Domain, Endpoint, Guest, Host, Inventory, Network
from vmsec.findings import Evidence, Severity, Status, Target

__all__ = [
    "CHECK_ATTR",
    "CONTROL_TAGS",
    "CheckSpec",
    "Environment",
    "FactMissing",
    "NotApplicable",
    "Result",
    "Scope",
    "Severity",
    "Tag",
    "check",
    "ev",
    "fail",
    "need",
    "ok",
    "results_of",
    "unknown",
]


class Tag(StrEnum):
    """The security control a check serves (every check has at least one)."""

    ISOLATION = "isolation"
    PATCHING = "patching"
    ACCESS_CONTROL = "access-control"
    CONFIGURATION = "configuration"
    ENCRYPTION = "encryption"
    AUDIT = "audit"


CONTROL_TAGS = frozenset(t.value for t in Tag)


class Scope(StrEnum):
    HOST = "host"
    DOMAIN = "domain"
    NETWORK = "network"
    GUEST = "guest"  # an OS root: each guest, and the hypervisor host's own OS
    ENDPOINT = "endpoint"  # a listener seen by a probe (vmsec probe)
    INVENTORY = "inventory"  # cross-target checks (shared disks between VMs, …); results name targets


class Result(NamedTuple):
    """What a check observed about one subject. (A NamedTuple: immutable and cheap to build.)"""

    status: Status
    subject: str
    message: str
    evidence: tuple[Evidence, ...] = ()
    severity: Severity | None = None  # overrides the check's severity for this result
    target: Target | None = None  # only inventory-scope checks set it
    vulnerability: Mapping[str, Any] | None = None  # advisory details, for vulnerability findings
    tags: tuple[str, ...] = ()  # extra tags for this result (e.g. "vm-escape-surface")


# Results and evidence are built with tuple.__new__: a NamedTuple's own __new__ is a Python function,
# and checks build tens of thousands of both per scan (two per domain and check on average).
_new = tuple.__new__
_PASS, _FAIL, _UNKNOWN = Status.PASS, Status.FAIL, Status.UNKNOWN


def ev(source: str, locator: str = "", value: object = None) -> Evidence:
    """Build an :class:`Evidence`; ``value`` is rendered as text (None stays None)."""
    if value is None or value.__class__ is str:
        return _new(Evidence, (source, locator, value))
    if isinstance(value, tuple | list):
        return _new(Evidence, (source, locator, ", ".join(str(v) for v in value)))
    return _new(Evidence, (source, locator, str(value)))


def ok(subject: str, message: str, *evidence: Evidence, target: Target | None = None) -> Result:
    return _new(Result, (_PASS, subject, message, evidence, None, target, None, ()))


def fail(subject: str, message: str, *evidence: Evidence, severity: Severity | None = None,
         target: Target | None = None, vulnerability: Mapping[str, Any] | None = None,
         tags: tuple[str, ...] = ()) -> Result:
    return _new(Result, (_FAIL, subject, message, evidence, severity, target, vulnerability, tags))


def unknown(subject: str, reason: str, *evidence: Evidence, target: Target | None = None) -> Result:
    return _new(Result, (_UNKNOWN, subject, reason, evidence, None, target, None, ()))


class FactMissing(Exception):
    """Raised by :func:`need` (or a helper) inside a check: the engine turns it into one UNKNOWN
    result with this reason, subject and evidence. Raise it before yielding: results a generator
    yielded before raising are replaced by the UNKNOWN."""

    def __init__(self, reason: str, subject: str | None = None, evidence: tuple[Evidence, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.subject = subject
        self.evidence = evidence


class NotApplicable(Exception):
    """Raised by a helper inside a check when the check does not apply (e.g. no qemu.conf): the
    engine records no result, exactly as if the check had yielded nothing."""


def results_of(func: Callable[..., Iterator[Result]], subject: object, env: Environment | None = None,
               default_subject: str = "") -> list[Result]:
    """Run one check function on ``subject`` as the engine does: :class:`FactMissing` becomes one
    UNKNOWN result, :class:`NotApplicable` no result. (For tests and callers outside the engine.)"""
    try:
        return list(func(subject, env) if env is not None else func(subject))
    except FactMissing as missing:
        return [Result(Status.UNKNOWN, missing.subject or default_subject, missing.reason, missing.evidence)]
    except NotApplicable:
        return []


T = TypeVar("T")


def need(value: T | None, reason: str, subject: str | None = None) -> T:
    """Return ``value``, or stop the check with UNKNOWN and ``reason`` when it is ``None``."""
    if value is None:
        raise FactMissing(reason, subject)
    return value


class Environment(Struct, frozen=True, kw_only=True):
    """What a check may consult beyond its subject: the host it runs on, the whole inventory, and
    the profile's parameters."""

    inventory: Inventory
    host: Host | None
    params: Mapping[str, Any] = field(default_factory=dict)
    multi_tenant: bool = True
    # Domain names that more than one domain of the inventory carries (see engine.domain_target).
    ambiguous_names: frozenset[str] = frozenset()
    # Indexes over the whole inventory that per-domain checks build once per scan (see ``indexed``).
    # A cache, not a fact: nothing compares environments, so it need not be kept out of ``==``.
    _memo: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str, default: T) -> T:
        value = self.params.get(name, default)
        return value  # type: ignore[no-any-return]

    def indexed(self, key: str, build: Callable[[Inventory], T]) -> T:
        """``build(inventory)``, computed once per scan: a per-domain check that looks across the
        inventory (who else uses this shared-memory name?) must not walk every domain for every
        domain — at 100,000 domains that is ten billion steps."""
        if key not in self._memo:
            self._memo[key] = build(self.inventory)
        return self._memo[key]  # type: ignore[no-any-return]


CheckFunc = Callable[..., Iterator[Result]]


class CheckSpec(Struct, frozen=True, kw_only=True):
    id: str
    title: str
    severity: Severity
    tags: tuple[str, ...]
    references: tuple[str, ...]
    scope: Scope
    func: CheckFunc
    rationale: str
    remediation: str
    takes_env: bool
    module: str

    @property
    def control_tags(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags if t in CONTROL_TAGS)

    @property
    def info(self) -> CheckInfo:
        """This check's metadata, without the function (what reporters receive)."""
        return CheckInfo(id=self.id, title=self.title, severity=self.severity, scope=self.scope.value,
                         tags=self.tags, references=self.references, rationale=self.rationale,
                         remediation=self.remediation, module=self.module)


CHECK_ATTR = "__vmsec_check__"
_ID_RE = re.compile(r"^VMS-[A-Z]+-\d{3}$")
_SCOPES: Mapping[Any, Scope] = {Host: Scope.HOST, Domain: Scope.DOMAIN, Network: Scope.NETWORK,
                                Guest: Scope.GUEST, Endpoint: Scope.ENDPOINT, Inventory: Scope.INVENTORY}
_SCOPE_NAMES = {"Host": Scope.HOST, "Domain": Scope.DOMAIN, "Network": Scope.NETWORK,
                "Guest": Scope.GUEST, "Endpoint": Scope.ENDPOINT, "Inventory": Scope.INVENTORY}


class _Declared(Struct, frozen=True):
    id: str
    title: str
    severity: Severity
    tags: tuple[str, ...]
    references: tuple[str, ...]


F = TypeVar("F", bound=CheckFunc)


def check(id: str, *, title: str, severity: Severity, tags: tuple[str, ...],
          references: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Declare a check. Only records metadata on the function; validation happens in the catalog."""

    def record(func: F) -> F:
        setattr(func, CHECK_ATTR, _Declared(id, title, severity, tuple(tags), tuple(references)))
        return func

    return record


def build_spec(func: CheckFunc) -> CheckSpec:
    """Turn a decorated function into a validated :class:`CheckSpec` (called by the catalog)."""
    from vmsec.errors import CheckDefinitionError

    declared: _Declared = getattr(func, CHECK_ATTR)
    where = f"{func.__module__}.{func.__qualname__}"
    if not _ID_RE.match(declared.id):
        raise CheckDefinitionError(f"{where}: check id {declared.id!r} is not like VMS-DOM-012")
    if not any(t in CONTROL_TAGS for t in declared.tags):
        raise CheckDefinitionError(f"{where}: tags must include one of {sorted(CONTROL_TAGS)}")
    params = list(func.__code__.co_varnames[: func.__code__.co_argcount])
    annotations = func.__annotations__
    if not params or len(params) > 2:
        raise CheckDefinitionError(f"{where}: a check takes (subject) or (subject, env)")
    first = annotations.get(params[0])
    scope = _SCOPES.get(first) if not isinstance(first, str) else _SCOPE_NAMES.get(first)
    if scope is None:
        raise CheckDefinitionError(
            f"{where}: first parameter must be Host, Domain, Network, Guest, Endpoint or Inventory")
    doc = (func.__doc__ or "").strip()
    if not doc:
        raise CheckDefinitionError(f"{where}: a check needs a docstring (rationale + Remediation:)")
    rationale, _, remediation = doc.partition("Remediation:")
    if not remediation.strip():
        raise CheckDefinitionError(f"{where}: docstring lacks a 'Remediation:' section")
    return CheckSpec(
        id=declared.id, title=declared.title, severity=declared.severity, tags=declared.tags,
        references=declared.references, scope=scope, func=func,
        rationale=_dedent(rationale), remediation=_dedent(remediation),
        takes_env=len(params) == 2, module=func.__module__,
    )


def _dedent(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines()]
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)
