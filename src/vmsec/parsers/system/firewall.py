"""Host firewalls configured to load at boot: nftables, iptables (persistent rules), ufw, firewalld.

``mechanisms`` holds each framework that is installed or configured, with whether it is enabled at
boot (None when the service list is unknown). ``default_input_policy`` (accept | drop | reject) is
read from the first enabled framework in the order firewalld, ufw, nftables, iptables (or the first
configured one when none is enabled):

- nftables: the base chains ``type filter hook input``; any with ``policy drop`` → drop, otherwise
  accept (the nft default). ``include`` statements are followed (bounded, inside the root).
- iptables: ``:INPUT DROP`` in the ``*filter`` table; an ACCEPT policy whose last INPUT rule is
  ``-j DROP``/``-j REJECT`` counts as that.
- ufw: ``ENABLED=yes`` in /etc/ufw/ufw.conf is its switch; ``DEFAULT_INPUT_POLICY`` in /etc/default/ufw.
- firewalld: ``DefaultZone`` (public by default) and that zone's ``target`` from
  /etc/firewalld/zones (overriding /usr/lib/firewalld/zones); ``default``/``%%REJECT%%`` → reject.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FirewallSetup, Service
from vmsec.parsers.lines import split_lines
from vmsec.parsers.safexml import parse_xml
from vmsec.parsers.system._common import Errors, lines, note, read_lines, read_optional, unreadable
from vmsec.reading import Reader

MAX_INCLUDES = 64
_NFT_CONFIGS = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf", "/etc/nftables.nft")
_NFT_INCLUDE = re.compile(r'^\s*include\s+"([^"]+)"', re.MULTILINE)
_NFT_INPUT_HOOK = re.compile(r"\btype\s+filter\s+hook\s+input\b")
_NFT_POLICY = re.compile(r"\bpolicy\s+(accept|drop)\b")
_NFT_BRACE = re.compile(r"[{}]")
MAX_BASE_CHAINS = 256
_IPT_FILES = ("/etc/iptables/rules.v4", "/etc/sysconfig/iptables", "/etc/iptables/rules-save")


def _enabled(services: Sequence[Service] | None, names: tuple[str, ...]) -> bool | None:
    if services is None:
        return None
    states = [s.enabled for s in services if s.name in names]
    if False in states:
        return False
    if True in states:
        return True
    return None if None in states else False


def _nft_text(reader: Reader, path: str, errors: Errors | None, budget: list[int]) -> str:
    """The file with its includes inlined (globs in the last path component; bounded)."""
    text = read_optional(reader, path, errors)
    if text is None:
        return ""
    parts = [_strip_comments(text)]
    for match in _NFT_INCLUDE.finditer(parts[0]):
        target = match.group(1)
        if not target.startswith("/"):
            target = f"{path.rpartition('/')[0]}/{target}"
        try:
            paths = reader.glob(target) if any(c in target for c in "*?[") else [target]
        except ReadError as exc:
            unreadable(errors, exc)  # the included files were not read
            continue
        for included in paths:
            budget[0] -= 1
            if budget[0] < 0:
                unreadable(errors, ReadError(path, f"more than {MAX_INCLUDES} included files; the rest "
                                             "is ignored", ErrorKind.TOO_LARGE))
                return "\n".join(parts)
            parts.append(_nft_text(reader, included, errors, budget))
    return "\n".join(parts)


def _strip_comments(text: str) -> str:
    return "\n".join(re.sub(r'#.*$', "", raw) if '"' not in raw else raw for raw in split_lines(text))


def _nft_policy(text: str, path: str = "", errors: Errors | None = None) -> str | None:
    """Policy of the input base chains: drop if any drops, accept if all accept, None if none.

    Linear in the text: the braces are matched in one pass, each chain is judged once, and at most
    MAX_BASE_CHAINS hooks are looked at (a real ruleset has a few; the rest is recorded as not read).
    Walking from each hook to its closing brace had made 92 KB of repeated hooks take 18 s."""
    opens: list[int] = []
    closing: dict[int, int] = {}
    stack: list[int] = []
    for brace in _NFT_BRACE.finditer(text):
        if brace.group() == "{":
            opens.append(brace.start())
            stack.append(brace.start())
        elif stack:
            closing[stack.pop()] = brace.start()
    judged: dict[int, str] = {}
    policies: list[str] = []
    for n, hook in enumerate(_NFT_INPUT_HOOK.finditer(text)):
        if n == MAX_BASE_CHAINS:
            unreadable(errors, ReadError(path, f"more than {MAX_BASE_CHAINS} input hooks; the rest were not "
                                         "read", ErrorKind.TOO_LARGE))
            break
        index = bisect.bisect_left(opens, hook.start()) - 1
        start = opens[index] if index >= 0 else 0
        if start not in judged:
            policy = _NFT_POLICY.search(text, start, closing.get(start, len(text)))
            judged[start] = policy.group(1) if policy else "accept"
        policies.append(judged[start])
    if not policies:
        return None
    return "drop" if "drop" in policies else "accept"


def _iptables_policy(text: str, path: str, errors: Errors | None) -> str | None:
    table = None
    policy: str | None = None
    last_rule: str | None = None
    for _number, line in lines(text, errors, path):
        if line.startswith("*"):
            table = line[1:]
        elif table == "filter" and line.startswith(":INPUT "):
            policy = line.split()[1].lower()
        elif table == "filter" and line.startswith("-A INPUT "):
            last_rule = line
    if policy == "accept" and last_rule is not None:
        target = re.search(r"\s-j\s+(DROP|REJECT)\s*(?:$|--)", last_rule)
        if target and " -s " not in last_rule and " -p " not in last_rule and " -i " not in last_rule:
            return target.group(1).lower()
    return policy


def _ufw(reader: Reader, errors: Errors | None) -> tuple[bool | None, str | None] | None:
    conf = read_optional(reader, "/etc/ufw/ufw.conf", errors)
    if conf is None:
        return None
    enabled: bool | None = False
    for _number, line in lines(conf, errors, "/etc/ufw/ufw.conf"):
        key, _sep, value = line.partition("=")
        if key.strip() == "ENABLED":
            enabled = value.strip().strip("\"'").lower() == "yes"
    policy = None
    for _number, line in read_lines(reader, "/etc/default/ufw", errors):
        key, _sep, value = line.partition("=")
        if key.strip() == "DEFAULT_INPUT_POLICY":
            policy = value.strip().strip("\"'").lower() or None
    return enabled, policy


def _firewalld_policy(reader: Reader, errors: Errors | None) -> tuple[str | None, str]:
    zone = "public"
    origin = "/etc/firewalld/firewalld.conf"
    for number, line in read_lines(reader, origin, errors):
        key, _sep, value = line.partition("=")
        if key.strip() == "DefaultZone" and value.strip():
            zone, origin = value.strip(), f"{origin}:{number}"
    if not re.fullmatch(r"[\w.-]+", zone):
        note(errors, origin, f"DefaultZone {zone!r} is not a zone name")
        return None, origin
    for directory in ("/etc/firewalld/zones", "/usr/lib/firewalld/zones"):
        path = f"{directory}/{zone}.xml"
        text = read_optional(reader, path, errors)
        if text is None:
            continue
        try:
            root = parse_xml(text, path, max_bytes=1024 * 1024)
        except ReadError as exc:
            if errors is not None:
                errors.append(exc)
            return None, path
        target = (root.get("target") or "default").upper()
        policy = {"ACCEPT": "accept", "DROP": "drop"}.get(target, "reject")
        return policy, f"{origin}; {path}"
    return ("accept" if zone == "trusted" else None), origin


def read_firewall(reader: Reader, services: Sequence[Service] | None, *,
                  errors: Errors | None = None) -> FirewallSetup:
    """The firewall frameworks set up to load at boot and the default inbound policy."""
    mechanisms: dict[str, bool | None] = {}
    policies: dict[str, tuple[str | None, str]] = {}

    if reader.exists("/usr/lib/firewalld") or reader.exists("/etc/firewalld/firewalld.conf"):
        mechanisms["firewalld"] = _enabled(services, ("firewalld.service", "firewalld"))
        policies["firewalld"] = _firewalld_policy(reader, errors)

    ufw = _ufw(reader, errors)
    if ufw is not None:
        service = _enabled(services, ("ufw.service", "ufw"))
        mechanisms["ufw"] = False if service is False or ufw[0] is False else ufw[0] and service
        policies["ufw"] = (ufw[1], "/etc/default/ufw")

    for path in _NFT_CONFIGS:
        if reader.exists(path):
            mechanisms["nftables"] = _enabled(services, ("nftables.service", "nftables"))
            ruleset = _nft_text(reader, path, errors, [MAX_INCLUDES])
            policies["nftables"] = (_nft_policy(ruleset, path, errors), path)
            break

    for path in _IPT_FILES:
        text = read_optional(reader, path, errors)
        if text is not None:
            mechanisms["iptables"] = _enabled(services, ("netfilter-persistent.service", "iptables.service",
                                                         "iptables", "iptables-persistent"))
            policies["iptables"] = (_iptables_policy(text, path, errors), path)
            break

    order = [m for m in ("firewalld", "ufw", "nftables", "iptables") if m in mechanisms]
    chosen = next((m for m in order if mechanisms[m]), order[0] if order else None)
    policy, origin = policies.get(chosen, (None, "")) if chosen else (None, "")
    return FirewallSetup(mechanisms=mechanisms, default_input_policy=policy,
                         origin=f"{chosen}: {origin}" if chosen else "")
