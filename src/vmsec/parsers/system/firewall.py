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
import shlex
from collections.abc import Sequence
from typing import Any

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import FirewallSetup, Service
from vmsec.parsers.lines import split_lines
from vmsec.parsers.safexml import parse_xml
from vmsec.parsers.system._common import Errors, lines, list_dir, note, read_lines, read_optional, unreadable
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


def _nft_text(reader: Reader, path: str, errors: Errors | None, budget: list[int],
              missing: list[str] | None = None) -> str:
    """The file with its includes inlined (globs in the last path component; bounded). A relative
    include is looked up in nft's include path, /etc — not beside the including file; an include
    without wildcards that does not exist is added to ``missing`` (nft then refuses the whole file)."""
    try:
        text = reader.read_text(path)
    except ReadError as exc:
        if exc.absent and missing is not None:
            missing.append(path)
        elif not exc.absent:
            unreadable(errors, exc)
        return ""
    parts = [_strip_comments(text)]
    for match in _NFT_INCLUDE.finditer(parts[0]):
        target = match.group(1)
        if not target.startswith("/"):
            target = f"/etc/{target}"
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
            parts.append(_nft_text(reader, included, errors, budget, missing))
    return "\n".join(parts)


def _strip_comments(text: str) -> str:
    return "\n".join(re.sub(r'#.*$', "", raw) if '"' not in raw else raw for raw in split_lines(text))


_NFT_TABLE = re.compile(r"\btable\s+(?:(ip|ip6|inet|arp|bridge|netdev)\s+)?[\w.$-]+\s*\{")
_NFT_UNSURE = re.compile(r"\bflags\s+dormant\b|\bdelete\s+(?:table|chain)\b|\b(?:add|create)\s+chain\b"
                         r"|\bpolicy\s+\$")
_NFT_STRING = re.compile(r'"[^"\n]*"')
_NFT_STATEMENTS = re.compile(r"[;\n]")


def _nft_chain(body: str) -> str | None:
    """What an input base chain does to a packet no earlier rule decided: its policy, unless an
    unconditional ``accept`` or ``drop``/``reject`` statement decides first; None when a ``jump``/``goto``
    hands packets to another chain (which may accept them all)."""
    policy = _NFT_POLICY.search(body)
    verdict = policy.group(1) if policy else "accept"
    for statement in _NFT_STATEMENTS.split(body):
        words = statement.split()
        if not words or words[0] in ("type", "policy", "comment"):
            continue
        if words[0] in ("jump", "goto"):
            return None
        if words == ["accept"] or words == ["counter", "accept"]:
            return "accept"
        if words in (["drop"], ["reject"], ["counter", "drop"], ["counter", "reject"]):
            return "drop"
    return verdict


