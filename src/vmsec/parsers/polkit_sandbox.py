"""The child process in which vmsec.parsers.polkit_rules runs a host's polkit rules files.

QuickJS stops JavaScript at the time limit by calling its interrupt handler, and its regular-expression
engine never calls it (lre_exec in QuickJS 2021-03-27, which the quickjs 1.19 binding bundles; later
QuickJS polls it there through lre_check_timeout, and the binding has no other limit that would), so
``/(a+)+$/.test("a".repeat(36) + "!")`` runs for hours and nothing in its process can stop it. The
rules run here, in a process of their own: a watchdog thread (the binding releases the GIL while
JavaScript runs) kills it with SIGKILL when one call into QuickJS runs past its limit, and RLIMIT_CPU
(the whole budget) and RLIMIT_AS bound it as a whole, besides QuickJS's own memory limit.

Started by polkit_rules as ``python -I -S -c …`` (``main``); reads one JSON request on stdin, then writes
one JSON array a line on stdout, each flushed at once, so that the parent reads all that was done
before a kill:

- ``["file", i, error, limited]``: file i failed to load (limited: by QuickJS's time or memory limit)
- ``["answer", q, result, file, note]``: question q, answered by a rule of that file (result None, file
  -1: no rule answered)
- ``["limit", q, file, message]``: a rule of that file ran past QuickJS's limit on question q
- ``["fail", q, message]``: asking question q (-1: listing the rules) failed outside any rule
- ``["budget", "load" | "ask", index]``: the CPU time budget ran out before that file or question
- ``["overran", "load" | "ask", index, file, cpu]``: the watchdog's last words (file -1: no rule ran)
- ``["unavailable", message]``: the quickjs binding cannot be imported; ``["done"]``: finished
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MEMORY_LIMIT = 32 * 1024 * 1024  # QuickJS's own allocations
ADDRESS_SPACE = 8 * MEMORY_LIMIT  # RLIMIT_AS above the interpreter's size once the request is read
TIME_LIMIT_S = 2  # CPU seconds, per file and per question
GRACE_S = 0.5  # past a call's limit, the watchdog kills: QuickJS stops JavaScript itself at the limit
POLL_S = 0.05

# The rules see only what polkitd's init.js gives them (``polkit``, ``Subject``, ``Action``); vmsec's own
# state lives in a closure whose functions Python holds before any rules file runs, so a file that
# redefines globals (JSON, __vmsec, Array.prototype.indexOf) cannot change how vmsec asks or reads.
_PRELUDE = r"""
var polkit, __vmsec = (function () {
  var rules = [], file = -1, action = null, subject = null, stringify = JSON.stringify;
  var results = {"no": 1, "yes": 1, "auth_self": 1, "auth_self_keep": 1, "auth_admin": 1,
                 "auth_admin_keep": 1};
  var has = Function.prototype.call.bind(Object.prototype.hasOwnProperty);
  polkit = {
    Result: {NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
             AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null},
    addRule: function (f) { rules.push([file, f]); },
    addAdminRule: function (f) { },
    log: function (m) { },
    spawn: function (argv) { throw new Error("polkit.spawn is not run by vmsec"); }
  };
  function Subject(user, groups, session) {
    this.pid = 4242; this.user = user; this.groups = groups;
    this.seat = session ? "seat0" : null; this.session = session ? "c1" : null;
    this.local = session; this.active = session;
  }
  Subject.prototype.isInGroup = function (g) {
    for (var n = 0; n < this.groups.length; n++) if (this.groups[n] == g) return true;
    return false;
  };
  Subject.prototype.isInNetGroup = function (g) { return false; };
  Subject.prototype.toString = function () { return "[Subject user='" + this.user + "']"; };
  function Action(id, details) { this.id = id; this.__d = details; }
  Action.prototype.lookup = function (k) { return this.__d[k]; };
  Action.prototype.toString = function () { return "[Action id='" + this.id + "']"; };
  function begin(id, details, user, groups, session) {
    action = new Action(id, details); subject = new Subject(user, groups, session);
  }
  function run(i) {
    // polkitd 122 (init.js _runRules, check_authorization_sync): the first truthy value decides; a
    // value that is not one of the results, or an exception, makes the whole check "not authorized".
    // Python calls one rule at a time, so that it knows whose rule runs when a call must be stopped.
    var r;
    try {
      r = rules[i][1](action, subject);
    } catch (e) {
      return stringify(["no", "a rule threw an exception"]);
    }
    if (!r) return null;
    if (typeof r === "string" && has(results, r)) return stringify([r, null]);
    return stringify(["no", typeof r === "string" ? "a rule returned an unknown result"
                                                  : "a rule returned a " + typeof r]);
  }
  function files() {  // no array methods: a file may have replaced them
    var s = "[";
    for (var i = 0; i < rules.length; i++) s += (i ? "," : "") + stringify(rules[i][0]);
    return s + "]";
  }
  return {begin: begin, run: run, files: files, setFile: function (i) { file = i; }};
})();
"""

_OUT = threading.Lock()


def _emit(*event: Any) -> None:
    data = (json.dumps(event) + "\n").encode()
    with _OUT:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def is_limit(message: str) -> bool:
    """QuickJS's time limit ("InternalError: interrupted") or memory limit ("out of memory")."""
    return "interrupted" in message or "out of memory" in message


