"""Domain XML → :class:`vmsec.facts.Domain`.

One pass over the tree with plain child iteration (no XPath engine, no regexes): this parser runs
for every domain of every scan and the corpus has thousands of files. Attributes the XML omits stay
``None``; values that do not parse (a port that is not a number) become ``None``, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import Element

from vmsec.errors import ReadError
from vmsec.facts import (
    BackingStore,
    Chardev,
    Controller,
    CpuConfig,
    CpuFeature,
    Disk,
    DiskEncryption,
    Domain,
    Filesystem,
    FirmwareConfig,
    Graphics,
    Hostdev,
    Interface,
    LaunchSecurity,
    Listen,
    MemoryConfig,
    PasswordState,
    QemuPassthrough,
    Redirdev,
    RedirFilterRule,
    Rng,
    SecLabel,
    Shmem,
    SimpleDevice,
    Tpm,
)
from vmsec.parsers.safexml import ascii_compatible, parse_xml

QEMU_NS = "{http://libvirt.org/schemas/domain/qemu/1.0}"
LIBOSINFO_NS = "{http://libosinfo.org/xmlns/libvirt/domain/1.0}"
MAX_BACKING_DEPTH = 64

_TRUE = frozenset({"yes", "on", "true", "1"})
_FALSE = frozenset({"no", "off", "false", "0"})

# cputune children that limit CPU time (pinning alone is not a limit).
_CPUTUNE_LIMITS = frozenset({
    "shares", "period", "quota", "global_period", "global_quota", "emulator_period", "emulator_quota",
    "iothread_period", "iothread_quota",
})

_CHARDEV_ELEMENTS = frozenset({"serial", "console", "channel", "parallel"})
# Children libvirt reads every time (the others: the first of each name, see _first_children).
_PLURAL_GRAPHICS = frozenset({"listen", "channel"})
_PLURAL_CPU = frozenset({"feature", "numa", "cache"})
_PLURAL_SOURCE = frozenset({"host", "seclabel"})  # a disk source's hosts; one seclabel per model
_PLURAL_CHARDEV = frozenset({"source"})  # udp: a bind and a connect source
# Top-level elements libvirt reads once: a second <name>, <os>, <memory>, <cpu> … is nothing to it.
_SINGULAR_SECTIONS = frozenset({"name", "uuid", "vcpu", "os", "features", "cpu", "memory", "memoryBacking",
                                "memtune", "cputune", "blkiotune", "on_crash", "launchSecurity", "metadata"})


# --- small value helpers -------------------------------------------------------------------------

def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    digits = text[1:] if text[:1] in ("-", "+") else text
    if digits.isascii() and digits.isdigit():
        return int(text)
    return None


def _hex(value: str | None) -> int | None:
    """libvirt reads policy words as hexadecimal with or without ``0x``."""
    if value is None:
        return None
    text = value.strip().lower()
    digits = text[2:] if text.startswith("0x") else text
    if not digits or not digits.isascii() or not all(c in "0123456789abcdef" for c in digits):
        return None
    return int(digits, 16)


def _c_int(value: str | None) -> int | None:
    """An integer as C's strtol(…, 0) reads it: ``0x`` hex, leading ``0`` octal, else decimal."""
    if value is None:
        return None
    text = value.strip().lower()
    if not text.isascii() or "_" in text:
        return None
    try:
        if text.startswith("0x"):
            return int(text[2:], 16)
        if len(text) > 1 and text.startswith("0"):
            return int(text[1:], 8)
        return int(text, 10)
    except ValueError:
        return None


def _text(el: Element | None) -> str | None:
    """The element's text as libvirt reads it (XPath ``string()``: every descendant's text, so a child
    element cannot cut ``<label><x/>+0:+0</label>`` short)."""
    if el is None:
        return None
    text = (el.text or "") if len(el) == 0 else "".join(el.itertext())
    return text.strip() or None


def _first_children(el: Element, plural: frozenset[str] = frozenset()) -> Iterator[Element]:
    """The children of ``el`` libvirt reads: a child it reads once (``virXPathNode``, ``./x[1]``) is
    the *first* of its name in document order — a second ``<source>`` or ``<label>`` is nothing to
    it —, a child in ``plural`` (``<listen>``, ``<feature>``) every time."""
    seen: set[str] = set()
    for child in el:
        tag = child.tag
        if tag in seen and tag not in plural:
            continue
        seen.add(tag)
        yield child


