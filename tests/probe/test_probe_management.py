"""libvirt's listeners from a private libvirtd (its own configuration, socket and state directories:
an unprivileged session daemon started with --listen), sshd with weak and strong configurations
(ssh-audit as the oracle), and the configuration correlation through a stored scan."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from probekit import Forwarder, endpoint, free_port, free_ports, need, of, probe, running, statuses

from components import require
from vmsec.facts import Endpoint
from vmsec.findings import Severity, Status

NOBODY = 65534


@contextmanager
def private_libvirtd(tmp_path: Path, conf: str, ports: list[int], sasl: str | None = None) -> Iterator[None]:
    """libvirtd as an unprivileged user with every directory under ``tmp_path``: nothing is shared
    with a system daemon another test may run."""
    libvirtd = need("libvirtd", "the libvirt listener tests start a private libvirtd (apt libvirt-daemon)")
    need("setpriv", "the private libvirtd runs as an unprivileged user (util-linux setpriv)")
    home = tmp_path / "lvhome"
    run = tmp_path / "lvrun"
    for d in (home, run):
        d.mkdir()
    (tmp_path / "libvirtd.conf").write_text(conf + f'\nunix_sock_dir = "{run}"\n')
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": str(run), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_DATA_HOME": str(home / ".local")}
    if sasl is not None:
        saslconf = tmp_path / "sasl2"
        saslconf.mkdir()
        (saslconf / "libvirt.conf").write_text(sasl)
        env["SASL_CONF_PATH"] = str(saslconf)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(tmp_path)], check=True)
    tmp_path.chmod(0o755)
    for parent in tmp_path.parents:
        if str(parent) in ("/", "/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", libvirtd, "--listen",
           "-f", str(tmp_path / "libvirtd.conf")]
    with running(cmd, ports, env):
        yield


def tcp_conf(port: int, auth: str) -> str:
    return (f'listen_tls = 0\nlisten_tcp = 1\ntcp_port = "{port}"\nlisten_addr = "127.0.0.1"\n'
            f'auth_tcp = "{auth}"\n')


def test_libvirt_tcp_without_auth_is_critical(tmp_path: Path) -> None:
    port = free_port()
    conf = tcp_conf(port, "none")
    with private_libvirtd(tmp_path, conf, [port]):
        result = probe([f"{port}/libvirt"])
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.libvirt is not None and seen.libvirt.auth_types == ("none",)
    [finding] = of(result, "VMS-PRB-005", port)
    assert finding.status is Status.FAIL and finding.severity is Severity.HIGH  # critical; loopback


@pytest.mark.parametrize(("mech_list", "mechanisms", "want"), [
    ("digest-md5", ("DIGEST-MD5",), Status.FAIL),  # only a weak mechanism on clear TCP
    ("gssapi", ("GSSAPI",), Status.PASS),
    ("digest-md5 gssapi", ("DIGEST-MD5", "GSSAPI"), Status.PASS),  # a strong one is offered too
    # SCRAM has no security layer: on clear TCP libvirt asks for one (SSF >= 56) and offers nothing.
    ("scram-sha-256", (), Status.PASS),
], ids=["digest-md5", "gssapi", "digest-md5+gssapi", "scram"])
def test_libvirt_tcp_with_sasl_lists_mechanisms(mech_list: str, mechanisms: tuple[str, ...], want: Status,
                                                tmp_path: Path) -> None:
    port = free_port()
    conf = tcp_conf(port, "sasl")
    with private_libvirtd(tmp_path, conf, [port], sasl=f"mech_list: {mech_list}\n"):
        result = probe([f"{port}/libvirt"])
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.libvirt is not None and seen.libvirt.auth_types == ("sasl",)
    assert sorted(seen.libvirt.sasl_mechanisms or ()) == list(mechanisms)
    assert statuses(result, "VMS-PRB-005", port) == [want]


@pytest.mark.parametrize(("verify", "auth", "want", "severity"), [
    (True, "none", Status.PASS, None),
    (False, "none", Status.FAIL, Severity.HIGH),  # critical: no certificate, no authentication; loopback
    (False, "sasl", Status.FAIL, Severity.MEDIUM),  # no certificate, but SASL after the handshake
], ids=["verify", "no-verify", "no-verify-sasl"])
def test_libvirt_tls_client_certificate(verify: bool, auth: str, want: Status, severity: Severity | None,
                                        tmp_path: Path, certs: Path) -> None:
    port = free_port()
    conf = (f'listen_tls = 1\nlisten_tcp = 0\ntls_port = "{port}"\nlisten_addr = "127.0.0.1"\n'
            f'auth_tls = "{auth}"\ntls_no_verify_certificate = {0 if verify else 1}\n'
            f'key_file = "{certs}/server-key.pem"\ncert_file = "{certs}/server-cert.pem"\n'
            f'ca_file = "{certs}/ca-cert.pem"\n')
    sasl = "mech_list: scram-sha-256\n" if auth == "sasl" else None
    with private_libvirtd(tmp_path, conf, [port], sasl=sasl):
        result = probe([f"{port}/libvirt-tls"])
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.tls is not None and seen.tls.version is not None
    assert seen.tls.client_cert_requested is verify
    [finding] = of(result, "VMS-PRB-006", port)
    assert finding.status is want
    if severity is not None:
        assert finding.severity is severity
    if auth == "sasl":
        assert seen.libvirt is not None and seen.libvirt.auth_types == ("sasl",)


# --- sshd -----------------------------------------------------------------------------------------

WEAK = """PasswordAuthentication yes
KbdInteractiveAuthentication no
KexAlgorithms diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1
Ciphers aes128-cbc,3des-cbc,aes128-ctr
MACs hmac-sha1,hmac-md5
HostKeyAlgorithms ssh-rsa,rsa-sha2-256
"""
STRONG = """PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr
MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com
HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256
"""
# sshd_config says "PasswordAuthentication yes", yet a password is only a second factor after a key:
# a client asking with "none" is offered publickey alone.
SECOND_FACTOR = STRONG.replace("PasswordAuthentication no", "PasswordAuthentication yes").replace(
    "AuthenticationMethods publickey", "AuthenticationMethods publickey,password")
# Names that look dated (Diffie-Hellman, RSA, CTR, MACs without -etm) and that ssh-audit does not fail.
OLD_LOOKING = """PasswordAuthentication no
KbdInteractiveAuthentication no
KexAlgorithms diffie-hellman-group16-sha512,diffie-hellman-group18-sha512
Ciphers aes256-ctr,aes192-ctr,aes128-ctr
MACs hmac-sha2-512,hmac-sha2-256
HostKeyAlgorithms rsa-sha2-512,rsa-sha2-256
"""


@contextmanager
def sshd(tmp_path: Path, body: str) -> Iterator[int]:
    binary = need("sshd", "the SSH probe tests start sshd on loopback (apt openssh-server)")
    keygen = need("ssh-keygen", "host keys are generated for the test sshd")
    port = free_port()
    for kind in ("ed25519", "rsa"):
        key = tmp_path / f"host_{kind}"
        if not key.exists():
            subprocess.run([keygen, "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    cfg = tmp_path / "sshd_config"
    cfg.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path}/host_ed25519\n"
                   f"HostKey {tmp_path}/host_rsa\nPidFile {tmp_path}/sshd.pid\nUsePAM no\n" + body)
    with running([binary, "-D", "-e", "-f", str(cfg)], [port]):
        yield port


def _ssh_audit(port: int) -> int:
    exe = shutil.which("ssh-audit") or str(Path(sys.executable).parent / "ssh-audit")
    require(os.path.exists(exe), "ssh-audit",
            "ssh-audit is the peer oracle for SSH algorithms (pip ssh-audit)")
    done = subprocess.run([exe, "-j", "--skip-rate-test", f"127.0.0.1:{port}"], capture_output=True,
                          text=True, timeout=60)
    json.loads(done.stdout)  # it did audit the server
    return done.returncode


@pytest.mark.parametrize(("body", "password", "algorithms"), [
    (WEAK, Status.FAIL, Status.FAIL),
    (STRONG, Status.PASS, Status.PASS),
    (SECOND_FACTOR, Status.PASS, Status.PASS),
    (OLD_LOOKING, Status.PASS, Status.PASS),
], ids=["weak", "strong", "password-second-factor", "old-looking-strong"])
def test_ssh_algorithms_and_password_agree_with_ssh_audit(body: str, password: Status, algorithms: Status,
                                                           tmp_path: Path) -> None:
    with sshd(tmp_path, body) as port:
        result = probe([f"{port}/ssh"])
        audit_rc = _ssh_audit(port)
    seen = endpoint(result, port)
    assert isinstance(seen, Endpoint) and seen.ssh is not None and seen.ssh.kex
    assert seen.ssh.host_key_fingerprint and seen.ssh.host_key_fingerprint.startswith("SHA256:")
    assert statuses(result, "VMS-PRB-010", port) == [password]
    assert ("password" in (seen.ssh.auth_methods or ())) is (password is Status.FAIL)
    algorithm_statuses = statuses(result, "VMS-PRB-011", port)
    assert len(algorithm_statuses) == 4
    ours_fail = Status.FAIL in algorithm_statuses
    # ssh-audit exits 3 on failures (2 on warnings only, 0 clean): the same servers fail.
    assert ours_fail is (audit_rc == 3), (algorithm_statuses, audit_rc)
    assert ours_fail is (algorithms is Status.FAIL)


# --- correlation through a stored scan --------------------------------------------------------------

DOMAIN = """<domain type='kvm'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory>65536</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <graphics type='vnc' port='{port}' autoport='no' listen='127.0.0.1'{passwd}/>
  </devices>