def short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Watchdog:
    """Kills this process when one call into QuickJS runs ``GRACE_S`` past its CPU time limit. SIGKILL:
    the process cannot be stopped otherwise while QuickJS runs, and it leaves no core file."""

    def __init__(self) -> None:
        self._call: tuple[str, int, int, float] | None = None  # kind, index, file, CPU time to stop at
        threading.Thread(target=self._watch, name="vmsec-polkit-watchdog", daemon=True).start()

    @contextmanager
    def watching(self, kind: str, index: int, file: int, limit: float) -> Iterator[None]:
        self._call = (kind, index, file, time.process_time() + limit + GRACE_S)
        try:
            yield
        finally:
            self._call = None

    def _watch(self) -> None:
        while True:
            time.sleep(POLL_S)
            call = self._call
            if call is not None and time.process_time() > call[3]:
                _emit("overran", *call[:3], time.process_time())
                os.kill(os.getpid(), signal.SIGKILL)


def _lower(limit: int, value: int) -> None:
    _, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, value))


def _bound(budget_s: float) -> None:
    """The whole process: the CPU budget with room for one call's limit (soft = hard, so the kernel
    sends SIGKILL, not SIGXCPU and a core file), no core files, and its address space."""
    cpu = time.process_time() + max(budget_s, 0) + TIME_LIMIT_S + 2 * GRACE_S
    _lower(resource.RLIMIT_CPU, math.ceil(cpu))
    _lower(resource.RLIMIT_CORE, 0)
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return  # no /proc: QuickJS's memory limit still holds
    _lower(resource.RLIMIT_AS, size + ADDRESS_SPACE)


def main() -> None:
    request = json.load(sys.stdin.buffer)
    budget_end = time.process_time() + request["budget"]
    watchdog = _Watchdog()  # its thread's stack is mapped before RLIMIT_AS counts from the size
    _bound(request["budget"])
    try:
        import quickjs
    except ImportError as exc:  # a declared dependency; a broken install is an evaluation error
        _emit("unavailable", str(exc))
        return
    ctx = quickjs.Context()
    ctx.set_memory_limit(MEMORY_LIMIT)
    ctx.set_time_limit(TIME_LIMIT_S)
    ctx.eval(_PRELUDE)
    begin, run, files, set_file = (ctx.eval(f"__vmsec.{name}")
                                   for name in ("begin", "run", "files", "setFile"))
    texts: list[str] = request["files"]
    skip = set(request["skip"])
    for index, text in enumerate(texts):
        if index in skip:
            continue
        if time.process_time() > budget_end:
            _emit("budget", "load", index)
            return
        try:
            set_file(index)
            with watchdog.watching("load", index, index, TIME_LIMIT_S):
                ctx.eval(text)
        except quickjs.JSException as exc:
            _emit("file", index, short(str(exc)), is_limit(str(exc)))
    questions: list[tuple[str, dict[str, str], str, list[str]]] = request["questions"]
    first: int = request["first"]
    try:
        rule_files = json.loads(files())
        if not all(isinstance(f, int) and 0 <= f < len(texts) for f in rule_files):
            raise ValueError("the list of rules was changed")
    except (quickjs.JSException, TypeError, ValueError) as exc:
        _emit("fail", -1, short(str(exc)))
        return
    for q in range(first, len(questions)):
        if time.process_time() > budget_end:
            _emit("budget", "ask", q)
            return
        action, details, user, groups = questions[q]
        started = time.process_time()
        ctx.set_time_limit(TIME_LIMIT_S)
        try:
            with watchdog.watching("ask", q, -1, TIME_LIMIT_S):
                begin(action, ctx.parse_json(json.dumps(details)), user, ctx.parse_json(json.dumps(groups)),
                      request["in_session"])
        except quickjs.JSException as exc:
            _emit("fail", q, short(str(exc)))
            return
        for rule, file in enumerate(rule_files):
            # the question's limit, as polkitd's runaway killer counts it, is for all its rules together
            left = max(TIME_LIMIT_S - (time.process_time() - started), 0.001)
            ctx.set_time_limit(left)
            try:
                with watchdog.watching("ask", q, file, left):
                    raw = run(rule)
            except quickjs.JSException as exc:
                if not is_limit(str(exc)):
                    _emit("fail", q, short(str(exc)))
                    return
                _emit("limit", q, file, short(str(exc).splitlines()[0], 80))
                break
            if raw is not None:
                result, note = json.loads(raw)
                _emit("answer", q, result, file, note)
                break
        else:
            _emit("answer", q, None, -1, None)
    _emit("done")