# A prefixed attribute: libxml2's xmlGetProp, which libvirt uses, ignores namespaces — x:listen='0.0.0.0'
# is @listen to libvirt — and takes the first in document order; ElementTree keeps it apart as
# '{urn}listen'. A prefix must be declared (xmlns:x) or be xml: — expat refuses an unbound prefix —, so
# a UTF-8 document without either has none, and only documents that may have one are rewritten.
def parse_as_libvirt(data: bytes | str | Element, origin: str) -> Element:
    """A libvirt XML document's root with attributes by local name, as libvirt reads them."""
    if isinstance(data, Element):
        _unqualify_attributes(data)
        return data
    root = parse_xml(data, origin)
    if isinstance(data, str):  # text already: no encoding to doubt, and no need to encode it again
        possible = "xmlns:" in data or "xml:" in data
    else:
        possible = not ascii_compatible(data) or b"xmlns:" in data or b"xml:" in data
    if possible:
        _unqualify_attributes(root)
    return root


def _unqualify_attributes(root: Element) -> None:
    for el in root.iter():
        attrib = el.attrib
        if any(key[0] == "{" for key in attrib):
            plain: dict[str, str] = {}
            for key, value in attrib.items():  # document order
                plain.setdefault(key.rsplit("}", 1)[-1], value)
            attrib.clear()
            attrib.update(plain)


def _pci_address(el: Element | None) -> str | None:
    """``<address domain= bus= slot= function=>`` → ``0000:06:12.5``; raw text if it is odd."""
    if el is None:
        return None
    raw = (el.get("domain"), el.get("bus"), el.get("slot"), el.get("function"))
    if all(v is None for v in raw):
        return None
    dom, bus, slot, func = (_c_int(v) if v is not None else 0 for v in raw)
    if dom is None or bus is None or slot is None or func is None:
        return ":".join(v or "?" for v in raw)
    return f"{dom:04x}:{bus:02x}:{slot:02x}.{func:x}"


def _usb_id(value: str | None) -> str | None:
    number = _c_int(value)
    if number is None:
        return value
    return f"{number:04x}"


def _host_text(el: Element) -> str | None:
    socket = el.get("socket")
    if socket:
        return socket
    name = el.get("name")
    if not name:
        return None
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    port = el.get("port")
    return f"{name}:{port}" if port else name


def _extra(el: Element, *names: str) -> tuple[tuple[str, str], ...]:
    found = []
    for name in names:
        value = el.get(name)
        if value is not None:
            found.append((name, value))
    return tuple(found)


# --- devices -------------------------------------------------------------------------------------

def _encryption(el: Element, placement: str) -> DiskEncryption:
    secret_uuid = secret_usage = None
    for child in el:
        if child.tag == "secret":
            secret_uuid = child.get("uuid")
            secret_usage = child.get("usage")
            break
    return DiskEncryption(format=el.get("format"), engine=el.get("engine"), secret_uuid=secret_uuid,
                          secret_usage=secret_usage, placement=placement)


def _store_source(src: Element | None) -> str | None:
    if src is None:
        return None
    for attr in ("file", "dev", "dir"):
        value = src.get(attr)
        if value:
            return value
    protocol = src.get("protocol")
    if protocol:
        return f"{protocol}:{src.get('name') or ''}"
    pool = src.get("pool")
    if pool:
        return f"{pool}/{src.get('volume') or ''}"
    return None


def _backing_chain(el: Element | None) -> tuple[BackingStore, ...] | None:
    """Follow nested <backingStore> elements; an empty one terminates the chain explicitly."""
    if el is None:
        return None
    chain: list[BackingStore] = []
    current: Element | None = el
    while current is not None and len(chain) < MAX_BACKING_DEPTH:
        src = fmt = nested = None
        for child in _first_children(current):
            tag = child.tag
            if tag == "source":
                src = child
            elif tag == "format":
                fmt = child
            elif tag == "backingStore":
                nested = child
        btype = current.get("type")
        if src is None and fmt is None and btype is None and nested is None:
            chain.append(BackingStore(type=None, format=None, source=None, terminated=True))
            break
        chain.append(BackingStore(type=btype, format=fmt.get("type") if fmt is not None else None,
                                  source=_store_source(src)))
        current = nested
    return tuple(chain)


