"""Build the probe checks' verdict fixtures (tests/data/checks/VMS-PRB-NNN/NAME.VERDICT.json) from what
the real probes in tests/probe recorded against real servers.

    VMSEC_PROBE_CAPTURE=/tmp/probe-capture CI=true .venv/bin/pytest -p no:cacheprovider tests/probe
    .venv/bin/python scripts/probe_fixtures.py /tmp/probe-capture

The first command writes one JSON file per probe a test ran (tests/probe/probekit.py); this script
picks, for each fixture below, the capture of one test and the endpoints it keeps, and writes them
with the expected listeners. Only *where* an endpoint is may be rewritten — its address (a
documentation address, 192.0.2.10, for "seen from the network"), its port (the conventional one
instead of the random free port the test used, consistently in the expected listeners), and the
temporary paths in the probe run; what the handshake said (VNC, SPICE, TLS, libvirt, NBD, SSH, HTTP)
and the expected listeners' configuration are kept exactly as recorded. The probe run is kept only
when a fixture keeps every endpoint of its capture. The table of fixtures, with where each came from,
goes into tests/data/checks/README.md between its probe-fixtures markers.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import probefixtures  # noqa: E402
from vmsec.facts import ConfigRef, Endpoint, ExpectedListener, Inventory, PortState, Proto, evolve  # noqa: E402

CHECKS = REPO / "tests" / "data" / "checks"
README = CHECKS / "README.md"
BEGIN, END = "<!-- probe-fixtures:begin -->", "<!-- probe-fixtures:end -->"
REMOTE = "192.0.2.10"  # TEST-NET-1 (RFC 5737): "a hypervisor seen from the network"

Keep = Callable[[Endpoint, Inventory], bool]
Ports = Callable[[Inventory], Mapping[int, int]]


def everything(_e: Endpoint, _inv: Inventory) -> bool:
    return True


def proto(p: Proto, state: PortState = PortState.OPEN) -> Keep:
    return lambda e, _inv: e.protocol is p and e.state is state


def owned(owner: str, p: Proto, address: str = "127.0.0.1") -> Keep:
    """The endpoint on the port the configuration gives ``owner``'s ``p`` listener."""
    return lambda e, inv: e.address == address and e.port == _port_of(inv, owner, p)


def unexplained(e: Endpoint, inv: Inventory) -> bool:
    return e.state is PortState.OPEN and not any(x.covers(e.port) for x in inv.expected or ())


def migration(state: PortState) -> Keep:
    return lambda e, _inv: e.protocol is Proto.MIGRATION and e.state is state


def _port_of(inv: Inventory, owner: str, p: Proto) -> int:
    found = [x.port for x in inv.expected or () if x.owner == owner and x.protocol is p]
    assert len(found) == 1 and found[0] is not None, (owner, p, found)
    return found[0]


def by_role(roles: Mapping[tuple[str, Proto], int], extra: Ports | None = None) -> Ports:
    """Ports renumbered by the listener the configuration gives them (owner, protocol)."""
    def ports(inv: Inventory) -> Mapping[int, int]:
        out = {_port_of(inv, owner, p): new for (owner, p), new in roles.items()}
        if extra is not None:
            out.update(extra(inv))
        return out
    return ports


def migration_range(low: int) -> Callable[[Inventory], Mapping[int, int]]:
    def ports(inv: Inventory) -> Mapping[int, int]:
        [r] = [x for x in inv.expected or () if x.protocol is Proto.MIGRATION]
        assert r.port is not None and r.port_max is not None
        return {old: low + i for i, old in enumerate(range(r.port, r.port_max + 1))}
    return ports


def unexplained_to(new: int) -> Callable[[Inventory], Mapping[int, int]]:
    def ports(inv: Inventory) -> Mapping[int, int]:
        return {e.port: new for e in inv.endpoints if unexplained(e, inv)}
    return ports


@dataclass(frozen=True)
class Fixture:
    check: str
    name: str  # NAME.VERDICT
    test: str  # the tests/probe test (its capture file name without -N.json, or with it of several)
    shows: str  # what the fixture is, for the README
    port: int | Ports | None = None  # every kept endpoint's port, or a renumbering (None: as captured)
    keep: Keep = everything
    address: Mapping[str, str] = field(default_factory=dict)  # rewritten endpoint addresses
    severity: str | None = None  # NAME.VERDICT.severity
    expected: bool = True  # keep the expected listeners (when the probe had a configuration)


