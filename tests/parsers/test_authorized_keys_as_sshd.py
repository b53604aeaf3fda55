"""authorized_keys read as OpenSSH 9.2's sshd reads it. Each case is one a review found by logging in
to a real sshd (127.0.0.1, `sshd -d`) with the same file: sshd let the key in (or refused it) where
vmsec read another line, another key, or no key at all (docs/verdicts.md, rule 11).

- lines end at a newline only and, as C strings, at a NUL; the blanks are space and tab;
- the blob is cut at a space or tab and sshd's base64 decoder skips any white space inside it;
- `rsa-sha2-256`/`-512` name an RSA key, `webauthn-sk-ecdsa-…` a security-key ECDSA key;
- an option sshd does not know, or a value option without quotes, makes it refuse the line;
- more key lines than vmsec reads are unread (UNKNOWN), not absent;
- AuthorizedKeysFile: `%U` is the uid, `~` and `~user` are expanded when sshd reads its config,
  Match blocks add files, and keys from AuthorizedKeysCommand are never on disk."""

from __future__ import annotations

import base64
import shutil
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scan_findings import scan_findings
from vmsec.checks.api import Environment, FactMissing, Result
from vmsec.checks.guest import ssh_keys
from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import Account, AuthorizedKey, Guest, Inventory, SshdConfig, SshdMatch
from vmsec.findings import Status
from vmsec.parsers.authorized_keys import key_file_paths, parse_authorized_keys
from vmsec.parsers.sshd_defaults import compiled_defaults

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "checks"


