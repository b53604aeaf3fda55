"""The listeners a configuration predicts (vmsec.listeners): the host's sshd, from its configuration as
read — and no predicted port where part of that configuration was not read."""

from __future__ import annotations

import os
from pathlib import Path

from vmsec.collectors.reader import RootReader
from vmsec.facts import Guest, Host, Inventory, Proto
from vmsec.listeners import from_details, host_listeners, listeners_details
from vmsec.parsers.sshd_config import read_sshd_config

MAIN = "etc/ssh/sshd_config"
DROPIN = "etc/ssh/sshd_config.d/10-port.conf"


def sshd_listeners(root: Path) -> list[object]:
    sshd = read_sshd_config(RootReader(str(root)), version="9.2p1", distro="debian")
    inventory = Inventory(host_os=Guest(name="host", origin=str(root), sshd=sshd))
    listeners = host_listeners(Host(name="h", root=str(root), live=False), inventory)
    return [e for e in listeners if e.protocol is Proto.SSH]


def make(root: Path, dropin: str | None) -> None:
    (root / DROPIN).parent.mkdir(parents=True)
    (root / MAIN).write_text("Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n")
    if dropin is None:
        os.mkfifo(root / DROPIN)  # exists, but is not read
    else:
        (root / DROPIN).write_text(dropin)


def test_sshd_read_in_full_predicts_its_port(tmp_path: Path) -> None:
    make(tmp_path, "Port 2222\n")
    [ssh] = sshd_listeners(tmp_path)
    assert (ssh.port, ssh.auth, ssh.condition) == (2222, "publickey", None)


def test_sshd_include_not_read_leaves_port_and_address_unpredicted(tmp_path: Path) -> None:
    # the unread drop-in may move sshd off port 22 (or bind it elsewhere): 22 would be a guess
    make(tmp_path, None)
    [ssh] = sshd_listeners(tmp_path)
    assert (ssh.port, ssh.address, ssh.auth) == (None, None, None)
    assert ssh.condition is not None and f"/{DROPIN}" in ssh.condition
    # kept as such in a scan's details, for `vmsec probe --from-scan`
    [back] = from_details(listeners_details([ssh]))
    assert (back.port, back.condition) == (None, ssh.condition)


def test_listen_addresses_with_and_without_their_own_port(tmp_path: Path) -> None:
    """`ListenAddress host:port` binds that port only; a bare address binds every Port; the address is
    never predicted as "host:port" (it was)."""
    make(tmp_path, "Port 22\nPort 2200\nListenAddress 10.0.0.5:2222\nListenAddress [2001:db8::1]:2223\n"
                   "ListenAddress 192.0.2.7 rdomain mgmt\nListenAddress 2001:db8::9\n")
    got = sorted((e.address, e.port) for e in sshd_listeners(tmp_path))  # type: ignore[attr-defined]
    assert got == sorted([("10.0.0.5", 2222), ("2001:db8::1", 2223), ("192.0.2.7", 22), ("192.0.2.7", 2200),
                          ("2001:db8::9", 22), ("2001:db8::9", 2200)])


def test_no_listen_address_is_every_port_on_every_address(tmp_path: Path) -> None:
    make(tmp_path, "Port 22\nPort 2200\n")  # sshd's own default ListenAddress: 0.0.0.0 and ::
    got = sorted((e.address, e.port) for e in sshd_listeners(tmp_path))  # type: ignore[attr-defined]
    assert got == [("0.0.0.0", 22), ("0.0.0.0", 2200)]  # "::" too, but one listener says every interface