def _nft_policy(text: str, path: str = "", errors: Errors | None = None) -> tuple[str | None, str]:
    """(policy, why) of the input hook for inbound IPv4 and IPv6: ``drop`` only when, for both, some
    input base chain of a table that sees them (inet, or ip and ip6) drops what its rules do not accept
    — a packet must pass every base chain on the hook; ``accept`` when no chain drops one of them; None
    when the text cannot decide it (a dormant or deleted table, a chain added or redefined later, a
    policy from a variable, a jump). Quoted strings (comments) are not read as statements.

    Linear in the text: the braces are matched in one pass, each chain is judged once, and at most
    MAX_BASE_CHAINS hooks are looked at (a real ruleset has a few; the rest is recorded as not read).
    Walking from each hook to its closing brace had made 92 KB of repeated hooks take 18 s."""
    text = _NFT_STRING.sub('""', text)
    unsure = _NFT_UNSURE.search(text)
    if unsure is not None:
        return None, f"'{unsure.group()}' changes the ruleset in a way vmsec does not follow"
    opens: list[int] = []
    closing: dict[int, int] = {}
    stack: list[int] = []
    for brace in _NFT_BRACE.finditer(text):
        if brace.group() == "{":
            opens.append(brace.start())
            stack.append(brace.start())
        elif stack:
            closing[stack.pop()] = brace.start()
    tables = [(m.end() - 1, m.group(1) or "ip") for m in _NFT_TABLE.finditer(text)]
    table_starts = [start for start, _family in tables]
    judged: dict[int, str | None] = {}
    seen: dict[str, list[str | None]] = {"v4": [], "v6": []}
    for n, hook in enumerate(_NFT_INPUT_HOOK.finditer(text)):
        if n == MAX_BASE_CHAINS:
            unreadable(errors, ReadError(path, f"more than {MAX_BASE_CHAINS} input hooks; the rest were not "
                                         "read", ErrorKind.TOO_LARGE))
            break
        index = bisect.bisect_left(opens, hook.start()) - 1
        start = opens[index] if index >= 0 else 0
        t = bisect.bisect_left(table_starts, start) - 1
        while t >= 0 and closing.get(table_starts[t], len(text)) < start:
            t -= 1  # the table block that encloses this chain
        family = tables[t][1] if t >= 0 else "ip"
        if start not in judged:
            judged[start] = _nft_chain(text[start + 1:closing.get(start, len(text))])
        for stack_name, families in (("v4", ("inet", "ip")), ("v6", ("inet", "ip6"))):
            if family in families:
                seen[stack_name].append(judged[start])
    if not seen["v4"] and not seen["v6"]:
        return None, "no input chain filters IPv4 or IPv6"
    covered = {k: "drop" in v for k, v in seen.items()}
    if all(covered.values()):
        return "drop", ""
    if any(None in seen[k] for k in seen if not covered[k]):
        return None, "an input chain hands packets to another chain (jump/goto)"
    open_ = [{"v4": "IPv4", "v6": "IPv6"}[k] for k in seen if not covered[k]]
    return "accept", f"no input chain drops {' or '.join(open_)} by default"


def _iptables_policy(text: str, path: str, errors: Errors | None) -> tuple[str | None, str]:
    """(policy, why) of the filter table's INPUT chain as iptables-restore loads the file: a policy
    other than ACCEPT/DROP, or a table without its COMMIT, makes it refuse the whole file (nothing is
    loaded: ACCEPT); the first unconditional ``-A INPUT -j ACCEPT``/``DROP``/``REJECT`` decides before
    the policy does."""
    table = None
    policy: str | None = None
    rules: list[list[str]] = []
    filter_seen = filter_committed = False
    for _number, line in lines(text, errors, path):
        if line.startswith("*"):
            table = line[1:].strip()
            filter_seen |= table == "filter"
        elif line.strip() == "COMMIT":
            filter_committed |= table == "filter"
            table = None
        elif table == "filter" and line.startswith(":INPUT "):
            word = line.split()[1] if len(line.split()) > 1 else ""
            if word not in ("ACCEPT", "DROP"):
                return "accept", (f"iptables-restore refuses {path}: bad INPUT policy {word!r}; nothing "
                                  "is loaded")
            policy = word.lower()
        elif table == "filter" and line.startswith("-A INPUT "):
            rules.append(line.split()[2:])
    if filter_seen and not filter_committed:
        return "accept", f"iptables-restore refuses {path}: the filter table has no COMMIT; nothing is loaded"
    for words in rules:
        if words == ["-j", "ACCEPT"]:
            return "accept", f"{path}: an unconditional -A INPUT -j ACCEPT"
        if words in (["-j", "DROP"], ["-j", "REJECT"]):
            return "drop", ""
    return policy, ""


_IP6T_FILES = {"/etc/iptables/rules.v4": "/etc/iptables/rules.v6",
               "/etc/sysconfig/iptables": "/etc/sysconfig/ip6tables"}


def _shell_value(value: str) -> str:
    """A ``KEY=value`` line's value as sh reads it for these files: quotes removed, a ``#`` comment
    after blanks dropped."""
    try:
        words = shlex.split(value, comments=True)
    except ValueError:
        return value.strip()
    return words[0] if words else ""