</domain>
"""


def test_probe_from_stored_scan_confirms_contradicts_and_flags_unexplained(
        tmp_path: Path, qemu: str) -> None:
    """A host root says web01's VNC needs a password on 127.0.0.1:P1 and web02's has none on
    127.0.0.1:P2; libvirtd.conf says its TCP listener requires SASL. The network shows: web02 as
    configured (confirmed), web01 also reachable through a proxy on 127.0.0.2 (contradicted), a
    libvirtd that lets clients in without authentication (contradicted), and a VNC on P3 nothing
    explains."""
    from click.testing import CliRunner

    from vmsec.cli.main import cli

    p1, p2, p3, lv = free_ports(4)
    root = tmp_path / "root"
    (root / "etc/libvirt/qemu").mkdir(parents=True)
    (root / "etc/libvirt/qemu.conf").write_text('vnc_listen = "127.0.0.1"\n')
    (root / "etc/libvirt/libvirtd.conf").write_text(
        f'listen_tcp = 1\ntcp_port = "{lv}"\nlisten_addr = "127.0.0.1"\nauth_tcp = "sasl"\nlisten_tls = 0\n')
    for name, uuid, port, passwd in (("web01", "11111111-2222-3333-4444-555555555501", p1, " passwd='pw'"),
                                     ("web02", "11111111-2222-3333-4444-555555555502", p2, "")):
        (root / f"etc/libvirt/qemu/{name}.xml").write_text(DOMAIN.format(name=name, uuid=uuid, port=port,
                                                                          passwd=passwd))
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    runner = CliRunner()
    done = runner.invoke(cli, ["scan", "host", "--root", str(root), "--store", store, "-q", "--format",
                               "json", "-o", str(tmp_path / "scan.json")])
    assert done.exit_code in (0, 1, 3), done.output
    lv_tmp = tmp_path / "lv"
    lv_tmp.mkdir()
    stale_conf = tcp_conf(lv, "none")
    with running([qemu, "-machine", "none", "-nodefaults", "-display", "none", "-S", "-object",
                  "secret,id=s0,data=pw", "-vnc", f"127.0.0.1:{p1 - 5900},password-secret=s0"], [p1]), \
            running([qemu, "-machine", "none", "-nodefaults", "-display", "none", "-S",
                     "-vnc", f"127.0.0.1:{p2 - 5900}"], [p2]), \
            running([qemu, "-machine", "none", "-nodefaults", "-display", "none", "-S",
                     "-vnc", f"127.0.0.1:{p3 - 5900}"], [p3]), \
            private_libvirtd(lv_tmp, stale_conf, [lv]):
        proxy = Forwarder("127.0.0.2", p1, p1)
        try:
            report = tmp_path / "probe.json"
            log = tmp_path / "contacts.log"
            done = runner.invoke(cli, ["probe", "127.0.0.1", "127.0.0.2", "--from-scan", "latest",
                                       "--store", store, "--ports", f"{p1},{p2},{p3},{lv}", "--format",
                                       "json", "-o", str(report), "--contact-log", str(log), "-q",
                                       "--no-tls-scan"])
        finally:
            proxy.close()
    assert done.exit_code in (0, 1), done.output
    doc = json.loads(report.read_text())
    by = {(f["target"]["name"], f["check_id"]): f for f in doc["findings"]}
    correlation = {name: f for (name, check), f in by.items() if check == "VMS-PRB-013"}
    assert correlation[f"127.0.0.1:{p2}"]["status"] == "PASS"
    assert "confirmed: domain web02 (11111111-2222-3333-4444-555555555502)" in \
        correlation[f"127.0.0.1:{p2}"]["message"]
    assert correlation[f"127.0.0.2:{p1}"]["status"] == "FAIL"
    assert correlation[f"127.0.0.2:{p1}"]["severity"] == "critical"
    assert "listens on 127.0.0.1" in correlation[f"127.0.0.2:{p1}"]["message"]
    assert correlation[f"127.0.0.1:{lv}"]["status"] == "FAIL"
    assert "libvirtd (daemon)" in correlation[f"127.0.0.1:{lv}"]["message"]
    assert "requires authentication (sasl)" in correlation[f"127.0.0.1:{lv}"]["message"]
    assert "unexplained" in correlation[f"127.0.0.1:{p3}"]["message"]
    # Every endpoint finding names its domain or daemon and the element or key responsible.
    none_auth = by[(f"127.0.0.1:{p2}", "VMS-PRB-001")]
    assert none_auth["status"] == "FAIL"
    assert any(e["locator"] == "devices/graphics[1]/@port" and e["value"] == str(p2)
               for e in none_auth["evidence"])
    lv_auth = by[(f"127.0.0.1:{lv}", "VMS-PRB-005")]
    assert any(e["locator"] == "auth_tcp" for e in lv_auth["evidence"])
    target = next(t for t in doc["targets"] if t["name"] == f"127.0.0.1:{lv}")
    assert (target["kind"], target["address"], target["port"], target["protocol"]) == \
        ("endpoint", "127.0.0.1", lv, "libvirt")
    # The contact log has one line per connection, and names every address:port tried.
    lines = log.read_text().splitlines()
    contacted = {(line.split("\t")[1], int(line.split("\t")[2])) for line in lines}
    assert {(a, p) for a in ("127.0.0.1", "127.0.0.2") for p in (p1, p2, p3, lv)} <= contacted
