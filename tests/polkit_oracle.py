"""Real polkitd and pkcheck, run in a private namespace, as the oracle for vmsec's polkit evaluator.

polkitd (polkit 122 on Debian 12) reads its rules only from /etc/polkit-1/rules.d and
/usr/share/polkit-1/rules.d, its action definitions only from /usr/share/polkit-1/actions, resolves
users and groups through NSS (/etc/passwd, /etc/group) and serves requests on the system D-Bus. So
``run`` starts this file as a script under ``unshare --mount --pid --fork --mount-proc``: inside, as
PID 1 of a private PID namespace with a private mount namespace, it

- mounts tmpfs over /run (a private /run/dbus), the two rules directories and the actions directory,
  and copies libvirt's own action definitions into the latter;
- bind-mounts generated /etc/passwd and /etc/group holding ``root``, ``polkitd`` and one account per
  subject asked about (nothing else: the answers do not depend on this machine's accounts);
- starts a private ``dbus-daemon`` with a system-bus configuration that lets only the polkitd user
  own org.freedesktop.PolicyKit1, listening on /run/dbus/system_bus_socket;
- starts one ``sleep`` per account (``setpriv``), the processes that pkcheck asks about;
- then, for each case: writes the case's rules files, starts ``polkitd`` (it loads the rules before
  it takes its bus name, so "Acquired the name" in its log means ready), asks
  ``pkcheck --action-id A --process PID [--detail K V …]`` each question, and stops polkitd.

Nothing outside the namespaces changes: the mounts vanish with the mount namespace, and every process
started inside (dbus-daemon, polkitd, the sleeps) is killed by the kernel when the script, the PID
namespace's init, exits. polkitd runs without ``--no-debug`` because its log (which files failed to
load, "Terminating runaway script after 15 seconds") is evidence the tests read; with ``--no-debug``
it sends that only to syslog. It runs under a 1 GiB address-space limit, so a rules file that
allocates without end fails there instead of taking the machine's memory.

No login session exists here (no systemd-logind: polkitd logs "Error getting login monitor"), so
polkitd gives every subject ``local = false``, ``active = false`` and null seat and session, and the
action's ``allow_any`` default applies when no rule answers.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

POLKITD = "/usr/lib/polkit-1/polkitd"
RULES_DIRS = ("/etc/polkit-1/rules.d", "/usr/share/polkit-1/rules.d")
ACTIONS_DIR = "/usr/share/polkit-1/actions"
BUS_SOCKET = "/run/dbus/system_bus_socket"
POLKITD_UID = 61800  # the ids of the generated accounts; nothing on disk belongs to them
FIRST_UID = 61801
POLKITD_MEMORY = 1 << 30
READY = "Acquired the name org.freedesktop.PolicyKit1"
START_TIMEOUT_S = 120  # polkitd's runaway killer allows each file 15 s while loading
PKCHECK_TIMEOUT_S = 60  # and each question 15 s
TIMED_OUT = 124

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow send_type="signal"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
  <policy user="polkitd">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
</busconfig>
"""


@dataclass(frozen=True, slots=True)
class Question:
    """Is ``user`` (whose only group is ``group``) authorized for ``action`` with ``details``?"""

    action: str
    user: str
    group: str
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    files: tuple[tuple[str, str], ...]  # (absolute path in one of RULES_DIRS, text)
    questions: tuple[Question, ...]
    pkcheck_timeout: float = PKCHECK_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class Answer:
    """pkcheck's answer: exit status 0 authorized, 1 not authorized, 2 challenge (authentication
    needed; ``keep`` when polkit would retain it), anything else an error."""

    code: int
    details: dict[str, str]
    stderr: str
    seconds: float

    @property
    def outcome(self) -> str:
        if self.code == 0:
            return "authorized"
        if self.code == 1:
            return "not authorized"
        if self.code == 2:
            keep = self.details.get("polkit.retains_authorization_after_challenge") == "1"
            return "challenge (keep)" if keep else "challenge"
        if self.code == TIMED_OUT:
            return "no answer"
        return f"error {self.code}: {self.stderr.strip()[:200]}"


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    log: str  # polkitd's own log for this case
    answers: tuple[Answer, ...]  # one per question, in order
    start_seconds: float

    def failed_files(self) -> set[str]:
        """The rules files polkitd could not load (a syntax error or an exception at top level)."""
        return set(re.findall(r"Error compiling script (\S+?): ", self.log))

    def loaded(self) -> int:
        """How many rules files polkitd loaded ("Finished loading, compiling and executing N rules")."""
        match = re.search(r"Finished loading, compiling and executing (\d+) rules", self.log)
        return int(match.group(1)) if match else -1

    def runaways(self, *, loading: bool) -> int:
        """How often polkitd's runaway killer stopped a script while it loaded the files, or while it
        answered questions (its log does not name the file). In polkit 122 this over-counts now and
        then: its killer thread can miss the worker's wake-up (a race fixed in polkit 123, commit
        5615ed0 "duktape: prevent wrongful termination of runaway thread"), wait the full 15 s and log a
        "runaway" for a script that had finished — whose result it then uses all the same."""
        before, _, after = self.log.partition(READY)
        return (before if loading else after).count("Terminating runaway script")