def _ufw(reader: Reader, errors: Errors | None) -> tuple[bool | None, str | None, str] | None:
    """(enabled, input policy, origin of the policy) as ufw-init reads them: it sources
    /etc/default/ufw and then /etc/ufw/ufw.conf (a setting there wins), starts only for ENABLED=yes or
    YES, and hands the policy to iptables-restore, which refuses anything but ACCEPT, DROP or REJECT
    in capitals (then no rule is loaded: accept)."""
    conf = read_optional(reader, "/etc/ufw/ufw.conf", errors)
    if conf is None:
        return None
    settings: dict[str, tuple[str, str]] = {}
    default = read_optional(reader, "/etc/default/ufw", errors)
    for path, text in (("/etc/default/ufw", default), ("/etc/ufw/ufw.conf", conf)):
        for _number, line in lines(text or "", errors, path):
            key, sep, value = line.partition("=")
            if sep and key.strip() in ("ENABLED", "DEFAULT_INPUT_POLICY"):
                settings[key.strip()] = (_shell_value(value), path)
    enabled = settings.get("ENABLED", ("no", ""))[0] in ("yes", "YES")
    raw, origin = settings.get("DEFAULT_INPUT_POLICY", ("", "/etc/default/ufw"))
    if not raw:
        return enabled, None, origin
    policy = raw.lower() if raw in ("ACCEPT", "DROP", "REJECT") else "accept"
    # ufw loads its rule files into its own input chains: an unconditional ACCEPT there lets every
    # packet in whatever the default policy says
    for path in ("/etc/ufw/user.rules", "/etc/ufw/user6.rules", "/etc/ufw/before.rules",
                 "/etc/ufw/before6.rules"):
        for number, line in read_lines(reader, path, errors):
            words = line.split()
            if len(words) == 4 and words[0] == "-A" and words[1].endswith("-input") and \
                    words[2:] == ["-j", "ACCEPT"]:
                return enabled, "accept", f"{path}:{number}"
    return enabled, policy, origin


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
        root = _zone(reader, path, errors)
        if root is None:
            continue
        if root is False:
            return None, path
        target = (root.get("target") or "default").upper()
        policy = {"ACCEPT": "accept", "DROP": "drop"}.get(target, "reject")
        bound = _accepting_bound_zone(reader, errors)
        if policy != "accept" and bound is not None:
            # Traffic from a source or interface bound to an accepting zone never reaches the default
            # zone: a trusted zone holding 0.0.0.0/0 takes everything.
            return "accept", f"{origin}; {path}; {bound}"
        return policy, f"{origin}; {path}"
    return ("accept" if zone == "trusted" else None), origin


def _nft_unit_files(services: Sequence[Service] | None) -> list[str] | None:
    """The files nftables.service loads (``nft -f FILE`` in its effective ExecStart=, drop-ins
    applied); None when there is no such unit (the distribution's default file is read)."""
    unit = next((s for s in services or () if s.name == "nftables.service" and s.exec_start), None)
    if unit is None or unit.exec_start is None:
        return None
    files: list[str] = []
    for command in unit.exec_start.split("; "):
        try:
            words = shlex.split(command.lstrip("-@:+!"))
        except ValueError:
            return []
        if not words or not words[0].endswith("/nft"):
            continue
        for i, word in enumerate(words[1:], start=1):
            if word in ("-f", "--file") and i + 1 < len(words):
                files.append(words[i + 1])
            elif word.startswith("--file="):
                files.append(word.split("=", 1)[1])
            elif word.startswith("-f") and len(word) > 2:
                files.append(word[2:])
    return files


def _zone(reader: Reader, path: str, errors: Errors | None) -> Any:
    """A zone file's root element; None when there is no such file, False when it is not XML
    (recorded)."""
    text = read_optional(reader, path, errors)
    if text is None:
        return None
    try:
        return parse_xml(text, path, max_bytes=1024 * 1024)
    except ReadError as exc:
        if errors is not None:
            errors.append(exc)
        return False


def _accepting_bound_zone(reader: Reader, errors: Errors | None) -> str | None:
    """The first zone file of /etc/firewalld/zones that accepts everything (target ACCEPT, or the
    trusted zone) and has sources or interfaces bound to it — None when there is none."""
    for name in list_dir(reader, "/etc/firewalld/zones", errors)[:MAX_INCLUDES]:
        if not name.endswith(".xml"):
            continue
        path = f"/etc/firewalld/zones/{name}"
        root = _zone(reader, path, errors)
        if root is None or root is False:
            continue
        target = (root.get("target") or ("ACCEPT" if name == "trusted.xml" else "default")).upper()
        bound = [e.get("address") or e.get("ipset") or e.get("mac") or e.get("name") or "?"
                 for e in root if e.tag in ("source", "interface")]
        if target == "ACCEPT" and bound:
            return f"{path} accepts everything from {', '.join(bound[:4])}"
    return None


