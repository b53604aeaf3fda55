"""parse_domain against real files of libvirt's own test corpus (qemuxml2argvdata)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datapaths import LIBVIRT_CORPUS as CORPUS
from vmsec.errors import ReadError
from vmsec.facts import (
    BackingStore,
    Chardev,
    CpuFeature,
    DiskEncryption,
    Domain,
    Listen,
    PasswordState,
    QemuPassthrough,
    RedirFilterRule,
    SecLabel,
    Tpm,
)
from vmsec.parsers.domain_xml import parse_domain
from vmsec.parsers.safexml import XmlError

ARGV = CORPUS / "qemuxml2argvdata"


@cache
def dom(name: str, secure: bool = True) -> Domain:
    path = ARGV / f"{name}.xml" if "/" not in name else CORPUS / name
    return parse_domain(path.read_bytes(), str(path), secure=secure)


# (file, what is looked at, how, expected)
TABLE: list[tuple[str, str, Callable[[Domain], Any], Any]] = [
    # consoles
    ("graphics-vnc-tls", "vnc type", lambda d: d.graphics[0].type, "vnc"),
    ("graphics-vnc-tls", "locator", lambda d: d.graphics[0].locator, "devices/graphics[1]"),
    ("graphics-vnc-tls", "port", lambda d: (d.graphics[0].port, d.graphics[0].autoport), (5903, False)),
    ("graphics-vnc-tls", "legacy @listen", lambda d: d.graphics[0].listen_attr, "127.0.0.1"),
    ("graphics-vnc-tls", "listens", lambda d: d.graphics[0].listens,
     (Listen(type="address", address="127.0.0.1"),)),
    ("graphics-vnc-tls", "no passwd, secure XML", lambda d: d.graphics[0].password, PasswordState.ABSENT),
    ("graphics-vnc-websocket", "websocket", lambda d: d.graphics[0].websocket, 5700),
    ("graphics-vnc-socket", "@socket becomes a socket listen", lambda d: d.graphics[0].listens,
     (Listen(type="socket", socket="/tmp/vnc.sock"),)),
    ("graphics-spice", "spice tls port", lambda d: d.graphics[0].tls_port, 5904),
    ("graphics-spice", "defaultMode", lambda d: d.graphics[0].default_mode, "secure"),
    ("graphics-spice", "channel modes", lambda d: d.graphics[0].channel_modes,
     (("main", "secure"), ("inputs", "insecure"))),
    ("graphics-spice", "filetransfer", lambda d: d.graphics[0].filetransfer, False),
    ("graphics-spice", "copypaste", lambda d: d.graphics[0].copypaste, False),
    ("graphics-spice", "second video", lambda d: d.devices_of("video")[1].locator, "devices/video[2]"),
    ("graphics-spice", "video model", lambda d: d.devices_of("video")[1].model, "qxl"),
    ("graphics-spice-agent-file-xfer", "filetransfer", lambda d: d.graphics[0].filetransfer, False),
    ("graphics-spice-timeout", "passwd set", lambda d: d.graphics[0].password, PasswordState.SET),
    ("graphics-spice-timeout", "passwdValidTo", lambda d: d.graphics[0].passwd_valid_to,
     "2011-05-31T16:11:22"),
    ("graphics-spice-no-args", "no listen at all", lambda d: (d.graphics[0].listens,
                                                              d.graphics[0].listen_attr), ((), None)),
    ("graphics-dbus-p2p", "dbus p2p", lambda d: (d.graphics[0].type, d.graphics[0].p2p), ("dbus", True)),
    ("serial-tcp-tlsx509-chardev", "udp serial: the bind source", lambda d: d.chardevs[0],
     Chardev(locator="devices/serial[1]", element="serial", type="udp", source_mode="bind",
             source_host="127.0.0.1", source_service="1111")),
    ("serial-tcp-tlsx509-chardev", "tcp serial",
     lambda d: (d.chardevs[1].source_mode, d.chardevs[1].source_service, d.chardevs[1].protocol),
     ("connect", "5555", "raw")),
    ("serial-tcp-tlsx509-chardev", "console", lambda d: (d.chardevs[2].element, d.chardevs[2].target_type),
     ("console", "serial")),
    ("serial-tcp-tlsx509-chardev-notls", "tls='no'", lambda d: d.chardevs[1].tls, False),
    ("serial-tcp-telnet-chardev", "telnet", lambda d: d.chardevs[0].protocol, "telnet"),
    ("channel-guestfwd", "guestfwd target", lambda d: d.chardevs[0].target_type, "guestfwd"),
    # confinement
    ("seclabel-none", "seclabel none", lambda d: d.seclabels,
     (SecLabel(locator="seclabel[1]", type="none", model=None),)),
    ("seclabel-dynamic-baselabel", "baselabel", lambda d: (d.seclabels[0].type, d.seclabels[0].baselabel),
     ("dynamic", "system_u:system_r:svirt_custom_t:s0")),
    ("seclabel-static", "static label", lambda d: (d.seclabels[0].relabel, d.seclabels[0].label),
     (False, "system_u:system_r:svirt_custom_t:s0:c192,c392")),
    ("seclabel-dynamic-labelskip", "labelskip on a disk means no relabel", lambda d: d.disks[0].relabel,
     False),
    ("seclabel-multiple", "four seclabels", lambda d: [(s.locator, s.type, s.model) for s in d.seclabels],
     [("seclabel[1]", "none", None), ("seclabel[2]", "dynamic", "dac"), ("seclabel[3]", "static", "selinux"),
      ("seclabel[4]", "static", "selinux")]),
    ("seclabel-multiple", "imagelabel", lambda d: d.seclabels[3].imagelabel,
     "system_u:system_r:svirt_custom_t:s0:c192,c393"),
    ("qemu-ns", "qemu namespace", lambda d: d.qemu,
     QemuPassthrough(args=("-unknown", "parameter"), env=("NS=ns", "BAR"),
                     capabilities=("+vnc-colon", "-name"), override=True, deprecation="crash")),
    ("qemu-ns-alt", "another prefix, same namespace", lambda d: d.qemu is not None and d.qemu.args,
     ("-unknown", "parameter")),
    ("qemu-ns-no-env", "args only", lambda d: d.qemu and (d.qemu.env, d.qemu.override), ((), False)),
    ("minimal", "no qemu namespace", lambda d: d.qemu, None),
    # passthrough
    ("hostdev-vfio", "pci hostdev", lambda d: (d.hostdevs[0].type, d.hostdevs[0].address,
                                               d.hostdevs[0].driver, d.hostdevs[0].managed),
     ("pci", "0000:06:12.1", "vfio", True)),
    ("hostdev-vfio", "locator", lambda d: d.hostdevs[0].locator, "devices/hostdev[1]"),
    ("pci-rom", "rom bar off", lambda d: (d.hostdevs[0].address, d.hostdevs[0].rom_bar),
     ("0000:06:12.5", False)),
    ("pci-rom", "rom file", lambda d: (d.hostdevs[1].rom_bar, d.hostdevs[1].rom_file),
     (True, "/etc/fake/bootrom.bin")),
    ("hostdev-usb-address", "usb bus/device", lambda d: (d.hostdevs[0].address, d.hostdevs[0].managed),
     ("bus 14 device 6", False)),
    ("hostdev-scsi-lsi", "scsi adapter", lambda d: d.hostdevs[0].address, "scsi_host0 bus 0 target 0 unit 0"),
    ("hostdev-scsi-lsi", "scsi readonly", lambda d: d.hostdevs[1].readonly, True),
    ("hostdev-scsi-lsi", "iscsi hostdev", lambda d: d.hostdevs[2].address, "iscsi:iqn.1992-01.com.example"),
    ("hostdev-mdev-precreated", "mdev uuid", lambda d: (d.hostdevs[0].type, d.hostdevs[0].address),
     ("mdev", "53764d0e-85a0-42b4-af5c-2046b460b1dc")),
    ("net-hostdev", "interface type hostdev", lambda d: (d.interfaces[0].type,
                                                        d.interfaces[0].hostdev_address),
     ("hostdev", "0000:03:07.1")),
    ("usb-redir", "tcp redirdev", lambda d: (d.redirdevs[0].type, d.redirdevs[0].host, d.redirdevs[0].port),
     ("tcp", "localhost", "4000")),
    ("usb-redir", "no redirfilter", lambda d: d.redirfilter, None),
    ("usb-redir-filter", "redirfilter rules", lambda d: d.redirfilter,
     (RedirFilterRule(allow=True, usb_class="0x08", vendor="0x15E1", product="0x2007", version="1.10"),
      RedirFilterRule(allow=False, usb_class="-1", vendor="-1", product="-1", version="-1"))),
    ("virtio-lun", "rawio", lambda d: (d.disks[0].device, d.disks[0].rawio), ("lun", True)),
    # filesystems and shared memory
    ("fs9p", "three 9p shares", lambda d: [(f.accessmode, f.driver_type, f.source_dir, f.target_dir)
                                          for f in d.filesystems],
     [(None, None, "/export/to/guest", "/import/from/host"),
      ("mapped", "path", "/export/to/guest2", "/import/from/host2"),
      (None, "handle", "/export/to/guest3", "/import/from/host3")]),
    ("fs9p", "type defaults to mount", lambda d: d.filesystems[2].type, "mount"),
    ("vhost-user-fs-fd-memory", "virtiofs binary", lambda d: (d.filesystems[0].driver_type,
                                                            d.filesystems[0].binary_path),
     ("virtiofs", "/usr/libexec/virtiofsd")),
    ("vhost-user-fs-fd-memory", "file-backed shared RAM", lambda d: (d.memory.source_type,
                                                                   d.memory.access_mode),
     ("file", "shared")),
    ("vhost-user-fs-sock", "external virtiofsd socket", lambda d: (d.filesystems[0].source_socket,
                                                                  d.filesystems[0].source_dir),
     ("/tmp/sock", None)),
    ("vhost-user-fs-readonly", "readonly share", lambda d: d.filesystems[0].readonly, True),
    ("shmem", "eight shmems", lambda d: [s.name for s in d.shmems], [f"shmem{i}" for i in range(8)]),
    ("shmem", "size with unit", lambda d: d.shmems[1].size, "128 M"),
    ("shmem", "ivshmem with default server", lambda d: (d.shmems[3].model, d.shmems[3].server_path),
     ("ivshmem", None)),
    ("shmem", "server socket", lambda d: d.shmems[4].server_path, "/tmp/shmem4-sock"),
    ("shmem-plain-doorbell", "models", lambda d: [s.model for s in d.shmems],
     ["ivshmem-plain"] * 3 + ["ivshmem-doorbell"] * 5),
    # disks
    ("boot-floppy", "floppy", lambda d: (d.disks[1].locator, d.disks[1].device, d.disks[1].source_file),
     ("devices/disk[2]", "floppy", "/tmp/firmware.img")),
    ("boot-floppy", "driver", lambda d: (d.disks[0].driver_name, d.disks[0].driver_type), ("qemu", "raw")),
    ("luks-disks", "disk-level encryption", lambda d: d.disks[0].encryption,
     DiskEncryption(format="luks", engine="qemu", secret_uuid="0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f")),
    ("luks-disks", "secret by usage", lambda d: d.disks[1].encryption and d.disks[1].encryption.secret_usage,
     "/storage/guest_disks/encryptdisk2"),
    ("luks-disks-source", "source-level encryption", lambda d: [
        e.placement if (e := x.encryption) else None for x in d.disks], ["source"] * 5),
    ("luks-disks-source", "iscsi with auth", lambda d: (d.disks[2].source_protocol, d.disks[2].auth,
                                                       d.disks[2].source_hosts),
     ("iscsi", True, ("example.org:6000",))),
    ("luks-disks-source", "volume disk", lambda d: (d.disks[3].source_pool, d.disks[3].source_volume,
                                                   d.disks[3].source), ("pool-iscsi", "unit:0:0:3",
                                                                        "pool-iscsi/unit:0:0:3")),
    ("luks-disks-source", "rbd monitors", lambda d: len(d.disks[4].source_hosts), 3),
    ("disk-network-nbd", "nbd hosts", lambda d: [x.source_hosts for x in d.disks],
     [("example.org:6000",), ("example.org:6000",), ("[::1]:6000",), ("[::1]:6000",),
      ("/var/run/nbdsock",)]),
    ("disk-network-nbd", "source text", lambda d: d.disks[1].source, "nbd:bar"),
    ("disk-network-iscsi", "auth at disk level", lambda d: [x.auth for x in d.disks][:3],
     [False, False, True]),
    ("disk-network-tlsx509-nbd", "tls source", lambda d: d.disks[0].source_tls, True),
    ("disk-network-http", "http", lambda d: d.disks[0].source_protocol, "http"),
    ("disk-transient", "transient", lambda d: d.disks[0].transient, True),
    ("disk-nvme", "nvme host address", lambda d: (d.disks[0].type, d.disks[0].source_dev),
     ("nvme", "0000:01:00.0")),
    ("disk-backing-chains-noindex", "one-level chain", lambda d: d.disks[0].backing_chain,
     (BackingStore(type="file", format="qcow2", source="/tmp/missing-backing-store.qcow"),)),
    ("disk-backing-chains-noindex", "long chain ends in an empty backingStore",
     lambda d: d.disks[1].backing_chain and (len(d.disks[1].backing_chain),
                                             d.disks[1].backing_chain[-1].terminated,
                                             d.disks[1].backing_chain[0].source),
     (7, True, "/dev/HostVG/QEMUGuest1")),
    ("disk-backing-chains-noindex", "deep chain", lambda d: d.disks[-1].backing_chain and (
        len(d.disks[-1].backing_chain), d.disks[-1].backing_chain[-2].source),
     (12, "/var/lib/libvirt/images/rhel7.qcow2")),
    ("boot-floppy", "no backingStore says nothing", lambda d: d.disks[0].backing_chain, None),
    ("blkdeviotune", "disk iotune", lambda d: d.has_disk_iotune, True),
    ("blkiotune", "blkiotune", lambda d: d.has_blkiotune, True),
    ("cputune", "cputune limits", lambda d: d.has_cputune_limits, True),
    ("memtune", "hard limit", lambda d: d.memory.hard_limit, True),
    ("minimal", "no tuning", lambda d: (d.has_disk_iotune, d.has_blkiotune, d.has_cputune_limits,
                                        d.memory.hard_limit), (False, False, False, False)),
    # networking
    ("net-virtio-network-portgroup", "trustGuestRxFilters", lambda d: [
        i.trust_guest_rx_filters for i in d.interfaces], [True, False, None]),
    ("net-virtio-network-portgroup", "virtualport", lambda d: d.interfaces[0].virtualport_type, "802.1Qbg"),
    ("net-isolated-port", "isolated port", lambda d: d.interfaces[0].port_isolated, True),
    ("net-user-passt", "passt backend", lambda d: (d.interfaces[0].type, d.interfaces[0].backend_type),
     ("user", "passt")),
    ("downscript", "scripts", lambda d: (d.interfaces[0].script, d.interfaces[0].downscript),
     ("/home/ifup.sh", "/home/ifdown.sh")),
    ("domainschemadata/domain-qemu-interface-filterref.xml", "filterref and parameters",
     lambda d: (d.interfaces[1].filterref, d.interfaces[1].filter_params[:2]),
     ("myfilter", (("CTRL_IP_LEARNING", "none"), ("DHCPSERVER", "104.156.226.10")))),
    ("net-midonet", "bridge + virtualport",
     lambda d: (d.interfaces[0].source_bridge, d.interfaces[0].virtualport_type), ("midonet", "midonet")),
    # other devices
    ("tpm-emulator-tpm2-enc", "encrypted vTPM", lambda d: d.tpms,
     (Tpm(locator="devices/tpm[1]", model="tpm-tis", backend_type="emulator", version="2.0",
          encryption_secret="32ee7e76-2178-47a1-ab7b-269e6e348015"),)),
    ("tpm-passthrough", "passthrough TPM", lambda d: (d.tpms[0].backend_type, d.tpms[0].device_path),
     ("passthrough", "/dev/tpm0")),
    ("tpm-external", "external TPM socket", lambda d: d.tpms[0].device_path, "/tmp/path.sock"),
    ("virtio-rng-egd", "egd rng", lambda d: (d.rngs[0].backend_model, d.rngs[0].backend_type,
                                            d.rngs[0].source), ("egd", "tcp", "1.2.3.4:1234")),
    ("virtio-rng-random", "random rng", lambda d: (d.rngs[0].backend_model, d.rngs[0].source),
     ("random", "/dev/urandom")),
    ("watchdog", "watchdog action", lambda d: (d.devices_of("watchdog")[0].model,
                                              d.devices_of("watchdog")[0].action), ("ib700", "poweroff")),
    ("virtio-options-memballoon-freepage-reporting", "freePageReporting",
     lambda d: d.devices_of("memballoon")[0].extra, (("freePageReporting", "on"),)),
    ("smartcard-controller", "smartcard mode", lambda d: d.devices_of("smartcard")[0].type, "host"),
    ("usb-hub", "hub", lambda d: d.devices_of("hub")[0].type, "usb"),
    ("vhost-vsock-auto", "vsock", lambda d: d.devices_of("vsock")[0].extra, (("auto", "yes"),)),
    ("iommu-smmuv3", "iommu", lambda d: d.devices_of("iommu")[0].model, "smmuv3"),
    ("hyperv-panic", "panic", lambda d: d.devices_of("panic")[0].model, "hyperv"),
    ("controller-order", "controllers", lambda d: (d.controllers[0].locator, d.controllers[0].type),
     ("devices/controller[1]", "ide")),
    ("memory-hotplug-nvdimm-access", "nvdimm access", lambda d: d.devices_of("memory")[0].extra,
     (("access", "private"),)),
    # memory, cpu, firmware, confidential computing
    ("machine-core-off", "dumpCore off", lambda d: d.memory.dump_core, False),
    ("machine-core-on", "dumpCore on", lambda d: d.memory.dump_core, True),
    ("nosharepages", "nosharepages", lambda d: d.memory.nosharepages, True),
    ("mlock-on", "locked", lambda d: d.memory.locked, True),
    ("hugepages-default", "hugepages", lambda d: d.memory.hugepages, True),
    ("memfd-memory-numa", "memfd", lambda d: d.memory.source_type, "memfd"),
    ("cpu-host-passthrough", "cpu mode", lambda d: d.cpu and d.cpu.mode, "host-passthrough"),
    ("cpu-host-model-features", "cpu features", lambda d: d.cpu and d.cpu.features[:2],
     (CpuFeature(name="abm", policy="require"), CpuFeature(name="ds", policy="force"))),
    ("cpu-host-model-features", "model without a name", lambda d: d.cpu and (d.cpu.mode, d.cpu.model),
     ("host-model", None)),
    ("minimal", "no cpu element", lambda d: d.cpu, None),
    ("firmware-manual-efi-secure", "secure loader", lambda d: (
        d.firmware.loader, d.firmware.loader_type, d.firmware.loader_secure, d.firmware.nvram,
        d.firmware.smm),
     ("/usr/share/OVMF/OVMF_CODE.secboot.fd", "pflash", True, "/some/user/nvram/path/guest_VARS.fd", True)),
    ("firmware-auto-efi-secboot", "firmware autoselection", lambda d: (d.firmware.firmware,
                                                                     d.firmware.secure_boot),
     ("efi", True)),
    ("firmware-auto-efi-enrolled-keys-no-secboot", "enrolled keys", lambda d: (
        d.firmware.secure_boot, d.firmware.enrolled_keys), (False, True)),
    ("machine-smm-off", "smm off", lambda d: d.firmware.smm, False),
    ("aarch64-aavmf-virtio-mmio", "direct kernel boot", lambda d: (
        d.firmware.kernel, d.firmware.initrd, d.firmware.dtb, d.arch),
     ("/aarch64.kernel", "/aarch64.initrd", "/aarch64.dtb", "aarch64")),
    ("aarch64-virt-graphics", "libosinfo id", lambda d: d.libosinfo_id, "http://fedoraproject.org/fedora/29"),
    ("launch-security-sev", "sev policy", lambda d: d.launch_security and (
        d.launch_security.type, d.launch_security.policy, d.launch_security.policy_text),
     ("sev", 1, "0x0001")),
    ("launch-security-sev", "confidential", lambda d: d.confidential, True),
    ("launch-security-s390-pv", "s390-pv without policy", lambda d: d.launch_security and (
        d.launch_security.type, d.launch_security.policy), ("s390-pv", None)),
    ("minimal", "identity", lambda d: (d.name, d.uuid, d.virt_type, d.vcpus, d.on_crash, d.os_type,
                                       d.machine, d.emulator),
     ("QEMUGuest1", "c7a5fdbd-edaf-9455-926a-d65c16db1809", "qemu", 1, "destroy", "hvm", "pc",
      "/usr/bin/qemu-system-i386")),
]


@pytest.mark.parametrize(("name", "what", "get", "expected"), TABLE,
                         ids=[f"{row[0]}: {row[1]}" for row in TABLE])
def test_corpus_fact(name: str, what: str, get: Callable[[Domain], Any], expected: Any) -> None:
    assert get(dom(name)) == expected


def test_passwords_are_hidden_without_the_secure_flag() -> None:
    assert dom("graphics-vnc-tls", secure=False).graphics[0].password is PasswordState.HIDDEN
    assert dom("graphics-vnc-tls", secure=False).secure_xml is False
    # A passwd that is there is there, whatever the flag.
    assert dom("graphics-spice-timeout", secure=False).graphics[0].password is PasswordState.SET


def test_empty_password_is_not_a_password() -> None:
    xml = "<domain><name>v</name><devices><graphics type='vnc' passwd=''/></devices></domain>"
    assert parse_domain(xml, "v.xml").graphics[0].password is PasswordState.EMPTY


def test_sev_snp_policy_hex() -> None:
    # libvirt 9.0's corpus predates SEV-SNP; this is the policy word of libvirt's later fixture.
    xml = ("<domain type='kvm'><name>snp</name><launchSecurity type='sev-snp'>"
           "<policy>0x00030000</policy></launchSecurity></domain>")
    launch = parse_domain(xml, "snp.xml").launch_security
    assert launch is not None
    assert (launch.type, launch.policy) == ("sev-snp", 0x30000)


def test_every_corpus_domain_parses_with_locators_in_order() -> None:
    for path in sorted(ARGV.glob("*.xml")):
        d = parse_domain(path.read_bytes(), str(path))
        for group in (d.disks, d.graphics, d.interfaces, d.hostdevs, d.controllers):
            for item in group:
                _, _, index = item.locator.removeprefix("devices/").partition("[")
                assert int(index.rstrip("]")) >= 1, item.locator
        # Locators are unique within a domain.
        locators = [x.locator for g in (d.disks, d.graphics, d.interfaces, d.chardevs, d.devices)
                    for x in g]
        assert len(locators) == len(set(locators)), path.name


@pytest.mark.parametrize(("xml", "reason"), [
    ("<network><name>n</name></network>", "not a domain document (root element <network>)"),
    ("<domain type='kvm'><uuid>x</uuid></domain>", "domain has no <name>"),
    ("<domain><name>  </name></domain>", "domain has no <name>"),
])
def test_not_a_domain(xml: str, reason: str) -> None:
    with pytest.raises(ReadError) as err:
        parse_domain(xml, "odd.xml")
    assert err.value.reason == reason
    assert err.value.source == "odd.xml"


def test_malformed_xml_names_the_file_and_position() -> None:
    with pytest.raises(XmlError) as err:
        parse_domain(b"<domain>\n  <name>x</name>\n  <devices>\n</domain>", "/etc/libvirt/qemu/x.xml")
    assert err.value.source == "/etc/libvirt/qemu/x.xml"
    assert err.value.reason == "not well-formed XML: line 4, column 3: mismatched tag"


def test_odd_values_become_unknown_not_crashes() -> None:
    xml = """<domain type='kvm'>
      <name>odd</name><vcpu>four</vcpu><memory dumpCore='maybe'/>
      <os><loader secure='perhaps'/></os>
      <launchSecurity type='sev'><policy>0xZZ</policy></launchSecurity>
      <devices>
        <graphics type='vnc' port='59o0' autoport='sometimes' tlsPort='' websocket='-1'/>
        <graphics/>
        <disk><source/></disk>
        <hostdev type='pci'><source>
          <address domain='0x0000' bus='zz' slot='0x1' function='0'/></source></hostdev>
        <hostdev type='pci'><source><address bus='0x06' slot='0x12' function='0x1'/></source></hostdev>
        <interface/>
        <serial/>
        <tpm/>
        <shmem/>
        <redirfilter><usbdev/></redirfilter>
        <unknown-device foo='bar'/>
      </devices>
    </domain>"""
    d = parse_domain(xml, "odd.xml")
    assert d.vcpus is None
    assert d.memory.dump_core is None
    assert d.firmware.loader_secure is None
    assert d.launch_security is not None and d.launch_security.policy is None
    vnc, bare = d.graphics
    assert (vnc.port, vnc.autoport, vnc.tls_port, vnc.websocket) == (None, None, None, -1)
    assert bare.type == ""
    assert d.disks[0].device == "disk" and d.disks[0].source is None
    assert d.hostdevs[0].address == "0x0000:zz:0x1:0"  # kept as written when it does not parse
    assert d.hostdevs[1].address == "0000:06:12.1"  # an omitted domain is 0
    assert d.chardevs[0].type == "pty"
    assert d.tpms[0].backend_type == ""
    assert d.shmems[0].name == ""
    assert d.redirfilter == (RedirFilterRule(allow=False),)


_FUZZ_FILES = ("graphics-spice", "hostdev-vfio", "luks-disks-source", "disk-backing-chains-noindex",
               "serial-tcp-tlsx509-chardev", "qemu-ns", "launch-security-sev", "usb-redir-filter",
               "firmware-manual-efi-secure", "tpm-emulator-tpm2-enc", "shmem")
_FUZZ_ATTRS = ("type", "port", "tlsPort", "websocket", "autoport", "passwd", "listen", "domain", "bus",
               "slot", "function", "id", "mode", "model", "dumpCore", "state", "secure", "relabel",
               "labelskip", "allow", "capability", "value", "name", "host", "service", "tls", "rawio",
               "sgio", "enabled")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(_FUZZ_FILES), pick=st.integers(min_value=0, max_value=10_000),
       attr=st.sampled_from(_FUZZ_ATTRS), value=st.text(max_size=12), text=st.none() | st.text(max_size=12),
       drop_children=st.booleans())
def test_mutated_corpus_files_never_crash(which: str, pick: int, attr: str, value: str, text: str | None,
                                          drop_children: bool) -> None:
    root = ET.fromstring((ARGV / f"{which}.xml").read_bytes())  # trusted corpus file
    elements = list(root.iter())
    target = elements[pick % len(elements)]
    target.set(attr, value)
    if text is not None:
        target.text = text
    if drop_children and target is not root:
        for child in list(target):
            target.remove(child)
    data = ET.tostring(root)
    try:
        d = parse_domain(data, "fuzz.xml")
    except ReadError:
        return  # a clear refusal (e.g. the <name> became empty) is fine; anything else is a bug
    assert d.origin == "fuzz.xml"
