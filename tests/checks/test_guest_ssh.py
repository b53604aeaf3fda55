"""SSH server and authorized_keys checks (VMS-GST-001…035), on facts built here.

SshdConfig facts carry what the collector resolves: lower-case keywords, effective global values with
their origin (a file line, or "default (OpenSSH 9.2p1)" for a compiled default), and Match blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest

from denied_reader import DeniedReader
from vmsec.checks.api import Environment, FactMissing, Result
from vmsec.checks.guest import ssh, ssh_keys
from vmsec.collectors.reader import RootReader
from vmsec.facts import (
    Account,
    AuthorizedKey,
    Group,
    Guest,
    Inventory,
    PamLine,
    PamStack,
    ShadowEntry,
    SshdConfig,
    SshdMatch,
)
from vmsec.findings import Severity, Status
from vmsec.parsers.sshd_config import read_sshd_config
from vmsec.parsers.sshd_defaults import compiled_defaults

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
DROPIN = "/etc/ssh/sshd_config.d/50-cloud-init.conf:1"


def sshd(version: str | None = "9.2p1", matches: tuple[SshdMatch, ...] = (),
         **settings: Any) -> SshdConfig:
    """A config whose given keywords are set in a drop-in; nothing else (as if no defaults known)."""
    return SshdConfig(version=version, settings={k: tuple(v.split()) for k, v in settings.items()},
                      origins=dict.fromkeys(settings, DROPIN), matches=matches,
                      files=("/etc/ssh/sshd_config",))


def sshd_from(settings: Mapping[str, str]) -> SshdConfig:
    return sshd("9.2p1", (), **settings)


def block(criteria: str, line: int = 20, **settings: str) -> SshdMatch:
    words = criteria.split()
    pairs = (("all", ""),) if words == ["All"] else tuple(
        (words[i].lower(), words[i + 1]) for i in range(0, len(words), 2))
    return SshdMatch(criteria=pairs, settings={k: (v,) for k, v in settings.items()},
                     origin=f"/etc/ssh/sshd_config:{line}")


def guest(cfg: SshdConfig | None, installed: bool | None = True, **facts: Any) -> Guest:
    return Guest(name="t", origin="/srv/root", sshd=cfg, sshd_installed=installed, **facts)


def run(func: Callable[..., Iterator[Result]], g: Guest, **params: Any) -> list[Result]:
    try:
        return list(func(g, Environment(inventory=Inventory(guests=(g,)), host=None, params=params)))
    except FactMissing as e:
        return [Result(U, e.subject or "", e.reason)]


def st(results: list[Result]) -> list[Status]:
    return [r.status for r in results]


# --- applicability and unknowns ----------------------------------------------------------------------

@pytest.mark.parametrize("func", [ssh.root_login, ssh.password_authentication, ssh.ciphers,
                                  ssh.allow_list, ssh_keys.dsa_keys])
def test_no_sshd_installed_gives_nothing(func: Callable[..., Iterator[Result]]) -> None:
    assert run(func, guest(None, installed=False, authorized_keys=())) == []


def test_unreadable_config_is_unknown() -> None:
    results = run(ssh.password_authentication, guest(None, installed=True))
    assert st(results) == [U] and "could not be read" in results[0].message
    results = run(ssh.password_authentication, guest(None, installed=None))
    assert st(results) == [U] and "installed" in results[0].message


def test_root_login_default_depends_on_version() -> None:
    assert st(run(ssh.root_login, guest(sshd(version=None)))) == [U]
    assert st(run(ssh.root_login, guest(sshd(version="9.2p1")))) == [P]
    assert st(run(ssh.root_login, guest(sshd(version="6.6p1")))) == [F]


# --- Match semantics -------------------------------------------------------------------------------

@pytest.mark.parametrize(("matches", "expected", "severities"), [
    ((), [P], [None]),
    # a catch-all block replaces the global value for everyone
    ((block("Address 0.0.0.0/0,::/0", passwordauthentication="yes"),), [F], [None]),
    # 0.0.0.0/0 is every IPv4 client only: sshd listens on IPv6 too (AddressFamily any) — the global
    # value still reaches IPv6 clients, and the block is rated as a global value, not a narrow one
    ((block("Address 0.0.0.0/0", passwordauthentication="yes"),), [P, F], [None, None]),
    ((block("All", passwordauthentication="yes"),), [F], [None]),
    # a narrower block: a finding limited to some connections, lower severity
    ((block("User backup", passwordauthentication="yes"),), [P, F], [None, Severity.LOW]),
    ((block("Address 10.0.0.0/8", passwordauthentication="yes"),), [P, F], [None, Severity.LOW]),
    # a negated address list does not match everyone
    ((block("Address !10.0.0.1,*", passwordauthentication="yes"),), [P, F], [None, Severity.LOW]),
    # the first matching block wins per keyword: a later block behind a catch-all never applies
    ((block("All", passwordauthentication="no"),
      block("User backup", 30, passwordauthentication="yes")), [P], [None]),
    # a block that sets other keywords does not matter
    ((block("User backup", x11forwarding="yes"),), [P], [None]),
])
def test_password_authentication_match_blocks(matches: tuple[SshdMatch, ...], expected: list[Status],
                                              severities: list[Severity | None]) -> None:
    results = run(ssh.password_authentication, guest(sshd(matches=matches, passwordauthentication="no")))
    assert sorted(st(results)) == sorted(expected)
    assert sorted(str(r.severity) for r in results) == sorted(str(s) for s in severities)
    for r in results:
        if r.status is F and r.severity is Severity.LOW:
            assert "Match" in r.subject and "for connections matching" in r.message


def test_root_login_is_open_to_ipv6_clients_behind_an_ipv4_catch_all() -> None:
    # sshd -T -C addr=2001:db8::1 says "permitrootlogin yes": the block never applies to IPv6.
    cfg = sshd(permitrootlogin="yes", matches=(block("Address 0.0.0.0/0", permitrootlogin="no"),))
    assert st(run(ssh.root_login, guest(cfg, accounts=ROOT_SHELL))) == [F]
    inet = sshd(permitrootlogin="yes", addressfamily="inet",
                matches=(block("Address 0.0.0.0/0", permitrootlogin="no"),))
    assert st(run(ssh.root_login, guest(inet, accounts=ROOT_SHELL))) == [P]


def test_password_authentication_default_is_yes() -> None:
    results = run(ssh.password_authentication, guest(sshd()))
    assert st(results) == [F] and "compiled-in default" in results[0].message


ROOT_IN_WHEEL = (Group(name="wheel", gid=10, members=("root",)), Group(name="root", gid=0))


@pytest.mark.parametrize(("matches", "expected"), [
    ((block("User root", permitrootlogin="yes"),), [F]),  # every root connection
    ((block("User alice", permitrootlogin="yes"),), [P]),  # cannot apply to root
    ((block("User !root,*", permitrootlogin="yes"),), [P]),
    ((block("Group wheel", permitrootlogin="yes"),), [F]),  # root is in wheel
    ((block("Group staff", permitrootlogin="yes"),), [P]),
    ((block("Address 192.0.2.0/24", permitrootlogin="yes"),), [P, F]),
])
def test_root_login_evaluates_match_for_root(matches: tuple[SshdMatch, ...], expected: list[Status]) -> None:
    g = guest(sshd(matches=matches, permitrootlogin="no"),
              accounts=(Account(name="root", uid=0, gid=0, shell="/bin/bash"),), groups=ROOT_IN_WHEEL)
    results = run(ssh.root_login, g)
    assert sorted(st(results)) == sorted(expected)
    if matches[0].criteria[0][0] in ("user", "group") and F in expected:
        assert "for every connection as root" in next(r for r in results if r.status is F).message


def test_unknown_default_still_reports_match_blocks() -> None:
    cfg = sshd(version=None, matches=(block("User root Address 10.0.0.0/8", permitrootlogin="yes"),
                                      block("User root Address 192.0.2.0/24", 30, permitrootlogin="no")))
    results = run(ssh.root_login, guest(cfg))
    assert st(results) == [U, F]


def test_root_login_escalates_with_weak_root_hash() -> None:
    weak = (ShadowEntry(name="root", hash_algorithm="md5", empty=False, locked=False),)
    results = run(ssh.root_login, guest(sshd(permitrootlogin="yes"), shadow=weak))
    assert st(results) == [F] and results[0].severity is Severity.CRITICAL
    strong = (ShadowEntry(name="root", hash_algorithm="yescrypt", empty=False, locked=False),)
    results = run(ssh.root_login, guest(sshd(permitrootlogin="yes"), shadow=strong))
    assert st(results) == [F] and results[0].severity is None


def test_empty_passwords_escalate_when_an_account_has_none() -> None:
    shadow = (ShadowEntry(name="guest", hash_algorithm=None, empty=True, locked=False),)
    results = run(ssh.permit_empty_passwords, guest(sshd(permitemptypasswords="yes"), shadow=shadow))
    assert st(results) == [F] and results[0].severity is Severity.CRITICAL and "guest" in results[0].message
    assert st(run(ssh.permit_empty_passwords, guest(sshd()))) == [P]


def sshd_stack(*modules: str) -> tuple[PamStack, ...]:
    return (PamStack(service="sshd", path="/etc/pam.d/sshd", lines=tuple(
        PamLine(type="auth", control="required", module=m, origin=f"/etc/pam.d/sshd:{i}")
        for i, m in enumerate(modules, 1))),)


@pytest.mark.parametrize(("settings", "pam", "expected"), [
    ({"kbdinteractiveauthentication": "yes", "usepam": "yes"}, sshd_stack("pam_unix.so"), [F]),
    ({"kbdinteractiveauthentication": "yes", "usepam": "yes"},
     sshd_stack("pam_google_authenticator.so", "pam_unix.so"), [P]),
    ({"kbdinteractiveauthentication": "no", "usepam": "yes"}, sshd_stack("pam_unix.so"), [P]),
    ({"challengeresponseauthentication": "yes", "usepam": "yes"}, sshd_stack("pam_unix.so"), [F]),
    ({"kbdinteractiveauthentication": "yes", "usepam": "no"}, sshd_stack("pam_unix.so"), [P]),
    ({"kbdinteractiveauthentication": "yes", "usepam": "yes"}, None, [U]),
    ({"kbdinteractiveauthentication": "no", "usepam": "yes"}, None, [P]),  # PAM does not matter then
])
def test_keyboard_interactive(settings: Mapping[str, str], pam: tuple[PamStack, ...] | None,
                              expected: list[Status]) -> None:
    assert st(run(ssh.keyboard_interactive, guest(sshd_from(settings), pam=pam))) == expected


# --- algorithms --------------------------------------------------------------------------------------

def listed(keyword: str, value: str, origin: str = DROPIN, version: str = "9.2p1") -> SshdConfig:
    return SshdConfig(version=version, settings={keyword: tuple(value.split(","))}, origins={keyword: origin})


@pytest.mark.parametrize(("func", "cfg", "expected", "severity"), [
    (ssh.ciphers, listed("ciphers", "aes256-gcm@openssh.com,aes128-ctr"), P, None),
    (ssh.ciphers, listed("ciphers", "aes128-ctr,3des-cbc"), F, Severity.HIGH),
    (ssh.ciphers, listed("ciphers", "aes128-ctr,aes128-cbc"), F, None),
    (ssh.ciphers, listed("ciphers", "arcfour256"), F, Severity.HIGH),
    (ssh.ciphers, listed("ciphers", "chacha20-poly1305@openssh.com", "default (OpenSSH 9.2p1)"), P, None),
    (ssh.ciphers, SshdConfig(version="9.2p1"), P, None),
    (ssh.ciphers, SshdConfig(version="6.6p1"), F, None),
    (ssh.ciphers, SshdConfig(version=None), U, None),
    # set in a file but not resolvable (a pattern): unknown, not pass
    (ssh.ciphers, SshdConfig(version="9.2p1", origins={"ciphers": DROPIN}), U, None),
    (ssh.macs, listed("macs", "hmac-sha2-256-etm@openssh.com,hmac-md5"), F, None),
    # umac-64 is in 9.2's default list: tolerated however the list is written (class 4)
    (ssh.macs, listed("macs", "umac-64-etm@openssh.com"), P, None),
    (ssh.macs, listed("macs", "umac-64-etm@openssh.com", version="6.0p1"), F, None),  # default unknown
    (ssh.macs, listed("macs", "umac-64-etm@openssh.com,hmac-sha2-256", "default (OpenSSH 9.2p1)"), P, None),
    (ssh.kex, listed("kexalgorithms", "curve25519-sha256,diffie-hellman-group1-sha1"), F, None),
    (ssh.kex, listed("kexalgorithms", "curve25519-sha256,sntrup761x25519-sha512@openssh.com"), P, None),
])
def test_algorithm_lists(func: Callable[..., Iterator[Result]], cfg: SshdConfig, expected: Status,
                         severity: Severity | None) -> None:
    results = run(func, guest(cfg))
    assert st(results) == [expected]
    assert results[0].severity is severity


def test_signature_algorithms_one_result_per_list() -> None:
    cfg = SshdConfig(version="9.2p1", settings={"pubkeyacceptedalgorithms": ("ssh-ed25519", "ssh-rsa")},
                     origins={"pubkeyacceptedalgorithms": DROPIN})
    results = run(ssh.signature_algorithms, guest(cfg))
    assert st(results) == [P, F, P]
    assert "ssh-rsa" in results[1].message


@pytest.mark.parametrize(("version", "expected", "severity"), [
    ("7.3p1", F, None), ("9.2p1", F, Severity.INFO), (None, U, None)])
def test_protocol_1(version: str | None, expected: Status, severity: Severity | None) -> None:
    results = run(ssh.protocol_1, guest(sshd(version=version, protocol="2,1")))
    assert st(results) == [expected] and results[0].severity is severity
    assert st(run(ssh.protocol_1, guest(sshd(version=version)))) == [P]


# --- numbers, forwarding, logging ----------------------------------------------------------------------

@pytest.mark.parametrize(("func", "settings", "expected", "severity"), [
    (ssh.max_auth_tries, {"maxauthtries": "3"}, P, None),
    (ssh.max_auth_tries, {"maxauthtries": "10"}, F, None),
    (ssh.max_auth_tries, {}, F, None),  # default 6
    (ssh.login_grace_time, {"logingracetime": "30"}, P, None),
    (ssh.login_grace_time, {"logingracetime": "120"}, F, None),
    (ssh.login_grace_time, {"logingracetime": "0"}, F, Severity.MEDIUM),
    (ssh.log_level, {"loglevel": "QUIET"}, F, None),
    (ssh.log_level, {"loglevel": "VERBOSE"}, P, None),
    (ssh.permit_user_environment, {"permituserenvironment": "LANG,LC_*"}, F, None),
    (ssh.permit_user_environment, {}, P, None),
    (ssh.use_pam, {"usepam": "no"}, F, None),
    (ssh.use_pam, {"usepam": "yes"}, P, None),
    (ssh.client_alive, {"clientaliveinterval": "300"}, P, None),
    (ssh.client_alive, {}, F, None),
    (ssh.banner, {"banner": "/etc/issue.net"}, P, None),
    (ssh.x11_forwarding, {"x11forwarding": "yes"}, F, None),
    (ssh.x11_forwarding, {"x11forwarding": "yes", "disableforwarding": "yes"}, P, None),
    (ssh.agent_forwarding, {"allowagentforwarding": "no"}, P, None),
])
def test_single_settings(func: Callable[..., Iterator[Result]], settings: Mapping[str, str],
                         expected: Status, severity: Severity | None) -> None:
    results = run(func, guest(sshd_from(settings)))
    assert st(results) == [expected] and results[0].severity is severity


def test_thresholds_are_parameters() -> None:
    assert st(run(ssh.max_auth_tries, guest(sshd(maxauthtries="6")), ssh_max_auth_tries=6)) == [P]
    assert st(run(ssh.login_grace_time, guest(sshd(logingracetime="90")), ssh_login_grace_time=120)) == [P]


def test_gateway_ports_is_medium_and_tunnels_low() -> None:
    results = run(ssh.tcp_forwarding, guest(sshd(allowtcpforwarding="no", gatewayports="yes",
                                                 permittunnel="yes")))
    by = {r.subject: r for r in results}
    assert by["sshd AllowTcpForwarding"].status is P
    assert by["sshd GatewayPorts"].status is F and by["sshd GatewayPorts"].severity is Severity.MEDIUM
    assert by["sshd PermitTunnel"].status is F and by["sshd PermitTunnel"].severity is None


def test_host_based_and_rhosts() -> None:
    results = run(ssh.host_based, guest(sshd(hostbasedauthentication="yes", ignorerhosts="no")))
    assert st(results) == [F, F]
    assert st(run(ssh.host_based, guest(sshd()))) == [P, P]


def test_allow_list() -> None:
    assert st(run(ssh.allow_list, guest(sshd(allowgroups="ssh-users")))) == [P]
    assert st(run(ssh.allow_list, guest(sshd()))) == [F]


# --- authorized_keys -----------------------------------------------------------------------------------

def key(user: str, key_type: str | None, bits: int | None = None, options: tuple[str, ...] = (),
        path: str | None = None, line: int = 1) -> AuthorizedKey:
    home = "/root" if user == "root" else f"/home/{user}"
    return AuthorizedKey(user=user, path=path or f"{home}/.ssh/authorized_keys", key_type=key_type,
                         bits=bits, options=options, line=line)


def keyed(*keys: AuthorizedKey, cfg: SshdConfig | None = None) -> Guest:
    return guest(cfg or sshd(permitrootlogin="without-password"), authorized_keys=keys)


def test_keys_unknown_when_unreadable() -> None:
    assert st(run(ssh_keys.dsa_keys, guest(sshd(), authorized_keys=None))) == [U]


def test_dsa_and_rsa_sizes() -> None:
    g = keyed(key("alice", "ssh-dss", 1024), key("alice", "ssh-ed25519", 256, line=2),
              key("bob", "ssh-rsa", 1024), key("carol", "ssh-rsa", 2048), key("dave", "ssh-rsa", 4096))
    assert sorted(st(run(ssh_keys.dsa_keys, g))) == sorted([P, P, P, F])
    results = run(ssh_keys.rsa_key_size, g)
    assert st(results) == [F, P, P]
    assert "3072 recommended" in results[1].message
    assert st(run(ssh_keys.rsa_key_size, g, ssh_rsa_min_bits=3072)) == [F, F, P]


@pytest.mark.parametrize(("permit", "options", "expected"), [
    ("without-password", (), F),
    ("yes", (), F),
    ("no", (), P),
    ("without-password", ('command="echo no"',), P),
])
def test_root_keys(permit: str, options: tuple[str, ...], expected: Status) -> None:
    g = keyed(key("root", "ssh-ed25519", 256, options), key("alice", "ssh-ed25519", 256),
              cfg=sshd(permitrootlogin=permit))
    assert st(run(ssh_keys.root_keys, g)) == [expected]


def test_root_keys_with_match_user_root() -> None:
    cfg = sshd(permitrootlogin="no", matches=(block("User root Address 10.0.0.0/8",
                                                    permitrootlogin="without-password"),))
    results = run(ssh_keys.root_keys, keyed(key("root", "ssh-ed25519", 256), cfg=cfg))
    assert st(results) == [F] and "Match User root Address 10.0.0.0/8" in results[0].message


def test_unrestricted_legacy_and_garbled_keys() -> None:
    legacy = "/home/alice/.ssh/authorized_keys2"
    g = keyed(key("alice", "ssh-ed25519", 256, ('from="10.0.0.0/8"',)),
              key("alice", "ssh-ed25519", 256, line=2),
              key("alice", "ssh-ed25519", 256, ('from="*"',), line=3),
              key("alice", "ssh-ed25519", 256, path=legacy),
              key("alice", None, path=legacy, line=2))
    assert st(run(ssh_keys.unrestricted_keys, g)) == [P, F, F, F]
    assert st(run(ssh_keys.authorized_keys2, g)) == [F]
    assert st(run(ssh_keys.authorized_keys2, keyed(key("alice", "ssh-ed25519", 256)))) == [P]
    assert sorted(st(run(ssh_keys.garbled_keys, g))) == sorted([P, F])


def test_no_legacy_keys_is_unknown_when_key_files_were_left_unread() -> None:
    cut = ("/etc/ssh/sshd_config:1: AuthorizedKeysFile: 3000 entries, only the first 256 examined",)
    g = msgspec.structs.replace(keyed(key("alice", "ssh-ed25519", 256)), unread={"authorized_keys": cut})
    [result] = run(ssh_keys.authorized_keys2, g)
    assert result.status is U and "only the first 256 examined" in result.message


@pytest.mark.parametrize("line", ["", "MACs +hmac-sha1\n", "MACs +umac-64@openssh.com\n",
                                  "MACs " + ",".join(compiled_defaults("9.2p1")["macs"]) + "\n"])
def test_a_list_written_as_the_default_gets_the_default_verdict(tmp_path: Path, line: str) -> None:
    """Class 4: `MACs +hmac-sha1` resolves to OpenSSH 9.2's own default list — same verdict as unset."""
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text(line + "UsePAM yes\n")
    cfg = read_sshd_config(RootReader(str(tmp_path)), version="9.2p1")
    assert st(run(ssh.macs, guest(cfg))) == [P]


