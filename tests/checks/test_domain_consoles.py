"""Console checks (VMS-DOM-020…029): VNC, SPICE, RDP/D-Bus and character devices."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from vmsec.checks.api import Environment, Result
from vmsec.checks.domain import consoles as c
from vmsec.facts import (
    Chardev,
    ConfigFile,
    ConfValue,
    Domain,
    Graphics,
    Host,
    Inventory,
    Listen,
    Network,
    NetworkIp,
    PasswordState,
)
from vmsec.findings import Severity, Status

QEMU_CONF_DEFAULTS: Mapping[str, ConfValue] = {
    "vnc_listen": "127.0.0.1", "spice_listen": "127.0.0.1", "vnc_tls": 0, "vnc_sasl": 0,
    "vnc_auto_unix_socket": 0, "spice_tls": 0, "spice_sasl": 0, "spice_auto_unix_socket": 0, "chardev_tls": 0,
}


def host(values: Mapping[str, ConfValue] | None = None, *, readable: bool = True) -> Host:
    conf = ConfigFile(path="/etc/libvirt/qemu.conf", present=True if readable else None,
                      values=dict(values or {}), lines={k: i + 1 for i, k in enumerate(values or {})},
                      defaults=QEMU_CONF_DEFAULTS)
    return Host(name="h", root="/", live=True, qemu_conf=conf)


def env(h: Host | None = None, networks: tuple[Network, ...] = (),
        doms: tuple[Domain, ...] = ()) -> Environment:
    return Environment(inventory=Inventory(host=h, domains=doms, networks=networks), host=h)


def vnc(**kw: Any) -> Graphics:
    return Graphics(locator=kw.pop("locator", "devices/graphics[1]"), type=kw.pop("type", "vnc"), **kw)


def dom(*graphics: Graphics, chardevs: tuple[Chardev, ...] = ()) -> Domain:
    return Domain(name="vm", origin="vm.xml", graphics=graphics, chardevs=chardevs)


def run(func: Callable[..., Iterator[Result]], d: Domain, e: Environment) -> list[Result]:
    return list(func(d, e))


ANY = (Listen(type="address", address="0.0.0.0"),)
LOOP = (Listen(type="address", address="127.0.0.1"),)
SOCK = (Listen(type="socket", socket="/var/lib/libvirt/qemu/vnc.sock"),)


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("::ffff:127.0.0.1", True), ("0.0.0.0", False), ("::", False), ("192.0.2.1", False),
    ("vnc.example.com", False), ("", False), ("fe80::1%eth0", False),
])
def test_is_loopback(address: str, expected: bool) -> None:
    assert c.is_loopback(address) is expected


@pytest.mark.parametrize(("g", "h", "expected", "severity"), [
    (vnc(listens=LOOP), None, Status.PASS, None),
    (vnc(listens=SOCK), None, Status.PASS, None),
    (vnc(listens=(Listen(type="none"),)), None, Status.PASS, None),
    # Without qemu.conf its documented defaults hold (no vnc_password, vnc_sasl = 0, vnc_tls = 0).
    (vnc(listen_attr="0.0.0.0"), None, Status.FAIL, Severity.CRITICAL),
    (vnc(listens=ANY), None, Status.FAIL, Severity.CRITICAL),
    (vnc(listens=ANY), host(), Status.FAIL, Severity.CRITICAL),  # no password, no TLS, no SASL
    (vnc(listens=ANY, password=PasswordState.SET), host(), Status.FAIL, None),
    (vnc(), None, Status.UNKNOWN, None),  # passes only if qemu.conf keeps vnc_listen = 127.0.0.1
    (vnc(listens=(Listen(type="address"),)), None, Status.UNKNOWN, None),
    (vnc(), host(), Status.PASS, None),  # qemu.conf default 127.0.0.1
    (vnc(), host({"vnc_listen": "0.0.0.0"}), Status.FAIL, Severity.CRITICAL),
    (vnc(), host({"vnc_listen": "0.0.0.0", "vnc_auto_unix_socket": 1}), Status.PASS, None),
    (vnc(), host(readable=False), Status.UNKNOWN, None),
])
def test_vnc_listen(g: Graphics, h: Host | None, expected: Status, severity: Severity | None) -> None:
    [r] = run(c.vnc_listen_local, dom(g), env(h))
    assert (r.status, r.severity) == (expected, severity)


def test_vnc_unknown_names_qemu_conf() -> None:
    [r] = run(c.vnc_listen_local, dom(vnc()), env())
    assert r.status is Status.UNKNOWN
    assert "qemu.conf was not read" in r.message and 'vnc_listen = "127.0.0.1"' in r.message


def test_vnc_listen_network_resolved() -> None:
    g = vnc(listens=(Listen(type="network", network="pub"),))
    public = Network(name="pub", origin="pub.xml", ips=(NetworkIp(address="203.0.113.1", family="ipv4"),))
    private = Network(name="pub", origin="pub.xml", ips=(NetworkIp(address="127.0.0.1"),))
    assert run(c.vnc_listen_local, dom(g), env(networks=(public,)))[0].status is Status.FAIL
    assert run(c.vnc_listen_local, dom(g), env(networks=(private,)))[0].status is Status.PASS
    assert run(c.vnc_listen_local, dom(g), env())[0].status is Status.UNKNOWN
    empty = Network(name="pub", origin="pub.xml")
    assert run(c.vnc_listen_local, dom(g), env(networks=(empty,)))[0].status is Status.UNKNOWN


def test_vnc_live_network_listen_uses_its_address() -> None:
    g = vnc(listens=(Listen(type="network", network="gone", address="198.51.100.7"),))
    [r] = run(c.vnc_listen_local, dom(g), env())
    assert r.status is Status.FAIL and "198.51.100.7" in r.message


@pytest.mark.parametrize(("g", "h", "expected", "severity"), [
    (vnc(listens=SOCK), None, Status.PASS, None),
    (vnc(listens=ANY), None, Status.FAIL, Severity.CRITICAL),  # under the defaults; the keys are named
    (vnc(listens=ANY), host(), Status.FAIL, Severity.CRITICAL),
    (vnc(listens=ANY, password=PasswordState.SET), host(), Status.FAIL, None),
    (vnc(listens=ANY, password=PasswordState.EMPTY), host(), Status.FAIL, Severity.CRITICAL),
    (vnc(listens=ANY), host({"vnc_password": "secret"}), Status.FAIL, None),
    (vnc(listens=ANY, password=PasswordState.HIDDEN), host(), Status.UNKNOWN, None),
    (vnc(listens=ANY), host({"vnc_sasl": 1}), Status.PASS, None),
    (vnc(listens=ANY), host({"vnc_tls": 1}), Status.FAIL, Severity.CRITICAL),  # TLS without verify
    (vnc(listens=ANY), host({"vnc_tls": 1, "vnc_tls_x509_verify": 1}), Status.PASS, None),
    (vnc(listens=ANY), host({"vnc_tls": 1, "default_tls_x509_verify": 1}), Status.PASS, None),
    (vnc(listens=ANY), host({"vnc_tls": 1, "default_tls_x509_verify": 1, "vnc_tls_x509_verify": 0}),
     Status.FAIL, Severity.CRITICAL),
    (vnc(listens=LOOP), host(), Status.FAIL, Severity.MEDIUM),
    (vnc(listens=LOOP, password=PasswordState.SET), None, Status.PASS, None),
    (vnc(listens=LOOP), None, Status.FAIL, Severity.MEDIUM),
    (vnc(), host({"vnc_listen": "::"}), Status.FAIL, Severity.CRITICAL),
])
def test_vnc_auth(g: Graphics, h: Host | None, expected: Status, severity: Severity | None) -> None:
    [r] = run(c.vnc_requires_auth, dom(g), env(h))
    assert (r.status, r.severity) == (expected, severity)


def test_vnc_password_value_never_in_evidence() -> None:
    [r] = run(c.vnc_listen_local, dom(vnc(listens=ANY)), env(host({"vnc_password": "hunter22"})))
    [r2] = run(c.vnc_requires_auth, dom(vnc(listens=ANY)), env(host({"vnc_password": "hunter22"})))
    for result in (r, r2):
        assert all("hunter22" not in (e.value or "") for e in result.evidence)


@pytest.mark.parametrize(("g", "h", "expected"), [
    (vnc(listens=ANY), host(), []),
    (vnc(listens=LOOP, websocket=5700), None, [Status.PASS]),
    (vnc(listens=ANY, websocket=-1), host(), [Status.FAIL]),
    (vnc(listens=ANY, websocket=5700), host({"vnc_tls": 1}), [Status.PASS]),
    (vnc(listens=ANY, websocket=5700), None, [Status.FAIL]),  # vnc_tls = 0 by default
    (vnc(websocket=5700), None, [Status.UNKNOWN]),
])
def test_vnc_websocket(g: Graphics, h: Host | None, expected: list[Status]) -> None:
    assert [r.status for r in run(c.vnc_websocket_protected, dom(g), env(h))] == expected


def spice(**kw: Any) -> Graphics:
    return vnc(type="spice", **kw)


@pytest.mark.parametrize(("g", "h", "expected", "severity"), [
    (spice(listens=SOCK), None, Status.PASS, None),
    (spice(listens=ANY, password=PasswordState.SET), None, Status.PASS, None),
    (spice(listens=ANY), host(), Status.FAIL, None),
    (spice(listens=ANY), host({"spice_password": "x"}), Status.PASS, None),
    (spice(listens=ANY), host({"spice_sasl": 1}), Status.PASS, None),
    (spice(listens=ANY), None, Status.FAIL, None),
    (spice(listens=LOOP), host(), Status.FAIL, Severity.MEDIUM),
    (spice(), host({"spice_listen": "0.0.0.0", "spice_auto_unix_socket": 1}), Status.PASS, None),
    (spice(), host({"spice_listen": "0.0.0.0"}), Status.FAIL, None),
])
def test_spice_auth(g: Graphics, h: Host | None, expected: Status, severity: Severity | None) -> None:
    [r] = run(c.spice_requires_auth, dom(g), env(h))
    assert (r.status, r.severity) == (expected, severity)


@pytest.mark.parametrize(("g", "h", "expected"), [
    (spice(listens=LOOP), None, Status.PASS),
    (spice(listens=ANY, default_mode="secure"), None, Status.PASS),
    (spice(listens=ANY, default_mode="secure", channel_modes=(("inputs", "insecure"),)),
     host({"spice_tls": 1}), Status.FAIL),
    (spice(listens=ANY, tls_port=5901), None, Status.FAIL),  # TLS on, but defaultMode any
    (spice(listens=ANY, autoport=True), host(), Status.FAIL),  # no TLS at all
    (spice(listens=ANY, autoport=True), None, Status.FAIL),  # spice_tls = 0 by default
    (spice(listens=ANY, autoport=True, default_mode="secure"), host({"spice_tls": 1}), Status.PASS),
])
def test_spice_tls(g: Graphics, h: Host | None, expected: Status) -> None:
    [r] = run(c.spice_channels_encrypted, dom(g), env(h))
    assert r.status is expected


AGENT = Chardev(locator="devices/channel[1]", element="channel", type="spicevmc", target_type="virtio",
                target_name="com.redhat.spice.0")


@pytest.mark.parametrize(("g", "chardevs", "expected"), [
    (spice(), (), Status.PASS),
    (spice(), (AGENT,), Status.FAIL),
    (spice(filetransfer=False), (AGENT,), Status.FAIL),
    (spice(filetransfer=False, copypaste=False), (AGENT,), Status.PASS),
])
def test_spice_sharing(g: Graphics, chardevs: tuple[Chardev, ...], expected: Status) -> None:
    assert [r.status for r in c.spice_data_sharing_off(dom(g, chardevs=chardevs))] == [expected]


@pytest.mark.parametrize(("g", "h", "expected"), [
    (vnc(type="dbus"), None, Status.PASS),
    (vnc(type="dbus", p2p=True), None, Status.PASS),
    (vnc(type="dbus", listen_attr="tcp:host=0.0.0.0,port=1234"), None, Status.FAIL),
    (vnc(type="dbus", listen_attr="tcp:host=localhost,port=1234"), None, Status.PASS),
    (vnc(type="rdp", listens=ANY), host(), Status.FAIL),
    (vnc(type="rdp", listens=ANY, password=PasswordState.SET), None, Status.PASS),
    (vnc(type="rdp"), None, Status.FAIL),  # loopback by default, no password: any local user
    (vnc(type="rdp"), host(), Status.FAIL),  # loopback default, any local user
])
def test_rdp_dbus(g: Graphics, h: Host | None, expected: Status) -> None:
    assert [r.status for r in run(c.rdp_dbus_protected, dom(g), env(h))] == [expected]


def tcp(**kw: Any) -> Chardev:
    kw.setdefault("locator", "devices/serial[1]")
    kw.setdefault("element", "serial")
    kw.setdefault("type", "tcp")
    kw.setdefault("source_service", "4555")
    return Chardev(**kw)


@pytest.mark.parametrize(("ch", "h", "expected", "severity"), [
    (tcp(source_mode="bind", source_host="127.0.0.1", protocol="telnet"), None, Status.PASS, None),
    (tcp(source_mode="bind", source_host="0.0.0.0", protocol="telnet", tls=False), None, Status.FAIL, None),
    (tcp(source_mode="bind", source_host="0.0.0.0"), None, Status.FAIL, None),  # chardev_tls = 0
    (tcp(source_mode="bind", source_host="0.0.0.0"), host(), Status.FAIL, None),
    (tcp(source_mode="bind", source_host="0.0.0.0"), host({"chardev_tls": 1}), Status.PASS, None),
    (tcp(source_mode="bind", source_host="0.0.0.0"), host({"chardev_tls": 1, "chardev_tls_x509_verify": 0}),
     Status.FAIL, None),
    (tcp(source_mode="bind", source_host="0.0.0.0", tls=True), None, Status.UNKNOWN, None),
    (tcp(source_mode="bind"), host(), Status.FAIL, None),  # no host: every address
    (tcp(source_host="192.0.2.10"), host(), Status.FAIL, Severity.MEDIUM),  # connect in clear text
    (tcp(source_host="192.0.2.10", tls=True), None, Status.PASS, None),
    (tcp(type="udp", source_host="192.0.2.10"), None, Status.FAIL, None),
    (tcp(type="udp", source_host="127.0.0.1"), None, Status.PASS, None),
])
def test_tcp_chardevs(ch: Chardev, h: Host | None, expected: Status, severity: Severity | None) -> None:
    [r] = run(c.network_chardevs_protected, dom(chardevs=(ch,)), env(h))
    assert (r.status, r.severity) == (expected, severity)


def test_pty_chardev_not_judged() -> None:
    pty = Chardev(locator="devices/serial[1]", element="serial", type="pty")
    assert run(c.network_chardevs_protected, dom(chardevs=(pty,)), env()) == []
    assert list(c.chardev_paths_protected(dom(chardevs=(pty,)))) == []


@pytest.mark.parametrize(("type_", "path", "expected"), [
    ("unix", "/var/lib/libvirt/qemu/channel/target/vm.org.qemu.guest_agent.0", Status.PASS),
    ("unix", "/tmp/vm.agent", Status.FAIL),
    ("file", "/var/tmp/serial.log", Status.FAIL),
    ("pipe", "/dev/shm/pipe", Status.FAIL),
    ("file", "/var/log/libvirt/qemu/vm-serial.log", Status.PASS),
])
def test_chardev_paths(type_: str, path: str, expected: Status) -> None:
    ch = Chardev(locator="devices/channel[1]", element="channel", type=type_, source_path=path)
    assert [r.status for r in c.chardev_paths_protected(dom(chardevs=(ch,)))] == [expected]


def test_guest_agent() -> None:
    ga = Chardev(locator="devices/channel[1]", element="channel", type="unix", target_type="virtio",
                 target_name="org.qemu.guest_agent.0")
    assert [r.status for r in c.guest_agent_inventory(dom(chardevs=(ga,)))] == [Status.FAIL]
    assert [r.status for r in c.guest_agent_inventory(dom(chardevs=(AGENT,)))] == [Status.PASS]


# ---- class 3: every listener kind reaches the same conclusion for the same exposure -------------

LISTENERS: list[tuple[str, Callable[..., Iterator[Result]], Domain]] = [
    ("vnc", c.vnc_requires_auth, dom(vnc(listens=ANY))),
    ("vnc websocket", c.vnc_websocket_protected, dom(vnc(listens=ANY, websocket=5700))),
    ("spice plain port", c.spice_requires_auth, dom(spice(listens=ANY))),
    ("spice tls port", c.spice_channels_encrypted, dom(spice(listens=ANY, autoport=True))),
    ("rdp", c.rdp_dbus_protected, dom(vnc(type="rdp", listens=ANY))),
    ("tcp serial", c.network_chardevs_protected,
     dom(chardevs=(tcp(source_mode="bind", source_host="0.0.0.0"),))),
    ("tcp console", c.network_chardevs_protected,
     dom(chardevs=(tcp(element="console", locator="devices/console[1]", source_mode="bind"),))),
    ("tcp channel", c.network_chardevs_protected,
     dom(chardevs=(tcp(element="channel", locator="devices/channel[1]", source_mode="bind",
                       source_host="::"),))),
    ("tcp parallel", c.network_chardevs_protected,
     dom(chardevs=(tcp(element="parallel", locator="devices/parallel[1]", source_mode="bind",
                       source_host="192.0.2.1"),))),
]


@pytest.mark.parametrize(("kind", "func", "d"), LISTENERS, ids=[k for k, _, _ in LISTENERS])
def test_network_exposure_without_qemu_conf_is_reported_naming_the_key(
        kind: str, func: Callable[..., Iterator[Result]], d: Domain) -> None:
    """No qemu.conf: what holds under its documented defaults is stated, with the key named."""
    [r] = run(func, d, env())
    assert r.status is Status.FAIL, (kind, r.message)
    assert "qemu.conf was not read" in r.message and "documented defaults" in r.message


@pytest.mark.parametrize(("kind", "func", "d"), LISTENERS, ids=[k for k, _, _ in LISTENERS])
def test_network_exposure_with_the_default_qemu_conf_is_the_same(
        kind: str, func: Callable[..., Iterator[Result]], d: Domain) -> None:
    [r] = run(func, d, env(host()))
    assert r.status is Status.FAIL, (kind, r.message)
    assert "qemu.conf was not read" not in r.message


@pytest.mark.parametrize(("kind", "func", "d"), [
    ("vnc", c.vnc_listen_local, dom(vnc())),
    ("spice", c.spice_channels_encrypted, dom(spice())),
    ("tcp bind with tls='yes'", c.network_chardevs_protected,
     dom(chardevs=(tcp(source_mode="bind", source_host="0.0.0.0", tls=True),))),
])
def test_a_pass_resting_on_unread_defaults_is_unknown(kind: str, func: Callable[..., Iterator[Result]],
                                                      d: Domain) -> None:
    [r] = run(func, d, env())
    assert r.status is Status.UNKNOWN and "qemu.conf" in r.message, (kind, r.message)


@pytest.mark.parametrize("ch", [
    tcp(source_mode="connect"),  # QEMU connects a socket without a host to localhost
    tcp(type="udp", source_mode="connect"),
    tcp(source_mode="connect", source_host="::1"),
])
def test_connect_without_host_is_localhost(ch: Chardev) -> None:
    [r] = run(c.network_chardevs_protected, dom(chardevs=(ch,)), env())
    assert r.status is Status.PASS and "loopback" in r.message


def test_vnc_without_credentials_on_an_unknown_network_is_unauthenticated() -> None:
    """Class 2: the listen address is unknown, but no password and no TLS/SASL is unauthenticated."""
    g = vnc(listens=(Listen(type="network", network="public"),))
    [listen] = run(c.vnc_listen_local, dom(g), env(host()))
    [auth] = run(c.vnc_requires_auth, dom(g), env(host()))
    assert listen.status is Status.UNKNOWN
    assert auth.status is Status.FAIL and auth.severity is None and "without authentication" in auth.message


@pytest.mark.parametrize(("address", "expected"), [
    ("tcp:port=1234", Status.PASS),  # D-Bus: no host= is localhost
    ("tcp:host=127.0.0.1,port=1234", Status.PASS),
    ("tcp:host=0.0.0.0,port=1234", Status.FAIL),
    ("tcp:host=localhost,bind=*,port=1234", Status.FAIL),
    ("unix:path=/run/vm.sock", Status.PASS),
])
def test_dbus_tcp_address(address: str, expected: Status) -> None:
    assert [r.status for r in run(c.rdp_dbus_protected, dom(vnc(type="dbus", listen_attr=address)),
                                  env())] == [expected]
