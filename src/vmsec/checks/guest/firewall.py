"""The host firewall: one framework enabled at boot, and a default-deny policy for inbound traffic.

When a firewall file or an enabled-services directory could not be read (``Guest.unread["firewall"]``,
``["services"]``), what was seen enabled or dropping stays a PASS only if nothing unread could change
it; "none is enabled" or "the policy is accept" is UNKNOWN, naming what was not read."""

from __future__ import annotations

from collections.abc import Iterator

from vmsec.checks.api import Result, Severity, Tag, check, ev, fail, ok, unknown
from vmsec.checks.helpers.unread import guest_unread, not_read, ok_unless
from vmsec.facts import Guest

_REFS = ("https://wiki.nftables.org/wiki-nftables/index.php/Simple_ruleset_for_a_server",
         "https://firewalld.org/documentation/")


@check("VMS-GST-118", title="A host firewall is enabled at boot", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "firewall", "network"), references=_REFS)
def firewall_enabled(guest: Guest) -> Iterator[Result]:
    """Without a host firewall every service that listens — including ones started by mistake or
    by an intruder — is reachable from every network the system is on, and a VM's neighbours on a
    shared bridge are such a network. Cloud security groups help, but do not see traffic between
    VMs of the same host.

    Remediation: Enable one framework: nftables (`systemctl enable nftables` with
    /etc/nftables.conf), firewalld, or ufw (`ufw enable`).
    """
    fw = guest.firewall
    if fw is None:
        yield unknown("host firewall", "the firewall configuration could not be read")
        return
    enabled = sorted(m for m, on in fw.mechanisms.items() if on)
    unclear = sorted(m for m, on in fw.mechanisms.items() if on is None)
    where = ev(fw.origin or "firewall", "mechanisms",
               ", ".join(f"{m}={on}" for m, on in sorted(fw.mechanisms.items())) or "none")
    unread = guest_unread(guest, "firewall", "services")
    if enabled:
        yield ok("host firewall", f"{', '.join(enabled)} enabled at boot", where)
    elif unclear:
        yield unknown("host firewall", f"{', '.join(unclear)} configured; whether it is enabled at "
                      "boot could not be determined", where)
    elif unread:  # the firewall, or the link that enables it, may be in what was not read
        yield not_read(unread, "host firewall", "no firewall framework is enabled at boot", where)
    elif fw.mechanisms:
        yield fail("host firewall", f"{', '.join(sorted(fw.mechanisms))} installed but none is "
                   "enabled at boot", where)
    else:
        yield fail("host firewall", "no firewall framework (nftables, iptables, ufw, firewalld) is "
                   "configured", where)


@check("VMS-GST-119", title="Inbound traffic is denied by default", severity=Severity.MEDIUM,
       tags=(Tag.ISOLATION, "firewall", "network"), references=_REFS)
def default_deny_input(guest: Guest) -> Iterator[Result]:
    """A firewall whose input policy is accept only blocks what someone remembered to list; a
    default-deny policy blocks whatever nobody thought of, such as a debug port left open. Both IPv4
    and IPv6 must be denied (an `ip` table or a rules.v4 alone leaves IPv6 open); a ruleset the loader
    refuses (a missing nft include, an iptables table without COMMIT, a lower-case ufw policy) loads
    nothing; an unconditional accept rule undoes the policy; what vmsec cannot follow (a jump, a
    dormant or later-changed table) is UNKNOWN.

    Remediation: nftables `type filter hook input priority 0; policy drop;` with explicit accepts;
    ufw `default deny incoming`; firewalld a zone whose target is not ACCEPT.
    """
    fw = guest.firewall
    if fw is None:
        yield unknown("input policy", "the firewall configuration could not be read")
        return
    if not any(fw.mechanisms.values()):
        return  # no firewall at all: VMS-GST-118 reports it
    policy = (fw.default_input_policy or "").strip().lower() or None
    where = ev(fw.origin or "firewall", "input policy", fw.default_input_policy)
    unread = guest_unread(guest, "firewall")
    note = f" ({fw.policy_note})" if fw.policy_note else ""
    if policy is None:
        yield unknown("input policy", "the default input policy could not be determined from the "
                      f"firewall configuration{note}", where)
    elif policy in ("drop", "reject", "deny"):
        yield ok_unless(unread, "input policy", f"inbound default policy is {policy}", where)
    elif unread:  # an unread file may hold a dropping input chain
        yield not_read(unread, "input policy", f"inbound default policy is {policy}{note}", where)
    else:
        yield fail("input policy", f"inbound default policy is {policy}{note}: unlisted ports are open",
                   where)


@check("VMS-GST-120", title="Only one firewall framework manages the rules", severity=Severity.LOW,
       tags=(Tag.CONFIGURATION, "firewall"), references=_REFS)
def single_firewall(guest: Guest) -> Iterator[Result]:
    """ufw, firewalld, nftables.service and iptables-persistent each load their own rules at boot;
    with two enabled, whichever starts last silently replaces or interleaves with the other, and
    the rules in force are not the ones anyone reviewed.

    Remediation: Keep one framework enabled and disable the others.
    """
    fw = guest.firewall
    if fw is None:
        yield unknown("firewall frameworks", "the firewall configuration could not be read")
        return
    enabled = sorted(m for m, on in fw.mechanisms.items() if on)
    if not enabled:
        return
    where = ev(fw.origin or "firewall", "enabled", enabled)
    if len(enabled) > 1:
        yield fail("firewall frameworks", f"{len(enabled)} frameworks are enabled at boot: "
                   f"{', '.join(enabled)}", where)
    else:
        yield ok_unless(guest_unread(guest, "firewall", "services"), "firewall frameworks",
                        f"only {enabled[0]} is enabled", where)