R = {"127.0.0.1": REMOTE}  # the endpoint as seen from the network
STORED = "test_probe_from_stored_scan_confirms_contradicts_and_flags_unexplained"
STORED_PORTS = by_role({("web01", Proto.VNC): 5901, ("web02", Proto.VNC): 5902,
                        ("libvirtd", Proto.LIBVIRT): 16509}, unexplained_to(5903))
CONFIGURED = "test_configuration_guides_tls_websockets_and_the_migration_range"
CONFIGURED_PORTS = by_role({("db01", Proto.VNC): 5900, ("db01", Proto.VNC_WEBSOCKET): 5700,
                            ("db02", Proto.VNC): 5901, ("db02", Proto.VNC_WEBSOCKET): 5701},
                           migration_range(49152))

FIXTURES: tuple[Fixture, ...] = (
    # VMS-PRB-001 VNC None
    Fixture("VMS-PRB-001", "vnc-none.FAIL", "test_vnc_matrix_verdicts_none_",
            "QEMU `-vnc` without password: security type None", 5901, address=R, severity="critical"),
    Fixture("VMS-PRB-001", "vnc-none-loopback.FAIL", "test_vnc_matrix_verdicts_none_",
            "decoy: the same None on loopback only: one step lower (high)", 5901, severity="high"),
    Fixture("VMS-PRB-001", "vnc-password.PASS", "test_vnc_matrix_verdicts_password_",
            "QEMU with `password-secret`: VNC authentication (2)", 5901, address=R),
    Fixture("VMS-PRB-001", "vencrypt-x509none.PASS", "test_vnc_matrix_verdicts_x509_",
            "decoy: VeNCrypt sub-type X509None — 'None' in its name, yet TLS with a server certificate",
            5901, address=R),
    Fixture("VMS-PRB-001", "refuses-every-client.PASS", "test_a_server_that_floods_costs_one_bounded_read-1",
            "decoy: an RFB server that answers with zero security types (its 2 GB reason cut at 4 KiB)",
            5901, keep=proto(Proto.VNC), address=R),
    Fixture("VMS-PRB-001", "wss-none-through-tls.FAIL", CONFIGURED,
            "QEMU's VNC WebSocket over TLS (vnc_tls = 1) with no password: None behind TLS, on loopback",
            CONFIGURED_PORTS, keep=owned("db02", Proto.VNC_WEBSOCKET), severity="high"),
    Fixture("VMS-PRB-001", "wss-without-configuration.UNKNOWN",
            "test_tls_websocket_probed_without_configuration_is_unknown_never_pass",
            "a TLS-only WebSocket named by --ports alone is asked in clear and resets: unknown", 5700,
            address=R),
    # VMS-PRB-002 more than the VNC password
    Fixture("VMS-PRB-002", "vnc-password.FAIL", "test_vnc_matrix_verdicts_password_",
            "VNC authentication (DES, 8 characters) in clear", 5901, address=R, severity="high"),
    Fixture("VMS-PRB-002", "vnc-password-loopback.FAIL", "test_vnc_matrix_verdicts_password_",
            "decoy: the same on loopback only: one step lower (medium)", 5901, severity="medium"),
    Fixture("VMS-PRB-002", "vnc-sasl.PASS", "test_vnc_matrix_verdicts_sasl_",
            "QEMU `sasl=on` (SCRAM-SHA-256): security type SASL (20)", 5901, address=R),
    Fixture("VMS-PRB-002", "vencrypt-x509-password.PASS", "test_vnc_matrix_verdicts_x509-verify-password_",
            "decoy: the VNC password, but inside x509 VeNCrypt (X509Vnc)", 5901, address=R),
    Fixture("VMS-PRB-002", "wss-without-configuration.UNKNOWN",
            "test_tls_websocket_probed_without_configuration_is_unknown_never_pass",
            "a TLS-only WebSocket asked in clear: the security types are unknown", 5700, address=R),
    # VMS-PRB-003 VeNCrypt x509
    Fixture("VMS-PRB-003", "vencrypt-anonymous-tls.FAIL", "test_vnc_matrix_verdicts_anon-tls_",
            "QEMU `tls-creds-anon`: VeNCrypt TLSNone (anonymous TLS)", 5901, address=R, severity="high"),
    Fixture("VMS-PRB-003", "vencrypt-x509-tls1.0.FAIL", "test_vnc_matrix_verdicts_x509-tls1.0_",
            "x509 VeNCrypt whose GnuTLS priority allows only TLS 1.0", 5901, address=R, severity="medium"),
    Fixture("VMS-PRB-003", "vencrypt-x509-password.PASS", "test_vnc_matrix_verdicts_x509-verify-password_",
            "x509 with client verification and a password: X509Vnc over TLS 1.3", 5901, address=R),
    Fixture("VMS-PRB-003", "vencrypt-x509none.PASS", "test_vnc_matrix_verdicts_x509_",
            "decoy: X509None looks like plain, unauthenticated VeNCrypt, yet the server has a certificate",
            5901, address=R),
    # VMS-PRB-004 SPICE
    Fixture("VMS-PRB-004", "spice-no-ticket.FAIL", "test_spice_plain_without_ticket_is_critical_remote",
            "QEMU `-spice disable-ticketing=on`: the empty ticket links the main channel", 5900, address=R,
            severity="critical"),
    Fixture("VMS-PRB-004", "spice-no-ticket-loopback.FAIL",
            "test_spice_plain_without_ticket_is_critical_remote",
            "decoy: the same on loopback only: one step lower (high)", 5900, severity="high"),
    Fixture("VMS-PRB-004", "spice-ticket-plain-port.FAIL", "test_spice_ticket_on_plain_port_and_tls_port",
            "a ticket is required, but the plain port links the main channel (the session in clear)", 5900,
            keep=proto(Proto.SPICE), address=R, severity="medium"),
    Fixture("VMS-PRB-004", "spice-tls-port.PASS", "test_spice_ticket_on_plain_port_and_tls_port",
            "the TLS port of the same server: TLS and a ticket", 5901, keep=proto(Proto.SPICE_TLS),
            address=R),
    Fixture("VMS-PRB-004", "spice-secure-channel.PASS", "test_spice_secure_main_channel_refuses_plain",
            "decoy: a plain SPICE port that refuses the main channel (NEED_SECURED, tls-channel=default)",
            5900, address=R),
    # VMS-PRB-005 libvirt TCP
    Fixture("VMS-PRB-005", "tcp-auth-none.FAIL", "test_libvirt_tcp_without_auth_is_critical",
            'a private libvirtd, `listen_tcp = 1`, `auth_tcp = "none"`', 16509, address=R,
            severity="critical"),
    Fixture("VMS-PRB-005", "tcp-auth-none-loopback.FAIL", "test_libvirt_tcp_without_auth_is_critical",
            "decoy: the same on loopback only: one step lower (high)", 16509, severity="high"),
    Fixture("VMS-PRB-005", "tcp-sasl-digest-md5.FAIL",
            "test_libvirt_tcp_with_sasl_lists_mechanisms_digest-md5_",
            "SASL with only DIGEST-MD5 on clear TCP", 16509, address=R, severity="high"),
    Fixture("VMS-PRB-005", "tcp-sasl-gssapi.PASS", "test_libvirt_tcp_with_sasl_lists_mechanisms_gssapi_",
            "SASL with GSSAPI (Kerberos: a security layer on clear TCP)", 16509, address=R),
    Fixture("VMS-PRB-005", "tcp-sasl-digest-md5-and-gssapi.PASS",
            "test_libvirt_tcp_with_sasl_lists_mechanisms_digest-md5_gssapi_",
            "decoy: DIGEST-MD5 is offered, but so is GSSAPI", 16509, address=R),
    Fixture("VMS-PRB-005", "tcp-sasl-scram-offers-nothing.PASS",
            "test_libvirt_tcp_with_sasl_lists_mechanisms_scram_",
            "decoy: SASL on clear TCP with SCRAM only: libvirt wants a security layer there and offers no "
            "mechanism at all", 16509, address=R),
    # VMS-PRB-006 libvirt TLS client certificate
    Fixture("VMS-PRB-006", "tls-verify.PASS", "test_libvirt_tls_client_certificate_verify_",
            "decoy: the handshake 'fails' — the daemon closes on a client without a certificate, as it "
            "should", 16514, address=R),
    Fixture("VMS-PRB-006", "tls-no-verify-auth-none.FAIL", "test_libvirt_tls_client_certificate_no-verify_",
            '`tls_no_verify_certificate = 1`, `auth_tls = "none"`: any TLS client gets in', 16514, address=R,
            severity="critical"),
    Fixture("VMS-PRB-006", "tls-no-verify-sasl.FAIL", "test_libvirt_tls_client_certificate_no-verify-sasl_",
            "decoy: no certificate needed, but SASL after the handshake: rated medium", 16514, address=R,
            severity="medium"),
    # VMS-PRB-007 Mozilla intermediate TLS
    Fixture("VMS-PRB-007", "intermediate.PASS",
            "test_tls_endpoint_against_mozilla_intermediate_intermediate_",
            "`openssl s_server -tls1_2` with one ECDHE-RSA-AES128-GCM suite, X25519/P-256/P-384", 8443,
            address=R),
    Fixture("VMS-PRB-007", "self-signed.PASS", "test_tls_endpoint_against_mozilla_intermediate_self-signed_",
            "decoy: a self-signed certificate — trust is not what the profile judges", 8443, address=R),
    Fixture("VMS-PRB-007", "tls1.0.FAIL", "test_tls_endpoint_against_mozilla_intermediate_tls1.0_",
            "`openssl s_server -tls1` with AES128-SHA", 8443, address=R),
    Fixture("VMS-PRB-007", "spice-tls-port-gnutls-defaults.FAIL",
            "test_spice_ticket_on_plain_port_and_tls_port",
            "QEMU's SPICE TLS port with its default suites: CBC and RSA key exchange accepted", 5901,
            keep=proto(Proto.SPICE_TLS), address=R),
    Fixture("VMS-PRB-007", "vencrypt-tls1.0.FAIL", "test_vnc_matrix_verdicts_x509-tls1.0_",
            "the TLS inside VeNCrypt negotiated TLS 1.0", 5901, address=R),
    Fixture("VMS-PRB-007", "no-tls-scan.UNKNOWN",
            "test_tls_endpoint_against_mozilla_intermediate_no-tls-scan_",
            "`--no-tls-scan`: versions and suites not enumerated", 8443, address=R),
    # VMS-PRB-008 NBD
    Fixture("VMS-PRB-008", "exports-listed.FAIL", "test_nbd_exports_listed_without_tls_False_",
            "`qemu-nbd -x vm-disk` without TLS: the export is listed", 10809, address=R, severity="high"),
    Fixture("VMS-PRB-008", "exports-listed-loopback.FAIL", "test_nbd_exports_listed_without_tls_False_",
            "decoy: the same on loopback only: one step lower (medium)", 10809, severity="medium"),
    Fixture("VMS-PRB-008", "tls-required.PASS", "test_nbd_exports_listed_without_tls_True_",
            "`qemu-nbd --tls-creds`: listing refused before STARTTLS", 10809, address=R),
    # VMS-PRB-009 migration ports
    Fixture("VMS-PRB-009", "migration-port-open.FAIL", CONFIGURED,
            "qemu.conf's migration range: a port accepts (a migration is incoming)", CONFIGURED_PORTS,
            keep=migration(PortState.OPEN), address=R, severity="high"),
    Fixture("VMS-PRB-009", "migration-port-closed.PASS", CONFIGURED,
            "decoy: a port of the same range, predicted and closed", CONFIGURED_PORTS,
            keep=migration(PortState.CLOSED), address=R),
    Fixture("VMS-PRB-009", "migration-hint-loopback.FAIL",
            "test_migration_port_is_connected_to_and_never_written",
            "`--ports P/migration` on loopback, no configuration: one step lower (medium)", 49152,
            severity="medium"),
    # VMS-PRB-010 SSH password
    Fixture("VMS-PRB-010", "password-offered.FAIL",
            "test_ssh_algorithms_and_password_agree_with_ssh_audit_weak_",
            "sshd `PasswordAuthentication yes`: publickey, password", 22, address=R),
    Fixture("VMS-PRB-010", "publickey-only.PASS",
            "test_ssh_algorithms_and_password_agree_with_ssh_audit_strong_",
            "sshd `AuthenticationMethods publickey`", 22, address=R),
    Fixture("VMS-PRB-010", "password-second-factor.PASS",
            "test_ssh_algorithms_and_password_agree_with_ssh_audit_password-second-factor_",
            "decoy: `PasswordAuthentication yes`, but `AuthenticationMethods publickey,password`: a password "
            "only after a key, so none is offered first", 22, address=R),
    # VMS-PRB-011 SSH algorithms
    Fixture("VMS-PRB-011", "weak-algorithms.FAIL",
            "test_ssh_algorithms_and_password_agree_with_ssh_audit_weak_",
            "group14-sha1/gex-sha1, ssh-rsa, CBC/3DES, hmac-sha1/md5 (ssh-audit fails it too)", 22,
            address=R),
    Fixture("VMS-PRB-011", "strong-algorithms.PASS",
            "test_ssh_algorithms_and_password_agree_with_ssh_audit_strong_",
            "sntrup761/curve25519, ed25519/rsa-sha2, chacha20/AES-GCM, -etm MACs", 22, address=R),
    Fixture("VMS-PRB-011", "old-looking-strong.PASS",
            "test_ssh_algorithms_and_password_agree_with_ssh_audit_old-looking-strong_",
            "decoy: DH group16/18, RSA (rsa-sha2), AES-CTR, MACs without -etm — dated names ssh-audit "
            "does not fail", 22, address=R),
    # VMS-PRB-012 web consoles
    Fixture("VMS-PRB-012", "vnc-websocket-plain-none.FAIL",
            "test_vnc_websocket_without_tls_is_an_open_web_console",
            "QEMU `-vnc …,websocket=` in clear with no password: the console for anyone", 5700,
            keep=proto(Proto.VNC_WEBSOCKET), address=R, severity="critical"),
    Fixture("VMS-PRB-012", "wss-password.PASS", CONFIGURED,
            "QEMU's VNC WebSocket over TLS (vnc_tls = 1) asks for the VNC password", CONFIGURED_PORTS,
            keep=owned("db01", Proto.VNC_WEBSOCKET)),
    Fixture("VMS-PRB-012", "wss-none.FAIL", CONFIGURED,
            "decoy the other way: TLS, yet None inside — an open console behind TLS (loopback: high)",
            CONFIGURED_PORTS, keep=owned("db02", Proto.VNC_WEBSOCKET), severity="high"),
    Fixture("VMS-PRB-012", "plain-web-server.PASS",
            "test_tls_endpoint_against_mozilla_intermediate_intermediate_",
            "decoy: an HTTPS server on a web-console port that is not a console (`openssl s_server -www`)",
            8443, address=R),
    # VMS-PRB-013 configuration correlation
    Fixture("VMS-PRB-013", "confirmed.PASS", STORED,
            "web02's VNC on 127.0.0.1 as its domain XML says",
            STORED_PORTS, keep=owned("web02", Proto.VNC)),
    Fixture("VMS-PRB-013", "contradicted-forwarded.FAIL",
            STORED,
            "web01 listens on 127.0.0.1 per its XML, yet answers on another address (a forwarder, here at "
            "192.0.2.10): contradicted, critical",
            STORED_PORTS, keep=owned("web01", Proto.VNC, "127.0.0.2"),
            address={"127.0.0.2": REMOTE}, severity="critical"),
    Fixture("VMS-PRB-013", "contradicted-stale-daemon.FAIL",
            STORED,
            'libvirtd.conf says `auth_tcp = "sasl"`, the daemon answering lets clients in without any',
            STORED_PORTS, keep=owned("libvirtd", Proto.LIBVIRT), severity="critical"),
    Fixture("VMS-PRB-013", "unexplained.FAIL", STORED,
            "decoy: a VNC nothing configures, next to the configured ones — unexplained (high, medium on "
            "loopback), not contradicted (critical)",
            STORED_PORTS, keep=unexplained, severity="medium"),
    Fixture("VMS-PRB-013", "predicted-closed.PASS", CONFIGURED,
            "decoy: a predicted migration port that is closed — not reachable, nothing to explain",
            CONFIGURED_PORTS, keep=migration(PortState.CLOSED)),
    Fixture("VMS-PRB-013", "confirmed-tls-websocket.PASS", CONFIGURED,
            "db01's WebSocket over TLS, as qemu.conf's vnc_tls and its XML predict", CONFIGURED_PORTS,
            keep=owned("db01", Proto.VNC_WEBSOCKET)),
)


