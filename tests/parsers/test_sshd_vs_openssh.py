"""vmsec's offline sshd_config resolution compared with the real OpenSSH server (``sshd -T``).

Each case builds a root in tmp_path; the real sshd reads the same files by path: a private mount
namespace binds the root's /etc/ssh over /etc/ssh (so ``Include /etc/ssh/sshd_config.d/*.conf``
and relative includes resolve exactly as on the guest), and ``sshd -T -C user=…,host=…,addr=…``
evaluates Match blocks for one connection. Needs root and openssh-server (Debian 12: 9.2p1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components import require
from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, Problems
from vmsec.facts.guest import SshdConfig
from vmsec.parsers.sshd_config import ALGORITHM_LISTS, read_sshd_config

SSHD = "/usr/sbin/sshd"
DEBIAN_STOCK = (Path(__file__).resolve().parents[1] / "data" / "sshd" / "debian12-sshd_config").read_text()

COMPARED = (
    "permitrootlogin", "passwordauthentication", "kbdinteractiveauthentication", "pubkeyauthentication",
    "permitemptypasswords", "x11forwarding", "allowtcpforwarding", "usepam", "maxauthtries", "ciphers",
    "macs", "kexalgorithms", "hostbasedauthentication", "ignorerhosts", "loglevel",
    "clientaliveinterval", "logingracetime", "allowusers", "denyusers", "allowgroups", "denygroups",
    "permituserenvironment", "gatewayports", "banner", "authenticationmethods", "port",
    "listenaddress", "maxsessions", "maxstartups", "acceptenv", "allowagentforwarding",
    "disableforwarding", "clientalivecountmax", "printmotd", "authorizedkeysfile", "strictmodes",
    "pubkeyacceptedalgorithms", "hostkeyalgorithms", "casignaturealgorithms",
    "hostbasedacceptedalgorithms",
)
_MULTILINE = frozenset({"port", "listenaddress", "allowusers", "denyusers", "allowgroups",
                        "denygroups", "acceptenv"})


@dataclass(frozen=True)
class Conn:
    user: str
    host: str = "client.example.com"
    addr: str = "192.0.2.10"
    lport: int | None = None
    groups: tuple[str, ...] | None = None

    def spec(self) -> str:
        spec = f"user={self.user},host={self.host},addr={self.addr}"
        return spec + (f",lport={self.lport}" if self.lport else "")


@dataclass(frozen=True)
class Case:
    name: str
    files: Mapping[str, str | bytes]  # path under /etc/ssh -> text (bytes: written as they are)
    conns: tuple[Conn | None, ...] = (None,)  # None: plain sshd -T (global values)
    expect: Mapping[str, str] = field(default_factory=dict)  # keyword -> value, per first conn


CLOUD = "Include /etc/ssh/sshd_config.d/*.conf\n"
CASES = (
    Case("cloud-init-dropin-reenables-passwords",
         {"sshd_config": CLOUD + "PasswordAuthentication no\nPermitRootLogin no\n",
          "sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n"},
         expect={"passwordauthentication": "yes", "permitrootlogin": "no"}),
    Case("cloudimg-60-loses-to-cloud-init-50",
         {"sshd_config": DEBIAN_STOCK,
          "sshd_config.d/60-cloudimg-settings.conf": "PasswordAuthentication no\n",
          "sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n"},
         expect={"passwordauthentication": "yes", "x11forwarding": "yes", "usepam": "yes"}),
    Case("debian-stock", {"sshd_config": DEBIAN_STOCK},
         expect={"kbdinteractiveauthentication": "no", "permitrootlogin": "without-password"}),
    Case("empty-file-defaults", {"sshd_config": ""},
         expect={"permitrootlogin": "without-password", "passwordauthentication": "yes"}),
    Case("duplicates-first-wins",
         {"sshd_config": "PermitRootLogin yes\nPermitRootLogin no\nMaxAuthTries 3\nMaxAuthTries 10\n"
                         "LogLevel VERBOSE\nLogLevel QUIET\nBanner /etc/issue.net\nBanner none\n"},
         expect={"permitrootlogin": "yes", "maxauthtries": "3"}),
    Case("case-and-equals-syntax",
         {"sshd_config": "passwordauthentication NO\nPERMITROOTLOGIN Prohibit-Password\n"
                         "X11Forwarding=yes\nMaxAuthTries = 4\n  PubkeyAuthentication\tno\n"
                         "Port=2022\nLOGLEVEL debug1\n"},
         expect={"passwordauthentication": "no", "x11forwarding": "yes", "maxauthtries": "4"}),
    Case("comments-and-quotes",
         {"sshd_config": "# PermitRootLogin yes\n   # PasswordAuthentication no\n"
                         'AllowUsers "alice" bob # trailing comment\n'
                         "DenyUsers eve#notacomment 'mal lory'\n"
                         'Banner "/etc/issue net"\nPermitRootLogin no # yes\n'},
         expect={"permitrootlogin": "no", "banner": "/etc/issue net"}),
    Case("semantic-decoy-match-user",
         {"sshd_config": "PasswordAuthentication no\nPermitRootLogin no\n"
                         "Match User backup\n    PasswordAuthentication yes\n    PermitRootLogin yes\n"},
         conns=(None, Conn("backup"), Conn("alice")),
         expect={"passwordauthentication": "no", "permitrootlogin": "no"}),
    Case("match-address-cidr",
         {"sshd_config": "PermitRootLogin no\nMatch Address 10.0.0.0/8,!10.9.0.0/16\n"
                         "    PermitRootLogin yes\n    X11Forwarding yes\n"},
         conns=(Conn("root", addr="10.1.2.3"), Conn("root", addr="10.9.1.1"), Conn("root"))),
    Case("match-user-negation-gotcha",
         {"sshd_config": "Match User !root\n    PasswordAuthentication no\n"
                         "Match User *,!root\n    X11Forwarding yes\n    PasswordAuthentication no\n"},
         conns=(Conn("alice"), Conn("root"))),
    Case("include-inside-match",
         {"sshd_config": "Match User bob\n    Include bob.conf\n    PasswordAuthentication no\n"
                         "    AllowTcpForwarding no\n",
          "bob.conf": "PasswordAuthentication yes\nX11Forwarding yes\n"},
         conns=(None, Conn("bob"), Conn("alice"))),
    Case("glob-include-ordering",
         {"sshd_config": CLOUD + "MaxAuthTries 9\n",
          "sshd_config.d/9-b.conf": "MaxAuthTries 2\nLogLevel ERROR\n",
          "sshd_config.d/10-a.conf": "MaxAuthTries 5\n",
          "sshd_config.d/010-c.conf": "LogLevel VERBOSE\n",
          "sshd_config.d/.hidden.conf": "MaxAuthTries 1\nPermitRootLogin yes\n",
          "sshd_config.d/Z.conf": "ClientAliveInterval 15\n",
          "sshd_config.d/a.conf": "ClientAliveInterval 99\n",
          "sshd_config.d/notes.txt": "PermitRootLogin yes\n"},
         expect={"maxauthtries": "5", "loglevel": "VERBOSE", "permitrootlogin": "without-password"}),
    Case("match-in-dropin-ends-with-file",
         {"sshd_config": CLOUD + "PasswordAuthentication no\nX11Forwarding no\n",
          "sshd_config.d/20-bob.conf": "Match User bob\n    PasswordAuthentication yes\n"},
         conns=(None, Conn("bob")), expect={"passwordauthentication": "no"}),
    Case("match-all-overrides",
         {"sshd_config": "PasswordAuthentication no\nMatch User bob\n    X11Forwarding yes\n"
                         "Match all\nPasswordAuthentication yes\nMaxAuthTries 2\nCiphers aes256-ctr\n"},
         conns=(None, Conn("bob")), expect={"passwordauthentication": "yes"}),
    Case("match-all-replaces-global-lists",
         {"sshd_config": "AllowUsers a0\nMatch User u0\n X11Forwarding yes\nMatch all\nAllowUsers a1\n"
                         "Match User u1\n X11Forwarding yes\nMatch all\nAllowUsers a2\n"},
         conns=(None, Conn("u1")), expect={"allowusers": "a1 a2"}),
    Case("accumulating-keywords",
         {"sshd_config": CLOUD + "AllowUsers alice bob\nPort 22\nAcceptEnv LANG\n"
                         "ListenAddress 127.0.0.1\nListenAddress [::1]:2200\nDenyGroups nogo\n",
          "sshd_config.d/a.conf": "AllowUsers carol\nPort 2222\nAcceptEnv LC_*\nAllowGroups ssh\n"}),
    Case("algorithm-modifiers",
         {"sshd_config": "Ciphers +aes128-cbc,3des-cbc\nMACs ^hmac-sha2-512\n"
                         "KexAlgorithms -diffie-hellman*,ecdh-sha2-nistp521\n"}),
    Case("algorithm-explicit-first-wins",
         {"sshd_config": "Ciphers aes256-gcm@openssh.com,aes128-ctr\nCiphers 3des-cbc\n"
                         "MACs -umac-64*,hmac-sha1*\nKexAlgorithms curve25519-sha256\n"}),
    Case("time-values",
         {"sshd_config": "LoginGraceTime 2m\nClientAliveInterval 1h30m\nClientAliveCountMax 0\n"},
         expect={"logingracetime": "120", "clientaliveinterval": "5400"}),
    Case("match-group",
         {"sshd_config": "Match Group root,wheel\n    PermitRootLogin yes\n    MaxSessions 2\n"},
         conns=(Conn("root", groups=("root",)),)),
    Case("match-host-and-localport",
         {"sshd_config": "Port 22\nPort 2222\nMatch Host *.example.com LocalPort 2222\n"
                         "    GatewayPorts clientspecified\n    AllowTcpForwarding all\n"},
         conns=(Conn("x", lport=2222), Conn("x", lport=22), Conn("x", host="evil.test", lport=2222))),
    Case("match-lists-replace-global",
         {"sshd_config": "AllowUsers admin\nAcceptEnv LANG\nMatch User alice\n    AllowUsers alice\n"
                         "Match Address 192.0.2.0/24\n    AllowUsers bob\n    AcceptEnv TZ\n"
                         "    AuthenticationMethods publickey,password publickey,keyboard-interactive\n"},
         conns=(Conn("alice"), Conn("carol", addr="198.51.100.1"))),
    Case("permituserenvironment-pattern",
         {"sshd_config": "PermitUserEnvironment Yes\n"}, expect={"permituserenvironment": "Yes"}),
    Case("nested-relative-includes",
         {"sshd_config": "Include a/*.conf\n",
          "a/1.conf": "Include /etc/ssh/b/*.conf\nMaxAuthTries 8\n",
          "b/x.conf": "Include c.conf\nMaxSessions 4\n",
          "c.conf": "PermitEmptyPasswords yes\nMaxAuthTries 1\n"},
         expect={"maxauthtries": "1", "permitemptypasswords": "yes"}),
    Case("kbdint-via-challengeresponse-alias",
         {"sshd_config": "ChallengeResponseAuthentication no\nKbdInteractiveAuthentication yes\n"
                         "IgnoreRhosts no\nHostbasedAuthentication yes\nStrictModes no\n"},
         expect={"kbdinteractiveauthentication": "no"}),
    Case("maxstartups-last-wins",
         {"sshd_config": "MaxStartups 5\nMaxStartups 10:50:20\nDisableForwarding yes\n"},
         expect={"maxstartups": "10:50:20"}),
    Case("nested-match-in-conditional-include",
         {"sshd_config": "Match User bob,carol\n    Include inner.conf\n",
          "inner.conf": "MaxAuthTries 3\nMatch Address 10.0.0.0/8\n    PermitRootLogin yes\n"
                        "Match all\n    LogLevel VERBOSE\n"},
         conns=(None, Conn("bob", addr="10.2.3.4"), Conn("bob"), Conn("dave", addr="10.2.3.4"))),
    Case("wildcard-address-and-localaddress",
         {"sshd_config": "Match Address 192.0.2.*\n    PasswordAuthentication no\n"
                         "Match LocalAddress 198.51.100.0/24\n    PermitEmptyPasswords yes\n"},
         conns=(Conn("a"), Conn("a", addr="203.0.113.9"))),
    Case("crlf-tabs-and-deprecated",
         {"sshd_config": "PermitRootLogin\tforced-commands-only\r\nProtocol 2\r\n"
                         "UsePrivilegeSeparation sandbox\r\nX11Forwarding yes   \r\n"},
         expect={"permitrootlogin": "forced-commands-only", "x11forwarding": "yes"}),
    Case("include-edge-cases",
         {"sshd_config": "Include missing/*.conf one.conf two.conf\nInclude /etc/ssh/dir/*\nMaxSessions 9\n",
          "one.conf": "MaxAuthTries 2\n", "two.conf": "MaxAuthTries 7\nPermitRootLogin no\n",
          "dir/sub/x.conf": "PermitRootLogin yes\n", "dir/file": "PasswordAuthentication no\n"},
         expect={"maxauthtries": "2", "permitrootlogin": "no", "passwordauthentication": "no"}),
    Case("port-without-listenaddress",
         {"sshd_config": "Port 2222\nPort 2200\nMatch LocalPort 2200\n    AllowUsers ops\n"},
         conns=(Conn("ops", lport=2222), Conn("ops", lport=2200))),  # plain -T rejects LocalPort
    Case("match-syntax-variants",
         {"sshd_config": "match USER=bob Address = 10.0.0.0/8 # comment\n passwordauthentication NO\n"
                         'Match User "carol" Host "a b"\n X11Forwarding yes\nMATCH ALL\nMaxAuthTries 3\n'},
         conns=(None, Conn("bob", addr="10.1.1.1"), Conn("carol"))),
    Case("signature-algorithm-lists",
         {"sshd_config": "PubkeyAcceptedKeyTypes +ssh-rsa,ssh-rsa-cert-v01@openssh.com\n"
                         "HostKeyAlgorithms -ecdsa*\nCASignatureAlgorithms ^ssh-rsa\n"
                         "Match User legacy\n    PubkeyAcceptedAlgorithms ssh-rsa\n"},
         conns=(None, Conn("legacy"))),
    # strdelim(): the keyword loses its quotes, and an empty first token ("=", '""', a blank) gives way
    # to the next word — a line vmsec dropped while sshd obeyed it.
    Case("quoted-keyword-and-leading-equals",
         {"sshd_config": '"PermitRootLogin" yes\n=PasswordAuthentication yes\n= X11Forwarding yes\n'
                         '"" MaxAuthTries 4\n"Include" /etc/ssh/sshd_config.d/*.conf\n',
          "sshd_config.d/50.conf": "PubkeyAuthentication no\n"},
         expect={"permitrootlogin": "yes", "passwordauthentication": "yes", "x11forwarding": "yes",
                 "maxauthtries": "4", "pubkeyauthentication": "no"}),
    # Numbers are strtonum()/strtol() (misc.c atoi_err, convtime, a2port): C blanks and a sign before the
    # digits, and in a time every unit's number has its own ("1m+0"). vmsec refused these lines and
    # took the next, weaker ones.
    Case("numbers-and-times-as-strtol-reads-them",
         {"sshd_config": "MaxAuthTries \v99\nMaxAuthTries 3\nLoginGraceTime +600\nLoginGraceTime 30\n"
                         "ClientAliveInterval +0\nClientAliveInterval 300\nMaxSessions -0\nMaxSessions 4\n"
                         "Port +2222\nPort 22\nClientAliveCountMax \f7\n"
                         "Match LocalPort +22\n    PasswordAuthentication no\n"},
         conns=(Conn("a", lport=22), Conn("a", lport=2222)),  # plain -T refuses LocalPort
         expect={"maxauthtries": "99", "logingracetime": "600", "clientaliveinterval": "0",
                 "maxsessions": "0"}),
    Case("time-units-with-signs",
         {"sshd_config": "LoginGraceTime 1m+0\nLoginGraceTime 30\nClientAliveInterval -0\n"},
         expect={"logingracetime": "60", "clientaliveinterval": "0"}),
    # ciphers_valid()/mac_valid()/kex_names_valid() stop at the first empty name, and
    # kex_assemble_names() skips empty ones: these weak lists are accepted, not "Bad … spec".
    Case("empty-algorithm-elements",
         {"sshd_config": "Ciphers aes128-cbc,\nKexAlgorithms ,diffie-hellman-group1-sha1\nMACs hmac-md5,\n"},
         expect={"ciphers": "aes128-cbc", "kexalgorithms": "diffie-hellman-group1-sha1", "macs": "hmac-md5"}),
    Case("prepend-with-an-empty-element", {"sshd_config": "Ciphers ^aes128-cbc,,3des-cbc\n"}),
    # Include patterns are glob(3)'s: [[:digit:]] classes and backslash escapes work, and the files are
    # read in the C locale's byte order (U+E000, EE 80 80, before an undecodable FF).
    Case("include-glob-classes-escapes-and-byte-order",
         {"sshd_config": "Include /etc/ssh/sshd_config.d/[[:digit:]]*.conf\nInclude /etc/ssh/o/5\\0-*.conf\n"
                         "Include /etc/ssh/u/*.conf\nPasswordAuthentication no\nPermitRootLogin no\n",
          "sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n",
          "o/50-x.conf": "PermitRootLogin yes\n",
          "u/\ue000.conf": "X11Forwarding yes\n", "u/\udcff.conf": "X11Forwarding no\n"},
         expect={"passwordauthentication": "yes", "permitrootlogin": "yes", "x11forwarding": "yes"}),
    # A Match line is read one strdelim() word at a time: x"y" is the user xy.
    Case("match-user-with-a-quote-inside",
         {"sshd_config": 'Match User x"y"\n    PasswordAuthentication no\n'},
         conns=(None, Conn("xy"), Conn("x"))),
    Case("authentication-method-lists",
         {"sshd_config": "AuthenticationMethods publickey,keyboard-interactive:pam "
                         "hostbased,gssapi-with-mic\nMatch User ops\n    AuthenticationMethods password\n"},
         conns=(None, Conn("ops"))),
    # A keyword whose quote never closes is no keyword: sshd passes over the line without a word.
    Case("unclosed-quote-in-keyword",
         {"sshd_config": '"PermitRootLogin yes\nPermitRootLogin no\n'}, expect={"permitrootlogin": "no"}),
    # load_server_config() copies a line up to its first NUL and loses its newline: the next line
    # joins it (here, the comment), in the main file and in an included one alike.
    Case("nul-joins-the-next-line",
         {"sshd_config": b"# note\x00\nPermitRootLogin no\nPermitRootLogin yes\n"
                         b"Include /etc/ssh/sshd_config.d/*.conf\n",
          "sshd_config.d/a.conf": b"#\x00\nPasswordAuthentication no\nPasswordAuthentication yes\n"
                                  b"X11Forwarding \x00\n   yes\n"},
         expect={"permitrootlogin": "yes", "passwordauthentication": "yes", "x11forwarding": "yes"}),
    Case("authorizedkeysfile-and-methods",
         {"sshd_config": "AuthorizedKeysFile /etc/keys/%u .ssh/ak\nAuthorizedKeysFile none\n"
                         "AuthenticationMethods publickey,password\nAddressFamily inet\n"}),
)


def _run_sshd(root: Path, hostkey: Path, conn: Conn | None) -> dict[str, list[str]]:
    cmd = f"{SSHD} -T -f /etc/ssh/sshd_config -h {hostkey}"
    if conn is not None:
        cmd += f" -C {conn.spec()}"
    script = f"mount --bind {root}/etc/ssh /etc/ssh && exec {cmd}"
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value)
    return out


def _render(keyword: str, values: tuple[str, ...]) -> list[str]:
    if keyword in _MULTILINE:
        return list(values)
    if keyword in ALGORITHM_LISTS:
        return [",".join(values)]
    return [" ".join(values)]


def compare(config: SshdConfig, real: dict[str, list[str]], conn: Conn | None,
            ) -> dict[str, tuple[list[str] | None, list[str]]]:
    """keyword -> (vmsec, sshd) for every compared keyword that differs."""
    if conn is None:
        mine = config.settings
    else:
        mine = config.for_connection(conn.user, conn.host, conn.addr, groups=conn.groups,
                                     local_port=conn.lport)
    diffs: dict[str, tuple[list[str] | None, list[str]]] = {}
    for keyword in COMPARED:
        theirs = real.get(keyword, [])
        ours = _render(keyword, mine[keyword]) if keyword in mine else None
        if keyword == "listenaddress" and ours is not None:
            ours, theirs = sorted(ours), sorted(theirs)
        if ours != theirs:
            diffs[keyword] = (ours, theirs)
    return diffs


@pytest.fixture(scope="module")
def hostkey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host key for ``sshd -T``; every test that runs the real sshd asks for it."""
    require(os.path.exists(SSHD), "openssh-server", f"{SSHD} is the oracle these tests compare with")
    require(os.geteuid() == 0, "root", "sshd -T runs in a private mount namespace over /etc/ssh")
    require(shutil.which("unshare"), "unshare (util-linux)", "it creates the private mount namespace")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd -T checks its privilege-separation directory
    key = tmp_path_factory.mktemp("hostkey") / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def build_root(tmp_path: Path, files: Mapping[str, str | bytes]) -> Path:
    for rel, text in files.items():
        target = tmp_path / "etc" / "ssh" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text if isinstance(text, bytes) else text.encode())
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matches_sshd(case: Case, tmp_path: Path, hostkey: Path) -> None:
    root = build_root(tmp_path, case.files)
    problems = Problems()
    config = read_sshd_config(RootReader(str(root)), version="9.2p1", distro="debian", problems=problems)
    assert list(problems) == []
    for conn in case.conns:
        real = _run_sshd(root, hostkey, conn)
        assert compare(config, real, conn) == {}, f"connection {conn}"
    first = case.conns[0]
    values = config.settings if first is None else config.for_connection(
        first.user, first.host, first.addr, groups=first.groups, local_port=first.lport)
    for keyword, value in case.expect.items():
        assert " ".join(values[keyword]) == value, keyword


