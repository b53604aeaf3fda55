"""Waivers: accepted risks, each with a reason, an owner and an expiry date.

A waiver file (TOML ``[[waiver]]`` tables or a YAML ``waivers:`` list) names a check id or a
vulnerability id (the advisory id or one of its aliases), a target pattern (fnmatch on
``kind:name``, e.g. ``domain:web-*``), optionally a subject pattern, and ``reason``, ``who`` and
``expires``. :func:`apply_waivers` turns matching FAIL findings into WAIVED — they stay in every
report — and leaves findings of expired waivers FAIL, saying the waiver expired.
"""

from __future__ import annotations

import tomllib
from collections.abc import Container, Iterable, Mapping
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml
from msgspec import Struct

from vmsec.errors import ConfigError
from vmsec.findings import Evidence, Finding, Status

MAX_FILE_BYTES = 4 * 1024 * 1024
_KEYS = frozenset({"check", "vulnerability", "target", "subject", "reason", "who", "expires"})


class Waiver(Struct, frozen=True, kw_only=True):
    check: str | None  # a check id, or …
    vulnerability: str | None  # … an advisory id / alias (exactly one of the two)
    target: str  # fnmatch pattern on "kind:name"
    subject: str | None  # fnmatch pattern on the finding's subject; None: any subject
    reason: str
    who: str
    expires: date  # the last day the waiver applies
    origin: str  # "file.toml, waiver 3"

    def describe(self) -> str:
        """``check VMS-DOM-020 on domain:web-* subject 'vnc *'`` (for messages)."""
        what = f"check {self.check}" if self.check is not None else f"vulnerability {self.vulnerability}"
        return f"{what} on {self.target}" + (f" subject {self.subject!r}" if self.subject is not None else "")

    def matches(self, f: Finding) -> bool:
        if self.check is not None:
            if f.check_id != self.check:
                return False
        else:
            vuln = f.vulnerability
            if vuln is None or (vuln.get("id") != self.vulnerability
                                and self.vulnerability not in (vuln.get("aliases") or ())):
                return False
        if not fnmatchcase(f"{f.target.kind.value}:{f.target.name}", self.target):
            return False
        return self.subject is None or fnmatchcase(f.subject, self.subject)


def _entry_name(index: int, raw: Mapping[str, Any]) -> str:
    what = raw.get("check") or raw.get("vulnerability") or "?"
    return f"waiver {index} ({what} on {raw.get('target', '?')})"


def _parse_entry(raw: object, index: int, source: str) -> Waiver:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: waiver {index} is not a table/mapping")
    name = f"{source}: {_entry_name(index, raw)}"
    unknown = sorted(set(map(str, raw)) - _KEYS)
    if unknown:
        raise ConfigError(f"{name}: unknown key(s) {', '.join(unknown)} "
                          f"(allowed: {', '.join(sorted(_KEYS))})")
    if ("check" in raw) == ("vulnerability" in raw):
        raise ConfigError(f"{name}: give exactly one of 'check' or 'vulnerability'")
    for key in ("target", "reason", "who", "expires"):
        value = raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ConfigError(f"{name}: missing '{key}' (every waiver needs a target, a reason, "
                              "who accepted the risk and an expiry date)")
    strings: dict[str, str | None] = {}
    for key in ("check", "vulnerability", "target", "subject", "reason", "who"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name}: '{key}' must be a string")
        strings[key] = value.strip() if isinstance(value, str) else None
    expires = raw["expires"]
    if isinstance(expires, datetime):
        raise ConfigError(f"{name}: 'expires' must be a date (YYYY-MM-DD), not a date and time")
    if isinstance(expires, str):
        try:
            expires = date.fromisoformat(expires.strip())
        except ValueError as exc:
            raise ConfigError(f"{name}: 'expires' is not a date (YYYY-MM-DD): {expires!r}") from exc
    if not isinstance(expires, date):
        raise ConfigError(f"{name}: 'expires' must be a date (YYYY-MM-DD)")
    return Waiver(check=strings["check"], vulnerability=strings["vulnerability"],
                  target=strings["target"] or "", subject=strings["subject"], reason=strings["reason"] or "",
                  who=strings["who"] or "", expires=expires, origin=f"{source}, waiver {index}")