def _renumber_ref(ref: ConfigRef, ports: Mapping[int, int]) -> ConfigRef:
    if ref.value is not None and ref.value.isdigit() and int(ref.value) in ports:
        return evolve(ref, value=str(ports[int(ref.value)]))
    return ref


def _renumber(listener: ExpectedListener, ports: Mapping[int, int]) -> ExpectedListener:
    def move(port: int | None) -> int | None:
        return ports.get(port, port) if port is not None else None
    return evolve(listener, port=move(listener.port), port_max=move(listener.port_max),
                  refs=tuple(_renumber_ref(r, ports) for r in listener.refs))


def build(fx: Fixture, inv: Inventory) -> Inventory:
    kept = tuple(e for e in inv.endpoints if fx.keep(e, inv))
    assert kept, f"{fx.check}/{fx.name}: no endpoint kept from {fx.test}"
    if isinstance(fx.port, int):
        ports: Mapping[int, int] = {e.port: fx.port for e in kept}
    elif fx.port is not None:
        ports = fx.port(inv)
    else:
        ports = {}
    endpoints = tuple(evolve(e, address=fx.address.get(e.address, e.address), port=ports.get(e.port, e.port))
                      for e in kept)
    expected = None
    if fx.expected and inv.expected is not None:
        expected = tuple(_renumber(x, ports) for x in inv.expected)
    probe = None
    if inv.probe is not None and len(kept) == len(inv.endpoints):
        targets = tuple(fx.address.get(t, t) for t in inv.probe.targets)
        scope = tuple(f"{t}/32" for t in targets if t != "127.0.0.1" and t not in inv.probe.targets)
        configuration = inv.probe.configuration
        if configuration is not None:
            configuration = re.sub(r"/tmp/\S+/root\b", "/srv/hv1-root", configuration)
        probe = evolve(inv.probe, targets=targets, scope=inv.probe.scope + scope,
                       ports=tuple(ports.get(p, p) for p in inv.probe.ports), configuration=configuration,
                       contact_log=None)
    return Inventory(endpoints=endpoints, expected=expected, probe=probe)