def read_firewall(reader: Reader, services: Sequence[Service] | None, *,
                  errors: Errors | None = None) -> FirewallSetup:
    """The firewall frameworks set up to load at boot and the default inbound policy."""
    mechanisms: dict[str, bool | None] = {}
    policies: dict[str, tuple[str | None, str]] = {}
    notes: dict[str, str] = {}

    if reader.exists("/usr/lib/firewalld") or reader.exists("/etc/firewalld/firewalld.conf"):
        mechanisms["firewalld"] = _enabled(services, ("firewalld.service", "firewalld"))
        policies["firewalld"] = _firewalld_policy(reader, errors)

    ufw = _ufw(reader, errors)
    if ufw is not None:
        service = _enabled(services, ("ufw.service", "ufw"))
        mechanisms["ufw"] = False if service is False or ufw[0] is False else ufw[0] and service
        policies["ufw"] = (ufw[1], ufw[2])

    nft_files = _nft_unit_files(services)
    if nft_files is not None and not nft_files:  # the unit runs something else than nft -f FILE
        mechanisms["nftables"] = _enabled(services, ("nftables.service", "nftables"))
        policies["nftables"] = (None, "nftables.service")
        notes["nftables"] = "nftables.service does not load a file with nft -f: what it loads is not known"
    elif nft_files or any(reader.exists(p) for p in _NFT_CONFIGS):
        # the files the unit (drop-ins applied) loads; without a unit, the distribution's default file
        paths = nft_files or [next(p for p in _NFT_CONFIGS if reader.exists(p))]
        mechanisms["nftables"] = _enabled(services, ("nftables.service", "nftables"))
        missing: list[str] = []
        rulesets = []
        for path in paths:
            rulesets.append(_nft_text(reader, path, errors, [MAX_INCLUDES], missing))
        where = ", ".join(paths)
        if missing:  # nft -f fails on it: nothing of the file is loaded at boot
            policies["nftables"] = ("accept", where)
            notes["nftables"] = f"nft refuses {where}: {missing[0]} does not exist, so no rule is loaded"
        else:
            nft_policy, notes["nftables"] = _nft_policy("\n".join(rulesets), where, errors)
            policies["nftables"] = (nft_policy, where)

    for path in _IPT_FILES:
        text = read_optional(reader, path, errors)
        if text is not None:
            mechanisms["iptables"] = _enabled(services, ("netfilter-persistent.service", "iptables.service",
                                                         "iptables", "iptables-persistent"))
            v4, why = _iptables_policy(text, path, errors)
            v6: str | None
            v6_path = _IP6T_FILES.get(path)
            v6_text = read_optional(reader, v6_path, errors) if v6_path else None
            if v6_path is not None and v6_text is None:
                v6, v6_why = "accept", f"no {v6_path}: IPv6 is not filtered"
            elif v6_path is not None and v6_text is not None:
                v6, v6_why = _iptables_policy(v6_text, v6_path, errors)
            else:
                v6, v6_why = v4, ""
            if v4 == "drop" and v6 == "drop":
                policies["iptables"], notes["iptables"] = ("drop", path), ""
            elif v4 == "drop" and v6 is not None:
                policies["iptables"], notes["iptables"] = (v6, v6_path or path), f"IPv4 drops; {v6_why}"
            else:
                policies["iptables"], notes["iptables"] = (v4, path), why
            break

    order = [m for m in ("firewalld", "ufw", "nftables", "iptables") if m in mechanisms]
    chosen = next((m for m in order if mechanisms[m]), order[0] if order else None)
    policy, origin = policies.get(chosen, (None, "")) if chosen else (None, "")
    return FirewallSetup(mechanisms=mechanisms, default_input_policy=policy,
                         origin=f"{chosen}: {origin}" if chosen else "",
                         policy_note=notes.get(chosen, "") if chosen else "")