def _disk(el: Element, locator: str) -> tuple[Disk, bool]:
    """Returns the disk and whether it carries an <iotune> with settings."""
    src: Element | None = None
    backing: Element | None = None
    driver_name = driver_type = target_dev = target_bus = None
    readonly = shareable = transient = auth = iotune = False
    encryption: DiskEncryption | None = None
    for child in _first_children(el):
        tag = child.tag
        if tag == "source":
            if src is None:
                src = child
        elif tag == "driver":
            driver_name = child.get("name")
            driver_type = child.get("type")
        elif tag == "target":
            target_dev = child.get("dev")
            target_bus = child.get("bus")
        elif tag == "readonly":
            readonly = True
        elif tag == "shareable":
            shareable = True
        elif tag == "transient":
            transient = True
        elif tag == "encryption":
            if encryption is None:
                encryption = _encryption(child, "disk")
        elif tag == "auth":
            auth = True
        elif tag == "backingStore":
            backing = child
        elif tag == "iotune":
            iotune = any(_text(limit) for limit in child)  # an empty <iotune> or <foo/> limits nothing

    source_file = source_dev = source_dir = protocol = name = pool = volume = None
    hosts: list[str] = []
    tls = relabel = None
    if src is not None:
        source_file = src.get("file")
        source_dev = src.get("dev")
        source_dir = src.get("dir")
        protocol = src.get("protocol")
        name = src.get("name")
        pool = src.get("pool")
        volume = src.get("volume")
        tls = _bool(src.get("tls"))
        path = src.get("path")  # vhostuser socket
        if path:
            hosts.append(path)
        for child in _first_children(src, _PLURAL_SOURCE):
            tag = child.tag
            if tag == "host":
                host = _host_text(child)
                if host:
                    hosts.append(host)
            elif tag == "encryption":
                # The <source> placement is the current one; it wins over a disk-level element.
                encryption = _encryption(child, "source")
            elif tag == "auth":
                auth = True
            elif tag == "seclabel":
                # One relabel='no' among several per-model labels is what matters.
                value = _bool(child.get("relabel"))
                if value is None and _bool(child.get("labelskip")):
                    value = False  # labelskip='yes': libvirt did not relabel this image
                if value is False:
                    relabel = False
                elif value is True and relabel is None:
                    relabel = True
            elif tag == "address" and source_dev is None:  # nvme: a host PCI controller
                source_dev = _pci_address(child)
    disk = Disk(
        locator=locator, type=el.get("type"), device=el.get("device") or "disk",
        source_file=source_file, source_dev=source_dev, source_dir=source_dir, source_protocol=protocol,
        source_name=name, source_pool=pool, source_volume=volume, source_hosts=tuple(hosts),
        source_tls=tls, auth=auth, driver_name=driver_name, driver_type=driver_type,
        target_dev=target_dev, target_bus=target_bus, readonly=readonly, shareable=shareable,
        transient=transient, encryption=encryption, rawio=_bool(el.get("rawio")), sgio=el.get("sgio"),
        backing_chain=_backing_chain(backing), relabel=relabel,
    )
    return disk, iotune


def _graphics(el: Element, locator: str, secure: bool) -> Graphics:
    passwd = el.get("passwd")
    if passwd is not None:
        password = PasswordState.SET if passwd else PasswordState.EMPTY
    else:
        password = PasswordState.ABSENT if secure else PasswordState.HIDDEN
    listens: list[Listen] = []
    channels: list[tuple[str, str]] = []
    filetransfer = copypaste = None
    for child in _first_children(el, _PLURAL_GRAPHICS):
        tag = child.tag
        if tag == "listen":
            ltype = child.get("type") or ""
            # A network listen takes its address from the network: libvirt drops an @address written
            # beside it from the inactive XML, so the tenant's address says nothing.
            listens.append(Listen(type=ltype, address=child.get("address") if ltype != "network" else None,
                                  network=child.get("network"), socket=child.get("socket")))
        elif tag == "channel":
            cname, cmode = child.get("name"), child.get("mode")
            if cname and cmode:
                channels.append((cname, cmode))
        elif tag == "filetransfer":
            filetransfer = _bool(child.get("enable"))
        elif tag == "clipboard":
            copypaste = _bool(child.get("copypaste"))
    listen_attr = el.get("listen")
    if listen_attr and listens and listens[0].type == "address" and listens[0].address is None:
        # libvirt copies @listen into the first address listen that names none.
        listens[0] = Listen(type="address", address=listen_attr)
    socket = el.get("socket")
    if socket and not any(item.type == "socket" for item in listens):
        # Legacy @socket: libvirt turns it into a socket listen, as it does here.
        listens.append(Listen(type="socket", socket=socket))
    return Graphics(
        locator=locator, type=el.get("type") or "", listens=tuple(listens),
        # D-Bus displays name their bus in @address (libvirt's dbus graphics have no @listen).
        listen_attr=el.get("listen") if el.get("type") != "dbus" else el.get("address"),
        port=_int(el.get("port")), autoport=_bool(el.get("autoport")), tls_port=_int(el.get("tlsPort")),
        websocket=_int(el.get("websocket")), password=password, passwd_valid_to=el.get("passwdValidTo"),
        default_mode=el.get("defaultMode"), channel_modes=tuple(channels), filetransfer=filetransfer,
        # No @auth: libvirt has no such attribute (it drops it); SASL is qemu.conf's vnc_sasl/spice_sasl.
        copypaste=copypaste, auth=None, p2p=_bool(el.get("p2p")),
    )


