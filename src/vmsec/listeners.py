"""The network listeners a configuration predicts: each domain's VNC, WebSocket and SPICE ports, the
libvirt daemons' TCP and TLS listeners, qemu.conf's migration range, and the host's sshd.

A pure derivation from collected facts (no I/O, no verdict): ``vmsec probe --from-libvirt`` uses it
to choose the ports it contacts and the correlation checks to tie what the network shows to the XML
element or configuration key responsible. Every scan keeps each target's predicted listeners in its
details (:func:`listeners_details`), so ``vmsec probe --from-scan ID`` can rebuild them from the store
(:func:`from_details`) without the configuration at hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from vmsec.facts import ConfigFile, ConfigRef, Domain, ExpectedListener, Graphics, Host, Inventory, Proto
from vmsec.facts.domain import PasswordState

__all__ = ["domain_listeners", "expected_listeners", "from_details", "host_listeners", "listeners_details"]

_LOCAL_DEFAULT = "127.0.0.1"  # qemu.conf vnc_listen / spice_listen default


def _ref(source: str, locator: str, value: object = None) -> ConfigRef:
    return ConfigRef(source=source, locator=locator, value=None if value is None else str(value))


def _setting_ref(conf: ConfigFile | None, key: str) -> tuple[object, ConfigRef | None]:
    if conf is None:
        return None, None
    s = conf.setting(key)
    if s is None:
        return None, _ref(conf.path, key, "(unreadable)")
    return s.value, _ref(s.origin, key, s.value)


def _flag(value: object) -> bool | None:
    return value != 0 if isinstance(value, int) else None


def _listen_address(dom: Domain, gfx: Graphics, inventory: Inventory | None, qemu_conf: ConfigFile | None,
                    proto: str) -> tuple[str | None, ConfigRef | None, bool]:
    """The listen address of a display: (address or None, where it came from, TCP at all)."""
    for i, listen in enumerate(gfx.listens, start=1):
        loc = f"{gfx.locator}/listen[{i}]"
        if listen.type in ("socket", "none"):
            continue
        if listen.address:
            return listen.address, _ref(dom.origin, loc + "/@address", listen.address), True
        if listen.type == "network" and listen.network:
            net = inventory.network(listen.network) if inventory is not None else None
            ips = [ip.address for ip in (net.ips if net else ()) if ip.address]
            return (ips[0] if ips else None), _ref(dom.origin, loc + "/@network", listen.network), True
        return _conf_address(qemu_conf, proto)  # type='address' without an address: qemu.conf decides
    if gfx.listens:  # only UNIX sockets or no listener at all
        return None, _ref(dom.origin, gfx.locator + "/listen/@type", gfx.listens[0].type), False
    if gfx.listen_attr:
        return gfx.listen_attr, _ref(dom.origin, gfx.locator + "/@listen", gfx.listen_attr), True
    return _conf_address(qemu_conf, proto)


def _conf_address(qemu_conf: ConfigFile | None, proto: str) -> tuple[str | None, ConfigRef | None, bool]:
    auto, auto_ref = _setting_ref(qemu_conf, f"{proto}_auto_unix_socket")
    if _flag(auto):
        return None, auto_ref, False
    if qemu_conf is None or not qemu_conf.readable:
        return None, _ref(qemu_conf.path if qemu_conf else "qemu.conf", f"{proto}_listen", "(unread)"), True
    s = qemu_conf.setting(f"{proto}_listen")
    assert s is not None
    value = s.value if s.value is not None else _LOCAL_DEFAULT
    return (value if isinstance(value, str) else None), _ref(s.origin, s.key, value), True


def _password(dom: Domain, gfx: Graphics, qemu_conf: ConfigFile | None,
              proto: str) -> tuple[bool | None, ConfigRef]:
    where = _ref(dom.origin, gfx.locator + "/@passwd", gfx.password.value)
    if gfx.password is PasswordState.SET:
        return True, where
    if gfx.password is PasswordState.EMPTY:
        return False, where
    value, ref = _setting_ref(qemu_conf, f"{proto}_password")
    if ref is not None and isinstance(value, str) and "default" not in ref.source:
        return True, _ref(ref.source, ref.locator, "(set)")
    if gfx.password is PasswordState.HIDDEN or ref is None or ref.value == "(unreadable)":
        return None, where
    return False, where


def _port(value: int | None) -> int | None:
    return value if value is not None and 0 < value < 65536 else None


def domain_listeners(dom: Domain, host: Host | None = None,
                     inventory: Inventory | None = None) -> tuple[ExpectedListener, ...]:
    """The TCP listeners of one domain's displays."""
    qemu_conf = host.qemu_conf if host is not None else None
    out: list[ExpectedListener] = []
    for gfx in dom.graphics:
        if gfx.type not in ("vnc", "spice"):
            continue
        address, listen_ref, tcp = _listen_address(dom, gfx, inventory, qemu_conf, gfx.type)
        if not tcp:
            continue
        password, pw_ref = _password(dom, gfx, qemu_conf, gfx.type)
        sasl_value, sasl_ref = _setting_ref(qemu_conf, f"{gfx.type}_sasl")
        tls_value, tls_ref = _setting_ref(qemu_conf, f"{gfx.type}_tls")
        sasl = True if gfx.auth == "sasl" else _flag(sasl_value) if sasl_ref is not None else None
        common = [r for r in (listen_ref, pw_ref, tls_ref, sasl_ref) if r is not None]
        auth = ("sasl" if sasl else "password" if password else
                "none" if password is False and sasl is False else None)
        port_ref = _ref(dom.origin, gfx.locator + "/@port", gfx.port)

        def add(proto: Proto, port: int | None, tls: bool | None, auth: str | None, first: ConfigRef) -> None:
            out.append(ExpectedListener(protocol=proto, port=_port(port), address=address,  # noqa: B023
                                        owner_kind="domain", owner=dom.name, uuid=dom.uuid, tls=tls,
                                        auth=auth, refs=(first, *common)))  # noqa: B023

        if gfx.type == "vnc":
            tls = _flag(tls_value) if tls_ref is not None else None
            add(Proto.VNC, gfx.port, tls, auth, port_ref)
            if gfx.websocket is not None and gfx.websocket != 0:
                add(Proto.VNC_WEBSOCKET, gfx.websocket, tls, auth,
                    _ref(dom.origin, gfx.locator + "/@websocket", gfx.websocket))
        else:
            spice_auth = "sasl" if sasl else "ticket" if password else auth
            if _port(gfx.port) is not None or gfx.autoport:
                add(Proto.SPICE, gfx.port, False, spice_auth, port_ref)
            if gfx.tls_port is not None and gfx.tls_port != 0:
                add(Proto.SPICE_TLS, gfx.tls_port, True, spice_auth,
                    _ref(dom.origin, gfx.locator + "/@tlsPort", gfx.tls_port))
    return tuple(out)


