"""The auth-stack model behind VMS-GST-058 and VMS-GST-060 (``checks/helpers/pam_flow.py``), against the
real libpam.

The oracle is Debian 12's Linux-PAM 1.5.2 itself, called through ctypes: ``pam_start_confdir()`` reads
the service files from a temporary directory (nothing in /etc is touched) and ``pam_authenticate()``
runs them. Every module is ``pam_debug.so auth=RETURN``, which returns what it is told, so a stack's
answer depends on libpam's dispatch alone: controls, ``[value=action]`` lists, jumps, ``reset``,
``include`` and ``substack``. vmsec reads the same files with its parser and runs its model with the
same returns. A review ran 160,000 random stacks this way; the cases below are the minimal ones it
found where vmsec answered differently (adjacent substacks merged, an empty substack not counted by a
jump, bracket lists parsed leniently, a control without brackets, an include that failed to load),
and a seeded random sample keeps the rest honest.

Debian's libpam opens a relative include target in /etc/pam.d even with a confdir, so the includes
here name their files absolutely; vmsec reads them at the same path inside its root.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from components import missing
from vmsec.checks.helpers.pam_flow import _run, _stack_lines, succeeds
from vmsec.collectors.reader import RootReader
from vmsec.errors import Problems
from vmsec.parsers.pam import read_pam_stack

PAM_SUCCESS = 0
_CONV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class _PamConv(ctypes.Structure):
    _fields_ = [("conv", _CONV), ("appdata_ptr", ctypes.c_void_p)]


@_CONV
def _no_answers(_n: int, _msg: int, _resp: int, _data: int) -> int:
    return 19  # PAM_CONV_ERR: pam_debug only shows messages


def _libpam() -> ctypes.CDLL:
    name = ctypes.util.find_library("pam")
    if name is None:
        missing("libpam", "libpam.so.0 (Debian: libpam0g) is not installed")
    lib = ctypes.CDLL(name)
    if not hasattr(lib, "pam_start_confdir"):
        missing("libpam >= 1.4", "this libpam has no pam_start_confdir()")
    lib.pam_start_confdir.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_PamConv),
                                      ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.pam_authenticate.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.pam_end.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


@pytest.fixture(scope="module")
def libpam() -> Iterator[ctypes.CDLL]:
    lib = _libpam()
    if not any(Path(d, "pam_debug.so").exists() for d in ("/lib/x86_64-linux-gnu/security",
                                                           "/usr/lib/x86_64-linux-gnu/security",
                                                           "/lib/security", "/usr/lib64/security")):
        missing("pam_debug.so", "libpam-modules is not installed")
    yield lib


_CONVERSATION = _PamConv(_no_answers, None)


def libpam_lets_in(lib: ctypes.CDLL, confdir: Path) -> bool:
    handle = ctypes.c_void_p()
    started = lib.pam_start_confdir(b"svc", b"root", ctypes.byref(_CONVERSATION), str(confdir).encode(),
                                    ctypes.byref(handle))
    if started != PAM_SUCCESS:  # a service file's @include of a missing file: nothing works
        return False
    try:
        return bool(lib.pam_authenticate(handle, 0) == PAM_SUCCESS)
    finally:
        lib.pam_end(handle, 0)


def lay_out(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path]:
    """The files in CONF (libpam's confdir, = ROOT/etc/pam.d) and again at ROOT/CONF/, where vmsec, reading
    inside ROOT, finds the absolute include targets. ``@D`` in the text stands for CONF."""
    root = tmp_path / "root"
    conf = root / "etc/pam.d"
    mirror = root / str(conf).lstrip("/")
    for directory in (conf, mirror):
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text.replace("@D", str(conf)))
    return root, conf


def pam_debug_return(args: tuple[str, ...]) -> str:
    """What pam_debug.so's authenticate returns for these arguments (success when none says)."""
    return next((a.removeprefix("auth=") for a in args if a.startswith("auth=")), "success")


def vmsec_lets_in(root: Path) -> bool:
    stack = read_pam_stack(RootReader(str(root)), "svc", problems=Problems())
    assert stack is not None
    lines = _stack_lines(stack.lines)
    return _run(lines, [pam_debug_return(line.args) for line in lines])


def D(ret: str, control: str = "required") -> str:
    return f"auth {control} pam_debug.so auth={ret}\n"


# Each case: the files (service "svc"), and what libpam answers — asserted, so that a libpam that
# changes its mind is noticed instead of silently agreeing with a changed vmsec.
CASES = {
    # A substack is a handler of its own at the caller's level: jumps count it, and it separates
    # two substacks (a `done` or `reset` in one does not reach into the next).
    "empty substack counted by a jump": (
        {"svc": D("success", "[default=1]") + "auth substack @D/f1\n" + D("success", "sufficient"),
         "f1": ""}, True),
    "a jump does not swallow the next substack": (
        {"svc": D("success", "[success=1]") + D("success") + "auth substack @D/f1\n", "f1": D("success")},
        True),
    "done in a substack ends only that substack": (
        {"svc": "auth substack @D/f1\nauth substack @D/f2\n", "f1": D("success", "sufficient"),
         "f2": D("auth_err")}, False),
    "reset in the second substack": (
        {"svc": "auth substack @D/f1\nauth substack @D/f2\n" + D("success", "requisite"),
         "f1": D("auth_err"), "f2": D("success", "[default=reset]")}, False),
    "a substack opening with a substack": (
        {"svc": D("auth_err") + "auth substack @D/f1\n" + D("success", "sufficient"),
         "f1": "auth substack @D/f2\n" + D("success", "[default=reset]"), "f2": D("success")}, False),
    # _pam_parse_control(): case-sensitive prefixes, no zero jump, any error makes every value bad,
    # the first `default` wins, and a control without brackets is parsed the same way.
    "upper-case action": ({"svc": D("success", "[success=OK]")}, False),
    "zero jump": ({"svc": D("success", "[success=ok ignore=0]")}, False),
    "unknown value": ({"svc": D("success", "[success=ok bogus=ok]")}, False),
    "the first default wins": ({"svc": D("success", "[default=ok default=die]")}, True),
    "a value=action control without brackets": ({"svc": D("success", "success=ok")}, True),
    "a jump of a thousand digits": ({"svc": D("success", "[success=" + "9" * 1000 + "]") + D("success")},
                                    False),
    # _pam_StrTok() takes the brackets off before the keywords are compared.
    "a bracketed keyword": ({"svc": D("success", "[Sufficient]") + D("auth_err")}, True),
    # An include or substack that cannot be loaded leaves a handler that always fails.
    "a missing include": ({"svc": "auth include /nonexistent/x\n" + D("success", "sufficient")}, False),
    "a missing substack": ({"svc": "auth substack /nonexistent/x\n" + D("success", "sufficient")}, False),
    "done before a missing include": ({"svc": D("success", "sufficient") + "auth include /nonexistent/x\n"},
                                      True),
    "an account include does not touch auth": (
        {"svc": "account include /nonexistent/x\n" + D("success", "sufficient")}, True),
    "a missing @include in the service file": (
        {"svc": "@include /nonexistent/x\n" + D("success", "sufficient")}, False),
    "a missing @include inside an auth include": (
        {"svc": "auth include @D/a\n" + D("success", "sufficient"), "a": "@include /nonexistent/x\n"}, False),
    "PAM_INCOMPLETE stops the stack": ({"svc": D("incomplete", "optional") + D("success", "sufficient")},
                                       False),
}


@pytest.mark.parametrize(("files", "expected"), CASES.values(), ids=CASES.keys())
def test_stack_is_run_as_libpam_runs_it(libpam: ctypes.CDLL, tmp_path: Path, files: dict[str, str],
                                        expected: bool) -> None:
    root, conf = lay_out(tmp_path, files)
    assert libpam_lets_in(libpam, conf) is expected
    assert vmsec_lets_in(root) is expected


RETURNS = ["success", "auth_err", "ignore", "user_unknown", "new_authtok_reqd", "perm_denied",
           "cred_insufficient", "authinfo_unavail", "maxtries", "try_again", "abort"]
ACTIONS = ["ok", "done", "bad", "die", "ignore", "reset", "1", "1", "2", "3", "5", "9"]
VALUES = ["success", "default", "ignore", "auth_err", "user_unknown", "new_authtok_reqd", "maxtries"]
KEYWORDS = ["required", "requisite", "sufficient", "optional"]


def _control(r: random.Random) -> str:
    if r.random() < 0.4:
        return r.choice(KEYWORDS)
    pairs = [f"{r.choice(VALUES)}={r.choice(ACTIONS)}" for _ in range(r.randint(1, 4))]
    return "[" + " ".join(pairs) + "]"


def random_stack(seed: int) -> dict[str, str]:
    """Up to 8 lines a file, includes and substacks nested up to 3 deep (no loops), some files reused."""
    r = random.Random(seed)
    files: dict[str, str] = {}
    done: list[str] = []

    def make(name: str, depth: int) -> None:
        files[name] = ""
        text = []
        for _ in range(r.randint(1, 8)):
            prefix = "-" if r.random() < 0.1 else ""
            if depth < 3 and r.random() < 0.22:
                target = r.choice(done) if done and r.random() < 0.3 else f"f{len(files)}"
                if target not in files:
                    make(target, depth + 1)
                text.append(f"{prefix}auth {r.choice(['include', 'substack'])} @D/{target}\n")
            else:
                kind = "auth" if r.random() < 0.92 else r.choice(["account", "session", "password"])
                text.append(f"{prefix}{kind} {_control(r)} pam_debug.so auth={r.choice(RETURNS)}\n")
        files[name] = "".join(text)
        done.append(name)

    make("svc", 0)
    return files


def test_random_stacks_agree_with_libpam(libpam: ctypes.CDLL, tmp_path: Path) -> None:
    disagree = []
    for seed in range(600):
        files = random_stack(seed)
        root, conf = lay_out(tmp_path / str(seed), files)
        if libpam_lets_in(libpam, conf) != vmsec_lets_in(root):
            disagree.append((seed, files))
    assert not disagree, disagree[:3]


def test_substacks_of_a_real_mfa_setup_are_not_a_bypass(tmp_path: Path) -> None:
    """RHEL's sshd with a second factor in its own substack: `sufficient pam_unix` in password-auth
    ends password-auth only, so the OTP module still runs (libpam refuses a password alone: the
    case above, 'done in a substack ends only that substack')."""
    root, _ = lay_out(tmp_path, {
        "svc": "auth substack @D/password-auth\nauth substack @D/otp\n",
        "password-auth": "auth required pam_env.so\nauth sufficient pam_unix.so\nauth required pam_deny.so\n",
        "otp": "auth required pam_google_authenticator.so\n"})
    stack = read_pam_stack(RootReader(str(root)), "svc", problems=Problems())
    assert stack is not None
    otp = frozenset({"pam_google_authenticator.so"})
    assert succeeds(stack.lines, password=True, factor=False, factors=otp) is False
    assert succeeds(stack.lines, password=True, factor=True, factors=otp) is True