def _interface(el: Element, locator: str) -> Interface:
    mac = model = network = bridge = dev = mode = filterref = None
    port_isolated = backend = script = downscript = virtualport = hostdev_address = None
    params: list[tuple[str, str]] = []
    for child in _first_children(el):
        tag = child.tag
        if tag == "source":
            network = child.get("network")
            bridge = child.get("bridge")
            dev = child.get("dev")
            mode = child.get("mode")
            for sub in child:
                if sub.tag == "address":
                    hostdev_address = _pci_address(sub)
        elif tag == "mac":
            mac = child.get("address")
        elif tag == "model":
            model = child.get("type")
        elif tag == "filterref":
            filterref = child.get("filter")
            for sub in child:
                if sub.tag == "parameter":
                    pname, pvalue = sub.get("name"), sub.get("value")
                    if pname is not None:
                        params.append((pname, pvalue or ""))
        elif tag == "port":
            port_isolated = _bool(child.get("isolated"))
        elif tag == "backend":
            backend = child.get("type")
        elif tag == "script":
            script = child.get("path")
        elif tag == "downscript":
            downscript = child.get("path")
        elif tag == "virtualport":
            virtualport = child.get("type")
    return Interface(
        locator=locator, type=el.get("type") or "", mac=mac, model=model, source_network=network,
        source_bridge=bridge, source_dev=dev, source_mode=mode, filterref=filterref,
        filter_params=tuple(params), trust_guest_rx_filters=_bool(el.get("trustGuestRxFilters")),
        port_isolated=port_isolated, backend_type=backend, script=script, downscript=downscript,
        virtualport_type=virtualport, hostdev_address=hostdev_address,
    )


def _hostdev_address(htype: str, src: Element | None) -> str | None:
    if src is None:
        return None
    if htype == "pci":
        for child in _first_children(src):
            if child.tag == "address":
                return _pci_address(child)
        return None
    vendor = product = address = adapter = text = None
    for child in _first_children(src):
        tag = child.tag
        if tag == "vendor":
            vendor = _usb_id(child.get("id"))
        elif tag == "product":
            product = _usb_id(child.get("id"))
        elif tag == "address":
            address = child
        elif tag == "adapter":
            adapter = child.get("name")
        elif tag in ("block", "char", "interface"):  # capabilities mode: storage | misc | net
            text = _text(child)
    if htype == "usb":
        parts = []
        if vendor or product:
            parts.append(f"{vendor or '?'}:{product or '?'}")
        if address is not None:
            parts.append(f"bus {address.get('bus')} device {address.get('device')}")
        return " ".join(parts) or None
    if htype == "scsi":
        protocol = src.get("protocol")
        if protocol:
            return f"{protocol}:{src.get('name') or ''}"
        if address is not None:
            return (f"{adapter or '?'} bus {address.get('bus')} target {address.get('target')} "
                    f"unit {address.get('unit')}")
        return adapter
    if htype == "scsi_host":
        return src.get("wwpn")
    if htype == "mdev":
        return address.get("uuid") if address is not None else None
    return text