# --- class 9: a Match block is rated by who can use it --------------------------------------------

def _accounts(*specs: tuple[str, str]) -> dict[str, Any]:
    accts = tuple(Account(name=n, uid=1000 + i, gid=1000 + i, shell=shell)
                  for i, (n, shell) in enumerate((("root", "/bin/bash"), *specs)))
    shadow = tuple(ShadowEntry(name=a.name, hash_algorithm="yescrypt", empty=False, locked=False)
                   for a in accts)
    return {"accounts": accts, "shadow": shadow, "groups": ()}


@pytest.mark.parametrize(("cfg", "facts", "expected"), [
    # Match User nobody: nobody has no login shell; the block is not a finding (decoy).
    (sshd(passwordauthentication="no", matches=(block("User nobody", passwordauthentication="yes"),)),
     _accounts(("nobody", "/usr/sbin/nologin")), [P, P]),
    (sshd(passwordauthentication="no", matches=(block("User backup", passwordauthentication="yes"),)),
     _accounts(("backup", "/bin/bash")), [P, F]),
    (sshd(passwordauthentication="no", allowusers="alice",
          matches=(block("User backup", passwordauthentication="yes"),)),
     _accounts(("backup", "/bin/bash"), ("alice", "/bin/bash")), [P, P]),
    (sshd(passwordauthentication="no", matches=(block("User ghost", passwordauthentication="yes"),)),
     _accounts(("backup", "/bin/bash")), [P, P]),  # no such account
    (sshd(passwordauthentication="no", matches=(block("User backup", passwordauthentication="yes"),)),
     {}, [P, F]),  # accounts unknown: the block may apply
])
def test_match_block_rated_by_who_can_use_it(cfg: SshdConfig, facts: dict[str, Any],
                                             expected: list[Status]) -> None:
    results = run(ssh.password_authentication, guest(cfg, **facts))
    assert st(results) == expected
    if expected == [P, F] and facts:
        assert "accounts that can use it: backup" in results[1].message