def parse_waivers(data: object, source: str) -> tuple[Waiver, ...]:
    """Waivers from already-decoded TOML/YAML ``data`` (``waiver`` or ``waivers``: a list)."""
    if data is None:
        return ()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a table with a 'waiver' (TOML) or 'waivers' (YAML) list")
    keys = [k for k in ("waiver", "waivers") if k in data]
    extra = sorted(set(map(str, data)) - {"waiver", "waivers"})
    if extra:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(extra)}")
    if len(keys) > 1:
        raise ConfigError(f"{source}: use either 'waiver' or 'waivers', not both")
    if not keys:
        return ()
    entries = data[keys[0]]
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: '{keys[0]}' must be a list")
    return tuple(_parse_entry(raw, i, source) for i, raw in enumerate(entries, start=1))


def load_waivers(path: str | Path) -> tuple[Waiver, ...]:
    """Read a waiver file: ``.toml``, or ``.yaml``/``.yml``. Any problem is a ConfigError naming it."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read waiver file {p}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{p}: waiver file larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        if p.suffix.lower() == ".toml":
            data: object = tomllib.loads(text)
        elif p.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"{p}: a waiver file must end in .toml, .yaml or .yml")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: not valid {p.suffix.lstrip('.').upper()}: {exc}") from exc
    return parse_waivers(data, str(p))


def apply_waivers(findings: Iterable[Finding], waivers: Iterable[Waiver], today: date) -> tuple[Finding, ...]:
    """FAIL findings matched by a current waiver become WAIVED; those matched only by expired
    waivers stay FAIL with a note. Other findings are returned unchanged; none is dropped.

    A waiver is current through its ``expires`` day.
    """
    by_check: dict[str, list[Waiver]] = {}
    by_vuln: dict[str, list[Waiver]] = {}
    for w in waivers:
        if w.check is not None:
            by_check.setdefault(w.check, []).append(w)
        elif w.vulnerability is not None:
            by_vuln.setdefault(w.vulnerability, []).append(w)
    out = []
    for f in findings:
        if f.status is not Status.FAIL:
            out.append(f)
            continue
        candidates = list(by_check.get(f.check_id, ()))
        if f.vulnerability is not None and by_vuln:
            for vid in (f.vulnerability.get("id"), *(f.vulnerability.get("aliases") or ())):
                if isinstance(vid, str):
                    candidates += by_vuln.get(vid, ())
        matching = [w for w in candidates if w.matches(f)]
        current = [w for w in matching if w.expires >= today]
        if current:
            w = max(current, key=lambda x: x.expires)
            out.append(f._replace(
                status=Status.WAIVED,
                message=f"{f.message} — waived by {w.who} until {w.expires.isoformat()}: {w.reason}",
                evidence=(*f.evidence, Evidence(w.origin, "waiver", w.reason))))
        elif matching:
            w = max(matching, key=lambda x: x.expires)
            out.append(f._replace(message=f"{f.message} — waiver expired on {w.expires.isoformat()} "
                                          f"(was accepted by {w.who}: {w.reason})"))
        else:
            out.append(f)
    return tuple(out)


def unknown_checks(waivers: Iterable[Waiver], known: Container[str]) -> list[Waiver]:
    """Waivers naming a check id that is not in ``known`` (a typo, or a check that does not exist)."""
    return [w for w in waivers if w.check is not None and w.check not in known]


class WaiverUsage:
    """A :class:`~vmsec.pipeline.FindingSink` that notes which waivers matched a finding of the scan
    (a current waiver turned it WAIVED, an expired one left it FAIL), so a waiver that matches
    nothing — a mistyped target or subject pattern — can be reported instead of silently ignored."""

    def __init__(self, waivers: Iterable[Waiver]) -> None:
        self.waivers = tuple(waivers)
        self._unused = list(self.waivers)

    def begin(self, header: object) -> None:
        pass

    def add(self, batch: Any, details: object, os: object) -> None:
        if not self._unused:
            return
        for f in batch.findings:
            if f.status is Status.FAIL or f.status is Status.WAIVED:
                self._unused = [w for w in self._unused if not w.matches(f)]
                if not self._unused:
                    return

    def end(self, result: object) -> None:
        pass

    @property
    def unused(self) -> tuple[Waiver, ...]:
        """The waivers that matched no FAIL or WAIVED finding, in file order."""
        return tuple(self._unused)