def _hostdev(el: Element, locator: str) -> Hostdev:
    htype = el.get("type") or ""
    src: Element | None = None
    driver = rom_file = None
    rom_bar = rom_enabled = None
    readonly = False
    for child in _first_children(el):
        tag = child.tag
        if tag == "source":
            src = child
        elif tag == "driver":
            driver = child.get("name")
        elif tag == "rom":
            rom_file = child.get("file")
            rom_bar = _bool(child.get("bar"))
            rom_enabled = _bool(child.get("enabled"))
        elif tag == "readonly":
            readonly = True
    return Hostdev(
        locator=locator, mode=el.get("mode") or "subsystem", type=htype, managed=_bool(el.get("managed")),
        driver=driver, address=_hostdev_address(htype, src), rom_file=rom_file, rom_bar=rom_bar,
        rom_enabled=rom_enabled, readonly=readonly, sgio=el.get("sgio"), rawio=_bool(el.get("rawio")),
    )


def _chardev(el: Element, element: str, locator: str) -> Chardev:
    source: Element | None = None
    protocol = target_type = target_name = None
    for child in _first_children(el, _PLURAL_CHARDEV):
        tag = child.tag
        if tag == "source":
            # udp has a bind and a connect source: the listening one is the exposure.
            if source is None or child.get("mode") == "bind":
                source = child
        elif tag == "protocol":
            protocol = child.get("type")
        elif tag == "target":
            target_type = child.get("type")
            target_name = child.get("name")
    mode = host = service = path = tls = None
    if source is not None:
        mode = source.get("mode")
        host = source.get("host")
        service = source.get("service")
        path = source.get("path")
        tls = _bool(source.get("tls"))
    return Chardev(
        locator=locator, element=element, type=el.get("type") or "pty", source_mode=mode,
        source_host=host, source_service=service, source_path=path, tls=tls, protocol=protocol,
        target_type=target_type, target_name=target_name,
    )


def _filesystem(el: Element, locator: str) -> Filesystem:
    driver_type = source_dir = source_name = source_socket = target_dir = binary_path = None
    readonly = idmap = False
    for child in _first_children(el):
        tag = child.tag
        if tag == "source":
            source_dir = child.get("dir") or child.get("file") or child.get("dev")
            source_name = child.get("name")
            source_socket = child.get("socket")  # an externally started virtiofsd
        elif tag == "target":
            target_dir = child.get("dir")
        elif tag == "driver":
            driver_type = child.get("type")
        elif tag == "readonly":
            readonly = True
        elif tag == "binary":
            binary_path = child.get("path")
        elif tag == "idmap":
            idmap = idmap or any(m.tag in ("uid", "gid") for m in child)  # <idmap/> maps nothing
    return Filesystem(
        locator=locator, type=el.get("type") or "mount", accessmode=el.get("accessmode"),
        driver_type=driver_type, source_dir=source_dir, source_name=source_name, target_dir=target_dir,
        readonly=readonly, binary_path=binary_path, idmap=idmap, source_socket=source_socket,
    )


def _tpm(el: Element, locator: str) -> Tpm:
    backend_type = ""
    version = secret = path = None
    for child in _first_children(el):
        if child.tag != "backend":
            continue
        backend_type = child.get("type") or ""
        version = child.get("version")
        for sub in child:
            tag = sub.tag
            if tag == "encryption":
                secret = sub.get("secret")
            elif tag in ("device", "source"):
                path = sub.get("path")
        break
    return Tpm(locator=locator, model=el.get("model"), backend_type=backend_type, version=version,
               encryption_secret=secret, device_path=path)


def _rng(el: Element, locator: str) -> Rng:
    backend_model = backend_type = source = None
    for child in _first_children(el):
        if child.tag != "backend":
            continue
        backend_model = child.get("model")
        backend_type = child.get("type")
        source = _text(child)
        for sub in child:
            if sub.tag == "source":
                source = sub.get("path") or (
                    f"{sub.get('host') or ''}:{sub.get('service') or ''}" if sub.get("service") else None)
                break
        break
    return Rng(locator=locator, model=el.get("model"), backend_model=backend_model,
               backend_type=backend_type, source=source)


def _shmem(el: Element, locator: str) -> Shmem:
    model = server = size = None
    for child in _first_children(el):
        tag = child.tag
        if tag == "model":
            model = child.get("type")
        elif tag == "server":
            server = child.get("path")
        elif tag == "size":
            value = _text(child)
            unit = child.get("unit")
            size = f"{value} {unit}" if value and unit else value
    return Shmem(locator=locator, name=el.get("name") or "", model=model, server_path=server, size=size)


