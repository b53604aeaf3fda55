"""A VM audited twice — live (through its guest agent or SSH) and from its disk image — should be the
same system. Where the two disagree, one of them is not what it seems: unsaved changes, a snapshot
reverted under a running guest, a disk image tampered with, or a guest that lies about itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.facts import Guest, Inventory
from vmsec.findings import Evidence, Target, TargetKind

MAX_SHOWN = 5


def _packages(g: Guest) -> Mapping[str, str] | None:
    if g.packages is None:
        return None
    return {f"{p.name}:{p.arch}" if p.arch else p.name: p.version for p in g.packages}


def _sshd(g: Guest) -> Mapping[str, str] | None:
    if g.sshd is None:
        return None
    return {k: " ".join(v) for k, v in g.sshd.settings.items()}


def _sysctl(g: Guest) -> Mapping[str, str] | None:
    return None if g.sysctl is None else {k: v.value for k, v in g.sysctl.items()}


def _accounts(g: Guest) -> Mapping[str, str] | None:
    if g.accounts is None:
        return None
    return {a.name: f"uid {a.uid}, shell {a.shell}" for a in g.accounts}


def _keys(g: Guest) -> Mapping[str, str] | None:
    if g.authorized_keys is None:
        return None
    return {f"{k.user} {k.path}:{k.line}": f"{k.key_type} {k.bits or ''} {k.comment or ''}".strip()
            for k in g.authorized_keys}


def _sudo(g: Guest) -> Mapping[str, str] | None:
    if g.sudoers is None:
        return None
    rules = {}
    for i, r in enumerate(g.sudoers.rules):
        tag = " NOPASSWD" if r.nopasswd else ""
        rules[r.origin or str(i)] = f"{','.join(r.users)} {','.join(r.commands)}{tag}"
    return rules


def _services(g: Guest) -> Mapping[str, str] | None:
    if g.services is None:
        return None
    return {f"{s.manager} {s.name}": str(s.enabled) for s in g.services}


def _os(g: Guest) -> Mapping[str, str] | None:
    return None if g.os is None else {"release": f"{g.os.id} {g.os.version_id}"}


ASPECTS: tuple[tuple[str, Callable[[Guest], Mapping[str, str] | None]], ...] = (
    ("OS release", _os), ("packages", _packages), ("sshd settings", _sshd),
    ("sysctl configuration", _sysctl), ("accounts", _accounts), ("authorized keys", _keys),
    ("sudo rules", _sudo), ("enabled services", _services),
)


def _diff(live: Mapping[str, str], disk: Mapping[str, str]) -> list[str]:
    out = []
    for key in sorted(set(live) | set(disk)):
        a, b = live.get(key), disk.get(key)
        if a == b:
            continue
        if a is None:
            out.append(f"{key} only on disk ({b})")
        elif b is None:
            out.append(f"{key} only running ({a})")
        else:
            out.append(f"{key}: {a} running, {b} on disk")
    return out


def _pairs(inv: Inventory) -> Iterator[tuple[str, Guest, Guest]]:
    live: dict[str, Guest] = {}
    disk: dict[str, Guest] = {}
    for g in inv.guests:
        if g.domain is None:
            continue
        (live if g.runtime is not None else disk).setdefault(g.domain, g)
    for domain in sorted(set(live) & set(disk)):
        yield domain, live[domain], disk[domain]


@check("VMS-LIVE-007", title="A running guest matches its own disk image", severity=Severity.MEDIUM,
       tags=(Tag.CONFIGURATION, "integrity", "drift", "correlation"),
       references=("https://doi.org/10.6028/NIST.SP.800-125Ar1",))
def live_matches_disk(inv: Inventory) -> Iterator[Result]:
    """Audited through its agent or over SSH, a VM shows what runs; read from its disk image, what will
    boot next. They must be one system. A package or configuration that differs means the disk does
    not hold what runs (changes not yet written, a snapshot reverted under the running guest), or that
    one of the two was altered behind the other's back — a tampered image waiting for the next boot,
    or a guest whose live answers are not to be believed.

    Remediation: Find out which side changed: review the guest's package log and configuration
    management; if the image was modified outside the guest, treat the VM as compromised and rebuild
    it; if the guest has unsaved state, reconcile and re-audit both.
    """
    for domain, live, disk in _pairs(inv):
        target = Target(TargetKind.GUEST, live.name, inv.host.name if inv.host else None)
        subject = f"{domain}: running vs disk image"
        differences: list[tuple[str, list[str]]] = []
        compared = []
        for aspect, read in ASPECTS:
            a, b = read(live), read(disk)
            if a is None or b is None:
                continue
            compared.append(aspect)
            found = _diff(a, b)
            if found:
                differences.append((aspect, found))
        if not compared:
            yield unknown(subject, "nothing could be compared: the running guest's or its disk's facts are "
                          "unknown", target=target)
            continue
        where: list[Evidence] = [ev(live.origin, "running", live.name),
                                 ev(disk.origin, "disk image", disk.name)]
        if not differences:
            yield ok(subject, f"the running guest and its disk image agree ({', '.join(compared)})", *where,
                     target=target)
            continue
        parts = []
        for aspect, found in differences:
            shown = "; ".join(found[:MAX_SHOWN]) + (f"; and {len(found) - MAX_SHOWN} more"
                                                     if len(found) > MAX_SHOWN else "")
            parts.append(f"{aspect} ({len(found)}): {shown}")
            where.append(ev(aspect, "differs", len(found)))
        yield fail(subject, "the running guest differs from its disk image — " + " | ".join(parts), *where,
                   target=target)


__all__ = ["live_matches_disk"]
