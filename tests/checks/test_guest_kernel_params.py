"""Guest sysctl checks (VMS-GST-095…108): explicit values, kernel defaults where they are fixed,
UNKNOWN where the default depends on the kernel build."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from vmsec.checks.api import Environment
from vmsec.checks.guest import kernel_params as k
from vmsec.facts import Guest, Inventory, Network, evolve
from vmsec.facts.guest import SysctlValue
from vmsec.findings import Status

P, F, U = Status.PASS, Status.FAIL, Status.UNKNOWN


def g(values: dict[str, str] | None) -> Guest:
    sysctl = None if values is None else {
        key: SysctlValue(value=v, origin=f"/etc/sysctl.d/90-test.conf:{i}")
        for i, (key, v) in enumerate(values.items(), 1)}
    return Guest(name="vm", origin="/img", sysctl=sysctl)


def run(func: Any, guest: Guest, env: Environment | None = None) -> list[Status]:
    if len(inspect.signature(func).parameters) == 2:
        return [r.status for r in func(guest, env or Environment(inventory=Inventory(), host=None))]
    return [r.status for r in func(guest)]


CASES = [
    (k.rp_filter, None, [U]),
    (k.accept_redirects, None, [U, U]),
    (k.rp_filter, {}, [F, F]),  # kernel default 0
    (k.rp_filter, {"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.default.rp_filter": "2"}, [P, P]),
    # systemd 50-default.conf spelling: a glob key and the "-" prefix
    (k.rp_filter, {"net.ipv4.conf.*.rp_filter": "2", "-net.ipv4.conf.all.rp_filter": "2"}, [P, P]),
    (k.accept_redirects, {}, [F, F, F, F]),
    (k.accept_redirects, {"net.ipv4.conf.all.accept_redirects": "0",
                          "net.ipv4.conf.default.accept_redirects": "0",
                          "net.ipv6.conf.all.accept_redirects": "0",  # facts: keys normalised by the parser
                          "net.ipv6.conf.default.accept_redirects": "1"}, [P, P, P, F]),
    (k.accept_redirects, {"net.ipv4.ip_forward": "1"}, [P, P, F, F]),  # router default off (v4 only)
    (k.send_redirects, {"net.ipv4.conf.all.send_redirects": "0",
                        "net.ipv4.conf.default.send_redirects": "0"}, [P, P]),
    (k.accept_source_route, {}, [P, P]),  # host default off
    (k.accept_source_route, {"net.ipv4.ip_forward": "1"}, [U, U]),  # router default on
    (k.accept_source_route, {"net.ipv4.conf.all.accept_source_route": "1"}, [F, P]),
    (k.accept_source_route, {"net.ipv6.conf.all.accept_source_route": "1"}, [P, P, F]),
    (k.ip_forward, {}, [P, P]),
    (k.ip_forward, {"net.ipv4.ip_forward": "1"}, [F, P]),
    (k.tcp_syncookies, {}, [P]),
    (k.tcp_syncookies, {"net.ipv4.tcp_syncookies": "0"}, [F]),
    (k.randomize_va_space, {}, [P]),
    (k.randomize_va_space, {"kernel.randomize_va_space": "1"}, [F]),
    (k.randomize_va_space, {"kernel.randomize_va_space": "two"}, [U]),
    (k.kptr_restrict, {}, [F]),
    (k.kptr_restrict, {"kernel.kptr_restrict": "2"}, [P]),
    (k.kptr_restrict, {"kernel.kptr_restrict": "3"}, [U]),  # the kernel refuses 3 (0..2): EINVAL
    (k.kptr_restrict, {"kernel.kptr_restrict": "+1"}, [U]),  # proc_dointvec takes no '+'
    (k.kptr_restrict, {"kernel.kptr_restrict": "1 # on"}, [P]),  # a blank ends the number
    (k.dmesg_restrict, {}, [U]),
    (k.dmesg_restrict, {"kernel.dmesg_restrict": "1"}, [P]),
    (k.dmesg_restrict, {"kernel.dmesg_restrict": "0"}, [F]),
    (k.ptrace_scope, {}, [U]),
    (k.ptrace_scope, {"kernel.yama.ptrace_scope": "0"}, [F]),
    (k.ptrace_scope, {"kernel.yama.ptrace_scope": "3"}, [P]),
    (k.protected_links, {}, [F, F]),
    (k.protected_links, {"fs.protected_symlinks": "1", "fs.protected_hardlinks": "1"}, [P, P]),
    (k.suid_dumpable, {}, [P]),
    (k.suid_dumpable, {"fs.suid_dumpable": "2"}, [F]),
    (k.unprivileged_bpf, {}, [U]),
    (k.unprivileged_bpf, {"kernel.unprivileged_bpf_disabled": "0"}, [F]),
    (k.unprivileged_bpf, {"kernel.unprivileged_bpf_disabled": "2"}, [P]),
    (k.bpf_jit_harden, {}, [F]),
    (k.bpf_jit_harden, {"net.core.bpf_jit_harden": "2"}, [P]),
]


@pytest.mark.parametrize(("func", "values", "expected"), CASES,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(CASES)])
def test_sysctl(func: Any, values: dict[str, str] | None, expected: list[Status]) -> None:
    assert run(func, g(values)) == expected


def test_forwarding_is_expected_on_a_hypervisor_with_routed_networks() -> None:
    host_os = g({"net.ipv4.ip_forward": "1"})
    nat = Network(name="default", origin="default.xml", forward_mode="nat")
    env = Environment(inventory=Inventory(host_os=host_os, networks=(nat,)), host=None)
    results = list(k.ip_forward(host_os, env))
    assert [r.status for r in results] == [P, P]
    assert "hypervisor" in results[0].message and "default" in results[0].message
    # the same facts on a guest fail, and so do they on a host without routed networks
    assert run(k.ip_forward, g({"net.ipv4.ip_forward": "1"}), env) == [F, P]
    isolated = Environment(inventory=Inventory(host_os=host_os, networks=(
        Network(name="iso", origin="iso.xml"),)), host=None)
    assert [r.status for r in k.ip_forward(host_os, isolated)] == [F, P]


def test_evidence_names_the_winning_file() -> None:
    [r] = k.kptr_restrict(g({"kernel.kptr_restrict": "0"}))
    assert r.evidence[0].source == "/etc/sysctl.d/90-test.conf:1" and r.evidence[0].value == "0"
    [r] = k.kptr_restrict(g({}))
    assert "kernel default 0" in r.message


def test_offline_with_an_unread_sysctl_file_a_good_or_unset_value_is_unknown() -> None:
    # a later sysctl.d file that could not be read may set any key (the last one wins)
    unread = {"sysctl": ("/etc/sysctl.d/99-local.conf: Permission denied",)}
    guest = evolve(g({"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.default.rp_filter": "0",
                      "kernel.randomize_va_space": "2"}), unread=unread)
    assert run(k.rp_filter, guest) == [U, F]  # the 0 that was read is still a finding
    assert run(k.randomize_va_space, guest) == [U]
    assert run(k.send_redirects, guest) == [U, U]  # unset: the kernel default 1 may be overridden
    assert run(k.ip_forward, guest) == [U, U]
    [r] = k.randomize_va_space(guest)
    assert "/etc/sysctl.d/99-local.conf: Permission denied" in r.message