def test_root_login_not_reachable_when_allowusers_excludes_root() -> None:
    cfg = sshd(permitrootlogin="yes", allowusers="alice")
    results = run(ssh.root_login, guest(cfg, **_accounts(("alice", "/bin/bash"))))
    assert st(results) == [P] and "AllowUsers alice excludes root" in results[0].message


ROOT_SHELL = (Account(name="root", uid=0, gid=0, shell="/bin/bash"),
              Account(name="alice", uid=1000, gid=1000, shell="/bin/bash"))


@pytest.mark.parametrize(("cfg", "expected"), [
    # allowed_user(): each DenyUsers/AllowUsers word is one pattern (match_user), no list, no "!":
    # "alice,root" denies a user named "alice,root" — nobody here. Checked with a real sshd login.
    (sshd(permitrootlogin="yes", denyusers="alice,root"), [F]),
    (sshd(permitrootlogin="yes", denyusers="!alice"), [F]),
    (sshd(permitrootlogin="yes", denyusers="alice root"), [P]),
    # user@host denies root only from that host: root still logs in from the others.
    (sshd(permitrootlogin="yes", denyusers="root@10.0.0.1"), [F]),
    (sshd(permitrootlogin="yes", denyusers="root@*"), [P]),
    (sshd(permitrootlogin="yes", allowusers="alice root@10.0.0.1"), [F]),
    # A Match block's DenyUsers replaces the global list for its connections (copy_set_server_options).
    (sshd(permitrootlogin="yes", denyusers="root",
          matches=(block("Address 10.0.0.0/8", denyusers="nobody"),)), [F]),
    (sshd(permitrootlogin="yes", denyusers="root", matches=(block("User alice", denyusers="nobody"),)), [P]),
])
def test_root_login_blocked_only_when_sshd_blocks_it(cfg: SshdConfig, expected: list[Status]) -> None:
    assert st(run(ssh.root_login, guest(cfg, accounts=ROOT_SHELL))) == expected