def _int(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _daemon_name(conf: ConfigFile) -> str:
    base = conf.path.rsplit("/", 1)[-1]
    return base[:-5] if base.endswith(".conf") else base


def host_listeners(host: Host, inventory: Inventory | None = None) -> tuple[ExpectedListener, ...]:
    """The host's network listeners: libvirt's TCP/TLS listeners, the migration range, sshd."""
    out: list[ExpectedListener] = []
    units = {u.name: u for u in host.socket_units or ()}
    for conf in host.daemon_confs:
        daemon = _daemon_name(conf)
        if daemon not in ("libvirtd", "virtproxyd") or not conf.readable:
            continue
        addr_value, addr_ref = _setting_ref(conf, "listen_addr")
        address = addr_value if isinstance(addr_value, str) else "0.0.0.0"
        for kind, proto, port_key, auth_key in (("tcp", Proto.LIBVIRT, "tcp_port", "auth_tcp"),
                                                ("tls", Proto.LIBVIRT_TLS, "tls_port", "auth_tls")):
            unit = units.get(f"{daemon}-{kind}.socket")
            listen = conf.setting(f"listen_{kind}")
            condition = None
            refs: list[ConfigRef] = []
            if unit is not None and unit.enabled:
                refs.append(_ref(unit.path or unit.name, "ListenStream", ",".join(unit.listen_streams)))
                ports = [_int(s.rsplit(":", 1)[-1]) for s in unit.listen_streams]
                port = next((p for p in ports if p is not None), None)
                if unit.problem is not None:  # a drop-in that was not read may move it: not predicted
                    port, condition = None, f"its socket unit was not fully read ({unit.problem})"
            elif listen is not None and _flag(listen.value):
                refs.append(_ref(listen.origin, listen.key, listen.value))
                if not listen.explicit and daemon == "libvirtd":
                    condition = "only when libvirtd runs with --listen"
                port_value, port_ref = _setting_ref(conf, port_key)
                port = _int(port_value)
                if port_ref is not None:
                    refs.append(port_ref)
                if addr_ref is not None:
                    refs.append(addr_ref)
            else:
                continue
            auth_value, auth_ref = _setting_ref(conf, auth_key)
            if auth_ref is not None:
                refs.append(auth_ref)
            auth = auth_value if isinstance(auth_value, str) else None
            tls = None
            if proto is Proto.LIBVIRT_TLS:
                tls = True
                verify_value, verify_ref = _setting_ref(conf, "tls_no_verify_certificate")
                if verify_ref is not None:
                    refs.append(verify_ref)
                    if auth == "none" and _flag(verify_value) is False:
                        auth = "x509"
            elif proto is Proto.LIBVIRT:
                tls = False
            out.append(ExpectedListener(protocol=proto, port=port, address=address, owner_kind="daemon",
                                        owner=daemon, tls=tls, auth=auth, condition=condition,
                                        refs=tuple(refs)))
    if host.qemu_conf is not None and host.qemu_conf.readable:
        low, low_ref = _setting_ref(host.qemu_conf, "migration_port_min")
        high, high_ref = _setting_ref(host.qemu_conf, "migration_port_max")
        addr, addr_ref2 = _setting_ref(host.qemu_conf, "migration_address")
        force, force_ref = _setting_ref(host.qemu_conf, "migrate_tls_force")
        lo, hi = _int(low), _int(high)
        if lo is not None and hi is not None and lo <= hi:
            out.append(ExpectedListener(
                protocol=Proto.MIGRATION, port=lo, port_max=hi,
                address=addr if isinstance(addr, str) else None, owner_kind="daemon", owner="qemu",
                tls=True if _flag(force) else None,
                condition="only while a migration is incoming",
                refs=tuple(r for r in (low_ref, high_ref, addr_ref2, force_ref) if r is not None)))
    sshd = inventory.host_os.sshd if inventory is not None and inventory.host_os is not None else None
    if sshd is not None:
        ports = [_int(p) for p in sshd.settings.get("port", ("22",))]
        origin = sshd.origins.get("port", "default")
        password = sshd.value("passwordauthentication")
        ssh_auth = "password" if (password or "yes").lower() == "yes" else "publickey"

        def sshd_refs(port: object) -> tuple[ConfigRef, ...]:
            return (_ref(origin if origin != "default" else "sshd_config (default)", "Port", port),
                    _ref(sshd.origins.get("passwordauthentication", "sshd_config (default)"),
                         "PasswordAuthentication", password))

        if sshd.unread:
            # an Include that was not read may set Port, ListenAddress or PasswordAuthentication
            # (first value wins, Port and ListenAddress add up): nothing read here is a prediction
            more = f" and {len(sshd.unread) - 1} more" if len(sshd.unread) > 1 else ""
            out.append(ExpectedListener(
                protocol=Proto.SSH, port=None, address=None, owner_kind="daemon", owner="sshd",
                condition=f"its configuration was not fully read ({sshd.unread[0]}{more})",
                refs=sshd_refs(",".join(sshd.settings.get("port", ("22",))))))
        else:
            for bound, port in sshd_sockets(sshd.settings.get("listenaddress", ()), ports):
                out.append(ExpectedListener(
                    protocol=Proto.SSH, port=port, address=bound,
                    owner_kind="daemon", owner="sshd", auth=ssh_auth, refs=sshd_refs(port)))
    return tuple(out)


def sshd_sockets(listen: Sequence[str], ports: Sequence[int | None]) -> list[tuple[str | None, int]]:
    """(address, port) pairs sshd binds: each ``ListenAddress`` (``host``, ``host:port``,
    ``[v6]:port``, optionally followed by ``rdomain NAME``) with its own port or else every ``Port``;
    no ListenAddress: every Port on every address (None)."""
    if not listen:
        return [(None, p) for p in ports if p is not None]
    out: list[tuple[str | None, int]] = []
    for entry in listen:
        words = entry.split()
        if not words:
            continue
        value, own = words[0], None
        if value.startswith("["):  # [v6] or [v6]:port
            host, _, rest = value[1:].partition("]")
            own = _int(rest[1:]) if rest.startswith(":") else None
        elif value.count(":") == 1:  # host:port (a bare v6 address has more colons)
            host, _, port_text = value.partition(":")
            own = _int(port_text)
        else:
            host = value
        out += [(host, own)] if own is not None else [(host, p) for p in ports if p is not None]
    # 0.0.0.0 and :: both say "every interface" (sshd's default lists both): one listener per port
    return [(a, p) for a, p in out if not (a == "::" and ("0.0.0.0", p) in out)]


def expected_listeners(inventory: Inventory) -> tuple[ExpectedListener, ...]:
    """Every listener the inventory's configuration predicts."""
    out: list[ExpectedListener] = []
    if inventory.host is not None:
        out += host_listeners(inventory.host, inventory)
    for dom in inventory.domains:
        out += domain_listeners(dom, inventory.host, inventory)
    return tuple(out)


# --- kept in the store: a target's listeners as JSON-able details ----------------------------------

_FIELDS = ("port", "port_max", "address", "tls", "auth", "condition")


def listeners_details(listeners: Iterable[ExpectedListener]) -> list[dict[str, Any]]:
    out = []
    for e in listeners:
        item: dict[str, Any] = {"protocol": e.protocol.value, "owner_kind": e.owner_kind, "owner": e.owner}
        if e.uuid:
            item["uuid"] = e.uuid
        for name in _FIELDS:
            value = getattr(e, name)
            if value is not None:
                item[name] = value
        item["refs"] = [{"source": r.source, "locator": r.locator, "value": r.value} for r in e.refs]
        out.append(item)
    return out


def _opt(item: Mapping[str, Any], key: str, kind: type) -> Any:
    value = item.get(key)
    return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else None


def from_details(details: Sequence[Mapping[str, Any]]) -> Iterator[ExpectedListener]:
    """Listeners back from stored details (entries that do not parse are skipped)."""
    for item in details:
        try:
            proto = Proto(str(item.get("protocol")))
        except ValueError:
            continue
        owner = _opt(item, "owner", str)
        kind = _opt(item, "owner_kind", str)
        if owner is None or kind is None:
            continue
        refs = tuple(ConfigRef(source=str(r.get("source", "")), locator=str(r.get("locator", "")),
                               value=None if r.get("value") is None else str(r.get("value")))
                     for r in item.get("refs") or () if isinstance(r, Mapping))
        yield ExpectedListener(
            protocol=proto, port=_opt(item, "port", int), port_max=_opt(item, "port_max", int),
            address=_opt(item, "address", str), owner_kind=kind, owner=owner, uuid=_opt(item, "uuid", str),
            tls=_opt(item, "tls", bool), auth=_opt(item, "auth", str), condition=_opt(item, "condition", str),
            refs=refs)