def test_case_table_is_large_enough() -> None:
    assert len(CASES) >= 20
    assert sum(len(c.conns) for c in CASES) >= 30


INVALID = (
    ("bad-keyword", {"sshd_config": "PasswordAuthentication no\nPasswdAuth yes\n"}),
    ("global-keyword-in-match", {"sshd_config": "Match User bob\n    Ciphers aes128-ctr\n"}),
    ("match-host-bits-set", {"sshd_config": "Match Address 10.0.0.1/8\n    PermitRootLogin yes\n"}),
    ("bad-flag-value", {"sshd_config": "PasswordAuthentication maybe\n"}),
    ("unterminated-quote", {"sshd_config": 'Banner "/etc/issue\n'}),
    ("include-loop", {"sshd_config": "Include /etc/ssh/sshd_config\n"}),
    ("duplicate-subsystem", {"sshd_config": "Subsystem sftp /a\nSubsystem sftp /b\n"}),
    ("cipher-wildcard", {"sshd_config": "Ciphers aes*\n"}),
    ("unknown-mac", {"sshd_config": "MACs +hmac-sha1,hmac-bogus\n"}),
    ("kex-wildcard-prepend", {"sshd_config": "KexAlgorithms ^diffie-hellman-group*-sha1\n"}),
    ("match-all-combined", {"sshd_config": "Match all User bob\n    X11Forwarding yes\n"}),
    ("quote-glued-to-keyword", {"sshd_config": 'PermitRootLogin"no"\n'}),
    ("negative-time", {"sshd_config": "LoginGraceTime -5\n"}),
    ("only-empty-cipher-names", {"sshd_config": "Ciphers ,\n"}),
    ("append-nothing", {"sshd_config": "Ciphers +\n"}),
    # auth2_methods_valid(): every method of every list is one sshd implements (a submethod after ":").
    ("authmethods-unknown", {"sshd_config": "AuthenticationMethods publickey,bogus\n"}),
    ("authmethods-trailing-comma", {"sshd_config": "AuthenticationMethods publickey,\n"}),
    ("authmethods-any-in-capitals", {"sshd_config": "AuthenticationMethods ANY\n"}),
    ("match-user-empty", {"sshd_config": 'Match User ""\n    PasswordAuthentication no\n'}),
    ("match-user-comment", {"sshd_config": "Match User #x\n    PasswordAuthentication no\n"}),
    ("port-zero-with-sign", {"sshd_config": "Port -0\n"}),
    ("int-with-trailing-garbage", {"sshd_config": "MaxAuthTries 3x\n"}),
)


@pytest.mark.parametrize(("name", "files"), INVALID, ids=[n for n, _ in INVALID])
def test_sshd_rejects_what_vmsec_flags(name: str, files: Mapping[str, str], tmp_path: Path,
                                       hostkey: Path) -> None:
    root = build_root(tmp_path, files)
    problems = Problems()
    read_sshd_config(RootReader(str(root)), version="9.2p1", distro="debian", problems=problems)
    assert problems, name
    assert {p.kind for p in problems} <= {ErrorKind.INVALID, ErrorKind.LOOP}, name
    script = f"mount --bind {root}/etc/ssh /etc/ssh && exec {SSHD} -T -f /etc/ssh/sshd_config -h {hostkey}"
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode != 0, f"sshd accepted {name}"