def _simple(el: Element, tag: str, locator: str) -> SimpleDevice:
    model = el.get("model")
    dtype = el.get("type")
    extra: tuple[tuple[str, str], ...] = ()
    if tag == "video":
        for child in _first_children(el):
            if child.tag == "model":
                model = child.get("type")
                break
    elif tag == "smartcard":
        dtype = el.get("mode")
        extra = _extra(el, "type")
    elif tag == "memballoon":
        extra = _extra(el, "autodeflate", "freePageReporting")
    elif tag == "iommu":
        for child in _first_children(el):
            if child.tag == "driver":
                extra = _extra(child, "intremap", "caching_mode", "eim", "iotlb", "aw_bits")
                break
    elif tag == "vsock":
        for child in _first_children(el):
            if child.tag == "cid":
                extra = _extra(child, "auto", "address")
                break
    elif tag == "memory":
        extra = _extra(el, "access", "discard")
    elif tag == "input":
        for child in _first_children(el):
            if child.tag == "source":
                extra = _extra(child, "evdev", "dev")
                break
    return SimpleDevice(locator=locator, element=tag, model=model, type=dtype, bus=el.get("bus"),
                        action=el.get("action") if tag == "watchdog" else None, extra=extra)


_SIMPLE_DEVICES = frozenset({
    "video", "sound", "input", "hub", "smartcard", "watchdog", "memballoon", "vsock", "panic", "iommu",
    "audio", "crypto", "memory",
})


# --- domain-level sections -----------------------------------------------------------------------

def _seclabel(el: Element, locator: str) -> SecLabel:
    label = baselabel = imagelabel = None
    for child in _first_children(el):
        tag = child.tag
        if tag == "label":
            label = _text(child)
        elif tag == "baselabel":
            baselabel = _text(child)
        elif tag == "imagelabel":
            imagelabel = _text(child)
    return SecLabel(locator=locator, type=el.get("type"), model=el.get("model"),
                    relabel=_bool(el.get("relabel")), label=label, baselabel=baselabel,
                    imagelabel=imagelabel, labelskip=_bool(el.get("labelskip")))


def _cpu(el: Element) -> CpuConfig:
    model = None
    features: list[CpuFeature] = []
    for child in _first_children(el, _PLURAL_CPU):
        tag = child.tag
        if tag == "model":
            model = _text(child)
        elif tag == "feature":
            fname = child.get("name")
            if fname:
                features.append(CpuFeature(name=fname, policy=child.get("policy")))
    return CpuConfig(mode=el.get("mode"), model=model, features=tuple(features))


def _qemu_commandline(el: Element, args: list[str], env: list[str]) -> None:
    for child in el:
        tag = child.tag
        if tag == QEMU_NS + "arg":
            value = child.get("value")
            if value is not None:
                args.append(value)
        elif tag == QEMU_NS + "env":
            name = child.get("name")
            if name:
                value = child.get("value")
                env.append(name if value is None else f"{name}={value}")


def parse_domain(data: bytes | str | Element, origin: str, *, secure: bool = True) -> Domain:
    """Parse one domain XML document into a :class:`Domain`.

    ``secure`` says whether the XML was produced so that it would show passwords (an on-disk config
    file, or ``VIR_DOMAIN_XML_SECURE``); without it an absent ``passwd`` is HIDDEN, not ABSENT.
    Raises :class:`vmsec.errors.ReadError` (or its subclass XmlError) naming ``origin``.
    """
    return domain_from_root(parse_as_libvirt(data, origin), origin, secure=secure)