def _capture(folder: Path, test: str) -> Path:
    """``test``'s one capture, or ``test`` naming one capture of several (``…-2``)."""
    found = [folder / f"{test}.json"] if (folder / f"{test}.json").exists() else \
        sorted(folder.glob(f"{test}-*.json"))
    assert len(found) == 1, f"{test}: {len(found)} captures in {folder}"
    return found[0]


def _rewritten(fx: Fixture) -> str:
    parts = []
    if fx.address:
        parts.append("address → " + ", ".join(sorted(set(fx.address.values()))))
    if fx.port is not None:
        parts.append("port renumbered")
    return "; ".join(parts) or "—"


def _table() -> str:
    rows = ["| check | fixture | what it is | captured by (tests/probe) | rewritten |",
            "|---|---|---|---|---|"]
    for fx in FIXTURES:
        severity = f" ({fx.severity})" if fx.severity else ""
        test = re.sub(r"_?(-\d+)?$", "", fx.test)
        rows.append(f"| {fx.check} | `{fx.name}.json`{severity} | {fx.shows} | `{test}` | "
                    f"{_rewritten(fx)} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(argv[0])
    for fx in FIXTURES:
        inv = probefixtures.load(_capture(folder, fx.test))
        out = CHECKS / fx.check / f"{fx.name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(probefixtures.dump(build(fx, inv)))
        severity = out.with_name(f"{fx.name}.severity")
        if fx.severity:
            severity.write_text(fx.severity + "\n")
        elif severity.exists():
            severity.unlink()
    text = README.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    README.write_text(text[:start] + "\n" + _table() + "\n" + text[end:])
    print(f"{len(FIXTURES)} fixtures written; {README.relative_to(REPO)} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
