"""polkit ``.rules`` files are JavaScript: evaluate them, as polkitd does, for libvirt's actions.

The files are run in one sandboxed QuickJS context (the ``quickjs`` binding, with a memory limit and a
time limit per file and per question), in polkitd's order: every file of /etc/polkit-1/rules.d and
/usr/share/polkit-1/rules.d sorted by file name, a name in /etc hiding the same name in /usr/share. A
minimal ``polkit`` object (``addRule``, ``addAdminRule``, ``Result``, ``log``; ``spawn`` refuses to run
anything) collects the rule functions. Then, for each libvirt action and each probe subject (an
ordinary user; a member of each group the host defines or the rules name; each user the rules name),
the rules are asked in order, as polkitd asks them, until one returns a result: a rule that throws is
skipped, as polkitd logs and skips it. Nothing is matched as text — a comment that says
``polkit.Result.YES`` grants nothing, and a rule that returns YES for every action grants libvirt's too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["LIBVIRT_ACTIONS", "PolkitEvaluation", "RuleGrant", "evaluate_rules"]

# libvirt's polkit actions: the socket-level ones and a representative set of the fine-grained ACL
# (access_drivers = ["polkit"]) ones, with the details libvirt passes for them.
LIBVIRT_ACTIONS: tuple[tuple[str, dict[str, str]], ...] = (
    ("org.libvirt.unix.manage", {}),
    ("org.libvirt.unix.monitor", {}),
    ("org.libvirt.api.connect.getattr", {"connect_driver": "QEMU"}),
    ("org.libvirt.api.connect.write", {"connect_driver": "QEMU"}),
    ("org.libvirt.api.domain.getattr", {"connect_driver": "QEMU", "domain_name": "vmsec-probe",
                                        "domain_uuid": "00000000-0000-4000-8000-000000000001"}),
    ("org.libvirt.api.domain.start", {"connect_driver": "QEMU", "domain_name": "vmsec-probe",
                                      "domain_uuid": "00000000-0000-4000-8000-000000000001"}),
    ("org.libvirt.api.domain.write", {"connect_driver": "QEMU", "domain_name": "vmsec-probe",
                                      "domain_uuid": "00000000-0000-4000-8000-000000000001"}),
    ("org.libvirt.api.domain.open-graphics", {"connect_driver": "QEMU", "domain_name": "vmsec-probe",
                                              "domain_uuid": "00000000-0000-4000-8000-000000000001"}),
)
PROBE_USER = "vmsec-probe-user"
MEMORY_LIMIT = 32 * 1024 * 1024
TIME_LIMIT_S = 2
MAX_PROBES = 200  # subjects asked about (groups and users named by the host and the rules)

_PRELUDE = r"""
var __rules = [], __file = -1;
var polkit = {
  Result: {NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
           AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null},
  addRule: function (f) { if (typeof f === "function") __rules.push([__file, f]); },
  addAdminRule: function (f) { },
  log: function (m) { },
  spawn: function (argv) { throw new Error("polkit.spawn is not run by vmsec"); }
};
function __Subject(user, groups) {
  this.user = user; this.groups = groups; this.pid = 4242; this.seat = "seat0";
  this.session = "c1"; this.local = true; this.active = true; this.system_unit = "";
}
__Subject.prototype.isInGroup = function (g) { return this.groups.indexOf(g) >= 0; };
__Subject.prototype.isInNetGroup = function (g) { return false; };
__Subject.prototype.toString = function () { return "[Subject user='" + this.user + "']"; };
function __Action(id, details) { this.id = id; this.__d = details; }
__Action.prototype.lookup = function (k) { return this.__d[k]; };
__Action.prototype.toString = function () { return "[Action id='" + this.id + "']"; };
function __ask(id, details, user, groups) {
  var a = new __Action(id, details), s = new __Subject(user, groups);
  for (var i = 0; i < __rules.length; i++) {
    try {
      var r = __rules[i][1](a, s);
      if (r !== undefined && r !== null) return JSON.stringify([String(r), __rules[i][0]]);
    } catch (e) { }
  }
  return JSON.stringify([null, -1]);
}
"""

_LITERAL = re.compile(r"""["']([A-Za-z_][A-Za-z0-9_.-]{0,31})["']""")


@dataclass(frozen=True, slots=True)
class RuleGrant:
    action: str
    subject: str  # "any user", "members of group libvirt", "user alice"
    result: str  # yes | no | auth_self | auth_admin | …


@dataclass(frozen=True, slots=True)
class PolkitEvaluation:
    """What each rules file decides for libvirt's actions."""

    decided: dict[str, list[RuleGrant]]  # path -> the answers its rules gave first
    errors: dict[str, str]  # path -> why it could not be evaluated (a syntax error, a limit)
    error: str | None = None  # the evaluator itself could not run


def _order(files: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """polkitd's order: by file name; /etc hides /usr/share for the same name."""
    by_name: dict[str, tuple[str, str]] = {}
    for path, text in files:
        name = path.rsplit("/", 1)[-1]
        if name not in by_name or path.startswith("/etc/"):
            by_name[name] = (path, text)
    return [by_name[n] for n in sorted(by_name)]


def evaluate_rules(files: Sequence[tuple[str, str]], groups: Iterable[str] = ()) -> PolkitEvaluation:
    """Run the rules ``files`` ((path, text), any order) and ask them about libvirt's actions."""
    try:
        import quickjs
    except ImportError as exc:  # a declared dependency; a broken install is an evaluation error
        return PolkitEvaluation({}, {}, error=f"the quickjs JavaScript engine is not installed: {exc}")
    ordered = _order(files)
    ctx = quickjs.Context()
    ctx.set_memory_limit(MEMORY_LIMIT)
    ctx.set_time_limit(TIME_LIMIT_S)
    ctx.eval(_PRELUDE)
    errors: dict[str, str] = {}
    literals: list[str] = []
    for index, (path, text) in enumerate(ordered):
        literals.extend(_LITERAL.findall(text))
        try:
            ctx.eval(f"__file = {index};")
            ctx.eval(text)
        except quickjs.JSException as exc:
            errors[path] = _short(str(exc))
    group_probes = list(dict.fromkeys([*groups, *literals]))[:MAX_PROBES]
    user_probes = list(dict.fromkeys(literals))[:MAX_PROBES]
    subjects: list[tuple[str, str, list[str]]] = [("any user", PROBE_USER, [])]
    subjects += [(f"members of group {g}", PROBE_USER, [g]) for g in group_probes]
    subjects += [(f"user {u}", u, []) for u in user_probes if u != "root"]
    ask = ctx.get("__ask")
    decided: dict[str, list[RuleGrant]] = {}
    seen: set[tuple[str, str, str]] = set()
    for action, details in LIBVIRT_ACTIONS:
        base: str | None = None
        for label, user, member_of in subjects:
            try:
                raw = ask(action, ctx.parse_json(json.dumps(details)), user,
                          ctx.parse_json(json.dumps(member_of)))
            except quickjs.JSException as exc:
                return PolkitEvaluation(decided, errors, error=f"asking the rules about {action}: "
                                        f"{_short(str(exc))}")
            result, file_index = json.loads(raw)
            if result is None or file_index < 0:
                continue
            if label == "any user":
                base = result
            elif result == base:
                continue  # the same answer every user gets: reported once, for any user
            path = ordered[file_index][0]
            key = (path, action, label)
            if key not in seen:
                seen.add(key)
                decided.setdefault(path, []).append(RuleGrant(action, label, result))
    return PolkitEvaluation(decided, errors)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