def domain_from_root(root: Element, origin: str, *, secure: bool = True) -> Domain:
    """:func:`parse_domain` of a root :func:`parse_as_libvirt` returned (its attributes already by
    local name: a second pass over every element would find nothing to rewrite)."""
    if root.tag != "domain":
        raise ReadError(origin, f"not a domain document (root element <{root.tag}>)")

    name: str | None = None
    uuid = arch = machine = os_type = emulator = on_crash = libosinfo_id = None
    vcpus: int | None = None
    fw_firmware = loader = loader_type = nvram = nvram_type = kernel = initrd = dtb = None
    loader_secure = secure_boot = enrolled_keys = smm = None
    cpu: CpuConfig | None = None
    dump_core = None
    nosharepages = locked = hugepages = hard_limit = False
    mem_source = mem_access = None
    seclabels: list[SecLabel] = []
    launch: LaunchSecurity | None = None
    q_args: list[str] = []
    q_env: list[str] = []
    q_caps: list[str] = []
    q_override = False
    q_deprecation: str | None = None
    q_seen = False
    cputune_limits = blkiotune = disk_iotune = False

    graphics: list[Graphics] = []
    disks: list[Disk] = []
    controllers: list[Controller] = []
    interfaces: list[Interface] = []
    hostdevs: list[Hostdev] = []
    redirdevs: list[Redirdev] = []
    redirfilter: list[RedirFilterRule] | None = None
    filesystems: list[Filesystem] = []
    chardevs: list[Chardev] = []
    tpms: list[Tpm] = []
    rngs: list[Rng] = []
    shmems: list[Shmem] = []
    simple: list[SimpleDevice] = []

    seen_sections: set[str] = set()
    for section in root:
        tag = section.tag  # the default TreeBuilder drops comments and PIs
        if tag in _SINGULAR_SECTIONS:
            if tag in seen_sections:
                continue  # libvirt reads the first
            seen_sections.add(tag)
        if tag == "devices":
            counts: dict[str, int] = {}
            for dev in section:
                dtag = dev.tag
                n = counts[dtag] = counts.get(dtag, 0) + 1
                loc = f"devices/{dtag}[{n}]"
                if dtag == "disk":
                    disk, iotune = _disk(dev, loc)
                    disks.append(disk)
                    disk_iotune = disk_iotune or iotune
                elif dtag == "interface":
                    interfaces.append(_interface(dev, loc))
                elif dtag == "graphics":
                    graphics.append(_graphics(dev, loc, secure))
                elif dtag == "controller":
                    controllers.append(Controller(locator=loc, type=dev.get("type") or "",
                                                  model=dev.get("model"), index=dev.get("index")))
                elif dtag in _CHARDEV_ELEMENTS:
                    chardevs.append(_chardev(dev, dtag, loc))
                elif dtag in _SIMPLE_DEVICES:
                    simple.append(_simple(dev, dtag, loc))
                elif dtag == "hostdev":
                    hostdevs.append(_hostdev(dev, loc))
                elif dtag == "emulator":
                    if emulator is None:  # libvirt reads the first
                        emulator = _text(dev)
                elif dtag == "filesystem":
                    filesystems.append(_filesystem(dev, loc))
                elif dtag == "redirdev":
                    host = port = None
                    for child in dev:
                        if child.tag == "source":
                            host, port = child.get("host"), child.get("service")
                            break
                    redirdevs.append(Redirdev(locator=loc, bus=dev.get("bus") or "usb",
                                              type=dev.get("type") or "", host=host, port=port))
                elif dtag == "redirfilter":
                    redirfilter = redirfilter if redirfilter is not None else []
                    for child in dev:
                        if child.tag == "usbdev":
                            redirfilter.append(RedirFilterRule(
                                allow=_bool(child.get("allow")) is True, usb_class=child.get("class"),
                                vendor=child.get("vendor"), product=child.get("product"),
                                version=child.get("version")))
                elif dtag == "tpm":
                    tpms.append(_tpm(dev, loc))
                elif dtag == "rng":
                    rngs.append(_rng(dev, loc))
                elif dtag == "shmem":
                    shmems.append(_shmem(dev, loc))
        elif tag == "name":
            name = _text(section)
        elif tag == "uuid":
            uuid = _text(section)
        elif tag == "vcpu":
            vcpus = _int(_text(section))
        elif tag == "os":
            fw_firmware = section.get("firmware")
            for child in _first_children(section):
                ctag = child.tag
                if ctag == "type":
                    arch = child.get("arch")
                    machine = child.get("machine")
                    os_type = _text(child)
                elif ctag == "loader":
                    loader = _text(child)
                    loader_type = child.get("type")
                    loader_secure = _bool(child.get("secure"))
                elif ctag == "nvram":
                    nvram = _text(child)
                    nvram_type = child.get("type")
                    if nvram is None:  # network/file-backed NVRAM (libvirt ≥ 8.5)
                        for sub in child:
                            if sub.tag == "source":
                                nvram = _store_source(sub)
                                break
                elif ctag == "kernel":
                    kernel = _text(child)
                elif ctag == "initrd":
                    initrd = _text(child)
                elif ctag == "dtb":
                    dtb = _text(child)
                elif ctag == "firmware":
                    for feature in child:
                        if feature.tag == "feature":
                            fname = feature.get("name")
                            if fname == "secure-boot":
                                secure_boot = _bool(feature.get("enabled"))
                            elif fname == "enrolled-keys":
                                enrolled_keys = _bool(feature.get("enabled"))
        elif tag == "features":
            for child in _first_children(section):
                if child.tag == "smm":
                    # <smm/> with no state means on, as libvirt reads it.
                    state = child.get("state")
                    smm = True if state is None else _bool(state)
        elif tag == "cpu":
            cpu = _cpu(section)
        elif tag == "memory":
            dump_core = _bool(section.get("dumpCore"))
        elif tag == "memoryBacking":
            for child in _first_children(section):
                ctag = child.tag
                if ctag == "nosharepages":
                    nosharepages = True
                elif ctag == "locked":
                    locked = True
                elif ctag == "hugepages":
                    hugepages = True
                elif ctag == "source":
                    mem_source = child.get("type")
                elif ctag == "access":
                    mem_access = child.get("mode")
        elif tag == "memtune":
            hard_limit = any(child.tag == "hard_limit" for child in section)
        elif tag == "cputune":
            cputune_limits = any(child.tag in _CPUTUNE_LIMITS and _text(child) for child in section)
        elif tag == "blkiotune":
            # a setting, not an empty element: <blkiotune><x/></blkiotune> limits nothing
            blkiotune = any(_text(child) or len(child) > 0 for child in section)
        elif tag == "seclabel":
            seclabels.append(_seclabel(section, f"seclabel[{len(seclabels) + 1}]"))
        elif tag == "on_crash":
            on_crash = _text(section)
        elif tag == "launchSecurity":
            policy_text = None
            for child in section:
                if child.tag == "policy":
                    policy_text = _text(child)
                    break
            launch = LaunchSecurity(type=section.get("type") or "", policy=_hex(policy_text),
                                    policy_text=policy_text)
        elif tag == "metadata":
            for child in section:
                if child.tag == LIBOSINFO_NS + "libosinfo":
                    for sub in child:
                        if sub.tag == LIBOSINFO_NS + "os":
                            libosinfo_id = sub.get("id")
                            break
        elif isinstance(tag, str) and tag.startswith(QEMU_NS):  # a comment's tag is a function
            q_seen = True
            local = tag[len(QEMU_NS):]
            if local == "commandline":
                _qemu_commandline(section, q_args, q_env)
            elif local == "capabilities":
                for child in section:
                    cap = child.get("capability")
                    if cap is None:
                        continue
                    if child.tag == QEMU_NS + "add":
                        q_caps.append("+" + cap)
                    elif child.tag == QEMU_NS + "del":
                        q_caps.append("-" + cap)
            elif local == "override":
                q_override = True
            elif local == "deprecation":
                q_deprecation = section.get("behavior") or ""

    if not name:
        raise ReadError(origin, "domain has no <name>")

    qemu = None
    if q_seen:
        qemu = QemuPassthrough(args=tuple(q_args), env=tuple(q_env), capabilities=tuple(q_caps),
                               override=q_override, deprecation=q_deprecation)
    return Domain(
        name=name, origin=origin, uuid=uuid, virt_type=root.get("type"), secure_xml=secure,
        arch=arch, machine=machine, os_type=os_type, emulator=emulator, vcpus=vcpus, on_crash=on_crash,
        libosinfo_id=libosinfo_id,
        firmware=FirmwareConfig(firmware=fw_firmware, loader=loader, loader_type=loader_type,
                                loader_secure=loader_secure, nvram=nvram, nvram_type=nvram_type,
                                secure_boot=secure_boot,
                                enrolled_keys=enrolled_keys, kernel=kernel, initrd=initrd, dtb=dtb,
                                smm=smm),
        cpu=cpu,
        memory=MemoryConfig(dump_core=dump_core, nosharepages=nosharepages, locked=locked,
                            hugepages=hugepages, source_type=mem_source, access_mode=mem_access,
                            hard_limit=hard_limit),
        seclabels=tuple(seclabels), launch_security=launch, qemu=qemu,
        graphics=tuple(graphics), disks=tuple(disks), controllers=tuple(controllers),
        interfaces=tuple(interfaces), hostdevs=tuple(hostdevs), redirdevs=tuple(redirdevs),
        redirfilter=tuple(redirfilter) if redirfilter is not None else None,
        filesystems=tuple(filesystems), chardevs=tuple(chardevs), tpms=tuple(tpms), rngs=tuple(rngs),
        shmems=tuple(shmems), devices=tuple(simple), has_cputune_limits=cputune_limits,
        has_blkiotune=blkiotune, has_disk_iotune=disk_iotune,
    )