def test_disableforwarding_covers_only_the_connections_it_reaches() -> None:
    # sshd -T -C user=alice: "disableforwarding no", "x11forwarding yes" — the global yes is undone
    # for alice's connections, so X11 forwarding is not off everywhere.
    cfg = sshd(disableforwarding="yes", x11forwarding="yes",
               matches=(block("User alice", disableforwarding="no"),))
    assert F in st(run(ssh.x11_forwarding, guest(cfg)))
    assert st(run(ssh.x11_forwarding, guest(sshd(disableforwarding="yes", x11forwarding="yes")))) == [P]


def test_disableforwarding_does_not_cover_tunnels() -> None:
    # sshd_config(5) of OpenSSH 9.2: DisableForwarding covers X11, agent, TCP and StreamLocal; tun
    # devices are PermitTunnel's alone (serverloop.c server_request_tun checks permit_tun only).
    cfg = sshd(disableforwarding="yes", permittunnel="yes")
    results = run(ssh.tcp_forwarding, guest(cfg))
    assert [r.status for r in results if "PermitTunnel" in r.subject] == [F]
    assert all(r.status is P for r in results if "PermitTunnel" not in r.subject)


def test_a_hostile_match_user_pattern_is_judged_not_hung() -> None:
    # "*a*a…*b" against a 64-character account name: a regular expression made of it backtracks for
    # hours; sshd's own matcher (and vmsec's) answers at once.
    long_name = "a" * 64
    cfg = sshd(passwordauthentication="no",
               matches=(block("User " + "*a" * 20 + "*b", passwordauthentication="yes"),))
    accounts = (Account(name=long_name, uid=1000, gid=1000, shell="/bin/bash"),)
    results = run(ssh.password_authentication, guest(cfg, accounts=accounts))
    assert st(results) == [P, P]  # the block reaches no account: the name does not end in "b"