def rules_files(root: Path) -> tuple[tuple[str, str], ...]:
    """The polkit rules files under a fixture root folder, as (path on the host, text)."""
    found = []
    for directory in RULES_DIRS:
        folder = root / directory.lstrip("/")
        if folder.is_dir():
            found += [(f"{directory}/{p.name}", p.read_text(encoding="utf-8"))
                      for p in sorted(folder.glob("*.rules"))]
    return tuple(found)


def available() -> str | None:
    """Why the oracle cannot run here, or None."""
    if os.geteuid() != 0:
        return "the oracle mounts over polkit's directories in a private mount namespace, as root"
    for tool in ("unshare", "setpriv", "mount", "dbus-daemon", "pkcheck"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.access(POLKITD, os.X_OK):
        return f"{POLKITD} (package polkitd) is not installed"
    for directory in (*RULES_DIRS, ACTIONS_DIR):
        if not os.path.isdir(directory):
            return f"{directory} does not exist (package polkitd makes it): it is a mount point"
    return None


def run(groups: Sequence[Sequence[Case]], actions: Sequence[Path], workdir: Path,
        timeout: float = 900) -> list[Outcome]:
    """Ask the real polkitd each case's questions, each case with only its own rules files loaded.

    Each group of cases runs in its own namespaces, all groups at once: a case that keeps polkitd's
    runaway killer busy for 15 s (a busy loop on one core) need not hold up the others.
    """
    runners = []
    for index, cases in enumerate(groups):
        work = workdir / f"group-{index}"
        work.mkdir(parents=True, exist_ok=True)
        spec = {"cases": [asdict(c) for c in cases], "actions": [str(p) for p in actions],
                "workdir": str(work)}
        (work / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        runners.append((work, subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
             "--kill-child", sys.executable, "-I", __file__, str(work / "spec.json")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    outcomes = []
    for work, runner in runners:
        try:
            output, _ = runner.communicate(timeout=timeout)
        finally:
            if runner.poll() is None:
                runner.kill()
        result = work / "result.json"
        if runner.returncode != 0 or not result.exists():
            raise RuntimeError(f"the polkit oracle failed (exit {runner.returncode}):\n{output}")
        for raw in json.loads(result.read_text(encoding="utf-8")):
            answers = tuple(Answer(**a) for a in raw["answers"])
            outcomes.append(Outcome(raw["name"], raw["log"], answers, raw["start_seconds"]))
    return outcomes


# --- inside the namespaces ---------------------------------------------------------------------------


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def _accounts(cases: list[dict[str, Any]]) -> tuple[dict[str, tuple[int, str]], dict[str, int]]:
    users: dict[str, tuple[int, str]] = {}  # name -> (uid, primary group)
    groups: dict[str, int] = {"root": 0, "polkitd": POLKITD_UID}
    next_id = FIRST_UID
    for case in cases:
        for q in case["questions"]:
            if q["group"] not in groups:
                groups[q["group"]] = next_id
                next_id += 1
            if q["user"] in ("root", "polkitd"):
                raise ValueError(f"{q['user']} is reserved in the oracle's account list")
            known = users.setdefault(q["user"], (next_id, q["group"]))
            if known[1] != q["group"]:
                raise ValueError(f"user {q['user']} asked about with groups {known[1]} and {q['group']}")
            if known[0] == next_id:
                next_id += 1
    return users, groups


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (POLKITD_MEMORY, POLKITD_MEMORY))


def _inside(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    work = Path(spec["workdir"])
    users, groups = _accounts(spec["cases"])
    _sh("mount", "-t", "tmpfs", "-o", "mode=0755", "vmsec-polkit-oracle", "/run")
    os.mkdir("/run/dbus")
    for directory in (*RULES_DIRS, ACTIONS_DIR):
        _sh("mount", "-t", "tmpfs", "-o", "mode=0755", "vmsec-polkit-oracle", directory)
    for source in spec["actions"]:
        shutil.copyfile(source, Path(ACTIONS_DIR) / Path(source).name)
    passwd = ["root:x:0:0:root:/root:/bin/sh", f"polkitd:x:{POLKITD_UID}:{POLKITD_UID}:polkitd:/:/bin/false"]
    passwd += [f"{name}:x:{uid}:{groups[group]}::/:/bin/false" for name, (uid, group) in users.items()]
    (work / "passwd").write_text("\n".join(passwd) + "\n", encoding="utf-8")
    (work / "group").write_text("".join(f"{name}:x:{gid}:\n" for name, gid in groups.items()),
                                encoding="utf-8")
    _sh("mount", "--bind", str(work / "passwd"), "/etc/passwd")
    _sh("mount", "--bind", str(work / "group"), "/etc/group")
    (work / "bus.conf").write_text(_BUS_CONFIG.format(socket=BUS_SOCKET), encoding="utf-8")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C",
           "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={BUS_SOCKET}"}
    subprocess.run(["dbus-daemon", f"--config-file={work / 'bus.conf'}", "--fork", "--print-pid=1"],
                   check=True, capture_output=True, env=env)
    pids = {}
    for name, (uid, group) in users.items():
        sleeper = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={groups[group]}", "--clear-groups",
                                    "sleep", "infinity"], env=env)
        pids[name] = sleeper.pid
    outcomes = []
    for index, case in enumerate(spec["cases"]):
        for directory in RULES_DIRS:
            for old in Path(directory).iterdir():
                old.unlink()
        for path, text in case["files"]:
            if os.path.dirname(path) not in RULES_DIRS:
                raise ValueError(f"{path} is not in a rules directory")
            Path(path).write_text(text, encoding="utf-8")
        log_path = work / f"polkitd-{index}.log"
        started = time.monotonic()
        with open(log_path, "wb") as log:
            polkitd = subprocess.Popen([POLKITD], stdout=log, stderr=subprocess.STDOUT, env=env,
                                       preexec_fn=_limit_memory)
        while READY not in log_path.read_text(errors="replace"):
            if polkitd.poll() is not None or time.monotonic() - started > START_TIMEOUT_S:
                raise RuntimeError(f"polkitd did not start for {case['name']}:\n{log_path.read_text()}")
            time.sleep(0.02)
        start_seconds = time.monotonic() - started
        answers = []
        for q in case["questions"]:
            argv = ["pkcheck", "--action-id", q["action"], "--process", str(pids[q["user"]])]
            for key, value in q["details"].items():
                argv += ["--detail", key, value]
            asked = time.monotonic()
            try:
                done = subprocess.run(argv, capture_output=True, text=True, env=env,
                                      timeout=case["pkcheck_timeout"], check=False)
            except subprocess.TimeoutExpired:
                answers.append({"code": TIMED_OUT, "details": {}, "seconds": time.monotonic() - asked,
                                "stderr": f"pkcheck gave no answer in {case['pkcheck_timeout']} s"})
                continue
            details = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
            details = {k.replace("\\56", "."): v for k, v in details.items()}
            answers.append({"code": done.returncode, "details": details, "stderr": done.stderr,
                            "seconds": time.monotonic() - asked})
        exited = polkitd.poll()
        polkitd.kill()
        polkitd.wait(timeout=30)
        log_text = log_path.read_text(errors="replace")
        if exited is not None:
            log_text += f"\n[oracle] polkitd had exited with status {exited}\n"
        outcomes.append({"name": case["name"], "log": log_text, "answers": answers,
                         "start_seconds": start_seconds})
    (work / "result.json").write_text(json.dumps(outcomes), encoding="utf-8")


if __name__ == "__main__":
    _inside(sys.argv[1])