@pytest.fixture(scope="module")
def rsa1024() -> str:
    """A real 1024-bit RSA public key in OpenSSH's format: ``ssh-rsa <blob>``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def one(text: str) -> AuthorizedKey:
    keys = parse_authorized_keys(text, "root", "/root/.ssh/authorized_keys")
    assert len(keys) == 1, keys
    return keys[0]


@pytest.mark.parametrize("inside", ["\v", "\f", "\r"])
def test_white_space_inside_the_blob_is_skipped(rsa1024: str, inside: str) -> None:
    kind, blob = rsa1024.split()
    key = one(f"{kind} {blob[:40]}{inside}{blob[40:]} weak-root-key\n")
    assert (key.key_type, key.bits, key.comment) == ("ssh-rsa", 1024, "weak-root-key")


def test_a_nul_ends_the_line(rsa1024: str) -> None:
    key = one(f"{rsa1024}\x00junk\n")
    assert (key.key_type, key.bits) == ("ssh-rsa", 1024)


@pytest.mark.parametrize("name", ["rsa-sha2-256", "rsa-sha2-512"])
def test_an_rsa_signature_name_is_an_rsa_key(rsa1024: str, name: str) -> None:
    key = one(f"{name} {rsa1024.split()[1]} c\n")
    assert (key.key_type, key.bits) == ("ssh-rsa", 1024)


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_a_webauthn_name_is_a_security_key() -> None:
    blob = (_string(b"sk-ecdsa-sha2-nistp256@openssh.com") + _string(b"nistp256")
            + _string(b"\x04" + bytes(64)) + _string(b"ssh:"))
    key = one(f"webauthn-sk-ecdsa-sha2-nistp256@openssh.com {base64.b64encode(blob).decode()} fido\n")
    assert (key.key_type, key.bits) == ("sk-ecdsa-sha2-nistp256@openssh.com", 256)


@pytest.mark.parametrize("line", [
    "# note\r{key}",  # one comment line to sshd: the carriage return is not a line end
    "\x1c{key}",  # not a blank to sshd
])
def test_what_python_calls_a_line_or_a_blank_is_not_one_to_sshd(rsa1024: str, line: str) -> None:
    keys = parse_authorized_keys(line.format(key=rsa1024) + "\n", "root", "/root/.ssh/authorized_keys")
    assert all(k.key_type is None for k in keys)


@pytest.mark.parametrize("options", ['bogus', 'from="127.0.0.1",bogus', "from=*", 'principals="root"x',
                                     'command="unterminated'])
def test_options_sshd_refuses_make_the_line_unusable(rsa1024: str, options: str) -> None:
    assert one(f"{options} {rsa1024}\n").key_type is None


@pytest.mark.parametrize("options", ['FROM="10.0.0.1"', 'restrict,Command="echo a,b c"', "no-touch-required",
                                     'command="echo \\"a b\\"",no-pty'])
def test_options_sshd_takes(rsa1024: str, options: str) -> None:
    assert one(f"{options} {rsa1024}\n").key_type == "ssh-rsa"


def test_key_lines_past_the_cap_are_unread_not_absent(rsa1024: str) -> None:
    text = "x\n" * 10_000 + f"{rsa1024} weak-root-key\n"
    with pytest.raises(ReadError) as error:
        parse_authorized_keys(text, "root", "/root/.ssh/authorized_keys")
    assert error.value.kind is ErrorKind.TOO_LARGE


def test_key_file_tokens_and_tildes() -> None:
    accounts = [Account(name="root", uid=0, gid=0, home="/root"),
                Account(name="alice", uid=1000, gid=1000, home="/home/alice")]
    paths = key_file_paths(accounts, ("/etc/ssh/keys/%U", "~alice/shared_keys", "~/.ssh/all_keys"))
    assert ("root", "/root", "/etc/ssh/keys/0") in paths
    assert ("alice", "/home/alice", "/etc/ssh/keys/1000") in paths
    assert ("root", "/root", "/home/alice/shared_keys") in paths  # one file for every account
    assert ("alice", "/home/alice", "/root/.ssh/all_keys") in paths  # ~ is root's home, for everyone


# --- the checks ---------------------------------------------------------------------------------------

def guest(keys: tuple[AuthorizedKey, ...], **sshd: Any) -> Guest:
    matches = sshd.pop("matches", ())
    cfg = SshdConfig(version="9.2p1", settings={k: (v,) for k, v in sshd.items()},
                     origins=dict.fromkeys(sshd, "/etc/ssh/sshd_config:1"), matches=matches,
                     files=("/etc/ssh/sshd_config",))
    return Guest(name="t", origin="/srv/root", sshd=cfg, sshd_installed=True, authorized_keys=keys)


def run(func: Callable[..., Iterator[Result]], g: Guest) -> list[Result]:
    try:
        return list(func(g, Environment(inventory=Inventory(guests=(g,)), host=None, params={})))
    except FactMissing as e:
        return [Result(U, e.subject or "", e.reason)]


def key(option: str = "", user: str = "root") -> AuthorizedKey:
    opts = (option,) if option else ()
    return AuthorizedKey(user=user, path=f"/{user}/.ssh/authorized_keys", key_type="ssh-ed25519", bits=256,
                         options=opts, line=1)


@pytest.mark.parametrize(("options", "expected"), [
    ('from="10.0.0.0/8"', P),
    ('command="/usr/bin/rrsync /backup"', P),
    ('permitopen="127.0.0.1:80"', F),  # limits forwarding, not commands or sources
    ('permitlisten="8080"', F),
    ("restrict", F),
    ('from="*,10.0.0.1"', F),
    ('from="0.0.0.0/0,::/0"', F),
    ('from="?*"', F),
    ('from="*,!10.0.0.1"', F),
    ('command="$SSH_ORIGINAL_COMMAND"', F),  # runs whatever the client sends
    ('command="sh -c \\"$SSH_ORIGINAL_COMMAND\\""', F),
])
def test_what_restricts_a_key(options: str, expected: Status) -> None:
    assert [r.status for r in run(ssh_keys.unrestricted_keys, guest((key(options, "alice"),)))] == [expected]


def test_a_pass_through_command_is_no_forced_command_for_root() -> None:
    g = guest((key('command="$SSH_ORIGINAL_COMMAND"'),), permitrootlogin="forced-commands-only")
    assert [r.status for r in run(ssh_keys.root_keys, g)] == [F]
    g = guest((key('command="/usr/local/bin/backup"'),), permitrootlogin="forced-commands-only")
    assert [r.status for r in run(ssh_keys.root_keys, g)] == [P]


@pytest.mark.parametrize("where", ["global", "match"])
def test_keys_from_a_command_are_unknown(where: str) -> None:
    command = "/usr/local/bin/getkeys %u"
    if where == "global":
        g = guest((key(user="alice"),), authorizedkeyscommand=command)
    else:
        block = SshdMatch(criteria=(("user", "alice"),), settings={"authorizedkeyscommand": (command,)},
                          origin="/etc/ssh/sshd_config:20")
        g = guest((key(user="alice"),), matches=(block,))
    for func in (ssh_keys.dsa_keys, ssh_keys.rsa_key_size, ssh_keys.unrestricted_keys):
        results = run(func, g)
        assert any(r.status is U and "getkeys" in r.message for r in results), results
    assert all(r.status is not U for r in run(ssh_keys.unrestricted_keys,
                                              guest((key(user="alice"),), authorizedkeyscommand="none")))


def test_a_match_blocks_key_file_is_read(tmp_path: Path, rsa1024: str) -> None:
    # sshd -T -C user=alice names the Match block's file, and a login with its key succeeds.
    root = tmp_path / "guest"
    shutil.copytree(FIXTURES / "VMS-GST-033" / "unrestricted.FAIL", root)
    (root / "home/alice/.ssh/authorized_keys").unlink()
    config = root / "etc/ssh/sshd_config"
    config.write_text(config.read_text() + "AuthorizedKeysFile .ssh/authorized_keys\n"
                      "Match User alice\n  AuthorizedKeysFile /etc/ssh/keys/%u\n")
    (root / "etc/ssh/keys").mkdir()
    (root / "etc/ssh/keys/alice").write_text(f"{rsa1024} from-the-match-block\n")
    findings = scan_findings("rootfs", root, "VMS-GST-031")
    assert [(f["status"], f["subject"]) for f in findings] == [("FAIL", "/etc/ssh/keys/alice:1")]


# What a real sshd 9.2 said when the key tried to log in (`sshd -d`, 127.0.0.1), per case.
_ALGOS_92 = " ".join(compiled_defaults("9.2p1", "debian")["pubkeyacceptedalgorithms"])


@pytest.mark.parametrize(("options", "key_type", "sshd", "expected"), [
    ('expiry-time="20200101"', "ssh-ed25519", {}, P),  # "entry expired at 2020-01-01T00:00:00"
    ('expiry-time="202001011200Z"', "ssh-ed25519", {}, P),  # "entry expired at 2020-01-01T12:00:00"
    ('expiry-time="20200101120000"', "ssh-ed25519", {}, P),
    ('expiry-time="20991231"', "ssh-ed25519", {}, F),  # "expires at 2099-12-31T00:00:00", logged in
    ('expiry-time="2020"', "ssh-ed25519", {}, P),  # "bad key options: invalid expires time"
    ('principals="root"', "ssh-ed25519", {}, P),  # auth_authorise_keyopts: "principals on non-CA key"
    ('Principals="root,ops"', "ssh-ed25519", {}, P),  # option names are matched without case
    ('cert-authority,principals="root"', "ssh-ed25519", {}, F),  # a CA: its certificates log in
    ("", "ssh-dss", {"pubkeyacceptedalgorithms": _ALGOS_92}, P),  # "ssh-dss not in PubkeyAcceptedAlgorithms"
    ("", "ssh-dss", {"pubkeyacceptedalgorithms": f"{_ALGOS_92},ssh-dss"}, F),
    ("", "ssh-rsa", {"pubkeyacceptedalgorithms": _ALGOS_92}, F),  # signs with rsa-sha2-512
    ("", "ssh-ed25519", {"pubkeyauthentication": "no"}, P),
])
def test_a_key_sshd_refuses_opens_no_login(options: str, key_type: str, sshd: dict[str, str],
                                           expected: Status) -> None:
    for user, func, extra in (("root", ssh_keys.root_keys, {"permitrootlogin": "prohibit-password"}),
                              ("alice", ssh_keys.unrestricted_keys, {})):
        k = AuthorizedKey(user=user, path=f"/{user}/.ssh/authorized_keys", key_type=key_type, bits=256,
                          options=(options,) if options else (), line=1)
        results = run(func, guest((k,), **extra, **sshd))
        assert [r.status for r in results] == [expected], results
        if expected is P:
            assert "but" in results[0].message


def test_a_dsa_key_still_fails_the_dsa_check_while_sshd_refuses_it() -> None:
    k = AuthorizedKey(user="root", path="/root/.ssh/authorized_keys", key_type="ssh-dss", bits=1024, line=1)
    assert [r.status for r in run(ssh_keys.dsa_keys, guest((k,), pubkeyacceptedalgorithms=_ALGOS_92))] == [F]