# --- an included file that could not be read ---------------------------------------------------------

CLOUD_INIT = "/etc/ssh/sshd_config.d/50-cloud-init.conf"
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "checks"



def unread_config(tmp_path: Path, main: str) -> SshdConfig:
    """The reviewer's root: cloud-init's drop-in (0600) sets PermitRootLogin yes and is read by nobody."""
    (tmp_path / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (tmp_path / "etc/ssh/sshd_config").write_text(f"Include /etc/ssh/sshd_config.d/*.conf\n{main}")
    (tmp_path / CLOUD_INIT.lstrip("/")).write_text("PermitRootLogin yes\nPasswordAuthentication yes\n")
    return read_sshd_config(DeniedReader(tmp_path, CLOUD_INIT), version="9.2p1", distro="debian")


def test_root_login_on_the_default_with_an_unread_drop_in_is_unknown(tmp_path: Path) -> None:
    results = run(ssh.root_login, guest(unread_config(tmp_path, "")))
    assert st(results) == [U]
    assert f"{CLOUD_INIT}: Permission denied" in results[0].message
    # an account that cannot log in at all cannot, whatever the unread file says
    no_shell = (Account(name="root", uid=0, gid=0, shell="/usr/sbin/nologin"),)
    results = run(ssh.root_login, guest(unread_config(tmp_path, ""), accounts=no_shell))
    assert st(results) == [P] and "no login shell" in results[0].message


def test_a_bad_default_with_an_unread_drop_in_is_unknown_but_a_bad_value_read_fails(tmp_path: Path) -> None:
    # PasswordAuthentication yes is only the compiled-in default: the unread file may set it first
    results = run(ssh.password_authentication, guest(unread_config(tmp_path, "")))
    assert st(results) == [U] and CLOUD_INIT in results[0].message
    # a value that was read is a finding: a rule that is there is there
    cfg = unread_config(tmp_path, "PasswordAuthentication yes\n")
    assert st(run(ssh.password_authentication, guest(cfg))) == [F]


@pytest.mark.parametrize("func", [ssh.root_login, ssh.password_authentication, ssh.ciphers, ssh.macs,
                                  ssh.x11_forwarding, ssh.login_grace_time, ssh.allow_list, ssh.protocol_1,
                                  ssh.tcp_forwarding])
def test_hardened_main_file_with_an_unread_drop_in_passes_nothing(
        func: Callable[..., Iterator[Result]]) -> None:
    # The drop-in is read first and wins: as root VMS-GST-001 fails on it; unread, nothing may pass.
    root = FIXTURES / "VMS-GST-001" / "cloud-dropin-yes.FAIL"
    cfg = read_sshd_config(DeniedReader(root, CLOUD_INIT), version="9.2p1", distro="debian")
    root_account = Account(name="root", uid=0, gid=0, shell="/bin/bash")
    results = run(func, guest(cfg, shadow=(), accounts=(root_account,)))
    assert results and P not in st(results)
    assert all(CLOUD_INIT in r.message for r in results if r.status is U)
    read_all = read_sshd_config(RootReader(str(root)), version="9.2p1", distro="debian")
    assert read_all.unread == ()


def test_a_root_key_with_an_unread_drop_in_is_unknown_unless_root_is_refused(tmp_path: Path) -> None:
    key = AuthorizedKey(user="root", path="/root/.ssh/authorized_keys", key_type="ssh-ed25519", line=1)
    results = run(ssh_keys.root_keys, guest(unread_config(tmp_path, ""), authorized_keys=(key,)))
    assert st(results) == [U] and CLOUD_INIT in results[0].message  # prohibit-password is only the default
    # "PermitRootLogin no" after the Include: the unread file, read first, may say otherwise
    refused = unread_config(tmp_path, "PermitRootLogin no\n")
    results = run(ssh_keys.root_keys, guest(refused, authorized_keys=(key,)))
    assert st(results) == [U]


def test_a_match_localport_in_other_digits_matches_no_connection() -> None:
    # sshd reads LocalPort with a2port(): '²²' is no port. str.isdigit() took it, int() then crashed.
    cfg = sshd(matches=(block("LocalPort ²²", passwordauthentication="yes"),), passwordauthentication="no")
    assert cfg.for_connection("alice", local_port=22)["passwordauthentication"] == ("no",)
