"""Account and password checks (VMS-GST-040…049) on facts built here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from vmsec.checks.api import Environment, FactMissing, Result
from vmsec.checks.guest import accounts
from vmsec.facts import (
    Account,
    AuthorizedKey,
    Group,
    Guest,
    Inventory,
    OsRelease,
    PamLine,
    PamStack,
    ShadowEntry,
    SshdConfig,
)
from vmsec.findings import Severity, Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN


def acct(name: str, uid: int, gid: int | None = None, shell: str = "/bin/bash", line: int = 1) -> Account:
    return Account(name=name, uid=uid, gid=uid if gid is None else gid, shell=shell,
                   origin=f"/etc/passwd:{line}")


def sh(name: str, algo: str | None = "yescrypt", empty: bool = False, locked: bool = False,
       max_days: int | None = 99999, origin: str = "/etc/shadow:1") -> ShadowEntry:
    return ShadowEntry(name=name, hash_algorithm=algo, empty=empty, locked=locked, max_days=max_days,
                       origin=origin)


ROOT = acct("root", 0)


def guest(accts: tuple[Account, ...] | None = (ROOT,), shadow: tuple[ShadowEntry, ...] | None = (),
          **facts: Any) -> Guest:
    return Guest(name="t", origin="/srv/root", accounts=accts, shadow=shadow, **facts)


def run(func: Callable[..., Iterator[Result]], g: Guest, **params: Any) -> list[Result]:
    try:
        return list(func(g, Environment(inventory=Inventory(guests=(g,)), host=None, params=params)))
    except FactMissing as e:
        return [Result(U, e.subject or "", e.reason)]


def st(results: list[Result]) -> list[Status]:
    return [r.status for r in results]


@pytest.mark.parametrize("func", [accounts.extra_uid0, accounts.duplicate_uids,
                                  accounts.system_account_shells])
def test_unreadable_passwd_is_unknown(func: Callable[..., Iterator[Result]]) -> None:
    assert st(run(func, guest(accts=None))) == [U]


def test_extra_uid0() -> None:
    assert st(run(accounts.extra_uid0, guest())) == [P]
    results = run(accounts.extra_uid0, guest((ROOT, acct("toor", 0, line=2))))
    assert st(results) == [F] and results[0].severity is None and "toor" in results[0].message
    results = run(accounts.extra_uid0, guest((ROOT, acct("toor", 0)), (sh("toor", None, locked=True),)))
    assert st(results) == [F] and results[0].severity is Severity.INFO


NULLOK = (PamStack(service="login", path="/etc/pam.d/login", lines=(
    PamLine(type="auth", control="required", module="pam_unix.so", args=("nullok",),
            origin="/etc/pam.d/common-auth:3"),)),)


@pytest.mark.parametrize(("shell", "facts", "severity"), [
    ("/bin/bash", {}, None),
    ("/bin/bash", {"pam": NULLOK}, Severity.CRITICAL),
    ("/usr/sbin/nologin", {"pam": NULLOK}, None),
    ("/bin/sh", {"sshd": SshdConfig(version="9.2p1", settings={"permitemptypasswords": ("yes",)},
                                     origins={"permitemptypasswords": "/etc/ssh/sshd_config:3"})},
     Severity.CRITICAL),
])
def test_empty_password(shell: str, facts: Mapping[str, Any], severity: Severity | None) -> None:
    g = guest((ROOT, acct("guest", 1001, shell=shell)), (sh("root"), sh("guest", None, empty=True)), **facts)
    results = run(accounts.empty_passwords, g)
    assert st(results) == [F] and results[0].severity is severity
    assert st(run(accounts.empty_passwords, guest(shadow=(sh("root"),)))) == [P]
    assert st(run(accounts.empty_passwords, guest(shadow=None))) == [U]


@pytest.mark.parametrize(("algo", "locked", "expected", "severity"), [
    ("yescrypt", False, [P], None), ("sha512", False, [P], None), ("bcrypt", False, [P], None),
    ("sha256", False, [F], Severity.LOW), ("md5", False, [F], Severity.HIGH),
    ("des", False, [F], Severity.CRITICAL), ("unknown", False, [U], None),
    ("md5", True, [], None),  # locked: no login with it
])
def test_weak_hashes(algo: str, locked: bool, expected: list[Status], severity: Severity | None) -> None:
    results = run(accounts.weak_hashes, guest(shadow=(sh("root", algo, locked=locked),)))
    assert st(results) == expected
    if results:
        assert results[0].severity is severity


def test_password_aging() -> None:
    g = guest((ROOT, acct("alice", 1000), acct("daemon", 2, shell="/usr/sbin/nologin")),
              (sh("root", max_days=90), sh("alice", max_days=None), sh("daemon", max_days=None)))
    results = run(accounts.password_aging, g)
    assert st(results) == [P, F] and "alice" in results[1].message
    assert st(run(accounts.password_aging, g, password_max_days=100)) == [P, F]


def test_system_account_shells() -> None:
    g = guest((ROOT, acct("daemon", 1, shell="/usr/sbin/nologin"), acct("sync", 4, shell="/bin/sync"),
               acct("games", 5, shell="/bin/sh"), acct("svc", 1500, shell="/bin/sh"),
               acct("alice", 1000)), (sh("games"),), login_defs={"UID_MIN": "2000"})
    results = run(accounts.system_account_shells, g)
    assert [r.subject for r in results] == ["account games", "account svc", "account alice"]
    assert results[0].severity is None and results[1].severity is Severity.LOW
    g = guest((ROOT, acct("daemon", 1, shell="/usr/sbin/nologin"), acct("alice", 1000)))
    assert st(run(accounts.system_account_shells, g)) == [P]


def test_duplicates_and_gid0() -> None:
    g = guest((ROOT, acct("a", 1000), acct("b", 1000, line=3), acct("a", 1001, line=4),
               acct("op", 1002, gid=0), acct("operator", 11, gid=0)),
              groups=(Group(name="g", gid=1), Group(name="g", gid=2)))
    assert st(run(accounts.duplicate_uids, g)) == [F]
    assert sorted(r.subject for r in run(accounts.duplicate_names, g)) == ["account a", "group g"]
    results = run(accounts.gid0_accounts, g)
    assert [r.subject for r in results] == ["account op"]
    clean = guest((ROOT, acct("a", 1000)), groups=(Group(name="g", gid=1),))
    assert st(run(accounts.duplicate_uids, clean)) == [P]
    assert st(run(accounts.duplicate_names, clean)) == [P]
    assert st(run(accounts.gid0_accounts, clean)) == [P]


@pytest.mark.parametrize(("defs", "expected", "severity"), [
    ({"ENCRYPT_METHOD": "SHA512"}, P, None),
    ({"ENCRYPT_METHOD": "YESCRYPT"}, P, None),
    ({"ENCRYPT_METHOD": "MD5"}, F, None),
    ({"ENCRYPT_METHOD": "SHA256"}, F, Severity.LOW),
    ({"PASS_MAX_DAYS": "99999"}, F, None),
    ({}, U, None),
    (None, U, None),
])
def test_encrypt_method(defs: Mapping[str, str] | None, expected: Status, severity: Severity | None) -> None:
    results = run(accounts.encrypt_method, guest(login_defs=defs))
    assert st(results) == [expected] and results[0].severity is severity


def test_unshadowed() -> None:
    inline = ShadowEntry(name="legacy", hash_algorithm="md5", empty=False, locked=False,
                         origin="/etc/passwd:5")
    assert st(run(accounts.unshadowed, guest(shadow=(sh("root"), inline)))) == [F]
    assert st(run(accounts.unshadowed, guest(shadow=(sh("root"),)))) == [P]


def test_compliance_refs_cover_every_access_check() -> None:
    """guest_access.toml maps each check of the ssh, ssh_keys, accounts, pam and sudo modules, with
    only the documented keys."""
    import tomllib
    from importlib import resources

    from vmsec.checks.catalog import default_catalog

    text = (resources.files("vmsec") / "data" / "compliance" / "refs" / "guest_access.toml").read_text()
    refs = tomllib.loads(text)
    modules = {f"vmsec.checks.guest.{m}"
               for m in ("ssh", "ssh_keys", "accounts", "pam", "sudo", "file_permissions", "groups")}
    ours = {c.id for c in default_catalog().checks if c.module in modules}
    assert ours and set(refs) == ours
    for check_id, entry in refs.items():
        assert set(entry) <= {"cis", "cis_rhel9", "ssg", "lynis", "verified", "note"}, check_id
        assert isinstance(entry["verified"], bool), check_id
        for key in ("cis", "cis_rhel9", "ssg", "lynis"):
            assert all(isinstance(v, str) and v for v in entry.get(key, [])), check_id


# --- class 9: a UID-0 account with a locked password can still log in by key under UsePAM ---------

def _sshd(**settings: str) -> SshdConfig:
    return SshdConfig(version="9.2p1", settings={k: (v,) for k, v in settings.items()},
                      origins=dict.fromkeys(settings, "/etc/ssh/sshd_config:1"))


TOOR = acct("toor", 0, line=2)
KEY = AuthorizedKey(user="toor", path="/root/.ssh/authorized_keys", key_type="ssh-ed25519")


@pytest.mark.parametrize(("sshd", "lock", "expected"), [
    (_sshd(usepam="yes", permitrootlogin="prohibit-password"), "!", (Status.FAIL, None)),  # critical
    (_sshd(usepam="yes", permitrootlogin="no"), "!", (Status.FAIL, Severity.INFO)),
    (_sshd(usepam="no", permitrootlogin="prohibit-password"), "!", (Status.FAIL, Severity.INFO)),
    (_sshd(usepam="no", permitrootlogin="prohibit-password"), "*", (Status.FAIL, None)),  # '*' is no lock
    (_sshd(usepam="yes", allowusers="alice"), "!", (Status.FAIL, Severity.INFO)),
    (None, "!", (Status.FAIL, Severity.INFO)),
])
def test_locked_uid0_is_rated_by_how_it_can_log_in(sshd: SshdConfig | None, lock: str,
                                                   expected: tuple[Status, Severity | None]) -> None:
    entry = ShadowEntry(name="toor", hash_algorithm=None, empty=False, locked=True, lock_mark=lock)
    g = guest((ROOT, TOOR), (entry,), sshd=sshd, sshd_installed=sshd is not None,
              authorized_keys=(KEY,))
    [r] = run(accounts.extra_uid0, g)
    assert (r.status, r.severity) == expected, r.message
    if expected == (Status.FAIL, None):
        assert "with a key" in r.message


def test_a_uid_min_in_other_digits_is_no_number_and_the_default_stands() -> None:
    # '²' and '٣' are digits to str.isdigit() but not to int(): the check crashed on a hostile login.defs.
    for text in ("²", "٣٠٠٠"):
        g = guest((ROOT, acct("games", 5, shell="/bin/sh"), acct("svc", 1500, shell="/bin/sh")),
                  (sh("games"),), login_defs={"UID_MIN": text})
        assert [r.subject for r in run(accounts.system_account_shells, g)] == ["account games"]


@pytest.mark.parametrize(("raw", "value"), [("0x1388", 5000), ("010", 8), (" 2000 ", 2000), ("+500", 500),
                                            ("1_000", 1000), ("", 1000), ("99999999999", 1000)])
def test_login_defs_numbers_as_getdef_num_reads_them(raw: str, value: int) -> None:
    assert accounts._getdef_num(raw, 1000) == value  # strtol base 0 (useradd -R allocated 5000 for 0x1388)


@pytest.mark.parametrize(("method", "os_id", "status"), [
    ("SHA512", "debian", "PASS"), ("YESCRYPT", "debian", "PASS"),
    ("sha512", "debian", "FAIL"),  # chgpasswd: "Invalid ENCRYPT_METHOD value: 'sha512'. Defaulting to DES."
    ("BCRYPT", "debian", "FAIL"), ("GOST_YESCRYPT", "ubuntu", "FAIL"),  # not built in: DES
    ("BCRYPT", "opensuse-leap", "UNKNOWN"), ("SHA256", "debian", "FAIL"), ("MD5", "debian", "FAIL"),
])
def test_encrypt_method_as_shadow_utils_reads_it(method: str, os_id: str, status: str) -> None:
    guest = Guest(name="g", origin="/", login_defs={"ENCRYPT_METHOD": method}, os=OsRelease(id=os_id))
    assert [r.status.value for r in accounts.encrypt_method(guest, Environment(inventory=Inventory(),
                                                                             host=None))] == [status]
